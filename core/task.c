/* core/task.c: task records, spawn, termination, join/wait/result/cancel.
 *
 * Lifetime: a live task is anchored in its kernel's live table (t->slot),
 * put there by task_spawn and taken out by task_finish (or kernel_free).
 * Afterwards only Lua references keep the userdata; its results, or its
 * error, stay on the dead coroutine's stack.
 *
 * Memory: a task is its coroutine plus this userdata (a 112-byte record,
 * 176 bytes of malloc with the userdata's header and its one user value,
 * task.h); what few tasks need (fields, timeout blocks, group membership,
 * crash report, a carried value) is in the ext userdata, made on first
 * use. A server holds a task per connection, so this matters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "task.h"
#include "kernel.h"
#include "timer.h"
#include "trap.h"
#include "wait.h"
#include "errors.h"

/* A task spawned without arguments while at least this many are ready
 * gets its coroutine only when it starts (task_spawn). */
#define TASK_LAZY_READY 64

/* A task userdata has TASK_MT, or TASK_GC_MT once it failed: only those
 * need a finalizer (to report an unretrieved crash and free its text), and
 * objects without one are much cheaper for Lua's collector. */
struct task *task_check(lua_State *L, int idx) {
  struct task *t = ctx_testudata(L, idx, MT_TASK);
  if (t == NULL) t = ctx_testudata(L, idx, MT_TASK_GC);
  if (t == NULL) errors_objecterror(L, idx, "Task");
  return t;
}

/* Pushes a live task's userdata (from the kernel's live table). */
void task_push(lua_State *L, struct task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->k->live_ref);
  lua_rawgeti(L, -1, t->slot);
  lua_remove(L, -2);
}

/* Room in the ready ring and the timer heap, made at spawn where an error
 * can be raised, so that blocking and waking a task never allocate: each
 * holds a live task at most once. */
static void reserve(lua_State *L, struct kernel *k) {
  if (k->ready_cap < k->ntasks + 1) {
    size_t old = k->ready_cap, cap = old ? old * 2 : 256;
    struct task **ring = realloc(k->ready, cap * sizeof *ring);
    if (ring == NULL) luaL_error(L, "spawn: not enough memory");
    /* the wrapped-around part [0, head) moves after the old end */
    size_t wrapped = k->ready_head + k->ready_len > old ? k->ready_head + k->ready_len - old : 0;
    for (size_t i = 0; i < wrapped; i++) ring[old + i] = ring[i];
    k->ready = ring;
    k->ready_cap = cap;
  }
  if (!timer_reserve(k, k->ntasks + 1)) luaL_error(L, "spawn: not enough memory");
}

/* Anchors the task userdata on top of L in the kernel's live table. Free
 * slots of that table form a list through it, as luaL_ref's do: a free
 * slot holds the integer index of the next one (0: none), the first is
 * k->free_slot. Freeing a slot stores an integer where a task was, which
 * never allocates. */
static void anchor(lua_State *L, struct kernel *k, struct task *t) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->live_ref);
  if (k->free_slot != 0) {
    t->slot = k->free_slot;
    lua_rawgeti(L, -1, t->slot);
    k->free_slot = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
  } else {
    t->slot = ++k->next_slot;
  }
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, t->slot);
  lua_pop(L, 1);
}

/* Drops the anchor (the task may be collected after this); the live table
 * is at index live. */
static void unanchor(lua_State *L, struct kernel *k, struct task *t, int live) {
  int slot = t->slot;
  if (slot == 0) return;
  t->slot = 0;
  lua_pushinteger(L, k->free_slot);
  lua_rawseti(L, live, slot);
  k->free_slot = slot;
}

/* Creates a task running the function at `fn` with the `nargs` values above
 * it, schedules it, and pushes its userdata. The arguments stay on L. */
