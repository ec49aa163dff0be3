-- How do you apply a timeout? (curio How-To)
--
-- Any curio operation can time out with timeout_after(seconds, fn, ...);
-- ignore_after returns nil (and curio.TIMEOUT) instead of raising.
--
--   lua5.4 examples/howto/timeout.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local function coro(seconds)
  curio.sleep(seconds)
  return "finished"
end

curio.run(function()
  local ok, err = pcall(curio.timeout_after, 0.05, coro, 1)
  if not ok and curio.TaskTimeout:matches(err) then
    print("Timed out")
  end

  local result = curio.ignore_after(0.05, coro, 1)
  if result == nil then
    print("Timed out")
  end

  print(curio.timeout_after(1, coro, 0.01))
end)
