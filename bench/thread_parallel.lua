-- thread_parallel: N run_in_thread calls of a trivial function (returns its
-- argument + 1), 64 in flight at once: 64 tasks each make N/64 sequential
-- calls (the first N % 64 tasks one more). The pool has 64 threads.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "thread_parallel", "curio-lua")
local n = b.n(10000)
local width = 64

local function inc(x) return x + 1 end

local function caller(calls)
  for i = 1, calls do
    assert(curio.run_in_thread(inc, i) == i + 1)
  end
end

local kernel = curio.Kernel { threads = width }
local seconds = kernel:run(function()
  local t0 = curio.clock()
  local tasks = {}
  for w = 1, width do
    tasks[w] = curio.spawn(caller, n // width + (w <= n % width and 1 or 0))
  end
  for w = 1, width do tasks[w]:join() end
  return curio.clock() - t0
end)
kernel:close()
b.report("thread_parallel", "curio-lua", n, seconds)
