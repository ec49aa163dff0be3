/* core/signal.c: signals as objects tasks wait on (curio.SignalQueue and
 * curio.SignalEvent; their policy, names and checks, is lua/curio/signal.lua),
 * on libev's signal watchers.
 *
 * Rules:
 * 1. libev lets one loop at a time watch a given signal (and breaks
 *    otherwise), and a Lua state cannot see another's: signals are watched
 *    only from the process's main thread, and within a Lua state a signal
 *    belongs to one kernel at a time (several objects of that kernel may
 *    watch it). Another kernel asking for it gets a CurioError, as does
 *    SIGINT while another kernel watches it for k:run (shutdown.c).
 * 2. A signal that arrives while no task waits is kept: a count per signal
 *    and the stamp of its oldest arrival kept (bounded memory); get() takes
 *    the one pending longest. One that arrives while a task waits in get()
 *    is handed to the first such task.
 * 3. The first object of a state to watch a signal saves its handling
 *    (sigaction); the last one to stop restores it. The kernel's own SIGINT
 *    watcher (shutdown.c) is stopped meanwhile and started again after, if
 *    its k:run still goes on.
 * 4. The watchers never keep the loop alive by themselves (a kernel with
 *    nothing else to do ends, as with SIGINT's); a task waiting in get() or
 *    wait() does (one ref while any waits), so it is no deadlock; except
 *    on a fallback object (rule 5), which must not hide a deadlock.
 * 5. A fallback object (the `curio` program's SIGTERM) ignores its signal
 *    while a non-fallback object of the state watches it.
 * 6. close() (and __gc, and the kernel's close through a kernel hook)
 *    stops watching; tasks still waiting are woken and raise CurioError
 *    (at the kernel's close they were cancelled first). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <lauxlib.h>
#include "signals.h"
#include "kernel.h"
#include "shutdown.h"
#include "task.h"
#include "trap.h"
#include "wait.h"
#include "waitq.h"
#include "errors.h"

#define SIGNALS_MT "curio.signals"
#define SIGNAL_MAX 65 /* signal numbers 1..64 (Linux's NSIG is 65) */

/* Rules 1, 3 and 5: per Lua state (a context slot). */
struct signal_state {
  struct kernel *owner[SIGNAL_MAX];
  int users[SIGNAL_MAX];      /* objects watching each signal */
  int strong[SIGNAL_MAX];     /* of them, the non-fallback ones */
  struct sigaction saved[SIGNAL_MAX];
  struct kernel *sigint_from; /* the kernel whose SIGINT watcher we stopped */
};
static const char state_key = 0;

/* A kernel's objects (a kernel hook), stopped when it closes. */
struct signal_hook {
  struct kernel_hook hook; /* first: the kernel finds us by it */
  struct list objects;
};

struct signal_slot {
  ev_signal w;          /* w.data: the object */
  lua_Integer count;    /* arrivals not yet taken (rule 2) */
  unsigned long first;  /* stamp of the oldest one kept */
  unsigned long last;   /* stamp of the newest one */
};

struct signal_obj {
  struct kernel *k;     /* NULL once closed */
  struct curio_ctx *ctx;
  struct list node;     /* in the kernel's hook */
  struct waitq getters, waiters;
  int nwaiting, fallback, n;
  unsigned long stamp;
  struct signal_slot s[];
};

static struct signal_state *state_of(lua_State *L, struct curio_ctx *ctx) {
  struct signal_state *st = ctx_slot_find(ctx, &state_key);
  if (st == NULL) {
    st = ctx_slot_make(L, ctx, &state_key, sizeof *st, NULL);
    memset(st, 0, sizeof *st);
  }
  return st;
}

/* Rule 4: the loop is held while a task waits. */
static void obj_wait(struct signal_obj *o) {
  if (o->nwaiting++ == 0 && !o->fallback) ev_ref(o->k->loop);
}
static void obj_unwait(struct signal_obj *o) {
  if (--o->nwaiting == 0 && o->k != NULL && !o->fallback) ev_unref(o->k->loop);
}

