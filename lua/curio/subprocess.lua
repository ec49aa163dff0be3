-- curio.subprocess: Popen, run, check_output (docs/subprocess.md). Spawning
-- and exits are C (core/spawn.c: posix_spawn; core/process.c: a pidfd per
-- child and its exit); pipes are Socket objects over pipe handles
-- (core/socket.c, core/io.c) behind the one Stream.
--
-- Rules:
--  1. A child's exit is one event in C (core/process.c): the kernel it was
--     spawned in (or first waited for in) reaps it as soon as its loop
--     learns of it, waited for or not, and wakes every task in wait() at
--     once; its descriptor (a pidfd) is closed then. A descriptor the user
--     hands as stdin, stdout or stderr is never changed (a non-blocking
--     pipe is handed as a blocking description of its own).
--  2. A task cancelled (or timed out) in wait or communicate kills the
--     child first, unless Popen was given keep = true.
--  3. communicate writes stdin and reads stdout and stderr in tasks of
--     their own, so a child that fills one pipe while we write the other
--     never deadlocks; what was read is kept when it is interrupted
--     (TimeoutExpired.output, .stderr).
--  4. What the parent reads of a child (stdout, stderr = PIPE) is closed
--     as soon as it reaches its end (EofClosing), so that a Popen nobody
--     closes holds no descriptor once its output is read: run and
--     check_output release everything before they return.
--  5. SIGPIPE is ignored in this process once a pipe exists (as Python
--     does; core/socket.c's pipe_object): a child that closes its stdin
--     early gives BrokenPipeError.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
local io_ = require "curio.io"
local time = require "curio.time"
local task = require "curio.task"

local CancelledError, CurioError = errors.CancelledError, errors.CurioError
local spawn = core.spawn
require "curio.network" -- (which gives sockets, and so pipes, their as_stream)
local pipe_object, as_stream = core.pipe_object, core.socket_methods.as_stream

local subprocess = {}

subprocess.PIPE = setmetatable({}, { __name = "subprocess.PIPE", __tostring = function() return "PIPE" end })
subprocess.DEVNULL = setmetatable({}, { __tostring = function() return "DEVNULL" end })
subprocess.STDOUT = setmetatable({}, { __tostring = function() return "STDOUT" end })
local PIPE, DEVNULL, STDOUT = subprocess.PIPE, subprocess.DEVNULL, subprocess.STDOUT

local SubprocessError = CurioError:subclass("SubprocessError")
subprocess.SubprocessError = SubprocessError
subprocess.CalledProcessError = SubprocessError:subclass("CalledProcessError")
subprocess.TimeoutExpired = SubprocessError:subclass("TimeoutExpired")

local SIGKILL, SIGTERM = 9, 15
local ENDS = { "stdin", "stdout", "stderr" }

local popen_opts = { stdin = true, stdout = true, stderr = true, cwd = true, env = true,
                     shell = true, keep = true }

local run_opts = { input = true, capture_output = true, check = true, timeout = true }
for k in pairs(popen_opts) do run_opts[k] = true end

local Popen = {}
function Popen.__index(p, key)
  if key == "returncode" then return p._process.returncode end -- (rule 1: known once reaped)
  return Popen[key]
end
Popen.__name = "curio.subprocess.Popen"

-- Rule 4: the source of a stream of the child's output: the pipe, closed
-- when it reaches its end (reads then give "" again, as at the end).
local EofClosing = {}
EofClosing.__index = EofClosing

function EofClosing:read(n)
  local pipe = self.pipe
  if pipe == nil then return "" end
  local data = pipe:read(n)
  if data == "" then
    self.pipe = nil
    pipe:close()
  end
  return data
end

function EofClosing:close()
  local pipe = self.pipe
  self.pipe = nil
  if pipe then pipe:close() end
end

function EofClosing:fileno()
  if self.pipe == nil then error(CurioError("fileno: the pipe reached its end and is closed"), 3) end
  return self.pipe:fileno()
end

local function describe(value)
  return value == nil and "no value" or type(value)
end

-- The child's descriptor for one of stdin/stdout/stderr (rule: a number,
-- PIPE, DEVNULL, STDOUT for stderr, or anything with fileno()).
local function child_end(p, name, spec, opened)
  if spec == nil then return -1 end
  if spec == PIPE then
    local r, w = core.pipe()
    local mine, theirs = r, w
    if name == "stdin" then mine, theirs = w, r end
    opened[#opened + 1] = theirs
    if name == "stdin" then
      p[name] = as_stream(pipe_object(mine))
    else
      p[name] = io_.Stream(setmetatable({ pipe = pipe_object(mine) }, EofClosing))
    end
    return theirs:fileno()
  end
  if spec == DEVNULL then
    local null = core.devnull()
    opened[#opened + 1] = null
    return null:fileno()
  end
  if spec == STDOUT then return "stdout" end
  if math.type(spec) ~= "integer" then return spec:fileno() end
  return spec -- (left as it is, rule 1)
end

-- Checks opts.stdin/stdout/stderr before anything is opened.
local function check_ends(opts, fname, depth)
  for _, name in ipairs(ENDS) do
    local spec = opts[name]
    if spec ~= nil and spec ~= PIPE and spec ~= DEVNULL then
      if spec == STDOUT then
        if name ~= "stderr" then check.arg_error(2, fname, "STDOUT is only for opts.stderr", depth) end
      elseif not (math.type(spec) == "integer" and spec >= 0) then
        local ok, fd = pcall(function() return spec:fileno() end)
        if not (ok and math.type(fd) == "integer") then
          check.arg_error(2, fname,
            ("opts.%s: PIPE, DEVNULL, a descriptor or an object with fileno() expected"):format(name), depth)
        end
      end
    end
  end
end

local function environment(env, fname, depth)
  if env == nil then return nil end
  if type(env) ~= "table" then check.arg_error(2, fname, "opts.env: table expected", depth) end
  local list = {}
  for k, v in pairs(env) do
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      check.arg_error(2, fname, "opts.env: string names and string values expected", depth)
    end
    if k:find("[=\0]") or tostring(v):find("\0", 1, true) then
      check.arg_error(2, fname, "opts.env: a name holds '=' or a zero byte, or a value a zero byte", depth)
    end
    list[#list + 1] = k .. "=" .. v
  end
  table.sort(list)
  return list
end

-- Opens the child's ends and starts it (popen's, in a pcall: `opened`
-- lists the child's ends, which the caller closes whatever happens).
local function start(p, argv, opts, env, opened, channels, worker)
  local fin = child_end(p, "stdin", opts.stdin, opened)
  local fout = child_end(p, "stdout", opts.stdout, opened)
  local ferr = child_end(p, "stderr", opts.stderr, opened)
  if ferr == "stdout" then ferr = fout == -1 and 1 or fout end
  local fds = { fin, fout, ferr }
  if channels then
    for i, handle in ipairs(channels) do fds[3 + i] = handle:fileno() end
  end
  p._process = core.spawn_process(argv, fds, opts.cwd, env, worker)
end

-- (depth: how many curio frames stand between popen and the user, for
-- error levels: 1 from Popen, 2 from run and check_output)
-- (channels, worker: run_in_process's, workers.lua)
-- (checked: opts were checked by the caller, run)
local function popen(args, opts, fname, depth, channels, worker, checked)
  if not checked then
    opts = check.options(opts, 2, fname, fname == "Popen" and popen_opts or run_opts, depth + 1)
  end
  local argv
  if opts.shell then
    if type(args) ~= "string" then
      check.arg_error(1, fname, "string command expected with opts.shell", depth + 1)
    end
    check.cstring(args, 1, fname, nil, depth + 1)
    argv = { "/bin/sh", "-c", args }
  else
    if type(args) ~= "table" then
      check.arg_error(1, fname, "list of strings expected, got " .. describe(args), depth + 1)
    end
    argv = {}
    for i = 1, #args do
      if type(args[i]) ~= "string" then
        check.arg_error(1, fname, ("argument #%d: string expected, got %s"):format(i, describe(args[i])),
                        depth + 1)
      end
      if args[i]:find("\0", 1, true) then
        check.arg_error(1, fname, ("argument #%d contains a zero byte"):format(i), depth + 1)
      end
      argv[i] = args[i]
    end
    if #argv == 0 then check.arg_error(1, fname, "empty argument list", depth + 1) end
  end
  if opts.cwd ~= nil then check.cstring(opts.cwd, 2, fname, "opts.cwd: string", depth + 1) end
  local env = environment(opts.env, fname, depth + 2)
  check_ends(opts, fname, depth + 2)
  local p = setmetatable({ args = args, _keep = opts.keep == true }, Popen)
  local opened = {}
  local ok, err = pcall(start, p, argv, opts, env, opened, channels, worker)
  for i = 1, #opened do opened[i]:close() end -- the child's ends
  if not ok then
    for _, name in ipairs(ENDS) do
      if p[name] then p[name]:close() end
    end
    error(err, 0) -- (OSError from the spawn: it names Popen)
  end
  p.pid = p._process.pid
  return p
end

-- subprocess.Popen(args, opts) -> a started process.
function subprocess.Popen(args, opts)
  local p = popen(args, opts, "Popen", 1) -- (not a tail call: error levels count this frame)
  return p
end

-- subprocess.start_worker(argv, channels) -> a Popen of a run_in_process
-- worker (workers.lua): stdin /dev/null, stdout and stderr ours, the
-- descriptor handles `channels` as 3, 4, ...; killed when its kernel closes.
function subprocess.start_worker(argv, channels)
  local p = popen(argv, { stdin = DEVNULL }, "run_in_process", 1, channels, true)
  return p
end

-- Rule 2: runs fn; on a cancellation, kills the child first.
local function killing_on_cancel(p, fn, ...)
  local results = table.pack(pcall(fn, ...))
  if not results[1] then
    local err = results[2]
    if CancelledError:matches(err) and not p._keep then p:kill() end
    error(err, 0)
  end
  return table.unpack(results, 2, results.n)
end

local function wait_exit(p)
  return p._process:wait()
end

-- p:wait() -> returncode
function Popen:wait()
  check.task("wait")
  return killing_on_cancel(self, wait_exit, self)
end

-- p:poll() -> returncode | nil
function Popen:poll()
  return self._process:poll()
end

-- (the signal number is checked once, by the C method: it does nothing
-- once the child is reaped)
function Popen:send_signal(sig)
  return self._process:send_signal(sig)
end

function Popen:kill() self:send_signal(SIGKILL) end
function Popen:terminate() self:send_signal(SIGTERM) end

-- Reads a pipe's stream to its end into parts[1]; what was read stays in
-- parts.holder if it is interrupted (rule 3). The pipe is read into one
-- growing buffer (core.read_to_end), not joined from chunks.
local function drain(stream, parts)
  local holder = core.growbuf()
  parts.holder = holder
  parts[1] = io_.take_buffered(stream) -- anything the stream buffered first
  local pipe = stream._source.pipe -- (EofClosing: the pipe itself, or nil at its end)
  parts[2] = pipe and core.read_to_end(pipe, holder) or ""
  stream:close()
end

local function drained(parts)
  if parts == nil then return nil end
  if parts.holder and parts[2] == nil then parts[2] = parts.holder:take() end
  if parts[1] == "" then return parts[2] or "" end -- (no copy of a big output)
  return table.concat(parts)
end

local function feed(stream, input)
  if input ~= nil and input ~= "" then stream:write(input) end
  stream:close()
end

-- p:communicate(input) -> stdout, stderr (nil for what is not a PIPE).
function Popen:communicate(input)
  if input ~= nil and type(input) ~= "string" then
    check.arg_error(1, "communicate", "string expected, got " .. type(input))
  end
  if not (self.stdin or self.stdout or self.stderr) then
    error(CurioError("communicate: the process has no pipe (give stdin, stdout or stderr = PIPE)"), 2)
  end
  if input ~= nil and not self.stdin then
    error(CurioError("communicate: input given but stdin is not a PIPE"), 2)
  end
  check.task("communicate")
  local out, err = self.stdout and {}, self.stderr and {}
  self._out, self._err = out, err
  return killing_on_cancel(self, function()
    local tasks = {}
    if self.stdin then tasks[#tasks + 1] = spawn(feed, self.stdin, input) end
    if out then tasks[#tasks + 1] = spawn(drain, self.stdout, out) end
    if err then tasks[#tasks + 1] = spawn(drain, self.stderr, err) end
    local ok, failure = pcall(function()
      for _, t in ipairs(tasks) do
        local done, e = pcall(t.join, t)
        if not done then error(e.cause or e, 0) end
      end
    end)
    if not ok then
      for _, t in ipairs(tasks) do t:cancel({ blocking = false }) end
      error(failure, 0)
    end
    wait_exit(self)
    return drained(out), drained(err)
  end)
end

-- Closes the pipes and waits (a Popen in a <close> variable).
function Popen:__close()
  for _, name in ipairs(ENDS) do
    local s = self[name]
    if s then s:close() end
  end
  if self.returncode == nil and core.current_task() then self:wait() end
end

function Popen:__tostring()
  return ("Popen(pid=%s, returncode=%s)"):format(tostring(self.pid), tostring(self.returncode))
end


local function cmd_text(args)
  return type(args) == "table" and table.concat(args, " ") or tostring(args)
end

local NO_OPTS = {} -- (run's opts when none are given: read, never written)

-- (the path of run({"true"}) makes few tables and calls into C only for
-- the spawn and the wait: bench/README.md, Processes)
local function run(args, opts, fname, capture_stdout)
  opts = opts == nil and NO_OPTS or check.options(opts, 2, fname, run_opts, 2)
  local timeout = check.seconds(opts.timeout, 2, fname, 2)
  check.task(fname, 2)
  local popts = { stdin = opts.stdin, stdout = opts.stdout, stderr = opts.stderr, cwd = opts.cwd,
                  env = opts.env, shell = opts.shell }
  if opts.input ~= nil then
    if type(opts.input) ~= "string" then check.arg_error(2, fname, "opts.input: string expected", 2) end
    popts.stdin = PIPE
  end
  if opts.capture_output or capture_stdout then popts.stdout = PIPE end
  if opts.capture_output then popts.stderr = PIPE end
  local p = popen(args, popts, fname, 2, nil, nil, true)
  local piped = popts.stdin == PIPE or popts.stdout == PIPE or popts.stderr == PIPE
  local ok, out, err
  if piped then
    ok, out, err = pcall(time.timeout_after, timeout, p.communicate, p, opts.input)
  else -- (a cancellation kills the child below, as p:wait's would)
    ok, out = pcall(time.timeout_after, timeout, wait_exit, p)
  end
  if not ok then
    local e = out
    p:kill() -- (and everything released before we return, rule 4)
    for _, name in ipairs(ENDS) do
      if p[name] then p[name]:close() end
    end
    task.disable_cancellation(function() pcall(p._process.wait, p._process) end)
    if errors.TaskTimeout:matches(e) and timeout ~= nil then
      local output, stderr = drained(p._out), drained(p._err)
      local message = ("%s: '%s' timed out after %g seconds"):format(fname, cmd_text(args), timeout)
      error(subprocess.TimeoutExpired(message,
        { cmd = args, timeout = timeout, output = output, stdout = output, stderr = stderr }), 3)
    end
    error(e, 0)
  end
  local returncode = out -- (wait's result)
  if piped then returncode = p.returncode else out = nil end
  local result = { args = args, returncode = returncode, stdout = out, stderr = err }
  if (opts.check or capture_stdout) and returncode ~= 0 then
    error(subprocess.CalledProcessError(
      ("%s: '%s' returned non-zero exit status %d"):format(fname, cmd_text(args), returncode),
      { returncode = returncode, cmd = args, output = out, stdout = out, stderr = err }), 3)
  end
  return result
end

-- subprocess.run(args, opts) -> {args, returncode, stdout, stderr}
function subprocess.run(args, opts)
  local result = run(args, opts, "run", false) -- (not a tail call: error levels)
  return result
end

-- subprocess.check_output(args, opts) -> stdout
function subprocess.check_output(args, opts)
  local result = run(args, opts, "check_output", true)
  return result.stdout
end

return subprocess
