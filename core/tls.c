/* core/tls.c: the SSLSocket (curio.ssl: lua/curio/ssl.lua wraps sockets
 * and adds the calls that go to the plain socket underneath): OpenSSL
 * over the transport's descriptor, with the same waits as plain sockets.
 *
 * Rules:
 * 1. Wrapping moves the descriptor from the user's socket into a private
 *    transport Socket (the user's is closed without closing the
 *    descriptor, as Python's detach): nothing but the TLS socket reaches
 *    it, so its close is the TLS socket's. unwrap gives it back.
 * 2. OpenSSL moves bytes through a BIO of this file (recv; send with
 *    MSG_NOSIGNAL, so a closed peer is an error, never SIGPIPE).
 *    WANT_READ and WANT_WRITE become waits on the transport's descriptor
 *    (io.c): no second loop, no thread. OpenSSL's error queue is cleared
 *    before each call and emptied after each failure (tlsinfo.c).
 * 3. One reader and one writer at a time (ReadResourceBusy,
 *    WriteResourceBusy); a handshake, a shutdown or an unwrap holds both.
 *    The reader waits to read on the transport's rd and to write on xw
 *    (OpenSSL answers a key update or a renegotiation while reading); the
 *    writer on wr and xr; a call holding both on rd and wr. A call that
 *    moved bytes wakes the other side if it waits in that direction:
 *    what this call read may be what the other waits for. A wakeup for
 *    nothing costs the other one try.
 * 4. A timeout or cancellation interrupts a wait at once. A read, a
 *    handshake or a shutdown may be tried again afterwards: OpenSSL keeps
 *    what it has read.
 * 5. Writes hand OpenSSL one record (at most 16 KiB) per call. When a
 *    call must wait, OpenSSL holds the record and requires the same bytes
 *    again: they are kept (rec, in the string of user value 2) and are
 *    "ahead" of what the user was told: an interrupted send or sendall
 *    does not count them in err.bytes_sent. The next write, which goes on
 *    from bytes_sent, begins with them: it finishes the record first and
 *    counts them then. A write that goes on with other bytes cannot be
 *    reconciled with the record: it closes the socket (rule 6). unwrap and
 *    shutdown finish the record (the peer gets those bytes); close tries
 *    once. A writer that waited holds the write side until its
 *    continuation runs (as sockio.c's sendall), so no other writer slips
 *    in between.
 * 6. An error that leaves the connection unusable (a protocol error, a
 *    failed verification, an abrupt close, a system error) closes the TLS
 *    socket, and the error's message says so ("socket closed").
 * 7. close, <close> and __gc share one idempotent close that never waits:
 *    it sends close_notify if it can at once (after a handshake, on an
 *    open transport), wakes the waiters, frees the SSL and closes the
 *    transport. A read after the peer's close_notify gives "".
 * 8. Read-ahead is the BIO's (tlssock.c), not OpenSSL's, which would keep
 *    the plain bytes that follow close_notify where unwrap cannot reach
 *    them. One recv takes what the socket has (up to TLS_READ_AHEAD, a
 *    record; TLS_READ_AHEAD_BULK once a recv filled the buffer: a bulk
 *    transfer makes a quarter of the system calls, an echo of small
 *    messages keeps 17 KiB) and OpenSSL's reads of a record's header and
 *    body are served from it. A
 *    recv that came back short marks the connection drained: the next
 *    read waits for the descriptor instead of making a recv that can only
 *    fail (socket.c rule 2); the end of any wait clears it (epoll is
 *    level-triggered: a stale mark costs one loop turn). A recv returns
 *    the data of every record already received, up to maxbytes, so one
 *    wakeup and one call serve a segment of many records; an error met
 *    after some data is kept (user value 4) and raised by the next call,
 *    which closes the socket then (rule 6). unwrap gives what follows the
 *    peer's close_notify in the buffer back to the plain socket, whose
 *    reads return it first (socket.c rule 6); wrapping that socket again
 *    hands it to the new TLS socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <lauxlib.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "tls.h"
#include "io.h"
#include "ctx.h"
#include "trap.h"
#include "errors.h"

#define TLS_RECORD 16384

enum { ROLE_READ, ROLE_WRITE, ROLE_BOTH };

static void push_busy(lua_State *L, int writing, const char *fname) {
  lua_pushfstring(L, "%s: another task is already %s this socket", fname,
                  writing ? "writing to" : "reading from");
  errors_push(L, writing ? "WriteResourceBusy" : "ReadResourceBusy", lua_tostring(L, -1));
  lua_remove(L, -2);
}

static void raise_deferred(lua_State *L, struct tls_sock *t);

/* Rule 3: raises when the side(s) of role are taken; rule 8: raises the
 * error a read kept. */
