/* core/queue.c: the FIFO and LIFO queues behind curio.Queue and
 * curio.LifoQueue (lua/curio/queue.lua checks the constructor's argument).
 * PriorityQueue stays in Lua on core.waitq; these two are C because a
 * producer/consumer pair through them is the hottest path users have.
 *
 * Rules (as curio's and asyncio's queues; they make "no item is ever lost"
 * hold):
 * 1. An item put stays in the queue until a getter takes it: qsize, empty,
 *    full and maxsize count it even while a woken getter is on its way.
 * 2. Getters wait only while every item is reserved, putters only while
 *    the queue is full, both in FIFO order.
 * 3. put() with getters waiting reserves an item for the first one and
 *    wakes it (the getter joins `takers`, whose count is the number of
 *    reserved items). The woken getter takes an item when it runs; if it
 *    was cancelled meanwhile, it passes its reservation to the next waiting
 *    getter and raises, so the item stays for the next getter. (A timeout
 *    that expired meanwhile comes at its next blocking call: passing on
 *    for timeouts could bounce an item between getters whose time ran out
 *    before they ran, while it sits in the queue.) A getter that never runs again (its kernel closed under it)
 *    leaves `takers`, which frees its reservation. A getter cancelled
 *    while still waiting leaves with nothing.
 * 4. A putter blocked on a full queue carries its item. A getter that makes
 *    room moves the first putter's item in and wakes that putter, whose
 *    put() has then succeeded. A putter cancelled while waiting leaves
 *    with its item: put() raised, so it never entered the queue.
 * 5. `unfinished` (join, task_done) grows when an item enters the queue.
 *
 * Items live in a ring in the user value table: slot i (0-based from head)
 * is table index ((head + i) & (cap - 1)) + 1. */
#include <string.h>
#include <lauxlib.h>
#include "queue.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "waitq.h"
#include "wait.h"
#include "errors.h"

struct fifo {
  struct udata_tag tag;                  /* see fifo_check */
  struct curio_ctx *ctx;                 /* the module's context */
  struct waitq getters, putters, joiners;
  struct waitq takers;                   /* woken getters, one reserved item each */
  lua_Integer head, size, cap, maxsize, unfinished;
  int lifo;
};

static const char *fifo_name(const struct fifo *q) {
  return q->lifo ? "LifoQueue" : "Queue";
}

/* A queue is tagged (module.h), not checked by its metatable: queues have
 * several metatables, one per maxsize. */
static struct fifo *fifo_check(lua_State *L) {
  return ctx_checkudata(L, 1, MT_FIFO, "Queue");
}

/* Stores the value on top of the stack; the items table is at tidx. */
static void fifo_push(lua_State *L, struct fifo *q, int tidx) {
  if (q->size == q->cap) {
    /* Grow in place: slots [0, head) hold the ring's wrapped-around end;
     * moving them to [cap, cap + head) makes the items contiguous from
     * head in a ring twice as big. Nothing moves when head is 0 (a queue
     * filled from empty), and the table grows its array part itself. */
    for (lua_Integer i = 0; i < q->head; i++) {
      lua_rawgeti(L, tidx, i + 1);
      lua_rawseti(L, tidx, q->cap + i + 1);
      lua_pushnil(L);
      lua_rawseti(L, tidx, i + 1);
    }
    q->cap *= 2;
  }
  lua_rawseti(L, tidx, ((q->head + q->size) & (q->cap - 1)) + 1);
  q->size++;
}

/* Pushes the next value (oldest, or newest for LIFO) and removes it. */
static void fifo_pop(lua_State *L, struct fifo *q, int tidx) {
  lua_Integer slot = q->lifo ? (q->head + q->size - 1) & (q->cap - 1) : q->head;
  lua_rawgeti(L, tidx, slot + 1);
  lua_pushnil(L);
  lua_rawseti(L, tidx, slot + 1);
  q->size--;
  if (!q->lifo) q->head = (q->head + 1) & (q->cap - 1);
}

/* Queues of one kind and maxsize share a metatable whose __index table holds
 * the methods and the `maxsize` field: method lookups then stay inside the
 * VM (a C __index function cost a call per q:put). The metatables are
 * cached in weak tables keyed by maxsize (upvalues 2 and 3 of core.fifo,
 * for FIFO and LIFO queues). */
