/* core/kernel.c: the scheduler and the Kernel userdata.
 *
 * The kernel never owns control flow: ev_prepare runs ready tasks before the
 * loop polls, and ev_idle (started only while tasks are ready) makes that
 * poll non-blocking. k:run drives the loop itself; an embedding host drives
 * its own loop and the same watchers run the tasks. How a kernel ends (its
 * shutdown, the grace period, SIGINT) is shutdown.c. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <lauxlib.h>
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "wait.h"
#include "timer.h"
#include "errors.h"
#include "shutdown.h"
#include "inspect.h"

/* Tasks resumed per prepare callback before libev polls again (at least one
 * whole batch). Polling costs a syscall; this keeps task switches cheap while
 * I/O and timers are still looked at every few hundred microseconds. */
#define KERNEL_STEP_BUDGET 4096

/* ... and seconds: steps can be slow (a collector that never rests, a task
 * computing between two blocking calls), and a count alone once let timers
 * wait 4096 slow steps (27 s for a 1 ms timeout in a fuzz program). The
 * clock is read between batches, at most once per KERNEL_CLOCK_EVERY steps,
 * so that fast switches do not pay for it. */
#define KERNEL_TIME_BUDGET 0.002
#define KERNEL_CLOCK_EVERY 8

/* Tasks given their coroutine together as they start (kernel_start). */
#define KERNEL_START_BATCH 64

/* Stack slots of the driving thread that running tasks may use. */
#define KERNEL_STACK_ROOM 24

/* Seconds a shutdown gives cancelled tasks to finish their cleanup before
 * it reports them and closes anyway (Kernel{shutdown_timeout=}). */
#define KERNEL_SHUTDOWN_TIMEOUT 3.0

double kernel_clock(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The prepare and signal watchers do not keep the loop alive; task waits
 * (timers, fds) do, and so does the idle watcher, active exactly while
 * tasks are ready: a host's ev_run then goes on while tasks can run, and
 * reports "nothing active" only when every task waits on a queue. */
static void idle_start(struct kernel *k) {
  if (!ev_is_active(&k->idle)) ev_idle_start(k->loop, &k->idle);
}

static void idle_stop(struct kernel *k) {
  if (ev_is_active(&k->idle)) ev_idle_stop(k->loop, &k->idle);
}

/* Makes t ready. Never allocates: spawn reserved a place in the ring for
 * every live task (task.c), and a task is in it at most once. */
void kernel_schedule(struct kernel *k, struct task *t) {
  k->ready[(k->ready_head + k->ready_len) % k->ready_cap] = t;
  k->ready_len++;
  t->state = TASK_READY;
  t->since = k->now; /* (inspect.c rule 1) */
  idle_start(k);
}

static struct task *ready_pop(struct kernel *k) {
  struct task *t = k->ready[k->ready_head];
  k->ready_head = (k->ready_head + 1) % k->ready_cap;
  k->ready_len--;
  return t;
}

/* Protected: makes the coroutines of the starting task (arg 2) and of the
 * tasks that have none among the next ready ones, a batch per protected
 * call (a lua_pcall per task cost a fifth of a spawn and join). */
static int start_batch(lua_State *L) {
  struct kernel *k = lua_touserdata(L, 1);
  task_make_thread(L, lua_touserdata(L, 2));
  for (size_t i = 0; i < k->ready_len && i < KERNEL_START_BATCH; i++) {
    struct task *t = k->ready[(k->ready_head + i) % k->ready_cap];
    if (t->co == NULL) task_make_thread(L, t);
  }
  return 0;
}

/* -> 1 when t has its coroutine. Out of memory, 0: the caller ends t
 * failed with Lua's memory error, without running (task_finish): a libev
 * callback has no caller to raise to, and the process goes on. */
static int kernel_start(struct kernel *k, struct task *t) {
  lua_State *L = k->L;
  if (lua_checkstack(L, 3)) {
    lua_pushcfunction(L, start_batch);
    lua_pushlightuserdata(L, k);
    lua_pushlightuserdata(L, t);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1); /* (the memory error) */
    if (t->co != NULL) return 1;
  }
  return 0;
}

/* Resumes one task until it traps or ends: returns LUA_YIELD when it
 * trapped, else the status it ended with (its outcome on its stack, for
 * task_finish). A yield that recorded no trap (a bare coroutine.yield in
 * the task body) ends the task with an error. */
