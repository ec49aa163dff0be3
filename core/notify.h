/* core/notify.h: a kernel's inbox for wake-ups from other threads (rules
 * in notify.c). */
#ifndef CURIO_NOTIFY_H
#define CURIO_NOTIFY_H

#include <lua.h>
#include "list.h"

struct kernel;
struct notifier;

/* What a thread posts: `fire` runs in the kernel's thread, outside the
 * notifier's lock, once per post. */
struct notify_node {
  struct list node;
  void (*fire)(struct notify_node *n);
  int posted;            /* under the notifier's lock */
};

struct notifier *notifier_get(lua_State *L, struct kernel *k);
void notifier_post(struct notifier *nf, struct notify_node *n);
int notifier_take_back(struct notifier *nf, struct notify_node *n);
void notifier_hold(struct notifier *nf, long delta);

#endif
