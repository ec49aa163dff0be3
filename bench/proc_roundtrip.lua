-- proc_roundtrip: N sequential run_in_process calls of a trivial function
-- (returns its argument + 1) from one task, after one untimed warm-up call
-- that starts the pool's worker (the pool is warm when the clock starts).
-- Until the library has curio.run_in_process, prints skipped=.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "proc_roundtrip", "curio-lua")
if curio.run_in_process == nil then
  b.skip("proc_roundtrip", "curio-lua", "curio.run_in_process missing")
end
local n = b.n(200)

local function inc(x) return x + 1 end

local seconds = curio.run(function()
  assert(curio.run_in_process(inc, 0) == 1) -- warm-up: starts the worker
  local t0 = curio.clock()
  for i = 1, n do
    assert(curio.run_in_process(inc, i) == i + 1)
  end
  return curio.clock() - t0
end)
b.report("proc_roundtrip", "curio-lua", n, seconds)
