/* core/process.c: child processes: spawning them and learning of their
 * exit through the loop (curio.subprocess's machinery; the policy is
 * lua/curio/subprocess.lua).
 *
 * Rules:
 * 1. Children are started with posix_spawn (glibc: clone with CLONE_VM |
 *    CLONE_VFORK, then exec), never fork: safe while worker threads run,
 *    and cheap however big the parent is. Signal dispositions and the mask
 *    are reset to defaults in the child. Every descriptor curio opens is
 *    close-on-exec, and the spawn closes every other one above 2 too (those
 *    the process inherited), so a child gets only 0, 1 and 2 (dup2'ed by
 *    the spawn's file actions).
 * 2. An exit is learnt from a pidfd (pidfd_open, Linux 5.3+) watched by an
 *    ev_io: it works on any kernel's loop (libev's ev_child only on its
 *    default loop), never polls, and never reaps a child that is not ours
 *    (waitid(P_PIDFD) takes exactly that child). Signals go through the
 *    pidfd too (pidfd_send_signal), so a recycled pid is never signalled.
 *    Where pidfd_open is missing (Linux before 5.3, valgrind, some
 *    sandboxes) a child is "polled": its wait looks with waitid(P_PID,
 *    WNOHANG) after pauses from 1 ms doubling to 50 ms; its pid, not reaped
 *    yet, cannot have been reused.
 * 3. A Process object reaps its child once: wait, poll or its __gc. One
 *    collected while its child runs hands the pidfd to its Lua state's list
 *    of orphans, reaped when they are seen to have exited: at every spawn
 *    and when a kernel closes. No zombie is left behind by curio.
 *    A worker process (kill_on_close) gets a process group of its own: a
 *    Ctrl-C at the terminal reaches the kernel (which cancels the call and
 *    kills the worker), not the worker in the middle of a call.
 * 4. A kernel lists its children not reaped yet (a kernel hook). When it
 *    closes it reaps those that exited, kills and reaps its worker
 *    processes (kill_on_close) and reaps those it sent SIGKILL (a task
 *    cancelled in wait or communicate), and leaves the others running:
 *    their Process objects reap them later (rule 3). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <lauxlib.h>
#include "process.h"
#include "list.h"
#include "io.h"
#include "kernel.h"
#include "trap.h"
#include "ctx.h"
#include "errors.h"
#include "fileio.h"

extern char **environ;

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

struct process {
  struct io_handle io; /* first (io.c): the pidfd */
  pid_t pid;
  int reaped;
  int returncode;      /* valid once reaped: the exit status or -signal */
  int kill_on_close;   /* a worker: killed and reaped when its kernel closes */
  int killed;          /* sent SIGKILL: reaped (blocking, briefly) at the close */
  int polled;          /* no pidfd (pidfd_open unsupported): wait polls */
  double backoff;      /* the polled wait's next pause, seconds */
  struct list node;    /* in its kernel's procs while not reaped (rule 4) */
};

