/* core/process.h: child processes (rules in process.c and spawn.c). */
#ifndef CURIO_PROCESS_H
#define CURIO_PROCESS_H

#include <lua.h>
#include <sys/types.h>
#include <lauxlib.h>

struct process;

void process_open(lua_State *L, int ctx);
struct process *process_push(lua_State *L, int worker);
void process_started(lua_State *L, struct process *p, pid_t pid);
extern const luaL_Reg spawn_functions[];

#endif
