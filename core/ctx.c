/* core/ctx.c: the per-state context, the one userdata check, the one
 * metatable builder (liolib.c's createmeta) and the features' per-state
 * slots. Every core function gets the context (struct curio_ctx) as
 * upvalue 1; module.c makes it and registers the functions. */
#include <string.h>
#include <lauxlib.h>
#include "ctx.h"
#include "errors.h"

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
void ctx_functions(lua_State *L, const luaL_Reg *fns, int ctx) {
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
void ctx_newtype(lua_State *L, const char *name, const luaL_Reg *methods, int ctx, int type) {
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

/* Makes the record that the feature keyed `key` keeps in this state:
 * `size` zeroed bytes in a userdata held for the state's life, whose __gc
 * (when gc is not NULL) runs as the state closes and gets the record at
 * index 1. A feature calls this once (ctx_slot_find first), where an
 * error may be raised: it allocates. The slot itself sits after the
 * record, so that lua_touserdata gives the record. */
void *ctx_slot_make(lua_State *L, struct curio_ctx *ctx, const void *key, size_t size,
                    lua_CFunction gc) {
  size_t at = (size + _Alignof(struct ctx_slot) - 1) / _Alignof(struct ctx_slot) *
              _Alignof(struct ctx_slot);
  char *block = lua_newuserdatauv(L, at + sizeof(struct ctx_slot), 0);
  memset(block, 0, at + sizeof(struct ctx_slot));
  if (gc != NULL) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
  }
  luaL_ref(L, LUA_REGISTRYINDEX); /* held for the state's life */
  struct ctx_slot *slot = (struct ctx_slot *)(block + at);
  slot->key = key;
  slot->data = block;
  slot->next = ctx->slots;
  ctx->slots = slot;
  return block;
}

/* Pushes the weak table the registry holds under key, made on first use
 * with __mode `mode` ("k" or "v"): the one way a feature keeps a per-state
 * table of Lua values it must not keep alive. */
void ctx_push_weak(lua_State *L, const void *key, const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}