static void getter_undo(struct task *t) {
  struct waitq *q = t->wait_obj;
  waitq_unlink(t);
  obj_unwait((struct signal_obj *)((char *)q - offsetof(struct signal_obj, getters)));
}
static void waiter_undo(struct task *t) {
  struct waitq *q = t->wait_obj;
  waitq_unlink(t);
  obj_unwait((struct signal_obj *)((char *)q - offsetof(struct signal_obj, waiters)));
}
static const struct wait_kind getter_wait = {"SignalQueue.get", getter_undo};
static const struct wait_kind waiter_wait = {"SignalEvent.wait", waiter_undo};

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents) {
  struct signal_obj *o = w->data;
  struct signal_slot *s = (struct signal_slot *)w;
  struct signal_state *st = ctx_slot_find(o->ctx, &state_key);
  struct task *t;
  (void)loop, (void)revents;
  if (o->fallback && st != NULL && st->strong[w->signum] > 0) return; /* rule 5 */
  o->stamp++;
  while ((t = waitq_pop(&o->waiters)) != NULL) {
    obj_unwait(o);
    trap_wake(t, WAKE_OK);
  }
  if ((t = waitq_pop(&o->getters)) != NULL) { /* rule 2: handed over */
    lua_State *L = o->k->L;
    obj_unwait(o);
    if (L != NULL && lua_checkstack(L, 1)) {
      lua_pushinteger(L, w->signum);
      trap_hand_over(L, t, lua_gettop(L));
      lua_pop(L, 1);
      return;
    }
    trap_wake(t, WAKE_OK); /* (no Lua thread drives the loop: kept, get_k takes it) */
  }
  if (s->count++ == 0) s->first = o->stamp;
  s->last = o->stamp;
}

/* Rules 3 and 6: stops o's watchers and restores what they replaced. */
static void obj_stop(struct signal_obj *o) {
  struct kernel *k = o->k;
  struct signal_state *st = ctx_slot_find(o->ctx, &state_key);
  if (k == NULL) return;
  for (int i = 0; i < o->n; i++) {
    int sig = o->s[i].w.signum;
    ev_ref(k->loop);
    ev_signal_stop(k->loop, &o->s[i].w);
    if (!o->fallback) st->strong[sig]--;
    if (--st->users[sig] > 0) continue;
    st->owner[sig] = NULL;
    sigaction(sig, &st->saved[sig], NULL);
    if (sig == SIGINT && st->sigint_from != NULL) {
      struct kernel *from = st->sigint_from;
      st->sigint_from = NULL;
      o->ctx->sigint_owner = NULL;
      if (from == k && k->driving && !k->shutting_down) shutdown_sigint_start(k);
    } else if (sig == SIGINT) {
      o->ctx->sigint_owner = NULL;
    }
  }
  list_remove(&o->node);
  o->k = NULL;
}

/* Rule 6: close wakes the tasks still waiting (they raise). */
static void obj_close(struct signal_obj *o) {
  struct task *t;
  if (o->k == NULL) return;
  while ((t = waitq_pop(&o->getters)) != NULL || (t = waitq_pop(&o->waiters)) != NULL) {
    obj_unwait(o);
    trap_wake(t, WAKE_OK);
  }
  obj_stop(o);
}

static void hook_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct signal_hook *h = (struct signal_hook *)hook;
  (void)L, (void)k;
  while (!list_empty(&h->objects)) {
    struct signal_obj *o = LIST_ENTRY(h->objects.next, struct signal_obj, node);
    waitq_detach_all(&o->getters);
    waitq_detach_all(&o->waiters);
    o->nwaiting = 0;
    obj_stop(o);
  }
  free(h);
}

