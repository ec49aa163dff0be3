/* core/waitq.h: the wait queue, a FIFO of waiting tasks, and its Lua type
 * core.waitq (contract in waitq.c). */
#ifndef CURIO_WAITQ_H
#define CURIO_WAITQ_H

#include <lua.h>
#include <lauxlib.h>
#include "list.h"

#define WAITQ_MT "curio.waitq"

struct task;

/* Tasks in arrival order, linked through task->node (list.h). */
struct waitq {
  struct list head;
  lua_Integer count;
};

/* The kind of a wait in a waitq (wait.h): its undo is waitq_unlink. */
extern const struct wait_kind waitq_wait;

void waitq_init(struct waitq *q);
void waitq_append(struct waitq *q, struct task *t);
void waitq_unlink(struct task *t);
struct task *waitq_first(const struct waitq *q);
struct task *waitq_pop(struct waitq *q);
void waitq_detach_all(struct waitq *q);
extern const luaL_Reg waitq_methods[];
extern const luaL_Reg waitq_functions[];

#endif
