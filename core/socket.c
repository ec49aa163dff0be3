/* core/socket.c: curio.socket, the Socket type and its calls that never
 * wait (docs/sockets.md); the calls that wait are in
 * sockio.c, addresses and name resolution in address.c. Servers, the choice of addresses and
 * streams are policy, in lua/curio/network.lua.
 *
 * Rules:
 * 1. Every descriptor is non-blocking and close-on-exec from birth
 *    (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4). A method first tries the
 *    system call; only EAGAIN makes the task wait (io.c), and the woken
 *    task tries again. Sends use MSG_NOSIGNAL: a closed peer is an EPIPE
 *    (BrokenPipeError), never a SIGPIPE.
 * 2. A stream read that returned less than it asked for emptied the
 *    receive buffer: the next read waits first instead of making a system
 *    call that can only fail with EAGAIN (the socket is `drained` until its
 *    watcher fires). epoll is level-triggered, so data that arrived in
 *    between is reported at once: the hint costs at most one loop turn.
 *    Likewise a stream write that took less than it was given filled the
 *    send buffer: sendall (and a Connection's gathered writes) wait for
 *    room before writing again.
 * 3. A method that may block raises outside a task even when it would not
 *    wait; it reaches a cancellation point (a pending cancel or timeout)
 *    only when it has to wait, as curio's do.
 * 4. The socket owns its descriptor, in a handle (io.c) whose kind says
 *    how bytes move (io_socket_kind; a pipe's is io_pipe_kind): close(),
 *    <close> and __gc all call io_close, once. A closed socket has fd -1;
 *    every method that uses the descriptor (all but close, closed, family
 *    and tostring) raises OSError EBADF "<method>: socket is closed", also
 *    when the close came while it waited (sockio.c's resumed, sendall_k),
 *    so a number reused by a new descriptor is never touched through the
 *    old object.
 * 5. Addresses: {host, port} tables (metatable curio.Address: .host,
 *    .port, tostring "host:port", "[v6host]:port") for inet and inet6, a
 *    path string for unix. C takes numeric hosts only; network.lua
 *    resolves names (in a worker thread) before calling here.
 * 6. Bytes can be given back to a socket made with a user value
 *    (sock_new_uv: the transport under a TLS socket, whose unwrap gives
 *    back what followed the peer's close_notify in its read-ahead): recv,
 *    read, recvfrom, read_to_end and read_frame (sockbuf.c) take them
 *    before reading the descriptor, and wrapping the socket again hands
 *    them to the new TLS socket. A plain socket pays one test per read
 *    and no memory (no user value). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
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
#include "fileio.h"

static const char *const family_names[] = {"inet", "inet6", "unix", NULL};
static const int family_values[] = {AF_INET, AF_INET6, AF_UNIX};
static const char *const type_names[] = {"stream", "dgram", NULL};
static const int type_values[] = {SOCK_STREAM, SOCK_DGRAM};

static const char *family_name(const struct sock *s) {
  if (s->io.kind == &io_pipe_kind) return "pipe";
  for (int i = 0; family_names[i]; i++)
    if (family_values[i] == s->family) return family_names[i];
  return "?";
}

/* ---- errors ---- */

int sock_raise_os(lua_State *L, const char *fname, int err) {
  return errors_raise_os(L, fname, err);
}

/* Raises the OSError for err of fname on the address in sa, named in the
 * message: "bind 127.0.0.1:25000: Address already in use". err is read
 * before anything here may change errno. */
int sock_raise_os_at(lua_State *L, const char *fname, int err, const struct sockaddr *sa, socklen_t len) {
  const char *where = address_push_text(L, sa, len);
  return errors_raise_os(L, lua_pushfstring(L, "%s %s", fname, where), err);
}

/* Rule 4: pushes (raises) the OSError for a closed socket. */
void sock_push_closed(lua_State *L, const char *fname) {
  errors_push_os(L, fname, EBADF);
  if (lua_istable(L, -1)) {
    lua_pushfstring(L, "%s: socket is closed", fname);
    lua_setfield(L, -2, "message");
  }
}

int sock_raise_closed(lua_State *L, const char *fname) {
  sock_push_closed(L, fname);
  return lua_error(L);
}

struct sock *sock_check(lua_State *L, const char *fname) {
  struct sock *s = ctx_testudata(L, 1, MT_SOCKET);
  if (s == NULL) errors_methodtypeerror(L, 1, fname, "Socket");
  return s;
}

