/* core/errors.h: building curio error objects and argument errors from C. */
#ifndef CURIO_ERRORS_H
#define CURIO_ERRORS_H

#include <lua.h>
#include <lauxlib.h>

void errors_push(lua_State *L, const char *cls, const char *msg);
int errors_raise(lua_State *L, const char *cls, const char *fmt, ...);
int errors_is_cancel(lua_State *L, int idx);
/* Argument errors (errors.c rules 1-4): idx is a stack index; a function
 * numbers from it, a method ("methoderror") counts self out. */
int errors_argerror(lua_State *L, int idx, const char *fname, const char *msg);
int errors_typeerror(lua_State *L, int idx, const char *fname, const char *tname);
int errors_methoderror(lua_State *L, int idx, const char *fname, const char *msg);
int errors_methodtypeerror(lua_State *L, int idx, const char *fname, const char *tname);
int errors_objecterror(lua_State *L, int idx, const char *tname);
void errors_checkfunction(lua_State *L, int idx, const char *fname);
lua_Number errors_checknumber(lua_State *L, int idx, const char *fname);
lua_Number errors_checkseconds(lua_State *L, int idx, const char *fname);
const char *errors_tocstring(lua_State *L, int idx, size_t *len);
const char *errors_cstring_problem(lua_State *L, int idx, const char *tname);
int errors_checkoptions(lua_State *L, int idx, const char *fname, const char *const known[]);
const char *errors_checkcstring(lua_State *L, int idx, const char *fname, size_t *len);
const char *errors_errno_name(int err);
void errors_push_os(lua_State *L, const char *fname, int err);
int errors_raise_os(lua_State *L, const char *fname, int err);
extern const luaL_Reg errors_functions[];

#endif
