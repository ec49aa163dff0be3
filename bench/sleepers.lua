-- sleepers: N tasks asleep at once with distinct deadlines (0.5 s + i us);
-- seconds = wall time from the first spawn until all have woken and are joined.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "sleepers", "curio-lua")
local n = b.n(100000)

local function sleeper(d) curio.sleep(d) end

local seconds = curio.run(function()
  local t0 = curio.clock()
  local tasks = {}
  for i = 1, n do
    tasks[i] = curio.spawn(sleeper, 0.5 + i * 1e-6)
  end
  for i = 1, n do
    tasks[i]:join()
  end
  return curio.clock() - t0
end)
b.report("sleepers", "curio-lua", n, seconds, nil, "peak_rss_kb", b.peak_rss_kb())
