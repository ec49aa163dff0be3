-- proc_pipe: one curio.subprocess.check_output of MIB MiB (first argument,
-- default 100) read from `head -c BYTES /dev/zero` through a pipe; the
-- whole output comes back as one string, whose length is checked. n=1,
-- ops_per_sec = 1/seconds; extra lines: bytes, mib, mib_per_sec. Until the
-- library has curio.subprocess, prints skipped=.
package.path = (arg[0]:match("^(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "benchlib"
local curio = b.require("curio", "proc_pipe", "curio-lua")
local subprocess = curio.subprocess
if subprocess == nil then
  b.skip("proc_pipe", "curio-lua", "curio.subprocess missing")
end
local mib = b.n(100)
local bytes = mib * 1048576

local seconds = curio.run(function()
  local t0 = curio.clock()
  local out = subprocess.check_output({ "head", "-c", tostring(bytes), "/dev/zero" })
  local dt = curio.clock() - t0
  assert(#out == bytes, "short output")
  return dt
end)
b.emit("bench", "proc_pipe", "impl", "curio-lua", "n", 1, "seconds", seconds,
  "ops_per_sec", string.format("%.3f", 1 / seconds), "bytes", bytes, "mib", mib,
  "mib_per_sec", string.format("%.1f", mib / seconds))
