-- The `curio` program's prompt (lua/curio/prompt.lua, core/editline.c):
-- at a terminal, driven through a pseudo-terminal by tests/pty_drive.c
-- (every wait is on output it expects, bounded in all), and with stdin
-- piped.
local util = require "spec.support.util"

local pty_drive = util.bin:gsub("curio$", "pty_drive")
local LIMIT = 30 -- seconds a whole session may take (a hang is a failure)

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- A temporary directory for HOME (history) and the files a session writes.
local function temp_dir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -m 700 " .. path))
  return path
end

local function remove_dir(path)
  os.execute("rm -rf '" .. path .. "'")
end

-- Runs command on a terminal through the steps (pty_drive's script
-- lines), HOME set to home; -> status, the terminal's text, stderr.
local function drive(home, steps, command)
  local script = os.tmpname()
  write_file(script, table.concat(steps, "\n") .. "\n")
  local status, out, err = util.sh(("HOME='%s' TERM=xterm PS1='$ ' %s %d %s %s"):format(
    home, pty_drive, LIMIT, script, command))
  os.remove(script)
  return status, out, err
end

-- The curio program (and args) on a terminal.
local function session(home, steps, args)
  return drive(home, steps, util.bin .. " " .. (args or ""))
end

-- Runs the program with `input` piped to its stdin.
local function piped(input, args)
  local path = os.tmpname()
  write_file(path, input)
  local status, out, err = util.sh(("timeout -s KILL %d %s %s < %s"):format(LIMIT, util.bin, args or "", path))
  os.remove(path)
  return status, out, err
end

