-- A deterministic generator of random curio programs for spec/fuzz_spec.lua.
--
-- fuzz.generate(seed, index) -> Lua source text of a whole program that
-- requires curio, runs a main task (curio.run, or a Kernel run once or twice
-- and closed, or a `<close>` Kernel, or the chunk itself run by the curio
-- program: then the second result is { bin = true }) whose tasks randomly
-- spawn, sleep, nest
-- timeouts, cancel and join one another, use queues, locks, semaphores,
-- events, conditions, task groups, curio.coroutine generators, `<close>`
-- variables, pcall/xpcall/curio.pcall, error() with all kinds of values, and
-- blocking calls where Lua cannot yield (sort comparators, gsub callbacks,
-- __tostring, __gc ...), UDP and TCP sockets and their streams closed at
-- any moment, subprocesses and worker processes, a socket stream and an
-- aopen file stream shared by every task (numbered lines, each read checked
-- whole and in order: FUZZ-CORRUPT), worker-thread and worker-process jobs
-- left running when their task is cancelled or their kernel closes, threads
-- that never end, sockets handed to children, and TLS (about three
-- programs in ten, from a generator of their own: see Gen:tls_prologue):
-- a shared TLS stream of numbered lines checked as the socket stream's,
-- pairs of TLS sockets over loopback (handshakes on wrap or not) whose
-- transfers are checked byte by byte, interrupted by timeouts,
-- cancellation, close, shutdown and unwrap, several tasks on one TLS socket
-- (ResourceBusy caught), and daemon tasks in TLS waits when the kernel
-- closes. Every program is
-- bounded: a run-time budget caps the
-- number of tasks, every sleep is at most 5 ms, and every wait that could
-- last for ever is bounded by its own timeout (or waits for a task spawned
-- by the waiter, which is itself bounded, as functions only spawn functions
-- defined after them). The program prints "FUZZ-OK" as its last line,
-- whether the kernel returned or raised.
--
-- Reproduce one: LUA_PATH='spec/?.lua;;' lua5.4 -e \
--   'io.write((require("support.fuzz").generate(SEED, INDEX)))' > /tmp/x.lua
local fuzz = {}

local MASK = 0xffffffff

