/* core/waitq.h: the FIFO of waiting tasks (contract in waitq.c). */
#ifndef CURIO_WAITQ_H
#define CURIO_WAITQ_H

#include <lua.h>
#include "list.h"

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

#endif
