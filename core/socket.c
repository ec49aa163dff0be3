/* core/socket.c: curio.socket, the Socket methods and addresses (API.md
 * section 10). Servers, name resolution and streams are policy, in
 * lua/curio/network.lua.
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
 * 3. A method that may block raises outside a task even when it would not
 *    wait; it reaches a cancellation point (a pending cancel or timeout)
 *    only when it has to wait, as curio's do.
 * 4. The socket owns its descriptor: close(), <close> and __gc close it
 *    once (io.c rule 4); a closed socket has fd -1 and every method but
 *    close raises OSError EBADF, so a number reused by a new descriptor is
 *    never touched through the old object.
 * 5. Addresses: {host, port} tables (metatable curio.Address: .host,
 *    .port, tostring "host:port", "[v6host]:port") for inet and inet6, a
 *    path string for unix. C takes numeric hosts only; network.lua
 *    resolves names (in a worker thread) before calling here. */
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
#include "module.h"
#include "errors.h"

struct sock {
  struct io_handle io; /* first (io.c) */
  int family, type;
  int drained;         /* rule 2 */
};

static const char *const family_names[] = {"inet", "inet6", "unix", NULL};
static const int family_values[] = {AF_INET, AF_INET6, AF_UNIX};
static const char *const type_names[] = {"stream", "dgram", NULL};
static const int type_values[] = {SOCK_STREAM, SOCK_DGRAM};

/* A pipe (a subprocess's stdin, stdout or stderr) is a Socket of family
 * "pipe" (AF_UNSPEC here) read with read() and written with write(): the
 * same waits, busy checks and closing, behind a stream (subprocess.lua). */
#define FAMILY_PIPE AF_UNSPEC

static ssize_t sock_read(struct sock *s, void *buf, size_t len) {
  return s->family == FAMILY_PIPE ? read(s->io.fd, buf, len) : recv(s->io.fd, buf, len, 0);
}

static ssize_t sock_write(struct sock *s, const void *buf, size_t len) {
  return s->family == FAMILY_PIPE ? write(s->io.fd, buf, len) : send(s->io.fd, buf, len, MSG_NOSIGNAL);
}

static const char *family_name(int family) {
  if (family == FAMILY_PIPE) return "pipe";
  for (int i = 0; family_names[i]; i++)
    if (family_values[i] == family) return family_names[i];
  return "?";
}

/* ---- errors ---- */

static int raise_os(lua_State *L, const char *fname, int err) {
  return errors_raise_os(L, fname, err);
}

/* Rule 4: the OSError for a closed socket. */
static int raise_closed(lua_State *L, const char *fname) {
  errors_push_os(L, fname, EBADF);
  if (lua_istable(L, -1)) {
    lua_pushfstring(L, "%s: socket is closed", fname);
    lua_setfield(L, -2, "message");
  }
  return lua_error(L);
}

/* Argument errors of methods count from the first argument after self, as
 * Lua's own messages for methods do. */
static int arg_error(lua_State *L, int arg, const char *fname, const char *msg) {
  return errors_argerror(L, arg - 1, fname, msg);
}

static int type_error(lua_State *L, int arg, const char *fname, const char *tname) {
  const char *got = lua_type(L, arg) == LUA_TNONE ? "no value" : luaL_typename(L, arg);
  return luaL_error(L, "bad argument #%d to '%s' (%s expected, got %s)", arg - 1, fname, tname, got);
}

static struct sock *check_sock(lua_State *L, const char *fname) {
  struct sock *s = ctx_testudata(L, 1, MT_SOCKET);
  if (s == NULL) errors_typeerror(L, 1, fname, "Socket");
  return s;
}

static struct sock *check_open(lua_State *L, const char *fname) {
  struct sock *s = check_sock(L, fname);
  if (s->io.fd < 0) raise_closed(L, fname);
  return s;
}

