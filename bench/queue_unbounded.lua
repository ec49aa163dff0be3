-- queue_unbounded: a producer and a consumer pass N items through an unbounded Queue.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "queue_unbounded", "curio-lua")
local n = b.n(1000000)

local seconds = curio.run(function()
  local q = curio.Queue(0)
  local t0 = curio.clock()
  local producer = curio.spawn(function()
    for i = 1, n do q:put(i) end
  end)
  local consumer = curio.spawn(function()
    for _ = 1, n do q:get() end
  end)
  producer:join()
  consumer:join()
  return curio.clock() - t0
end)
b.report("queue_unbounded", "curio-lua", n, seconds)
