/* core/sockbuf.c: reads of a socket (or pipe) into a growing buffer owned
 * by a userdata (core.growbuf()): core.read_to_end, everything up to the
 * end (subprocess pipes: check_output), and core.read_frame, a Channel's
 * next message (lua/curio/channel.lua).
 *
 * Rules:
 * 1. What was read stays in the buffer until it is taken: a read that is
 *    interrupted (a timeout, a cancellation) loses nothing, and the next
 *    read goes on from it.
 * 2. Growing moves pages, never bytes (mremap), and the pages are mapped
 *    directly, in huge pages where the system allows: a 4 KiB page fault
 *    costs about 17 us in some VMs, and 100 MiB is 25,600 of them. Output
 *    is touched twice (this buffer, then its Lua string), not four times
 *    as with chunks joined by table.concat.
 * 3. read_frame checks a frame's header against the limit before the
 *    buffer grows for its payload (codec_frame_parse): a header that
 *    claims more never costs memory. The buffer then holds the whole
 *    frame (under BIGBLOCK_MIN bytes: rule 4), so a payload is read by as
 *    few system calls as the socket allows and copied once more, into its
 *    string. Once empty, a buffer over SOCKBUF_KEEP is unmapped: a
 *    connection that carried one big message does not keep its memory.
 * 4. A payload of BIGBLOCK_MIN bytes or more that is not all held yet is
 *    read into the block its string will have (bigblock.c rule 5): what
 *    the buffer holds of it is copied there, the rest is read there, never
 *    more than the payload (what follows is the next frame's), so the
 *    system's copy is the only one. The block stays in the holder while
 *    the frame is incomplete (rule 1); the holder's end frees it.
 * 5. read_value decodes a payload where it lies (no string made for one
 *    under BIGBLOCK_MIN), in a protected call: a payload that is no value
 *    is consumed and reported, never raised, so that the caller closes the
 *    connection saying why.
 * 6. While a big payload is read in place (rule 4) over TCP, the socket's
 *    SO_RCVLOWAT is the smaller of SOCKBUF_LOWAT and what the payload
 *    still lacks (never more: the peer may send nothing after it), so the
 *    system wakes the task once that much has come, not at every segment:
 *    a 16 MiB message then takes about 5 reads instead of 35, and the
 *    receiver about half the CPU (bench/README.md, Channel). The kernel
 *    bounds the value by its receive buffer, which it grows to fit; the
 *    socket's own value is put back once the payload is whole. Unix
 *    sockets' readiness ignores it. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <lauxlib.h>
#include "socket.h"
#include "codec.h"
#include "io.h"
#include "trap.h"
#include "bigblock.h"

#define GROWBUF_MT "curio.growbuf"
#define SOCKBUF_CHUNK 65536               /* the least a read asks for */
#define SOCKBUF_KEEP (32u * 1024 * 1024)  /* rule 3 */
#define SOCKBUF_LOWAT (1 << 20)           /* rule 6 */

/* The bytes not taken yet are p[pos, len); then, while a big payload is
 * read in place (rule 4), its block and the count of its bytes read, after
 * a header of head bytes, and the socket's SO_RCVLOWAT as set (0: not
 * set) and as it was (rule 6). */
struct growbuf {
  char *p;
  size_t pos, len, cap;
  struct bigblock_str big;
  size_t big_read, head;
  int lowat, lowat_was;
};

static const struct wait_kind read_wait = IO_WAIT("read");

static void growbuf_free(struct growbuf *g) {
  if (g->p != NULL) munmap(g->p, g->cap);
  g->p = NULL;
  g->pos = g->len = g->cap = 0;
}

static int growbuf_gc(lua_State *L) {
  struct growbuf *g = luaL_checkudata(L, 1, GROWBUF_MT);
  growbuf_free(g);
  bigblock_release(L, &g->big);
  return 0;
}

/* holder:take() -> every byte not taken yet, emptying the holder. */
static int growbuf_take(lua_State *L) {
  struct growbuf *g = luaL_checkudata(L, 1, GROWBUF_MT);
  lua_pushlstring(L, g->p != NULL ? g->p + g->pos : "", g->len - g->pos);
  growbuf_free(g);
  return 1;
}

