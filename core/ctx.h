/* core/ctx.h: the per-Lua-state context under every core function, the
 * one way to check a userdata's type, the one way to build a type's
 * metatable (liolib.c's createmeta), and the slots in which features keep
 * their per-state records. The bottom of core/: it names no feature. */
#ifndef CURIO_CTX_H
#define CURIO_CTX_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

struct kernel;

/* Userdata types. The first ones have one metatable each, registered in
 * the context and checked by identity; a group and a queue (whose queues
 * have a metatable per maxsize) start with a tag instead (struct
 * udata_tag), checked the same way through ctx_testudata. */
enum { MT_TASK, MT_TASK_GC, MT_WAITQ, MT_KERNEL, MT_FD, MT_SOCKET, MT_TLS_CONTEXT, MT_TLS_SOCKET,
       MT_IDENTITY_COUNT = MT_TLS_SOCKET + 1,
       MT_GROUP = MT_IDENTITY_COUNT, MT_QUEUE, MT_UNIVERSAL, MT_COUNT };

/* The first field of a tagged userdata: ctx_tag(type). */
struct udata_tag {
  const void *tag;
};

/* A feature's per-state record (ctx_slot_make): kept at the end of the
 * record's userdata, linked from the context. */
struct ctx_slot {
  struct ctx_slot *next;
  const void *key;   /* the address of a static of the feature's file */
  void *data;        /* the record (the userdata's block) */
};

/* Per-Lua-state context, upvalue 1 of every core function. `running` is
 * the kernel whose task is executing now (NULL outside tasks). */
struct curio_ctx {
  struct kernel *running;
  struct kernel *sigint_owner;       /* the kernel watching SIGINT, or NULL */
  const void *mt[MT_IDENTITY_COUNT]; /* metatables, to check userdata by identity */
  int mt_ref[MT_IDENTITY_COUNT];     /* their registry refs, held for the state's life */
  lua_Integer live_tasks;            /* tasks anchored in any kernel of this state (specs' leak check) */
  struct ctx_slot *slots;            /* the features' per-state records */
};

/* The context of the running C function (upvalue 1 of every one). */
static inline struct curio_ctx *ctx_get(lua_State *L) {
  return (struct curio_ctx *)lua_touserdata(L, lua_upvalueindex(1));
}

extern const char ctx_tags[MT_COUNT];
extern const char ctx_registry_key; /* the registry holds the context under its address */
static inline const void *ctx_tag(int type) { return &ctx_tags[type]; }
void *ctx_typeerror(lua_State *L, int idx, const char *tname);

/* The userdata at idx if it is of `type`, else NULL: the one way every
 * file checks a userdata. A type with one metatable is checked by that
 * metatable's identity (luaL_checkudata compares names, a string lookup on
 * every call, which showed in profiles of the queue hot path); a tagged
 * type by its first field. Inline: queues and task joins pass here on
 * every call. The caller has the context as upvalue 1. */
static inline void *ctx_testudata(lua_State *L, int idx, int type) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL) return NULL;
  if (type >= MT_IDENTITY_COUNT)
    return lua_rawlen(L, idx) >= sizeof(struct udata_tag) &&
           ((struct udata_tag *)p)->tag == ctx_tag(type) ? p : NULL;
  if (!lua_getmetatable(L, idx)) return NULL;
  const void *mt = lua_topointer(L, -1);
  lua_pop(L, 1);
  return mt == ctx_get(L)->mt[type] ? p : NULL;
}

static inline void *ctx_checkudata(lua_State *L, int idx, int type, const char *tname) {
  void *p = ctx_testudata(L, idx, type);
  return p != NULL ? p : ctx_typeerror(L, idx, tname);
}
void ctx_setmetatable(lua_State *L, struct curio_ctx *ctx, int type);

void ctx_functions(lua_State *L, const luaL_Reg *fns, int ctx);
void ctx_newtype(lua_State *L, const char *name, const luaL_Reg *methods, int ctx, int type);

/* The record that the feature keyed `key` keeps in this state, or NULL
 * when it made none yet. A short walk: a state has a few such records. */
static inline void *ctx_slot_find(const struct curio_ctx *ctx, const void *key) {
  for (const struct ctx_slot *s = ctx->slots; s != NULL; s = s->next)
    if (s->key == key) return s->data;
  return NULL;
}
void *ctx_slot_make(lua_State *L, struct curio_ctx *ctx, const void *key, size_t size,
                    lua_CFunction gc);
void ctx_push_weak(lua_State *L, const void *key, const char *mode);

#endif
