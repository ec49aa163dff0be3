/* core/fileio.c: descriptor handles as Lua values (core.fd_open's files,
 * core.pipe's and core.devnull's descriptors) and the blocking half of
 * curio.aopen's file streams.
 *
 * Rules:
 * 1. A handle userdata is a struct io_handle (io.c) of kind io_fd_kind:
 *    its close, __close and __gc are io_close, idempotent; a closed handle
 *    has fd -1 and refuses fileno.
 * 2. The reads and writes are plain C functions without upvalues
 *    (core.fd_read, core.fd_write), so they cross to worker threads with
 *    run_in_thread (the codec carries C functions). They take the handle,
 *    never its number: the handle crosses by reference (codec_shared, io.c
 *    rule 5), so a stream closed while a job runs leaves the descriptor
 *    open until the job ends, and a number reused meanwhile by another
 *    open, accept or socket is never touched. A job's reference is dropped
 *    as soon as its read or write is done (not when its Lua state collects
 *    it): one read or write per crossing. They return nil, errno, code
 *    name and message on failure: the Lua stream (lua/curio/io.lua) raises
 *    OSError.
 * 3. The stream's policy (buffering, lines, errors, busy checks) is Lua:
 *    the one stream that sockets and pipes share. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <lauxlib.h>
#include "fileio.h"
#include "ctx.h"
#include "io.h"
#include "codec.h"
#include "errors.h"

/* A job's reference to a handle's descriptor (rule 2), in whatever Lua
 * state the codec delivered it to. */
#define FDREF_MT "curio.fdref"

struct fdref {
  struct io_shared *shared; /* NULL once dropped */
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
  struct io_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  io_handle_init(h, -1);
  ctx_setmetatable(L, ctx_get(L), MT_FD);
  int fd;
  do fd = open(path, flags, 0666); while (fd < 0 && errno == EINTR);
  if (fd < 0) return fail(L, errno);
  io_handle_setfd(h, fd);
  struct stat st;
  lua_pushboolean(L, fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)));
  return 2;
}

/* Pushes a handle that owns fd (-1: none yet; the caller sets it through
 * the returned pointer, after making the handle: no descriptor can leak.
 * Its watchers are never started: these handles are not waited on). */
int *fileio_push_handle(lua_State *L, int fd) {
  struct io_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  io_handle_init(h, fd);
  ctx_setmetatable(L, ctx_get(L), MT_FD);
  return &h->fd;
}

/* Takes the descriptor out of the handle at idx (which is closed after:
 * fd -1), for an object that owns it from now on; raises when idx is not
 * an open handle. */
int fileio_take(lua_State *L, int idx, const char *fname) {
  struct io_handle *h = ctx_testudata(L, idx, MT_FD);
  if (h == NULL) return errors_typeerror(L, idx, fname, "descriptor handle");
  if (h->fd < 0) return errors_argerror(L, idx, fname, "closed descriptor handle");
  if (h->shared != NULL) return errors_argerror(L, idx, fname, "descriptor handle shared with a thread");
  int fd = h->fd;
  h->fd = -1;
  return fd;
}

static struct io_handle *check_handle(lua_State *L) {
  return ctx_checkudata(L, 1, MT_FD, "file handle");
}

/* handle:fileno() -> the descriptor; raises once closed. */
static int l_handle_fileno(lua_State *L) {
  struct io_handle *h = check_handle(L);
  if (h->fd < 0) return luaL_error(L, "I/O operation on a closed file");
  lua_pushinteger(L, h->fd);
  return 1;
}

/* handle:close(), __close, __gc: rule 1. */
static int l_handle_close(lua_State *L) {
  io_close(check_handle(L));
  return 0;
}

static int l_handle_closed(lua_State *L) {
  lua_pushboolean(L, check_handle(L)->fd < 0);
  return 1;
}

/* ---- a job's reference (rule 2) ---- */

/* codec_shared: the handle at idx crosses as a reference to its descriptor. */
static void *handle_retain(lua_State *L, int idx) {
  struct io_handle *h = lua_touserdata(L, idx);
  if (h->fd < 0) luaL_error(L, "I/O operation on a closed file");
  struct io_shared *s = io_share(h);
  if (s == NULL) luaL_error(L, "not enough memory");
  return s;
}

static int fdref_gc(lua_State *L) {
  struct fdref *r = lua_touserdata(L, 1);
  if (r->shared != NULL) io_shared_release(r->shared);
  r->shared = NULL;
  return 0;
}

/* Pushes a reference owning the codec's (its metatable is made in this
 * state on first use: worker states get it here). */
static void fdref_push(lua_State *L, void *obj) {
  struct fdref *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->shared = obj;
  if (luaL_newmetatable(L, FDREF_MT)) {
    lua_pushcfunction(L, fdref_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
}

static void fdref_release(void *obj) {
  io_shared_release(obj);
}

static const struct codec_shared handle_shared = {handle_retain, fdref_push, fdref_release};

static struct fdref *check_ref(lua_State *L) {
  struct fdref *r = luaL_checkudata(L, 1, FDREF_MT);
  luaL_argcheck(L, r->shared != NULL, 1, "descriptor reference already used");
  return r;
}

/* A read asks for at most this much: a bigger n gets up to n bytes, as a
 * socket's recv does, without allocating n first. */
#define FILEIO_READ_MAX (1 << 24)

/* core.fd_read(ref, n) -> up to n bytes ("" at the end) | nil, errno, ...
 * (in a worker thread; drops ref when done, rule 2) */
static int l_fd_read(lua_State *L) {
  struct fdref *r = check_ref(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "size out of range");
  if (n > FILEIO_READ_MAX) n = FILEIO_READ_MAX;
  int fd = io_shared_fd(r->shared);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  ssize_t got;
  do got = read(fd, p, (size_t)n); while (got < 0 && errno == EINTR);
  int err = errno;
  io_shared_release(r->shared);
  r->shared = NULL;
  if (got < 0) return fail(L, err);
  luaL_pushresultsize(&b, (size_t)got);
  return 1;
}

/* core.fd_write(ref, data) -> bytes written (all) | nil, errno, ...
 * (in a worker thread; drops ref when done, rule 2) */
static int l_fd_write(lua_State *L) {
  struct fdref *r = check_ref(L);
  size_t len, done = 0;
  const char *data = luaL_checklstring(L, 2, &len);
  int fd = io_shared_fd(r->shared), err = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { err = errno; break; }
    done += (size_t)n;
  }
  io_shared_release(r->shared);
  r->shared = NULL;
  if (err != 0) return fail(L, err);
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

/* Sets fd_read and fd_write into the table on top, without upvalues, and
 * lets handles cross to worker threads by reference (rule 2). */
void fileio_open(lua_State *L) {
  luaL_getmetatable(L, FD_MT);
  lua_pushlightuserdata(L, (void *)&handle_shared);
  lua_setfield(L, -2, CODEC_SHARED);
  lua_pop(L, 1);
  lua_pushcfunction(L, l_fd_read);
  lua_setfield(L, -2, "fd_read");
  lua_pushcfunction(L, l_fd_write);
  lua_setfield(L, -2, "fd_write");
}
