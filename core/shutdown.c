/* core/shutdown.c: how a kernel ends (k:close(), the end of curio.run, a
 * Kernel in a <close> variable, curio_detach), its grace period and SIGINT.
 *
 * Rules (as curio's kernel, which cancels the tasks it finds one at a
 * time, newest first, and awaits each):
 * 1. Shutdown cancels the tasks left one at a time, newest first, and lets
 *    the loop run until that task has ended before it cancels the next:
 *    cleanups unwind like a stack, and older tasks run on meanwhile (a
 *    parent joining its child sees the child end cancelled, and goes on
 *    until its own turn). A task holding cancellation back gets it when
 *    it lets it through.
 * 2. Tasks may be spawned meanwhile (a cleanup may spawn a helper and wait
 *    for it): they run, and those still alive once every task of the
 *    round has been dealt with are cancelled in turn, in a next round,
 *    newest first.
 * 3. A task whose end nothing can bring (every task waits for something
 *    no watcher will wake) is passed over and the next one is cancelled:
 *    its cleanup may be what the first waits for. Once every task left has
 *    been cancelled and none can end, shutdown stops at once.
 * 4. shutdown_timeout bounds the whole (one grace period); a SIGINT during
 *    it ends it at once. The tasks still live then are reported on stderr
 *    or to the embedding host's report function (name, kind of wait,
 *    traceback, and why: shutdown_abandon) and abandoned, and the kernel
 *    is freed.
 * 5. During k:run, a SIGINT cancels the main task and starts the same
 *    grace period; a second one ends it. */
#include <signal.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "shutdown.h"
#include "kernel.h"
#include "task.h"
#include "wait.h"

/* ---- the grace period ---- */

static void grace_start(struct kernel *k) {
  if (ev_is_active(&k->grace)) return;
  ev_timer_set(&k->grace, k->shutdown_timeout, 0);
  ev_timer_start(k->loop, &k->grace);
  ev_unref(k->loop); /* never keeps the loop alive: a deadlock is seen at once */
}

void shutdown_grace_stop(struct kernel *k) {
  if (!ev_is_active(&k->grace)) return;
  ev_ref(k->loop);
  ev_timer_stop(k->loop, &k->grace);
}

static void grace_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct kernel *k = (struct kernel *)((char *)w - offsetof(struct kernel, grace));
  (void)revents;
  ev_ref(loop); /* stopped by libev: balance grace_start's unref */
  k->grace_over = 1;
  ev_break(loop, EVBREAK_ONE);
}

/* ---- SIGINT (rules 4 and 5) ---- */

/* Starts watching SIGINT for k if it may and no other kernel of this Lua
 * state does (libev lets one loop at a time watch a signal, and aborts
 * otherwise); -> 1 when started (then shutdown_sigint_stop must follow). */
int shutdown_sigint_start(struct kernel *k) {
  struct curio_ctx *ctx = k->ctx;
  if (!k->use_sigint || ctx->sigint_owner != NULL) return 0;
  ctx->sigint_owner = k;
  ev_signal_start(k->loop, &k->sigint);
  ev_unref(k->loop);
  return 1;
}

/* Stops k's SIGINT watcher if it runs (signal.c may have stopped it while a
 * script watches SIGINT itself; then the owner stays its). */
void shutdown_sigint_stop(struct kernel *k) {
  if (!ev_is_active(&k->sigint)) return;
  ev_ref(k->loop);
  ev_signal_stop(k->loop, &k->sigint);
  k->ctx->sigint_owner = NULL;
}

static void sigint_cb(struct ev_loop *loop, ev_signal *w, int revents) {
  struct kernel *k = (struct kernel *)((char *)w - offsetof(struct kernel, sigint));
  (void)revents;
  if (k->shutting_down || k->interrupted) {
    k->grace_over = 1;
    ev_break(loop, EVBREAK_ONE);
    return;
  }
  k->interrupted = 1;
  if (k->main != NULL && k->main->state != TASK_DONE) {
    task_cancel(k->main);
    grace_start(k);
  }
}

/* Sets up k's grace timer and SIGINT watcher (kernel_create). */
void shutdown_init(struct kernel *k) {
  ev_signal_init(&k->sigint, sigint_cb, SIGINT);
  ev_init(&k->grace, grace_cb);
}

/* ---- the order of cancellation (rules 1 to 3) ---- */