struct sock *sock_check_open(lua_State *L, const char *fname) {
  struct sock *s = sock_check(L, fname);
  if (s->io.fd < 0) sock_raise_closed(L, fname);
  return s;
}

lua_Integer sock_check_size(lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Integer n = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_type(L, arg) == LUA_TNUMBER) errors_methoderror(L, arg, fname, "number has no integer representation");
    errors_methodtypeerror(L, arg, fname, "number");
  }
  if (n < 0) errors_methoderror(L, arg, fname, "non-negative integer expected");
  return n;
}

const char *sock_check_data(lua_State *L, int arg, const char *fname, size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) errors_methodtypeerror(L, arg, fname, "string");
  return lua_tolstring(L, arg, len);
}

/* ---- creation and closing ---- */

/* Pushes a new closed socket userdata of family/type whose bytes move
 * through kind (rule 4). */
struct sock *sock_new(lua_State *L, int family, int type, const struct io_kind *kind) {
  return sock_new_uv(L, family, type, kind, 0);
}

/* As sock_new, with nuv user values (1: the socket can take bytes given
 * back, rule 6). */
struct sock *sock_new_uv(lua_State *L, int family, int type, const struct io_kind *kind, int nuv) {
  struct sock *s = lua_newuserdatauv(L, sizeof *s, nuv);
  io_handle_init(&s->io, -1);
  s->io.kind = kind;
  s->family = family;
  s->type = type;
  s->drained = 0;
  s->write_held = 0;
  s->pushed = s->pushed_at = 0;
  s->out = NULL;
  ctx_setmetatable(L, ctx_get(L), MT_SOCKET);
  return s;
}

void sock_set_fd(struct sock *s, int fd) {
  io_handle_setfd(&s->io, fd);
  s->drained = 0;
}

/* Rule 6: gives len bytes at p back to the socket at idx (made with a
 * user value, holding none given back yet): its next reads return them
 * first. */
void sock_push_back(lua_State *L, int idx, const char *p, size_t len) {
  idx = lua_absindex(L, idx);
  struct sock *s = lua_touserdata(L, idx);
  if (len == 0 || len > INT_MAX) return;
  lua_pushlstring(L, p, len);
  if (lua_setiuservalue(L, idx, 1)) s->pushed = 1; /* (0: no user value, nothing kept) */
  s->pushed_at = 0;
}

/* Rule 6: moves up to max of the bytes given back to the socket at idx
 * into buf (wrapping it again); returns how many. */
size_t sock_take_back(lua_State *L, int idx, char *buf, size_t max) {
  idx = lua_absindex(L, idx);
  struct sock *s = lua_touserdata(L, idx);
  if (!s->pushed) return 0;
  size_t len;
  lua_getiuservalue(L, idx, 1);
  const char *p = lua_tolstring(L, -1, &len);
  size_t n = len - (size_t)s->pushed_at < max ? len - (size_t)s->pushed_at : max;
  memcpy(buf, p + s->pushed_at, n);
  lua_pop(L, 1);
  s->pushed_at += (int)n;
  if ((size_t)s->pushed_at == len) {
    s->pushed = s->pushed_at = 0;
    lua_pushnil(L);
    lua_setiuservalue(L, idx, 1);
  }
  return n;
}

/* core.pipe_object(handle) -> a Socket of family "pipe" that takes the
 * descriptor of a core.pipe handle and makes it non-blocking. */
static int l_pipe_object(lua_State *L) {
  int fd = fileio_take(L, 1, "pipe_object"); /* (a core.pipe handle) */
  /* A write to a pipe whose reader is gone must raise BrokenPipeError, not
   * kill the process: write() has no MSG_NOSIGNAL, so SIGPIPE is ignored
   * from the first pipe on, when it still has its default action (as
   * Python does at start; children get the default back, process.c). */
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  struct sock *s = sock_new(L, AF_UNSPEC, SOCK_STREAM, &io_pipe_kind);
  sock_set_fd(s, fd); /* (owned from here: closed with the socket) */
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) sock_raise_os(L, "pipe", errno);
  return 1;
}

/* curio.socket(family, type) -> Socket ("inet" | "inet6" | "unix",
 * "stream" | "dgram"; defaults "inet", "stream"). */
