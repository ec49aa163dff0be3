-- How can tasks communicate? (curio How-To)
--
-- Similar to threads, one of the easiest ways to communicate between tasks
-- is to use a queue. The producer waits with join() until the consumer has
-- called task_done() for every item, then the consumer is cancelled.
--
--   lua5.4 examples/howto/communicate.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

local function producer(queue)
  for n = 0, 9 do
    queue:put(n)
  end
  queue:join()
  print("Producer done")
end

local function consumer(queue)
  while true do
    local item = queue:get()
    print("Consumer got " .. item)
    queue:task_done()
  end
end

local function main()
  local q = curio.Queue()
  local prod_task = curio.spawn(producer, q)
  local cons_task = curio.spawn(consumer, q)
  prod_task:join()
  cons_task:cancel()
end

curio.run(main)
