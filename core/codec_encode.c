/* core/codec_encode.c: Lua values to bytes (the format and rules are in
 * codec.c and codec_format.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "codec.h"
#include "codec_format.h"

/* ---- encoding ---- */

struct writer {
  lua_State *L;
  int buf;          /* stack index of the userdata holding the bytes, once
                     * they outgrow `small` (most values never do) */
  char *p;
  size_t len, cap;
  char small[256];
  int seen;         /* stack index of a table: object -> id (nil until the
                     * first table or function) */
  lua_Integer nseen;
  const char *what; /* "argument", "result", ... */
  int arg;          /* which of the values is being encoded (1-based) */
  int mode;         /* CODEC_LOCAL, CODEC_PORTABLE (no C function, no shared
                     * object), CODEC_DATA (no function at all) */
  size_t nshared;   /* shared objects written */
  int depth;
  /* the way down, for messages: each step is a table key (its stack
   * index) or a function's upvalue (the function's stack index and the
   * upvalue's number; 0 for a key) */
  int path[CODEC_MAX_DEPTH];
  int upvalue[CODEC_MAX_DEPTH];
};

/* The bytes, once they outgrow the writer's small buffer, are malloc'd
 * memory owned by a box userdata whose __gc frees it: an error midway
 * leaks nothing (rule 3), and realloc can grow big buffers in place. */
struct box { char *p; };

static int box_gc(lua_State *L) {
  struct box *b = lua_touserdata(L, 1);
  free(b->p);
  b->p = NULL;
  return 0;
}

static void grow(struct writer *w, size_t more) {
  if (w->cap - w->len >= more) return;
  size_t cap = w->cap;
  while (cap - w->len < more) {
    if (cap > ((size_t)-1) / 2) luaL_error(w->L, "codec: data too large");
    cap *= 2;
  }
  struct box *b = lua_touserdata(w->L, w->buf);
  if (b == NULL) { /* first growth: make the box */
    b = lua_newuserdatauv(w->L, sizeof *b, 0);
    b->p = NULL;
    if (luaL_newmetatable(w->L, "curio.codec.box")) {
      lua_pushcfunction(w->L, box_gc);
      lua_setfield(w->L, -2, "__gc");
    }
    lua_setmetatable(w->L, -2);
    lua_replace(w->L, w->buf);
  }
  char *p = realloc(b->p, cap);
  if (p == NULL) luaL_error(w->L, "codec: not enough memory");
  if (b->p == NULL && w->len > 0) memcpy(p, w->p, w->len); /* from `small` */
  b->p = p;
  w->p = p;
  w->cap = cap;
}

static void put(struct writer *w, const void *data, size_t n) {
  if (w->cap - w->len < n) grow(w, n); /* (the test here: most puts fit) */
  memcpy(w->p + w->len, data, n);
  w->len += n;
}

static void put_byte(struct writer *w, int byte) {
  unsigned char c = (unsigned char)byte;
  put(w, &c, 1);
}

static void put_varint(struct writer *w, uint64_t v) {
  unsigned char bytes[10];
  int n = 0;
  do {
    bytes[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v != 0) bytes[n] |= 0x80;
    n++;
  } while (v != 0);
  put(w, bytes, (size_t)n);
}

static void put_u64(struct writer *w, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  put(w, &v, 8); /* (the format is little-endian) */
#else
  unsigned char bytes[8];
  for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(v >> (8 * i));
  put(w, bytes, 8);
#endif
}

static void patch_u32(struct writer *w, size_t at, uint32_t v) {
  for (int i = 0; i < 4; i++) w->p[at + (size_t)i] = (char)(unsigned char)(v >> (8 * i));
}

