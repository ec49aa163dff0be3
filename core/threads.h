/* core/threads.h: the worker-thread pool and run_in_thread (rules in
 * threads.c). */
#ifndef CURIO_THREADS_H
#define CURIO_THREADS_H

#include <pthread.h>
#include <lauxlib.h>

struct worker;

/* A worker thread's blocking wait (universal.c), rule 6 of threads.c:
 * threads_worker is the record of the worker thread whose state is L, or
 * NULL (a task's state, a plain program). Around a wait on cond under
 * lock, taken without lock held: threads_block_begin (0: the thread must
 * stop, its kernel closed) and threads_block_end; while waiting, under
 * lock, threads_stopping says whether the close woke it. */
struct worker *threads_worker(lua_State *L);
int threads_block_begin(struct worker *w, pthread_mutex_t *lock, pthread_cond_t *cond);
int threads_stopping(struct worker *w);
void threads_block_end(struct worker *w);

/* A worker thread's Lua state has the standard libraries and the package
 * path and cpath of the kernel's state. A host that carries curio's
 * modules itself (the curio program: they are not files) puts a pointer
 * to one of these in the registry field THREADS_OPEN_FIELD (light
 * userdata) before the pool starts, and each thread's new state is also
 * passed to open, so that `require "curio"` works there as under lua5.4. */
struct threads_state_open { void (*open)(lua_State *L); };
#define THREADS_OPEN_FIELD "curio.threads_state_open"

extern const luaL_Reg threads_functions[];

#endif
