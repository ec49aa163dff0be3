/* core/group.c: the per-task bookkeeping of curio.TaskGroup, in C because a
 * group spawning and collecting 100,000 tasks is a hot path; the policies
 * (wait modes, cancellation, results) are Lua, lua/curio/taskgroup.lua.
 *
 * Rules:
 * 1. A member is "running" until its completion is taken (take), then
 *    "done". Daemons of a group belong to it but are not members.
 * 2. A member that ends is handed to the first task waiting in take(), or
 *    queued (done list, in the order they ended). take() marks it done.
 * 3. leave(t) takes a task out: it leaves the done list if queued; when no
 *    running member is left, tasks waiting in take() wake with nothing.
 * 4. Members are kept, in the order added, in the user value table (with
 *    stale entries of tasks that left; members() compacts it); a member's
 *    slot is its index there, by which take() finds its userdata.
 * 5. A task holds its group's userdata (XUV_GROUP of its ext record) while
 *    it belongs to it, so a group outlives its live tasks; its __gc
 *    detaches what is left.
 * 6. The scheduler knows nothing of groups: a member's record lives in the
 *    hook space of its task's ext record, and the task's end hook
 *    (member_event) tells the group of its end and of a join made on it.
 * 7. close() marks the group joined: spawn and add refuse after it. States
 *    cross into Lua by name: "none", "running", "done", "daemon". */
#include <string.h>
#include <lauxlib.h>
#include "group.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "waitq.h"
#include "wait.h"
#include "errors.h"
#include "ctx.h"

enum member_state { MEMBER_NONE, MEMBER_RUNNING, MEMBER_DONE, MEMBER_DAEMON };
static const char *const state_names[] = {"none", "running", "done", "daemon"};

struct group {
  struct udata_tag tag;            /* see group_check */
  struct list done;                /* ended running members, untaken */
  struct waitq waiters;            /* tasks in take() */
  lua_Integer count, live, norder; /* members, running ones, order slots */
  unsigned mark;                   /* for members(): a pass number */
  int joined;                      /* rule 7 */
};

/* A task's membership, in its ext record's hook space (rule 6). */
struct member {
  struct group *group;
  struct list done_node;           /* in group->done while queued */
  lua_Integer slot;                /* rule 4 */
  unsigned mark;                   /* members()' pass */
  unsigned char state;             /* enum member_state */
};

_Static_assert(sizeof(struct member) <= sizeof(((struct task_ext *)0)->hook_space),
               "a member record fits in a task's hook space");

static void push_members(lua_State *L, struct group *g, int gidx);
static void member_event(lua_State *L, struct task *t, int tidx, int event);

static struct group *group_check(lua_State *L, int idx) {
  return ctx_checkudata(L, idx, MT_GROUP, "group");
}

/* t's membership record, or NULL when it is in no group. */
static struct member *member_of(const struct task *t) {
  if (t->ext == NULL || t->ext->on_event != member_event) return NULL;
  return (struct member *)t->ext->hook_space;
}

static struct group *group_of(const struct task *t) {
  struct member *m = member_of(t);
  return m != NULL ? m->group : NULL;
}

/* A running member t (its userdata at idx) has ended (rule 2). */
static void member_ended(lua_State *L, struct group *g, struct task *t, int idx) {
  struct member *m = member_of(t);
  struct task *waiter = waitq_pop(&g->waiters);
  if (waiter == NULL) { list_insert_tail(&g->done, &m->done_node); return; }
  m->state = MEMBER_DONE;
  g->live--;
  trap_hand_over(L, waiter, idx);
}

/* Makes the task at idx belong to the group at gidx (member unless daemon). */
static void join_group(lua_State *L, int gidx, struct task *t, int idx, int daemon) {
  struct group *g = lua_touserdata(L, gidx);
  struct task_ext *x = task_ext(L, t, idx);
  lua_pushvalue(L, gidx);
  task_set_xvalue(L, t, idx, XUV_GROUP);
  struct member *m = (struct member *)x->hook_space;
  memset(m, 0, sizeof *m);
  list_init(&m->done_node);
  m->group = g;
  x->on_event = member_event;
  if (daemon) { m->state = MEMBER_DAEMON; return; }
  m->state = MEMBER_RUNNING;
  g->count++;
  g->live++;
  lua_getiuservalue(L, gidx, 1);
  lua_pushvalue(L, idx);
  m->slot = ++g->norder;
  lua_rawseti(L, -2, m->slot);
  lua_pop(L, 1);
  if (t->state == TASK_DONE) member_ended(L, g, t, idx); /* ended before it was added */
}

/* Takes the task at tidx out of its group (rule 3); -> the state it had. */
static int group_leave(lua_State *L, struct task *t, int tidx) {
  struct member *m = member_of(t);
  struct group *g = m->group;
  int state = m->state;
  tidx = lua_absindex(L, tidx);
  list_remove(&m->done_node);
  if (state != MEMBER_DAEMON) g->count--;
  if (state == MEMBER_RUNNING) g->live--;
  t->ext->on_event = NULL;
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
    for (struct task *w; (w = waitq_pop(&g->waiters)) != NULL;) trap_hand_over(L, w, 0);
  lua_settop(L, gidx - 1);
  return state;
}

/* The task's end hook (rule 6): its end, or a join made on it (a task
 * joined on its own leaves its group, as in curio). tidx: its userdata's
 * index, or 0 when it is not on the stack (then the task is live). */
