/* core/group.c: the per-task bookkeeping of curio.TaskGroup, in C because a
 * group spawning and collecting 100,000 tasks is a hot path; the policies
 * (wait modes, cancellation, results) are Lua, lua/curio/taskgroup.lua.
 *
 * Rules:
 * 1. A member is RUNNING until its completion is taken (take), then DONE.
 *    Daemons of a group belong to it (task_group(t)) but are not members.
 * 2. A member that ends is handed to the first task waiting in take(), or
 *    queued (done list, in the order they ended). take() marks it DONE.
 * 3. leave(t) takes a task out: it leaves the done list if queued; when no
 *    RUNNING member is left, tasks waiting in take() wake with nothing.
 * 4. Members are kept, in the order added, in the user value table (with
 *    stale entries of tasks that left; members() compacts it); its member slot
 *    is a member's index there, by which take() finds its userdata.
 * 5. A task holds its group's userdata (XUV_GROUP of its ext record) while
 *    it belongs to it, so a group outlives its live tasks; its __gc
 *    detaches what is left.
 * A task's membership (struct task_member) lives in its ext record, made
 * when it joins: tasks in no group pay nothing for groups. */
#include <string.h>
#include <lauxlib.h>
#include "group.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "errors.h"

static void push_members(lua_State *L, struct group *g, int gidx);

static const char group_marker = 'G'; /* its address marks our groups */

/* A group is a full userdata of our size starting with &group_marker (as
 * queues, queue.c: cheaper than a metatable lookup on every take). */
static struct group *group_check(lua_State *L, int idx) {
  struct group *g = lua_touserdata(L, idx);
  if (g == NULL || lua_rawlen(L, idx) != sizeof *g || g->magic != &group_marker)
    luaL_typeerror(L, idx, "group");
  return g;
}

/* The membership record of a task known to be in a group. */
static struct task_member *M(struct task *t) {
  return &t->ext->member;
}

static void done_append(struct group *g, struct task *t) {
  struct task_member *m = M(t);
  m->next = NULL;
  m->prev = g->done_tail;
  if (g->done_tail) M(g->done_tail)->next = t; else g->done_head = t;
  g->done_tail = t;
  m->queued = 1;
}

static void done_unlink(struct group *g, struct task *t) {
  struct task_member *m = M(t);
  if (!m->queued) return;
  if (m->prev) M(m->prev)->next = m->next; else g->done_head = m->next;
  if (m->next) M(m->next)->prev = m->prev; else g->done_tail = m->prev;
  m->next = m->prev = NULL;
  m->queued = 0;
}

/* A RUNNING member t (its userdata at idx) has ended (rule 2). */
static void member_ended(lua_State *L, struct group *g, struct task *t, int idx) {
  struct task *waiter = waitq_pop(&g->waiters);
  if (waiter == NULL) { done_append(g, t); return; }
  M(t)->state = GROUP_DONE;
  g->live--;
  waitq_hand_over(L, waiter, idx);
}

/* Called by task_finish for a task in a group. */
void group_task_done(lua_State *L, struct task *t) {
  if (M(t)->state != GROUP_RUNNING) return;
  task_push(L, t);
  member_ended(L, M(t)->group, t, lua_gettop(L));
  lua_pop(L, 1);
}

/* Makes the task at idx belong to the group at gidx (member unless daemon). */
static void join_group(lua_State *L, int gidx, struct task *t, int idx, int daemon) {
  struct group *g = lua_touserdata(L, gidx);
  struct task_member *m = &task_ext(L, t, idx)->member;
  lua_pushvalue(L, gidx);
  task_set_xvalue(L, t, idx, XUV_GROUP);
  m->group = g;
  if (daemon) return;
  m->state = GROUP_RUNNING;
  g->count++;
  g->live++;
  lua_getiuservalue(L, gidx, 1);
  lua_pushvalue(L, idx);
  m->slot = ++g->norder;
  lua_rawseti(L, -2, m->slot);
  lua_pop(L, 1);
  if (t->state == TASK_DONE) member_ended(L, g, t, idx); /* ended before it was added */
}

static int l_group_new(lua_State *L) {
  struct group *g = lua_newuserdatauv(L, sizeof *g, 1);
  memset(g, 0, sizeof *g);
  g->magic = &group_marker;
  waitq_init(&g->waiters);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, GROUP_MT);
  return 1;
}

