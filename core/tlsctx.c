/* core/tlsctx.c: the SSLContext type (curio.ssl, lua/curio/ssl.lua makes
 * them): one SSL_CTX per context object, its settings as fields and its
 * loading methods. TLS sockets are in tls.c.
 *
 * Rules:
 * 1. A context starts secure (TLS 1.2 and 1.3 only, no compression; a
 *    client's verifies its peer and checks the host name; a server's asks
 *    for no certificate). ssl.lua adds the system's CA store to a client's.
 * 2. Fields are read and written as a table's (ctx.verify_mode = "none"),
 *    each checked when set; an unknown field is an error, not a new key.
 *    check_hostname and verify_mode "none" exclude each other as in
 *    Python: turning check_hostname on makes verification "required",
 *    setting "none" while check_hostname is on is refused.
 * 3. Every call that fails in OpenSSL raises an SSLError built from
 *    OpenSSL's error queue (tlsinfo.c), and leaves the queue empty; a file
 *    that cannot be read is an OSError naming it (before OpenSSL tries). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <openssl/err.h>
#include "tls.h"
#include "ctx.h"
#include "errors.h"

static const char *const purposes[] = {"client", "server", NULL};
static const char *const verify_names[] = {"none", "optional", "required", NULL};
static const char *const version_names[] = {"TLSv1.2", "TLSv1.3", NULL};
static const int version_values[] = {TLS1_2_VERSION, TLS1_3_VERSION};

struct tls_ctx *tls_check_ctx(lua_State *L, int idx, const char *fname) {
  struct tls_ctx *c = ctx_testudata(L, idx, MT_TLS_CONTEXT);
  if (c == NULL) {
    if (idx == 1) errors_methodtypeerror(L, idx, fname, "SSLContext");
    errors_typeerror(L, idx, fname, "SSLContext");
  }
  return c;
}

/* ---- creation ---- */

static int ctx_gc(lua_State *L) {
  struct tls_ctx *c = lua_touserdata(L, 1);
  if (c->ctx != NULL) SSL_CTX_free(c->ctx);
  c->ctx = NULL;
  free(c->alpn);
  c->alpn = NULL;
  return 0;
}

/* The server's choice among the client's protocols: its own first one
 * that the client offers (as Python's). No match: no ALPN, as OpenSSL
 * lets a server go on without one. */
