/* core/taskext.c: what a task holds beside its record: its anchor (the
 * one user value: its function, coroutine or ext record, task.h), the ext
 * record made on first use, its coroutine made when it first runs and
 * dropped once it returned nothing, and its results or error once done. */
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "task.h"

/* t's ext record, made on first use (raises when out of memory); idx is
 * the task userdata's stack index, or 0 when it is not on the stack (then
 * the task must be live: it is found in the kernel's live table). */
struct task_ext *task_ext(lua_State *L, struct task *t, int idx) {
  if (t->ext != NULL) return t->ext;
  luaL_checkstack(L, 3, "task_ext");
  int pushed = idx == 0;
  if (pushed) task_push(L, t);
  idx = lua_absindex(L, pushed ? -1 : idx);
  struct task_ext *x = lua_newuserdatauv(L, sizeof *x, XUV_COUNT);
  memset(x, 0, sizeof *x);
  list_init(&x->crash_node);
  x->crash_task = t;
  lua_getiuservalue(L, idx, TUV_ANCHOR); /* the anchor moves into ext */
  lua_setiuservalue(L, -2, XUV_ANCHOR);
  lua_setiuservalue(L, idx, TUV_ANCHOR);
  if (pushed) lua_pop(L, 1);
  t->ext = x; /* (only after it is anchored: the allocation may raise) */
  return x;
}

/* Pushes ext user value `which` of t (nil when t has no ext); -> its type. */
int task_get_xvalue(lua_State *L, struct task *t, int idx, int which) {
  if (t->ext == NULL) { lua_pushnil(L); return LUA_TNIL; }
  luaL_checkstack(L, 3, "task");
  if (idx == 0) task_push(L, t); else lua_pushvalue(L, idx);
  lua_getiuservalue(L, -1, TUV_ANCHOR);
  int type = lua_getiuservalue(L, -1, which);
  lua_replace(L, -3);
  lua_pop(L, 1);
  return type;
}

/* Pops the value on top into ext user value `which` of t (a nil into a
 * task without ext makes none); idx: as for task_ext, and not negative. */
void task_set_xvalue(lua_State *L, struct task *t, int idx, int which) {
  if (t->ext == NULL && lua_isnil(L, -1)) { lua_pop(L, 1); return; }
  task_ext(L, t, idx);
  luaL_checkstack(L, 3, "task");
  if (idx != 0) { /* (the ext straight from the task at idx: a group's spawn passes here) */
    lua_getiuservalue(L, idx, TUV_ANCHOR);
    lua_insert(L, -2); /* value on top of ext */
    lua_setiuservalue(L, -2, which);
    lua_pop(L, 1);
    return;
  }
  task_push(L, t);
  lua_getiuservalue(L, -1, TUV_ANCHOR);
  lua_rotate(L, -3, -1); /* value on top: ext, task... */
  lua_setiuservalue(L, -2, which);
  lua_pop(L, 2);
}

/* Pushes t's anchor value (its function, coroutine or nil). */
static void push_anchor(lua_State *L, int tidx) {
  lua_getiuservalue(L, tidx, TUV_ANCHOR);
  if (lua_type(L, -1) == LUA_TUSERDATA) { /* the ext record */
    lua_getiuservalue(L, -1, XUV_ANCHOR);
    lua_remove(L, -2);
  }
}

/* Sets t's anchor value to the value on top (popped). */
static void set_anchor(lua_State *L, struct task *t, int tidx) {
  if (t->ext != NULL) {
    lua_getiuservalue(L, tidx, TUV_ANCHOR);
    lua_insert(L, -2);
    lua_setiuservalue(L, -2, XUV_ANCHOR);
    lua_pop(L, 1);
  } else {
    lua_setiuservalue(L, tidx, TUV_ANCHOR);
  }
}

/* Gives a task spawned without arguments its coroutine as it first runs
 * (the kernel calls this, protected, for a batch of starting tasks), so
 * that a task spawned costs its 176 bytes until then: a program that
 * spawns 100,000 tasks before they run touches a sixth of the memory, and
 * tasks that come and go reuse the memory of those that ended. Raises
 * when out of memory. */
void task_make_thread(lua_State *L, struct task *t) {
  luaL_checkstack(L, 4, "task");
  task_push(L, t);
  int tidx = lua_gettop(L);
  lua_State *co = lua_newthread(L);
  push_anchor(L, tidx); /* the function */
  lua_xmove(L, co, 1);
  set_anchor(L, t, tidx); /* the coroutine */
  lua_pop(L, 1);
  t->co = co;
}

/* Drops the coroutine of a task that returned nothing: nothing is left on
 * it, and collecting it early lets a program that spawns many short tasks
 * reuse their memory (no allocation: a nil goes where the coroutine was). */
void task_drop_thread(lua_State *L, struct task *t, int tidx) {
  lua_pushnil(L);
  set_anchor(L, t, tidx);
  t->co = NULL;
}

/* Pushes the error of a failed task (at index 1 of its dead coroutine);
 * one that could not start for want of memory has no coroutine, and its
 * error is Lua's own memory error (an interned string: no allocation). */
void task_push_error(lua_State *L, struct task *t) {
  if (t->co == NULL) {
    lua_pushliteral(L, "not enough memory");
    return;
  }
  lua_pushvalue(t->co, 1);
  lua_xmove(t->co, L, 1);
}

/* Pushes the results of a task that returned (they stay on its dead
 * coroutine, copied there first: both stacks need the room). */
int task_push_results(lua_State *L, struct task *t) {
  int n = t->nresults;
  if (n == 0) return 0; /* (t->co may be gone) */
  luaL_checkstack(L, n, "too many results");
  if (!lua_checkstack(t->co, n)) luaL_error(L, "too many results");
  int base = lua_gettop(t->co) - n;
  for (int i = 1; i <= n; i++) lua_pushvalue(t->co, base + i);
  lua_xmove(t->co, L, n);
  return n;
}

/* Frees the timeout blocks of a task that ended (or whose kernel closed). */
void task_free_deadlines(struct task *t) {
  if (t->ext == NULL) return;
  free(t->ext->deadlines);
  t->ext->deadlines = NULL;
  t->ext->ndeadlines = t->ext->cap_deadlines = 0;
}