/* Rule 4: a kernel's children not reaped yet. */
struct proc_hook {
  struct kernel_hook hook;
  struct list procs;
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

/* ---- orphans (rule 3) ---- */

/* A Lua state's orphans: the pidfds (or, polled, -pid) of children whose
 * Process was collected while they ran. One per state (the context points at it, the
 * registry anchors it), made by the first spawn: no static state. */
struct orphans {
  int *fds;
  size_t n, cap;
  int closed;  /* its __gc ran (the state is closing) */
};

static const char orphans_key = 'O'; /* its context slot (ctx.h) */

static int orphans_gc(lua_State *L) {
  struct orphans *o = lua_touserdata(L, 1);
  for (size_t i = 0; i < o->n; i++) /* (children still running: not ours to wait) */
    if (o->fds[i] >= 0) close(o->fds[i]);
  free(o->fds);
  o->fds = NULL;
  o->n = o->cap = 0;
  o->closed = 1;
  return 0;
}

/* The state's orphan list, made on first use (from l_spawn_process, never
 * from a finalizer). The caller has the context as upvalue 1. */
static struct orphans *orphans_make(lua_State *L) {
  struct curio_ctx *ctx = ctx_get(L);
  struct orphans *o = ctx_slot_find(ctx, &orphans_key);
  return o != NULL ? o : ctx_slot_make(L, ctx, &orphans_key, sizeof *o, orphans_gc);
}

/* Reaps the orphans that have exited. */
static void reap_orphans(struct orphans *o) {
  if (o == NULL) return;
  for (size_t i = 0; i < o->n;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int id = o->fds[i];
    int rc = id >= 0 ? waitid(P_PIDFD, (id_t)id, &si, WEXITED | WNOHANG)
                     : waitid(P_PID, (id_t)-id, &si, WEXITED | WNOHANG);
    if ((rc == 0 && si.si_pid != 0) || (rc < 0 && errno != EINTR)) {
      if (id >= 0) close(id);
      o->fds[i] = o->fds[--o->n];
    } else {
      i++;
    }
  }
}

static void add_orphan(struct orphans *o, int pidfd) {
  if (o == NULL || o->closed) { if (pidfd >= 0) close(pidfd); return; }
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    int *grown = realloc(o->fds, cap * sizeof *grown);
    if (grown == NULL) { /* (no memory: the child stays a zombie until we exit) */
      if (pidfd >= 0) close(pidfd);
      return;
    }
    o->fds = grown;
    o->cap = cap;
  }
  o->fds[o->n++] = pidfd;
}

/* ---- reaping ---- */

/* Takes the child's status if it has exited (blocking: never; the pidfd
 * said so, or WNOHANG). Returns 1 once reaped. */
static int try_reap(struct process *p) {
  if (p->reaped) return 1;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int rc = child_waitid(p, &si, WEXITED | WNOHANG);
  if (rc < 0) { /* (ECHILD: someone else reaped it; report it as lost) */
    p->reaped = 1;
    p->returncode = 255;
  } else if (si.si_pid == 0) {
    return 0;
  } else {
    p->reaped = 1;
    p->returncode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
  }
  io_close(&p->io);
  if (list_linked(&p->node)) list_remove(&p->node);
  return 1;
}

static void hook_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct proc_hook *h = (struct proc_hook *)hook;
  (void)L;
  reap_orphans(ctx_slot_find(k->ctx, &orphans_key));
  while (!list_empty(&h->procs)) {
    struct process *p = LIST_ENTRY(h->procs.next, struct process, node);
    list_remove(&p->node);
    if (try_reap(p) || !(p->kill_on_close || p->killed)) continue;
    child_signal(p, SIGKILL);
    siginfo_t si; /* (WNOWAIT: try_reap takes the status) */
    child_waitid(p, &si, WEXITED | WNOWAIT);
    try_reap(p);
  }
  free(h);
}

/* Lists p in the running kernel's children (rule 4). */
static void track(lua_State *L, struct process *p) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL) return;
  struct proc_hook *h = (struct proc_hook *)kernel_find_hook(k, hook_close);
  if (h == NULL) {
    h = malloc(sizeof *h);
    if (h == NULL) return; /* (not listed: its Process object still reaps it) */
    h->hook.close = hook_close;
    list_init(&h->procs);
    kernel_add_hook(k, &h->hook);
  }
  list_insert_tail(&h->procs, &p->node);
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

static int do_wait(lua_State *L, struct process *p) {
  if (try_reap(p)) {
    lua_pushinteger(L, p->returncode);
    return 1;
  }
  struct task *t = trap_enter(L, "wait");
  if (p->polled) { /* no pidfd: look again after a pause, 1 ms doubling to 50 */
    double pause = p->backoff;
    p->backoff = pause * 2 < 0.05 ? pause * 2 : 0.05;
    return trap_suspend_until(L, t, kernel_clock() + pause, wait_k);
  }
  if (p->io.rd.data != NULL)
    errors_raise(L, "ResourceBusy", "wait: another task is already waiting for this process");
  return io_wait(L, t, &p->io.rd, wait_k);
}