/* Grows g to hold cap bytes at least (rule 2); 0, or -1 without memory. */
static int growbuf_reserve(struct growbuf *g, size_t cap) {
  if (g->cap >= cap) return 0;
  char *p = g->p == NULL ? mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                         : mremap(g->p, g->cap, cap, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) return -1;
  madvise(p, cap, MADV_HUGEPAGE);
  g->p = p;
  g->cap = cap;
  return 0;
}

/* holder:put(s): appends s (what a stream had buffered already). */
static int growbuf_put(lua_State *L) {
  struct growbuf *g = luaL_checkudata(L, 1, GROWBUF_MT);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  if (n == 0) return 0;
  if (g->big.block != NULL) return luaL_error(L, "put: a message is being read");
  if (growbuf_reserve(g, g->len + n) < 0) return luaL_error(L, "read: not enough memory");
  memcpy(g->p + g->len, data, n);
  g->len += n;
  return 0;
}

/* holder:size() -> how many bytes it holds, not taken yet (with a big
 * payload's, rule 4). */
static int growbuf_size(lua_State *L) {
  struct growbuf *g = luaL_checkudata(L, 1, GROWBUF_MT);
  size_t big = g->big.block != NULL ? g->head + g->big_read : 0;
  lua_pushinteger(L, (lua_Integer)(g->len - g->pos + big));
  return 1;
}

static int l_growbuf(lua_State *L) {
  struct growbuf *g = lua_newuserdatauv(L, sizeof *g, 0);
  memset(g, 0, sizeof *g);
  if (luaL_newmetatable(L, GROWBUF_MT)) {
    static const luaL_Reg methods[] = {
      {"take", growbuf_take}, {"put", growbuf_put}, {"size", growbuf_size}, {NULL, NULL}
    };
    lua_pushcfunction(L, growbuf_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  return 1;
}

static int is_again(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- reading to the end ---- */

static int read_to_end_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, holder. */
static int do_read_to_end(lua_State *L, struct sock *s) {
  struct growbuf *g = lua_touserdata(L, 2);
  for (;;) {
    if (g->cap - g->len < SOCKBUF_CHUNK) {
      size_t cap = g->cap < (1 << 20) ? (1 << 20) : g->cap * 2;
      if (growbuf_reserve(g, cap) < 0) return luaL_error(L, "read: not enough memory");
    }
    if (s->pushed) { /* (socket.c rule 6: bytes given back come first) */
      g->len += sock_take_back(L, 1, g->p + g->len, g->cap - g->len);
      continue;
    }
    ssize_t n = sock_read(s, g->p + g->len, g->cap - g->len);
    if (n > 0) { g->len += (size_t)n; continue; }
    if (n == 0) {
      lua_remove(L, 1); /* the holder is at 1 now */
      return growbuf_take(L);
    }
    if (errno == EINTR) continue;
    if (!is_again(errno)) sock_raise_os(L, "read", errno);
    return sock_wait_ready(L, s, 0, &read_wait, read_to_end_k);
  }
}

static int read_to_end_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_read_to_end(L, sock_resumed(L, ctx, "read"));
}

/* core.read_to_end(sock, holder) -> everything up to the end. */
static int l_read_to_end(lua_State *L) {
  struct sock *s = sock_check_open(L, "read");
  luaL_checkudata(L, 2, GROWBUF_MT);
  trap_current(L, "read");
  sock_check_idle(L, s, 0, "read");
  lua_settop(L, 2);
  return do_read_to_end(L, s);
}

/* ---- reading a frame ---- */

/* Makes room for `need` bytes from pos and at least a chunk to read into:
 * moves the bytes not taken to the front when they are few (a frame's
 * start), grows the buffer when the frame needs it. 0, or -1. */
static int make_room(struct growbuf *g, size_t need) {
  if (g->pos > 0 && (g->cap - g->len < SOCKBUF_CHUNK || g->cap - g->pos < need)) {
    memmove(g->p, g->p + g->pos, g->len - g->pos);
    g->len -= g->pos;
    g->pos = 0;
  }
  size_t want = need > SOCKBUF_CHUNK ? need : SOCKBUF_CHUNK;
  if (g->cap - g->len < SOCKBUF_CHUNK && want < g->len + SOCKBUF_CHUNK) want = g->len + SOCKBUF_CHUNK;
  return growbuf_reserve(g, want);
}

/* Pushes false, what ended the read ("eof", "malformed", "large") and a
 * count (bytes of the frame held at the end; the size over the limit). */
static int frame_failed(lua_State *L, const char *what, uint64_t n) {
  lua_pushboolean(L, 0);
  lua_pushstring(L, what);
  lua_pushinteger(L, (lua_Integer)n);
  return 3;
}

static int decode_cf(lua_State *L) {
  const char *p = lua_touserdata(L, 1);
  size_t len = (size_t)lua_tointeger(L, 2);
  lua_settop(L, 0);
  return codec_decode(L, p, len, CODEC_VALUES);
}

/* read_value's results for a payload (rule 5): true and its value, or
 * false, "decode" and why it is no one value. */
static int decoded(lua_State *L, const char *payload, size_t size) {
  int top = lua_gettop(L);
  lua_pushboolean(L, 1);
  lua_pushcfunction(L, decode_cf);
  lua_pushlightuserdata(L, (void *)payload);
  lua_pushinteger(L, (lua_Integer)size);
  if (lua_pcall(L, 2, LUA_MULTRET, 0) != LUA_OK) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, "decode");
    lua_rotate(L, -3, 2); /* false, "decode", the message */
    return 3;
  }
  if (lua_gettop(L) == top + 2) return 2;
  lua_settop(L, top);
  lua_pushboolean(L, 0);
  lua_pushstring(L, "decode");
  lua_pushstring(L, "not one value");
  return 3;
}

