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
 *    it waits (thread_wait, threads.c rule 6): its kernel's close wakes it
 *    and it raises CancelledError there, as it does at any later wait. */
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <lauxlib.h>
#include "universal.h"
#include "codec.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "wait.h"
#include "errors.h"
#include "inbox.h"
#include "threads.h"

enum { U_QUEUE, U_EVENT, U_LOCK };
static const char *const kind_names[] = {"UniversalQueue", "UniversalEvent", "UniversalLock"};

struct uobj {
  int kind;
  int refs;                   /* under lock */
  pthread_mutex_t lock;
  pthread_cond_t changed;     /* threads waiting for any change */
  struct list task_waiters;   /* struct uwaiter */
  char *buf;                  /* queue: items as [u32 length][bytes], from */
  size_t rd, wr, cap;         /* rd to wr (no malloc per item) */
  lua_Integer size, maxsize, unfinished;
  int set;                    /* event */
  int held;                   /* lock */
  const void *owner;          /* lock: the holding task, or thread token */
};

/* Items are kept in one buffer: a put appends, a get takes from the front;
 * the live part moves down when the end is reached. Under o->lock. */
static int ring_push(struct uobj *o, const char *data, size_t len) {
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
  uint32_t n = (uint32_t)len;
  memcpy(o->buf + o->wr, &n, 4);
  memcpy(o->buf + o->wr + 4, data, len);
  o->wr += need;
  return 1;
}

static size_t ring_peek(const struct uobj *o) {
  uint32_t n;
  memcpy(&n, o->buf + o->rd, 4);
  return n;
}

static void ring_pop(struct uobj *o, char *into, size_t len) {
  memcpy(into, o->buf + o->rd + 4, len);
  o->rd += 4 + len;
  if (o->rd == o->wr) o->rd = o->wr = 0;
}

struct uwaiter {              /* a task's wait record (rule 3) */
  struct list node;           /* in obj->task_waiters while linked */
  struct inbox_item posted;
  struct uobj *obj;
  struct inbox *inbox;
  struct task *task;
  int linked;                 /* under obj->lock */
};

struct proxy {
  struct udata_tag tag;
  struct uobj *obj;
};

/* ---- objects and proxies ---- */

static void uobj_release(struct uobj *o) {
  pthread_mutex_lock(&o->lock);
  int last = --o->refs == 0;
  pthread_mutex_unlock(&o->lock);
  if (!last) return;
  for (size_t at = o->rd; at < o->wr;) { /* items never taken: what they hold */
    uint32_t n;
    memcpy(&n, o->buf + at, 4);
    codec_release(o->buf + at + 4, n);
    at += 4 + n;
  }
  free(o->buf);
  pthread_cond_destroy(&o->changed);
  pthread_mutex_destroy(&o->lock);
  free(o);
}

static struct uobj *check(lua_State *L, int kind) {
  struct proxy *p = ctx_testudata(L, 1, MT_UNIVERSAL);
  if (p == NULL || p->obj == NULL || p->obj->kind != kind) {
    errors_objecterror(L, 1, kind_names[kind]);
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

static void push_proxy(lua_State *L, void *obj);
static void uobj_release(struct uobj *o);
static void shared_release(void *obj) { uobj_release(obj); }
static const struct codec_shared shared_ops = { shared_retain, push_proxy, shared_release };

static int l_proxy_gc(lua_State *L) {
  struct proxy *p = lua_touserdata(L, 1);
  if (p->obj != NULL) { uobj_release(p->obj); p->obj = NULL; }
  return 0;
}

static int l_proxy_tostring(lua_State *L) {
  struct proxy *p = lua_touserdata(L, 1);
  lua_pushfstring(L, "%s (%p)", kind_names[p->obj->kind], (void *)p->obj);
  return 1;
}

static const luaL_Reg proxy_meta[];

/* The key of this state's proxies by object (rule 5). */
static const char proxies_key = 0;

/* Pushes this state's proxy of obj, which takes over one reference: a new
 * proxy owns it, an existing one (rule 5) already owns one and it is
 * released. The metatable is made in this state on first use: worker
 * states get it through the codec. */
static void push_proxy(lua_State *L, void *obj) {
  luaL_checkstack(L, 4, "Universal object");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &proxies_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &proxies_key);
  }
  if (lua_rawgetp(L, -1, obj) == LUA_TUSERDATA) {
    lua_remove(L, -2);
    uobj_release(obj); /* (never the last: that proxy holds one) */
    return;
  }
  lua_pop(L, 1);
  struct proxy *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->tag.tag = ctx_tag(MT_UNIVERSAL);
  p->obj = obj;
  if (luaL_newmetatable(L, UNIVERSAL_MT)) {
    lua_newtable(L);
    luaL_setfuncs(L, proxy_meta, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "__index");
    lua_getfield(L, -1, "__gc");
    lua_setfield(L, -3, "__gc");
    lua_getfield(L, -1, "__close");
    lua_setfield(L, -3, "__close");
    lua_getfield(L, -1, "__tostring");
    lua_setfield(L, -3, "__tostring");
    lua_pop(L, 1);
    lua_pushlightuserdata(L, (void *)&shared_ops);
    lua_setfield(L, -2, CODEC_SHARED);
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, -3, obj);
  lua_remove(L, -2);
}

