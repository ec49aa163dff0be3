/* core/trap.c: how a task blocks and how it is woken.
 *
 * Rules (as curio's kernel):
 * 1. A trap first raises a pending cancellation, or an expired timeout,
 *    unless cancellation is disabled; otherwise it records its wait in the
 *    task and yields (trap_suspend). Its continuation calls trap_result.
 * 2. A waiting task is woken once: by its event (WAKE_OK), by a
 *    cancellation (WAKE_CANCEL) or by its timeout (WAKE_TIMEOUT). Waking
 *    undoes the wait (queue link, io watcher, timer) before scheduling.
 * 3. A woken task owns what it was handed; a cancellation arriving after
 *    that waits for its next blocking call.
 * 4. Only the earliest of a task's deadlines (sleep or timeout) is a live
 *    timer, and only while the task waits. A timeout passed while the task
 *    ran is noticed by the next trap (rule 1).
 * 5. A timeout is delivered once: delivering it clears the effective
 *    deadline until the timeout block that set it is left. */
#include <math.h>
#include <stdlib.h>
#include <lauxlib.h>
#include "trap.h"
#include "kernel.h"
#include "task.h"
#include "wait.h"
#include "timer.h"
#include "errors.h"

/* The kinds of wait with nothing to undo but the timer (wait.h). */
static const struct wait_kind yield_wait = {"sleep(0)", NULL};
static const struct wait_kind sleep_wait = {"sleep", NULL};

/* Sets t's effective deadline (HUGE_VAL: none); a deadline needs t's ext
 * record, which the timeout block that set it made. */
static void set_deadline(struct task *t, double deadline) {
  t->timed = deadline != HUGE_VAL;
  if (t->ext != NULL) t->ext->timeout = deadline;
}

static const char trap_sentinel_key = 'T';

void trap_push_sentinel(lua_State *L) {
  lua_pushlightuserdata(L, (void *)&trap_sentinel_key);
}

int trap_is_sentinel(lua_State *L, int idx) {
  return lua_touserdata(L, idx) == (void *)&trap_sentinel_key;
}

/* The running task, or a CurioError naming fname. */
/* (trap_current and trap_current_in are inline, trap.h) */
struct task *trap_not_in_task(lua_State *L, const char *fname) {
  errors_raise(L, "CurioError", "%s: not inside a curio task", fname);
  return NULL;
}

static void push_timeout(lua_State *L, double clock) {
  errors_push(L, "TaskTimeout", "timed out");
  if (lua_istable(L, -1)) {
    lua_pushnumber(L, clock);
    lua_setfield(L, -2, "clock");
  }
}

static int raise_timeout(lua_State *L, double clock) {
  push_timeout(L, clock);
  return lua_error(L);
}

/* Pushes the task's pending cancellation, consuming it. */
static void push_pending(lua_State *L, struct task *t) {
  int kind = t->pending;
  t->pending = PEND_NONE;
  if (kind == PEND_EXC) {
    task_get_xvalue(L, t, 0, XUV_EXC);
    lua_pushnil(L);
    task_set_xvalue(L, t, 0, XUV_EXC);
    return;
  }
  errors_push(L, "TaskCancelled", "task cancelled");
}

/* Raises the task's pending cancellation, consuming it. */
static void trap_raise_pending(lua_State *L, struct task *t) {
  push_pending(L, t);
  lua_error(L);
}

/* Rule 1 alone: raises t's pending cancellation or expired timeout, if any. */
static void trap_raise_due(lua_State *L, struct task *t) {
  if (trap_push_due(L, t)) lua_error(L);
}

/* Rule 1, for a caller that adds to the error (sendall's bytes_sent): pushes
 * t's pending cancellation or expired timeout, consuming it, and returns 1;
 * returns 0 when nothing is due. */
int trap_push_due(lua_State *L, struct task *t) {
  if (t->no_cancel != 0) return 0;
  if (t->pending != PEND_NONE) {
    push_pending(L, t);
    return 1;
  }
  if (t->timed) {
    double now = kernel_clock();
    if (now >= t->ext->timeout) {
      set_deadline(t, HUGE_VAL);
      push_timeout(L, now);
      return 1;
    }
  }
  return 0;
}

/* Rule 1 for the task running on L; returns it. Rule 0: a trap that
 * cannot yield (Lua is inside a C call it cannot yield across, or a
 * curio.coroutine was resumed from such a place: task_active is NULL) raises
 * here, before anything is recorded, so the task and kernel stay intact. */
