/* core/process.c: child processes: spawning them and their exit, the one
 * thing every wait on a child waits for (curio.subprocess's machinery and
 * run_in_process's workers; the policies are lua/curio/subprocess.lua and
 * lua/curio/workers.lua; the worker's own side is core/worker.c).
 *
 * Rules (1 and 2, of the spawn itself, are in spawn.c):
 * 3. An exit is one event per child, learnt by the kernel the child was
 *    spawned in (or first waited for in): a pidfd (pidfd_open, Linux 5.3+)
 *    watched by an ev_io, which works on any kernel's loop (libev's
 *    ev_child only on its default loop), never polls, and never reaps a
 *    child that is not ours (waitid(P_PIDFD) takes exactly that child).
 *    Where pidfd_open is missing (Linux before 5.3, valgrind, some
 *    sandboxes; CURIO_NO_PIDFD=1 forces it) a child is "polled": while a
 *    task waits, a timer looks with waitid(P_PID, WNOHANG) after pauses
 *    from 1 ms doubling to 50 ms; its pid, not reaped yet, cannot have been
 *    reused. Signals go through the pidfd (pidfd_send_signal) or, polled,
 *    that pid.
 * 4. The exit is handled in one place (exited): the child is reaped, its
 *    return code kept, its pidfd closed, and every task waiting for it
 *    woken at once (any number of tasks may wait for one child). The
 *    watchers never keep the loop alive; a waiting task does (so that the
 *    kernel's deadlock check stays right).
 * 5. A Process object reaps its child once: on its exit, poll, or its
 *    __gc. One collected while its child runs hands the pidfd to its Lua
 *    state's list of orphans (orphan.c), reaped when they are seen to have
 *    exited: at every spawn and when a kernel closes. A child that no
 *    kernel watches (spawned outside any task, or left running by a
 *    closed kernel) is reaped at those times too (as Python's subprocess
 *    does at each new Popen), or by its first wait in a task, which makes
 *    that task's kernel watch it. No zombie is left behind.
 *    A worker process (opts worker) gets a process group of its own: a
 *    Ctrl-C at the terminal reaches the kernel (which cancels the call and
 *    kills the worker), not the worker in the middle of a call.
 * 6. A kernel lists the children it watches (a kernel hook). When it
 *    closes it reaps those that exited, kills and reaps its worker
 *    processes and those it sent SIGKILL (a task cancelled in wait or
 *    communicate), and leaves the others running, unwatched: their Process
 *    objects reap them later (rule 5). The hook also anchors the kernel's
 *    pool of workers (workers.lua): at the close it calls the pool's close
 *    (the idle workers' pipes are closed) and releases it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <lauxlib.h>
#include "process.h"
#include "list.h"
#include "kernel.h"
#include "trap.h"
#include "task.h"
#include "waitq.h"
#include "wait.h"
#include "ctx.h"
#include "errors.h"
#include "worker.h"
#include "pipe.h"
#include "orphan.h"
#include "io.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define PROCESS_MT "curio.Process"
#define POLL_FIRST 0.001      /* rule 3's pauses, seconds */
#define POLL_LAST 0.05

struct process {
  struct io_handle io; /* first (io.c's one handle and close): the pidfd, -1
                        * polled or once reaped; io.rd watches the exit */
  pid_t pid;
  int reaped;
  int returncode;      /* valid once reaped: the exit status or -signal */
  int kill_on_close;   /* a worker: killed and reaped when its kernel closes */
  int killed;          /* sent SIGKILL: reaped (blocking, briefly) at the close */
  int polled;          /* no pidfd: the timer polls while someone waits */
  int held;            /* the loop is kept alive for the waiters (rule 4) */
  struct kernel *k;    /* the kernel watching it (rule 3), or NULL */
  lua_State *main;     /* the state's main thread, while k watches */
  int ref;             /* the registry anchors the Process while k watches */
  ev_timer poll;       /* polled: the next look */
  struct waitq waiters;
  struct list node;    /* in k's hook while k watches it (rule 6) */
};

/* Rule 6: a kernel's children and its pool of workers. */
struct proc_hook {
  struct kernel_hook hook;
  struct list procs;
  int pool_ref;        /* workers.lua's pool table of this kernel, or LUA_NOREF */
};

/* waitid on p's child, through its pidfd or, polled, its pid (still ours:
 * not reaped, so not reused). */