static void push_metatable(lua_State *L, lua_Integer maxsize, int lifo) {
  int cache = lua_upvalueindex(lifo ? 3 : 2);
  if (lua_rawgeti(L, cache, maxsize) == LUA_TTABLE) return;
  lua_pop(L, 1);
  luaL_getmetatable(L, FIFO_MT); /* the template: methods in __index */
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, -3) != 0) { /* copy the template */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_newtable(L);
  lua_getfield(L, -3, "__index");
  lua_pushnil(L);
  while (lua_next(L, -2) != 0) { /* copy the methods */
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, maxsize);
  lua_setfield(L, -2, "maxsize");
  lua_setfield(L, -2, "__index");
  lua_remove(L, -2);
  lua_pushvalue(L, -1);
  lua_rawseti(L, cache, maxsize);
}

/* core.fifo(maxsize, lifo) -> queue; maxsize 0: unbounded (checked in Lua). */
static int l_fifo_new(lua_State *L) {
  lua_Integer maxsize = luaL_checkinteger(L, 1);
  int lifo = lua_toboolean(L, 2);
  struct fifo *q = lua_newuserdatauv(L, sizeof *q, 1);
  memset(q, 0, sizeof *q);
  q->tag.tag = ctx_tag(MT_FIFO);
  q->ctx = ctx_get(L);
  waitq_init(&q->getters);
  waitq_init(&q->putters);
  waitq_init(&q->joiners);
  waitq_init(&q->takers);
  q->maxsize = maxsize;
  q->lifo = lifo;
  q->cap = 16;
  lua_createtable(L, 16, 0);
  lua_setiuservalue(L, -2, 1);
  push_metatable(L, maxsize, lifo);
  lua_setmetatable(L, -2);
  return 1;
}

static int put_k(lua_State *L, int status, lua_KContext ctx) {
  return trap_wait_k(L, status, ctx) * 0;
}

/* The wait record of a getter woken with an item reserved, listed in
 * `takers` until it runs (rule 3). */
static const struct wait_kind reserved_wait = {"Queue item reserved", waitq_unlink};

/* Rule 3: reserves an item for the first waiting getter, if any, and
 * wakes it. */
static void reserve_for_getter(struct fifo *q) {
  struct task *getter = waitq_pop(&q->getters);
  if (getter == NULL) return;
  trap_wake(getter, WAKE_OK);
  waitq_append(&q->takers, getter); /* its wait record, until it runs */
  getter->wait = &reserved_wait;
}

/* q:put(item): rules 1 to 4. */
static int l_fifo_put(lua_State *L) {
  struct fifo *q = fifo_check(L);
  if (lua_isnoneornil(L, 2)) return errors_methoderror(L, 2, "put", "value expected");
  if (q->maxsize == 0 || q->size < q->maxsize) {
    trap_current_in(L, q->ctx, q->lifo ? "LifoQueue.put" : "Queue.put");
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    fifo_push(L, q, lua_gettop(L) - 1);
    q->unfinished++;
    reserve_for_getter(q);
    return 0;
  }
  struct task *t = trap_enter(L, q->lifo ? "LifoQueue.put" : "Queue.put");
  lua_settop(L, 2);
  trap_carry(L, t, 2);
  waitq_append(&q->putters, t);
  lua_settop(L, 1);
  return trap_suspend(L, t, &waitq_wait, put_k);
}

/* Pushes the next item, taken out, and moves the first blocked putter's
 * item in (rule 4). The queue is at index 1. */
static int fifo_take(lua_State *L, struct fifo *q) {
  lua_getiuservalue(L, 1, 1);
  int items = lua_gettop(L);
  fifo_pop(L, q, items);
  struct task *putter = waitq_pop(&q->putters);
  if (putter != NULL) {
    trap_push_carry(L, putter);
    fifo_push(L, q, items);
    q->unfinished++;
    trap_hand_over(L, putter, 0);
  }
  return 1;
}

/* A getter woken by put (rule 3): take the item reserved for it. */
static int get_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  struct fifo *q = lua_touserdata(L, 1);
  (void)status;
  trap_result(L, t, (int)ctx); /* raises if it was cancelled while waiting */
  if (t->wait == &reserved_wait) wait_undo(t); /* (leaves takers) */
  if (t->no_cancel == 0 && t->pending != PEND_NONE) { /* cancelled since: pass it on */
    reserve_for_getter(q);
    trap_raise_pending(L, t);
  }
  lua_settop(L, 1);
  if (q->size == 0) { /* cannot happen (rule 3); wait again rather than fail */
    waitq_append(&q->getters, t);
    return trap_suspend(L, t, &waitq_wait, get_k);
  }
  return fifo_take(L, q);
}

