-- The plain-Lua limits of bench/run.sh's benchmarks (impl `limit`): each
-- does a benchmark's work with bare Lua 5.4 coroutines and tables, no
-- scheduler library, no timer, in the benchmark's shape (its N, what is
-- timed), so that curio-lua's figure can be given as a ratio to the least
-- that work costs in Lua. The one C module (limitlib.c): the clock, and
-- codec's deep copy (a copy in Lua is no bound for a C codec).
--
--   LUA_CPATH='bench/limits/build/?.so;;' lua5.4 bench/limits/plain.lua BENCH [N]
--
-- seconds = wall time on CLOCK_MONOTONIC, as curio-lua's (curio.clock),
-- from limitlib.now (bench/limits/limitlib.c, a Lua C module bench/run.sh
-- builds into bench/limits/build/): plain Lua has no clock finer than a
-- second but os.clock, CPU time, which a loaded machine does not slow.
-- Where tasks wait for each other (queues, lock, event) the limit has the
-- least scheduling that can do it, inline: the two queue sides resumed in
-- turn, a ring of ready coroutines for the lock, the event's waiters resumed
-- in order.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local create, resume, yield, running = coroutine.create, coroutine.resume, coroutine.yield,
  coroutine.running
-- (echo_idle needs no clock: it runs without the module)
local limitlib = package.searchpath("limitlib", package.cpath) and require "limitlib"
  or setmetatable({}, { __index = function()
    error("bench/limits/plain.lua: no limitlib module (bench/run.sh builds it into bench/limits/build/)", 0)
  end })
local function clock() return limitlib.now() end

local bench = arg[1]
local function count(default) -- N from the second argument
  local v = tonumber(arg[2])
  return v and math.max(1, math.floor(v)) or default
end

local function empty() end

local limits = {}

-- two coroutines each yield N/2 times, resumed alternately: one resume and
-- one yield per switch (a task's sleep(0) is a yield to the loop and a
-- resume from it)
function limits.switch()
  local half = count(1000000) // 2
  local function pinger()
    for _ = 1, half do yield() end
  end
  local t0 = clock()
  local c1, c2 = create(pinger), create(pinger)
  for _ = 1, half + 1 do -- the last round runs both to their end
    resume(c1)
    resume(c2)
  end
  return 2 * half, clock() - t0
end

-- create a coroutine of an empty function and resume it to its end, N times
function limits.spawn_join()
  local n = count(100000)
  local t0 = clock()
  for _ = 1, n do resume(create(empty)) end
  return n, clock() - t0
end

-- N pending empty functions stored first (all alive at once), then each
-- run on a coroutine made when it starts and resumed to its end: a task
-- needs no coroutine before it runs (curio-lua's tasks spawned in a burst
-- get theirs when they start, so only one of them is alive at a time)
function limits.spawn_many()
  local n = count(100000)
  local t0 = clock()
  local pending = {}
  for i = 1, n do pending[i] = empty end
  for i = 1, n do
    resume(create(pending[i]))
    pending[i] = false
  end
  return n, clock() - t0
end

-- a task group spawns N empty tasks and collects them: as spawn_many
limits.taskgroup = limits.spawn_many

-- a protected call of the function, its deadline stored before and cleared
-- after (a one-entry timer heap); no clock read: the loop's time is cached
function limits.timeout_after()
  local n = count(100000)
  local timers, now = {}, 0.0
  local function quick() return 1 end
  local t0 = clock()
  for _ = 1, n do
    timers[1] = now + 1
    assert(pcall(quick))
    assert(timers[1] > now)
    timers[1] = nil
  end
  return n, clock() - t0
end

