/* core/universal_methods.c: the methods of UniversalQueue, UniversalEvent
 * and UniversalLock (universal.c's rules), the same in tasks and threads. */
#include <pthread.h>
#include <stdint.h>
#include <lauxlib.h>
#include "universal.h"
#include "codec.h"
#include "trap.h"
#include "errors.h"

/* ---- UniversalQueue ---- */

static int l_queue_new(lua_State *L) {
  lua_Integer maxsize = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, maxsize >= 0, 1, "non-negative maxsize expected");
  return universal_new(L, U_QUEUE, maxsize);
}

/* The references to shared objects that an encoded item holds (codec.h)
 * are owned by its bytes' holder: the queue once they are pushed, until
 * then this guard, a to-be-closed slot of put's frame, which releases them
 * however put leaves without pushing: an error, a cancellation, the retry
 * that encodes the item anew, a task's coroutine abandoned with its
 * kernel (__gc). It is made only when put has to wait (nothing else
 * raises between encoding and pushing), and only for an item that holds
 * shared objects: the common put allocates nothing more. */
#define ITEM_GUARD_MT "curio.UniversalItem"
struct item_guard {
  const char *data;           /* the bytes: a string, the guard's user value */
  size_t len;
  int armed;
};

static int l_item_guard_release(lua_State *L) {
  struct item_guard *g = lua_touserdata(L, 1);
  if (g->armed) { g->armed = 0; codec_release(g->data, g->len); }
  return 0;
}

/* Protected (a memory error must not leak the references): the bytes at
 * index 1 -> their guard, armed. */
static int new_item_guard(lua_State *L) {
  struct item_guard *g = lua_newuserdatauv(L, sizeof *g, 1);
  g->armed = 0;
  if (luaL_newmetatable(L, ITEM_GUARD_MT)) {
    lua_pushcfunction(L, l_item_guard_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_item_guard_release);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  g->data = lua_tolstring(L, 1, &g->len);
  g->armed = 1;
  return 1;
}

/* Pushes the guard of the encoded item data (index 4 of put), a
 * to-be-closed slot; a failure to make it releases the item and raises. */
static struct item_guard *push_item_guard(lua_State *L, const char *data, size_t len) {
  lua_pushcfunction(L, new_item_guard);
  lua_pushvalue(L, 3);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    codec_release(data, len);
    lua_error(L);
  }
  lua_toclose(L, -1);
  return lua_touserdata(L, -1);
}

/* q:put(item): copies item in; waits (task) or blocks (thread) while full.
 * A task makes its wait record only when it has to wait. */
static int l_queue_put(lua_State *L) {
  struct uobj *o = universal_check(L, U_QUEUE);
  if (lua_isnoneornil(L, 2)) return errors_methoderror(L, 2, "put", "value expected");
  lua_settop(L, 2);
  int holds = codec_encode(L, 2, 1, "UniversalQueue.put: item", 0) > 0; /* index 3: the bytes */
  size_t len;
  const char *data = lua_tolstring(L, 3, &len);
  if (len > UNIVERSAL_ITEM_MAX) {
    codec_release(data, len);
    return luaL_error(L, "UniversalQueue.put: item too large");
  }
  struct item_guard *guard = NULL;
  struct task *t = universal_running_task(L);
  struct uwaiter *w = NULL;
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (o->maxsize > 0 && o->size >= o->maxsize) {
    if (holds && guard == NULL) { /* before anything that may raise: a wait */
      pthread_mutex_unlock(&o->lock);
      guard = push_item_guard(L, data, len);
      pthread_mutex_lock(&o->lock);
      continue;
    }
    if (t != NULL) {
      if (w == NULL) { /* (allocating: not under the lock) */
        pthread_mutex_unlock(&o->lock);
        universal_enter(L, "UniversalQueue.put", &w);
        pthread_mutex_lock(&o->lock);
        continue;
      }
      return universal_wait_then_retry(L, t, w, o, l_queue_put, 2);
    }
    universal_thread_wait(L, o, &b, "UniversalQueue.put");
  }
  int pushed = universal_ring_push(o, data, len, holds);
  if (pushed) {
    o->size++;
    o->unfinished++;
    if (guard != NULL) guard->armed = 0; /* the queue's now */
    universal_wake_all(o);
  }
  pthread_mutex_unlock(&o->lock);
  universal_thread_unblock(&b);
  if (!pushed) {
    if (guard == NULL) codec_release(data, len); /* (else the guard does) */
    return luaL_error(L, "UniversalQueue.put: not enough memory");
  }
  return 0;
}

