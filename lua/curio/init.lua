-- curio for Lua: the public API (docs/README.md). Everything is reached from
-- `local curio = require "curio"`.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
core.set_errors(errors.classes, check.module_dir)
local time = require "curio.time"
local task = require "curio.task"
local sync = require "curio.sync"
local queue = require "curio.queue"
local taskgroup = require "curio.taskgroup"
local thread = require "curio.thread"
local io_ = require "curio.io"
local network = require "curio.network"

local curio = { _VERSION = "curio 0.1.0" }

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
curio.timeout_after = time.timeout_after
curio.ignore_after = time.ignore_after
curio.timeout_at = time.timeout_at
curio.ignore_at = time.ignore_at
curio.TIMEOUT = time.TIMEOUT

-- 5. synchronisation
curio.Event = sync.Event
curio.Lock = sync.Lock
curio.RLock = sync.RLock
curio.Semaphore = sync.Semaphore
curio.BoundedSemaphore = sync.BoundedSemaphore
curio.Condition = sync.Condition
curio.TaskGroup = taskgroup.TaskGroup


-- 6. queues
curio.Queue = queue.Queue
curio.LifoQueue = queue.LifoQueue
curio.PriorityQueue = queue.PriorityQueue

-- 7. threads
curio.run_in_thread = thread.run_in_thread
curio.UniversalQueue = thread.UniversalQueue
curio.UniversalEvent = thread.UniversalEvent
curio.UniversalLock = thread.UniversalLock
curio.abide = thread.abide

-- 8. processes
curio.run_in_process = require("curio.workers").run_in_process

-- 10. sockets, streams and servers
curio.socket = network.socket
curio.tcp_server = network.tcp_server
curio.tcp_server_socket = network.tcp_server_socket
curio.run_server = network.run_server
curio.unix_server = network.unix_server
curio.open_connection = network.open_connection
curio.open_unix_connection = network.open_unix_connection
curio.aopen = io_.aopen
curio.subprocess = require "curio.subprocess"
curio.Stream = io_.Stream

-- 11. signals
curio.SignalQueue = require("curio.signal").SignalQueue
curio.SignalEvent = require("curio.signal").SignalEvent

-- abide calls curio's own functions and methods directly
do
  local function methods_of(value)
    local mt = debug.getmetatable(value)
    local index = mt and mt.__index
    return type(index) == "table" and index or {}
  end
  local sample_task = { join = true }
  thread.register_native(curio, core, core.task_methods, methods_of(core.UniversalQueue()),
    methods_of(core.queue(0, "fifo")), methods_of(core.waitq()), sample_task)
  for _, class in ipairs({ curio.Event(), curio.Lock(), curio.RLock(), curio.Semaphore(),
                           curio.BoundedSemaphore(), curio.Condition() }) do
    thread.register_native(getmetatable(class))
  end
end

return curio
