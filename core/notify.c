/* core/notify.c: a kernel's inbox for wake-ups from other threads, the one
 * way worker threads and Universal objects reach a kernel (libuv's
 * threadpool hands work back the same way).
 *
 * Rules:
 * 1. One per kernel, made on first use (a kernel hook), freed with it.
 * 2. Any thread posts a node under the inbox's lock and calls
 *    ev_async_send; the kernel's callback takes the whole list under the
 *    lock and fires each node outside it.
 * 3. The kernel may take back a node still posted (a waiter cancelled
 *    before its wake-up was handled): then it will not fire.
 * 4. The async watcher keeps the loop alive only while something is
 *    expected (notifier_hold counts it): a kernel expecting nothing pays
 *    nothing and its deadlock detection still works. */
#include <pthread.h>
#include <stdlib.h>
#include <ev.h>
#include <lauxlib.h>
#include "notify.h"
#include "kernel.h"

struct notifier {
  struct kernel_hook hook;  /* first: found by kernel_find_hook */
  struct kernel *k;
  pthread_mutex_t lock;
  struct list posted;
  ev_async async;
  long held;                /* rule 4; the kernel's thread only */
};

static void notify_cb(struct ev_loop *loop, ev_async *a, int revents) {
  struct notifier *nf = (struct notifier *)((char *)a - offsetof(struct notifier, async));
  struct list batch;
  (void)loop; (void)revents;
  list_init(&batch);
  pthread_mutex_lock(&nf->lock);
  for (struct list *n; (n = list_first(&nf->posted)) != NULL;) {
    list_remove(n);
    LIST_ENTRY(n, struct notify_node, node)->posted = 0;
    list_insert_tail(&batch, n);
  }
  pthread_mutex_unlock(&nf->lock);
  for (struct list *n; (n = list_first(&batch)) != NULL;) {
    list_remove(n);
    struct notify_node *node = LIST_ENTRY(n, struct notify_node, node);
    node->fire(node);
  }
}

static void notifier_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct notifier *nf = (struct notifier *)hook;
  (void)L;
  if (nf->held == 0) ev_ref(k->loop); /* undo the start's unref */
  ev_async_stop(k->loop, &nf->async);
  pthread_mutex_destroy(&nf->lock);
  free(nf);
}

/* k's inbox, made on first use (rule 1; raises when out of memory). */
struct notifier *notifier_get(lua_State *L, struct kernel *k) {
  struct kernel_hook *hook = kernel_find_hook(k, notifier_close);
  if (hook != NULL) return (struct notifier *)hook;
  struct notifier *nf = calloc(1, sizeof *nf);
  if (nf == NULL) luaL_error(L, "not enough memory");
  nf->k = k;
  pthread_mutex_init(&nf->lock, NULL);
  list_init(&nf->posted);
  ev_async_init(&nf->async, notify_cb);
  ev_async_start(k->loop, &nf->async);
  ev_unref(k->loop); /* rule 4 */
  nf->hook.close = notifier_close;
  kernel_add_hook(k, &nf->hook);
  return nf;
}

/* Any thread (rule 2). The caller may hold its own lock (taken first). */
void notifier_post(struct notifier *nf, struct notify_node *n) {
  pthread_mutex_lock(&nf->lock);
  n->posted = 1;
  list_insert_tail(&nf->posted, &n->node);
  pthread_mutex_unlock(&nf->lock);
  ev_async_send(nf->k->loop, &nf->async); /* (thread-safe) */
}

/* The kernel's thread: takes n back if still posted (rule 3); -> 1 if so. */
int notifier_take_back(struct notifier *nf, struct notify_node *n) {
  pthread_mutex_lock(&nf->lock);
  int was = n->posted;
  if (was) { list_remove(&n->node); n->posted = 0; }
  pthread_mutex_unlock(&nf->lock);
  return was;
}

/* The kernel's thread: delta more (or fewer) things expected (rule 4). */
void notifier_hold(struct notifier *nf, long delta) {
  long before = nf->held;
  nf->held += delta;
  if (before == 0 && nf->held > 0) ev_ref(nf->k->loop);
  else if (before > 0 && nf->held == 0) ev_unref(nf->k->loop);
}
