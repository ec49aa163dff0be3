/* core/sockio.c: the Socket methods that may wait (socket.c rules 1-3):
 * recv, send, sendall, accept, connect, recvfrom, sendto (the reads into
 * a growing buffer are sockbuf.c's). Each tries its system call first and
 * waits (io.c) only on EAGAIN; its continuation tries again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <lauxlib.h>
#include "socket.h"
#include "io.h"
#include "kernel.h"
#include "trap.h"
#include "ctx.h"
#include "errors.h"

/* ---- waiting ---- */

static void push_busy(lua_State *L, int writing, const char *fname) {
  lua_pushfstring(L, "%s: another task is already %s this socket", fname,
                  writing ? "writing to" : "reading from");
  errors_push(L, writing ? "WriteResourceBusy" : "ReadResourceBusy", lua_tostring(L, -1));
  lua_remove(L, -2);
}

/* A task waits to read (write) s: a second reader (writer) is refused at
 * once, even when it would not wait, so that two tasks' data never
 * interleave (curio's ReadResourceBusy, WriteResourceBusy). A sendall
 * that waited holds the write side until its continuation has run, woken
 * or interrupted (write_held): a timeout or cancellation that cut it gives
 * its task the chance to finish the rest (err.bytes_sent) before any
 * other writer gets in. */
void sock_check_idle(lua_State *L, struct sock *s, int writing, const char *fname) {
  if (writing ? s->io.wr.data != NULL || s->write_held : s->io.rd.data != NULL) {
    push_busy(L, writing, fname);
    lua_error(L);
  }
}

/* The waits of each method, by its name (what the monitor shows). */
static const struct wait_kind recv_wait = IO_WAIT("recv"), read_wait = IO_WAIT("read"),
  send_wait = IO_WAIT("send"), sendall_wait = IO_WAIT("sendall"), accept_wait = IO_WAIT("accept"),
  connect_wait = IO_WAIT("connect"), recvfrom_wait = IO_WAIT("recvfrom"),
  sendto_wait = IO_WAIT("sendto");

/* Suspends the running task until s is ready in direction w (io.c); the
 * method is the kind's name. */
int sock_wait_ready(lua_State *L, struct sock *s, int writing, const struct wait_kind *kind,
                    lua_KFunction k) {
  struct task *t = trap_enter(L, kind->name);
  return io_wait_as(L, t, writing ? &s->io.wr : &s->io.rd, kind, k);
}

/* In a continuation: the socket at 1, after raising what ended the wait
 * (a cancellation, a timeout, the socket closed meanwhile). */
struct sock *sock_resumed(lua_State *L, lua_KContext ctx, const char *fname) {
  struct task *t = trap_resumed(L);
  trap_result(L, t, (int)ctx);
  lua_settop(L, (int)ctx);
  struct sock *s = lua_touserdata(L, 1);
  if (s->io.fd < 0) sock_raise_closed(L, fname);
  return s;
}

