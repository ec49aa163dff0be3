/* core/sockout.c: writes gathered on a socket or pipe, for a Channel's
 * sends (lua/curio/channel.lua rule 8): many small messages leave in one
 * system call instead of one each.
 *
 * Rules:
 * 1. core.out_frame(sock, value, what) and core.out_bytes(sock, data)
 *    append one whole frame (its size prefix, then the payload: codec.h)
 *    to the socket's out buffer and return at once, without a system
 *    call. A frame is appended whole or not at all: an encoding error
 *    appends nothing.
 * 2. The buffer goes to the system before the kernel next polls (a
 *    kernel_flush, run by the prepare watcher once the ready tasks ran):
 *    one write for every frame gathered since. What the system does not
 *    take then is written as the descriptor becomes writable, by a
 *    watcher of the buffer's own: no task has to be there.
 * 3. core.out_flush(sock, high) writes in the calling task and waits
 *    while the buffer holds `high` bytes or more: a send calls it with
 *    SOCKOUT_HIGH before appending (the sender waits, its frame not yet
 *    queued, so an interrupted send queued nothing), Connection:flush
 *    with 1 (everything taken by the system). Interrupted (a timeout, a
 *    cancellation), it loses nothing: what was written is gone from the
 *    buffer, the rest stays, whole frames behind it.
 * 4. A write that fails (the peer gone) drops the buffer, whose frames
 *    cannot arrive, and keeps the error: the next out_frame, out_bytes or
 *    out_flush raises it (an OSError naming "send").
 * 5. The last write, when the socket closes (out_close, close, __gc) or
 *    the kernel is freed: what the system takes at once, without waiting;
 *    the rest is dropped (close never waits, channel.lua rule 7; flush
 *    first to be sure).
 * 6. The buffer is the socket's (struct sock's out), made on first use
 *    and freed with the socket; its memory is given back when it empties
 *    after holding more than SOCKOUT_KEEP. It is in its kernel's flush
 *    list exactly while it holds bytes; the kernel it was last used in is
 *    the one that writes it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "socket.h"
#include "codec.h"
#include "io.h"
#include "kernel.h"
#include "trap.h"
#include "ctx.h"
#include "errors.h"

#define SOCKOUT_KEEP (1u << 20)   /* rule 6 */
#define SOCKOUT_FIRST 16384       /* the first buffer's size */

struct sockout {
  struct kernel_flush flush; /* in k->flushes while it holds bytes (rule 6) */
  struct kernel *k;          /* the kernel that writes it, or NULL */
  ev_io wr;                  /* rule 2: the rest, as the descriptor takes it */
  struct sock *s;
  char *p;                   /* the bytes not written yet are p[pos, len) */
  size_t pos, len, cap;
  int err;                   /* rule 4: the errno of a failed write, or 0 */
};

static const struct wait_kind flush_wait = IO_WAIT("send");

static size_t pending(const struct sockout *o) {
  return o->len - o->pos;
}

/* Leaves the kernel's list and stops the watcher: nothing to write. */
static void out_unlink(struct sockout *o) {
  if (o->k != NULL && ev_is_active(&o->wr)) ev_io_stop(o->k->loop, &o->wr);
  list_remove(&o->flush.node);
  o->k = NULL;
}

static void out_empty(struct sockout *o) {
  o->pos = o->len = 0;
  if (o->cap > SOCKOUT_KEEP) {
    free(o->p);
    o->p = NULL;
    o->cap = 0;
  }
  out_unlink(o);
}

/* Writes what the descriptor takes now. Returns 0 (all written, or the
 * descriptor full: errno EAGAIN) or -1 (rule 4: o->err set, the buffer
 * dropped). */
