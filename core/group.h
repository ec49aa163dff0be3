/* core/group.h: the bookkeeping of task groups (rules in group.c). */
#ifndef CURIO_GROUP_H
#define CURIO_GROUP_H

#include <lua.h>
#include <lauxlib.h>
#include "waitq.h"

#define GROUP_MT "curio.group"

struct task;

enum group_state { GROUP_NONE, GROUP_RUNNING, GROUP_DONE };

struct group {
  const char *magic;                  /* see group_check */
  struct task *done_head, *done_tail; /* finished RUNNING members, untaken */
  struct waitq waiters;               /* tasks in take() */
  lua_Integer count, live, norder;    /* members, RUNNING ones, order slots */
  unsigned mark;                      /* for members(): a pass number */
};

void group_task_done(lua_State *L, struct task *t);
int group_leave(lua_State *L, int tidx);
void group_open(lua_State *L, int ctx);

#endif