struct task *trap_enter(lua_State *L, const char *fname) {
  return trap_enter_in(L, ctx_get(L), fname);
}

/* As trap_enter, for callers that hold the context (universal.c's methods
 * have none as upvalue: they live in worker states too). */
struct task *trap_enter_in(lua_State *L, struct curio_ctx *ctx, const char *fname) {
  struct task *t = trap_enter_quiet(L, ctx, fname);
  if (t->no_cancel == 0 && (t->pending != PEND_NONE || t->timed))
    trap_raise_due(L, t);
  return t;
}

/* Rule 0 alone (the task may block here), without rule 1: for a trap that
 * raises what is due itself (trap_push_due). */
struct task *trap_enter_quiet(lua_State *L, struct curio_ctx *ctx, const char *fname) {
  struct task *t = trap_current_in(L, ctx, fname);
  lua_State *active = task_active(t);
  if (active == NULL || (L == active && !lua_isyieldable(L)))
    errors_raise(L, "CurioError",
                 "%s: cannot block here (Lua cannot yield across this call: a __gc or "
                 "metamethod, a table.sort comparator, a string.gsub callback, a require, "
                 "or a <close> handler run after an error)", fname);
  if (L != active)
    errors_raise(L, "CurioError",
                 "%s: blocking call inside a coroutine that curio does not drive "
                 "(create or resume it with curio.coroutine)", fname);
  return t;
}

/* trap_resumed's refusal (trap.h). */
struct task *trap_foreign_resume(lua_State *L, struct curio_ctx *ctx) {
  struct task *victim = ctx->running != NULL ? kernel_task_on(L, ctx->running, L) : NULL;
  if (victim != NULL && victim->state == TASK_WAITING) trap_wake(victim, WAKE_OK);
  errors_raise(L, "CurioError",
               "cannot resume a curio task's coroutine: only its kernel may resume it");
  return NULL;
}

/* Puts t in its kernel's timer heap for clock time `when` (rule 4). */
static void trap_arm(struct task *t, double when) {
  timer_add(t->k, t, when); /* (never fails: room reserved at spawn) */
}

static int suspend(lua_State *L, struct task *t, const struct wait_kind *kind, double when,
                   lua_KFunction k) {
  int base = lua_gettop(L);
  if (t->no_cancel == 0 && t->timed && t->ext->timeout < when) when = t->ext->timeout;
  if (when != HUGE_VAL) trap_arm(t, when);
  t->state = TASK_WAITING;
  t->since = t->k->now; /* (inspect.c rule 1) */
  t->wait = kind;
  t->wake = WAKE_OK;
  trap_push_sentinel(L);
  return lua_yieldk(L, 1, (lua_KContext)base, k);
}

/* Records the wait (its kind, wait.h: the caller has set t->wait_obj or
 * linked t->node), arms the earliest deadline, yields to the kernel. The
 * continuation k gets the stack top before the yield as its context. */
int trap_suspend(lua_State *L, struct task *t, const struct wait_kind *kind, lua_KFunction k) {
  return suspend(L, t, kind, HUGE_VAL, k);
}

/* As trap_suspend, for a sleep until clock time `until`. */
int trap_suspend_until(lua_State *L, struct task *t, double until, lua_KFunction k) {
  return suspend(L, t, &sleep_wait, until, k);
}

/* In a continuation: raises what interrupted the wait, or returns how many
 * values the waker handed over (they are on top of the stack; a timer hands
 * over the clock when it fired). */
int trap_result(lua_State *L, struct task *t, int base) {
  if (trap_push_interrupt(L, t)) lua_error(L);
  return lua_gettop(L) - base;
}

/* In a continuation: when the wait was interrupted (cancelled or timed
 * out), pushes the error trap_result would raise, consuming it, and
 * returns 1 (the caller may add to it, as sendall adds bytes_sent); else 0. */
int trap_push_interrupt(lua_State *L, struct task *t) {
  int wake = t->wake;
  if (wake == WAKE_OK) return 0;
  t->wake = WAKE_OK;
  if (wake == WAKE_CANCEL) push_pending(L, t);
  else push_timeout(L, lua_tonumber(L, -1));
  return 1;
}

/* Rule 2: undo the wait (its record, wait.c, and its deadline) and make
 * the task ready. */
void trap_wake(struct task *t, int reason) {
  struct kernel *k = t->k;
  wait_undo(t);
  timer_remove(k, t);
  t->wake = (unsigned char)reason;
  kernel_schedule(k, t);
}

/* Gives the value at vidx (0: none) to the waiting task t as the result of
 * its wait, and wakes it. (A trap's frame keeps room for one value.) */
