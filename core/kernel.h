/* core/kernel.h: the kernel, the task record and the wait queue.
 *
 * A kernel is a set of watchers on a libev loop that it may or may not own.
 * Its ev_prepare watcher runs ready tasks; its ev_idle watcher, active only
 * while tasks are ready, keeps the loop from blocking. A task is a Lua
 * coroutine plus this C record (a full userdata). A blocking call is a trap:
 * it records in the task what it waits for and yields with lua_yieldk. */
#ifndef CURIO_KERNEL_H
#define CURIO_KERNEL_H

#include <stddef.h>
#include <ev.h>
#include <lua.h>
#include <lauxlib.h>

#define KERNEL_MT "curio.Kernel"
#define TASK_MT "curio.Task"
#define TASK_GC_MT "curio.Task.gc"
#define WAITQ_MT "curio.waitq"
#define FIFO_MT "curio.Queue"

struct task;
struct kernel;

/* Per-Lua-state context, upvalue 1 of every core function. `running` is
 * the kernel whose task is executing now (NULL outside tasks). */
enum { MT_TASK, MT_TASK_GC, MT_WAITQ, MT_KERNEL, MT_COUNT };

struct curio_ctx {
  struct kernel *running;
  const void *mt[MT_COUNT]; /* metatables, to check userdata by identity */
  int mt_ref[MT_COUNT];     /* their registry refs, held for the state's life */
};

/* FIFO of waiting tasks, linked through task->wq_prev/wq_next. The mailbox
 * (a Lua table in the userdata's user value) holds values posted while no
 * task waited; only userdata waitqs have one. */
struct waitq {
  struct task *head, *tail;
  lua_Integer count;
  lua_Integer mbox_head, mbox_tail; /* mailbox slots [head, tail) */
  int is_userdata;
};

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
  TUV_NOTIFY,     /* waitq posted this task when it terminates */
  TUV_REPORT,     /* crash report text */
  TUV_COUNT = TUV_REPORT
};

struct deadline {
  double deadline, prior; /* this block's deadline; effective one before */
};

struct task {
  struct kernel *k;        /* NULL once the kernel is closed */
  lua_State *co;           /* the task's coroutine */
  lua_State *active;       /* thread allowed to trap: co or a curio.coroutine */
  int ref;                 /* registry ref to the userdata while live */
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
  unsigned char has_notify, has_carry;
  struct waitq joiners;
  struct deadline *deadlines;
  int ndeadlines, cap_deadlines;
};

struct kernel {
  struct ev_loop *loop;
  int owns_loop;
  lua_State *L;            /* thread driving the loop now */
  struct curio_ctx *ctx;
  int ref;                 /* registry ref to the kernel userdata */
  ev_prepare prepare;
  ev_idle idle;
  ev_signal sigint;
  struct task **ready;
  size_t ready_head, ready_len, ready_cap;
  struct task *current;
  struct task *all_head, *all_tail;
  struct task *crash_head;
  struct task *main;
  lua_Integer next_id;
  size_t ntasks;
  int closed, driving, interrupted, main_done, use_sigint;
  int debug;               /* -1 default, 0 never, 1 every crash at once */
  int threads, processes;  /* pool sizes, for the worker capabilities */
};

/* kernel.c */
double kernel_clock(void);
struct curio_ctx *kernel_ctx(lua_State *L);
void *ctx_testudata(lua_State *L, int idx, int type);
void *ctx_checkudata(lua_State *L, int idx, int type, const char *tname);
void ctx_setmetatable(lua_State *L, struct curio_ctx *ctx, int type);
void ctx_register(lua_State *L, int ctx, int type); /* module.c */
void kernel_schedule(struct kernel *k, struct task *t);
int kernel_drive(lua_State *L, struct kernel *k, int (*done)(struct kernel *));
extern const luaL_Reg kernel_methods[];
extern const luaL_Reg kernel_functions[];

/* task.c */
struct task *task_check(lua_State *L, int idx);
struct task *task_spawn(lua_State *L, struct kernel *k, int fn, int nargs);
void task_push(lua_State *L, struct task *t);
void task_finish(struct kernel *k, struct task *t, int status, int nres);
void task_retrieve(struct task *t);
void task_report_crash(struct task *t);
int task_index(lua_State *L);
int task_interrupt(struct task *t, int reason, double clock);
extern const luaL_Reg task_methods[];
extern const luaL_Reg task_meta[];
extern const luaL_Reg task_gc_meta[];
extern const luaL_Reg task_functions[];

/* trap.c */
struct task *trap_enter(lua_State *L, const char *fname);
struct task *trap_current(lua_State *L, const char *fname);
int trap_suspend(lua_State *L, struct task *t, int wait, lua_KFunction k);
int trap_result(lua_State *L, struct task *t, int base);
void trap_wake(struct task *t, int reason);
void trap_raise_pending(lua_State *L, struct task *t);
void trap_push_sentinel(lua_State *L);
void trap_init_watchers(struct task *t);
int trap_is_sentinel(lua_State *L, int idx);
extern const luaL_Reg trap_functions[];

/* waitq.c */
void waitq_init(struct waitq *q);
void waitq_append(struct waitq *q, struct task *t);
void waitq_unlink(struct task *t);
struct task *waitq_pop(struct waitq *q);
void waitq_post(lua_State *L, struct waitq *q, int qidx, int vidx);
void waitq_detach_all(struct waitq *q);
void waitq_hand_over(lua_State *L, struct task *t, int vidx);
void waitq_enqueue(lua_State *L, struct waitq *q, struct task *t, int carry_idx);
void waitq_push_carry(lua_State *L, struct task *t);
int waitq_wait_k(lua_State *L, int status, lua_KContext ctx);
extern const luaL_Reg waitq_methods[];
extern const luaL_Reg waitq_functions[];

/* queue.c */
void queue_open(lua_State *L, int ctx);

/* coro.c */
extern const luaL_Reg coro_functions[];

/* errors.c */
void errors_push(lua_State *L, const char *cls, const char *msg);
int errors_raise(lua_State *L, const char *cls, const char *fmt, ...);
int errors_is_cancel(lua_State *L, int idx);
int errors_argerror(lua_State *L, int arg, const char *fname, const char *msg);
int errors_typeerror(lua_State *L, int arg, const char *fname, const char *tname);
void errors_checkfunction(lua_State *L, int arg, const char *fname);
lua_Number errors_checknumber(lua_State *L, int arg, const char *fname);
lua_Number errors_checkseconds(lua_State *L, int arg, const char *fname);
extern const luaL_Reg errors_functions[];

#endif
