-- switch: two tasks ping-pong with sleep(0); N = total switches (N/2 each).
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "switch", "curio-lua")
local half = b.n(1000000) // 2
local n = 2 * half

local function pinger()
  for _ = 1, half do curio.sleep(0) end
end

local seconds = curio.run(function()
  local t0 = curio.clock()
  local t1, t2 = curio.spawn(pinger), curio.spawn(pinger)
  t1:join()
  t2:join()
  return curio.clock() - t0
end)
b.report("switch", "curio-lua", n, seconds)
