/* core/io.c: how a task waits for a descriptor.
 *
 * Rules:
 * 1. A descriptor belongs to one object (struct io_handle, first in a
 *    socket's or a pipe's userdata) with one ev_io per direction. A watcher
 *    runs only while a task waits in its direction, and its data is that
 *    task: a second task wanting the same direction is refused by the
 *    object (ReadResourceBusy, WriteResourceBusy).
 * 2. The wait is a wait record (wait.c): fd_wait, wait_obj the watcher. The
 *    undo stops the watcher, whoever ends the wait (the event, a
 *    cancellation, a timeout, the kernel's close).
 * 3. Stopping a watcher and starting it again before the loop polls costs
 *    no system call: libev applies descriptor changes lazily, when it next
 *    polls, and only when the set of events changed. A task that reads,
 *    writes and waits again in one turn leaves epoll untouched.
 * 4. Closing a handle wakes its waiters first (their methods then find the
 *    descriptor closed and raise), then closes the descriptor once. */
#include <errno.h>
#include <unistd.h>
#include <lauxlib.h>
#include "io.h"
#include "kernel.h"
#include "trap.h"
#include "wait.h"
#include "ctx.h"
#include "errors.h"

static void io_undo(struct task *t);
static const struct wait_kind fd_wait = {"file descriptor", io_undo};

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop; (void)revents;
  trap_wake(w->data, WAKE_OK);
}

void io_handle_init(struct io_handle *h, int fd) {
  h->fd = fd;
  ev_io_init(&h->rd, io_cb, fd, EV_READ);
  ev_io_init(&h->wr, io_cb, fd, EV_WRITE);
  h->rd.data = h->wr.data = NULL;
}

/* Suspends t until w's direction is ready (rule 2); k continues. The
 * caller checked that no task waits on w. */
int io_wait(lua_State *L, struct task *t, ev_io *w, lua_KFunction k) {
  w->data = t;
  ev_io_start(t->k->loop, w);
  t->wait_obj = w;
  return trap_suspend(L, t, &fd_wait, k);
}

/* The undo of a descriptor wait (fd_wait, wait.h). */
static void io_undo(struct task *t) {
  ev_io *w = t->wait_obj;
  if (t->k != NULL && ev_is_active(w)) ev_io_stop(t->k->loop, w);
  w->data = NULL;
}

/* Rule 4: returns close's result (0, or -1 with errno), or 0 when the
 * handle was closed already. */
int io_close(struct io_handle *h) {
  if (h->fd < 0) return 0;
  if (h->rd.data != NULL) trap_wake(h->rd.data, WAKE_OK);
  if (h->wr.data != NULL) trap_wake(h->wr.data, WAKE_OK);
  int fd = h->fd, rc;
  h->fd = -1;
  rc = close(fd); /* (no retry on EINTR: Linux has closed it anyway) */
  return rc < 0 && errno != EINTR ? -1 : 0;
}

/* A buffer of *size bytes for one read at a time, owned by the Lua state
 * (reads in one state never overlap: a read copies out before it can
 * yield). The caller has the context as upvalue 1. */
#define SCRATCH_SIZE (256 * 1024)

static const char scratch_key = 'S'; /* its context slot (ctx.h) */

char *io_scratch(lua_State *L, size_t *size) {
  struct curio_ctx *ctx = ctx_get(L);
  char *scratch = ctx_slot_find(ctx, &scratch_key);
  *size = SCRATCH_SIZE;
  if (scratch == NULL) scratch = ctx_slot_make(L, ctx, &scratch_key, SCRATCH_SIZE, NULL);
  return scratch;
}

/* ---- core.wait_fd: a wait on a descriptor nobody owns (the host's stdin) */

static int wait_fd_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  (void)status;
  trap_result(L, t, (int)ctx);
  return 0;
}

/* core.wait_fd(fd, "r"|"w"): waits until fd is readable or writable. The
 * handle lives in this frame while the task waits. */
static int l_wait_fd(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  static const char *const modes[] = {"r", "w", NULL};
  int mode = luaL_checkoption(L, 2, NULL, modes);
  luaL_argcheck(L, fd >= 0 && fd <= 0x7fffffff, 1, "file descriptor expected");
  struct task *t = trap_enter(L, "wait_fd");
  lua_settop(L, 0);
  struct io_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
  io_handle_init(h, (int)fd);
  return io_wait(L, t, mode == 0 ? &h->rd : &h->wr, wait_fd_k);
}

const luaL_Reg io_functions[] = {
  {"wait_fd", l_wait_fd},
  {NULL, NULL}
};