void trap_hand_over(lua_State *L, struct task *t, int vidx) {
  if (vidx != 0 && lua_checkstack(t->co, 1)) {
    lua_pushvalue(L, vidx);
    lua_xmove(L, t->co, 1);
    t->nargs = 1;
  }
  trap_wake(t, WAKE_OK);
}

/* The value at idx rides with the task t while it waits (a blocked
 * putter's item): whoever wakes it takes it with trap_push_carry. */
void trap_carry(lua_State *L, struct task *t, int idx) {
  lua_pushvalue(L, idx);
  task_set_xvalue(L, t, 0, XUV_CARRY);
  t->has_carry = 1;
}

/* Pushes what the waiting task t carried (nil if nothing) and forgets it. */
void trap_push_carry(lua_State *L, struct task *t) {
  if (!t->has_carry) { lua_pushnil(L); return; }
  t->has_carry = 0;
  task_get_xvalue(L, t, 0, XUV_CARRY);
  lua_pushnil(L);
  task_set_xvalue(L, t, 0, XUV_CARRY);
}

/* The continuation of a wait in a waitq: drops a carry nobody took (the
 * wait was interrupted), then raises or returns what was handed over. */
int trap_wait_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  if (t->has_carry) {
    t->has_carry = 0;
    lua_pushnil(L);
    task_set_xvalue(L, t, 0, XUV_CARRY);
  }
  return trap_result(L, t, (int)ctx);
}

/* The timer heap's callback (timer.c, given by kernel.c): t's earliest
 * deadline, `at`, came.
 * The clock goes to the task as the value of its wake-up (sleep returns it,
 * a timeout carries it); the waiting trap's frame has room for it. */
void trap_timer_expired(struct task *t, double at, double now) {
  /* (`at` is the sleep's end or the timeout, whichever came first when the
   * task suspended; a tie counts as the timeout) */
  int timed_out = t->wait != &sleep_wait || (t->no_cancel == 0 && task_deadline(t) <= at);
  lua_pushnumber(t->co, now);
  t->nargs = 1;
  if (timed_out) set_deadline(t, HUGE_VAL); /* rule 5 */
  trap_wake(t, timed_out ? WAKE_TIMEOUT : WAKE_OK);
}

/* ---- sleep ---- */

static int sleep_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  if (trap_result(L, t, (int)ctx) == 0) lua_pushnumber(L, kernel_clock());
  return 1;
}

static int sleep0_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  trap_resumed(L);
  lua_pushnumber(L, kernel_clock());
  return 1;
}

/* curio.sleep(seconds) -> clock. sleep(0) goes to the back of the queue. */
static int l_sleep(lua_State *L) {
  lua_Number seconds = errors_checkseconds(L, 1, "sleep");
  struct task *t = trap_enter(L, "sleep");
  lua_settop(L, 0);
  if (seconds == 0) {
    t->wait = &yield_wait;
    kernel_schedule(t->k, t);
    trap_push_sentinel(L);
    return lua_yieldk(L, 1, 0, sleep0_k);
  }
  return trap_suspend_until(L, t, kernel_clock() + seconds, sleep_k);
}

/* ---- timeouts (the nesting rules are in lua/curio/time.lua) ---- */

static double check_deadline(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return HUGE_VAL;
  lua_Number d = errors_checknumber(L, idx, fname);
  if (d != d) errors_argerror(L, idx, fname, "number expected, got NaN");
  return d;
}

/* The name of the Lua function a timeout helper serves (argument 2, from
 * time.lua), for its errors. */
static const char *block_name(lua_State *L, const char *def) {
  const char *name = lua_tostring(L, 2);
  return name != NULL ? name : def;
}

static void push_deadline(lua_State *L, struct task *t, double deadline) {
  struct task_ext *x = task_ext(L, t, 0);
  if (x->ndeadlines == x->cap_deadlines) {
    int cap = x->cap_deadlines ? x->cap_deadlines * 2 : 4;
    struct deadline *grown = realloc(x->deadlines, (size_t)cap * sizeof *grown);
    if (grown == NULL) luaL_error(L, "not enough memory");
    x->deadlines = grown;
    x->cap_deadlines = cap;
  }
  x->deadlines[x->ndeadlines].deadline = deadline;
  x->deadlines[x->ndeadlines].prior = task_deadline(t);
  x->ndeadlines++;
  if (deadline < task_deadline(t)) set_deadline(t, deadline);
}

