/* core/universal_wait.c: how tasks and threads wait on a Universal object
 * (universal.c rules 2, 3, 4 and 6): a task suspends with a wait record
 * that the object's change posts to its kernel's inbox; a thread blocks on
 * the object's condition variable, registered with its pool when it is a
 * worker thread. */
#include <pthread.h>
#include <string.h>
#include <lauxlib.h>
#include "universal.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "wait.h"
#include "errors.h"
#include "inbox.h"
#include "threads.h"

struct uwaiter {              /* a task's wait record (rule 3) */
  struct list node;           /* in obj->task_waiters while linked */
  struct inbox_item posted;
  struct uobj *obj;
  struct inbox *inbox;
  struct task *task;
  int linked;                 /* under obj->lock */
};

/* ---- waking (rule 2) and task waits (rule 3) ---- */

/* Under o->lock: wakes every waiter of o. */
void universal_wake_all(struct uobj *o) {
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
struct curio_ctx *universal_ctx(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_registry_key);
  struct curio_ctx *ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return ctx;
}

/* The task running on L in this Lua state's kernel, or NULL (rule 4). */
struct task *universal_running_task(lua_State *L) {
  struct curio_ctx *ctx = universal_ctx(L);
  if (ctx == NULL) return NULL;
  struct kernel *k = ctx->running;
  return k != NULL && k->current != NULL && task_active(k->current) == L ? k->current : NULL;
}

/* Before a call that may block: from a task, rule 1 of traps (which may
 * raise) and its wait record made now, pushed on L (its frame), while no
 * lock is held; NULL from a thread (rule 4). */
struct task *universal_enter(lua_State *L, const char *fname, struct uwaiter **wp) {
  struct task *t = universal_running_task(L);
  *wp = NULL;
  if (t == NULL) return NULL;
  trap_enter_in(L, universal_ctx(L), fname);
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
int universal_wait_then_retry(lua_State *L, struct task *t, struct uwaiter *w, struct uobj *o,
                              lua_CFunction retry, int nargs) {
  task_wait(w, o);
  lua_pushcfunction(L, retry);
  lua_pushinteger(L, nargs);
  return trap_suspend(L, t, &universal_wait, retry_k);
}

static int retry_k(lua_State *L, int status, lua_KContext ctx) {
  int base = (int)ctx;
  struct task *t = trap_resumed_in(L, universal_ctx(L));
  (void)status;
  trap_result(L, t, base);
  lua_CFunction retry = lua_tocfunction(L, base - 1);
  lua_settop(L, (int)lua_tointeger(L, base));
  return retry(L);
}

/* ---- threads (rule 6) ---- */

/* Under o->lock, in a thread: waits for a change of o and returns with the
 * lock held (the caller re-checks). Never in the thread of a kernel that
 * runs in this Lua state (rule 8): that raises, without the lock. The first call only registers a
 * worker thread (the lock is let go meanwhile: the caller re-checks
 * first). A worker whose kernel closed raises instead (without the lock):
 * it is told to stop, and waiting on could hang the close. */
void universal_thread_wait(lua_State *L, struct uobj *o, struct block *b, const char *fname) {
  if (!b->asked) {
    struct curio_ctx *ctx = universal_ctx(L);
    if (ctx != NULL && ctx->running != NULL) { /* rule 8 */
      pthread_mutex_unlock(&o->lock);
      if (ctx->running->current != NULL) trap_enter_quiet(L, ctx, fname); /* (raises) */
      errors_raise(L, "CurioError", "%s: cannot block here (it would stop the kernel that runs "
                   "in this thread)", fname);
    }
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
void universal_thread_unblock(struct block *b) {
  if (b->worker != NULL) threads_block_end(b->worker);
  b->worker = NULL;
  b->asked = 0;
}