static void check_idle(lua_State *L, struct tls_sock *t, int role, const char *fname) {
  if (t->deferred) raise_deferred(L, t);
  int reading = t->sock->io.rd.data != NULL || t->xw.data != NULL || t->both_held;
  int writing = t->sock->io.wr.data != NULL || t->xr.data != NULL || t->write_held || t->both_held;
  if ((role != ROLE_WRITE && reading) || (role != ROLE_READ && writing)) {
    push_busy(L, role == ROLE_WRITE || (role == ROLE_BOTH && !reading), fname);
    lua_error(L);
  }
}

/* ---- failing (rule 6) ---- */

/* Rule 6: pushes the error of a failed call, closes t, says so. */
static void push_failure(lua_State *L, struct tls_sock *t, const char *fname, int err) {
  tls_push_error(L, t, fname, err);
  tls_close_now(L, t, 0);
  if (lua_istable(L, -1) && lua_getfield(L, -1, "message") == LUA_TSTRING) {
    lua_pushliteral(L, " (socket closed)");
    lua_concat(L, 2);
    lua_setfield(L, -2, "message");
  } else if (lua_istable(L, -1)) {
    lua_pop(L, 1);
  }
}

static int raise_failure(lua_State *L, struct tls_sock *t, const char *fname, int err) {
  push_failure(L, t, fname, err);
  return lua_error(L);
}

/* Rule 8: raises the error a read met after some data (tls at 1). */
static void raise_deferred(lua_State *L, struct tls_sock *t) {
  lua_getiuservalue(L, 1, 4);
  tls_close_now(L, t, 0);
  if (lua_istable(L, -1) && lua_getfield(L, -1, "message") == LUA_TSTRING) {
    lua_pushliteral(L, " (socket closed)");
    lua_concat(L, 2);
    lua_setfield(L, -2, "message");
  }
  lua_error(L);
}

/* ---- waiting (rule 3) ---- */

/* Wakes the other side waiting in a direction in which this call moved
 * bytes (the counts before it: r0, w0). */
static void progress(struct tls_sock *t, size_t r0, size_t w0) {
  if (t->nread != r0) { tls_wake(&t->sock->io.rd); tls_wake(&t->xr); }
  if (t->nwritten != w0) { tls_wake(&t->sock->io.wr); tls_wake(&t->xw); }
}

static ev_io *watcher(struct tls_sock *t, int role, int want_write) {
  if (role == ROLE_READ) return want_write ? &t->xw : &t->sock->io.rd;
  if (role == ROLE_WRITE) return want_write ? &t->sock->io.wr : &t->xr;
  return want_write ? &t->sock->io.wr : &t->sock->io.rd;
}

/* Suspends the task (already entered) until OpenSSL's want (err) is met. */
static int wait_as(lua_State *L, struct task *task, struct tls_sock *t, int role, int err, lua_KFunction k) {
  if (role == ROLE_BOTH) t->both_held = 1;
  if (role == ROLE_WRITE) t->write_held = 1;
  return io_wait(L, task, watcher(t, role, err == SSL_ERROR_WANT_WRITE), k);
}

/* In a continuation: t at 1, after releasing what the wait held and
 * raising what ended it (a cancellation, a timeout, a close meanwhile). */
static struct tls_sock *resumed(lua_State *L, lua_KContext ctx, const char *fname) {
  struct task *task = trap_resumed(L);
  struct tls_sock *t = lua_touserdata(L, 1);
  t->both_held = 0;
  t->drained = 0; /* rule 8 */
  trap_result(L, task, (int)ctx);
  lua_settop(L, (int)ctx);
  if (t->ssl == NULL) tls_raise_closed(L, fname);
  return t;
}

/* Rule 2: OpenSSL's error queue emptied before a call. It is empty but
 * for a foreign library's leftovers (every failure here empties it), and
 * a look costs far less than a clear (OpenSSL 3 resets every slot). */
static void clear_errors(void) {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

static int is_want(int err) {
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
}
/* ---- the handshake ---- */

static int handshake_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: tls. */
static int do_handshake(lua_State *L, struct tls_sock *t) {
  size_t r0 = t->nread, w0 = t->nwritten;
  clear_errors();
  int rc = SSL_do_handshake(t->ssl);
  int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
  progress(t, r0, w0);
  if (err == SSL_ERROR_NONE) return 0;
  if (!is_want(err)) return raise_failure(L, t, "do_handshake", err);
  return wait_as(L, trap_enter(L, "do_handshake"), t, ROLE_BOTH, err, handshake_k);
}

static int handshake_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_handshake(L, resumed(L, ctx, "do_handshake"));
}

