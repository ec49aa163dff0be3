/* core/queue.c: curio.Queue, LifoQueue and PriorityQueue, one protocol of
 * putting and getting over three orders of storage, as curio's queue.py
 * (lua/curio/queue.lua checks the constructors' argument). They are C
 * because a producer/consumer pair through a queue is the hottest path
 * users have.
 *
 * Rules (as curio's and asyncio's queues; they make "no item is ever lost"
 * hold):
 * 1. An item put stays in the queue until a getter takes it: qsize, empty,
 *    full and maxsize count it even while a woken getter is on its way.
 * 2. Getters wait only while every item is reserved, putters only while
 *    the queue is full, both in FIFO order.
 * 3. put() with getters waiting reserves an item for the first one and
 *    wakes it (the getter joins `takers`, whose count is the number of
 *    reserved items). The woken getter takes an item when it runs, even if
 *    it was cancelled or its time ran out since the wake-up: a woken task
 *    owns what it was handed, and the cancellation or timeout comes at its
 *    next blocking call (trap.c rule 3), as with Event, Lock and Semaphore.
 *    A getter that never runs again (its kernel closed under it) leaves
 *    `takers`, which frees its reservation. A getter cancelled or timed out
 *    while still waiting leaves with nothing.
 * 4. A putter blocked on a full queue carries its item (with its priority,
 *    in a PriorityQueue). A getter that makes room moves the first putter's
 *    item in and wakes that putter, whose put() has then succeeded, even
 *    if it is cancelled before it runs (rule 3). A putter cancelled while
 *    waiting leaves with its item: put() raised, so it never entered.
 * 5. `unfinished` (join, task_done) grows when an item enters the queue.
 * 6. The order is the storage's alone: FIFO and LIFO keep a ring in the
 *    items table (slot i, 0-based from head, is table index
 *    ((head + i) & (cap - 1)) + 1); a PriorityQueue keeps its keys in a
 *    heap (priority.c) and its items in the same table. */
#include <string.h>
#include <lauxlib.h>
#include "queue.h"
#include "priority.h"
#include "ctx.h"
#include "task.h"
#include "trap.h"
#include "waitq.h"
#include "wait.h"
#include "errors.h"

enum queue_order { QUEUE_FIFO, QUEUE_LIFO, QUEUE_PRIORITY };

/* Its names, by order: the option core.queue takes, and those its errors
 * give; each blocking method's is also the name of its kind of wait
 * (wait.h: what the monitor shows a task waits in). */
static const char *const queue_orders[] = {"fifo", "lifo", "priority", NULL};
#define QUEUE_WAIT(name) {name, waitq_unlink}
static const struct {
  const char *type;
  struct wait_kind put, get, join;
} queue_names[] = {
  {"Queue", QUEUE_WAIT("Queue.put"), QUEUE_WAIT("Queue.get"), QUEUE_WAIT("Queue.join")},
  {"LifoQueue", QUEUE_WAIT("LifoQueue.put"), QUEUE_WAIT("LifoQueue.get"),
   QUEUE_WAIT("LifoQueue.join")},
  {"PriorityQueue", QUEUE_WAIT("PriorityQueue.put"), QUEUE_WAIT("PriorityQueue.get"),
   QUEUE_WAIT("PriorityQueue.join")},
};

/* User values of a queue: its items (every order), the heap's arrays. */
enum { QUV_ITEMS = 1, QUV_HEAP };

struct queue {
  struct udata_tag tag;                  /* see queue_check */
  struct curio_ctx *ctx;                 /* the module's context */
  struct waitq getters, putters, joiners;
  struct waitq takers;                   /* woken getters, one reserved item each */
  lua_Integer size, maxsize, unfinished;
  int order;                             /* enum queue_order */
  lua_Integer head, cap;                 /* the ring (FIFO, LIFO) */
  struct priority_heap heap;             /* (PriorityQueue) */
};

