/* core/pipe.c: the descriptors a child is given by curio.subprocess and
 * run_in_process: pipes and /dev/null, as descriptor handles (fileio.c:
 * close-on-exec, blocking, closed by close() or when collected). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <lauxlib.h>
#include "pipe.h"
#include "fileio.h"
#include "errors.h"

/* core.pipe() -> read handle, write handle. */
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

/* core.devnull() -> a handle of /dev/null. */
static int l_devnull(lua_State *L) {
  int *h = fileio_push_handle(L, -1);
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) errors_raise_os(L, "devnull", errno);
  *h = fd;
  return 1;
}

const luaL_Reg pipe_functions[] = {
  {"pipe", l_pipe},
  {"devnull", l_devnull},
  {NULL, NULL}
};
