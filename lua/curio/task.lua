-- curio.task: the Lua half of tasks: cancel(), cancellation control and the
-- curio.coroutine library. The C half (spawn, join, wait, result,
-- traceback, fields) is in core/task.c; this module adds to its methods.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"

local CancelledError = errors.CancelledError
local task_cancel, current_task = core.task_cancel, core.current_task
local set_cancellable = core.set_cancellable

local task = {}
local methods = core.task_methods

local cancel_opts = { exc = true, blocking = true }

local function cancel_error(exc)
  if exc == nil then return nil end
  if errors.is_class(exc) then
    if not exc:is_subclass(CancelledError) then
      check.arg_error(1, "cancel", "opts.exc: CancelledError class expected, got " .. exc.__name, 2)
    end
    return exc("task cancelled")
  end
  if not CancelledError:matches(exc) then
    check.arg_error(1, "cancel", "opts.exc: CancelledError expected, got " .. type(exc), 2)
  end
  return exc
end

-- task:cancel(opts) -> true when this call cancelled the task. Delivers
-- TaskCancelled (or opts.exc) at the task's blocking call; waits for the
-- task to end unless opts.blocking == false (or the task is the caller).
function methods.cancel(self, opts)
  local exc, blocking = nil, true
  if opts ~= nil then
    check.options(opts, 1, "cancel", cancel_opts)
    exc = cancel_error(opts.exc)
    blocking = opts.blocking ~= false
  end
  if blocking then check.task("cancel") end -- before anything is issued
  local issued = task_cancel(self, exc)
  if blocking and not self.terminated and self ~= current_task() then
    self:wait()
  end
  return issued
end

local function restore(previous, ok, ...)
  set_cancellable(previous)
  if not ok then error((...), 0) end
  return ...
end

-- curio.disable_cancellation(fn, ...): fn runs with cancellation held back.
function task.disable_cancellation(fn, ...)
  check.fn(fn, 1, "disable_cancellation")
  return restore(set_cancellable(false), pcall(fn, ...))
end

task.check_cancellation = core.check_cancellation

-- ---- curio.run inside a host ----
--
-- A host that runs scripts as tasks of its own kernel (the curio program)
-- calls task.set_hosted(true); curio.run(fn, ...) called from one of its
-- tasks then runs fn there (task.run_here) rather than refusing, so a
-- script runs the same under lua5.4 and under the host. Rules:
-- 1. fn runs as a new task of the caller's kernel; the caller waits for
--    it and gets its results, or its error raised again as it is (a curio
--    error keeps the traceback it was made with).
-- 2. Its life is the call's: if the caller is cancelled (SIGINT, SIGTERM,
--    a timeout) while it waits, fn's task is cancelled, its cleanup runs,
--    then the caller's cancellation goes on.
-- 3. A caller that cannot block (a plain coroutine inside a task) gets the
--    wait's CurioError, named 'run', and fn never runs.
-- 4. Tasks fn spawned and left running are not cancelled when fn returns
--    (lua5.4's curio.run closes its kernel then): they go on until the
--    host's kernel ends, as tasks spawned at the prompt do.
-- 5. An error that carries no traceback of its own (a string) is raised
--    as it is, and its task's traceback is kept in task.failure ({value,
--    traceback}) for the host's report (host.lua reads it only for an
--    error raised right here).

local hosted = false

function task.set_hosted(on)
  hosted = on == true
end

-- Whether curio.run should run fn in the calling task's kernel.
function task.runs_here()
  return hosted and current_task() ~= nil
end

function task.run_here(fn, ...)
  local go = true
  local child = core.spawn(function(...)
    if go then return fn(...) end
  end, ...)
  local ok, err = pcall(child.wait, child)
  if not ok then
    if CancelledError:matches(err) then
      child:cancel()
    else -- rule 3: the caller cannot block; the child ends before fn
      go = false
      if errors.CurioError:matches(err) and type(err.message) == "string" then
        err.message = err.message:gsub("^[%w.]+:", "run:")
      end
    end
    error(err, 0)
  end
  local outcome = table.pack(pcall(child.result, child))
  if outcome[1] then return table.unpack(outcome, 2, outcome.n) end
  err = outcome[2]
  if not (type(err) == "table" and type(rawget(err, "traceback")) == "string") then -- rule 5
    local where = child:traceback():match("stack traceback:.-%s*$"):gsub("%s+$", "")
    local inner = task.failure -- (kept when fn's task only passed on a nested run's failure)
    local passed_on = inner and rawequal(inner.value, err)
                      and where:find("in function 'curio.task.run_here'", 1, true)
    if not passed_on then
      task.failure = { value = err, traceback = where }
    end
  end
  error(err, 0)
end

-- curio.coroutine: Lua's coroutine library whose resume and wrap pass
-- curio's blocking calls through to the kernel.
task.coroutine = {
  create = coroutine.create,
  resume = core.co_resume,
  wrap = core.co_wrap,
  yield = coroutine.yield,
  status = core.co_status,
  running = coroutine.running,
  isyieldable = coroutine.isyieldable,
  close = core.co_close,
}

return task
