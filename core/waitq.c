/* core/waitq.c: the FIFO of waiting tasks, a plain list that knows
 * nothing of traps (the Lua wait-queue type built on it is lwaitq.c).
 *
 * A task is in at most one waitq at a time, through task->node, with
 * task->wait_obj pointing to the waitq (its wait record, wait.c: a kind
 * whose undo is waitq_unlink, as waitq_wait's). */
#include "waitq.h"
#include "task.h"
#include "wait.h"

const struct wait_kind waitq_wait = {"wait queue", waitq_unlink};

void waitq_init(struct waitq *q) {
  list_init(&q->head);
  q->count = 0;
}

void waitq_append(struct waitq *q, struct task *t) {
  t->wait_obj = q;
  list_insert_tail(&q->head, &t->node);
  q->count++;
}

/* Takes t out of the waitq it is in. */
void waitq_unlink(struct task *t) {
  struct waitq *q = t->wait_obj;
  list_remove(&t->node);
  t->wait_obj = NULL;
  q->count--;
}

struct task *waitq_first(const struct waitq *q) {
  struct list *node = list_first(&q->head);
  return node != NULL ? LIST_ENTRY(node, struct task, node) : NULL;
}

struct task *waitq_pop(struct waitq *q) {
  struct task *t = waitq_first(q);
  if (t != NULL) waitq_unlink(t);
  return t;
}

/* Forgets every waiter (the owner is being collected): they wait on, and
 * their wait record no longer points here. */
void waitq_detach_all(struct waitq *q) {
  struct task *t;
  while ((t = waitq_pop(q)) != NULL) t->wait = NULL;
}
