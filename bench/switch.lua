-- switch: two tasks ping-pong with sleep(0); N = total switches (N/2 each).
-- A second argument, seconds, runs it with the long-block check on
-- (Kernel{debug = {longblock = seconds}}), as impl curio-lua-longblock.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "switch", "curio-lua")
local half = b.n(1000000) // 2
local n = 2 * half
local longblock = tonumber(arg[2])

local function pinger()
  for _ = 1, half do curio.sleep(0) end
end

local kernel = curio.Kernel(longblock and { debug = { longblock = longblock } } or nil)
local seconds = kernel:run(function()
  local t0 = curio.clock()
  local t1, t2 = curio.spawn(pinger), curio.spawn(pinger)
  t1:join()
  t2:join()
  return curio.clock() - t0
end)
kernel:close()
b.report("switch", longblock and "curio-lua-longblock" or "curio-lua", n, seconds)
