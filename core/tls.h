/* core/tls.h: curio.ssl on OpenSSL (rules in tls.c): contexts in
 * tlsctx.c, TLS sockets in tls.c (their I/O) and tlssock.c (the type),
 * their errors and certificates in
 * tlsinfo.c. */
#ifndef CURIO_TLS_H
#define CURIO_TLS_H

#include <ev.h>
#include <lua.h>
#include <openssl/ssl.h>
#include "socket.h"

#define TLS_CONTEXT_MT "curio.SSLContext"
#define TLS_SOCKET_MT "curio.SSLSocket"

/* An SSLContext: one SSL_CTX, shared by the sockets made from it (each SSL
 * holds its own reference: the context may be collected first). */
struct tls_ctx {
  SSL_CTX *ctx;
  int server;                 /* made for servers (create_default_context("server")) */
  int check_hostname;         /* clients: the certificate must name server_hostname */
  unsigned char *alpn;        /* the protocols set, in ALPN's wire format, or NULL */
  unsigned int alpn_len;
};

/* tls.c rule 8: the read-ahead of a TLS socket, one record of the
 * largest size with room to spare, and what it grows to once a recv
 * filled it (a bulk transfer: four records a system call). */
#define TLS_READ_AHEAD (16384 + 1024)
#define TLS_READ_AHEAD_BULK (4 * TLS_READ_AHEAD)

/* An SSLSocket. Its transport is a plain Socket (user value 1) that no one
 * else holds: its descriptor handle gives the reader's and the writer's
 * waits (io.rd, io.wr); xr and xw are the waits in the other direction
 * (tls.c rule 3). ssl is NULL once the socket is closed or unwrapped. */
struct tls_sock {
  SSL *ssl;
  struct sock *sock;          /* the transport's record, NULL with ssl */
  ev_io xr, xw;               /* the writer waiting to read, the reader waiting to write */
  int server_side;
  int write_held;             /* a write that waited has not run again yet */
  int both_held;              /* a handshake or a shutdown waits */
  int last_errno;             /* the last system error of the transport */
  size_t nread, nwritten;     /* bytes moved by the transport, for rule 3 */
  const char *rec;            /* tls.c rule 5: the record OpenSSL holds, not all */
  size_t rec_len;             /*   written yet (in the string of user value 2) */
  const char *ahead;          /* the bytes of it not yet counted as sent */
  size_t ahead_len;
  char *rbuf;                 /* tls.c rule 8: bytes received that OpenSSL has not read */
  size_t rpos, rlen, rcap;    /*   yet, rbuf[rpos, rlen) (malloc'd, rcap bytes), or NULL */
  int rgrow;                  /*   a recv filled it: the next grows it to TLS_READ_AHEAD_BULK */
  int drained;                /*   the last recv came back short: the next read waits first */
  int deferred;               /*   a recv that returned bytes met an error (user value 4) */
};

/* tlsctx.c */
struct tls_ctx *tls_check_ctx(lua_State *L, int idx, const char *fname);
int tls_alpn_wire(lua_State *L, int idx, const char *fname, int method);
void tls_ctx_open(lua_State *L, int ctx);

/* tlsinfo.c: errors and what a handshake found */
void tls_push_error(lua_State *L, struct tls_sock *t, const char *fname, int ssl_err);
void tls_push_openssl_error(lua_State *L, const char *fname);
int tls_raise_openssl_error(lua_State *L, const char *fname);
extern const luaL_Reg tls_info_methods[];

/* tls.c: the calls that may wait */
extern const luaL_Reg tls_io_methods[];

/* tlsauth.c: a Channel's authentication (HMAC-SHA256, random bytes) */
extern const luaL_Reg tls_auth_functions[];

/* tlssock.c: the type, its checks and its one close */
struct tls_sock *tls_check(lua_State *L, const char *fname);
struct tls_sock *tls_check_open(lua_State *L, const char *fname);
int tls_raise_closed(lua_State *L, const char *fname);
void tls_wake(ev_io *w);
void tls_close_now(lua_State *L, struct tls_sock *t, int notify);
void tls_free_buffer(struct tls_sock *t);
void tls_open(lua_State *L, int ctx);
int luaopen_curio_tls(lua_State *L);

#endif
