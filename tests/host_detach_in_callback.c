/* tests/host_detach_in_callback.c: curio_detach (WAIT) called from the
 * program's own libev callback while ev_run runs: it runs the loop nested
 * in that callback until the cleanups end; another callback of the
 * program that fires meanwhile and calls curio_detach again is refused
 * (the kernel's own detach runs it), and curio_spawn there is refused too. */
#include "host_util.h"

static curio_kernel *kernel;
static lua_State *state;
static int ticks_during_detach, in_detach;

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  if (!in_detach) return;
  if (ticks_during_detach++ == 0) {
    host_show(state, curio_detach(state, kernel, CURIO_DETACH_WAIT), "detach from a callback of the detach");
    host_push_chunk(state, "return print");
    host_show(state, curio_spawn(state, kernel, 0, NULL, NULL), "spawn from a callback of the detach");
  }
  (void)loop; (void)w;
}

static void detach_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents; (void)w;
  in_detach = 1;
  host_show(state, curio_detach(state, kernel, CURIO_DETACH_WAIT), "detach from the program's callback");
  in_detach = 0;
  ev_break(loop, EVBREAK_ALL);
}

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  state = luaL_newstate();
  luaL_openlibs(state);
  host_show(state, curio_attach(state, loop, &kernel), "attach");
  host_push_chunk(state, "local curio = require 'curio'\n"
                         "return function()\n"
                         "  local ok = pcall(curio.sleep, 10)\n"
                         "  curio.sleep(0.05) -- a cleanup that takes a while: the program's ticks go on\n"
                         "  print('cleanup done, sleep ok: ' .. tostring(ok))\n"
                         "end");
  host_show(state, curio_spawn(state, kernel, 0, NULL, NULL), "spawn");
  lua_settop(state, 0);
  ev_timer tick, detach;
  ev_timer_init(&tick, tick_cb, 0.005, 0.005);
  ev_timer_start(loop, &tick);
  ev_timer_init(&detach, detach_cb, 0.01, 0);
  ev_timer_start(loop, &detach);
  ev_run(loop, 0);
  printf("the program's ticks during the detach: %s\n", ticks_during_detach > 1 ? "several" : "too few");
  curio_release(kernel);
  lua_close(state);
  ev_loop_destroy(loop);
  return 0;
}