static int by_newest(const void *a, const void *b) {
  lua_Integer x = (*(struct task *const *)a)->id, y = (*(struct task *const *)b)->id;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* The live tasks of k spawned after task id `after`, newest first, in an
 * array (*n of them). Pushes a table that anchors them (a task that ends
 * leaves the live table and could be collected) and the array's userdata;
 * the caller pops both. */
static struct task **round_tasks(lua_State *L, struct kernel *k, lua_Integer after, size_t *n) {
  size_t count = 0;
  luaL_checkstack(L, 4, "shutdown");
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->live_ref);
  int live = lua_gettop(L);
  lua_newtable(L);
  for (int slot = 1; slot <= k->next_slot; slot++) {
    lua_rawgeti(L, live, slot);
    struct task *t = lua_touserdata(L, -1); /* (a free slot holds an integer) */
    if (t != NULL && t->id > after) lua_rawseti(L, live + 1, (lua_Integer)++count);
    else lua_pop(L, 1);
  }
  struct task **tasks = lua_newuserdatauv(L, (count ? count : 1) * sizeof *tasks, 0);
  for (size_t i = 0; i < count; i++) {
    lua_rawgeti(L, live + 1, (lua_Integer)i + 1);
    tasks[i] = lua_touserdata(L, -1);
    lua_pop(L, 1);
  }
  qsort(tasks, count, sizeof *tasks, by_newest);
  lua_remove(L, live);
  *n = count;
  return tasks;
}

static int awaited_done(struct kernel *k) { return k->awaited->state == TASK_DONE; }

/* Rule 3's last step: every task left was cancelled; wait until they end
 * or one more is spawned. */
static int round_needed(struct kernel *k) { return k->ntasks == 0 || k->next_id - 1 > k->shutdown_seen; }

/* Reports on stderr a task that did not end within the grace period: its
 * name, the kind of its wait (wait.h) and where it waits. */
static void report_stuck(lua_State *L, struct kernel *k, struct task *t) {
  luaL_Buffer b;
  task_push(L, t);
  lua_getfield(L, -1, "name");
  luaL_buffinit(L, &b);
  if (k->abandon_why != NULL)
    lua_pushfstring(L, "curio: shutdown: task %I (%s) %s; abandoned while it waits (%s) in:\n",
                    (LUAI_UACINT)t->id, lua_tostring(L, -2) ? lua_tostring(L, -2) : "?",
                    k->abandon_why, t->wait != NULL ? t->wait->name : "nothing");
  else
    lua_pushfstring(L, "curio: shutdown: task %I (%s) did not finish its cleanup within %f s; "
                    "abandoned while it waits (%s) in:\n", (LUAI_UACINT)t->id,
                    lua_tostring(L, -2) ? lua_tostring(L, -2) : "?", k->shutdown_timeout,
                    t->wait != NULL ? t->wait->name : "nothing");
  luaL_addvalue(&b);
  if (t->state == TASK_WAITING) luaL_traceback(L, t->co, NULL, 0);
  else lua_pushliteral(L, "(ready to run: it never blocks for long)");
  luaL_addvalue(&b);
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  kernel_report(k, lua_tostring(L, -1));
  lua_pop(L, 3);
}

/* Rules 1 to 4, then frees the kernel. */
void kernel_shutdown(lua_State *L, struct kernel *k) {
  int sigint = 0;
  luaL_checkstack(L, 8, "shutdown");
  k->shutting_down = 1;
  k->grace_over = 0;
  k->shutdown_seen = 0;
  if (k->ntasks > 0) {
    sigint = shutdown_sigint_start(k);
    grace_start(k);
  }
  while (k->ntasks > 0 && !k->grace_over) {
    size_t n;
    lua_Integer after = k->shutdown_seen;
    k->shutdown_seen = k->next_id - 1;
    struct task **tasks = round_tasks(L, k, after, &n);
    for (size_t i = 0; i < n && !k->grace_over; i++) {
      if (tasks[i]->state == TASK_DONE) continue; /* (ended meanwhile) */
      task_cancel(tasks[i]);
      k->awaited = tasks[i];
      kernel_drive(L, k, awaited_done); /* (stuck: rule 3, the next one) */
      k->awaited = NULL;
    }
    lua_pop(L, 2);
    if (n == 0 && !kernel_drive(L, k, round_needed)) break; /* rule 3 */
  }
  shutdown_grace_stop(k);
  if (sigint) shutdown_sigint_stop(k);
  shutdown_abandon(L, k, NULL);
}

/* Reports the tasks still live (why: how they are abandoned, completing
 * "task N (name) ..."; NULL: their grace period ran out) and frees k
 * (rule 4). Raises only when out of memory, before k is freed. */
void shutdown_abandon(lua_State *L, struct kernel *k, const char *why) {
  shutdown_grace_stop(k);
  k->abandon_why = why;
  kernel_each_task(L, k, report_stuck);
  kernel_free(k, L);
}
