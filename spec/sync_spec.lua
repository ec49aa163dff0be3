local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

local traced = util.traced

describe("Event", function()

  it("wakes every waiter when set, and lets later waiters through at once", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = curio.spawn(function() ev:wait(); record("woke", i) end)
      end
      curio.sleep(0)
      record("set", tostring(ev:is_set()))
      ev:set()
      record("is_set", tostring(ev:is_set()))
      ev:wait()
      record("main passed")
      for _, t in ipairs(tasks) do t:join() end
    end)
    assert.are.same({ "set false", "is_set true", "main passed", "woke 1", "woke 2", "woke 3" }, trace)
  end)

  it("blocks waiters again after clear", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      ev:set()
      ev:clear()
      local t = curio.spawn(function() ev:wait(); record("woke") end)
      curio.sleep(0)
      record("cleared", tostring(ev:is_set()))
      ev:set()
      t:join()
    end)
    assert.are.same({ "cleared false", "woke" }, trace)
  end)

  it("lets a waiter time out and leave, and still wakes the others", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local quitter = curio.spawn(function()
        local err = catch(curio.timeout_after, 0.01, ev.wait, ev)
        record("timeout", tostring(curio.TaskTimeout:matches(err)))
      end)
      local stayer = curio.spawn(function() ev:wait(); record("stayer woke") end)
      quitter:join()
      ev:set()
      stayer:join()
    end)
    assert.are.same({ "timeout true", "stayer woke" }, trace)
  end)

  it("refuses to wait outside a task", function()
    local err = catch(curio.Event().wait, curio.Event())
    assert.is_true(curio.CurioError:matches(err))
    assert.truthy(err.message:find("not inside a curio task", 1, true))
  end)
end)

describe("Lock", function()

  it("serves waiters in arrival order", function()
    local trace = traced(function(record)
      local lock, tasks = curio.Lock(), {}
      lock:acquire()
      for i = 1, 4 do
        tasks[i] = curio.spawn(function()
          lock:acquire(); record("got", i); curio.sleep(0); lock:release()
        end)
      end
      curio.sleep(0)
      lock:release()
      for _, t in ipairs(tasks) do t:join() end
      record("locked", tostring(lock:locked()))
    end)
    assert.are.same({ "got 1", "got 2", "got 3", "got 4", "locked false" }, trace)
  end)

  it("hands the lock to the first waiter on release (no barging)", function()
    local trace = traced(function(record)
      local lock = curio.Lock()
      lock:acquire()
      local waiter = curio.spawn(function()
        lock:acquire(); record("waiter got"); lock:release()
      end)
      curio.sleep(0)
      lock:release()
      record("released, locked", tostring(lock:locked()))
      lock:acquire() -- must queue behind the waiter
      record("main got")
      lock:release()
      waiter:join()
    end)
    assert.are.same({ "released, locked true", "waiter got", "main got" }, trace)
  end)

  it("runs with(fn) holding the lock and releases it on return and on error", function()
    local trace = traced(function(record)
      local lock = curio.Lock()
      local a, b = lock:with(function(x)
        record("inside", tostring(lock:locked()))
        return x, "b"
      end, "a")
      record("returned", a, b, tostring(lock:locked()))
      local err = catch(lock.with, lock, function() error({ code = 1 }) end)
      record("error", tostring(err.code), tostring(lock:locked()))
    end)
    assert.are.same({ "inside true", "returned a b false", "error 1 false" }, trace)
  end)

  it("gives a guard from acquire that releases at the end of its scope", function()
    local trace = traced(function(record)
      local lock = curio.Lock()
      do
        local held <close> = lock:acquire()
        record("in scope", tostring(held:locked()))
      end
      record("after scope", tostring(lock:locked()))
      pcall(function()
        local _ <close> = lock:acquire()
        error("boom")
      end)
      record("after error", tostring(lock:locked()))
    end)
    assert.are.same({ "in scope true", "after scope false", "after error false" }, trace)
  end)

  it("raises CurioError when released unlocked", function()
    curio.run(function()
      local lock = curio.Lock()
      local err = catch(lock.release, lock)
      assert.is_true(curio.CurioError:matches(err))
      assert.truthy(err.message:find("Lock.release", 1, true))
    end)
  end)

  it("stays consistent when waiters are cancelled or time out", function()
    local trace = traced(function(record)
      local lock = curio.Lock()
      lock:acquire()
      local cancelled = curio.spawn(function() lock:acquire(); record("cancelled one got it") end)
      local timed = curio.spawn(function()
        local _, why = curio.ignore_after(0.01, lock.acquire, lock)
        record("timed out", tostring(why == curio.TIMEOUT))
      end)
      local patient = curio.spawn(function() lock:acquire(); record("patient got it"); lock:release() end)
      curio.sleep(0)
      cancelled:cancel()
      timed:join()
      lock:release()
      patient:join()
      record("locked", tostring(lock:locked()))
    end)
    assert.are.same({ "timed out true", "patient got it", "locked false" }, trace)
  end)

  it("lets a waiter handed the lock keep it when cancelled before it runs", function()
    local trace = traced(function(record)
      local lock = curio.Lock()
      lock:acquire()
      local waiter = curio.spawn(function()
        lock:acquire()
        record("waiter holds", tostring(lock:locked()))
        lock:release()
        local err = catch(curio.sleep, 0)
        record("then cancelled", tostring(curio.TaskCancelled:matches(err)))
      end)
      curio.sleep(0)
      lock:release() -- handed to the waiter
      waiter:cancel()
      record("locked", tostring(lock:locked()))
    end)
    assert.are.same({ "waiter holds true", "then cancelled true", "locked false" }, trace)
  end)

  it("refuses to acquire outside a task", function()
    local lock = curio.Lock()
    local err = catch(lock.acquire, lock)
    assert.is_true(curio.CurioError:matches(err))
    assert.is_false(lock:locked())
  end)
end)

