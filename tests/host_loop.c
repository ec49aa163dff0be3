/* tests/host_loop.c: a C program that owns a libev loop, with a watcher of
 * its own, and hosts curio tasks on that loop through curio.h. Prints what
 * happened in order; spec/kernel_spec.lua runs it and checks the lines. */
#include <stdio.h>
#include <string.h>
#include <ev.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "curio.h"

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

static int run(lua_State *L) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  ev_set_userdata(loop, &userdata_marker);
  ev_timer tick;
  ev_timer_init(&tick, tick_cb, 0.004, 0.004);
  ev_timer_start(loop, &tick);

  curio_kernel *k = curio_attach(L, loop);
  luaL_loadstring(L, task_source);
  lua_pushcfunction(L, l_log);
  lua_call(L, 1, 1);             /* the task function */
  lua_pushinteger(L, 3);
  curio_spawn(L, k, 1);          /* pushes the Task */
  printf("tasks before the loop: %zu\n", curio_tasks(k));
  ev_run(loop, 0);               /* the program's loop: its timer and the tasks */
  printf("host ticks: %d\n", ticks);
  printf("tasks after the loop: %zu\n", curio_tasks(k));
  lua_getfield(L, -1, "result");
  lua_pushvalue(L, -2);
  lua_call(L, 1, 1);
  printf("task result: %d\n", (int)lua_tointeger(L, -1));
  lua_pop(L, 2);

  /* a task still sleeping when the program detaches is cancelled */
  luaL_loadstring(L, "local curio = require 'curio'\n"
                     "return function() local ok = pcall(curio.sleep, 10)\n"
                     "  print('sleeper cleanup, sleep ok: ' .. tostring(ok)) end");
  lua_call(L, 0, 1);
  curio_spawn(L, k, 0);
  lua_pop(L, 1);
  ev_run(loop, EVRUN_NOWAIT);    /* the sleeper starts and sleeps */
  curio_detach(L, k);
  printf("ev_userdata kept: %s\n", ev_userdata(loop) == &userdata_marker ? "yes" : "no");
  ev_loop_destroy(loop);
  return 0;
}

int main(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_curio_core);
  lua_setfield(L, -2, "curio.core");
  lua_pop(L, 1);
  lua_pushcfunction(L, run);
  int status = lua_pcall(L, 0, 0, 0);
  if (status != LUA_OK) fprintf(stderr, "host_loop: %s\n", luaL_tolstring(L, -1, NULL));
  lua_close(L);
  return status == LUA_OK ? 0 : 1;
}
