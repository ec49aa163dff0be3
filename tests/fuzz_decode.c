/* tests/fuzz_decode.c: a libFuzzer target for the codec's decoder, which
 * worker processes will feed from pipes: any input must decode to values
 * or raise a Lua error, never crash (make fuzz). */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return 0;
  lua_pushcfunction(L, decode);
  lua_pushlstring(L, (const char *)data, size);
  (void)lua_pcall(L, 1, LUA_MULTRET, 0);
  lua_close(L);
  return 0;
}
