/* core/module.c: luaopen_curio_core, the per-state context, the one
 * userdata check and the one metatable builder (liolib.c's createmeta).
 * Every function gets the context (struct curio_ctx) as upvalue 1. */
#include <string.h>
#include <lauxlib.h>
#include "module.h"
#include "kernel.h"
#include "group.h"
#include "queue.h"
#include "coro.h"
#include "task.h"
#include "trap.h"
#include "lwaitq.h"
#include "errors.h"
#include "codec.h"
#include "threads.h"
#include "universal.h"
#include "fileio.h"
#include "io.h"
#include "socket.h"
#include "process.h"

/* Tags of the tagged types: their addresses mark a userdata's type. */
const char ctx_tags[MT_COUNT];
const char ctx_registry_key = 'C';

void *ctx_typeerror(lua_State *L, int idx, const char *tname) {
  errors_objecterror(L, idx, tname);
  return NULL;
}

/* Sets the metatable of the userdata on top to that of `type`. */
void ctx_setmetatable(lua_State *L, struct curio_ctx *ctx, int type) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->mt_ref[type]);
  lua_setmetatable(L, -2);
}

/* Sets each function of fns into the table on top, as a closure over the
 * context at index ctx. */
void module_functions(lua_State *L, const luaL_Reg *fns, int ctx) {
  for (; fns->name != NULL; fns++) {
    lua_pushvalue(L, ctx);
    lua_pushcclosure(L, fns->func, 1);
    lua_setfield(L, -2, fns->name);
  }
}

/* Builds the metatable `name` (luaL_newmetatable): the entries of methods
 * named "__..." are its metamethods, the others go to the table that is
 * its __index; "__metatable" locks it. With type >= 0 (a type checked by
 * identity) the context records it. Leaves the stack as it was. */
void module_newtype(lua_State *L, const char *name, const luaL_Reg *methods, int ctx, int type) {
  ctx = lua_absindex(L, ctx);
  luaL_newmetatable(L, name);
  lua_newtable(L);
  for (const luaL_Reg *m = methods; m->name != NULL; m++) {
    lua_pushvalue(L, ctx);
    lua_pushcclosure(L, m->func, 1);
    lua_setfield(L, strncmp(m->name, "__", 2) == 0 ? -3 : -2, m->name);
  }
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  if (type >= 0) {
    struct curio_ctx *c = lua_touserdata(L, ctx);
    c->mt[type] = lua_topointer(L, -1);
    lua_pushvalue(L, -1);
    c->mt_ref[type] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
}

/* The Task types: methods in a table that Lua extends (core.task_methods),
 * found first by __index (task_index), then the task's fields; the second
 * metatable adds __gc, for tasks that failed (task.c). Pushes the methods. */
static void task_types(lua_State *L, int ctx) {
  module_newtype(L, TASK_MT, task_meta, ctx, MT_TASK);
  module_newtype(L, TASK_GC_MT, task_meta, ctx, MT_TASK_GC);
  luaL_getmetatable(L, TASK_GC_MT);
  module_functions(L, task_gc_meta, ctx);
  lua_pop(L, 1);
  lua_newtable(L);
  module_functions(L, task_methods, ctx);
  for (int i = 0; i < 2; i++) {
    luaL_getmetatable(L, i == 0 ? TASK_MT : TASK_GC_MT);
    lua_pushvalue(L, ctx);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, task_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
}

int luaopen_curio_core(lua_State *L) {
  struct curio_ctx *ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
  memset(ctx, 0, sizeof *ctx);
  int ctx_idx = lua_gettop(L);
  lua_pushvalue(L, ctx_idx); /* for code without the context as upvalue (universal.c) */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_registry_key);

  module_newtype(L, KERNEL_MT, kernel_methods, ctx_idx, MT_KERNEL);
  module_newtype(L, WAITQ_MT, lwaitq_methods, ctx_idx, MT_WAITQ);
  module_newtype(L, FD_MT, fileio_handle_methods, ctx_idx, MT_FD);
  task_types(L, ctx_idx);
  int methods_idx = lua_gettop(L);

  lua_newtable(L);
  module_functions(L, kernel_functions, ctx_idx);
  module_functions(L, task_functions, ctx_idx);
  module_functions(L, trap_functions, ctx_idx);
  module_functions(L, lwaitq_functions, ctx_idx);
  module_functions(L, coro_functions, ctx_idx);
  module_functions(L, errors_functions, ctx_idx);
  module_functions(L, codec_functions, ctx_idx);
  module_functions(L, threads_functions, ctx_idx);
  module_functions(L, universal_functions, ctx_idx);
  module_functions(L, fileio_functions, ctx_idx);
  fileio_open(L);
  module_functions(L, io_functions, ctx_idx);
  socket_open(L, ctx_idx);
  process_open(L, ctx_idx);
  queue_open(L, ctx_idx);
  group_open(L, ctx_idx);
  lua_pushvalue(L, methods_idx);
  lua_setfield(L, -2, "task_methods");
  return 1;
}
