/* core/universal.c: UniversalQueue, UniversalEvent and UniversalLock, one
 * object usable from tasks (which it suspends, never the kernel) and from
 * worker threads (which it blocks).
 *
 * Rules:
 * 1. The object is C memory shared by reference counting; each Lua state
 *    holds proxies (tagged userdata) that own one reference each. It
 *    crosses the codec by reference (struct codec_shared).
 * 2. Every change is made under the object's lock and wakes every waiter:
 *    threads through a condition variable, tasks through their kernel's
 *    inbox (inbox.c). A woken waiter retries: nothing is handed over, so
 *    a waiter cancelled after it was woken loses nothing (an item stays in
 *    the queue).
 * 3. A task's wait record is a userdata in its frame, linked in the
 *    object's task waiters, then posted to its kernel's inbox; its undo
 *    takes it back from whichever holds it (lock order: object, inbox).
 * 4. A call made in a task (of this Lua state's running kernel) suspends the
 *    task; any other call (a worker thread, a plain program) blocks its
 *    thread. Queue items are copied by the codec.
 * 5. A Lua state has one proxy per object: a weak table of the registry
 *    maps the object's address to it, so an object that comes back (a queue
 *    item, a thread's result) is the same Lua value. A proxy leaves that
 *    table before its __gc runs (Lua clears weak values of finalized
 *    objects first), so an address reused after the object is freed never
 *    finds a stale proxy.
 * 6. A worker thread blocked in a wait is registered with its pool while
 *    it waits (universal_thread_wait, threads.c rule 6): its kernel's close
 *    wakes it and it raises CancelledError there, as at any later wait.
 * 7. Queues that hold each other (q:put(q), or two that hold each other)
 *    are collected: an item's header says whether it holds shared objects,
 *    and when a reference to a queue that holds some is dropped and others
 *    remain, the queues reachable through items are locked (try-locks: a
 *    busy one stops the attempt, nothing ever waits) and counted by trial
 *    deletion: if every reference to each of them comes from their items,
 *    they are garbage and freed together. Events and locks hold nothing,
 *    so they close no cycle.
 * 8. A call from the thread of a kernel running in this Lua state but not
 *    from its running task's own coroutine (a plain coroutine.wrap inside
 *    a task, a __gc run by the scheduler) never blocks that thread, which
 *    would stop the kernel for ever: it raises where it would wait, as
 *    every blocking call of curio does there. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "universal.h"
#include "ctx.h"
#include "codec.h"
#include "errors.h"

const char *const universal_kind_names[] = {"UniversalQueue", "UniversalEvent", "UniversalLock"};

struct proxy {
  struct udata_tag tag;
  struct uobj *obj;
};

/* ---- a queue's items ---- */

#define HOLDS 0x80000000u /* an item's header: it holds shared objects */

/* Items are kept in one buffer: a put appends, a get takes from the front;
 * the live part moves down when the end is reached. Under o->lock. */
int universal_ring_push(struct uobj *o, const char *data, size_t len, int holds) {
  size_t need = 4 + len;
  if (o->wr + need > o->cap && o->rd > 0) {
    memmove(o->buf, o->buf + o->rd, o->wr - o->rd);
    o->wr -= o->rd;
    o->rd = 0;
  }
  if (o->wr + need > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->wr + need) cap *= 2;
    char *p = realloc(o->buf, cap);
    if (p == NULL) return 0;
    o->buf = p;
    o->cap = cap;
  }
  uint32_t header = (uint32_t)len | (holds ? HOLDS : 0);
  memcpy(o->buf + o->wr, &header, 4);
  memcpy(o->buf + o->wr + 4, data, len);
  o->wr += need;
  if (holds) o->holding++;
  return 1;
}

static uint32_t header_at(const char *buf, size_t at) {
  uint32_t header;
  memcpy(&header, buf + at, 4);
  return header;
}

size_t universal_ring_peek(const struct uobj *o) {
  return header_at(o->buf, o->rd) & ~HOLDS;
}

