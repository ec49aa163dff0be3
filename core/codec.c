/* core/codec.c: Lua values to bytes and back, the one codec of worker
 * threads (memory buffers) and worker processes (pipes): its rules and its
 * Lua functions; the encoder is codec_encode.c, the decoder codec_decode.c.
 * The Lua API only: it knows nothing of the kernel.
 *
 * Rules:
 * 1. What crosses: nil, booleans, integers and floats exactly (NaN,
 *    infinities, -0.0), strings with any bytes, tables (shared references
 *    and cycles kept), Lua functions (bytecode and upvalues, recursively;
 *    _ENV, or an upvalue holding the sender's globals, is rebound to the
 *    receiver's globals),
 *    C functions without upvalues and shared objects (Universal objects,
 *    by reference: struct codec_shared), these two only within the same
 *    process (CODEC_LOCAL). CODEC_DATA, for a Channel's peer that may be
 *    anywhere, takes no function at all. Anything else raises an error
 *    naming the value's path and type.
 * 2. The decoder trusts nothing: every length is checked against the bytes
 *    left before anything is allocated or read, nesting is bounded, and
 *    malformed or truncated input raises "malformed data". Functions are
 *    accepted only when the caller says the sender is trusted
 *    (CODEC_FUNCTIONS): Lua does not verify bytecode.
 * 3. Bytes are built in a userdata on the stack, so an error midway leaks
 *    nothing.
 *
 * 4. A Channel's frames (codec_frame.c) are built by the encoder with
 *    their size prefix in the same buffer (codec_encode_frame).
 *
 * Format: "CL" 1, varint count, then each value: a tag byte and its body.
 * Tables and functions get ids in the order first met; a later meeting is
 * a reference to the id. */
#include <lauxlib.h>
#include "codec.h"

/* core.encode(...) -> string (tests, benchmarks). */
static int l_encode(lua_State *L) {
  codec_encode(L, 1, lua_gettop(L), "argument", 0);
  return 1;
}

/* core.encode_portable(what, ...) -> string, for another process (worker
 * processes); what names the values in errors ("run_in_process: argument"). */
static int l_encode_portable(lua_State *L) {
  const char *what = luaL_checkstring(L, 1);
  codec_encode(L, 2, lua_gettop(L) - 1, what, 1);
  return 1;
}

/* core.encode_reply(what, ok, ...) -> string: as encode_portable, for a
 * worker's reply, its flag ok first; the values after it are #1 on in
 * errors ("run_in_process: result #1"). */
static int l_encode_reply(lua_State *L) {
  const char *what = luaL_checkstring(L, 1);
  codec_encode_from(L, 2, lua_gettop(L) - 1, what, 1, 0);
  return 1;
}

/* Protected by codec_crosses: encodes arg 1 (portable: arg 2), pushing the
 * bytes and how many shared objects they hold. */
static int crosses_encode(lua_State *L) {
  size_t nshared = codec_encode(L, 1, 1, "value", lua_toboolean(L, 2));
  lua_pushinteger(L, (lua_Integer)nshared);
  return 2;
}

/* core.crosses(value, portable?) -> whether value crosses (to another
 * process when portable): it is encoded, and the references that the bytes
 * took are dropped at once. errors.portable's probe (see codec.h). */
int codec_crosses(lua_State *L) {
  lua_settop(L, 2);
  lua_pushcfunction(L, crosses_encode);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  int ok = lua_pcall(L, 2, 2, 0) == LUA_OK;
  if (ok && lua_tointeger(L, -1) > 0) {
    size_t len;
    const char *data = lua_tolstring(L, -2, &len);
    codec_release(data, len);
  }
  lua_pushboolean(L, ok);
  return 1;
}

/* core.decode(s, trusted?) -> the values (functions only when trusted). */
static int l_decode(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  int flags = lua_toboolean(L, 2) ? CODEC_FUNCTIONS : CODEC_VALUES;
  lua_settop(L, 1);
  return codec_decode(L, data, len, flags);
}

/* core.encode_frame(value, what) -> a Channel's frame holding value, data
 * only (codec_encode_frame); `what` names it in errors ("send: value"). */
static int l_encode_frame(lua_State *L) {
  const char *what = luaL_checkstring(L, 2);
  codec_encode_frame(L, 1, what);
  return 1;
}

/* core.frame_header(size) -> the header of a payload of size bytes. */
static int l_frame_header(lua_State *L) {
  lua_Integer size = luaL_checkinteger(L, 1);
  luaL_argcheck(L, size >= 0, 1, "non-negative size expected");
  unsigned char head[CODEC_FRAME_HEAD_MAX];
  size_t n = codec_frame_header((size_t)size, head);
  lua_pushlstring(L, (const char *)head, n);
  return 1;
}

/* core.frame_parse(bytes, limit) -> status, size: as codec_frame_parse
 * (status: the header's length; 0, more bytes needed, size of them; -1
 * malformed; -2 over limit). */
static int l_frame_parse(lua_State *L) {
  size_t n;
  const unsigned char *p = (const unsigned char *)luaL_checklstring(L, 1, &n);
  lua_Integer limit = luaL_checkinteger(L, 2);
  uint64_t size = 0;
  int status = codec_frame_parse(p, n, limit < 0 ? 0 : (uint64_t)limit, &size);
  lua_pushinteger(L, status);
  lua_pushinteger(L, status == -1 ? 0 : (lua_Integer)size);
  return 2;
}

const luaL_Reg codec_functions[] = {
  {"encode_frame", l_encode_frame},
  {"frame_header", l_frame_header},
  {"frame_parse", l_frame_parse},
  {"encode", l_encode},
  {"encode_portable", l_encode_portable},
  {"encode_reply", l_encode_reply},
  {"decode", l_decode},
  {"crosses", codec_crosses},
  {NULL, NULL}
};
