/* core/tlssock.c: the SSLSocket as a Lua value (tls.c has its rules and
 * its I/O): the BIO over the transport's descriptor (tls.c rule 2),
 * wrapping a socket (rule 1), the one close (rule 7), tostring, fields,
 * and the registration of the type. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
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

/* ---- the BIO (rule 2) ---- */

static int bio_write(BIO *b, const char *buf, int len) {
  struct tls_sock *t = BIO_get_data(b);
  ssize_t n;
  BIO_clear_retry_flags(b);
  do n = send(t->sock->io.fd, buf, (size_t)len, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n >= 0) { t->nwritten += (size_t)n; return (int)n; }
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
  else t->last_errno = errno;
  return -1;
}

/* Rule 8: OpenSSL's reads are served from t->rbuf, which one recv fills
 * as far as the socket has bytes; a recv that came back short marks t
 * drained, and until a wait ends a read says "retry" without a system
 * call (it could only fail with EAGAIN). */
static int bio_read(BIO *b, char *buf, int len) {
  struct tls_sock *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (t->rpos == t->rlen) {
    if (t->drained) {
      BIO_set_retry_read(b);
      return -1;
    }
    if (t->rbuf == NULL || t->rgrow) { /* (empty: nothing to keep) */
      size_t cap = t->rbuf == NULL ? TLS_READ_AHEAD : TLS_READ_AHEAD_BULK;
      char *p = realloc(t->rbuf, cap);
      if (p == NULL) {
        t->last_errno = ENOMEM;
        return -1;
      }
      t->rbuf = p;
      t->rcap = cap;
      t->rgrow = 0;
    }
    ssize_t n;
    do n = recv(t->sock->io.fd, t->rbuf, t->rcap, 0); while (n < 0 && errno == EINTR);
    if (n <= 0) {
      if (n == 0) return 0;
      if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
      else t->last_errno = errno;
      return -1;
    }
    t->nread += (size_t)n;
    t->drained = (size_t)n < t->rcap;
    t->rgrow = (size_t)n == t->rcap && t->rcap < TLS_READ_AHEAD_BULK;
    t->rpos = 0;
    t->rlen = (size_t)n;
  }
  size_t m = t->rlen - t->rpos < (size_t)len ? t->rlen - t->rpos : (size_t)len;
  memcpy(buf, t->rbuf + t->rpos, m);
  t->rpos += m;
  return (int)m;
}