static int ctx_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg) {
  struct tls_ctx *c = arg;
  (void)ssl;
  if (c->alpn == NULL) return SSL_TLSEXT_ERR_NOACK;
  unsigned char *chosen;
  if (SSL_select_next_proto(&chosen, outlen, c->alpn, c->alpn_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

/* core.tls_context(purpose) -> a new SSLContext ("client" | "server"),
 * rule 1; ssl.lua has checked purpose. */
static int l_tls_context(lua_State *L) {
  int server = luaL_checkoption(L, 1, "client", purposes);
  struct tls_ctx *c = lua_newuserdatauv(L, sizeof *c, 0);
  memset(c, 0, sizeof *c);
  ctx_setmetatable(L, ctx_get(L), MT_TLS_CONTEXT);
  ERR_clear_error();
  c->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (c->ctx == NULL) tls_raise_openssl_error(L, "create_default_context");
  c->server = server;
  SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION | (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
  /* partial writes: each SSL_write takes one record, so that what an
   * interrupted write has handed over is known (tls.c rule 5) */
  SSL_CTX_set_mode(c->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_verify(c->ctx, server ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  if (server) SSL_CTX_set_alpn_select_cb(c->ctx, ctx_alpn_select, c);
  c->check_hostname = !server;
  return 1;
}

/* ---- fields (rule 2) ---- */

static const char *verify_mode_name(const struct tls_ctx *c) {
  int mode = SSL_CTX_get_verify_mode(c->ctx);
  if (!(mode & SSL_VERIFY_PEER)) return "none";
  if (!c->server || (mode & SSL_VERIFY_FAIL_IF_NO_PEER_CERT)) return "required";
  return "optional";
}

static void set_verify_mode(struct tls_ctx *c, int which) {
  int mode = which == 0 ? SSL_VERIFY_NONE : SSL_VERIFY_PEER;
  if (which == 2 && c->server) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(c->ctx, mode, NULL);
}

static void push_version(lua_State *L, long v) {
  for (int i = 0; version_names[i]; i++)
    if (version_values[i] == v) { lua_pushstring(L, version_names[i]); return; }
  lua_pushnil(L);
}

/* ctx.field: a method, or check_hostname, verify_mode, minimum_version,
 * maximum_version (nil: the highest OpenSSL has), purpose. */
static int ctx_index(lua_State *L) {
  struct tls_ctx *c = lua_touserdata(L, 1);
  const char *key = lua_tostring(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL || key == NULL) return 1;
  if (c->ctx == NULL) return 1;
  if (strcmp(key, "check_hostname") == 0) lua_pushboolean(L, c->check_hostname);
  else if (strcmp(key, "verify_mode") == 0) lua_pushstring(L, verify_mode_name(c));
  else if (strcmp(key, "minimum_version") == 0) push_version(L, SSL_CTX_get_min_proto_version(c->ctx));
  else if (strcmp(key, "maximum_version") == 0) push_version(L, SSL_CTX_get_max_proto_version(c->ctx));
  else if (strcmp(key, "purpose") == 0) lua_pushstring(L, purposes[c->server]);
  else lua_pushnil(L);
  return 1;
}

/* The index of the string at idx in names, or an error naming the field. */
static int field_option(lua_State *L, int idx, const char *field, const char *const names[], const char *expected) {
  const char *s = errors_tocstring(L, idx, NULL);
  for (int i = 0; s != NULL && names[i]; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return luaL_error(L, "SSLContext.%s: %s expected", field, expected);
}

static int ctx_newindex(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "__newindex");
  const char *key = lua_tostring(L, 2);
  if (lua_type(L, 2) != LUA_TSTRING) key = NULL;
  if (key != NULL && strcmp(key, "check_hostname") == 0) {
    if (lua_type(L, 3) != LUA_TBOOLEAN) return luaL_error(L, "SSLContext.check_hostname: boolean expected");
    c->check_hostname = lua_toboolean(L, 3);
    if (c->check_hostname && !(SSL_CTX_get_verify_mode(c->ctx) & SSL_VERIFY_PEER)) set_verify_mode(c, 2);
  } else if (key != NULL && strcmp(key, "verify_mode") == 0) {
    int which = field_option(L, 3, "verify_mode", verify_names, "\"none\", \"optional\" or \"required\"");
    if (which == 0 && c->check_hostname)
      return luaL_error(L, "SSLContext.verify_mode: cannot be \"none\" while check_hostname is on");
    set_verify_mode(c, which);
  } else if (key != NULL && strcmp(key, "minimum_version") == 0) {
    int v = field_option(L, 3, "minimum_version", version_names, "\"TLSv1.2\" or \"TLSv1.3\"");
    SSL_CTX_set_min_proto_version(c->ctx, version_values[v]);
  } else if (key != NULL && strcmp(key, "maximum_version") == 0) {
    int v = lua_isnil(L, 3) ? -1
          : field_option(L, 3, "maximum_version", version_names, "\"TLSv1.2\", \"TLSv1.3\" or nil");
    SSL_CTX_set_max_proto_version(c->ctx, v < 0 ? 0 : version_values[v]);
  } else {
    return luaL_error(L, "SSLContext has no field '%s' to set", key != NULL ? key : luaL_typename(L, 2));
  }
  return 0;
}

/* ---- loading ---- */

/* A path argument that exists and can be read, else an OSError naming it
 * (rule 3); nil gives NULL when optional. */
static const char *check_path(lua_State *L, int idx, const char *fname, int optional) {
  if (optional && lua_isnoneornil(L, idx)) return NULL;
  const char *path = errors_tocstring(L, idx, NULL);
  if (path == NULL) errors_methoderror(L, idx, fname, errors_cstring_problem(L, idx, "path string"));
  return path;
}

static void check_readable(lua_State *L, const char *fname, const char *path) {
  if (access(path, R_OK) == 0) return;
  int err = errno;
  errors_push_os(L, fname, err);
  if (lua_istable(L, -1)) {
    lua_pushfstring(L, "%s: %s: %s", fname, path, strerror(err));
    lua_setfield(L, -2, "message");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "filename");
  }
  lua_error(L);
}

static int password_cb(char *buf, int size, int rwflag, void *userdata) {
  const char *password = userdata;
  size_t len = password != NULL ? strlen(password) : 0;
  (void)rwflag;
  if (len > (size_t)size) return -1;
  memcpy(buf, password, len);
  return (int)len;
}

/* ctx:load_cert_chain(certfile, keyfile?, password?): the certificate
 * chain (PEM, the certificate first) and its private key (keyfile nil:
 * in certfile). */
static int ctx_load_cert_chain(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "load_cert_chain");
  const char *certfile = check_path(L, 2, "load_cert_chain", 0);
  const char *keyfile = check_path(L, 3, "load_cert_chain", 1);
  const char *password = NULL;
  if (!lua_isnoneornil(L, 4)) {
    password = errors_tocstring(L, 4, NULL);
    if (password == NULL) errors_methoderror(L, 4, "load_cert_chain", errors_cstring_problem(L, 4, "string"));
  }
  if (keyfile == NULL) keyfile = certfile;
  check_readable(L, "load_cert_chain", certfile);
  check_readable(L, "load_cert_chain", keyfile);
  ERR_clear_error();
  SSL_CTX_set_default_passwd_cb(c->ctx, password_cb);
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, (void *)password);
  int ok = SSL_CTX_use_certificate_chain_file(c->ctx, certfile) == 1 &&
           SSL_CTX_use_PrivateKey_file(c->ctx, keyfile, SSL_FILETYPE_PEM) == 1 &&
           SSL_CTX_check_private_key(c->ctx) == 1;
  SSL_CTX_set_default_passwd_cb_userdata(c->ctx, NULL); /* (the string is not ours) */
  if (!ok) tls_raise_openssl_error(L, "load_cert_chain");
  return 0;
}

/* ctx:load_verify_locations(cafile?, capath?): CA certificates to verify
 * peers with (one of the two at least). */
static int ctx_load_verify_locations(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "load_verify_locations");
  const char *cafile = check_path(L, 2, "load_verify_locations", 1);
  const char *capath = check_path(L, 3, "load_verify_locations", 1);
  if (cafile == NULL && capath == NULL)
    errors_methoderror(L, 2, "load_verify_locations", "cafile or capath expected");
  if (cafile != NULL) check_readable(L, "load_verify_locations", cafile);
  if (capath != NULL) check_readable(L, "load_verify_locations", capath);
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(c->ctx, cafile, capath) != 1)
    tls_raise_openssl_error(L, "load_verify_locations");
  return 0;
}

/* ctx:load_default_certs(): the system's CA store. */
static int ctx_load_default_certs(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "load_default_certs");
  ERR_clear_error();
  if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) tls_raise_openssl_error(L, "load_default_certs");
  ERR_clear_error(); /* (a missing directory is queued, not failed) */
  return 0;
}

