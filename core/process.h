/* core/process.h: child processes (rules in process.c). */
#ifndef CURIO_PROCESS_H
#define CURIO_PROCESS_H

#include <lua.h>

void process_open(lua_State *L, int ctx);

#endif
