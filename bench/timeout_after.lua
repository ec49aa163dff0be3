-- timeout_after: N x timeout_after(1, fn) around a function that returns at once.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "timeout_after", "curio-lua")
local n = b.n(100000)

local function quick() return 1 end

local seconds = curio.run(function()
  local t0 = curio.clock()
  for _ = 1, n do
    curio.timeout_after(1, quick)
  end
  return curio.clock() - t0
end)
b.report("timeout_after", "curio-lua", n, seconds)