static inline int kernel_resume(struct kernel *k, struct task *t) {
  int nargs = t->nargs, nres = 0, status;
  if (t->co == NULL && !kernel_start(k, t)) return LUA_ERRMEM; /* (no coroutine: see kernel_start) */
  lua_State *co = t->co;
  t->nargs = 0;
  t->state = TASK_RUNNING;
  t->cycles++;
  k->current = t;
  status = lua_resume(co, k->L, nargs, &nres);
  k->current = NULL;
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
    if (t->state != TASK_RUNNING) return LUA_YIELD;
    lua_pushliteral(co, "coroutine.yield called in a curio task outside a coroutine "
                        "(use curio.coroutine for generators)");
    status = LUA_ERRRUN;
  }
  return status;
}

static void kernel_step(struct kernel *k, struct task *t) {
  int status = kernel_resume(k, t);
  if (status != LUA_YIELD) task_finish(k, t, status);
}

/* The same, timed (Kernel{debug = {longblock = s}}, inspect.c rules 2
 * and 3): the step began at `start` (the end of the one before: one clock
 * read a step); a long one is reported before the task's end is recorded.
 * Returns when the next step begins. */
static double kernel_step_timed(struct kernel *k, struct task *t, double start) {
  int status = kernel_resume(k, t);
  double now = inspect_clock(k);
  int slow = now - start > k->longblock;
  if (slow) inspect_longblock_report(k, t, now - start, status);
  if (status == LUA_YIELD && !slow) return now;
  if (status != LUA_YIELD) task_finish(k, t, status); /* (its <close> handlers are its own) */
  return inspect_clock(k);
}

/* Runs ready tasks in FIFO batches: a task readied during a batch (sleep(0)
 * included) runs in the next one, so sleep(0) lets every ready task go once. */
static void kernel_run_ready(struct kernel *k) {
  struct curio_ctx *ctx = k->ctx;
  struct kernel *outer = ctx->running;
  size_t steps = 0, next_clock = KERNEL_CLOCK_EVERY;
  double start = 0, mark = k->longblock > 0 ? inspect_clock(k) : 0;
  ctx->running = k;
  while (k->ready_len > 0 && steps < KERNEL_STEP_BUDGET) {
    size_t batch = k->ready_len;
    while (batch-- > 0 && k->ready_len > 0) {
      if (k->longblock == 0) kernel_step(k, ready_pop(k)); /* (off: this one branch) */
      else mark = kernel_step_timed(k, ready_pop(k), mark);
      steps++;
    }
    if (steps >= next_clock) {
      double now = kernel_clock();
      if (start == 0) start = now;
      else if (now - start > KERNEL_TIME_BUDGET) break;
      next_clock = steps + KERNEL_CLOCK_EVERY;
    }
  }
  ctx->running = outer;
  if (k->ready_len == 0) idle_stop(k);
}

static void kernel_prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents) {
  struct kernel *k = (struct kernel *)((char *)w - offsetof(struct kernel, prepare));
  (void)revents;
  if (k->L == NULL) { kernel_run_flushes(k, 0); return; } /* not attached to a Lua thread now */
  /* The room that ending a task needs on k->L (task_finish), made here
   * where failing costs nothing: the tasks wait for the next turn. */
  if (!lua_checkstack(k->L, KERNEL_STACK_ROOM)) return;
  kernel_run_ready(k);
  kernel_run_flushes(k, 0);
  /* (libev checks for a break before it polls: break only once done, or
   * the loop would spin instead of sleeping until the next timer.) */
  if (k->driving && k->drive_done != NULL && k->drive_done(k)) ev_break(loop, EVBREAK_ONE);
}

/* After each poll, before the callbacks that it brought run (libev runs
 * check watchers first), notes the loop's time: tasks made ready or
 * waiting before the next poll take it as their `since` (inspect.c rule
 * 1), a load where ev_now would be a call on every switch. */
static void kernel_check_cb(struct ev_loop *loop, ev_check *w, int revents) {
  struct kernel *k = (struct kernel *)((char *)w - offsetof(struct kernel, check));
  (void)revents;
  k->now = ev_now(loop);
}

