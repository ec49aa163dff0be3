/* core/wait.h: a task's wait record and its undo (rules in wait.c). */
#ifndef CURIO_WAIT_H
#define CURIO_WAIT_H

struct task;

/* A kind of wait: a value that the file owning what tasks wait in defines
 * and hands to trap_suspend (trap.h), as
 *   static const struct wait_kind io_wait = {"file descriptor", io_undo};
 * The scheduler keeps the pointer in the task and calls its undo. */
struct wait_kind {
  const char *name;              /* what the task waits in, for reports */
  void (*undo)(struct task *t);  /* takes t out of it; NULL: nothing to undo */
};

void wait_undo(struct task *t);

#endif
