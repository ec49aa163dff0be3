/* core/wait.h: a task's wait record and its undo (rules in wait.c). */
#ifndef CURIO_WAIT_H
#define CURIO_WAIT_H

struct task;

struct wait_kind {
  const char *name;              /* for tracebacks and reports */
  void (*undo)(struct task *t);  /* takes t out of what it waits in */
};

void wait_undo(struct task *t);
const char *wait_name(const struct task *t);

#endif
