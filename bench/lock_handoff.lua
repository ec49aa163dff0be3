-- lock_handoff: two tasks each loop "acquire; sleep(0); release", so the
-- FIFO lock passes back and forth; N = total acquisitions (N/2 each).
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "lock_handoff", "curio-lua")
local half = b.n(1000000) // 2
local n = 2 * half

local seconds = curio.run(function()
  local lock = curio.Lock()
  local function worker()
    for _ = 1, half do
      lock:acquire()
      curio.sleep(0)
      lock:release()
    end
  end
  local t0 = curio.clock()
  local t1, t2 = curio.spawn(worker), curio.spawn(worker)
  t1:join()
  t2:join()
  return curio.clock() - t0
end)
b.report("lock_handoff", "curio-lua", n, seconds)