/* q:get() -> the oldest item, waiting (task) or blocking (thread) while
 * empty. The item is copied out under the lock into a stack buffer, or a
 * Lua buffer made beforehand for a big one (no Lua allocation under it). */
static int l_queue_get(lua_State *L) {
  struct uobj *o = universal_check(L, U_QUEUE);
  lua_settop(L, 1);
  struct task *t = universal_running_task(L);
  struct uwaiter *w = NULL;
  struct block b = {NULL, 0};
  char small[512], *big = NULL;
  size_t big_cap = 0;
  if (t != NULL) trap_enter_in(L, universal_ctx(L), "UniversalQueue.get");
  pthread_mutex_lock(&o->lock);
  for (;;) {
    if (o->size == 0) {
      if (t == NULL) { universal_thread_wait(L, o, &b, "UniversalQueue.get"); continue; }
      if (w == NULL) {
        pthread_mutex_unlock(&o->lock);
        universal_enter(L, "UniversalQueue.get", &w);
        pthread_mutex_lock(&o->lock);
        continue;
      }
      return universal_wait_then_retry(L, t, w, o, l_queue_get, 1);
    }
    size_t len = universal_ring_peek(o);
    /* (the buffer's address is taken, not its contents read) */
    // cppcheck-suppress legacyUninitvar
    char *into = len <= sizeof small ? small : (len <= big_cap ? big : NULL);
    if (into == NULL) {
      pthread_mutex_unlock(&o->lock);
      universal_thread_unblock(&b); /* (the allocation may raise) */
      big = lua_newuserdatauv(L, len, 0);
      big_cap = len;
      pthread_mutex_lock(&o->lock);
      continue;
    }
    universal_ring_pop(o, into, len);
    o->size--;
    universal_wake_all(o); /* (room for putters) */
    pthread_mutex_unlock(&o->lock);
    universal_thread_unblock(&b);
    return codec_decode(L, into, len, CODEC_FUNCTIONS);
  }
}

static int l_queue_join(lua_State *L) {
  struct uobj *o = universal_check(L, U_QUEUE);
  lua_settop(L, 1);
  struct uwaiter *w;
  struct task *t = universal_enter(L, "UniversalQueue.join", &w);
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (o->unfinished > 0) {
    if (t != NULL) {
      return universal_wait_then_retry(L, t, w, o, l_queue_join, 1);
    }
    universal_thread_wait(L, o, &b, "UniversalQueue.join");
  }
  pthread_mutex_unlock(&o->lock);
  universal_thread_unblock(&b);
  return 0;
}

static int l_queue_task_done(lua_State *L) {
  struct uobj *o = universal_check(L, U_QUEUE);
  pthread_mutex_lock(&o->lock);
  int bad = o->unfinished <= 0;
  if (!bad && --o->unfinished == 0) universal_wake_all(o);
  pthread_mutex_unlock(&o->lock);
  if (bad) return errors_raise(L, "CurioError", "UniversalQueue.task_done: called more times than there were items");
  return 0;
}

