/* core/fileio.h: the blocking half of file streams (rules in fileio.c). */
#ifndef CURIO_FILEIO_H
#define CURIO_FILEIO_H

#include <lauxlib.h>

#define FD_MT "curio.fd"

extern const luaL_Reg fileio_handle_methods[];
extern const luaL_Reg fileio_functions[];
void fileio_open(lua_State *L);
int *fileio_push_handle(lua_State *L, int fd);
int fileio_take(lua_State *L, int idx, const char *fname);

#endif
