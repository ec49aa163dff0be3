/* core/codec.c: Lua values to bytes and back, the one codec of worker
 * threads (memory buffers) and worker processes (pipes). The Lua API only:
 * it knows nothing of the kernel.
 *
 * Rules:
 * 1. What crosses: nil, booleans, integers and floats exactly (NaN,
 *    infinities, -0.0), strings with any bytes, tables (shared references
 *    and cycles kept), Lua functions (bytecode and upvalues, recursively;
 *    _ENV, or an upvalue holding the sender's globals, is rebound to the
 *    receiver's globals),
 *    C functions without upvalues and shared objects (Universal objects,
 *    by reference: struct codec_shared), these two only within the same
 *    process. Anything else raises an error naming the value's path and
 *    type.
 * 2. The decoder trusts nothing: every length is checked against the bytes
 *    left before anything is allocated or read, nesting is bounded, and
 *    malformed or truncated input raises "malformed data". Functions are
 *    accepted only when the caller says the sender is trusted
 *    (CODEC_FUNCTIONS): Lua does not verify bytecode.
 * 3. Bytes are built in a userdata on the stack, so an error midway leaks
 *    nothing.
 *
 * Format: "CL" 1, varint count, then each value: a tag byte and its body.
 * Tables and functions get ids in the order first met; a later meeting is
 * a reference to the id. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "codec.h"

enum {
  TAG_NIL, TAG_FALSE, TAG_TRUE, TAG_INT, TAG_FLOAT, TAG_STRING, TAG_TABLE,
  TAG_END, TAG_REF, TAG_LFUNC, TAG_GLOBALS, TAG_CFUNC, TAG_SHARED
};

#define CODEC_MAX_DEPTH 200

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
  int portable;     /* for another process: no C function, no shared object */
  int depth;
  int path[CODEC_MAX_DEPTH]; /* stack index of each key on the way down */
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
  grow(w, n);
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

/* Raises "cannot transfer <what> #<arg><path> (<type>)" for the value at
 * idx; a what of "fname: what" puts the function's name first. */
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
  lua_pushfstring(L, "cannot transfer %s #%d%s", what, w->arg, w->depth > 0 ? " " : "");
  luaL_addvalue(&b);
  for (int i = 0; i < w->depth; i++) {
    int k = w->path[i];
    if (w->depth > 12 && i == 6) { /* a long path: its ends say enough */
      luaL_addstring(&b, "...");
      i = w->depth - 6;
      continue;
    }
    if (k < 0) { /* an upvalue: -k is its function's index... named below */
      luaL_addstring(&b, " (upvalue)");
      continue;
    }
    if (lua_type(L, k) == LUA_TSTRING) {
      lua_pushfstring(L, ".%s", lua_tostring(L, k));
    } else if (lua_type(L, k) == LUA_TNUMBER) {
      lua_pushfstring(L, "[%s]", luaL_tolstring(L, k, NULL));
      lua_remove(L, -2);
    } else {
      lua_pushfstring(L, "[%s key]", luaL_typename(L, k));
    }
    luaL_addvalue(&b);
  }
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
  if (lua_iscfunction(L, idx)) {
    if (lua_getupvalue(L, idx, 1) != NULL) refuse(w, idx, "a C function with upvalues");
    if (w->portable) refuse(w, idx, "a C function, to another process");
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
      w->path[w->depth++] = -idx;
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
      if (w->portable) { refuse(w, idx, "a shared object, to another process"); return; }
      grow(w, 17); /* (before retain: nothing may fail once it is taken) */
      void *obj = ops->retain(L, idx);
      uint64_t a = 0, b = 0;
      memcpy(&a, &ops, sizeof ops);
      memcpy(&b, &obj, sizeof obj);
      put_byte(w, TAG_SHARED);
      put_u64(w, a);
      put_u64(w, b);
      break;
    }
    default:
      refuse(w, idx, NULL);
  }
}

