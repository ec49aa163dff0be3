local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

-- This process's pid (the first field of /proc/self/stat).
local function pid()
  local f = assert(io.open("/proc/self/stat"))
  local line = f:read("l")
  f:close()
  return line:match("^(%d+)")
end

-- (the shell's kill: a minimal Debian has no /bin/kill, procps)
local function kill(sig)
  assert.are.equal(0, curio.subprocess.run({ "sh", "-c", "kill -" .. sig .. " " .. pid() }).returncode)
end

describe("SignalQueue", function()
  it("gives the signals sent to the process by name, in order, kept until taken", function()
    curio.run(function()
      local q <close> = curio.SignalQueue("SIGUSR1", "SIGTERM")
      kill("USR1") -- before anyone waits: kept
      kill("TERM")
      assert.are.equal("SIGUSR1", q:get())
      assert.are.equal("SIGTERM", q:get())
    end)
  end)

  it("wakes a task waiting in get, and accepts numbers", function()
    curio.run(function()
      local q <close> = curio.SignalQueue(10, 12)
      local t = curio.spawn(function() return q:get() end)
      curio.sleep(0) -- (t waits in get)
      kill("USR2")
      assert.are.equal("SIGUSR2", t:join())
    end)
  end)

  it("cancels a task waiting in get at the kernel's close", function()
    local k = curio.Kernel()
    local ended
    k:run(function()
      local q = curio.SignalQueue("SIGUSR1")
      curio.spawn(function()
        ended = catch(function() q:get() end)
      end)
      curio.sleep(0)
    end)
    k:close()
    assert.is_truthy(curio.TaskCancelled:matches(ended) or curio.CancelledError:matches(ended))
  end)

  it("wakes a task waiting in get with a CurioError when the queue is closed", function()
    curio.run(function()
      local q = curio.SignalQueue("SIGUSR2")
      local t = curio.spawn(function() return catch(function() q:get() end) end)
      curio.sleep(0) -- (t waits in get)
      q:close()
      local err = t:join()
      assert.is_truthy(curio.CurioError:matches(err))
      assert.is_truthy(tostring(err):find("SignalQueue.get: closed while waiting", 1, true))
      assert.is_truthy(curio.CurioError:matches(catch(q.get, q)))
    end)
  end)

  it("refuses bad signals with bad-argument errors", function()
    curio.run(function()
      for _, case in ipairs({
        { { "SIGKILL" }, "bad argument #1 to 'SignalQueue' (SIGKILL cannot be caught)" },
        { { "SIGUSR1", 19 }, "bad argument #2 to 'SignalQueue' (SIGSTOP cannot be caught)" },
        { { "SIGNOPE" }, "bad argument #1 to 'SignalQueue' (unknown signal 'SIGNOPE')" },
        { { 99 }, "bad argument #1 to 'SignalQueue' (unknown signal 99)" },
        { { {} }, "bad argument #1 to 'SignalQueue' (signal name or number expected, got table)" },
        { {}, "bad argument #1 to 'SignalQueue' (signal expected, got no value)" },
      }) do
        local ok, err = pcall(curio.SignalQueue, table.unpack(case[1]))
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find(case[2], 1, true), tostring(err))
      end
      assert.is_false(pcall(curio.SignalEvent, "SIGSTOP"))
    end)
  end)

  it("restores the previous handling at close (SIGUSR1 kills again)", function()
    local status, stdout = util.lua_code([[
      local curio = require "curio"
      io.stdout:setvbuf("no")
      local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
      curio.run(function()
        local q <close> = curio.SignalQueue("SIGUSR1")
        curio.subprocess.run({ "sh", "-c", "kill -USR1 " .. pid })
        print(q:get())
      end)
      curio.run(function() curio.subprocess.run({ "sh", "-c", "kill -USR1 " .. pid }) end)
      print("survived")
    ]], 20)
    assert.are.equal(128 + 10, status)
    assert.are.equal("SIGUSR1\n", stdout)
  end)

  it("takes SIGINT from k:run while open, and gives it back at close", function()
    local status, stdout = util.lua_code([[
      local curio = require "curio"
      io.stdout:setvbuf("no")
      local pid = io.open("/proc/self/stat"):read("l"):match("^(%d+)")
      local k = curio.Kernel()
      local ok, err = pcall(k.run, k, function()
        do
          local q <close> = curio.SignalQueue("SIGINT")
          curio.subprocess.run({ "sh", "-c", "kill -INT " .. pid })
          print(q:get())
        end
        local p = curio.subprocess.Popen({ "sh", "-c", "kill -INT " .. pid })
        print((pcall(curio.sleep, 30))) -- (a ceiling: cancelled by that SIGINT)
        p:wait()
      end)
      k:close()
      print(ok, curio.KeyboardInterrupt:matches(err))
    ]], 20)
    assert.are.equal(0, status)
    assert.are.equal("SIGINT\nfalse\nfalse\ttrue\n", stdout)
  end)

  it("refuses a signal another kernel watches", function()
    local k1, k2 = curio.Kernel(), curio.Kernel()
    local q = k1:run(function() return curio.SignalQueue("SIGUSR2") end)
    local err = k2:run(function() return catch(curio.SignalQueue, "SIGUSR2") end)
    assert.is_truthy(curio.CurioError:matches(err))
    assert.is_truthy(tostring(err):find("watched by another kernel", 1, true))
    q:close()
    k2:run(function() curio.SignalQueue("SIGUSR2"):close() end) -- free again
    k1:close()
    k2:close()
  end)
end)

describe("SignalEvent", function()
  it("is set when a signal arrives", function()
    curio.run(function()
      local e <close> = curio.SignalEvent("SIGHUP")
      assert.is_false(e:is_set())
      local t = curio.spawn(function() e:wait() return e:is_set() end)
      curio.sleep(0)
      kill("HUP")
      assert.is_true(t:join())
      e:clear()
      assert.is_false(e:is_set())
    end)
  end)
end)

describe("the curio program", function()
  local function script(body)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("local curio = require 'curio'\nio.stdout:setvbuf('no')\n" .. util.ready_code .. "\n" .. body)
    f:close()
    return path
  end

  it("exits 143 after the main task's cleanup on SIGTERM", function()
    local path = script([[
      local ok = pcall(curio.sleep, 60)
      print("cleanup done", ok)
    ]])
    local status, stdout = util.interrupt(util.env .. " " .. util.bin .. " " .. path, "TERM")
    os.remove(path)
    assert.are.equal(143, status)
    assert.is_truthy(stdout:find("cleanup done\tfalse", 1, true))
  end)

  it("leaves SIGTERM to a script that watches it", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("local curio = require 'curio'\nio.stdout:setvbuf('no')\nlocal q <close> = curio.SignalQueue('SIGTERM')\n" ..
      util.ready_code .. "\nprint(q:get())\n")
    f:close()
    local status, stdout = util.interrupt(util.env .. " " .. util.bin .. " " .. path, "TERM")
    os.remove(path)
    assert.are.equal(0, status)
    assert.are.equal("SIGTERM\n", stdout)
  end)
end)
