/* curio.h: embedding curio in a C program that owns its libev loop.
 *
 * The program keeps its loop and runs it (ev_run) as it always does; the
 * kernel attached to it is a few watchers (an ev_prepare that runs ready
 * tasks, the tasks' timer and descriptor watchers), so the program's
 * watchers and curio's tasks share the loop. The kernel never touches
 * ev_userdata, nor SIGINT. Link with `pkg-config --libs curio` (libcurio,
 * libev, Lua 5.4).
 *
 *   lua_State *L = luaL_newstate(); luaL_openlibs(L);
 *   curio_kernel *k;
 *   if (curio_attach(L, loop, &k) != LUA_OK) ...;     // error on top of L
 *   luaL_loadstring(L, "...");                        // push a function
 *   if (curio_spawn(L, k, 0, NULL, NULL) != LUA_OK) ...;  // pushes the Task
 *   ev_run(loop, 0);                                  // tasks run in the loop
 *   curio_detach(L, k, CURIO_DETACH_WAIT);            // cancels what is left
 *   curio_release(k);                                 // frees the handle
 *   lua_close(L); ev_loop_destroy(loop);
 *
 * Rules:
 * 1. Status, never longjmp. Every function returns a status as lua_pcall
 *    does: LUA_OK, or LUA_ERRRUN / LUA_ERRMEM with the error object pushed
 *    on L (a curio.CurioError for misuse, the task's own error from
 *    curio_result). No function raises through the caller's frames, so
 *    they may be called outside any protected call. Each needs 6 free
 *    slots on L's stack: when L cannot grow that much, LUA_ERRMEM is
 *    returned and nothing is pushed.
 * 2. One state. A kernel belongs to the Lua state it was attached to: L
 *    may be that state's main thread or any coroutine of it (they share
 *    one global state; tasks always run from the main thread). Another
 *    state is refused. One kernel at a time may be attached to a state.
 * 3. The handle is the program's. curio_attach mallocs it; it stays valid
 *    memory until curio_release, whatever happens to the kernel: after
 *    curio_detach, after lua_close, after ev_loop_destroy, every call on
 *    it but curio_detach (LUA_OK: detach is idempotent) and curio_release
 *    returns an error status.
 * 4. Order of the end: curio_detach, then lua_close, then ev_loop_destroy
 *    (curio_release at any point after curio_detach). Destroying the loop
 *    before curio_detach is forbidden: the kernel then abandons its tasks
 *    at once (their cleanups do not run; curio_detach reports it as an
 *    error) so that nothing of curio stays on a freed loop. lua_close
 *    without curio_detach abandons the tasks too (no cleanup runs: Lua
 *    code cannot run in a finalizer) and stops the kernel's watchers, so
 *    the loop must still be alive then, and the program may go on using it.
 * 5. Where each call may be made: from the program's code and from its
 *    libev callbacks (the loop's thread), and from a completion callback
 *    or a C function that a task calls: everything, except curio_detach
 *    and curio_release from a task or a completion callback (an error
 *    status). From another thread: nothing; wake the loop with ev_async
 *    and call from its callback.
 * 6. Errors of tasks. A task spawned with a completion callback has its
 *    outcome handed to that callback (no crash report); the others' crash
 *    reports go to stderr, or to the report function of curio_options.
 */
#ifndef CURIO_H
#define CURIO_H

#include <stddef.h>
#include <ev.h>
#include <lua.h>

typedef struct curio_kernel curio_kernel;

/* How curio_detach ends the tasks left. */
enum curio_detach_mode {
  /* Cancels them one at a time, newest first, and runs the loop (the
   * program's watchers fire in it) until their cleanups have ended or
   * shutdown_timeout passed; those left then are reported and abandoned.
   * Returns once the kernel is freed. */
  CURIO_DETACH_WAIT,
  /* Cancels them all and returns at once; their cleanups run while the
   * program runs its loop, for shutdown_timeout at most, after which the
   * tasks left are reported and abandoned. The kernel is freed from the
   * loop when no task is left (curio_tasks counts them meanwhile); a later
   * curio_detach with WAIT or ABANDON ends it sooner. */
  CURIO_DETACH_CANCEL,
  /* Abandons them at once: no cleanup runs; each is reported as abandoned
   * without its cleanup. Returns once the kernel is freed. */
  CURIO_DETACH_ABANDON
};

