local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

describe("error classes", function()
  local hierarchy = {
    CancelledError = {},
    TaskCancelled = { "CancelledError" },
    TaskTimeout = { "CancelledError" },
    TimeoutCancellationError = { "CancelledError" },
    CurioError = {},
    TaskError = { "CurioError" },
    UncaughtTimeoutError = { "CurioError" },
    ResourceBusy = { "CurioError" },
    ReadResourceBusy = { "ResourceBusy", "CurioError" },
    WriteResourceBusy = { "ResourceBusy", "CurioError" },
    BrokenWorkerError = { "CurioError" },
    OSError = { "CurioError" },
    ConnectionError = { "OSError", "CurioError" },
    BrokenPipeError = { "ConnectionError", "OSError", "CurioError" },
    ConnectionResetError = { "ConnectionError", "OSError", "CurioError" },
    ConnectionRefusedError = { "ConnectionError", "OSError", "CurioError" },
    TimeoutError = { "OSError", "CurioError" },
    IncompleteRead = { "CurioError" },
    KeyboardInterrupt = { "CurioError" },
  }

  it("matches an instance by its class and every ancestor, and nothing else", function()
    for name, ancestors in pairs(hierarchy) do
      local err = curio[name]("x")
      local expected, got = { [name] = true }, {}
      for _, a in ipairs(ancestors) do expected[a] = true end
      for other in pairs(hierarchy) do
        if curio[other]:matches(err) then got[other] = true end
      end
      assert.are.same(expected, got, name)
    end
  end)

  it("matches safely on any Lua value", function()
    local values = { "TaskTimeout", 42, true, {}, setmetatable({}, {}), print,
                     coroutine.create(print), io.stdout }
    for _, v in ipairs(values) do
      assert.is_false(curio.CurioError:matches(v))
      assert.is_false(curio.CancelledError:matches(v))
    end
    assert.is_false(curio.CurioError:matches(nil))
  end)

  it("builds instances with message, fields, traceback and is_a", function()
    local err = curio.OSError("no such file", { errno = 2, code = "ENOENT" })
    assert.are.equal("no such file", err.message)
    assert.are.equal(2, err.errno)
    assert.are.equal("ENOENT", err.code)
    assert.is_true(err:is_a(curio.CurioError))
    assert.is_false(err:is_a(curio.CancelledError))
    assert.are.equal("OSError: no such file", tostring(err)) -- one line
    assert.truthy(err.traceback:find("^stack traceback:"))
    assert.truthy(err.traceback:find("errors_spec.lua", 1, true))
  end)

  it("uses the class name as message when none is given", function()
    assert.are.equal("TaskCancelled", curio.TaskCancelled().message)
  end)

  it("makes subclasses that users can extend and match", function()
    local AppError = curio.CurioError:subclass("AppError")
    local DbError = AppError:subclass("DbError")
    local err = DbError("down")
    assert.is_true(DbError:matches(err))
    assert.is_true(AppError:matches(err))
    assert.is_true(curio.CurioError:matches(err))
    assert.is_false(DbError:matches(AppError("x")))
    assert.is_false(curio.CancelledError:matches(err))
    assert.are.equal("DbError: down", tostring(err))
  end)

  it("rejects bad arguments with standard messages", function()
    local ok, err = pcall(curio.CurioError, "m", 5)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #2 to 'CurioError' (table expected, got number)", 1, true))
    ok, err = pcall(curio.CurioError.subclass, curio.CurioError, 3)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'subclass'", 1, true))
  end)
end)