void universal_ring_pop(struct uobj *o, char *into, size_t len) {
  if (header_at(o->buf, o->rd) & HOLDS) o->holding--;
  memcpy(into, o->buf + o->rd + 4, len);
  o->rd += 4 + len;
  if (o->rd == o->wr) o->rd = o->wr = 0;
}

/* Calls fn for every shared object the items from `rd` to `wr` of buf hold. */
static void each_held(const char *buf, size_t rd, size_t wr,
                      void (*fn)(const struct codec_shared *ops, void *obj, void *ud), void *ud) {
  for (size_t at = rd; at < wr;) {
    uint32_t header = header_at(buf, at);
    size_t len = header & ~HOLDS;
    if (header & HOLDS) codec_shared_each(buf + at + 4, len, fn, ud);
    at += 4 + len;
  }
}

/* ---- lifetime (rules 1 and 7) ---- */

static void uobj_release(struct uobj *o);
static void release_held(const struct codec_shared *ops, void *obj, void *ud) {
  (void)ud;
  ops->release(obj);
}

static void uobj_destroy(struct uobj *o) {
  pthread_cond_destroy(&o->changed);
  pthread_mutex_destroy(&o->lock);
  free(o);
}

/* A cycle's trial (rule 7): the queues met, locked, with the references
 * to each that come from their items. */
#define CYCLE_MAX 64
struct trial {
  struct uobj *obj[CYCLE_MAX];
  lua_Integer inner[CYCLE_MAX];
  int n, failed;
};

static void push_proxy(lua_State *L, void *obj);
static void *shared_retain(lua_State *L, int idx);
static void shared_release(void *obj);
static const struct codec_shared shared_ops = { shared_retain, push_proxy, shared_release };

static int trial_find(const struct trial *tr, const struct uobj *o) {
  for (int i = 0; i < tr->n; i++) if (tr->obj[i] == o) return i;
  return -1;
}

static void trial_meet(const struct codec_shared *ops, void *obj, void *ud) {
  struct trial *tr = ud;
  struct uobj *o = obj;
  if (ops != &shared_ops || o->kind != U_QUEUE || tr->failed) return;
  int i = trial_find(tr, o);
  if (i < 0) {
    if (tr->n == CYCLE_MAX || pthread_mutex_trylock(&o->lock) != 0) { tr->failed = 1; return; }
    i = tr->n++;
    tr->obj[i] = o;
    tr->inner[i] = 0;
  }
  tr->inner[i]++;
}

static void release_outside(const struct codec_shared *ops, void *obj, void *ud) {
  if (ops == &shared_ops && trial_find(ud, obj) >= 0) return; /* (freed with the trial) */
  ops->release(obj);
}

/* o is locked, its reference dropped, others left, its items hold shared
 * objects (rule 7): frees it with the queues it reaches if all of them are
 * held only by their items; unlocks o. */
static void collect_cycle(struct uobj *o) {
  struct trial tr;
  tr.obj[0] = o;
  tr.inner[0] = 0;
  tr.n = 1;
  tr.failed = 0;
  for (int i = 0; i < tr.n && !tr.failed; i++)
    each_held(tr.obj[i]->buf, tr.obj[i]->rd, tr.obj[i]->wr, trial_meet, &tr);
  int garbage = !tr.failed;
  for (int i = 0; i < tr.n && garbage; i++) garbage = tr.obj[i]->refs == tr.inner[i];
  if (garbage)
    for (int i = 0; i < tr.n; i++) tr.obj[i]->refs = 0;
  for (int i = 0; i < tr.n; i++) pthread_mutex_unlock(&tr.obj[i]->lock);
  if (!garbage) return;
  /* nobody else can reach them now */
  for (int i = 0; i < tr.n; i++) {
    struct uobj *x = tr.obj[i];
    each_held(x->buf, x->rd, x->wr, release_outside, &tr);
  }
  for (int i = 0; i < tr.n; i++) {
    free(tr.obj[i]->buf);
    uobj_destroy(tr.obj[i]);
  }
}

