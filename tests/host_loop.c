/* tests/host_loop.c: a C program that owns a libev loop, with a watcher of
 * its own, and hosts curio tasks on that loop through curio.h. Prints what
 * happened in order; spec/kernel_spec.lua runs it and checks the lines. */
#include <ev.h>
#include "host_util.h"

static int ticks;
static int userdata_marker;

/* The program's own watcher: ticks every 4 ms, 10 times. */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  if (++ticks == 10) ev_timer_stop(loop, w);
}

/* log(text): what the Lua task reports, with the host's tick count. */
static int l_log(lua_State *L) {
  printf("%s (host ticks so far: %s)\n", luaL_checkstring(L, 1), ticks > 0 ? "some" : "none");
  return 0;
}

static const char *task_source =
  "local log = ...\n"
  "local curio = require 'curio'\n"
  "return function(n)\n"
  "  for i = 1, n do curio.sleep(0.01) end\n"
  "  local child = curio.spawn(function() curio.sleep(0.005) return 'child' end)\n"
  "  log('task slept ' .. n .. ' times, joined ' .. child:join())\n"
  "  return n * 2\n"
  "end\n";

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate();
  curio_kernel *k;
  size_t n;
  luaL_openlibs(L);
  ev_set_userdata(loop, &userdata_marker);
  ev_timer tick;
  ev_timer_init(&tick, tick_cb, 0.004, 0.004);
  ev_timer_start(loop, &tick);

  if (host_show(L, curio_attach(L, loop, &k), "attach") != LUA_OK) return 1;
  luaL_loadstring(L, task_source);
  lua_pushcfunction(L, l_log);
  lua_call(L, 1, 1);             /* the task function */
  lua_pushinteger(L, 3);
  if (curio_spawn(L, k, 1, NULL, NULL) != LUA_OK) return 1; /* pushes the Task */
  curio_tasks(L, k, &n);
  printf("tasks before the loop: %zu\n", n);
  ev_run(loop, 0);               /* the program's loop: its timer and the tasks */
  printf("host ticks: %d\n", ticks);
  curio_tasks(L, k, &n);
  printf("tasks after the loop: %zu\n", n);
  int top = lua_gettop(L);
  if (curio_result(L, k, -1) == LUA_OK)
    printf("task result: %d (%d value)\n", (int)lua_tointeger(L, -1), lua_gettop(L) - top);
  lua_settop(L, 0);

  /* a task still sleeping when the program detaches is cancelled */
  luaL_loadstring(L, "local curio = require 'curio'\n"
                     "return function() local ok = pcall(curio.sleep, 10)\n"
                     "  print('sleeper cleanup, sleep ok: ' .. tostring(ok)) end");
  lua_call(L, 0, 1);
  curio_spawn(L, k, 0, NULL, NULL);
  lua_pop(L, 1);
  ev_run(loop, EVRUN_NOWAIT);    /* the sleeper starts and sleeps */
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach");
  printf("ev_userdata kept: %s\n", ev_userdata(loop) == &userdata_marker ? "yes" : "no");
  curio_release(k);
  lua_close(L);
  ev_loop_destroy(loop);
  return 0;
}