/* q:get() -> the next item, waiting while every item is reserved. */
static int l_fifo_get(lua_State *L) {
  struct fifo *q = fifo_check(L);
  if (q->size <= q->takers.count) {
    struct task *t = trap_enter(L, q->lifo ? "LifoQueue.get" : "Queue.get");
    lua_settop(L, 1);
    waitq_append(&q->getters, t);
    return trap_suspend(L, t, &waitq_wait, get_k);
  }
  trap_current_in(L, q->ctx, q->lifo ? "LifoQueue.get" : "Queue.get");
  lua_settop(L, 1);
  return fifo_take(L, q);
}

static int l_fifo_qsize(lua_State *L) {
  lua_pushinteger(L, fifo_check(L)->size);
  return 1;
}

static int l_fifo_empty(lua_State *L) {
  lua_pushboolean(L, fifo_check(L)->size == 0);
  return 1;
}

static int l_fifo_full(lua_State *L) {
  struct fifo *q = fifo_check(L);
  lua_pushboolean(L, q->maxsize > 0 && q->size >= q->maxsize);
  return 1;
}

/* q:task_done(): one item got earlier is processed (for join). */
static int l_fifo_task_done(lua_State *L) {
  struct fifo *q = fifo_check(L);
  if (q->unfinished <= 0)
    return errors_raise(L, "CurioError", "%s.task_done: called more times than there were items",
                        fifo_name(q));
  if (--q->unfinished == 0)
    for (struct task *j; (j = waitq_pop(&q->joiners)) != NULL;) trap_hand_over(L, j, 0);
  return 0;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  return trap_wait_k(L, status, ctx) * 0;
}

/* q:join(): waits until every item put has had its task_done(). */
static int l_fifo_join(lua_State *L) {
  struct fifo *q = fifo_check(L);
  lua_settop(L, 1);
  if (q->unfinished == 0) {
    trap_current_in(L, q->ctx, q->lifo ? "LifoQueue.join" : "Queue.join");
    return 0;
  }
  struct task *t = trap_enter(L, q->lifo ? "LifoQueue.join" : "Queue.join");
  waitq_append(&q->joiners, t);
  return trap_suspend(L, t, &waitq_wait, join_k);
}

static int l_fifo_tostring(lua_State *L) {
  struct fifo *q = fifo_check(L);
  lua_pushfstring(L, "%s (%I items, %I getters, %I putters)", fifo_name(q),
                  (LUAI_UACINT)q->size, (LUAI_UACINT)q->getters.count,
                  (LUAI_UACINT)q->putters.count);
  return 1;
}

/* __gc: waiting tasks are forgotten (they wait on, until cancelled). */
static int l_fifo_gc(lua_State *L) {
  struct fifo *q = fifo_check(L);
  waitq_detach_all(&q->getters);
  waitq_detach_all(&q->putters);
  waitq_detach_all(&q->joiners);
  waitq_detach_all(&q->takers);
  return 0;
}

static const luaL_Reg fifo_methods[] = {
  {"put", l_fifo_put},
  {"get", l_fifo_get},
  {"qsize", l_fifo_qsize},
  {"empty", l_fifo_empty},
  {"full", l_fifo_full},
  {"task_done", l_fifo_task_done},
  {"join", l_fifo_join},
  {"__tostring", l_fifo_tostring},
  {"__gc", l_fifo_gc},
  {NULL, NULL}
};

/* Builds the template metatable and core.fifo (a closure over the cache of
 * per-maxsize metatables); called by luaopen_curio_core with the module
 * table on top and the context at ctx. */
void queue_open(lua_State *L, int ctx) {
  module_newtype(L, FIFO_MT, fifo_methods, ctx, -1);
  lua_pushvalue(L, ctx);
  for (int i = 0; i < 2; i++) { /* the caches, weak-valued */
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushcclosure(L, l_fifo_new, 3);
  lua_setfield(L, -2, "fifo");
}