static void kernel_idle_cb(struct ev_loop *loop, ev_idle *w, int revents) {
  (void)loop; (void)w; (void)revents; /* exists only to make the poll non-blocking */
}

/* Runs the loop until done(k) or until nothing can make progress (every
 * task waits on something that no watcher will ever wake). Returns 1 when
 * done, 0 when stuck. */
int kernel_drive(lua_State *L, struct kernel *k, int (*done)(struct kernel *)) {
  lua_State *saved = k->L;
  int ok = 1;
  int (*saved_done)(struct kernel *) = k->drive_done;
  k->L = L;
  k->driving = 1;
  k->drive_done = done;
  while (!done(k)) {
    int active = ev_run(k->loop, EVRUN_ONCE);
    if (k->grace_over) { ok = 0; break; }
    if (!done(k) && !active && k->ready_len == 0 && ev_pending_count(k->loop) == 0) {
      ok = 0;
      break;
    }
  }
  k->drive_done = saved_done;
  k->driving = 0;
  k->L = saved;
  return ok;
}

/* ---- the Kernel userdata ---- */

static struct kernel *kernel_check(lua_State *L, int idx) {
  struct kernel *k = ctx_checkudata(L, idx, MT_KERNEL, "Kernel");
  if (k->closed) errors_raise(L, "CurioError", "Kernel is closed");
  return k;
}

/* ---- options the features read (a pool's size) ---- */

/* The context slot listing the features' options (kernel_set_options),
 * and how many they may be. */
#define KERNEL_MAX_OPTIONS 8

static const char options_key = 'O';

/* Registers the options that features read from Kernel{} (module.c, once
 * per state): opts, ended by a NULL name, must outlive the state. */
void kernel_set_options(lua_State *L, struct curio_ctx *ctx, const struct kernel_option *opts) {
  int n = 0;
  while (opts[n].name != NULL) n++;
  if (n > KERNEL_MAX_OPTIONS) luaL_error(L, "kernel_set_options: too many options");
  const struct kernel_option **slot = ctx_slot_find(ctx, &options_key);
  if (slot == NULL) slot = ctx_slot_make(L, ctx, &options_key, sizeof *slot, NULL);
  *slot = opts;
}

/* Checks Kernel{}'s options at idx (a table, or none: then it puts an
 * empty table there), errors naming fname: no key but the scheduler's and
 * the features' (those registered); each feature option a whole number
 * from 1 to its max (a float such as 1e3 counts when it is whole). Fills
 * cfg with the scheduler's and pushes a table of the feature options. */
void kernel_check_options(lua_State *L, int idx, const char *fname, struct kernel_config *cfg) {
  const struct kernel_option *const *slot = ctx_slot_find(ctx_get(L), &options_key);
  const struct kernel_option *opts = slot != NULL ? *slot : NULL;
  const char *known[KERNEL_MAX_OPTIONS + 4] = {"shutdown_timeout", "debug", "sigint"};
  for (int i = 0; opts != NULL && opts[i].name != NULL; i++) known[3 + i] = opts[i].name;
  if (!errors_checkoptions(L, idx, fname, known)) {
    lua_newtable(L);
    lua_replace(L, idx);
  }
  if (lua_getfield(L, idx, "shutdown_timeout") != LUA_TNIL) {
    int isnum = 0;
    cfg->shutdown_timeout = lua_tonumberx(L, -1, &isnum);
    if (!isnum || !(cfg->shutdown_timeout >= 0))
      errors_argerror(L, idx, fname, "option 'shutdown_timeout' must be a non-negative number");
  }
  inspect_debug_option(L, idx, fname, &cfg->debug, &cfg->longblock);
  if (lua_getfield(L, idx, "sigint") != LUA_TNIL) cfg->use_sigint = lua_toboolean(L, -1);
  lua_pop(L, 2);
  lua_newtable(L);
  for (const struct kernel_option *o = opts; o != NULL && o->name != NULL; o++) {
    if (lua_getfield(L, idx, o->name) == LUA_TNIL) { lua_pop(L, 1); continue; }
    int isint;
    lua_Integer v = lua_tointegerx(L, -1, &isint);
    if (!isint || lua_type(L, -1) != LUA_TNUMBER || v < 1 || v > o->max)
      errors_argerror(L, idx, fname, lua_pushfstring(L, "option '%s' must be a whole number "
                      "from 1 to %d", o->name, o->max));
    lua_pop(L, 1);
    lua_pushinteger(L, v);
    lua_setfield(L, -2, o->name);
  }
}