static int is_again(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- recv, and read (a stream's big reads) ---- */

/* socket.c rule 6: pushes up to max of the bytes given back to s (at 1),
 * which are then read; returns 1. */
static int read_pushed(lua_State *L, struct sock *s, size_t max) {
  size_t len;
  lua_getiuservalue(L, 1, 1);
  const char *p = lua_tolstring(L, -1, &len);
  size_t at = (size_t)s->pushed_at, n = len - at < max ? len - at : max;
  lua_pushlstring(L, p + at, n);
  lua_remove(L, -2);
  s->pushed_at += (int)n;
  if (at + n == len) {
    s->pushed = s->pushed_at = 0;
    lua_pushnil(L);
    lua_setiuservalue(L, 1, 1);
  }
  return 1;
}

static int recv_k(lua_State *L, int status, lua_KContext ctx);
static int read_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, maxbytes. as_read: the call is sock:read, a stream's
 * read(maxbytes) handed straight to its socket (lua/curio/io.lua), whose
 * errors and wait name "read" as the stream's own would. */
static int do_recv(lua_State *L, struct sock *s, int as_read) {
  lua_Integer n = lua_tointeger(L, 2);
  if (n == 0) { lua_pushliteral(L, ""); return 1; }
  if (s->pushed) return read_pushed(L, s, (size_t)n);
  if (!s->drained) {
    size_t size;
    char *buf = io_scratch(L, &size);
    size_t want = (size_t)n < size ? (size_t)n : size;
    ssize_t got;
    do got = sock_read(s, buf, want); while (got < 0 && errno == EINTR);
    if (got >= 0) {
      if (got > 0 && (size_t)got < want && s->type == SOCK_STREAM) s->drained = 1;
      lua_pushlstring(L, buf, (size_t)got);
      return 1;
    }
    if (!is_again(errno)) sock_raise_os(L, as_read ? "read" : "recv", errno);
  }
  return as_read ? sock_wait_ready(L, s, 0, &read_wait, read_k) : sock_wait_ready(L, s, 0, &recv_wait, recv_k);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  struct sock *s = sock_resumed(L, ctx, "recv");
  s->drained = 0;
  return do_recv(L, s, 0);
}

static int read_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  struct sock *s = sock_resumed(L, ctx, "read");
  s->drained = 0;
  return do_recv(L, s, 1);
}

static int recv_as(lua_State *L, const char *fname, int as_read) {
  struct sock *s = sock_check_open(L, fname);
  sock_check_size(L, 2, fname);
  trap_current(L, fname);
  sock_check_idle(L, s, 0, fname);
  lua_settop(L, 2);
  return do_recv(L, s, as_read);
}

/* sock:recv(maxbytes) -> up to maxbytes bytes, "" at the end of the stream. */
static int sock_recv(lua_State *L) {
  return recv_as(L, "recv", 0);
}

/* sock:read(maxbytes): recv for a stream whose source is the socket. */
static int sock_read_some(lua_State *L) {
  return recv_as(L, "read", 1);
}

/* ---- send, sendall ---- */

static int send_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, data. */
static int do_send(lua_State *L, struct sock *s) {
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  ssize_t n;
  do n = sock_write(s, data, len); while (n < 0 && errno == EINTR);
  if (n >= 0) { lua_pushinteger(L, n); return 1; }
  if (!is_again(errno)) sock_raise_os(L, "send", errno);
  return sock_wait_ready(L, s, 1, &send_wait, send_k);
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_send(L, sock_resumed(L, ctx, "send"));
}

/* sock:send(data) -> bytes sent. */
static int sock_send(lua_State *L) {
  struct sock *s = sock_check_open(L, "send");
  sock_check_data(L, 2, "send", NULL);
  trap_current(L, "send");
  sock_check_idle(L, s, 1, "send");
  lua_settop(L, 2);
  return do_send(L, s);
}

/* Raises the error on top with .bytes_sent = sent. */
static int raise_sent(lua_State *L, lua_Integer sent) {
  if (lua_istable(L, -1)) {
    lua_pushinteger(L, sent);
    lua_setfield(L, -2, "bytes_sent");
  }
  return lua_error(L);
}

static int sendall_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, data, bytes sent so far, whether to return the length
 * (sock:write, a stream's source, returns it; sendall returns nothing). */
static int do_sendall(lua_State *L, struct sock *s) {
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  size_t done = (size_t)lua_tointeger(L, 3);
  while (done < len) {
    ssize_t n = sock_write(s, data + done, len - done);
    if (n >= 0) {
      done += (size_t)n;
      /* a short write filled the socket's buffer (socket.c rule 2): wait
       * first, saving the system call that would say EAGAIN */
      if (done == len || (size_t)n == 0 || s->type != SOCK_STREAM) continue;
      errno = EAGAIN;
    } else if (errno == EINTR) {
      continue;
    }
    if (!is_again(errno)) {
      errors_push_os(L, "sendall", errno);
      return raise_sent(L, (lua_Integer)done);
    }
    lua_pushinteger(L, (lua_Integer)done);
    lua_replace(L, 3);
    struct task *t = trap_enter_quiet(L, ctx_get(L), "sendall");
    if (trap_push_due(L, t)) return raise_sent(L, (lua_Integer)done);
    s->write_held = 1;
    return io_wait_as(L, t, &s->io.wr, &sendall_wait, sendall_k);
  }
  if (!lua_toboolean(L, 4)) return 0;
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

static int sendall_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  ((struct sock *)lua_touserdata(L, 1))->write_held = 0;
  lua_Integer done = lua_tointeger(L, 3);
  if (trap_push_interrupt(L, t)) return raise_sent(L, done);
  lua_settop(L, (int)ctx);
  struct sock *s = lua_touserdata(L, 1);
  if (s->io.fd < 0) { /* closed while we waited: as every method says it */
    sock_push_closed(L, "sendall");
    return raise_sent(L, done);
  }
  return do_sendall(L, s);
}

/* sock:sendall(data): sends all of data; an error (a cancellation, a
 * timeout) carries .bytes_sent. */
static int sendall_as(lua_State *L, const char *fname, int with_length) {
  struct sock *s = sock_check_open(L, fname);
  sock_check_data(L, 2, fname, NULL);
  trap_current(L, fname);
  sock_check_idle(L, s, 1, fname);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushboolean(L, with_length);
  return do_sendall(L, s);
}

static int sock_sendall(lua_State *L) {
  return sendall_as(L, "sendall", 0);
}

/* sock:write(data) -> #data: sendall for a stream whose source is the
 * socket (lua/curio/io.lua), which tail-calls it. */
static int sock_write_all(lua_State *L) {
  return sendall_as(L, "write", 1);
}

/* ---- accept ---- */

static int accept_k(lua_State *L, int status, lua_KContext ctx);

/* Raises accept's OSError err, naming the address s listens on. */
static int accept_failed(lua_State *L, struct sock *s, int err) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->io.fd, (struct sockaddr *)&ss, &len) < 0) return sock_raise_os(L, "accept", err);
  return sock_raise_os_at(L, "accept", err, (struct sockaddr *)&ss, len);
}