/* Rule 8: frees the read-ahead (closed, unwrapped). */
void tls_free_buffer(struct tls_sock *t) {
  free(t->rbuf);
  t->rbuf = NULL;
  t->rcap = 0;
  t->rgrow = 0;
  t->rpos = t->rlen = 0;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b; (void)num; (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static const char bio_key = 'B'; /* the method's context slot (ctx.h) */

static int bio_slot_gc(lua_State *L) {
  BIO_METHOD **slot = lua_touserdata(L, 1);
  BIO_meth_free(*slot);
  *slot = NULL;
  return 0;
}

/* The BIO method, made once per Lua state (no global state). */
static BIO_METHOD *bio_method(lua_State *L) {
  struct curio_ctx *ctx = ctx_get(L);
  BIO_METHOD **slot = ctx_slot_find(ctx, &bio_key);
  if (slot == NULL) slot = ctx_slot_make(L, ctx, &bio_key, sizeof *slot, bio_slot_gc);
  if (*slot == NULL) {
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "curio socket");
    if (m == NULL || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
      BIO_meth_free(m);
      luaL_error(L, "wrap_socket: not enough memory");
    }
    *slot = m;
  }
  return *slot;
}
/* ---- checks ---- */

struct tls_sock *tls_check(lua_State *L, const char *fname) {
  struct tls_sock *t = ctx_testudata(L, 1, MT_TLS_SOCKET);
  if (t == NULL) errors_methodtypeerror(L, 1, fname, "SSLSocket");
  return t;
}

int tls_raise_closed(lua_State *L, const char *fname) {
  sock_push_closed(L, fname);
  return lua_error(L);
}

struct tls_sock *tls_check_open(lua_State *L, const char *fname) {
  struct tls_sock *t = tls_check(L, fname);
  if (t->ssl == NULL) tls_raise_closed(L, fname);
  return t;
}
/* ---- closing (rule 7) ---- */

void tls_wake(ev_io *w) {
  if (w->data != NULL) trap_wake(w->data, WAKE_OK);
}

/* Closes t once (at stack index 1 when L is not NULL); with notify,
 * first sends close_notify if that needs no wait (and an interrupted
 * write's record before it, rule 5). */
void tls_close_now(lua_State *L, struct tls_sock *t, int notify) {
  if (t->ssl == NULL) return;
  struct sock *transport = t->sock;
  if (notify && transport != NULL && transport->io.fd >= 0 && SSL_is_init_finished(t->ssl)) {
    size_t written;
    ERR_clear_error();
    if (t->rec == NULL || SSL_write_ex(t->ssl, t->rec, t->rec_len, &written)) SSL_shutdown(t->ssl);
    ERR_clear_error();
  }
  tls_wake(&t->xr);
  tls_wake(&t->xw);
  SSL_free(t->ssl);
  t->ssl = NULL;
  tls_free_buffer(t);
  t->rec = t->ahead = NULL;
  t->sock = NULL;
  if (transport != NULL) io_close(&transport->io); /* (wakes the waiters on rd and wr) */
  if (L != NULL) { /* the transport, a kept string and a kept error go with the socket */
    static const int kept[] = {1, 2, 4}; /* (3, the host name, stays readable) */
    for (int i = 0; i < 3; i++) {
      lua_pushnil(L);
      lua_setiuservalue(L, 1, kept[i]);
    }
  }
}

/* ---- wrapping (rule 1) ---- */

/* Pushes a new SSLSocket over the descriptor of the Socket at 2. */
static int l_tls_wrap(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "wrap_socket");
  struct sock *user = ctx_testudata(L, 2, MT_SOCKET);
  int server_side = lua_toboolean(L, 3);
  const char *host = lua_type(L, 4) == LUA_TSTRING ? lua_tostring(L, 4) : NULL;
  size_t alpn_len = 0;
  const char *alpn = lua_type(L, 5) == LUA_TSTRING ? lua_tolstring(L, 5, &alpn_len) : NULL;
  if (user == NULL) return errors_methodtypeerror(L, 2, "wrap_socket", "Socket");
  if (user->io.fd < 0) tls_raise_closed(L, "wrap_socket");
  if (user->io.kind != &io_socket_kind || user->type != SOCK_STREAM)
    errors_methoderror(L, 2, "wrap_socket", "stream socket expected");
  if (user->io.rd.data != NULL || user->io.wr.data != NULL || user->write_held || user->io.shared != NULL)
    errors_methoderror(L, 2, "wrap_socket", "socket in use by another task");
  if (!server_side && host == NULL && c->check_hostname)
    errors_methoderror(L, 3, "wrap_socket", "opts.server_hostname expected: the context checks host names");
  lua_settop(L, 5);
  struct sock *raw = sock_new_uv(L, user->family, user->type, user->io.kind, 1); /* 6 (rule 8) */
  struct tls_sock *t = lua_newuserdatauv(L, sizeof *t, 4);                        /* 7 */
  memset(t, 0, sizeof *t);
  ctx_setmetatable(L, ctx_get(L), MT_TLS_SOCKET);
  BIO_METHOD *method = bio_method(L);
  ERR_clear_error();
  t->ssl = SSL_new(c->ctx);
  BIO *bio = t->ssl != NULL ? BIO_new(method) : NULL;
  if (bio == NULL) tls_raise_openssl_error(L, "wrap_socket");
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  t->server_side = server_side;
  if (server_side) SSL_set_accept_state(t->ssl);
  else SSL_set_connect_state(t->ssl);
  if (host != NULL && !server_side) {
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    int ok = is_ip || SSL_set_tlsext_host_name(t->ssl, host) == 1; /* (no SNI for addresses: RFC 6066) */
    if (ok && c->check_hostname) {
      SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1
                 : SSL_set1_host(t->ssl, host) == 1;
    }
    if (!ok) tls_raise_openssl_error(L, "wrap_socket");
    lua_pushvalue(L, 4);
    lua_setiuservalue(L, 7, 3);
  }
  if (alpn != NULL && !server_side && SSL_set_alpn_protos(t->ssl, (const unsigned char *)alpn, (unsigned int)alpn_len) != 0)
    tls_raise_openssl_error(L, "wrap_socket");
  if (user->pushed) { /* rule 8: bytes an unwrap gave back are the new connection's first */
    if ((t->rbuf = malloc(TLS_READ_AHEAD_BULK)) == NULL) luaL_error(L, "wrap_socket: not enough memory");
    t->rcap = TLS_READ_AHEAD_BULK; /* (at least what an unwrap gives back) */
    t->rlen = sock_take_back(L, 2, t->rbuf, t->rcap);
  }
  /* last, nothing fails from here: the descriptor changes hands */
  int fd = io_detach(&user->io);
  sock_set_fd(raw, fd);
  t->sock = raw;
  io_watcher_init(&t->xr, fd, EV_READ);
  io_watcher_init(&t->xw, fd, EV_WRITE);
  lua_pushvalue(L, 6);
  lua_setiuservalue(L, 7, 1);
  return 1;
}

