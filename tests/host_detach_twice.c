/* tests/host_detach_twice.c: curio_detach twice, with collections between
 * and after, then every other call on the detached handle: each an error
 * status (never a use of freed memory: run under valgrind and ASan by
 * spec/embed_spec.lua), and the handle freed by curio_release alone. */
#include "host_util.h"

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate();
  curio_kernel *k;
  size_t n = 99;
  luaL_openlibs(L);
  host_show(L, curio_attach(L, loop, &k), "attach");
  host_push_chunk(L, "local curio = require 'curio'\n"
                     "return function() local ok = pcall(curio.sleep, 10) print('cleanup ran', ok) end");
  host_show(L, curio_spawn(L, k, 0, NULL, NULL), "spawn");
  lua_setglobal(L, "task"); /* (kept: curio_result is called on it after detach) */
  ev_run(loop, EVRUN_NOWAIT);
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach");
  lua_gc(L, LUA_GCCOLLECT, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach again");
  lua_gc(L, LUA_GCCOLLECT, 0);
  host_show(L, curio_detach(L, k, CURIO_DETACH_ABANDON), "detach a third time (abandon)");
  lua_pushcfunction(L, luaopen_curio_core);
  host_show(L, curio_spawn(L, k, 0, NULL, NULL), "spawn after detach");
  printf("stack after the refused spawn: %d value\n", lua_gettop(L));
  lua_settop(L, 0);
  host_show(L, curio_tasks(L, k, &n), "tasks after detach");
  printf("count given: %zu\n", n);
  lua_getglobal(L, "task");
  host_show(L, curio_result(L, k, 1), "result after detach");
  lua_settop(L, 0);
  host_show(L, curio_detach(L, k, 42), "detach with an unknown mode");
  host_show(L, curio_detach(L, NULL, CURIO_DETACH_WAIT), "detach NULL");
  host_show(L, curio_release(k), "release");
  host_show(L, curio_release(NULL), "release NULL");
  lua_close(L);
  ev_loop_destroy(loop);
  return 0;
}
