local curio = require "curio"
local monitor = require "curio.monitor"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch
local PROMPT = "curio > "

-- A console client: connect, read the banner; c:send(line) -> the reply
-- (the text before the next prompt, or what came before the end).
local function connect(m)
  local sock = m.path and curio.open_unix_connection(m.path) or curio.open_connection(m.host, m.port)
  local client, buffer = { sock = sock }, ""
  function client.reply()
    while not buffer:find(PROMPT, 1, true) do
      local data = sock:recv(65536)
      if data == "" then
        local rest = buffer
        buffer = ""
        return rest, true
      end
      buffer = buffer .. data
    end
    local at = buffer:find(PROMPT, 1, true)
    local reply = buffer:sub(1, at - 1)
    buffer = buffer:sub(at + #PROMPT)
    return reply
  end
  function client.send(line)
    sock:sendall(line .. "\n")
    return client.reply()
  end
  client.banner = client.reply()
  return client
end

-- The ps line of task id in a listing (nil if none).
local function ps_line(listing, id)
  for line in listing:gmatch("[^\n]+") do
    if line:match("^%s*(%d+)%s") == tostring(id) then return line end
  end
end

describe("curio.monitor", function()
  it("lists a named sleeping task in ps with its state, its wait and its cycles", function()
    curio.run(function()
      local m <close> = curio.monitor({ port = 0 })
      local sleeper = curio.spawn(curio.sleep, 60)
      sleeper.name = "napper"
      local q = curio.Queue()
      local getter = curio.spawn(q.get, q)
      local c = connect(m)
      assert.are.equal("curio monitor: ps, where ID, cancel ID, help, quit\n", c.banner)
      local listing = c.send("ps")
      assert.truthy(listing:match("^%s*ID%s+STATE%s+WAITS IN%s+FOR %(s%)%s+CYCLES%s+NAME\n"))
      local id, state, wait, seconds, cycles, name =
        ps_line(listing, sleeper.id):match("^%s*(%d+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%d+)%s+(.-)$")
      assert.are.same({ sleeper.id, "WAITING", "sleep", 1, "napper" },
                      { tonumber(id), state, wait, tonumber(cycles), name })
      assert.is_true(tonumber(seconds) >= 0 and tonumber(seconds) < 60)
      assert.truthy(ps_line(listing, getter.id):match("%sWAITING%s+Queue%.get%s"))
      -- the monitor's own tasks are listed, marked
      assert.truthy(listing:match("monitor %(this monitor%)"))
      assert.truthy(listing:match("RUNNING.*monitor client 127%.0%.0%.1:%d+ %(this monitor%)"))
      -- and monitor.ps() gives the same listing in a task; a name stays on its line
      assert.truthy(ps_line(monitor.ps(), sleeper.id):match("%sWAITING%s+sleep%s.*napper$"))
      getter.name = "two\nlines\0"
      assert.truthy(ps_line(c.send("ps"), getter.id):match("%s+two\\10lines\\0$"))
      c.sock:close()
      sleeper:cancel()
      getter:cancel()
    end)
  end)

  it("shows where a task waits, with its line", function()
    local line
    curio.run(function()
      local m <close> = curio.monitor({ port = 0 })
      local t = curio.spawn(function()
        line = debug.getinfo(1, "l").currentline + 1
        curio.sleep(60)
      end)
      curio.sleep(0)
      local c = connect(m)
      local reply = c.send("where " .. t.id)
      assert.truthy(reply:find(("^task %d %%(Task%%-%d%%):\nstack traceback:\n"):format(t.id, t.id)))
      assert.truthy(reply:find("monitor_spec.lua:" .. line .. ":", 1, true))
      assert.truthy(monitor.where(t.id):find("monitor_spec.lua:" .. line .. ":", 1, true))
      c.sock:close()
      t:cancel()
    end)
  end)

  it("cancels a task, which runs its cleanup before the reply", function()
    local trace = {}
    curio.run(function()
      local m <close> = curio.monitor({ port = 0 })
      local t = curio.spawn(function()
        local ok, err = pcall(curio.sleep, 60)
        trace[#trace + 1] = "cleanup " .. tostring(ok) .. " " .. tostring(curio.TaskCancelled:matches(err))
        curio.sleep(0.01) -- (cleanup may block: the reply waits for it)
        trace[#trace + 1] = "cleanup done"
        error(err, 0)
      end)
      t.name = "victim"
      curio.sleep(0)
      local c = connect(m)
      local reply = c.send("cancel " .. t.id)
      trace[#trace + 1] = reply
      trace[#trace + 1] = tostring(t.terminated) .. " " .. tostring(t.cancelled)
      assert.is_nil(ps_line(c.send("ps"), t.id))
      reply = c.send("cancel " .. t.id) -- gone now
      trace[#trace + 1] = reply
      c.sock:close()
    end)
    assert.are.same({ "cleanup false true", "cleanup done", "task 3 (victim) cancelled\n",
                      "true true", "error: no task 3\n" }, trace)
  end)

  it("answers bad commands and bad ids with one error line, and the session goes on", function()
    curio.run(function()
      local m <close> = curio.monitor({ port = 0 })
      local c = connect(m)
      local replies = {}
      for _, line in ipairs({ "bogus", "where", "where x", "where 99", "where -1", "cancel 1.5",
                              "cancel 99", "ps now", "\1\2\255 binary", ("x"):rep(5000),
                              "cancel " .. curio.current_task().id + 1 }) do
        replies[#replies + 1] = c.send(line)
      end
      assert.are.same({
        "error: unknown command 'bogus' (try help)\n",
        "error: where needs a task id (a number), got ''\n",
        "error: where needs a task id (a number), got 'x'\n",
        "error: no task 99\n",
        "error: where needs a task id (a number), got '-1'\n",
        "error: cancel needs a task id (a number), got '1.5'\n",
        "error: no task 99\n",
        "error: ps takes no argument\n",
        "error: unknown command '\\1\\2\\255' (try help)\n",
        "error: line longer than 1024 bytes\n",
        "error: task 2 is this monitor's own\n",
      }, replies)
      assert.truthy(c.send("help"):find("^commands:\n  ps "))
      assert.are.equal("", c.send(""))
      assert.truthy(ps_line(c.send("ps"), 1))
      local bye, ended = c.send("quit")
      assert.are.same({ "bye\n", true }, { bye, ended })
      c.sock:close()
    end)
  end)

  it("serves many clients at once", function()
    curio.run(function()
      local m <close> = curio.monitor({ port = 0 })
      local clients = {}
      for i = 1, 20 do clients[i] = connect(m) end
      for _, c in ipairs(clients) do c.sock:sendall("ps\nwhere 1\n") end -- all asked first
      local listings = {}
      for i, c in ipairs(clients) do
        listings[i] = c.reply()
        assert.truthy(c.reply():find("^task 1 %(Task%-1%):\nstack traceback:\n"))
      end
      for i, c in ipairs(clients) do
        local count = select(2, listings[i]:gsub("monitor client", ""))
        assert.are.equal(20, count) -- every session's task
        c.sock:close()
      end
    end)
  end)

  it("goes on when clients disconnect mid-command, mid-reply or send garbage", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      curio.run(function()
        local m <close> = curio.monitor({ port = 0 })
        for i = 1, 50 do curio.spawn(curio.sleep, 60).name = ("sleeper %d %s"):format(i, ("z"):rep(200)) end
        local function open() return curio.open_connection(m.host, m.port) end
        local s = open(); s:sendall("pi"); s:close()                   -- mid-command
        s = open(); s:sendall(("ps\n"):rep(200)); s:close()            -- its replies unread
        s = open(); s:sendall("ps\n"); s:shutdown("w"); s:close()
        s = open(); s:sendall(string.rep("\0\255", 40000)); s:close()  -- garbage, no newline
        s = open(); s:sendall("cancel 999\nwhere"); s:close()
        for _ = 1, 10 do curio.sleep(0) end
        s = open()                                                     -- a later client is served
        local got = ""
        s:sendall("where 1\nquit\n")
        while true do local d = s:recv(65536); if d == "" then break end; got = got .. d end
        s:close()
        print(got:find("task 1 (Task-1):", 1, true) ~= nil, got:find("bye", 1, true) ~= nil)
        curio.sleep(0.05)
      end)
    ]], 30)
    assert.are.same({ 0, "true\ttrue\n", "" }, { status, stdout, stderr })
  end)

  it("listens on a unix socket, whose file goes when it closes", function()
    local path = os.tmpname()
    os.remove(path)
    curio.run(function()
      local m = curio.monitor({ path = path })
      assert.are.same({ path, path }, { m.address, m.path })
      local c = connect(m)
      assert.truthy(c.send("ps"):find("monitor client %(unix socket%) %(this monitor%)"))
      c.sock:close()
      m:close()
      assert.is_nil(io.open(path))
      m:close() -- (again: nothing)
    end)
  end)

  it("is closed with its kernel: no descriptor, no file, no task left", function()
    local path = os.tmpname()
    os.remove(path)
    local fds = util.fd_count()
    curio.run(function()
      curio.monitor({ path = path })
      local m = curio.monitor({ port = 0 })
      local c = connect(m) -- a session in progress too
      c.sock:sendall("p")
      curio.sleep(0)
    end)
    collectgarbage()
    assert.are.equal(fds, util.fd_count())
    assert.is_nil(io.open(path))
  end)

  it("ends a session waiting in cancel when the kernel closes; the victim's cleanup runs", function()
    local trace = {}
    curio.run(function()
      local m = curio.monitor({ port = 0 })
      local victim = curio.spawn(function()
        pcall(curio.sleep, 60)
        curio.sleep(0.01) -- a cleanup that blocks
        trace[#trace + 1] = "victim's cleanup done"
      end)
      local c = connect(m)
      c.sock:sendall("cancel " .. victim.id .. "\n")
      for _ = 1, 1000 do -- (until the session waits for the victim's end)
        if monitor.ps():find("WAITING%s+join%s[^\n]*monitor client") then break end
        curio.sleep(0)
      end
      trace[#trace + 1] = tostring(victim.cancelled)
    end) -- the kernel closes: the session, then the victim's cleanup, end
    assert.are.same({ "true", "victim's cleanup done" }, trace)
  end)

  it("closes from where Lua cannot yield, its sockets as soon as its tasks run", function()
    curio.run(function()
      local m = curio.monitor({ port = 0 })
      table.sort({ 2, 1 }, function(a, b) m:close() return a < b end) -- (no yield possible)
      curio.sleep(0)
      local err = catch(curio.open_connection, "127.0.0.1", m.port)
      assert.are.equal("ECONNREFUSED", err.code)
    end)
  end)

  it("stops serving when closed, and its address says where it listened", function()
    curio.run(function()
      local m = curio.monitor({ host = "127.0.0.1", port = 0 })
      assert.are.equal("127.0.0.1:" .. m.port, m.address)
      assert.are.equal("Monitor(" .. m.address .. ")", tostring(m))
      m:close()
      assert.are.equal("Monitor(" .. m.address .. ", closed)", tostring(m))
      local err = catch(curio.open_connection, "127.0.0.1", m.port)
      assert.are.equal("ECONNREFUSED", err.code)
    end)
  end)

  it("checks its arguments", function()
    local function message(...)
      local ok, err = pcall(curio.monitor, ...)
      assert.is_false(ok)
      return tostring(err)
    end
    assert.truthy(message():find("monitor: not inside a curio task", 1, true))
    curio.run(function()
      assert.truthy(message(5):find("bad argument #1 to 'monitor' (table expected, got number)", 1, true))
      assert.truthy(message({ bogus = 1 }):find("unknown option 'bogus'", 1, true))
      assert.truthy(message({ port = 70000 }):find("opts.port must be an integer from 0 to 65535, got 70000", 1, true))
      assert.truthy(message({ port = "1" }):find("opts.port must be an integer", 1, true))
      assert.truthy(message({ path = 1 }):find("opts.path string expected, got number", 1, true))
      assert.truthy(message({ path = "/x", port = 1 }):find("opts.path excludes opts.host and opts.port", 1, true))
      assert.truthy(message({ host = "a\0b" }):find("string contains a zero byte", 1, true))
      local err = catch(monitor.where, 999)
      assert.is_true(curio.CurioError:matches(err))
      assert.truthy(tostring(err):find("where: no task with id 999", 1, true))
      assert.truthy(tostring(catch(monitor.where, "1")):find("bad argument #1 to 'where' (task id (integer) expected, got 1)", 1, true))
      -- a busy port: the OSError of bind, raised where monitor was called
      local m <close> = curio.monitor({ port = 0 })
      err = catch(curio.monitor, { port = m.port })
      assert.are.equal("EADDRINUSE", err.code)
    end)
    assert.truthy(tostring(catch(monitor.ps)):find("ps: not inside a curio task", 1, true))
  end)
end)

describe("monitor.parse_address", function()
  it("reads host:port, [v6]:port, :port, port and paths", function()
    assert.are.same({ host = "127.0.0.1", port = 48802 }, monitor.parse_address(nil))
    assert.are.same({ host = "10.0.0.1", port = 5 }, monitor.parse_address("10.0.0.1:5"))
    assert.are.same({ host = "::1", port = 7 }, monitor.parse_address("[::1]:7"))
    assert.are.same({ host = "127.0.0.1", port = 9 }, monitor.parse_address(":9"))
    assert.are.same({ host = "127.0.0.1", port = 9 }, monitor.parse_address("9"))
    assert.are.same({ path = "./mon.sock" }, monitor.parse_address("./mon.sock"))
    assert.is_nil(monitor.parse_address("host:99999"))
    assert.is_nil(monitor.parse_address("nonsense"))
  end)
end)

describe("the curio program", function()
  -- A script for `curio -m`: a named sleeping task, then "ready" (after
  -- which the monitor listens: -m starts it before the script runs).
  local script = [[
local t = curio.spawn(function()
  local ok = pcall(curio.sleep, 60) -- line 2
  print("cleanup", ok)
end)
t.name = "napper"
print("ready " .. t.id)
io.stdout:flush()
t:join()
print("joined")
]]

  it("runs a script with -m, and --monitor talks to its monitor", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local path = dir .. "/script.lua"
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local socket_path = dir .. "/monitor.sock"
    curio.run(function()
      local sub = curio.subprocess
      local p = sub.Popen({ util.bin, "-m", path }, { stdout = sub.PIPE, stderr = sub.PIPE,
                          env = { CURIO_MONITOR = socket_path, PATH = os.getenv("PATH") } })
      local ok, problem = pcall(function()
        local said = curio.timeout_after(20, p.stderr.readline, p.stderr)
        assert.are.equal(("curio: monitor listening on %s (curio --monitor %s)\n"):format(socket_path, socket_path), said)
        local id = tonumber(curio.timeout_after(20, p.stdout.readline, p.stdout):match("^ready (%d+)\n$"))
        local function client(input)
          local r = curio.timeout_after(20, sub.run, { util.bin, "--monitor", socket_path },
                                        { input = input, capture_output = true })
          return r.returncode, r.stdout, r.stderr
        end
        local status, out, err = client("ps\nwhere " .. id .. "\n")
        assert.are.same({ 0, "" }, { status, err })
        assert.truthy(out:find("^curio monitor: ps, where ID, cancel ID, help, quit\ncurio > "))
        assert.truthy(out:find("\n%s*" .. id .. "%s+WAITING%s+sleep%s[^\n]*napper\n"))
        assert.truthy(out:find("task " .. id .. " %(napper%):\nstack traceback:\n"))
        assert.truthy(out:find("script.lua:2:", 1, true))
        assert.truthy(out:find("curio > bye\n$"))
        status, out = client("cancel " .. id .. "\n")
        assert.are.equal(0, status)
        assert.truthy(out:find("task " .. id .. " (napper) cancelled\n", 1, true))
        assert.are.equal("cleanup\tfalse\n", curio.timeout_after(20, p.stdout.readline, p.stdout))
        assert.are.equal("joined\n", p.stdout:readline())
        assert.are.equal(0, curio.timeout_after(20, p.wait, p))
        -- the monitor's file went with it, so a client now finds nothing
        status, out, err = client("ps\n")
        assert.are.same({ 1, "", ("curio: cannot connect to the monitor at %s: No such file or directory\n"):format(socket_path) },
                        { status, out, err })
      end)
      if p:poll() == nil then p:kill() p:wait() end -- (a failure above: nothing left behind)
      p.stdout:close()
      p.stderr:close()
      if not ok then error(problem, 0) end
    end)
    os.remove(path)
    assert(os.execute("rmdir " .. dir))
  end)

  it("says so in one line when no monitor listens, or the address is wrong", function()
    local status, stdout, stderr = util.sh(util.bin .. " --monitor 127.0.0.1:1 </dev/null")
    assert.are.same({ 1, "", "curio: cannot connect to the monitor at 127.0.0.1:1: Connection refused\n" },
                    { status, stdout, stderr })
    status, stdout, stderr = util.sh(util.bin .. " --monitor no:where </dev/null")
    assert.are.same({ 1, "", "curio: bad monitor address 'no:where' (host:port, port or a path)\n" },
                    { status, stdout, stderr })
    status, stdout, stderr = util.sh("CURIO_MONITOR=no:where " .. util.bin .. " -m -e 'print(1)'")
    assert.are.same({ 1, "", "curio: CURIO_MONITOR: bad monitor address 'no:where' (host:port, port or a path)\n" },
                    { status, stdout, stderr })
  end)
end)