static struct signal_hook *hook_of(lua_State *L, struct kernel *k) {
  struct signal_hook *h = (struct signal_hook *)kernel_find_hook(k, hook_close);
  if (h != NULL) return h;
  h = malloc(sizeof *h);
  if (h == NULL) luaL_error(L, "not enough memory");
  h->hook.close = hook_close;
  list_init(&h->objects);
  kernel_add_hook(k, &h->hook);
  return h;
}

static int in_main_thread(void) {
#ifdef SYS_gettid
  return (pid_t)syscall(SYS_gettid) == getpid();
#else
  return 1;
#endif
}

/* core.signal_watch(fname, fallback, sig, ...) -> handle: the running
 * kernel watches the signals (numbers checked by signal.lua). */
static int l_signal_watch(lua_State *L) {
  struct curio_ctx *ctx = ctx_get(L);
  const char *fname = luaL_checkstring(L, 1);
  int fallback = lua_toboolean(L, 2), n = lua_gettop(L) - 2;
  struct kernel *k = ctx->running;
  if (n < 1) return errors_argerror(L, 3, "signal_watch", "signal number expected");
  if (k == NULL) return errors_raise(L, "CurioError", "%s: must be called inside a curio task", fname);
  if (!in_main_thread())
    return errors_raise(L, "CurioError", "%s: signals can be watched only in the process's main thread", fname);
  struct signal_state *st = state_of(L, ctx);
  for (int i = 0; i < n; i++) {
    lua_Integer sig = luaL_checkinteger(L, 3 + i);
    if (sig < 1 || sig >= SIGNAL_MAX) return errors_argerror(L, i + 1, fname, "bad signal number");
    if (st->owner[sig] != NULL && st->owner[sig] != k)
      return errors_raise(L, "CurioError", "%s: signal %d is watched by another kernel", fname, (int)sig);
    if (sig == SIGINT && ctx->sigint_owner != NULL && ctx->sigint_owner != k)
      return errors_raise(L, "CurioError", "%s: SIGINT is watched by another kernel", fname);
  }
  struct signal_hook *h = hook_of(L, k);
  struct signal_obj *o = lua_newuserdatauv(L, sizeof *o + (size_t)n * sizeof o->s[0], 0);
  memset(o, 0, sizeof *o + (size_t)n * sizeof o->s[0]);
  o->ctx = ctx;
  o->fallback = fallback;
  waitq_init(&o->getters);
  waitq_init(&o->waiters);
  list_init(&o->node);
  luaL_setmetatable(L, SIGNALS_MT);
  o->k = k;
  list_insert_tail(&h->objects, &o->node);
  for (int i = 0; i < n; i++) {
    int sig = (int)lua_tointeger(L, 3 + i), dup = 0;
    for (int j = 0; j < o->n; j++) dup |= o->s[j].w.signum == sig;
    if (dup) continue;
    if (st->users[sig]++ == 0) {
      if (sig == SIGINT && ctx->sigint_owner == k) { /* rule 3: k:run's own watcher steps aside */
        shutdown_sigint_stop(k);
        st->sigint_from = k;
      }
      if (sig == SIGINT) ctx->sigint_owner = k;
      sigaction(sig, NULL, &st->saved[sig]);
      st->owner[sig] = k;
    }
    if (!fallback) st->strong[sig]++;
    struct signal_slot *s = &o->s[o->n++];
    ev_signal_init(&s->w, signal_cb, sig);
    s->w.data = o;
    ev_signal_start(k->loop, &s->w);
    ev_unref(k->loop);
  }
  return 1;
}

static struct signal_obj *check_open(lua_State *L, const char *fname) {
  struct signal_obj *o = luaL_checkudata(L, 1, SIGNALS_MT);
  if (o->k == NULL) errors_raise(L, "CurioError", "%s: closed", fname);
  return o;
}

/* Rule 2: the signal kept longest, or 0. */
static int take(struct signal_obj *o) {
  struct signal_slot *best = NULL;
  for (int i = 0; i < o->n; i++)
    if (o->s[i].count > 0 && (best == NULL || o->s[i].first < best->first)) best = &o->s[i];
  if (best == NULL) return 0;
  if (--best->count > 0) best->first = best->last;
  return best->w.signum;
}

