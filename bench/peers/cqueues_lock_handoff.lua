-- lock_handoff on cqueues: two coroutines loop "acquire; sleep(0); release"
-- on a FIFO (ticket) lock built on cqueues.condition, so it passes back and
-- forth; N = total acquisitions (N/2 each).
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local cqueues = b.require("cqueues", "lock_handoff", "cqueues")
local condition = require "cqueues.condition"
local half = b.n(1000000) // 2

local next_ticket, serving, turn = 0, 0, condition.new()
local function acquire()
  local mine = next_ticket
  next_ticket = next_ticket + 1
  while serving ~= mine do turn:wait() end
end
local function release()
  serving = serving + 1
  turn:signal()
end

local function worker()
  for _ = 1, half do
    acquire()
    cqueues.sleep(0)
    release()
  end
end

local cq = cqueues.new()
local t0 = cqueues.monotime()
cq:wrap(worker)
cq:wrap(worker)
assert(cq:loop())
b.report("lock_handoff", "cqueues", 2 * half, cqueues.monotime() - t0)
