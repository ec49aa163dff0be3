/* core/spawn.c: starting a child (core.spawn_process, for
 * lua/curio/subprocess.lua's Popen and run_in_process's workers); its
 * Process object and its exit are process.c's.
 *
 * Rules:
 * 1. Children are started with posix_spawn (glibc: clone with CLONE_VM |
 *    CLONE_VFORK, then exec), never fork: safe while worker threads run,
 *    and cheap however big the parent is. Signal dispositions and the mask
 *    are reset to defaults in the child. Every descriptor curio opens is
 *    close-on-exec, and the spawn closes every other one above those it
 *    hands over (0, 1, 2, and a worker's channels 3 and 4), so a child gets
 *    only what it was given.
 * 2. A descriptor the parent keeps is never changed: a non-blocking pipe
 *    (one of our pipe streams) is handed as a new open file description of
 *    the same pipe (reopened through /proc/self/fd), blocking, which only
 *    the child uses; anything else non-blocking (a socket) is handed as it
 *    is (the child shares its description, as with Python).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include "process.h"
#include "errors.h"

extern char **environ;

#define SPAWN_MAX_FDS 8       /* descriptors a child may be handed: 0..7 */

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

/* Rule 2: the descriptor to dup2 into the child for the parent's fd, which
 * stays as it is; *temp is set when it is a new one (closed after the
 * spawn). `below`: the result must not be under it (the spawn's dup2s
 * would overwrite it before its turn). */
static int child_source(int fd, int below, int *temp) {
  int flags = fcntl(fd, F_GETFL);
  struct stat st;
  *temp = 0;
  if (flags >= 0 && (flags & O_NONBLOCK) && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    /* (O_NONBLOCK for the open: a FIFO's open waits for the other end) */
    int mine = open(path, (flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
    if (mine >= 0) {
      fcntl(mine, F_SETFL, (flags & O_ACCMODE) & ~O_NONBLOCK);
      fd = mine;
      *temp = 1;
    }
  }
  if (fd < below) {
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, below);
    if (moved >= 0) {
      if (*temp) close(fd);
      fd = moved;
      *temp = 1;
    }
  }
  return fd;
}

/* core.spawn_process(argv, fds, cwd, envlist, worker) -> Process. argv:
 * list of strings (argv[1] is searched in PATH unless it has a slash);
 * fds: list of the descriptors the child gets as 0, 1, 2, ... (-1: the
 * parent's own, for 0 to 2); envlist: nil (inherit) or a list of
 * "NAME=value"; worker: a worker (process.c rules 5, 6).
 * Raises OSError (ENOENT, ...). */
static int l_spawn_process(lua_State *L) {
  int worker = lua_toboolean(L, 5); /* (before anything is pushed) */
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  char **argv = string_list(L, 1, "Popen", "argument");
  if (argv[0] == NULL) errors_argerror(L, 1, "Popen", "empty argument list");
  int fds[SPAWN_MAX_FDS], temps[SPAWN_MAX_FDS];
  lua_Integer nfds = luaL_len(L, 2);
  if (nfds < 3 || nfds > SPAWN_MAX_FDS) errors_argerror(L, 2, "spawn_process", "3 to 8 descriptors expected");
  for (int i = 0; i < nfds; i++) {
    lua_rawgeti(L, 2, i + 1);
    lua_Integer fd = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (fd < (i < 3 ? -1 : 0) || fd > 0x7fffffff) errors_argerror(L, 2, "spawn_process", "bad descriptor");
    fds[i] = (int)fd;
  }
  const char *cwd = luaL_optstring(L, 3, NULL);
  char **envp = environ;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TTABLE);
    envp = string_list(L, 4, "Popen", "environment entry");
  }
  struct process *p = process_push(L, worker);

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
  if (worker) { /* a process group of its own, so that the terminal's
                 * Ctrl-C goes to us, not to it (process.c rule 5) */
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attr, 0);
  }
  posix_spawnattr_setflags(&attr, flags);
  for (int i = 0; i < nfds; i++) {
    temps[i] = 0;
    if (fds[i] < 0) continue;
    fds[i] = child_source(fds[i], (int)nfds, &temps[i]);
    posix_spawn_file_actions_adddup2(&fa, fds[i], i);
  }
  if (cwd != NULL) posix_spawn_file_actions_addchdir_np(&fa, cwd);
  /* every descriptor above those handed closed in the child, ours
   * (close-on-exec anyway) and those this process inherited without it,
   * as Python's close_fds=True */
  posix_spawn_file_actions_addclosefrom_np(&fa, (int)nfds);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  for (int i = 0; i < nfds; i++)
    if (temps[i]) close(fds[i]);
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
  process_started(L, p, pid);
  return 1;
}

const luaL_Reg spawn_functions[] = {
  {"spawn_process", l_spawn_process},
  {NULL, NULL}
};
