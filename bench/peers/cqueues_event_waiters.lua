-- event_waiters on cqueues: N coroutines wait on one event (a flag plus a
-- cqueues.condition), which is set. seconds = from set until all have
-- finished; total_seconds includes wrapping them.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cqueues = b.require("cqueues", "event_waiters", "cqueues")
local condition = require "cqueues.condition"
local n = b.n(10000)

local is_set, ev = false, condition.new()
local ready, finished, all_done = 0, 0, condition.new()
local function waiter()
  ready = ready + 1
  while not is_set do ev:wait() end
  finished = finished + 1
  if finished == n then all_done:signal() end
end

local cq = cqueues.new()
local seconds, total
cq:wrap(function()
  local t0 = cqueues.monotime()
  for _ = 1, n do cq:wrap(waiter) end
  while ready < n do cqueues.sleep(0) end
  local t1 = cqueues.monotime()
  is_set = true
  ev:signal()
  while finished < n do all_done:wait() end
  local t2 = cqueues.monotime()
  seconds, total = t2 - t1, t2 - t0
end)
assert(cq:loop())
b.report("event_waiters", "cqueues", n, seconds, nil, "total_seconds", total)
