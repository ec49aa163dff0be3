/* core/module.c: luaopen_curio_core, the top of core/: it makes the
 * per-state context (ctx.c) and registers every file's functions and
 * types, each a closure over the context, and the Kernel{} options that
 * features read. Nothing calls into this file. */
#define _GNU_SOURCE /* dladdr */
#include <string.h>
#include <dlfcn.h>
#include <lauxlib.h>
#include "curio.h"
#include "ctx.h"
#include "kernel.h"
#include "group.h"
#include "queue.h"
#include "coro.h"
#include "task.h"
#include "trap.h"
#include "waitq.h"
#include "errors.h"
#include "codec.h"
#include "threads.h"
#include "universal.h"
#include "fileio.h"
#include "io.h"
#include "socket.h"
#include "process.h"
#include "signals.h"
#include "inspect.h"
#include "bigblock.h"

/* The Kernel{} options that features read (kernel_option): whole numbers
 * from 1 to the second field. */
static const struct kernel_option feature_options[] = {
  {"threads", 4096},   /* threads.c: a pool's threads */
  {"processes", 4096}, /* process.c, workers.lua: worker processes */
  {NULL, 0}
};

/* The Task types: methods in a table that Lua extends (core.task_methods),
 * found first by __index (task_index), then the task's fields; the second
 * metatable adds __gc, for tasks that failed (task.c). Pushes the methods. */
static void task_types(lua_State *L, int ctx) {
  ctx_newtype(L, TASK_MT, task_meta, ctx, MT_TASK);
  ctx_newtype(L, TASK_GC_MT, task_meta, ctx, MT_TASK_GC);
  luaL_getmetatable(L, TASK_GC_MT);
  ctx_functions(L, task_gc_meta, ctx);
  lua_pop(L, 1);
  lua_newtable(L);
  ctx_functions(L, task_methods, ctx);
  for (int i = 0; i < 2; i++) {
    luaL_getmetatable(L, i == 0 ? TASK_MT : TASK_GC_MT);
    lua_pushvalue(L, ctx);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, task_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
}

/* core.export_symbols(): puts core.so's symbols in the process's global
 * scope, so that curio.tls (tls.so, curio.ssl's C part, a module of its
 * own so that OpenSSL loads only when curio.ssl does), which Lua's
 * require loads next, finds there the core functions it calls: Lua loads
 * a C module with its symbols local. Where the core is linked into a
 * program or libcurio, curio.tls is linked in too (preloaded) and the
 * dlopen finds no library: nothing to do. */
static int l_export_symbols(lua_State *L) {
  (void)L;
  Dl_info info;
  if (dladdr((void *)luaopen_curio_core, &info) != 0 && info.dli_fname != NULL) {
    void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL);
    if (self != NULL) dlclose(self); /* (global while Lua holds it loaded) */
  }
  return 0;
}

int luaopen_curio_core(lua_State *L) {
  bigblock_open(L); /* first: every block after it may be kept */
  struct curio_ctx *ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
  memset(ctx, 0, sizeof *ctx);
  int ctx_idx = lua_gettop(L);
  lua_pushvalue(L, ctx_idx); /* for code without the context as upvalue (universal.c) */
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctx_registry_key);
  kernel_set_options(L, ctx, feature_options);

  ctx_newtype(L, KERNEL_MT, kernel_methods, ctx_idx, MT_KERNEL);
  ctx_newtype(L, WAITQ_MT, waitq_methods, ctx_idx, MT_WAITQ);
  ctx_newtype(L, FD_MT, fileio_handle_methods, ctx_idx, MT_FD);
  task_types(L, ctx_idx);
  int methods_idx = lua_gettop(L);

  lua_newtable(L);
  ctx_functions(L, kernel_functions, ctx_idx);
  ctx_functions(L, task_functions, ctx_idx);
  ctx_functions(L, trap_functions, ctx_idx);
  ctx_functions(L, inspect_functions, ctx_idx);
  ctx_functions(L, waitq_functions, ctx_idx);
  ctx_functions(L, coro_functions, ctx_idx);
  ctx_functions(L, errors_functions, ctx_idx);
  ctx_functions(L, codec_functions, ctx_idx);
  ctx_functions(L, threads_functions, ctx_idx);
  ctx_functions(L, universal_functions, ctx_idx);
  ctx_functions(L, fileio_functions, ctx_idx);
  ctx_functions(L, bigblock_functions, ctx_idx);
  fileio_open(L);
  ctx_functions(L, io_functions, ctx_idx);
  socket_open(L, ctx_idx);
  process_open(L, ctx_idx);
  signal_open(L, ctx_idx);
  queue_open(L, ctx_idx);
  group_open(L, ctx_idx);
  lua_pushvalue(L, methods_idx);
  lua_setfield(L, -2, "task_methods");
  lua_pushcfunction(L, l_export_symbols);
  lua_setfield(L, -2, "export_symbols");
  return 1;
}
