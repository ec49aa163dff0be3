/* core/coro.h: curio.coroutine's resume, wrap, close and status (rules in coro.c). */
#ifndef CURIO_CORO_H
#define CURIO_CORO_H

#include <lauxlib.h>

extern const luaL_Reg coro_functions[];

#endif
