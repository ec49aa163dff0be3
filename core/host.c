/* core/host.c: the embedding API of curio.h. A host kernel is an ordinary
 * kernel (kernel.c) on the program's loop (owns_loop = 0), whose Lua thread
 * is the state's main thread, set once at attach.
 *
 * Rules (curio.h's rules are the contract; these say how they are kept):
 * 1. Every curio_* function first checks what needs no allocation (the
 *    stack's room, the handle, the state, the handle's stage), then does
 *    its work in a lua_CFunction under lua_pcall (host_pcall): an error,
 *    out of memory included, becomes the status with the error pushed.
 * 2. The handle is malloc'd and freed by curio_release only. The kernel
 *    is a userdata anchored in the registry under the handle's address
 *    from attach until kernel_free; the handle hears of that free through
 *    its kernel hook (host_hook_close), whoever frees the kernel:
 *    curio_detach, the state's lua_close (__gc) or the loop's destruction
 *    (rule 4). The hook drops every registry entry of the handle.
 * 3. Whatever attach allocates is allocated before the kernel's watchers
 *    start (registry slots are made first, then filled without
 *    allocating), so that a failed attach leaves nothing on the loop.
 * 4. An ev_cleanup watcher (libev calls it inside ev_loop_destroy, the
 *    loop still whole) frees the kernel, abandoning its tasks, when the
 *    loop goes first: nothing of curio is left on freed memory.
 * 5. A completion callback is recorded under the id the task will get
 *    (kernel ids go in order) before the spawn, which then allocates
 *    nothing more: a spawn that fails leaves no task, one that succeeds
 *    has its callback. The kernel tells host_notify of the task's end
 *    (the task's notify bit); the callback runs protected, from the loop.
 * 6. CURIO_DETACH_CANCEL cancels every task and leaves: an ev_check
 *    watcher of the handle frees the kernel once no task is left (and
 *    cancels those spawned meanwhile), an ev_timer once shutdown_timeout
 *    has passed. Both are unref'd: they never keep the loop running. */
#include <stdio.h>
#include <stdlib.h>
#include <lauxlib.h>
#include <lualib.h>
#include "curio.h"
#include "kernel.h"
#include "shutdown.h"
#include "task.h"
#include "threads.h"
#include "errors.h"
#include "hostopts.h"

/* The stack slots that every curio_* function needs (curio.h rule 1). */
#define HOST_STACK_ROOM 6

enum host_stage {
  HOST_ATTACHED,
  HOST_DETACHING,   /* in a WAIT detach, or after a CANCEL detach */
  HOST_DETACHED,
  HOST_STATE_CLOSED, /* lua_close freed the kernel */
  HOST_LOOP_GONE    /* ev_loop_destroy freed it; curio_detach says so once */
};

struct curio_kernel {
  struct kernel *k;         /* NULL once freed (rule 2) */
  lua_State *main;          /* the state's main thread (curio.h rule 2) */
  struct ev_loop *loop;
  int stage;                /* enum host_stage */
  int in_wait;              /* inside a CURIO_DETACH_WAIT */
  int loop_dying;           /* inside the ev_cleanup callback */
  int done_ref;             /* registry: task id -> struct host_done userdata */
  struct kernel_hook hook;
  ev_cleanup cleanup;       /* rule 4 */
  ev_check cancel_check;    /* rule 6 */
  ev_timer cancel_grace;
  lua_Integer cancel_seen;  /* the newest task id that CANCEL cancelled */
  char why[128];            /* the abandon report's words, for CANCEL */
};

struct host_done {
  curio_done_fn fn;
  void *ud;
};

/* The registry key of the handle attached to a state. */
static const char host_key = 'H';

/* ---- protected calls (rule 1) ---- */

/* Calls f (a lua_CFunction of this file) with the context as upvalue 1,
 * as every core function has it. */
static int host_trampoline(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, 1);
  lua_remove(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_registry_key); /* (nil before curio loads) */
  lua_pushcclosure(L, f, 1);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* f(the nargs values on top) under lua_pcall: -> its status; its results
 * (nresults, or LUA_MULTRET) or its error replace the arguments. */
