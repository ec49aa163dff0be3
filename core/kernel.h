/* core/kernel.h: the kernel.
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
#include "timer.h"
#include "ctx.h"
#include "list.h"

#define KERNEL_MT "curio.Kernel"

struct task;
struct kernel;

/* A feature's hook on its kernel (a thread pool, say): the scheduler knows
 * only this. `close` runs when the kernel is freed, after its tasks were
 * abandoned and before its loop goes; the last hook added closes first. */
struct kernel_hook {
  struct list node;
  void (*close)(lua_State *L, struct kernel *k, struct kernel_hook *hook);
};

/* Work done before each poll (a socket's gathered writes, sockout.c):
 * run(k, f, 0) after the ready tasks ran, and once more with closing = 1
 * as the kernel is freed, which must unlink f. run may unlink f, never
 * another node. */
struct kernel_flush {
  struct list node;
  void (*run)(struct kernel *k, struct kernel_flush *f, int closing);
};

/* A Kernel{} option that a feature reads when it needs it (kernel_option):
 * a whole number from 1 to max. module.c registers the features' options
 * (kernel_set_options); Kernel{} checks those given and keeps them. */
struct kernel_option {
  const char *name;
  int max;
};

/* The scheduler's own Kernel{} options (kernel_check_options). */
struct kernel_config {
  double shutdown_timeout;
  int debug;               /* -1 default, 0 never, 1 every crash at once */
  int use_sigint;
  double longblock;        /* debug.longblock (inspect.c), 0: off */
};

struct kernel {
  struct ev_loop *loop;
  int owns_loop;
  lua_State *L;            /* thread driving the loop now */
  struct curio_ctx *ctx;
  int live_ref;            /* registry ref to the table anchoring live tasks */
  int free_slot;           /* first free index of that table (task.c), or 0 */
  int next_slot;           /* highest index used so far */
  ev_prepare prepare;
  ev_idle idle;
  ev_check check;          /* notes `now` after each poll (inspect.c rule 1) */
  double now;              /* ev_now(loop), kept by `check`: tasks' `since` */
  ev_signal sigint;
  struct timer_heap timers; /* every task's deadline, one ev_timer (timer.c) */
  ev_timer grace;          /* shutdown_timeout: the cleanup's grace period */
  int (*drive_done)(struct kernel *); /* kernel_drive's goal, for prepare */
  struct task **ready;
  size_t ready_head, ready_len, ready_cap;
  struct task *current;
  struct list crashes;     /* tasks whose crash nobody retrieved (task_ext) */
  struct list hooks;       /* struct kernel_hook, in the order added */
  struct list flushes;     /* struct kernel_flush, run before each poll */
  struct task *main;
  lua_Integer next_id;
  size_t ntasks;
  int closed, driving, interrupted, main_done, use_sigint;
  int shutting_down;       /* in kernel_shutdown (shutdown.c) */
  struct task *awaited;    /* the task whose end shutdown waits for, or NULL */
  lua_Integer shutdown_seen; /* the newest task id a shutdown round took */
  int grace_over;          /* the grace period ended (timer or SIGINT) */
  double shutdown_timeout; /* seconds a cancelled task gets for its cleanup */
  int debug;               /* -1 default, 0 never, 1 every crash at once */
  double longblock;        /* report steps longer than this (inspect.c), 0: off */
  int longblock_clock;     /* the clockid_t it reads */
  int options_ref;         /* registry ref to the checked feature options, or LUA_NOREF */
  /* Where reports go (a task crash nobody retrieved, a task abandoned at
   * shutdown): report(report_ud, text), or stderr when NULL. Set by the
   * embedding API (host.c); must not raise. */
  void (*report)(void *ud, const char *text);
  void *report_ud;
  /* Told of the end of each task whose `notify` bit is set, after
   * task_finish (the task at tidx of L, done); must not raise. */
  void (*on_notify)(lua_State *L, struct kernel *k, struct task *t, int tidx);
  const char *abandon_why; /* how report_stuck words an abandoned task (shutdown.c) */
};

/* Runs every kernel_flush (see the struct). */
static inline void kernel_run_flushes(struct kernel *k, int closing) {
  struct list *node = k->flushes.next;
  while (node != &k->flushes) {
    struct list *next = node->next;
    struct kernel_flush *f = LIST_ENTRY(node, struct kernel_flush, node);
    f->run(k, f, closing);
    node = next;
  }
}

double kernel_clock(void);
void kernel_schedule(struct kernel *k, struct task *t);
struct task *kernel_task_on(lua_State *L, struct kernel *k, lua_State *co);
int kernel_drive(lua_State *L, struct kernel *k, int (*done)(struct kernel *));
void kernel_each_task(lua_State *L, struct kernel *k,
                      void (*fn)(lua_State *, struct kernel *, struct task *));
void kernel_free(struct kernel *k, lua_State *L);
struct kernel *kernel_create(lua_State *L, int ctx_idx, struct ev_loop *loop, int owns_loop);
void kernel_add_hook(struct kernel *k, struct kernel_hook *hook);
struct kernel_hook *kernel_find_hook(struct kernel *k,
                                     void (*close)(lua_State *, struct kernel *, struct kernel_hook *));
void kernel_set_options(lua_State *L, struct curio_ctx *ctx, const struct kernel_option *opts);
void kernel_check_options(lua_State *L, int idx, const char *fname, struct kernel_config *cfg);
void kernel_configure(struct kernel *k, const struct kernel_config *cfg, int options_ref);
void kernel_report(struct kernel *k, const char *text);
int kernel_option(lua_State *L, struct kernel *k, const char *name, int def);
extern const luaL_Reg kernel_methods[];
extern const luaL_Reg kernel_functions[];

#endif
