-- How do you perform a blocking operation? (curio How-To)
--
-- A blocking call made outside of curio (here a shell `sleep`, through
-- os.execute) runs in a worker thread with run_in_thread(); the task waits
-- for its result while the other tasks keep running.
--
--   lua5.4 examples/howto/blocking.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local function blocking_sleep(seconds)
  os.execute("sleep " .. seconds)
  return "slept " .. seconds
end

curio.run(function()
  local ticks = 0
  local ticker = curio.spawn(function()
    while true do curio.sleep(0.05) ticks = ticks + 1 end
  end)
  local result = curio.run_in_thread(blocking_sleep, 0.3)
  print(result)
  print("other tasks ran meanwhile: " .. tostring(ticks >= 3))
  ticker:cancel()
end)
