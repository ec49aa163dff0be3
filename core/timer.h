/* core/timer.h: the kernel's timer heap (rules in timer.c). */
#ifndef CURIO_TIMER_H
#define CURIO_TIMER_H

#include <stddef.h>
#include <ev.h>

struct task;
struct kernel;

/* What the heap calls for a task whose deadline `at` came (now: the
 * clock); the task is out of the heap by then. */
typedef void (*timer_expired_fn)(struct task *t, double at, double now);

struct timer_node {
  double at;        /* kernel_clock() time */
  struct task *t;
};

struct timer_heap {
  struct timer_node *nodes; /* binary min-heap on `at` */
  size_t count, cap;
  ev_timer watcher;         /* armed for the earliest node, or stopped */
  double armed_at;          /* the `at` the watcher was armed for */
  timer_expired_fn expired; /* told of each task whose time came */
};

void timer_init(struct timer_heap *h, timer_expired_fn expired);
int timer_reserve(struct kernel *k, size_t count);
void timer_add(struct kernel *k, struct task *t, double at);
void timer_remove(struct kernel *k, struct task *t);
void timer_free(struct kernel *k);

#endif
