/* core/host.c: the embedding API of curio.h. A host kernel is an ordinary
 * kernel (kernel.c) on the program's loop (owns_loop = 0), whose Lua thread
 * is set once, at attach, instead of by each k:run. */
#include <lauxlib.h>
#include "curio.h"
#include "kernel.h"
#include "shutdown.h"
#include "task.h"

curio_kernel *curio_attach(lua_State *L, struct ev_loop *loop) {
  luaL_checkstack(L, 6, "curio_attach");
  lua_getglobal(L, "require");
  lua_pushliteral(L, "curio");
  lua_call(L, 1, 0); /* the Lua layer registers its error classes */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "curio.core");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "clock");
  lua_getupvalue(L, -1, 1); /* the module's context: upvalue 1 of every function */
  struct kernel *k = kernel_create(L, -1, loop, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, k); /* anchored under its address until curio_detach */
  k->L = L;
  lua_pop(L, 3);
  return k;
}

void curio_spawn(lua_State *L, curio_kernel *k, int nargs) {
  int fn = lua_gettop(L) - nargs;
  luaL_checktype(L, fn, LUA_TFUNCTION);
  task_spawn(L, k, fn, nargs);
  lua_replace(L, fn); /* the task where the function was */
  lua_settop(L, fn);
}

size_t curio_tasks(const curio_kernel *k) {
  return k->ntasks;
}

void curio_detach(lua_State *L, curio_kernel *k) {
  if (!k->closed) kernel_shutdown(L, k);
  k->L = NULL;
  luaL_checkstack(L, 1, "curio_detach");
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, k); /* (the kernel may be collected from now on) */
}
