-- codec on lua-cjson: N round trips (cjson.encode, then cjson.decode) of the
-- table of ../codec_table.lua, the one bench/codec.lua carries. Extra lines
-- as there: encoded_bytes (the JSON text) and mib_per_sec.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cjson = b.require("cjson", "codec", "cjson")
local n = b.n(100)

local data = require("codec_table")()
local bytes = #cjson.encode(data)

local t0 = os.clock() -- CPU seconds, as in bench/codec.lua
for _ = 1, n do
  local copy = cjson.decode(cjson.encode(data))
  assert(#copy == #data)
end
local seconds = os.clock() - t0
b.report("codec", "cjson", n, seconds, nil,
  "encoded_bytes", bytes, "mib_per_sec", string.format("%.1f", n * bytes / seconds / 2 ^ 20))
