/* core/orphan.c: a Lua state's orphans, the children whose Process was
 * collected while they ran (process.c's rule 5): reaped when they are seen
 * to have exited, at every spawn and when a kernel closes, so that curio
 * leaves no zombie behind. Each is held by its pidfd or, polled (no
 * pidfd_open), by -pid: not reaped yet, the pid cannot have been reused. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "orphan.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* One per state, in a context slot made by the first spawn: no static state. */
struct orphans {
  int *ids;
  size_t n, cap;
  int closed;  /* its __gc ran (the state is closing) */
};

static const char orphans_key = 'O'; /* its context slot (ctx.h) */

static int orphans_gc(lua_State *L) {
  struct orphans *o = lua_touserdata(L, 1);
  for (size_t i = 0; i < o->n; i++) /* (children still running: not ours to wait) */
    if (o->ids[i] >= 0) close(o->ids[i]);
  free(o->ids);
  o->ids = NULL;
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
    int id = o->ids[i];
    int rc = id >= 0 ? waitid(P_PIDFD, (id_t)id, &si, WEXITED | WNOHANG)
                     : waitid(P_PID, (id_t)-id, &si, WEXITED | WNOHANG);
    if ((rc == 0 && si.si_pid != 0) || (rc < 0 && errno != EINTR)) {
      if (id >= 0) close(id);
      o->ids[i] = o->ids[--o->n];
    } else {
      i++;
    }
  }
}

/* ctx's list (NULL when no spawn made one). */
struct orphans *orphans_of(struct curio_ctx *ctx) {
  return ctx_slot_find(ctx, &orphans_key);
}

/* Hands the child `id` (a pidfd, or -pid) to ctx's list, which closes the
 * pidfd once it is reaped (or at once when there is no list). */
void orphans_add(struct curio_ctx *ctx, int id) {
  struct orphans *o = ctx_slot_find(ctx, &orphans_key);
  if (o == NULL || o->closed) { if (id >= 0) close(id); return; }
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    int *grown = realloc(o->ids, cap * sizeof *grown);
    if (grown == NULL) { /* (no memory: the child stays a zombie until we exit) */
      if (id >= 0) close(id);
      return;
    }
    o->ids = grown;
    o->cap = cap;
  }
  o->ids[o->n++] = id;
}