static int get_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  struct signal_obj *o = lua_touserdata(L, 1);
  (void)status;
  if (trap_result(L, t, (int)ctx) > 0) return 1;
  if (o->k == NULL) return errors_raise(L, "CurioError", "SignalQueue.get: closed while waiting");
  int sig = take(o);
  if (sig != 0) { lua_pushinteger(L, sig); return 1; }
  waitq_append(&o->getters, t);
  obj_wait(o);
  return trap_suspend(L, t, &getter_wait, get_k);
}

/* h:get() -> the next signal's number (waits while none is kept). */
static int l_get(lua_State *L) {
  struct signal_obj *o = check_open(L, "SignalQueue.get");
  lua_settop(L, 1);
  int sig = take(o);
  if (sig != 0) {
    trap_current_in(L, o->ctx, "SignalQueue.get");
    lua_pushinteger(L, sig);
    return 1;
  }
  struct task *t = trap_enter(L, "SignalQueue.get");
  waitq_append(&o->getters, t);
  obj_wait(o);
  return trap_suspend(L, t, &getter_wait, get_k);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  struct signal_obj *o = lua_touserdata(L, 1);
  (void)status;
  trap_result(L, t, (int)ctx);
  if (o->k == NULL) return errors_raise(L, "CurioError", "SignalEvent.wait: closed while waiting");
  return 0;
}

/* h:wait(): waits until a signal is kept (for SignalEvent; takes none). */
static int l_wait(lua_State *L) {
  struct signal_obj *o = check_open(L, "SignalEvent.wait");
  lua_settop(L, 1);
  for (int i = 0; i < o->n; i++)
    if (o->s[i].count > 0) { trap_current_in(L, o->ctx, "SignalEvent.wait"); return 0; }
  struct task *t = trap_enter(L, "SignalEvent.wait");
  waitq_append(&o->waiters, t);
  obj_wait(o);
  return trap_suspend(L, t, &waiter_wait, wait_k);
}

/* h:pending() -> how many signals are kept. */
static int l_pending(lua_State *L) {
  struct signal_obj *o = luaL_checkudata(L, 1, SIGNALS_MT);
  lua_Integer total = 0;
  for (int i = 0; i < o->n; i++) total += o->s[i].count;
  lua_pushinteger(L, total);
  return 1;
}

/* h:clear(): forgets the signals kept. */
static int l_clear(lua_State *L) {
  struct signal_obj *o = luaL_checkudata(L, 1, SIGNALS_MT);
  for (int i = 0; i < o->n; i++) o->s[i].count = 0;
  return 0;
}

static int l_close(lua_State *L) {
  obj_close(luaL_checkudata(L, 1, SIGNALS_MT));
  return 0;
}

static int l_gc(lua_State *L) {
  struct signal_obj *o = luaL_checkudata(L, 1, SIGNALS_MT);
  if (o->k == NULL) return 0;
  waitq_detach_all(&o->getters); /* (a waiting task holds o: none is left) */
  waitq_detach_all(&o->waiters);
  if (o->nwaiting > 0 && !o->fallback) ev_unref(o->k->loop);
  o->nwaiting = 0;
  obj_stop(o);
  return 0;
}

static const luaL_Reg signal_methods[] = {
  {"get", l_get}, {"wait", l_wait}, {"pending", l_pending}, {"clear", l_clear},
  {"close", l_close}, {NULL, NULL}
};

/* Registers core.signal_watch and the handle's metatable. */
void signal_open(lua_State *L, int ctx) {
  luaL_newmetatable(L, SIGNALS_MT);
  lua_newtable(L);
  ctx_functions(L, signal_methods, ctx);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, ctx);
  lua_pushcclosure(L, l_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushvalue(L, ctx);
  lua_pushcclosure(L, l_signal_watch, 1);
  lua_setfield(L, -2, "signal_watch");
}