/* Adds one key of a path: .name, ["text"], [3], [table key]. */
static void add_key(lua_State *L, luaL_Buffer *b, int k) {
  if (lua_type(L, k) == LUA_TSTRING) {
    size_t len;
    const char *key = lua_tolstring(L, k, &len);
    int plain = len > 0 && len <= 40 && strlen(key) == len && !(key[0] >= '0' && key[0] <= '9');
    for (size_t i = 0; plain && i < len; i++)
      plain = key[i] == '_' || (key[i] >= 'a' && key[i] <= 'z') || (key[i] >= 'A' && key[i] <= 'Z') ||
              (key[i] >= '0' && key[i] <= '9');
    if (plain) lua_pushfstring(L, ".%s", key);
    else lua_pushfstring(L, "[\"%s\"]", len > 40 || strlen(key) != len ? "..." : key);
  } else if (lua_type(L, k) == LUA_TNUMBER) {
    luaL_tolstring(L, k, NULL);
    lua_pushfstring(L, "[%s]", lua_tostring(L, -1));
    lua_remove(L, -2);
  } else {
    lua_pushfstring(L, "[%s key]", luaL_typename(L, k));
  }
  luaL_addvalue(b);
}

/* Raises "cannot transfer <what> #<arg><path> (<type>)" for the value at
 * idx; a what of "fname: what" puts the function's name first. The path
 * names each upvalue and the keys down to the value, as Lua's messages do:
 * "argument #1 upvalue 'cfg' field 'hosts[2].sock' (userdata)". */
static int refuse(struct writer *w, int idx, const char *why) {
  lua_State *L = w->L;
  luaL_Buffer b;
  const char *tname = luaL_typename(L, idx);
  const char *what = w->what, *colon = strstr(what, ": ");
  luaL_buffinit(L, &b);
  if (colon != NULL) {
    lua_pushlstring(L, what, (size_t)(colon - what) + 2);
    luaL_addvalue(&b);
    what = colon + 2;
  }
  lua_pushfstring(L, "cannot transfer %s #%d", what, w->arg);
  luaL_addvalue(&b);
  int in_field = 0; /* inside a field '...' run of keys */
  for (int i = 0; i < w->depth; i++) {
    if (w->depth > 12 && i == 6) { /* a long path: its ends say enough */
      luaL_addstring(&b, in_field ? "' ..." : " ...");
      in_field = 0;
      i = w->depth - 6;
    }
    if (w->upvalue[i] > 0) {
      const char *name = lua_getupvalue(L, w->path[i], w->upvalue[i]);
      if (name != NULL) lua_pop(L, 1);
      if (in_field) luaL_addchar(&b, '\'');
      in_field = 0;
      if (name != NULL && name[0] != '\0') lua_pushfstring(L, " upvalue '%s'", name);
      else lua_pushfstring(L, " upvalue #%d", w->upvalue[i]); /* (stripped of debug names) */
      luaL_addvalue(&b);
      continue;
    }
    if (!in_field) luaL_addstring(&b, " field '");
    size_t before = luaL_bufflen(&b);
    add_key(L, &b, w->path[i]);
    /* a run starts without its dot: field 'a.b', not field '.a.b' */
    if (!in_field && b.b[before] == '.') {
      memmove(b.b + before, b.b + before + 1, luaL_bufflen(&b) - before - 1);
      luaL_buffsub(&b, 1);
    }
    in_field = 1;
  }
  if (in_field) luaL_addchar(&b, '\'');
  lua_pushfstring(L, " (%s%s%s)", tname, why ? ": " : "", why ? why : "");
  luaL_addvalue(&b);
  luaL_pushresult(&b);
  return lua_error(L);
}

static void encode_value(struct writer *w, int idx);

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud) {
  (void)L;
  put((struct writer *)ud, p, n);
  return 0;
}

/* Registers the object at idx as met (next id); returns 1 if it had been
 * met already (then a reference was written). */
static int seen_before(struct writer *w, int idx) {
  lua_State *L = w->L;
  if (lua_isnil(L, w->seen)) { lua_newtable(L); lua_replace(L, w->seen); }
  lua_pushvalue(L, idx);
  if (lua_rawget(L, w->seen) == LUA_TNUMBER) {
    lua_Integer id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    put_byte(w, TAG_REF);
    put_varint(w, (uint64_t)id);
    return 1;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, ++w->nseen);
  lua_rawset(L, w->seen);
  return 0;
}