static int l_socket(lua_State *L) {
  int fi = 0, ti = 0;
  if (!lua_isnoneornil(L, 1)) {
    const char *f = errors_tocstring(L, 1, NULL);
    for (fi = 0; family_names[fi] && (f == NULL || strcmp(f, family_names[fi])); fi++) {}
    if (family_names[fi] == NULL) errors_argerror(L, 1, "socket", "family \"inet\", \"inet6\" or \"unix\" expected");
  }
  if (!lua_isnoneornil(L, 2)) {
    const char *ty = errors_tocstring(L, 2, NULL);
    for (ti = 0; type_names[ti] && (ty == NULL || strcmp(ty, type_names[ti])); ti++) {}
    if (type_names[ti] == NULL) errors_argerror(L, 2, "socket", "type \"stream\" or \"dgram\" expected");
  }
  struct sock *s = sock_new(L, family_values[fi], type_values[ti], &io_socket_kind);
  int fd = socket(s->family, s->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) sock_raise_os(L, "socket", errno);
  sock_set_fd(s, fd);
  return 1;
}

/* sock:close(), <close>, __gc: closes once (rule 4). */
static int sock_close(lua_State *L) {
  struct sock *s = sock_check(L, "close");
  if (s->out != NULL) sockout_release(s);
  if (io_close(&s->io) < 0) sock_raise_os(L, "close", errno);
  return 0;
}

static int sock_gc(lua_State *L) {
  struct sock *s = lua_touserdata(L, 1);
  if (s->out != NULL) sockout_release(s);
  io_close(&s->io);
  return 0;
}

static int sock_fileno(lua_State *L) {
  lua_pushinteger(L, sock_check_open(L, "fileno")->io.fd);
  return 1;
}

static int sock_closed(lua_State *L) {
  lua_pushboolean(L, sock_check(L, "closed")->io.fd < 0);
  return 1;
}

static int sock_family(lua_State *L) {
  struct sock *s = sock_check(L, "family");
  lua_pushstring(L, family_name(s));
  lua_pushstring(L, s->type == SOCK_STREAM ? "stream" : "dgram");
  return 2;
}

static int sock_tostring(lua_State *L) {
  struct sock *s = sock_check(L, "tostring");
  if (s->io.fd < 0) lua_pushfstring(L, "Socket (%s, closed)", family_name(s));
  else lua_pushfstring(L, "Socket (fd=%d, %s, %s)", s->io.fd, family_name(s),
                       s->type == SOCK_STREAM ? "stream" : "dgram");
  return 1;
}

/* ---- the calls that never block ---- */

/* sock:bind(addr) */
static int sock_bind(lua_State *L) {
  struct sock *s = sock_check_open(L, "bind");
  struct sockaddr_storage ss;
  socklen_t len = address_get(L, 2, s->family, &ss, "bind");
  if (bind(s->io.fd, (struct sockaddr *)&ss, len) < 0)
    sock_raise_os_at(L, "bind", errno, (struct sockaddr *)&ss, len);
  return 0;
}

/* sock:listen(backlog) (default 128) */
static int sock_listen(lua_State *L) {
  struct sock *s = sock_check_open(L, "listen");
  lua_Integer backlog = lua_isnoneornil(L, 2) ? 128 : sock_check_size(L, 2, "listen");
  if (backlog > 65535) backlog = 65535;
  if (listen(s->io.fd, (int)backlog) < 0) sock_raise_os(L, "listen", errno);
  return 0;
}

/* sock:shutdown("r" | "w" | "rw") */
static int sock_shutdown(lua_State *L) {
  static const char *const hows[] = {"r", "w", "rw", NULL};
  static const int how_values[] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
  struct sock *s = sock_check_open(L, "shutdown");
  const char *how = errors_tocstring(L, 2, NULL);
  int i = 0;
  while (hows[i] && (how == NULL || strcmp(how, hows[i]))) i++;
  if (hows[i] == NULL) errors_methoderror(L, 2, "shutdown", "\"r\", \"w\" or \"rw\" expected");
  if (shutdown(s->io.fd, how_values[i]) < 0) sock_raise_os(L, "shutdown", errno);
  return 0;
}

static int sock_getsockname(lua_State *L) {
  struct sock *s = sock_check_open(L, "getsockname");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->io.fd, (struct sockaddr *)&ss, &len) < 0) sock_raise_os(L, "getsockname", errno);
  address_push(L, (struct sockaddr *)&ss, len);
  return 1;
}

