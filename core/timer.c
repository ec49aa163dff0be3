/* core/timer.c: one libev timer for all of a kernel's tasks.
 *
 * Tasks that wait with a deadline (sleep, a timeout block) sit in a binary
 * min-heap ordered by deadline; one ev_timer is armed for the earliest. A
 * task carries only its index in the heap (t->timer_slot, 0 when absent),
 * where an ev_timer of its own cost 48 bytes in every task, sleeping or not,
 * and libev 16 more per active timer.
 *
 * Rules:
 * 1. Only timer_reserve allocates (at spawn, where an error can be raised:
 *    the heap then has room for every live task, each being in it at most
 *    once); adding, removing and firing never allocate.
 * 2. The watcher is re-armed only when the earliest deadline moves earlier;
 *    one that fires early (the earliest node was removed meanwhile) finds
 *    nothing due and re-arms for the new earliest. It is stopped when the
 *    heap is empty, so an idle kernel keeps no loop alive.
 * 3. Deadlines are kernel_clock() times. libev measures a timer from its
 *    cached loop time: refreshing it first, and adding a microsecond,
 *    keeps the watcher from firing before the deadline it was armed for. */
#include <stdlib.h>
#include "timer.h"
#include "kernel.h"
#include "task.h"

static void heap_set(struct timer_heap *h, size_t i, struct timer_node node) {
  h->nodes[i] = node;
  node.t->timer_slot = (unsigned)i + 1;
}

static void sift_up(struct timer_heap *h, size_t i) {
  struct timer_node node = h->nodes[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (h->nodes[parent].at <= node.at) break;
    heap_set(h, i, h->nodes[parent]);
    i = parent;
  }
  heap_set(h, i, node);
}

static void sift_down(struct timer_heap *h, size_t i) {
  struct timer_node node = h->nodes[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= h->count) break;
    if (child + 1 < h->count && h->nodes[child + 1].at < h->nodes[child].at) child++;
    if (h->nodes[child].at >= node.at) break;
    heap_set(h, i, h->nodes[child]);
    i = child;
  }
  heap_set(h, i, node);
}

static void rearm(struct kernel *k) {
  struct timer_heap *h = &k->timers;
  if (h->count == 0) {
    if (ev_is_active(&h->watcher)) ev_timer_stop(k->loop, &h->watcher);
    return;
  }
  double at = h->nodes[0].at;
  if (ev_is_active(&h->watcher)) {
    if (at >= h->armed_at) return; /* rule 2: it fires early at worst */
    ev_timer_stop(k->loop, &h->watcher);
  }
  ev_now_update(k->loop);
  double delay = at - kernel_clock() + 1e-6;
  ev_timer_set(&h->watcher, delay > 0 ? delay : 0, 0);
  ev_timer_start(k->loop, &h->watcher);
  h->armed_at = at;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct timer_heap *h = (struct timer_heap *)((char *)w - offsetof(struct timer_heap, watcher));
  struct kernel *k = (struct kernel *)((char *)h - offsetof(struct kernel, timers));
  double now = kernel_clock();
  (void)loop; (void)revents;
  while (h->count > 0 && h->nodes[0].at <= now) {
    struct timer_node node = h->nodes[0];
    timer_remove(k, node.t);
    h->expired(node.t, node.at, now);
  }
  rearm(k);
}

void timer_init(struct timer_heap *h, timer_expired_fn expired) {
  h->nodes = NULL;
  h->expired = expired;
  h->count = h->cap = 0;
  h->armed_at = 0;
  ev_init(&h->watcher, timer_cb);
}

/* Makes room for `count` tasks in the heap; 0 when out of memory. */
int timer_reserve(struct kernel *k, size_t count) {
  struct timer_heap *h = &k->timers;
  if (h->cap >= count) return 1;
  size_t cap = h->cap ? h->cap : 64;
  while (cap < count) cap *= 2;
  struct timer_node *grown = realloc(h->nodes, cap * sizeof *grown);
  if (grown == NULL) return 0;
  h->nodes = grown;
  h->cap = cap;
  return 1;
}

/* Puts t in the heap for clock time `at` (t must not be in it; there is
 * room, rule 1). */
void timer_add(struct kernel *k, struct task *t, double at) {
  struct timer_heap *h = &k->timers;
  h->nodes[h->count] = (struct timer_node){ at, t };
  sift_up(h, h->count++);
  rearm(k);
}

/* Takes t out of the heap if it is there. */
void timer_remove(struct kernel *k, struct task *t) {
  struct timer_heap *h = &k->timers;
  size_t i = t->timer_slot;
  if (i == 0) return;
  i--;
  t->timer_slot = 0;
  h->count--;
  if (h->count == 0 && ev_is_active(&h->watcher)) /* rule 2 */
    ev_timer_stop(k->loop, &h->watcher);
  if (i == h->count) return;
  struct timer_node last = h->nodes[h->count];
  h->nodes[i] = last;
  last.t->timer_slot = (unsigned)i + 1;
  if (i > 0 && last.at < h->nodes[(i - 1) / 2].at) sift_up(h, i);
  else sift_down(h, i);
}

/* Empties the heap and stops the watcher (kernel_free). */
void timer_free(struct kernel *k) {
  struct timer_heap *h = &k->timers;
  for (size_t i = 0; i < h->count; i++) h->nodes[i].t->timer_slot = 0;
  if (ev_is_active(&h->watcher)) ev_timer_stop(k->loop, &h->watcher);
  free(h->nodes);
  h->nodes = NULL;
  h->count = h->cap = 0;
}