static int new_object(lua_State *L, int kind, lua_Integer maxsize) {
  struct uobj *o = calloc(1, sizeof *o);
  if (o == NULL) return luaL_error(L, "%s: not enough memory", kind_names[kind]);
  o->kind = kind;
  o->refs = 1;
  o->maxsize = maxsize;
  pthread_mutex_init(&o->lock, NULL);
  pthread_cond_init(&o->changed, NULL);
  list_init(&o->task_waiters);
  push_proxy(L, o);
  return 1;
}

/* ---- waking (rule 2) and task waits (rule 3) ---- */

/* Under o->lock: wakes every waiter of o. */
static void wake_all(struct uobj *o) {
  pthread_cond_broadcast(&o->changed);
  for (struct list *n; (n = list_first(&o->task_waiters)) != NULL;) {
    struct uwaiter *w = LIST_ENTRY(n, struct uwaiter, node);
    list_remove(n);
    w->linked = 0;
    inbox_post(w->inbox, &w->posted);
  }
}

/* A woken task's record, fired in its kernel's thread. */
static void waiter_fire(struct inbox_item *n) {
  struct uwaiter *w = (struct uwaiter *)((char *)n - offsetof(struct uwaiter, posted));
  inbox_hold(w->inbox, -1);
  trap_wake(w->task, WAKE_OK);
}

/* The undo of a wait on a Universal object (universal_wait). */
static void universal_undo(struct task *t) {
  struct uwaiter *w = t->wait_obj;
  struct uobj *o = w->obj;
  pthread_mutex_lock(&o->lock);
  int removed = w->linked;
  if (removed) { list_remove(&w->node); w->linked = 0; }
  pthread_mutex_unlock(&o->lock);
  /* not linked: posted already (under o's lock, so before we took it), or
   * fired; only this thread fires, so taking it back cannot race */
  if (!removed) removed = inbox_take_back(w->inbox, &w->posted);
  if (removed) inbox_hold(w->inbox, -1);
}

static const struct wait_kind universal_wait = {"Universal object", universal_undo};

/* This Lua state's curio context, or NULL (a worker state without curio). */
static struct curio_ctx *state_ctx(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_registry_key);
  struct curio_ctx *ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ctx;
}

/* The task running on L in this Lua state's kernel, or NULL (rule 4). */
static struct task *running_task(lua_State *L) {
  struct curio_ctx *ctx = state_ctx(L);
  if (ctx == NULL) return NULL;
  struct kernel *k = ctx->running;
  return k != NULL && k->current != NULL && task_active(k->current) == L ? k->current : NULL;
}

/* Before a call that may block: from a task, rule 1 of traps (which may
 * raise) and its wait record made now, pushed on L (its frame), while no
 * lock is held; NULL from a thread (rule 4). */
