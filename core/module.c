/* core/module.c: luaopen_curio_core, the method tables and metatables.
 * Every function gets the per-state context (struct curio_ctx) as upvalue 1. */
#include <string.h>
#include <lauxlib.h>
#include "kernel.h"
#include "group.h"
#include "task.h"
#include "trap.h"
#include "waitq.h"
#include "errors.h"

static void add_functions(lua_State *L, const luaL_Reg *fns, int ctx) {
  for (; fns->name != NULL; fns++) {
    lua_pushvalue(L, ctx);
    lua_pushcclosure(L, fns->func, 1);
    lua_setfield(L, -2, fns->name);
  }
}

/* Records the metatable on top as the context's `type`. */
void ctx_register(lua_State *L, int ctx, int type) {
  struct curio_ctx *c = lua_touserdata(L, ctx);
  c->mt[type] = lua_topointer(L, -1);
  lua_pushvalue(L, -1);
  c->mt_ref[type] = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Builds metatable `name` (methods as its __index) for context `type`. */
static void new_type(lua_State *L, const char *name, int type, const luaL_Reg *methods, int ctx) {
  luaL_newmetatable(L, name);
  ctx_register(L, ctx, type);
  add_functions(L, methods, ctx);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

int luaopen_curio_core(lua_State *L) {
  struct curio_ctx *ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
  memset(ctx, 0, sizeof *ctx);
  int ctx_idx = lua_gettop(L);

  new_type(L, KERNEL_MT, MT_KERNEL, kernel_methods, ctx_idx);
  new_type(L, WAITQ_MT, MT_WAITQ, waitq_methods, ctx_idx);

  /* Task: C methods in a table that Lua extends (core.task_methods);
   * __index looks there first, then at the task's fields. */
  luaL_newmetatable(L, TASK_MT);
  ctx_register(L, ctx_idx, MT_TASK);
  add_functions(L, task_meta, ctx_idx);
  lua_newtable(L);
  add_functions(L, task_methods, ctx_idx);
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "__methods");
  lua_pushvalue(L, ctx_idx);
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, task_index, 2);
  lua_setfield(L, -3, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -3, "__metatable");
  int methods_idx = lua_gettop(L);
  /* the same metatable plus __gc, given to tasks that failed */
  luaL_newmetatable(L, TASK_GC_MT);
  ctx_register(L, ctx_idx, MT_TASK_GC);
  lua_pushnil(L);
  while (lua_next(L, methods_idx - 1) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  add_functions(L, task_gc_meta, ctx_idx);
  lua_pop(L, 1);

  lua_newtable(L);
  add_functions(L, kernel_functions, ctx_idx);
  add_functions(L, task_functions, ctx_idx);
  add_functions(L, trap_functions, ctx_idx);
  add_functions(L, waitq_functions, ctx_idx);
  add_functions(L, coro_functions, ctx_idx);
  queue_open(L, ctx_idx);
  group_open(L, ctx_idx);
  add_functions(L, errors_functions, ctx_idx);
  lua_pushvalue(L, methods_idx);
  lua_setfield(L, -2, "task_methods");
  return 1;
}