/* Called from the loop when a task spawned with it ends: L is a thread of
 * the attached state (its main thread; during a CURIO_DETACH_WAIT, the one
 * given to curio_detach), the task at index `task` (pass it to
 * curio_result). Whatever it raises or pushes is caught and dropped
 * (a raised error is reported as a crash). */
typedef void (*curio_done_fn)(lua_State *L, curio_kernel *k, int task, void *ud);

/* Receives one report (a crash nobody retrieved, a task abandoned at
 * detach, a long block), a text of lines ending in a newline. It must not raise nor
 * call curio_* functions. */
typedef void (*curio_report_fn)(void *ud, const char *report);

/* curio.Kernel's options, for curio_attach_opts. Start from
 * CURIO_OPTIONS_INIT: a field left as there means the default. */
struct curio_options {
  double shutdown_timeout; /* seconds the cleanups get at detach; < 0: 3 */
  int threads;             /* worker threads (1 to 4096); 0: 64 */
  int processes;           /* worker processes (1 to 4096); 0: CPUs */
  int debug;               /* 1: report every crash at once; 0: never; -1: unretrieved ones */
  curio_report_fn report;  /* NULL: reports go to stderr */
  void *report_ud;
  double longblock;        /* report a task that runs this many seconds without blocking; 0: off */
};
#define CURIO_OPTIONS_INIT {-1.0, 0, 0, -1, NULL, NULL, 0.0}

/* Puts curio.core and curio's Lua modules (compiled into libcurio) in
 * L's package.preload, so that require "curio" needs no package.path;
 * the states of the worker threads (run_in_thread) get them too.
 * curio_attach calls it when package.preload.curio is not set yet. */
int curio_preload(lua_State *L);

/* Attaches a new kernel to loop, loading curio in L (require "curio"),
 * with the default options; *kp receives the handle (NULL on error).
 * The loop stays the program's: no detach or release destroys it.
 * Errors: loop NULL, a kernel already attached to this state, a failing
 * require, out of memory (LUA_ERRMEM). */
int curio_attach(lua_State *L, struct ev_loop *loop, curio_kernel **kp);

/* curio_attach with options (opts NULL: the defaults); an option out of
 * its range is an error status naming it. With opts->report set, a crash
 * of a task that nobody waits to join goes to it when the task ends. */
int curio_attach_opts(lua_State *L, struct ev_loop *loop, const struct curio_options *opts,
                      curio_kernel **kp);

/* Spawns the function below the nargs values on top of L as a task; pops
 * them and pushes the Task (a userdata with task:join, task:result...,
 * as curio.spawn returns) or the error. The task first runs at the
 * loop's next iteration. done (may be NULL) is called with ud when the
 * task ends. Errors: not a function, fewer than nargs + 1 values, the
 * kernel detaching or detached, out of memory (then no task exists). */
int curio_spawn(lua_State *L, curio_kernel *k, int nargs, curio_done_fn done, void *ud);

/* For the terminated task at index `task` (any Task of this state): LUA_OK
 * with all its results pushed (count them with lua_gettop before and
 * after, as with lua_pcall(..., LUA_MULTRET, ...)), or its error status
 * with its error object pushed (taking it: no crash report then). A task
 * not terminated yet, or not a Task, is an error status too. */
int curio_result(lua_State *L, curio_kernel *k, int task);

/* Sets *n to the number of the kernel's tasks that have not ended. */
int curio_tasks(lua_State *L, curio_kernel *k, size_t *n);

/* Ends the kernel as `mode` says (enum curio_detach_mode) and frees it;
 * the loop and the state stay. LUA_OK on a detached handle (idempotent).
 * Errors: called from a task or a completion callback, or from a callback
 * run by this kernel's own CURIO_DETACH_WAIT; the loop destroyed before
 * (the tasks were abandoned then: the error says so, once); the state
 * closed before; an unknown mode. */
int curio_detach(lua_State *L, curio_kernel *k, int mode);

/* Frees the handle (NULL: nothing). A handle still attached is first
 * detached as with CURIO_DETACH_ABANDON, on its state's main thread: if
 * that fails (no memory), or if called from a task or a completion
 * callback, it returns an error status, pushes nothing and frees nothing.
 * The handle is invalid afterwards. */
int curio_release(curio_kernel *k);

/* The C modules, for package.preload (curio_preload does it): the core,
 * and curio.ssl's C part (curio.tls, which needs curio.core loaded). */
int luaopen_curio_core(lua_State *L);
int luaopen_curio_tls(lua_State *L);

#endif
