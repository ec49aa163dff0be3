-- spawn_many on cqueues: wrap N empty coroutines on one controller first
-- (none runs before the spawner waits), then wait for them all. cqueues has
-- no join: each coroutine counts itself finished, the last one signals a
-- condition that the spawner waits on. seconds = from the first wrap until
-- the spawner wakes.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cqueues = b.require("cqueues", "spawn_many", "cqueues")
local condition = require "cqueues.condition"
local n = b.n(100000)

local cq = cqueues.new()
local all_done, finished = condition.new(), 0
local function child()
  finished = finished + 1
  if finished == n then all_done:signal() end
end

local seconds
cq:wrap(function()
  local t0 = cqueues.monotime()
  for _ = 1, n do cq:wrap(child) end
  while finished < n do all_done:wait() end
  seconds = cqueues.monotime() - t0
end)
assert(cq:loop())
b.report("spawn_many", "cqueues", n, seconds)