static int out_write(struct sockout *o) {
  struct sock *s = o->s;
  while (pending(o) > 0) {
    if (s->io.fd < 0) { o->err = EBADF; break; }
    size_t want = pending(o);
    ssize_t n = sock_write(s, o->p + o->pos, want);
    if (n > 0) {
      o->pos += (size_t)n;
      if ((size_t)n < want && s->type == SOCK_STREAM) return 0; /* (full: as EAGAIN, a call saved) */
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    o->err = n < 0 ? errno : EPIPE;
    break;
  }
  if (o->err == 0 && pending(o) > 0) return 0;
  out_empty(o);
  return o->err != 0 ? -1 : 0;
}

static void out_wr_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct sockout *o = (struct sockout *)((char *)w - offsetof(struct sockout, wr));
  (void)loop; (void)revents;
  if (o->s->io.fd != w->fd) { /* closed under it (rule 5 ran): not ours */
    ev_io_stop(loop, w);
    return;
  }
  out_write(o);
}

/* Rule 2, and rule 5 when the kernel is freed (closing). */
static void out_flush_run(struct kernel *k, struct kernel_flush *f, int closing) {
  struct sockout *o = (struct sockout *)((char *)f - offsetof(struct sockout, flush));
  (void)k;
  if (closing) {
    out_write(o);
    out_empty(o);
    return;
  }
  if (ev_is_active(&o->wr)) return; /* the watcher writes when it can */
  if (out_write(o) < 0 || pending(o) == 0) return;
  ev_io_set(&o->wr, o->s->io.fd, EV_WRITE);
  ev_io_start(o->k->loop, &o->wr);
}

void sockout_release(struct sock *s) {
  struct sockout *o = s->out;
  if (o == NULL) return;
  if (s->io.fd >= 0) out_write(o);
  out_unlink(o);
  free(o->p);
  free(o);
  s->out = NULL;
}

/* The socket's buffer, made on first use (raises without memory). */
static struct sockout *out_get(lua_State *L, struct sock *s) {
  if (s->out != NULL) return s->out;
  struct sockout *o = calloc(1, sizeof *o);
  if (o == NULL) luaL_error(L, "send: not enough memory");
  list_init(&o->flush.node);
  o->flush.run = out_flush_run;
  ev_io_init(&o->wr, out_wr_cb, -1, EV_WRITE);
  o->s = s;
  s->out = o;
  return o;
}

/* Rule 4: raises the error a write met, once per call until the
 * connection closes (the buffer stays unusable). */
static void out_check(lua_State *L, struct sockout *o) {
  if (o->err != 0) sock_raise_os(L, "send", o->err);
}

/* Room for n more bytes at len; 0, or -1 without memory. */
static int out_reserve(struct sockout *o, size_t n) {
  if (o->pos > 0 && o->pos == o->len) o->pos = o->len = 0;
  if (o->cap - o->len >= n) return 0;
  if (o->pos > 0) { /* (the written bytes' room first) */
    memmove(o->p, o->p + o->pos, pending(o));
    o->len -= o->pos;
    o->pos = 0;
    if (o->cap - o->len >= n) return 0;
  }
  size_t cap = o->cap < SOCKOUT_FIRST ? SOCKOUT_FIRST : o->cap;
  while (cap - o->len < n) {
    if (cap > ((size_t)-1) / 2) return -1;
    cap *= 2;
  }
  char *p = realloc(o->p, cap);
  if (p == NULL) return -1;
  o->p = p;
  o->cap = cap;
  return 0;
}

/* Rule 6: the buffer holds bytes, so the running task's kernel writes it. */
static void out_queued(struct sockout *o, struct task *t) {
  if (o->k == t->k) return;
  if (o->k != NULL) out_unlink(o);
  o->k = t->k;
  list_insert_tail(&o->k->flushes, &o->flush.node);
}

static int out_take(void *ud, const char *p, size_t n) {
  struct sockout *o = ud;
  if (out_reserve(o, n) < 0) return -1;
  memcpy(o->p + o->len, p, n);
  o->len += n;
  return 0;
}

static struct sock *open_sock(lua_State *L, struct task **t) {
  struct sock *s = sock_check_open(L, "send");
  *t = trap_current(L, "send");
  return s;
}