-- xorshift32, seeded from (seed, index) through a multiplicative mix.
local function rng(seed, index)
  local x = (seed * 0x9E3779B1 + index * 0x85EBCA77 + 0x632BE5AB) & MASK
  x = ((x ~ (x >> 16)) * 0x7FEB352D) & MASK
  x = ((x ~ (x >> 15)) * 0x846CA68B) & MASK
  x = x ~ (x >> 16)
  if x == 0 then x = 0x2545F491 end
  local r = {}
  function r.next()
    x = x ~ ((x << 13) & MASK)
    x = x ~ (x >> 17)
    x = x ~ ((x << 5) & MASK)
    return x
  end
  function r.int(lo, hi) return lo + r.next() % (hi - lo + 1) end
  function r.chance(p) return r.next() % 10000 < p * 10000 end
  function r.pick(list) return list[r.int(1, #list)] end
  -- weighted choice over { {weight, value}, ... }
  function r.weighted(list)
    local total = 0
    for _, entry in ipairs(list) do total = total + entry[1] end
    local n = r.int(1, total)
    for _, entry in ipairs(list) do
      n = n - entry[1]
      if n <= 0 then return entry[2] end
    end
    return list[#list][2]
  end
  return r
end

local Gen = {}
Gen.__index = Gen

local MAX_DEPTH = 3

function Gen:line(ind, text)
  self.out[#self.out + 1] = ("  "):rep(ind) .. text
end

function Gen:var(prefix)
  self.nvar = self.nvar + 1
  return prefix .. self.nvar
end

function Gen:k() return tostring(self.r.int(1, 999)) end

function Gen:t_sleep()
  return self.r.pick({ "0", "0", "0", "0", "0.001", "0.001", "0.002", "0.003", "0.005" })
end

function Gen:t_timeout()
  return self.r.pick({ "0", "0.0005", "0.001", "0.001", "0.002", "0.002", "0.003", "0.005", "0.008" })
end

-- A literal value that may be put in a queue (never nil).
function Gen:value()
  local r = self.r
  return r.weighted({
    { 4, self:k() },
    { 2, ("%q"):format("v" .. self:k()) },
    { 1, "{ " .. self:k() .. " }" },
    { 1, "true" },
    { 1, "false" },
    { 1, "function() return " .. self:k() .. " end" },
    { 1, "-0.5" },
  })
end

-- An argument list of 0..8 values (nil allowed): spawn with many arguments.
function Gen:args()
  local r = self.r
  local n = r.weighted({ { 6, 0 }, { 5, r.int(1, 3) }, { 2, r.int(4, 8) } })
  local parts = {}
  for i = 1, n do
    parts[i] = r.chance(0.15) and "nil" or self:value()
  end
  return parts
end

local function with_args(head, args)
  if #args == 0 then return head end
  return head .. ", " .. table.concat(args, ", ")
end

-- An error value for error().
function Gen:error_value()
  local r = self.r
  return r.weighted({
    { 4, ("%q"):format("boom " .. self:k()) },
    { 2, "{ code = " .. self:k() .. " }" },
    { 2, "curio.CurioError(\"fuzz " .. self:k() .. "\", { n = " .. self:k() .. " })" },
    { 1, "setmetatable({}, { __tostring = function() return \"custom error\" end })" },
    { 1, "setmetatable({}, { __tostring = function() error(\"tostring fails\") end })" },
    { 1, "setmetatable({}, { __tostring = function() pcall(curio.sleep, 0) return \"blocked tostring\" end })" },
    { 1, "setmetatable({}, { __tostring = function() return 42 end })" },
    { 1, "nil" },
    { 1, self:k() },
    { 1, "curio.TaskCancelled(\"fake cancel\")" },
    { 1, "curio.TaskTimeout(\"fake timeout\")" },
    { 1, "curio.TimeoutCancellationError(\"fake tce\")" },
    { 1, "coroutine.create(print)" },
    { 1, "io.stdout" },
    { 1, "setmetatable({}, { __index = function() error(\"index fails\") end })" },
    { 1, "setmetatable({}, { __index = function() curio.sleep(0) end })" },
    { 1, "setmetatable({}, { __index = curio.TaskCancelled })" },
    { 1, "setmetatable({}, { __metatable = false, __name = 42 })" },
  })
end

-- How a call that may raise is protected: returns a prefix (the call's
-- callee and the opening of its argument list are added by the caller).
function Gen:protect()
  return self.r.weighted({ { 6, "pcall" }, { 3, "curio.pcall" }, { 2, "" } })
end

-- Code of a call of fn(args) bounded by a timeout of its own, protected or
-- not; fn and args are code strings.
function Gen:timed(fn, args)
  local r = self.r
  local t = self:t_timeout()
  local kind, limit = r.weighted({
    { 5, "ignore_after" }, { 3, "timeout_after" }, { 1, "ignore_at" }, { 1, "timeout_at" },
  }), t
  if kind:match("_at$") then limit = "curio.clock() + " .. t end
  local prot = self:protect()
  if kind:match("^ignore") and r.chance(0.6) then prot = "" end
  local call_args = with_args(limit .. ", " .. fn, args or {})
  if prot == "" then return "curio." .. kind .. "(" .. call_args .. ")" end
  return prot .. "(curio." .. kind .. ", " .. call_args .. ")"
end

-- Emits `<timed>(function() <body> end)`; body(ind) emits the body.
function Gen:timed_block(ind, body)
  local head = self:timed("function()")
  -- head ends with "function()" followed by the closing of the call
  local open, close = head:match("^(.-function%(%))(.*)$")
  self:line(ind, open)
  body(ind + 1)
  self:line(ind, "end" .. close)
end

-- Statement kinds: name -> { weight at depth < MAX_DEPTH, leaf?, safe? }
-- A leaf kind opens no nested block; a safe kind has no wait that only a
-- timeout could end (usable inside disable_cancellation, which holds
-- timeouts back).
local KINDS = {
  { "sleep",       10, true,  true },
  { "spawn",       9,  true,  true },
  { "spawn_inline", 3, false, false },
  { "timeout",     6,  false, false },
  { "cancel",      5,  true,  false },
  { "cancel_self", 1,  true,  true },
  { "join_any",    4,  true,  false },
  { "queue",       7,  true,  false },
  { "queue_nb",    3,  true,  true },
  { "lock",        5,  false, false },
  { "lock_nb",     1,  true,  true },
  { "event",       4,  true,  false },
  { "condition",   3,  true,  false },
  { "group",       4,  false, false },
  { "group_manual", 2, false, false },
  { "generator",   4,  false, false },
  { "gen_shared",  1,  true,  false },
  { "coroutine",   2,  false, false },
  { "close_var",   4,  false, false },
  { "pcall_block", 5,  false, false },
  { "xpcall",      2,  false, false },
  { "error",       2,  true,  true },
  { "cboundary",   4,  true,  true },
  { "cleanup",     5,  false, false },
  { "nocancel",    2,  false, false },
  { "misc",        3,  true,  true },
  { "gc",          1,  true,  true },
  { "loop",        2,  false, false },
  { "rogue",       1,  true,  true },
  { "yield",       3,  true,  true },  -- only inside a generator body
  { "many",        2,  true,  false },
  { "co_steal",    1,  true,  true },
  { "task_abuse",  1,  true,  true },
  { "grp_shared",  2,  true,  false },
  { "weird_time",  2,  true,  false },
  { "junk",        1,  true,  true },
  { "other_kernel", 1, true,  true },
  { "stubborn",    1,  true,  true },
  { "ctor",        1,  true,  false },
  { "sock",        3,  true,  false },
  { "proc",        1,  true,  false },
  { "sstream",     4,  true,  false },
  { "fstream",     3,  true,  false },
  { "job_left",    2,  true,  false },
  { "k2_job",      1,  true,  false },
  { "job_stuck",   1,  true,  false },
  { "sock_child",  1,  true,  false },
}

-- Kinds made only when asked for (fuzz.generate's `with`, CURIO_FUZZ_WITH):
-- shapes that still fail on main, each a known bug (issue 15) that another
-- change is fixing; they are turned on here once the fix has landed.
fuzz.OFF = {
  -- (none now: job_stuck, a worker thread that never ends, hung the
  -- kernel's close, and sock_child, Popen with a socket as stdin/stdout,
  -- switched the parent's socket to blocking, until issue 15's fixes)
}

-- Kinds a task must not run while it holds a lock (ctx.locked): a
-- Condition.wait that times out takes its lock back without a time limit,
-- so a holder that waits without one (a group's join, cancelling its
-- members) for a task in that situation is a deadlock of the program's own.
local NOT_LOCKED = { condition = true, group = true, group_manual = true, grp_shared = true }
-- Kinds a coroutine other tasks may resume or close (ctx.shared) must not
-- run: killed while blocked, it would leave the lock or the cancellation
-- state of its task behind.
local NOT_SHARED = { lock = true, condition = true, nocancel = true, group = true, group_manual = true,
                     grp_shared = true, generator = true, coroutine = true }

function Gen:choose_kind(ctx)
  local list = {}
  for _, k in ipairs(KINDS) do
    local name, weight, leaf, safe = k[1], k[2], k[3], k[4]
    local ok = true
    if ctx.depth >= MAX_DEPTH and not leaf then ok = false end
    if ctx.safe and not safe then ok = false end
    if name == "yield" and (not ctx.gen or ctx.gen_locked) then ok = false end
    if ctx.locked and NOT_LOCKED[name] then ok = false end
    if ctx.shared and NOT_SHARED[name] then ok = false end
    if name == "spawn" and ctx.fi >= self.nf then ok = false end
    if self.avoid[name] then ok = false end
    if ok then list[#list + 1] = { weight, name } end
  end
  return self.r.weighted(list)
end

function Gen:block(ctx, ind, n)
  for _ = 1, n do self:stmt(ctx, ind) end
end

function Gen.nested(_, ctx, changes)
  local c = { depth = ctx.depth + 1, fi = ctx.fi, gen = ctx.gen, safe = ctx.safe, locked = ctx.locked,
              gen_locked = ctx.gen_locked, shared = ctx.shared }
  for key, value in pairs(changes or {}) do c[key] = value end
  return c
end

function Gen:small_n(ctx)
  if ctx.depth == 0 then return self.r.int(2, 5) end
  return self.r.int(1, 3)
end

function Gen:stmt(ctx, ind)
  if self.tls and not ctx.safe and self.tr.chance(0.2) then self:tls_stmt(ctx, ind) end
  local kind = self:choose_kind(ctx)
  self.used[kind] = true
  self["k_" .. kind](self, ctx, ind)
end

---------------------------------------------------------------------------
-- statement kinds

function Gen:k_sleep(_, ind)
  self:line(ind, "curio.sleep(" .. self:t_sleep() .. ")")
end

-- What a task does with a child it just spawned.
function Gen:child_followup(ctx, ind, t)
  local r = self.r
  local choice = r.weighted({
    { 4, "none" }, { 3, "join" }, { 2, "wait" }, { 2, "cancel" }, { 2, "cancel_nb" },
    { 1, "cancel_exc" }, { 2, "timed_join" }, { 1, "result" }, { 1, "fields" },
  })
  if ctx.safe and choice == "timed_join" then choice = "join" end
  if ctx.locked then
    -- no wait without a time limit while holding a lock (see NOT_LOCKED)
    if ctx.safe and (choice == "join" or choice == "wait" or choice == "cancel" or choice == "timed_join"
                     or choice == "result" or choice == "cancel_exc") then
      choice = "cancel_nb"
    elseif choice == "join" or choice == "wait" or choice == "cancel" or choice == "result" then
      choice = "timed_join"
    end
  end
  if choice == "join" then
    local prot = self:protect()
    if prot == "" then self:line(ind, t .. ":join()")
    else self:line(ind, prot .. "(" .. t .. ".join, " .. t .. ")") end
  elseif choice == "wait" then
    self:line(ind, t .. ":wait()")
  elseif choice == "cancel" then
    self:line(ind, t .. ":cancel()")
  elseif choice == "cancel_nb" then
    self:line(ind, t .. ":cancel({ blocking = false })")
  elseif choice == "cancel_exc" then
    self:line(ind, "pcall(" .. t .. ".cancel, " .. t .. ", { exc = "
      .. r.pick({ "curio.TaskTimeout", "curio.TimeoutCancellationError", "curio.TaskCancelled(\"x\")",
                  "curio.CurioError" }) .. ", blocking = " .. tostring(r.chance(0.5)) .. " })")
  elseif choice == "timed_join" then
    self:line(ind, self:timed(t .. ".join", { t }))
  elseif choice == "result" then
    self:line(ind, "curio.sleep(0)")
    self:line(ind, "pcall(" .. t .. ".result, " .. t .. ")")
  elseif choice == "fields" then
    self:line(ind, t .. ".name = \"child " .. self:k() .. "\"")
    self:line(ind, "local _ = " .. t .. ".id, " .. t .. ".daemon, " .. t .. ".terminated, "
      .. t .. ".cancelled, " .. t .. ".exception, " .. t .. ":traceback()")
  end
end

function Gen:k_spawn(ctx, ind)
  local r = self.r
  if r.chance(0.04) then
    self:line(ind, "pcall(curio.spawn, " .. r.pick({ "42", "nil", "{}", "\"f\"" }) .. ")")
    return
  end
  local j = r.int(ctx.fi + 1, self.nf)
  local t = self:var("t")
  local how = r.chance(0.25) and "curio.spawn_daemon" or "curio.spawn"
  self:line(ind, "if B() then")
  self:line(ind + 1, "local " .. t .. " = " .. how .. "(" .. with_args("F[" .. j .. "]", self:args()) .. ")")
  self:line(ind + 1, "T[#T + 1] = " .. t)
  self:child_followup(ctx, ind + 1, t)
  self:line(ind, "end")
end

function Gen:k_spawn_inline(ctx, ind)
  local t = self:var("t")
  local how = self.r.chance(0.25) and "curio.spawn_daemon" or "curio.spawn"
  self:line(ind, "if B() then")
  self:line(ind + 1, "local " .. t .. " = " .. how .. "(function(...)")
  self:block(self:nested(ctx, { gen = false, safe = false }), ind + 2, self.r.int(1, 4))
  self:line(ind + 1, "end" .. (function()
    local a = self:args()
    return #a > 0 and ", " .. table.concat(a, ", ") or ""
  end)() .. ")")
  self:line(ind + 1, "T[#T + 1] = " .. t)
  self:child_followup(ctx, ind + 1, t)
  self:line(ind, "end")
end

function Gen:k_timeout(ctx, ind)
  local r = self.r
  local c = self:nested(ctx)
  if r.chance(0.1) then
    -- nil seconds: no limit, but the block still nests
    local prot = self:protect()
    self:line(ind, (prot ~= "" and prot .. "(curio.timeout_after, nil, function()"
      or "curio.timeout_after(nil, function()"))
    self:block(c, ind + 1, self:small_n(c))
    self:line(ind, "end)")
    return
  end
  self:timed_block(ind, function(i) self:block(c, i, self:small_n(c)) end)
end

function Gen:k_cancel(_, ind)
  local r = self.r
  local v = self:var("v")
  self:line(ind, "do local " .. v .. " = pick(" .. self:k() .. ") if " .. v .. " then")
  local choice = r.weighted({ { 4, "nb" }, { 4, "blocking" }, { 1, "exc" }, { 1, "twice" } })
  if choice == "nb" then
    self:line(ind + 1, v .. ":cancel({ blocking = false })")
  elseif choice == "blocking" then
    -- bounded: the victim may be waiting for us
    self:line(ind + 1, self:timed(v .. ".cancel", { v }))
  elseif choice == "exc" then
    self:line(ind + 1, "pcall(" .. v .. ".cancel, " .. v .. ", { blocking = false, exc = "
      .. r.pick({ "curio.TaskTimeout", "curio.TimeoutCancellationError" }) .. " })")
  else
    self:line(ind + 1, v .. ":cancel({ blocking = false })")
    self:line(ind + 1, v .. ":cancel({ blocking = false })")
  end
  self:line(ind, "end end")
end

function Gen:k_cancel_self(_, ind)
  local r = self.r
  if r.chance(0.5) then
    self:line(ind, "curio.current_task():cancel({ blocking = false })")
  else
    self:line(ind, "curio.current_task():cancel()")
  end
  if r.chance(0.5) then
    self:line(ind, "pcall(curio.sleep, 0)")
  end
end

function Gen:k_join_any(_, ind)
  local r = self.r
  local v = self:var("v")
  self:line(ind, "do local " .. v .. " = pick(" .. self:k() .. ") if " .. v .. " then")
  local choice = r.weighted({ { 4, "join" }, { 3, "wait" }, { 2, "result" }, { 1, "self" } })
  if choice == "join" then
    self:line(ind + 1, self:timed(v .. ".join", { v }))
  elseif choice == "wait" then
    self:line(ind + 1, self:timed(v .. ".wait", { v }))
  elseif choice == "result" then
    self:line(ind + 1, "pcall(" .. v .. ".result, " .. v .. ")")
  else
    self:line(ind + 1, "local me = curio.current_task()")
    self:line(ind + 1, "pcall(curio.ignore_after, 0.001, me.join, me)")
  end
  self:line(ind, "end end")
end

function Gen:queue_index()
  return self.r.int(1, 4)
end

function Gen:k_queue(ctx, ind)
  local r = self.r
  local qi = self:queue_index()
  local q = "Q[" .. qi .. "]"
  local choice = r.weighted({ { 5, "put" }, { 5, "get" }, { 1, "join" }, { 2, "drain" }, { 2, "put_free" } })
  if choice == "put" then
    local args = { q, self:value() }
    if qi == 3 then
      args[3] = r.chance(0.9) and tostring(r.int(-2, 5))
        or r.pick({ "0/0", "math.huge", "-math.huge", "2^63", "\"1\"", "{}" })
    end
    if r.chance(0.8) then args[1] = tostring(qi) self:line(ind, self:timed("PUT", args))
    else self:line(ind, self:timed(q .. ".put", args)) end
  elseif choice == "get" then
    -- every get is counted (a put may go uncounted: see NPUT)
    self:line(ind, self:timed("GET", { tostring(qi) }))
    if r.chance(0.3) then self:line(ind, "pcall(" .. q .. ".task_done, " .. q .. ")") end
  elseif choice == "join" then
    self:line(ind, self:timed(q .. ".join", { q }))
  elseif choice == "drain" then
    self:line(ind, "for _ = 1, " .. r.int(1, 4) .. " do")
    self:line(ind + 1, "if " .. q .. ":empty() then break end")
    self:line(ind + 1, self:timed("GET", { tostring(qi) }))
    self:line(ind + 1, "pcall(" .. q .. ".task_done, " .. q .. ")")
    self:line(ind, "end")
  else
    self:k_queue_nb(ctx, ind)
  end
end

function Gen:k_queue_nb(_, ind)
  local r = self.r
  local qi = self:queue_index()
  local q = "Q[" .. qi .. "]"
  local choice = r.weighted({ { 3, "free" }, { 2, "query" }, { 1, "done" }, { 1, "nil" } })
  if choice == "free" then
    -- the unbounded queue never blocks a put
    self:line(ind, "PUT(4, " .. self:value() .. ")")
  elseif choice == "query" then
    self:line(ind, "local _ = " .. q .. ":qsize(), " .. q .. ":empty(), " .. q .. ":full()")
  elseif choice == "done" then
    self:line(ind, "pcall(" .. q .. ".task_done, " .. q .. ")")
  else
    self:line(ind, "pcall(Q[4].put, Q[4], nil)")
  end
end

function Gen:k_lock(ctx, ind)
  local r = self.r
  -- a generator must not yield while it holds a lock: its consumer may
  -- never resume it
  local c = self:nested(ctx, { locked = true, gen_locked = ctx.gen })
  local lk = r.weighted({ { 3, "LK[1]" }, { 2, "LK[2]" }, { 2, "SM[1]" }, { 2, "SM[2]" } })
  local choice = r.weighted({ { 3, "with" }, { 3, "guard" }, { 2, "raw" } })
  if choice == "with" then
    self:timed_block(ind, function(i)
      self:line(i, lk .. ":with(function()")
      self:block(c, i + 1, self:small_n(c))
      self:line(i, "end)")
    end)
  elseif choice == "guard" then
    self:timed_block(ind, function(i)
      self:line(i, "local held <close> = " .. lk .. ":acquire()")
      self:block(c, i, self:small_n(c))
    end)
  else
    local got = self:var("got")
    self:line(ind, "local " .. got .. " = curio.ignore_after(" .. self:t_timeout() .. ", "
      .. lk .. ".acquire, " .. lk .. ")")
    self:line(ind, "if " .. got .. " ~= nil then")
    self:line(ind + 1, "pcall(function()")
    self:block(c, ind + 2, r.int(0, 2))
    self:line(ind + 1, "end)")
    self:line(ind + 1, "pcall(" .. lk .. ".release, " .. lk .. ")")
    self:line(ind, "end")
  end
end

function Gen:k_lock_nb(_, ind)
  local r = self.r
  local lk = r.pick({ "LK[1]", "LK[2]", "SM[1]", "SM[2]" })
  if r.chance(0.5) then
    self:line(ind, "pcall(" .. lk .. ".release, " .. lk .. ")")
  else
    self:line(ind, "local _ = " .. lk .. ":locked(), SM[1]:value(), SM[2]:value()")
  end
end

function Gen:k_event(_, ind)
  local r = self.r
  local ev = "EV[" .. r.int(1, 2) .. "]"
  local choice = r.weighted({ { 3, "set" }, { 2, "clear" }, { 4, "wait" }, { 1, "flip" } })
  if choice == "set" then self:line(ind, ev .. ":set()")
  elseif choice == "clear" then self:line(ind, ev .. ":clear()")
  elseif choice == "wait" then self:line(ind, self:timed(ev .. ".wait", { ev }))
  else
    self:line(ind, ev .. ":set() " .. ev .. ":clear() local _ = " .. ev .. ":is_set()")
  end
end

function Gen:k_condition(_, ind)
  local r = self.r
  local n = r.int(1, 3)
  local cv = "CV[" .. n .. "]"
  local choice = r.weighted({ { 3, "wait" }, { 2, "wait_for" }, { 3, "notify" }, { 1, "stray" } })
  if choice == "wait" then
    self:timed_block(ind, function(i)
      self:line(i, cv .. ":with(function() " .. cv .. ":wait() end)")
    end)
  elseif choice == "wait_for" then
    local pred = r.chance(0.3)
      and "function() curio.sleep(0) return FLAG[" .. n .. "] end"
      or "function() return FLAG[" .. n .. "] end"
    self:timed_block(ind, function(i)
      self:line(i, cv .. ":with(function() " .. cv .. ":wait_for(" .. pred .. ") end)")
    end)
  elseif choice == "notify" then
    local how = r.pick({ "notify()", "notify(2)", "notify_all()" })
    self:timed_block(ind, function(i)
      self:line(i, cv .. ":with(function() FLAG[" .. n .. "] = not FLAG[" .. n .. "] " .. cv .. ":" .. how .. " end)")
    end)
  else
    self:line(ind, "pcall(" .. cv .. ".notify, " .. cv .. ")")
  end
end

function Gen:group_spawns(ctx, ind, g)
  local r = self.r
  for _ = 1, r.int(0, 3) do
    local method = r.chance(0.2) and "spawn_daemon" or "spawn"
    if ctx.fi < self.nf and r.chance(0.7) then
      self:line(ind, "if B() then " .. g .. ":" .. method .. "("
        .. with_args("F[" .. r.int(ctx.fi + 1, self.nf) .. "]", self:args()) .. ") end")
    else
      self:line(ind, "if B() then " .. g .. ":" .. method .. "(function()")
      self:block(self:nested(ctx, { gen = false, safe = false }), ind + 1, r.int(1, 3))
      self:line(ind, "end) end")
    end
  end
end

function Gen:k_group(ctx, ind)
  local r = self.r
  local c = self:nested(ctx, { gen = false })
  local opts = r.pick({ "{ wait = \"all\" }", "{ wait = \"any\" }", "{ wait = \"object\" }",
                        "{ wait = false }", "nil", "{}" })
  local body = function(i)
    self:group_spawns(c, i, "g")
    if r.chance(0.4) then self:block(c, i, r.int(1, 2)) end
    if r.chance(0.15) then self:line(i, "error(" .. self:error_value() .. ")") end
  end
  local gv = self:var("grp")
  if r.chance(0.5) then
    self:line(ind, "local ok_" .. gv .. ", " .. gv .. " = pcall(curio.TaskGroup, " .. opts .. ", function(g)")
    body(ind + 1)
    self:line(ind, "end)")
    self:line(ind, "if ok_" .. gv .. " and type(" .. gv .. ") == \"table\" then")
    self:line(ind + 1, "pcall(" .. gv .. ".results, " .. gv .. ") pcall(" .. gv .. ".result, " .. gv .. ")")
    self:line(ind + 1, "pcall(" .. gv .. ".exceptions, " .. gv .. ")")
    self:line(ind, "end")
  else
    self:timed_block(ind, function(i)
      self:line(i, "curio.TaskGroup(" .. opts .. ", function(g)")
      body(i + 1)
      self:line(i, "end)")
    end)
  end
end

function Gen:k_group_manual(ctx, ind)
  local r = self.r
  local c = self:nested(ctx, { gen = false })
  local g = self:var("g")
  self:line(ind, "do")
  self:line(ind + 1, "local " .. g .. " = curio.TaskGroup(" .. r.pick({ "{ wait = \"all\" }",
    "{ wait = \"any\" }", "{ wait = \"object\" }", "{ wait = false }", "" }) .. ")")
  if r.chance(0.3) then self:line(ind + 1, "GRPS[#GRPS + 1] = " .. g) end
  self:group_spawns(c, ind + 1, g)
  if r.chance(0.3) then
    -- only a task that ended: its join would wait for anyone else's
    self:line(ind + 1, "do local v = pick(" .. self:k() .. ") if v and v.terminated then pcall(" .. g .. ".add_task, "
      .. g .. ", v) end end")
  end
  if r.chance(0.6) then
    self:line(ind + 1, "for _ = 1, " .. r.int(1, 3) .. " do")
    local op = r.chance(0.7) and "next_done" or "next_result"
    self:line(ind + 2, "local ok, d = pcall(curio.ignore_after, " .. self:t_timeout() .. ", " .. g .. "."
      .. op .. ", " .. g .. ")")
    self:line(ind + 2, "if not ok or d == nil then break end")
    if op == "next_done" then self:line(ind + 2, "pcall(d.result, d)") end
    self:line(ind + 1, "end")
  end
  if r.chance(0.3) then
    self:line(ind + 1, self:timed(g .. ".cancel_remaining", { g }))
  end
  self:line(ind + 1, self:timed(g .. ".join", { g }))
  self:line(ind + 1, "pcall(" .. g .. ".results, " .. g .. ") pcall(" .. g .. ".result, " .. g .. ")")
  self:line(ind + 1, "pcall(" .. g .. ".exceptions, " .. g .. ") pcall(" .. g .. ".exception, " .. g .. ")")
  self:line(ind + 1, "local _ = " .. g .. ".completed, " .. g .. ".tasks")
  self:line(ind, "end")
end

function Gen:k_generator(ctx, ind)
  local r = self.r
  local shared = r.chance(0.25) and not ctx.locked
  local c = self:nested(ctx, { gen = true, gen_locked = false, shared = ctx.shared or shared })
  local gen = self:var("gen")
  local n, m = r.int(1, 3), r.int(0, 4)
  self:line(ind, "do")
  self:line(ind + 1, "local " .. gen .. " = curio.coroutine.wrap(function(...)")
  if r.chance(0.3) then
    self:line(ind + 2, "local c <close> = setmetatable({}, { __close = function() pcall(curio.sleep, 0) end })")
  end
  self:line(ind + 2, "for i = 1, " .. n .. " do")
  self:block(c, ind + 3, r.int(1, 2))
  self:line(ind + 3, "curio.coroutine.yield(i)")
  self:line(ind + 2, "end")
  if r.chance(0.2) then self:line(ind + 2, "error(" .. self:error_value() .. ")") end
  self:line(ind + 1, "end)")
  if shared then self:line(ind + 1, "GENS[#GENS + 1] = " .. gen) end
  self:line(ind + 1, "for _ = 1, " .. m .. " do")
  self:line(ind + 2, "local ok, v = pcall(" .. gen .. ", " .. self:k() .. ")")
  self:line(ind + 2, "if not ok or v == nil then break end")
  if r.chance(0.4) then self:line(ind + 2, "curio.sleep(" .. self:t_sleep() .. ")") end
  self:line(ind + 1, "end")
  self:line(ind, "end")
end

-- Resumes a generator another task may be running (or blocked inside).
function Gen:k_gen_shared(_, ind)
  self:line(ind, "do local n = #GENS if n > 0 then pcall(GENS[1 + " .. self:k() .. " % n]) end end")
end

function Gen:k_coroutine(ctx, ind)
  local r = self.r
  local shared = r.chance(0.3) and not ctx.locked
  local c = self:nested(ctx, { gen = true, gen_locked = false, shared = ctx.shared or shared })
  local co = self:var("co")
  local choice = r.weighted({ { 4, "resume" }, { 2, "plain" }, { 1, "nested" } })
  if choice == "plain" then
    -- a blocking call inside Lua's own coroutine library must raise
    self:line(ind, "pcall(coroutine.wrap(function() curio.sleep(" .. self:t_sleep() .. ") end))")
    self:line(ind, "do local " .. co .. " = coroutine.create(function() curio.sleep(0) return 1 end)")
    self:line(ind + 1, "local _ = coroutine.resume(" .. co .. ")")
    self:line(ind, "end")
    return
  end
  self:line(ind, "do")
  self:line(ind + 1, "local " .. co .. " = curio.coroutine.create(function(...)")
  if r.chance(0.4) then
    self:line(ind + 2, "local c <close> = setmetatable({}, { __close = function() "
      .. r.pick({ "pcall(curio.sleep, 0)", "curio.sleep(0)", "pcall(curio.sleep, 0.001)" }) .. " end })")
  end
  if choice == "nested" then
    self:line(ind + 2, "local inner = curio.coroutine.wrap(function()")
    self:line(ind + 3, "curio.sleep(0) curio.coroutine.yield(1) curio.sleep(" .. self:t_sleep() .. ") return 2")
    self:line(ind + 2, "end)")
    self:line(ind + 2, "curio.coroutine.yield(inner()) curio.coroutine.yield(inner())")
  end
  self:block(c, ind + 2, r.int(1, 2))
  self:line(ind + 2, "curio.coroutine.yield(1)")
  self:block(c, ind + 2, r.int(0, 2))
  self:line(ind + 1, "end)")
  if shared then self:line(ind + 1, "COS[#COS + 1] = " .. co) end
  self:line(ind + 1, "for _ = 1, " .. r.int(0, 3) .. " do")
  self:line(ind + 2, "local ok = pcall(curio.coroutine.resume, " .. co .. ", " .. self:k() .. ")")
  self:line(ind + 2, "if not ok or curio.coroutine.status(" .. co .. ") == \"dead\" then break end")
  self:line(ind + 1, "end")
  if r.chance(0.6) then self:line(ind + 1, "pcall(curio.coroutine.close, " .. co .. ")") end
  self:line(ind, "end")
end

function Gen:close_handler_body()
  local r = self.r
  return r.weighted({
    { 4, "pcall(curio.sleep, 0)" },
    { 3, "curio.sleep(0)" },
    { 2, "curio.sleep(0.001)" },
    { 1, "pcall(curio.sleep, 0.001)" },
    { 1, "PUT(4, 1)" },
    { 1, "EV[1]:set()" },
    { 1, "curio.ignore_after(0.001, GET, 1)" },
    { 1, "pcall(curio.spawn, curio.sleep, 0)" },
  })
end

function Gen:k_close_var(ctx, ind)
  local r = self.r
  local c = self:nested(ctx)
  local v = self:var("cv")
  self:line(ind, "do")
  self:line(ind + 1, "local " .. v .. " <close> = setmetatable({}, { __close = function(_, err)")
  self:line(ind + 2, self:close_handler_body())
  if r.chance(0.2) then self:line(ind + 2, "error(\"close handler fails\")") end
  self:line(ind + 1, "end })")
  self:block(c, ind + 1, self:small_n(c))
  if r.chance(0.3) then self:line(ind + 1, "error(" .. self:error_value() .. ")") end
  self:line(ind, "end")
end

function Gen:k_pcall_block(ctx, ind)
  local r = self.r
  local c = self:nested(ctx)
  local prot = r.chance(0.6) and "pcall" or "curio.pcall"
  local ok = self:var("ok")
  self:line(ind, "local " .. ok .. " = " .. prot .. "(function(...)")
  self:block(c, ind + 1, self:small_n(c))
  local a = self:args()
  self:line(ind, "end" .. (#a > 0 and ", " .. table.concat(a, ", ") or "") .. ")")
end

function Gen:k_xpcall(ctx, ind)
  local r = self.r
  local c = self:nested(ctx)
  local fn = r.chance(0.5) and "xpcall" or "curio.xpcall"
  local handler = r.weighted({
    { 2, "debug.traceback" },
    { 2, "function(e) pcall(curio.sleep, 0) return e end" },
    { 1, "function(e) curio.sleep(0) return e end" },
    { 1, "function(e) error(\"handler fails\") end" },
    { 1, "function(e) return tostring(e) end" },
  })
  self:line(ind, "local _ = " .. fn .. "(function()")
  self:block(c, ind + 1, self:small_n(c))
  self:line(ind, "end, " .. handler .. ")")
end

function Gen:k_error(ctx, ind)
  if ctx.depth == 0 and self.r.chance(0.6) then
    -- a function body usually goes on
    self:line(ind, "if " .. self:k() .. " % 3 == 0 then error(" .. self:error_value() .. ") end")
    return
  end
  local level = self.r.chance(0.3) and ", 0" or ""
  local value = self:error_value()
  if value == "nil" then level = "" end
  self:line(ind, "error(" .. value .. level .. ")")
end

function Gen:k_cboundary(_, ind)
  local r = self.r
  local s = "curio.sleep(" .. r.pick({ "0", "0", "0.001" }) .. ")"
  local choice = r.weighted({
    { 4, "sort" }, { 1, "sort_bare" }, { 3, "gsub" }, { 2, "tostring" }, { 1, "load" },
    { 2, "index" }, { 1, "concat" }, { 1, "pairs" }, { 1, "format" }, { 1, "lt" },
  })
  if choice == "sort" then
    self:line(ind, "pcall(table.sort, { 3, 1, 2, 5, 4 }, function(a, b) " .. s .. " return a < b end)")
  elseif choice == "sort_bare" then
    self:line(ind, "table.sort({ 2, 1 }, function(a, b) " .. s .. " return a < b end)")
  elseif choice == "gsub" then
    self:line(ind, "pcall(string.gsub, \"abc\", \"%w\", function(c) " .. s .. " return c end)")
  elseif choice == "tostring" then
    self:line(ind, "pcall(tostring, setmetatable({}, { __tostring = function() " .. s .. " return \"x\" end }))")
  elseif choice == "load" then
    self:line(ind, "pcall(load, function() " .. s .. " return nil end)")
  elseif choice == "index" then
    -- metamethods called from Lua code may yield: this one must work
    self:line(ind, "local _ = setmetatable({}, { __index = function(_, k) " .. s .. " return k end }).x")
  elseif choice == "concat" then
    self:line(ind, "local _ = setmetatable({}, { __concat = function() " .. s .. " return \"c\" end }) .. \"x\"")
  elseif choice == "pairs" then
    self:line(ind, "pcall(function() for _ in pairs(setmetatable({}, { __pairs = function(t) "
      .. s .. " return next, t end })) do end end)")
  elseif choice == "format" then
    self:line(ind, "pcall(string.format, \"%s\", setmetatable({}, { __tostring = function() "
      .. s .. " return \"f\" end }))")
  else
    self:line(ind, "do local mt = { __lt = function() " .. s .. " return true end }")
    self:line(ind + 1, "local _ = setmetatable({}, mt) < setmetatable({}, mt) end")
  end
end

function Gen:k_cleanup(ctx, ind)
  local r = self.r
  local c = self:nested(ctx)
  local ok, e = self:var("ok"), self:var("e")
  self:line(ind, "do")
  self:line(ind + 1, "local " .. ok .. ", " .. e .. " = pcall(function()")
  self:block(c, ind + 2, self:small_n(c))
  self:line(ind + 1, "end)")
  self:line(ind + 1, "if not " .. ok .. " then")
  self:line(ind + 2, "if curio.CancelledError:matches(" .. e .. ") then")
  self:line(ind + 3, r.weighted({
    { 4, "curio.sleep(0.001)" },
    { 2, "pcall(curio.sleep, 0.001)" },
    { 1, "curio.ignore_after(0.002, curio.sleep, 0.001)" },
    { 1, "curio.sleep(0)" },
  }))
  self:line(ind + 2, "end")
  if r.chance(0.7) then self:line(ind + 2, "error(" .. e .. ", 0)") end
  self:line(ind + 1, "end")
  self:line(ind, "end")
end

function Gen:k_nocancel(ctx, ind)
  local r = self.r
  -- no yield in there: the consumer would run with cancellation disabled
  local c = self:nested(ctx, { safe = true, gen = false })
  self:line(ind, "pcall(curio.disable_cancellation, function()")
  self:block(c, ind + 1, self:small_n(c))
  self:line(ind + 1, "local pending = curio.check_cancellation()")
  if r.chance(0.3) then self:line(ind + 1, "if pending then error(pending, 0) end") end
  self:line(ind, "end)")
  if r.chance(0.3) then self:line(ind, "pcall(curio.check_cancellation)") end
end

function Gen:k_misc(_, ind)
  local r = self.r
  local choice = r.weighted({ { 3, "fields" }, { 1, "clock" }, { 1, "run" }, { 1, "krun" }, { 1, "tostring" } })
  if choice == "fields" then
    self:line(ind, "do local ct = curio.current_task() if ct then local _ = ct.id, ct.name, ct.daemon, "
      .. "ct.cancelled, ct:traceback() end end")
  elseif choice == "clock" then
    self:line(ind, "local _ = curio.clock()")
  elseif choice == "run" then
    self:line(ind, "pcall(curio.run, function() end)")
  elseif choice == "krun" then
    self:line(ind, "if KERNEL then pcall(KERNEL." .. r.pick({ "run", "close" }) .. ", KERNEL, function() end) end")
  else
    self:line(ind, "local _ = tostring(Q[1]) .. tostring(LK[1]) .. tostring(EV[1]) .. tostring(curio.current_task())")
  end
end

function Gen:k_gc(_, ind)
  local r = self.r
  if r.chance(0.5) then
    self:line(ind, "setmetatable({}, { __gc = function() " .. r.pick({ "pcall(curio.sleep, 0)", "curio.sleep(0)",
      "PUT(4, 1)", "pcall(curio.spawn, curio.sleep, 0)" }) .. " end })")
  end
  self:line(ind, r.pick({ "collectgarbage()", "collectgarbage(\"step\")" }))
end

function Gen:k_loop(ctx, ind)
  local c = self:nested(ctx)
  self:line(ind, "for _ = 1, " .. self.r.int(2, 3) .. " do")
  self:block(c, ind + 1, self.r.int(1, 2))
  self:line(ind, "end")
end

-- Misuse of the task's own coroutine: a stray yield to the kernel.
function Gen:k_rogue(_, ind)
  self:line(ind, self.r.pick({
    "pcall(coroutine.yield, " .. self:k() .. ")",
    "pcall(coroutine.yield)",
    "pcall(curio.coroutine.yield, \"stray\")",
  }))
end

function Gen:k_yield(_, ind)
  self:line(ind, "curio.coroutine.yield(" .. self:k() .. ")")
end


-- Many values through every path that carries results or arguments.
function Gen:k_many(ctx, ind)
  local r = self.r
  local n = r.pick({ "20", "60", "200", "1000" })
  local choice = r.weighted({ { 3, "join" }, { 2, "result" }, { 2, "args" }, { 1, "timeout" },
                              { 1, "gen" }, { 1, "group" }, { 1, "with" } })
  local many = "table.unpack(BIG, 1, " .. n .. ")"
  if choice == "join" or choice == "result" then
    local t = self:var("t")
    self:line(ind, "if B() then")
    self:line(ind + 1, "local " .. t .. " = curio.spawn(function() curio.sleep(" .. self:t_sleep() .. ") return "
      .. many .. " end)")
    self:line(ind + 1, "T[#T + 1] = " .. t)
    if r.chance(0.5) then self:line(ind + 1, t .. ":wait()") end
    if choice == "join" then
      self:line(ind + 1, "pcall(" .. t .. ".join, " .. t .. ")")
    else
      self:line(ind + 1, t .. ":wait() pcall(" .. t .. ".result, " .. t .. ")")
    end
    self:line(ind, "end")
  elseif choice == "args" then
    local target = ctx.fi < self.nf and "F[" .. r.int(ctx.fi + 1, self.nf) .. "]"
      or "function(...) curio.sleep(0) return ... end"
    local t = self:var("t")
    self:line(ind, "if B() then")
    self:line(ind + 1, "local " .. t .. " = curio.spawn(" .. target .. ", " .. many .. ")")
    self:line(ind + 1, "T[#T + 1] = " .. t)
    self:child_followup(ctx, ind + 1, t)
    self:line(ind, "end")
  elseif choice == "timeout" then
    self:line(ind, self:timed("function(...) curio.sleep(0) return ... end", { many }))
  elseif choice == "gen" then
    self:line(ind, "do local gen = curio.coroutine.wrap(function(...) curio.sleep(0) "
      .. "curio.coroutine.yield(...) curio.sleep(0) return " .. many .. " end)")
    self:line(ind + 1, "pcall(gen, " .. many .. ") pcall(gen) end")
  elseif choice == "group" then
    self:timed_block(ind, function(i)
      self:line(i, "local g = curio.TaskGroup(function(g) if B() then g:spawn(function() return " .. many
        .. " end) end end)")
      self:line(i, "pcall(g.result, g) pcall(g.results, g)")
    end)
  else
    self:timed_block(ind, function(i)
      self:line(i, "LK[1]:with(function(...) curio.sleep(0) return ... end, " .. many .. ")")
    end)
  end
end

-- Resumes, closes or looks at a coroutine another task may be blocked in.
function Gen:k_co_steal(_, ind)
  local op = self.r.pick({
    "curio.coroutine.resume(c, 1)", "coroutine.resume(c, 2)", "coroutine.close(c)",
    "curio.coroutine.close(c)", "curio.coroutine.status(c)", "coroutine.status(c)",
  })
  self:line(ind, "do local n = #COS if n > 0 then local c = COS[1 + " .. self:k() .. " % n] pcall(function() "
    .. "return " .. op .. " end) end end")
end

-- Writes to task fields, some of them read-only.
function Gen:k_task_abuse(_, ind)
  local r = self.r
  local field = r.pick({
    "name = 42", "name = {}", "name = nil", "name = string.rep(\"n\", 300)", "id = 7",
    "daemon = true", "cancelled = false", "terminated = true", "exception = \"x\"", "foo = 1",
    "name = setmetatable({}, { __tostring = function() error(\"name\") end })",
  })
  self:line(ind, "do local v = pick(" .. self:k() .. ") or curio.current_task() pcall(function() v." .. field
    .. " end) end")
end

-- A task group shared by every task: spawns into it and waits for its next
-- task from anywhere. (Not its join or cancel_remaining: they wait for the
-- members to end without a time limit, and a member may be the caller's
-- ancestor or be waiting for it, a deadlock of the program's own.)
function Gen:k_grp_shared(ctx, ind)
  local r = self.r
  self:line(ind, "do local n = #GRPS local g = n > 0 and GRPS[1 + " .. self:k() .. " % n] if g then")
  local choice = r.weighted({ { 3, "spawn" }, { 2, "next" }, { 1, "add_other" }, { 1, "results" } })
  if choice == "spawn" then
    local target = ctx.fi < self.nf and "F[" .. r.int(ctx.fi + 1, self.nf) .. "]" or "curio.sleep, 0.001"
    self:line(ind + 1, "if B() then pcall(g.spawn, g, " .. target .. ") end")
  elseif choice == "next" then
    self:line(ind + 1, "local ok, d = pcall(curio.ignore_after, " .. self:t_timeout() .. ", g.next_done, g)")
    self:line(ind + 1, "if ok and type(d) == \"userdata\" then pcall(d.result, d) end")
  elseif choice == "add_other" then
    self:line(ind + 1, "local v = pick(" .. self:k() .. ") if v and v.terminated then pcall(g.add_task, g, v) end")
  else
    self:line(ind + 1, "pcall(g.results, g) pcall(g.exceptions, g) pcall(g.result, g)")
  end
  self:line(ind, "end end")
end

-- Odd durations: negative, NaN, huge, strings, tables.
function Gen:k_weird_time(_, ind)
  local r = self.r
  local weird = r.pick({ "-1", "0/0", "math.huge", "\"0.001\"", "{}", "-0.0", "1e-300", "true" })
  local choice = r.weighted({ { 2, "block" }, { 2, "sleep" }, { 1, "at" } })
  if choice == "block" then
    self:line(ind, "pcall(curio." .. r.pick({ "timeout_after", "ignore_after" }) .. ", " .. weird
      .. ", curio.sleep, 0.001)")
  elseif choice == "sleep" then
    self:line(ind, "pcall(curio.ignore_after, 0.002, curio.sleep, " .. weird .. ")")
  else
    self:line(ind, "pcall(curio." .. r.pick({ "timeout_at", "ignore_at" }) .. ", " .. weird
      .. ", curio.sleep, 0.001)")
  end
end

-- Garbage whose finalizers use the kernel at whatever moment the collector
-- runs them.
function Gen:k_junk(_, ind)
  self:line(ind, "JUNK(" .. self.r.int(1, 20) .. ")")
end

-- A task that never ends: it swallows its cancellation and goes on waiting;
-- the kernel's shutdown gives up on it after shutdown_timeout.
function Gen:k_stubborn(_, ind)
  local wait = self.r.pick({
    "pcall(curio.sleep, 0.001)", "pcall(curio.sleep, 0)", "pcall(EV[2].wait, EV[2])",
    "pcall(GET, 1)", "pcall(PUT, 2, 1)", "pcall(curio.ignore_after, 0.001, LK[1].with, LK[1], curio.sleep, 0)",
    "pcall(curio.timeout_after, 0.001, curio.sleep, 0.002)", "pcall(LK[2].with, LK[2], curio.sleep, 0.001)",
  })
  self:line(ind, "if B() then T[#T + 1] = curio." .. self.r.pick({ "spawn", "spawn_daemon" })
    .. "(function() while true do " .. wait .. " pcall(curio.sleep, 0) end end) end")
end

-- Primitives made with odd arguments, then used once.
-- Sockets: UDP datagrams between U[1] and U[2], a TCP pair through a
-- listener, streams, closes at any moment; every wait bounded.
function Gen:k_sock(_, ind)
  local r = self.r
  local i, j = r.int(1, 2), r.int(1, 2)
  local t = self:t_timeout()
  local choice = r.weighted({ { 4, "sendto" }, { 4, "recvfrom" }, { 1, "close" }, { 3, "tcp" },
                              { 2, "tcp_use" }, { 1, "tcp_close" }, { 1, "bad" } })
  if choice == "sendto" then
    self:line(ind, ("pcall(U[%d].sendto, U[%d], %q, UA[%d])"):format(i, i, ("d"):rep(r.int(0, 40)), j))
  elseif choice == "recvfrom" then
    self:line(ind, ("pcall(curio.ignore_after, %s, U[%d].recvfrom, U[%d], %d)"):format(t, i, i, r.int(0, 100)))
  elseif choice == "close" then
    self:line(ind, ("pcall(U[%d].close, U[%d])"):format(i, i))
  elseif choice == "tcp" then
    self:line(ind, "pcall(curio.ignore_after, " .. t .. ", function() "
      .. "local l <close> = curio.tcp_server_socket(\"127.0.0.1\", 0) "
      .. "local acc = curio.spawn(function() return l:accept() end) "
      .. "local c = curio.open_connection(\"127.0.0.1\", l:getsockname().port) "
      .. "TCP[1], TCP[2] = c, acc:join() end)")
  elseif choice == "tcp_use" then
    local a, b = r.int(1, 2), r.int(1, 2)
    local op = r.pick({
      ("TCP[%d]:sendall(%q)"):format(a, ("line\n"):rep(r.int(0, 3))),
      ("TCP[%d]:recv(%d)"):format(b, r.int(0, 64)),
      ("TCP[%d]:as_stream():readline()"):format(b),
      ("TCP[%d]:as_stream():read_exactly(%d)"):format(b, r.int(0, 8)),
      ("TCP[%d]:send(%q)"):format(a, "x"),
      ("TCP[%d]:shutdown(%q)"):format(a, r.pick({ "r", "w", "rw" })),
    })
    self:line(ind, ("pcall(curio.ignore_after, %s, function() if TCP[%d] and TCP[%d] then %s end end)")
      :format(t, a, b, op))
  elseif choice == "tcp_close" then
    self:line(ind, ("if TCP[%d] then pcall(TCP[%d].close, TCP[%d]) end"):format(i, i, i))
  else
    self:line(ind, r.pick({
      "pcall(curio.socket, \"bogus\")", "pcall(U[1].setsockopt, U[1], \"SO_BOGUS\", 1)",
      "pcall(U[1].bind, U[1], { \"127.0.0.1\", 70000 })", "pcall(U[2].recv, U[2], -1)",
      "pcall(curio.open_connection, 42, 1)",
    }))
  end
end

-- Processes: short children and worker calls, each bounded by a timeout,
-- killed, cancelled or left to the reaper; bad arguments.
function Gen:k_proc(_, ind)
  local r = self.r
  local t = r.pick({ "0.001", "0.005", "0.02", "0.05" })
  self:line(ind, r.pick({
    "pcall(curio.ignore_after, " .. t .. ", curio.subprocess.run, { \"true\" })",
    "pcall(curio.ignore_after, " .. t .. ", curio.subprocess.check_output, { \"echo\", \"fuzz\" })",
    "pcall(curio.ignore_after, " .. t .. ", curio.subprocess.run, { \"cat\" }, "
      .. "{ input = (\"x\"):rep(" .. r.int(0, 100000) .. "), capture_output = true })",
    "pcall(curio.ignore_after, " .. t .. ", curio.subprocess.run, { \"sleep\", \"1\" }, { timeout = 0.001 })",
    "do local ok, p = pcall(curio.subprocess.Popen, { \"sleep\", \"0.01\" }) "
      .. "if ok then " .. r.pick({ "p:kill()", "pcall(curio.ignore_after, " .. t .. ", p.wait, p)", "p:poll()", "" })
      .. " end end",
    "pcall(curio.ignore_after, " .. t .. ", curio.run_in_process, function(x) return x + 1 end, " .. r.int(1, 9) .. ")",
    "pcall(curio.ignore_after, " .. t .. ", curio.run_in_process, function() while true do end end)",
    "pcall(curio.subprocess.Popen, " .. r.pick({ "{}", "{ 1 }", "\"x\"", "{ \"no-such-program-fuzz\" }" }) .. ")",
    "pcall(curio.run_in_process, print)",
  }))
end

function Gen:k_ctor(_, ind)
  local r = self.r
  local ctor = r.pick({
    "curio.Queue(-1)", "curio.Queue(0.5)", "curio.Queue(math.huge)", "curio.Queue(2^53)", "curio.Queue(\"2\")",
    "curio.LifoQueue(0)", "curio.PriorityQueue(-3)", "curio.Semaphore(-1)", "curio.Semaphore(0)",
    "curio.Semaphore(2^40)", "curio.BoundedSemaphore(0)", "curio.Condition(SM[1])", "curio.Condition({})",
    "curio.Condition(LK[2])", "curio.Kernel({ threads = 0 })", "curio.Kernel({ shutdown_timeout = -1 })",
    "curio.Kernel({ shutdown_timeout = 0/0 })", "curio.TaskGroup({ wait = \"bogus\" })", "curio.Event(1, 2)",
  })
  local use = r.pick({
    "pcall(curio.ignore_after, 0.001, function() local q = x if q.put then q:put(1) q:get() end end)",
    "pcall(curio.ignore_after, 0.001, function() local l = x if l.acquire then l:acquire() l:release() end end)",
    "pcall(function() return x:qsize(), x:full(), x:empty() end)",
    "pcall(function() return x:value(), x:locked() end)",
    "pcall(curio.ignore_after, 0.001, function() x:with(function() x:notify_all() end) end)",
    "pcall(function() x:close() end)",
    "pcall(curio.ignore_after, 0.001, function() x:wait() end)",
  })
  self:line(ind, "do local ok, x = pcall(function() return " .. ctor .. " end) if ok and x then " .. use .. " end end")
end

-- A second kernel used from inside a task of the first.
function Gen:k_other_kernel(_, ind)
  if self.avoid.kernel2 then return self:k_sleep(nil, ind) end
  self:line(ind, "if KERNEL2 then " .. self.r.pick({
    "pcall(KERNEL2.close, KERNEL2)", "pcall(KERNEL2.run, KERNEL2, function() end)",
    "local _ = tostring(KERNEL2)",
  }) .. " end")
end

-- A socket stream pair shared by every task (made as main starts): written
-- with numbered lines, read whole or in pieces, closed at any moment.
function Gen:k_sstream(_, ind)
  local r = self.r
  local t = self:t_timeout()
  local choice = r.weighted({ { 2, "crowd" }, { 4, "write" }, { 4, "readline" }, { 2, "read" },
                              { 1, "read_exactly" }, { 1, "close" } })
  if choice == "crowd" then
    -- readers retrying after ReadResourceBusy, and a writer, at once
    local m = r.int(3, 30)
    self:line(ind, "for _ = 1, " .. r.int(2, 4) .. " do if B() then T[#T + 1] = curio.spawn(function() for _ = 1, " .. m
      .. " do local s = SS.r if not s then break end local ok, d = pcall(curio.ignore_after, " .. t
      .. ", s." .. r.pick({ "readline, s", "read, s, 9", "readline, s" }) .. ") if ok then FEED(SSEQ, d) end "
      .. "curio.sleep(0) end end) end end")
    self:line(ind, "if B() then T[#T + 1] = curio.spawn(function() for _ = 1, " .. m .. " do SWRITE(" .. r.int(1, 3)
      .. ", " .. t .. ") curio.sleep(0) end end) end")
  elseif choice == "write" then
    self:line(ind, "SWRITE(" .. r.int(1, 3) .. ", " .. t .. ")")
  elseif choice == "readline" then
    self:line(ind, "do local s = SS.r if s then local ok, d = pcall(curio.ignore_after, " .. t
      .. ", s.readline, s) if ok then FEED(SSEQ, d) end end end")
  elseif choice == "read" then
    self:line(ind, "do local s = SS.r if s then local ok, d = pcall(curio.ignore_after, " .. t
      .. ", s.read, s, " .. r.int(1, 40) .. ") if ok then FEED(SSEQ, d) end end end")
  elseif choice == "read_exactly" then
    self:line(ind, "do local s = SS.r if s then local ok, d = pcall(curio.ignore_after, " .. t
      .. ", s.read_exactly, s, " .. r.int(1, 40) .. ")")
    self:line(ind + 1, "if ok then FEED(SSEQ, d) elseif curio.IncompleteRead:matches(d) then FEED(SSEQ, d.partial) end end end")
  else
    self:line(ind, r.pick({ "if SS.w then pcall(SS.w.close, SS.w) end", "if SS.r then pcall(SS.r.close, SS.r) end",
                            "if SS.ws then pcall(SS.ws.close, SS.ws) end", "if SS.rs then pcall(SS.rs.close, SS.rs) end" }))
  end
end

-- An aopen file stream shared by every task: its reads are worker-thread
-- jobs, cut by timeouts and cancellations, and it may be closed while one
-- runs.
function Gen:k_fstream(_, ind)
  local r = self.r
  local t = self:t_timeout()
  local choice = r.weighted({ { 4, "readline" }, { 2, "read" }, { 1, "lines" }, { 1, "close" } })
  if choice == "readline" then
    self:line(ind, "do local s = FS local ok, d = pcall(curio.ignore_after, " .. t
      .. ", s.readline, s) if ok then FEED(FSEQ, d) end end")
  elseif choice == "read" then
    self:line(ind, "do local s = FS local ok, d = pcall(curio.ignore_after, " .. t
      .. ", s.read, s, " .. r.pick({ "1", "7", "100", "5000" }) .. ") if ok then FEED(FSEQ, d) end end")
  elseif choice == "lines" then
    self:line(ind, "pcall(curio.ignore_after, " .. t .. ", function() for _ = 1, " .. r.int(1, 20)
      .. " do local d = FS:readline() FEED(FSEQ, d) if d == \"\" then break end end end)")
  else
    self:line(ind, "pcall(FS.close, FS)")
  end
end

-- Worker-thread and worker-process jobs that end by themselves, left
-- running when their task is cancelled or the kernel closes.
function Gen:k_job_left(_, ind)
  local r = self.r
  local busy = r.pick({ "0.001", "0.005", "0.02" })
  self:line(ind, r.pick({
    "if B() then T[#T + 1] = curio.spawn_daemon(curio.run_in_thread, BUSY, " .. busy .. ") end",
    "if B() then T[#T + 1] = curio.spawn(curio.run_in_thread, BUSY, " .. busy .. ") end",
    "pcall(curio.ignore_after, " .. self:t_timeout() .. ", curio.run_in_thread, BUSY, " .. busy .. ")",
    "if B() then T[#T + 1] = curio.spawn_daemon(curio.run_in_process, BUSY, " .. busy .. ") end",
  }))
end

-- A second kernel closed while its worker-thread job runs.
function Gen:k_k2_job(_, ind)
  if self.avoid.kernel2 then return self:k_sleep(nil, ind) end
  self:line(ind, "if KERNEL2 then pcall(KERNEL2.run, KERNEL2, function() curio.spawn(curio.run_in_thread, BUSY, "
    .. self.r.pick({ "0.001", "0.01" }) .. ") curio.sleep(0) end) " .. self.r.pick({ "pcall(KERNEL2.close, KERNEL2)", "" })
    .. " end")
end

-- Worker threads that do not end by themselves: a thread blocked in a
-- UniversalQueue nobody feeds, or computing for ever. The kernel's close
-- must still be bounded (shutdown_timeout), and the process exit.
function Gen:k_job_stuck(_, ind)
  self:line(ind, "if B() then T[#T + 1] = curio.spawn_daemon(curio.run_in_thread, " .. self.r.pick({
    "function(q) return q:get() end, curio.UniversalQueue()", "function() while true do end end",
    "function(q) q:get() return q:get() end, UQ",
  }) .. ") end")
  if self.r.chance(0.5) then self:line(ind, "pcall(UQ.put, UQ, " .. self:k() .. ")") end
end

-- Sockets handed to children as stdin or stdout; the parent goes on using
-- them (a socket switched to blocking would stop the whole kernel).
function Gen:k_sock_child(_, ind)
  local r = self.r
  local i = r.int(1, 2)
  local args = r.pick({
    "{ \"true\" }, { stdout = TCP[" .. i .. "] }", "{ \"cat\" }, { stdin = TCP[" .. i .. "], stdout = curio.subprocess.DEVNULL }",
    "{ \"echo\", \"from child\" }, { stdout = TCP[" .. i .. "] }",
  })
  self:line(ind, "pcall(curio.ignore_after, 0.05, function() if TCP[" .. i .. "] then "
    .. "local p = curio.subprocess.Popen(" .. args .. ") p:wait() end end)")
  self:line(ind, "pcall(curio.ignore_after, 0.002, function() if TCP[" .. i .. "] then TCP[" .. i .. "]:recv(100) end end)")
end

---------------------------------------------------------------------------
-- TLS (issue 19): statements drawn from a second generator (self.tr), so
-- that a program without TLS is the same text as before TLS existed, and a
-- program with TLS is that text with TLS statements between its own. The
-- certificate, key and CA come from the environment (CURIO_FUZZ_CERT,
-- CURIO_FUZZ_KEY, CURIO_FUZZ_CA, made by spec/fuzz_spec.lua with the
-- openssl program); without them the TLS statements do nothing.

function Gen:tls_prologue()
  local tr = self.tr
  self:line(0, "local ssl = require \"curio.ssl\"")
  self:line(0, "local TLS = {}")
  self:line(0, "do local cert, key, ca = os.getenv(\"CURIO_FUZZ_CERT\"), os.getenv(\"CURIO_FUZZ_KEY\"), "
    .. "os.getenv(\"CURIO_FUZZ_CA\")")
  self:line(1, "if cert and key and ca then TLS.s = ssl.create_default_context(\"server\") "
    .. "TLS.s:load_cert_chain(cert, key) TLS.c = ssl.create_default_context(\"client\") "
    .. "TLS.c:load_verify_locations(ca) end")
  self:line(0, "end")
  -- bytes whose every prefix is checkable: a receiver compares what it
  -- got with TDATA at the same offset (FUZZ-CORRUPT: a gap, a byte twice)
  self:line(0, "local TDATA do local t = {} for i = 1, " .. tr.pick({ "5000", "40000" })
    .. " do t[i] = (\"%07d\\n\"):format(i) end TDATA = table.concat(t) end")
  -- a pair of TLS sockets over loopback, each side's handshake on wrap or
  -- not (then by do_handshake, or by the first recv/send), all of it
  -- bounded by t; on a timeout or an error every piece made is closed
  self:line(0, "local TPAIRS, TBYTES = 0, 0")
  self:line(0, "local function TLS_PAIR(hs1, hs2, t)")
  self:line(1, "if not TLS.s then return nil end")
  self:line(1, "local got = {}")
  self:line(1, "pcall(curio.ignore_after, t, function()")
  self:line(2, "local l <close> = curio.tcp_server_socket(\"127.0.0.1\", 0)")
  self:line(2, "got.t = curio.spawn(pcall, function() got.a = l:accept() "
    .. "got.s = TLS.s:wrap_socket(got.a, { server_side = true, do_handshake_on_connect = hs1 }) "
    .. "if hs2 and not hs1 then got.s:do_handshake() end got.ok = true end)")
  self:line(2, "got.p = curio.open_connection(\"127.0.0.1\", l:getsockname().port)")
  self:line(2, "got.c = TLS.c:wrap_socket(got.p, { server_hostname = \"localhost\", do_handshake_on_connect = hs2 })")
  self:line(2, "if hs1 and not hs2 then got.c:do_handshake() end")
  self:line(2, "got.t:join() got.done = got.ok")
  self:line(1, "end)")
  self:line(1, "if got.done then TPAIRS = TPAIRS + 1 return got.c, got.s end")
  self:line(1, "if got.t then pcall(got.t.cancel, got.t) end")
  self:line(1, "for _, k in ipairs({ \"c\", \"s\", \"p\", \"a\" }) do if got[k] then pcall(got[k].close, got[k]) end end")
  self:line(0, "end")
  -- the shared TLS stream: numbered lines "T<n>:<check>" as on SS, made
  -- again once a side is closed (a new check: readers and writers keep
  -- the check of the stream they began with)
  self:line(0, "local TS, TSEQ = {}, { tag = \"T\", w = 0, r = 0, buf = \"\" }")
  self:line(0, "local TNW, TNR, TMADE = 0, 0, 0")
  self:line(0, "local function TS_MAKE(hs1, hs2)")
  self:line(1, "if TS.busy or (TS.rs and not TS.rs:closed() and not TS.ws:closed()) then return end")
  self:line(1, "TS.busy = true")
  self:line(1, "local c, s = TLS_PAIR(hs1, hs2, 0.5)")
  self:line(1, "TS.busy = nil")
  self:line(1, "if not c then return end")
  self:line(1, "for _, k in ipairs({ \"ws\", \"rs\" }) do if TS[k] then pcall(TS[k].close, TS[k]) end end")
  self:line(1, "TS = { ws = c, rs = s, w = c:as_stream(), r = s:as_stream() }")
  self:line(1, "TSEQ = { tag = \"T\", w = 0, r = 0, buf = \"\" } TMADE = TMADE + 1")
  self:line(0, "end")
  self:line(0, "local function TWRITE(k, t)")
  self:line(1, "local s, q = TS.w, TSEQ if not s or q.w - q.r > 1000 then return end")
  self:line(1, "local n, text = q.w, {}")
  self:line(1, "for i = 1, k do text[i] = LINE(\"T\", n + i) end")
  self:line(1, "local ok, e = pcall(curio.ignore_after, t, function() s:write(table.concat(text)) return true end)")
  self:line(1, "if ok and e == true then q.w = n + k TNW = TNW + k elseif ok or curio.CancelledError:matches(e) then "
    .. "q.taint = true end")
  self:line(0, "end")
  self:line(0, "local function TREAD(how, n, t)")
  self:line(1, "local s, q = TS.r, TSEQ if not s then return end")
  self:line(1, "local r0 = q.r")
  self:line(1, "local ok, d = pcall(curio.ignore_after, t, s[how], s, n)")
  self:line(1, "if ok then FEED(q, d) elseif curio.IncompleteRead:matches(d) then FEED(q, d.partial) end")
  self:line(1, "TNR = TNR + q.r - r0")
  self:line(0, "end")
  -- a receiver that checks every byte against TDATA, and a sender that
  -- goes on from err.bytes_sent after a timeout (the same bytes: no gap,
  -- no byte twice) or gives up
  self:line(0, "local function TRECV(s, n, t)")
  self:line(1, "local at = 0")
  self:line(1, "pcall(curio.ignore_after, t, function() while at < n do local d = s:recv(" .. tr.pick({ "100", "4096", "65536" })
    .. ") if d == \"\" then break end")
  self:line(2, "if d ~= TDATA:sub(at + 1, at + #d) then print((\"FUZZ-CORRUPT tls pair: %d bytes at %d differ\"):format(#d, at)) break end")
  self:line(2, "at = at + #d TBYTES = TBYTES + #d end end)")
  self:line(1, "return at")
  self:line(0, "end")
  self:line(0, "local function TSEND(s, n, t, tries)")
  self:line(1, "local at = 0")
  self:line(1, "for _ = 1, tries do")
  self:line(2, "local ok, e = pcall(curio.timeout_after, t, s.sendall, s, TDATA:sub(at + 1, n))")
  self:line(2, "if ok then return n end")
  self:line(2, "if type(e) ~= \"table\" or not e.bytes_sent or not curio.TaskTimeout:matches(e) then return at end")
  self:line(2, "at = at + e.bytes_sent")
  self:line(1, "end")
  self:line(1, "return at")
  self:line(0, "end")
end

local TLS_KINDS = {
  { 2, "make" }, { 4, "write" }, { 3, "readline" }, { 1, "read" }, { 1, "read_exactly" }, { 2, "crowd" },
  { 2, "close" }, { 4, "pair" }, { 1, "waiting" }, { 1, "busy" },
}

function Gen:hs()
  return self.tr.pick({ "true, true", "true, true", "false, false", "true, false", "false, true" })
end

-- One TLS statement (never where cancellation is held back: ctx.safe).
function Gen:tls_stmt(_, ind)
  local tr = self.tr
  local t = self:t_timeout_tr()
  local choice = tr.weighted(TLS_KINDS)
  self.used["tls_" .. choice] = true
  if choice == "make" then
    self:line(ind, "TS_MAKE(" .. self:hs() .. ")")
  elseif choice == "write" then
    self:line(ind, "TWRITE(" .. tr.int(1, 3) .. ", " .. t .. ")")
  elseif choice == "readline" then
    self:line(ind, "TREAD(\"readline\", nil, " .. t .. ")")
  elseif choice == "read" then
    self:line(ind, "TREAD(\"read\", " .. tr.int(1, 40) .. ", " .. t .. ")")
  elseif choice == "read_exactly" then
    self:line(ind, "TREAD(\"read_exactly\", " .. tr.int(1, 40) .. ", " .. t .. ")")
  elseif choice == "crowd" then
    -- readers and writers sharing the TLS stream: ReadResourceBusy and
    -- WriteResourceBusy are caught, the lines still come whole and in order
    local m = tr.int(3, 20)
    self:line(ind, "for _ = 1, " .. tr.int(2, 4) .. " do if B() then T[#T + 1] = curio.spawn(function() for _ = 1, " .. m
      .. " do TREAD(\"" .. tr.pick({ "readline", "read", "readline" }) .. "\", 9, " .. t .. ") curio.sleep(0) end end) end end")
    self:line(ind, "for _ = 1, " .. tr.int(1, 2) .. " do if B() then T[#T + 1] = curio.spawn(function() for _ = 1, " .. m
      .. " do TWRITE(" .. tr.int(1, 3) .. ", " .. t .. ") curio.sleep(0) end end) end end")
  elseif choice == "close" then
    self:line(ind, tr.pick({
      "if TS.w then pcall(TS.w.close, TS.w) end", "if TS.r then pcall(TS.r.close, TS.r) end",
      "if TS.ws then pcall(TS.ws.close, TS.ws) end", "if TS.rs then pcall(TS.rs.close, TS.rs) end",
      "if TS.ws then pcall(curio.ignore_after, " .. t .. ", TS.ws.shutdown, TS.ws, \"w\") end",
      "if TS.rs then pcall(curio.ignore_after, " .. t .. ", TS.rs.shutdown, TS.rs, \"rw\") end",
      "if TS.ws then local ok, p = pcall(curio.ignore_after, " .. t .. ", TS.ws.unwrap, TS.ws) "
        .. "if ok and p then p:close() end end",
    }))
  elseif choice == "pair" then
    -- a pair of its own: a transfer checked byte by byte, interrupted by
    -- timeouts, cancellation, close, shutdown or unwrap at a random point
    local n = tr.pick({ "100", "20000", "#TDATA" })
    self:line(ind, "if B() then T[#T + 1] = curio.spawn(function()")
    self:line(ind + 1, "local c, s = TLS_PAIR(" .. self:hs() .. ", " .. tr.pick({ "0.002", "0.01", "0.3", "0.3" }) .. ")")
    self:line(ind + 1, "if not c then return end")
    self:line(ind + 1, "local cc <close> = c")
    self:line(ind + 1, "local sc <close> = s")
    self:line(ind + 1, "local rd = curio.spawn(TRECV, s, " .. n .. ", " .. tr.pick({ "0.005", "0.05", "0.1" }) .. ")")
    self:line(ind + 1, "local wr = curio.spawn(TSEND, c, " .. n .. ", " .. tr.pick({ "0.001", "0.005", "0.05" }) .. ", "
      .. tr.int(1, 4) .. ")")
    self:line(ind + 1, "curio.sleep(" .. tr.pick({ "0", "0", "0.001", "0.003" }) .. ")")
    self:line(ind + 1, tr.pick({
      "wr:cancel()", "rd:cancel()", "c:close()", "s:close()", "pcall(curio.ignore_after, 0.01, c.shutdown, c, \"w\")",
      "pcall(curio.ignore_after, 0.01, function() local p = c:unwrap() p:close() end)",
      "pcall(c.recv, c, 1)", "pcall(s.sendall, s, \"x\")", "", "",
    }))
    self:line(ind + 1, "pcall(curio.ignore_after, 0.5, wr.join, wr) pcall(curio.ignore_after, 0.5, rd.join, rd)")
    self:line(ind, "end) end")
  elseif choice == "waiting" then
    -- daemon tasks in TLS waits when the kernel closes (the program ends)
    self:line(ind, "if B() then T[#T + 1] = curio.spawn_daemon(function() local c, s = TLS_PAIR(" .. self:hs() .. ", 0.1) "
      .. "if c then local cc <close> = c local sc <close> = s curio.spawn_daemon(TSEND, c, #TDATA, 0.1, 1) "
      .. "pcall(curio.ignore_after, 0.1, " .. tr.pick({ "s.recv, s, 1", "c.recv, c, 1", "s.do_handshake, s" })
      .. ") end end) end")
  else
    -- one TLS socket, several tasks: a second reader, writer, handshake
    -- or unwrap at once is ResourceBusy, caught
    self:line(ind, "if B() then T[#T + 1] = curio.spawn(function() local c, s = TLS_PAIR(false, false, 0.3) if not c then return end "
      .. "local cc <close> = c local sc <close> = s local ts = {}")
    self:line(ind + 1, "for i = 1, " .. tr.int(2, 4) .. " do ts[i] = curio.spawn(function() return pcall(curio.ignore_after, "
      .. t .. ", " .. tr.pick({ "c.do_handshake, c", "c.recv, c, 10", "c.sendall, c, TDATA:sub(1, 100)", "c.unwrap, c" })
      .. ") end) end")
    self:line(ind + 1, "TRECV(s, 100, " .. t .. ")")
    self:line(ind + 1, "for _, x in ipairs(ts) do pcall(curio.ignore_after, 0.5, x.join, x) end")
    self:line(ind, "end) end")
  end
end

function Gen:t_timeout_tr()
  return self.tr.pick({ "0", "0.0005", "0.001", "0.002", "0.003", "0.005", "0.008", "0.02" })
end

---------------------------------------------------------------------------
-- the program

function Gen:prologue()
  local r = self.r
  self:line(0, "-- curio fuzz program: seed " .. self.seed .. ", index " .. self.index
    .. (self.runner_kind == "bin" and " (run it with the curio program: build/bin/curio FILE)" or ""))
  self:line(0, "io.stdout:setvbuf(\"line\")")
  self:line(0, "local curio = require \"curio\"")
  self:line(0, "local budget = " .. r.int(30, 120))
  self:line(0, "local function B() if budget > 0 then budget = budget - 1 return true end return false end")
  self:line(0, "local T, GENS, FLAG, F = {}, {}, { false, false, false }, {}")
  self:line(0, "local KERNEL")
  -- prints the types only: tostring may fail on the values a program makes
  self:line(0, "local function SHOW(tag, ...) local t = { tag } for i = 1, math.min(select(\"#\", ...), 3) do "
    .. "t[#t + 1] = type((select(i, ...))) end print(table.concat(t, \" \")) end")
  self:line(0, "local function pick(k) local n = #T if n == 0 then return nil end return T[1 + k % n] end")
  self:line(0, "local Q = { curio.Queue(" .. r.int(1, 3) .. "), curio.LifoQueue(" .. r.int(1, 3)
    .. "), curio.PriorityQueue(" .. r.int(1, 3) .. "), curio.Queue() }")
  -- items put (put returned) and got (get returned), to check at the end
  -- that no item was lost: NPUT <= NGOT + qsize (more is fine: a putter
  -- whose item went in may never run again to count it)
  self:line(0, "local NPUT, NGOT = { 0, 0, 0, 0 }, { 0, 0, 0, 0 }")
  self:line(0, "local function PUT(i, ...) Q[i]:put(...) NPUT[i] = NPUT[i] + 1 end")
  self:line(0, "local function GET(i) local v, p = Q[i]:get() NGOT[i] = NGOT[i] + 1 return v, p end")
  self:line(0, "local LK = { curio.Lock(), curio.RLock() }")
  self:line(0, "local SM = { curio.Semaphore(" .. r.int(1, 2) .. "), curio.BoundedSemaphore(1) }")
  self:line(0, "local EV = { curio.Event(), curio.Event() }")
  self:line(0, "local CV = { curio.Condition(), curio.Condition(LK[1]), curio.Condition(LK[2]) }")
  self:line(0, "local COS, GRPS, BIG, KERNEL2 = {}, {}, {}, nil")
  self:line(0, "for i = 1, 1000 do BIG[i] = i end")
  -- two UDP sockets (no connect needed: usable from any task) and a slot
  -- for a TCP pair made by a task
  self:line(0, "local U = { curio.socket(\"inet\", \"dgram\"), curio.socket(\"inet\", \"dgram\") }")
  self:line(0, "U[1]:bind({ \"127.0.0.1\", 0 }) U[2]:bind({ \"127.0.0.1\", 0 })")
  self:line(0, "local UA = { U[1]:getsockname(), U[2]:getsockname() }")
  self:line(0, "local TCP = {}")
  -- streams shared by every task (kinds sstream, fstream): numbered lines
  -- ("S<n>:<check>" on a socket stream, "F<n>:<check>" in a file), each
  -- read checked whole and in order, whatever read it and however the
  -- reads were cut (FEED); FUZZ-CORRUPT when one is cut, merged, lost,
  -- duplicated or out of order. A write that may have been cut by its own
  -- timeout or cancellation taints the socket's check (the program did it).
  self:line(0, "local function LINE(tag, n) return (\"%s%d:%d\\n\"):format(tag, n, n * 7919 % 10007) end")
  self:line(0, "local SS, SSEQ, FS, FSEQ = {}, { tag = \"S\", w = 0, r = 0, buf = \"\" }, nil, "
    .. "{ tag = \"F\", r = 0, buf = \"\" }")
  self:line(0, "local function FEED(st, data)")
  self:line(1, "if type(data) ~= \"string\" or st.taint then return end")
  self:line(1, "st.buf = st.buf .. data")
  self:line(1, "while true do")
  self:line(2, "local line, rest = st.buf:match(\"^([^\\n]*\\n)(.*)$\")")
  self:line(2, "if not line then break end")
  self:line(2, "st.buf = rest")
  self:line(2, "if line ~= LINE(st.tag, st.r + 1) then")
  self:line(3, "print((\"FUZZ-CORRUPT %s stream: %q after line %d\"):format(st.tag, line, st.r)) st.taint = true return")
  self:line(2, "end")
  self:line(2, "st.r = st.r + 1")
  self:line(1, "end")
  self:line(0, "end")
  -- writes k numbered lines with a timeout; a write that its timeout or a
  -- cancellation may have cut taints the check (an error such as
  -- WriteResourceBusy or a closed stream wrote nothing)
  self:line(0, "local function SWRITE(k, t)")
  self:line(1, "local s = SS.w if not s or SSEQ.w - SSEQ.r > 1000 then return end")
  self:line(1, "local n, text = SSEQ.w, {}")
  self:line(1, "for i = 1, k do text[i] = LINE(\"S\", n + i) end")
  self:line(1, "local ok, e = pcall(curio.ignore_after, t, function() s:write(table.concat(text)) return true end)")
  self:line(1, "if ok and e == true then SSEQ.w = n + k elseif ok or curio.CancelledError:matches(e) then "
    .. "SSEQ.taint = true end")
  self:line(0, "end")
  self:line(0, "local function SS_MAKE() pcall(curio.ignore_after, 1, function() "
    .. "local l <close> = curio.tcp_server_socket(\"127.0.0.1\", 0) "
    .. "local acc = curio.spawn(l.accept, l) "
    .. "local c = curio.open_connection(\"127.0.0.1\", l:getsockname().port) "
    .. "local a = acc:join() SS.ws, SS.rs, SS.w, SS.r = c, a, c:as_stream(), a:as_stream() end) end")
  self:line(0, "local FPATH = os.tmpname()")
  self:line(0, "do local f = io.open(FPATH, \"w\") for n = 1, 3000 do f:write(LINE(\"F\", n)) end f:close() end")
  self:line(0, "FS = curio.aopen(FPATH)")
  -- a function that keeps a worker thread busy for `s` seconds, and a
  -- UniversalQueue that a thread may wait on
  self:line(0, "local function BUSY(s) local t0 = os.clock() while os.clock() - t0 < s do end return s end")
  self:line(0, "local UQ = curio.UniversalQueue()")
  if self.tls then self:tls_prologue() end
  if r.chance(0.15) then self:line(0, "SM[1] = curio.Semaphore(0)") end
  if r.chance(0.2) then
    self:line(0, r.pick({ "collectgarbage(\"incremental\", 1, 1000)", "collectgarbage(\"generational\")" }))
  end
  -- finalizers doing what never waits (and some things that may not work there)
  local deeds = { "EV[1]:set()", "EV[2]:clear()", "PUT(4, 1)", "pcall(curio.spawn, curio.sleep, 0)",
                  "local v = pick(7) if v then v:cancel({ blocking = false }) end", "pcall(curio.sleep, 0)",
                  "pcall(LK[1].release, LK[1])", "pcall(SM[1].release, SM[1])", "FLAG[1] = not FLAG[1]",
                  "pcall(curio.run, function() end)", "if KERNEL2 then pcall(KERNEL2.close, KERNEL2) end" }
  if self.avoid.kernel2 then deeds[#deeds] = nil end
  local chosen = {}
  for _ = 1, r.int(1, 3) do chosen[#chosen + 1] = r.pick(deeds) end
  self:line(0, "local function JUNK(n) for _ = 1, n do setmetatable({}, { __gc = function() "
    .. table.concat(chosen, " ") .. " end }) end end")
  if r.chance(0.25) and not self.avoid.kernel2 then
    -- a second kernel left with suspended tasks
    self:line(0, "KERNEL2 = curio.Kernel(" .. r.pick({ "", "{ sigint = false }", "{ shutdown_timeout = 0.2 }" }) .. ")")
    self:line(0, "KERNEL2:run(function() for _ = 1, 3 do curio.spawn(function() "
      .. r.pick({ "pcall(EV[1].wait, EV[1])", "curio.sleep(0.002)", "pcall(GET, 1)",
                  "pcall(curio.ignore_after, 0.003, SM[2].acquire, SM[2])" })
      .. " end) end curio.sleep(0) end)")
  end
end

function Gen:functions()
  for i = self.nf, 1, -1 do
    self:line(0, "F[" .. i .. "] = function(...)")
    local ctx = { depth = 0, fi = i, gen = false, safe = false }
    self:block(ctx, 1, self.r.int(3, 8))
    if self.r.chance(0.4) then self:line(1, "return " .. self:k() .. ", ...") end
    self:line(0, "end")
  end
end

function Gen:main()
  local r = self.r
  self:line(0, "local function main(...)")
  local ctx = { depth = 0, fi = 0, gen = false, safe = false }
  if not self.avoid.sstream then self:line(1, "if not SS.r then SS_MAKE() end") end
  if self.tls then self:line(1, "TS_MAKE(" .. self:hs() .. ")") end
  for _ = 1, r.int(1, 3) do self:k_spawn(ctx, 1) end
  self:block(ctx, 1, r.int(4, 12))
  if r.chance(0.5) then
    self:line(1, "for _, t in ipairs(T) do " .. self:timed("t.wait", { "t" }) .. " end")
  end
  if r.chance(0.05) and self.runner_kind == "run" and not self.used.job_stuck then
    -- a wait only the deadlock detector (or a task) ends: only under
    -- curio.run, whose error the program catches (not with tasks that never
    -- end either, whose timers keep the kernel from seeing a deadlock, nor
    -- with a worker thread that never ends: its job keeps the kernel
    -- waiting for it, rightly)
    self:line(1, "pcall(EV[2].wait, EV[2])")
  end
  if r.chance(0.3) then self:line(1, "return ...") end
  self:line(0, "end")
end

function Gen:runner()
  local r = self.r
  local choice, opts = self.runner_kind, self.kernel_opts
  if choice == "run" then
    local args = r.chance(0.15) and not self.avoid.many and "table.unpack(BIG, 1, " .. r.pick({ "60", "300" }) .. ")" or self:k()
    self:line(0, "local ok, err = pcall(curio.run, main, " .. args .. ")")
    self:line(0, "SHOW(\"run:\", ok, err)")
  elseif choice == "kernel" then
    self:line(0, "local ok_k, k = pcall(curio.Kernel, " .. opts .. ")")
    self:line(0, "if not ok_k then k = curio.Kernel() end")
    self:line(0, "KERNEL = k")
    self:line(0, "SHOW(\"run 1:\", pcall(k.run, k, main))")
    if r.chance(0.6) then
      local target = r.chance(0.5) and "main" or "F[" .. r.int(1, self.nf) .. "]"
      self:line(0, "SHOW(\"run 2:\", pcall(k.run, k, " .. target .. "))")
    end
    self:line(0, r.chance(0.7) and "k:close()" or "SHOW(\"close:\", pcall(k.close, k))")
    if r.chance(0.3) then self:line(0, "SHOW(\"closed run:\", pcall(k.run, k, main))") end
  elseif choice == "close_var" then
    self:line(0, "do")
    self:line(1, "local ok_k, k = pcall(curio.Kernel, " .. opts .. ")")
    self:line(1, "if not ok_k then k = curio.Kernel() end")
    self:line(1, "local kk <close> = k")
    self:line(1, "KERNEL = k")
    self:line(1, "SHOW(\"run:\", pcall(k.run, k, main))")
    self:line(0, "end")
  elseif choice == "bin" then
    -- run by the curio program: this chunk is the main task already
    self:line(0, "SHOW(\"main:\", pcall(main, " .. self:k() .. "))")
  else
    -- a kernel nobody closes, left to the collector
    self:line(0, "do local k = curio.Kernel() SHOW(\"run:\", pcall(k.run, k, main)) end")
    self:line(0, "collectgarbage() collectgarbage()")
  end
  if r.chance(0.5) then self:line(0, "if KERNEL2 then SHOW(\"k2:\", pcall(KERNEL2.close, KERNEL2)) end") end
  self:line(0, "for i = 1, 4 do if NPUT[i] > NGOT[i] + Q[i]:qsize() then print(\"FUZZ-LOST queue \" .. i .. \": \" "
    .. ".. NPUT[i] .. \" put, \" .. NGOT[i] .. \" got, \" .. Q[i]:qsize() .. \" left\") end end")
  self:line(0, "print((\"streams: S %d written, %d read%s; F %d read%s\"):format(SSEQ.w, SSEQ.r, "
    .. "SSEQ.taint and \" (tainted)\" or \"\", FSEQ.r, FSEQ.taint and \" (tainted)\" or \"\"))")
  if self.tls then
    self:line(0, "print((\"tls: %d pairs (%d for T), T %d lines written, %d read, %d bytes checked\")"
      .. ":format(TPAIRS, TMADE, TNW, TNR, TBYTES))")
  end
  self:line(0, "os.remove(FPATH)")
  self:line(0, "print(\"FUZZ-OK\")")
end

-- avoid: optional set of statement kinds (KINDS) and features ("kernel2":
-- a second kernel; "many": many arguments to main) not to generate, to look
-- past a known bug. with: optional set of kinds of fuzz.OFF to generate.
function fuzz.generate(seed, index, avoid, with)
  local off = {}
  for name in pairs(fuzz.OFF) do
    if not (with and with[name]) then off[name] = true end
  end
  for name in pairs(avoid or {}) do off[name] = true end
  local g = setmetatable({ r = rng(seed, index), out = {}, nvar = 0, seed = seed, index = index,
                           avoid = off, used = {} }, Gen)
  g.nf = g.r.int(3, 8)
  -- TLS from a generator of its own (see Gen:tls_prologue)
  g.tr = rng(seed + 0x51ED, index)
  g.tls = g.tr.chance(0.3) and not off.tls
  -- how the main task is run, chosen first: tasks that never end (kind
  -- "stubborn") are made only when the kernel's shutdown_timeout is short
  g.runner_kind = g.r.weighted({ { 5, "run" }, { 3, "kernel" }, { 2, "close_var" }, { 1, "gc" }, { 2, "bin" } })
  g.kernel_opts = g.r.pick({ "{ shutdown_timeout = 0.3 }", "{ shutdown_timeout = 0.1, debug = false }",
                             "{ shutdown_timeout = 0.2, debug = true }", "{ shutdown_timeout = 0.05 }" })
  if g.runner_kind == "run" then g.avoid = setmetatable({ stubborn = true }, { __index = g.avoid }) end
  if g.runner_kind == "bin" then
    -- the curio program's kernel has the default shutdown_timeout; a second
    -- kernel cannot be run from inside its main task
    -- a task's stray coroutine.yield fails the task, whatever pcall is around
    -- it: in the main task, the curio program itself
    g.avoid = setmetatable({ stubborn = true, kernel2 = true, rogue = true }, { __index = g.avoid })
  end
  g:prologue()
  g:functions()
  g:main()
  g:runner()
  return table.concat(g.out, "\n") .. "\n", { bin = g.runner_kind == "bin" }
end

-- What on stderr means the process itself went wrong (not a Lua error).
fuzz.fatal_patterns = {
  "AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation", "double free",
  "PANIC", "stack overflow", "Aborted", "free%(%)", "malloc%(%)", "corrupted",
}

function fuzz.fatal_in(text)
  for _, pattern in ipairs(fuzz.fatal_patterns) do
    if text:find(pattern) then return pattern end
  end
  return nil
end

return fuzz