static lua_Integer check_size(lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Integer n = lua_tointegerx(L, arg, &isnum);
  if (!isnum) {
    if (lua_type(L, arg) == LUA_TNUMBER) arg_error(L, arg, fname, "number has no integer representation");
    type_error(L, arg, fname, "number");
  }
  if (n < 0) arg_error(L, arg, fname, "non-negative integer expected");
  return n;
}

static const char *check_data(lua_State *L, int arg, const char *fname, size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) type_error(L, arg, fname, "string");
  return lua_tolstring(L, arg, len);
}

/* ---- addresses (rule 5) ---- */

#define ADDRESS_MT "curio.Address"

/* Pushes the address in sa (len bytes) in its Lua form. */
static void push_address(lua_State *L, const struct sockaddr *sa, socklen_t len) {
  char host[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    if (n > 0 && un->sun_path[0] != '\0') n = strnlen(un->sun_path, n);
    lua_pushlstring(L, un->sun_path, n);
    return;
  }
  int port;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else {
    lua_pushnil(L);
    return;
  }
  lua_createtable(L, 2, 0);
  lua_pushstring(L, host);
  lua_rawseti(L, -2, 1);
  lua_pushinteger(L, port);
  lua_rawseti(L, -2, 2);
  luaL_setmetatable(L, ADDRESS_MT);
}

/* Reads the address at arg for a socket of `family` into ss. */
static socklen_t get_address(lua_State *L, int arg, int family, struct sockaddr_storage *ss,
                             const char *fname) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_UNIX) {
    size_t n;
    if (lua_type(L, arg) != LUA_TSTRING) type_error(L, arg, fname, "path string");
    const char *path = lua_tolstring(L, arg, &n);
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    if (n == 0 || n >= sizeof un->sun_path) arg_error(L, arg, fname, "unix socket path empty or too long");
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '\0'));
  }
  if (lua_type(L, arg) != LUA_TTABLE) type_error(L, arg, fname, "address table {host, port}");
  if (lua_rawgeti(L, arg, 1) == LUA_TNIL) { lua_pop(L, 1); lua_getfield(L, arg, "host"); }
  if (lua_rawgeti(L, arg, 2) == LUA_TNIL) { lua_pop(L, 1); lua_getfield(L, arg, "port"); }
  const char *host = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
  if (host == NULL && !lua_isnil(L, -2)) arg_error(L, arg, fname, "address host must be a string");
  int isint;
  lua_Integer port = lua_tointegerx(L, -1, &isint);
  if (!isint) arg_error(L, arg, fname, "address port must be an integer");
  if (port < 0 || port > 65535) arg_error(L, arg, fname, "port out of range 0-65535");
  if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0) host = NULL;
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    if (host == NULL) in6->sin6_addr = in6addr_any;
    else if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
      arg_error(L, arg, fname, lua_pushfstring(L, "not a numeric IPv6 address: '%s'", host));
    len = sizeof *in6;
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (host == NULL) in->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
      arg_error(L, arg, fname, lua_pushfstring(L, "not a numeric IPv4 address: '%s'", host));
    len = sizeof *in;
  }
  lua_pop(L, 2);
  return len;
}

static int address_index(lua_State *L) {
  const char *key = lua_tostring(L, 2);
  if (key != NULL && strcmp(key, "host") == 0) lua_rawgeti(L, 1, 1);
  else if (key != NULL && strcmp(key, "port") == 0) lua_rawgeti(L, 1, 2);
  else lua_pushnil(L);
  return 1;
}

static int address_tostring(lua_State *L) {
  lua_rawgeti(L, 1, 1);
  lua_rawgeti(L, 1, 2);
  const char *host = lua_tostring(L, -2);
  if (host == NULL) host = "?";
  lua_pushfstring(L, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, lua_tostring(L, -1));
  return 1;
}

