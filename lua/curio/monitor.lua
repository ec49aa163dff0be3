-- curio.monitor: the task monitor (curio's ps, where and cancel), as a
-- console that a running kernel serves on a socket, as functions for the
-- prompt, and as the line client of `curio --monitor`. Loaded on first use
-- (curio.monitor): a program that never starts one pays nothing.
--
-- Rules:
--  1. A monitor is a daemon task of the kernel that started it, named
--     "monitor", serving each client in a task named "monitor client
--     <address>"; cancelling the server (close, or the kernel's close)
--     cancels the clients and closes every socket, and removes a unix
--     socket's file.
--  2. The protocol is plain lines: a command per line; each reply ends
--     with the prompt "curio > ". A bad command, a bad task id or a line
--     over MAX_LINE bytes gets one line starting "error: " and the session
--     goes on. A client that disconnects, even mid-command or while its
--     reply is sent, ends its own session only: the errors of its socket
--     are not reported.
--  3. What ps shows comes from the kernel (core.task_list): a task's
--     state, the name of the kind of wait it is in (what a wing called
--     it: "sleep", "recv", "Queue.get", "run_in_thread"...), how long it
--     has been in that state and how many times it ran.
--  4. `cancel ID` waits until the task has ended (its cleanup ran) before
--     it replies "cancelled"; the monitor's own tasks are refused.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
local network = require "curio.network"

local CurioError, OSError = errors.CurioError, errors.OSError

local monitor = {}

monitor.HOST = "127.0.0.1"
monitor.PORT = 48802
local MAX_LINE = 1024
local PROMPT = "curio > "
local SERVER_NAME, CLIENT_NAME = "monitor", "monitor client"

---------------------------------------------------------------- ps, where

-- A name or wait shown on one line: control bytes escaped, long ones cut.
local function one_line(text, width)
  text = tostring(text):gsub("[%c\127-\255]", function(c) return ("\\%d"):format(c:byte()) end)
  if width and #text > width then text = text:sub(1, width - 3) .. "..." end
  return text
end

local function live_tasks()
  local list = core.task_list()
  table.sort(list, function(a, b) return a.id < b.id end)
  return list
end

local function is_own(task)
  local name = task.name
  return name == SERVER_NAME
    or (type(name) == "string" and name:sub(1, #CLIENT_NAME + 1) == CLIENT_NAME .. " ")
end

-- monitor.ps() -> the listing of every live task of the running kernel.
function monitor.ps()
  check.task("ps")
  local lines = { ("%5s  %-8s %-22s %10s %9s  %s"):format("ID", "STATE", "WAITS IN", "FOR (s)",
                                                           "CYCLES", "NAME") }
  for _, r in ipairs(live_tasks()) do
    local task = r.task
    local name = one_line(task.name)
    if is_own(task) then name = name .. " (this monitor)" end
    lines[#lines + 1] = ("%5d  %-8s %-22s %10.3f %9d  %s"):format(r.id, r.state,
      one_line(r.wait or "-", 22), r.seconds, r.cycles, name)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- The live task of the running kernel whose id is `id`, or nil.
local function find(id)
  for _, r in ipairs(core.task_list()) do
    if r.id == id then return r.task end
  end
  return nil
end

-- An id from the user: an integer (a string of digits at the console).
local function to_id(value)
  if type(value) == "string" then value = value:match("^%s*(%d+)%s*$") and tonumber(value) end
  return math.type(value) == "integer" and value or nil
end

-- monitor.where(id) -> the traceback of the task `id` (where it waits);
-- CurioError when the running kernel has no such task.
function monitor.where(id)
  if math.type(id) ~= "integer" then
    check.arg_error(1, "where", "task id (integer) expected, got " .. check.shown(id))
  end
  check.task("where")
  local task = find(id)
  if task == nil then error(CurioError(("where: no task with id %d"):format(id)), 2) end
  return ("task %d (%s):\n%s\n"):format(id, one_line(task.name), task:traceback())
end

---------------------------------------------------------------- the console

local HELP = [[
commands:
  ps          list every task: id, state, what it waits in, for how long, how many times it ran, name
  where ID    where task ID is (its traceback)
  cancel ID   cancel task ID and wait until it has ended
  help        this list
  quit        end this session]]

-- Each command: (argument) -> reply text.
local commands = {}

function commands.ps(arg)
  if arg ~= "" then return "error: ps takes no argument" end
  return monitor.ps():sub(1, -2)
end

local function task_arg(command, arg)
  local id = to_id(arg)
  if id == nil then
    return nil, ("error: %s needs a task id (a number), got '%s'"):format(command, one_line(arg, 40))
  end
  local task = find(id)
  if task == nil then return nil, ("error: no task %d"):format(id) end
  return task, id
end

function commands.where(arg)
  local task, id = task_arg("where", arg)
  if task == nil then return id end
  return ("task %d (%s):\n%s"):format(id, one_line(task.name), task:traceback())
end

function commands.cancel(arg)
  local task, id = task_arg("cancel", arg)
  if task == nil then return id end
  if is_own(task) then return ("error: task %d is this monitor's own"):format(id) end
  task:cancel()
  return ("task %d (%s) cancelled"):format(id, one_line(task.name))
end

function commands.help()
  return HELP
end

-- The reply to one line, and whether the session ends.
local function reply_to(line)
  local word, arg = line:match("^%s*(%S*)%s*(.-)%s*$")
  if word == "" then return nil end
  if word == "quit" or word == "exit" then return "bye", true end
  local command = commands[word]
  if command == nil then return ("error: unknown command '%s' (try help)"):format(one_line(word, 40)) end
  return command(arg)
end

-- The session of one client (rule 2).
local function session(client)
  local stream = client:as_stream()
  client:sendall("curio monitor: ps, where ID, cancel ID, help, quit\n" .. PROMPT)
  while true do
    local line = stream:readline(MAX_LINE)
    if line == "" or line:sub(-1) ~= "\n" and #line < MAX_LINE then return end -- the end
    local reply, done
    if line:sub(-1) ~= "\n" then -- a line too long: the rest of it goes unread
      repeat line = stream:readline(MAX_LINE) until line == "" or line:sub(-1) == "\n"
      if line == "" then return end
      reply = ("error: line longer than %d bytes"):format(MAX_LINE)
    else
      reply, done = reply_to(line)
    end
    client:sendall((reply and reply .. "\n" or "") .. (done and "" or PROMPT))
    if done then return end
  end
end

-- A client's task: its socket's errors end its session quietly (rule 2).
local function serve_client(client, addr)
  core.current_task().name = ("%s %s"):format(CLIENT_NAME,
    type(addr) == "table" and ("%s:%d"):format(addr[1], addr[2]) or "(unix socket)")
  local ok, err = pcall(session, client)
  if not ok and not OSError:matches(err) then error(err, 0) end
end

local Monitor = {}
Monitor.__index = Monitor

-- m:close(): stops the monitor (rule 1) and, called from a task that may
-- block, waits until its sockets are closed; elsewhere (a <close> run
-- after an error, outside the kernel) they close as soon as its tasks run.
-- Idempotent.
function Monitor:close()
  local server = self._server
  if server == nil then return end
  self._server = nil
  server:cancel({ blocking = false })
  local current = core.current_task()
  if current ~= nil and current ~= server then errors.pcall(server.wait, server) end
end
Monitor.__close = Monitor.close

function Monitor:__tostring()
  return ("Monitor(%s%s)"):format(self.address, self._server and "" or ", closed")
end

-- The listening socket for opts: a unix socket's or a TCP one's.
local function listen(opts)
  if opts.path then
    local sock = core.socket("unix", "stream")
    local ok, err = pcall(function()
      sock:bind(opts.path)
      sock:listen(16)
    end)
    if not ok then
      sock:close()
      error(err, 0)
    end
    return sock
  end
  return network.tcp_server_socket(opts.host or monitor.HOST, opts.port or monitor.PORT)
end

-- A value whose <close> removes the file at path.
local function file_remover(path)
  return setmetatable({}, { __close = function() os.remove(path) end })
end

local function check_opts(opts)
  opts = check.options(opts, 1, "monitor", { host = true, port = true, path = true }, 2)
  if opts.path ~= nil then
    check.cstring(opts.path, 1, "monitor", "opts.path string", 2)
    if opts.host ~= nil or opts.port ~= nil then
      check.arg_error(1, "monitor", "opts.path excludes opts.host and opts.port", 2)
    end
  end
  if opts.host ~= nil then check.cstring(opts.host, 1, "monitor", "opts.host string", 2) end
  local port = opts.port
  if port ~= nil and (math.type(port) ~= "integer" or port < 0 or port > 65535) then
    check.arg_error(1, "monitor", "opts.port must be an integer from 0 to 65535, got "
                    .. check.shown(port), 2)
  end
  return opts
end

-- curio.monitor(opts) -> Monitor: starts the console in the running kernel
-- on opts.host (default "127.0.0.1") and opts.port (default 48802; 0: any
-- free port), or on the unix socket opts.path. The Monitor's `address` is
-- where it listens ("host:port", or the path), with `host` and `port` (or
-- `path`) beside it.
function monitor.start(opts)
  opts = check_opts(opts)
  check.task("monitor", 2)
  local sock = listen(opts)
  local m = setmetatable({}, Monitor)
  if opts.path then
    m.path, m.address = opts.path, opts.path
  else
    local addr = sock:getsockname()
    m.host, m.port = addr[1], addr[2]
    m.address = (m.host:find(":", 1, true) and "[%s]:%d" or "%s:%d"):format(m.host, m.port)
  end
  m._server = core.spawn_daemon(function()
    local _ <close> = opts.path and file_remover(opts.path) or nil -- (it made the file)
    network.run_server(sock, serve_client)
  end)
  m._server.name = SERVER_NAME
  return m
end

---------------------------------------------------------------- the client

-- "host:port", "[v6]:port", ":port" or "port" (on 127.0.0.1), a path (it
-- has a "/"), or nil (the default) -> {host, port} or {path = path}.
function monitor.parse_address(text)
  if text == nil or text == "" then return { host = monitor.HOST, port = monitor.PORT } end
  if text:find("/", 1, true) then return { path = text } end
  local host, port = text:match("^%[(.*)%]:(%d+)$")
  if not host then host, port = text:match("^(.-):(%d+)$") end
  if not host then host, port = "", text:match("^(%d+)$") end
  port = port and math.tointeger(tonumber(port))
  if port == nil or port > 65535 then return nil end
  return { host = host ~= "" and host or monitor.HOST, port = port }
end

-- Copies stdin's lines to the socket until stdin ends, then says quit.
local function copy_input(sock)
  io.stdin:setvbuf("no") -- (no read ahead of what wait_fd saw)
  while true do
    core.wait_fd(0, "r")
    local line = io.stdin:read("L")
    if line == nil then break end
    sock:sendall(line)
  end
  sock:sendall("quit\n")
end

-- monitor.client(address) -> exit status: `curio --monitor [address]`, a
-- line client on stdin and stdout to the monitor at address; must run in
-- a task. 1 with a line on stderr when it cannot connect.
function monitor.client(address)
  local where = monitor.parse_address(address)
  if where == nil then
    io.stderr:write(("curio: bad monitor address '%s' (host:port, port or a path)\n"):format(address))
    return 1
  end
  local shown = where.path or ("%s:%d"):format(where.host, where.port)
  local ok, sock = pcall(function()
    if where.path then return network.open_unix_connection(where.path) end
    return network.open_connection(where.host, where.port)
  end)
  if not ok then
    local reason = OSError:matches(sock) and sock.strerror or tostring(sock)
    io.stderr:write(("curio: cannot connect to the monitor at %s: %s\n"):format(shown, reason))
    return 1
  end
  local input = core.spawn(pcall, copy_input, sock)
  local status = 0
  local copied, err = pcall(function()
    while true do
      local data = sock:recv(65536)
      if data == "" then break end
      io.stdout:write(data)
      io.stdout:flush()
    end
  end)
  if not copied and not OSError:matches(err) then status = 1 end
  input:cancel()
  sock:close()
  return status
end

return monitor
