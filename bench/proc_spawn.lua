-- proc_spawn: N sequential curio.subprocess.run({"true"}), each checked for
-- returncode 0, after one untimed warm-up run. The child inherits stdin,
-- stdout and stderr (no pipes). Until the library has curio.subprocess,
-- prints skipped=.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "proc_spawn", "curio-lua")
local subprocess = curio.subprocess
if subprocess == nil then
  b.skip("proc_spawn", "curio-lua", "curio.subprocess missing")
end
local n = b.n(200)

local seconds = curio.run(function()
  assert(subprocess.run({ "true" }).returncode == 0) -- warm-up
  local t0 = curio.clock()
  for _ = 1, n do
    assert(subprocess.run({ "true" }).returncode == 0)
  end
  return curio.clock() - t0
end)
b.report("proc_spawn", "curio-lua", n, seconds)
