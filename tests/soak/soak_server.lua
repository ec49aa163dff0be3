-- The soak's server (tests/soak/soak.sh runs it; make soak): one curio
-- kernel serving, on 127.0.0.1 and ports the system picks,
--   echo   examples/echo_stream_server.lua, as it is
--   http   examples/http_server.lua, as it is
--   tls    bench/tls/echo_server.lua, as it is, on CERTFILE and KEYFILE
--          (the three with their socket buffers fixed: BUFFER_BYTES)
--   raise  an echo server whose handler raises when a connection's first
--          six bytes are the marker "RAISE!" (the client marks one in ten)
--   control  the load generator's line commands (below)
-- and, from "start S" on, the server-side faults, on a fixed seed:
--   - run_in_process calls whose worker is killed with SIGKILL mid-call: the
--     caller must get BrokenWorkerError, and the next call must succeed;
--   - tasks blocked in run_in_thread, some cancelled at random: a cancelled
--     one must end cancelled, the others with their own result;
--   - once, the soft descriptor limit lowered (prlimit) below the count of
--     descriptors open for a few seconds, so that accept meets EMFILE; the
--     servers must go on and accept again after.
--   lua5.4 tests/soak/soak_server.lua CERTFILE KEYFILE TMPDIR [SEED]
-- Once every server listens and the worker pools are full it prints one
-- line "soak-server pid=... echo=PORT http=PORT tls=PORT raise=PORT
-- control=PORT". Control commands, one a line, each answered by
-- name=value lines and "end": "ping", "start S" (the faults, for S seconds),
-- "finish" (waits for them; their counts), "quit" (the kernel ends).
local curio = require "curio"
local subprocess = curio.subprocess

local certfile, keyfile, tmpdir = arg[1], arg[2], arg[3]
local seed = math.tointeger(tonumber(arg[4] or 1))
if not (certfile and keyfile and tmpdir and seed) then
  io.stderr:write("usage: lua5.4 tests/soak/soak_server.lua CERTFILE KEYFILE TMPDIR [SEED]\n")
  os.exit(2)
end
math.randomseed(seed)