void codec_encode(lua_State *L, int first, int n, const char *what) {
  codec_encode_to(L, first, n, what, 0);
}

/* As codec_encode; with `portable`, for another process (rule 1: C
 * functions and shared objects are refused). */
void codec_encode_to(lua_State *L, int first, int n, const char *what, int portable) {
  struct writer w;
  first = lua_absindex(L, first);
  luaL_checkstack(L, 8, "codec");
  memset(&w, 0, sizeof w);
  w.L = L;
  w.what = what;
  w.portable = portable;
  lua_pushnil(L);
  w.buf = lua_gettop(L);
  lua_pushnil(L);
  w.seen = lua_gettop(L);
  w.p = w.small;
  w.cap = sizeof w.small;
  put(&w, "CL\1", 3);
  put_varint(&w, (uint64_t)n);
  for (int i = 0; i < n; i++) {
    w.arg = i + 1;
    encode_value(&w, first + i);
  }
  lua_pushlstring(L, w.p, w.len);
  lua_replace(L, w.buf);
  lua_settop(L, w.buf);
}

/* ---- decoding ---- */

struct reader {
  lua_State *L;
  const unsigned char *p, *end;
  int objects;      /* stack index of a table: id -> object (nil until the
                     * first table or function) */
  lua_Integer nobjects;
  int flags;
  int depth;
};

static int malformed(struct reader *r, const char *why) {
  return luaL_error(r->L, "codec: malformed data (%s)", why);
}

static void need(struct reader *r, size_t n) {
  if ((size_t)(r->end - r->p) < n) malformed(r, "truncated");
}

static int get_byte(struct reader *r) {
  need(r, 1);
  return *r->p++;
}

static uint64_t get_varint(struct reader *r) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    int c = get_byte(r);
    if (shift == 63 && (c & 0x7e)) malformed(r, "varint overflows");
    v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return v;
  }
  malformed(r, "varint too long");
  return 0;
}

static uint64_t get_u64(struct reader *r) {
  need(r, 8);
  uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(&v, r->p, 8);
#else
  for (int i = 0; i < 8; i++) v |= (uint64_t)r->p[i] << (8 * i);
#endif
  r->p += 8;
  return v;
}

static uint32_t get_u32(struct reader *r) {
  need(r, 4);
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)r->p[i] << (8 * i);
  r->p += 4;
  return v;
}

static void decode_value(struct reader *r);

static void register_object(struct reader *r) {
  if (lua_isnil(r->L, r->objects)) { lua_newtable(r->L); lua_replace(r->L, r->objects); }
  lua_pushvalue(r->L, -1);
  lua_rawseti(r->L, r->objects, ++r->nobjects);
}

static void decode_table(struct reader *r) {
  lua_State *L = r->L;
  uint32_t narr = get_u32(r), nhash = get_u32(r);
  /* hints, not trusted: each entry takes two bytes at least */
  size_t left = (size_t)(r->end - r->p) / 2;
  lua_createtable(L, (int)(narr < left ? narr : left) & 0x3fffffff,
                  (int)(nhash < left ? nhash : left) & 0x3fffffff);
  register_object(r);
  for (;;) {
    need(r, 1);
    if (*r->p == TAG_END) { r->p++; return; }
    decode_value(r);
    if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) != lua_tonumber(L, -1)))
      malformed(r, "nil or NaN key");
    decode_value(r);
    lua_rawset(L, -3);
  }
}

struct chunk { const char *p; size_t n; };

static const char *chunk_reader(lua_State *L, void *ud, size_t *size) {
  struct chunk *c = ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size ? c->p : NULL;
}