/* tls:do_handshake(): completes the handshake (nothing when done). */
static int tls_do_handshake(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "do_handshake");
  trap_current(L, "do_handshake");
  check_idle(L, t, ROLE_BOTH, "do_handshake");
  lua_settop(L, 1);
  return do_handshake(L, t);
}

/* ---- recv ---- */

static int recv_k(lua_State *L, int status, lua_KContext ctx);

/* Rule 8: whether OpenSSL or the read-ahead holds bytes not read yet. */
static int buffered(struct tls_sock *t) {
  return t->rpos < t->rlen || SSL_has_pending(t->ssl);
}

/* Stack: tls, maxbytes. */
static int do_recv(lua_State *L, struct tls_sock *t) {
  lua_Integer n = lua_tointeger(L, 2);
  if (n == 0) { lua_pushliteral(L, ""); return 1; }
  size_t size, got = 0, more;
  char *buf = io_scratch(L, &size);
  size_t want = (size_t)n < size ? (size_t)n : size;
  size_t r0 = t->nread, w0 = t->nwritten;
  clear_errors();
  int ok = SSL_read_ex(t->ssl, buf, want, &got);
  int err = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
  while (ok && got < want && buffered(t)) { /* rule 8: the records received already */
    ok = SSL_read_ex(t->ssl, buf + got, want - got, &more);
    if (ok) { got += more; continue; }
    int later = SSL_get_error(t->ssl, 0);
    if (!is_want(later) && later != SSL_ERROR_ZERO_RETURN) { /* kept for the next call */
      tls_push_error(L, t, "recv", later);
      lua_setiuservalue(L, 1, 4);
      t->deferred = 1;
    }
    ERR_clear_error();
  }
  progress(t, r0, w0);
  if (got > 0 || err == SSL_ERROR_NONE) { lua_pushlstring(L, buf, got); return 1; }
  if (err == SSL_ERROR_ZERO_RETURN) { lua_pushliteral(L, ""); return 1; } /* close_notify */
  if (!is_want(err)) return raise_failure(L, t, "recv", err);
  return wait_as(L, trap_enter(L, "recv"), t, ROLE_READ, err, recv_k);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_recv(L, resumed(L, ctx, "recv"));
}

/* tls:recv(maxbytes) -> up to maxbytes bytes; "" after close_notify. */
static int tls_recv(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "recv");
  sock_check_size(L, 2, "recv");
  trap_current(L, "recv");
  check_idle(L, t, ROLE_READ, "recv");
  lua_settop(L, 2);
  return do_recv(L, t);
}

/* ---- send, sendall, write (rule 5) ---- */

enum { WRITE_SEND, WRITE_ALL, WRITE_STREAM };

static int write_k(lua_State *L, int status, lua_KContext ctx);

/* Raises the error on top with .bytes_sent = sent. */
static int raise_sent(lua_State *L, size_t sent) {
  if (lua_istable(L, -1)) {
    lua_pushinteger(L, (lua_Integer)sent);
    lua_setfield(L, -2, "bytes_sent");
  }
  return lua_error(L);
}

/* One SSL_write of len bytes at p: its SSL error, *n the bytes taken. */
static int write_once(struct tls_sock *t, const char *p, size_t len, size_t *n) {
  size_t r0 = t->nread, w0 = t->nwritten;
  clear_errors();
  int ok = SSL_write_ex(t->ssl, p, len, n);
  int err = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
  progress(t, r0, w0);
  return err;
}

/* Rule 5: hands OpenSSL again the record it holds, if any (tls at 1);
 * returns the SSL error that stopped it, SSL_ERROR_NONE when it is out. */
static int flush_record(struct tls_sock *t) {
  int err = SSL_ERROR_NONE;
  size_t n;
  while (t->rec != NULL && (err = write_once(t, t->rec, t->rec_len, &n)) == SSL_ERROR_NONE) {
    t->rec_len -= n < t->rec_len ? n : t->rec_len;
    t->rec = t->rec_len > 0 ? t->rec + n : NULL;
  }
  return err;
}

/* Rule 5: forgets the bytes ahead (tls at 1): the kept string goes. */
static void drop_ahead(lua_State *L, struct tls_sock *t) {
  t->ahead = NULL;
  t->ahead_len = 0;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 2);
}

