/* tests/host_allocator.c: a host whose Lua state has an allocator of its
 * own, which writes each block's size before the block and checks it on
 * every free and reallocation, so that curio's cache of big blocks
 * (core/bigblock.c) is seen to give every block back to the allocator that
 * made it, with the size it was made with (bigblock.c rule 2: over an
 * allocator not lauxlib's, a block is reused for its own size only). A
 * script makes and drops big strings of one size (how many big blocks
 * the allocator made for them is printed: the cache serves all but the
 * first round's), then of a few sizes, and moves big messages over a
 * Channel, then keeps blocks and asks, under a limit of the allocator's
 * own, for a string that fits only once they are given back (rule 7);
 * then lua_close, after which no block may be left ("live 0").
 * Exits 1 at the first wrong size (spec/bigblock_spec.lua). */
#include "host_util.h"

#define HEAD 16 /* the size, kept before the block (malloc's alignment) */
#define BIG ((size_t)1 << 20)

struct counts {
  long live, big_made;
  size_t bytes, limit; /* bytes held; over limit (0: none) a growth fails */
};

static void *checked_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct counts *c = ud;
  char *head = ptr != NULL ? (char *)ptr - HEAD : NULL;
  if (head != NULL && *(size_t *)head != osize) {
    fprintf(stderr, "wrong size: block of %zu freed or resized as %zu\n", *(size_t *)head, osize);
    exit(1);
  }
  size_t old = head != NULL ? osize : 0;
  if (nsize == 0) {
    if (head != NULL) c->live--;
    c->bytes -= old;
    free(head);
    return NULL;
  }
  if (c->limit != 0 && nsize > old && c->bytes - old + nsize > c->limit) return NULL;
  if (nsize >= BIG && (ptr == NULL || osize < BIG)) c->big_made++;
  char *p = realloc(head, nsize + HEAD);
  if (p == NULL) return NULL;
  if (head == NULL) c->live++;
  c->bytes += nsize - old;
  *(size_t *)p = nsize;
  return p + HEAD;
}

/* The same size again and again: after the first round, the cache serves
 * string.rep's buffer and its string. */
static const char *same_size =
  "for round = 1, 20 do\n"
  "  local s = ('x'):rep(3 * 1048576)\n"
  "  assert(#s == 3 * 1048576)\n"
  "  s = nil\n"
  "  collectgarbage()\n"
  "end\n";

/* Sizes that come back now and then, and big messages over a Channel. */
static const char *mixed =
  "local curio = require 'curio'\n"
  "local core = require 'curio.core'\n"
  "local ok = true\n"
  "for round = 1, 20 do\n"
  "  local n = (1 + round % 3) * 1048576 + round % 2\n"
  "  local s = string.char(65 + round % 26):rep(n)\n"
  "  ok = ok and #s == n and s:byte(n) == 65 + round % 26\n"
  "  s = nil\n"
  "  collectgarbage()\n"
  "end\n"
  "local _, _, any_size = core.bigblock_kept()\n"
  "curio.run(function()\n"
  "  local ch = curio.Channel({ '127.0.0.1', 0 })\n"
  "  local addr = ch:bind()\n"
  "  local accepting = curio.spawn(ch.accept, ch)\n"
  "  local client = curio.Channel(addr):connect()\n"
  "  local server = accepting:join()\n"
  "  ch:close()\n"
  "  local sender = curio.spawn(function()\n"
  "    for i = 1, 8 do client:send_bytes(string.char(96 + i):rep(2 * 1048576 + i)) end\n"
  "  end)\n"
  "  for i = 1, 8 do\n"
  "    local m = server:recv_bytes()\n"
  "    ok = ok and m == string.char(96 + i):rep(2 * 1048576 + i)\n"
  "    collectgarbage()\n"
  "  end\n"
  "  sender:join()\n"
  "  server:close()\n"
  "  client:close()\n"
  "end)\n"
  "return ('%s %s'):format(ok and 'exact' or 'wrong', any_size and 'any-size' or 'same-size')\n";

/* Blocks kept, then a string of another size that fits only once they
 * are given back (bigblock.c rule 7). */
static const char *keep_three =
  "local t = {}\n"
  "for i = 1, 3 do t[i] = ('k'):rep(8 * 1048576 + i) end\n"
  "t = nil\n"
  "collectgarbage() collectgarbage()\n"
  "local blocks = (require 'curio.core').bigblock_kept()\n"
  "return blocks\n";
static const char *other_size =
  "local s = ('o'):rep(10 * 1048576)\n"
  "return #s == 10 * 1048576 and 'made' or 'wrong'\n";

static void run(lua_State *L, const char *code, const char *what) {
  if (luaL_dostring(L, code) != LUA_OK) {
    fprintf(stderr, "%s: %s\n", what, lua_tostring(L, -1));
    exit(2);
  }
}

int main(void) {
  struct counts c = {0, 0, 0, 0};
  lua_State *L = lua_newstate(checked_alloc, &c);
  if (L == NULL) return 2;
  luaL_openlibs(L);
  if (curio_preload(L) != LUA_OK) return 2;
  run(L, "require 'curio'", "require");
  long before = c.big_made;
  run(L, same_size, "same size");
  printf("same size: %ld big blocks made for 40\n", c.big_made - before);
  run(L, mixed, "mixed");
  printf("mixed: %s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
  run(L, keep_three, "keep three");
  printf("kept: %s\n", lua_tointeger(L, -1) >= 3 ? "3 or more" : "fewer");
  lua_pop(L, 1);
  c.limit = c.bytes + 4 * BIG; /* (a 10 MiB string and its buffer need the kept blocks' room) */
  lua_gc(L, LUA_GCSTOP);       /* (so that only curio's cache can give room back) */
  int status = luaL_loadstring(L, other_size);
  if (status == LUA_OK) status = lua_pcall(L, 0, 1, 0);
  printf("other size: %s\n", lua_tostring(L, -1)); /* (or the memory error) */
  lua_pop(L, 1);
  c.limit = 0;
  lua_gc(L, LUA_GCRESTART);
  lua_close(L);
  printf("live %ld\n", c.live);
  return c.live == 0 ? 0 : 1;
}
