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
  TUV_THREAD = 1, /* the coroutine */
  TUV_CARRY,      /* value carried by a waiting task (waitq:wait(carry)) */
  TUV_ERROR,      /* pending cancellation object, then the task's error */
  TUV_FIELDS,     /* table of name and user fields, made lazily */
  TUV_GROUP,      /* the group (core/group.c) the task belongs to */
  TUV_COUNT = TUV_GROUP
};

struct deadline {
  double deadline, prior; /* this block's deadline; effective one before */
};

struct task {
  struct kernel *k;        /* NULL once the kernel is closed */
  lua_State *co;           /* the task's coroutine */
  lua_State *active;       /* thread allowed to trap: co or a curio.coroutine */
  int slot;                /* index in the kernel's live table, 0 once done */
  lua_Integer id;
  unsigned char state, wait, wake, pending;
  unsigned char daemon, cancelled, failed, retrieved, reported, is_cancel_error;
  int no_cancel;           /* nonzero inside disable_cancellation */
  int nargs;               /* values pushed on co for the next resume */
  int nresults;            /* results on co's stack once done */
  double timeout;          /* effective deadline, HUGE_VAL when none */
  double sleep_until;
  double wake_clock;       /* clock at wake-up (sleep result, timeout) */
  ev_timer timer;
  ev_io io;
  struct waitq *wq;        /* queue this task waits in */
  struct task *wq_prev, *wq_next;
  struct task *all_prev, *all_next;     /* kernel's live tasks */
  struct task *crash_prev, *crash_next; /* kernel's unreported crashes */
  struct kernel *crash_k;  /* kernel whose crash list holds us, or NULL */
  char *report;            /* crash report text (malloc), or NULL */
  unsigned char has_carry;
  unsigned char gstate, gqueued;  /* group state and done-list membership */
  unsigned gmark;                 /* group.c's members() pass */
  lua_Integer gslot;              /* index in the group's member list */
  struct group *group;            /* group we belong to (TUV_GROUP holds it) */
  struct task *gnext, *gprev;     /* the group's done list */
  struct waitq joiners;
  struct deadline *deadlines;
  int ndeadlines, cap_deadlines;
};

struct task *task_check(lua_State *L, int idx);
struct task *task_spawn(lua_State *L, struct kernel *k, int fn, int nargs);
void task_push(lua_State *L, struct task *t);
void task_finish(struct kernel *k, struct task *t, int status);
void task_retrieve(struct task *t);
int task_cancel(struct task *t);
void task_unanchor(lua_State *L, struct kernel *k, struct task *t);
void task_report_crash(struct task *t);
int task_index(lua_State *L);
extern const luaL_Reg task_methods[];
extern const luaL_Reg task_meta[];
extern const luaL_Reg task_gc_meta[];
extern const luaL_Reg task_functions[];

#endif
