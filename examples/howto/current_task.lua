-- How does a coroutine get its enclosing Task instance? (curio How-To)
--
-- Use curio.current_task(). Once you have the Task, it can be passed around
-- and used in other operations: here a different task uses it to cancel.
--
--   lua5.4 examples/howto/current_task.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local watchdog

local function cancel_it(task)
  print("watchdog: cancelling " .. task.name)
  task:cancel()
  print("watchdog: " .. task.name .. " terminated: " .. tostring(task.terminated))
end

local function func()
  local myself = curio.current_task()
  myself.name = "func"
  print("func: my task is " .. myself.name)
  watchdog = curio.spawn(cancel_it, myself)
  local ok, err = pcall(curio.sleep, 100)
  print("func: cancelled: " .. tostring(not ok and curio.TaskCancelled:matches(err)))
  error(err, 0)
end

local function main()
  local task = curio.spawn(func)
  task:wait()
  watchdog:join()
end

curio.run(main)
