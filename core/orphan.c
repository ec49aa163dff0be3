/* core/orphan.c: a Lua state's orphans, the children whose Process was
 * collected while they ran (process.c's rule 5): reaped when they are seen
 * to have exited, at every spawn and when a kernel closes, so that curio
 * leaves no zombie behind. Each is held by its pidfd (the Process's
 * descriptor handle, io.c, moved here) or, polled (no pidfd_open), by its
 * pid: not reaped yet, the pid cannot have been reused. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "orphan.h"
#include "io.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* One per state, in a context slot made by the first spawn: no static state. */
struct orphan {
  struct io_handle pidfd;  /* fd -1: polled */
  pid_t pid;
};

struct orphans {
  struct orphan *list;
  size_t n, cap;
  int closed;  /* its __gc ran (the state is closing) */
};

static const char orphans_key = 'O'; /* its context slot (ctx.h) */

static int orphans_gc(lua_State *L) {
  struct orphans *o = lua_touserdata(L, 1);
  for (size_t i = 0; i < o->n; i++) /* (children still running: not ours to wait) */
    io_close(&o->list[i].pidfd);
  free(o->list);
  o->list = NULL;
  o->n = o->cap = 0;
  o->closed = 1;
  return 0;
}

/* The state's list, made on first use (never from a finalizer). */
struct orphans *orphans_make(lua_State *L, struct curio_ctx *ctx) {
  struct orphans *o = ctx_slot_find(ctx, &orphans_key);
  return o != NULL ? o : ctx_slot_make(L, ctx, &orphans_key, sizeof *o, orphans_gc);
}

/* Reaps the orphans that have exited (o: NULL, or orphans_make's). */
void orphans_reap(struct orphans *o) {
  if (o == NULL) return;
  for (size_t i = 0; i < o->n;) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    struct orphan *c = &o->list[i];
    int rc = c->pidfd.fd >= 0 ? waitid(P_PIDFD, (id_t)c->pidfd.fd, &si, WEXITED | WNOHANG)
                              : waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG);
    if ((rc == 0 && si.si_pid != 0) || (rc < 0 && errno != EINTR)) {
      io_close(&c->pidfd);
      *c = o->list[--o->n];
    } else {
      i++;
    }
  }
}

/* ctx's list (NULL when no spawn made one). */
struct orphans *orphans_of(struct curio_ctx *ctx) {
  return ctx_slot_find(ctx, &orphans_key);
}

/* Hands the child `pid` to ctx's list with its pidfd handle h (no watcher
 * active; fd -1 when polled), which is closed once the child is reaped (or
 * at once when there is no list). h is closed (fd -1) after. */
void orphans_add(struct curio_ctx *ctx, struct io_handle *h, pid_t pid) {
  struct orphans *o = ctx_slot_find(ctx, &orphans_key);
  if (o == NULL || o->closed) { io_close(h); return; }
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    struct orphan *grown = realloc(o->list, cap * sizeof *grown);
    if (grown == NULL) { /* (no memory: the child stays a zombie until we exit) */
      io_close(h);
      return;
    }
    o->list = grown;
    o->cap = cap;
  }
  o->list[o->n].pidfd = *h; /* (moved: no watcher, no job shares a pidfd) */
  o->list[o->n].pid = pid;
  o->n++;
  h->fd = -1;
}
