/* tests/fuzz_decode.c: a libFuzzer target for the codec's decoder, which
 * worker processes feed from pipes and Channels from the network: any
 * input must decode to values or raise a Lua error, never crash (make
 * fuzz). The input is read twice: as one payload, then as a Channel's
 * stream of frames (codec_frame_parse, each payload decoded) under a
 * small limit, so headers of any size are tried against it. */
#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include <lauxlib.h>
#include "codec.h"

static int decode(lua_State *L) {
  size_t len;
  const char *data = lua_tolstring(L, 1, &len);
  return codec_decode(L, data, len, CODEC_VALUES);
}

/* The input as a stream of frames: each header checked against a 64 KiB
 * limit, each payload decoded, until the input ends or a frame is bad. */
static int decode_frames(lua_State *L) {
  size_t len;
  const unsigned char *p = (const unsigned char *)lua_tolstring(L, 1, &len);
  while (len > 0) {
    uint64_t size;
    int hlen = codec_frame_parse(p, len, 65536, &size);
    if (hlen <= 0) return 0; /* more needed, malformed or over the limit */
    if (size > len - (size_t)hlen) return 0; /* truncated */
    lua_settop(L, 1);
    codec_decode(L, (const char *)p + hlen, (size_t)size, CODEC_VALUES);
    p += (size_t)hlen + (size_t)size;
    len -= (size_t)hlen + (size_t)size;
  }
  return 0;
}

static void run(lua_State *L, lua_CFunction fn, const uint8_t *data, size_t size) {
  lua_settop(L, 0);
  lua_pushcfunction(L, fn);
  lua_pushlstring(L, (const char *)data, size);
  (void)lua_pcall(L, 1, LUA_MULTRET, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return 0;
  run(L, decode, data, size);
  run(L, decode_frames, data, size);
  lua_close(L);
  return 0;
}
