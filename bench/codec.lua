-- codec: N round trips (core.encode, then core.decode) of one nested table
-- of numbers and strings (codec_table.lua: about 1.3 MB encoded).
-- Extra lines: encoded_bytes (one encoding) and mib_per_sec (encoded MiB
-- per second, each round trip counting its bytes once).
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
b.require("curio", "codec", "curio-lua") -- the project's paths are set
local core = require "curio.core"
local n = b.n(100)

local data = require("codec_table")()
local bytes = #core.encode(data)

local t0 = os.clock() -- CPU seconds, as in the cjson peer (plain Lua has no wall clock)
for _ = 1, n do
  local copy = core.decode(core.encode(data))
  assert(#copy == #data)
end
local seconds = os.clock() - t0
b.report("codec", "curio-lua", n, seconds, nil,
  "encoded_bytes", bytes, "mib_per_sec", string.format("%.1f", n * bytes / seconds / 2 ^ 20))
