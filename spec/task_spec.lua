local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

describe("tasks", function()

  it("run spawned functions with their arguments and return every result", function()
    local r = curio.run(function()
      local t = curio.spawn(function(a, b) return a + b, nil, "z" end, 1, 2)
      return table.pack(t:join())
    end)
    assert.are.same({ n = 3, 3, nil, "z" }, r)
  end)

  it("start a spawned task only when the spawner blocks", function()
    local trace = {}
    curio.run(function()
      local t = curio.spawn(function() trace[#trace + 1] = "child" end)
      trace[#trace + 1] = "parent before"
      curio.sleep(0)
      trace[#trace + 1] = "parent after"
      t:join()
    end)
    assert.are.same({ "parent before", "child", "parent after" }, trace)
  end)

  it("let sleep(0) yield to every ready task once", function()
    local trace = {}
    curio.run(function()
      local tasks = {}
      for _, name in ipairs({ "a", "b", "c" }) do
        tasks[#tasks + 1] = curio.spawn(function()
          for i = 1, 3 do trace[#trace + 1] = name .. i; curio.sleep(0) end
        end)
      end
      for _, t in ipairs(tasks) do t:join() end
    end)
    assert.are.same({ "a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3" }, trace)
  end)

  it("raise TaskError with the cause when joining a failed task", function()
    local err, child = curio.run(function()
      local t = curio.spawn(function() error({ code = 7 }) end)
      local e = catch(t.join, t)
      return e, t
    end)
    assert.is_true(curio.TaskError:matches(err))
    assert.are.same({ code = 7 }, err.cause)
    assert.are.equal(child, err.task)
    assert.are.same({ code = 7 }, child.exception)
  end)

  it("wait without results or errors, and give them with result()", function()
    local trace = curio.run(function()
      local good = curio.spawn(function() curio.sleep(0.001) return "ok", 2 end)
      local bad = curio.spawn(function() error("bad", 0) end)
      local early = catch(good.result, good)
      local out = { curio.CurioError:matches(early), select("#", good:wait()), bad:wait() }
      out[#out + 1] = table.concat({ good:result() }, ",")
      out[#out + 1] = catch(bad.result, bad)
      return out
    end)
    assert.are.same({ true, 0, "ok,2", "bad" }, trace)
  end)

  it("expose id, name, daemon, terminated, cancelled and exception", function()
    local seen = curio.run(function()
      local a = curio.spawn(function() curio.sleep(0) end)
      local d = curio.spawn_daemon(function() curio.sleep(10) end)
      local before = { a.terminated, a.cancelled, a.daemon, d.daemon, a.exception }
      a.name = "worker"
      a.custom = 5
      a:join()
      d:cancel()
      return { before = before, ids = d.id > a.id, name = a.name, custom = a.custom,
               dname = d.name, after = { a.terminated, d.terminated, d.cancelled },
               dexc = curio.TaskCancelled:matches(d.exception) }
    end)
    assert.are.same({
      before = { false, false, false, true, nil }, ids = true, name = "worker", custom = 5,
      dname = seen.dname, after = { true, true, true }, dexc = true }, seen)
    assert.are.equal("string", type(seen.dname))
  end)

  it("refuse writes to read-only fields", function()
    curio.run(function()
      local t = curio.current_task()
      assert.truthy(catch(function() t.id = 3 end):find("read-only", 1, true))
      assert.truthy(catch(function() t.name = {} end):find("string expected", 1, true))
    end)
  end)

  it("give current_task() inside tasks and nil outside", function()
    assert.is_nil(curio.current_task())
    local same = curio.run(function()
      local t = curio.spawn(function() return curio.current_task() end)
      return rawequal(t, (t:join())) or t == t:join()
    end)
    assert.is_true(same)
  end)

  it("deliver TaskCancelled at the blocking call and wait for the end", function()
    local trace = {}
    curio.run(function()
      local t = curio.spawn(function()
        local ok, err = pcall(curio.sleep, 10)
        trace[#trace + 1] = curio.TaskCancelled:matches(err) and "cancelled" or tostring(ok)
        curio.sleep(0.001) -- cleanup may block
        trace[#trace + 1] = "cleanup done"
        error(err, 0)
      end)
      curio.sleep(0.001)
      t:cancel()
      trace[#trace + 1] = "cancel returned " .. tostring(t.terminated)
    end)
    assert.are.same({ "cancelled", "cleanup done", "cancel returned true" }, trace)
  end)

  it("return at once from a non-blocking cancel", function()
    local trace = curio.run(function()
      local t = curio.spawn(function() curio.sleep(10) end)
      curio.sleep(0)
      local out = { t:cancel({ blocking = false }), t.terminated }
      t:wait()
      out[#out + 1] = t.terminated
      out[#out + 1] = t:cancel()
      return out
    end)
    assert.are.same({ true, false, true, false }, trace)
  end)

  it("deliver opts.exc, a CancelledError subclass, and reject other classes", function()
    local Stop = curio.CancelledError:subclass("Stop")
    local got = curio.run(function()
      local t = curio.spawn(function() curio.sleep(10) end)
      curio.sleep(0)
      local bad = catch(t.cancel, t, { exc = curio.CurioError })
      t:cancel({ exc = Stop })
      return { Stop:matches(t.exception), bad:find("CancelledError", 1, true) ~= nil }
    end)
    assert.are.same({ true, true }, got)
  end)

  it("deliver a cancellation once and leave spawned children running", function()
    local trace = {}
    curio.run(function()
      local joining, seen, go = curio.Event(), curio.Event(), curio.Event()
      local parent = curio.spawn(function()
        local child = curio.spawn(function()
          go:wait()
          trace[#trace + 1] = "child finished"
          return "child result"
        end)
        joining:set() -- (does not block: the join below comes first)
        local ok = pcall(child.join, child)
        trace[#trace + 1] = "parent cancelled " .. tostring(not ok)
        seen:set()
        local again = child:join()
        trace[#trace + 1] = "parent joins again: " .. again
      end)
      joining:wait()
      local canceller = curio.spawn(parent.cancel, parent) -- waits for parent's end
      seen:wait()
      go:set()
      canceller:join()
    end)
    assert.are.same({ "parent cancelled true", "child finished",
                      "parent joins again: child result" }, trace)
  end)

  it("hold cancellation back inside disable_cancellation", function()
    local trace = {}
    curio.run(function()
      local t = curio.spawn(function()
        curio.disable_cancellation(function()
          curio.sleep(0.01)
          trace[#trace + 1] = "slept through"
          local pending = curio.check_cancellation()
          trace[#trace + 1] = curio.TaskCancelled:matches(pending) and "pending" or "none"
        end)
        trace[#trace + 1] = "after block"
        local ok, err = pcall(curio.sleep, 0)
        trace[#trace + 1] = curio.TaskCancelled:matches(err) and "delivered" or tostring(ok)
      end)
      curio.sleep(0.001)
      t:cancel()
    end)
    assert.are.same({ "slept through", "pending", "after block", "delivered" }, trace)
  end)

  it("raise a pending cancellation from check_cancellation where allowed", function()
    local got = curio.run(function()
      local t = curio.spawn(function()
        local x = 0
        while true do
          x = x + 1
          if x % 100 == 0 then curio.check_cancellation() end
          if x > 1e6 then return "not cancelled" end
          if x == 50 then curio.sleep(0) end
        end
      end)
      curio.sleep(0)
      t:cancel({ blocking = false })
      t:wait()
      return curio.TaskCancelled:matches(t.exception)
    end)
    assert.is_true(got)
  end)

  it("describe where a task is with traceback()", function()
    local text = curio.run(function()
      local t = curio.spawn(function() curio.sleep(10) end)
      curio.sleep(0)
      local tb = t:traceback()
      t:cancel()
      return tb
    end)
    assert.truthy(text:find("task_spec.lua", 1, true))
  end)

  it("fail a task whose body calls a bare coroutine.yield", function()
    local err = curio.run(function()
      local t = curio.spawn(function() coroutine.yield(1) end)
      local _, e = pcall(t.result, t:wait() or t)
      return e
    end)
    assert.truthy(tostring(err):find("curio.coroutine", 1, true))
  end)

  it("cancel daemon and ordinary tasks left when the main task ends, running cleanup", function()
    local trace = {}
    curio.run(function()
      curio.spawn_daemon(function()
        local _ <close> = setmetatable({}, { __close = function() trace[#trace + 1] = "daemon closed" end })
        curio.sleep(10)
      end)
      curio.spawn(function()
        local ok, err = pcall(curio.sleep, 10)
        trace[#trace + 1] = curio.TaskCancelled:matches(err) and "worker cancelled" or tostring(ok)
      end)
      curio.sleep(0)
    end)
    table.sort(trace)
    assert.are.same({ "daemon closed", "worker cancelled" }, trace)
  end)
end)

-- Tasks spawned without arguments get their coroutine when they first run,
-- and a task that returned nothing lets its coroutine go: neither shows.
describe("tasks many at once", function()
  it("behave the same before they first run: fields, name, cancel, traceback", function()
    local trace = util.traced(function(record)
      for _ = 1, 100 do curio.spawn(function() end) end -- (a burst: the next start lazily)
      local t = curio.spawn(function() record("ran as", curio.current_task().name) return end)
      t.name = "early"
      record("before", t.state, t.terminated, t:traceback():match("not started") ~= nil)
      local c = curio.spawn(function() curio.sleep(1) end)
      c:cancel({ blocking = false })
      t:join()
      c:wait()
      record("after", t.state, t.name, t:result() == nil, curio.TaskCancelled:matches(c.exception))
      record("join again", select("#", t:join()), select("#", t:result()))
    end)
    assert.are.same({ "before READY false true", "ran as early",
                      "after TERMINATED early true true", "join again 0 0" }, trace)
  end)

  it("keep a coroutine captured inside a task that ended dead", function()
    local co
    curio.run(function()
      curio.spawn(function() co = coroutine.running() end):join()
    end)
    assert.are.equal("dead", coroutine.status(co))
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.are.equal("cannot resume dead coroutine", err)
  end)

  it("spawn 20,000 at once and join them all, every one exactly once", function()
    local count, sum = curio.run(function()
      local tasks, ran, total = {}, 0, 0
      for i = 1, 20000 do
        tasks[i] = curio.spawn(function() ran = ran + 1 end)
      end
      for i = 1, 20000, 2 do tasks[i]:join() end
      for i = 2, 20000, 2 do tasks[i]:wait() end
      for i = 1, 20000 do total = total + (tasks[i].terminated and 1 or 0) end
      return ran, total
    end)
    assert.are.equal(20000, count)
    assert.are.equal(20000, sum)
  end)
end)

describe("curio.coroutine", function()
  it("lets a generator block while yielding values to its consumer", function()
    local trace = {}
    curio.run(function()
      local ticker = curio.spawn(function()
        for i = 1, 3 do trace[#trace + 1] = "tick" .. i; curio.sleep(0.002) end
      end)
      local gen = curio.coroutine.wrap(function()
        for i = 1, 3 do curio.sleep(0.003); curio.coroutine.yield(i) end
      end)
      local got = {}
      for _ = 1, 3 do got[#got + 1] = gen() end
      trace[#trace + 1] = table.concat(got, ",")
      ticker:join()
    end)
    assert.are.equal("1,2,3", trace[#trace])
    assert.are.equal("tick1", trace[1])
    assert.are.equal(4, #trace)
  end)

  it("returns true and values from resume, false and the error on failure", function()
    local got = curio.run(function()
      local co = curio.coroutine.create(function(a)
        local b = curio.coroutine.yield(a + 1)
        curio.sleep(0)
        error("oops " .. b, 0)
      end)
      local r1 = { curio.coroutine.resume(co, 1) }
      local r2 = { curio.coroutine.resume(co, "x") }
      local r3 = { curio.coroutine.resume(co) }
      return { r1, r2, r3, curio.coroutine.status(co) }
    end)
    assert.are.same({ { true, 2 }, { false, "oops x" }, { false, "cannot resume dead coroutine" }, "dead" }, got)
  end)

  it("passes a cancellation through instead of returning it", function()
    local trace = {}
    curio.run(function()
      local t = curio.spawn(function()
        local co = curio.coroutine.create(function() curio.sleep(10) end)
        local ok, err = pcall(curio.coroutine.resume, co)
        trace[#trace + 1] = ok and "swallowed" or (curio.TaskCancelled:matches(err) and "raised" or tostring(err))
      end)
      curio.sleep(0)
      t:cancel()
    end)
    assert.are.same({ "raised" }, trace)
  end)

  it("nests: a curio generator inside a curio generator may block", function()
    local got = curio.run(function()
      local inner = curio.coroutine.wrap(function()
        for i = 1, 2 do curio.sleep(0) curio.coroutine.yield(i) end
      end)
      local outer = curio.coroutine.wrap(function()
        for _ = 1, 2 do local v = inner(); curio.sleep(0); curio.coroutine.yield(v * 10) end
      end)
      return { outer(), outer() }
    end)
    assert.are.same({ 10, 20 }, got)
  end)

  it("refuses a blocking call inside a plain coroutine with a clear error", function()
    local err = curio.run(function()
      local gen = coroutine.wrap(function() curio.sleep(0.001); coroutine.yield(1) end)
      return catch(gen)
    end)
    assert.is_true(curio.CurioError:matches(err))
    assert.truthy(err.message:find("curio.coroutine", 1, true))
    assert.truthy(err.message:find("sleep", 1, true))
  end)
end)

describe("task misuse", function()
  it("reports bad arguments in Lua's standard form", function()
    curio.run(function()
      assert.truthy(catch(curio.spawn, 5):find("bad argument #1 to 'spawn' (function expected, got number)", 1, true))
      assert.truthy(catch(curio.sleep, -1):find("bad argument #1 to 'sleep'", 1, true))
      assert.truthy(catch(curio.sleep, 0 / 0):find("bad argument #1 to 'sleep'", 1, true))
      assert.truthy(catch(curio.sleep, "x"):find("number expected, got string", 1, true))
    end)
    assert.truthy(catch(curio.run, 5):find("bad argument #1 to 'run' (function expected, got number)", 1, true))
  end)

  it("refuses blocking calls and spawn outside a task, naming the function", function()
    for name, fn in pairs({ sleep = function() curio.sleep(0) end,
                            spawn = function() curio.spawn(print) end,
                            timeout_after = function() curio.timeout_after(1, print) end,
                            check_cancellation = curio.check_cancellation }) do
      local err = catch(fn)
      assert.is_true(curio.CurioError:matches(err), name)
      assert.truthy(err.message:find("not inside a curio task", 1, true), name)
      assert.truthy(err.message:find(name, 1, true), name)
    end
  end)

  it("refuses a task joining itself", function()
    local err = curio.run(function()
      local t = curio.current_task()
      return catch(t.join, t)
    end)
    assert.is_true(curio.CurioError:matches(err))
    assert.truthy(err.message:find("itself", 1, true))
  end)

  it("reports a crash of a task nobody joins on stderr, and not of a joined one", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      curio.run(function()
        curio.spawn(function() error("lonely failure") end)
        local joined = curio.spawn(function() error("joined failure") end)
        pcall(joined.join, joined)
        curio.spawn(function() curio.sleep(10) end) -- cancelled at the end: no crash
        curio.sleep(0.01)
        print("main done")
      end)
      collectgarbage()
    ]])
    assert.are.equal(0, status)
    assert.are.equal("main done\n", stdout)
    assert.truthy(stderr:find("Task crash", 1, true))
    assert.truthy(stderr:find("lonely failure", 1, true))
    assert.falsy(stderr:find("joined failure", 1, true))
    assert.falsy(stderr:find("TaskCancelled", 1, true))
  end)
end)