struct task *task_spawn(lua_State *L, struct kernel *k, int fn, int nargs) {
  fn = lua_absindex(L, fn);
  if (k->closed) /* (a host's curio_spawn after curio_detach) */
    errors_raise(L, "CurioError", "spawn: the kernel is closed");
  luaL_checkstack(L, nargs + 8, "spawn: too many arguments"); /* the copies below */
  reserve(L, k);
  /* A task spawned without arguments while many are ready (a burst of
   * spawns) gets its coroutine when it starts (task_make_thread); when few
   * are, making it now is cheaper (no protected call later). */
  int lazy = nargs == 0 && k->ready_len >= TASK_LAZY_READY;
  lua_State *co = lazy ? NULL : lua_newthread(L);
  struct task *t = lua_newuserdatauv(L, sizeof *t, TUV_COUNT);
  memset(t, 0, sizeof *t);
  list_init(&t->node);
  list_init(&t->joiners);
  ctx_setmetatable(L, k->ctx, MT_TASK);
  if (co != NULL) {
    lua_rotate(L, -2, 1);
    lua_setiuservalue(L, -2, TUV_ANCHOR);
    if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "spawn: too many arguments");
    for (int i = 0; i <= nargs; i++) lua_pushvalue(L, fn + i);
    lua_xmove(L, co, nargs + 1);
  } else {
    lua_pushvalue(L, fn);
    lua_setiuservalue(L, -2, TUV_ANCHOR);
  }
  anchor(L, k, t);
  t->k = k;
  t->co = co;
  t->id = k->next_id++;
  t->nargs = nargs;
  k->ntasks++;
  k->ctx->live_tasks++;
  kernel_schedule(k, t);
  return t;
}

static void crash_unlink(struct task *t) {
  if (t->ext != NULL) list_remove(&t->ext->crash_node);
}

/* Reports t's crash to k's report function (kernel_report). */
static void crash_print(struct kernel *k, struct task *t) {
  if (t->ext != NULL && t->ext->report != NULL && !t->reported && !t->retrieved)
    kernel_report(k, t->ext->report);
  t->reported = 1;
}

/* The task's error was handed to someone: it is no crash to report. */
static void task_retrieve(struct task *t) {
  t->retrieved = 1;
  crash_unlink(t);
}

/* Reports an unretrieved crash now and forgets it (kernel shutdown). */
void task_report_crash(struct kernel *k, struct task *t) {
  crash_print(k, t);
  crash_unlink(t);
}

/* Builds the crash report, protected (it allocates): args task, error,
 * thread. The text goes to the task's ext record (malloc; freed by __gc). */
static int task_build_report(lua_State *L) {
  struct task *t = lua_touserdata(L, 1);
  lua_State *co = lua_tothread(L, 3);
  struct task_ext *x = task_ext(L, t, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_pushfstring(L, "Task crash: task %I failed: ", (LUAI_UACINT)t->id);
  luaL_addvalue(&b);
  luaL_tolstring(L, 2, NULL); /* one line ("Class: message" for a curio error) */
  luaL_addvalue(&b);
  luaL_addchar(&b, '\n');
  /* the traceback of where the error was made, which a curio error
   * carries; any other value gets the task's, where it failed */
  if (lua_type(L, 2) != LUA_TTABLE || lua_getfield(L, 2, "traceback") != LUA_TSTRING) {
    if (lua_type(L, 2) == LUA_TTABLE) lua_pop(L, 1);
    luaL_traceback(L, co, NULL, 0);
  }
  luaL_addvalue(&b);
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  free(x->report);
  x->report = malloc(len + 1);
  if (x->report) memcpy(x->report, text, len + 1);
  return 0;
}

/* A failed task that nobody is about to take the error of: no task waits
 * for its end and no end hook (a task group) has it. A host's report
 * function hears of such a crash when it happens. */
static int unclaimed(const struct task *t) {
  return list_empty(&t->joiners) && (t->ext == NULL || t->ext->on_event == NULL);
}

/* Records the error on top of t's dead coroutine: it ends up alone at
 * index 1 there, after the task's pending <close> variables have run. */
static void task_record_error(struct kernel *k, struct task *t, int tidx) {
  lua_State *L = k->L, *co = t->co;
  t->failed = 1;
  t->is_cancel_error = (unsigned char)errors_is_cancel(co, -1);
  luaL_checkstack(L, 6, "task_finish");
  lua_pushvalue(L, tidx);
  ctx_setmetatable(L, k->ctx, MT_TASK_GC); /* __gc reports it if nobody did */
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1);                     /* task, error */
  if (!t->is_cancel_error && k->debug != 0) {
    lua_pushcfunction(L, task_build_report);
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) lua_pop(L, 1); /* no report, then */
    if (!t->retrieved && (k->debug == 1 || (k->report != NULL && unclaimed(t)))) {
      crash_print(k, t);
    } else if (!t->retrieved && t->ext != NULL) {
      list_insert_tail(&k->crashes, &t->ext->crash_node);
      t->ext->crash_kernel = k;
    }
  }
  /* The task's pending <close> variables run now, with the task still
   * current so that current_task() is right (they cannot block here). */
  struct task *outer = k->current;
  k->current = t;
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(co, L);
#else
  lua_resetthread(co);
