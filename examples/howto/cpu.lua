-- How do you perform a CPU intensive operation? (curio How-To)
--
-- fib runs in a worker process with run_in_process(): another core does
-- the work while the kernel goes on running the other tasks.
--
--   lua5.4 examples/howto/cpu.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local function fib(n)
  if n <= 2 then
    return 1
  else
    return fib(n - 1) + fib(n - 2)
  end
end

curio.run(function()
  local ticks = 0
  local ticker = curio.spawn(function()
    while true do curio.sleep(0.01) ticks = ticks + 1 end
  end)
  local result = curio.run_in_process(fib, 30)
  ticker:cancel()
  print("fib(30) = " .. result)
  print("other tasks ran meanwhile: " .. tostring(ticks > 0))
end)
