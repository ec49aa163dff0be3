-- thread_roundtrip on luv (libuv's threadpool): N sequential work requests
-- of a trivial function (returns its argument + 1): uv.new_work, and each
-- after-callback queues the next. luv passes numbers as floats. The pool's
-- size is UV_THREADPOOL_SIZE (libuv's default 4; run.sh sets 64), reported
-- as pool_threads.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local uv = b.require("luv", "thread_roundtrip", "luv")
local n = b.n(10000)

local done, t1 = 0, nil
local work
work = uv.new_work(
  function(x) return x + 1 end, -- runs in a pool thread's own Lua state
  function(r)
    done = done + 1
    assert(r == done + 1)
    if done < n then work:queue(done + 1) else t1 = uv.hrtime() end
  end)

local t0 = uv.hrtime()
work:queue(1)
uv.run()
b.report("thread_roundtrip", "luv", n, (t1 - t0) / 1e9, nil,
  "pool_threads", tonumber(os.getenv("UV_THREADPOOL_SIZE")) or 4)
