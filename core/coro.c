/* core/coro.c: curio.coroutine's resume and wrap, which let a coroutine the
 * user resumes inside a task make blocking calls.
 *
 * While resume runs the user's coroutine, the task's `active` thread is that
 * coroutine, so its traps are allowed (trap_enter refuses any other thread).
 * A trap yields the sentinel; resume sees it and yields the sentinel itself,
 * up to the kernel (or to an outer curio.coroutine). When the kernel resumes
 * the task, resume's continuation resumes the user's coroutine again with
 * whatever values the kernel handed over, and the trap's continuation runs.
 *
 * A coroutine whose blocking call is passing through (it is "parked": its
 * task waits) belongs to that wait: resuming it from anywhere else (another
 * task calling the same generator), or closing it, would run or discard the
 * trap's continuation behind the kernel's back (a lock acquired twice, a
 * lock never released). curio.coroutine's resume, wrap, close and status
 * know parked coroutines (a weak set in the registry) and treat them as
 * running ones: resume and close refuse, status says "normal". */
#include <lauxlib.h>
#include "coro.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "errors.h"

static const char parked_key = 'P'; /* the registry key of the weak set */

/* Pushes the set of parked coroutines, made on first use. */
static void push_parked(lua_State *L) {
  ctx_push_weak(L, &parked_key, "k");
}

/* Marks the coroutine at idx parked (flag 1) or not (0). */
static void set_parked(lua_State *L, int idx, int flag) {
  idx = lua_absindex(L, idx);
  push_parked(L);
  lua_pushvalue(L, idx);
  if (flag) lua_pushboolean(L, 1); else lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static int is_parked(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &parked_key) != LUA_TTABLE) { lua_pop(L, 1); return 0; }
  lua_pushvalue(L, idx);
  int parked = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return parked;
}

/* The task whose active thread is L (the resumer), or NULL. */
static struct task *resumer_task(lua_State *L) {
  struct kernel *k = ctx_get(L)->running;
  if (k == NULL || k->current == NULL || task_active(k->current) != L) return NULL;
  return k->current;
}

static int resume_k(lua_State *L, int status, lua_KContext ctx);

/* Resumes co (stack slot 1 of L) with nargs values already moved onto it.
 * wrap != 0: return results or raise, as coroutine.wrap does. */
static int resume_loop(lua_State *L, lua_State *co, int nargs, int wrap) {
  struct task *t = resumer_task(L);
  struct task_ext *x = NULL;
  lua_State *prev = NULL;
  int nres = 0, status, prev_nested = 0;
  /* A resume made where L cannot yield (a sort comparator, say) leaves the
   * coroutine unable to block: its traps see no active thread and refuse. */
  if (t != NULL) {
    x = task_ext(L, t, 0);
    prev = x->active;
    prev_nested = x->nested;
    x->active = lua_isyieldable(L) ? co : NULL;
    x->nested = 1;
  }
  status = lua_resume(co, L, nargs, &nres);
  if (x != NULL) { x->active = prev; x->nested = prev_nested; }
  if (status == LUA_YIELD && nres == 1 && trap_is_sentinel(co, -1)) {
    lua_pop(co, 1);
    lua_settop(L, 1);
    set_parked(L, 1, 1);
    trap_push_sentinel(L);
    return lua_yieldk(L, 1, (lua_KContext)wrap, resume_k);
  }
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      return luaL_error(L, "too many results to resume");
    }
    if (!wrap) lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + (wrap ? 0 : 1);
  }
  lua_xmove(co, L, 1); /* the error */
  if (wrap || errors_is_cancel(L, -1)) {
    if (wrap) { /* dead, as with coroutine.wrap: closing leaves the error on co */
#if LUA_VERSION_RELEASE_NUM >= 50406
      lua_closethread(co, L);
#else
      lua_resetthread(co);
#endif
      lua_settop(co, 0);
    }
    return lua_error(L); /* a cancellation is never swallowed */
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

/* Back from the kernel: pass what it handed over to the user's coroutine. */
static int resume_k(lua_State *L, int status, lua_KContext ctx) {
  lua_State *co = lua_tothread(L, 1);
  int nargs = lua_gettop(L) - 1;
  (void)status;
  trap_resumed(L);
  set_parked(L, 1, 0);
  if (!lua_checkstack(co, nargs)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, nargs);
  return resume_loop(L, co, nargs, (int)ctx);
}

static int start(lua_State *L, lua_State *co, int first, int wrap) {
  int nargs = lua_gettop(L) - first + 1;
  int st = lua_status(co);
  lua_Debug ar;
  if (co == L || (st == LUA_OK && lua_getstack(co, 0, &ar)) || (st == LUA_YIELD && is_parked(L, 1)))
    return luaL_error(L, "cannot resume non-suspended coroutine");
  if (st != LUA_YIELD && !(st == LUA_OK && lua_gettop(co) > 0)) {
    if (wrap) return luaL_error(L, "cannot resume dead coroutine");
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume dead coroutine");
    return 2;
  }
  if (!lua_checkstack(co, nargs)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, nargs);
  return resume_loop(L, co, nargs, wrap);
}

/* curio.coroutine.resume(co, ...) -> true, ... | false, err */
static int l_co_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  if (co == NULL) errors_typeerror(L, 1, "resume", "coroutine");
  return start(L, co, 2, 0);
}

static int wrap_call(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(2));
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  return start(L, co, 2, 1);
}

/* curio.coroutine.wrap(fn) -> function resuming a new coroutine */
static int l_co_wrap(lua_State *L) {
  errors_checkfunction(L, 1, "wrap");
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, -2);
  lua_pushcclosure(L, wrap_call, 2);
  return 1;
}

/* curio.coroutine.close(co): as coroutine.close, refusing a parked one. */
static int l_co_close(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  if (co == NULL) return errors_typeerror(L, 1, "close", "coroutine");
  if (is_parked(L, 1))
    return luaL_error(L, "cannot close a coroutine blocked in a curio call");
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "close");
  lua_pushvalue(L, 1);
  lua_call(L, 1, LUA_MULTRET);
  return lua_gettop(L) - 2;
}

/* curio.coroutine.status(co): as coroutine.status; "normal" when parked. */
static int l_co_status(lua_State *L) {
  if (lua_tothread(L, 1) == NULL) return errors_typeerror(L, 1, "status", "coroutine");
  if (is_parked(L, 1)) { lua_pushliteral(L, "normal"); return 1; }
  lua_getglobal(L, "coroutine");
  lua_getfield(L, -1, "status");
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

const luaL_Reg coro_functions[] = {
  {"co_close", l_co_close},
  {"co_status", l_co_status},
  {"co_resume", l_co_resume},
  {"co_wrap", l_co_wrap},
  {NULL, NULL}
};