static struct task *enter(lua_State *L, const char *fname, struct uwaiter **wp) {
  struct task *t = running_task(L);
  *wp = NULL;
  if (t == NULL) return NULL;
  trap_enter_in(L, state_ctx(L), fname);
  struct inbox *inbox = inbox_get(L, t->k);
  struct uwaiter *w = lua_newuserdatauv(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  w->task = t;
  w->inbox = inbox;
  w->posted.fire = waiter_fire;
  *wp = w;
  return t;
}

/* Under o->lock: links the task's wait record and unlocks; the caller
 * then suspends (rule 3). Allocates nothing. */
static void task_wait(struct uwaiter *w, struct uobj *o) {
  w->obj = o;
  w->linked = 1;
  list_insert_tail(&o->task_waiters, &w->node);
  pthread_mutex_unlock(&o->lock);
  inbox_hold(w->inbox, 1);
  w->task->wait_obj = w;
}

static int retry_k(lua_State *L, int status, lua_KContext ctx);

/* Links w (task_wait, which releases o->lock) and suspends the task; when
 * it is woken, `retry` runs again with the method's first nargs arguments
 * (a woken waiter retries: rule 2). The frame keeps w alive meanwhile. */
static int wait_then_retry(lua_State *L, struct task *t, struct uwaiter *w, struct uobj *o,
                           lua_CFunction retry, int nargs) {
  task_wait(w, o);
  lua_pushcfunction(L, retry);
  lua_pushinteger(L, nargs);
  return trap_suspend(L, t, &universal_wait, retry_k);
}

static int retry_k(lua_State *L, int status, lua_KContext ctx) {
  int base = (int)ctx;
  struct task *t = trap_resumed_in(L, state_ctx(L));
  (void)status;
  trap_result(L, t, base);
  lua_CFunction retry = lua_tocfunction(L, base - 1);
  lua_settop(L, (int)lua_tointeger(L, base));
  return retry(L);
}

/* A thread's blocking wait (rule 6): a worker thread is registered with
 * its pool for the duration, so that its kernel's close can wake it. */
struct block {
  struct worker *worker; /* NULL: not a worker thread, or not yet asked */
  int asked;
};

/* Under o->lock, in a thread: waits for a change of o and returns with the
 * lock held (the caller re-checks). The first call only registers a
 * worker thread (the lock is let go meanwhile: the caller re-checks
 * first). A worker whose kernel closed raises instead (without the lock):
 * it is told to stop, and waiting on could hang the close. */
static void thread_wait(lua_State *L, struct uobj *o, struct block *b, const char *fname) {
  if (!b->asked) {
    b->asked = 1;
    b->worker = threads_worker(L);
    if (b->worker != NULL) {
      pthread_mutex_unlock(&o->lock);
      threads_block_begin(b->worker, &o->lock, &o->changed);
      pthread_mutex_lock(&o->lock);
      return;
    }
  }
  if (b->worker != NULL && threads_stopping(b->worker)) {
    pthread_mutex_unlock(&o->lock);
    threads_block_end(b->worker);
    errors_raise(L, "CancelledError", "%s: the kernel closed while its worker thread waited here", fname);
  }
  pthread_cond_wait(&o->changed, &o->lock);
}

/* After a thread's wait, o->lock released. */
static void thread_unblock(struct block *b) {
  if (b->worker != NULL) threads_block_end(b->worker);
  b->worker = NULL;
  b->asked = 0;
}

/* ---- UniversalQueue ---- */

static int l_queue_new(lua_State *L) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, maxsize >= 0, 1, "non-negative maxsize expected");
  return new_object(L, U_QUEUE, maxsize);
}

/* q:put(item): copies item in; waits (task) or blocks (thread) while full.
 * A task makes its wait record only when it has to wait. */
static int l_queue_put(lua_State *L) {
  struct uobj *o = check(L, U_QUEUE);
  if (lua_isnoneornil(L, 2)) return errors_methoderror(L, 2, "put", "value expected");
  lua_settop(L, 2);
  codec_encode(L, 2, 1, "UniversalQueue.put: item"); /* index 3: the bytes */
  size_t len;
  const char *data = lua_tolstring(L, 3, &len);
  if (len > 0xffffffffu) return luaL_error(L, "UniversalQueue.put: item too large");
  struct task *t = running_task(L);
  struct uwaiter *w = NULL;
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (o->maxsize > 0 && o->size >= o->maxsize) {
    if (t != NULL) {
      if (w == NULL) { /* (allocating: not under the lock) */
        pthread_mutex_unlock(&o->lock);
        enter(L, "UniversalQueue.put", &w);
        pthread_mutex_lock(&o->lock);
        continue;
      }
      return wait_then_retry(L, t, w, o, l_queue_put, 2);
    }
    thread_wait(L, o, &b, "UniversalQueue.put");
  }
  int pushed = ring_push(o, data, len);
  if (pushed) {
    o->size++;
    o->unfinished++;
    wake_all(o);
  }
  pthread_mutex_unlock(&o->lock);
  thread_unblock(&b);
  if (!pushed) return luaL_error(L, "UniversalQueue.put: not enough memory");
  return 0;
}

/* q:get() -> the oldest item, waiting (task) or blocking (thread) while
 * empty. The item is copied out under the lock into a stack buffer, or a
 * Lua buffer made beforehand for a big one (no Lua allocation under it). */