describe("the prompt at a terminal", function()
  util.check_leaks(before_each, after_each)
  local home
  before_each(function() home = temp_dir() end)
  after_each(function() remove_dir(home) end)

  it("prints a banner, expressions' values, and continues an incomplete statement", function()
    local status, out = session(home, {
      "expect Ctrl-D exits", "expect > ",
      "send 1+1\\r", "expect \\r\\n2\\r\\n> ",
      "send \"a\", nil\\r", "expect a\\tnil\\r\\n> ",
      "send =3*3\\r", "expect 9\\r\\n> ",
      "send for i = 1, 2 do\\r", "expect >> ",
      "send print(i * 10)\\r", "expect >> ",
      "send end\\r", "expect 10\\r\\n20\\r\\n> ",
      "send curio ~= nil\\r", "expect true\\r\\n> ",
      "send ps()\\r", "expect prompt input\\r\\n", "expect line 6: ps()\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
    assert.truthy(out:find("curio %d+%.%d+%.%d+"))
  end)

  it("prints an error and a timeout with their traceback and goes on", function()
    local status, out = session(home, {
      "expect > ",
      "send error('bo'..'om')\\r", "expect stdin:1: boom\\r\\nstack traceback:", "expect > ",
      "send curio.timeout_after(0.01, curio.sleep, 10)\\r", "expect TaskTimeout", "expect > ",
      "send error(setmetatable({}, {}))\\r", "expect (error object is a table value)", "expect > ",
      "send x = \\r", "expect >> ", "send )\\r", "expect unexpected symbol", "expect > ",
      "send 6*7\\r", "expect 42\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
    assert.truthy(out:find("stdin:1: in main chunk", 1, true), out)
  end)

  it("cancels the running line on Ctrl-C, and the prompt answers after", function()
    local status, out = session(home, {
      "expect > ",
      "send print('sle'..'eping') curio.sleep(100)\\r", "expect sleeping\\r\\n",
      "send \\x03", "expect KeyboardInterrupt: the line was cancelled", "expect > ",
      "send 1+2\\r", "expect 3\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
    assert.truthy(out:find("in function 'curio[.%a]*sleep'"), out)
  end)

  it("leaves a line that holds its cancellation back running on a second Ctrl-C", function()
    local status, out = session(home, {
      "expect > ",
      "send curio.disable_cancellation(function() print('hol'..'ding') curio.sleep(100) end)\\r",
      "expect holding\\r\\n",
      "send \\x03", "expect Ctrl-C again",
      "send \\x03", "expect goes on as task", "expect > ",
      "send 1+2\\r", "expect 3\\r\\n> ",
      "send os.exit(0)\\r",
    })
    assert.are.equal(0, status, out)
  end)

  it("drops the line being typed on Ctrl-C, and a statement it continued", function()
    local status, out = session(home, {
      "expect > ",
      "send 1 +", "expect 1 +", "send \\x03", "expect ^C\\r\\n> ",
      "send 2\\r", "expect 2\\r\\n> ",
      "send for i = 1, 2 do\\r", "expect >> ", "send \\x03", "expect ^C\\r\\n> ",
      "send 5\\r", "expect 5\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("recalls history with the Up arrow, within a session and in the next one", function()
    local status, out = session(home, {
      "expect > ",
      "send 40+2\\r", "expect 42\\r\\n> ",
      "send 'other'\\r", "expect other\\r\\n> ",
      "send \\e[A\\e[A\\r", "expect 42\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
    assert.truthy(read_file(home .. "/.curio_history"):find("40+2", 1, true))
    status, out = session(home, {
      "expect > ",
      "send \\e[A\\e[A\\e[A\\r", "expect 42\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("works without history when HOME cannot hold it", function()
    local status, out = session("/nonexistent/home", {
      "expect > ", "send 40+2\\r", "expect 42\\r\\n> ", "send \\e[A\\r", "expect 42\\r\\n> ", "send \\x04",
    })
    assert.are.equal(0, status, out)
    assert.falsy(out:find("curio:", 1, true), out)
  end)

  it("lets a spawned server answer a client while the prompt waits", function()
    local client = home .. "/client.lua"
    write_file(client, [[
      local curio = require "curio"
      curio.run(function()
        local s = curio.open_connection("127.0.0.1", tonumber(arg[1]))
        s:sendall("ping\n")
        print("client got " .. s:as_stream():readline())
        s:close()
      end)]])
    local status, out = session(home, {
      "expect > ",
      "send s = curio.tcp_server_socket('127.0.0.1', 0)\\r", "expect > ",
      "send t = curio.spawn(curio.run_server, s, function(c) local line = c:as_stream():readline() "
        .. "c:sendall(line:upper()) c:close() end)\\r",
      "expect > ",
      ("send os.execute(\"%s %s %s \" .. s:getsockname()[2] .. \" &\")\\r"):format(util.env:gsub('"', '\\"'),
        util.lua, client),
      "expect true", "expect > ",
      "expect client got PING",
      "send 'still here'\\r", "expect still here\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("on Ctrl-D cancels the tasks left, runs their cleanup and exits 0", function()
    local done = home .. "/cleaned"
    local status, out = session(home, {
      "expect > ",
      ("send curio.spawn(function() local f <close> = setmetatable({}, {__close = function() "
        .. "io.open('%s', 'w'):write('cleaned'):close() end}) curio.sleep(100) end)\\r"):format(done),
      "expect Task(id=", "expect > ", -- (the line's own "<close> " is no prompt)
      "send \\x04",
    })
    assert.are.equal(0, status, out)
    assert.are.equal("cleaned", read_file(done))
  end)

  it("ends on SIGHUP when the terminal goes away, as programs at a terminal do", function()
    local status = session(home, { "expect > ", "send 1 +", "expect 1 +", "hangup" })
    assert.are.equal(128 + 1, status)
  end)

  it("reports a blocking call where Lua cannot yield as an error of that line", function()
    local status, out = session(home, {
      "expect > ",
      "send table.sort({3, 2, 1}, function(a, b) curio.sleep(0) return a < b end)\\r",
      "expect yield", "expect > ",
      "send 1+1\\r", "expect 2\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("lets a line read stdin, and refuses to close it", function()
    local status, out = session(home, {
      "expect > ",
      "send print('rea'..'ding') return io.read()\\r", "expect reading\\r\\n",
      "send typed text\\r", "expect typed text\\r\\ntyped text\\r\\n> ",
      "send io.stdin:close()\\r", "expect cannot close standard file", "expect > ",
      "send 1+1\\r", "expect 2\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("takes a huge pasted line", function()
    local status, out = session(home, {
      "expect > ",
      "send x = '" .. ("a"):rep(100000) .. "'\\r", "expect '\\r\\n> ",
      "send #x\\r", "expect 100000\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("runs the statements of a pasted text one by one", function()
    local status, out = session(home, {
      "expect > ",
      "send 1\\r2\\rfor i = 1, 2 do\\rprint(i * 100)\\rend\\r'last'\\r",
      "expect \\r\\n1\\r\\n", "expect \\r\\n2\\r\\n", "expect \\r\\n100\\r\\n200\\r\\n",
      "expect \\r\\nlast\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("survives binary garbage", function()
    local status, out = session(home, {
      "expect > ",
      "send \\x01\\x02\\xff\\xfe\\xc3(\\x7f\\x1bOZ\\x00zz\\r", "send \\x03", "expect ^C\\r\\n> ",
      "send \\x1bLua\\r", "send \\x03", "expect ^C\\r\\n> ",
      "send 1+1\\r", "expect 2\\r\\n> ",
      "send \\x04",
    })
    assert.are.equal(0, status, out)
  end)

  it("exits with os.exit's status, the history kept", function()
    local status = session(home, { "expect > ", "send os.exit(3)\\r" })
    assert.are.equal(3, status)
    assert.truthy(read_file(home .. "/.curio_history"):find("os.exit(3)", 1, true))
  end)

  it("gives the line being typed back after Ctrl-Z and fg, still edited", function()
    local status, out = drive(home, {
      "expect $ ", "send " .. util.bin .. "\\r", "expect > ",
      "send 1+", "expect 1+", "send \\x1a", "expect Stopped", "expect $ ",
      "send fg\\r", "expect > 1+",
      "send 1\\r", "expect 2\\r\\n> ",
      "send \\x04", "expect $ ", "send exit\\r",
    }, "bash --norc -i")
    assert.are.equal(0, status, out)
  end)

  it("exits from a line that closes the Lua state (os.exit(0, true))", function()
    local status, out = session(home, { "expect > ", "send os.exit(0, true)\\r" })
    assert.are.equal(0, status, out)
  end)

  it("ends with status 143 on SIGTERM", function()
    local status, out = session(home, { "expect > ", "send os.execute('kill -TERM $PPID')\\r" })
    assert.are.equal(143, status)
    assert.truthy(out:find("terminated"), out)
  end)
end)

describe("the prompt on piped stdin", function()
  util.check_leaks(before_each, after_each)

  it("prints values without prompt or banner, statements continued", function()
    local status, out, err = piped("1+1\n\"a\", nil\n=3*3\nfor i = 1, 2 do\nprint(i)\nend\nreturn 4, 5\n")
    assert.are.equal(0, status, err)
    assert.are.equal("2\na\tnil\n9\n1\n2\n4\t5\n", out)
    assert.are.equal("", err)
  end)

  it("runs a last line without its newline, and no empty line more", function()
    local status, out, err = piped("print(1)\n\nprint(2)")
    assert.are.equal(0, status, err)
    assert.are.equal("1\n2\n", out)
  end)

  it("runs each line as a task while tasks spawned before go on", function()
    local status, out, err = piped(table.concat({
      "e = curio.Event()",
      "t = curio.spawn(function() e:wait() print('woken') end)",
      "e:set() curio.sleep(0)",
      "print(t.terminated)",
    }, "\n"))
    assert.are.equal(0, status, err)
    assert.are.equal("woken\ntrue\n", out)
  end)

  it("ends with status 1 at the first error, the statements before it run", function()
    local status, out, err = piped("print('first')\nerror('bo' .. 'om')\nprint('never')\n")
    assert.are.equal(1, status)
    assert.are.equal("first\n", out)
    assert.truthy(err:find("stdin:1: boom\nstack traceback:\n", 1, true), err)
    assert.truthy(err:find("stdin:1: in main chunk", 1, true), err)
  end)

  it("ends with status 1 on a timeout, a syntax error, or an incomplete statement at the end", function()
    local status, _, err = piped("curio.timeout_after(0.01, curio.sleep, 10)\n")
    assert.are.equal(1, status)
    assert.truthy(err:find("TaskTimeout"), err)
    status, _, err = piped("x = = 1\n")
    assert.are.equal(1, status)
    assert.truthy(err:find("unexpected symbol"), err)
    status, _, err = piped("for i = 1, 2 do\n")
    assert.are.equal(1, status)
    assert.truthy(err:find("<eof>"), err)
  end)

  it("takes a huge line and binary garbage", function()
    local status, out, err = piped("x = '" .. ("a"):rep(3000000) .. "'\n#x\n")
    assert.are.equal(0, status, err)
    assert.are.equal("3000000\n", out)
    status, out, err = piped("\27Lua\0\1\2\255\n")
    assert.are.equal(1, status, out)
    assert.truthy(err:find("curio: "), err)
  end)

  it("has ps() and where(id): the monitor's listing and a task's traceback", function()
    local status, out, err = piped(table.concat({
      "t = curio.spawn(curio.sleep, 100)",
      "t.name = 'napper'",
      "curio.sleep(0)",
      "ps()",
      "where(t.id)",
      "where(-1)",
    }, "\n"))
    assert.are.equal(1, status, err)
    assert.truthy(out:find("\n%s*%d+%s+WAITING%s+sleep%s+[%d.]+%s+%d+%s+napper\n"), out)
    assert.truthy(out:find("\n%s*%d+%s+RUNNING.-line 4: ps%(%)\n"), out)
    assert.truthy(out:find("\n%s*%d+%s+WAITING.-prompt\n"), out)
    assert.truthy(out:find("task %d+ %(napper%):\nstack traceback:\n[^\n]*sleep"), out)
    assert.truthy(err:find("CurioError: where: no task with id %-1"), err)
  end)

  it("reads after -e and -i", function()
    local status, out, err = piped("x * 2\n", "-e 'x = 21' -i")
    assert.are.equal(0, status, err)
    assert.are.equal("42\n", out)
  end)
end)