static void encode_table(struct writer *w, int idx) {
  lua_State *L = w->L;
  if (seen_before(w, idx)) return;
  put_byte(w, TAG_TABLE);
  /* size hints for the decoder's lua_createtable, patched once counted */
  size_t at = w->len;
  put(w, "\0\0\0\0\0\0\0\0", 8);
  lua_Unsigned narr = lua_rawlen(L, idx), nall = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int key = lua_gettop(L) - 1;
    w->upvalue[w->depth] = 0;
    w->path[w->depth++] = key;
    encode_value(w, key);
    encode_value(w, key + 1);
    w->depth--;
    lua_pop(L, 1);
    nall++;
  }
  put_byte(w, TAG_END);
  if (narr > nall) narr = nall;
  patch_u32(w, at, narr > 0xffffffffu ? 0xffffffffu : (uint32_t)narr);
  patch_u32(w, at + 4, nall - narr > 0xffffffffu ? 0xffffffffu : (uint32_t)(nall - narr));
}

static void encode_function(struct writer *w, int idx) {
  lua_State *L = w->L;
  if (w->mode == CODEC_DATA) refuse(w, idx, NULL); /* (data only: no code crosses) */
  if (lua_iscfunction(L, idx)) {
    if (lua_getupvalue(L, idx, 1) != NULL) refuse(w, idx, "a C function with upvalues");
    if (w->mode != CODEC_LOCAL) refuse(w, idx, "a C function, to another process");
    lua_CFunction f = lua_tocfunction(L, idx);
    put_byte(w, TAG_CFUNC);
    uint64_t bits = 0;
    memcpy(&bits, &f, sizeof f < sizeof bits ? sizeof f : sizeof bits);
    put_u64(w, bits);
    return;
  }
  if (seen_before(w, idx)) return;
  put_byte(w, TAG_LFUNC);
  size_t at = w->len;
  put_u64(w, 0); /* the bytecode's length, patched below */
  lua_pushvalue(L, idx);
  lua_dump(L, dump_writer, w, 0);
  lua_pop(L, 1);
  uint64_t n = w->len - at - 8;
  for (int i = 0; i < 8; i++) w->p[at + (size_t)i] = (char)(unsigned char)(n >> (8 * i));
  int nups = 0;
  while (lua_getupvalue(L, idx, nups + 1) != NULL) { lua_pop(L, 1); nups++; }
  if (nups > 255) refuse(w, idx, "too many upvalues");
  put_byte(w, nups);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  int globals = lua_gettop(L);
  for (int i = 1; i <= nups; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    if (lua_rawequal(L, -1, globals) || (name != NULL && strcmp(name, "_ENV") == 0)) {
      put_byte(w, TAG_GLOBALS);
    } else {
      w->upvalue[w->depth] = i;
      w->path[w->depth++] = idx;
      encode_value(w, lua_gettop(L));
      w->depth--;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void encode_value(struct writer *w, int idx) {
  lua_State *L = w->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_byte(w, TAG_NIL); break;
    case LUA_TBOOLEAN: put_byte(w, lua_toboolean(L, idx) ? TAG_TRUE : TAG_FALSE); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        put_byte(w, TAG_INT);
        put_u64(w, (uint64_t)lua_tointeger(L, idx));
      } else {
        double d = lua_tonumber(L, idx);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        put_byte(w, TAG_FLOAT);
        put_u64(w, bits);
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      put_byte(w, TAG_STRING);
      put_varint(w, len);
      put(w, s, len);
      break;
    }
    case LUA_TTABLE:
    case LUA_TFUNCTION:
      if (w->depth >= CODEC_MAX_DEPTH - 1) refuse(w, idx, "nested too deeply");
      if (!lua_checkstack(L, 8)) refuse(w, idx, "nested too deeply");
      if (lua_type(L, idx) == LUA_TTABLE) encode_table(w, idx); else encode_function(w, idx);
      break;
    case LUA_TUSERDATA: {
      const struct codec_shared *ops = NULL;
      if (lua_getmetatable(L, idx)) {
        if (lua_getfield(L, -1, CODEC_SHARED) == LUA_TLIGHTUSERDATA) ops = lua_touserdata(L, -1);
        lua_pop(L, 2);
      }
      if (ops == NULL) { refuse(w, idx, NULL); return; }
      if (w->mode != CODEC_LOCAL) { refuse(w, idx, "a shared object, to another process"); return; }
      grow(w, 17); /* (before retain: nothing may fail once it is taken) */
      void *obj = ops->retain(L, idx);
      uint64_t a = 0, b = 0;
      memcpy(&a, &ops, sizeof ops);
      memcpy(&b, &obj, sizeof obj);
      put_byte(w, TAG_SHARED);
      put_u64(w, a);
      put_u64(w, b);
      w->nshared++;
      break;
    }
    default:
      refuse(w, idx, NULL);
  }
}

/* Encodes the n values from stack index first, numbered from `number` in
 * messages, after `head` bytes left for a frame's header (codec.h); leaves
 * the writer's bytes in w (the box, if any, at w->buf). Returns how many
 * shared objects the bytes hold (each holds a reference: codec_release). */
static size_t encode_values(struct writer *w, lua_State *L, int first, int n, const char *what,
                            int mode, int number, size_t head) {
  first = lua_absindex(L, first);
  luaL_checkstack(L, 8, "codec");
  memset(w, 0, sizeof *w);
  w->L = L;
  w->what = what;
  w->mode = mode;
  lua_pushnil(L);
  w->buf = lua_gettop(L);
  lua_pushnil(L);
  w->seen = lua_gettop(L);
  w->p = w->small;
  w->cap = sizeof w->small;
  grow(w, head);
  w->len = head;
  put(w, CODEC_MAGIC, CODEC_MAGIC_LEN);
  put_varint(w, (uint64_t)n);
  for (int i = 0; i < n; i++) {
    w->arg = number + i;
    encode_value(w, first + i);
  }
  return w->nshared;
}

/* Encodes the n values from stack index first (see codec.h). `mode`:
 * CODEC_LOCAL, CODEC_PORTABLE or CODEC_DATA (rule 1). */
size_t codec_encode(lua_State *L, int first, int n, const char *what, int mode) {
  return codec_encode_from(L, first, n, what, mode, 1);
}

/* As codec_encode, the values numbered from `number` in messages (a reply
 * whose first value is a flag numbers it 0: the results are #1 on). */
size_t codec_encode_from(lua_State *L, int first, int n, const char *what, int mode, int number) {
  struct writer w;
  size_t nshared = encode_values(&w, L, first, n, what, mode, number, 0);
  lua_pushlstring(L, w.p, w.len);
  lua_replace(L, w.buf);
  lua_settop(L, w.buf);
  return nshared;
}

/* Encodes the value at idx into w in CODEC_DATA mode behind its size
 * prefix; returns where the frame starts in w, its length in *len. */
static char *build_frame(struct writer *w, lua_State *L, int idx, const char *what, size_t *len) {
  idx = lua_absindex(L, idx);
  encode_values(w, L, idx, 1, what, CODEC_DATA, 1, CODEC_FRAME_HEAD_MAX);
  size_t size = w->len - CODEC_FRAME_HEAD_MAX;
  unsigned char head[CODEC_FRAME_HEAD_MAX];
  size_t n = codec_frame_header(size, head);
  char *start = w->p + CODEC_FRAME_HEAD_MAX - n;
  memcpy(start, head, n);
  *len = size + n;
  return start;
}

/* Pushes one frame holding the value at idx in CODEC_DATA mode: its size
 * prefix (codec_frame_header) and the codec bytes, built in one buffer so
 * that a big value is copied once into the string, never joined. */
void codec_encode_frame(lua_State *L, int idx, const char *what) {
  struct writer w;
  size_t len;
  char *start = build_frame(&w, L, idx, what, &len);
  lua_pushlstring(L, start, len);
  lua_replace(L, w.buf);
  lua_settop(L, w.buf);
}

/* As codec_encode_frame, the frame handed to take where it was built. */
void codec_encode_frame_to(lua_State *L, int idx, const char *what,
                           int (*take)(void *ud, const char *p, size_t n), void *ud) {
  struct writer w;
  size_t len;
  char *start = build_frame(&w, L, idx, what, &len);
  int failed = take(ud, start, len);
  lua_settop(L, w.buf); /* (the box, if any: freed by its __gc) */
  if (failed) luaL_error(L, "%s: not enough memory", what);
}