static int address_eq(lua_State *L) {
  for (int i = 1; i <= 2; i++) {
    lua_rawgeti(L, 1, i);
    lua_rawgeti(L, 2, i);
    if (!lua_rawequal(L, -1, -2)) { lua_pushboolean(L, 0); return 1; }
    lua_pop(L, 2);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* core.address(host, port) -> an address table (network.lua's results). */
static int l_address(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, 2);
  luaL_setmetatable(L, ADDRESS_MT);
  return 1;
}

/* ---- creation and closing ---- */

/* Pushes a new closed socket userdata of family/type (rule 4). */
static struct sock *new_sock(lua_State *L, int family, int type) {
  struct sock *s = lua_newuserdatauv(L, sizeof *s, 0);
  io_handle_init(&s->io, -1);
  s->family = family;
  s->type = type;
  s->drained = 0;
  ctx_setmetatable(L, ctx_get(L), MT_SOCKET);
  return s;
}

static void set_fd(struct sock *s, int fd) {
  io_handle_init(&s->io, fd);
  s->drained = 0;
}

/* core.pipe_object(fd) -> a Socket of family "pipe" owning fd, which it
 * makes non-blocking. */
static int l_pipe_object(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "file descriptor expected");
  struct sock *s = new_sock(L, FAMILY_PIPE, SOCK_STREAM);
  int flags = fcntl((int)fd, F_GETFL);
  if (flags < 0 || fcntl((int)fd, F_SETFL, flags | O_NONBLOCK) < 0) raise_os(L, "pipe", errno);
  set_fd(s, (int)fd);
  return 1;
}

/* curio.socket(family, type) -> Socket ("inet" | "inet6" | "unix",
 * "stream" | "dgram"; defaults "inet", "stream"). */
static int l_socket(lua_State *L) {
  int fi = 0, ti = 0;
  if (!lua_isnoneornil(L, 1)) {
    const char *f = lua_tostring(L, 1);
    for (fi = 0; family_names[fi] && (f == NULL || lua_type(L, 1) != LUA_TSTRING || strcmp(f, family_names[fi])); fi++) {}
    if (family_names[fi] == NULL) errors_argerror(L, 1, "socket", "family \"inet\", \"inet6\" or \"unix\" expected");
  }
  if (!lua_isnoneornil(L, 2)) {
    const char *ty = lua_tostring(L, 2);
    for (ti = 0; type_names[ti] && (ty == NULL || lua_type(L, 2) != LUA_TSTRING || strcmp(ty, type_names[ti])); ti++) {}
    if (type_names[ti] == NULL) errors_argerror(L, 2, "socket", "type \"stream\" or \"dgram\" expected");
  }
  struct sock *s = new_sock(L, family_values[fi], type_values[ti]);
  int fd = socket(s->family, s->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) raise_os(L, "socket", errno);
  set_fd(s, fd);
  return 1;
}

/* sock:close(), <close>, __gc: closes once (rule 4). */
static int sock_close(lua_State *L) {
  struct sock *s = check_sock(L, "close");
  if (io_close(&s->io) < 0) raise_os(L, "close", errno);
  return 0;
}

static int sock_gc(lua_State *L) {
  struct sock *s = lua_touserdata(L, 1);
  io_close(&s->io);
  return 0;
}

static int sock_fileno(lua_State *L) {
  lua_pushinteger(L, check_open(L, "fileno")->io.fd);
  return 1;
}

static int sock_closed(lua_State *L) {
  lua_pushboolean(L, check_sock(L, "closed")->io.fd < 0);
  return 1;
}

static int sock_family(lua_State *L) {
  struct sock *s = check_sock(L, "family");
  lua_pushstring(L, family_name(s->family));
  lua_pushstring(L, s->type == SOCK_STREAM ? "stream" : "dgram");
  return 2;
}

static int sock_tostring(lua_State *L) {
  struct sock *s = check_sock(L, "tostring");
  if (s->io.fd < 0) lua_pushfstring(L, "Socket (%s, closed)", family_name(s->family));
  else lua_pushfstring(L, "Socket (fd=%d, %s, %s)", s->io.fd, family_name(s->family),
                       s->type == SOCK_STREAM ? "stream" : "dgram");
  return 1;
}

/* ---- waiting ---- */

/* The task that may block in fname (rule 3: checked before trying). */
static struct task *in_task(lua_State *L, const char *fname) {
  return trap_current(L, fname);
}

static void push_busy(lua_State *L, int writing, const char *fname) {
  lua_pushfstring(L, "%s: another task is already %s this socket", fname,
                  writing ? "writing to" : "reading from");
  errors_push(L, writing ? "WriteResourceBusy" : "ReadResourceBusy", lua_tostring(L, -1));
  lua_remove(L, -2);
}

/* A task waits to read (write) s: a second reader (writer) is refused at
 * once, even when it would not wait, so that two tasks' data never
 * interleave (curio's ReadResourceBusy, WriteResourceBusy). */
static void check_idle(lua_State *L, struct sock *s, int writing, const char *fname) {
  if ((writing ? s->io.wr.data : s->io.rd.data) != NULL) {
    push_busy(L, writing, fname);
    lua_error(L);
  }
}

/* Suspends the running task until s is ready in direction w (io.c). */
static int wait_ready(lua_State *L, struct sock *s, int writing, const char *fname, lua_KFunction k) {
  struct task *t = trap_enter(L, fname);
  return io_wait(L, t, writing ? &s->io.wr : &s->io.rd, k);
}

/* In a continuation: the socket at 1, after raising what ended the wait
 * (a cancellation, a timeout, the socket closed meanwhile). */
static struct sock *resumed(lua_State *L, lua_KContext ctx, const char *fname) {
  struct task *t = trap_resumed(L);
  trap_result(L, t, (int)ctx);
  lua_settop(L, (int)ctx);
  struct sock *s = lua_touserdata(L, 1);
  if (s->io.fd < 0) raise_closed(L, fname);
  return s;
}

static int is_again(int err) {
  return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- recv ---- */

static int recv_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, maxbytes. */
static int do_recv(lua_State *L, struct sock *s) {
  lua_Integer n = lua_tointeger(L, 2);
  if (n == 0) { lua_pushliteral(L, ""); return 1; }
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
    if (!is_again(errno)) raise_os(L, "recv", errno);
  }
  return wait_ready(L, s, 0, "recv", recv_k);
}

static int recv_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  struct sock *s = resumed(L, ctx, "recv");
  s->drained = 0;
  return do_recv(L, s);
}

