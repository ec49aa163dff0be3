/* tests/host_util.h: what the C host test programs share: printing a
 * status the way the specs read it, and running a Lua chunk. */
#ifndef HOST_UTIL_H
#define HOST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "curio.h"

/* Prints "what: ok", or "what: error <status>: <message>" and pops the
 * error; -> status. */
static inline int host_show(lua_State *L, int status, const char *what) {
  if (status == LUA_OK) {
    printf("%s: ok\n", what);
  } else {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL && lua_istable(L, -1) && lua_getfield(L, -1, "message") == LUA_TSTRING) {
      msg = lua_tostring(L, -1);
      lua_remove(L, -2);
    }
    printf("%s: error %d: %s\n", what, status, msg != NULL ? msg : luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  fflush(stdout);
  return status;
}

/* Pushes the value the chunk `code` returns (a function, say); exits the
 * program on a bad chunk: the tests' own sources are not under test. */
static inline void host_push_chunk(lua_State *L, const char *code) {
  if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "bad test chunk: %s\n", lua_tostring(L, -1));
    exit(2);
  }
}

#endif
