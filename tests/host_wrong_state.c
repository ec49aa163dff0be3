/* tests/host_wrong_state.c: a kernel refuses every call made with another
 * Lua state (the error goes on that state), and accepts a coroutine of its
 * own state. A second state may have its own kernel on the same loop. */
#include "host_util.h"

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate(), *other = luaL_newstate();
  curio_kernel *k, *k2;
  size_t n;
  luaL_openlibs(L);
  luaL_openlibs(other);
  host_show(L, curio_attach(L, loop, &k), "attach");
  host_push_chunk(other, "return function() return 1 end");
  host_show(other, curio_spawn(other, k, 0, NULL, NULL), "spawn with another state");
  printf("other state's stack: %d value\n", lua_gettop(other));
  host_show(other, curio_tasks(other, k, &n), "tasks with another state");
  lua_pushinteger(other, 1);
  host_show(other, curio_result(other, k, 1), "result with another state");
  lua_settop(other, 0);
  host_show(other, curio_detach(other, k, CURIO_DETACH_WAIT), "detach with another state");

  host_push_chunk(L, "return print");
  host_show(L, curio_spawn(L, k, 2147483647, NULL, NULL), "spawn with nargs INT_MAX");
  printf("stack: %d value\n", lua_gettop(L));
  lua_settop(L, 0);
  host_show(L, curio_spawn(L, k, -1, NULL, NULL), "spawn with nargs -1");
  lua_pushinteger(L, 7);
  host_show(L, curio_spawn(L, k, 0, NULL, NULL), "spawn of a number");
  printf("stack: %d value\n", lua_gettop(L));
  host_show(L, curio_result(L, k, 1000), "result at index 1000");
  host_show(L, curio_result(L, k, -2147483647 - 1), "result at index INT_MIN");
  lua_pushinteger(L, 7);
  host_show(L, curio_result(L, k, -1), "result of a number");
  lua_settop(L, 0);
  lua_State *co = lua_newthread(L);
  host_push_chunk(co, "return function(x) return x + 1 end");
  lua_pushinteger(co, 41);
  host_show(co, curio_spawn(co, k, 1, NULL, NULL), "spawn with a coroutine of the state");
  ev_run(loop, 0);
  host_show(co, curio_result(co, k, -1), "result with the coroutine");
  printf("result: %d\n", (int)lua_tointeger(co, -1));
  lua_pop(L, 1); /* the coroutine */

  host_show(other, curio_attach(other, loop, &k2), "attach the other state to the same loop");
  host_push_chunk(other, "return function() return 'other' end");
  host_show(other, curio_spawn(other, k2, 0, NULL, NULL), "spawn in the other state");
  ev_run(loop, 0);
  host_show(other, curio_result(other, k2, -1), "result in the other state");
  printf("result: %s\n", lua_tostring(other, -1));
  host_show(L, curio_detach(L, k2, CURIO_DETACH_WAIT), "detach the other's kernel with the first state");
  host_show(other, curio_detach(other, k2, CURIO_DETACH_WAIT), "detach the other's kernel");
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach");
  curio_release(k);
  curio_release(k2);
  lua_close(L);
  lua_close(other);
  ev_loop_destroy(loop);
  return 0;
}
