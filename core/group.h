/* core/group.h: the bookkeeping of task groups (rules in group.c). */
#ifndef CURIO_GROUP_H
#define CURIO_GROUP_H

#include <lua.h>

#define GROUP_MT "curio.group"

void group_open(lua_State *L, int ctx);

#endif
