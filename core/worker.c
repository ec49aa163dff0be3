/* core/worker.c: what run_in_process's workers need from C (the policy is
 * lua/curio/workers.lua; the worker is spawned and watched as any child,
 * core/process.c).
 *
 * Rules:
 * 1. A worker runs this program (worker_program: /proc/self/exe) and
 *    learns the parent's pid on its command line.
 * 2. A worker dies with its parent: worker_begin asks Linux for SIGKILL
 *    when the parent dies (PR_SET_PDEATHSIG), then checks that the parent
 *    is still the one that started it (it may have died before the
 *    request: the worker was then re-parented, and exits at once). Linux
 *    sends the signal when the parent's thread that spawned the worker
 *    ends: a kernel runs its tasks, and so spawns, in one thread.
 * 3. The protocol has descriptors of its own, 3 (requests in) and 4
 *    (replies out), made close-on-exec in the worker so that a program the
 *    worker's function starts never holds them: the worker's stdout and
 *    stderr are the parent's, free for the function's prints. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include "worker.h"
#include "trap.h"
#include "errors.h"

/* core.worker_program() -> the path of this process's program (the Lua
 * interpreter or the curio program), this process's pid (rule 1). */
static int l_worker_program(lua_State *L) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n < 0) lua_pushnil(L);
  else lua_pushlstring(L, path, (size_t)n);
  lua_pushinteger(L, (lua_Integer)getpid());
  return 2;
}

static int close_channel(lua_State *L) {
  luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
  int rc = fclose(s->f);
  return luaL_fileresult(L, rc == 0, NULL);
}

/* Pushes descriptor fd as a Lua file (liolib's luaL_Stream). */
static void push_channel(lua_State *L, int fd, const char *mode) {
  luaL_Stream *s = lua_newuserdatauv(L, sizeof *s, 0);
  s->closef = NULL; /* (a closed file until fdopen succeeds) */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  s->f = fdopen(fd, mode);
  if (s->f == NULL) errors_raise_os(L, "worker_begin", errno);
  s->closef = close_channel;
}

static int is_pipe(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* core.worker_begin(parent_pid) -> requests, replies (Lua files): in the
 * worker, before anything else (rules 2, 3). Raises, having changed
 * nothing, where this is not a worker of parent_pid (its parent is another
 * process, or 3 and 4 are not pipes): called elsewhere, it must not take
 * descriptors it does not own; the worker exits then. */
static int l_worker_begin(lua_State *L) {
  lua_Integer parent = luaL_checkinteger(L, 1);
  if ((lua_Integer)getppid() != parent || !is_pipe(3) || !is_pipe(4))
    return errors_raise(L, "CurioError", "worker_begin: not a worker process of %d", (int)parent);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) errors_raise_os(L, "worker_begin", errno);
  if ((lua_Integer)getppid() != parent) /* (it died before the request) */
    return errors_raise(L, "CurioError", "worker_begin: the parent has exited");
  push_channel(L, 3, "rb");
  push_channel(L, 4, "wb");
  return 2;
}

/* core.check_can_block(fname): raises the CurioError of any blocking call
 * made where the running task cannot block (outside a task, where Lua
 * cannot yield, in a coroutine curio does not drive), so that
 * run_in_process refuses before it starts a worker. */
static int l_check_can_block(lua_State *L) {
  trap_enter_quiet(L, ctx_get(L), luaL_checkstring(L, 1));
  return 0;
}

const luaL_Reg worker_functions[] = {
  {"worker_program", l_worker_program},
  {"worker_begin", l_worker_begin},
  {"check_can_block", l_check_can_block},
  {NULL, NULL}
};
