-- curio.time: timeouts. The kernel delivers a timeout at the blocking call
-- in progress (a TaskTimeout carrying the clock at expiry, err.clock); this
-- module decides which block it belongs to, as curio's time.py does:
--  1. the outermost block whose deadline has passed gets TaskTimeout
--     (ignore_* blocks return nil, curio.TIMEOUT instead);
--  2. a block inside it sees TimeoutCancellationError pass through;
--  3. a timeout reaching a block where no deadline has passed is an
--     UncaughtTimeoutError.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"

local TaskTimeout = errors.TaskTimeout
local TimeoutCancellationError = errors.TimeoutCancellationError
local UncaughtTimeoutError = errors.UncaughtTimeoutError
local timeout_push, timeout_push_after, timeout_pop =
  core.timeout_push, core.timeout_push_after, core.timeout_pop

local time = {}

-- The sentinel ignore_after/ignore_at return (after nil) on expiry.
time.TIMEOUT = setmetatable({}, { __tostring = function() return "curio.TIMEOUT" end,
                                   __name = "curio.TIMEOUT" })
local TIMEOUT = time.TIMEOUT

local function is_timeout(err)
  return TaskTimeout:matches(err) or TimeoutCancellationError:matches(err)
end

-- Leaves a block after fn raised err. seconds/deadline describe the block.
local function leave_failed(ignore, seconds, deadline, err)
  if not is_timeout(err) then
    timeout_pop()
    error(err, 0)
  end
  local clock = err.clock
  local verdict = timeout_pop(clock)
  if verdict == 0 then
    error(UncaughtTimeoutError("timeout escaped its block (uncaught TaskTimeout)",
                               { cause = err, clock = clock }), 0)
  elseif verdict == 2 then -- an outer block expired: pass through as TCE
    if TaskTimeout:matches(err) then
      error(TimeoutCancellationError("an outer timeout expired", { clock = clock }), 0)
    end
    error(err, 0)
  end
  if ignore then return nil, TIMEOUT end -- this block expired
  if not TaskTimeout:matches(err) then
    err = TaskTimeout("timed out", { clock = clock })
  end
  err.seconds, err.deadline = seconds, deadline
  error(err, 0)
end

local function leave(ignore, seconds, deadline, ok, ...)
  if ok then
    timeout_pop()
    return ...
  end
  return leave_failed(ignore, seconds, deadline, (...))
end

-- curio.timeout_after(seconds, fn, ...) -> fn's results, or TaskTimeout.
function time.timeout_after(seconds, fn, ...)
  -- (checks inline, the hot path; the error points at the caller's line)
  if seconds ~= nil and not (type(seconds) == "number" and seconds >= 0) then
    check.seconds(seconds, 1, "timeout_after")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "timeout_after") end
  local deadline = timeout_push_after(seconds, "timeout_after") -- (checks the task)
  return leave(false, seconds, deadline, pcall(fn, ...))
end

-- curio.ignore_after(seconds, fn, ...) -> fn's results, or nil, curio.TIMEOUT.
function time.ignore_after(seconds, fn, ...)
  -- (checks inline, the hot path; the error points at the caller's line)
  if seconds ~= nil and not (type(seconds) == "number" and seconds >= 0) then
    check.seconds(seconds, 1, "ignore_after")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "ignore_after") end
  local deadline = timeout_push_after(seconds, "ignore_after") -- (checks the task)
  return leave(true, seconds, deadline, pcall(fn, ...))
end

-- curio.timeout_at(deadline, fn, ...): as timeout_after, at a clock time.
function time.timeout_at(deadline, fn, ...)
  if deadline ~= nil and not (type(deadline) == "number" and deadline == deadline) then
    check.deadline(deadline, 1, "timeout_at")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "timeout_at") end
  timeout_push(deadline, "timeout_at") -- (checks the task)
  local seconds = deadline and deadline - core.clock()
  return leave(false, seconds, deadline, pcall(fn, ...))
end

-- curio.ignore_at(deadline, fn, ...): as ignore_after, at a clock time.
function time.ignore_at(deadline, fn, ...)
  if deadline ~= nil and not (type(deadline) == "number" and deadline == deadline) then
    check.deadline(deadline, 1, "ignore_at")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "ignore_at") end
  timeout_push(deadline, "ignore_at") -- (checks the task)
  local seconds = deadline and deadline - core.clock()
  return leave(true, seconds, deadline, pcall(fn, ...))
end

return time
