/* core/io.c: the one descriptor handle, its one close, and how a task
 * waits for a descriptor.
 *
 * Rules:
 * 1. A descriptor belongs to one object (struct io_handle, first in a
 *    socket's, a pipe's, a file's or a process's userdata) with one ev_io
 *    per direction and a kind (struct io_kind: the calls that differ,
 *    recv/send or read/write, as liolib's closef). A watcher
 *    runs only while a task waits in its direction, and its data is that
 *    task: a second task wanting the same direction is refused by the
 *    object (ReadResourceBusy, WriteResourceBusy).
 * 2. The wait is a wait record (wait.c): a kind whose undo is io_undo
 *    (fd_wait, or one named by the caller: IO_WAIT), wait_obj the watcher. The
 *    undo stops the watcher, whoever ends the wait (the event, a
 *    cancellation, a timeout, the kernel's close).
 * 3. Stopping a watcher and starting it again before the loop polls costs
 *    no system call: libev applies descriptor changes lazily, when it next
 *    polls, and only when the set of events changed. A task that reads,
 *    writes and waits again in one turn leaves epoll untouched.
 * 4. Every kind closes through io_close, once: it wakes the handle's
 *    waiters first (their methods then find the descriptor closed and
 *    raise), marks the handle closed (fd -1), then closes the descriptor,
 *    or drops its reference when jobs share it (rule 5).
 * 5. A worker thread never gets a descriptor number, which the next open,
 *    accept or socket may reuse once the owner closes: it gets a reference
 *    to the handle's shared record (io_share, made on first use), and the
 *    descriptor is closed when the last reference goes, the owner's or a
 *    job's, whichever is last. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <lauxlib.h>
#include "io.h"
#include "kernel.h"
#include "trap.h"
#include "wait.h"
#include "ctx.h"
#include "errors.h"

static const struct wait_kind fd_wait = IO_WAIT("file descriptor");

static void io_cb(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop; (void)revents;
  trap_wake(w->data, WAKE_OK);
}

/* ---- kinds (rule 1) ---- */

static ssize_t socket_read(int fd, void *buf, size_t len) { return recv(fd, buf, len, 0); }
static ssize_t socket_write(int fd, const void *buf, size_t len) { return send(fd, buf, len, MSG_NOSIGNAL); }

const struct io_kind io_socket_kind = {"socket", socket_read, socket_write};
const struct io_kind io_pipe_kind = {"pipe", read, write};
const struct io_kind io_fd_kind = {"descriptor", read, write};

/* ---- handles ---- */

struct io_shared {
  atomic_int refs;
  int fd;
};

void io_handle_init(struct io_handle *h, int fd) {
  h->fd = fd;
  ev_io_init(&h->rd, io_cb, fd, EV_READ);
  ev_io_init(&h->wr, io_cb, fd, EV_WRITE);
  h->rd.data = h->wr.data = NULL;
  h->kind = &io_fd_kind;
  h->shared = NULL;
}

/* Gives a closed handle (no waiter, not shared) its descriptor. */
void io_handle_setfd(struct io_handle *h, int fd) {
  h->fd = fd;
  ev_io_set(&h->rd, fd, EV_READ);
  ev_io_set(&h->wr, fd, EV_WRITE);
}

/* Takes the descriptor out of an open handle that no task waits on and
 * no job shares (a socket that TLS wraps): the handle is closed (fd -1)
 * without closing the descriptor, which the caller now owns. Returns -1
 * when the handle cannot give it. */
int io_detach(struct io_handle *h) {
  if (h->fd < 0 || h->rd.data != NULL || h->wr.data != NULL || h->shared != NULL) return -1;
  int fd = h->fd;
  io_handle_setfd(h, -1);
  return fd;
}

/* A further watcher on a descriptor for `events` (EV_READ or EV_WRITE),
 * woken as a handle's own, for a wing whose tasks wait on one descriptor
 * in more roles than a reader and a writer (tls.c); io_wait takes it. */
void io_watcher_init(ev_io *w, int fd, int events) {
  ev_io_init(w, io_cb, fd, events);
  w->data = NULL;
}

/* Rule 5: a new reference to h's descriptor for a job; h is open. Returns
 * NULL when memory runs out (the caller raises). */
struct io_shared *io_share(struct io_handle *h) {
  if (h->shared == NULL) {
    struct io_shared *s = malloc(sizeof *s);
    if (s == NULL) return NULL;
    atomic_init(&s->refs, 1); /* the owner's */
    s->fd = h->fd;
    h->shared = s;
  }
  atomic_fetch_add(&h->shared->refs, 1);
  return h->shared;
}

int io_shared_fd(const struct io_shared *s) {
  return s->fd;
}

/* Drops one reference; the last one closes the descriptor (any thread).
 * Returns close's result (0 when not the last). */
static int shared_release(struct io_shared *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return 0;
  int rc = close(s->fd);
  free(s);
  return rc;
}

void io_shared_release(struct io_shared *s) {
  shared_release(s);
}

/* Suspends t until w's direction is ready (rule 2); k continues. The
 * caller checked that no task waits on w. */
int io_wait(lua_State *L, struct task *t, ev_io *w, lua_KFunction k) {
  return io_wait_as(L, t, w, &fd_wait, k);
}

/* As io_wait, the wait of the kind given (its undo is io_undo: IO_WAIT). */
int io_wait_as(lua_State *L, struct task *t, ev_io *w, const struct wait_kind *kind,
               lua_KFunction k) {
  w->data = t;
  ev_io_start(t->k->loop, w);
  t->wait_obj = w;
  return trap_suspend(L, t, kind, k);
}

/* The undo of every descriptor wait (IO_WAIT, wait.h). */
void io_undo(struct task *t) {
  ev_io *w = t->wait_obj;
  if (t->k != NULL && ev_is_active(w)) ev_io_stop(t->k->loop, w);
  w->data = NULL;
}

/* Rule 4, the one close of every kind: returns close's result (0, or -1
 * with errno), or 0 when the handle was closed already or jobs still hold
 * the descriptor. */
int io_close(struct io_handle *h) {
  if (h->fd < 0) return 0;
  if (h->rd.data != NULL) trap_wake(h->rd.data, WAKE_OK);
  if (h->wr.data != NULL) trap_wake(h->wr.data, WAKE_OK);
  int fd = h->fd, rc;
  h->fd = -1;
  if (h->shared != NULL) { /* rule 5: the last reference closes it */
    rc = shared_release(h->shared);
    h->shared = NULL;
  } else {
    rc = close(fd);
  }
  return rc < 0 && errno != EINTR ? -1 : 0; /* (no retry on EINTR: Linux has closed it anyway) */
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
