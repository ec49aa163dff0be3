/* core/address.c: socket addresses ({host, port} tables, unix paths) and
 * name resolution for worker threads (socket.c rule 5). */
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

/* ---- addresses (rule 5) ---- */

#define ADDRESS_MT "curio.Address"

/* Pushes the address in sa (len bytes) in its Lua form. */
void address_push(lua_State *L, const struct sockaddr *sa, socklen_t len) {
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

/* Pushes the address in sa as text for messages and returns it:
 * "127.0.0.1:25000", "[::1]:25000", a unix path ("@name" for an abstract
 * one, "(unnamed)" for none). */
const char *address_push_text(lua_State *L, const struct sockaddr *sa, socklen_t len) {
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
    if (n == 0) return lua_pushliteral(L, "(unnamed)");
    if (un->sun_path[0] == '\0') { /* (its name may hold zero bytes: kept, after the @) */
      lua_pushliteral(L, "@");
      lua_pushlstring(L, un->sun_path + 1, n - 1);
      lua_concat(L, 2);
      return lua_tostring(L, -1);
    }
    return lua_pushlstring(L, un->sun_path, strnlen(un->sun_path, n));
  }
  address_push(L, sa, len);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return lua_pushliteral(L, "(unknown address)");
  }
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  const char *host = lua_tostring(L, -2);
  lua_pushfstring(L, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, lua_tostring(L, -1));
  lua_replace(L, -4);
  lua_pop(L, 2);
  return lua_tostring(L, -1);
}

/* Reads the address at arg for a socket of `family` into ss. */
socklen_t address_get(lua_State *L, int arg, int family, struct sockaddr_storage *ss,
                             const char *fname) {
  memset(ss, 0, sizeof *ss);
  if (family == AF_UNIX) {
    size_t n;
    const char *path = errors_tocstring(L, arg, &n);
    if (path == NULL) errors_methoderror(L, arg, fname, errors_cstring_problem(L, arg, "path string"));
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    if (n == 0 || n >= sizeof un->sun_path) errors_methoderror(L, arg, fname, "unix socket path empty or too long");
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '\0'));
  }
  if (lua_type(L, arg) != LUA_TTABLE) errors_methodtypeerror(L, arg, fname, "address table {host, port}");
  if (lua_rawgeti(L, arg, 1) == LUA_TNIL) { lua_pop(L, 1); lua_getfield(L, arg, "host"); }
  if (lua_rawgeti(L, arg, 2) == LUA_TNIL) { lua_pop(L, 1); lua_getfield(L, arg, "port"); }
  const char *host = lua_isnil(L, -2) ? NULL : errors_tocstring(L, -2, NULL);
  if (host == NULL && !lua_isnil(L, -2))
    errors_methoderror(L, arg, fname, lua_type(L, -2) == LUA_TSTRING ? "address host contains a zero byte"
                                                                     : "address host must be a string");
  int isint;
  lua_Integer port = lua_tointegerx(L, -1, &isint);
  if (!isint) errors_methoderror(L, arg, fname, "address port must be an integer");
  if (port < 0 || port > 65535) errors_methoderror(L, arg, fname, "port out of range 0-65535");
  if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0) host = NULL;
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    if (host == NULL) in6->sin6_addr = in6addr_any;
    else if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
      errors_methoderror(L, arg, fname, lua_pushfstring(L, "not a numeric IPv6 address: '%s'", host));
    len = sizeof *in6;
  } else {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    if (host == NULL) in->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
      errors_methoderror(L, arg, fname, lua_pushfstring(L, "not a numeric IPv4 address: '%s'", host));
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

static const luaL_Reg address_functions[] = {
  {"address", l_address},
  {"is_numeric_host", l_is_numeric_host},
  {NULL, NULL}
};

/* Registers the Address metatable and the functions into the module table
 * on top (core.getaddrinfo without upvalues: it runs in worker threads). */
void address_open(lua_State *L, int ctx) {
  static const luaL_Reg address_meta[] = {
    {"__index", address_index}, {"__tostring", address_tostring}, {"__eq", address_eq}, {NULL, NULL}};
  luaL_newmetatable(L, ADDRESS_MT);
  luaL_setfuncs(L, address_meta, 0);
  lua_pop(L, 1);
  ctx_functions(L, address_functions, ctx);
  lua_pushcfunction(L, l_getaddrinfo);
  lua_setfield(L, -2, "getaddrinfo");
}
