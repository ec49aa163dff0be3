local curio = require "curio"
local core = require "curio.core"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

describe("curio.run", function()

  it("passes arguments and returns every result of the main task", function()
    assert.are.same({ n = 4, 3, nil, "b", false },
      table.pack(curio.run(function(a, b) return a + b, nil, "b", false end, 1, 2)))
  end)

  it("raises the main task's own error", function()
    local exc = curio.CurioError("main failed")
    assert.are.equal(exc, catch(curio.run, function() curio.sleep(0) error(exc) end))
    assert.are.equal("plain", catch(curio.run, function() error("plain", 0) end))
  end)

  it("runs the cleanup of every task left when the main task ends", function()
    local trace = {}
    curio.run(function()
      for i = 1, 3 do
        local spawn = i == 2 and curio.spawn_daemon or curio.spawn
        spawn(function()
          local ok = pcall(curio.sleep, 10)
          curio.sleep(0) -- cleanup may still block
          trace[#trace + 1] = "cleanup " .. i .. " " .. tostring(ok)
        end)
      end
      curio.sleep(0)
    end)
    -- newest first, each once the one before has ended (shutdown_spec.lua)
    assert.are.same({ "cleanup 3 false", "cleanup 2 false", "cleanup 1 false" }, trace)
  end)

  it("detects a main task that waits for something that can never happen", function()
    local err = catch(curio.run, function() core.waitq():wait() end)
    assert.is_true(curio.CurioError:matches(err))
    assert.truthy(err.message:find("deadlock", 1, true))
  end)

  it("runs kernels one after another", function()
    for i = 1, 3 do
      assert.are.equal(i, curio.run(function() curio.sleep(0) return i end))
    end
  end)
end)

describe("Kernel", function()

  -- On main before this, the kernel polled libev only every 4096 task
  -- steps: with steps that each compute for a while, a 1 ms timeout waited
  -- for thousands of them (27 s in a fuzz program). Counted in steps, not
  -- timed: the work per step is a fixed loop.
  it("looks at its timers between slow steps, not only every 4096 steps", function()
    local steps = curio.run(function()
      local count, ev = 0, curio.Event()
      for _ = 1, 3 do
        curio.spawn_daemon(function()
          while true do
            local x = 0
            for i = 1, 100000 do x = x + i end -- some work between blocking calls
            count = count + 1
            curio.sleep(0)
          end
        end)
      end
      curio.ignore_after(0.001, ev.wait, ev)
      return count
    end)
    assert.is_true(steps < 300, "steps run before a 1 ms timeout fired: " .. steps)
  end)

  it("is reusable: tasks left by one run go on at the next", function()
    local trace = {}
    local k = curio.Kernel()
    local bg = k:run(function()
      return curio.spawn(function()
        for i = 1, 4 do trace[#trace + 1] = "bg" .. i; curio.sleep(0.005) end
        return "bg done"
      end)
    end)
    trace[#trace + 1] = "between runs"
    assert.are.equal("bg done", k:run(function() return bg:join() end))
    k:close()
    assert.are.same({ "bg1", "between runs", "bg2", "bg3", "bg4" }, trace)
  end)

  it("cancels the tasks left at close, running their cleanup", function()
    local trace = {}
    local k = curio.Kernel()
    k:run(function()
      curio.spawn(function()
        local ok, err = pcall(curio.sleep, 10)
        trace[#trace + 1] = curio.TaskCancelled:matches(err) and "cancelled" or tostring(ok)
      end)
    end)
    assert.are.same({}, trace)
    k:close()
    k:close() -- closing twice is harmless
    assert.are.same({ "cancelled" }, trace)
  end)

  it("refuses to run after close", function()
    local k = curio.Kernel()
    k:close()
    local err = catch(k.run, k, function() end)
    assert.is_true(curio.CurioError:matches(err))
    assert.truthy(err.message:find("closed", 1, true))
  end)

  it("refuses to run inside a task of another kernel", function()
    local err = curio.run(function()
      local k = curio.Kernel()
      local e = catch(k.run, k, function() end)
      k:close()
      return e
    end)
    assert.is_true(curio.CurioError:matches(err))
    assert.truthy(err.message:find("inside a curio task", 1, true))
  end)

  it("checks its options and arguments", function()
    assert.truthy(catch(curio.Kernel, 5):find("bad argument #1 to 'Kernel' (table expected, got number)", 1, true))
    assert.truthy(catch(curio.Kernel, { threads = 0 }):find("threads", 1, true))
    local k = curio.Kernel({ threads = 4, processes = 2, debug = false })
    assert.truthy(catch(k.run, k, 5):find("bad argument #1 to 'run' (function expected, got number)", 1, true))
    k:close()
  end)

  it("reports every crash at once with debug = true, joined or not", function()
    local status, _, stderr = util.lua_code([[
      local curio = require "curio"
      local k = curio.Kernel({ debug = true })
      k:run(function()
        local t = curio.spawn(function() error("seen anyway") end)
        pcall(t.join, t)
      end)
      k:close()
    ]])
    assert.are.equal(0, status)
    assert.truthy(stderr:find("Task crash", 1, true))
    assert.truthy(stderr:find("seen anyway", 1, true))
  end)

  it("reports unjoined crashes when it shuts down", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      local keep
      curio.run(function()
        keep = curio.spawn(function() error("kept but never joined") end)
        curio.sleep(0)
      end)
      io.stdout:write("after run\n")
      io.stdout:flush()
    ]])
    assert.are.equal(0, status)
    assert.are.equal("after run\n", stdout)
    assert.truthy(stderr:find("kept but never joined", 1, true))
  end)
end)

describe("kernels in OS threads", function()
  it("run two kernels in two threads at once, each in its own Lua state", function()
    local program = util.bin:gsub("curio$", "two_kernels")
    local status, stdout, stderr = util.sh(util.env .. " " .. program)
    assert.are.equal(0, status, stderr)
    assert.are.same({ "thread 1: 20100 timeout", "thread 2: 20100 timeout" }, util.lines(stdout))
  end)
end)

describe("embedding (curio.h)", function()
  it("runs tasks on a loop a C program owns, beside the program's own watcher", function()
    local program = util.bin:gsub("curio$", "host_loop")
    local status, stdout, stderr = util.sh(util.env .. " " .. program)
    assert.are.equal(0, status, stderr)
    assert.are.same({
      "attach: ok",
      "tasks before the loop: 1",
      "task slept 3 times, joined child (host ticks so far: some)",
      "host ticks: 10",
      "tasks after the loop: 0",
      "task result: 6 (1 value)",
      "sleeper cleanup, sleep ok: false",
      "detach: ok",
      "ev_userdata kept: yes",
    }, util.lines(stdout))
  end)
end)

describe("SIGINT", function()
  it("cancels the main task and makes curio.run raise KeyboardInterrupt after cleanup", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
      local curio = require "curio"
      local ok, err = pcall(curio.run, function()
        io.stdout:write("ready\n"); io.stdout:flush()
        ]] .. util.ready_code .. [[

        local _, e = pcall(curio.sleep, 10)
        io.stdout:write("main cleanup ", tostring(curio.TaskCancelled:matches(e)), "\n")
      end)
      io.stdout:write(tostring(curio.KeyboardInterrupt:matches(err)), "\n")
    ]])
    f:close()
    local status, stdout = util.interrupt(util.env .. " " .. util.lua .. " " .. script)
    os.remove(script)
    assert.are.equal(0, status)
    assert.are.same({ "ready", "main cleanup true", "true" }, util.lines(stdout))
  end)
end)
