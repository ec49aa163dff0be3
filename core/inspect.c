/* core/inspect.c: task introspection, for the monitor's ps and where
 * (lua/curio/monitor.lua), and the long-block check.
 *
 * Rules:
 * 1. The scheduler keeps, with no system call on a switch, each task's
 *    state, its wait kind (wait.h), the loop time (ev_now) at which it last
 *    became ready or began to wait (t->since) and how many times it was
 *    resumed (t->cycles). This file only reads them and names no wing:
 *    what a task waits in is its wait kind's name.
 * 2. The long-block check (Kernel{debug = {longblock = s}}) costs the
 *    scheduler one predictable branch per step while it is off. On, a step
 *    reads a clock once, after the task ran (a step begins where the one
 *    before ended; a task's end and a report read it once more, so that
 *    their time is nobody's step): CLOCK_MONOTONIC_COARSE (a read of the
 *    vDSO's page, 10 ns on this project's VM where CLOCK_MONOTONIC takes
 *    50) when its resolution is at most a tenth of s, else CLOCK_MONOTONIC.
 * 3. A step longer than s is reported (kernel_report: on stderr, or to an
 *    embedding host's report function) before the task's end (if
 *    it ended) is recorded, while its stack is still there: its id, its
 *    name, how long it ran, and the traceback where it yielded (or failed).
 *    The report is built in a protected call: it never raises into the
 *    scheduler, and it is dropped when memory runs out.
 */
#include <stdio.h>
#include <string.h>
#include "inspect.h"
#include "task.h"
#include "wait.h"
#include "errors.h"

/* ---- Kernel{debug = ...} ---- */

static void debug_error(lua_State *L, int opts, const char *fname, const char *fmt, const char *what) {
  errors_argerror(L, opts, fname, lua_pushfstring(L, fmt, what));
}

/* Checks the debug table at idx (opts: the Kernel{} table) and reads it. */
static void debug_table(lua_State *L, int opts, const char *fname, int idx, int *crashes,
                        double *longblock) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    if (key == NULL || (strcmp(key, "longblock") != 0 && strcmp(key, "crashes") != 0))
      debug_error(L, opts, fname, "option 'debug' has no key %s: it takes 'longblock' and 'crashes'",
                  key != NULL && strlen(key) == lua_rawlen(L, -1) ? lua_pushfstring(L, "'%s'", key)
                                                                  : luaL_typename(L, -1));
  }
  int type = lua_getfield(L, idx, "longblock");
  if (type == LUA_TNUMBER && lua_tonumber(L, -1) > 0 && lua_tonumber(L, -1) < HUGE_VAL)
    *longblock = lua_tonumber(L, -1);
  else if (type != LUA_TNIL && !(type == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
    debug_error(L, opts, fname, "option 'debug.longblock' must be a positive number of seconds "
                         "or false, got %s", type == LUA_TNUMBER ? lua_tostring(L, -1)
                                                                 : luaL_typename(L, -1));
  type = lua_getfield(L, idx, "crashes");
  if (type == LUA_TBOOLEAN) *crashes = lua_toboolean(L, -1);
  else if (type != LUA_TNIL)
    debug_error(L, opts, fname, "option 'debug.crashes' must be a boolean, got %s", luaL_typename(L, -1));
  lua_pop(L, 2);
}

/* Reads the `debug` option of the Kernel{} table at opts: a boolean (crash
 * reports at once, or never: *crashes 1 or 0) or a table {longblock =
 * seconds or false, crashes = boolean}. What is not given stays as it is
 * (*crashes -1: the default; *longblock 0: off). Raises naming the option
 * and fname. */
void inspect_debug_option(lua_State *L, int opts, const char *fname, int *crashes,
                          double *longblock) {
  opts = lua_absindex(L, opts);
  luaL_checkstack(L, 4, "Kernel");
  int type = lua_getfield(L, opts, "debug");
  if (type == LUA_TTABLE) debug_table(L, opts, fname, lua_gettop(L), crashes, longblock);
  else if (type == LUA_TBOOLEAN) *crashes = lua_toboolean(L, -1);
  else if (type != LUA_TNIL)
    debug_error(L, opts, fname, "option 'debug' must be a boolean or a table, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
}

/* Turns the check on for steps longer than `seconds` (0: off), rule 2. */
void inspect_longblock_start(struct kernel *k, double seconds) {
  struct timespec res;
  k->longblock = seconds;
  k->longblock_clock = CLOCK_MONOTONIC;
#ifdef CLOCK_MONOTONIC_COARSE
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 &&
      (double)res.tv_sec + (double)res.tv_nsec * 1e-9 <= seconds / 10)
    k->longblock_clock = CLOCK_MONOTONIC_COARSE;
#else
  (void)res;
#endif
}

/* Builds and prints the report of rule 3, protected: args kernel, task,
 * seconds it ran, the status its resume ended with. */
static int longblock_print(lua_State *L) {
  struct task *t = lua_touserdata(L, 2);
  double ran = lua_tonumber(L, 3);
  int status = (int)lua_tointeger(L, 4);
  task_push(L, t);
  lua_getfield(L, -1, "name"); /* (the task's __index: its name or Task-<id>) */
  const char *name = lua_tostring(L, -1);
  const char *then = "returned";
  if (status == LUA_YIELD && t->state == TASK_WAITING && t->wait != NULL)
    then = lua_pushfstring(L, "waited in %s", t->wait->name);
  else if (status == LUA_YIELD)
    then = "yielded (sleep(0))";
  else if (status != LUA_OK)
    then = "failed";
  char seconds[32];
  snprintf(seconds, sizeof seconds, "%.3f", ran);
  lua_pushfstring(L, "curio: long block: task %I (%s) ran %s s without blocking, then %s",
                  (LUAI_UACINT)t->id, name != NULL ? name : "?", seconds, then);
  if (status != LUA_OK && t->co != NULL) luaL_traceback(L, t->co, lua_tostring(L, -1), 0);
  lua_pushliteral(L, "\n");
  lua_concat(L, 2);
  kernel_report(lua_touserdata(L, 1), lua_tostring(L, -1)); /* (stderr, or the host's) */
  return 0;
}

/* Rule 3: t ran `ran` seconds in its last step, which ended with status
 * (LUA_YIELD: it waits or is ready again; else it ended, not yet recorded). */
void inspect_longblock_report(struct kernel *k, struct task *t, double ran, int status) {
  lua_State *L = k->L;
  if (!lua_checkstack(L, 5)) return;
  lua_pushcfunction(L, longblock_print);
  lua_pushlightuserdata(L, k);
  lua_pushlightuserdata(L, t);
  lua_pushnumber(L, ran);
  lua_pushinteger(L, status);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) lua_pop(L, 1); /* (no memory: no report) */
}