/* core.group_spawn(g, daemon, fn, ...) -> a new task in the group. */
static int l_group_spawn(lua_State *L) {
  group_check(L, 1);
  errors_checkfunction(L, 3, "spawn");
  struct task *self = trap_current(L, "spawn");
  struct task *t = task_spawn(L, self->k, 3, lua_gettop(L) - 3);
  int daemon = lua_toboolean(L, 2);
  t->daemon = (unsigned char)daemon;
  join_group(L, 1, t, lua_gettop(L), daemon);
  return 1;
}

/* TaskGroup.spawn(self, fn, ...) -> a new member task: the method itself,
 * in C because 100,000 spawns into a group pass here (self is the Lua
 * TaskGroup table, with its core group in self._core). */
static int l_group_spawn_member(lua_State *L) {
  int nargs = lua_gettop(L) - 2;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_type(L, 2) != LUA_TFUNCTION)
    return luaL_error(L, "bad argument #1 to 'spawn' (function expected, got %s)",
                      lua_isnone(L, 2) ? "no value" : luaL_typename(L, 2));
  if (nargs < 0) nargs = 0;
  lua_settop(L, nargs + 2);
  if (lua_getfield(L, 1, "_joined") != LUA_TBOOLEAN || lua_toboolean(L, -1))
    return errors_raise(L, "CurioError", "TaskGroup.spawn: task group already joined");
  lua_getfield(L, 1, "_core");
  int gidx = lua_gettop(L);
  group_check(L, gidx);
  struct task *self = trap_current(L, "spawn");
  struct task *t = task_spawn(L, self->k, 2, nargs);
  join_group(L, gidx, t, lua_gettop(L), 0);
  return 1;
}

/* g:add(task, daemon): an existing task joins (checked free in Lua). */
static int l_group_add(lua_State *L) {
  group_check(L, 1);
  struct task *t = task_check(L, 2);
  if (task_group(t) != NULL) return errors_raise(L, "CurioError", "task already in a task group");
  join_group(L, 1, t, 2, lua_toboolean(L, 3));
  return 0;
}

/* Takes the task at tidx out of its group (rule 3); -> the state it had
 * (3 for a daemon). task:join() calls it too: a task joined on its own
 * leaves its group, as in curio. */
int group_leave(lua_State *L, int tidx) {
  struct task *t = lua_touserdata(L, tidx);
  struct task_member *m = M(t);
  struct group *g = m->group;
  int state = m->state;
  tidx = lua_absindex(L, tidx);
  done_unlink(g, t);
  if (state != GROUP_NONE) g->count--;
  if (state == GROUP_RUNNING) g->live--;
  m->state = GROUP_NONE;
  m->group = NULL;
  task_get_xvalue(L, t, tidx, XUV_GROUP); /* keeps the group alive meanwhile */
  int gidx = lua_gettop(L);
  lua_pushnil(L);
  task_set_xvalue(L, t, tidx, XUV_GROUP);
  if (g->norder - g->count > 64 && g->norder - g->count > g->count) {
    push_members(L, g, gidx); /* drop the stale entries: they hold ended tasks */
    lua_pop(L, 1);
  }
  if (g->live == 0) /* rule 3 */
    while (g->waiters.head != NULL) waitq_hand_over(L, waitq_pop(&g->waiters), 0);
  lua_settop(L, gidx - 1);
  return state == GROUP_NONE ? 3 : state;
}

/* g:leave(task) -> the state it had (0: it was not in this group). */
static int l_group_leave(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct task *t = task_check(L, 2);
  lua_pushinteger(L, task_group(t) == g ? group_leave(L, 2) : 0);
  return 1;
}

static int take_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *self = trap_resumed(L);
  (void)status;
  if (trap_result(L, self, (int)ctx) == 0) return 0; /* no member left */
  struct task *t = lua_touserdata(L, -1);
  lua_pushboolean(L, t->failed);
  return 2;
}

/* g:take() -> the next member to have ended (marked DONE) and whether it
 * failed, waiting for one; nothing when no RUNNING member is left. */
