/* core/bigblock.c: a cache of big freed blocks in a Lua state's allocator,
 * and strings made in place, for sockbuf.c's read_frame.
 *
 * Why: a Channel receiving 16 MiB messages makes each payload a new Lua
 * string. glibc's malloc gives a block that big fresh pages each time (it
 * maps and unmaps it, or trims its heap), and the page faults of 16 MiB
 * cost more than the copy into them (bench/README.md, Channel). Kept, a
 * freed string's block is warm for the next one; and the next payload can
 * be read straight into the block its string will have, so the receiver
 * copies each byte once, as a plain socket copy does.
 *
 * Rules:
 * 1. The cache belongs to one Lua state: it is the ud of the state's
 *    allocator, which bigblock_open wraps at luaopen of curio.core unless
 *    the registry's BIGBLOCK_KEY says it is done (a second load of the
 *    module, or a second copy of the core in one state, installs nothing:
 *    wrappers never stack). A state runs on one thread at a time, so the
 *    cache needs no lock; each state (a worker thread's, a host's) has
 *    its own.
 * 2. Every block comes from the state's original allocator and goes back
 *    to it: the wrapper only delays frees. A block of BIGBLOCK_MIN bytes
 *    or more that Lua frees is kept (at most BIGBLOCK_SLOTS blocks and
 *    BIGBLOCK_CAP bytes; the oldest goes back first) and handed out again
 *    for a new block of its size; or for one it exceeds by an eighth at
 *    most, only when the original is lauxlib's own (l_alloc, whose free
 *    and realloc ignore the size Lua passes: Lua passes the smaller one).
 * 3. A kept block stays resident: the bound of rule 2 is the price. Marked
 *    MADV_FREE (the system could take its pages back under pressure), it
 *    made a receiver of 16 MiB messages six times slower here (28 ms of
 *    CPU a message instead of 4.5, with the same page faults: the first
 *    write to each lazily freed page is what costs, in this VM).
 * 4. lua_close runs the finalizers newest first, CLIBS's (which unloads
 *    core.so) last of all, then frees every object through the allocator.
 *    The anchor, a userdata with a finalizer made at install (so finalized
 *    before CLIBS), gives the kept blocks back and puts the original
 *    allocator back: nothing calls into core.so once it is unloaded. If
 *    another wrapper went over this one since, putting the original back
 *    would cut that one off: the cache then only passes calls through, and
 *    its record (a few hundred bytes) stays allocated.
 * 5. A string in place: bigblock_reserve allocates the block that
 *    lua_pushlstring will ask for (Lua's long-string header, measured at
 *    install, the bytes, a terminating zero); the caller writes the bytes
 *    into it; bigblock_push arms the wrapper, which hands that very block
 *    to the string's allocation, so Lua's copy is a copy onto itself
 *    (glibc's memcpy returns at once when source and destination are one;
 *    ASan and valgrind accept it). Not armed (another allocator, another
 *    header size), the string is made by a plain copy: correct either way.
 *    Armed, the block is the cache's until the string takes it, so a push
 *    that raises leaves it to no one else.
 * 6. A string's block that is new (not kept) and made by l_alloc is
 *    marked MADV_HUGEPAGE where it holds whole 2 MiB pages, before
 *    anything touches it: a read_frame payload's (rule 5), and any new
 *    string of BIGBLOCK_HUGE bytes or more. The system's copy into 2 MiB
 *    pages costs 1.5 ms for 16 MiB here, into 4 KiB pages 2.3 to 2.5 (and
 *    a fault each 4 KiB), and a sender's copy out of them costs less too.
 *    Strings only: Lua writes all of a string's bytes when it makes it, so
 *    no huge page is backed for a few bytes. Only the pages wholly inside
 *    the block, never malloc's headers around; only with l_alloc, whose
 *    malloc keeps no data in a block it gave out.
 * 7. An allocation the original refuses while blocks are kept gives them
 *    all back and is tried once more, before Lua's emergency collection
 *    (which would only fill the cache again): kept memory never makes a
 *    memory error that its release would have avoided. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <lauxlib.h>
#include "bigblock.h"

#define BIGBLOCK_SLOTS 4
#define BIGBLOCK_CAP ((size_t)64 << 20)
#define BIGBLOCK_KEY "curio.bigblock" /* a string: every copy of the core sees it (rule 1) */
#define BIGBLOCK_PROBE 64             /* a long string's length (over LUAI_MAXSHORTLEN) */
#define BIGBLOCK_HUGE ((size_t)4 << 20) /* rule 6: at least one whole 2 MiB page inside */

struct bigblock_cache {
  lua_Alloc f;               /* the original allocator and its ud */
  void *ud;
  int lauxlib;               /* f is l_alloc (rule 2) */
  int passthrough;           /* rule 4 */
  size_t header;             /* rule 5: a long string's block is header + len + 1 bytes (0: unknown) */
  char *adopt;               /* rule 5: the block the next string of adopt_size bytes takes */
  size_t adopt_size;
  int n;                     /* kept blocks, oldest first */
  size_t bytes;
  struct { char *p; size_t size; } kept[BIGBLOCK_SLOTS];
};

