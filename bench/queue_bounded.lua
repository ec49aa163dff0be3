-- queue_bounded / queue_unbounded (a link to this file, which takes its name
-- from arg[0]): a producer and a consumer pass N items through Queue(100),
-- or through an unbounded Queue.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local bench = arg[0]:match("([%w_]+)%.lua$")
local curio = b.require("curio", bench, "curio-lua")
local n = b.n(1000000)

local seconds = curio.run(function()
  local q = curio.Queue(bench == "queue_bounded" and 100 or 0)
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
b.report(bench, "curio-lua", n, seconds)
