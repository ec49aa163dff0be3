-- The plain Lua 5.4 limit: coroutine resume/yield round trips per second
-- (raw_resume_yield) and coroutines created and run to the end per second
-- (raw_create_run). CPU time (os.clock): plain Lua has no wall clock finer
-- than a second, and both loops are pure CPU work.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local n = b.n(2000000)
local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield

local co = create(function()
  while true do yield() end
end)
local t0 = os.clock()
for _ = 1, n do resume(co) end
b.report("raw_resume_yield", "lua5.4", n, os.clock() - t0)

io.write("\n")
local function empty() end
t0 = os.clock()
for _ = 1, n do resume(create(empty)) end
b.report("raw_create_run", "lua5.4", n, os.clock() - t0)