#endif
  k->current = outer;
  lua_settop(co, 0);
  lua_xmove(L, co, 1); /* the error, at index 1 of the dead coroutine */
  lua_pop(L, 1);
}

/* Ends a task after its coroutine returned or failed: records the outcome,
 * wakes joiners, tells its end hook, drops the kernel's ref (last). */
void task_finish(struct kernel *k, struct task *t, int status) {
  lua_State *L = k->L;
  t->state = TASK_DONE;
  wait_undo(t); /* (a reservation it never took) */
  timer_remove(k, t);
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->live_ref); /* (room: the resume left it) */
  int live = lua_gettop(L);
  lua_rawgeti(L, live, t->slot);
  int tidx = live + 1;
  if (status == LUA_OK) t->nresults = lua_gettop(t->co);
  else if (t->co != NULL) task_record_error(k, t, tidx);
  else t->failed = 1; /* it could not start: its error is Lua's memory error */
  if (t->co == NULL || (status == LUA_OK && t->nresults == 0)) task_drop_thread(L, t, tidx);
  task_free_deadlines(t);
  for (struct list *j; (j = list_first(&t->joiners)) != NULL;)
    trap_wake(LIST_ENTRY(j, struct task, node), WAKE_OK);
  if (t->ext != NULL && t->ext->on_event != NULL) t->ext->on_event(L, t, tidx, TASK_ENDED);
  k->ntasks--;
  k->ctx->live_tasks--;
  if (t == k->main) k->main_done = 1;
  t->k = NULL;
  unanchor(L, k, t, live);
  if (t->notify && k->on_notify != NULL) k->on_notify(L, k, t, tidx);
  lua_settop(L, live - 1);
}

/* ---- methods ---- */

/* Pushes the results of a done task, or raises (as TaskError when wrap). */
static int task_outcome(lua_State *L, struct task *t, int idx, int wrap) {
  task_retrieve(t);
  if (t->failed) {
    task_push_error(L, t);
    if (!wrap) return lua_error(L);
    int cause = lua_gettop(L);
    const char *text;
    if (lua_type(L, cause) == LUA_TTABLE && lua_getfield(L, cause, "message") == LUA_TSTRING) {
      text = lua_tostring(L, -1); /* with its class: "task 3 failed: TaskTimeout: ..." */
      if (luaL_getmetafield(L, cause, "__name") == LUA_TSTRING)
        text = lua_pushfstring(L, "%s: %s", lua_tostring(L, -1), text);
    } else if (lua_type(L, cause) == LUA_TSTRING)
      text = lua_tostring(L, cause);
    else
      text = luaL_typename(L, cause);
    lua_pushfstring(L, "task %I failed: %s", (LUAI_UACINT)t->id, text);
    errors_push(L, "TaskError", lua_tostring(L, -1));
    lua_pushvalue(L, cause);
    lua_setfield(L, -2, "cause");
    lua_pushvalue(L, idx);
    lua_setfield(L, -2, "task");
    return lua_error(L);
  }
  return task_push_results(L, t);
}

static int join_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *self = trap_resumed(L);
  (void)status;
  trap_result(L, self, (int)ctx);
  struct task *t = lua_touserdata(L, 1); /* checked by join */
  if (t->ext != NULL && t->ext->on_event != NULL) t->ext->on_event(L, t, 1, TASK_JOINED);
  return task_outcome(L, t, 1, 1);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *self = trap_resumed(L);
  (void)status;
  trap_result(L, self, (int)ctx);
  return 0;
}

/* A wait for a task's end: in its joiners (rule 1 of wait.c). */
static void join_undo(struct task *t) {
  list_remove(&t->node);
}

static const struct wait_kind join_wait = {"join", join_undo};

/* Suspends the current task until t is done; then calls k. */
static int task_wait_for(lua_State *L, struct task *t, const char *fname, lua_KFunction k) {
  struct task *self = trap_enter(L, fname);
  if (self == t) return errors_raise(L, "CurioError", "%s: a task cannot wait for itself", fname);
  if (t->k != self->k) /* it would never be run while we wait */
    return errors_raise(L, "CurioError", "%s: the task belongs to another kernel", fname);
  lua_settop(L, 1);
  list_insert_tail(&t->joiners, &self->node); /* its wait record (wait.c) */
  self->wait_obj = t;
  return trap_suspend(L, self, &join_wait, k);
}

