/* tests/host_attach_twice.c: one kernel at a time per Lua state: a second
 * attach (from the state or a coroutine of it, on the same loop or
 * another) is refused; after curio_detach the state may attach again. */
#include "host_util.h"

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO), *loop2 = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate();
  curio_kernel *k, *again = (curio_kernel *)&again;
  luaL_openlibs(L);
  host_show(L, curio_attach(L, loop, &k), "attach");
  host_show(L, curio_attach(L, loop, &again), "attach again");
  printf("handle given on error: %s\n", again == NULL ? "NULL" : "set");
  lua_State *co = lua_newthread(L);
  host_show(co, curio_attach(co, loop2, &again), "attach from a coroutine to another loop");
  lua_pop(L, 1);
  host_show(L, curio_attach(L, NULL, &again), "attach to no loop");
  host_show(L, curio_attach(L, loop, NULL), "attach with no handle pointer");
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach");
  host_show(L, curio_attach(L, loop2, &again), "attach after detach");
  host_push_chunk(L, "return function() return 'ran' end");
  host_show(L, curio_spawn(L, again, 0, NULL, NULL), "spawn");
  ev_run(loop2, 0);
  host_show(L, curio_result(L, again, -1), "result");
  printf("result: %s\n", lua_tostring(L, -1));
  host_show(L, curio_detach(L, again, CURIO_DETACH_WAIT), "detach");
  curio_release(k);
  curio_release(again);
  lua_close(L);
  ev_loop_destroy(loop);
  ev_loop_destroy(loop2);
  return 0;
}
