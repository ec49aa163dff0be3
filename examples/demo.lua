-- A short tour of tasks, timeouts and cancellation; `make run` runs it with
-- the curio program (top-level code is the main task, so it may block).
local curio = require "curio"
local START = curio.clock()
local function worker(name, delay, count)
  for i = 1, count do
    curio.sleep(delay)
    print(("%-8s tick %d at %.2fs"):format(name, i, curio.clock() - START))
  end
  return name .. " finished"
end

local fast = curio.spawn(worker, "fast", 0.05, 4)
local slow = curio.spawn(worker, "slow", 0.12, 10)

print(fast:join())

local ok, err = pcall(curio.timeout_after, 0.1, curio.sleep, 1)
print("timeout_after:", ok, err.__name, ("after %.1fs"):format(err.seconds))

local value, flag = curio.ignore_after(0.1, slow.join, slow)
print("ignore_after:", value, flag == curio.TIMEOUT and "curio.TIMEOUT" or flag)

slow:cancel()
print("slow cancelled:", slow.cancelled, slow.exception.__name)
print("done")
