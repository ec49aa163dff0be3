/* core/socket.h: curio.socket and the Socket type (rules in socket.c). */
#ifndef CURIO_SOCKET_H
#define CURIO_SOCKET_H

#include <lua.h>

#define SOCKET_MT "curio.Socket"

void socket_open(lua_State *L, int ctx);

#endif