/* ctx:set_ciphers(s): the cipher list for TLS 1.2 (OpenSSL's syntax). */
static int ctx_set_ciphers(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "set_ciphers");
  const char *list = errors_tocstring(L, 2, NULL);
  if (list == NULL) errors_methoderror(L, 2, "set_ciphers", errors_cstring_problem(L, 2, "string"));
  ERR_clear_error();
  if (SSL_CTX_set_cipher_list(c->ctx, list) != 1) tls_raise_openssl_error(L, "set_ciphers");
  return 0;
}

/* Pushes the strings of the list at idx in ALPN's wire format (each
 * prefixed by its length), checking them for fname. */
int tls_alpn_wire(lua_State *L, int idx, const char *fname, int method) {
  if (!lua_istable(L, idx)) {
    if (method) errors_methodtypeerror(L, idx, fname, "list of strings");
    errors_typeerror(L, idx, fname, "list of strings");
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer n = luaL_len(L, idx);
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    lua_geti(L, idx, i);
    const char *p = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (p == NULL || len == 0 || len > 255) {
      const char *msg = lua_pushfstring(L, "protocol #%d: string of 1 to 255 bytes expected", (int)i);
      if (method) errors_methoderror(L, idx, fname, msg);
      errors_argerror(L, idx, fname, msg);
    }
    lua_pop(L, 1);
    luaL_addchar(&b, (char)len);
    luaL_addlstring(&b, p, len);
  }
  luaL_pushresult(&b);
  if (lua_rawlen(L, -1) > 65535) {
    if (method) errors_methoderror(L, idx, fname, "protocol list too long");
    errors_argerror(L, idx, fname, "protocol list too long");
  }
  return 1;
}

