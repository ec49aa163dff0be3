-- curio.thread: run_in_thread, the Universal objects and abide
-- (docs/threads.md). The machinery is C (core/threads.c, core/universal.c); this
-- module checks arguments and adds what is policy: abide's choice between
-- calling directly and running in a thread.

local core = require "curio.core"
local check = require "curio.check"

local thread = {}

thread.run_in_thread = core.run_in_thread
thread.UniversalEvent = core.UniversalEvent
thread.UniversalLock = core.UniversalLock

-- curio.UniversalQueue(maxsize) -> a queue shared by tasks and threads;
-- maxsize 0, nil or math.huge: unbounded (as Queue's).
function thread.UniversalQueue(maxsize)
  if not (math.type(maxsize) == "integer" and maxsize >= 0) then
    maxsize = check.maxsize(maxsize, 1, "UniversalQueue")
  end
  return core.UniversalQueue(maxsize)
end

-- The functions abide calls directly in the task: curio's own, which
-- suspend the task instead of blocking the kernel (filled by init.lua).
local native = setmetatable({}, { __mode = "k" })

function thread.register_native(...)
  for i = 1, select("#", ...) do
    local source = select(i, ...)
    for _, value in pairs(source) do
      if type(value) == "function" then native[value] = true end
    end
  end
end

local function is_universal_lock(value)
  return type(value) == "userdata" and tostring(value):match("^UniversalLock") ~= nil
end

-- curio.abide(fn, ...) -> fn's results: curio's own blocking functions and
-- methods run directly in the task, any other function in a worker thread
-- (run_in_thread). curio.abide(lock) for a UniversalLock returns the lock,
-- whose acquire suits tasks already.
function thread.abide(fn, ...)
  if is_universal_lock(fn) then return fn end
  check.fn(fn, 1, "abide")
  if native[fn] then return fn(...) end
  return core.run_in_thread(fn, ...)
end

return thread
