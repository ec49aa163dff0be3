-- Helpers shared by the specs: running the in-tree build in a subprocess
-- and checking that a spec leaked no file descriptor and no task.
local util = {}

util.lua = "lua5.4"
util.bin = os.getenv("CURIO_BIN") or "build/bin/curio"
util.env = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./"
  .. (os.getenv("CURIO_BUILD") or (util.bin:match("^(.-)/bin/curio$") or "build")) .. "/?.so;;'"

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local data = f:read("a")
  f:close()
  return data
end

-- Runs a shell command; returns exit status, stdout, stderr.
function util.sh(command)
  local out, err = os.tmpname(), os.tmpname()
  local ok, how, code = os.execute(("(%s) >%s 2>%s"):format(command, out, err))
  local stdout, stderr = read_all(out), read_all(err)
  os.remove(out)
  os.remove(err)
  if how == "signal" then code = 128 + code end
  return ok and 0 or code, stdout, stderr
end

-- Runs Lua code with lua5.4 and the in-tree build; with `seconds`, the
-- child is killed after that long (status 137: it hung).
function util.lua_code(code, seconds)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local limit = seconds and ("timeout -s KILL %g "):format(seconds) or ""
  local status, stdout, stderr = util.sh(util.env .. " " .. limit .. util.lua .. " " .. path)
  os.remove(path)
  return status, stdout, stderr
end

-- Runs a shell command in the background with READY=<path> in its
-- environment, sends it SIGINT once it has opened and closed that path
-- (scripts do it when they are inside the kernel: util.ready_code), and
-- waits for it. The path is a FIFO: the shell's read of it ends when the
-- child closes it, an event rather than a pause (bounded at 20 s, should
-- the child die before it gets there).
-- `signal` (default "INT") is the name kill takes.
function util.interrupt(command, signal)
  local ready = os.tmpname()
  os.remove(ready)
  local status, stdout, stderr = util.sh(("mkfifo %s && { READY=%s %s & pid=$!; " ..
    "timeout 20 cat %s >/dev/null; kill -%s $pid; wait $pid; }"):format(ready, ready, command, ready,
    signal or "INT"))
  os.remove(ready)
  return status, stdout, stderr
end

-- Lua code that opens and closes the READY path of util.interrupt.
util.ready_code = "local r = os.getenv('READY') if r then io.open(r, 'w'):close() end"

-- Starts the server example `script` (examples/x.lua) in a child under
-- spec/support/serve.lua, with `ulimit -n fd_limit` when given; must run
-- in a task. Returns once the child listens (the port is the first line of
-- its stdout: no free-port guess, no polling) a child table: port, pid,
-- proc (the Popen), lines (its further stdout lines, kept as they come).
-- util.stop_server must follow, whatever happens.
function util.start_server(script, fd_limit)
  local curio = require "curio"
  local sub = curio.subprocess
  local command = ("%sexec env %s %s spec/support/serve.lua %s 127.0.0.1"):format(
    fd_limit and ("ulimit -n %d; "):format(fd_limit) or "", util.env, util.lua, script)
  local p = sub.Popen({ "sh", "-c", command }, { stdout = sub.PIPE, stderr = sub.PIPE })
  local child = { proc = p, pid = p.pid, lines = {}, errors = {}, more = curio.Event() }
  child.err_task = curio.spawn(function()
    while true do
      local data = p.stderr:read(65536)
      if data == "" then break end
      child.errors[#child.errors + 1] = data
    end
  end)
  local first = curio.ignore_after(10, p.stdout.readline, p.stdout)
  child.port = math.tointeger(tonumber(first and first:match("^(%d+)\n$")))
  if not child.port then
    local _, _, stderr = util.stop_server(child)
    error(("%s did not start: %s"):format(script, stderr), 2)
  end
  child.out_task = util.collect_lines(p.stdout, child)
  return child
end

-- Spawns a task that appends each line of stream to into.lines and sets
-- into.more (an Event, replaced at each line) so that a waiter learns of
-- it; at the end into.eof is true. Returns the task.
function util.collect_lines(stream, into)
  local curio = require "curio"
  into.lines, into.more = into.lines or {}, into.more or curio.Event()
  return curio.spawn(function()
    while true do
      local line = stream:readline()
      if line == "" then break end
      into.lines[#into.lines + 1] = line
      local more = into.more
      into.more = curio.Event()
      more:set()
    end
    into.eof = true
    into.more:set()
  end)
end

-- Waits until pred(child.lines) holds (true), or until the child's stdout
-- ends first (false).
function util.server_output(child, pred)
  while not pred(child.lines) do
    if child.eof then return false end
    child.more:wait()
  end
  return true
end

-- Sends SIGTERM to a child of util.start_server that still runs, waits
-- (bounded) for its end and its output, closes its pipes; returns how it
-- ended ("exit" or "signal"), the code, and its stderr.
function util.stop_server(child)
  local curio = require "curio"
  local p = child.proc
  if p:poll() == nil then p:terminate() end
  local rc = curio.timeout_after(10, p.wait, p)
  if child.out_task then curio.timeout_after(10, child.out_task.join, child.out_task) end
  curio.timeout_after(10, child.err_task.join, child.err_task)
  p.stdout:close()
  p.stderr:close()
  return rc < 0 and "signal" or "exit", math.abs(rc), table.concat(child.errors)
end

-- Resident memory of this process in bytes (/proc/self/statm).
function util.resident_bytes()
  local f = assert(io.open("/proc/self/statm"))
  local _, pages = f:read("n", "n")
  f:close()
  return pages * 4096
end

-- Number of open file descriptors of this process.
function util.fd_count()
  return require("curio.core").open_fds()
end

function util.fd_list()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  local p = assert(io.popen("ls -l /proc/" .. pid .. "/fd"))
  local text = p:read("a")
  p:close()
  return text
end

-- Tasks that some kernel of this Lua state still holds (spawned, not
-- ended, kernel not closed).
function util.live_tasks()
  return require("curio.core").live_tasks()
end

-- Installs before_each/after_each that fail a spec leaking descriptors or
-- tasks (a task left alive in a kernel that was never closed).
function util.check_leaks(before_each, after_each)
  local fds, tasks
  before_each(function()
    collectgarbage()
    fds, tasks = util.fd_count(), util.live_tasks()
  end)
  after_each(function()
    collectgarbage()
    local now_fds, now_tasks = util.fd_count(), util.live_tasks()
    if now_tasks > tasks then
      error(("tasks leaked: %d live before, %d after"):format(tasks, now_tasks), 0)
    end
    if now_fds > fds then
      error(("file descriptors leaked: %d before, %d after\n%s"):format(fds, now_fds, util.fd_list()), 0)
    end
  end)
end

-- Runs fn(record) as a main task; returns the lines record(...) made (its
-- arguments through tostring, joined by spaces).
function util.traced(fn)
  local trace = {}
  local function record(...)
    local parts = table.pack(...)
    for i = 1, parts.n do parts[i] = tostring(parts[i]) end
    trace[#trace + 1] = table.concat(parts, " ")
  end
  require("curio").run(fn, record)
  return trace
end

-- Calls fn(...), which must fail; returns its error.
function util.catch(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error", 2) end
  return err
end

function util.lines(text)
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return lines
end

return util