/* Gives k the options that kernel_check_options checked; options_ref is a
 * registry ref to the table of feature options it pushed (k owns it now).
 * Never raises. */
void kernel_configure(struct kernel *k, const struct kernel_config *cfg, int options_ref) {
  k->debug = cfg->debug;
  k->use_sigint = cfg->use_sigint;
  k->shutdown_timeout = cfg->shutdown_timeout;
  inspect_longblock_start(k, cfg->longblock);
  k->options_ref = options_ref;
}

/* The value of the feature option `name` given to k's Kernel{}, or def. */
int kernel_option(lua_State *L, struct kernel *k, const char *name, int def) {
  int result = def;
  if (k->options_ref == LUA_NOREF) return def;
  luaL_checkstack(L, 2, "kernel");
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->options_ref);
  if (lua_getfield(L, -1, name) == LUA_TNUMBER) result = (int)lua_tointeger(L, -1);
  lua_pop(L, 2);
  return result;
}

/* SIGINT belongs to the kernel of the process's main thread: libev lets one
 * loop at a time watch a signal (and aborts otherwise), so kernels in other
 * threads leave it alone unless opts.sigint says so. */
static int kernel_in_main_thread(void) {
#ifdef SYS_gettid
  return (pid_t)syscall(SYS_gettid) == getpid();
#else
  return 1;
#endif
}

/* curio.Kernel(opts) -> kernel on a new libev loop. */
static int l_kernel_new(lua_State *L) {
  struct kernel_config cfg = {KERNEL_SHUTDOWN_TIMEOUT, -1, kernel_in_main_thread(), 0};
  lua_settop(L, 1);
  kernel_check_options(L, 1, "Kernel", &cfg); /* (the feature options at 2) */
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
  if (loop == NULL) return errors_raise(L, "CurioError", "Kernel: cannot create an event loop");
  struct kernel *k = kernel_create(L, lua_upvalueindex(1), loop, 1);
  lua_pushvalue(L, 2);
  kernel_configure(k, &cfg, luaL_ref(L, LUA_REGISTRYINDEX));
  return 1;
}

/* Pushes a new kernel on `loop` (destroyed with the kernel when owns_loop);
 * the context userdata is at ctx_idx. Its watchers are attached, unref'd. */
struct kernel *kernel_create(lua_State *L, int ctx_idx, struct ev_loop *loop, int owns_loop) {
  struct curio_ctx *ctx = lua_touserdata(L, ctx_idx);
  ctx_idx = lua_absindex(L, ctx_idx);
  struct kernel *k = lua_newuserdatauv(L, sizeof *k, 1);
  memset(k, 0, sizeof *k);
  k->closed = 1; /* until fully built, so __gc has nothing to undo */
  k->loop = loop;
  k->owns_loop = owns_loop;
  ctx_setmetatable(L, ctx, MT_KERNEL);
  k->ctx = ctx;
  lua_pushvalue(L, ctx_idx); /* keep the context alive as long as us */
  lua_setiuservalue(L, -2, 1);
  k->debug = -1;
  k->options_ref = LUA_NOREF;
  k->next_id = 1;
  lua_newtable(L);
  k->live_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  ev_prepare_init(&k->prepare, kernel_prepare_cb);
  ev_idle_init(&k->idle, kernel_idle_cb);
  shutdown_init(k);
  timer_init(&k->timers, trap_timer_expired);
  list_init(&k->crashes);
  list_init(&k->hooks);
  list_init(&k->flushes);
  k->shutdown_timeout = KERNEL_SHUTDOWN_TIMEOUT;
  ev_prepare_start(k->loop, &k->prepare);
  ev_unref(k->loop);
  ev_check_init(&k->check, kernel_check_cb);
  ev_check_start(k->loop, &k->check);
  ev_unref(k->loop);
  k->now = ev_now(k->loop);
  k->closed = 0;
  return k;
}

static int main_is_done(struct kernel *k) { return k->main_done; }


void kernel_add_hook(struct kernel *k, struct kernel_hook *hook) {
  list_insert_tail(&k->hooks, &hook->node);
}

