-- How do you make cancellation apply to child tasks? (curio How-To)
--
-- A parent that must cancel its children when it is cancelled keeps track
-- of them and cancels them explicitly when a CancelledError reaches it.
--
--   lua5.4 examples/howto/cancel_children.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local child

local function coro()
  local ok, err = pcall(curio.sleep, 100)
  if not ok then
    print("child cancelled too")
    error(err, 0)
  end
end

local function func()
  child = curio.spawn(coro)
  local ok, err = pcall(function()
    -- ...
    child:join()
  end)
  if not ok then
    if curio.CancelledError:matches(err) then child:cancel() end
    error(err, 0)
  end
end

local function main()
  local task = curio.spawn(func)
  curio.sleep(0)  -- func starts the child and waits for it
  task:cancel()
  print("func cancelled: " .. tostring(task.cancelled))
  print("child cancelled: " .. tostring(child.cancelled) .. ", terminated: " .. tostring(child.terminated))
end

curio.run(main)
