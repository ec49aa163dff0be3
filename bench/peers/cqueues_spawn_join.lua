-- spawn_join on cqueues: wrap then wait for N empty coroutines, one by one.
-- cqueues has no join: each coroutine counts itself finished and signals a
-- condition that the spawner waits on.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cqueues = b.require("cqueues", "spawn_join", "cqueues")
local condition = require "cqueues.condition"
local n = b.n(100000)

local cq = cqueues.new()
local done, finished = condition.new(), 0
local function child()
  finished = finished + 1
  done:signal()
end

local seconds
cq:wrap(function()
  local t0 = cqueues.monotime()
  for i = 1, n do
    cq:wrap(child)
    while finished < i do done:wait() end
  end
  seconds = cqueues.monotime() - t0
end)
assert(cq:loop())
b.report("spawn_join", "cqueues", n, seconds)
