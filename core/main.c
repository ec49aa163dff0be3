/* core/main.c: the `curio` program. The C part only makes a Lua state with
 * curio preloaded (the Lua modules are compiled in, see tools/embed.lua)
 * and hands argv to lua/curio/host.lua, which does the rest. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "threads.h"

int luaopen_curio_core(lua_State *L);
int luaopen_curio_editline(lua_State *L);
void embed_preload(lua_State *L);

#ifndef CURIO_LIBDIR
#define CURIO_LIBDIR "/usr/local/lib/lua/5.4"
#endif

/* curio.tls (curio.ssl's C part) is tls.so, loaded on first use as lua5.4
 * does: linked in, OpenSSL's loading would more than double the program's
 * start-up (bench/README.md). Its calls into the core resolve in this
 * executable (-Wl,-E). It is looked for beside the program's build
 * (build/bin/curio: build/curio/tls.so), where make install puts it, then
 * in package.cpath. */
static const char load_tls_code[] =
  "local exedir, libdir = ...\n"
  "local path = exedir .. '/../?.so;' .. libdir .. '/?.so;' .. package.cpath\n"
  "local file, err = package.searchpath('curio.tls', path)\n"
  "if not file then error('module \\'curio.tls\\' (curio.ssl) not found:' .. err, 0) end\n"
  "return assert(package.loadlib(file, 'luaopen_curio_tls'))()\n";

static int load_tls(lua_State *L) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash != NULL) *slash = '\0';
  if (luaL_loadbuffer(L, load_tls_code, sizeof load_tls_code - 1, "=curio.tls") != LUA_OK)
    return lua_error(L);
  lua_pushstring(L, slash != NULL ? exe : ".");
  lua_pushliteral(L, CURIO_LIBDIR);
  lua_call(L, 2, 1);
  return 1;
}

/* curio's modules in a Lua state (the program's, a worker thread's). */
static void preload_curio(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_curio_core);
  lua_setfield(L, -2, "curio.core");
  lua_pushcfunction(L, load_tls);
  lua_setfield(L, -2, "curio.tls");
  lua_pop(L, 1);
  embed_preload(L);
}

static const struct threads_state_open thread_state_open = {preload_curio};

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = lua_touserdata(L, 2);
  luaL_checkversion(L);
  luaL_openlibs(L);
  preload_curio(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_curio_editline); /* the prompt's input, here only */
  lua_setfield(L, -2, "curio.editline");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, (void *)&thread_state_open); /* worker threads' states too */
  lua_setfield(L, LUA_REGISTRYINDEX, THREADS_OPEN_FIELD);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "curio.host");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 2);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_pushboolean(L, isatty(0));
  lua_setfield(L, -2, "stdin_is_tty");
  lua_call(L, 1, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int code;
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create Lua state: not enough memory\n", argv[0]);
    return 1;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", argv[0], msg ? msg : "(error object is not a string)");
    code = 1;
  } else {
    code = (int)lua_tointeger(L, -1);
  }
  lua_close(L);
  return code;
}
