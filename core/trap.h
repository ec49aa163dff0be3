/* core/trap.h: how a task blocks and is woken (rules in trap.c). */
#ifndef CURIO_TRAP_H
#define CURIO_TRAP_H

#include <lua.h>
#include <lauxlib.h>
#include "kernel.h"
#include "task.h"

struct task;
struct curio_ctx;

struct task *trap_enter(lua_State *L, const char *fname);
struct task *trap_enter_in(lua_State *L, struct curio_ctx *ctx, const char *fname);
struct task *trap_enter_quiet(lua_State *L, struct curio_ctx *ctx, const char *fname);
struct task *trap_not_in_task(lua_State *L, const char *fname);
struct task *trap_foreign_resume(lua_State *L, struct curio_ctx *ctx);

/* The running task (ctx: the module's context), or a CurioError naming
 * fname ("not inside a curio task"). */
static inline struct task *trap_current_in(lua_State *L, struct curio_ctx *ctx, const char *fname) {
  struct kernel *k = ctx->running;
  if (k != NULL && k->current != NULL) return k->current;
  return trap_not_in_task(L, fname);
}

static inline struct task *trap_current(lua_State *L, const char *fname) {
  return trap_current_in(L, ctx_get(L), fname);
}

/* In a continuation: the task whose wait ended. A task's coroutine is
 * resumed only by its kernel (or, nested, by the curio.coroutine resume that
 * drives it); anything else (coroutine.resume on a captured coroutine.running())
 * is refused, which ends that coroutine with the error. A task of the
 * running kernel is first taken out of what it waits in (so that no lock or
 * item is handed to it), and its kernel then finds it dead: the task fails. */
static inline struct task *trap_resumed_in(lua_State *L, struct curio_ctx *ctx) {
  struct kernel *k = ctx->running;
  struct task *t = k != NULL ? k->current : NULL;
  if (t == NULL || task_active(t) != L) return trap_foreign_resume(L, ctx);
  return t;
}

static inline struct task *trap_resumed(lua_State *L) {
  return trap_resumed_in(L, ctx_get(L));
}
struct wait_kind;
int trap_suspend(lua_State *L, struct task *t, const struct wait_kind *kind, lua_KFunction k);
int trap_suspend_until(lua_State *L, struct task *t, double until, lua_KFunction k);
int trap_result(lua_State *L, struct task *t, int base);
void trap_wake(struct task *t, int reason);
void trap_hand_over(lua_State *L, struct task *t, int vidx);
void trap_carry(lua_State *L, struct task *t, int idx);
void trap_push_carry(lua_State *L, struct task *t);
int trap_wait_k(lua_State *L, int status, lua_KContext ctx);
int trap_push_interrupt(lua_State *L, struct task *t);
void trap_timer_expired(struct task *t, double at, double now);
int trap_push_due(lua_State *L, struct task *t);
void trap_push_sentinel(lua_State *L);
int trap_is_sentinel(lua_State *L, int idx);
extern const luaL_Reg trap_functions[];

#endif
