/* core/timer.h: the kernel's timer heap (rules in timer.c). */
#ifndef CURIO_TIMER_H
#define CURIO_TIMER_H

#include <stddef.h>
#include <ev.h>

struct task;
struct kernel;

struct timer_node {
  double at;        /* kernel_clock() time */
  struct task *t;
};

struct timer_heap {
  struct timer_node *nodes; /* binary min-heap on `at` */
  size_t count, cap;
  ev_timer watcher;         /* armed for the earliest node, or stopped */
  double armed_at;          /* the `at` the watcher was armed for */
};

void timer_init(struct timer_heap *h);
int timer_reserve(struct kernel *k, size_t count);
void timer_add(struct kernel *k, struct task *t, double at);
void timer_remove(struct kernel *k, struct task *t);
void timer_free(struct kernel *k);

/* Called by the heap for a task whose time came (trap.c). */
void trap_timer_expired(struct task *t, double at, double now);

#endif
