/* core/inbox.h: a kernel's inbox, where other threads post wake-ups for
 * it (rules in inbox.c). */
#ifndef CURIO_INBOX_H
#define CURIO_INBOX_H

#include <lua.h>
#include "list.h"

struct kernel;
struct inbox;

/* What a thread posts: `fire` runs in the kernel's thread, outside the
 * inbox's lock, once per post. */
struct inbox_item {
  struct list node;
  void (*fire)(struct inbox_item *item);
  int posted;            /* under the inbox's lock */
};

struct inbox *inbox_get(lua_State *L, struct kernel *k);
void inbox_post(struct inbox *ib, struct inbox_item *item);
int inbox_take_back(struct inbox *ib, struct inbox_item *item);
void inbox_hold(struct inbox *ib, long delta);

#endif