static void decode_lfunction(struct reader *r) {
  lua_State *L = r->L;
  if (!(r->flags & CODEC_FUNCTIONS)) malformed(r, "a function where none may be");
  uint64_t n = get_u64(r);
  need(r, (size_t)n);
  if (n > (uint64_t)(r->end - r->p)) malformed(r, "truncated");
  struct chunk c = { (const char *)r->p, (size_t)n };
  r->p += n;
  if (lua_load(L, chunk_reader, &c, "=(transferred)", "b") != LUA_OK)
    luaL_error(L, "codec: malformed data (%s)", lua_tostring(L, -1));
  register_object(r);
  int fidx = lua_gettop(L);
  int nups = get_byte(r);
  for (int i = 1; i <= nups; i++) {
    need(r, 1);
    if (*r->p == TAG_GLOBALS) {
      r->p++;
      lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    } else {
      decode_value(r);
    }
    if (lua_setupvalue(L, fidx, i) == NULL) lua_pop(L, 1); /* (not that many) */
  }
}

static void decode_value(struct reader *r) {
  lua_State *L = r->L;
  int tag = get_byte(r);
  switch (tag) {
    case TAG_NIL: lua_pushnil(L); break;
    case TAG_FALSE: lua_pushboolean(L, 0); break;
    case TAG_TRUE: lua_pushboolean(L, 1); break;
    case TAG_INT: lua_pushinteger(L, (lua_Integer)get_u64(r)); break;
    case TAG_FLOAT: {
      uint64_t bits = get_u64(r);
      double d;
      memcpy(&d, &bits, sizeof d);
      lua_pushnumber(L, d);
      break;
    }
    case TAG_STRING: {
      uint64_t len = get_varint(r);
      if (len > (uint64_t)(r->end - r->p)) malformed(r, "truncated");
      lua_pushlstring(L, (const char *)r->p, (size_t)len);
      r->p += len;
      break;
    }
    case TAG_TABLE:
    case TAG_LFUNC:
      if (++r->depth > CODEC_MAX_DEPTH || !lua_checkstack(L, 8)) malformed(r, "nested too deeply");
      if (tag == TAG_TABLE) decode_table(r); else decode_lfunction(r);
      r->depth--;
      break;
    case TAG_REF: {
      uint64_t id = get_varint(r);
      if (id < 1 || id > (uint64_t)r->nobjects || lua_isnil(L, r->objects)) malformed(r, "bad reference");
      lua_rawgeti(L, r->objects, (lua_Integer)id);
      break;
    }
    case TAG_CFUNC: {
      if (!(r->flags & CODEC_FUNCTIONS)) malformed(r, "a function where none may be");
      uint64_t bits = get_u64(r);
      lua_CFunction f;
      memcpy(&f, &bits, sizeof f);
      lua_pushcfunction(L, f);
      break;
    }
    case TAG_SHARED: { /* (from this process only: trusted) */
      if (!(r->flags & CODEC_FUNCTIONS)) malformed(r, "a shared object where none may be");
      uint64_t a = get_u64(r), b = get_u64(r);
      const struct codec_shared *ops;
      void *obj;
      memcpy(&ops, &a, sizeof ops);
      memcpy(&obj, &b, sizeof obj);
      ops->push(L, obj);
      break;
    }
    default:
      malformed(r, "unknown tag");
  }
}

int codec_decode(lua_State *L, const char *data, size_t len, int flags) {
  struct reader r;
  memset(&r, 0, sizeof r);
  r.L = L;
  r.p = (const unsigned char *)data;
  r.end = r.p + len;
  r.flags = flags;
  luaL_checkstack(L, 8, "codec");
  if (len < 3 || memcmp(data, "CL\1", 3) != 0) malformed(&r, "not curio data");
  r.p += 3;
  lua_pushnil(L);
  r.objects = lua_gettop(L);
  uint64_t n = get_varint(&r);
  if (n > (uint64_t)(r.end - r.p)) malformed(&r, "bad count"); /* each value takes a byte */
  if (!lua_checkstack(L, (int)n + 8)) malformed(&r, "too many values");
  for (uint64_t i = 0; i < n; i++) decode_value(&r);
  if (r.p != r.end) malformed(&r, "bytes left over");
  lua_remove(L, r.objects);
  return (int)n;
}

