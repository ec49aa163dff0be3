/* core/queue.h: Queue, LifoQueue and PriorityQueue (rules in queue.c). */
#ifndef CURIO_QUEUE_H
#define CURIO_QUEUE_H

#include <lua.h>

#define QUEUE_MT "curio.Queue"

void queue_open(lua_State *L, int ctx);

#endif
