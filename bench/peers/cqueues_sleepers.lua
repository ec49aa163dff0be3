-- sleepers on cqueues: N coroutines asleep at once (0.5 s + i us each);
-- seconds = from the first wrap until the controller's loop is done.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cqueues = b.require("cqueues", "sleepers", "cqueues")
local n = b.n(100000)

local cq = cqueues.new()
local t0 = cqueues.monotime()
for i = 1, n do cq:wrap(cqueues.sleep, 0.5 + i * 1e-6) end
assert(cq:loop())
b.report("sleepers", "cqueues", n, cqueues.monotime() - t0, nil,
  "peak_rss_kb", b.peak_rss_kb())
