local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Shutdown (curio.run returning, k:close(), <close> on a Kernel, SIGINT):
-- every task left is cancelled once and its cleanup may block in any way a
-- task may; the loop runs until the cleanups end, or the grace period
-- (Kernel{shutdown_timeout=}) ends and the stuck tasks are reported.
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
        -- (spawning is refused during shutdown: the item and the event
        -- come from a task spawned before it)
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

  -- Main task body: starts one task per kind whose cleanup blocks that way.
  local function start_all(trace)
    local calls = cleanups(trace)
    calls.prepare()
    for _, kind in ipairs(kinds) do
      curio.spawn_daemon(function()
        local ok = pcall(curio.sleep, 10)
        assert(not ok)
        calls[kind]()
        trace[#trace + 1] = kind
      end)
    end
    curio.sleep(0.001)
  end

  local function sorted(list)
    table.sort(list)
    return list
  end

  it("lets every kind of blocking call finish in cleanups when curio.run returns", function()
    local trace = {}
    local t0 = curio.clock()
    curio.run(start_all, trace)
    assert.are.same(sorted({ table.unpack(kinds) }), sorted(trace))
    assert.is_true(curio.clock() - t0 < 2)
  end)

  it("lets them finish at k:close() after k:run", function()
    local trace = {}
    local k = curio.Kernel()
    k:run(start_all, trace)
    assert.are.same({}, trace)
    k:close()
    assert.are.same(sorted({ table.unpack(kinds) }), sorted(trace))
  end)

  it("lets them finish when a Kernel in a <close> variable goes out of scope", function()
    local trace = {}
    do
      local k <close> = curio.Kernel()
      k:run(start_all, trace)
    end
    assert.are.same(sorted({ table.unpack(kinds) }), sorted(trace))
  end)

  it("does not spin after the main task returns while a cleanup sleeps", function()
    local status, stdout = util.lua_code([[
      local curio = require "curio"
      local c0 = os.clock()
      curio.run(function()
        curio.spawn_daemon(function()
          pcall(curio.sleep, 10)
          curio.sleep(0.3)
          print("cleanup done")
        end)
        curio.sleep(0.01)
      end)
      print(("cpu=%.3f"):format(os.clock() - c0))
    ]], 10)
    assert.are.equal(0, status)
    assert.is_truthy(stdout:find("cleanup done", 1, true))
    local cpu = tonumber(stdout:match("cpu=([%d.]+)"))
    assert.is_true(cpu < 0.2, "CPU time while a cleanup slept: " .. tostring(cpu))
  end)

  it("reports and abandons cleanups that never finish after shutdown_timeout", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      local k = curio.Kernel({ shutdown_timeout = 0.2 })
      k:run(function()
        local t = curio.spawn(function()
          pcall(curio.sleep, 10)
          curio.Event():wait() -- nothing will ever set it
        end)
        t.name = "waits-forever"
        local u = curio.spawn(function()
          while true do pcall(curio.sleep, 0.01) end -- swallows cancellation
        end)
        u.name = "loops-forever"
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

  it("refuses new tasks during shutdown", function()
    local result
    curio.run(function()
      curio.spawn_daemon(function()
        pcall(curio.sleep, 10)
        local ok, err = pcall(curio.spawn, function() while true do curio.sleep(0) end end)
        result = { ok, curio.CurioError:matches(err), tostring(err):match("shutting down") }
      end)
      curio.sleep(0.001)
    end)
    assert.are.same({ false, true, "shutting down" }, result)
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
