/* core/codec.h: Lua values to bytes and back (rules in codec.c). Knows
 * nothing of the kernel: worker threads and worker processes use it. */
#ifndef CURIO_CODEC_H
#define CURIO_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>

/* What the decoder accepts: functions (Lua bytecode, C function pointers)
 * only from a sender in this process that is trusted (a worker thread). */
enum { CODEC_VALUES = 0, CODEC_FUNCTIONS = 1 };

/* What the encoder accepts (rule 1 of codec.c): everything that crosses
 * within this process; CODEC_PORTABLE, for another process, no C function
 * and no shared object; CODEC_DATA, for a program that may be anywhere (a
 * Channel), no function at all. */
enum { CODEC_LOCAL = 0, CODEC_PORTABLE = 1, CODEC_DATA = 2 };

/* Encodes the n values from stack index first (left there) and pushes the
 * bytes as a string; raises an error naming the value's path when one cannot
 * cross ("cannot transfer argument #1 upvalue 'cfg' field 'conn' (userdata)"). `what` names the
 * values ("argument", "result"). `mode` is one of the above. Returns how
 * many shared objects the bytes hold. */
size_t codec_encode(lua_State *L, int first, int n, const char *what, int mode);
size_t codec_encode_from(lua_State *L, int first, int n, const char *what, int mode, int number);

/* Frames (a Channel's messages, codec_frame.c), as Python's
 * multiprocessing and curio frame them: the payload's size as a 4-byte
 * big-endian signed integer, or for 2 GiB and more -1 then the size as an
 * 8-byte big-endian integer; then the payload. */
#define CODEC_FRAME_HEAD_MAX 12
/* Writes the header of a payload of `size` bytes into out; returns its
 * length (4 or 12). */
size_t codec_frame_header(size_t size, unsigned char out[CODEC_FRAME_HEAD_MAX]);
/* Reads a header from the n bytes at p, refusing a size over `limit`
 * before anything is allocated: returns the header's length (4 or 12) and
 * sets *size, 0 when more bytes are needed (*size = how many the header
 * takes), or -1 for a malformed header (a negative size other than -1,
 * an 8-byte size of 2^63 or more) and -2 for a size over limit (*size set). */
int codec_frame_parse(const unsigned char *p, size_t n, uint64_t limit, uint64_t *size);
/* Pushes one frame holding the value at idx, encoded in CODEC_DATA mode. */
void codec_encode_frame(lua_State *L, int idx, const char *what);
/* As codec_encode_frame, but hands the frame's bytes to take(ud, p, n)
 * (which returns 0, or -1 without memory: a "not enough memory" error)
 * where they were built, and pushes one value of its own (pop it). */
void codec_encode_frame_to(lua_State *L, int idx, const char *what,
                           int (*take)(void *ud, const char *p, size_t n), void *ud);

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
