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
#define ERRORS_DIR_KEY "curio.errors.luadir"

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

/* set_errors(classes, dir): registers the class table errors.lua made and
 * the source prefix of curio's Lua modules (argument errors, rule 3). */
static int l_set_errors(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, ERRORS_DIR_KEY);
  lua_setfield(L, LUA_REGISTRYINDEX, ERRORS_KEY);
  return 0;
}

const luaL_Reg errors_functions[] = {
  {"set_errors", l_set_errors},
  {NULL, NULL}
};

/* ---- argument errors ----
 *
 * The one place in C that builds "bad argument #n to 'fname' (message)"
 * (tools/lint_args.sh refuses the phrase anywhere else in core/ and lua/).
 * Rules:
 * 1. Callers give the stack index; the user's number is made here. A
 *    function's #n is its stack index; a method counts self out (stack
 *    index 2 is #1, a bad self is "calling 'fname' on bad self"), whatever
 *    the call's syntax, as lua/curio/check.lua numbers Lua methods.
 * 2. The message names the public function explicitly: Lua's own
 *    luaL_argerror may call curio.core.spawn what users call curio.spawn.
 * 3. The position is the user's line: the first caller that is not one of
 *    curio's own Lua modules (a C function that a module's wrapper calls,
 *    such as sock:bind through network.lua, reports its user's line too).
 *    init.lua registers the modules' source prefix with set_errors.
 * 4. Public functions check with these; luaL_check* and luaL_argcheck stay
 *    only as guards of curio.core functions that curio's own modules call
 *    after checking (tools/lint_args.sh refuses luaL_argerror and
 *    luaL_typeerror outside this file). */

/* Pushes "file:line:" of the first caller outside curio's Lua modules. */
static void errors_where(lua_State *L) {
  lua_Debug ar;
  int level = 1;
  size_t n = 0;
  const char *dir = NULL;
  if (lua_getfield(L, LUA_REGISTRYINDEX, ERRORS_DIR_KEY) == LUA_TSTRING) dir = lua_tolstring(L, -1, &n);
  while (dir != NULL && n > 0 && lua_getstack(L, level, &ar) && lua_getinfo(L, "S", &ar) &&
         strncmp(ar.source, dir, n) == 0)
    level++;
  lua_pop(L, 1);
  luaL_where(L, level);
}

static int arg_error(lua_State *L, int n, const char *fname, const char *msg) {
  errors_where(L);
  if (n == 0)
    lua_pushfstring(L, "calling '%s' on bad self (%s)", fname, msg);
  else
    lua_pushfstring(L, "bad argument #%d to '%s' (%s)", n, fname, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

static const char *got_name(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TNONE ? "no value" : luaL_typename(L, idx);
}

/* The object at idx is not a `tname`, in a check shared by many methods
 * that has no public name at hand (ctx.c's ctx_checkudata, task.c's and
 * universal.c's self checks): the name is the one the call used, as
 * lauxlib's; index 1 is self (rule 1). */
int errors_objecterror(lua_State *L, int idx, const char *tname) {
  lua_Debug ar;
  const char *name = "?";
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name != NULL) name = ar.name;
  return arg_error(L, idx - 1, name, lua_pushfstring(L, "%s expected, got %s", tname, got_name(L, idx)));
}

/* A function's argument at stack index idx is bad (rule 1). */
int errors_argerror(lua_State *L, int idx, const char *fname, const char *msg) {
  return arg_error(L, idx, fname, msg);
}

/* A method's argument at stack index idx is bad: self is not counted. */
int errors_methoderror(lua_State *L, int idx, const char *fname, const char *msg) {
  return arg_error(L, idx - 1, fname, msg);
}

int errors_typeerror(lua_State *L, int idx, const char *fname, const char *tname) {
  return arg_error(L, idx, fname, lua_pushfstring(L, "%s expected, got %s", tname, got_name(L, idx)));
}

int errors_methodtypeerror(lua_State *L, int idx, const char *fname, const char *tname) {
  return arg_error(L, idx - 1, fname, lua_pushfstring(L, "%s expected, got %s", tname, got_name(L, idx)));
}

void errors_checkfunction(lua_State *L, int idx, const char *fname) {
  if (lua_type(L, idx) != LUA_TFUNCTION) errors_typeerror(L, idx, fname, "function");
}

lua_Number errors_checknumber(lua_State *L, int idx, const char *fname) {
  int isnum;
  lua_Number n = lua_tonumberx(L, idx, &isnum);
  if (!isnum) errors_typeerror(L, idx, fname, "number");
  return n;
}

/* A duration in seconds: a number, not NaN, not negative. */
lua_Number errors_checkseconds(lua_State *L, int idx, const char *fname) {
  lua_Number n = errors_checknumber(L, idx, fname);
  if (!(n >= 0)) errors_argerror(L, idx, fname, "non-negative number expected");
  return n;
}

/* A string that C will take as a C string (a path, a host, a name): a
 * zero byte inside would cut it short, so it is refused. NULL (no error)
 * when idx holds a string with a zero byte or no string: the caller
 * raises with its own numbering through errors_cstring_error. */
const char *errors_tocstring(lua_State *L, int idx, size_t *len) {
  size_t n;
  if (lua_type(L, idx) != LUA_TSTRING) return NULL;
  const char *s = lua_tolstring(L, idx, &n);
  if (strlen(s) != n) return NULL;
  if (len) *len = n;
  return s;
}

/* The message for a string that errors_tocstring refused. */
const char *errors_cstring_problem(lua_State *L, int idx, const char *tname) {
  if (lua_type(L, idx) == LUA_TSTRING) return "string contains a zero byte";
  return lua_pushfstring(L, "%s expected, got %s", tname, got_name(L, idx));
}

/* A function's string argument for C (no zero byte). */
const char *errors_checkcstring(lua_State *L, int idx, const char *fname, size_t *len) {
  const char *s = errors_tocstring(L, idx, len);
  if (s == NULL) errors_argerror(L, idx, fname, errors_cstring_problem(L, idx, "string"));
  return s;
}

/* Pushes key with each zero byte shown as \0 (a C string would end
 * there) and returns it. */
static const char *shown(lua_State *L, const char *key, size_t len) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) {
    if (key[i] == '\0') luaL_addstring(&b, "\\0");
    else luaL_addchar(&b, key[i]);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* An optional options table at stack index idx of function fname: nil
 * (or none) is no options; a table's keys must all be in `known` (a NULL-
 * ended list), else the error names the first unknown one (check.lua's
 * check.options for C). Returns 1 when there is a table. */
int errors_checkoptions(lua_State *L, int idx, const char *fname, const char *const known[]) {
  if (lua_isnoneornil(L, idx)) return 0;
  if (!lua_istable(L, idx)) errors_typeerror(L, idx, fname, "table");
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 3, "errors_checkoptions");
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int found = 0;
    lua_pop(L, 1); /* the value */
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t len;
      const char *key = lua_tolstring(L, -1, &len);
      /* (lengths compared: "threads\0x" is not "threads") */
      for (int i = 0; known[i] != NULL && !found; i++)
        found = strlen(known[i]) == len && memcmp(key, known[i], len) == 0;
      if (!found)
        errors_argerror(L, idx, fname, lua_pushfstring(L, "unknown option '%s'", shown(L, key, len)));
    } else {
      errors_argerror(L, idx, fname, lua_pushfstring(L, "unknown option (a %s key)", luaL_typename(L, -1)));
    }
  }
  return 1;
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
