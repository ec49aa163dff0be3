/* core/queue.h: Queue and LifoQueue (rules in queue.c). */
#ifndef CURIO_QUEUE_H
#define CURIO_QUEUE_H

#include <lua.h>

#define FIFO_MT "curio.Queue"

void queue_open(lua_State *L, int ctx);

#endif
