-- The curio program (build/bin/curio, lua/curio/host.lua): its command
-- line, how it runs a script, and how it ends.
local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Runs the program with args (bounded: a hang is status 137).
local function curio_cmd(args) return util.sh("timeout -s KILL 20 " .. util.bin .. " " .. args) end

local function script(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

-- Runs a script file made of code with the program; returns status,
-- stdout, stderr.
local function run_script(code, args)
  local path = script(code)
  local status, stdout, stderr = curio_cmd(path .. " " .. (args or ""))
  os.remove(path)
  return status, stdout, stderr
end

describe("the curio program", function()
  it("runs a script as the main task with its arguments and arg table", function()
    local status, stdout = run_script([[
      local curio = require "curio"
      curio.sleep(0.001)
      local t = curio.spawn(function(x) return x * 2 end, 21)
      print(select("#", ...), table.concat({ ... }, ","), arg[0] == (...) and "?" or "arg0 ok",
            arg[1], arg[2], t:join())
    ]], "one two")
    assert.are.equal(0, status)
    assert.are.equal("2\tone,two\targ0 ok\tone\ttwo\t42\n", stdout)
  end)

  it("runs -e code, -l modules and prints -v", function()
    local status, stdout = curio_cmd([[-l string -v -e "print(string.rep('a', 2))" -e "require('curio').sleep(0) print('slept')"]])
    assert.are.equal(0, status)
    local lines = util.lines(stdout)
    assert.truthy(lines[1]:find("^curio "))
    assert.are.same({ "aa", "slept" }, { lines[2], lines[3] })
  end)

  it("takes an option's argument glued to it, after '=' for a long one, and '--' and '-'", function()
    local status, stdout, stderr = util.sh("printf 'print(\"stdin\", ...)' | " .. util.bin
      .. " '-eprint(1)' -l g=string -e 'print(g.upper(\"x\"))' - a b")
    assert.are.same({ 0, "", { "1", "X", "stdin\ta\tb" } }, { status, stderr, util.lines(stdout) })
    status, stdout, stderr = curio_cmd("-e 'print(arg[0], arg[1])' -- -v x")
    -- after "--", "-v" is the script (missing here)
    assert.are.same({ 1, "-v\tx\n", "curio: cannot open -v" }, { status, stdout, stderr:match("^[^:]*: [^:]*") })
  end)

  it("makes curio a global in scripts, -e code and at the prompt", function()
    local status, stdout = run_script("print(curio == require('curio'), curio.sleep(0) ~= nil)")
    assert.are.same({ 0, "true\ttrue\n" }, { status, stdout })
    status, stdout = curio_cmd("-e 'print(curio.spawn(function() return 7 end):join())'")
    assert.are.same({ 0, "7\n" }, { status, stdout })
    status, stdout = util.sh("printf 'print(type(curio.run))\\n' | " .. util.bin .. " -i")
    assert.are.equal(0, status)
    assert.truthy(stdout:find("function\n", 1, true))
  end)

  it("lists every option with -h and --help and exits 0", function()
    local host = require "curio.host"
    for _, flag in ipairs({ "-h", "--help" }) do
      local status, stdout, stderr = curio_cmd(flag .. " -e 'print(\"ran\")'")
      assert.are.same({ 0, "" }, { status, stderr })
      local lines = util.lines(stdout)
      assert.are.equal("usage: curio [options] [script [args]]", lines[1])
      assert.are.equal(#host.options + 2, #lines) -- one line per option
      for i, option in ipairs(host.options) do
        for _, name in ipairs(option.names) do
          assert.truthy(lines[i + 2]:find(name, 1, true), name)
        end
        assert.truthy(lines[i + 2]:find(option.help, 1, true), option.help)
      end
    end
  end)

  it("prints the version of curio._VERSION with -v and --version", function()
    for _, flag in ipairs({ "-v", "--version" }) do
      local status, stdout = curio_cmd(flag)
      assert.are.equal(0, status)
      assert.are.equal(curio._VERSION, stdout:match("^(curio %S+) "))
    end
  end)

  it("refuses an unknown option, a missing argument, an argument to a flag: one line and the usage on stderr, exit 1",
    function()
      for _, args in ipairs({ "-Q", "--frobnicate", "-e", "-l", "--help=yes", "-vx" }) do
        local status, stdout, stderr = curio_cmd(args)
        local lines = util.lines(stderr)
        assert.are.same({ 1, "" }, { status, stdout }, args)
        assert.truthy(lines[1]:match("^curio: [%w ]+ '%-[%-%w]+'"), lines[1])
        assert.are.equal("usage: curio [options] [script [args]]", lines[2])
      end
    end)

  it("exits with 1 and the error's line, then its traceback without the program's frames", function()
    local status, stdout, stderr = run_script("local function f() error('script failed') end\nf()\n")
    assert.are.same({ 1, "" }, { status, stdout })
    local lines = util.lines(stderr)
    assert.truthy(lines[1]:match("^curio: .*:1: script failed$"), lines[1])
    assert.are.equal("stack traceback:", lines[2])
    assert.truthy(stderr:find(":1: in local 'f'", 1, true))
    assert.truthy(lines[#lines]:find(":2: in main chunk", 1, true), lines[#lines])
    assert.falsy(stderr:find("host.lua", 1, true))
  end)

  it("reports a curio error as 'Class: message' on one line, then its traceback once", function()
    local status, _, stderr = run_script("local function f() curio.timeout_after(0.01, curio.sleep, 1) end\nf()\n")
    assert.are.equal(1, status)
    local lines = util.lines(stderr)
    assert.truthy(lines[1]:match("^curio: TaskTimeout: [^\n]+$"), lines[1])
    assert.are.equal("stack traceback:", lines[2])
    assert.are.equal(1, select(2, stderr:gsub("stack traceback:", "")))
    assert.truthy(stderr:find(":1: in local 'f'", 1, true))
  end)

  it("reports a failed join with its cause", function()
    local status, _, stderr = run_script([[
      local function inner() error("deep down") end
      curio.spawn(inner):join()
    ]])
    assert.are.equal(1, status)
    local lines = util.lines(stderr)
    assert.truthy(lines[1]:match("^curio: TaskError: "), lines[1])
    assert.truthy(stderr:find("\ncaused by: [^\n]*:1: deep down\n"), stderr)
  end)

  it("reports an error value that is neither a string nor printable as lua5.4 does", function()
    local status, _, stderr = curio_cmd("-e 'error({})'")
    assert.are.equal(1, status)
    assert.are.equal("curio: (error object is a table value)", util.lines(stderr)[1])
  end)

  it("exits with 1 on a missing script and on code that does not compile", function()
    local status, _, stderr = curio_cmd("/nonexistent/script.lua")
    assert.are.same({ 1, { "curio: cannot open /nonexistent/script.lua: No such file or directory" } },
                    { status, util.lines(stderr) })
    status, _, stderr = curio_cmd("-e 'x ='")
    assert.are.same({ 1, { "curio: (command line):1: unexpected symbol near <eof>" } },
                    { status, util.lines(stderr) })
  end)

  it("exits with 130 on SIGINT after the cleanup ran", function()
    local path = script([[
      local curio = require "curio"
      io.stdout:write("ready\n"); io.stdout:flush()
      ]] .. util.ready_code .. [[

      local ok = pcall(curio.sleep, 10)
      io.stdout:write("cleanup ", tostring(ok), "\n")
    ]])
    local status, stdout = util.interrupt(util.bin .. " " .. path)
    os.remove(path)
    assert.are.equal(130, status)
    assert.are.same({ "ready", "cleanup false" }, util.lines(stdout))
  end)

  it("runs lines typed at the interactive prompt inside the kernel", function()
    local status, stdout = util.sh("printf 'x = 20\\nt = curio.spawn(function() return x + 1 end)\\nprint(t:join())\\n' | "
      .. util.bin .. " -l curio -i")
    assert.are.equal(0, status)
    assert.truthy(stdout:find("21", 1, true))
  end)
end)

describe("curio.run inside the curio program", function()
  it("runs fn as a task of the program's kernel and returns its results, nested and twice in a row", function()
    local status, stdout, stderr = run_script([[
      local main = curio.current_task()
      local function where() return curio.current_task() ~= main and "own task" or "same task" end
      print(curio.run(function(a, b)
        return a + b, where(), curio.run(function() curio.sleep(0) return "nested", where() end)
      end, 1, 2))
      print(curio.run(function() return select("#", curio.run(function() return nil, nil end)) end))
      print(select("#", curio.run(function() end)))
    ]])
    assert.are.same({ 0, "", { "3\town task\tnested\town task", "2", "0" } },
                    { status, stderr, util.lines(stdout) })
  end)

  it("raises fn's error as it is: the same string, a curio error with the traceback of fn's task", function()
    local status, stdout, stderr = run_script([[
      local ok, err = pcall(curio.run, function() error("plain", 0) end)
      print(ok, err)
      ok, err = pcall(curio.run, function() error({ code = 7 }) end)
      print(ok, type(err), err.code)
      local function deep() curio.sleep(0) error(curio.CurioError("from fn")) end
      curio.run(function() deep() end)
    ]])
    assert.are.same({ 1, { "false\tplain", "false\ttable\t7" } }, { status, util.lines(stdout) })
    local lines = util.lines(stderr)
    assert.are.same({ "curio: CurioError: from fn", "stack traceback:" }, { lines[1], lines[2] })
    assert.truthy(stderr:find(":5: in upvalue 'deep'", 1, true) or stderr:find(":5: in local 'deep'", 1, true),
                  stderr)
  end)

  it("reports an error with no traceback of its own (a string) with the traceback of fn's task", function()
    local status, _, stderr = run_script([[
      local function inner() error("in fn") end
      curio.run(function() curio.run(function() inner() end) end)
    ]])
    assert.are.equal(1, status)
    local lines = util.lines(stderr)
    assert.truthy(lines[1]:match("^curio: .*:1: in fn$"), lines[1])
    assert.are.same({ "stack traceback:", "\t[C]: in function 'error'" }, { lines[2], lines[3] })
    assert.truthy(lines[4]:match(":1: in upvalue 'inner'$"), stderr)
    -- the same string raised again elsewhere is reported where it is raised
    status, _, stderr = run_script([[
      local _, e = pcall(curio.run, function() error("again", 0) end)
      local function later() error(e, 0) end
      later()
    ]])
    assert.are.equal(1, status)
    assert.truthy(stderr:find(":2: in local 'later'", 1, true), stderr)
  end)

  it("refuses from a plain coroutine, naming run, and fn never runs; passes through curio.coroutine", function()
    local status, stdout, stderr = run_script([[
      local ran = false
      local ok, err = coroutine.wrap(function()
        return pcall(curio.run, function() ran = true end)
      end)()
      curio.sleep(0)
      print(ok, curio.CurioError:matches(err), (err.message:match("^run: blocking call inside a coroutine")),
            ran)
      print(curio.coroutine.wrap(function() return curio.run(function() curio.sleep(0) return "through" end) end)())
    ]])
    assert.are.same({ 0, "", { "false\ttrue\trun: blocking call inside a coroutine\tfalse", "through" } },
                    { status, stderr, util.lines(stdout) })
  end)

  it("cancels fn's task with its cleanup when the caller is cancelled (a timeout around it)", function()
    local status, stdout, stderr = run_script([[
      local ok, err = pcall(curio.timeout_after, 0.05, curio.run, function()
        local slept = pcall(curio.sleep, 10)
        print("fn cleanup", slept)
      end)
      print(ok, curio.TaskTimeout:matches(err))
    ]])
    assert.are.same({ 0, "", { "fn cleanup\tfalse", "false\ttrue" } }, { status, stderr, util.lines(stdout) })
  end)

  for _, case in ipairs({ { "INT", 130, "interrupted" }, { "TERM", 143, "terminated" } }) do
    it("ends with " .. case[2] .. " on SIG" .. case[1] .. " after the cleanup of fn's task and the script", function()
      local path = script([[
        local ok = pcall(curio.run, function()
          io.stdout:write("ready\n"); io.stdout:flush()
          ]] .. util.ready_code .. [[

          local slept = pcall(curio.sleep, 10)
          io.stdout:write("fn cleanup ", tostring(slept), "\n")
        end)
        io.stdout:write("script goes on ", tostring(ok), "\n")
      ]])
      local status, stdout, stderr = util.interrupt(util.bin .. " " .. path, case[1])
      os.remove(path)
      assert.are.same({ case[2], "curio: " .. case[3] .. "\n" }, { status, stderr })
      assert.are.same({ "ready", "fn cleanup false", "script goes on false" }, util.lines(stdout))
    end)
  end

  it("in a worker thread, where curio is required anew, runs a kernel of the thread's own, as under lua5.4",
    function()
      local code = [[
        local curio = require "curio"
        print(curio.run(function()
          return curio.run_in_thread(function()
            local c = require "curio" -- (the thread's Lua state: the program's modules, no files)
            return c.run(function() c.sleep(0.001) return "thread's kernel", c.current_task() ~= nil end)
          end)
        end))
      ]]
      local path = script(code)
      local status, stdout, stderr = curio_cmd(path)
      os.remove(path)
      assert.are.same({ 0, "", "thread's kernel\ttrue\n" }, { status, stderr, stdout })
      assert.are.same({ 0, "thread's kernel\ttrue\n", "" }, { util.lua_code(code, 20) })
    end)

  it("keeps refusing inside a running kernel under plain lua5.4", function()
    local status, stdout = util.lua_code([[
      local curio = require "curio"
      curio.run(function()
        local ok, err = pcall(curio.run, function() print("must not run") end)
        print(ok, curio.CurioError:matches(err), (tostring(err):match("cannot run a kernel from inside a curio task")))
      end)
    ]], 20)
    assert.are.same({ 0, "false\ttrue\tcannot run a kernel from inside a curio task\n" }, { status, stdout })
  end)
end)

describe("start-up", function()
  -- The curio.* modules a Lua state holds, sorted, as one line.
  local LOADED = [[
    local names = {}
    for name in pairs(package.loaded) do
      if name:match("^curio") then names[#names + 1] = name end
    end
    table.sort(names)
    print(table.concat(names, " "))
  ]]

  it("require 'curio' loads the kernel, errors and tasks only; every other name loads when first read", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      ]] .. LOADED .. [[
      local names = { "Event", "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "TaskGroup",
        "Queue", "LifoQueue", "PriorityQueue", "UniversalQueue", "abide", "run_in_process", "socket",
        "tcp_server", "tcp_server_socket", "run_server", "unix_server", "open_connection",
        "open_unix_connection", "aopen", "Stream", "subprocess", "SignalQueue", "SignalEvent",
        "timeout_after", "ignore_after", "timeout_at", "ignore_at", "TIMEOUT", "monitor" }
      local missing = {}
      for _, name in ipairs(names) do
        if curio[name] == nil or rawget(curio, name) ~= curio[name] then missing[#missing + 1] = name end
      end
      print("missing: " .. table.concat(missing, " "), curio.no_such_name)
      ]] .. LOADED .. [[
      curio.run(function() print(curio.abide(curio.sleep, 0) ~= nil) end)
      -- pairs lists every name (a second instance: nothing read yet)
      local function keys(t, iterate)
        local list = {}
        for name in iterate(t) do list[#list + 1] = name end
        table.sort(list)
        return table.concat(list, " ")
      end
      local fresh = dofile("lua/curio/init.lua")
      local raw_before = keys(fresh, function(t) return next, t, nil end)
      print(keys(fresh, pairs) == keys(curio, pairs), keys(fresh, pairs) ~= raw_before,
            keys(curio, pairs):find(" Event ") ~= nil)
    ]], 20)
    assert.are.same({ 0, "", {
      "curio curio.check curio.core curio.errors curio.task",
      "missing: \tnil",
      "curio curio.channel curio.check curio.core curio.errors curio.handshake curio.io curio.monitor "
        .. "curio.network curio.queue curio.signal curio.ssl curio.subprocess curio.sync curio.task "
        .. "curio.taskgroup curio.thread curio.time curio.tls curio.workers",
      "true",
      "true\ttrue\ttrue",
    } }, { status, stderr, util.lines(stdout) })
  end)

  it("the program loads only what it runs, its modules keeping their line numbers", function()
    local status, stdout = curio_cmd("-e '" .. LOADED .. "'")
    assert.are.same({ 0, "curio curio.check curio.core curio.errors curio.host curio.signal curio.task\n" },
                    { status, stdout })
    local _, _, stderr = curio_cmd("-e 'curio.timeout_after(0.01, curio.sleep, 1)'")
    assert.truthy(stderr:find("\n\tlua/curio/time.lua:%d+: in function '[%w.]*timeout_after'\n"), stderr)
  end)
end)

describe("the version", function()
  -- The rockspec's fields (a rockspec is Lua assignments).
  local function rockspec()
    local listed = io.popen("ls curio-*.rockspec")
    local path = listed:read("l")
    listed:close()
    local fields = {}
    assert(loadfile(path, "t", fields))()
    return fields
  end

  it("is one: curio._VERSION, `curio -v` and the rockspec agree", function()
    local number = curio._VERSION:match("^curio (%d+%.%d+%.%d+)$")
    assert.truthy(number, curio._VERSION)
    local spec = rockspec()
    -- a release rockspec carries the number as its version; the scm one
    -- (the repository as it is) says it in its description
    if spec.version:match("^scm%-") then
      assert.are.equal("curio " .. number, spec.description.detailed:match("curio %d+%.%d+%.%d+"))
    else
      assert.are.equal(number, spec.version:match("^(.-)%-%d+$"))
    end
    local _, stdout = curio_cmd("-v")
    assert.are.equal(curio._VERSION .. " (" .. _VERSION .. ", libev)\n", stdout)
  end)
end)
