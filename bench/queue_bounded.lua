-- queue_bounded: a producer and a consumer pass N items through Queue(100).
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "queue_bounded", "curio-lua")
local n = b.n(1000000)

local seconds = curio.run(function()
  local q = curio.Queue(100)
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
b.report("queue_bounded", "curio-lua", n, seconds)
