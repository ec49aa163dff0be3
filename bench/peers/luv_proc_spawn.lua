-- proc_spawn on luv: N sequential uv.spawn("true"), each exit callback
-- checking the exit code, closing the handle and spawning the next, after
-- one untimed warm-up spawn. The child inherits stdin, stdout and stderr
-- (stdio = {0, 1, 2}: no pipes, as in the other implementations).
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local uv = b.require("luv", "proc_spawn", "luv")
local n = b.n(200)

local done, t0, t1 = -1, nil, nil -- -1: the warm-up spawn
local function spawn_next()
  local handle
  handle = assert(uv.spawn("true", { stdio = { 0, 1, 2 } }, function(code, signal)
    assert(code == 0 and signal == 0, "true failed")
    handle:close()
    done = done + 1
    if done == 0 then t0 = uv.hrtime() end -- warm-up over: start the clock
    if done < n then spawn_next() else t1 = uv.hrtime() end
  end))
end

spawn_next()
uv.run()
b.report("proc_spawn", "luv", n, (t1 - t0) / 1e9)
