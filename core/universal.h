/* core/universal.h: UniversalQueue, UniversalEvent, UniversalLock (rules in
 * universal.c). */
#ifndef CURIO_UNIVERSAL_H
#define CURIO_UNIVERSAL_H

#include <lauxlib.h>

#define UNIVERSAL_MT "curio.Universal"

struct task;

extern const luaL_Reg universal_functions[];

#endif