static int wait_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  trap_result(L, t, (int)ctx);
  lua_settop(L, 1);
  return do_wait(L, lua_touserdata(L, 1));
}

/* process:wait() -> returncode, waiting in the loop (rule 2). */
static int process_wait(lua_State *L) {
  struct process *p = check_process(L, "wait");
  trap_current(L, "wait");
  lua_settop(L, 1);
  return do_wait(L, p);
}

/* process:send_signal(sig): nothing once the child is reaped. */
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
    if (p->reaped) lua_pushinteger(L, p->returncode);
    else lua_pushnil(L);
    return 1;
  }
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "methods");
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

/* __gc: rule 3. */
static int process_gc(lua_State *L) {
  struct process *p = lua_touserdata(L, 1);
  if (list_linked(&p->node)) list_remove(&p->node);
  if (p->reaped) return 0;
  if (try_reap(p)) return 0;
  int fd = p->polled ? -p->pid : p->io.fd;
  p->io.fd = -1;
  p->reaped = 1; /* (the orphan list has it now) */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ctx_registry_key); /* (no upvalue in __gc) */
  struct curio_ctx *ctx = lua_touserdata(L, -1);
  lua_pop(L, 1);
  add_orphan(ctx != NULL ? ctx_slot_find(ctx, &orphans_key) : NULL, fd);
  return 0;
}

/* ---- spawning ---- */

/* Reads the list of strings at idx into a NULL-terminated array (in a
 * userdata left on the stack). */
static char **string_list(lua_State *L, int idx, const char *fname, const char *what) {
  lua_Integer n = luaL_len(L, idx);
  if (n < 0 || n > 1000000) errors_argerror(L, 1, fname, "list too long");
  char **list = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof *list, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
      errors_argerror(L, 1, fname, lua_pushfstring(L, "%s #%d is not a string", what, (int)i));
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (strlen(s) != len) errors_argerror(L, 1, fname, lua_pushfstring(L, "%s #%d contains a zero byte", what, (int)i));
    list[i - 1] = (char *)s; /* anchored by the table */
    lua_pop(L, 1);
  }
  list[n] = NULL;
  return list;
}

/* core.spawn_process(argv, stdin_fd, stdout_fd, stderr_fd, cwd, envlist,
 * kill_on_close) -> Process. argv: list of strings (argv[1] is searched in PATH unless it
 * has a slash); each fd: -1 to inherit, else dup'ed to 0, 1, 2; envlist:
 * nil (inherit) or a list of "NAME=value". Raises OSError (ENOENT, ...). */
