/* core/errors.c: the one place where C builds curio error objects.
 *
 * lua/curio/errors.lua registers its class table with set_errors(); C looks
 * classes up there by name and calls them, Class(message). Before that
 * registration (curio.core used alone) errors are plain strings. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <lauxlib.h>
#include "errors.h"

#define ERRORS_KEY "curio.errors.classes"

/* Pushes a new instance of error class `cls` with `msg`. May raise (memory). */
void errors_push(lua_State *L, const char *cls, const char *msg) {
  luaL_checkstack(L, 4, "errors_push");
  if (lua_getfield(L, LUA_REGISTRYINDEX, ERRORS_KEY) == LUA_TTABLE)
    lua_getfield(L, -1, cls);
  else
    lua_pushnil(L);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushfstring(L, "%s: %s", cls, msg);
    return;
  }
  lua_pushstring(L, msg);
  lua_call(L, 1, 1);
}

/* Raises a new `cls` error with a formatted message; never returns. */
int errors_raise(lua_State *L, const char *cls, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  errors_push(L, cls, msg);
  return lua_error(L);
}

/* True when the value at idx is an instance of the CancelledError family.
 * Reads tables only (no metamethods), so kernel paths may call it. */
int errors_is_cancel(lua_State *L, int idx) {
  int top = lua_gettop(L), result = 0;
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 6, "errors_is_cancel");
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx) &&
      lua_getfield(L, -1, "__class") == LUA_TTABLE &&     /* mt, class */
      lua_getfield(L, -1, "__is") == LUA_TTABLE &&        /* class.__is */
      lua_getfield(L, LUA_REGISTRYINDEX, ERRORS_KEY) == LUA_TTABLE &&
      lua_getfield(L, -1, "CancelledError") == LUA_TTABLE) {
    result = lua_rawget(L, -3) != LUA_TNIL;
  }
  lua_settop(L, top);
  return result;
}

/* set_errors(classes): registers the class table errors.lua made. */
static int l_set_errors(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushvalue(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, ERRORS_KEY);
  return 0;
}

const luaL_Reg errors_functions[] = {
  {"set_errors", l_set_errors},
  {NULL, NULL}
};

/* Argument errors name the public function explicitly: Lua's own
 * luaL_argerror may call curio.core.spawn what users call curio.spawn. */
int errors_argerror(lua_State *L, int arg, const char *fname, const char *msg) {
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

int errors_typeerror(lua_State *L, int arg, const char *fname, const char *tname) {
  const char *got = lua_isnoneornil(L, arg) && lua_type(L, arg) == LUA_TNONE
                        ? "no value" : luaL_typename(L, arg);
  return luaL_error(L, "bad argument #%d to '%s' (%s expected, got %s)", arg, fname, tname, got);
}

void errors_checkfunction(lua_State *L, int arg, const char *fname) {
  if (lua_type(L, arg) != LUA_TFUNCTION) errors_typeerror(L, arg, fname, "function");
}

lua_Number errors_checknumber(lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Number n = lua_tonumberx(L, arg, &isnum);
  if (!isnum) errors_typeerror(L, arg, fname, "number");
  return n;
}

/* A duration in seconds: a number, not NaN, not negative. */
lua_Number errors_checkseconds(lua_State *L, int arg, const char *fname) {
  lua_Number n = errors_checknumber(L, arg, fname);
  if (!(n >= 0)) errors_argerror(L, arg, fname, "non-negative number expected");
  return n;
}

/* ---- system errors ---- */

static const struct { int code; const char *name; } errno_names[] = {
  {ENOENT, "ENOENT"}, {EACCES, "EACCES"}, {EEXIST, "EEXIST"}, {EISDIR, "EISDIR"},
  {ENOTDIR, "ENOTDIR"}, {EBADF, "EBADF"}, {ENOSPC, "ENOSPC"}, {EINVAL, "EINVAL"},
  {EMFILE, "EMFILE"}, {ENFILE, "ENFILE"}, {EROFS, "EROFS"}, {EPERM, "EPERM"},
  {EIO, "EIO"}, {EPIPE, "EPIPE"}, {EAGAIN, "EAGAIN"}, {EINTR, "EINTR"},
  {ECONNRESET, "ECONNRESET"}, {ECONNREFUSED, "ECONNREFUSED"}, {ETIMEDOUT, "ETIMEDOUT"},
  {ECONNABORTED, "ECONNABORTED"}, {EADDRINUSE, "EADDRINUSE"}, {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
  {ENOTCONN, "ENOTCONN"}, {EISCONN, "EISCONN"}, {ENETUNREACH, "ENETUNREACH"},
  {EHOSTUNREACH, "EHOSTUNREACH"}, {EAFNOSUPPORT, "EAFNOSUPPORT"}, {ENOTSOCK, "ENOTSOCK"},
  {EMSGSIZE, "EMSGSIZE"}, {ENAMETOOLONG, "ENAMETOOLONG"}, {ENOPROTOOPT, "ENOPROTOOPT"},
  {EOPNOTSUPP, "EOPNOTSUPP"}, {EDESTADDRREQ, "EDESTADDRREQ"}, {ENOMEM, "ENOMEM"},
  {ENOBUFS, "ENOBUFS"}, {ECHILD, "ECHILD"}, {ESRCH, "ESRCH"}, {ENOEXEC, "ENOEXEC"},
  {E2BIG, "E2BIG"}, {ETXTBSY, "ETXTBSY"}, {ELOOP, "ELOOP"}, {EALREADY, "EALREADY"},
  {EINPROGRESS, "EINPROGRESS"}, {ENETDOWN, "ENETDOWN"}, {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
};

/* The symbolic name of errno value err ("E?" when unknown). */
const char *errors_errno_name(int err) {
  for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++)
    if (errno_names[i].code == err) return errno_names[i].name;
  return "E?";
}

/* The OSError class curio (Python) gives err. */
static const char *os_class(int err) {
  switch (err) {
    case EPIPE: return "BrokenPipeError";
    case ECONNRESET: case ECONNABORTED: return "ConnectionResetError";
    case ECONNREFUSED: return "ConnectionRefusedError";
    case ETIMEDOUT: return "TimeoutError";
    default: return "OSError";
  }
}

/* Pushes the OSError (or subclass) for errno err: "fname: strerror", with
 * fields errno, code and strerror. */
void errors_push_os(lua_State *L, const char *fname, int err) {
  const char *text = strerror(err);
  lua_pushfstring(L, "%s: %s", fname, text);
  errors_push(L, os_class(err), lua_tostring(L, -1));
  lua_remove(L, -2);
  if (!lua_istable(L, -1)) return;
  lua_pushinteger(L, err);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, errors_errno_name(err));
  lua_setfield(L, -2, "code");
  lua_pushstring(L, text);
  lua_setfield(L, -2, "strerror");
}

int errors_raise_os(lua_State *L, const char *fname, int err) {
  errors_push_os(L, fname, err);
  return lua_error(L);
}
