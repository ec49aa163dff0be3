/* core/codec_decode.c: bytes to Lua values, and the walk over undecoded
 * bytes that finds the shared objects they hold (the format and rules are
 * in codec.c and codec_format.h). */
#include <stdint.h>
#include <string.h>
#include "codec.h"
#include "codec_format.h"

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
  if (len < CODEC_MAGIC_LEN || memcmp(data, CODEC_MAGIC, CODEC_MAGIC_LEN) != 0) malformed(&r, "not curio data");
  r.p += CODEC_MAGIC_LEN;
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

/* ---- the shared objects undecoded bytes hold ---- */

struct walker {
  const unsigned char *p, *end;
  void (*fn)(const struct codec_shared *ops, void *obj, void *ud);
  void *ud;
};

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
      k->fn(ops, obj, k->ud);
      return 1;
    }
    default: return 0;
  }
}

/* Calls fn for every shared object in data (stops at malformed data). */
void codec_shared_each(const char *data, size_t len,
                       void (*fn)(const struct codec_shared *ops, void *obj, void *ud), void *ud) {
  struct walker k = { (const unsigned char *)data, (const unsigned char *)data + len, fn, ud };
  uint64_t n;
  if (len < CODEC_MAGIC_LEN || memcmp(data, CODEC_MAGIC, CODEC_MAGIC_LEN) != 0) return;
  k.p += CODEC_MAGIC_LEN;
  if (!walk_varint(&k, &n)) return;
  for (uint64_t i = 0; i < n; i++)
    if (!walk_value(&k, 0)) return;
}

static void release_one(const struct codec_shared *ops, void *obj, void *ud) {
  (void)ud;
  if (ops->release != NULL) ops->release(obj);
}

void codec_release(const char *data, size_t len) {
  codec_shared_each(data, len, release_one, NULL);
}
