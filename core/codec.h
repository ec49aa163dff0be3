/* core/codec.h: Lua values to bytes and back (rules in codec.c). Knows
 * nothing of the kernel: worker threads and worker processes use it. */
#ifndef CURIO_CODEC_H
#define CURIO_CODEC_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

/* What the decoder accepts: functions (Lua bytecode, C function pointers)
 * only from a sender in this process that is trusted (a worker thread). */
enum { CODEC_VALUES = 0, CODEC_FUNCTIONS = 1 };

/* Encodes the n values from stack index first (left there) and pushes the
 * bytes as a string; raises an error naming the value's path when one cannot
 * cross ("cannot transfer argument #1 upvalue 'cfg' field 'conn' (userdata)"). `what` names the
 * values ("argument", "result"). With `portable`, for another process: C
 * functions and shared objects are refused. Returns how many shared
 * objects the bytes hold. */
size_t codec_encode(lua_State *L, int first, int n, const char *what, int portable);
size_t codec_encode_from(lua_State *L, int first, int n, const char *what, int portable, int number);

/* Decodes data, pushing its values; returns how many. Raises an error on
 * malformed or truncated input. */
int codec_decode(lua_State *L, const char *data, size_t len, int flags);

/* A userdata that crosses by reference (a Universal object, universal.c):
 * its metatable's CODEC_SHARED field is a light userdata pointing to one
 * of these. retain returns the shared object with a reference taken for
 * the bytes; push makes a proxy for it that owns that reference. */
struct codec_shared {
  void *(*retain)(lua_State *L, int idx);
  void (*push)(lua_State *L, void *obj);
  void (*release)(void *obj);
};
#define CODEC_SHARED "__curio_shared"

/* Drops the references that bytes never decoded hold (a job dropped
 * before it ran, items of a queue freed): calls release for every shared
 * object in data. Needs no Lua state; stops at malformed data. */
void codec_release(const char *data, size_t len);

/* Calls fn for every shared object that data holds (stops at malformed
 * data): the owner of bytes finds what they reference (universal.c's
 * cycles). */
void codec_shared_each(const char *data, size_t len,
                       void (*fn)(const struct codec_shared *ops, void *obj, void *ud), void *ud);

/* A lua_CFunction: (value, portable?) -> whether value crosses (to another
 * process when portable), found by encoding it (protected; the references
 * the bytes took are dropped). A worker's errors.portable probes with it. */
int codec_crosses(lua_State *L);

extern const luaL_Reg codec_functions[];

#endif
