/* core/task.h: the task record: a Lua coroutine plus this C struct, a full
 * userdata whose user values are listed below. */
#ifndef CURIO_TASK_H
#define CURIO_TASK_H

#include <ev.h>
#include <lua.h>
#include <lauxlib.h>
#include "waitq.h"

#define TASK_MT "curio.Task"
#define TASK_GC_MT "curio.Task.gc"

struct kernel;
struct group;

enum task_state { TASK_READY, TASK_RUNNING, TASK_WAITING, TASK_DONE };
enum task_wait { WAIT_NONE, WAIT_YIELD, WAIT_SLEEP, WAIT_QUEUE, WAIT_IO };
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
  XUV_GROUP,      /* the group (core/group.c) the task belongs to */
  XUV_CARRY,      /* value carried by a waiting task (waitq:wait(carry)) */
  XUV_EXC,        /* pending cancellation object (task:cancel{exc=}) */
  XUV_COUNT = XUV_EXC
};

struct deadline {
  double deadline, prior; /* this block's deadline; effective one before */
};

/* A task's membership of a task group (group.c's, rules there). */
struct task_member {
  struct group *group;     /* NULL: in no group (XUV_GROUP holds it) */
  struct task *next, *prev; /* the group's done list */
  lua_Integer slot;        /* index in the group's member list */
  unsigned mark;           /* group.c's members() pass */
  unsigned char state, queued;
};

/* What few tasks need, in a userdata of its own made on first use
 * (task_ext): a task that only runs, sleeps and waits never has one. */
struct task_ext {
  struct deadline *deadlines;           /* timeout blocks (malloc) */
  int ndeadlines, cap_deadlines;
  ev_io io;                             /* core.wait_fd */
  struct task *crash_prev, *crash_next; /* kernel's unreported crashes */
  struct kernel *crash_k;               /* kernel whose crash list holds us */
  char *report;                         /* crash report (malloc; freed by __gc) */
  struct task_member member;
  lua_State *active;                    /* when nested: see task_active */
  int nested;                           /* inside a curio.coroutine resume */
};

/* The task record, grouped by who may touch what (as uv.h's fields). It
 * is kept at 96 bytes, so that with its userdata header and one user value
 * a task costs 160 bytes of malloc beside its coroutine. */
struct task {
  /* Read by every file. */
  struct kernel *k;        /* NULL once done or once the kernel is closed */
  lua_State *co;           /* the task's coroutine, or NULL (see TUV_ANCHOR) */
  struct task_ext *ext;    /* or NULL; then TUV_ANCHOR is the coroutine */
  lua_Integer id;
  /* The scheduler's (kernel.c, task.c, trap.c, timer.c). */
  double timeout;          /* effective deadline, HUGE_VAL when none */
  int slot;                /* index in the kernel's live table, 0 once done */
  unsigned timer_slot;     /* index in the kernel's timer heap + 1, or 0 */
  union {
    int nargs;             /* while live: values pushed on co for the next resume */
    int nresults;          /* once done: results on co's stack */
  };
  unsigned state : 2;      /* enum task_state */
  unsigned wait : 3, wake : 2, pending : 2;
  unsigned daemon : 1, cancelled : 1, failed : 1, no_cancel : 1;
  unsigned retrieved : 1, reported : 1, is_cancel_error : 1, has_carry : 1;
  /* The wait queue this task waits in, and its own joiners (waitq.c). */
  struct waitq *wq;
  struct task *wq_prev, *wq_next;
  struct waitq joiners;
};

/* The thread allowed to trap: the task's coroutine, the curio.coroutine
 * it is resuming (coro.c), or NULL where it cannot yield. */
static inline lua_State *task_active(const struct task *t) {
  return t->ext != NULL && t->ext->nested ? t->ext->active : t->co;
}

struct task_ext *task_ext(lua_State *L, struct task *t, int idx);
int task_get_xvalue(lua_State *L, struct task *t, int idx, int which);
void task_set_xvalue(lua_State *L, struct task *t, int idx, int which);
void task_push_error(lua_State *L, struct task *t);
lua_State *task_start(lua_State *L, struct task *t);
int task_push_results(lua_State *L, struct task *t);
struct group *task_group(const struct task *t);
struct task *task_check(lua_State *L, int idx);
struct task *task_spawn(lua_State *L, struct kernel *k, int fn, int nargs);
void task_push(lua_State *L, struct task *t);
void task_finish(struct kernel *k, struct task *t, int status);
void task_retrieve(struct task *t);
int task_cancel(struct task *t);
void task_unanchor(lua_State *L, struct kernel *k, struct task *t);
void task_report_crash(struct task *t);
void task_free_deadlines(struct task *t);
int task_index(lua_State *L);
extern const luaL_Reg task_methods[];
extern const luaL_Reg task_meta[];
extern const luaL_Reg task_gc_meta[];
extern const luaL_Reg task_functions[];

#endif