static int host_pcall(lua_State *L, lua_CFunction f, int nargs, int nresults) {
  lua_pushcfunction(L, host_trampoline);
  lua_pushcfunction(L, f);
  lua_rotate(L, -(nargs + 2), 2);
  return lua_pcall(L, nargs + 1, nresults, 0);
}

static int raise_misuse(lua_State *L) {
  return errors_raise(L, "CurioError", "%s: %s", (const char *)lua_touserdata(L, 1),
                      (const char *)lua_touserdata(L, 2));
}

/* Pushes a CurioError "fname: what" (both static strings) -> its status. */
static int host_fail(lua_State *L, const char *fname, const char *what) {
  lua_pushlightuserdata(L, (void *)fname);
  lua_pushlightuserdata(L, (void *)what);
  int status = host_pcall(L, raise_misuse, 2, 0);
  return status == LUA_OK ? LUA_ERRRUN : status;
}

static lua_State *main_thread(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  lua_State *main = lua_tothread(L, -1);
  lua_pop(L, 1);
  return main;
}

static const char *const stage_words[] = {
  "", "the kernel is being detached", "the kernel is detached",
  "the Lua state of the kernel was closed (lua_close without curio_detach)",
  "the loop was destroyed before curio_detach: the tasks were abandoned without their cleanup"};

/* The checks of rule 1 for fname: -> LUA_OK, or its error status (pushed).
 * `detaching`: the call is allowed while the kernel is being detached. */
static int host_enter(lua_State *L, curio_kernel *h, const char *fname, int detaching) {
  if (!lua_checkstack(L, HOST_STACK_ROOM)) return LUA_ERRMEM;
  if (h == NULL) return host_fail(L, fname, "no kernel (a NULL handle)");
  if (main_thread(L) != h->main)
    return host_fail(L, fname, "the lua_State is not of the state the kernel was attached to");
  if (h->stage == HOST_ATTACHED || (detaching && h->stage == HOST_DETACHING)) return LUA_OK;
  return host_fail(L, fname, stage_words[h->stage]);
}

/* 1 when a task or a completion callback of h's kernel is running. */
static int host_inside(const curio_kernel *h) {
  return h->k != NULL && h->k->ctx->running != NULL;
}

/* ---- the kernel's free, whoever does it (rule 2) ---- */

static void watcher_stop_unref(struct ev_loop *loop, ev_watcher *w,
                               void (*stop)(struct ev_loop *, void *)) {
  if (!ev_is_active(w)) return;
  ev_ref(loop);
  stop(loop, w);
}

static void stop_check(struct ev_loop *loop, void *w) { ev_check_stop(loop, w); }
static void stop_timer(struct ev_loop *loop, void *w) { ev_timer_stop(loop, w); }

static void host_hook_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  curio_kernel *h = LIST_ENTRY(hook, curio_kernel, hook);
  (void)k;
  watcher_stop_unref(h->loop, (ev_watcher *)&h->cancel_check, stop_check);
  watcher_stop_unref(h->loop, (ev_watcher *)&h->cancel_grace, stop_timer);
  if (ev_is_active(&h->cleanup)) ev_cleanup_stop(h->loop, &h->cleanup);
  /* (the keys exist: these stores allocate nothing) */
  lua_pushnil(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, h);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key) == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == h) {
    lua_pushboolean(L, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  }
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, h->done_ref);
  h->done_ref = LUA_NOREF;
  h->k = NULL;
  if (h->loop_dying) h->stage = HOST_LOOP_GONE;
  else if (h->stage == HOST_ATTACHED) h->stage = HOST_STATE_CLOSED; /* (only __gc frees it then) */
  else h->stage = HOST_DETACHED;
}

static int abandon_cf(lua_State *L) {
  curio_kernel *h = lua_touserdata(L, 1);
  shutdown_abandon(L, h->k, lua_touserdata(L, 2));
  return 0;
}

/* Abandons what is left of h's kernel and frees it, from the main thread
 * (a libev callback, or curio_release); -> its status (only out of
 * memory fails), the error dropped: nobody could take it there. */
static int host_abandon(curio_kernel *h, const char *why) {
  lua_State *L = h->main;
  if (h->k == NULL) return LUA_OK;
  if (!lua_checkstack(L, HOST_STACK_ROOM)) return LUA_ERRMEM;
  lua_pushlightuserdata(L, h);
  lua_pushlightuserdata(L, (void *)why);
  int status = host_pcall(L, abandon_cf, 2, 0);
  if (status != LUA_OK) lua_pop(L, 1);
  return status;
}