static int l_queue_get(lua_State *L) {
  struct uobj *o = check(L, U_QUEUE);
  lua_settop(L, 1);
  struct task *t = running_task(L);
  struct uwaiter *w = NULL;
  struct block b = {NULL, 0};
  char small[512], *big = NULL;
  size_t big_cap = 0;
  if (t != NULL) trap_enter_in(L, state_ctx(L), "UniversalQueue.get");
  pthread_mutex_lock(&o->lock);
  for (;;) {
    if (o->size == 0) {
      if (t == NULL) { thread_wait(L, o, &b, "UniversalQueue.get"); continue; }
      if (w == NULL) {
        pthread_mutex_unlock(&o->lock);
        enter(L, "UniversalQueue.get", &w);
        pthread_mutex_lock(&o->lock);
        continue;
      }
      return wait_then_retry(L, t, w, o, l_queue_get, 1);
    }
    size_t len = ring_peek(o);
    /* (the buffer's address is taken, not its contents read) */
    // cppcheck-suppress legacyUninitvar
    char *into = len <= sizeof small ? small : (len <= big_cap ? big : NULL);
    if (into == NULL) {
      pthread_mutex_unlock(&o->lock);
      thread_unblock(&b); /* (the allocation may raise) */
      big = lua_newuserdatauv(L, len, 0);
      big_cap = len;
      pthread_mutex_lock(&o->lock);
      continue;
    }
    ring_pop(o, into, len);
    o->size--;
    wake_all(o); /* (room for putters) */
    pthread_mutex_unlock(&o->lock);
    thread_unblock(&b);
    return codec_decode(L, into, len, CODEC_FUNCTIONS);
  }
}

static int l_queue_join(lua_State *L) {
  struct uobj *o = check(L, U_QUEUE);
  lua_settop(L, 1);
  struct uwaiter *w;
  struct task *t = enter(L, "UniversalQueue.join", &w);
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (o->unfinished > 0) {
    if (t != NULL) {
      return wait_then_retry(L, t, w, o, l_queue_join, 1);
    }
    thread_wait(L, o, &b, "UniversalQueue.join");
  }
  pthread_mutex_unlock(&o->lock);
  thread_unblock(&b);
  return 0;
}

static int l_queue_task_done(lua_State *L) {
  struct uobj *o = check(L, U_QUEUE);
  pthread_mutex_lock(&o->lock);
  int bad = o->unfinished <= 0;
  if (!bad && --o->unfinished == 0) wake_all(o);
  pthread_mutex_unlock(&o->lock);
  if (bad) return errors_raise(L, "CurioError", "UniversalQueue.task_done: called more times than there were items");
  return 0;
}

static int queue_count(lua_State *L, int what) {
  struct uobj *o = check(L, U_QUEUE);
  pthread_mutex_lock(&o->lock);
  lua_Integer size = o->size, maxsize = o->maxsize;
  pthread_mutex_unlock(&o->lock);
  if (what == 0) lua_pushinteger(L, size);
  else if (what == 1) lua_pushboolean(L, size == 0);
  else lua_pushboolean(L, maxsize > 0 && size >= maxsize);
  return 1;
}
static int l_queue_qsize(lua_State *L) { return queue_count(L, 0); }
static int l_queue_empty(lua_State *L) { return queue_count(L, 1); }
static int l_queue_full(lua_State *L) { return queue_count(L, 2); }

/* ---- UniversalEvent ---- */

static int l_event_new(lua_State *L) { return new_object(L, U_EVENT, 0); }

static int l_event_set(lua_State *L) {
  struct uobj *o = check(L, U_EVENT);
  pthread_mutex_lock(&o->lock);
  o->set = 1;
  wake_all(o);
  pthread_mutex_unlock(&o->lock);
  return 0;
}

static int l_event_clear(lua_State *L) {
  struct uobj *o = check(L, U_EVENT);
  pthread_mutex_lock(&o->lock);
  o->set = 0;
  pthread_mutex_unlock(&o->lock);
  return 0;
}

static int l_event_is_set(lua_State *L) {
  struct uobj *o = check(L, U_EVENT);
  pthread_mutex_lock(&o->lock);
  lua_pushboolean(L, o->set);
  pthread_mutex_unlock(&o->lock);
  return 1;
}

static int l_event_wait(lua_State *L) {
  struct uobj *o = check(L, U_EVENT);
  lua_settop(L, 1);
  struct uwaiter *w;
  struct task *t = enter(L, "UniversalEvent.wait", &w);
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (!o->set) {
    if (t != NULL) {
      return wait_then_retry(L, t, w, o, l_event_wait, 1);
    }
    thread_wait(L, o, &b, "UniversalEvent.wait");
  }
  pthread_mutex_unlock(&o->lock);
  thread_unblock(&b);
  return 0;
}

