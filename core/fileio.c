/* core/fileio.c: the blocking half of curio.aopen's file streams.
 *
 * Rules:
 * 1. A file is a descriptor owned by a handle userdata (core.fd_open): its
 *    close, __close and __gc share one idempotent close; a closed handle
 *    has fd -1 and refuses fileno.
 * 2. The reads and writes are plain C functions without upvalues
 *    (core.fd_read, core.fd_write), so they cross to worker threads with
 *    run_in_thread (the codec carries C functions); they block there and
 *    take the descriptor's number. They return nil, errno, code name and
 *    message on failure: the Lua stream (lua/curio/io.lua) raises OSError.
 * 3. The stream's policy (buffering, lines, errors) is Lua: the one stream
 *    that sockets and pipes will share. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include "fileio.h"
#include "ctx.h"
#include "errors.h"

struct fd_handle {
  int fd;
};

/* Pushes nil, errno, its code name and message: 4 results. */
static int fail(lua_State *L, int err) {
  lua_pushnil(L);
  lua_pushinteger(L, err);
  lua_pushstring(L, errors_errno_name(err));
  lua_pushstring(L, strerror(err));
  return 4;
}

static int mode_flags(const char *mode, int *flags) {
  int plus = strchr(mode, '+') != NULL;
  for (const char *c = mode + 1; *c; c++)
    if (*c != '+' && *c != 'b') return 0;
  switch (mode[0]) {
    case 'r': *flags = plus ? O_RDWR : O_RDONLY; break;
    case 'w': *flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC; break;
    case 'a': *flags = (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND; break;
    default: return 0;
  }
  *flags |= O_CLOEXEC;
  return 1;
}

/* core.fd_open(path, mode) -> handle, whether it is a regular file (or a
 * block device: its reads and writes end) | nil, errno, code, message */
static int l_fd_open(lua_State *L) {
  const char *path = errors_checkcstring(L, 1, "aopen", NULL);
  const char *mode = luaL_optstring(L, 2, "r");
  int flags;
  if (!mode_flags(mode, &flags)) return errors_argerror(L, 2, "aopen", "invalid mode");
  struct fd_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->fd = -1;
  ctx_setmetatable(L, ctx_get(L), MT_FD);
  int fd;
  do fd = open(path, flags, 0666); while (fd < 0 && errno == EINTR);
  if (fd < 0) return fail(L, errno);
  h->fd = fd;
  struct stat st;
  lua_pushboolean(L, fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)));
  return 2;
}

/* Pushes a handle that owns fd (-1: none yet; the caller sets it through
 * the returned pointer, after making the handle: no descriptor can leak). */
int *fileio_push_handle(lua_State *L, int fd) {
  struct fd_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->fd = fd;
  ctx_setmetatable(L, ctx_get(L), MT_FD);
  return &h->fd;
}

/* Takes the descriptor out of the handle at idx (which is closed after:
 * fd -1), for an object that owns it from now on; raises when idx is not
 * an open handle. */
int fileio_take(lua_State *L, int idx, const char *fname) {
  struct fd_handle *h = ctx_testudata(L, idx, MT_FD);
  if (h == NULL) return errors_typeerror(L, idx, fname, "descriptor handle");
  if (h->fd < 0) return errors_argerror(L, idx, fname, "closed descriptor handle");
  int fd = h->fd;
  h->fd = -1;
  return fd;
}

static struct fd_handle *check_handle(lua_State *L) {
  return ctx_checkudata(L, 1, MT_FD, "file handle");
}

/* handle:fileno() -> the descriptor; raises once closed. */
static int l_handle_fileno(lua_State *L) {
  struct fd_handle *h = check_handle(L);
  if (h->fd < 0) return luaL_error(L, "I/O operation on a closed file");
  lua_pushinteger(L, h->fd);
  return 1;
}

/* handle:close(), __close, __gc: rule 1. */
static int l_handle_close(lua_State *L) {
  struct fd_handle *h = check_handle(L);
  if (h->fd >= 0) {
    close(h->fd);
    h->fd = -1;
  }
  return 0;
}

static int l_handle_closed(lua_State *L) {
  lua_pushboolean(L, check_handle(L)->fd < 0);
  return 1;
}

/* A read asks for at most this much: a bigger n gets up to n bytes, as a
 * socket's recv does, without allocating n first. */
#define FILEIO_READ_MAX (1 << 24)

/* core.fd_read(fd, n) -> up to n bytes ("" at the end) | nil, errno, ... */
static int l_fd_read(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "size out of range");
  if (n > FILEIO_READ_MAX) n = FILEIO_READ_MAX;
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  ssize_t got;
  do got = read((int)fd, p, (size_t)n); while (got < 0 && errno == EINTR);
  if (got < 0) return fail(L, errno);
  luaL_pushresultsize(&b, (size_t)got);
  return 1;
}

/* core.fd_write(fd, data) -> bytes written (all) | nil, errno, ... */
static int l_fd_write(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  size_t len, done = 0;
  const char *data = luaL_checklstring(L, 2, &len);
  while (done < len) {
    ssize_t n = write((int)fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(L, errno);
    done += (size_t)n;
  }
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

const luaL_Reg fileio_handle_methods[] = {
  {"fileno", l_handle_fileno},
  {"close", l_handle_close},
  {"closed", l_handle_closed},
  {"__close", l_handle_close},
  {"__gc", l_handle_close},
  {NULL, NULL}
};

const luaL_Reg fileio_functions[] = {
  {"fd_open", l_fd_open},
  {NULL, NULL}
};

/* Sets fd_read and fd_write into the table on top, without upvalues (rule 2). */
void fileio_open(lua_State *L) {
  lua_pushcfunction(L, l_fd_read);
  lua_setfield(L, -2, "fd_read");
  lua_pushcfunction(L, l_fd_write);
  lua_setfield(L, -2, "fd_write");
}