/* ---- core.task_list() ---- */

static const char *const state_names[] = {"READY", "RUNNING", "WAITING", "TERMINATED"};

/* Appends a record of t (rule 1) to the list below kernel_each_task's
 * live table (the top of the stack). */
static void list_one(lua_State *L, struct kernel *k, struct task *t) {
  int list = lua_gettop(L) - 1;
  double seconds = ev_time() - t->since; /* (since is ev_now: the same clock) */
  (void)k;
  luaL_checkstack(L, 3, "task_list");
  lua_createtable(L, 0, 6);
  task_push(L, t);
  lua_setfield(L, -2, "task");
  lua_pushinteger(L, t->id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, state_names[t->state]);
  lua_setfield(L, -2, "state");
  if (t->wait != NULL && t->state != TASK_RUNNING) {
    lua_pushstring(L, t->wait->name);
    lua_setfield(L, -2, "wait");
  }
  lua_pushnumber(L, seconds > 0 ? seconds : 0);
  lua_setfield(L, -2, "seconds");
  lua_pushinteger(L, t->cycles);
  lua_setfield(L, -2, "cycles");
  lua_rawseti(L, list, (lua_Integer)lua_rawlen(L, list) + 1);
}

/* core.task_list() -> a list of records, one per live task of the running
 * kernel, in the order of the kernel's slots: {task = Task, id, state ("READY", "RUNNING",
 * "WAITING"), wait = the wait kind's name or nil, seconds = how long in
 * that state (for the running task: since it was last made ready),
 * cycles = how many times it ran}. */
static int l_task_list(lua_State *L) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL) return errors_raise(L, "CurioError", "task_list: not inside a curio task");
  lua_createtable(L, (int)k->ntasks, 0);
  kernel_each_task(L, k, list_one);
  return 1;
}

const luaL_Reg inspect_functions[] = {
  {"task_list", l_task_list},
  {NULL, NULL}
};