/* A queue is tagged (ctx.h), not checked by its metatable: queues have
 * several metatables, one per order and maxsize. */
static struct queue *queue_check(lua_State *L) {
  return ctx_checkudata(L, 1, MT_QUEUE, "Queue");
}

/* ---- the ring of FIFO and LIFO queues (rule 6) ---- */

/* Stores the value on top of the stack; the items table is at tidx. */
static void ring_push(lua_State *L, struct queue *q, int tidx) {
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
}

/* Pushes the next value (oldest, or newest for LIFO) and removes it. */
static void ring_pop(lua_State *L, struct queue *q, int tidx) {
  int lifo = q->order == QUEUE_LIFO;
  lua_Integer slot = lifo ? (q->head + q->size - 1) & (q->cap - 1) : q->head;
  lua_rawgeti(L, tidx, slot + 1);
  lua_pushnil(L);
  lua_rawseti(L, tidx, slot + 1);
  if (!lifo) q->head = (q->head + 1) & (q->cap - 1);
}

/* ---- the protocol (rules 1 to 5), over any order ---- */

/* Stores the value on top of the stack (popping it), with key for a
 * PriorityQueue; the queue is at index 1, its items table at tidx. */
static void queue_store(lua_State *L, struct queue *q, int tidx, const struct priority_key *key) {
  if (q->order == QUEUE_PRIORITY) priority_push(L, &q->heap, 1, QUV_HEAP, tidx, key);
  else ring_push(L, q, tidx);
  q->size++;
  q->unfinished++;
}

/* The wait record of a getter woken with an item reserved, listed in
 * `takers` until it runs (rule 3). */
static const struct wait_kind reserved_wait = {"Queue item reserved", waitq_unlink};

/* Rule 3: reserves an item for the first waiting getter, if any, and
 * wakes it. */
static void reserve_for_getter(struct queue *q) {
  struct task *getter = waitq_pop(&q->getters);
  if (getter == NULL) return;
  trap_wake(getter, WAKE_OK);
  waitq_append(&q->takers, getter); /* its wait record, until it runs */
  getter->wait = &reserved_wait;
}

/* Rule 4: moves the item the first blocked putter carries (a PriorityQueue's
 * putter carries {item, priority}) into the queue, which has room for it,
 * and wakes that putter. The items table is at tidx. */
static void admit_putter(lua_State *L, struct queue *q, int tidx) {
  struct task *putter = waitq_first(&q->putters);
  if (putter == NULL) return;
  trap_push_carry(L, putter);
  struct priority_key key;
  if (q->order == QUEUE_PRIORITY) {
    lua_rawgeti(L, -1, 2);
    priority_tokey(L, -1, &key); /* (checked by its put) */
    lua_pop(L, 1);
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  queue_store(L, q, tidx, &key);
  trap_hand_over(L, putter, 0); /* (its wait's undo takes it out of putters) */
}

/* The priority of a PriorityQueue's put (argument 3, default 0). */
static void check_priority(lua_State *L, struct priority_key *key) {
  if (lua_isnoneornil(L, 3)) {
    key->is_int = 1;
    key->v.i = 0;
    return;
  }
  if (lua_type(L, 3) != LUA_TNUMBER) errors_methodtypeerror(L, 3, "put", "number");
  if (!priority_tokey(L, 3, key)) errors_methoderror(L, 3, "put", "number expected, got NaN");
}

static int put_k(lua_State *L, int status, lua_KContext ctx) {
  return trap_wait_k(L, status, ctx) * 0;
}

/* q:put(item) (q:put(item, priority) for a PriorityQueue): rules 1 to 4. */
static int l_queue_put(lua_State *L) {
  struct queue *q = queue_check(L);
  struct priority_key key;
  if (lua_isnoneornil(L, 2)) return errors_methoderror(L, 2, "put", "value expected");
  if (q->order == QUEUE_PRIORITY) check_priority(L, &key);
  if (q->maxsize == 0 || q->size < q->maxsize) {
    trap_current_in(L, q->ctx, queue_names[q->order].put.name);
    lua_getiuservalue(L, 1, QUV_ITEMS);
    lua_pushvalue(L, 2);
    queue_store(L, q, lua_gettop(L) - 1, &key);
    reserve_for_getter(q);
    return 0;
  }
  struct task *t = trap_enter(L, queue_names[q->order].put.name);
  if (q->order == QUEUE_PRIORITY) { /* the item with its priority */
    lua_createtable(L, 2, 0);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 1);
    if (key.is_int) lua_pushinteger(L, key.v.i);
    else lua_pushnumber(L, key.v.n);
    lua_rawseti(L, -2, 2);
    trap_carry(L, t, -1);
  } else {
    trap_carry(L, t, 2);
  }
  lua_settop(L, 1);
  waitq_append(&q->putters, t);
  return trap_suspend(L, t, &queue_names[q->order].put, put_k);
}

