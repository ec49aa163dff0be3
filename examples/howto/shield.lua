-- How do you shield a coroutine from cancellation? (curio How-To)
--
-- The easiest way is to spawn it as a separate task and join it.
-- Cancellation only applies to the task on which it is performed: if func()
-- is cancelled while it waits in child:join(), the child task goes on and
-- runs to completion.
--
--   lua5.4 examples/howto/shield.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local go = curio.Event() -- holds the child until func has been cancelled
local child

local function coro(x)
  go:wait()
  print("child finished: " .. x * 2)
  return x * 2
end

local function func()
  child = curio.spawn(coro, 21)
  local result = child:join() -- cancelled here
  print("func got " .. result)  -- (not reached)
end

local function main()
  local task = curio.spawn(func)
  curio.sleep(0)  -- func starts the child and waits for it
  task:cancel()
  print("func cancelled: " .. tostring(task.cancelled))
  go:set()
  print("child result: " .. child:join())
end

curio.run(main)
