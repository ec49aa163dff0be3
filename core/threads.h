/* core/threads.h: the worker-thread pool and run_in_thread (rules in
 * threads.c). */
#ifndef CURIO_THREADS_H
#define CURIO_THREADS_H

#include <lauxlib.h>

struct task;

extern const luaL_Reg threads_functions[];

#endif
