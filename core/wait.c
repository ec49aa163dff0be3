/* core/wait.c: a task's wait record and the one way to undo it (curio's
 * suspend_task(state, cancel_func)).
 *
 * Rules:
 * 1. A waiting task records what it waits in: its kind (t->wait, a
 *    struct wait_kind), the object (t->wait_obj) and, for lists, its node
 *    (t->node). The trap that blocks fills the record; nothing else does.
 * 2. Waking, cancelling, timing out, ending a task and closing its kernel
 *    all go through wait_undo, which calls the kind's undo and clears the
 *    record. A deadline is not part of the record: the timer heap
 *    (timer.c) is undone beside it, for every kind.
 * 3. A new kind of wait (a descriptor, a thread job, a child process) is a
 *    struct wait_kind defined in the file that owns what tasks wait in,
 *    handed to trap_suspend; the scheduler (kernel.c, task.c, trap.c,
 *    wait.c, timer.c) does not change and names no such file. */
#include <stddef.h>
#include "wait.h"
#include "task.h"

/* Rule 2: undoes t's wait, whatever its kind; harmless when there is none
 * or when what it waited in took it out already (a popped waiter). */
void wait_undo(struct task *t) {
  const struct wait_kind *kind = t->wait;
  if (kind != NULL && kind->undo != NULL && (t->wait_obj != NULL || list_linked(&t->node)))
    kind->undo(t);
  t->wait_obj = NULL;
  t->wait = NULL;
}