/* core.out_frame(sock, value, what) -> bytes now buffered: appends the
 * frame of value in CODEC_DATA mode (rule 1); `what` names the value in
 * an encoding error ("send: value"). */
static int l_out_frame(lua_State *L) {
  struct task *t;
  struct sock *s = open_sock(L, &t);
  const char *what = luaL_checkstring(L, 3);
  struct sockout *o = out_get(L, s);
  out_check(L, o);
  lua_settop(L, 3);
  codec_encode_frame_to(L, 2, what, out_take, o);
  if (pending(o) > 0) out_queued(o, t);
  lua_pushinteger(L, (lua_Integer)pending(o));
  return 1;
}

/* core.out_bytes(sock, data) -> bytes now buffered: appends data's frame. */
static int l_out_bytes(lua_State *L) {
  struct task *t;
  struct sock *s = open_sock(L, &t);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  struct sockout *o = out_get(L, s);
  out_check(L, o);
  unsigned char head[CODEC_FRAME_HEAD_MAX];
  size_t hlen = codec_frame_header(n, head);
  if (n > ((size_t)-1) - hlen || out_reserve(o, hlen + n) < 0) return luaL_error(L, "send: not enough memory");
  memcpy(o->p + o->len, head, hlen);
  memcpy(o->p + o->len + hlen, data, n);
  o->len += hlen + n;
  out_queued(o, t);
  lua_pushinteger(L, (lua_Integer)pending(o));
  return 1;
}

static int out_flush_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, high, the method's name. */
static int do_out_flush(lua_State *L, struct sock *s) {
  struct sockout *o = s->out;
  size_t high = (size_t)lua_tointeger(L, 2);
  if (o == NULL) return 0;
  if (out_write(o) < 0) out_check(L, o);
  if (pending(o) < high) return 0;
  struct task *t = trap_enter_quiet(L, ctx_get(L), lua_tostring(L, 3));
  if (trap_push_due(L, t)) return lua_error(L);
  s->write_held = 1;
  return io_wait_as(L, t, &s->io.wr, &flush_wait, out_flush_k);
}

static int out_flush_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  struct sock *s = lua_touserdata(L, 1);
  s->write_held = 0;
  if (trap_push_interrupt(L, t)) return lua_error(L); /* (rule 3: nothing lost) */
  lua_settop(L, (int)ctx);
  if (s->io.fd < 0) sock_raise_closed(L, lua_tostring(L, 3));
  return do_out_flush(L, s);
}

/* core.out_flush(sock, high, fname): writes the buffer, waiting while it
 * holds high bytes or more (rule 3); fname (default "send") names the
 * method in errors. */
static int l_out_flush(lua_State *L) {
  const char *fname = luaL_optstring(L, 3, "send");
  struct sock *s = sock_check_open(L, fname);
  trap_current(L, fname);
  lua_Integer high = luaL_checkinteger(L, 2);
  luaL_argcheck(L, high >= 1, 2, "positive size expected");
  if (s->out != NULL) out_check(L, s->out);
  sock_check_idle(L, s, 1, fname);
  lua_settop(L, 2);
  lua_pushstring(L, fname);
  return do_out_flush(L, s);
}

/* core.out_close(sock): the last write (rule 5); the buffer is gone. Any
 * state, any place: it never waits nor raises. */
static int l_out_close(lua_State *L) {
  struct sock *s = sock_check(L, "close");
  sockout_release(s);
  return 0;
}

/* core.out_pending(sock) -> bytes buffered, not written yet. */
static int l_out_pending(lua_State *L) {
  struct sock *s = sock_check(L, "pending");
  lua_pushinteger(L, s->out != NULL ? (lua_Integer)pending(s->out) : 0);
  return 1;
}

const luaL_Reg sockout_functions[] = {
  {"out_frame", l_out_frame},
  {"out_bytes", l_out_bytes},
  {"out_flush", l_out_flush},
  {"out_close", l_out_close},
  {"out_pending", l_out_pending},
  {NULL, NULL}
};
