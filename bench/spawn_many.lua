-- spawn_many: spawn N empty tasks first (all alive at once), then join them
-- all; seconds = from the first spawn until the last join.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "spawn_many", "curio-lua")
local n = b.n(100000)

local function empty() end

local seconds = curio.run(function()
  local t0 = curio.clock()
  local tasks = {}
  for i = 1, n do
    tasks[i] = curio.spawn(empty)
  end
  for i = 1, n do
    tasks[i]:join()
  end
  return curio.clock() - t0
end)
b.report("spawn_many", "curio-lua", n, seconds)
