-- How can a task and a thread communicate? (curio How-To)
--
-- A UniversalQueue is usable from tasks (they wait without blocking the
-- kernel) and from worker threads (they block); abide() calls curio's own
-- blocking methods directly in the task.
--
--   lua5.4 examples/howto/thread_queue.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

-- A thread: plain blocking code
local function producer(queue)
  for n = 0, 9 do queue:put(n) end
  queue:join()
  print("Producer done")
end

-- A task
local function consumer(queue)
  while true do
    local item = curio.abide(queue.get, queue)
    print("Consumer got", item)
    curio.abide(queue.task_done, queue)
  end
end

curio.run(function()
  local q = curio.UniversalQueue()
  local prod_task = curio.spawn(curio.run_in_thread, producer, q)
  local cons_task = curio.spawn(consumer, q)
  prod_task:join()
  cons_task:cancel()
end)
