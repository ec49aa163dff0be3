-- curio.time: timeouts. The kernel delivers a timeout at the blocking call
-- in progress (a TaskTimeout carrying the clock at expiry, err.clock); this
-- module decides which block it belongs to, as curio's time.py does:
--  1. the outermost block whose deadline has passed gets TaskTimeout
--     (ignore_* blocks return nil, curio.TIMEOUT instead);
--  2. a block inside it sees TimeoutCancellationError pass through;
--  3. a timeout reaching a block where no deadline has passed is an
--     UncaughtTimeoutError;
--  4. the error a block raises says how long or which block in its message
--     and keeps the traceback of the blocking call where time ran out.

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

-- The block as its call reads: "timeout_after(0.2)", "timeout_at(104.213)".
local function block_text(fname, seconds, deadline)
  if fname == "timeout_after" or fname == "ignore_after" then
    return ("%s(%s)"):format(fname, seconds and ("%g"):format(seconds) or "nil")
  end
  return ("%s(%s)"):format(fname, deadline and ("%.3f"):format(deadline) or "nil")
end

-- What the expired block's TaskTimeout says: how long it ran.
local function expired_text(fname, seconds, deadline)
  if fname == "timeout_after" or fname == "ignore_after" then
    return ("timed out after %g s"):format(seconds)
  elseif seconds > 0 then -- (to the millisecond, without trailing zeros)
    local rounded = ("%.3f"):format(seconds):gsub("0+$", ""):gsub("%.$", "")
    return ("timed out at deadline %.3f (%s s after the block began)"):format(deadline, rounded)
  end
  return ("timed out at deadline %.3f (already past when the block began)"):format(deadline)
end

-- A new err of class with message, keeping where the timeout struck.
local function remade(class, message, err, fields)
  local new = class(message, fields)
  if type(err.traceback) == "string" then new.traceback = err.traceback end
  return new
end

-- Leaves a block after fn raised err. The block is fname's (the public
-- function that made it), of seconds (nil: none) ending at deadline.
local function leave_failed(ignore, fname, seconds, deadline, err)
  if not is_timeout(err) then
    timeout_pop()
    error(err, 0)
  end
  local clock = err.clock
  local verdict, expired = timeout_pop(clock)
  if verdict == 0 then
    error(remade(UncaughtTimeoutError,
                 ("a %s (%s) escaped its block and reached %s, whose time had not run out")
                   :format(err.__name, tostring(err.message), block_text(fname, seconds, deadline)),
                 err, { cause = err, clock = clock }), 0)
  elseif verdict == 2 then -- an outer block expired: pass through as TCE
    if TaskTimeout:matches(err) then
      error(remade(TimeoutCancellationError,
                   ("an outer timeout expired (deadline %.3f) inside %s")
                     :format(expired, block_text(fname, seconds, deadline)),
                   err, { clock = clock }), 0)
    end
    error(err, 0)
  end
  if ignore then return nil, TIMEOUT end -- this block expired
  local message = expired_text(fname, seconds, deadline)
  if TaskTimeout:matches(err) then
    err.message = message
  else
    err = remade(TaskTimeout, message, err, { clock = clock })
  end
  err.seconds, err.deadline = seconds, deadline
  error(err, 0)
end

local function leave(ignore, fname, seconds, deadline, ok, ...)
  if ok then
    timeout_pop()
    return ...
  end
  return leave_failed(ignore, fname, seconds, deadline, (...))
end

-- curio.timeout_after(seconds, fn, ...) -> fn's results, or TaskTimeout.
function time.timeout_after(seconds, fn, ...)
  -- (checks inline, the hot path; the error points at the caller's line)
  if seconds ~= nil and not (type(seconds) == "number" and seconds >= 0) then
    check.seconds(seconds, 1, "timeout_after")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "timeout_after") end
  local deadline = timeout_push_after(seconds, "timeout_after") -- (checks the task)
  return leave(false, "timeout_after", seconds, deadline, pcall(fn, ...))
end

-- curio.ignore_after(seconds, fn, ...) -> fn's results, or nil, curio.TIMEOUT.
function time.ignore_after(seconds, fn, ...)
  -- (checks inline, the hot path; the error points at the caller's line)
  if seconds ~= nil and not (type(seconds) == "number" and seconds >= 0) then
    check.seconds(seconds, 1, "ignore_after")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "ignore_after") end
  local deadline = timeout_push_after(seconds, "ignore_after") -- (checks the task)
  return leave(true, "ignore_after", seconds, deadline, pcall(fn, ...))
end

-- curio.timeout_at(deadline, fn, ...): as timeout_after, at a clock time.
function time.timeout_at(deadline, fn, ...)
  if deadline ~= nil and not (type(deadline) == "number" and deadline == deadline) then
    check.deadline(deadline, 1, "timeout_at")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "timeout_at") end
  timeout_push(deadline, "timeout_at") -- (checks the task)
  local seconds = deadline and deadline - core.clock()
  return leave(false, "timeout_at", seconds, deadline, pcall(fn, ...))
end

-- curio.ignore_at(deadline, fn, ...): as ignore_after, at a clock time.
function time.ignore_at(deadline, fn, ...)
  if deadline ~= nil and not (type(deadline) == "number" and deadline == deadline) then
    check.deadline(deadline, 1, "ignore_at")
  end
  if type(fn) ~= "function" then check.fn(fn, 2, "ignore_at") end
  timeout_push(deadline, "ignore_at") -- (checks the task)
  local seconds = deadline and deadline - core.clock()
  return leave(true, "ignore_at", seconds, deadline, pcall(fn, ...))
end

return time
