/* core/wait.c: a task's wait record and the one way to undo it (curio's
 * suspend_task(state, cancel_func)).
 *
 * Rules:
 * 1. A waiting task records what it waits in: its kind (t->wait), the
 *    object (t->wait_obj) and, for lists, its node (t->node). The trap that
 *    blocks fills the record; nothing else does.
 * 2. Waking, cancelling, timing out, ending a task and closing its kernel
 *    all go through wait_undo, which calls the kind's undo and clears the
 *    record. A deadline is not part of the record: the timer heap
 *    (timer.c) is undone beside it, for every kind.
 * 3. A new kind of wait (a descriptor, a thread job, a child process) is a
 *    file of its own that fills the record, plus one line in `kinds`
 *    below; the scheduler (kernel.c, task.c, trap.c) does not change. */
#include <stddef.h>
#include "wait.h"
#include "task.h"
#include "waitq.h"
#include "trap.h"
#include "threads.h"
#include "universal.h"
#include "io.h"

static void undo_join(struct task *t) {
  list_remove(&t->node);
}

static const struct wait_kind kinds[WAIT_KINDS] = {
  [WAIT_NONE] = {"running", NULL},
  [WAIT_YIELD] = {"sleep(0)", NULL},
  [WAIT_SLEEP] = {"sleep", NULL},
  [WAIT_QUEUE] = {"wait queue", waitq_unlink},
  [WAIT_RESERVED] = {"woken with an item reserved", waitq_unlink},
  [WAIT_JOIN] = {"join", undo_join},
  [WAIT_IO] = {"file descriptor", io_undo},
  [WAIT_THREAD] = {"run_in_thread", threads_job_undo},
  [WAIT_UNIVERSAL] = {"Universal object", universal_undo},
};

/* Rule 2: undoes t's wait, whatever its kind; harmless when there is none. */
void wait_undo(struct task *t) {
  const struct wait_kind *kind = &kinds[t->wait];
  if (kind->undo != NULL && (t->wait_obj != NULL || list_linked(&t->node))) kind->undo(t);
  t->wait_obj = NULL;
  t->wait = WAIT_NONE;
}

const char *wait_name(const struct task *t) {
  return kinds[t->wait].name;
}
