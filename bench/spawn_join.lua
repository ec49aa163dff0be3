-- spawn_join: spawn then join N empty tasks, one after another.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "spawn_join", "curio-lua")
local n = b.n(100000)

local function empty() end

local seconds = curio.run(function()
  local t0 = curio.clock()
  for _ = 1, n do
    curio.spawn(empty):join()
  end
  return curio.clock() - t0
end)
b.report("spawn_join", "curio-lua", n, seconds)