static int read_frame_k(lua_State *L, int status, lua_KContext ctx);

/* Starts reading the frame at pos, of a hlen-byte header and a payload of
 * size bytes, in place (rule 4); the holder then holds nothing else. */
static void start_big(lua_State *L, struct growbuf *g, int hlen, size_t size) {
  if (bigblock_reserve(L, &g->big, size) < 0) luaL_error(L, "read: not enough memory");
  size_t held = g->len - g->pos - (size_t)hlen; /* (fewer than size) */
  memcpy(g->big.data, g->p + g->pos + hlen, held);
  g->big_read = held;
  g->head = (size_t)hlen;
  g->pos = g->len = 0;
}

/* Rule 6: before a read of a big payload that lacks `rest` bytes. */
static void big_lowat(struct sock *s, struct growbuf *g, size_t rest) {
  if ((s->family != AF_INET && s->family != AF_INET6) || s->type != SOCK_STREAM) return;
  int want = rest < SOCKBUF_LOWAT ? (int)rest : SOCKBUF_LOWAT;
  if (want == g->lowat) return;
  socklen_t n = sizeof g->lowat_was;
  if (g->lowat == 0 && getsockopt(s->io.fd, SOL_SOCKET, SO_RCVLOWAT, &g->lowat_was, &n) < 0) return;
  if (setsockopt(s->io.fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) g->lowat = want;
}

/* Rule 6: the payload is whole. */
static void big_lowat_end(struct sock *s, struct growbuf *g) {
  if (g->lowat == 0) return;
  setsockopt(s->io.fd, SOL_SOCKET, SO_RCVLOWAT, &g->lowat_was, sizeof g->lowat_was);
  g->lowat = 0;
}

/* Stack: sock, holder, limit, whether to decode (read_value). */
static int do_read_frame(lua_State *L, struct sock *s) {
  struct growbuf *g = lua_touserdata(L, 2);
  uint64_t limit = (uint64_t)lua_tointeger(L, 3);
  for (;;) {
    char *to;
    size_t room, held;
    if (g->big.block != NULL) { /* rule 4 */
      held = g->head + g->big_read;
      if (g->big_read == g->big.len) {
        big_lowat_end(s, g);
        g->big_read = g->head = 0;
        bigblock_push(L, &g->big);
        if (!lua_toboolean(L, 4)) return 1;
        size_t len;
        const char *payload = lua_tolstring(L, -1, &len);
        return decoded(L, payload, len);
      }
      to = g->big.data + g->big_read;
      room = g->big.len - g->big_read;
      big_lowat(s, g, room);
    } else {
      held = g->len - g->pos;
      uint64_t size = 0;
      int hlen = g->p != NULL ? codec_frame_parse((unsigned char *)g->p + g->pos, held, limit, &size) : 0;
      if (hlen == -1) return frame_failed(L, "malformed", 0);
      if (hlen == -2) return frame_failed(L, "large", size);
      if (hlen == 0 && g->p == NULL) size = 4;
      size_t need = hlen > 0 ? (size_t)hlen + (size_t)size : (size_t)size; /* (rule 3: size <= limit) */
      if (hlen > 0 && held >= need) {
        const char *payload = g->p + g->pos + hlen;
        int nres = 1;
        if (lua_toboolean(L, 4)) nres = decoded(L, payload, (size_t)size);
        else lua_pushlstring(L, payload, (size_t)size);
        g->pos += need;
        if (g->pos == g->len) {
          g->pos = g->len = 0;
          if (g->cap > SOCKBUF_KEEP) growbuf_free(g);
        }
        return nres;
      }
      if (hlen > 0 && size >= BIGBLOCK_MIN) {
        start_big(L, g, hlen, (size_t)size);
        continue;
      }
      if (make_room(g, need) < 0) return luaL_error(L, "read: not enough memory");
      to = g->p + g->len;
      room = g->cap - g->len;
    }
    size_t n;
    if (s->pushed) { /* (socket.c rule 6: bytes given back come first) */
      n = sock_take_back(L, 1, to, room);
    } else {
      if (s->drained) return sock_wait_ready(L, s, 0, &read_wait, read_frame_k);
      ssize_t got = sock_read(s, to, room);
      if (got == 0) return frame_failed(L, "eof", held);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (!is_again(errno)) sock_raise_os(L, "read", errno);
        return sock_wait_ready(L, s, 0, &read_wait, read_frame_k);
      }
      n = (size_t)got;
      /* a short read took all there was (socket.c rule 2): the next read
       * waits first, saving the system call that would say EAGAIN */
      if (n < room && s->type == SOCK_STREAM) s->drained = 1;
    }
    if (g->big.block != NULL) g->big_read += n;
    else g->len += n;
  }
}