/* The hook whose close function is `close`, or NULL. */
struct kernel_hook *kernel_find_hook(struct kernel *k,
                                     void (*close)(lua_State *, struct kernel *, struct kernel_hook *)) {
  for (struct list *n = k->hooks.next; n != &k->hooks; n = n->next) {
    struct kernel_hook *hook = LIST_ENTRY(n, struct kernel_hook, node);
    if (hook->close == close) return hook;
  }
  return NULL;
}

/* Calls fn for every live task, in the order of their slots in the live
 * table (fn must not end tasks or spawn). fn finds the live table on top
 * of L's stack and what the caller pushed below it. */
void kernel_each_task(lua_State *L, struct kernel *k,
                      void (*fn)(lua_State *, struct kernel *, struct task *)) {
  luaL_checkstack(L, 4, "kernel");
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->live_ref);
  int live = lua_gettop(L);
  for (int slot = 1; slot <= k->next_slot; slot++) {
    lua_rawgeti(L, live, slot);
    struct task *t = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (t != NULL) fn(L, k, t);
  }
  lua_settop(L, live - 1);
}

/* The live task of k whose coroutine (or the curio.coroutine it drives) is
 * co, or NULL; a linear search, for trap_foreign_resume's error path. */
struct task *kernel_task_on(lua_State *L, struct kernel *k, lua_State *co) {
  struct task *found = NULL;
  luaL_checkstack(L, 2, "kernel");
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->live_ref);
  for (int slot = 1; slot <= k->next_slot && found == NULL; slot++) {
    lua_rawgeti(L, -1, slot);
    struct task *t = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (t != NULL && t->k == k && task_active(t) == co) found = t;
  }
  lua_pop(L, 1);
  return found;
}

/* k:run(fn, ...) -> fn's results, or raises its error. */
static int l_kernel_run(lua_State *L) {
  struct kernel *k = kernel_check(L, 1);
  struct curio_ctx *ctx = ctx_get(L);
  int nargs = lua_gettop(L) - 2, stuck, interrupted;
  if (lua_type(L, 2) != LUA_TFUNCTION) errors_methodtypeerror(L, 2, "run", "function");
  if (ctx->running != NULL)
    return errors_raise(L, "CurioError", "Kernel.run: cannot run a kernel from inside a curio task");
  if (k->driving || k->shutting_down)
    return errors_raise(L, "CurioError", "Kernel.run: kernel is already running");
  struct task *t = task_spawn(L, k, 2, nargs);  /* pushes the task */
  t->retrieved = 1;                              /* its error goes to our caller */
  k->main = t;
  k->main_done = 0;
  k->interrupted = 0;
  k->grace_over = 0;
  shutdown_sigint_start(k);
  stuck = !kernel_drive(L, k, main_is_done);
  shutdown_grace_stop(k);
  k->grace_over = 0;
  shutdown_sigint_stop(k); /* (if started here or by signal.c meanwhile) */
  interrupted = k->interrupted;
  k->main = NULL;
  if (interrupted) return errors_raise(L, "KeyboardInterrupt", "interrupted (SIGINT)");
  if (stuck)
    return errors_raise(L, "CurioError",
                        "Kernel.run: deadlock: the main task waits and nothing can wake it");
  if (t->failed) {
    task_push_error(L, t);
    return lua_error(L);
  }
  return task_push_results(L, t);
}

/* Hands a report to k's report function, or writes it on stderr (k NULL:
 * a task collected after its kernel). */
void kernel_report(struct kernel *k, const char *text) {
  if (k != NULL && k->report != NULL) {
    k->report(k->report_ud, text);
    return;
  }
  fputs(text, stderr);
  fflush(stderr);
}

/* Reports every crash that nobody retrieved. */
static void kernel_report_crashes(lua_State *L, struct kernel *k) {
  for (struct list *node; (node = list_first(&k->crashes)) != NULL;)
    task_report_crash(k, LIST_ENTRY(node, struct task_ext, crash_node)->crash_task);
  (void)L;
}

/* Frees what the kernel holds; tasks still live are abandoned (their
 * records stay valid for Lua with k == NULL). Works from __gc. */
static void abandon(lua_State *L, struct kernel *k, struct task *t) {
  (void)L;
  (void)k;
  wait_undo(t);
  task_free_deadlines(t);
  t->k = NULL;
  t->slot = 0; /* the live table goes below */
}

