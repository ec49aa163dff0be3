-- How can coroutines and threads share a common lock? (curio How-To)
--
-- A UniversalLock blocks a worker thread and suspends a task; abide(lock)
-- gives the lock, whose acquire and with suit tasks.
--
--   lua5.4 examples/howto/thread_lock.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local lock = curio.UniversalLock()

-- A function running in a thread
local function func(shared_lock, log)
  for _ = 1, 3 do
    shared_lock:acquire()
    log:put("thread in")
    log:put("thread out")
    shared_lock:release()
  end
end

-- A task
local function coro(log)
  for _ = 1, 3 do
    curio.abide(lock):with(function()
      log:put("task in")
      curio.sleep(0.001)
      log:put("task out")
    end)
  end
end

curio.run(function()
  local log = curio.UniversalQueue()
  local t = curio.spawn(curio.run_in_thread, func, lock, log)
  local c = curio.spawn(coro, log)
  t:join()
  c:join()
  -- every "in" is followed by its own "out": the sections never overlap
  local previous, ok = nil, true
  for _ = 1, 12 do
    local entry = log:get()
    if previous and previous:match("in$") and entry ~= previous:gsub("in$", "out") then ok = false end
    previous = entry
  end
  print("critical sections never overlapped: " .. tostring(ok))
end)