static void uobj_release(struct uobj *o) {
  pthread_mutex_lock(&o->lock);
  int left = --o->refs;
  if (left > 0 && o->holding > 0) { collect_cycle(o); return; }
  pthread_mutex_unlock(&o->lock);
  if (left > 0) return;
  each_held(o->buf, o->rd, o->wr, release_held, NULL); /* items never taken */
  free(o->buf);
  uobj_destroy(o);
}

static void shared_release(void *obj) { uobj_release(obj); }

/* ---- proxies (rules 1 and 5) ---- */

/* The object of the proxy at idx, or NULL. */
struct uobj *universal_object(lua_State *L, int idx) {
  struct proxy *p = ctx_testudata(L, idx, MT_UNIVERSAL);
  return p != NULL ? p->obj : NULL;
}

/* The object of the proxy at index 1, of that kind; raises otherwise. */
struct uobj *universal_check(lua_State *L, int kind) {
  struct proxy *p = ctx_testudata(L, 1, MT_UNIVERSAL);
  if (p == NULL || p->obj == NULL || p->obj->kind != kind) {
    errors_objecterror(L, 1, universal_kind_names[kind]);
    return NULL;
  }
  return p->obj;
}

static void *shared_retain(lua_State *L, int idx) {
  struct proxy *p = lua_touserdata(L, idx);
  pthread_mutex_lock(&p->obj->lock);
  p->obj->refs++;
  pthread_mutex_unlock(&p->obj->lock);
  return p->obj;
}

static int l_proxy_gc(lua_State *L) {
  struct proxy *p = lua_touserdata(L, 1);
  if (p->obj != NULL) { uobj_release(p->obj); p->obj = NULL; }
  return 0;
}

static int l_proxy_tostring(lua_State *L) {
  struct proxy *p = lua_touserdata(L, 1);
  lua_pushfstring(L, "%s (%p)", universal_kind_names[p->obj->kind], (void *)p->obj);
  return 1;
}

/* The key of this state's proxies by object (rule 5). */
static const char proxies_key = 0;

/* Pushes this state's proxy of obj, which takes over one reference: a new
 * proxy owns it, an existing one (rule 5) already owns one and it is
 * released. The metatable is made in this state on first use: worker
 * states get it through the codec. Out of memory, it raises before it
 * takes the reference (the proxy owns obj only once nothing can fail). */
static void push_proxy(lua_State *L, void *obj) {
  luaL_checkstack(L, 5, "Universal object");
  ctx_push_weak(L, &proxies_key, "v");
  if (lua_rawgetp(L, -1, obj) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    uobj_release(obj); /* (never the last: that proxy holds one) */
    return;
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, UNIVERSAL_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, universal_methods, 0);
    lua_getfield(L, -1, "__close");
    lua_setfield(L, -3, "__close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_proxy_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_proxy_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushlightuserdata(L, (void *)&shared_ops);
    lua_setfield(L, -2, CODEC_SHARED);
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
  struct proxy *p = lua_newuserdatauv(L, sizeof *p, 0); /* proxies, mt, p */
  p->tag.tag = ctx_tag(MT_UNIVERSAL);
  p->obj = NULL;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -4, obj);
  p->obj = obj; /* (nothing raises from here on) */
  lua_insert(L, -2);
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

static int push_proxy_protected(lua_State *L) {
  push_proxy(L, lua_touserdata(L, 1));
  return 1;
}

/* Pushes a new object of kind (its one proxy). */
int universal_new(lua_State *L, int kind, lua_Integer maxsize) {
  struct uobj *o = calloc(1, sizeof *o);
  if (o == NULL) return luaL_error(L, "%s: not enough memory", universal_kind_names[kind]);
  o->kind = kind;
  o->refs = 1;
  o->maxsize = maxsize;
  pthread_mutex_init(&o->lock, NULL);
  pthread_cond_init(&o->changed, NULL);
  list_init(&o->task_waiters);
  lua_pushcfunction(L, push_proxy_protected);
  lua_pushlightuserdata(L, o);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) { /* (out of memory: o is still ours alone) */
    uobj_release(o);
    return lua_error(L);
  }
  return 1;
}