/* sock:recv(maxbytes) -> up to maxbytes bytes, "" at the end of the stream. */
static int sock_recv(lua_State *L) {
  struct sock *s = check_open(L, "recv");
  check_size(L, 2, "recv");
  in_task(L, "recv");
  check_idle(L, s, 0, "recv");
  lua_settop(L, 2);
  return do_recv(L, s);
}

/* ---- reading to the end (subprocess pipes: check_output) ---- */

/* A growing buffer owned by a userdata (core.growbuf()): read_to_end
 * appends to it, so what was read survives an interrupted read. realloc
 * of a big block moves no bytes (mremap), so the output is touched twice
 * (this buffer, then the Lua string), not four times as with chunks
 * joined by table.concat. */
struct growbuf {
  char *p;
  size_t len, cap;
};

#define GROWBUF_MT "curio.growbuf"

static int growbuf_gc(lua_State *L) {
  struct growbuf *g = luaL_checkudata(L, 1, GROWBUF_MT);
  free(g->p);
  g->p = NULL;
  g->len = g->cap = 0;
  return 0;
}

/* holder:take() -> what was read so far, emptying the holder. */
static int growbuf_take(lua_State *L) {
  struct growbuf *g = luaL_checkudata(L, 1, GROWBUF_MT);
  lua_pushlstring(L, g->p != NULL ? g->p : "", g->len);
  growbuf_gc(L);
  return 1;
}

