-- queue_priority: a producer and a consumer pass N items through
-- PriorityQueue(100), the priorities cycling through 1009 values in a
-- scattered order (i * 7919 % 1009), so that every put and get reorders.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "queue_priority", "curio-lua")
local n = b.n(1000000)

local seconds = curio.run(function()
  local q = curio.PriorityQueue(100)
  local t0 = curio.clock()
  local producer = curio.spawn(function()
    for i = 1, n do q:put(i, i * 7919 % 1009) end
  end)
  local consumer = curio.spawn(function()
    for _ = 1, n do q:get() end
  end)
  producer:join()
  consumer:join()
  return curio.clock() - t0
end)
b.report("queue_priority", "curio-lua", n, seconds)
