-- stream_read: N reads of 16 MiB by read_exactly, and N readline calls
-- over an 8 MiB line, from a source that returns 64 KiB per call (a
-- Stream over a table source, no descriptor): the joins of many chunks
-- (quadratic joins took 9 s here, linear ones about 0.2 s). Moved here
-- from spec/stream_spec.lua, which keeps the values and leaves timing to
-- bench/. Extra line: mib_per_sec.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "stream_read", "curio-lua")
local io_ = require "curio.io"
local n = b.n(4)

local chunk = ("0123456789abcdef"):rep(4096) -- 64 KiB
local seconds = curio.run(function()
  local t0 = curio.clock()
  for _ = 1, n do
    local big = io_.Stream({ read = function() return chunk end }):read_exactly(16 * 1024 * 1024)
    local line = io_.Stream({ read = function() return chunk end }):readline(8 * 1024 * 1024)
    assert(#big == 16 * 1024 * 1024 and #line == 8 * 1024 * 1024)
  end
  return curio.clock() - t0
end)
b.report("stream_read", "curio-lua", n, seconds, nil, "mib_per_sec", string.format("%.1f", n * 24 / seconds))