static int l_growbuf(lua_State *L) {
  struct growbuf *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->p = NULL;
  g->len = g->cap = 0;
  if (luaL_newmetatable(L, GROWBUF_MT)) {
    lua_pushcfunction(L, growbuf_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    lua_pushcfunction(L, growbuf_take);
    lua_setfield(L, -2, "take");
    lua_setfield(L, -2, "__index");
  }
  lua_setmetatable(L, -2);
  return 1;
}

static int read_to_end_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, holder. */
static int do_read_to_end(lua_State *L, struct sock *s) {
  struct growbuf *g = lua_touserdata(L, 2);
  for (;;) {
    if (g->cap - g->len < 65536) {
      size_t cap = g->cap < (1 << 20) ? (1 << 20) : g->cap * 2;
      char *p = realloc(g->p, cap);
      if (p == NULL) return luaL_error(L, "read: not enough memory");
      g->p = p;
      g->cap = cap;
    }
    ssize_t n = sock_read(s, g->p + g->len, g->cap - g->len);
    if (n > 0) { g->len += (size_t)n; continue; }
    if (n == 0) {
      lua_remove(L, 1); /* the holder is at 1 now */
      return growbuf_take(L);
    }
    if (errno == EINTR) continue;
    if (!is_again(errno)) raise_os(L, "read", errno);
    return wait_ready(L, s, 0, "read", read_to_end_k);
  }
}

static int read_to_end_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_read_to_end(L, resumed(L, ctx, "read"));
}

/* core.read_to_end(sock, holder) -> everything up to the end. */
static int l_read_to_end(lua_State *L) {
  struct sock *s = check_open(L, "read");
  luaL_checkudata(L, 2, GROWBUF_MT);
  in_task(L, "read");
  check_idle(L, s, 0, "read");
  lua_settop(L, 2);
  return do_read_to_end(L, s);
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
  if (!is_again(errno)) raise_os(L, "send", errno);
  return wait_ready(L, s, 1, "send", send_k);
}

static int send_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_send(L, resumed(L, ctx, "send"));
}

/* sock:send(data) -> bytes sent. */
static int sock_send(lua_State *L) {
  struct sock *s = check_open(L, "send");
  check_data(L, 2, "send", NULL);
  in_task(L, "send");
  check_idle(L, s, 1, "send");
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

/* Stack: sock, data, bytes sent so far. */
static int do_sendall(lua_State *L, struct sock *s) {
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  size_t done = (size_t)lua_tointeger(L, 3);
  while (done < len) {
    ssize_t n = sock_write(s, data + done, len - done);
    if (n >= 0) { done += (size_t)n; continue; }
    if (errno == EINTR) continue;
    if (!is_again(errno)) {
      errors_push_os(L, "sendall", errno);
      return raise_sent(L, (lua_Integer)done);
    }
    lua_pushinteger(L, (lua_Integer)done);
    lua_replace(L, 3);
    struct task *t = trap_enter_quiet(L, ctx_get(L), "sendall");
    if (trap_push_due(L, t)) return raise_sent(L, (lua_Integer)done);
    return io_wait(L, t, &s->io.wr, sendall_k);
  }
  return 0;
}

static int sendall_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  lua_Integer done = lua_tointeger(L, 3);
  if (trap_push_interrupt(L, t)) return raise_sent(L, done);
  lua_settop(L, (int)ctx);
  struct sock *s = lua_touserdata(L, 1);
  if (s->io.fd < 0) {
    errors_push_os(L, "sendall", EBADF);
    return raise_sent(L, done);
  }
  return do_sendall(L, s);
}

/* sock:sendall(data): sends all of data; an error (a cancellation, a
 * timeout) carries .bytes_sent. */
static int sock_sendall(lua_State *L) {
  struct sock *s = check_open(L, "sendall");
  check_data(L, 2, "sendall", NULL);
  in_task(L, "sendall");
  check_idle(L, s, 1, "sendall");
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  return do_sendall(L, s);
}

/* ---- accept ---- */