/* task:join() -> the task's results; TaskError if it failed. */
static int l_task_join(lua_State *L) {
  struct task *t = task_check(L, 1);
  trap_current(L, "join"); /* a blocking call, even when it need not block */
  if (t->state != TASK_DONE) return task_wait_for(L, t, "join", join_k);
  if (t->ext != NULL && t->ext->on_event != NULL) t->ext->on_event(L, t, 1, TASK_JOINED); /* joined on its own: leaves its group */
  return task_outcome(L, t, 1, 1);
}

/* task:wait(): waits for termination, raises nothing of the task's own. */
static int l_task_wait(lua_State *L) {
  struct task *t = task_check(L, 1);
  trap_current(L, "wait");
  if (t->state != TASK_DONE) return task_wait_for(L, t, "wait", wait_k);
  return 0;
}

/* task:result() -> results of a done task, or raises its error. */
static int l_task_result(lua_State *L) {
  struct task *t = task_check(L, 1);
  if (t->state != TASK_DONE)
    return errors_raise(L, "CurioError", "Task.result: task %I has not terminated", (LUAI_UACINT)t->id);
  return task_outcome(L, t, 1, 0);
}

/* Marks t cancelled (once: returns 0 if it was, or has ended) and
 * interrupts its wait unless it holds cancellation back. The one way a
 * task is cancelled: task:cancel, SIGINT and shutdown all come here. */
int task_cancel(struct task *t) {
  if (t->state == TASK_DONE || t->k == NULL) return 0;
  int issued = !t->cancelled;
  if (issued) {
    t->cancelled = 1;
    t->timed = 0; /* (a cancelled task's timeout blocks expire no more) */
    if (t->pending == PEND_NONE) t->pending = PEND_CANCEL;
  }
  if (t->no_cancel == 0 && t->state == TASK_WAITING && t->pending != PEND_NONE)
    trap_wake(t, WAKE_CANCEL);
  return issued;
}

/* core.task_cancel(task, exc?) -> true when a cancellation was issued. */
static int l_task_cancel(lua_State *L) {
  /* (checked here under the public name: task.lua's cancel passes its self
   * through, and task_check would name this function, 'task_cancel') */
  struct task *t = ctx_testudata(L, 1, MT_TASK);
  if (t == NULL) t = ctx_testudata(L, 1, MT_TASK_GC);
  if (t == NULL) return errors_methodtypeerror(L, 1, "cancel", "Task");
  if (t->state == TASK_DONE || t->k == NULL || t->cancelled) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 2);
    task_set_xvalue(L, t, 1, XUV_EXC);
    t->pending = PEND_EXC;
  }
  lua_pushboolean(L, task_cancel(t));
  return 1;
}

/* task:traceback() -> where the task is now (or where it failed). */
static int l_task_traceback(lua_State *L) {
  struct task *t = task_check(L, 1);
  if (t->state == TASK_DONE) {
    lua_pushstring(L, t->ext && t->ext->report ? t->ext->report : "");
  } else if (t->state == TASK_RUNNING) {
    luaL_traceback(L, L, NULL, 1);
  } else if (t->co != NULL) {
    luaL_traceback(L, t->co, NULL, 0);
  } else {
    lua_pushliteral(L, "stack traceback:\n\t(not started yet)");
  }
  return 1;
}

/* core.task_retrieve(task): marks its error as taken (task groups). */
static int l_task_retrieve(lua_State *L) {
  task_retrieve(task_check(L, 1));
  return 0;
}

/* core.is_task(value) -> true when value is a Task. */
static int l_is_task(lua_State *L) {
  lua_pushboolean(L, ctx_testudata(L, 1, MT_TASK) || ctx_testudata(L, 1, MT_TASK_GC));
  return 1;
}

/* core.task_failed(task) -> true when the task ended with an error (even
 * error(nil), which leaves task.exception nil). */
static int l_task_failed(lua_State *L) {
  lua_pushboolean(L, task_check(L, 1)->failed);
  return 1;
}


/* Pushes the task's fields table (at idx), made when `create`, else nil. */
static void push_fields(lua_State *L, struct task *t, int idx, int create) {
  if (task_get_xvalue(L, t, idx, XUV_FIELDS) == LUA_TTABLE || !create) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  task_set_xvalue(L, t, idx, XUV_FIELDS);
}