/* ---- releasing what undecoded bytes hold ---- */

struct walker { const unsigned char *p, *end; };

static int walk_take(struct walker *k, size_t n) {
  if ((size_t)(k->end - k->p) < n) return 0;
  k->p += n;
  return 1;
}

static int walk_varint(struct walker *k, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64 && k->p < k->end; shift += 7) {
    int c = *k->p++;
    *v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return 1;
  }
  return 0;
}

static int walk_value(struct walker *k, int depth) {
  if (k->p >= k->end || depth > CODEC_MAX_DEPTH) return 0;
  int tag = *k->p++;
  uint64_t n;
  switch (tag) {
    case TAG_NIL: case TAG_FALSE: case TAG_TRUE: return 1;
    case TAG_INT: case TAG_FLOAT: case TAG_CFUNC: return walk_take(k, 8);
    case TAG_STRING: return walk_varint(k, &n) && n <= (uint64_t)(k->end - k->p) && walk_take(k, (size_t)n);
    case TAG_REF: return walk_varint(k, &n);
    case TAG_TABLE:
      if (!walk_take(k, 8)) return 0;
      for (;;) {
        if (k->p >= k->end) return 0;
        if (*k->p == TAG_END) { k->p++; return 1; }
        if (!walk_value(k, depth + 1) || !walk_value(k, depth + 1)) return 0;
      }
    case TAG_LFUNC: {
      if ((size_t)(k->end - k->p) < 8) return 0;
      uint64_t len = 0;
      for (int i = 0; i < 8; i++) len |= (uint64_t)k->p[i] << (8 * i);
      k->p += 8;
      if (len > (uint64_t)(k->end - k->p) || !walk_take(k, (size_t)len) || k->p >= k->end) return 0;
      int nups = *k->p++;
      for (int i = 0; i < nups; i++) {
        if (k->p >= k->end) return 0;
        if (*k->p == TAG_GLOBALS) { k->p++; continue; }
        if (!walk_value(k, depth + 1)) return 0;
      }
      return 1;
    }
    case TAG_SHARED: {
      if ((size_t)(k->end - k->p) < 16) return 0;
      const struct codec_shared *ops;
      void *obj;
      memcpy(&ops, k->p, sizeof ops);
      memcpy(&obj, k->p + 8, sizeof obj);
      k->p += 16;
      if (ops->release != NULL) ops->release(obj);
      return 1;
    }
    default: return 0;
  }
}

void codec_release(const char *data, size_t len) {
  struct walker k = { (const unsigned char *)data, (const unsigned char *)data + len };
  uint64_t n;
  if (len < 3 || memcmp(data, "CL\1", 3) != 0) return;
  k.p += 3;
  if (!walk_varint(&k, &n)) return;
  for (uint64_t i = 0; i < n; i++)
    if (!walk_value(&k, 0)) return;
}

/* core.encode(...) -> string (tests, benchmarks). */
static int l_encode(lua_State *L) {
  codec_encode(L, 1, lua_gettop(L), "argument");
  return 1;
}

/* core.encode_portable(what, ...) -> string, for another process (worker
 * processes); what names the values in errors ("run_in_process: argument"). */
static int l_encode_portable(lua_State *L) {
  const char *what = luaL_checkstring(L, 1);
  codec_encode_to(L, 2, lua_gettop(L) - 1, what, 1);
  return 1;
}

/* core.decode(s, trusted?) -> the values (functions only when trusted). */
static int l_decode(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  int flags = lua_toboolean(L, 2) ? CODEC_FUNCTIONS : CODEC_VALUES;
  lua_settop(L, 1);
  return codec_decode(L, data, len, flags);
}

const luaL_Reg codec_functions[] = {
  {"encode", l_encode},
  {"encode_portable", l_encode_portable},
  {"decode", l_decode},
  {NULL, NULL}
};
