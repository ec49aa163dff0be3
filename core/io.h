/* core/io.h: descriptor handles, their one close, and descriptor waits
 * (rules in io.c). */
#ifndef CURIO_IO_H
#define CURIO_IO_H

#include <sys/types.h>
#include <ev.h>
#include <lua.h>
#include "task.h"
#include "wait.h"

/* What differs between kinds of descriptors (as liolib's closef): its
 * name and how its bytes are read and written (a socket's recv and send,
 * a pipe's or file's read and write). */
struct io_kind {
  const char *name;
  ssize_t (*read)(int fd, void *buf, size_t len);
  ssize_t (*write)(int fd, const void *buf, size_t len);
};

extern const struct io_kind io_socket_kind; /* recv, send without SIGPIPE */
extern const struct io_kind io_pipe_kind;   /* read, write */
extern const struct io_kind io_fd_kind;     /* read, write: files, devnull, pidfds */

/* The descriptor as jobs in worker threads hold it (rule 5): refcounted,
 * closed by whoever drops the last reference. */
struct io_shared;

/* A descriptor owned by an object (a socket, a pipe, a file, a pidfd):
 * the first field of its userdata. Each direction has one watcher, whose
 * data is the task waiting in that direction (NULL: none). */
struct io_handle {
  int fd;                     /* -1 once closed */
  ev_io rd, wr;
  const struct io_kind *kind; /* io_fd_kind unless the owner says */
  struct io_shared *shared;   /* NULL until a job first takes the handle */
};

void io_handle_init(struct io_handle *h, int fd);
void io_handle_setfd(struct io_handle *h, int fd);
int io_detach(struct io_handle *h);
void io_watcher_init(ev_io *w, int fd, int events);
int io_wait(lua_State *L, struct task *t, ev_io *w, lua_KFunction k);

/* A descriptor wait under a name of its own, what the monitor shows a task
 * waits in (wait.h): the file that waits defines
 *   static const struct wait_kind recv_wait = IO_WAIT("recv");
 * and hands it to io_wait_as (io_wait's is "file descriptor"). */
#define IO_WAIT(name) {name, io_undo}
void io_undo(struct task *t);
int io_wait_as(lua_State *L, struct task *t, ev_io *w, const struct wait_kind *kind,
               lua_KFunction k);
int io_close(struct io_handle *h);
char *io_scratch(lua_State *L, size_t *size);

/* Rule 5: a reference for a job (the handle must be open); its descriptor;
 * dropping it (any thread). */
struct io_shared *io_share(struct io_handle *h);
int io_shared_fd(const struct io_shared *s);
void io_shared_release(struct io_shared *s);

extern const luaL_Reg io_functions[];

#endif
