-- thread_parallel on luv (libuv's threadpool): N work requests of a trivial
-- function (returns its argument + 1), 64 queued at once: each
-- after-callback queues the next until N have been queued. luv passes
-- numbers as floats. The pool's size is UV_THREADPOOL_SIZE (libuv's default
-- 4; run.sh sets 64), reported as pool_threads. It must be set before luv is
-- loaded: luv 1.44 sizes its per-thread Lua states by it at load, and a
-- larger pool set later (uv.os_setenv) crashes it.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local uv = b.require("luv", "thread_parallel", "luv")
local n = b.n(10000)
local width = 64

local queued, done, t1 = 0, 0, nil
local work
local function queue_next()
  queued = queued + 1
  work:queue(queued)
end
work = uv.new_work(
  function(x) return x + 1 end, -- runs in a pool thread's own Lua state
  function(r)
    done = done + 1
    assert(r >= 2)
    if queued < n then queue_next() elseif done == n then t1 = uv.hrtime() end
  end)

local t0 = uv.hrtime()
for _ = 1, math.min(width, n) do queue_next() end
uv.run()
b.report("thread_parallel", "luv", n, (t1 - t0) / 1e9, nil,
  "pool_threads", tonumber(os.getenv("UV_THREADPOOL_SIZE")) or 4)