void kernel_free(struct kernel *k, lua_State *L) {
  luaL_checkstack(L, 8, "kernel"); /* (the only point where this may raise) */
  timer_free(k);
  kernel_run_flushes(k, 1);
  kernel_each_task(L, k, abandon);
  while (!list_empty(&k->hooks)) { /* last added first: later hooks use earlier ones */
    struct list *node = k->hooks.prev;
    struct kernel_hook *hook = LIST_ENTRY(node, struct kernel_hook, node);
    list_remove(node);
    hook->close(L, k, hook);
  }
  kernel_report_crashes(L, k);
  idle_stop(k);
  if (ev_is_active(&k->prepare)) { ev_ref(k->loop); ev_prepare_stop(k->loop, &k->prepare); }
  if (ev_is_active(&k->check)) { ev_ref(k->loop); ev_check_stop(k->loop, &k->check); }
  if (k->owns_loop) ev_loop_destroy(k->loop);
  k->loop = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, k->live_ref);
  k->live_ref = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, k->options_ref);
  k->options_ref = LUA_NOREF;
  k->free_slot = k->next_slot = 0;
  free(k->ready);
  k->ready = NULL;
  k->ready_len = k->ready_cap = 0;
  k->ctx->live_tasks -= (lua_Integer)k->ntasks; /* abandoned above */
  k->ntasks = 0;
  k->closed = 1;
}

/* k:close(): cancels every task left, runs their cleanup, releases all. */
static int l_kernel_close(lua_State *L) {
  struct kernel *k = ctx_checkudata(L, 1, MT_KERNEL, "Kernel");
  struct curio_ctx *ctx = ctx_get(L);
  if (k->closed) return 0;
  if (ctx->running == k || k->driving || k->shutting_down)
    return errors_raise(L, "CurioError", "Kernel.close: cannot close a running kernel");
  kernel_shutdown(L, k);
  return 0;
}

/* __gc: frees without running any task (Lua code cannot run here). */
static int l_kernel_gc(lua_State *L) {
  struct kernel *k = ctx_checkudata(L, 1, MT_KERNEL, "Kernel");
  if (!k->closed) kernel_free(k, L);
  return 0;
}

static int l_kernel_tostring(lua_State *L) {
  struct kernel *k = ctx_checkudata(L, 1, MT_KERNEL, "Kernel");
  lua_pushfstring(L, "Kernel (%s, %d tasks)", k->closed ? "closed" : "open", (int)k->ntasks);
  return 1;
}

const luaL_Reg kernel_methods[] = {
  {"run", l_kernel_run},
  {"close", l_kernel_close},
  {"__gc", l_kernel_gc},
  {"__close", l_kernel_close},
  {"__tostring", l_kernel_tostring},
  {NULL, NULL}
};

/* core.open_fds() -> number of open descriptors of this process (tests use
 * it to find leaks; /proc read in-process, so no child races the count). */
static int l_open_fds(lua_State *L) {
  DIR *dir = opendir("/proc/self/fd");
  lua_Integer n = 0;
  if (dir == NULL) return 0;
  while (readdir(dir) != NULL) n++;
  closedir(dir);
  lua_pushinteger(L, n - 3); /* ".", ".." and the directory's own fd */
  return 1;
}

/* core.loop_iterations() -> how many times the running kernel's libev loop
 * has polled (ev_iteration): specs count polls to show that a wait does not
 * spin, without reading a clock. */
static int l_loop_iterations(lua_State *L) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL) return luaL_error(L, "loop_iterations: not inside a curio task");
  lua_pushinteger(L, (lua_Integer)ev_iteration(k->loop));
  return 1;
}

/* core.live_tasks() -> number of tasks that some kernel of this Lua state
 * still holds (spawned, not ended, kernel not closed): the specs' leak check. */
static int l_live_tasks(lua_State *L) {
  lua_pushinteger(L, ctx_get(L)->live_tasks);
  return 1;
}

static int l_clock(lua_State *L) {
  lua_pushnumber(L, kernel_clock());
  return 1;
}

const luaL_Reg kernel_functions[] = {
  {"Kernel", l_kernel_new},
  {"clock", l_clock},
  {"open_fds", l_open_fds},
  {"live_tasks", l_live_tasks},
  {"loop_iterations", l_loop_iterations},
  {NULL, NULL}
};
