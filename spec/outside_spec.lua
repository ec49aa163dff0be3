local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- docs/README.md, conventions: every call that may wait raises CurioError ("not inside
-- a curio task", naming the function) outside a task, even when it would
-- not have to wait this time; calls that never wait work anywhere.
describe("blocking calls outside a task", function()
  -- Objects in every state a call could skip its wait in: an ended task, a
  -- set event, free locks, queues holding an item, a group with no task.
  local k = curio.Kernel()
  local done, live = k:run(function()
    local d = curio.spawn(function() return 1 end)
    d:join()
    return d, curio.spawn(curio.sleep, 0.01)
  end)
  local ev = curio.Event()
  ev:set()
  local function queue(class) return class() end
  local group = curio.TaskGroup()

  local calls = {
    { "sleep", curio.sleep, 0 },
    { "sleep", curio.sleep, 1 },
    { "join", done.join, done },
    { "wait", done.wait, done },
    { "join", live.join, live },
    { "cancel", done.cancel, done },
    { "cancel", live.cancel, live },
    { "Event.wait", ev.wait, ev },
    { "Lock.acquire", function() local l = curio.Lock() return l:acquire() end },
    { "Lock.with", function() local l = curio.Lock() return l:with(print) end },
    { "RLock.acquire", function() local l = curio.RLock() return l:acquire() end },
    { "Semaphore.acquire", function() local s = curio.Semaphore(2) return s:acquire() end },
    { "BoundedSemaphore.acquire", function() local s = curio.BoundedSemaphore(2) return s:acquire() end },
    { "Semaphore.with", function() local s = curio.Semaphore(2) return s:with(print) end },
    { "Condition.acquire", function() local c = curio.Condition() return c:acquire() end },
    { "Condition.wait", function() local c = curio.Condition() return c:wait() end },
    { "Condition.wait_for", function() local c = curio.Condition() return c:wait_for(function() return true end) end },
    { "Condition.with", function() local c = curio.Condition() return c:with(print) end },
    { "Queue.put", function() return queue(curio.Queue):put(1) end },
    { "Queue.get", function() return queue(curio.Queue):get() end },
    { "Queue.join", function() return queue(curio.Queue):join() end },
    { "LifoQueue.put", function() return queue(curio.LifoQueue):put(1) end },
    { "LifoQueue.get", function() return queue(curio.LifoQueue):get() end },
    { "LifoQueue.join", function() return queue(curio.LifoQueue):join() end },
    { "PriorityQueue.put", function() return queue(curio.PriorityQueue):put(1) end },
    { "PriorityQueue.get", function() return queue(curio.PriorityQueue):get() end },
    { "PriorityQueue.join", function() return queue(curio.PriorityQueue):join() end },
    { "TaskGroup.join", group.join, group },
    { "TaskGroup.next_done", group.next_done, group },
    { "TaskGroup.next_result", group.next_result, group },
    { "TaskGroup.cancel_remaining", group.cancel_remaining, group },
    { "TaskGroup", curio.TaskGroup, nil, function() end },
    { "timeout_after", curio.timeout_after, 1, print },
    { "ignore_after", curio.ignore_after, 1, print },
    { "timeout_at", curio.timeout_at, 1, print },
    { "ignore_at", curio.ignore_at, 1, print },
    { "spawn", curio.spawn, print },
    { "spawn_daemon", curio.spawn_daemon, print },
    { "check_cancellation", curio.check_cancellation },
  }

  for _, call in ipairs(calls) do
    local name, fn = call[1], call[2]
    it("raises for " .. name, function()
      local err = util.catch(fn, table.unpack(call, 3, 4))
      assert.is_true(curio.CurioError:matches(err), tostring(err))
      assert.is_truthy(tostring(err):find(name .. ": not inside a curio task", 1, true), tostring(err))
    end)
  end

  it("leaves the objects untouched and usable in a task afterwards", function()
    assert.is_false(live.cancelled)
    assert.are.equal(1, done:result())
    k:run(function() live:join() end)
    k:close()
  end)

  it("allows the calls that never wait", function()
    local lock, q, s = curio.Lock(), curio.Queue(), curio.Semaphore(0)
    assert.is_false(lock:locked())
    assert.is_true(q:empty())
    assert.are.equal(0, q:qsize())
    assert.is_false(q:full())
    s:release()
    assert.are.equal(1, s:value())
    local e = curio.Event()
    e:set()
    assert.is_true(e:is_set())
    assert.is_nil(curio.current_task())
    assert.is_number(curio.clock())
  end)
end)
