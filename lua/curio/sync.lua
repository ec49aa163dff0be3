-- curio.sync: Event, Lock, RLock, Semaphore, BoundedSemaphore, Condition
-- (docs/sync.md), in Lua on the kernel's FIFO wait queue (core/waitq.c).
--
-- Rules every primitive here keeps:
--  1. FIFO: waiters are served in arrival order. Releasing hands the lock
--     (or the permit) to the first waiter directly, so no task arriving
--     later can barge in while the woken one is on its way.
--  2. A waiter that is cancelled or times out leaves the queue with nothing
--     (the kernel unlinks it), so nothing is lost and nobody else is skipped.
--     A waiter already handed the lock keeps it even if cancelled before it
--     runs: acquire() returns normally and the cancellation comes at its
--     next blocking call. So a dead task never holds a lock it did not see.
--  3. A blocking method called outside a task raises CurioError ("not
--     inside a curio task"); a free lock or a set event returns at once
--     without a scheduling point, as in curio.
--  4. acquire() returns a guard for `local held <close> = lock:acquire()`:
--     the lock itself, whose __close releases it (nothing is allocated).
--     The guard lives in its owner's stack, so closing it is the owner
--     releasing, even when Lua closes it after the owner died of an error
--     (no task is current then: an RLock's guard skips the owner check).

local core = require "curio.core"
local errors = require "curio.errors"
local task = require "curio.task"
local check = require "curio.check"

local CurioError = errors.CurioError
local current_task = core.current_task
local disable_cancellation = task.disable_cancellation
local waitq = core.waitq
local huge = math.huge

local sync = {}

local check_task, check_fn, check_count = check.task, check.fn, check.count
-- A public method called on another object (a Lock's acquire on an Event,
-- or on nil: lock.acquire() for lock:acquire()) raises check.bad_self's
-- error at once. Each instance names its class in its own field _class,
-- so the check is a field read and a comparison in the VM: a metatable
-- read (a C call) cost 15% of lock_handoff's instructions. A number or
-- boolean self gets Lua's own "attempt to index" error; a forged table
-- with a _class field works on itself only (its waitq fields are checked
-- by C), nothing of curio's.
local bad_self = check.bad_self

local function release_after(lock, ok, ...)
  lock:release()
  if not ok then error((...), 0) end
  return ...
end

-- A lock class: its __close releases (rule 4) through _guard_release.
-- with() uses pcall rather than <close>: Lua closes the pending variables
-- of a coroutine that died of an error only when the kernel closes it,
-- after the task has stopped being the current task.
local function lock_class(name)
  local class = { __name = "curio." .. name }
  class.__index = class
  class.__close = function(self) self:_guard_release() end
  class.__tostring = function(self)
    return ("%s (%s, %d waiting)"):format(name, self:locked() and "locked" or "unlocked",
                                          self:_waiters())
  end
  class._guard_release = function(self) self:release() end
  -- lock:with(fn, ...) -> fn's results; runs fn holding the lock and
  -- releases it on return or error.
  local with_name = name .. ".with"
  function class:with(fn, ...)
    if self == nil or self._class ~= class then bad_self(self, "with", name) end
    check_fn(fn, 1, "with")
    check_task(with_name)
    self:acquire()
    return release_after(self, pcall(fn, ...))
  end
  return class
end

---------------------------------------------------------------- Event

local Event = { __name = "curio.Event" }
Event.__index = Event

function Event.__tostring(self)
  return ("Event (%s, %d waiting)"):format(self._set and "set" or "unset", #self._waiting)
end

-- curio.Event() -> an unset event.
function sync.Event()
  return setmetatable({ _class = Event, _set = false, _waiting = waitq("Event.wait") }, Event)
end

function Event:is_set()
  if self == nil or self._class ~= Event then bad_self(self, "is_set", "Event") end
  return self._set
end

function Event:clear()
  if self == nil or self._class ~= Event then bad_self(self, "clear", "Event") end
  self._set = false
end

-- Sets the event and wakes every waiter.
function Event:set()
  if self == nil or self._class ~= Event then bad_self(self, "set", "Event") end
  self._set = true
  self._waiting:wake(huge)
end

-- Waits until the event is set (returns at once if it is).
function Event:wait()
  if self == nil or self._class ~= Event then bad_self(self, "wait", "Event") end
  check_task("Event.wait")
  if self._set then return end
  self._waiting:wait()
end

---------------------------------------------------------------- Lock

local Lock = lock_class("Lock")

-- curio.Lock() -> an unlocked FIFO lock.
function sync.Lock()
  return setmetatable({ _class = Lock, _held = false, _waiting = waitq("Lock.acquire") }, Lock)
end

-- Acquires the lock, waiting in line if it is held; -> the guard (rule 4).
-- (acquire and release, the hot path, check self by the state they read
-- anyway: a Lock's _held is true or false, anything else is no Lock.)
function Lock:acquire()
  if self == nil then bad_self(self, "acquire", "Lock") end
  local held = self._held
  check_task("Lock.acquire")
  if held == true then
    self._waiting:wait() -- woken only by release, which handed us the lock
  elseif held == false then
    self._held = true
  else
    bad_self(self, "acquire", "Lock")
  end
  return self
end

-- Releases the lock, handing it to the first waiter if any.
function Lock:release()
  if self == nil then bad_self(self, "release", "Lock") end
  local held = self._held
  if held ~= true then
    if held == false then errors.raise(CurioError, "Lock.release: lock not acquired") end
    bad_self(self, "release", "Lock")
  end
  if self._waiting:wake(1) == 0 then self._held = false end
end

function Lock:locked()
  if self == nil or self._class ~= Lock then bad_self(self, "locked", "Lock") end
  return self._held
end

function Lock:_waiters()
  return #self._waiting
end

-- Condition support: give the lock up entirely, and take it back.
function Lock:_release_save()
  self:release()
end

function Lock:_acquire_restore()
  self:acquire()
end

---------------------------------------------------------------- RLock

local RLock = lock_class("RLock")

-- curio.RLock() -> a reentrant lock: its owner task may acquire it again;
-- it is free once released as many times as acquired.
function sync.RLock()
  return setmetatable({ _class = RLock, _owner = nil, _count = 0,
                        _waiting = waitq("RLock.acquire") }, RLock)
end

function RLock:acquire()
  if self == nil or self._class ~= RLock then bad_self(self, "acquire", "RLock") end
  check_task("RLock.acquire")
  local me = current_task()
  if self._owner == me then
    self._count = self._count + 1
  elseif self._owner == nil then
    self._owner, self._count = me, 1
  else
    self._waiting:wait(me) -- release hands us ownership (we are the carry)
  end
  return self
end

-- Gives the lock to the first waiter, or frees it.
local function rlock_pass(self)
  local woken, owner = self._waiting:wake_one()
  if woken then
    self._owner, self._count = owner, 1
  else
    self._owner, self._count = nil, 0
  end
end

function RLock:release()
  if self == nil or self._class ~= RLock then bad_self(self, "release", "RLock") end
  if self._owner == nil then errors.raise(CurioError, "RLock.release: lock not acquired") end
  if self._owner ~= current_task() then
    errors.raise(CurioError, "RLock.release: lock held by another task")
  end
  self._count = self._count - 1
  if self._count == 0 then rlock_pass(self) end
end

-- The guard's release: the guard lives in its owner's stack, so this is
-- the owner releasing, even when Lua closes it after the owner died of an
-- error (then no task is current).
function RLock:_guard_release()
  if self._owner == nil then errors.raise(CurioError, "RLock.release: lock not acquired") end
  self._count = self._count - 1
  if self._count == 0 then rlock_pass(self) end
end

function RLock:locked()
  if self == nil or self._class ~= RLock then bad_self(self, "locked", "RLock") end
  return self._owner ~= nil
end

function RLock:_waiters()
  return #self._waiting
end

function RLock:_release_save()
  if self._owner ~= current_task() then
    errors.raise(CurioError, "RLock.release: lock held by another task")
  end
  local count = self._count
  rlock_pass(self)
  return count
end

function RLock:_acquire_restore(count)
  self:acquire()
  self._count = count
end

---------------------------------------------------------------- Semaphore

local Semaphore = lock_class("Semaphore")
local BoundedSemaphore = lock_class("BoundedSemaphore") -- (shares Semaphore's methods)

local function new_semaphore(class, value)
  local kind = class == Semaphore and "Semaphore.acquire" or "BoundedSemaphore.acquire"
  return setmetatable({ _class = class, _value = value, _bound = value, _waiting = waitq(kind) }, class)
end

-- curio.Semaphore(n) -> a semaphore with n permits (default 1).
function sync.Semaphore(value)
  return new_semaphore(Semaphore, check_count(value, 1, "Semaphore", 1))
end

-- Takes a permit, waiting in line if none is left; -> the guard (rule 4).
local function semaphore_acquire(self)
  if self._value > 0 then
    self._value = self._value - 1 -- (no task waits while permits are left)
  else
    self._waiting:wait() -- release handed us its permit
  end
  return self
end

function Semaphore:acquire()
  local class = self ~= nil and self._class or nil
  if class ~= Semaphore and class ~= BoundedSemaphore then bad_self(self, "acquire", "Semaphore") end
  check_task("Semaphore.acquire")
  return semaphore_acquire(self)
end

-- Gives a permit back, to the first waiter if any.
function Semaphore:release()
  local class = self ~= nil and self._class or nil
  if class ~= Semaphore and class ~= BoundedSemaphore then bad_self(self, "release", "Semaphore") end
  if self._waiting:wake(1) == 0 then
    local value = self._value
    if value == math.maxinteger then
      errors.raise(CurioError, "Semaphore.release: value would overflow")
    end
    self._value = value + 1
  end
end

function Semaphore:value()
  local class = self ~= nil and self._class or nil
  if class ~= Semaphore and class ~= BoundedSemaphore then bad_self(self, "value", "Semaphore") end
  return self._value
end

function Semaphore:locked()
  local class = self ~= nil and self._class or nil
  if class ~= Semaphore and class ~= BoundedSemaphore then bad_self(self, "locked", "Semaphore") end
  return self._value == 0
end

function Semaphore:_waiters()
  return #self._waiting
end

function Semaphore:_release_save()
  self:release()
end

function Semaphore:_acquire_restore()
  self:acquire()
end

for key, value in pairs(Semaphore) do
  if BoundedSemaphore[key] == nil then BoundedSemaphore[key] = value end
end

-- curio.BoundedSemaphore(n): a Semaphore that refuses to go above n.
function sync.BoundedSemaphore(value)
  return new_semaphore(BoundedSemaphore, check_count(value, 1, "BoundedSemaphore", 1))
end

function BoundedSemaphore:acquire()
  if self == nil or self._class ~= BoundedSemaphore then bad_self(self, "acquire", "BoundedSemaphore") end
  check_task("BoundedSemaphore.acquire")
  return semaphore_acquire(self)
end

function BoundedSemaphore:release()
  if self == nil or self._class ~= BoundedSemaphore then bad_self(self, "release", "BoundedSemaphore") end
  if #self._waiting == 0 and self._value >= self._bound then
    errors.raise(CurioError, "BoundedSemaphore.release: released too many times")
  end
  Semaphore.release(self)
end

---------------------------------------------------------------- Condition

local Condition = lock_class("Condition")

local function is_lock(value)
  if type(value) ~= "table" then return false end
  for _, method in ipairs({ "acquire", "release", "locked" }) do
    if type(value[method]) ~= "function" then return false end
  end
  return true
end

-- curio.Condition(lock?) -> a condition variable on lock (a new Lock when
-- nil; any object with acquire, release and locked will do).
function sync.Condition(lock)
  if lock == nil then
    lock = sync.Lock()
  elseif not is_lock(lock) then
    check.arg_error(1, "Condition", "lock expected, got " .. type(lock))
  end
  return setmetatable({ _class = Condition, _lock = lock, _waiting = waitq("Condition.wait") }, Condition)
end

function Condition:acquire()
  if self == nil or self._class ~= Condition then bad_self(self, "acquire", "Condition") end
  check_task("Condition.acquire")
  self._lock:acquire()
  return self
end

function Condition:release()
  if self == nil or self._class ~= Condition then bad_self(self, "release", "Condition") end
  self._lock:release()
end

function Condition:_guard_release()
  local lock = self._lock
  if lock._guard_release then lock:_guard_release() else lock:release() end
end

function Condition:locked()
  if self == nil or self._class ~= Condition then bad_self(self, "locked", "Condition") end
  return self._lock:locked()
end

function Condition:_waiters()
  return #self._waiting
end

local function release_save(lock)
  if lock._release_save then return lock:_release_save() end
  lock:release()
end

local function acquire_restore(lock, saved)
  if lock._acquire_restore then return lock:_acquire_restore(saved) end
  lock:acquire()
end

-- Releases the lock, waits for a notify, and takes the lock back before
-- returning or raising. The lock is retaken with cancellation held back
-- (curio would raise a second cancellation there, leaving the caller's
-- `with` block without its lock); a cancellation arriving meanwhile comes
-- at the next blocking call.
function Condition:wait()
  if self == nil or self._class ~= Condition then bad_self(self, "wait", "Condition") end
  check_task("Condition.wait")
  local lock = self._lock
  if not lock:locked() then errors.raise(CurioError, "Condition.wait: lock not acquired") end
  local saved = release_save(lock)
  local ok, err = pcall(self._waiting.wait, self._waiting)
  disable_cancellation(acquire_restore, lock, saved)
  if not ok then error(err, 0) end
end

-- Waits until predicate() gives a true value, and returns that value. The
-- predicate is evaluated holding the lock.
function Condition:wait_for(predicate)
  if self == nil or self._class ~= Condition then bad_self(self, "wait_for", "Condition") end
  check_fn(predicate, 1, "wait_for")
  check_task("Condition.wait_for")
  while true do
    local result = predicate()
    if result then return result end
    self:wait()
  end
end

-- Wakes up to n (default 1) waiting tasks; the lock must be held.
function Condition:notify(n)
  if self == nil or self._class ~= Condition then bad_self(self, "notify", "Condition") end
  n = check_count(n, 1, "notify", 1)
  if not self._lock:locked() then
    errors.raise(CurioError, "Condition.notify: lock not acquired")
  end
  self._waiting:wake(n)
end

-- Wakes every waiting task; the lock must be held.
function Condition:notify_all()
  if self == nil or self._class ~= Condition then bad_self(self, "notify_all", "Condition") end
  if not self._lock:locked() then
    errors.raise(CurioError, "Condition.notify_all: lock not acquired")
  end
  self._waiting:wake(huge)
end

return sync