static int l_spawn_process(lua_State *L) {
  int kill_on_close = lua_toboolean(L, 7); /* (before anything is pushed) */
  luaL_checktype(L, 1, LUA_TTABLE);
  char **argv = string_list(L, 1, "Popen", "argument");
  if (argv[0] == NULL) errors_argerror(L, 1, "Popen", "empty argument list");
  int fds[3];
  for (int i = 0; i < 3; i++) fds[i] = (int)luaL_optinteger(L, 2 + i, -1);
  const char *cwd = luaL_optstring(L, 5, NULL);
  char **envp = environ;
  if (!lua_isnoneornil(L, 6)) {
    luaL_checktype(L, 6, LUA_TTABLE);
    envp = string_list(L, 6, "Popen", "environment entry");
  }
  reap_orphans(orphans_make(L));

  struct process *p = lua_newuserdatauv(L, sizeof *p, 0);
  io_handle_init(&p->io, -1);
  p->pid = -1;
  p->reaped = 1; /* (until there is a child) */
  p->returncode = 0;
  p->kill_on_close = kill_on_close;
  p->killed = 0;
  p->polled = 0;
  p->backoff = 0;
  list_init(&p->node);
  luaL_setmetatable(L, PROCESS_MT);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  if (kill_on_close) { /* a worker: a process group of its own, so that the
                        * terminal's Ctrl-C goes to us, not to it */
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);
  for (int i = 0; i < 3; i++)
    if (fds[i] >= 0) posix_spawn_file_actions_adddup2(&fa, fds[i], i);
  if (cwd != NULL) posix_spawn_file_actions_addchdir_np(&fa, cwd);
  /* every descriptor above 2 closed in the child, ours (close-on-exec
   * anyway) and those this process inherited without it, as Python's
   * close_fds=True */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    /* posix_spawn does not say whether the chdir or the exec failed */
    const char *what = argv[0];
    struct stat st;
    if (cwd != NULL && (stat(cwd, &st) != 0 || !S_ISDIR(st.st_mode))) what = cwd;
    errors_push_os(L, "Popen", rc);
    if (lua_istable(L, -1)) {
      lua_pushfstring(L, "Popen: %s: '%s'", strerror(rc), what);
      lua_setfield(L, -2, "message");
      lua_pushstring(L, what);
      lua_setfield(L, -2, "filename");
    }
    return lua_error(L);
  }
  p->pid = pid;
  p->reaped = 0;
  /* (CURIO_NO_PIDFD: the fallback on demand, for its specs) */
  int pidfd = getenv("CURIO_NO_PIDFD") != NULL ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd >= 0) {
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    io_handle_init(&p->io, pidfd);
  } else { /* Linux before 5.3, valgrind, some sandboxes: rule 2's fallback */
    p->polled = 1;
    p->backoff = 0.001;
  }
  track(L, p);
  return 1;
}

/* core.pipe() -> read handle, write handle (descriptor handles, fileio.c:
 * close-on-exec, blocking; closed by close() or when collected). */
static int l_pipe(lua_State *L) {
  int *r = fileio_push_handle(L, -1);
  int *w = fileio_push_handle(L, -1);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) errors_raise_os(L, "pipe", errno);
  *r = fds[0];
  *w = fds[1];
  fcntl(fds[0], F_SETPIPE_SZ, 1 << 20); /* fewer, bigger reads (a hint: may fail) */
  return 2;
}

/* core.devnull() -> a handle of /dev/null (close-on-exec). */
static int l_devnull(lua_State *L) {
  int *h = fileio_push_handle(L, -1);
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) errors_raise_os(L, "devnull", errno);
  *h = fd;
  return 1;
}

/* core.set_blocking(fd): clears O_NONBLOCK on a descriptor the user hands
 * to a child (programs expect blocking stdio). */
static int l_set_blocking(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "file descriptor expected");
  int flags = fcntl((int)fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK)) fcntl((int)fd, F_SETFL, flags & ~O_NONBLOCK);
  return 0;
}

/* core.self_exe() -> the path of this process's program (the Lua
 * interpreter or the curio program that worker processes run). */
static int l_self_exe(lua_State *L) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n < 0) return 0;
  lua_pushlstring(L, path, (size_t)n);
  return 1;
}

/* core.kernel_processes() -> Kernel{processes=} of the running kernel,
 * and a light userdata naming that kernel (workers.lua's pools). */
static int l_kernel_processes(lua_State *L) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL) return 0;
  long ncpu = 1;
#ifdef _SC_NPROCESSORS_ONLN
  ncpu = sysconf(_SC_NPROCESSORS_ONLN);
#endif
  lua_pushinteger(L, kernel_option(L, k, "processes", ncpu > 0 && ncpu < 4096 ? (int)ncpu : 1));
  lua_pushlightuserdata(L, k);
  return 2;
}

static const luaL_Reg process_methods[] = {
  {"wait", process_wait},
  {"poll", process_poll},
  {"send_signal", process_send_signal},
  {NULL, NULL}
};

static const luaL_Reg process_functions[] = {
  {"spawn_process", l_spawn_process},
  {"pipe", l_pipe},
  {"set_blocking", l_set_blocking},
  {"devnull", l_devnull},
  {"self_exe", l_self_exe},
  {"kernel_processes", l_kernel_processes},
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
}
