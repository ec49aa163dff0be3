-- curio.signal: SignalQueue and SignalEvent (docs/host.md: Signals), the policy
-- over core/signal.c's watchers: names and numbers, the checks.
--   local q <close> = curio.SignalQueue("SIGTERM", "SIGHUP")
--   local name = q:get()          -- "SIGTERM"
-- A signal is a name ("SIGTERM") or a number; SIGKILL and SIGSTOP cannot
-- be caught and are refused.

local core = require "curio.core"
local check = require "curio.check"

local M = {}

-- Linux's numbers (x86, ARM, RISC-V share them).
local numbers = {
  SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGILL = 4, SIGTRAP = 5, SIGABRT = 6, SIGBUS = 7,
  SIGFPE = 8, SIGKILL = 9, SIGUSR1 = 10, SIGSEGV = 11, SIGUSR2 = 12, SIGPIPE = 13,
  SIGALRM = 14, SIGTERM = 15, SIGSTKFLT = 16, SIGCHLD = 17, SIGCONT = 18, SIGSTOP = 19,
  SIGTSTP = 20, SIGTTIN = 21, SIGTTOU = 22, SIGURG = 23, SIGXCPU = 24, SIGXFSZ = 25,
  SIGVTALRM = 26, SIGPROF = 27, SIGWINCH = 28, SIGIO = 29, SIGPWR = 30, SIGSYS = 31,
}
local names = {}
for name, n in pairs(numbers) do names[n] = name end
-- the real-time signals, from SIGRTMIN (34: glibc keeps 32 and 33) to 64
for n = 34, 64 do names[n] = n < 49 and ("SIGRTMIN+" .. (n - 34)) or ("SIGRTMAX-" .. (64 - n)) end
for n = 34, 64 do numbers[names[n]] = n end
numbers.SIGRTMIN, numbers.SIGRTMAX = 34, 64
numbers.SIGIOT, numbers.SIGPOLL = 6, 29

M.names, M.numbers = names, numbers

-- The numbers of the signals given at argument 1 on, checked.
local function signums(fname, ...)
  local n = select("#", ...)
  if n == 0 then check.arg_error(1, fname, "signal expected, got no value", 2) end
  local list = {}
  for i = 1, n do
    local sig = select(i, ...)
    local num = sig
    if type(sig) == "string" then
      num = numbers[sig] or numbers["SIG" .. sig]
      if num == nil then check.arg_error(i, fname, "unknown signal '" .. check.shown(sig) .. "'", 2) end
    elseif math.type(sig) ~= "integer" or names[sig] == nil then
      check.arg_error(i, fname, type(sig) == "number" and "unknown signal " .. check.shown(sig)
                      or "signal name or number expected, got " .. check.describe(sig), 2)
    end
    if num == 9 or num == 19 then
      check.arg_error(i, fname, names[num] .. " cannot be caught", 2)
    end
    list[i] = num
  end
  return list
end

local SignalQueue = { _class = "SignalQueue" }
SignalQueue.__index = SignalQueue

-- SignalQueue(sig, ...) -> a queue of the signals that arrive, kept until
-- taken; watched from now until close.
function M.SignalQueue(...)
  local list = signums("SignalQueue", ...)
  return setmetatable({ _w = core.signal_watch("SignalQueue", false, table.unpack(list)) }, SignalQueue)
end

-- q:get() -> the next signal's name, waiting until one arrives.
function SignalQueue:get()
  if getmetatable(self) ~= SignalQueue then check.bad_self(self, "get", "SignalQueue") end
  return names[self._w:get()]
end

-- q:close(): stops watching; the previous handling is back.
function SignalQueue:close()
  if getmetatable(self) ~= SignalQueue then check.bad_self(self, "close", "SignalQueue") end
  self._w:close()
end
SignalQueue.__close = SignalQueue.close

local SignalEvent = { _class = "SignalEvent" }
SignalEvent.__index = SignalEvent

-- SignalEvent(sig, ...) -> an Event set when one of the signals arrives.
function M.SignalEvent(...)
  local list = signums("SignalEvent", ...)
  return setmetatable({ _w = core.signal_watch("SignalEvent", false, table.unpack(list)) }, SignalEvent)
end

function SignalEvent:is_set()
  if getmetatable(self) ~= SignalEvent then check.bad_self(self, "is_set", "SignalEvent") end
  return self._w:pending() > 0
end

-- e:wait(): waits until a signal has arrived (at once if one did).
function SignalEvent:wait()
  if getmetatable(self) ~= SignalEvent then check.bad_self(self, "wait", "SignalEvent") end
  self._w:wait()
end

-- e:clear(): forgets the signals that arrived.
function SignalEvent:clear()
  if getmetatable(self) ~= SignalEvent then check.bad_self(self, "clear", "SignalEvent") end
  self._w:clear()
end

function SignalEvent:close()
  if getmetatable(self) ~= SignalEvent then check.bad_self(self, "close", "SignalEvent") end
  self._w:close()
end
SignalEvent.__close = SignalEvent.close

-- For the `curio` program: a SIGTERM queue that steps aside while a script
-- watches SIGTERM itself (core/signal.c rule 5).
function M.fallback_queue(sig)
  return setmetatable({ _w = core.signal_watch("SignalQueue", true, numbers[sig]) }, SignalQueue)
end

return M
