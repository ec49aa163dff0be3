local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Adversarial scripts, each run in a child interpreter (a crash there must
-- not take the suite down): none may crash or wedge the kernel. Each ends
-- by printing "OK" and the values it checked.
describe("the kernel at its edges", function()

  local function run(code)
    local status, stdout, stderr = util.lua_code("local curio = require 'curio'\n" .. code, 20)
    assert.are.equal(0, status, "exit status " .. status .. "\n" .. stderr)
    assert.is_truthy(stdout:find("OK", 1, true), stdout .. stderr)
    return stdout, stderr
  end

  local cannot_block = "cannot block here"

  describe("a blocking call where Lua cannot yield", function()
    it("raises in a table.sort comparator and leaves the task intact", function()
      local out = run([[
        curio.run(function()
          local ok, err = pcall(table.sort, { 3, 2, 1 }, function(a, b) curio.sleep(0) return a < b end)
          print(ok, curio.CurioError:matches(err), tostring(err):match("cannot block here"))
          local t0 = curio.clock()
          curio.sleep(0.2) -- must really sleep (it returned at once before)
          print("slept", curio.clock() - t0 >= 0.19)
        end)
        print("OK")
      ]])
      assert.is_truthy(out:find("false\ttrue\t" .. cannot_block, 1, true))
      assert.is_truthy(out:find("slept\ttrue", 1, true))
    end)

    it("raises in a string.gsub callback, a __gc finalizer and an xpcall handler", function()
      local out = run([[
        curio.run(function()
          local ok, err = pcall(string.gsub, "ab", "%w", function() curio.sleep(0.01) end)
          print("gsub", ok, curio.CurioError:matches(err))
          local seen
          setmetatable({}, { __gc = function() seen = select(2, pcall(curio.sleep, 0)) end })
          collectgarbage(); collectgarbage()
          print("gc", curio.CurioError:matches(seen))
          local handled
          curio.xpcall(error, function(e) handled = select(2, pcall(curio.sleep, 0)) return e end, "x")
          print("handler", curio.CurioError:matches(handled))
          curio.sleep(0.01)
        end)
        print("OK")
      ]])
      assert.is_truthy(out:find("gsub\tfalse\ttrue", 1, true))
      assert.is_truthy(out:find("gc\ttrue", 1, true))
      assert.is_truthy(out:find("handler\ttrue", 1, true))
    end)

    it("raises in a <close> handler of a task that is cancelled or fails", function()
      local out = run([[
        local results = {}
        curio.run(function()
          for _, how in ipairs({ "cancelled", "failed" }) do
            curio.spawn(function()
              local _ <close> = setmetatable({}, { __close = function()
                local ok, err = pcall(curio.sleep, 0)
                results[#results + 1] = how .. " " .. tostring(ok) .. " " ..
                  tostring(curio.CurioError:matches(err))
              end })
              if how == "failed" then curio.sleep(0.001) error("boom") end
              curio.sleep(10)
            end)
          end
          curio.sleep(0.01)
        end)
        table.sort(results)
        print(table.concat(results, ","))
        print("OK")
      ]])
      assert.is_truthy(out:find("cancelled false true,failed false true", 1, true))
    end)

    it("lets a <close> handler block when its block ends normally", function()
      local out = run([[
        curio.run(function()
          do
            local _ <close> = setmetatable({}, { __close = function() curio.sleep(0.01) print("closed") end })
          end
        end)
        print("OK")
      ]])
      assert.is_truthy(out:find("closed", 1, true))
    end)

    it("raises in a module that blocks while it is required, also with curio -l", function()
      local dir = os.tmpname()
      os.remove(dir)
      os.execute("mkdir " .. dir)
      local f = assert(io.open(dir .. "/blocking_mod.lua", "w"))
      f:write("local curio = require 'curio'\ncurio.sleep(0.01)\nreturn {}\n")
      f:close()
      local out = run(([[
        package.path = %q .. "/?.lua;" .. package.path
        curio.run(function()
          local ok, err = pcall(require, "blocking_mod")
          print("require", ok, curio.CurioError:matches(err))
        end)
        print("OK")
      ]]):format(dir))
      assert.is_truthy(out:find("require\tfalse\ttrue", 1, true))
      local status, _, stderr = util.sh(util.env .. " LUA_PATH='" .. dir .. "/?.lua;'\"$LUA_PATH\" " ..
        util.bin .. " -l blocking_mod -e 'print(1)'")
      os.remove(dir .. "/blocking_mod.lua")
      os.remove(dir)
      assert.are.equal(1, status)
      assert.is_truthy(stderr:find(cannot_block, 1, true))
    end)

    it("raises inside a curio.coroutine resumed from a sort comparator", function()
      local out = run([[
        curio.run(function()
          local gen = curio.coroutine.wrap(function() curio.sleep(0.01) curio.coroutine.yield(1) end)
          local ok, err = pcall(table.sort, { 2, 1 }, function(a, b) gen() return a < b end)
          print(ok, curio.CurioError:matches(err))
          curio.sleep(0.01)
        end)
        print("OK")
      ]])
      assert.is_truthy(out:find("false\ttrue", 1, true))
    end)
  end)

  it("spawns with hundreds of arguments, in spawn, TaskGroup:spawn and k:run", function()
    local out = run([[
      local args = {}
      for i = 1, 300 do args[i] = i end
      local function count(...) return select("#", ...), (select(300, ...)) end
      local k = curio.Kernel()
      print("run", k:run(count, table.unpack(args)))
      k:close()
      curio.run(function()
        print("spawn", curio.spawn(count, table.unpack(args)):join())
        local g = curio.TaskGroup()
        print("group", g:spawn(count, table.unpack(args)):join())
        g:join()
      end)
      print("OK")
    ]])
    assert.is_truthy(out:find("run\t300\t300", 1, true))
    assert.is_truthy(out:find("spawn\t300\t300", 1, true))
    assert.is_truthy(out:find("group\t300\t300", 1, true))
  end)

  it("hands back thousands of results, by join, result and run, more than once", function()
    local out = run([[
      local big = {}
      for i = 1, 5000 do big[i] = i end
      local function many() curio.sleep(0) return table.unpack(big) end
      print("run", select("#", curio.run(many)))
      curio.run(function()
        local t = curio.spawn(many)
        print("join", select("#", t:join()), select("#", t:join()), select(5000, t:result()))
      end)
      print("OK")
    ]])
    assert.is_truthy(out:find("run\t5000", 1, true))
    assert.is_truthy(out:find("join\t5000\t5000\t5000", 1, true))
  end)

  it("refuses to resume or close a generator while its task is blocked inside it", function()
    local out = run([[
      curio.run(function()
        local lock = curio.Lock()
        lock:acquire()
        local gen = curio.coroutine.wrap(function()
          lock:acquire()
          curio.coroutine.yield("acquired")
        end)
        local t = curio.spawn(function() local v = gen() lock:release() return v end)
        curio.sleep(0)
        local ok, err = pcall(gen) -- t is blocked in gen's lock:acquire()
        print("steal", ok, err)
        local co = curio.coroutine.create(function() lock:acquire() lock:release() end)
        local u = curio.spawn(curio.coroutine.resume, co)
        curio.sleep(0)
        print("status", curio.coroutine.status(co), coroutine.status(co))
        print("close", pcall(curio.coroutine.close, co))
        lock:release()
        print("t", t:join())
        print("u", u:join(), curio.coroutine.status(co), lock:locked())
      end)
      print("OK")
    ]])
    assert.is_truthy(out:find("steal\tfalse\tcannot resume non-suspended coroutine", 1, true))
    assert.is_truthy(out:find("status\tnormal\tsuspended", 1, true))
    assert.is_truthy(out:find("close\tfalse\tcannot close a coroutine blocked in a curio call", 1, true))
    assert.is_truthy(out:find("t\tacquired", 1, true))
    assert.is_truthy(out:find("u\ttrue\tdead\tfalse", 1, true))
  end)

  it("makes a curio.coroutine.wrap generator that raised dead", function()
    local out = run([[
      curio.run(function()
        local gen = curio.coroutine.wrap(function() curio.sleep(0) error("boom", 0) end)
        print(pcall(gen))
        print(pcall(gen))
      end)
      print("OK")
    ]])
    assert.is_truthy(out:find("false\tboom\nfalse\tcannot resume dead coroutine", 1, true))
  end)

  it("refuses coroutine.resume of a task's own coroutine, from outside and inside", function()
    local out = run([[
      local co
      local k = curio.Kernel()
      local t = k:run(function()
        return curio.spawn(function() co = coroutine.running(); curio.sleep(0.05) end)
      end)
      local ok, err = coroutine.resume(co)
      print("outside", ok, curio.CurioError:matches(err))
      local results = k:run(function()
        local t2 = curio.spawn(function()
          co = coroutine.running()
          local a = curio.sleep(0.05)
          return type(a)
        end)
        curio.sleep(0.01)
        local ok2, err2 = coroutine.resume(co)
        local ok3, err3 = pcall(t2.join, t2)
        local ok4 = pcall(t.join, t)
        return { ok2, curio.CurioError:matches(err2), ok3, curio.TaskError:matches(err3), ok4 }
      end)
      print("inside", table.unpack(results))
      k:close()
      print("OK")
    ]])
    assert.is_truthy(out:find("outside\tfalse\ttrue", 1, true))
    assert.is_truthy(out:find("inside\tfalse\ttrue\tfalse\ttrue\tfalse", 1, true))
  end)

  it("takes a task resumed from outside out of its wait, so nothing is handed to it", function()
    local out = run([[
      for _, kind in ipairs({ "lock", "queue", "universal", "thread" }) do
        local r = curio.run(function()
          local lock, q, uq = curio.Lock(), curio.Queue(), curio.UniversalQueue()
          local gate = curio.UniversalEvent()
          lock:acquire()
          local co
          local victim = curio.spawn(function()
            co = coroutine.running()
            if kind == "lock" then lock:acquire()
            elseif kind == "queue" then q:get()
            elseif kind == "universal" then uq:get()
            else curio.run_in_thread(function(g) g:wait() end, gate) end
          end)
          curio.sleep(0.01)
          local ok = coroutine.resume(co)
          gate:set()
          local next_in = curio.spawn(function() lock:acquire() return "next" end)
          lock:release()
          q:put("q") uq:put("u")
          local failed = not pcall(victim.join, victim)
          return table.concat({ kind, tostring(ok), tostring(failed), next_in:join(),
                                tostring(lock:locked()), q:qsize(), uq:qsize() }, " ")
        end)
        print(r)
      end
      print("OK")
    ]])
    for _, kind in ipairs({ "lock", "queue", "universal", "thread" }) do
      assert.is_truthy(out:find(kind .. " false true next true 1 1", 1, true), out)
    end
  end)

  it("does what k:close() does for a Kernel in a <close> variable", function()
    local trace = {}
    do
      local k <close> = curio.Kernel()
      k:run(function()
        curio.spawn(function()
          local ok = pcall(curio.sleep, 10)
          curio.sleep(0.001)
          trace[#trace + 1] = ok and "not cancelled" or "cleanup ran"
        end)
      end)
    end
    assert.are.same({ "cleanup ran" }, trace)
  end)

  it("refuses to join, or group, a live task of another kernel", function()
    local k1, k2 = curio.Kernel(), curio.Kernel()
    local other = k2:run(function() return curio.spawn(curio.sleep, 0.01) end)
    local errs = k1:run(function()
      local e1 = select(2, pcall(other.join, other))
      local e2 = select(2, pcall(other.wait, other))
      local g = curio.TaskGroup()
      local e3 = select(2, pcall(g.add_task, g, other))
      g:join()
      return { tostring(e1):match("another kernel"), tostring(e2):match("another kernel"),
               tostring(e3):match("another kernel") }
    end)
    assert.are.same({ "another kernel", "another kernel", "another kernel" }, errs)
    k2:run(function() other:join() end)
    k1:close()
    k2:close()
  end)

  describe("smaller ones", function()
    it("takes math.maxinteger as a queue size", function()
      curio.run(function()
        for _, class in ipairs({ curio.Queue, curio.LifoQueue, curio.PriorityQueue }) do
          local q = class(math.maxinteger)
          q:put(1)
          assert.are.equal(math.maxinteger, q.maxsize)
          assert.is_false(q:full())
          assert.are.equal(1, (q:get()))
        end
        assert.are.equal(0, curio.Queue(math.huge).maxsize)
      end)
    end)

    it("refuses to release a Semaphore past math.maxinteger", function()
      local s = curio.Semaphore(math.maxinteger)
      local err = util.catch(s.release, s)
      assert.is_true(curio.CurioError:matches(err))
      assert.are.equal(math.maxinteger, s:value())
    end)

    it("issues no cancellation when a blocking cancel is called outside a task", function()
      local k = curio.Kernel()
      local t = k:run(function() return curio.spawn(curio.sleep, 0.01) end)
      local err = util.catch(t.cancel, t)
      assert.is_true(curio.CurioError:matches(err))
      assert.is_truthy(tostring(err):find("cancel: not inside a curio task", 1, true))
      assert.is_false(t.cancelled)
      assert.is_true(t:cancel({ blocking = false })) -- never waits: allowed
      assert.is_true(t.cancelled)
      k:close()
    end)

    it("names ignore_after and ignore_at in their own errors", function()
      for _, name in ipairs({ "ignore_after", "ignore_at", "timeout_after", "timeout_at" }) do
        local err = util.catch(curio[name], 1, function() end)
        assert.is_truthy(tostring(err):find(name .. ": not inside a curio task", 1, true), tostring(err))
        err = util.catch(curio[name], "x", function() end)
        assert.is_truthy(tostring(err):find("to '" .. name .. "'", 1, true), tostring(err))
      end
    end)

    it("reports bad arguments from the Lua modules at the caller's line", function()
      local here = debug.getinfo(1, "S").short_src
      local function where(fn, ...)
        local args = table.pack(...)
        local err = util.catch(function()
          local result = fn(table.unpack(args, 1, args.n)) -- (a call from this file's line)
          return result
        end)
        return tostring(err):match("^([^:]+):%d+:") or tostring(err)
      end
      assert.are.equal(here, where(curio.Semaphore, "x"))
      assert.are.equal(here, where(curio.BoundedSemaphore, -1))
      assert.are.equal(here, where(curio.Queue, "x"))
      assert.are.equal(here, where(curio.PriorityQueue, 1.5))
      assert.are.equal(here, where(curio.Condition, 5))
      assert.are.equal(here, where(curio.timeout_after, -1, print))
      assert.are.equal(here, where(curio.disable_cancellation, 1))
      local cond = curio.Condition()
      assert.are.equal(here, where(cond.notify, cond, -1))
      assert.are.equal(here, where(cond.wait_for, cond, 1))
      local lock = curio.Lock()
      assert.are.equal(here, where(lock.with, lock, 1))
    end)
  end)
end)

-- Strings that C takes as C strings: a zero byte would cut them short (on
-- main "127.0.0.1\0evil" connected to 127.0.0.1 and cwd "a\0b" ran in
-- "a"), so each is refused with a bad-argument error at the caller's line.
describe("a string with a zero byte", function()
  local subprocess = curio.subprocess
  local here = debug.getinfo(1, "S").short_src

  -- fn(...) must fail with "bad argument #n to 'name'" at this file.
  local function refused(fn, ...)
    local err = tostring(util.catch(fn, ...))
    return (err:match("^" .. here:gsub("%p", "%%%0") .. ":%d+: (bad argument #%d+ to '[%w_]+')")) or err
  end

  it("is refused as a host, a unix path, a file path, a cwd, a name", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    finally(function() os.execute("rm -rf " .. dir) end)
    local got = util.traced(function(record)
      local server = curio.tcp_server_socket("127.0.0.1", 0)
      local port = server:getsockname()[2]
      record(refused(function() local _ = curio.open_connection("127.0.0.1\0evil", port) end))
      record(refused(function() local _ = curio.tcp_server_socket("127.0.0.1\0evil", 0) end))
      local s = curio.socket("inet", "stream")
      record(refused(function() local _ = s:bind({ "127.0.0.1\0evil", 0 }) end))
      record(refused(function() local _ = s:connect({ "127.0.0.1\0evil", port }) end))
      record(refused(function() local _ = s:bind({ "localhost\0evil", 0 }) end))
      record(refused(function() local _ = s:connect({ "localhost", "x" }) end))
      record(refused(function() local _ = s:setsockopt("SO_REUSEADDR\0x", true) end))
      record(refused(function() local _ = s:shutdown("rw\0x") end))
      s:close()
      record(refused(function() local _ = curio.socket("inet\0x", "stream") end))
      record(refused(function() local _ = curio.socket("inet", "stream\0x") end))
      local u = curio.socket("unix", "stream")
      record(refused(function() local _ = u:bind(dir .. "/a\0b") end))
      u:close()
      record(refused(function() local _ = curio.open_unix_connection(dir .. "/a\0b") end))
      record(refused(function() local _ = curio.unix_server(dir .. "/a\0b", print) end))
      record(refused(function() local _ = curio.aopen(dir .. "/f\0g", "w") end))
      record(refused(function() local _ = subprocess.run({ "true" }, { cwd = "/\0nowhere" }) end))
      record(refused(function() local _ = subprocess.Popen("true\0false", { shell = true }) end))
      record(refused(function() local _ = subprocess.run({ "true" }, { env = { A = "b\0c" } }) end))
      server:close()
    end)
    assert.are.same({
      "bad argument #1 to 'open_connection'", "bad argument #1 to 'tcp_server_socket'",
      "bad argument #1 to 'bind'", "bad argument #1 to 'connect'", "bad argument #1 to 'bind'",
      "bad argument #1 to 'connect'", "bad argument #1 to 'setsockopt'",
      "bad argument #1 to 'shutdown'", "bad argument #1 to 'socket'", "bad argument #2 to 'socket'",
      "bad argument #1 to 'bind'", "bad argument #1 to 'open_unix_connection'",
      "bad argument #1 to 'unix_server'", "bad argument #1 to 'aopen'", "bad argument #2 to 'run'",
      "bad argument #1 to 'Popen'", "bad argument #2 to 'run'",
    }, got)
    -- nothing was made where the string was cut
    assert.is_nil(io.open(dir .. "/f"))
    assert.is_nil(io.open(dir .. "/a"))
  end)
end)

-- Every function that takes an options table refuses a key it does not
-- know, naming it (on main Kernel{thread = 4}, TaskGroup's and cancel's
-- options were accepted silently).
describe("an options table", function()
  local subprocess = curio.subprocess

  it("with an unknown key is refused, naming the key, by every function taking options", function()
    local got = {}
    local function try(name, fn, ...)
      local err = tostring(util.catch(fn, ...))
      got[#got + 1] = name .. ": " .. (err:match("%(unknown option '(.-)'%)") or err)
    end
    try("Kernel", curio.Kernel, { thread = 4 })
    curio.run(function()
      local t = curio.spawn(curio.sleep, 1)
      try("cancel", t.cancel, t, { blockin = false })
      t:cancel()
      try("TaskGroup", curio.TaskGroup, { wiat = "any" })
      try("TaskGroup+fn", curio.TaskGroup, { task = {} }, print)
      try("Popen", subprocess.Popen, { "true" }, { stdout_ = 1 })
      try("run", subprocess.run, { "true" }, { captur_output = true })
      try("check_output", subprocess.check_output, { "true" }, { timout = 1 })
      try("tcp_server", curio.tcp_server, "127.0.0.1", 0, print, { backlg = 1 })
      try("tcp_server_socket", curio.tcp_server_socket, "127.0.0.1", 0, { reuse = true })
      try("unix_server", curio.unix_server, "/nonexistent/x", print, { family = "inet" })
      try("open_connection", curio.open_connection, "127.0.0.1", 1, { famly = "inet" })
    end)
    assert.are.same({ "Kernel: thread", "cancel: blockin", "TaskGroup: wiat", "TaskGroup+fn: task",
                      "Popen: stdout_", "run: captur_output", "check_output: timout", "tcp_server: backlg",
                      "tcp_server_socket: reuse", "unix_server: family", "open_connection: famly" }, got)
  end)
end)