static void member_event(lua_State *L, struct task *t, int tidx, int event) {
  struct member *m = member_of(t);
  if (event == TASK_JOINED) { group_leave(L, t, tidx); return; }
  if (m->state != MEMBER_RUNNING) return;
  if (tidx == 0) task_push(L, t); else lua_pushvalue(L, tidx);
  member_ended(L, m->group, t, lua_gettop(L));
  lua_pop(L, 1);
}

static int l_group_new(lua_State *L) {
  struct group *g = lua_newuserdatauv(L, sizeof *g, 1);
  memset(g, 0, sizeof *g);
  g->tag.tag = ctx_tag(MT_GROUP);
  list_init(&g->done);
  waitq_init(&g->waiters);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, GROUP_MT);
  return 1;
}

/* core.group_spawn(g, daemon, fn, ...) -> a new task in the group, which
 * must not be closed (TaskGroup:spawn and spawn_daemon check fn first). */
static int l_group_spawn(lua_State *L) {
  struct group *g = group_check(L, 1);
  int daemon = lua_toboolean(L, 2);
  errors_checkfunction(L, 3, "spawn");
  if (g->joined)
    return errors_raise(L, "CurioError", "TaskGroup.%s: task group already joined",
                        daemon ? "spawn_daemon" : "spawn");
  struct task *self = trap_current(L, daemon ? "spawn_daemon" : "spawn");
  struct task *t = task_spawn(L, self->k, 3, lua_gettop(L) - 3);
  t->daemon = (unsigned)daemon;
  join_group(L, 1, t, lua_gettop(L), daemon);
  return 1;
}

/* g:add(task, daemon): an existing task joins (checked free in Lua). */
static int l_group_add(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct task *t = task_check(L, 2);
  if (g->joined) return errors_raise(L, "CurioError", "TaskGroup.add_task: task group already joined");
  if (group_of(t) != NULL) return errors_raise(L, "CurioError", "task already in a task group");
  struct kernel *k = ctx_get(L)->running;
  if (t->k != NULL && k != NULL && t->k != k)
    return errors_raise(L, "CurioError", "TaskGroup.add_task: the task belongs to another kernel");
  join_group(L, 1, t, 2, lua_toboolean(L, 3));
  return 0;
}

/* g:leave(task) -> the state it had ("none": it was not in this group). */
static int l_group_leave(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct task *t = task_check(L, 2);
  lua_pushstring(L, state_names[group_of(t) == g ? group_leave(L, t, 2) : MEMBER_NONE]);
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

/* A task in take(), as the monitor names it (wait.h). */
static const struct wait_kind take_wait = {"TaskGroup.next_done", waitq_unlink};

/* g:take() -> the next member to have ended (marked done) and whether it
 * failed, waiting for one; nothing when no running member is left. */
static int l_group_take(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct list *node = list_first(&g->done);
  if (node != NULL) {
    struct member *m = LIST_ENTRY(node, struct member, done_node);
    list_remove(node);
    m->state = MEMBER_DONE;
    g->live--;
    lua_getiuservalue(L, 1, 1); /* a task that ended has no registry ref: */
    lua_rawgeti(L, -1, m->slot); /* its slot in the member list has it */
    lua_pushboolean(L, ((struct task *)lua_touserdata(L, -1))->failed);
    return 2;
  }
  if (g->live == 0) return 0;
  struct task *self = trap_enter(L, "TaskGroup.next_done");
  lua_settop(L, 1); /* the group stays referenced while we wait */
  waitq_append(&g->waiters, self);
  return trap_suspend(L, self, &take_wait, take_k);
}

/* g:state(task) -> "none" (not in this group), "running", "done", "daemon". */
static int l_group_state(lua_State *L) {
  struct group *g = group_check(L, 1);
  struct task *t = task_check(L, 2);
  lua_pushstring(L, state_names[group_of(t) == g ? member_of(t)->state : MEMBER_NONE]);
  return 1;
}

/* g:counts() -> members, running members */
static int l_group_counts(lua_State *L) {
  struct group *g = group_check(L, 1);
  lua_pushinteger(L, g->count);
  lua_pushinteger(L, g->live);
  return 2;
}

/* g:close(): the group is joined; nothing may be added any more (rule 7). */
static int l_group_close(lua_State *L) {
  group_check(L, 1)->joined = 1;
  return 0;
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
    struct member *m = t != NULL && group_of(t) == g ? member_of(t) : NULL;
    if (m != NULL && m->state != MEMBER_DAEMON && m->mark != mark) {
      m->mark = mark;
      lua_rawseti(L, order + 1, ++n);
    } else {
      lua_pop(L, 1);
    }
  }
  if (g->norder - n > 64 && g->norder - n > n) { /* keep only the members */
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, order + 1, i);
      member_of(lua_touserdata(L, -1))->slot = i;
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
    if (t != NULL && group_of(t) == g) {
      list_remove(&member_of(t)->done_node);
      t->ext->on_event = NULL;
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
  {"close", l_group_close},
  {"__gc", l_group_gc},
  {NULL, NULL}
};

/* core.group_of(task) -> the group userdata the task belongs to, or nil. */
static int l_group_of(lua_State *L) {
  struct task *t = task_check(L, 1);
  if (group_of(t) == NULL) return 0;
  task_get_xvalue(L, t, 1, XUV_GROUP);
  return 1;
}

/* Registers the metatable and the functions; the module table is on top. */
void group_open(lua_State *L, int ctx) {
  ctx_newtype(L, GROUP_MT, group_methods, ctx, -1);
  static const luaL_Reg functions[] = {
    {"group", l_group_new}, {"group_spawn", l_group_spawn}, {"group_of", l_group_of},
    {NULL, NULL}};
  ctx_functions(L, functions, ctx);
}