/* Rule 4: ev_loop_destroy is under way. */
static void host_cleanup_cb(struct ev_loop *loop, ev_cleanup *w, int revents) {
  curio_kernel *h = (curio_kernel *)((char *)w - offsetof(curio_kernel, cleanup));
  (void)loop; (void)revents;
  h->loop_dying = 1;
  (void)host_abandon(h, "did not run its cleanup: the loop was destroyed before curio_detach");
  /* (out of memory, the kernel stays on the dying loop: nothing better can be done here) */
  h->loop_dying = 0;
}

/* ---- completion callbacks (rule 5) ---- */

static int call_done(lua_State *L) {
  curio_kernel *h = lua_touserdata(L, 1);
  struct host_done *d = lua_touserdata(L, 2);
  d->fn(L, h, 3, d->ud);
  return 0;
}

static void host_notify(lua_State *L, struct kernel *k, struct task *t, int tidx) {
  struct kernel_hook *hook = kernel_find_hook(k, host_hook_close);
  curio_kernel *h = LIST_ENTRY(hook, curio_kernel, hook);
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->done_ref);
  lua_rawgeti(L, -1, t->id);
  const struct host_done *d = lua_touserdata(L, -1);
  struct host_done done = d != NULL ? *d : (struct host_done){NULL, NULL};
  lua_pop(L, 1);
  if (done.fn == NULL) {
    lua_pop(L, 1);
    return;
  }
  lua_pushnil(L);
  lua_rawseti(L, -2, t->id); /* (an existing key: no allocation) */
  lua_pop(L, 1);
  lua_pushlightuserdata(L, h);
  lua_pushlightuserdata(L, &done);
  lua_pushvalue(L, tidx);
  if (host_pcall(L, call_done, 3, 0) != LUA_OK) {
    char text[512]; /* (no Lua allocation: memory may be what failed) */
    const char *msg = lua_tostring(L, -1);
    snprintf(text, sizeof text, "curio: the completion callback of task %lld raised an error: %s\n",
             (long long)t->id, msg != NULL ? msg : "(an error object that is not a string)");
    kernel_report(k, text);
    lua_pop(L, 1);
  }
}

/* ---- attach ---- */

/* The modules, here and in the states of the worker threads (threads.h),
 * unless the program gave those an opener of its own. */
static int preload_cf(lua_State *L) {
  host_preload_modules(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, THREADS_OPEN_FIELD) == LUA_TNIL) {
    lua_pushlightuserdata(L, (void *)&host_thread_open);
    lua_setfield(L, LUA_REGISTRYINDEX, THREADS_OPEN_FIELD);
  }
  lua_pop(L, 1);
  return 0;
}

int curio_preload(lua_State *L) {
  if (!lua_checkstack(L, HOST_STACK_ROOM)) return LUA_ERRMEM;
  return host_pcall(L, preload_cf, 0, 0);
}

/* args: handle, loop, options (light userdata); runs with curio loaded
 * (attach_cf), so with the context as upvalue 1. */
static int attach_kernel_cf(lua_State *L) {
  curio_kernel *h = lua_touserdata(L, 1);
  struct ev_loop *loop = lua_touserdata(L, 2);
  const struct curio_options *opts = lua_touserdata(L, 3);
  struct kernel_config cfg = {3.0, -1, 0, 0}; /* (never SIGINT: the program's) */
  host_push_options(L, opts);
  lua_replace(L, 3);
  kernel_check_options(L, 3, "curio_attach_opts", &cfg); /* pushes the feature options */
  int options_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* rule 3: the slots the stores below fill */
  lua_pushboolean(L, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, h);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key) == LUA_TNIL) {
    lua_pushboolean(L, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  }
  lua_newtable(L);
  h->done_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  struct kernel *k = kernel_create(L, lua_upvalueindex(1), loop, 0); /* its watchers start last */
  /* from here on, nothing allocates */
  kernel_configure(k, &cfg, options_ref);
  lua_rawsetp(L, LUA_REGISTRYINDEX, h);
  lua_pushlightuserdata(L, h);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &host_key);
  k->L = h->main;
  k->on_notify = host_notify;
  if (opts != NULL) {
    k->report = opts->report;
    k->report_ud = opts->report_ud;
  }
  h->hook.close = host_hook_close;
  kernel_add_hook(k, &h->hook);
  h->k = k;
  ev_cleanup_start(loop, &h->cleanup);
  return 0;
}

