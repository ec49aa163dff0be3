/* curio.h: embedding curio in a C program that owns its libev loop.
 *
 * The program keeps its loop and runs it (ev_run) as it always does; the
 * kernel attached to it is a few watchers (an ev_prepare that runs ready
 * tasks, and the tasks' own timers and fd watchers), so the program's
 * watchers and curio's tasks share the loop. The kernel never touches
 * ev_userdata, nor SIGINT.
 *
 *   lua_State *L = luaL_newstate(); luaL_openlibs(L);
 *   curio_kernel *k = curio_attach(L, loop);    // loads curio in L
 *   luaL_loadstring(L, "...");  lua_call(L, 0, 1); // a function
 *   curio_spawn(L, k, 0);                       // pushes the Task
 *   ev_run(loop, 0);                            // tasks run in the loop
 *   curio_detach(L, k);                         // cancels what is left
 *
 * The functions raise Lua errors as any lua_* call does: call them where a
 * Lua error is caught (lua_pcall) or acceptable. L must stay the same thread
 * between curio_attach and curio_detach. */
#ifndef CURIO_H
#define CURIO_H

#include <stddef.h>
#include <ev.h>
#include <lua.h>

typedef struct kernel curio_kernel;

/* The C module, for package.preload in a program linked with curio. */
int luaopen_curio_core(lua_State *L);

/* Loads curio in L (require "curio") and attaches a new kernel to loop.
 * The loop stays the program's: curio_detach leaves it alive. */
curio_kernel *curio_attach(lua_State *L, struct ev_loop *loop);

/* Spawns the function below the nargs values on top of L as a task; pops
 * them and pushes the Task. It runs at the loop's next iteration. */
void curio_spawn(lua_State *L, curio_kernel *k, int nargs);

/* Number of tasks of the kernel that have not ended. */
size_t curio_tasks(const curio_kernel *k);

/* Cancels the tasks left, runs the loop until their cleanup ended, and
 * releases the kernel. */
void curio_detach(lua_State *L, curio_kernel *k);

#endif