static int read_frame_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  struct sock *s = sock_resumed(L, ctx, "read");
  s->drained = 0;
  return do_read_frame(L, s);
}

static int read_frame_as(lua_State *L, int decode) {
  struct sock *s = sock_check_open(L, "read");
  luaL_checkudata(L, 2, GROWBUF_MT);
  lua_Integer limit = luaL_checkinteger(L, 3);
  luaL_argcheck(L, limit >= 0, 3, "non-negative limit expected");
  trap_current(L, "read");
  sock_check_idle(L, s, 0, "read");
  lua_settop(L, 3);
  lua_pushboolean(L, decode);
  return do_read_frame(L, s);
}

/* core.read_frame(sock, holder, limit) -> the next frame's payload, or
 * false, why ("eof", "malformed", "large"), a count (see frame_failed).
 * The holder keeps what follows the frame, and everything read by a read
 * that was interrupted (rule 1). */
static int l_read_frame(lua_State *L) {
  return read_frame_as(L, 0);
}

/* core.read_value(sock, holder, limit) -> true and the value the next
 * frame holds (decoded where it lies, untrusted: no functions), or false
 * and why as read_frame says it; a payload that is no one value: false,
 * "decode" and the decoder's message (rule 5). */
static int l_read_value(lua_State *L) {
  return read_frame_as(L, 1);
}

const luaL_Reg sockbuf_functions[] = {
  {"growbuf", l_growbuf},
  {"read_to_end", l_read_to_end},
  {"read_frame", l_read_frame},
  {"read_value", l_read_value},
  {NULL, NULL}
};
