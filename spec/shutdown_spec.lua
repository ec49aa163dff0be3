local curio = require "curio"
local core = require "curio.core"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Shutdown (curio.run returning, k:close(), <close> on a Kernel, SIGINT):
-- the tasks left are cancelled one at a time, newest first, each once the
-- one before has ended (curio's order); a cleanup may block in any way a
-- task may, spawn tasks included; the loop runs until the cleanups end, or
-- the grace period (Kernel{shutdown_timeout=}) ends and the stuck tasks
-- are reported.
describe("shutdown", function()

  -- Each kind of blocking call a cleanup may make, as a function of the
  -- shared objects; each appends its name to trace when it completes.
  local function cleanups(trace)
    local ev, lock, q = curio.Event(), curio.Lock(), curio.Queue()
    local uq, uev = curio.UniversalQueue(), curio.UniversalEvent()
    local helper
    return {
      sleep = function() curio.sleep(0.01) end,
      timeout_after = function() curio.timeout_after(1, curio.sleep, 0.01) end,
      ignore_after = function()
        local _, why = curio.ignore_after(0.01, curio.sleep, 1)
        assert(why == curio.TIMEOUT)
      end,
      event = function() ev:wait() end,
      lock = function() lock:with(curio.sleep, 0.005) end,
      queue = function()
        -- (the item and the event come from the helper: the newest task,
        -- cancelled first, whose cleanup provides them)
        assert(q:get() == "item")
      end,
      join = function() helper:join() end,
      thread = function() assert(curio.run_in_thread(function(a) return a * 2 end, 21) == 42) end,
      universal_queue = function() assert(uq:get() == "from a thread") end,
      universal_event = function() uev:wait() end,
      file = function()
        local f = curio.aopen("spec/shutdown_spec.lua")
        assert(f:readline():find("curio", 1, true))
        f:close()
      end,
      prepare = function()
        helper = curio.spawn_daemon(function()
          pcall(curio.sleep, 10) -- cancelled at shutdown too
          curio.sleep(0.005)
          ev:set()
          q:put("item")
          curio.run_in_thread(function(uqueue, uevent) uqueue:put("from a thread") uevent:set() end, uq, uev)
          return "helped"
        end)
      end,
    }, trace
  end

  local kinds = { "sleep", "timeout_after", "ignore_after", "event", "lock", "queue", "join",
                  "thread", "universal_queue", "universal_event", "file" }

  -- Main task body: starts one task per kind whose cleanup blocks that way,
  -- then the helper, which is cancelled first.
  local function start_all(trace)
    local calls = cleanups(trace)
    for _, kind in ipairs(kinds) do
      curio.spawn_daemon(function()
        local ok = pcall(curio.sleep, 10)
        assert(not ok)
        calls[kind]()
        trace[#trace + 1] = kind
      end)
    end
    calls.prepare()
    curio.sleep(0.001)
  end

  -- The kinds newest first: the order their cleanups run and end in.
  local function newest_first(list)
    local reversed = {}
    for i = #list, 1, -1 do reversed[#reversed + 1] = list[i] end
    return reversed
  end

  it("lets every kind of blocking call finish in cleanups when curio.run returns", function()
    local trace = {}
    local t0 = curio.clock()
    curio.run(start_all, trace)
    assert.are.same(newest_first(kinds), trace)
    assert.is_true(curio.clock() - t0 < 2)
  end)

  it("lets them finish at k:close() after k:run", function()
    local trace = {}
    local k = curio.Kernel()
    k:run(start_all, trace)
    assert.are.same({}, trace)
    k:close()
    assert.are.same(newest_first(kinds), trace)
  end)

  it("lets them finish when a Kernel in a <close> variable goes out of scope", function()
    local trace = {}
    do
      local k <close> = curio.Kernel()
      k:run(start_all, trace)
    end
    assert.are.same(newest_first(kinds), trace)
  end)

  it("does not spin after the main task returns while a cleanup sleeps", function()
    -- counted in polls of the loop, not in CPU time: a sleeping cleanup
    -- costs a handful of polls, a spinning loop thousands
    local polls
    curio.run(function()
      curio.spawn_daemon(function()
        pcall(curio.sleep, 10)
        local before = core.loop_iterations()
        curio.sleep(0.3)
        polls = core.loop_iterations() - before
      end)
      curio.sleep(0.01)
    end)
    assert.is_true(polls >= 1 and polls < 20, "polls while a cleanup slept: " .. tostring(polls))
  end)

  it("reports and abandons cleanups that never finish after shutdown_timeout", function()
    -- waits-forever, the newest, is cancelled first and never ends: the
    -- grace period ends with loops-forever never cancelled; both reported
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      local k = curio.Kernel({ shutdown_timeout = 0.2 })
      k:run(function()
        local u = curio.spawn(function()
          while true do pcall(curio.sleep, 0.01) end -- would swallow cancellation
        end)
        u.name = "loops-forever"
        local t = curio.spawn(function()
          pcall(curio.sleep, 10)
          curio.Event():wait() -- nothing will ever set it
        end)
        t.name = "waits-forever"
        curio.sleep(0.01)
      end)
      local t0 = curio.clock()
      k:close()
      print(("closed after %.2f"):format(curio.clock() - t0))
    ]], 10)
    assert.are.equal(0, status)
    local seconds = tonumber(stdout:match("closed after ([%d.]+)"))
    assert.is_true(seconds >= 0.15 and seconds < 2, "closed after " .. tostring(seconds))
    assert.is_truthy(stderr:find("waits-forever", 1, true))
    assert.is_truthy(stderr:find("loops-forever", 1, true))
    assert.is_truthy(stderr:find("did not finish its cleanup", 1, true))
    assert.is_truthy(stderr:find("in method 'wait'", 1, true))
  end)

  it("closes at once when every task left waits for something that cannot come", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      local t0 = curio.clock()
      curio.run(function()
        curio.spawn(function() pcall(curio.sleep, 10); curio.Event():wait() end)
        curio.sleep(0.01)
      end)
      print(("done after %.2f"):format(curio.clock() - t0))
    ]], 10)
    assert.are.equal(0, status)
    assert.is_true(tonumber(stdout:match("done after ([%d.]+)")) < 1)
    assert.is_truthy(stderr:find("did not finish its cleanup", 1, true))
  end)

  -- On main before this: spawn raised "the kernel is shutting down", and the
  -- cleanup ended there.
  it("lets a cleanup spawn a helper task and wait for it", function()
    local trace = {}
    curio.run(function()
      curio.spawn_daemon(function()
        local ev, q = curio.Event(), curio.Queue()
        pcall(curio.sleep, 10)
        trace[#trace + 1] = "cancelled"
        local helper = curio.spawn(function()
          q:put("item")
          ev:set()
          return "helped"
        end)
        ev:wait()
        trace[#trace + 1] = q:get()
        trace[#trace + 1] = helper:join()
      end)
      curio.sleep(0.001)
    end)
    assert.are.same({ "cancelled", "item", "helped" }, trace)
  end)

  -- On main before this, every task was cancelled at once and the cleanups
  -- interleaved: a, b, c start, then a, b, c end.
  it("cancels the tasks left one at a time, newest first, each once the previous ended", function()
    local trace = {}
    curio.run(function()
      for _, name in ipairs({ "a", "b", "c" }) do
        curio.spawn_daemon(function()
          pcall(curio.sleep, 10)
          trace[#trace + 1] = name .. " starts its cleanup"
          curio.sleep(0.001)
          trace[#trace + 1] = name .. " ends"
        end)
      end
      curio.sleep(0.001)
    end)
    assert.are.same({ "c starts its cleanup", "c ends", "b starts its cleanup", "b ends",
                      "a starts its cleanup", "a ends" }, trace)
  end)

  -- On main before this, the parent's join was interrupted by its own
  -- cancellation (TaskCancelled, not the child's TaskError).
  it("lets an older task run on while a newer one is cancelled: a parent sees its child end", function()
    local trace = {}
    curio.run(function()
      curio.spawn_daemon(function()
        local child = curio.spawn(function()
          local ok, err = pcall(curio.sleep, 10)
          trace[#trace + 1] = not ok and curio.TaskCancelled:matches(err) and "child cancelled"
          error(err, 0)
        end)
        local ok, err = pcall(child.join, child)
        trace[#trace + 1] = not ok and curio.TaskError:matches(err) and "parent: TaskError"
        trace[#trace + 1] = curio.TaskCancelled:matches(err.cause) and "cause: TaskCancelled"
        ok, err = pcall(curio.sleep, 10) -- goes on until its own turn
        trace[#trace + 1] = not ok and curio.TaskCancelled:matches(err) and "parent cancelled"
      end)
      curio.sleep(0.001)
    end)
    assert.are.same({ "child cancelled", "parent: TaskError", "cause: TaskCancelled",
                      "parent cancelled" }, trace)
  end)

  -- On main before this, spawn raised during shutdown.
  it("cancels in turn the tasks spawned during shutdown that outlive the cleanups", function()
    local trace = {}
    curio.run(function()
      curio.spawn_daemon(function()
        pcall(curio.sleep, 10)
        trace[#trace + 1] = "a: cleanup"
      end)
      curio.spawn_daemon(function()
        pcall(curio.sleep, 10)
        curio.spawn(function()
          trace[#trace + 1] = "w: runs"
          local ok, err = pcall(curio.sleep, 10)
          trace[#trace + 1] = not ok and curio.TaskCancelled:matches(err) and "w: cancelled"
        end)
        curio.sleep(0) -- w runs now
        trace[#trace + 1] = "b: cleanup ends"
      end)
      curio.sleep(0.001)
    end)
    assert.are.same({ "w: runs", "b: cleanup ends", "a: cleanup", "w: cancelled" }, trace)
  end)

  -- The stuck cleanup sleeps (a timer that could still wake it), so the
  -- shutdown waits for its grace: SIGINT is what ends it. (With a wait
  -- nothing could end, the shutdown gave up at once and stopped watching
  -- SIGINT, and a SIGINT that came after that killed the child: status 130
  -- in 1 of 6 runs under load.)
  it("ends the grace period at once on SIGINT during a shutdown", function()
    local status, stdout, stderr = util.interrupt(util.env .. " " .. util.lua ..
      " -e 'local curio = require \"curio\"; io.stdout:setvbuf(\"no\");" ..
      " local k = curio.Kernel({ shutdown_timeout = 60 });" ..
      " k:run(function() local t = curio.spawn(function() pcall(curio.sleep, 10); " ..
      util.ready_code:gsub("'", "\"") .. "; while true do pcall(curio.sleep, 10) end end); t.name = \"stuck\";" ..
      " curio.sleep(0.001) end);" ..
      " local t0 = curio.clock(); k:close(); print((\"closed after %.1f\"):format(curio.clock() - t0))'")
    assert.are.equal(0, status)
    -- (a loose bound: without SIGINT the grace would have lasted 60 s)
    local seconds = tonumber(stdout:match("closed after ([%d.]+)"))
    assert.is_true(seconds ~= nil and seconds < 30, stdout)
    assert.is_truthy(stderr:find("task 2 (stuck) did not finish its cleanup", 1, true))
  end)

  it("waits for disable_cancellation to return before cancelling", function()
    local trace = {}
    curio.run(function()
      curio.spawn_daemon(function()
        curio.disable_cancellation(function()
          curio.sleep(0.02)
          trace[#trace + 1] = "shielded part done"
        end)
        local ok, err = pcall(curio.sleep, 1)
        trace[#trace + 1] = ok and "not cancelled" or (curio.TaskCancelled:matches(err) and "cancelled")
      end)
      curio.sleep(0.001)
    end)
    assert.are.same({ "shielded part done", "cancelled" }, trace)
  end)

  it("refuses to close a kernel from inside its own task, by close or <close>", function()
    local k = curio.Kernel()
    local errs = k:run(function()
      local ok1, e1 = pcall(k.close, k)
      local ok2, e2 = pcall(function() local _ <close> = k end)
      return { ok1, curio.CurioError:matches(e1), ok2, curio.CurioError:matches(e2) }
    end)
    assert.are.same({ false, true, false, true }, errs)
    assert.are.equal(3, k:run(function() return 3 end)) -- still usable
    k:close()
  end)

  it("runs a cleanup that sleeps after Ctrl-C in the curio program", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
      local curio = require "curio"
      io.stdout:setvbuf("no")
      ]] .. util.ready_code .. [[

      local ok = pcall(curio.sleep, 10)
      curio.sleep(0.1)
      print("cleanup done", ok)
    ]])
    f:close()
    local status, stdout = util.interrupt(util.env .. " " .. util.bin .. " " .. path)
    os.remove(path)
    assert.are.equal(130, status)
    assert.is_truthy(stdout:find("cleanup done\tfalse", 1, true))
  end)

  it("gives a main task stuck after SIGINT its grace period, then reports it", function()
    local status, stdout, stderr = util.interrupt(util.env .. " " .. util.lua ..
      " -e 'local curio = require \"curio\"; io.stdout:setvbuf(\"no\");" ..
      " local k = curio.Kernel({ shutdown_timeout = 0.2 });" ..
      " print(pcall(k.run, k, function() " .. util.ready_code:gsub("'", "\"") ..
      " pcall(curio.sleep, 10); curio.Event():wait() end));" ..
      " k:close(); print(\"closed\")'")
    assert.are.equal(0, status)
    assert.is_truthy(stdout:find("KeyboardInterrupt", 1, true))
    assert.is_truthy(stdout:find("closed", 1, true))
    assert.is_truthy(stderr:find("did not finish its cleanup", 1, true))
  end)

  it("checks the shutdown_timeout option", function()
    for _, bad in ipairs({ -1, "x", 0 / 0, true }) do
      local err = util.catch(curio.Kernel, { shutdown_timeout = bad })
      assert.is_truthy(tostring(err):find("shutdown_timeout", 1, true))
    end
    curio.Kernel({ shutdown_timeout = 0 }):close()
  end)
end)
