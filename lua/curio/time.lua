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

local function check_fn(fn, name)
  if type(fn) ~= "function" then
    error(("bad argument #2 to '%s' (function expected, got %s)"):format(name, type(fn)), 3)
  end
end

local function check_seconds(seconds, name)
  if seconds ~= nil and (type(seconds) ~= "number" or seconds ~= seconds or seconds < 0) then
    local what = type(seconds) == "number" and "non-negative number expected" or
      ("number expected, got " .. (seconds == nil and "no value" or type(seconds)))
    error(("bad argument #1 to '%s' (%s)"):format(name, what), 3)
  end
end

local function check_deadline(deadline, name)
  if deadline ~= nil and (type(deadline) ~= "number" or deadline ~= deadline) then
    error(("bad argument #1 to '%s' (number expected, got %s)"):format(name,
      type(deadline) == "number" and "NaN" or type(deadline)), 3)
  end
end

-- curio.timeout_after(seconds, fn, ...) -> fn's results, or TaskTimeout.
function time.timeout_after(seconds, fn, ...)
  check_seconds(seconds, "timeout_after")
  check_fn(fn, "timeout_after")
  local deadline = timeout_push_after(seconds)
  return leave(false, seconds, deadline, pcall(fn, ...))
end

-- curio.ignore_after(seconds, fn, ...) -> fn's results, or nil, curio.TIMEOUT.
function time.ignore_after(seconds, fn, ...)
  check_seconds(seconds, "ignore_after")
  check_fn(fn, "ignore_after")
  local deadline = timeout_push_after(seconds)
  return leave(true, seconds, deadline, pcall(fn, ...))
end

-- curio.timeout_at(deadline, fn, ...): as timeout_after, at a clock time.
function time.timeout_at(deadline, fn, ...)
  check_deadline(deadline, "timeout_at")
  check_fn(fn, "timeout_at")
  timeout_push(deadline)
  local seconds = deadline and deadline - core.clock()
  return leave(false, seconds, deadline, pcall(fn, ...))
end

-- curio.ignore_at(deadline, fn, ...): as ignore_after, at a clock time.
function time.ignore_at(deadline, fn, ...)
  check_deadline(deadline, "ignore_at")
  check_fn(fn, "ignore_at")
  timeout_push(deadline)
  local seconds = deadline and deadline - core.clock()
  return leave(true, seconds, deadline, pcall(fn, ...))
end

return time
