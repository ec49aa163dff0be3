/* bench/limits/limitlib.c: the Lua C module of bench/limits/plain.lua.
 *
 * limitlib.now(): seconds on CLOCK_MONOTONIC, the wall clock curio.clock
 * reads (plain Lua has none finer than a second), so that the limits and
 * curio-lua's figures are timed alike.
 *
 * limitlib.copy(t): the limit of the codec benchmark, a deep copy of a tree
 * of tables through the C API, the least a codec's round trip must do
 * without the bytes in between. It walks every table once to count its keys (what a decoder
 * reads from the encoding for free) and once to copy them into a table
 * made with those sizes; every string, key or value, is pushed again from
 * its bytes (lua_pushlstring, as a decoder makes it: a short one is found
 * interned, a long one copied); numbers and booleans are copied as they are.
 * No cycles or shared tables (the codec's table has none).
 *
 *   LUA_CPATH='bench/limits/build/?.so;;' lua5.4 -e 'copy = require("limitlib").copy'
 */
#include <time.h>
#include <lauxlib.h>
#include <lua.h>

static void copy_value(lua_State *L, int idx);

/* Pushes a copy of the table at idx. */
static void copy_table(lua_State *L, int idx) {
  luaL_checkstack(L, 6, "limitlib.copy: too deep");
  lua_Integer narr = (lua_Integer)lua_rawlen(L, idx);
  int nrec = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > narr) nrec++;
  }
  lua_createtable(L, (int)narr, nrec);
  int dst = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int v = lua_gettop(L);
    copy_value(L, v - 1); /* the key */
    copy_value(L, v);     /* the value */
    lua_rawset(L, dst);
    lua_pop(L, 1); /* the value: the key stays for lua_next */
  }
}

/* Pushes a copy of the value at idx. */
static void copy_value(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TTABLE:
    copy_table(L, idx);
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    lua_pushlstring(L, s, len);
    break;
  }
  default:
    lua_pushvalue(L, idx);
  }
}

static int l_copy(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  copy_table(L, 1);
  return 1;
}

static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
  return 1;
}

int luaopen_limitlib(lua_State *L) {
  luaL_Reg fns[] = {{"copy", l_copy}, {"now", l_now}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
