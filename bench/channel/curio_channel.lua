-- The curio-lua program of bench/channel.sh: curio.Channel between this
-- process (it listens, accepts and times) and a child it starts with
-- curio.subprocess (this same file with --child, which connects).
--
--   lua5.4 bench/channel/curio_channel.lua SHAPE ADDRESS N [--noauth]
--
-- SHAPE: oneway (N small tables sent, then "end", to which the child
-- answers with its count), roundtrip (N tables each echoed back), many<K>
-- (K connections, a task on each side of each, N round trips in all),
-- bulk (N messages of 16 MiB by send_bytes, then an empty one, and the
-- count). ADDRESS: HOST:PORT or a unix socket path (anything with a '/').
-- Both sides use an authkey unless --noauth (it costs only at connect).
-- The clock starts once every connection is accepted (and authenticated).
-- Prints one block: bench=channel_<shape>_<tcp|unix>, impl=curio-lua, n,
-- seconds, ops_per_sec, mib_per_sec for bulk, and the CPU both processes
-- used over the same window (this one's from os.clock, the child's from
-- /proc/PID/stat, 10 ms ticks): parent_cpu, child_cpu (seconds) and
-- cpu_us_per_op, the measure to compare on a machine others load (a
-- process waiting for a CPU adds to seconds, not to its CPU time).
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"

local args, is_child, auth = {}, false, true
for _, a in ipairs(arg) do
  if a == "--child" then is_child = true
  elseif a == "--noauth" then auth = false
  else args[#args + 1] = a end
end
local shape, address, n = args[1], args[2], math.tointeger(tonumber(args[3]))
assert(shape and address and n and n > 0, "usage: curio_channel.lua SHAPE ADDRESS N [--noauth]")
local conns = math.tointeger(tonumber(shape:match("^many(%d+)$")))
local unix = address:find("/", 1, true) ~= nil
local bench = "channel_" .. shape .. "_" .. (unix and "unix" or "tcp")
local curio = b.require("curio", bench, "curio-lua")
if curio.Channel == nil then b.skip(bench, "curio-lua", "curio.Channel missing") end
local subprocess = require "curio.subprocess"

local where = address
if not unix then
  local host, port = address:match("^(.*):(%d+)$")
  where = { host, math.tointeger(tonumber(port)) }
end
local key = auth and { authkey = "curio channel bench key" } or {}
local BULK = 16 * 1024 * 1024

-- the small table, the same in every implementation
local function small(i)
  return { seq = i, kind = "job", name = "alpha", x = 1.5, y = -2.25, count = 42 }
end

-- the child's side of one connection
local function serve(conn)
  local c <close> = conn
  if shape == "oneway" then
    local count = 0
    while c:recv() ~= "end" do count = count + 1 end
    c:send(count)
  elseif shape == "bulk" then
    local count = 0
    while true do
      local s = c:recv_bytes()
      if #s == 0 then break end
      assert(#s == BULK)
      count = count + 1
    end
    c:send(count)
  else -- roundtrip, many: echo until "end"
    while true do
      local v = c:recv()
      if v == "end" then break end
      c:send(v)
    end
  end
  -- alive until the parent has read this process's CPU time and closes
  assert(not pcall(c.recv, c), "a message after the end")
end

local function child()
  local ch <close> = curio.Channel(where)
  -- one connection after the other (as the Python peers must), then a task each
  local cs, tasks = {}, {}
  for k = 1, conns or 1 do cs[k] = ch:connect(key) end
  for k, c in ipairs(cs) do tasks[k] = curio.spawn(serve, c) end
  for _, t in ipairs(tasks) do t:join() end
end

-- the parent's side: round trips on one connection
local function round_trips(c, first, last)
  for i = first, last do
    c:send(small(i))
    assert(c:recv().seq == i)
  end
  c:send("end")
end

-- CPU seconds (user + system) of process pid so far, from /proc
local function proc_cpu(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("a")
  f:close()
  local utime, stime = stat:match("^.*%) %S+" .. string.rep(" %S+", 10) .. " (%d+) (%d+)")
  return (tonumber(utime) + tonumber(stime)) / 100
end

local function parent()
  local ch <close> = curio.Channel(where)
  local lo = -1 -- the interpreter and its options, as this process was started
  while arg[lo - 1] do lo = lo - 1 end
  local argv = {}
  for i = lo, #arg do argv[#argv + 1] = arg[i] end
  argv[#argv + 1] = "--child"
  local proc = subprocess.Popen(argv)
  local cs, payload = {}, shape == "bulk" and string.rep("x", BULK)
  for k = 1, conns or 1 do cs[k] = ch:accept(key) end
  local t0, p0, c0 = curio.clock(), os.clock(), proc_cpu(proc.pid)
  if shape == "oneway" then
    local c = cs[1]
    for i = 1, n do c:send(small(i)) end
    c:send("end")
    assert(c:recv() == n, "the child's count")
  elseif shape == "bulk" then
    local c = cs[1]
    for _ = 1, n do c:send_bytes(payload) end
    c:send_bytes("")
    assert(c:recv() == n, "the child's count")
  elseif conns then
    n = n // conns * conns
    local tasks = {}
    for k, c in ipairs(cs) do
      local first = (k - 1) * (n // conns) + 1
      tasks[k] = curio.spawn(round_trips, c, first, first + n // conns - 1)
    end
    for _, t in ipairs(tasks) do t:join() end
  else
    round_trips(cs[1], 1, n)
  end
  local seconds, cpu = curio.clock() - t0, os.clock() - p0
  local child_cpu = proc_cpu(proc.pid) - c0
  for _, c in ipairs(cs) do c:close() end
  assert(proc:wait() == 0, "the child failed")
  return seconds, cpu, child_cpu
end

if is_child then
  curio.run(child)
else
  local seconds, cpu, child_cpu = curio.run(parent)
  local cpu_lines = { "parent_cpu", string.format("%.2f", cpu), "child_cpu", string.format("%.2f", child_cpu),
    "cpu_us_per_op", string.format("%.2f", (cpu + child_cpu) / n * 1e6), "auth", auth and "hmac" or "none" }
  if shape == "bulk" then
    b.report(bench, "curio-lua", n, seconds, nil, "mib_per_sec",
      string.format("%.1f", n * 16 / seconds), "msg_bytes", BULK, table.unpack(cpu_lines))
  else
    b.report(bench, "curio-lua", n, seconds, nil, table.unpack(cpu_lines))
  end
end