describe("RLock", function()

  it("lets its owner re-enter and frees it after as many releases", function()
    local trace = traced(function(record)
      local lock = curio.RLock()
      lock:acquire()
      lock:acquire()
      local other = curio.spawn(function() lock:acquire(); record("other got"); lock:release() end)
      curio.sleep(0)
      lock:release()
      curio.sleep(0)
      record("after one release", tostring(lock:locked()))
      lock:release()
      record("after two, locked", tostring(lock:locked()))
      other:join()
      record("locked", tostring(lock:locked()))
    end)
    assert.are.same({ "after one release true", "after two, locked true", "other got", "locked false" },
                    trace)
  end)

  it("raises when released by a task that does not own it, or unlocked", function()
    curio.run(function()
      local lock = curio.RLock()
      local err = catch(lock.release, lock)
      assert.is_true(curio.CurioError:matches(err))
      lock:acquire()
      local t = curio.spawn(function() return catch(lock.release, lock) end)
      err = t:join()
      assert.is_true(curio.CurioError:matches(err))
      assert.is_true(lock:locked())
      lock:release()
    end)
  end)

  it("serves other tasks in arrival order and works with with()", function()
    local trace = traced(function(record)
      local lock, tasks = curio.RLock(), {}
      lock:acquire()
      for i = 1, 3 do
        tasks[i] = curio.spawn(function()
          lock:with(function() lock:with(function() record("got", i) end) end)
        end)
      end
      curio.sleep(0)
      lock:release()
      for _, t in ipairs(tasks) do t:join() end
      record("locked", tostring(lock:locked()))
    end)
    assert.are.same({ "got 1", "got 2", "got 3", "locked false" }, trace)
  end)
end)