/* args: as attach_kernel_cf's. Loads curio, then attaches. */
static int attach_cf(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  if (lua_getfield(L, -2, "curio") == LUA_TNIL && lua_getfield(L, -2, "curio") == LUA_TNIL)
    preload_cf(L); /* (the loaded table, then the preload table, are at -2 in turn) */
  lua_settop(L, 3);
  if (lua_getglobal(L, "require") != LUA_TFUNCTION)
    return errors_raise(L, "CurioError", "curio_attach: no 'require' (open the standard "
                        "libraries first)");
  lua_pushliteral(L, "curio"); /* (the Lua layer registers its error classes) */
  lua_call(L, 1, 0);
  lua_pushcfunction(L, host_trampoline); /* now with the context as upvalue */
  lua_pushcfunction(L, attach_kernel_cf);
  lua_rotate(L, 1, 2);
  lua_call(L, 4, 0);
  return 0;
}

int curio_attach_opts(lua_State *L, struct ev_loop *loop, const struct curio_options *opts,
                      curio_kernel **kp) {
  if (kp != NULL) *kp = NULL;
  if (!lua_checkstack(L, HOST_STACK_ROOM)) return LUA_ERRMEM;
  if (kp == NULL) return host_fail(L, "curio_attach", "no place for the handle (kp is NULL)");
  if (loop == NULL) return host_fail(L, "curio_attach", "no loop (NULL)");
  int attached = lua_rawgetp(L, LUA_REGISTRYINDEX, &host_key) == LUA_TLIGHTUSERDATA;
  lua_pop(L, 1);
  if (attached) return host_fail(L, "curio_attach", "a kernel is attached to this state already");
  curio_kernel *h = calloc(1, sizeof *h);
  if (h == NULL) {
    lua_pushliteral(L, "not enough memory"); /* (Lua's own message: interned, no allocation) */
    return LUA_ERRMEM;
  }
  h->main = main_thread(L);
  h->loop = loop;
  h->done_ref = LUA_NOREF;
  h->stage = HOST_ATTACHED;
  ev_cleanup_init(&h->cleanup, host_cleanup_cb);
  lua_pushlightuserdata(L, h);
  lua_pushlightuserdata(L, loop);
  lua_pushlightuserdata(L, (void *)opts);
  int status = host_pcall(L, attach_cf, 3, 0);
  if (status != LUA_OK) {
    if (h->done_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, h->done_ref);
    free(h);
    return status;
  }
  *kp = h;
  return LUA_OK;
}

int curio_attach(lua_State *L, struct ev_loop *loop, curio_kernel **kp) {
  return curio_attach_opts(L, loop, NULL, kp);
}

/* ---- spawn, result, tasks ---- */

/* args: handle, completion (struct host_done, fn NULL: none), function,
 * its arguments */
static int spawn_cf(lua_State *L) {
  curio_kernel *h = lua_touserdata(L, 1);
  const struct host_done *done = lua_touserdata(L, 2);
  if (done->fn != NULL) { /* rule 5 */
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->done_ref);
    struct host_done *d = lua_newuserdatauv(L, sizeof *d, 0);
    *d = *done;
    lua_rawseti(L, -2, h->k->next_id);
    lua_pop(L, 1);
  }
  struct task *t = task_spawn(L, h->k, 3, lua_gettop(L) - 3);
  if (done->fn != NULL) {
    t->notify = 1;
    t->retrieved = 1; /* its outcome goes to the callback (curio.h rule 6) */
  }
  return 1;
}