static void cache_remove(struct bigblock_cache *c, int i) {
  c->bytes -= c->kept[i].size;
  memmove(&c->kept[i], &c->kept[i + 1], (size_t)(c->n - i - 1) * sizeof c->kept[0]);
  c->n--;
}

/* Gives kept block i back to the original allocator. */
static void cache_drop(struct bigblock_cache *c, int i) {
  c->f(c->ud, c->kept[i].p, c->kept[i].size, 0);
  cache_remove(c, i);
}

/* Keeps p (size bytes, freed by Lua): 1, or 0 when the original is to
 * free it now. */
static int cache_keep(struct bigblock_cache *c, char *p, size_t size) {
  if (c->passthrough || size > BIGBLOCK_CAP) return 0;
  while (c->n == BIGBLOCK_SLOTS || c->bytes + size > BIGBLOCK_CAP) cache_drop(c, 0);
  c->kept[c->n].p = p;
  c->kept[c->n].size = size;
  c->n++;
  c->bytes += size;
  return 1;
}

/* The smallest kept block that may serve size bytes (rule 2), the newest
 * of equals (the likeliest still in the processor's caches: a receiver
 * cycling through 3 blocks of 16 MiB instead of 1 spends 40% more in its
 * reads), taken out of the cache; NULL if none. */
static void *cache_take(struct bigblock_cache *c, size_t size) {
  size_t most = !c->lauxlib ? size : size > SIZE_MAX - size / 8 ? SIZE_MAX : size + size / 8;
  int best = -1;
  for (int i = 0; i < c->n; i++) {
    size_t have = c->kept[i].size;
    if (have >= size && have <= most && (best < 0 || have <= c->kept[best].size)) best = i;
  }
  if (best < 0) return NULL;
  char *p = c->kept[best].p;
  cache_remove(c, best);
  return p;
}

/* Rule 6: asks for huge pages in the 2 MiB-aligned part of a new block. */
static void huge_pages(char *p, size_t size) {
#ifdef MADV_HUGEPAGE
  uintptr_t huge = (uintptr_t)2 << 20;
  uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1), hi = ((uintptr_t)p + size) & ~(huge - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
  (void)p, (void)size;
#endif
}

static void *bigblock_starved(struct bigblock_cache *c, void *ptr, size_t osize, size_t nsize);

/* What the wrapper does for a big block: a new one (ptr NULL) or one
 * freed. Apart from bigblock_alloc, so that its path for every other
 * block saves no registers: about 10 instructions a call there, 25 with
 * the big paths inlined (callgrind). */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static void *bigblock_big(struct bigblock_cache *c, void *ptr, size_t osize, size_t nsize) {
  if (ptr == NULL) {
    if (c->adopt != NULL && nsize == c->adopt_size) { /* rule 5 */
      char *p = c->adopt;
      c->adopt = NULL;
      return p;
    }
    void *p = cache_take(c, nsize);
    if (p != NULL) return p;
    if (osize == LUA_TSTRING && nsize >= BIGBLOCK_HUGE && c->lauxlib) { /* rule 6 */
      p = c->f(c->ud, NULL, osize, nsize);
      if (p == NULL && c->n > 0) p = bigblock_starved(c, NULL, osize, nsize);
      if (p != NULL) huge_pages(p, nsize);
      return p;
    }
  } else if (cache_keep(c, ptr, osize)) {
    return NULL;
  }
  void *p = c->f(c->ud, ptr, osize, nsize);
  if (p == NULL && nsize != 0 && c->n > 0) return bigblock_starved(c, ptr, osize, nsize);
  return p;
}

/* Rule 7: the original failed while blocks are kept. */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static void *bigblock_starved(struct bigblock_cache *c, void *ptr, size_t osize, size_t nsize) {
  while (c->n > 0) cache_drop(c, c->n - 1);
  return c->f(c->ud, ptr, osize, nsize);
}

/* A growth while blocks are kept (rule 7): apart, like bigblock_big, so
 * that the usual path (nothing kept) stays a jump to the original. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void *bigblock_grow_kept(struct bigblock_cache *c, void *ptr, size_t osize, size_t nsize) {
  void *p = c->f(c->ud, ptr, osize, nsize);
  return p != NULL ? p : bigblock_starved(c, ptr, osize, nsize);
}

static void *bigblock_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct bigblock_cache *c = ud;
  if (nsize == 0) {
    if (ptr != NULL && osize >= BIGBLOCK_MIN) return bigblock_big(c, ptr, osize, nsize);
  } else if (ptr == NULL && nsize >= BIGBLOCK_MIN) {
    return bigblock_big(c, ptr, osize, nsize);
  } else if (c->n > 0) {
    return bigblock_grow_kept(c, ptr, osize, nsize);
  }
  return c->f(c->ud, ptr, osize, nsize);
}

/* Measures rule 5's header: the first string allocation during a push of
 * a BIGBLOCK_PROBE-byte string, installed only for that push. */
