-- curio.workers: run_in_process and its pool of worker processes (docs/
-- processes.md), and the worker's own loop (workers.serve).
--
-- Rules:
--  1. A kernel's pool starts workers on demand, up to Kernel{processes=}
--     (default: the number of CPUs), and reuses them. A worker is this
--     program (/proc/self/exe: lua5.4 or the curio program; "lua5.4" from
--     PATH for other hosts) running workers.serve() with the caller's
--     package.path and package.cpath, so that it finds the same modules.
--     It is spawned and watched as any child (subprocess.start_worker,
--     core/process.c); the pool belongs to the kernel (core.kernel_pool
--     anchors it), which kills and reaps its workers when it closes.
--  2. A call is one frame each way on descriptors of the protocol's own
--     (3 and 4 in the worker, core/worker.c): "CW", a 4-byte length and
--     its complement, then codec bytes (core.encode_portable: no C function or shared object
--     crosses to another process). The function goes as bytecode with its
--     upvalues, or as a "module.function" name the worker requires. The
--     worker's stdout and stderr are the parent's: its prints (and those of
--     programs it starts) go there, flushed after each call. A reply that
--     fails its checks (the mark, the length's complement, the codec)
--     kills the worker and raises BrokenWorkerError at once.
--  3. A cancelled call kills its worker (whatever it was computing is
--     lost) and the pool starts another on the next call. A worker that
--     dies (a signal, os.exit) raises BrokenWorkerError in the task; a
--     worker dies with its parent (core/worker.c).
--  4. An error in fn is raised in the task as that error (curio.errors'
--     portable and restore, as run_in_thread's): a table keeps its fields,
--     a curio error its class, a string comes as a CurioError with the
--     message and the worker's .traceback; a field that cannot cross to
--     this process (core.crosses says) comes as a string describing it.
--  5. run_in_process refuses, before any worker starts, where the task
--     cannot block (core.check_can_block: the error of every blocking call).

local core = require "curio.core"
local errors = require "curio.errors"

local workers = {}

---------------------------------------------------------------- the worker

local function resolve(name)
  local module, field = name:match("^(.+)%.([^.]+)$")
  if not module then error("run_in_process: \"module.function\" expected, got '" .. name .. "'", 0) end
  local fn = require(module)[field]
  if type(fn) ~= "function" then error("run_in_process: " .. name .. " is not a function", 0) end
  return fn
end

-- What may cross in an error (errors.portable's probe): what the codec
-- carries to another process (no shared object, no C function).
local function crosses(value)
  return core.crosses(value, true)
end

local function call(payload)
  local request = table.pack(core.decode(payload, true))
  local fn = request[1]
  if type(fn) == "string" then fn = resolve(fn) end
  return table.pack(xpcall(fn, function(e)
    return errors.portable(e, debug.traceback(nil, 2), crosses) -- (rule 4)
  end, table.unpack(request, 2, request.n)))
end

-- A frame (rule 2): "CW", the payload's length and its complement (so that
-- stray bytes are not taken for a length), then the payload.
local MARK, HEADER = "CW", 10

local function frame(payload)
  return MARK .. string.pack(">I4I4", #payload, ~#payload & 0xffffffff) .. payload
end

-- The payload length a header announces, or nil when it fails its checks.
local function frame_length(header)
  if #header ~= HEADER or header:sub(1, 2) ~= MARK then return nil end
  local n, check = string.unpack(">I4I4", header, 3)
  if n ~ check ~= 0xffffffff then return nil end
  return n
end

-- The worker's loop: a request in, a reply out, until its requests end.
function workers.serve(parent)
  local started, input, output = pcall(core.worker_begin, parent)
  if not started then os.exit(1) end -- (the parent has gone)
  while true do
    local n = frame_length(input:read(HEADER) or "")
    if n == nil then os.exit(0) end -- (the end of the requests)
    local payload = input:read(n)
    local ok, result = pcall(call, payload or "")
    io.stdout:flush() -- (what the function printed comes before the reply)
    io.stderr:flush()
    local encoded, reply
    if ok and result[1] then
      encoded, reply = pcall(core.encode_reply, "run_in_process: result", true,
                             table.unpack(result, 2, result.n))
    else
      local err = ok and result[2] or errors.portable(result)
      encoded, reply = pcall(core.encode_reply, "run_in_process: error", false, err)
      if not encoded then reply = tostring(type(err) == "table" and err.message or err) end -- (cannot cross)
    end
    if not encoded then reply = core.encode_reply("error", false, errors.portable(tostring(reply))) end
    output:write(frame(reply))
    output:flush()
  end
end

---------------------------------------------------------------- the pool

local sync = require "curio.sync"
local task = require "curio.task"
local check = require "curio.check"
local subprocess = require "curio.subprocess"

local BrokenWorkerError = errors.BrokenWorkerError
local CancelledError = errors.CancelledError
require "curio.network" -- (which gives sockets, and so pipes, their as_stream)
local as_stream = core.socket_methods.as_stream

-- The program a worker runs (rule 1), and our pid.
local function interpreter()
  local exe, pid = core.worker_program()
  local name = exe and exe:match("[^/]+$") or ""
  if name:match("^lua") or name:match("^curio") then return exe, pid end
  return "lua5.4", pid
end

local function start_worker()
  local in_r, in_w = core.pipe()
  local out_r, out_w = core.pipe()
  local exe, pid = interpreter()
  local code = ("package.path = %q; package.cpath = %q; require('curio.workers').serve(%d)")
    :format(package.path, package.cpath, pid)
  local ok, p = pcall(subprocess.start_worker, { exe, "-e", code }, { in_r, out_w })
  in_r:close()
  out_w:close()
  if not ok then
    in_w:close()
    out_r:close()
    error(p, 0)
  end
  return { proc = p, stdin = as_stream(core.pipe_object(in_w)),
           stdout = as_stream(core.pipe_object(out_r)) }
end

local function stop_worker(w)
  w.stdin:close()
  w.stdout:close()
  w.proc:kill()
  task.disable_cancellation(function() pcall(w.proc.wait, w.proc) end)
end

-- Called by the kernel when it closes (core/process.c rule 6), before it
-- kills and reaps the workers: the idle workers' pipes are closed at once.
local function close_pool(pool)
  for _, w in ipairs(pool.idle) do
    w.stdin:close()
    w.stdout:close()
  end
  pool.idle = {}
end

-- The running kernel's pool (rule 1): made on first use, anchored by the
-- kernel, closed and released when it closes.
local function pool_of()
  local pool, size = core.kernel_pool()
  if size then pool.idle, pool.slots, pool.close = {}, sync.Semaphore(size), close_pool end
  return pool
end

-- One round trip with worker w (rule 2); raises BrokenWorkerError when the
-- worker dies during the call, returns nil when it was dead before it.
local function exchange(w, payload)
  local sent, failure = pcall(w.stdin.write, w.stdin, frame(payload))
  if not sent then -- its stdin is closed: it died while idle, before this call
    if CancelledError:matches(failure) then error(failure, 0) end
    return nil
  end
  local ok, header = pcall(w.stdout.read_exactly, w.stdout, HEADER)
  local n = ok and frame_length(header)
  if ok and not n then
    error(BrokenWorkerError("run_in_process: the worker process broke the protocol"), 0)
  end
  if ok then ok, header = pcall(w.stdout.read_exactly, w.stdout, n) end
  if not ok then
    if CancelledError:matches(header) then error(header, 0) end
    error(BrokenWorkerError("run_in_process: the worker process died"), 0)
  end
  return header
end

-- The reply's values: ok, results... or false, the error (a reply that
-- does not decode breaks the protocol, rule 2).
local function decode(reply)
  local results = table.pack(pcall(core.decode, reply, true))
  if not results[1] then
    error(BrokenWorkerError("run_in_process: the worker process broke the protocol"), 0)
  end
  return table.pack(table.unpack(results, 2, results.n))
end

local function finish(results)
  if results[1] then return table.unpack(results, 2, results.n) end
  error(errors.restore(results[2]), 0) -- (rule 4)
end

-- curio.run_in_process(fn, ...) -> fn's results, computed in a worker process.
function workers.run_in_process(fn, ...)
  if type(fn) ~= "function" and (type(fn) ~= "string" or not fn:match("^.+%.[^.]+$")) then
    check.arg_error(1, "run_in_process", "function or \"module.function\" expected, got "
                    .. (type(fn) == "string" and ("'%s'"):format(fn) or check.describe(fn)))
  end
  core.check_can_block("run_in_process") -- (rule 5: before any worker starts)
  local payload = core.encode_portable("run_in_process: argument", fn, ...)
  local pool = pool_of()
  pool.slots:acquire()
  local w = table.remove(pool.idle)
  local ok, reply = pcall(function()
    for _ = 1, 2 do
      if w == nil then w = start_worker() end
      local reply = exchange(w, payload)
      if reply then return decode(reply) end
      stop_worker(w) -- dead while idle: the call goes to a new one
      w = nil
    end
    error(BrokenWorkerError("run_in_process: the worker process died"), 0)
  end)
  if ok then
    pool.idle[#pool.idle + 1] = w
  elseif w then
    stop_worker(w) -- rule 3
  end
  pool.slots:release()
  if not ok then error(reply, 0) end
  return finish(reply)
end

return workers