/* core.tls_transport(tls, fname) -> the plain Socket under tls, for the
 * calls ssl.lua passes to it (getpeername, setsockopt, ...). */
static int l_tls_transport(lua_State *L) {
  const char *fname = luaL_optstring(L, 2, "transport");
  tls_check_open(L, fname);
  lua_getiuservalue(L, 1, 1);
  return 1;
}
/* ---- the rest ---- */

/* tls:close(), <close>, __gc (rule 7). */
static int tls_close(lua_State *L) {
  struct tls_sock *t = tls_check(L, "close");
  tls_close_now(L, t, 1);
  return 0;
}

static int tls_gc(lua_State *L) {
  struct tls_sock *t = lua_touserdata(L, 1);
  tls_close_now(NULL, t, 1);
  return 0;
}

static int tls_closed(lua_State *L) {
  lua_pushboolean(L, tls_check(L, "closed")->ssl == NULL);
  return 1;
}

static int tls_tostring(lua_State *L) {
  struct tls_sock *t = tls_check(L, "tostring");
  if (t->ssl == NULL) lua_pushliteral(L, "SSLSocket (closed)");
  else lua_pushfstring(L, "SSLSocket (fd=%d, %s, %s)", t->sock->io.fd, t->server_side ? "server" : "client",
                       SSL_is_init_finished(t->ssl) ? SSL_get_version(t->ssl) : "no handshake yet");
  return 1;
}

/* tls.server_hostname (a client's: the name given; a server's: the one
 * the client sent), tls.server_side; otherwise the methods. */
static int tls_index(lua_State *L) {
  const char *key = lua_tostring(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL || key == NULL) return 1;
  struct tls_sock *t = lua_touserdata(L, 1);
  if (strcmp(key, "server_side") == 0) {
    lua_pushboolean(L, t->server_side);
  } else if (strcmp(key, "server_hostname") == 0) {
    if (!t->server_side) lua_getiuservalue(L, 1, 3);
    else if (t->ssl != NULL) lua_pushstring(L, SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name));
    else lua_pushnil(L);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

static const luaL_Reg tls_methods[] = {
  {"close", tls_close},
  {"closed", tls_closed},
  {"__close", tls_close},
  {"__gc", tls_gc},
  {"__tostring", tls_tostring},
  {NULL, NULL}
};

static const luaL_Reg tls_functions[] = {
  {"tls_wrap", l_tls_wrap},
  {"tls_transport", l_tls_transport},
  {NULL, NULL}
};

/* Registers SSLContext (tlsctx.c), SSLSocket and their functions into the
 * module table on top; core.tls_methods is the methods table ssl.lua
 * extends. */
void tls_open(lua_State *L, int ctx) {
  tls_ctx_open(L, ctx);
  ctx_newtype(L, TLS_SOCKET_MT, tls_methods, ctx, MT_TLS_SOCKET);
  ctx_functions(L, tls_functions, ctx);
  ctx_functions(L, tls_auth_functions, ctx);
  luaL_getmetatable(L, TLS_SOCKET_MT);
  lua_getfield(L, -1, "__index");
  ctx_functions(L, tls_info_methods, ctx);
  ctx_functions(L, tls_io_methods, ctx);
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "tls_methods");
  lua_pushvalue(L, ctx);
  lua_insert(L, -2);
  lua_pushcclosure(L, tls_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* luaopen_curio_tls: curio.ssl's C part as a module of its own (tls.so,
 * or linked into the program and libcurio), so that only curio.ssl's
 * first use loads OpenSSL. Its functions close over the context of the
 * state's curio.core (loaded first: lua/curio/ssl.lua). */
int luaopen_curio_tls(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_registry_key) == LUA_TNIL)
    return luaL_error(L, "curio.tls: curio.core is not loaded in this state");
  int ctx = lua_gettop(L);
  lua_newtable(L);
  tls_open(L, ctx);
  return 1;
}