/* Rule 5: the bytes ahead of what the user was told are sent, as far as
 * data (from *done) goes on with them: *done moves past them once the
 * record is out. Returns the SSL error that stopped it; -1 when data goes
 * on with other bytes. */
static int catch_up(lua_State *L, struct tls_sock *t, const char *data, size_t len, size_t *done) {
  size_t m = len - *done < t->ahead_len ? len - *done : t->ahead_len;
  if (data + *done != t->ahead && memcmp(data + *done, t->ahead, m) != 0) return -1;
  int err = flush_record(t);
  if (err != SSL_ERROR_NONE) return err;
  *done += m;
  t->ahead += m;
  t->ahead_len -= m;
  if (t->ahead_len == 0) drop_ahead(L, t);
  return SSL_ERROR_NONE;
}

/* Pushes the error of a write that does not go on with the bytes ahead
 * (rule 5) and closes t: the record cannot be finished otherwise. */
static void push_diverged(lua_State *L, struct tls_sock *t, const char *fname) {
  lua_pushfstring(L, "%s: a write interrupted in the middle of a TLS record must go on with the same "
                  "bytes (socket closed)", fname);
  errors_push(L, "SSLError", lua_tostring(L, -1));
  lua_remove(L, -2);
  tls_close_now(L, t, 0);
}

/* Stack: tls, data, bytes sent so far, mode. */
static int do_write(lua_State *L, struct tls_sock *t) {
  size_t len, n;
  const char *data = lua_tolstring(L, 2, &len);
  size_t done = (size_t)lua_tointeger(L, 3);
  int mode = (int)lua_tointeger(L, 4), err = SSL_ERROR_NONE;
  const char *fname = mode == WRITE_SEND ? "send" : mode == WRITE_ALL ? "sendall" : "write";
  if (t->ahead != NULL && done < len) err = catch_up(L, t, data, len, &done);
  if (err < 0) {
    push_diverged(L, t, fname);
    return raise_sent(L, done);
  }
  while (err == SSL_ERROR_NONE && t->ahead == NULL && done < len && !(mode == WRITE_SEND && done > 0)) {
    size_t chunk = len - done < TLS_RECORD ? len - done : TLS_RECORD;
    err = write_once(t, data + done, chunk, &n);
    if (err == SSL_ERROR_NONE) { done += n; continue; }
    if (!is_want(err)) break;
    t->rec = t->ahead = data + done; /* OpenSSL holds the record: kept, not counted */
    t->rec_len = t->ahead_len = chunk;
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, 1, 2);
  }
  if (err != SSL_ERROR_NONE && !is_want(err)) {
    push_failure(L, t, fname, err);
    return raise_sent(L, done);
  }
  if (!is_want(err)) {
    if (mode == WRITE_ALL) return 0;
    lua_pushinteger(L, (lua_Integer)(mode == WRITE_SEND ? done : len));
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)done);
  lua_replace(L, 3);
  struct task *task = trap_enter_quiet(L, ctx_get(L), fname);
  if (trap_push_due(L, task)) return raise_sent(L, done);
  return wait_as(L, task, t, ROLE_WRITE, err, write_k);
}

static int write_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *task = trap_resumed(L);
  struct tls_sock *t = lua_touserdata(L, 1);
  (void)status;
  t->write_held = 0;
  t->drained = 0; /* rule 8 */
  size_t done = (size_t)lua_tointeger(L, 3);
  if (trap_push_interrupt(L, task)) return raise_sent(L, done);
  lua_settop(L, (int)ctx);
  if (t->ssl == NULL) {
    int mode = (int)lua_tointeger(L, 4);
    sock_push_closed(L, mode == WRITE_SEND ? "send" : mode == WRITE_ALL ? "sendall" : "write");
    return raise_sent(L, done);
  }
  return do_write(L, t);
}

/* (a write that could not wait would leave a committed record uncounted:
 * whether the task can block is checked first) */
static int write_as(lua_State *L, const char *fname, int mode) {
  struct tls_sock *t = tls_check_open(L, fname);
  sock_check_data(L, 2, fname, NULL);
  trap_enter_quiet(L, ctx_get(L), fname);
  check_idle(L, t, ROLE_WRITE, fname);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushinteger(L, mode);
  return do_write(L, t);
}

/* tls:send(data) -> bytes sent (one record at most). */
static int tls_send(lua_State *L) {
  return write_as(L, "send", WRITE_SEND);
}

