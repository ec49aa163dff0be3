-- event_waiters: N tasks wait on one Event; it is set and all are joined.
-- seconds (and ops_per_sec) = from set() until all joined; total_seconds
-- includes spawning the waiters and letting them all reach wait().
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "event_waiters", "curio-lua")
local n = b.n(10000)

local seconds, total = curio.run(function()
  local ev, ready, tasks = curio.Event(), 0, {}
  local function waiter()
    ready = ready + 1
    ev:wait()
  end
  local t0 = curio.clock()
  for i = 1, n do tasks[i] = curio.spawn(waiter) end
  while ready < n do curio.sleep(0) end
  local t1 = curio.clock()
  ev:set()
  for i = 1, n do tasks[i]:join() end
  local t2 = curio.clock()
  return t2 - t1, t2 - t0
end)
b.report("event_waiters", "curio-lua", n, seconds, nil, "total_seconds", total)
