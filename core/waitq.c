/* core/waitq.c: the wait queue, a FIFO of waiting tasks (curio's
 * SchedFIFO), and its Lua type core.waitq.
 *
 * In C (queue.c, group.c), struct waitq is a plain list: waitq_append
 * fills a task's wait record and the caller suspends it with the kind
 * waitq_wait; waitq_pop takes the first out, and the caller wakes it. A
 * task is in at most one waitq at a time, through task->node, with
 * task->wait_obj pointing to the waitq (its wait record, wait.c: a kind
 * whose undo is waitq_unlink, as waitq_wait's).
 *
 * In Lua, core.waitq is what Event, Lock, RLock, Semaphore and Condition
 * are built on (lua/curio/sync.lua; curio's _scheduler_wait and
 * _scheduler_wake):
 *
 *   core.waitq(name?)   a new one; its waiters' kind of wait is called
 *                       `name` (what the monitor shows, "Event.wait"),
 *                       by default "wait queue"
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
#include "waitq.h"
#include "ctx.h"
#include "task.h"
#include "trap.h"
#include "wait.h"

const struct wait_kind waitq_wait = {"wait queue", waitq_unlink};

void waitq_init(struct waitq *q) {
  list_init(&q->head);
  q->count = 0;
}

void waitq_append(struct waitq *q, struct task *t) {
  t->wait_obj = q;
  list_insert_tail(&q->head, &t->node);
  q->count++;
}

/* Takes t out of the waitq it is in. */
void waitq_unlink(struct task *t) {
  struct waitq *q = t->wait_obj;
  list_remove(&t->node);
  t->wait_obj = NULL;
  q->count--;
}

struct task *waitq_first(const struct waitq *q) {
  struct list *node = list_first(&q->head);
  return node != NULL ? LIST_ENTRY(node, struct task, node) : NULL;
}

struct task *waitq_pop(struct waitq *q) {
  struct task *t = waitq_first(q);
  if (t != NULL) waitq_unlink(t);
  return t;
}

/* Forgets every waiter (the owner is being collected): they wait on, and
 * their wait record no longer points here. */
void waitq_detach_all(struct waitq *q) {
  struct task *t;
  while ((t = waitq_pop(q)) != NULL) t->wait = NULL;
}

/* ---- core.waitq ---- */

/* A waitq made in Lua, with its own kind of wait: its name is the string
 * in the userdata's user value (a waiting task's t->wait points here; the
 * finalizer detaches the waiters first, so it never outlives them). */
struct lua_waitq {
  struct waitq q;
  struct wait_kind kind;
};

static struct waitq *check(lua_State *L) {
  return ctx_checkudata(L, 1, MT_WAITQ, "waitq");
}

static int l_waitq_new(lua_State *L) {
  const char *name = lua_isnoneornil(L, 1) ? NULL : luaL_checkstring(L, 1);
  struct lua_waitq *w = lua_newuserdatauv(L, sizeof *w, name != NULL ? 1 : 0);
  waitq_init(&w->q);
  w->kind = waitq_wait;
  ctx_setmetatable(L, ctx_get(L), MT_WAITQ);
  if (name != NULL) {
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    w->kind.name = name;
  }
  return 1;
}

static int l_waitq_wait(lua_State *L) {
  struct lua_waitq *w = (struct lua_waitq *)check(L);
  struct task *t = trap_enter(L, "wait");
  if (!lua_isnoneornil(L, 2)) trap_carry(L, t, 2);
  lua_settop(L, 0);
  waitq_append(&w->q, t);
  return trap_suspend(L, t, &w->kind, trap_wait_k);
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

const luaL_Reg waitq_methods[] = {
  {"wait", l_waitq_wait},
  {"wake", l_waitq_wake},
  {"wake_one", l_waitq_wake_one},
  {"size", l_waitq_size},
  {"__len", l_waitq_size},
  {"__gc", l_waitq_gc},
  {"__tostring", l_waitq_tostring},
  {NULL, NULL}
};

const luaL_Reg waitq_functions[] = {
  {"waitq", l_waitq_new},
  {NULL, NULL}
};
