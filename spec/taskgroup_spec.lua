local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

local traced = util.traced

local function add(x, y) return x + y end

local function ids(tasks)
  local list = {}
  for i, t in ipairs(tasks) do list[i] = t.id end
  return list
end

describe("TaskGroup", function()

  it("waits for every task and gives the results in creation order", function()
    local trace = traced(function(record)
      local t1, t2, t3
      local g = curio.TaskGroup(nil, function(g)
        t3 = g:spawn(function() curio.sleep(0.01); return 6 end)
        t1 = g:spawn(add, 1, 1)
        t2 = g:spawn(function() curio.sleep(0); return 4 end)
      end)
      record("results", table.concat(g:results(), ","), g:results().n)
      record("terminated", t1.terminated, t2.terminated, t3.terminated)
      record("completed is first to finish", g.completed == t1)
      record("tasks in creation order", table.concat(ids(g.tasks), ",") ==
                                       table.concat(ids({ t3, t1, t2 }), ","))
      record("exceptions", #g:exceptions(), g:exceptions().n, g:exception())
    end)
    assert.are.same({
      "results 6,2,4 3", "terminated true true true", "completed is first to finish true",
      "tasks in creation order true", "exceptions 0 3 nil",
    }, trace)
  end)

  it("runs as TaskGroup(fn) and as a group joined by hand", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup(function(g) g:spawn(add, 2, 3) end)
      record("fn form", g:results()[1])
      local h = curio.TaskGroup()
      h:spawn(add, 4, 5)
      h:join()
      record("by hand", h:result())
    end)
    assert.are.same({ "fn form 5", "by hand 9" }, trace)
  end)

  it("cancels daemon tasks at join and leaves them out of the results", function()
    local trace = traced(function(record)
      local outsider = curio.spawn_daemon(curio.sleep, 5)
      local d1, d2, slow
      local g = curio.TaskGroup({ tasks = { outsider } }, function(g)
        g:spawn(add, 1, 1)
        d1 = g:spawn_daemon(add, 2, 2)
        slow = g:spawn(function() curio.sleep(0.01); return "slow" end)
        d2 = g:spawn_daemon(curio.sleep, 5)
      end)
      record("results", table.concat(g:results(), ","))
      record("daemons", outsider.cancelled, d1.cancelled, d2.cancelled, d2.terminated, slow.cancelled)
      record("tasks", #g.tasks)
    end)
    assert.are.same({ "results 2,slow", "daemons true false true true false", "tasks 2" }, trace)
  end)

  it("takes existing tasks, terminated or not, from opts.tasks and add_task", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local t1 = curio.spawn(add, 1, 1)
      local t2 = curio.spawn(function() ev:wait(); return 4 end)
      local t3 = curio.spawn(function() ev:wait(); return 6 end)
      local t4 = curio.spawn(add, 4, 4)
      t1:wait()
      t4:wait()
      local g = curio.TaskGroup({ tasks = { t1, t2, t3 } }, function(g)
        ev:set()
        g:add_task(t4)
      end)
      record(table.concat(g:results(), ","))
    end)
    assert.are.same({ "2,4,6,8" }, trace)
  end)

  it("with wait 'any' stops at the first task done and cancels the others", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local t1, t2, t3
      local g = curio.TaskGroup({ wait = "any" }, function(g)
        t1 = g:spawn(add, 1, 1)
        t2 = g:spawn(function() ev:wait() end)
        t3 = g:spawn(function() ev:wait() end)
      end)
      record("result", g:result(), g.completed == t1)
      record("cancelled", t1.cancelled, t2.cancelled, t3.cancelled)
    end)
    assert.are.same({ "result 2 true", "cancelled false true true" }, trace)
  end)

  it("with wait 'any' gives the first task's error from result, exception and exceptions", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local g = curio.TaskGroup({ wait = "any" }, function(g)
        g:spawn(function() error({ code = "bad" }) end)
        g:spawn(function() ev:wait() end)
      end)
      local err = catch(g.result, g)
      record("result raises", err.code)
      record("exception", g:exception().code)
      local errs = g:exceptions()
      record("exceptions", errs[1].code, curio.TaskCancelled:matches(errs[2]))
    end)
    assert.are.same({ "result raises bad", "exception bad", "exceptions bad true" }, trace)
  end)

  it("with wait 'object' completes with the first task giving a non-nil result", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup({ wait = "object" }, function(g)
        g:spawn(function() return nil end)
        g:spawn(function() curio.sleep(0); return "value" end)
        g:spawn(function() curio.sleep(1) end)
      end)
      record("result", g:result(), g.completed == g.tasks[2])
      record("last cancelled", g.tasks[3].cancelled)
    end)
    assert.are.same({ "result value true", "last cancelled true" }, trace)
  end)

  it("with wait false cancels every task at join", function()
    local trace = traced(function(record)
      local t1, t2
      local g = curio.TaskGroup({ wait = false }, function(g)
        t1 = g:spawn(curio.sleep, 1)
        t2 = g:spawn(curio.sleep, 1)
      end)
      record("cancelled", t1.cancelled, t2.cancelled, g.completed)
    end)
    assert.are.same({ "cancelled true true nil" }, trace)
  end)

  it("ends the wait when a task fails, cancels the others, and does not raise at join", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local t1, t2, t3
      local g = curio.TaskGroup(function(g)
        t1 = g:spawn(function() ev:wait() end)
        t2 = g:spawn(function() ev:wait() end)
        t3 = g:spawn(function() error({ code = "t3" }) end)
      end)
      record("completed is the failed task", g.completed == t3, t3.exception.code)
      record("others cancelled", t1.cancelled, t2.cancelled)
      local err = catch(g.results, g) -- t1 comes first and was cancelled
      record("results raises", curio.TaskCancelled:matches(err))
      record("exception", g:exception().code)
    end)
    assert.are.same({
      "completed is the failed task true t3", "others cancelled true true", "results raises true",
      "exception t3",
    }, trace)
  end)

  it("cancels its tasks and re-raises when the body raises", function()
    local trace = traced(function(record)
      local tasks = {}
      local err = catch(curio.TaskGroup, nil, function(g)
        for i = 1, 3 do tasks[i] = g:spawn(curio.sleep, 5) end
        tasks[4] = g:spawn_daemon(curio.sleep, 5)
        curio.sleep(0)
        error({ code = "body" })
      end)
      record("error", err.code)
      for i = 1, 4 do record("task", i, tasks[i].cancelled, tasks[i].terminated) end
    end)
    assert.are.same({ "error body", "task 1 true true", "task 2 true true", "task 3 true true",
                      "task 4 true true" }, trace)
  end)

  it("hands tasks out in completion order with next_done, taking them out of the group", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup(function(g)
        g:spawn(function() curio.sleep(0.02); return "c" end)
        g:spawn(function() return "a" end)
        g:spawn(function() curio.sleep(0.01); return "b" end)
        while true do
          local t = g:next_done()
          if t == nil then break end
          record("done", t:result())
        end
      end)
      record("results left", #g:results(), #g.tasks)
    end)
    assert.are.same({ "done a", "done b", "done c", "results left 0 0" }, trace)
  end)

  it("gives results with next_result, raising a task's error there", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup()
      g:spawn(add, 1, 2)
      g:spawn(function() curio.sleep(0); error({ code = "late" }) end)
      record("first", g:next_result())
      local err = catch(g.next_result, g)
      record("second raises", err.code)
      err = catch(g.next_result, g)
      record("none left", curio.CurioError:matches(err))
      g:join()
    end)
    assert.are.same({ "first 3", "second raises late", "none left true" }, trace)
  end)

  it("cancels the remaining tasks with cancel_remaining", function()
    local trace = traced(function(record)
      local ev = curio.Event()
      local waiters = {}
      local g = curio.TaskGroup(function(g)
        local t0 = g:spawn(add, 1, 1)
        g:spawn(add, 2, 2)
        waiters[1] = g:spawn(function() ev:wait() end)
        waiters[2] = g:spawn(function() ev:wait() end)
        record("next_done is t0", g:next_done() == t0)
        record("next_result", g:next_result())
        g:cancel_remaining()
        record("cancelled", waiters[1].cancelled, waiters[2].cancelled, #g.tasks)
      end)
      record("results", #g:results())
    end)
    assert.are.same({ "next_done is t0 true", "next_result 4", "cancelled true true 0", "results 0" }, trace)
  end)

  it("lets a task joined on its own leave the group", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup(function(g)
        g:spawn(add, 1, 1)
        local daemon = g:spawn_daemon(function() curio.sleep(0.01); return "d" end)
        local t = g:spawn(add, 2, 2)
        local failing = g:spawn(function() curio.sleep(0); error({ code = "joined" }) end)
        record("joined", t:join(), daemon:join())
        local err = catch(failing.join, failing)
        record("failed join", curio.TaskError:matches(err), err.cause.code)
      end)
      record("results", table.concat(g:results(), ","), #g.tasks)
    end)
    assert.are.same({ "joined 4 d", "failed join true joined", "results 2 1" }, trace)
  end)

  it("counts a task that left and was added again once", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup()
      local t = g:spawn(add, 1, 2)
      g:spawn(function() curio.sleep(0); return "other" end)
      t:join() -- leaves; its completion already reached the group
      g:add_task(t)
      local first = g:next_done()
      local second = g:next_done()
      record("next_done", first == t, second and second:result(), g:next_done())
      local err = catch(curio.TaskGroup, { tasks = { t, t } })
      record("listed twice", curio.CurioError:matches(err))
      g:join()
    end)
    assert.are.same({ "next_done true other nil", "listed twice true" }, trace)
  end)

  it("with wait 'object' and only nil results waits for all and completes with none", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup({ wait = "object" }, function(g)
        for _ = 1, 3 do g:spawn(function() curio.sleep(0) end) end
      end)
      record("completed", g.completed, g:exception(), g:results().n)
    end)
    assert.are.same({ "completed nil nil 3" }, trace)
  end)

  it("cancels its tasks when the task joining it is cancelled", function()
    local trace = traced(function(record)
      local ev, started = curio.Event(), curio.Event()
      local children = {}
      local parent = curio.spawn(function()
        local err = catch(curio.TaskGroup, nil, function(g)
          for i = 1, 3 do children[i] = g:spawn(function() ev:wait() end) end
          started:set()
        end)
        record("parent got", curio.TaskCancelled:matches(err))
        for i = 1, 3 do record("child", i, children[i].cancelled, children[i].terminated) end
        error(err, 0)
      end)
      started:wait()
      parent:cancel()
    end)
    assert.are.same({ "parent got true", "child 1 true true", "child 2 true true", "child 3 true true" },
                    trace)
  end)

  it("cancels its tasks when a timeout expires around it", function()
    local trace = traced(function(record)
      local children = {}
      local err = catch(curio.timeout_after, 0.01, curio.TaskGroup, nil, function(g)
        for i = 1, 2 do children[i] = g:spawn(curio.sleep, 5) end
      end)
      record("timeout", curio.TaskTimeout:matches(err))
      for i = 1, 2 do record("child", i, children[i].cancelled, children[i].terminated) end
    end)
    assert.are.same({ "timeout true", "child 1 true true", "child 2 true true" }, trace)
  end)

  it("raises clear errors on misuse", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup()
      local function kind(err) return curio.CurioError:matches(err) and "CurioError" or tostring(err) end
      record("result before join", kind(catch(g.result, g)))
      record("results before join", kind(catch(g.results, g)))
      record("exception before join", kind(catch(g.exception, g)))
      record("exceptions before join", kind(catch(g.exceptions, g)))
      record("next_result of nothing", kind(catch(g.next_result, g)))
      local t = g:spawn(curio.sleep, 0)
      local other = curio.TaskGroup()
      record("add_task from another group", kind(catch(other.add_task, other, t)))
      record("add_task twice", kind(catch(g.add_task, g, t)))
      g:join()
      record("spawn after join", kind(catch(g.spawn, g, add, 1, 2)))
      local loose = curio.spawn(curio.sleep, 0)
      record("add_task after join", kind(catch(g.add_task, g, loose)))
      loose:join()
      other:join()
      record("empty group", other:exception(), #other:exceptions(), #other:results(),
             kind(catch(other.result, other)))
    end)
    assert.are.same({
      "result before join CurioError", "results before join CurioError",
      "exception before join CurioError", "exceptions before join CurioError",
      "next_result of nothing CurioError", "add_task from another group CurioError",
      "add_task twice CurioError", "spawn after join CurioError", "add_task after join CurioError",
      "empty group nil 0 0 CurioError",
    }, trace)
  end)

  it("checks its arguments", function()
    assert.truthy(catch(curio.TaskGroup, 5):match("^bad argument #1 to 'TaskGroup'"))
    assert.truthy(catch(curio.TaskGroup, { wait = "some" }):match("^bad argument #1 to 'TaskGroup'"))
    assert.truthy(catch(curio.TaskGroup, {}, 5):match("^bad argument #2 to 'TaskGroup'"))
    curio.run(function()
      local g = curio.TaskGroup()
      assert.truthy(catch(g.spawn, g, 5):match("^bad argument #1 to 'spawn'"))
      assert.truthy(catch(g.add_task, g, {}):match("^bad argument #1 to 'add_task'"))
      g:join()
    end)
  end)

  it("lets two tasks wait on next_done for one task without hanging", function()
    local trace = traced(function(record)
      local g = curio.TaskGroup()
      g:spawn(function() curio.sleep(0.01); return "only" end)
      local a = curio.spawn(function() local t = g:next_done(); return t and t:result() end)
      local b = curio.spawn(function() local t = g:next_done(); return t and t:result() end)
      local ra, rb = a:join(), b:join()
      record(ra or rb, ra and rb)
      g:join()
    end)
    assert.are.same({ "only nil" }, trace)
  end)

  it("wakes a task waiting in next_done when a task that already ended is added", function()
    local got = curio.run(function()
      local g = curio.TaskGroup()
      local sleeper = g:spawn(curio.sleep, 10)
      local finished = curio.spawn(function() return "early" end)
      finished:wait()
      local waiter = curio.spawn(function() return g:next_done() end)
      curio.sleep(0) -- the waiter waits in next_done
      g:add_task(finished)
      local first = curio.timeout_after(1, waiter.join, waiter)
      sleeper:cancel()
      g:join()
      return first == finished and first:result()
    end)
    assert.are.equal("early", got)
  end)

  it("does not keep the tasks next_done handed out (a long-lived group)", function()
    local handed = setmetatable({}, { __mode = "k" })
    local count, sum = curio.run(function()
      local g, total = curio.TaskGroup(), 0
      for round = 1, 10 do
        for i = 1, 50 do g:spawn(function() return round * i end) end
        for _ = 1, 50 do
          local t = g:next_done()
          handed[t] = true
          total = total + t:result()
        end
      end
      g:spawn(function() return 0 end) -- still a member: kept
      collectgarbage()
      collectgarbage()
      local left = 0
      for _ in pairs(handed) do left = left + 1 end
      g:join()
      return left, total
    end)
    assert.are.equal(55 * 1275, sum) -- rounds 1..10, each round * (1 + ... + 50)
    assert.is_true(count < 100, count .. " handed-out tasks still held")
  end)

  it("handles 100,000 tasks", function()
    local n, count, all_done = curio.run(function()
      local g = curio.TaskGroup()
      for i = 1, 100000 do g:spawn(add, i, 0) end
      g:join()
      local results = g:results()
      local all_done = true
      for i = 1, 100000 do if results[i] ~= i then all_done = false end end
      return results.n, #g.tasks, all_done
    end)
    assert.are.same({ 100000, 100000, true }, { n, count, all_done })
  end)