static void *bigblock_probe(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct bigblock_cache *c = ud;
  if (ptr == NULL && osize == LUA_TSTRING && c->header == 0 && nsize > BIGBLOCK_PROBE)
    c->header = nsize - BIGBLOCK_PROBE - 1;
  return c->f(c->ud, ptr, osize, nsize);
}

/* Whether f is lauxlib's l_alloc: that of a state luaL_newstate makes. */
static int is_lauxlib(lua_Alloc f) {
  lua_State *tmp = luaL_newstate();
  if (tmp == NULL) return 0;
  void *ud;
  lua_Alloc lf = lua_getallocf(tmp, &ud);
  lua_close(tmp);
  return f == lf;
}

/* The anchor's finalizer (rule 4). */
static int bigblock_gc(lua_State *L) {
  struct bigblock_cache **anchor = lua_touserdata(L, 1);
  struct bigblock_cache *c = *anchor;
  if (c == NULL) return 0;
  *anchor = NULL;
  while (c->n > 0) cache_drop(c, c->n - 1);
  if (c->adopt != NULL) c->f(c->ud, c->adopt, c->adopt_size, 0);
  c->adopt = NULL;
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  if ((f == bigblock_alloc || f == bigblock_probe) && ud == c) { /* (a probe that raised) */
    lua_setallocf(L, c->f, c->ud);
    c->f(c->ud, c, sizeof *c, 0);
  } else {
    c->passthrough = 1;
  }
  return 0;
}

void bigblock_open(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, BIGBLOCK_KEY) != LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  struct bigblock_cache **anchor = lua_newuserdatauv(L, sizeof *anchor, 0);
  *anchor = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, bigblock_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, BIGBLOCK_KEY);

  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  struct bigblock_cache *c = f(ud, NULL, 0, sizeof *c);
  if (c == NULL) luaL_error(L, "not enough memory");
  memset(c, 0, sizeof *c);
  c->f = f;
  c->ud = ud;
  c->lauxlib = is_lauxlib(f);
  *anchor = c;

  static const char probe[BIGBLOCK_PROBE] = {0};
  lua_setallocf(L, bigblock_probe, c);
  lua_pushlstring(L, probe, sizeof probe);
  lua_pop(L, 1);
  lua_setallocf(L, bigblock_alloc, c);
}

/* ---- strings in place (rule 5) ---- */

/* The cache of L's allocator, or NULL if it is not this wrapper. */
static struct bigblock_cache *current_cache(lua_State *L, lua_Alloc *f, void **ud) {
  *f = lua_getallocf(L, ud);
  return *f == bigblock_alloc ? *ud : NULL;
}

int bigblock_reserve(lua_State *L, struct bigblock_str *s, size_t len) {
  lua_Alloc f;
  void *ud;
  struct bigblock_cache *c = current_cache(L, &f, &ud);
  size_t header = c != NULL ? c->header : 0;
  memset(s, 0, sizeof *s);
  if (len > SIZE_MAX - header - 1) return -1;
  size_t size = header + len + 1;
  char *block = c != NULL ? cache_take(c, size) : NULL;
  if (block == NULL) {
    block = f(ud, NULL, LUA_TSTRING, size);
    if (block == NULL) return -1;
    if (c != NULL && c->lauxlib) huge_pages(block, size);
  }
  s->block = block;
  s->data = block + header;
  s->size = size;
  s->len = len;
  return 0;
}

void bigblock_push(lua_State *L, struct bigblock_str *s) {
  lua_Alloc f;
  void *ud;
  struct bigblock_cache *c = current_cache(L, &f, &ud);
  struct bigblock_str str = *s;
  if (c != NULL && c->header != 0 && str.data == str.block + c->header) {
    if (c->adopt != NULL) c->f(c->ud, c->adopt, c->adopt_size, 0); /* (a push that raised) */
    c->adopt = str.block;
    c->adopt_size = str.size;
    memset(s, 0, sizeof *s);
    lua_pushlstring(L, str.data, str.len);
    if (c->adopt == str.block) { /* not taken: the string is a copy */
      c->adopt = NULL;
      f(ud, str.block, str.size, 0);
    }
    return;
  }
  lua_pushlstring(L, str.data, str.len); /* (a raise leaves the block to *s) */
  memset(s, 0, sizeof *s);
  f(ud, str.block, str.size, 0);
}

void bigblock_release(lua_State *L, struct bigblock_str *s) {
  if (s->block == NULL) return;
  void *ud;
  lua_Alloc f = lua_getallocf(L, &ud);
  f(ud, s->block, s->size, 0);
  memset(s, 0, sizeof *s);
}

/* core.bigblock_kept() -> how many blocks and bytes L's cache keeps, and
 * whether it may serve a bigger block (rule 2); nil if the state's
 * allocator is not the cache (specs). */
static int l_bigblock_kept(lua_State *L) {
  lua_Alloc f;
  void *ud;
  struct bigblock_cache *c = current_cache(L, &f, &ud);
  if (c == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, c->n);
  lua_pushinteger(L, (lua_Integer)c->bytes);
  lua_pushboolean(L, c->lauxlib);
  return 3;
}

const luaL_Reg bigblock_functions[] = {
  {"bigblock_kept", l_bigblock_kept},
  {NULL, NULL}
};