describe("curio.pcall and curio.xpcall", function()
  it("return every result on success", function()
    local r = table.pack(curio.pcall(function() return 1, nil, 3 end))
    assert.are.same({ n = 4, true, 1, nil, 3 }, r)
  end)

  it("catch ordinary errors", function()
    local ok, err = curio.pcall(error, "plain")
    assert.are.same({ false, "plain" }, { ok, err })
    ok, err = curio.pcall(error, curio.CurioError("boom"))
    assert.is_false(ok)
    assert.is_true(curio.CurioError:matches(err))
  end)

  it("let every CancelledError through", function()
    for _, class in ipairs({ curio.CancelledError, curio.TaskCancelled, curio.TaskTimeout,
                              curio.TimeoutCancellationError }) do
      local exc = class("stop")
      local ok, err = pcall(curio.pcall, error, exc)
      assert.is_false(ok)
      assert.are.equal(exc, err)
    end
  end)

  it("call the xpcall handler only for non-cancellation errors", function()
    local seen = {}
    local function handler(e) seen[#seen + 1] = e; return "handled" end
    assert.are.same({ false, "handled" }, { curio.xpcall(error, handler, "x") })
    local exc = curio.TaskCancelled("stop")
    local ok, err = pcall(curio.xpcall, error, handler, exc)
    assert.are.same({ false, exc }, { ok, err })
    assert.are.same({ "x" }, seen)
  end)
end)

-- Argument errors (docs/errors.md): "bad argument #n to 'name' (...)" at
-- the caller's line, methods counting self out, built in one place per
-- language (core/errors.c, lua/curio/check.lua).
describe("argument errors", function()
  local subprocess = curio.subprocess
  local here = debug.getinfo(1, "S").short_src

  -- Calls fn(...) from this file and returns the message without its
  -- position when that position is the calling line, else marks it.
  local function bad(fn, ...)
    local args, line = table.pack(...), nil
    local err = util.catch(function()
      line = debug.getinfo(1, "l").currentline + 1
      fn(table.unpack(args, 1, args.n))
    end)
    local m = type(err) == "string" and err or tostring(err.message or err)
    local prefix = ("%s:%d: "):format(here, line)
    if m:sub(1, #prefix) == prefix then return m:sub(#prefix + 1) end
    return "(not at the caller's line) " .. m
  end

  it("name the function, number its arguments and point at the caller, for every public call", function()
    local got, want = {}, {}
    local function expect(prefix, fn, ...)
      local m = bad(fn, ...)
      want[#want + 1] = prefix
      got[#got + 1] = m:sub(1, #prefix) == prefix and prefix or m
    end
    expect("bad argument #1 to 'run'", curio.run, 5)
    expect("bad argument #1 to 'Kernel'", curio.Kernel, 5)
    expect("bad argument #1 to 'Kernel' (unknown option 'thread')", curio.Kernel, { thread = 4 })
    expect("bad argument #1 to 'Kernel' (option 'threads'", curio.Kernel, { threads = 0 })
    local k = curio.Kernel()
    expect("bad argument #1 to 'run' (function expected, got number)", k.run, k, 5)
    k:close()
    expect("bad argument #2 to 'CurioError' (table expected, got number)", curio.CurioError, "x", 5)
    expect("bad argument #1 to 'subclass'", curio.CurioError.subclass, curio.CurioError, 5)
    expect("bad argument #2 to 'xpcall'", curio.xpcall, print, 5)
    curio.run(function()
      expect("bad argument #1 to 'spawn'", curio.spawn, 5)
      expect("bad argument #1 to 'sleep'", curio.sleep, -1)
      expect("bad argument #1 to 'sleep'", curio.sleep, "x")
      expect("bad argument #1 to 'timeout_after'", curio.timeout_after, "x", print)
      expect("bad argument #2 to 'timeout_after'", curio.timeout_after, 1, 5)
      expect("bad argument #1 to 'ignore_at'", curio.ignore_at, 0 / 0, print)
      expect("bad argument #1 to 'disable_cancellation'", curio.disable_cancellation, 1)
      local t = curio.spawn(function() curio.sleep(1) end)
      expect("bad argument #1 to 'cancel' (table expected, got number)", t.cancel, t, 5)
      expect("bad argument #1 to 'cancel' (unknown option 'bogus')", t.cancel, t, { bogus = 1 })
      expect("bad argument #1 to 'cancel' (opts.exc", t.cancel, t, { exc = 5 })
      t:cancel()
      local lock = curio.Lock()
      expect("bad argument #1 to 'with'", lock.with, lock, 1)
      expect("bad argument #1 to 'Semaphore'", curio.Semaphore, "x")
      expect("bad argument #1 to 'BoundedSemaphore'", curio.BoundedSemaphore, -1)
      expect("bad argument #1 to 'Condition'", curio.Condition, 5)
      local cond = curio.Condition()
      expect("bad argument #1 to 'notify'", cond.notify, cond, -1)
      expect("bad argument #1 to 'wait_for'", cond.wait_for, cond, 1)
      expect("bad argument #1 to 'TaskGroup' (table expected", curio.TaskGroup, 5)
      expect("bad argument #1 to 'TaskGroup' (unknown option 'bogus')", curio.TaskGroup, { bogus = 1 })
      expect("bad argument #1 to 'TaskGroup' (opts.wait", curio.TaskGroup, { wait = "some" })
      expect("bad argument #2 to 'TaskGroup'", curio.TaskGroup, {}, 5)
      local g = curio.TaskGroup()
      expect("bad argument #1 to 'spawn'", g.spawn, g, 5)
      expect("bad argument #1 to 'add_task'", g.add_task, g, {})
      g:join()
      expect("bad argument #1 to 'Queue'", curio.Queue, -1)
      expect("bad argument #1 to 'LifoQueue'", curio.LifoQueue, 1.5)
      local q, pq = curio.Queue(), curio.PriorityQueue()
      expect("bad argument #1 to 'put' (value expected)", q.put, q, nil)
      expect("bad argument #1 to 'put' (value expected)", pq.put, pq, nil)
      expect("bad argument #2 to 'put'", pq.put, pq, "x", "high")
      expect("bad argument #1 to 'run_in_thread'", curio.run_in_thread, 5)
      expect("bad argument #1 to 'UniversalQueue'", curio.UniversalQueue, -1)
      local uq = curio.UniversalQueue()
      expect("bad argument #1 to 'put' (value expected)", uq.put, uq, nil)
      expect("bad argument #1 to 'abide'", curio.abide, 5)
      expect("bad argument #1 to 'run_in_process'", curio.run_in_process, 5)
      expect("bad argument #1 to 'run_in_process' (function or \"module.function\" expected, got 'nodot')",
             curio.run_in_process, "nodot")
      expect("bad argument #1 to 'socket'", curio.socket, "x")
      expect("bad argument #2 to 'socket'", curio.socket, "inet", "x")
      local s = curio.socket("inet", "stream")
      expect("bad argument #1 to 'bind' (address table {host, port} expected, got number)", s.bind, s, 5)
      expect("bad argument #1 to 'connect' (address port must be an integer)", s.connect, s,
             { "127.0.0.1", "x" })
      expect("bad argument #1 to 'setsockopt' (unknown option 'BOGUS')", s.setsockopt, s, "BOGUS", 1)
      expect("bad argument #1 to 'shutdown'", s.shutdown, s, "x")
      expect("bad argument #1 to 'recv'", s.recv, s, "x")
      expect("bad argument #1 to 'sendall'", s.sendall, s, 5)
      expect("bad argument #1 to 'listen'", s.listen, s, "x")
      expect("bad argument #1 to 'send'", s.send, s, 5)
      expect("bad argument #1 to 'getsockopt' (unknown option 'BOGUS')", s.getsockopt, s, "BOGUS")
      s:close()
      local d = curio.socket("inet", "dgram")
      expect("bad argument #1 to 'sendto' (string expected, got number)", d.sendto, d, 5, { "127.0.0.1", 9 })
      expect("bad argument #2 to 'sendto'", d.sendto, d, "x", 5)
      expect("bad argument #1 to 'recvfrom'", d.recvfrom, d, "x")
      d:close()
      expect("bad argument #1 to 'wrap'", curio.coroutine.wrap, 5)
      expect("bad argument #1 to 'resume'", curio.coroutine.resume, 5)
      expect("bad argument #1 to 'status'", curio.coroutine.status, 5)
      expect("bad argument #1 to 'spawn_daemon'", curio.spawn_daemon, 5)
      expect("bad argument #1 to 'ignore_after'", curio.ignore_after, -1, print)
      expect("bad argument #1 to 'timeout_at' (number expected, got NaN)", curio.timeout_at, 0 / 0, print)
      expect("bad argument #1 to 'PriorityQueue'", curio.PriorityQueue, -1)
      expect("bad argument #2 to 'put' (number expected, got NaN)", pq.put, pq, "x", 0 / 0)
      local ulock = curio.UniversalLock()
      expect("bad argument #1 to 'with'", ulock.with, ulock, 5)
      expect("bad argument #2 to 'tcp_server'", curio.tcp_server, "", "x", print)
      expect("bad argument #1 to 'tcp_server_socket'", curio.tcp_server_socket, 5, 0)
      expect("bad argument #1 to 'run_server'", curio.run_server, 5, print)
      expect("bad argument #1 to 'unix_server'", curio.unix_server, 5, print)
      expect("bad argument #1 to 'open_connection'", curio.open_connection, 5, 1)
      expect("bad argument #1 to 'open_unix_connection'", curio.open_unix_connection, 5)
      local path = os.tmpname()
      local f = curio.aopen(path, "w")
      expect("bad argument #1 to 'write' (string expected, got number)", f.write, f, 5)
      expect("bad argument #1 to 'writelines' (list of strings expected, got table at #2)",
             f.writelines, f, { "a", {} })
      expect("bad argument #1 to 'read'", f.read, f, "x")
      expect("bad argument #1 to 'readline'", f.readline, f, -1)
      expect("bad argument #1 to 'read_exactly'", f.read_exactly, f, -1)
      f:close()
      os.remove(path)
      expect("bad argument #1 to 'aopen'", curio.aopen, 5)
      expect("bad argument #2 to 'aopen'", curio.aopen, path, "q")
      expect("bad argument #1 to 'Popen'", subprocess.Popen, "ls")
      expect("bad argument #2 to 'run' (unknown option 'bogus')", subprocess.run, { "ls" }, { bogus = 1 })
      expect("bad argument #2 to 'check_output'", subprocess.check_output, { "ls" }, { bogus = 1 })
      local p = subprocess.Popen({ "sh", "-c", "exit 0" })
      expect("bad argument #1 to 'send_signal' (signal number out of range)", p.send_signal, p, 0)
      expect("bad argument #1 to 'send_signal' (signal number expected)", p.send_signal, p, "x")
      expect("bad argument #1 to 'communicate'", p.communicate, p, 5)
      p:wait()
      expect("bad argument #1 to 'send_signal' (signal number expected)", p.send_signal, p, "x")
    end)
    assert.are.same(want, got)
  end)

  it("refuse an option name with a zero byte or a key of another type, shown as it is", function()
    local weird = setmetatable({}, { __tostring = function() error("a key's __tostring ran") end })
    local got = {}
    local function expect(fn, ...) got[#got + 1] = bad(fn, ...) end
    expect(curio.Kernel, { ["threads\0x"] = 4 }) -- (C compared C strings: this was 'threads')
    expect(curio.Kernel, { ["shutdown_timeout\0"] = 1 })
    expect(curio.Kernel, { [weird] = 1 })
    curio.run(function()
      expect(curio.TaskGroup, { ["wait\0"] = "any" })
      expect(curio.TaskGroup, { [weird] = 1 }) -- (Lua called the key's __tostring)
      expect(curio.TaskGroup, { [1] = "any" })
      local t = curio.spawn(curio.sleep, 1)
      expect(t.cancel, t, { ["blocking\0"] = false })
      t:cancel()
      local path = os.tmpname()
      expect(curio.aopen, path, "w\0x") -- (the zero byte went raw into the message)
      expect(curio.aopen, path, setmetatable({}, getmetatable(weird)))
      os.remove(path)
    end)
    assert.are.same({
      "bad argument #1 to 'Kernel' (unknown option 'threads\\0x')",
      "bad argument #1 to 'Kernel' (unknown option 'shutdown_timeout\\0')",
      "bad argument #1 to 'Kernel' (unknown option (a table key))",
      "bad argument #1 to 'TaskGroup' (unknown option 'wait\\0')",
      "bad argument #1 to 'TaskGroup' (unknown option (a table key))",
      "bad argument #1 to 'TaskGroup' (unknown option (a number key))",
      "bad argument #1 to 'cancel' (unknown option 'blocking\\0')",
      "bad argument #2 to 'aopen' (invalid mode w\\0x)",
      "bad argument #2 to 'aopen' (invalid mode table)",
    }, got)
  end)

  it("are built only in core/errors.c and lua/curio/check.lua (make lint)", function()
    local status, stdout, stderr = util.sh("sh tools/lint_args.sh")
    assert.are.equal(0, status, stdout .. stderr)
  end)
end)

describe("a wrong self", function()
  it("is reported by the method's name as a bad self, at the caller's line", function()
    local here = debug.getinfo(1, "S").short_src
    local got = {}
    curio.run(function()
      local t, uq, k = curio.spawn(function() end), curio.UniversalQueue(), curio.Kernel()
      got[1] = select(2, pcall(function() t.join(5) end))
      got[2] = select(2, pcall(function() uq.get(5) end))
      got[3] = select(2, pcall(function() k.close(5) end))
      k:close()
      t:join()
    end)
    local line = debug.getinfo(1, "l").currentline
    assert.are.same({
      ("%s:%d: calling 'join' on bad self (Task expected, got number)"):format(here, line - 6),
      ("%s:%d: calling 'get' on bad self (UniversalQueue expected, got number)"):format(here, line - 5),
      ("%s:%d: calling 'close' on bad self (Kernel expected, got number)"):format(here, line - 4),
    }, got)
  end)

  it("names a Task's cancel as the user called it (not its C helper)", function()
    local here = debug.getinfo(1, "S").short_src
    local got, line
    curio.run(function()
      local t = curio.spawn(function() end)
      line = debug.getinfo(1, "l").currentline + 1
      got = select(2, pcall(function() t.cancel(5) end))
      t:join()
    end)
    assert.are.equal(("%s:%d: calling 'cancel' on bad self (Task expected, got number)"):format(here, line), got)
  end)

  it("is refused by every method of the Lua classes, before anything changes", function()
    local here = debug.getinfo(1, "S").short_src
    local got, want = {}, {}
    curio.run(function()
      local ev, q, g = curio.Event(), curio.Queue(), curio.TaskGroup()
      local objects = {
        Event = ev, Lock = curio.Lock(), RLock = curio.RLock(), Semaphore = curio.Semaphore(),
        BoundedSemaphore = curio.BoundedSemaphore(), Condition = curio.Condition(), TaskGroup = g,
      }
      local methods = {
        Event = { "is_set", "clear", "set", "wait" },
        Lock = { "acquire", "release", "locked", "with" },
        RLock = { "acquire", "release", "locked", "with" },
        Semaphore = { "acquire", "release", "value", "locked", "with" },
        BoundedSemaphore = { "acquire", "release", "value", "locked", "with" },
        Condition = { "acquire", "release", "locked", "wait", "wait_for", "notify", "notify_all", "with" },
        TaskGroup = { "spawn", "spawn_daemon", "add_task", "next_done", "next_result", "cancel_remaining",
                      "join", "result", "exception", "results", "exceptions" },
      }
      for class, names in pairs(methods) do
        local wrong = class == "Event" and q or ev -- (an Event's fields pass for a Lock's)
        for _, name in ipairs(names) do
          local line = debug.getinfo(1, "l").currentline + 1
          local ok, err = pcall(function() objects[class][name](wrong, print) end)
          got[#got + 1] = ok and (class .. "." .. name .. " accepted") or tostring(err)
          -- (Semaphore's methods are BoundedSemaphore's too: both classes pass)
          local tname = (class == "BoundedSemaphore" and name ~= "acquire" and name ~= "release"
                         and name ~= "with") and "Semaphore" or class
          want[#want + 1] = ("%s:%d: calling '%s' on bad self (%s expected, got %s)"):format(
            here, line, name, tname, wrong == q and "userdata" or "table")
        end
      end
      got[#got + 1] = tostring(rawget(ev, "_held")) -- (Lock.acquire used to set it)
      want[#want + 1] = "nil"
      g:join()
    end)
    assert.are.same(want, got)
  end)

  it("names UniversalLock's with where Lua cannot yield (not the acquire it calls)", function()
    local got
    curio.run(function()
      local lock = curio.UniversalLock()
      local ok, err = pcall(function() ("x"):gsub(".", function() lock:with(print) end) end)
      got = { ok, tostring(err.message) }
    end)
    assert.are.equal(false, got[1])
    assert.matches("^UniversalLock%.with: cannot block here", got[2])
  end)
end)

describe("error messages", function()
  it("are one line, 'Class: message', with the traceback in err.traceback", function()
    local err = curio.run(function()
      return util.catch(function()
        curio.sleep(0)
        error(curio.CurioError("boom"))
      end)
    end)
    assert.are.equal("CurioError: boom", tostring(err))
    assert.matches("^stack traceback:\n\t[^\n]*errors_spec.lua:%d+:", err.traceback)
  end)

  it("keep the main task's traceback when curio.run re-raises its error", function()
    local ok, err = pcall(curio.run, function()
      curio.sleep(0)
      curio.timeout_after(0.01, curio.sleep, 1) -- the line the traceback shows
    end)
    assert.is_false(ok)
    assert.are.equal("TaskTimeout: timed out after 0.01 s", tostring(err))
    assert.truthy(err.traceback:find("errors_spec.lua:%d+: in function <[^\n]*errors_spec.lua:%d+>\n?$"), err.traceback)
    assert.falsy(err.traceback:find("init.lua", 1, true), err.traceback)
  end)

  it("name the failed task's error class in TaskError", function()
    local err = curio.run(function()
      local t = curio.spawn(curio.timeout_after, 0.01, curio.sleep, 1)
      return util.catch(t.join, t), t.id
    end)
    assert.matches("^TaskError: task %d+ failed: TaskTimeout: timed out after 0%.01 s$", tostring(err))
  end)

  it("report a task crash as its one-line error, then one traceback where it was raised", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      curio.run(function()
        curio.spawn(function() curio.sleep(0); error(curio.OSError("disk on fire")) end)
        curio.spawn(function() curio.sleep(0); error("plain string") end)
        curio.sleep(0.01)
      end)
    ]], 20)
    assert.are.equal(0, status, stderr)
    assert.are.equal("", stdout)
    local lines = util.lines(stderr)
    assert.are.equal(7, #lines, stderr)
    assert.are.same({ "Task crash: task 2 failed: OSError: disk on fire", "stack traceback:" },
                    { lines[1], lines[2] })
    assert.matches("^\t[^\t]*:3: in function <[^\t]*:3>$", lines[3])
    assert.matches("^Task crash: task 3 failed: [^\t]*:4: plain string$", lines[4])
    assert.are.same({ "stack traceback:", "\t[C]: in function 'error'" }, { lines[5], lines[6] })
    assert.matches("^\t[^\t]*:4: in function <[^\t]*:4>$", lines[7])
  end)
end)
