/* core/tlsauth.c: what a Channel's authentication needs from libcrypto
 * (lua/curio/channel.lua: the handshake): HMAC-SHA256, random bytes and a
 * comparison in constant time. Here, in curio.tls, because only this
 * module links OpenSSL: a Channel loads it when an authkey is given. */
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include "tls.h"

/* tls.hmac_sha256(key, message) -> the 32-byte digest. */
static int l_hmac_sha256(lua_State *L) {
  size_t klen, mlen;
  const char *key = luaL_checklstring(L, 1, &klen);
  const char *msg = luaL_checklstring(L, 2, &mlen);
  luaL_argcheck(L, klen <= 0x7fffffff, 1, "key too long");
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &n) == NULL)
    return tls_raise_openssl_error(L, "hmac_sha256");
  lua_pushlstring(L, (const char *)out, n);
  return 1;
}

/* tls.random_bytes(n) -> n bytes from OpenSSL's CSPRNG (n at most 256). */
static int l_random_bytes(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0 && n <= 256, 1, "0 to 256 bytes expected");
  unsigned char buf[256];
  if (RAND_bytes(buf, (int)n) != 1) return tls_raise_openssl_error(L, "random_bytes");
  lua_pushlstring(L, (const char *)buf, (size_t)n);
  return 1;
}

/* tls.equal_digests(a, b) -> whether the strings are equal, in a time
 * that does not depend on where they differ (a length differing is no
 * secret: a digest's length is public). */
static int l_equal_digests(lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen);
  const char *b = luaL_checklstring(L, 2, &blen);
  lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
  return 1;
}

const luaL_Reg tls_auth_functions[] = {
  {"hmac_sha256", l_hmac_sha256},
  {"random_bytes", l_random_bytes},
  {"equal_digests", l_equal_digests},
  {NULL, NULL}
};