int curio_spawn(lua_State *L, curio_kernel *h, int nargs, curio_done_fn fn, void *ud) {
  if (!lua_checkstack(L, HOST_STACK_ROOM)) return LUA_ERRMEM; /* (then nothing is pushed) */
  int status = host_enter(L, h, "curio_spawn", 0);
  if (status != LUA_OK) {
    if (nargs >= 0 && nargs < lua_gettop(L) - 1) { /* (as lua_pcall: the function and arguments go) */
      lua_insert(L, -(nargs + 2));
      lua_pop(L, nargs + 1);
    }
    return status;
  }
  if (nargs < 0 || nargs >= lua_gettop(L)) /* (no nargs + 1: it may overflow) */
    return host_fail(L, "curio_spawn", "fewer values on the stack than a function and nargs");
  if (lua_type(L, -(nargs + 1)) != LUA_TFUNCTION) {
    lua_pop(L, nargs + 1); /* (as lua_pcall: the function and arguments go) */
    return host_fail(L, "curio_spawn", "the value below the arguments is not a function");
  }
  struct host_done done = {fn, ud};
  lua_Integer id = h->k->next_id;
  lua_pushlightuserdata(L, h);
  lua_pushlightuserdata(L, &done);
  lua_rotate(L, -(nargs + 3), 2);
  status = host_pcall(L, spawn_cf, nargs + 3, 1);
  if (status != LUA_OK && fn != NULL && h->done_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->done_ref); /* (no task took the id) */
    lua_pushnil(L);
    lua_rawseti(L, -2, id);
    lua_pop(L, 1);
  }
  return status;
}

/* args: the task */
static int result_cf(lua_State *L) {
  if (!ctx_testudata(L, 1, MT_TASK) && !ctx_testudata(L, 1, MT_TASK_GC))
    return errors_raise(L, "CurioError", "curio_result: the value is not a Task");
  lua_getfield(L, 1, "result"); /* task:result(): its results, or raises its error */
  lua_insert(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L);
}

int curio_result(lua_State *L, curio_kernel *h, int task) {
  int status = host_enter(L, h, "curio_result", 1);
  if (status != LUA_OK) return status;
  if (task == 0 || task < -lua_gettop(L) || task > lua_gettop(L))
    return host_fail(L, "curio_result", "no value at that stack index");
  lua_pushvalue(L, task);
  return host_pcall(L, result_cf, 1, LUA_MULTRET);
}

int curio_tasks(lua_State *L, curio_kernel *h, size_t *n) {
  if (n != NULL) *n = 0;
  int status = host_enter(L, h, "curio_tasks", 1);
  if (status != LUA_OK) return status;
  if (n == NULL) return host_fail(L, "curio_tasks", "no place for the count (n is NULL)");
  *n = h->k->ntasks;
  return LUA_OK;
}

/* ---- detach ---- */

static int wait_cf(lua_State *L) {
  curio_kernel *h = lua_touserdata(L, 1);
  lua_settop(L, 0);
  kernel_shutdown(L, h->k);
  return 0;
}

static void cancel_one(lua_State *L, struct kernel *k, struct task *t) {
  curio_kernel *h = LIST_ENTRY(kernel_find_hook(k, host_hook_close), curio_kernel, hook);
  (void)L;
  if (t->id > h->cancel_seen) task_cancel(t);
}

/* CANCEL (rule 6): cancels the tasks spawned since the last time. */
static int cancel_cf(lua_State *L) {
  curio_kernel *h = lua_touserdata(L, 1);
  lua_Integer newest = h->k->next_id - 1;
  kernel_each_task(L, h->k, cancel_one);
  h->cancel_seen = newest;
  return 0;
}

static void cancel_check_cb(struct ev_loop *loop, ev_check *w, int revents) {
  curio_kernel *h = (curio_kernel *)((char *)w - offsetof(curio_kernel, cancel_check));
  lua_State *L = h->main;
  (void)loop; (void)revents;
  if (h->k == NULL || !lua_checkstack(L, HOST_STACK_ROOM)) return;
  if (h->k->ntasks == 0) {
    (void)host_abandon(h, NULL); /* (out of memory: retried at the next check) */
    return;
  }
  if (h->k->next_id - 1 > h->cancel_seen) {
    lua_pushlightuserdata(L, h);
    if (host_pcall(L, cancel_cf, 1, 0) != LUA_OK) lua_pop(L, 1);
  }
}