static int queue_count(lua_State *L, int what) {
  struct uobj *o = universal_check(L, U_QUEUE);
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

static int l_event_new(lua_State *L) { return universal_new(L, U_EVENT, 0); }

static int l_event_set(lua_State *L) {
  struct uobj *o = universal_check(L, U_EVENT);
  pthread_mutex_lock(&o->lock);
  o->set = 1;
  universal_wake_all(o);
  pthread_mutex_unlock(&o->lock);
  return 0;
}

static int l_event_clear(lua_State *L) {
  struct uobj *o = universal_check(L, U_EVENT);
  pthread_mutex_lock(&o->lock);
  o->set = 0;
  pthread_mutex_unlock(&o->lock);
  return 0;
}

static int l_event_is_set(lua_State *L) {
  struct uobj *o = universal_check(L, U_EVENT);
  pthread_mutex_lock(&o->lock);
  lua_pushboolean(L, o->set);
  pthread_mutex_unlock(&o->lock);
  return 1;
}

static int l_event_wait(lua_State *L) {
  struct uobj *o = universal_check(L, U_EVENT);
  lua_settop(L, 1);
  struct uwaiter *w;
  struct task *t = universal_enter(L, "UniversalEvent.wait", &w);
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (!o->set) {
    if (t != NULL) {
      return universal_wait_then_retry(L, t, w, o, l_event_wait, 1);
    }
    universal_thread_wait(L, o, &b, "UniversalEvent.wait");
  }
  pthread_mutex_unlock(&o->lock);
  universal_thread_unblock(&b);
  return 0;
}

/* ---- UniversalLock ---- */

static int l_lock_new(lua_State *L) { return universal_new(L, U_LOCK, 0); }

/* Who holds a lock: the task, or the thread (its pthread_self, an address
 * on Linux, which no task record can share). */
static const void *holder(struct task *t) {
  if (t != NULL) return t;
  return (const void *)(uintptr_t)pthread_self();
}

/* lock:acquire() -> the lock (a <close> guard), waiting or blocking. */
static int l_lock_acquire(lua_State *L) {
  struct uobj *o = universal_check(L, U_LOCK);
  lua_settop(L, 1);
  struct uwaiter *w;
  struct task *t = universal_enter(L, "UniversalLock.acquire", &w);
  struct block b = {NULL, 0};
  pthread_mutex_lock(&o->lock);
  while (o->held) {
    if (t != NULL) {
      return universal_wait_then_retry(L, t, w, o, l_lock_acquire, 1);
    }
    universal_thread_wait(L, o, &b, "UniversalLock.acquire");
  }
  o->held = 1;
  o->owner = holder(t);
  pthread_mutex_unlock(&o->lock);
  universal_thread_unblock(&b);
  lua_settop(L, 1);
  return 1;
}

static int lock_release(lua_State *L, int check_owner) {
  struct uobj *o = universal_check(L, U_LOCK);
  struct task *t = universal_running_task(L);
  pthread_mutex_lock(&o->lock);
  int err = !o->held ? 1 : (check_owner && o->owner != holder(t)) ? 2 : 0;
  if (err == 0) {
    o->held = 0;
    o->owner = NULL;
    universal_wake_all(o);
  }
  pthread_mutex_unlock(&o->lock);
  if (err == 1) return errors_raise(L, "CurioError", "UniversalLock.release: lock not acquired");
  if (err == 2) return errors_raise(L, "CurioError", "UniversalLock.release: lock held by another task or thread");
  return 0;
}

static int l_lock_release(lua_State *L) { return lock_release(L, 1); }

/* __close of the guard: the guard lives in its holder's frame (as Lock's). */
static int l_lock_close(lua_State *L) {
  struct uobj *o = universal_object(L, 1);
  if (o != NULL && o->kind == U_LOCK) return lock_release(L, 0);
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
  universal_check(L, U_LOCK);
  if (lua_type(L, 2) != LUA_TFUNCTION) errors_methodtypeerror(L, 2, "with", "function");
  /* (refused here, where Lua cannot yield, under this method's own name:
   * the acquire below would name itself) */
  if (universal_running_task(L) != NULL) trap_enter_in(L, universal_ctx(L), "UniversalLock.with");
  int nargs = lua_gettop(L) - 2;
  lua_pushcfunction(L, l_lock_acquire);
  lua_pushvalue(L, 1);
  lua_callk(L, 1, 0, nargs, with_acquired_k);
  return with_acquired_k(L, LUA_OK, nargs);
}

static int l_lock_locked(lua_State *L) {
  struct uobj *o = universal_check(L, U_LOCK);
  pthread_mutex_lock(&o->lock);
  lua_pushboolean(L, o->held);
  pthread_mutex_unlock(&o->lock);
  return 1;
}

const luaL_Reg universal_methods[] = {
  {"put", l_queue_put}, {"get", l_queue_get}, {"join", l_queue_join},
  {"task_done", l_queue_task_done}, {"qsize", l_queue_qsize}, {"empty", l_queue_empty},
  {"full", l_queue_full},
  {"set", l_event_set}, {"clear", l_event_clear}, {"is_set", l_event_is_set},
  {"wait", l_event_wait},
  {"acquire", l_lock_acquire}, {"release", l_lock_release}, {"locked", l_lock_locked},
  {"with", l_lock_with},
  {"__close", l_lock_close},
  {NULL, NULL}
};

const luaL_Reg universal_functions[] = {
  {"UniversalQueue", l_queue_new},
  {"UniversalEvent", l_event_new},
  {"UniversalLock", l_lock_new},
  {NULL, NULL}
};
