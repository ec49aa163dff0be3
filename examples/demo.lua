-- A short tour of tasks, timeouts and cancellation:
--   lua5.4 examples/demo.lua   (with the in-tree LUA_PATH/LUA_CPATH)
--   build/bin/curio examples/demo.lua
local curio = require "curio"

local function worker(start, name, delay, count)
  for i = 1, count do
    curio.sleep(delay)
    print(("%-8s tick %d at %.2fs"):format(name, i, curio.clock() - start))
  end
  return name .. " finished"
end

curio.run(function()
  local start = curio.clock()
  local fast = curio.spawn(worker, start, "fast", 0.05, 4)
  local slow = curio.spawn(worker, start, "slow", 0.12, 10)

  print(fast:join())

  local ok, err = pcall(curio.timeout_after, 0.1, curio.sleep, 1)
  print("timeout_after:", ok, err.__name, ("after %.1fs"):format(err.seconds))

  local value, flag = curio.ignore_after(0.1, slow.join, slow)
  print("ignore_after:", value, flag == curio.TIMEOUT and "curio.TIMEOUT" or flag)

  slow:cancel()
  print("slow cancelled:", slow.cancelled, slow.exception.__name)
  print("done")
end)