/* core.timeout_push(deadline|nil, fname): enters a timeout block. */
static int l_timeout_push(lua_State *L) {
  const char *fname = block_name(L, "timeout_at");
  double deadline = check_deadline(L, 1, fname);
  push_deadline(L, trap_current(L, fname), deadline);
  return 0;
}

/* core.timeout_push_after(seconds|nil, fname) -> deadline|nil */
static int l_timeout_push_after(lua_State *L) {
  const char *fname = block_name(L, "timeout_after");
  double deadline = HUGE_VAL;
  if (!lua_isnoneornil(L, 1)) {
    lua_Number seconds = errors_checkseconds(L, 1, fname);
    deadline = kernel_clock() + seconds;
  }
  push_deadline(L, trap_current(L, fname), deadline);
  if (deadline == HUGE_VAL) return 0;
  lua_pushnumber(L, deadline);
  return 1;
}

/* core.timeout_pop(clock|nil) -> verdict, deadline. Leaves the innermost
 * block and restores the deadline in force before it. With the clock of a
 * timeout error: 1 when this block is the outermost expired one, 2 when an
 * outer one expired, 0 when none did (the timeout escaped its own block);
 * deadline is the expired block's (for the error messages). */
static int l_timeout_pop(lua_State *L) {
  struct task *t = trap_current(L, "timeout_after");
  struct task_ext *x = t->ext;
  int verdict = 0;
  double expired = HUGE_VAL;
  if (x == NULL || x->ndeadlines == 0)
    return luaL_error(L, "timeout_pop: no timeout block to leave");
  if (!lua_isnoneornil(L, 1)) {
    double clock = luaL_checknumber(L, 1);
    for (int i = 0; i < x->ndeadlines; i++) {
      if (x->deadlines[i].deadline <= clock) {
        verdict = i == x->ndeadlines - 1 ? 1 : 2;
        expired = x->deadlines[i].deadline;
        break;
      }
    }
  }
  x->ndeadlines--;
  set_deadline(t, x->deadlines[x->ndeadlines].prior);
  lua_pushinteger(L, verdict);
  if (verdict == 0) return 1;
  lua_pushnumber(L, expired);
  return 2;
}

/* ---- cancellation control ---- */

/* core.set_cancellable(flag) -> previous flag */
static int l_set_cancellable(lua_State *L) {
  struct task *t = trap_current(L, "disable_cancellation");
  lua_pushboolean(L, t->no_cancel == 0);
  t->no_cancel = !lua_toboolean(L, 1);
  return 1;
}

/* core.cancel_pending() -> true when a cancellation (not a timeout) would
 * be raised at the task's next blocking call now. */
static int l_cancel_pending(lua_State *L) {
  struct task *t = trap_current(L, "cancel_pending");
  lua_pushboolean(L, t->no_cancel == 0 && t->pending != PEND_NONE);
  return 1;
}

/* curio.check_cancellation(): raises a pending cancellation where allowed;
 * where not, returns it (nil if none) without consuming it. */
static int l_check_cancellation(lua_State *L) {
  struct task *t = trap_current(L, "check_cancellation");
  double deadline = task_deadline(t);
  double now = deadline != HUGE_VAL ? kernel_clock() : 0;
  if (t->no_cancel == 0) {
    if (t->pending != PEND_NONE) trap_raise_pending(L, t);
    if (deadline != HUGE_VAL && now >= deadline) {
      set_deadline(t, HUGE_VAL);
      raise_timeout(L, now);
    }
    return 0;
  }
  if (t->pending == PEND_CANCEL) {
    errors_push(L, "TaskCancelled", "task cancelled");
    task_set_xvalue(L, t, 0, XUV_EXC);
    t->pending = PEND_EXC;
  }
  if (t->pending == PEND_EXC) {
    task_get_xvalue(L, t, 0, XUV_EXC);
    return 1;
  }
  if (deadline != HUGE_VAL && now >= deadline) {
    errors_push(L, "TaskTimeout", "timed out");
    if (lua_istable(L, -1)) { lua_pushnumber(L, now); lua_setfield(L, -2, "clock"); }
    return 1;
  }
  return 0;
}

const luaL_Reg trap_functions[] = {
  {"sleep", l_sleep},
  {"timeout_push", l_timeout_push},
  {"timeout_push_after", l_timeout_push_after},
  {"timeout_pop", l_timeout_pop},
  {"set_cancellable", l_set_cancellable},
  {"check_cancellation", l_check_cancellation},
  {"cancel_pending", l_cancel_pending},
  {NULL, NULL}
};