static int l_group_take(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct task *t = g->done_head;
  if (t != NULL) {
    done_unlink(g, t);
    M(t)->state = GROUP_DONE;
    g->live--;
    lua_getiuservalue(L, 1, 1); /* a task that ended has no registry ref: */
    lua_rawgeti(L, -1, M(t)->slot); /* its slot in the member list has it */
    lua_pushboolean(L, t->failed);
    return 2;
  }
  if (g->live == 0) return 0;
  struct task *self = trap_enter(L, "TaskGroup.next_done");
  lua_settop(L, 1); /* the group stays referenced while we wait */
  waitq_append(&g->waiters, self);
  return trap_suspend(L, self, WAIT_QUEUE, take_k);
}

/* g:state(task) -> 0 none, 1 RUNNING, 2 DONE, 3 a daemon of this group. */
static int l_group_state(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct task *t = task_check(L, 2);
  lua_pushinteger(L, task_group(t) != g ? 0 : M(t)->state == GROUP_NONE ? 3 : M(t)->state);
  return 1;
}

/* g:counts() -> members, RUNNING members */
static int l_group_counts(lua_State *L) {
  struct group *g = group_check(L, 1);
  lua_pushinteger(L, g->count);
  lua_pushinteger(L, g->live);
  return 2;
}

/* Pushes the list of members in the order added (rule 4) and compacts the
 * member list when most of it is stale. The group is at gidx. */
static void push_members(lua_State *L, struct group *g, int gidx) {
  unsigned mark = ++g->mark;
  lua_Integer n = 0;
  lua_getiuservalue(L, gidx, 1);
  int order = lua_gettop(L);
  lua_createtable(L, (int)g->count, 0);
  for (lua_Integer i = 1; i <= g->norder; i++) {
    lua_rawgeti(L, order, i);
    struct task *t = lua_touserdata(L, -1);
    if (t != NULL && task_group(t) == g && M(t)->state != GROUP_NONE && M(t)->mark != mark) {
      M(t)->mark = mark;
      lua_rawseti(L, order + 1, ++n);
    } else {
      lua_pop(L, 1);
    }
  }
  if (g->norder - n > 64 && g->norder - n > n) { /* keep only the members */
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, order + 1, i);
      M((struct task *)lua_touserdata(L, -1))->slot = i;
      lua_rawseti(L, -2, i);
    }
    lua_setiuservalue(L, gidx, 1);
    g->norder = n;
  }
  lua_remove(L, order);
}

/* g:members() -> list of members in the order added. */
static int l_group_members(lua_State *L) {
  push_members(L, group_check(L, 1), 1);
  return 1;
}

/* __gc: whatever still belongs to the group forgets it (rule 5). */
static int l_group_gc(lua_State *L) {
  struct group *g = group_check(L, 1);
  lua_getiuservalue(L, 1, 1);
  for (lua_Integer i = 1; i <= g->norder; i++) {
    lua_rawgeti(L, -1, i);
    struct task *t = lua_touserdata(L, -1);
    if (t != NULL && task_group(t) == g) {
      M(t)->group = NULL;
      M(t)->state = GROUP_NONE;
      M(t)->queued = 0;
    }
    lua_pop(L, 1);
  }
  waitq_detach_all(&g->waiters);
  return 0;
}

static const luaL_Reg group_methods[] = {
  {"add", l_group_add},
  {"leave", l_group_leave},
  {"take", l_group_take},
  {"state", l_group_state},
  {"counts", l_group_counts},
  {"members", l_group_members},
  {NULL, NULL}
};

/* core.group_of(task) -> the group userdata the task belongs to, or nil. */
static int l_group_of(lua_State *L) {
  struct task *t = task_check(L, 1);
  if (task_group(t) == NULL) return 0;
  task_get_xvalue(L, t, 1, XUV_GROUP);
  return 1;
}

/* Registers the metatable and the functions; the module table is on top. */
void group_open(lua_State *L, int ctx) {
  luaL_newmetatable(L, GROUP_MT);
  lua_newtable(L);
  for (const luaL_Reg *f = group_methods; f->name != NULL; f++) {
    lua_pushvalue(L, ctx);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_group_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushliteral(L, "locked");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  static const luaL_Reg functions[] = {
    {"group", l_group_new}, {"group_spawn", l_group_spawn}, {"group_of", l_group_of},
    {"group_spawn_member", l_group_spawn_member}, {NULL, NULL}};
  for (const luaL_Reg *f = functions; f->name != NULL; f++) {
    lua_pushvalue(L, ctx);
    lua_pushcclosure(L, f->func, 1);
    lua_setfield(L, -2, f->name);
  }
}
