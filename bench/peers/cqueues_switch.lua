-- switch on cqueues: two coroutines ping-pong with cqueues.sleep(0);
-- N = total switches (N/2 each); timed until the controller's loop is done.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cqueues = b.require("cqueues", "switch", "cqueues")
local half = b.n(1000000) // 2

local function pinger()
  for _ = 1, half do cqueues.sleep(0) end
end

local cq = cqueues.new()
local t0 = cqueues.monotime()
cq:wrap(pinger)
cq:wrap(pinger)
assert(cq:loop())
b.report("switch", "cqueues", 2 * half, cqueues.monotime() - t0)
