-- thread_roundtrip: N sequential run_in_thread calls of a trivial function
-- (returns its argument + 1) from one task.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "thread_roundtrip", "curio-lua")
local n = b.n(10000)

local function inc(x) return x + 1 end

local seconds = curio.run(function()
  local t0 = curio.clock()
  for i = 1, n do
    assert(curio.run_in_thread(inc, i) == i + 1)
  end
  return curio.clock() - t0
end)
b.report("thread_roundtrip", "curio-lua", n, seconds)
