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
      "UniversalQueue.put: cannot transfer item #1 field '[1]' (userdata)", 1, true))
    assert.are.equal(0, q:qsize())
  end)

  -- docs/threads.md: every name of the Universal objects, in a task and in a thread alike.
  local function exercise(q, ev, lock)
    local trace = {}
    local function record(...) trace[#trace + 1] = table.concat({ ... }, " ") end
    q:put("a") q:put("b")
    record("queue", q:qsize(), tostring(q:empty()), tostring(q:full()), q:get(), q:get())
    q:task_done() q:task_done()
    q:join()
    record("joined", tostring(q:empty()))
    ev:set() record("event", tostring(ev:is_set())) ev:wait() ev:clear()
    record("cleared", tostring(ev:is_set()))
    do
      local guard <close> = lock:acquire()
      record("guard", tostring(guard == lock), tostring(lock:locked()))
    end
    record("after guard", tostring(lock:locked()))
    record("with", lock:with(function(x, y) return tostring(lock:locked()), x + y end, 1, 2))
    local ok, err = pcall(lock.with, lock, function() error({ code = 5 }) end)
    record("with error", tostring(ok), err.code, tostring(lock:locked()))
    lock:acquire() lock:release()
    record("released", tostring(lock:locked()))
    return table.concat(trace, "; ")
  end

  it("offers every method of the Universal objects in a task and in a thread alike, UniversalLock:with included", function()
    local in_task, in_thread = curio.run(function()
      local q, ev, lock = curio.UniversalQueue(2), curio.UniversalEvent(), curio.UniversalLock()
      return exercise(q, ev, lock), curio.run_in_thread(exercise, q, ev, lock)
    end)
    assert.are.equal("queue 2 false true a b; joined true; event true; cleared false; guard true true; "
      .. "after guard false; with true 3; with error false 5 false; released false", in_task)
    assert.are.equal(in_task, in_thread)
  end)

  it("runs UniversalLock:with in a thread while a task waits for the lock, and the How-To recipe", function()
    local overlapped = curio.run(function()
      local lock, log = curio.UniversalLock(), curio.UniversalQueue()
      local th = curio.spawn(curio.run_in_thread, function(l, q)
        for _ = 1, 50 do l:with(function() q:put("thread in") q:put("thread out") end) end
      end, lock, log)
      for _ = 1, 50 do
        lock:with(function() log:put("task in") curio.sleep(0) log:put("task out") end)
      end
      th:join()
      local previous, bad = nil, false
      for _ = 1, 200 do
        local entry = log:get()
        if previous and previous:match("in$") and entry ~= previous:gsub("in$", "out") then bad = true end
        previous = entry
      end
      return bad
    end)
    assert.is_false(overlapped)
    local lock = curio.UniversalLock()
    assert.is_truthy(tostring(util.catch(lock.with, lock, 5)):find("bad argument #1 to 'with'", 1, true))
    assert.is_false(lock:locked())
  end)

  it("is the same Lua value when it comes back into a state that has it", function()
    local same_get, same_thread, as_key, nested = curio.run(function()
      local q = curio.UniversalQueue()
      local ev = curio.UniversalEvent()
      q:put(q)
      local back = q:get()
      local keys = { [ev] = "found" }
      local ev_back = curio.run_in_thread(function(x) return x end, ev)
      local t = curio.run_in_thread(function(a, b) return { a, b, a } end, q, ev)
      return back == q, curio.run_in_thread(function(x) return x end, q) == q, keys[ev_back],
             t[1] == q and t[2] == ev and t[3] == q
    end)
    assert.is_true(same_get)
    assert.is_true(same_thread)
    assert.are.equal("found", as_key)
    assert.is_true(nested)
    -- in the thread too: the object it was given and the one it gets back
    local k = curio.Kernel()
    local in_thread = k:run(curio.run_in_thread, function(q)
      q:put(q)
      local again = q:get()
      return again == q and rawequal(again, q)
    end, curio.UniversalQueue())
    k:close()
    assert.is_true(in_thread)
  end)

  it("collects queues that hold themselves or each other, and what they hold (20,000 cycles)", function()
    local function cycles(n)
      for _ = 1, n do
        local a, b = curio.UniversalQueue(), curio.UniversalQueue()
        a:put(a)                                -- itself
        a:put({ b, curio.UniversalEvent() })    -- the other, and an object they hold
        b:put(a)                                -- each other
        b:put({ ("x"):rep(100) })
      end
      collectgarbage()
      collectgarbage()
    end
    cycles(20000) -- (the allocator's arenas grow once)
    local before = util.resident_bytes()
    cycles(20000) -- kept, they would take another 80 MB or so
    local grown = util.resident_bytes() - before
    -- (under AddressSanitizer freed memory waits in its quarantine: there
    -- the collection is checked by valgrind's leak check, memcheck.lua)
    if not (os.getenv("LD_PRELOAD") or ""):find("asan", 1, true) then
      assert.is_true(grown < 16 * 2 ^ 20, ("grew by %.1f MB"):format(grown / 2 ^ 20))
    end
  end)

  it("keeps a cycle that something outside it still holds", function()
    local b = curio.UniversalQueue()
    do
      local a = curio.UniversalQueue()
      a:put(a)
      a:put(b)
      b:put(a)
    end
    collectgarbage()
    collectgarbage()
    local a = b:get()
    assert.are.equal(a, a:get())
    assert.are.equal(b, a:get())
    assert.is_true(a:empty() and b:empty())
    -- and one that a worker thread holds while the task lets go of it
    local k = curio.Kernel()
    local got = k:run(function()
      local q = curio.UniversalQueue()
      q:put(q)
      local th = curio.spawn(curio.run_in_thread, function(x) collectgarbage() return x:get() == x end, q)
      q = nil -- luacheck: ignore
      collectgarbage()
      return th:join()
    end)
    k:close()
    assert.is_true(got)
  end)

  it("releases what an item holds when its put waited, was cancelled or timed out", function()
    local full = curio.UniversalQueue(1)
    full:put(0)
    local function rounds(n)
      curio.run(function()
        local function holder() -- 2 MB that a lost reference would keep
          local inner = curio.UniversalQueue()
          inner:put(("x"):rep(2 ^ 21))
          return inner
        end
        for i = 1, n do
          if i % 3 == 0 then -- cancelled while it waits
            local putter = curio.spawn(function() full:put({ holder() }) end)
            curio.sleep(0)
            putter:cancel()
          elseif i % 3 == 1 then -- woken: it encodes its item anew
            local inner = holder()
            local putter = curio.spawn(function() full:put({ inner }) end)
            curio.sleep(0)
            assert.are.equal(0, full:get())
            putter:join()
            assert.are.equal(inner, full:get()[1])
            full:put(0)
          else -- timed out
            assert.is_nil(curio.ignore_after(0.001, full.put, full, { holder() }))
          end
        end
        curio.spawn(function() full:put({ holder() }) end) -- cancelled with the kernel
        curio.sleep(0)
      end)
      collectgarbage()
      collectgarbage()
    end
    rounds(6)
    local before = util.resident_bytes()
    rounds(60) -- each lost reference would keep 2 MB: 120 MB
    local grown = util.resident_bytes() - before
    assert.are.equal(0, full:get())
    assert.is_true(full:empty())
    -- (the sanitizers' allocators keep freed memory: the figure counts on
    -- the plain build only)
    if not (os.getenv("LD_PRELOAD") or ""):find("[at]san") then
      assert.is_true(grown < 16 * 2 ^ 20, ("grew by %.1f MB"):format(grown / 2 ^ 20))
    end
  end)

  it("refuses to block the kernel's thread from a coroutine curio does not drive", function()
    -- (a hang on old main: a child killed after 20 s; under `make tsan`,
    -- where no shell starts, in this process)
    local code = [[
      local curio = require "curio"
      curio.run(function()
        local q, ev, lock = curio.UniversalQueue(), curio.UniversalEvent(), curio.UniversalLock()
        local full = curio.UniversalQueue(1)
        full:put(1)
        local held <close> = lock:acquire()
        for _, f in ipairs{ function() return q:get() end, function() return ev:wait() end,
                            function() return lock:acquire() end, function() return full:put(2) end,
                            function() return lock:with(print) end } do
          local ok, e = pcall(coroutine.wrap(f))
          assert(not ok and tostring(e):find("coroutine that curio does not drive", 1, true), tostring(e))
        end
        q:put(1)
        assert(coroutine.wrap(function() return q:get() end)() == 1) -- no wait: allowed
        assert(full:get() == 1 and full:empty())
      end)
      return "ok"
    ]]
    if (os.getenv("LD_PRELOAD") or ""):find("tsan", 1, true) then
      assert.are.equal("ok", assert(load(code))())
      return
    end
    local status, out, err = util.lua_code("io.write((function() " .. code .. " end)())", 20)
    assert.are.equal(0, status, err)
    assert.are.equal("ok", out)
  end)
end)