end)

describe("TaskGroup crash reports", function()
  local function run(body)
    local status, _, stderr = util.lua_code("local curio = require 'curio'\ncurio.run(function()\n"
                                            .. body .. "\nend)\n")
    return status, stderr
  end

  it("reports a failed task whose error nobody retrieved", function()
    local status, stderr = run([[
      local g = curio.TaskGroup(function(g) g:spawn(function() error("lost error") end) end)
      assert(g.completed.exception)]])
    assert.are.same({ 0, true }, { status, stderr:find("Task crash", 1, true) ~= nil })
    assert.truthy(stderr:find("lost error", 1, true))
  end)

  it("does not report an error the group's user retrieved", function()
    for _, take in ipairs({ "pcall(g.result, g)", "pcall(g.results, g)", "g:exception()",
                            "g:exceptions()" }) do
      local status, stderr = run([[
        local g = curio.TaskGroup(function(g) g:spawn(function() error("seen error") end) end)
        ]] .. take)
      assert.are.same({ 0, "" }, { status, stderr }, take)
    end
  end)
end)

describe("TaskGroup in a <close> variable", function()
  it("is joined when the block ends: every task waited for", function()
    local trace = util.traced(function(record)
      do
        local g <close> = curio.TaskGroup()
        g:spawn(function() curio.sleep(0.01); record("slow done") end)
        g:spawn(function() record("quick done") end)
        record("block ends")
      end
      record("after the block")
    end)
    assert.are.same({ "block ends", "quick done", "slow done", "after the block" }, trace)
  end)

  it("follows its wait policy, cancelling what is left, as join does", function()
    local trace = util.traced(function(record)
      do
        local g <close> = curio.TaskGroup({ wait = "any" })
        g:spawn(function() record("first") end)
        g:spawn(function()
          local _, err = pcall(curio.sleep, 5)
          record("second", tostring(err))
        end)
      end
      record("after the block")
    end)
    assert.are.same({ "first", "second TaskCancelled: task cancelled", "after the block" }, trace)
  end)

  it("cancels its tasks and waits for their cleanup when an error leaves the block, then the error goes on", function()
    local trace = util.traced(function(record)
      local ok, err = pcall(function()
        local g <close> = curio.TaskGroup()
        g:spawn(function()
          local _, e = pcall(curio.sleep, 5)
          curio.sleep(0.001) -- a cleanup that blocks
          record("member cleaned up after", tostring(e))
        end)
        curio.sleep(0)
        error("body failed", 0)
      end)
      record("caught", tostring(ok), tostring(err))
    end)
    assert.are.same({ "member cleaned up after TaskCancelled: task cancelled", "caught false body failed" }, trace)
  end)

  it("cancels its tasks, waiting for them, when a cancellation caught outside the block leaves it", function()
    local trace = util.traced(function(record)
      local holder = curio.spawn(function()
        local _, err = pcall(function()
          local g <close> = curio.TaskGroup()
          g:spawn(function()
            local _, e = pcall(curio.sleep, 5)
            curio.sleep(0.001)
            record("member cleaned up after", tostring(e))
          end)
          curio.sleep(5)
        end)
        record("holder caught", tostring(err))
        error(err, 0)
      end)
      curio.sleep(0.001)
      holder:cancel()
      record("holder cancelled", tostring(holder.cancelled))
    end)
    assert.are.same({ "member cleaned up after TaskCancelled: task cancelled",
                      "holder caught TaskCancelled: task cancelled", "holder cancelled true" }, trace)
  end)

  it("cancels the tasks left, without waiting, when the error ends the task holding it", function()
    local trace = util.traced(function(record)
      local member_done = curio.Event()
      local function holding(fail)
        local g <close> = curio.TaskGroup()
        g:spawn(function()
          local _, e = pcall(curio.sleep, 5)
          curio.sleep(0.001) -- a cleanup that blocks: it ends after its holder
          record("member cleaned up after", tostring(e))
          member_done:set()
        end)
        if fail then curio.sleep(0); error("holder failed", 0) end
        curio.sleep(5)
      end
      local failing = curio.spawn(holding, true)
      record(tostring(util.catch(failing.join, failing)))
      member_done:wait()
      member_done:clear()
      local cancelled = curio.spawn(holding, false)
      curio.sleep(0.001)
      cancelled:cancel()
      record("holder cancelled", tostring(cancelled.cancelled))
      member_done:wait()
    end)
    assert.are.same({ "TaskError: task 2 failed: holder failed",
                      "member cleaned up after TaskCancelled: task cancelled",
                      "holder cancelled true",
                      "member cleaned up after TaskCancelled: task cancelled" }, trace)
  end)

  it("does nothing more when it was joined inside the block", function()
    local trace = util.traced(function(record)
      do
        local g <close> = curio.TaskGroup()
        g:spawn(function() return 42 end)
        g:join()
        record("joined", g:result())
      end
      record("after the block")
    end)
    assert.are.same({ "joined 42", "after the block" }, trace)
  end)
end)