local THREADS, PROCESSES = 8, 2
-- The servers' socket buffers, fixed: the kernel's autotuning would let
-- each connection that never reads park up to 36 MB in the kernel
-- (tcp_rmem and tcp_wmem's maxima here), which hides what the server
-- itself holds and loads the machine; with them fixed, what such a
-- connection can send before the server's writes wait is small and known.
local BUFFER_BYTES = 65536
local stats = {
  raise_handlers = 0, raised = 0, echo_connections = 0,
  proc_kills = 0, proc_broken = 0, proc_calls = 0,
  thread_cancels = 0, thread_calls = 0,
  emfile_windows = 0, fault_errors = 0,
  emfile_from_ms = 0, emfile_to_ms = 0, -- the window, from the faults' start
}
local first_fault_error

local function fault_error(what)
  stats.fault_errors = stats.fault_errors + 1
  first_fault_error = first_fault_error or what
  io.stderr:write("soak: fault task: ", tostring(what), "\n")
end

-- Runs an example's program as a task of this kernel: its curio.run runs
-- its main function here, its tcp_server (the TLS echo server's way) says
-- the port it got, and so does what it prints as it starts.
local function listener(host, port, opts)
  local sock = curio.tcp_server_socket(host, port, opts)
  sock:setsockopt("SO_RCVBUF", BUFFER_BYTES) -- (the connections it accepts inherit them)
  sock:setsockopt("SO_SNDBUF", BUFFER_BYTES)
  return sock
end

local function serve_example(path, args, on_port, on_line)
  local example_curio = setmetatable({
    run = function(fn, ...) return fn(...) end,
    tcp_server_socket = listener,
    tcp_server = function(host, port, handler, opts)
      local sock = listener(host, port)
      on_port(sock:getsockname().port)
      return curio.run_server(sock, handler, opts)
    end,
  }, { __index = curio })
  local env = setmetatable({
    arg = args,
    require = function(name)
      if name == "curio" then return example_curio end
      return require(name)
    end,
    print = function(...)
      local parts = table.pack(...)
      for i = 1, parts.n do parts[i] = tostring(parts[i]) end
      local line = table.concat(parts, "\t", 1, parts.n)
      local port = line:match("listening on .*:(%d+)$")
      if port then on_port(tonumber(port)) elseif on_line then on_line(line) end
    end,
  }, { __index = _G })
  return curio.spawn(assert(loadfile(path, "t", env)))
end

-- The raise server's handler: echo, unless the first bytes are the marker.
local function raise_handler(client)
  stats.raise_handlers = stats.raise_handlers + 1
  local s = client:as_stream()
  local ok, head = pcall(s.read_exactly, s, 6)
  if not ok then -- a client that closed before its first bytes (as the run ends)
    if curio.IncompleteRead:matches(head) then return end
    error(head, 0)
  end
  if head == "RAISE!" then
    stats.raised = stats.raised + 1
    error("soak: the handler raised on its marker")
  end
  s:write(head)
  while true do
    local data = s:read(65536)
    if data == "" then return end
    s:write(data)
  end
end

local function my_pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("n")
  f:close()
  return pid
end

-- The soft and hard descriptor limits, from /proc/self/limits.
local function nofile_limits()
  local f = assert(io.open("/proc/self/limits"))
  local text = f:read("a")
  f:close()
  local soft, hard = text:match("Max open files%s+(%S+)%s+(%S+)")
  return soft, hard
end

-- Fills both pools, so that the counts of threads and descriptors the
-- soak compares are those of full pools, before and after.
local function fill_pools()
  local ev = curio.UniversalEvent()
  local waiting = {}
  for i = 1, THREADS do
    waiting[i] = curio.spawn(curio.run_in_thread, function(e) e:wait() return true end, ev)
  end
  local busy = {}
  for i = 1, PROCESSES do
    busy[i] = curio.spawn(curio.run_in_process, function()
      local t = os.clock()
      while os.clock() - t < 0.05 do end
      return true
    end)
  end
  curio.sleep(0.05)
  ev:set()
  for _, t in ipairs(waiting) do assert(t:join()) end
  for _, t in ipairs(busy) do assert(t:join()) end
end

-- One call blocked in its worker, killed with SIGKILL (rule: the caller
-- gets BrokenWorkerError), then a call that must succeed.
local function kill_a_worker(n)
  local path = ("%s/worker-%d"):format(tmpdir, n)
  local call = curio.spawn(curio.run_in_process, function(file)
    local stat = assert(io.open("/proc/self/stat"))
    local pid = stat:read("n")
    stat:close()
    local f = assert(io.open(file .. ".tmp", "w"))
    f:write(pid)
    f:close()
    assert(os.rename(file .. ".tmp", file))
    local t = os.clock()
    while os.clock() - t < 30 do end -- until killed
  end, path)
  local pid
  for _ = 1, 2000 do
    local f = io.open(path)
    if f then pid = f:read("n") f:close() end
    if pid then break end
    curio.sleep(0.005)
  end
  if not pid then
    call:cancel()
    return fault_error("a worker never said its pid")
  end
  os.remove(path)
  subprocess.run({ "kill", "-KILL", tostring(pid) })
  stats.proc_kills = stats.proc_kills + 1
  local ok, err = pcall(call.join, call)
  if not ok and curio.TaskError:matches(err) and curio.BrokenWorkerError:matches(err.cause) then
    stats.proc_broken = stats.proc_broken + 1
  else
    fault_error("a killed worker's call ended with " .. tostring(ok and "a result" or err))
  end
  local ok2, sum = pcall(curio.run_in_process, function(a, b) return a + b end, 20, 22)
  if ok2 and sum == 42 then stats.proc_calls = stats.proc_calls + 1
  else fault_error("a call after a kill: " .. tostring(sum)) end
end

-- Tasks blocked in run_in_thread, a random half of them cancelled.
local function cancel_thread_calls()
  local ev = curio.UniversalEvent()
  local tasks, cancelled = {}, {}
  for i = 1, math.random(1, 4) do
    tasks[i] = curio.spawn(curio.run_in_thread, function(e, n) e:wait() return n end, ev, i)
  end
  curio.sleep(0.01)
  for i, t in ipairs(tasks) do
    if math.random() < 0.5 then
      cancelled[i] = true
      t:cancel()
    end
  end
  ev:set()
  for i, t in ipairs(tasks) do
    if cancelled[i] then
      t:wait()
      if t.cancelled and curio.CancelledError:matches(t.exception) then
        stats.thread_cancels = stats.thread_cancels + 1
      else
        fault_error("a cancelled thread call ended with " .. tostring(t.exception))
      end
    else
      local ok, n = pcall(t.join, t)
      if ok and n == i then stats.thread_calls = stats.thread_calls + 1
      else fault_error("a thread call: " .. tostring(n)) end
    end
  end
end

-- The descriptor limit lowered below what is open, for `window` seconds.
-- One shell lowers it, sleeps and restores it: spawning anything during
-- the window would itself fail. The lock keeps worker kills (which spawn
-- kill, and a new worker) out of the window.
local function emfile_window(window, lock, t0)
  local soft, hard = nofile_limits()
  lock:acquire()
  stats.emfile_from_ms = math.floor((curio.clock() - t0) * 1000)
  local ok, err = pcall(function()
    local p = subprocess.Popen({ "sh", "-c",
      'prlimit --pid "$1" --nofile="$2":"$3" && sleep "$4" && prlimit --pid "$1" --nofile="$5":"$3"',
      "sh", tostring(my_pid()), "32", hard, ("%.2f"):format(window), soft })
    local status = p:wait()
    if status ~= 0 then error("prlimit: exit status " .. tostring(status)) end
  end)
  stats.emfile_to_ms = math.floor((curio.clock() - t0) * 1000)
  lock:release()
  if ok then stats.emfile_windows = stats.emfile_windows + 1 else fault_error(err) end
end

local function faults(seconds)
  local lock = curio.Lock()
  local t0 = curio.clock()
  local stop_at = t0 + seconds * 0.9
  local procs = curio.spawn(function()
    local n = 0
    while curio.clock() < stop_at do
      n = n + 1
      lock:acquire()
      local ok, err = pcall(kill_a_worker, n)
      lock:release()
      if not ok then fault_error(err) end
      curio.sleep(math.max(0.2, seconds / 30))
    end
  end)
  local threads = curio.spawn(function()
    while curio.clock() < stop_at do
      local ok, err = pcall(cancel_thread_calls)
      if not ok then fault_error(err) end
      curio.sleep(math.max(0.05, seconds / 200))
    end
  end)
  curio.sleep(seconds * 0.4)
  emfile_window(math.max(1, math.min(5, seconds * 0.05)), lock, t0)
  procs:join()
  threads:join()
  fill_pools()
end

local function stats_text()
  local names = {}
  for name in pairs(stats) do names[#names + 1] = name end
  table.sort(names)
  local lines = {}
  for _, name in ipairs(names) do lines[#lines + 1] = ("%s=%d\n"):format(name, stats[name]) end
  if first_fault_error then
    lines[#lines + 1] = "first_fault_error=" .. tostring(first_fault_error):gsub("\n", " ") .. "\n"
  end
  return table.concat(lines)
end

local function main()
  local ports, quit, fault_task = {}, curio.Event(), nil
  local listening = { echo = curio.Event(), http = curio.Event(), tls = curio.Event() }
  local function on_port(name)
    return function(port)
      ports[name] = port
      listening[name]:set()
    end
  end
  local host = "127.0.0.1"
  serve_example("examples/echo_stream_server.lua", { [0] = "echo_stream_server.lua", host, "0" },
    on_port("echo"), function(line)
      if line:match("^Connection from") then stats.echo_connections = stats.echo_connections + 1 end
    end)
  serve_example("examples/http_server.lua", { [0] = "http_server.lua", host, "0" }, on_port("http"))
  serve_example("bench/tls/echo_server.lua", { [0] = "echo_server.lua", host, "0", certfile, keyfile },
    on_port("tls"))
  local raise_sock = curio.tcp_server_socket(host, 0)
  ports.raise = raise_sock:getsockname().port
  curio.spawn(curio.run_server, raise_sock, raise_handler)

  local control_sock = curio.tcp_server_socket(host, 0)
  ports.control = control_sock:getsockname().port
  curio.spawn(curio.run_server, control_sock, function(client)
    local s = client:as_stream()
    while true do
      local line = s:readline()
      if line == "" then return end
      local command, value = line:match("^(%a+)%s*(%S*)")
      if command == "start" and not fault_task then
        fault_task = curio.spawn(faults, tonumber(value))
        s:write("end\n")
      elseif command == "finish" and fault_task then
        local ok, err = pcall(fault_task.join, fault_task)
        if not ok then fault_error(err.cause or err) end
        s:write(stats_text() .. "end\n")
      elseif command == "ping" then
        s:write("end\n")
      elseif command == "quit" then
        s:write("end\n")
        quit:set()
        return
      else
        s:write("error=unknown command\nend\n")
      end
    end
  end)

  for _, event in pairs(listening) do event:wait() end
  fill_pools()
  print(("soak-server pid=%d echo=%d http=%d tls=%d raise=%d control=%d"):format(
    my_pid(), ports.echo, ports.http, ports.tls, ports.raise, ports.control))
  io.stdout:flush()
  quit:wait()
end

local kernel <close> = curio.Kernel({ threads = THREADS, processes = PROCESSES })
kernel:run(main)