static int accept_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock. */
static int do_accept(lua_State *L, struct sock *s) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  struct sock *c = new_sock(L, s->family, s->type); /* first: no fd to leak */
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
    if (!is_again(errno)) raise_os(L, "accept", errno);
    lua_pop(L, 1);
    return wait_ready(L, s, 0, "accept", accept_k);
  }
  set_fd(c, fd);
  if (s->family == AF_UNIX) lua_pushliteral(L, "");
  else push_address(L, (struct sockaddr *)&ss, len);
  return 2;
}

static int accept_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_accept(L, resumed(L, ctx, "accept"));
}

/* sock:accept() -> client Socket, its address. */
static int sock_accept(lua_State *L) {
  struct sock *s = check_open(L, "accept");
  in_task(L, "accept");
  check_idle(L, s, 0, "accept");
  lua_settop(L, 1);
  return do_accept(L, s);
}

/* ---- connect ---- */

static int connect_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  struct sock *s = resumed(L, ctx, "connect");
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err != 0) raise_os(L, "connect", err);
  return 0;
}

/* sock:connect(addr) */
static int sock_connect(lua_State *L) {
  struct sock *s = check_open(L, "connect");
  struct sockaddr_storage ss;
  socklen_t len = get_address(L, 2, s->family, &ss, "connect");
  in_task(L, "connect");
  check_idle(L, s, 1, "connect");
  lua_settop(L, 1);
  if (connect(s->io.fd, (struct sockaddr *)&ss, len) == 0) return 0;
  if (errno != EINPROGRESS && errno != EINTR && !is_again(errno)) raise_os(L, "connect", errno);
  return wait_ready(L, s, 1, "connect", connect_k);
}

/* ---- recvfrom, sendto ---- */

static int recvfrom_k(lua_State *L, int status, lua_KContext ctx);

static int do_recvfrom(lua_State *L, struct sock *s) {
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
    else push_address(L, (struct sockaddr *)&ss, len);
    return 2;
  }
  if (!is_again(errno)) raise_os(L, "recvfrom", errno);
  return wait_ready(L, s, 0, "recvfrom", recvfrom_k);
}

static int recvfrom_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_recvfrom(L, resumed(L, ctx, "recvfrom"));
}

/* sock:recvfrom(maxbytes) -> data, address */
static int sock_recvfrom(lua_State *L) {
  struct sock *s = check_open(L, "recvfrom");
  check_size(L, 2, "recvfrom");
  in_task(L, "recvfrom");
  check_idle(L, s, 0, "recvfrom");
  lua_settop(L, 2);
  return do_recvfrom(L, s);
}

static int sendto_k(lua_State *L, int status, lua_KContext ctx);

/* Stack: sock, data, address. */
static int do_sendto(lua_State *L, struct sock *s) {
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  struct sockaddr_storage ss;
  socklen_t alen = get_address(L, 3, s->family, &ss, "sendto");
  ssize_t n;
  do n = sendto(s->io.fd, data, len, MSG_NOSIGNAL, (struct sockaddr *)&ss, alen);
  while (n < 0 && errno == EINTR);
  if (n >= 0) { lua_pushinteger(L, n); return 1; }
  if (!is_again(errno)) raise_os(L, "sendto", errno);
  return wait_ready(L, s, 1, "sendto", sendto_k);
}

static int sendto_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return do_sendto(L, resumed(L, ctx, "sendto"));
}

/* sock:sendto(data, addr) -> bytes sent */
static int sock_sendto(lua_State *L) {
  struct sock *s = check_open(L, "sendto");
  check_data(L, 2, "sendto", NULL);
  struct sockaddr_storage ss;
  get_address(L, 3, s->family, &ss, "sendto"); /* checked before blocking */
  in_task(L, "sendto");
  check_idle(L, s, 1, "sendto");
  lua_settop(L, 3);
  return do_sendto(L, s);
}

/* ---- the calls that never block ---- */

/* sock:bind(addr) */
static int sock_bind(lua_State *L) {
  struct sock *s = check_open(L, "bind");
  struct sockaddr_storage ss;
  socklen_t len = get_address(L, 2, s->family, &ss, "bind");
  if (bind(s->io.fd, (struct sockaddr *)&ss, len) < 0) raise_os(L, "bind", errno);
  return 0;
}

