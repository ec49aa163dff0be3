-- The plain Lua 5.4 memory floor for sleepers (impl lua5.4-floor): N bare
-- coroutines, each made from its own small closure (holding its deadline,
-- 0.5 s + i us, as a sleeper's argument) and suspended in coroutine.yield
-- inside it, all alive at once; then each is resumed to its end. No scheduler,
-- no timer, no sleeping: peak_rss_kb is what N suspended coroutines cost at
-- the least. seconds = CPU time (os.clock) from the first create until the
-- last has ended: plain Lua has no wall clock finer than a second.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local n = b.n(100000)
local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield

local function sleeper(d)
  return create(function() yield(d) end)
end

local t0 = os.clock()
local cos = {}
for i = 1, n do
  local co = sleeper(0.5 + i * 1e-6)
  resume(co) -- runs to the yield: now suspended, as a sleeping task is
  cos[i] = co
end
for i = 1, n do
  assert(resume(cos[i]))
  cos[i] = false
end
b.report("sleepers", "lua5.4-floor", n, os.clock() - t0, nil, "peak_rss_kb", b.peak_rss_kb())