static int child_waitid(const struct process *p, siginfo_t *si, int options) {
  int rc;
  do {
    rc = p->polled ? waitid(P_PID, (id_t)p->pid, si, options)
                   : waitid(P_PIDFD, (id_t)p->io.fd, si, options);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

static int child_signal(const struct process *p, int sig) {
  return p->polled ? kill(p->pid, sig) : (int)syscall(SYS_pidfd_send_signal, p->io.fd, sig, NULL, 0);
}

/* ---- children no kernel watches (rule 5) ---- */

/* A state's running children that no kernel watches (spawned outside any
 * task, or left running by a closed kernel), linked through their node: a
 * context slot, made by the first spawn. */
struct unwatched {
  struct list procs;
  int closed;  /* its __gc ran (the state is closing) */
};

static const char unwatched_key = 'U';

static int unwatched_gc(lua_State *L) {
  struct unwatched *u = lua_touserdata(L, 1);
  while (!list_empty(&u->procs)) list_remove(u->procs.next);
  u->closed = 1;
  return 0;
}

static struct unwatched *unwatched_make(lua_State *L, struct curio_ctx *ctx) {
  struct unwatched *u = ctx_slot_find(ctx, &unwatched_key);
  if (u != NULL) return u;
  u = ctx_slot_make(L, ctx, &unwatched_key, sizeof *u, unwatched_gc);
  list_init(&u->procs);
  return u;
}

static int try_reap(struct process *p);

/* Reaps those that have exited (as Python's subprocess does at each new
 * Popen): their Process objects keep the return code. */
static void unwatched_reap(struct unwatched *u) {
  if (u == NULL) return;
  for (struct list *n = u->procs.next, *next; n != &u->procs; n = next) {
    next = n->next;
    try_reap(LIST_ENTRY(n, struct process, node));
  }
}

/* ---- watching and the exit (rules 3, 4) ---- */

/* Keeps p's kernel's loop alive while tasks wait for p, and only then
 * (rule 4): called wherever the number of waiters may have changed. */
static void hold_sync(struct process *p) {
  int want = p->k != NULL && p->waiters.count > 0;
  if (want == p->held) return;
  if (want) ev_ref(p->k->loop);
  else ev_unref(p->k->loop);
  p->held = want;
}

/* Stops p's watchers, lets the loop go, and takes p off its kernel's list
 * (no kernel watches it after). */
static void unwatch(struct process *p) {
  if (p->k == NULL) return;
  struct ev_loop *loop = p->k->loop;
  struct unwatched *u = ctx_slot_find(p->k->ctx, &unwatched_key);
  if (ev_is_active(&p->io.rd)) { ev_ref(loop); ev_io_stop(loop, &p->io.rd); } /* (rule 4's unref) */
  if (ev_is_active(&p->poll)) { ev_ref(loop); ev_timer_stop(loop, &p->poll); }
  if (p->held) { ev_unref(loop); p->held = 0; }
  list_remove(&p->node);
  p->k = NULL;
  luaL_unref(p->main, LUA_REGISTRYINDEX, p->ref);
  p->ref = LUA_NOREF;
  if (!p->reaped && u != NULL && !u->closed) list_insert_tail(&u->procs, &p->node); /* rule 5 */
}

/* Rule 4: p's child has exited (or was lost: ECHILD) with status si; the
 * one place an exit is taken. Wakes every waiter. */
static void exited(struct process *p, const siginfo_t *si) {
  p->reaped = 1;
  if (si == NULL) p->returncode = 255; /* (someone else reaped it: reported as lost) */
  else p->returncode = si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
  unwatch(p);
  list_remove(&p->node); /* (from the unwatched, rule 5) */
  io_close(&p->io);
  for (struct task *t; (t = waitq_first(&p->waiters)) != NULL;) trap_wake(t, WAKE_OK);
}

/* Reaps the child if it has exited (never blocks). Returns 1 once reaped. */
static int try_reap(struct process *p) {
  if (p->reaped) return 1;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (child_waitid(p, &si, WEXITED | WNOHANG) < 0) exited(p, NULL);
  else if (si.si_pid != 0) exited(p, &si);
  return p->reaped;
}

static void watch_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop; (void)revents;
  try_reap((struct process *)((char *)w - offsetof(struct process, io.rd)));
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  if (try_reap(w->data)) return;
  w->repeat = w->repeat * 2 < POLL_LAST ? w->repeat * 2 : POLL_LAST;
  ev_timer_again(loop, w); /* (active and repeating: no stop and start) */
}

/* Rule 6: calls the pool's close(pool) (workers.lua: closes its idle
 * workers' pipes) and lets the pool go. */
static void pool_close(lua_State *L, int ref) {
  if (ref == LUA_NOREF || !lua_checkstack(L, 3)) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  if (lua_getfield(L, -1, "close") == LUA_TFUNCTION) {
    lua_pushvalue(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* (then they close when collected) */
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
}

static void hook_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct proc_hook *h = (struct proc_hook *)hook;
  pool_close(L, h->pool_ref);
  orphans_reap(orphans_of(k->ctx));
  unwatched_reap(ctx_slot_find(k->ctx, &unwatched_key));
  while (!list_empty(&h->procs)) {
    struct process *p = LIST_ENTRY(h->procs.next, struct process, node);
    unwatch(p);
    if (try_reap(p) || !(p->kill_on_close || p->killed)) continue;
    child_signal(p, SIGKILL);
    siginfo_t si; /* (WNOWAIT: try_reap takes the status) */
    child_waitid(p, &si, WEXITED | WNOWAIT);
    try_reap(p);
  }
  free(h);
}

/* The running kernel k's hook, made on first use (raises when out of memory). */
static struct proc_hook *hook_of(lua_State *L, struct kernel *k) {
  struct proc_hook *h = (struct proc_hook *)kernel_find_hook(k, hook_close);
  if (h != NULL) return h;
  h = malloc(sizeof *h);
  if (h == NULL) luaL_error(L, "not enough memory");
  h->hook.close = hook_close;
  h->pool_ref = LUA_NOREF;
  list_init(&h->procs);
  kernel_add_hook(k, &h->hook);
  return h;
}

/* Rule 3: the running kernel k watches p (the Process at idx) from now on,
 * and anchors it meanwhile: a child nobody holds is still reaped at its exit. */
static void watch(lua_State *L, struct process *p, int idx, struct kernel *k) {
  struct proc_hook *h = hook_of(L, k);
  lua_pushvalue(L, idx);
  p->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  p->main = lua_tothread(L, -1);
  lua_pop(L, 1);
  p->k = k;
  list_remove(&p->node); /* (from the unwatched, rule 5) */
  list_insert_tail(&h->procs, &p->node);
  if (!p->polled) {
    ev_io_start(k->loop, &p->io.rd);
    ev_unref(k->loop); /* rule 4 */
  }
}

static struct process *check_process(lua_State *L, const char *fname) {
  struct process *p = luaL_testudata(L, 1, PROCESS_MT);
  if (p == NULL) errors_methodtypeerror(L, 1, fname, "Process");
  return p;
}

/* process:poll() -> returncode | nil */
static int process_poll(lua_State *L) {
  struct process *p = check_process(L, "poll");
  if (!try_reap(p)) return 0;
  lua_pushinteger(L, p->returncode);
  return 1;
}

static int wait_k(lua_State *L, int status, lua_KContext ctx);

/* A task in Process.wait, as the monitor names it (wait.h). */
static const struct wait_kind wait_kind_process = {"Process.wait", waitq_unlink};

/* The Process is at index 1. */
static int do_wait(lua_State *L, struct process *p) {
  if (try_reap(p)) {
    lua_pushinteger(L, p->returncode);
    return 1;
  }
  struct task *t = trap_enter(L, "wait");
  if (p->k != t->k) { /* spawned outside, or in another kernel: ours now */
    if (p->waiters.count > 0)
      errors_raise(L, "ResourceBusy", "wait: tasks of another kernel wait for this process");
    unwatch(p);
    watch(L, p, 1, t->k);
  }
  if (p->polled && !ev_is_active(&p->poll)) {
    ev_timer_set(&p->poll, POLL_FIRST, POLL_FIRST);
    ev_timer_start(p->k->loop, &p->poll);
    ev_unref(p->k->loop); /* rule 4 */
  }
  waitq_append(&p->waiters, t);
  hold_sync(p);
  return trap_suspend(L, t, &wait_kind_process, wait_k);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  struct process *p = lua_touserdata(L, 1);
  (void)status;
  hold_sync(p);
  trap_result(L, t, (int)ctx);
  lua_settop(L, 1);
  return do_wait(L, p);
}

/* process:wait() -> returncode, waiting in the loop (rules 3, 4). */
static int process_wait(lua_State *L) {
  struct process *p = check_process(L, "wait");
  trap_current(L, "wait");
  lua_settop(L, 1);
  return do_wait(L, p);
}

/* process:send_signal(sig): the one check of the number (Popen:send_signal
 * passes it on); nothing once the child is reaped. */
static int process_send_signal(lua_State *L) {
  struct process *p = check_process(L, "send_signal");
  int isint;
  lua_Integer sig = lua_tointegerx(L, 2, &isint);
  if (!isint || lua_type(L, 2) != LUA_TNUMBER) errors_methoderror(L, 2, "send_signal", "signal number expected");
  if (sig < 1 || sig > SIGRTMAX) errors_methoderror(L, 2, "send_signal", "signal number out of range");
  if (p->reaped) return 0;
  if (sig == SIGKILL) p->killed = 1;
  if (child_signal(p, (int)sig) < 0 && errno != ESRCH)
    errors_raise_os(L, "send_signal", errno);
  return 0;
}

static int process_index(lua_State *L) {
  struct process *p = check_process(L, "index");
  const char *key = lua_tostring(L, 2);
  if (key != NULL && strcmp(key, "pid") == 0) {
    lua_pushinteger(L, p->pid);
    return 1;
  }
  if (key != NULL && strcmp(key, "returncode") == 0) {
    if (try_reap(p)) lua_pushinteger(L, p->returncode);
    else lua_pushnil(L);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* __gc: rule 5. (No task waits: a waiter holds the Process on its stack.) */
static int process_gc(lua_State *L) {
  struct process *p = lua_touserdata(L, 1);
  waitq_detach_all(&p->waiters);
  unwatch(p);
  list_remove(&p->node); /* (from the unwatched) */
  if (try_reap(p)) return 0;
  p->reaped = 1; /* (the orphan list has it now) */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_registry_key); /* (no upvalue in __gc) */
  struct curio_ctx *ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (ctx != NULL) orphans_add(ctx, &p->io, p->pid); /* (takes the handle) */
  else io_close(&p->io); /* (no context: the state is gone) */
  return 0;
}

/* ---- spawning (spawn.c) ---- */

/* Pushes a Process with no child yet (worker: rule 5's process group and
 * rule 6's kill at close, which spawn.c asks for), after reaping what has
 * exited of the orphans and the unwatched (rule 5). */
struct process *process_push(lua_State *L, int worker) {
  orphans_reap(orphans_make(L, ctx_get(L)));
  unwatched_reap(unwatched_make(L, ctx_get(L)));
  struct process *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  p->pid = -1;
  p->ref = LUA_NOREF;
  p->reaped = 1; /* (until there is a child) */
  p->kill_on_close = worker;
  io_handle_init(&p->io, -1);
  ev_set_cb(&p->io.rd, watch_cb); /* (io.rd.data stays NULL: no task waits in it) */
  ev_timer_init(&p->poll, poll_cb, POLL_FIRST, POLL_FIRST);
  p->poll.data = p;
  waitq_init(&p->waiters);
  list_init(&p->node);
  luaL_setmetatable(L, PROCESS_MT);
  return p;
}

/* The Process p, on top of the stack, has its child `pid`: its pidfd is
 * opened (rule 3), and the running kernel watches it (or none, rule 5). */
void process_started(lua_State *L, struct process *p, pid_t pid) {
  p->pid = pid;
  p->reaped = 0;
  /* (CURIO_NO_PIDFD: the fallback on demand, for its specs) */
  int pidfd = getenv("CURIO_NO_PIDFD") != NULL ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd >= 0) { /* (close-on-exec from birth: pidfd_open(2)) */
    io_handle_setfd(&p->io, pidfd);
  } else { /* Linux before 5.3, valgrind, some sandboxes: rule 3's fallback */
    p->polled = 1;
  }
  struct kernel *k = ctx_get(L)->running;
  if (k != NULL) watch(L, p, -1, k);
  else list_insert_tail(&((struct unwatched *)ctx_slot_find(ctx_get(L), &unwatched_key))->procs, &p->node);
}

/* core.kernel_pool() -> the running kernel's pool table (workers.lua's:
 * made here on first use, anchored by the kernel until it closes, rule 6)
 * and, when it was just made, Kernel{processes=} (the pool's size: read
 * once, not on every call). */
static int l_kernel_pool(lua_State *L) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL) return 0;
  struct proc_hook *h = hook_of(L, k);
  if (h->pool_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->pool_ref);
    return 1;
  }
  lua_newtable(L);
  lua_pushvalue(L, -1);
  h->pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  long ncpu = 1;
#ifdef _SC_NPROCESSORS_ONLN
  ncpu = sysconf(_SC_NPROCESSORS_ONLN);
#endif
  lua_pushinteger(L, kernel_option(L, k, "processes", ncpu > 0 && ncpu < 4096 ? (int)ncpu : 1));
  return 2;
}

static const luaL_Reg process_methods[] = {
  {"wait", process_wait},
  {"poll", process_poll},
  {"send_signal", process_send_signal},
  {NULL, NULL}
};

static const luaL_Reg process_functions[] = {
  {"kernel_pool", l_kernel_pool},
  {NULL, NULL}
};

void process_open(lua_State *L, int ctx) {
  luaL_newmetatable(L, PROCESS_MT);
  lua_newtable(L);
  ctx_functions(L, process_methods, ctx);
  lua_setfield(L, -2, "methods");
  lua_pushvalue(L, ctx);
  lua_pushcclosure(L, process_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, process_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  ctx_functions(L, process_functions, ctx);
  ctx_functions(L, spawn_functions, ctx); /* (the wing's other files) */
  ctx_functions(L, worker_functions, ctx);
  ctx_functions(L, pipe_functions, ctx);
}
