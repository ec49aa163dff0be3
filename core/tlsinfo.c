/* core/tlsinfo.c: what OpenSSL reports, as Lua values: errors (SSLError
 * and its subclasses, from OpenSSL's error queue) and what a handshake
 * settled (the peer's certificate, version, cipher, ALPN).
 *
 * Rules:
 * 1. An error is built from the newest entry of OpenSSL's error queue
 *    (library and reason), then the whole queue is cleared, so nothing of
 *    it reaches a later call, another socket or another task.
 * 2. A peer that closed without close_notify is SSLEOFError (OpenSSL 3's
 *    "unexpected eof", or a system call error with no errno); a failed
 *    certificate check is SSLCertVerificationError with OpenSSL's
 *    verification message, a host name mismatch said as Python says it; a
 *    system error (ECONNRESET) is the OSError of its errno.
 * 3. getpeercert() gives the certificate as a table only when it was
 *    verified (as Python: {} when the context verifies nothing), nil when
 *    the peer sent none; getpeercert(true) gives its DER bytes whatever the
 *    verification. */
#include <string.h>
#include <arpa/inet.h>
#include <lauxlib.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "tls.h"
#include "ctx.h"
#include "errors.h"

/* ---- errors (rules 1, 2) ---- */

static void set_string(lua_State *L, const char *field, const char *value) {
  if (value == NULL) return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, field);
}

static void set_integer(lua_State *L, const char *field, lua_Integer value) {
  lua_pushinteger(L, value);
  lua_setfield(L, -2, field);
}

/* Pushes an SSLError-family `cls` for fname with the fields Python's have
 * (errno: the SSL_ERROR_* number, code its name; library, reason). */
static void push_ssl(lua_State *L, const char *cls, const char *fname, const char *text,
                     int ssl_err, const char *code, unsigned long e) {
  lua_pushfstring(L, "%s: %s", fname, text);
  errors_push(L, cls, lua_tostring(L, -1));
  lua_remove(L, -2);
  if (!lua_istable(L, -1)) return;
  set_integer(L, "errno", ssl_err);
  set_string(L, "code", code);
  set_string(L, "strerror", text);
  if (e != 0) {
    set_string(L, "library", ERR_lib_error_string(e));
    set_string(L, "reason", ERR_reason_error_string(e));
  }
}

/* The verification failure of ssl, as a message (rule 2). */
static const char *verify_message(lua_State *L, const SSL *ssl, long result) {
  if (result == X509_V_ERR_HOSTNAME_MISMATCH || result == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    X509_VERIFY_PARAM *param = SSL_get0_param((SSL *)ssl);
    int ip = result == X509_V_ERR_IP_ADDRESS_MISMATCH;
    char *addr = ip ? X509_VERIFY_PARAM_get1_ip_asc(param) : NULL;
    const char *host = ip ? addr : X509_VERIFY_PARAM_get0_host(param, 0);
    lua_pushfstring(L, "%s mismatch, certificate is not valid for '%s'", ip ? "IP address" : "Hostname",
                    host != NULL ? host : "?");
    OPENSSL_free(addr);
    return lua_tostring(L, -1);
  }
  return lua_pushstring(L, X509_verify_cert_error_string(result));
}

/* Pushes the error of a failed TLS call of t (ssl_err from SSL_get_error),
 * emptying OpenSSL's error queue (rule 1). */