describe("Semaphore", function()

  it("lets n tasks in at once, the others in arrival order", function()
    local trace = traced(function(record)
      local sema, tasks = curio.Semaphore(2), {}
      for i = 1, 4 do
        tasks[i] = curio.spawn(function()
          sema:with(function()
            record("in", i, "value", tostring(sema:value()))
            curio.sleep(0)
            record("out", i)
          end)
        end)
      end
      for _, t in ipairs(tasks) do t:join() end
      record("value", tostring(sema:value()), tostring(sema:locked()))
    end)
    assert.are.same({
      "in 1 value 1", "in 2 value 0", "out 1", "out 2", "in 3 value 0", "in 4 value 0",
      "out 3", "out 4", "value 2 false",
    }, trace)
  end)

  it("blocks at zero until released, and counts up without a bound", function()
    local trace = traced(function(record)
      local sema = curio.Semaphore(0)
      record("locked", tostring(sema:locked()))
      local t = curio.spawn(function() sema:acquire(); record("acquired") end)
      curio.sleep(0)
      sema:release()
      t:join()
      sema:release()
      sema:release()
      record("value", tostring(sema:value()))
    end)
    assert.are.same({ "locked true", "acquired", "value 2" }, trace)
  end)

  it("checks its argument", function()
    assert.truthy(catch(curio.Semaphore, -1):match("bad argument #1 to 'Semaphore'"))
    assert.truthy(catch(curio.Semaphore, "x"):match("bad argument #1 to 'Semaphore'"))
    assert.truthy(catch(curio.BoundedSemaphore, 1.5):match("bad argument #1 to 'BoundedSemaphore'"))
    assert.are.equal(1, curio.Semaphore():value())
  end)

  it("raises when a BoundedSemaphore is released above its bound", function()
    local trace = traced(function(record)
      local sema = curio.BoundedSemaphore(2)
      sema:acquire()
      sema:release()
      record("value", tostring(sema:value()))
      local err = catch(sema.release, sema)
      record("over", tostring(curio.CurioError:matches(err)), tostring(sema:value()))
    end)
    assert.are.same({ "value 2", "over true 2" }, trace)
  end)

  it("keeps its count when waiters are cancelled", function()
    curio.run(function()
      local sema = curio.Semaphore(1)
      sema:acquire()
      local waiters = {}
      for i = 1, 3 do waiters[i] = curio.spawn(sema.acquire, sema) end
      curio.sleep(0)
      waiters[2]:cancel()
      sema:release() -- to waiter 1
      waiters[1]:join()
      sema:release() -- to waiter 3
      waiters[3]:join()
      assert.are.equal(0, sema:value())
      sema:release()
      assert.are.equal(1, sema:value())
    end)
  end)
end)