/* ctx:set_alpn_protocols(list): the protocols offered (a client) or
 * accepted (a server, its own order first), as {"h2", "http/1.1"}. */
static int ctx_set_alpn_protocols(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "set_alpn_protocols");
  size_t len;
  tls_alpn_wire(L, 2, "set_alpn_protocols", 1);
  const char *wire = lua_tolstring(L, -1, &len);
  unsigned char *copy = len > 0 ? malloc(len) : NULL;
  if (len > 0 && copy == NULL) return luaL_error(L, "set_alpn_protocols: not enough memory");
  if (len > 0) memcpy(copy, wire, len);
  if (!c->server && SSL_CTX_set_alpn_protos(c->ctx, copy, (unsigned int)len) != 0) {
    free(copy);
    return luaL_error(L, "set_alpn_protocols: not enough memory");
  }
  free(c->alpn);
  c->alpn = copy;
  c->alpn_len = (unsigned int)len;
  return 0;
}

static int ctx_tostring(lua_State *L) {
  struct tls_ctx *c = tls_check_ctx(L, 1, "tostring");
  lua_pushfstring(L, "SSLContext (%s)", purposes[c->server]);
  return 1;
}

static const luaL_Reg ctx_methods[] = {
  {"load_cert_chain", ctx_load_cert_chain},
  {"load_verify_locations", ctx_load_verify_locations},
  {"load_default_certs", ctx_load_default_certs},
  {"set_ciphers", ctx_set_ciphers},
  {"set_alpn_protocols", ctx_set_alpn_protocols},
  {"__gc", ctx_gc},
  {"__newindex", ctx_newindex},
  {"__tostring", ctx_tostring},
  {NULL, NULL}
};

/* core.tls_is_context(value) -> whether value is an SSLContext, and its
 * purpose ("client" | "server"). */
static int l_tls_is_context(lua_State *L) {
  struct tls_ctx *c = ctx_testudata(L, 1, MT_TLS_CONTEXT);
  lua_pushboolean(L, c != NULL);
  if (c == NULL) return 1;
  lua_pushstring(L, purposes[c->server]);
  return 2;
}

static const luaL_Reg ctx_functions_list[] = {
  {"tls_context", l_tls_context},
  {"tls_is_context", l_tls_is_context},
  {NULL, NULL}
};

/* Registers SSLContext and core.tls_context into the module table on top;
 * core.tls_context_methods is the methods table ssl.lua extends
 * (wrap_socket). __index is a function over it (rule 2: the fields). */
void tls_ctx_open(lua_State *L, int ctx) {
  ctx_newtype(L, TLS_CONTEXT_MT, ctx_methods, ctx, MT_TLS_CONTEXT);
  ctx_functions(L, ctx_functions_list, ctx);
  luaL_getmetatable(L, TLS_CONTEXT_MT);
  lua_getfield(L, -1, "__index");
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "tls_context_methods");
  lua_pushvalue(L, ctx);
  lua_insert(L, -2);
  lua_pushcclosure(L, ctx_index, 2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
