-- curio.queue: Queue, LifoQueue, PriorityQueue (API.md section 6), in Lua
-- on the kernel's FIFO wait queue (core/waitq.c).
--
-- Queue and LifoQueue are C (core/queue.c); PriorityQueue is below, with
-- the same rules (as curio's and asyncio's queues; they make "no item is
-- ever lost" hold):
--  1. An item put stays in the queue until a getter takes it: qsize, empty,
--     full and maxsize count it even while a woken getter is on its way.
--  2. Getters wait only while every item is reserved (_reserved), putters
--     only while the queue is full. Both wait in FIFO order.
--  3. put() with getters waiting reserves an item for the first one and
--     wakes it; the woken getter takes an item when it runs, but if it was
--     cancelled meanwhile it passes its reservation to the next waiting
--     getter and raises, so the item stays for the next getter (a timeout
--     expired meanwhile comes at its next blocking call, as in core/queue.c).
--     A getter cancelled or timed out while waiting leaves the wait queue
--     with nothing reserved.
--  4. A putter blocked on a full queue carries its item (waitq:wait(carry)).
--     A getter that makes room moves the first putter's item into the queue
--     itself and wakes that putter, whose put() has then succeeded. A
--     putter cancelled while waiting leaves with its item: put() raised, so
--     the item was never in the queue.
--  5. The count of unfinished items (join, task_done) grows when an item
--     enters the queue.
--
-- A PriorityQueue stores entries {priority, sequence, item} in a binary heap;
-- the sequence number keeps FIFO order among equal priorities.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"

local CurioError = errors.CurioError
local waitq = core.waitq
local huge = math.huge

local queue = {}

local check_task = check.task
local check_cancellation, cancel_pending = core.check_cancellation, core.cancel_pending

-- The maxsize argument of a constructor (called by it: depth 2) -> integer.
local function check_maxsize(maxsize, fname)
  if maxsize == nil or maxsize == huge then return 0 end
  if type(maxsize) == "number" and maxsize ~= maxsize then
    check.arg_error(1, fname, "non-negative maxsize expected", 2)
  end
  local size = check.count(maxsize, 1, fname, 0, 2)
  return size -- (not a tail call: the error levels count this frame)
end

---------------------------------------------------------------- PriorityQueue's core

-- The Lua queue (PriorityQueue below): _push(value), _pop() -> value, _size.
local Base = {}

-- Builds a queue class whose get() turns a stored value into results.
local function queue_class(name)
  local class = { __name = "curio." .. name }
  class.__index = class
  class.__tostring = function(self)
    return ("%s (%d items, %d getters, %d putters)"):format(name, self._size,
      #self._getters, #self._putters)
  end
  for key, value in pairs(Base) do class[key] = value end
  return class
end

local function init(self, maxsize)
  self.maxsize = maxsize
  self._size = 0
  self._reserved = 0 -- items set aside for woken getters (rule 3)
  self._unfinished = 0
  self._getters = waitq()
  self._putters = waitq()
  self._joiners = waitq()
  return self
end

-- Rule 3: reserves an item for the first waiting getter, if any.
local function reserve_for_getter(self)
  if #self._getters > 0 then
    self._reserved = self._reserved + 1
    self._getters:wake(1)
  end
end

-- Accepts value: into the queue, reserved for a waiting getter (rule 3),
-- or the caller waits carrying it while the queue is full (rule 4).
local function put_value(self, value)
  if self.maxsize == 0 or self._size < self.maxsize then
    self:_push(value)
    self._unfinished = self._unfinished + 1
    reserve_for_getter(self)
  else
    self._putters:wait(value) -- a getter moved our value in (rule 4)
  end
end

-- -> the next value, waiting while every value is reserved.
local function get_value(self)
  if self._size <= self._reserved then
    self._getters:wait() -- raises if cancelled while waiting (nothing reserved)
    self._reserved = self._reserved - 1 -- a put reserved one for us
    if cancel_pending() then -- cancelled since: pass the item on, and raise
      reserve_for_getter(self)
      check_cancellation()
    end
  end
  local value = self:_pop()
  if #self._putters > 0 then
    local _, carried = self._putters:wake_one()
    self:_push(carried)
    self._unfinished = self._unfinished + 1
  end
  return value
end

function Base:qsize()
  return self._size
end

function Base:empty()
  return self._size == 0
end

function Base:full()
  return self.maxsize > 0 and self._size >= self.maxsize
end

-- Marks one item got earlier as processed (for join).
function Base:task_done()
  if self._unfinished <= 0 then
    errors.raise(CurioError, "PriorityQueue.task_done: called more times than there were items")
  end
  self._unfinished = self._unfinished - 1
  if self._unfinished == 0 then self._joiners:wake(huge) end
end

-- Waits until every item put has had its task_done().
function Base:join()
  check_task("PriorityQueue.join")
  if self._unfinished > 0 then self._joiners:wait() end
end

---------------------------------------------------------------- Queue, LifoQueue

-- Both are core.fifo (core/queue.c), the same rules in C: a producer and a
-- consumer passing items through a Queue is the hottest path users have.

-- curio.Queue(maxsize) -> a FIFO queue; maxsize 0 or nil: unbounded.
function queue.Queue(maxsize)
  return core.fifo(check_maxsize(maxsize, "Queue"), false)
end

-- curio.LifoQueue(maxsize) -> a queue whose get() gives the newest item.
function queue.LifoQueue(maxsize)
  return core.fifo(check_maxsize(maxsize, "LifoQueue"), true)
end

---------------------------------------------------------------- PriorityQueue

local PriorityQueue = queue_class("PriorityQueue")

-- curio.PriorityQueue(maxsize) -> a queue whose get() gives the item of
-- lowest priority, the oldest among equals.
function queue.PriorityQueue(maxsize)
  maxsize = check_maxsize(maxsize, "PriorityQueue")
  local self = init(setmetatable({}, PriorityQueue), maxsize)
  self._heap, self._sequence = {}, 0
  return self
end

-- Entries are {priority, sequence, item}.
local function before(a, b)
  local pa, pb = a[1], b[1]
  return pa < pb or (pa == pb and a[2] < b[2])
end

function PriorityQueue:_push(entry)
  local heap = self._heap
  local i = self._size + 1
  self._size = i
  while i > 1 do -- sift up
    local parent = i // 2
    local above = heap[parent]
    if not before(entry, above) then break end
    heap[i] = above
    i = parent
  end
  heap[i] = entry
end

function PriorityQueue:_pop()
  local heap, size = self._heap, self._size
  local top, last = heap[1], heap[size]
  heap[size] = nil
  size = size - 1
  self._size = size
  if size > 0 then -- sift last down from the root
    local i = 1
    while true do
      local child = 2 * i
      if child > size then break end
      if child < size and before(heap[child + 1], heap[child]) then child = child + 1 end
      if not before(heap[child], last) then break end
      heap[i] = heap[child]
      i = child
    end
    heap[i] = last
  end
  return top
end

-- Puts item with priority (a number, default 0; lower comes out first).
function PriorityQueue:put(item, priority)
  if item == nil then check.value(item, 1, "put") end
  if priority == nil then priority = 0 else check.deadline(priority, 2, "put") end
  check_task("PriorityQueue.put")
  local sequence = self._sequence + 1
  self._sequence = sequence
  put_value(self, { priority, sequence, item })
end

-- -> item, priority of the first entry, waiting while the queue is empty.
function PriorityQueue:get()
  check_task("PriorityQueue.get")
  local entry = get_value(self)
  return entry[3], entry[1]
end

return queue
