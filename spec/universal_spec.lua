local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- UniversalQueue, UniversalEvent, UniversalLock (core/universal.c): one
-- object for tasks (suspended) and worker threads (blocked).
describe("Universal objects", function()

  it("loses no item between 4 producer threads and 4 consumer tasks, some cancelled", function()
    local got, put, left = curio.run(function()
      local q = curio.UniversalQueue(16)
      local producers = {}
      for p = 1, 4 do
        producers[p] = curio.spawn(curio.run_in_thread, function(queue, id)
          for i = 1, 250 do queue:put(id * 1000 + i) end
          return 250
        end, q, p)
      end
      local got, consumers = {}, {}
      for c = 1, 4 do
        consumers[c] = curio.spawn(function()
          while true do
            local item = q:get()
            got[#got + 1] = item
          end
        end)
      end
      curio.sleep(0.01)
      consumers[1]:cancel() -- midway: whatever it did not take stays in the queue
      consumers[2]:cancel()
      local put = 0
      for p = 1, 4 do put = put + producers[p]:join() end
      while q:qsize() > 0 do curio.sleep(0.001) end
      consumers[3]:cancel()
      consumers[4]:cancel()
      return got, put, q:qsize()
    end)
    assert.are.equal(1000, put)
    assert.are.equal(0, left)
    local seen = {}
    for _, item in ipairs(got) do
      assert.is_nil(seen[item], "item got twice: " .. item)
      seen[item] = true
    end
    assert.are.equal(1000, #got)
  end)

  it("copies items (tables, nils refused) and counts them until taken", function()
    curio.run(function()
      local q = curio.UniversalQueue(2)
      local t = { 1, { 2 } }
      q:put(t)
      assert.are.equal(1, q:qsize())
      assert.is_false(q:empty())
      q:put("x")
      assert.is_true(q:full())
      local copy = q:get()
      assert.are.same(t, copy)
      assert.are_not.equal(t, copy)
      assert.is_truthy(tostring(util.catch(q.put, q, nil)):find("value expected", 1, true))
    end)
  end)

  it("wakes a task from a thread with an event, and a thread from a task", function()
    local trace = util.traced(function(record)
      local ev, back = curio.UniversalEvent(), curio.UniversalEvent()
      local waiter = curio.spawn(function() ev:wait() record("task woken") end)
      local th = curio.spawn(curio.run_in_thread, function(event, reply)
        event:set()
        reply:wait()
        return "thread woken"
      end, ev, back)
      waiter:join()
      back:set()
      record(th:join())
      record("is_set", ev:is_set())
      ev:clear()
      record("cleared", ev:is_set())
    end)
    assert.are.same({ "task woken", "thread woken", "is_set true", "cleared false" }, trace)
  end)

  it("shares a lock between tasks and threads, and refuses a release by a non-holder", function()
    local ok, err, after = curio.run(function()
      local lock = curio.UniversalLock()
      local guard = lock:acquire()
      assert(guard == lock and lock:locked())
      local ok, err = pcall(curio.run_in_thread, function(l) l:release() end, lock)
      lock:release()
      local after = curio.run_in_thread(function(l) l:acquire() local held = l:locked() l:release() return held end, lock)
      return ok, err, after
    end)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("held by another", 1, true))
    assert.is_true(after)
    local lock = curio.UniversalLock()
    assert.is_true(curio.CurioError:matches(util.catch(lock.release, lock)))
  end)

  it("suspends a task waiting on a queue while other tasks run, and cancels it cleanly", function()
    local trace = util.traced(function(record)
      local q = curio.UniversalQueue()
      local t = curio.spawn(function() return q:get() end)
      local ticks = 0
      for _ = 1, 3 do curio.sleep(0.005) ticks = ticks + 1 end
      t:cancel()
      record("ticks", ticks, "cancelled", curio.TaskCancelled:matches(t.exception))
      q:put("kept")
      record("left", q:qsize(), q:get())
    end)
    assert.are.same({ "ticks 3 cancelled true", "left 1 kept" }, trace)
  end)

  it("outlives a kernel that closed while tasks waited on it, and serves the next", function()
    local q, ev, lock = curio.UniversalQueue(), curio.UniversalEvent(), curio.UniversalLock()
    local first = curio.run(function()
      lock:acquire()
      local waiters = {
        curio.spawn(function() return q:get() end),
        curio.spawn(function() return ev:wait() end),
        curio.spawn(function() lock:acquire() return "got lock" end),
      }
      curio.sleep(0.01)
      lock:release() -- wakes the lock's waiter, which the closing kernel cancels
      q:put("before")
      return #waiters
    end)
    assert.are.equal(3, first)
    assert.are.same({ false, 1, "before" }, { lock:locked(), q:qsize(), q:get() })
    -- nothing the closed kernel's waiters left behind may take these
    q:put("after")
    ev:set()
    local trace = util.traced(function(record)
      record("item", q:get(), q:qsize())
      ev:wait()
      record("event", ev:is_set())
      local took = curio.spawn(function()
        return curio.run_in_thread(function(l) l:acquire() l:release() return "thread" end, lock)
      end)
      lock:acquire()
      record("locked", lock:locked())
      lock:release()
      record("then", took:join())
    end)
    assert.are.same({ "item after 0", "event true", "locked true", "then thread" }, trace)
  end)

  it("refuses bad arguments and wrong objects", function()
    assert.is_truthy(tostring(util.catch(curio.UniversalQueue, -1)):find("UniversalQueue", 1, true))
    local q, ev = curio.UniversalQueue(), curio.UniversalEvent()
    assert.is_truthy(tostring(util.catch(q.get, ev)):find("UniversalQueue expected", 1, true))
    assert.is_truthy(tostring(util.catch(curio.abide, 5)):find("abide", 1, true))
    assert.is_truthy(tostring(util.catch(q.put, q, { io.stdout })):find(
      "UniversalQueue.put: cannot transfer item #1 [1] (userdata)", 1, true))
    assert.are.equal(0, q:qsize())
  end)
end)