/* Stack: sock. */
static int do_accept(lua_State *L, struct sock *s) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  struct sock *c = sock_new(L, s->family, s->type, s->io.kind); /* first: no fd to leak */
  int fd;
  for (;;) {
    len = sizeof ss;
    fd = accept4(s->io.fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) break;
    /* errors of the new connection, not of the listener: accept(2) says
     * to retry them on Linux */
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == ENETDOWN ||
        errno == ENOPROTOOPT || errno == EHOSTDOWN || errno == ENONET || errno == EHOSTUNREACH ||
        errno == EOPNOTSUPP || errno == ENETUNREACH) continue;
    if (!is_again(errno)) accept_failed(L, s, errno);
    lua_pop(L, 1);
    return sock_wait_ready(L, s, 0, &accept_wait, accept_k);
  }
  sock_set_fd(c, fd);
  if (s->family == AF_UNIX) lua_pushliteral(L, "");
  else address_push(L, (struct sockaddr *)&ss, len);
  return 2;
}

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_accept(L, sock_resumed(L, ctx, "accept"));
}

/* sock:accept() -> client Socket, its address. */
static int sock_accept(lua_State *L) {
  struct sock *s = sock_check_open(L, "accept");
  trap_current(L, "accept");
  sock_check_idle(L, s, 0, "accept");
  lua_settop(L, 1);
  return do_accept(L, s);
}

/* ---- connect ---- */

/* Stack: sock, the address connected to (its bytes, for the message). */
static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  struct sock *s = sock_resumed(L, ctx, "connect");
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) {
    struct sockaddr_storage ss;
    size_t n;
    const char *bytes = lua_tolstring(L, 2, &n);
    memcpy(&ss, bytes, n < sizeof ss ? n : sizeof ss); /* (aligned copy) */
    sock_raise_os_at(L, "connect", err, (struct sockaddr *)&ss, (socklen_t)n);
  }
  return 0;
}

