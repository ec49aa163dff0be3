-- curio.queue: Queue, LifoQueue, PriorityQueue (docs/queues.md).
--
-- All three are core.queue (core/queue.c): one protocol of putting and
-- getting, whose rules are at the head of that file, over three orders of
-- storage (a ring for FIFO and LIFO, a heap for priorities, core/priority.c).
-- This module checks the constructors' argument.

local core = require "curio.core"
local check = require "curio.check"

local new_queue = core.queue

local queue = {}

-- The maxsize argument of a constructor (called by it: depth 2) -> integer.
local function check_maxsize(maxsize, fname)
  local size = check.maxsize(maxsize, 1, fname, 2)
  return size -- (not a tail call: the error levels count this frame)
end

-- curio.Queue(maxsize) -> a FIFO queue; maxsize 0 or nil: unbounded.
function queue.Queue(maxsize)
  return new_queue(check_maxsize(maxsize, "Queue"), "fifo")
end

-- curio.LifoQueue(maxsize) -> a queue whose get() gives the newest item.
function queue.LifoQueue(maxsize)
  return new_queue(check_maxsize(maxsize, "LifoQueue"), "lifo")
end

-- curio.PriorityQueue(maxsize) -> a queue whose put(item, priority) takes
-- a number (default 0) and whose get() gives the item of lowest priority,
-- the oldest among equals, and its priority.
function queue.PriorityQueue(maxsize)
  return new_queue(check_maxsize(maxsize, "PriorityQueue"), "priority")
end

return queue
