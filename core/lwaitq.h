/* core/lwaitq.h: the Lua wait-queue type, core.waitq (contract in lwaitq.c). */
#ifndef CURIO_LWAITQ_H
#define CURIO_LWAITQ_H

#include <lauxlib.h>

#define WAITQ_MT "curio.waitq"

extern const luaL_Reg lwaitq_methods[];
extern const luaL_Reg lwaitq_functions[];

#endif
