local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Random programs (fixed seeds) mixing spawns, sleeps, nested timeouts,
-- cancellations, joins, events, queues and groups. Whatever the
-- interleaving, every task must end with a result or an error of the
-- expected kinds, no item may be lost, and the kernel must end clean.
describe("the kernel under random load", function()

  local function program(seed)
    local random = math.random
    math.randomseed(seed)
    local outcome = { ended = 0, cancelled = 0, timed_out = 0, ok = 0, items_in = 0, items_out = 0 }
    curio.run(function()
      local queue, event = curio.Queue(8), curio.Event()
      local tasks = {}
      local function worker(id, depth)
        local ok, err = curio.pcall(function()
          for _ = 1, random(3, 8) do
            local action = random(1, 6)
            if action == 1 then
              curio.sleep(random() * 0.002)
            elseif action == 2 then
              curio.ignore_after(random() * 0.002, curio.sleep, 0.01)
            elseif action == 3 then
              queue:put(id)
              outcome.items_in = outcome.items_in + 1
            elseif action == 4 and depth < 3 then
              local child = curio.spawn(worker, id * 10, depth + 1)
              tasks[#tasks + 1] = child
              curio.timeout_after(random() * 0.003, child.wait, child)
            elseif action == 5 then
              curio.ignore_after(random() * 0.002, event.wait, event)
            else
              curio.TaskGroup(function(g)
                for _ = 1, random(1, 3) do g:spawn(curio.sleep, random() * 0.001) end
              end)
            end
          end
        end)
        if not ok then error(err, 0) end
        return id
      end
      local consumer = curio.spawn(function()
        while true do
          queue:get()
          outcome.items_out = outcome.items_out + 1
        end
      end)
      for id = 1, 40 do tasks[#tasks + 1] = curio.spawn(worker, id, 0) end
      for _ = 1, 30 do
        curio.sleep(random() * 0.002)
        local victim = tasks[random(1, #tasks)]
        victim:cancel({ blocking = random() < 0.5 })
        if random() < 0.2 then event:set(); event:clear() end
      end
      for _, t in ipairs(tasks) do
        t:wait()
        outcome.ended = outcome.ended + 1
        local err = t.exception
        if err == nil then outcome.ok = outcome.ok + 1
        elseif curio.TaskCancelled:matches(err) then outcome.cancelled = outcome.cancelled + 1
        elseif curio.TaskTimeout:matches(err) or curio.TimeoutCancellationError:matches(err) then
          outcome.timed_out = outcome.timed_out + 1
        else
          error("unexpected task error: " .. tostring(err))
        end
      end
      while not queue:empty() do curio.sleep(0.001) end
      consumer:cancel()
      outcome.tasks = #tasks
    end)
    return outcome
  end

  for _, seed in ipairs({ 1, 2, 3, 4, 5, 6, 7, 8 }) do
    it("ends every task and loses no item, seed " .. seed, function()
      local o = program(seed)
      assert.are.equal(o.tasks, o.ended)
      assert.are.equal(o.ended, o.ok + o.cancelled + o.timed_out)
      assert.are.equal(o.items_in, o.items_out)
      assert.is_true(o.ok > 0 and o.cancelled + o.timed_out > 0, "the mix ended tasks both ways")
    end)
  end
end)
