/* core/lwaitq.c: core.waitq, the Lua face of the FIFO wait queue
 * (waitq.c). Event, Lock, RLock, Semaphore and Condition are Lua on top of
 * it (lua/curio/sync.lua).
 *
 *   q:wait(carry?)      suspends the task at the tail; returns what the waker
 *                       handed over. `carry` rides with the waiter (a blocked
 *                       putter's item) and is given to wake_one's caller.
 *   q:wake(n?, value?)  wakes up to n (default 1, math.huge: all) waiters in
 *                       FIFO order, each returning `value`; -> number woken
 *   q:wake_one(value?)  wakes the first waiter -> true, its carry | false
 *   #q, q:size()        waiting tasks
 *
 * A cancelled or timed-out waiter leaves the queue and gets nothing. A waiter
 * that was woken keeps what it was handed even if cancelled before it runs. */
#include <lauxlib.h>
#include "lwaitq.h"
#include "waitq.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"

static struct waitq *check(lua_State *L) {
  return ctx_checkudata(L, 1, MT_WAITQ, "waitq");
}

static int l_waitq_new(lua_State *L) {
  struct waitq *q = lua_newuserdatauv(L, sizeof *q, 0);
  waitq_init(q);
  ctx_setmetatable(L, ctx_get(L), MT_WAITQ);
  return 1;
}

static int l_waitq_wait(lua_State *L) {
  struct waitq *q = check(L);
  struct task *t = trap_enter(L, "wait");
  if (!lua_isnoneornil(L, 2)) trap_carry(L, t, 2);
  lua_settop(L, 0);
  waitq_append(q, t);
  return trap_suspend(L, t, &waitq_wait, trap_wait_k);
}

static int l_waitq_wake(lua_State *L) {
  struct waitq *q = check(L);
  lua_Number n = luaL_optnumber(L, 2, 1);
  int vidx = lua_isnoneornil(L, 3) ? 0 : 3;
  lua_Integer woken = 0;
  luaL_argcheck(L, n >= 0, 2, "non-negative number expected");
  struct task *t;
  while (woken < n && (t = waitq_pop(q)) != NULL) {
    trap_hand_over(L, t, vidx);
    woken++;
  }
  lua_pushinteger(L, woken);
  return 1;
}

static int l_waitq_wake_one(lua_State *L) {
  struct waitq *q = check(L);
  struct task *t = waitq_pop(q);
  int vidx = lua_isnoneornil(L, 2) ? 0 : 2;
  if (t == NULL) { lua_pushboolean(L, 0); return 1; }
  lua_pushboolean(L, 1);
  trap_push_carry(L, t);
  trap_hand_over(L, t, vidx);
  return 2;
}

static int l_waitq_size(lua_State *L) {
  lua_pushinteger(L, check(L)->count);
  return 1;
}

static int l_waitq_gc(lua_State *L) {
  waitq_detach_all(check(L));
  return 0;
}

static int l_waitq_tostring(lua_State *L) {
  struct waitq *q = check(L);
  lua_pushfstring(L, "waitq (%I waiting)", (LUAI_UACINT)q->count);
  return 1;
}

const luaL_Reg lwaitq_methods[] = {
  {"wait", l_waitq_wait},
  {"wake", l_waitq_wake},
  {"wake_one", l_waitq_wake_one},
  {"size", l_waitq_size},
  {"__len", l_waitq_size},
  {"__gc", l_waitq_gc},
  {"__tostring", l_waitq_tostring},
  {NULL, NULL}
};

const luaL_Reg lwaitq_functions[] = {
  {"waitq", l_waitq_new},
  {NULL, NULL}
};
