-- taskgroup: a TaskGroup spawns N empty tasks and collects them (join).
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "taskgroup", "curio-lua")
local n = b.n(100000)

local function empty() end

local seconds = curio.run(function()
  local t0 = curio.clock()
  local g = curio.TaskGroup()
  for _ = 1, n do g:spawn(empty) end
  g:join()
  return curio.clock() - t0
end)
b.report("taskgroup", "curio-lua", n, seconds)