void tls_push_error(lua_State *L, struct tls_sock *t, const char *fname, int ssl_err) {
  unsigned long e = ERR_peek_last_error();
  int reason = e != 0 ? ERR_GET_REASON(e) : 0;
  luaL_checkstack(L, 6, "tls_push_error");
  if (ssl_err == SSL_ERROR_SYSCALL && e == 0 && t->last_errno != 0) {
    errors_push_os(L, fname, t->last_errno);
  } else if ((ssl_err == SSL_ERROR_SYSCALL && e == 0) ||
             (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
    push_ssl(L, "SSLEOFError", fname, "EOF in violation of protocol (the peer closed without close_notify)",
             8, "SSL_ERROR_EOF", e);
  } else if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long result = t->ssl != NULL ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    const char *message = verify_message(L, t->ssl, result);
    const char *text = lua_pushfstring(L, "certificate verify failed: %s", message);
    push_ssl(L, "SSLCertVerificationError", fname, text, ssl_err, "SSL_ERROR_SSL", e);
    if (lua_istable(L, -1)) {
      set_string(L, "verify_message", message);
      set_integer(L, "verify_code", result);
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else {
    const char *text = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (text == NULL) text = lua_pushfstring(L, "TLS error %d", ssl_err);
    push_ssl(L, "SSLError", fname, text, ssl_err, ssl_err == SSL_ERROR_SSL ? "SSL_ERROR_SSL" : "SSL_ERROR_SYSCALL", e);
    if (e == 0) lua_remove(L, -2);
  }
  t->last_errno = 0;
  ERR_clear_error();
}

/* Pushes an SSLError from OpenSSL's queue for a call not on a socket (a
 * context's loading), emptying the queue. */
void tls_push_openssl_error(lua_State *L, const char *fname) {
  unsigned long e = ERR_peek_last_error();
  const char *text = e != 0 ? ERR_reason_error_string(e) : NULL;
  push_ssl(L, "SSLError", fname, text != NULL ? text : "OpenSSL call failed", SSL_ERROR_SSL, "SSL_ERROR_SSL", e);
  ERR_clear_error();
}

int tls_raise_openssl_error(lua_State *L, const char *fname) {
  tls_push_openssl_error(L, fname);
  return lua_error(L);
}

/* ---- the peer's certificate (rule 3) ---- */

/* Pushes an X509 name as a list of {name, value} pairs (in order) whose
 * long names are also keys (the last value of each): subject.commonName. */
static void push_name(lua_State *L, const X509_NAME *name) {
  int n = X509_NAME_entry_count(name);
  lua_createtable(L, n, n);
  for (int i = 0; i < n; i++) {
    const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    char oid[80];
    const char *field = nid != NID_undef ? OBJ_nid2ln(nid) : NULL;
    if (field == NULL) {
      OBJ_obj2txt(oid, sizeof oid, X509_NAME_ENTRY_get_object(entry), 1);
      field = oid;
    }
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    lua_createtable(L, 2, 0);
    lua_pushstring(L, field);
    lua_rawseti(L, -2, 1);
    if (len >= 0) lua_pushlstring(L, (const char *)utf8, (size_t)len);
    else lua_pushliteral(L, "");
    OPENSSL_free(utf8);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, field);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Pushes subjectAltName as {{"DNS", name}, {"IP Address", addr}, ...}. */
static void push_alt_names(lua_State *L, X509 *cert) {
  GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
  int n = names != NULL ? sk_GENERAL_NAME_num(names) : 0, count = 0;
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
    const char *kind = NULL;
    char addr[INET6_ADDRSTRLEN];
    const ASN1_STRING *s = NULL;
    int type;
    void *value = GENERAL_NAME_get0_value(g, &type);
    if (type == GEN_DNS) { kind = "DNS"; s = value; }
    else if (type == GEN_EMAIL) { kind = "email"; s = value; }
    else if (type == GEN_URI) { kind = "URI"; s = value; }
    else if (type == GEN_IPADD) {
      const ASN1_OCTET_STRING *ip = value;
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : ASN1_STRING_length(ip) == 16 ? AF_INET6 : 0;
      if (family == 0 || inet_ntop(family, ASN1_STRING_get0_data(ip), addr, sizeof addr) == NULL) continue;
      kind = "IP Address";
    }
    if (kind == NULL) continue;
    lua_createtable(L, 2, 0);
    lua_pushstring(L, kind);
    lua_rawseti(L, -2, 1);
    if (s != NULL) lua_pushlstring(L, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    else lua_pushstring(L, addr);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, -2, ++count);
  }
  GENERAL_NAMES_free(names);
}

/* Pushes an ASN1 time as OpenSSL prints it ("Jan  5 09:34:43 2026 GMT"). */
static void push_time(lua_State *L, const ASN1_TIME *time) {
  BIO *b = BIO_new(BIO_s_mem());
  char *p;
  if (b == NULL || !ASN1_TIME_print(b, time)) { BIO_free(b); lua_pushnil(L); return; }
  long len = BIO_get_mem_data(b, &p);
  lua_pushlstring(L, p, (size_t)len);
  BIO_free(b);
}

static void push_serial(lua_State *L, X509 *cert) {
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
  char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
  if (hex != NULL) lua_pushstring(L, hex);
  else lua_pushnil(L);
  OPENSSL_free(hex);
  BN_free(bn);
}

/* The fields of cert into a new table (rule 3). Runs in a protected call:
 * the certificate is freed whatever happens. */
static int push_cert(lua_State *L) {
  X509 *cert = lua_touserdata(L, 1);
  lua_createtable(L, 0, 8);
  push_name(L, X509_get_subject_name(cert));
  lua_setfield(L, -2, "subject");
  push_name(L, X509_get_issuer_name(cert));
  lua_setfield(L, -2, "issuer");
  push_alt_names(L, cert);
  lua_setfield(L, -2, "subjectAltName");
  push_time(L, X509_get0_notBefore(cert));
  lua_setfield(L, -2, "notBefore");
  push_time(L, X509_get0_notAfter(cert));
  lua_setfield(L, -2, "notAfter");
  push_serial(L, cert);
  lua_setfield(L, -2, "serialNumber");
  set_integer(L, "version", X509_get_version(cert) + 1);
  return 1;
}

/* tls:getpeercert(binary?) -> table | DER string | nil */
static int tls_getpeercert(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "getpeercert");
  int binary = lua_toboolean(L, 2);
  if (!SSL_is_init_finished(t->ssl)) return luaL_error(L, "getpeercert: the handshake is not done");
  X509 *cert = SSL_get1_peer_certificate(t->ssl);
  if (cert == NULL) { lua_pushnil(L); return 1; }
  if (binary) {
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    X509_free(cert);
    if (len < 0) return luaL_error(L, "getpeercert: not enough memory");
    lua_pushlstring(L, (const char *)der, (size_t)len);
    OPENSSL_free(der);
    return 1;
  }
  if (!(SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER)) {
    X509_free(cert);
    lua_newtable(L);
    return 1;
  }
  lua_pushcfunction(L, push_cert);
  lua_pushlightuserdata(L, cert);
  int status = lua_pcall(L, 1, 1, 0);
  X509_free(cert);
  if (status != LUA_OK) return lua_error(L);
  return 1;
}

/* ---- what the handshake settled ---- */

/* tls:version() -> "TLSv1.3" | "TLSv1.2", nil before the handshake. */
static int tls_version(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "version");
  if (!SSL_is_init_finished(t->ssl)) return 0;
  lua_pushstring(L, SSL_get_version(t->ssl));
  return 1;
}

/* tls:cipher() -> name, protocol, secret bits; nothing before the handshake. */
static int tls_cipher(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "cipher");
  const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
  if (c == NULL) return 0;
  lua_pushstring(L, SSL_CIPHER_get_name(c));
  lua_pushstring(L, SSL_CIPHER_get_version(c));
  lua_pushinteger(L, SSL_CIPHER_get_bits(c, NULL));
  return 3;
}

/* tls:selected_alpn_protocol() -> the protocol agreed, or nil. */
static int tls_selected_alpn_protocol(lua_State *L) {
  struct tls_sock *t = tls_check_open(L, "selected_alpn_protocol");
  const unsigned char *p;
  unsigned int len;
  SSL_get0_alpn_selected(t->ssl, &p, &len);
  if (p == NULL || len == 0) return 0;
  lua_pushlstring(L, (const char *)p, len);
  return 1;
}

const luaL_Reg tls_info_methods[] = {
  {"getpeercert", tls_getpeercert},
  {"version", tls_version},
  {"cipher", tls_cipher},
  {"selected_alpn_protocol", tls_selected_alpn_protocol},
  {NULL, NULL}
};