static void cancel_grace_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  curio_kernel *h = (curio_kernel *)((char *)w - offsetof(curio_kernel, cancel_grace));
  (void)revents;
  ev_ref(loop); /* (stopped by libev: balance the start's unref) */
  if (host_abandon(h, h->why) != LUA_OK) {
    ev_timer_set(w, 0.01, 0); /* out of memory: try again soon */
    ev_timer_start(loop, w);
    ev_unref(loop);
  }
}

static int detach_cancel(lua_State *L, curio_kernel *h) {
  struct kernel *k = h->k;
  if (h->stage == HOST_DETACHING) return LUA_OK; /* (a second CANCEL) */
  h->stage = HOST_DETACHING;
  k->shutting_down = 1; /* (spawn from the cleanups stays allowed, as at any shutdown) */
  h->cancel_seen = 0;
  lua_pushlightuserdata(L, h);
  int status = host_pcall(L, cancel_cf, 1, 0);
  if (status != LUA_OK) {
    h->stage = HOST_ATTACHED;
    k->shutting_down = 0;
    return status;
  }
  snprintf(h->why, sizeof h->why, "did not finish its cleanup within the %g s that "
           "curio_detach (CURIO_DETACH_CANCEL) gave it", k->shutdown_timeout);
  ev_check_init(&h->cancel_check, cancel_check_cb);
  ev_check_start(h->loop, &h->cancel_check);
  ev_unref(h->loop);
  ev_timer_init(&h->cancel_grace, cancel_grace_cb, k->shutdown_timeout, 0);
  ev_timer_start(h->loop, &h->cancel_grace);
  ev_unref(h->loop);
  return LUA_OK;
}

int curio_detach(lua_State *L, curio_kernel *h, int mode) {
  static const char fname[] = "curio_detach";
  if (!lua_checkstack(L, HOST_STACK_ROOM)) return LUA_ERRMEM;
  if (h == NULL) return host_fail(L, fname, "no kernel (a NULL handle)");
  if (main_thread(L) != h->main)
    return host_fail(L, fname, "the lua_State is not of the state the kernel was attached to");
  if (mode != CURIO_DETACH_WAIT && mode != CURIO_DETACH_CANCEL && mode != CURIO_DETACH_ABANDON)
    return host_fail(L, fname, "unknown mode (CURIO_DETACH_WAIT, _CANCEL or _ABANDON expected)");
  switch (h->stage) {
  case HOST_DETACHED: return LUA_OK;
  case HOST_STATE_CLOSED: return host_fail(L, fname, stage_words[h->stage]);
  case HOST_LOOP_GONE:
    h->stage = HOST_DETACHED; /* (said once) */
    return host_fail(L, fname, stage_words[HOST_LOOP_GONE]);
  default: break;
  }
  if (host_inside(h))
    return host_fail(L, fname, "called from inside a task or a completion callback of the kernel");
  if (h->in_wait)
    return host_fail(L, fname, "called from a callback that the kernel's own detach runs");
  if (mode == CURIO_DETACH_CANCEL) return detach_cancel(L, h);
  int status;
  if (mode == CURIO_DETACH_ABANDON) {
    h->stage = HOST_DETACHING;
    lua_pushlightuserdata(L, h);
    lua_pushlightuserdata(L, (void *)"did not run its cleanup: curio_detach "
                          "(CURIO_DETACH_ABANDON) abandons the tasks at once");
    status = host_pcall(L, abandon_cf, 2, 0);
  } else {
    watcher_stop_unref(h->loop, (ev_watcher *)&h->cancel_check, stop_check);
    watcher_stop_unref(h->loop, (ev_watcher *)&h->cancel_grace, stop_timer);
    h->stage = HOST_DETACHING;
    h->in_wait = 1;
    lua_pushlightuserdata(L, h);
    status = host_pcall(L, wait_cf, 1, 0);
    h->in_wait = 0;
  }
  return status;
}

int curio_release(curio_kernel *h) {
  if (h == NULL) return LUA_OK;
  if (host_inside(h) || h->in_wait) return LUA_ERRRUN;
  if (h->k != NULL) {
    int status = host_abandon(h, "did not run its cleanup: curio_release without "
                                 "curio_detach abandons the tasks at once");
    if (status != LUA_OK) return status;
  }
  free(h);
  return LUA_OK;
}
