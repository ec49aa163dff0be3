/* core/threads.h: the worker-thread pool and run_in_thread (rules in
 * threads.c). */
#ifndef CURIO_THREADS_H
#define CURIO_THREADS_H

#include <lauxlib.h>

struct task;

void threads_job_undo(struct task *t); /* the undo of WAIT_THREAD (wait.c) */
extern const luaL_Reg threads_functions[];

#endif
