/* core/inbox.c: a kernel's inbox, where other threads post wake-ups for
 * it: the one way worker threads and Universal objects reach a kernel (libuv's
 * threadpool hands work back the same way).
 *
 * Rules:
 * 1. One per kernel, made on first use (a kernel hook), freed with it.
 * 2. Any thread posts an item under the inbox's lock and calls
 *    ev_async_send; the kernel's callback takes the whole list under the
 *    lock and fires each item outside it.
 * 3. The kernel may take back an item still posted (a waiter cancelled
 *    before its wake-up was handled): then it will not fire.
 * 4. The async watcher keeps the loop alive only while something is
 *    expected (inbox_hold counts it): a kernel expecting nothing pays
 *    nothing and its deadlock detection still works. */
#include <pthread.h>
#include <stdlib.h>
#include <ev.h>
#include <lauxlib.h>
#include "inbox.h"
#include "kernel.h"

struct inbox {
  struct kernel_hook hook;  /* first: found by kernel_find_hook */
  struct kernel *k;
  pthread_mutex_t lock;
  struct list posted;
  ev_async async;
  long held;                /* rule 4; the kernel's thread only */
};

static void inbox_cb(struct ev_loop *loop, ev_async *a, int revents) {
  struct inbox *ib = (struct inbox *)((char *)a - offsetof(struct inbox, async));
  struct list batch;
  (void)loop; (void)revents;
  list_init(&batch);
  pthread_mutex_lock(&ib->lock);
  for (struct list *n; (n = list_first(&ib->posted)) != NULL;) {
    list_remove(n);
    LIST_ENTRY(n, struct inbox_item, node)->posted = 0;
    list_insert_tail(&batch, n);
  }
  pthread_mutex_unlock(&ib->lock);
  for (struct list *n; (n = list_first(&batch)) != NULL;) {
    list_remove(n);
    struct inbox_item *item = LIST_ENTRY(n, struct inbox_item, node);
    item->fire(item);
  }
}

static void inbox_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct inbox *ib = (struct inbox *)hook;
  (void)L;
  if (ib->held == 0) ev_ref(k->loop); /* undo the start's unref */
  ev_async_stop(k->loop, &ib->async);
  pthread_mutex_destroy(&ib->lock);
  free(ib);
}

/* k's inbox, made on first use (rule 1; raises when out of memory). */
struct inbox *inbox_get(lua_State *L, struct kernel *k) {
  struct kernel_hook *hook = kernel_find_hook(k, inbox_close);
  if (hook != NULL) return (struct inbox *)hook;
  struct inbox *ib = calloc(1, sizeof *ib);
  if (ib == NULL) luaL_error(L, "not enough memory");
  ib->k = k;
  pthread_mutex_init(&ib->lock, NULL);
  list_init(&ib->posted);
  ev_async_init(&ib->async, inbox_cb);
  ev_async_start(k->loop, &ib->async);
  ev_unref(k->loop); /* rule 4 */
  ib->hook.close = inbox_close;
  kernel_add_hook(k, &ib->hook);
  return ib;
}

/* Any thread (rule 2). The caller may hold its own lock (taken first). */
void inbox_post(struct inbox *ib, struct inbox_item *n) {
  pthread_mutex_lock(&ib->lock);
  n->posted = 1;
  list_insert_tail(&ib->posted, &n->node);
  pthread_mutex_unlock(&ib->lock);
  ev_async_send(ib->k->loop, &ib->async); /* (thread-safe) */
}

/* The kernel's thread: takes n back if still posted (rule 3); -> 1 if so. */
int inbox_take_back(struct inbox *ib, struct inbox_item *n) {
  pthread_mutex_lock(&ib->lock);
  int was = n->posted;
  if (was) { list_remove(&n->node); n->posted = 0; }
  pthread_mutex_unlock(&ib->lock);
  return was;
}

/* The kernel's thread: delta more (or fewer) things expected (rule 4). */
void inbox_hold(struct inbox *ib, long delta) {
  long before = ib->held;
  ib->held += delta;
  if (before == 0 && ib->held > 0) ev_ref(ib->k->loop);
  else if (before > 0 && ib->held == 0) ev_unref(ib->k->loop);
}