-- memory: N bare coroutines, each from its own small closure holding its
-- deadline (0.5 s + i us), all suspended in coroutine.yield at once, then
-- each resumed to its end. No sleeping: only peak_rss_kb compares
-- (compare=peak_rss_kb: summary.lua's `rss vs floor`).
function limits.sleepers()
  local n = count(100000)
  local function sleeper(d)
    return create(function() yield(d) end)
  end
  local t0 = clock()
  local cos = {}
  for i = 1, n do
    local co = sleeper(0.5 + i * 1e-6)
    resume(co) -- runs to the yield: now suspended, as a sleeping task is
    cos[i] = co
  end
  for i = 1, n do
    assert(resume(cos[i]))
    cos[i] = false
  end
  return n, clock() - t0, "peak_rss_kb", b.peak_rss_kb(), "compare", "peak_rss_kb"
end

-- a producer and a consumer coroutine pass N items through a ring buffer of
-- `cap` slots (math.huge: unbounded), resumed in turn: the producer puts
-- until the buffer is full (or it is done) and yields, the consumer gets
-- until it is empty and yields (bounded: two switches per 100 items)
local function fifo(n, cap)
  local buf, first, last = {}, 1, 0 -- bounded: slots modulo cap
  local size = cap == math.huge and n + 1 or cap
  local producer = create(function()
    for i = 1, n do
      if last - first + 1 >= cap then yield() end
      last = last + 1
      buf[last % size] = i
    end
  end)
  local consumer = create(function()
    for i = 1, n do
      if last < first then yield() end
      local v = buf[first % size]
      buf[first % size] = nil
      first = first + 1
      if v ~= i then error("out of order") end
    end
  end)
  local t0 = clock()
  repeat
    resume(producer)
    resume(consumer)
  until coroutine.status(consumer) == "dead"
  return n, clock() - t0
end

function limits.queue_bounded() return fifo(count(1000000), 100) end
function limits.queue_unbounded() return fifo(count(1000000), math.huge) end

-- as queue_bounded through a binary heap of 100 (priority, sequence) keys
-- in parallel arrays, priority i * 7919 % 1009 (every put and get reorders)
function limits.queue_priority()
  local n, cap = count(1000000), 100
  local pri, seq, val, size = {}, {}, {}, 0
  local function less(i, j)
    return pri[i] < pri[j] or (pri[i] == pri[j] and seq[i] < seq[j])
  end
  local function swap(i, j)
    pri[i], pri[j] = pri[j], pri[i]
    seq[i], seq[j] = seq[j], seq[i]
    val[i], val[j] = val[j], val[i]
  end
  local producer = create(function()
    for i = 1, n do
      if size >= cap then yield() end
      size = size + 1
      local j = size
      pri[j], seq[j], val[j] = i * 7919 % 1009, i, i
      while j > 1 do
        local up = j // 2
        if not less(j, up) then break end
        swap(j, up)
        j = up
      end
    end
  end)
  local consumer = create(function()
    for _ = 1, n do
      if size == 0 then yield() end
      pri[1], seq[1], val[1] = pri[size], seq[size], val[size]
      pri[size], seq[size], val[size] = nil, nil, nil
      size = size - 1
      local j = 1
      while true do
        local l = 2 * j
        if l > size then break end
        if l < size and less(l + 1, l) then l = l + 1 end
        if not less(l, j) then break end
        swap(j, l)
        j = l
      end
    end
  end)
  local t0 = clock()
  repeat
    resume(producer)
    resume(consumer)
  until coroutine.status(consumer) == "dead"
  return n, clock() - t0
end

-- two coroutines loop "acquire; yield to the ring (sleep(0)); release" on a
-- FIFO lock (an owner and a ring of waiters; release hands the lock to the
-- first waiter and makes it ready), driven by a ring of ready coroutines:
-- two switches per acquisition, everything inline; both rings have 4 slots
-- (indices taken modulo 4: two tasks never fill them)
function limits.lock_handoff()
  local half = count(1000000) // 2
  local ring, head, tail = {}, 0, 0
  local owner, waiters, wfirst, wlast = nil, {}, 0, 0
  local function worker(me)
    for _ = 1, half do
      if owner == nil then -- acquire
        owner = me
      else
        waiters[wlast % 4] = me
        wlast = wlast + 1
        yield() -- woken as the owner
      end
      ring[tail % 4] = me -- sleep(0): to the back of the ring
      tail = tail + 1
      yield()
      if wfirst < wlast then -- release: to the first waiter
        owner = waiters[wfirst % 4]
        wfirst = wfirst + 1
        ring[tail % 4] = owner
        tail = tail + 1
      else
        owner = nil
      end
    end
  end
  local t0 = clock()
  local w1, w2 = create(worker), create(worker)
  resume(w1, w1) -- first steps (each is handed its own coroutine): w1
  resume(w2, w2) -- takes the lock and goes to the ring, w2 waits for it
  while head < tail do
    local co = ring[head % 4]
    head = head + 1
    local ok, err = resume(co)
    if not ok then error(err, 0) end
  end
  return 2 * half, clock() - t0
end

-- N coroutines suspended waiting on one event (a list); seconds from the
-- set until each has been resumed to its end, in order; total_seconds also
-- counts creating them and running each to its wait
function limits.event_waiters()
  local n = count(10000)
  local waiters = {}
  local function waiter()
    waiters[#waiters + 1] = running()
    yield()
  end
  local t0 = clock()
  for _ = 1, n do resume(create(waiter)) end
  local t1 = clock()
  for i = 1, n do
    resume(waiters[i])
    waiters[i] = false
  end
  local t2 = clock()
  return n, t2 - t1, "total_seconds", t2 - t0
end

-- the codec's table (bench/codec_table.lua) copied deeply, N times, by C
-- (limitlib.copy): the objects a decode must at least build, from a walk
-- of all that an encode must at least walk, with no bytes in between. CPU
-- time (os.clock), as bench/codec.lua's
function limits.codec()
  local n = count(100)
  local copy, cpu = limitlib.copy, os.clock
  local data = require("codec_table")()
  local t0 = cpu()
  for _ = 1, n do
    local c = copy(data)
    assert(#c == #data)
  end
  return n, cpu() - t0
end

-- N times: table.concat of 256 chunks of 64 KiB (16 MiB) and of 128 (8 MiB),
-- the joins stream_read's read_exactly and readline cannot do without
function limits.stream_read()
  local n = count(4)
  local chunk = ("0123456789abcdef"):rep(4096)
  local t0 = clock()
  for _ = 1, n do
    local parts = {}
    for i = 1, 256 do parts[i] = chunk end
    local big = table.concat(parts)
    for i = 129, 256 do parts[i] = nil end
    local line = table.concat(parts)
    assert(#big == 16 * 1024 * 1024 and #line == 8 * 1024 * 1024)
  end
  local seconds = clock() - t0
  return n, seconds, "mib_per_sec", string.format("%.1f", n * 24 / seconds)
end

-- echo_idle (bench/echo_idle.sh): memory per idle connection when each has
-- a coroutine, at the least: N bare coroutines of one handler function, each
-- started with its connection's number and suspended in coroutine.yield
-- (as a handler waits in recv); VmRSS before and after, each after a full
-- collection. No sockets: what a coroutine per connection costs, beside
-- the C server's bytes (impl limit). Prints its own block, as echo_idle.sh's
-- (bench echo_idle_10k at 10,000).
local function vmrss_kb()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

function limits.echo_idle()
  local n = count(10000)
  local function handler(conn)
    yield()
    return conn
  end
  local cos = {}
  collectgarbage("collect")
  local base = vmrss_kb()
  for i = 1, n do
    local co = create(handler)
    resume(co, i)
    cos[i] = co
  end
  collectgarbage("collect")
  local rss = vmrss_kb()
  b.emit("bench", n == 10000 and "echo_idle_10k" or "echo_idle_" .. n, "impl", "limit-coroutine",
    "conns", n, "rss_kb", rss, "rss_base_kb", base, "rss_per_conn_bytes", (rss - base) * 1024 // n)
  for i = 1, n do assert(resume(cos[i])) end
end

local f = limits[bench or ""]
if not f then
  local names = {}
  for k in pairs(limits) do names[#names + 1] = k end
  table.sort(names)
  io.stderr:write("usage: lua5.4 bench/limits/plain.lua BENCH [N]; BENCH one of ",
    table.concat(names, " "), "\n")
  os.exit(2)
end
local res = table.pack(f())
if res.n > 0 then b.report(bench, "limit", res[1], res[2], nil, table.unpack(res, 3, res.n)) end