/* sock:connect(addr) */
static int sock_connect(lua_State *L) {
  struct sock *s = sock_check_open(L, "connect");
  struct sockaddr_storage ss;
  socklen_t len = address_get(L, 2, s->family, &ss, "connect");
  trap_current(L, "connect");
  sock_check_idle(L, s, 1, "connect");
  lua_settop(L, 1);
  if (connect(s->io.fd, (struct sockaddr *)&ss, len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR && !is_again(errno))
    sock_raise_os_at(L, "connect", errno, (struct sockaddr *)&ss, len);
  lua_pushlstring(L, (const char *)&ss, len);
  return sock_wait_ready(L, s, 1, &connect_wait, connect_k);
}

/* ---- recvfrom, sendto ---- */

static int recvfrom_k(lua_State *L, int status, lua_KContext ctx);

static int do_recvfrom(lua_State *L, struct sock *s) {
  if (s->pushed) { /* (a stream's: no address, as recvfrom(2) gives) */
    read_pushed(L, s, (size_t)lua_tointeger(L, 2));
    lua_pushnil(L);
    return 2;
  }
  size_t size;
  char *buf = io_scratch(L, &size);
  lua_Integer n = lua_tointeger(L, 2);
  size_t want = (size_t)n < size ? (size_t)n : size;
  struct sockaddr_storage ss;
  socklen_t len;
  ssize_t got;
  do {
    len = sizeof ss;
    got = recvfrom(s->io.fd, buf, want, 0, (struct sockaddr *)&ss, &len);
  } while (got < 0 && errno == EINTR);
  if (got >= 0) {
    lua_pushlstring(L, buf, (size_t)got);
    if (len == 0) lua_pushnil(L);
    else address_push(L, (struct sockaddr *)&ss, len);
    return 2;
  }
  if (!is_again(errno)) sock_raise_os(L, "recvfrom", errno);
  return sock_wait_ready(L, s, 0, &recvfrom_wait, recvfrom_k);
}

static int recvfrom_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_recvfrom(L, sock_resumed(L, ctx, "recvfrom"));
}

/* sock:recvfrom(maxbytes) -> data, address */
static int sock_recvfrom(lua_State *L) {
  struct sock *s = sock_check_open(L, "recvfrom");
  sock_check_size(L, 2, "recvfrom");
  trap_current(L, "recvfrom");
  sock_check_idle(L, s, 0, "recvfrom");
  lua_settop(L, 2);
  return do_recvfrom(L, s);
}

static int sendto_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, data, address. */
static int do_sendto(lua_State *L, struct sock *s) {
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  struct sockaddr_storage ss;
  socklen_t alen = address_get(L, 3, s->family, &ss, "sendto");
  ssize_t n;
  do n = sendto(s->io.fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&ss, alen);
  while (n < 0 && errno == EINTR);
  if (n >= 0) { lua_pushinteger(L, n); return 1; }
  if (!is_again(errno)) sock_raise_os(L, "sendto", errno);
  return sock_wait_ready(L, s, 1, &sendto_wait, sendto_k);
}

static int sendto_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_sendto(L, sock_resumed(L, ctx, "sendto"));
}

/* sock:sendto(data, addr) -> bytes sent */
static int sock_sendto(lua_State *L) {
  struct sock *s = sock_check_open(L, "sendto");
  sock_check_data(L, 2, "sendto", NULL);
  struct sockaddr_storage ss;
  address_get(L, 3, s->family, &ss, "sendto"); /* checked before blocking */
  trap_current(L, "sendto");
  sock_check_idle(L, s, 1, "sendto");
  lua_settop(L, 3);
  return do_sendto(L, s);
}

const luaL_Reg sockio_methods[] = {
  {"recv", sock_recv},
  {"send", sock_send},
  {"sendall", sock_sendall},
  {"write", sock_write_all},
  {"read", sock_read_some},
  {"accept", sock_accept},
  {"connect", sock_connect},
  {"recvfrom", sock_recvfrom},
  {"sendto", sock_sendto},
  {NULL, NULL}
};