/* ---- UniversalLock ---- */

static int l_lock_new(lua_State *L) { return new_object(L, U_LOCK, 0); }

/* Who holds a lock: the task, or the thread (its pthread_self, an address
 * on Linux, which no task record can share). */
static const void *holder(struct task *t) {
  if (t != NULL) return t;
  return (const void *)(uintptr_t)pthread_self();
}

/* lock:acquire() -> the lock (a <close> guard), waiting or blocking. */
static int l_lock_acquire(lua_State *L) {
  struct uobj *o = check(L, U_LOCK);
  lua_settop(L, 1);
  struct uwaiter *w;
  struct task *t = enter(L, "UniversalLock.acquire", &w);
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (o->held) {
    if (t != NULL) {
      return wait_then_retry(L, t, w, o, l_lock_acquire, 1);
    }
    thread_wait(L, o, &b, "UniversalLock.acquire");
  }
  o->held = 1;
  o->owner = holder(t);
  pthread_mutex_unlock(&o->lock);
  thread_unblock(&b);
  lua_settop(L, 1);
  return 1;
}

static int lock_release(lua_State *L, int check_owner) {
  struct uobj *o = check(L, U_LOCK);
  struct task *t = running_task(L);
  pthread_mutex_lock(&o->lock);
  int err = !o->held ? 1 : (check_owner && o->owner != holder(t)) ? 2 : 0;
  if (err == 0) {
    o->held = 0;
    o->owner = NULL;
    wake_all(o);
  }
  pthread_mutex_unlock(&o->lock);
  if (err == 1) return errors_raise(L, "CurioError", "UniversalLock.release: lock not acquired");
  if (err == 2) return errors_raise(L, "CurioError", "UniversalLock.release: lock held by another task or thread");
  return 0;
}

static int l_lock_release(lua_State *L) { return lock_release(L, 1); }

/* __close of the guard: the guard lives in its holder's frame (as Lock's). */
static int l_proxy_close(lua_State *L) {
  struct proxy *p = lua_touserdata(L, 1);
  if (p->obj != NULL && p->obj->kind == U_LOCK) return lock_release(L, 0);
  return 0;
}

/* lock:with(fn, ...) -> fn's results, holding the lock, released however
 * fn ends; in a task (acquire may suspend it, fn may yield: continuations)
 * and in a thread alike. */
static int with_done_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  lock_release(L, 1);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - 1;
}

static int with_acquired_k(lua_State *L, int status, lua_KContext nargs) {
  (void)status;
  status = lua_pcallk(L, (int)nargs, LUA_MULTRET, 0, 0, with_done_k);
  return with_done_k(L, status, 0);
}

static int l_lock_with(lua_State *L) {
  check(L, U_LOCK);
  if (lua_type(L, 2) != LUA_TFUNCTION) errors_methodtypeerror(L, 2, "with", "function");
  int nargs = lua_gettop(L) - 2;
  lua_pushcfunction(L, l_lock_acquire);
  lua_pushvalue(L, 1);
  lua_callk(L, 1, 0, nargs, with_acquired_k);
  return with_acquired_k(L, LUA_OK, nargs);
}

static int l_lock_locked(lua_State *L) {
  struct uobj *o = check(L, U_LOCK);
  pthread_mutex_lock(&o->lock);
  lua_pushboolean(L, o->held);
  pthread_mutex_unlock(&o->lock);
  return 1;
}

static const luaL_Reg proxy_meta[] = {
  {"put", l_queue_put}, {"get", l_queue_get}, {"join", l_queue_join},
  {"task_done", l_queue_task_done}, {"qsize", l_queue_qsize}, {"empty", l_queue_empty},
  {"full", l_queue_full},
  {"set", l_event_set}, {"clear", l_event_clear}, {"is_set", l_event_is_set},
  {"wait", l_event_wait},
  {"acquire", l_lock_acquire}, {"release", l_lock_release}, {"locked", l_lock_locked},
  {"with", l_lock_with},
  {"__gc", l_proxy_gc}, {"__close", l_proxy_close}, {"__tostring", l_proxy_tostring},
  {NULL, NULL}
};

const luaL_Reg universal_functions[] = {
  {"UniversalQueue", l_queue_new},
  {"UniversalEvent", l_event_new},
  {"UniversalLock", l_lock_new},
  {NULL, NULL}
};