/* sock:listen(backlog) (default 128) */
static int sock_listen(lua_State *L) {
  struct sock *s = check_open(L, "listen");
  lua_Integer backlog = lua_isnoneornil(L, 2) ? 128 : check_size(L, 2, "listen");
  if (backlog > 65535) backlog = 65535;
  if (listen(s->io.fd, (int)backlog) < 0) raise_os(L, "listen", errno);
  return 0;
}

/* sock:shutdown("r" | "w" | "rw") */
static int sock_shutdown(lua_State *L) {
  static const char *const hows[] = {"r", "w", "rw", NULL};
  static const int how_values[] = {SHUT_RD, SHUT_WR, SHUT_RDWR};
  struct sock *s = check_open(L, "shutdown");
  const char *how = lua_tostring(L, 2);
  int i = 0;
  while (hows[i] && (how == NULL || lua_type(L, 2) != LUA_TSTRING || strcmp(how, hows[i]))) i++;
  if (hows[i] == NULL) arg_error(L, 2, "shutdown", "\"r\", \"w\" or \"rw\" expected");
  if (shutdown(s->io.fd, how_values[i]) < 0) raise_os(L, "shutdown", errno);
  return 0;
}

static int sock_getsockname(lua_State *L) {
  struct sock *s = check_open(L, "getsockname");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(s->io.fd, (struct sockaddr *)&ss, &len) < 0) raise_os(L, "getsockname", errno);
  push_address(L, (struct sockaddr *)&ss, len);
  return 1;
}

static int sock_getpeername(lua_State *L) {
  struct sock *s = check_open(L, "getpeername");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(s->io.fd, (struct sockaddr *)&ss, &len) < 0) raise_os(L, "getpeername", errno);
  push_address(L, (struct sockaddr *)&ss, len);
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
  const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
  if (name == NULL) type_error(L, 2, fname, "option name");
  for (const struct option *o = options; o->name; o++)
    if (strcmp(o->name, name) == 0) return o;
  arg_error(L, 2, fname, lua_pushfstring(L, "unknown option '%s'", name));
  return NULL;
}

/* sock:setsockopt(name, value): value a boolean or an integer. */
static int sock_setsockopt(lua_State *L) {
  struct sock *s = check_open(L, "setsockopt");
  const struct option *o = check_option(L, "setsockopt");
  if (o->read_only) arg_error(L, 2, "setsockopt", lua_pushfstring(L, "option '%s' is read-only", o->name));
  int value, isint;
  if (lua_type(L, 3) == LUA_TBOOLEAN) value = lua_toboolean(L, 3);
  else {
    lua_Integer v = lua_tointegerx(L, 3, &isint);
    if (!isint || lua_type(L, 3) != LUA_TNUMBER) type_error(L, 3, "setsockopt", "boolean or integer");
    if (v < 0 || v > 0x7fffffff) arg_error(L, 3, "setsockopt", "value out of range");
    value = (int)v;
  }
  if (setsockopt(s->io.fd, o->level, o->opt, &value, sizeof value) < 0) raise_os(L, "setsockopt", errno);
  return 0;
}

/* sock:getsockopt(name) -> boolean (flags) | integer */
static int sock_getsockopt(lua_State *L) {
  struct sock *s = check_open(L, "getsockopt");
  const struct option *o = check_option(L, "getsockopt");
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(s->io.fd, o->level, o->opt, &value, &len) < 0) raise_os(L, "getsockopt", errno);
  if (o->is_bool) lua_pushboolean(L, value != 0);
  else lua_pushinteger(L, value);
  return 1;
}

/* ---- name resolution (runs in a worker thread: no upvalues) ---- */

/* core.getaddrinfo(host, port, family|nil, type|nil, passive) -> list of
 * {family, host, port} | nil, message. Blocks: network.lua calls it
 * through run_in_thread. */
