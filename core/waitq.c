/* core/waitq.c: the FIFO wait queue, the kernel's one synchronisation
 * mechanism. Event, Lock, RLock, Semaphore, Condition and PriorityQueue are
 * Lua on top of it (lua/curio/sync.lua, queue.lua); Queue, LifoQueue
 * (queue.c), task joins (task.c) and task groups (group.c) use it from C.
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
#include "waitq.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"

void waitq_init(struct waitq *q) {
  q->head = NULL;
  q->count = 0;
}

void waitq_append(struct waitq *q, struct task *t) {
  struct task *head = q->head;
  t->wq = q;
  if (head == NULL) {
    t->wq_prev = t->wq_next = t;
    q->head = t;
  } else { /* before the head: at the tail */
    t->wq_next = head;
    t->wq_prev = head->wq_prev;
    head->wq_prev->wq_next = t;
    head->wq_prev = t;
  }
  q->count++;
}

void waitq_unlink(struct task *t) {
  struct waitq *q = t->wq;
  if (t->wq_next == t) {
    q->head = NULL;
  } else {
    t->wq_prev->wq_next = t->wq_next;
    t->wq_next->wq_prev = t->wq_prev;
    if (q->head == t) q->head = t->wq_next;
  }
  t->wq_prev = t->wq_next = NULL;
  t->wq = NULL;
  q->count--;
}

struct task *waitq_pop(struct waitq *q) {
  struct task *t = q->head;
  if (t != NULL) waitq_unlink(t);
  return t;
}

/* Gives the value at vidx to t as the result of its wait, and wakes it. */
void waitq_hand_over(lua_State *L, struct task *t, int vidx) {
  if (vidx != 0 && lua_checkstack(t->co, 1)) {
    lua_pushvalue(L, vidx);
    lua_xmove(L, t->co, 1);
    t->nargs = 1;
  }
  trap_wake(t, WAKE_OK);
}

/* Forgets every waiter (the queue is being collected): they wait on. */
void waitq_detach_all(struct waitq *q) {
  while (waitq_pop(q) != NULL) {}
}

static struct waitq *check(lua_State *L) {
  return ctx_checkudata(L, 1, MT_WAITQ, "waitq");
}

static int l_waitq_new(lua_State *L) {
  struct waitq *q = lua_newuserdatauv(L, sizeof *q, 0);
  waitq_init(q);
  ctx_setmetatable(L, kernel_ctx(L), MT_WAITQ);
  return 1;
}

/* Appends the current task t to q, carrying the value at carry_idx (0:
 * none); the caller then calls trap_suspend with waitq_wait_k. */
void waitq_enqueue(lua_State *L, struct waitq *q, struct task *t, int carry_idx) {
  if (carry_idx != 0) {
    lua_pushvalue(L, carry_idx);
    task_set_xvalue(L, t, 0, XUV_CARRY);
    t->has_carry = 1;
  }
  waitq_append(q, t);
}

/* Pushes what the woken task t carried (nil if nothing) and forgets it. */
void waitq_push_carry(lua_State *L, struct task *t) {
  if (!t->has_carry) { lua_pushnil(L); return; }
  t->has_carry = 0;
  task_get_xvalue(L, t, 0, XUV_CARRY);
  lua_pushnil(L);
  task_set_xvalue(L, t, 0, XUV_CARRY);
}

int waitq_wait_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  if (t->has_carry) {
    t->has_carry = 0;
    lua_pushnil(L);
    task_set_xvalue(L, t, 0, XUV_CARRY);
  }
  return trap_result(L, t, (int)ctx);
}

static int l_waitq_wait(lua_State *L) {
  struct waitq *q = check(L);
  struct task *t = trap_enter(L, "wait");
  waitq_enqueue(L, q, t, lua_isnoneornil(L, 2) ? 0 : 2);
  lua_settop(L, 0);
  return trap_suspend(L, t, WAIT_QUEUE, waitq_wait_k);
}

static int l_waitq_wake(lua_State *L) {
  struct waitq *q = check(L);
  lua_Number n = luaL_optnumber(L, 2, 1);
  int vidx = lua_isnoneornil(L, 3) ? 0 : 3;
  lua_Integer woken = 0;
  luaL_argcheck(L, n >= 0, 2, "non-negative number expected");
  while (woken < n && q->head != NULL) {
    waitq_hand_over(L, waitq_pop(q), vidx);
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
  waitq_push_carry(L, t);
  waitq_hand_over(L, t, vidx);
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
