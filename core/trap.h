/* core/trap.h: how a task blocks and is woken (rules in trap.c). */
#ifndef CURIO_TRAP_H
#define CURIO_TRAP_H

#include <lua.h>
#include <lauxlib.h>

struct task;
struct curio_ctx;

struct task *trap_enter(lua_State *L, const char *fname);
struct task *trap_resumed(lua_State *L);
struct task *trap_current(lua_State *L, const char *fname);
struct task *trap_current_in(lua_State *L, struct curio_ctx *ctx, const char *fname);
int trap_suspend(lua_State *L, struct task *t, int wait, lua_KFunction k);
int trap_suspend_until(lua_State *L, struct task *t, double until, lua_KFunction k);
int trap_result(lua_State *L, struct task *t, int base);
void trap_wake(struct task *t, int reason);
void trap_hand_over(lua_State *L, struct task *t, int vidx);
void trap_carry(lua_State *L, struct task *t, int idx);
void trap_push_carry(lua_State *L, struct task *t);
int trap_wait_k(lua_State *L, int status, lua_KContext ctx);
void trap_io_undo(struct task *t);
int task_interrupt(struct task *t, int reason);
void trap_raise_pending(lua_State *L, struct task *t);
void trap_raise_due(lua_State *L, struct task *t);
void trap_push_sentinel(lua_State *L);
int trap_is_sentinel(lua_State *L, int idx);
extern const luaL_Reg trap_functions[];

#endif
