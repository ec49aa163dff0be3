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

/* Task user values (lua_newuserdatauv). */
enum {
  TUV_THREAD = 1, /* the coroutine; once done, its error at stack index 1 */
  TUV_EXT,        /* the task's ext userdata (struct task_ext), made lazily */
  TUV_COUNT = TUV_EXT
};

/* User values of the ext userdata. */
enum {
  XUV_FIELDS = 1, /* table of name and user fields */
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
};

/* The task record, grouped by who may touch what (as uv.h's fields). */
struct task {
  /* Read by every file. */
  struct kernel *k;        /* NULL once done or once the kernel is closed */
  lua_State *co;           /* the task's coroutine */
  lua_State *active;       /* thread allowed to trap: co, a curio.coroutine, NULL */
  struct task_ext *ext;    /* or NULL (TUV_EXT holds it) */
  lua_Integer id;
  unsigned char state;     /* enum task_state */
  unsigned char daemon, cancelled, failed;
  /* The scheduler's (kernel.c, task.c, trap.c, timer.c). */
  unsigned char wait, wake, pending, no_cancel;
  unsigned char retrieved, reported, is_cancel_error, has_carry;
  int slot;                /* index in the kernel's live table, 0 once done */
  unsigned timer_slot;     /* index in the kernel's timer heap + 1, or 0 */
  int nargs;               /* values pushed on co for the next resume */
  int nresults;            /* results on co's stack once done */
  double timeout;          /* effective deadline, HUGE_VAL when none */
  double clock;            /* sleep's deadline; after a wake, the clock then */
  /* The wait queue this task waits in, and its own joiners (waitq.c). */
  struct waitq *wq;
  struct task *wq_prev, *wq_next;
  struct waitq joiners;
};

struct task_ext *task_ext(lua_State *L, struct task *t, int idx);
int task_get_xvalue(lua_State *L, struct task *t, int idx, int which);
void task_set_xvalue(lua_State *L, struct task *t, int idx, int which);
void task_push_error(lua_State *L, struct task *t);
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
