-- curio for Lua: the public API (docs/README.md). Everything is reached from
-- `local curio = require "curio"`.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
core.set_errors(errors.classes, check.module_dir)
local task = require "curio.task"

local curio = { _VERSION = "curio 0.1.0" }

-- Start-up cost: the modules below are compiled and run when one of their
-- names is first read (curio.Event loads curio.sync), not at require
-- "curio": a script pays for what it uses, and `lua5.4 -e 'require
-- "curio"'` stays within twice a bare `lua5.4 -e ''` (bench/startup.sh).
-- Each entry is a name and how to get its value; the value is then stored
-- in curio, so a name costs the lookup once. (Tasks' methods, errors,
-- and the kernel are used by every script and load at once.)
local lazy = {}

local function from(module, names)
  for _, name in ipairs(names) do
    lazy[name] = function() return require(module)[name] end
  end
end

-- Every lazy name but `except` loaded (for what must see them all: abide,
-- pairs(curio)).
local function load_all(except)
  for name in pairs(lazy) do
    if name ~= except then local _ = curio[name] end
  end
end

setmetatable(curio, {
  __index = function(self, name)
    local load = lazy[name]
    if load == nil then return nil end
    local value = load()
    rawset(self, name, value)
    return value
  end,
  __pairs = function(self) -- every name, as when all loaded at once
    load_all()
    return next, self, nil
  end,
})

-- 1. errors
for name, class in pairs(errors.classes) do curio[name] = class end
curio.pcall = errors.pcall
curio.xpcall = errors.xpcall

-- 2. kernel
curio.Kernel = core.Kernel

local function close_and_return(kernel, ok, ...)
  kernel:close()
  if not ok then error((...), 0) end
  return ...
end

-- curio.run(fn, ...): runs fn(...) as the main task of a new kernel, then
-- cancels every task left (their cleanup runs) and returns fn's results.
-- In a task of a host's kernel (the curio program), fn runs as a task of
-- that kernel instead (task.run_here: its rules).
function curio.run(fn, ...)
  check.fn(fn, 1, "run")
  if task.runs_here() then return task.run_here(fn, ...) end
  local kernel = core.Kernel()
  return close_and_return(kernel, pcall(kernel.run, kernel, fn, ...))
end

-- 3. tasks
curio.spawn = core.spawn
curio.spawn_daemon = core.spawn_daemon
curio.current_task = core.current_task
curio.sleep = core.sleep
curio.clock = core.clock
curio.disable_cancellation = task.disable_cancellation
curio.check_cancellation = task.check_cancellation
curio.coroutine = task.coroutine

-- 4. timeouts
from("curio.time", { "timeout_after", "ignore_after", "timeout_at", "ignore_at", "TIMEOUT" })

-- 5. synchronisation
from("curio.sync", { "Event", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition" })
from("curio.taskgroup", { "TaskGroup" })

-- 6. queues
from("curio.queue", { "Queue", "LifoQueue", "PriorityQueue" })

-- 7. threads
curio.run_in_thread = core.run_in_thread
curio.UniversalEvent = core.UniversalEvent
curio.UniversalLock = core.UniversalLock
from("curio.thread", { "UniversalQueue" })

-- abide calls curio's own functions and methods directly: it learns them
-- all (every lazy name loaded) when it is first read.
function lazy.abide()
  local thread = require "curio.thread"
  load_all("abide")
  local function methods_of(value)
    local mt = debug.getmetatable(value)
    local index = mt and mt.__index
    return type(index) == "table" and index or {}
  end
  local sample_task = { join = true }
  local loaded = {} -- (pairs(curio) would come back here)
  for name, value in next, curio do loaded[name] = value end
  thread.register_native(loaded, core, core.task_methods, methods_of(core.UniversalQueue()),
    methods_of(core.queue(0, "fifo")), methods_of(core.waitq()), sample_task, { thread.abide })
  for _, class in ipairs({ curio.Event(), curio.Lock(), curio.RLock(), curio.Semaphore(),
                           curio.BoundedSemaphore(), curio.Condition() }) do
    thread.register_native(getmetatable(class))
  end
  return thread.abide
end

-- 8. processes
from("curio.workers", { "run_in_process" })

-- 10. sockets, streams and servers
from("curio.network", { "socket", "tcp_server", "tcp_server_socket", "run_server", "unix_server",
                        "open_connection", "open_unix_connection" })
lazy.aopen = function() return require("curio.io").aopen end
lazy.Stream = function() return require("curio.io").Stream end
lazy.subprocess = function() return require "curio.subprocess" end

-- 11. signals
from("curio.signal", { "SignalQueue", "SignalEvent" })

-- 11. the task monitor
lazy.monitor = function() return require("curio.monitor").start end

-- 12. TLS
lazy.ssl = function() return require "curio.ssl" end

-- 13. channels
from("curio.channel", { "Channel" })
lazy.channel = function() return require "curio.channel" end

return curio
