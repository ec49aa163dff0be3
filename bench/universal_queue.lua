-- universal_queue: a worker thread (run_in_thread) puts N integers into an
-- unbounded UniversalQueue and one task gets them all; timed from the start
-- of the producer until the task got the last.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "universal_queue", "curio-lua")
local n = b.n(1000000)

local function produce(q, count)
  for i = 1, count do q:put(i) end
end

local seconds = curio.run(function()
  local q = curio.UniversalQueue()
  local t0 = curio.clock()
  local producer = curio.spawn(curio.run_in_thread, produce, q, n)
  for i = 1, n do
    local v = q:get()
    if v ~= i then error(("got %s, expected %d"):format(tostring(v), i)) end
  end
  local seconds = curio.clock() - t0
  producer:join()
  return seconds
end)
b.report("universal_queue", "curio-lua", n, seconds)