/* __index: methods (upvalue 2), then built-in fields, then user fields. */
int task_index(lua_State *L) {
  lua_pushvalue(L, 2); /* methods first: t:join() needs no userdata check */
  if (lua_rawget(L, lua_upvalueindex(2)) != LUA_TNIL) return 1;
  struct task *t = task_check(L, 1);
  const char *key = lua_tostring(L, 2);
  if (key == NULL) return 0;
  if (strcmp(key, "id") == 0) lua_pushinteger(L, t->id);
  else if (strcmp(key, "terminated") == 0) lua_pushboolean(L, t->state == TASK_DONE);
  else if (strcmp(key, "cancelled") == 0) lua_pushboolean(L, t->cancelled);
  else if (strcmp(key, "daemon") == 0) lua_pushboolean(L, t->daemon);
  else if (strcmp(key, "exception") == 0) {
    if (t->failed && t->state == TASK_DONE) task_push_error(L, t); else lua_pushnil(L);
  } else if (strcmp(key, "state") == 0) {
    static const char *const names[] = {"READY", "RUNNING", "WAITING", "TERMINATED"};
    lua_pushstring(L, names[t->state]);
  } else {
    push_fields(L, t, 1, 0);
    if (lua_istable(L, -1)) { lua_pushvalue(L, 2); lua_rawget(L, -2); }
    else lua_pushnil(L);
    if (lua_isnil(L, -1) && strcmp(key, "name") == 0)
      lua_pushfstring(L, "Task-%I", (LUAI_UACINT)t->id);
  }
  return 1;
}

static int l_task_newindex(lua_State *L) {
  const char *key = lua_tostring(L, 2);
  static const char *const readonly[] = {
    "id", "terminated", "cancelled", "daemon", "exception", "state", NULL};
  for (int i = 0; key && readonly[i]; i++)
    if (strcmp(key, readonly[i]) == 0) return luaL_error(L, "Task.%s is read-only", key);
  if (key && strcmp(key, "name") == 0 && !lua_isstring(L, 3))
    return luaL_error(L, "bad value for Task.name (string expected, got %s)", luaL_typename(L, 3));
  struct task *t = task_check(L, 1);
  push_fields(L, t, 1, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int l_task_tostring(lua_State *L) {
  struct task *t = task_check(L, 1);
  lua_pushfstring(L, "Task(id=%I, %s)", (LUAI_UACINT)t->id,
                  t->state == TASK_DONE ? "terminated" : "live");
  return 1;
}

static int l_task_eq(lua_State *L) {
  lua_pushboolean(L, lua_touserdata(L, 1) == lua_touserdata(L, 2));
  return 1;
}

/* __gc: reports a crash nobody retrieved; works with the kernel gone. */
static int l_task_gc(lua_State *L) {
  struct task *t = task_check(L, 1);
  struct kernel *k = t->ext != NULL && list_linked(&t->ext->crash_node) ? t->ext->crash_kernel : NULL;
  if (t->failed && !t->is_cancel_error) crash_print(k, t);
  crash_unlink(t);
  if (t->ext != NULL) {
    free(t->ext->report);
    t->ext->report = NULL;
  }
  return 0;
}

const luaL_Reg task_methods[] = {
  {"join", l_task_join},
  {"wait", l_task_wait},
  {"result", l_task_result},
  {"traceback", l_task_traceback},
  {NULL, NULL}
};

const luaL_Reg task_meta[] = {
  {"__newindex", l_task_newindex},
  {"__tostring", l_task_tostring},
  {"__eq", l_task_eq},
  {NULL, NULL}
};

const luaL_Reg task_gc_meta[] = {
  {"__gc", l_task_gc},
  {NULL, NULL}
};

/* core.spawn(fn, ...) / core.spawn_daemon(fn, ...) -> Task */
static int spawn(lua_State *L, const char *fname, int daemon) {
  errors_checkfunction(L, 1, fname);
  struct task *self = trap_current(L, fname);
  struct task *t = task_spawn(L, self->k, 1, lua_gettop(L) - 1);
  t->daemon = (unsigned char)daemon;
  return 1;
}

static int l_spawn(lua_State *L) { return spawn(L, "spawn", 0); }
static int l_spawn_daemon(lua_State *L) { return spawn(L, "spawn_daemon", 1); }

static int l_current_task(lua_State *L) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL || k->current == NULL) return 0;
  task_push(L, k->current);
  return 1;
}

const luaL_Reg task_functions[] = {
  {"spawn", l_spawn},
  {"spawn_daemon", l_spawn_daemon},
  {"current_task", l_current_task},
  {"task_cancel", l_task_cancel},
  {"task_retrieve", l_task_retrieve},
  {"task_failed", l_task_failed},
  {"is_task", l_is_task},
  {NULL, NULL}
};