describe("Condition", function()

  it("releases the lock while waiting and wakes waiters in order on notify", function()
    local trace = traced(function(record)
      local cond, tasks = curio.Condition(), {}
      for i = 1, 3 do
        tasks[i] = curio.spawn(function()
          cond:with(function()
            cond:wait()
            record("woke", i, tostring(cond:locked()))
          end)
        end)
      end
      curio.sleep(0)
      cond:with(function() cond:notify(2) end)
      curio.sleep(0)
      record("notified 2")
      cond:with(function() cond:notify_all() end)
      for _, t in ipairs(tasks) do t:join() end
      record("locked", tostring(cond:locked()))
    end)
    assert.are.same({ "woke 1 true", "woke 2 true", "notified 2", "woke 3 true", "locked false" }, trace)
  end)

  it("waits for a predicate and returns its value", function()
    local trace = traced(function(record)
      local cond, items = curio.Condition(curio.Lock()), {}
      local consumer = curio.spawn(function()
        cond:with(function()
          local n = cond:wait_for(function() return #items >= 2 and #items end)
          record("saw", tostring(n))
        end)
      end)
      for i = 1, 3 do
        cond:with(function()
          items[#items + 1] = i
          record("put", i)
          cond:notify()
        end)
        curio.sleep(0)
      end
      consumer:join()
    end)
    assert.are.same({ "put 1", "put 2", "saw 2", "put 3" }, trace)
  end)

  it("raises CurioError on wait or notify without the lock", function()
    curio.run(function()
      local cond = curio.Condition()
      assert.is_true(curio.CurioError:matches(catch(cond.wait, cond)))
      assert.is_true(curio.CurioError:matches(catch(cond.notify, cond)))
      assert.is_true(curio.CurioError:matches(catch(cond.notify_all, cond)))
    end)
    assert.truthy(catch(curio.Condition, 5):match("bad argument #1 to 'Condition'"))
  end)

  it("takes the lock back before a cancelled waiter sees its cancellation", function()
    local trace = traced(function(record)
      local cond = curio.Condition()
      local waiter = curio.spawn(function()
        local err = catch(cond.with, cond, function() cond:wait() end)
        record("cancelled", tostring(curio.TaskCancelled:matches(err)))
      end)
      local holder = curio.spawn(function()
        cond:with(function() curio.sleep(0); curio.sleep(0); record("holder done") end)
      end)
      curio.sleep(0) -- waiter waits, holder holds the lock
      waiter:cancel({ blocking = false })
      curio.sleep(0)
      record("waiter waits for the lock", tostring(waiter.terminated))
      holder:join()
      waiter:join()
    end)
    -- with() released without error: the waiter had the lock back
    assert.are.same({ "waiter waits for the lock false", "holder done", "cancelled true" }, trace)
  end)

  it("retakes the lock even when cancelled while it does", function()
    local trace = traced(function(record)
      local cond = curio.Condition()
      local waiter = curio.spawn(function()
        local _, why = curio.ignore_after(0.01, cond.with, cond, function() cond:wait() end)
        record("waiter timed out", tostring(why == curio.TIMEOUT))
        local err = catch(curio.sleep, 0)
        record("then cancelled", tostring(curio.TaskCancelled:matches(err)))
      end)
      curio.sleep(0) -- the waiter waits on the condition
      local holder = curio.spawn(function()
        cond:with(function()
          curio.sleep(0.06)
          record("holder still holds", tostring(cond:locked()))
        end)
      end)
      curio.sleep(0.03) -- the waiter timed out and waits for the lock
      waiter:cancel({ blocking = false })
      holder:join()
      waiter:join()
      record("locked", tostring(cond:locked()))
    end)
    assert.are.same({ "holder still holds true", "waiter timed out true", "then cancelled true",
                      "locked false" }, trace)
  end)

  it("releases an RLock held several times while waiting, and restores it", function()
    local trace = traced(function(record)
      local lock = curio.RLock()
      local cond = curio.Condition(lock)
      local waiter = curio.spawn(function()
        lock:acquire(); lock:acquire()
        cond:wait()
        lock:release()
        record("after one release", tostring(lock:locked()))
        lock:release()
      end)
      curio.sleep(0)
      cond:with(function() record("main got it"); cond:notify() end)
      waiter:join()
      record("locked", tostring(lock:locked()))
    end)
    assert.are.same({ "main got it", "after one release true", "locked false" }, trace)
  end)
end)

describe("lock guards", function()

  it("release when a task dies of an error inside with() or holding a <close> guard", function()
    local trace = traced(function(record)
      for _, kind in ipairs({ "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition" }) do
        local lock = curio[kind]()
        local in_with = curio.spawn(function() lock:with(function() error("in with") end) end)
        local guarded = curio.spawn(function()
          local held <close> = lock:acquire()
          error(held and "holding a guard")
        end)
        local waiter = curio.spawn(function() lock:with(function() end) end)
        pcall(in_with.join, in_with)
        pcall(guarded.join, guarded)
        waiter:join()
        record(kind, "locked", tostring(lock:locked()))
      end
    end)
    assert.are.same({ "Lock locked false", "RLock locked false", "Semaphore locked false",
                      "BoundedSemaphore locked false", "Condition locked false" }, trace)
  end)
end)

describe("synchronisation under random cancellation", function()

  -- Runs body in a task; -> "done", "cancelled" or the error.
  local function outcome(body)
    return function()
      local ok, err = pcall(body)
      if ok then return "done" end
      if curio.TaskCancelled:matches(err) or curio.TaskTimeout:matches(err) then return "cancelled" end
      return tostring(err)
    end
  end

  -- Counts the tasks inside fn; raises when more than limit are.
  local function occupy(counter, limit, fn)
    counter.n = counter.n + 1
    if counter.n > limit then counter.over = true end
    local ok, err = pcall(fn)
    counter.n = counter.n - 1
    if not ok then error(err, 0) end
  end

  it("never leaves a lock or permit held by a dead task", function()
    math.randomseed(4)
    local outcomes = curio.run(function()
      local lock, sema = curio.Lock(), curio.Semaphore(3)
      local in_lock, in_sema = { n = 0 }, { n = 0 }
      local workers = {}
      for i = 1, 200 do
        workers[i] = curio.spawn(outcome(function()
          for _ = 1, 5 do
            lock:with(occupy, in_lock, 1, function() curio.sleep(0) end)
            curio.ignore_after(math.random() * 0.002, sema.with, sema,
                               occupy, in_sema, 3, function() curio.sleep(0) end)
          end
        end))
      end
      for _ = 1, 300 do
        local victim = workers[math.random(#workers)]
        if math.random() < 0.5 then victim:cancel({ blocking = false }) end
        curio.sleep(0)
      end
      local outcomes = {}
      for _, t in ipairs(workers) do
        local result = t:join()
        outcomes[result] = (outcomes[result] or 0) + 1
      end
      assert.is_false(lock:locked())
      assert.are.equal(3, sema:value())
      assert.are.same({ n = 0 }, in_lock)
      assert.are.same({ n = 0 }, in_sema)
      return outcomes
    end)
    assert.are.equal(200, (outcomes.done or 0) + (outcomes.cancelled or 0))
    assert.is_true(outcomes.done > 0 and outcomes.cancelled > 0)
  end)

  it("never loses a condition wake-up", function()
    math.randomseed(7)
    local tokens, put, taken, stuck, locked = curio.run(function()
      local cond = curio.Condition()
      local tokens, put, taken = 0, 0, 0
      local tasks, consumers = {}, {}
      for i = 1, 300 do
        if i % 2 == 0 then
          tasks[i] = curio.spawn(outcome(function()
            for _ = 1, 3 do
              for _ = 1, math.random(0, 3) do curio.sleep(0) end
              cond:with(function()
                tokens = tokens + 1
                put = put + 1
                cond:notify()
              end)
            end
          end))
        else
          tasks[i] = curio.spawn(outcome(function()
            for _ = 1, 3 do
              cond:with(function()
                cond:wait_for(function() return tokens > 0 end)
                tokens = tokens - 1
                taken = taken + 1
              end)
            end
          end))
          consumers[#consumers + 1] = tasks[i]
        end
      end
      for _ = 1, 30 do
        for _ = 1, 5 do tasks[math.random(#tasks)]:cancel({ blocking = false }) end
        curio.sleep(0)
      end
      for i = 2, #tasks, 2 do tasks[i]:wait() end
      for _ = 1, 5 do curio.sleep(0) end
      local stuck = 0
      for _, t in ipairs(consumers) do
        if not t.terminated then stuck = stuck + 1 end
      end
      for _, t in ipairs(consumers) do t:cancel() end
      return tokens, put, taken, stuck, cond:locked()
    end)
    assert.are.equal(put - taken, tokens)
    assert.is_true(taken > 0)
    -- a consumer still waiting while tokens are left would be a lost wake-up
    assert.is_true(tokens == 0 or stuck == 0)
    assert.is_false(locked)
  end)
end)
