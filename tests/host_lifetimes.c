/* tests/host_lifetimes.c: the handle outlives the kernel however the
 * kernel goes. lua_close without curio_detach: no cleanup runs, nothing of
 * curio stays on the loop (the program's own timer runs on it after), and
 * the handle refuses calls until curio_release. ev_loop_destroy before
 * curio_detach (forbidden, but survived): the tasks are abandoned at the
 * destruction, reported, and curio_detach says so once. */
#include "host_util.h"

static int fired;
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop; (void)w; (void)revents;
  fired++;
}

static const char *sleeper =
  "local curio = require 'curio'\n"
  "return function() local ok = pcall(curio.sleep, 10) print('cleanup ran', ok) end";

static void start_sleeper(lua_State *L, curio_kernel *k, struct ev_loop *loop) {
  host_push_chunk(L, sleeper);
  host_show(L, curio_spawn(L, k, 0, NULL, NULL), "spawn");
  lua_pop(L, 1);
  ev_run(loop, EVRUN_NOWAIT); /* it starts and sleeps */
}

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate();
  curio_kernel *k;
  luaL_openlibs(L);

  printf("-- lua_close without curio_detach\n");
  host_show(L, curio_attach(L, loop, &k), "attach");
  start_sleeper(L, k, loop);
  lua_State *next = luaL_newstate(); /* (made first: it cannot take the old one's address) */
  lua_close(L);
  L = next;
  ev_timer t;
  ev_timer_init(&t, timer_cb, 0.001, 0);
  ev_timer_start(loop, &t);
  ev_run(loop, 0); /* only our timer is left on it */
  printf("own timer fired on the loop after lua_close: %d\n", fired);
  luaL_openlibs(L);
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach from another state");
  host_show(L, curio_release(k), "release");

  printf("-- ev_loop_destroy before curio_detach\n");
  host_show(L, curio_attach(L, loop, &k), "attach");
  start_sleeper(L, k, loop);
  ev_loop_destroy(loop);
  loop = NULL;
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach after the loop went");
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach again");
  lua_pushcfunction(L, luaopen_curio_core);
  host_show(L, curio_spawn(L, k, 0, NULL, NULL), "spawn");
  lua_gc(L, LUA_GCCOLLECT, 0);
  host_show(L, curio_release(k), "release");

  printf("-- a new loop, the same state: attach again\n");
  loop = ev_loop_new(EVFLAG_AUTO);
  host_show(L, curio_attach(L, loop, &k), "attach");
  start_sleeper(L, k, loop);
  printf("-- curio_release without curio_detach abandons\n");
  host_show(L, curio_release(k), "release");
  lua_close(L);
  ev_loop_destroy(loop);
  return 0;
}
