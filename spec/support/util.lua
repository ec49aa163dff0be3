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
-- environment, sends it SIGINT once it has created that file (scripts do
-- it when they are inside the kernel: util.ready_code), and waits for it.
function util.interrupt(command)
  local ready = os.tmpname()
  os.remove(ready)
  local status, stdout, stderr = util.sh(("READY=%s %s & pid=$!; i=0; " ..
    "while [ ! -e %s ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; " ..
    "sleep 0.05; kill -INT $pid; wait $pid"):format(ready, command, ready))
  os.remove(ready)
  return status, stdout, stderr
end

-- Lua code that creates the READY file of util.interrupt.
util.ready_code = "local r = os.getenv('READY') if r then io.open(r, 'w'):close() end"

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
