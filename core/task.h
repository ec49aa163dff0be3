/* core/task.h: the task record: a Lua coroutine plus this C struct, a full
 * userdata whose user values are listed below. */
#ifndef CURIO_TASK_H
#define CURIO_TASK_H

#include <math.h>
#include <ev.h>
#include <lua.h>
#include <lauxlib.h>
#include "list.h"

#define TASK_MT "curio.Task"
#define TASK_GC_MT "curio.Task.gc"

struct kernel;
struct wait_kind; /* wait.h: a kind of wait is a value its wing defines */

enum task_state { TASK_READY, TASK_RUNNING, TASK_WAITING, TASK_DONE };
/* What a task's end hook (ext->on_event) is told. */
enum task_event { TASK_ENDED, TASK_JOINED };
enum task_wake { WAKE_OK, WAKE_CANCEL, WAKE_TIMEOUT };
enum task_pending { PEND_NONE, PEND_CANCEL, PEND_EXC };

/* The task userdata has one user value, the anchor: its function until it
 * first runs (a task spawned without arguments gets its coroutine only
 * then), then its coroutine (once done, with its results or, at index 1,
 * its error; nil once a task that returned nothing is done: t->co NULL);
 * or, once it has one, its ext userdata, which then holds that value. */
enum { TUV_ANCHOR = 1, TUV_COUNT = 1 };

/* User values of the ext userdata. */
enum {
  XUV_ANCHOR = 1, /* what TUV_ANCHOR would hold */
  XUV_FIELDS,     /* table of name and user fields */
  XUV_GROUP,      /* what the end hook's owner keeps alive (group.c: the group) */
  XUV_CARRY,      /* value carried by a waiting task (waitq:wait(carry)) */
  XUV_EXC,        /* pending cancellation object (task:cancel{exc=}) */
  XUV_COUNT = XUV_EXC
};

struct deadline {
  double deadline, prior; /* this block's deadline; effective one before */
};

/* What few tasks need, in a userdata of its own made on first use
 * (task_ext): a task that only runs, sleeps and waits never has one. */
struct task_ext {
  double timeout;                       /* effective deadline, while t->timed */
  struct deadline *deadlines;           /* timeout blocks (malloc) */
  int ndeadlines, cap_deadlines;
  struct list crash_node;               /* in its kernel's unreported crashes */
  struct task *crash_task;              /* the task this record belongs to */
  struct kernel *crash_kernel;          /* whose crashes list holds it, while linked */
  char *report;                         /* crash report (malloc; freed by __gc) */
  lua_State *active;                    /* when nested: see task_active */
  int nested;                           /* inside a curio.coroutine resume */
  /* The end hook: one owner (a task group) hears of the task's end and of
   * a join made on it, and keeps its record in hook_space (whose Lua
   * values go in XUV_GROUP). The scheduler knows nothing more of it. */
  void (*on_event)(lua_State *L, struct task *t, int tidx, int event);
  void *hook_space[6];
};

/* The task record, grouped by who may touch what (as uv.h's fields). It
 * is kept at 112 bytes, so that with its userdata header and one user value
 * a task costs 176 bytes of malloc beside its coroutine (checked below).
 * The effective deadline lives in the ext record, which every timeout
 * block makes anyway, behind the `timed` bit: that left room for the
 * kind of wait as a pointer. The last 16 bytes are what the monitor's ps
 * shows of every task (inspect.c): kept here rather than in the ext
 * record, which would then be made for every task that ever ran (a
 * second userdata each), or in a per-slot array of the kernel, which
 * would cost as much memory and a cache line more per switch. */
struct task {
  /* Read by every file. */
  struct kernel *k;        /* NULL once done or once the kernel is closed */
  lua_State *co;           /* the task's coroutine, or NULL (see TUV_ANCHOR) */
  struct task_ext *ext;    /* or NULL; then TUV_ANCHOR is the coroutine */
  lua_Integer id;
  /* The scheduler's (kernel.c, task.c, trap.c, timer.c). */
  int slot;                /* index in the kernel's live table, 0 once done */
  unsigned timer_slot;     /* index in the kernel's timer heap + 1, or 0 */
  union {
    int nargs;             /* while live: values pushed on co for the next resume */
    int nresults;          /* once done: results on co's stack */
  };
  unsigned char state;     /* enum task_state (a byte: set on every switch) */
  unsigned short wake : 2, pending : 2;
  unsigned short daemon : 1, cancelled : 1, failed : 1, no_cancel : 1;
  unsigned short retrieved : 1, reported : 1, is_cancel_error : 1, has_carry : 1;
  unsigned short timed : 1; /* ext->timeout is a deadline (else: none) */
  unsigned short notify : 1; /* its end goes to k->on_notify (the embedding API) */
  /* Its wait record (wait.c): its kind is `wait` (NULL: none), what it
   * waits in is wait_obj, and `node` links it there; `joiners` lists the
   * tasks waiting for it to end. */
  const struct wait_kind *wait;
  void *wait_obj;
  struct list node;
  struct list joiners;
  /* Introspection (inspect.c): the loop time (ev_now) at which it last
   * became ready or began to wait, read at no cost to the switch, and
   * how many times it has been resumed. */
  double since;
  lua_Integer cycles;
};

_Static_assert(sizeof(struct task) == 112, "struct task grew: a task costs 176 bytes of malloc");

/* The effective deadline of t (timeout blocks, trap.c), HUGE_VAL when none. */
static inline double task_deadline(const struct task *t) {
  return t->timed ? t->ext->timeout : HUGE_VAL;
}

/* The thread allowed to trap: the task's coroutine, the curio.coroutine
 * it is resuming (coro.c), or NULL where it cannot yield. */
static inline lua_State *task_active(const struct task *t) {
  return t->ext != NULL && t->ext->nested ? t->ext->active : t->co;
}

struct task_ext *task_ext(lua_State *L, struct task *t, int idx);
int task_get_xvalue(lua_State *L, struct task *t, int idx, int which);
void task_set_xvalue(lua_State *L, struct task *t, int idx, int which);
void task_push_error(lua_State *L, struct task *t);
void task_make_thread(lua_State *L, struct task *t);
void task_drop_thread(lua_State *L, struct task *t, int tidx);
int task_push_results(lua_State *L, struct task *t);
struct task *task_check(lua_State *L, int idx);
struct task *task_spawn(lua_State *L, struct kernel *k, int fn, int nargs);
void task_push(lua_State *L, struct task *t);
void task_finish(struct kernel *k, struct task *t, int status);
int task_cancel(struct task *t);
void task_report_crash(struct kernel *k, struct task *t);
void task_free_deadlines(struct task *t);
int task_index(lua_State *L);
extern const luaL_Reg task_methods[];
extern const luaL_Reg task_meta[];
extern const luaL_Reg task_gc_meta[];
extern const luaL_Reg task_functions[];

#endif