/* Pushes the next item, taken out (a PriorityQueue's with its priority),
 * and lets the first blocked putter in (rule 4). The queue is at index 1.
 * -> the number of values pushed. */
static int queue_take(lua_State *L, struct queue *q) {
  lua_getiuservalue(L, 1, QUV_ITEMS);
  int tidx = lua_gettop(L);
  int nresults = 1;
  if (q->order == QUEUE_PRIORITY) {
    priority_pop(L, &q->heap, tidx);
    nresults = 2;
  } else {
    ring_pop(L, q, tidx);
  }
  q->size--;
  admit_putter(L, q, tidx);
  return nresults;
}

/* A getter woken by put (rule 3): take the item reserved for it, whatever
 * came since the wake-up. */
static int get_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  struct queue *q = lua_touserdata(L, 1);
  (void)status;
  trap_result(L, t, (int)ctx); /* raises if cancelled or timed out while waiting */
  if (t->wait == &reserved_wait) wait_undo(t); /* (leaves takers) */
  lua_settop(L, 1);
  if (q->size == 0) { /* cannot happen (rule 3); wait again rather than fail */
    waitq_append(&q->getters, t);
    return trap_suspend(L, t, &queue_names[q->order].get, get_k);
  }
  return queue_take(L, q);
}

/* q:get() -> the next item (a PriorityQueue's: item, priority), waiting
 * while every item is reserved. */
static int l_queue_get(lua_State *L) {
  struct queue *q = queue_check(L);
  if (q->size <= q->takers.count) {
    struct task *t = trap_enter(L, queue_names[q->order].get.name);
    lua_settop(L, 1);
    waitq_append(&q->getters, t);
    return trap_suspend(L, t, &queue_names[q->order].get, get_k);
  }
  trap_current_in(L, q->ctx, queue_names[q->order].get.name);
  lua_settop(L, 1);
  return queue_take(L, q);
}

static int l_queue_qsize(lua_State *L) {
  lua_pushinteger(L, queue_check(L)->size);
  return 1;
}

static int l_queue_empty(lua_State *L) {
  lua_pushboolean(L, queue_check(L)->size == 0);
  return 1;
}

static int l_queue_full(lua_State *L) {
  struct queue *q = queue_check(L);
  lua_pushboolean(L, q->maxsize > 0 && q->size >= q->maxsize);
  return 1;
}

/* q:task_done(): one item got earlier is processed (for join). */
static int l_queue_task_done(lua_State *L) {
  struct queue *q = queue_check(L);
  if (q->unfinished <= 0)
    return errors_raise(L, "CurioError", "%s.task_done: called more times than there were items",
                        queue_names[q->order].type);
  if (--q->unfinished == 0)
    for (struct task *j; (j = waitq_pop(&q->joiners)) != NULL;) trap_hand_over(L, j, 0);
  return 0;
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  return trap_wait_k(L, status, ctx) * 0;
}