static int l_getaddrinfo(lua_State *L) {
  const char *host = luaL_optstring(L, 1, NULL);
  lua_Integer port = luaL_checkinteger(L, 2);
  const char *family = luaL_optstring(L, 3, NULL);
  const char *type = luaL_optstring(L, 4, "stream");
  char service[16];
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family == NULL ? AF_UNSPEC : strcmp(family, "inet6") == 0 ? AF_INET6 : AF_INET;
  hints.ai_socktype = strcmp(type, "dgram") == 0 ? SOCK_DGRAM : SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (lua_toboolean(L, 5) ? AI_PASSIVE : 0) | AI_ADDRCONFIG;
  snprintf(service, sizeof service, "%d", (int)port);
  if (host != NULL && host[0] == '\0') host = NULL;
  int rc = getaddrinfo(host, service, &hints, &res);
  if (rc == EAI_BADFLAGS || (rc != 0 && host != NULL && strcmp(host, "localhost") == 0)) {
    hints.ai_flags &= ~AI_ADDRCONFIG; /* (no configured address: loopback only) */
    rc = getaddrinfo(host, service, &hints, &res);
  }
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    return 2;
  }
  lua_newtable(L);
  int i = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN];
    int p;
    if (ai->ai_family == AF_INET) {
      struct sockaddr_in *in = (struct sockaddr_in *)ai->ai_addr;
      inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
      p = ntohs(in->sin_port);
    } else if (ai->ai_family == AF_INET6) {
      struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ai->ai_addr;
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
      p = ntohs(in6->sin6_port);
    } else {
      continue;
    }
    lua_createtable(L, 3, 0);
    lua_pushstring(L, ai->ai_family == AF_INET ? "inet" : "inet6");
    lua_rawseti(L, -2, 1);
    lua_pushstring(L, buf);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, p);
    lua_rawseti(L, -2, 3);
    lua_rawseti(L, -2, ++i);
  }
  freeaddrinfo(res);
  return 1;
}

/* core.is_numeric_host(host, family) -> true when C takes host as it is. */
static int l_is_numeric_host(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  const char *family = luaL_optstring(L, 2, "inet");
  unsigned char buf[sizeof(struct in6_addr)];
  int ok = host[0] == '\0' || strcmp(host, "*") == 0 ||
           inet_pton(strcmp(family, "inet6") == 0 ? AF_INET6 : AF_INET, host, buf) == 1;
  lua_pushboolean(L, ok);
  return 1;
}

static const luaL_Reg socket_methods[] = {
  {"recv", sock_recv},
  {"send", sock_send},
  {"sendall", sock_sendall},
  {"accept", sock_accept},
  {"connect", sock_connect},
  {"bind", sock_bind},
  {"listen", sock_listen},
  {"recvfrom", sock_recvfrom},
  {"sendto", sock_sendto},
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
  {"address", l_address},
  {"pipe_object", l_pipe_object},
  {"growbuf", l_growbuf},
  {"read_to_end", l_read_to_end},
  {"is_numeric_host", l_is_numeric_host},
  {NULL, NULL}
};

/* Registers the Socket and Address types and the functions into the
 * module table on top; core.socket_methods is the methods table that
 * network.lua extends (as_stream). */
void socket_open(lua_State *L, int ctx) {
  static const luaL_Reg address_meta[] = {
    {"__index", address_index}, {"__tostring", address_tostring}, {"__eq", address_eq}, {NULL, NULL}};
  module_newtype(L, SOCKET_MT, socket_methods, ctx, MT_SOCKET);
  luaL_newmetatable(L, ADDRESS_MT);
  luaL_setfuncs(L, address_meta, 0);
  lua_pop(L, 1);
  module_functions(L, socket_functions, ctx);
  lua_pushcfunction(L, l_getaddrinfo);
  lua_setfield(L, -2, "getaddrinfo");
  luaL_getmetatable(L, SOCKET_MT);
  lua_getfield(L, -1, "__index");
  lua_setfield(L, -3, "socket_methods");
  lua_pop(L, 1);
}
