-- queue_bounded / queue_unbounded (a link to this file) on cqueues: producer
-- -> consumer, N items, through a queue of 100 or an unbounded one
-- built on cqueues.condition (cqueues has no queue of its own).
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local bench = arg[0]:match("cqueues_([%w_]+)%.lua$")
local cqueues = b.require("cqueues", bench, "cqueues")
local condition = require "cqueues.condition"
local n = b.n(1000000)

local maxsize = bench == "queue_bounded" and 100 or math.huge
local items, head, tail = {}, 1, 0
local not_empty, not_full = condition.new(), condition.new()

local function put(v)
  while tail - head + 1 >= maxsize do not_full:wait() end
  tail = tail + 1
  items[tail] = v
  not_empty:signal(1)
end

local function get()
  while tail < head do not_empty:wait() end
  local v = items[head]
  items[head] = nil
  head = head + 1
  not_full:signal(1)
  return v
end

local cq = cqueues.new()
local t0 = cqueues.monotime()
cq:wrap(function() for i = 1, n do put(i) end end)
cq:wrap(function() for _ = 1, n do get() end end)
assert(cq:loop())
b.report(bench, "cqueues", n, cqueues.monotime() - t0)