/* tls:sendall(data): all of data; an error carries .bytes_sent. */
static int tls_sendall(lua_State *L) {
  return write_as(L, "sendall", WRITE_ALL);
}

/* tls:write(data) -> #data: sendall for the stream whose source is tls. */
static int tls_write(lua_State *L) {
  return write_as(L, "write", WRITE_STREAM);
}
/* ---- close_notify: shutdown and unwrap ---- */

enum { NOTIFY_WRITE, NOTIFY_BOTH, NOTIFY_UNWRAP };

static int notify_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: tls, mode. Sends close_notify (after a committed record, rule
 * 5), then shuts the transport down in the direction asked, or, for
 * unwrap, waits for the peer's close_notify and gives the transport back. */
static int do_notify(lua_State *L, struct tls_sock *t) {
  int mode = (int)lua_tointeger(L, 2);
  const char *fname = mode == NOTIFY_UNWRAP ? "unwrap" : "shutdown";
  int err = flush_record(t);
  if (err == SSL_ERROR_NONE) {
    if (t->ahead != NULL) drop_ahead(L, t); /* (out: the peer has those bytes) */
    size_t r0 = t->nread, w0 = t->nwritten;
    ERR_clear_error();
    int rc = SSL_shutdown(t->ssl);
    if (rc == 0 && mode == NOTIFY_UNWRAP) rc = SSL_shutdown(t->ssl); /* ours went: theirs now */
    if (rc < 0) err = SSL_get_error(t->ssl, rc);
    else if (rc == 0 && mode == NOTIFY_UNWRAP) err = SSL_ERROR_WANT_READ;
    progress(t, r0, w0);
  }
  if (is_want(err)) return wait_as(L, trap_enter(L, fname), t, ROLE_BOTH, err, notify_k);
  if (err != SSL_ERROR_NONE) return raise_failure(L, t, fname, err);
  if (mode != NOTIFY_UNWRAP) {
    if (shutdown(t->sock->io.fd, mode == NOTIFY_WRITE ? SHUT_WR : SHUT_RDWR) < 0)
      return errors_raise_os(L, "shutdown", errno);
    return 0;
  }
  lua_getiuservalue(L, 1, 1); /* the transport, the caller's from now */
  if (t->rpos < t->rlen) sock_push_back(L, -1, t->rbuf + t->rpos, t->rlen - t->rpos); /* rule 8 */
  tls_free_buffer(t);
  SSL_free(t->ssl);
  t->ssl = NULL;
  t->sock = NULL;
  lua_pushnil(L);
  lua_setiuservalue(L, 1, 1);
  return 1;
}

static int notify_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_notify(L, resumed(L, ctx, lua_tointeger(L, 2) == NOTIFY_UNWRAP ? "unwrap" : "shutdown"));
}

/* tls:shutdown(how): "r" shuts reading at once; "w" and "rw" first send
 * close_notify (which may wait). */
static int tls_shutdown(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "shutdown");
  const char *how = errors_tocstring(L, 2, NULL);
  int mode = how == NULL ? -1 : strcmp(how, "w") == 0 ? NOTIFY_WRITE : strcmp(how, "rw") == 0 ? NOTIFY_BOTH
           : strcmp(how, "r") == 0 ? 3 : -1;
  if (mode < 0) return errors_methoderror(L, 2, "shutdown", "\"r\", \"w\" or \"rw\" expected");
  if (mode == 3) {
    if (shutdown(t->sock->io.fd, SHUT_RD) < 0) return errors_raise_os(L, "shutdown", errno);
    return 0;
  }
  trap_current(L, "shutdown");
  check_idle(L, t, ROLE_BOTH, "shutdown");
  lua_settop(L, 1);
  lua_pushinteger(L, mode);
  return do_notify(L, t);
}

/* tls:unwrap() -> the plain socket, once both sides sent close_notify
 * (STARTTLS's end: the connection goes on in plain text). */
static int tls_unwrap(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "unwrap");
  trap_current(L, "unwrap");
  check_idle(L, t, ROLE_BOTH, "unwrap");
  lua_settop(L, 1);
  lua_pushinteger(L, NOTIFY_UNWRAP);
  return do_notify(L, t);
}

const luaL_Reg tls_io_methods[] = {
  {"shutdown", tls_shutdown},
  {"unwrap", tls_unwrap},
  {"do_handshake", tls_do_handshake},
  {"recv", tls_recv},
  {"read", tls_recv},
  {"send", tls_send},
  {"sendall", tls_sendall},
  {"write", tls_write},
  {NULL, NULL}
};