static int sock_getpeername(lua_State *L) {
  struct sock *s = sock_check_open(L, "getpeername");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(s->io.fd, (struct sockaddr *)&ss, &len) < 0) sock_raise_os(L, "getpeername", errno);
  address_push(L, (struct sockaddr *)&ss, len);
  return 1;
}

/* ---- options ---- */

static const struct option {
  const char *name;
  int level, opt, is_bool, read_only;
} options[] = {
  {"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, 1, 0},
  {"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 1, 0},
  {"SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, 1, 0},
  {"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 1, 0},
  {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 0, 0},
  {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 0, 0},
  {"SO_BROADCAST", SOL_SOCKET, SO_BROADCAST, 1, 0},
  {"IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY, 1, 0},
  {"SO_ERROR", SOL_SOCKET, SO_ERROR, 0, 1},
  {"SO_TYPE", SOL_SOCKET, SO_TYPE, 0, 1},
  {NULL, 0, 0, 0, 0},
};

static const struct option *check_option(lua_State *L, const char *fname) {
  const char *name = errors_tocstring(L, 2, NULL);
  if (name == NULL) errors_methoderror(L, 2, fname, errors_cstring_problem(L, 2, "option name"));
  for (const struct option *o = options; o->name; o++)
    if (strcmp(o->name, name) == 0) return o;
  errors_methoderror(L, 2, fname, lua_pushfstring(L, "unknown option '%s'", name));
  return NULL;
}

/* sock:setsockopt(name, value): value a boolean or an integer. */
static int sock_setsockopt(lua_State *L) {
  struct sock *s = sock_check_open(L, "setsockopt");
  const struct option *o = check_option(L, "setsockopt");
  if (o->read_only) errors_methoderror(L, 2, "setsockopt", lua_pushfstring(L, "option '%s' is read-only", o->name));
  int value, isint;
  if (lua_type(L, 3) == LUA_TBOOLEAN) value = lua_toboolean(L, 3);
  else {
    lua_Integer v = lua_tointegerx(L, 3, &isint);
    if (!isint || lua_type(L, 3) != LUA_TNUMBER) errors_methodtypeerror(L, 3, "setsockopt", "boolean or integer");
    if (v < 0 || v > 0x7fffffff) errors_methoderror(L, 3, "setsockopt", "value out of range");
    value = (int)v;
  }
  if (setsockopt(s->io.fd, o->level, o->opt, &value, sizeof value) < 0) sock_raise_os(L, "setsockopt", errno);
  return 0;
}

/* sock:getsockopt(name) -> boolean (flags) | integer */
static int sock_getsockopt(lua_State *L) {
  struct sock *s = sock_check_open(L, "getsockopt");
  const struct option *o = check_option(L, "getsockopt");
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(s->io.fd, o->level, o->opt, &value, &len) < 0) sock_raise_os(L, "getsockopt", errno);
  if (o->is_bool) lua_pushboolean(L, value != 0);
  else lua_pushinteger(L, value);
  return 1;
}

static const luaL_Reg socket_methods[] = {
  {"bind", sock_bind},
  {"listen", sock_listen},
  {"shutdown", sock_shutdown},
  {"close", sock_close},
  {"closed", sock_closed},
  {"getsockname", sock_getsockname},
  {"getpeername", sock_getpeername},
  {"setsockopt", sock_setsockopt},
  {"getsockopt", sock_getsockopt},
  {"fileno", sock_fileno},
  {"family", sock_family},
  {"__close", sock_close},
  {"__gc", sock_gc},
  {"__tostring", sock_tostring},
  {NULL, NULL}
};

static const luaL_Reg socket_functions[] = {
  {"socket", l_socket},
  {"pipe_object", l_pipe_object},
  {NULL, NULL}
};

/* Registers the Socket type (socket.c's methods and sockio.c's) and the
 * functions into the module table on top; core.socket_methods is the
 * methods table that network.lua extends (as_stream). */
void socket_open(lua_State *L, int ctx) {
  ctx_newtype(L, SOCKET_MT, socket_methods, ctx, MT_SOCKET);
  ctx_functions(L, socket_functions, ctx);
  ctx_functions(L, sockbuf_functions, ctx);
  ctx_functions(L, sockout_functions, ctx);
  address_open(L, ctx);
  luaL_getmetatable(L, SOCKET_MT);
  lua_getfield(L, -1, "__index");
  ctx_functions(L, sockio_methods, ctx);
  lua_setfield(L, -3, "socket_methods");
  lua_pop(L, 1);
}