/* q:join(): waits until every item put has had its task_done(). */
static int l_queue_join(lua_State *L) {
  struct queue *q = queue_check(L);
  lua_settop(L, 1);
  if (q->unfinished == 0) {
    trap_current_in(L, q->ctx, queue_names[q->order].join.name);
    return 0;
  }
  struct task *t = trap_enter(L, queue_names[q->order].join.name);
  waitq_append(&q->joiners, t);
  return trap_suspend(L, t, &queue_names[q->order].join, join_k);
}

static int l_queue_tostring(lua_State *L) {
  struct queue *q = queue_check(L);
  lua_pushfstring(L, "%s (%I items, %I getters, %I putters)", queue_names[q->order].type,
                  (LUAI_UACINT)q->size, (LUAI_UACINT)q->getters.count,
                  (LUAI_UACINT)q->putters.count);
  return 1;
}

/* __gc: waiting tasks are forgotten (they wait on, until cancelled). */
static int l_queue_gc(lua_State *L) {
  struct queue *q = queue_check(L);
  waitq_detach_all(&q->getters);
  waitq_detach_all(&q->putters);
  waitq_detach_all(&q->joiners);
  waitq_detach_all(&q->takers);
  return 0;
}

static const luaL_Reg queue_methods[] = {
  {"put", l_queue_put},
  {"get", l_queue_get},
  {"qsize", l_queue_qsize},
  {"empty", l_queue_empty},
  {"full", l_queue_full},
  {"task_done", l_queue_task_done},
  {"join", l_queue_join},
  {"__tostring", l_queue_tostring},
  {"__gc", l_queue_gc},
  {NULL, NULL}
};

/* Queues of one order and maxsize share a metatable whose __index table
 * holds the methods and the `maxsize` field: method lookups then stay inside
 * the VM (a C __index function cost a call per q:put). The metatables are
 * cached in weak tables keyed by maxsize, one per order (upvalues 2 to 4
 * of core.queue). */
static void push_metatable(lua_State *L, lua_Integer maxsize, int order) {
  int cache = lua_upvalueindex(2 + order);
  if (lua_rawgeti(L, cache, maxsize) == LUA_TTABLE) return;
  lua_pop(L, 1);
  luaL_getmetatable(L, QUEUE_MT); /* the template: methods in __index */
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

/* core.queue(maxsize, order) -> queue; maxsize 0: unbounded (checked in
 * Lua); order "fifo", "lifo" or "priority". */
static int l_queue_new(lua_State *L) {
  lua_Integer maxsize = luaL_checkinteger(L, 1);
  int order = luaL_checkoption(L, 2, NULL, queue_orders);
  struct queue *q = lua_newuserdatauv(L, sizeof *q, order == QUEUE_PRIORITY ? 2 : 1);
  memset(q, 0, sizeof *q);
  q->tag.tag = ctx_tag(MT_QUEUE);
  q->ctx = ctx_get(L);
  waitq_init(&q->getters);
  waitq_init(&q->putters);
  waitq_init(&q->joiners);
  waitq_init(&q->takers);
  q->maxsize = maxsize;
  q->order = order;
  q->cap = 16;
  int qidx = lua_gettop(L);
  if (order == QUEUE_PRIORITY) priority_init(L, &q->heap, qidx, QUV_HEAP);
  lua_createtable(L, 16, 0);
  lua_setiuservalue(L, qidx, QUV_ITEMS);
  push_metatable(L, maxsize, order);
  lua_setmetatable(L, qidx);
  return 1;
}

/* Builds the template metatable and core.queue (a closure over the caches
 * of per-maxsize metatables); called by luaopen_curio_core with the module
 * table on top and the context at ctx. */
void queue_open(lua_State *L, int ctx) {
  ctx_newtype(L, QUEUE_MT, queue_methods, ctx, -1);
  lua_pushvalue(L, ctx);
  for (int i = 0; i < 3; i++) { /* the caches, weak-valued */
    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushcclosure(L, l_queue_new, 4);
  lua_setfield(L, -2, "queue");
}
