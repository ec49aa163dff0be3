local curio = require "curio"
local util = require "support.util"
local crossing = require "support.crossing"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.run_in_process (lua/curio/workers.lua over core/process.c).

local function fib(n)
  if n <= 2 then return 1 end
  return fib(n - 1) + fib(n - 2)
end

-- The pids of this process's children (from /proc: the kernel's own list).
local function children()
  local list = {}
  local f = io.open("/proc/self/stat")
  local me = f and f:read("a"):match("^(%d+)")
  if f then f:close() end
  local p = io.popen("ls /proc")
  for name in p:lines() do
    if name:match("^%d+$") then
      local s = io.open("/proc/" .. name .. "/stat")
      local stat = s and s:read("a")
      if s then s:close() end
      local ppid = stat and stat:match("^%d+ %b() %a (%d+)")
      if ppid == me then list[#list + 1] = tonumber(name) end
    end
  end
  p:close()
  return list
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = f:read("a"):match("^%d+ %b() (%a)")
  f:close()
  return state ~= "Z" and state ~= "X"
end

describe("run_in_process", function()

  it("returns fib's result while other tasks keep running (How-To: CPU intensive)", function()
    local result, ticks = curio.run(function()
      local count = 0
      local ticker = curio.spawn(function()
        while true do curio.sleep(0.005) count = count + 1 end
      end)
      local r = curio.run_in_process(fib, 27)
      ticker:cancel()
      return r, count
    end)
    assert.are.equal(196418, result)
    assert.is_true(ticks > 0)
  end)

  it("carries values both ways: tables, upvalues, many results, \"module.function\" names", function()
    local trace = util.traced(function(record)
      local base = 10
      record(curio.run_in_process(function(t) return t.a + base, #t.list, nil, "end" end,
                                  { a = 1, list = { 1, 2, 3 } }))
      record(curio.run_in_process("string.rep", "ab", 3, "-"))
      local cyclic = {}
      cyclic.self = cyclic
      record(curio.run_in_process(function(t) return t.self == t end, cyclic))
      record(select("#", curio.run_in_process(function() end)))
    end)
    assert.are.same({ "11 3 nil end", "ab-ab-ab", "true", "0" }, trace)
  end)

  it("raises fn's error with the worker's traceback, and refuses what cannot cross", function()
    local trace = util.traced(function(record)
      local err = util.catch(curio.run_in_process, function() error("boom") end)
      record(curio.CurioError:matches(err), err.message:match("boom") ~= nil,
             tostring(err.traceback):match("stack traceback") ~= nil)
      err = util.catch(curio.run_in_process, "nosuchmodule_x.fn")
      record(curio.CurioError:matches(err), tostring(err.message):match("nosuchmodule_x") ~= nil)
      err = util.catch(curio.run_in_process, print, 1)
      record(err:match("cannot transfer argument #1") ~= nil)
      err = util.catch(curio.run_in_process, function() end, curio.socket)
      record(err:match("cannot transfer argument #2") ~= nil)
      err = util.catch(curio.run_in_process, function() return io.stdout end)
      record(curio.CurioError:matches(err), tostring(err.message):match("cannot transfer result") ~= nil)
      record(curio.run_in_process(function() return "still serving" end))
    end)
    assert.are.same({ "true true true", "true true", "true", "true", "true true", "still serving" }, trace)
  end)

  it("raises BrokenWorkerError when the worker dies, and replaces it", function()
    local trace = util.traced(function(record)
      local err = util.catch(curio.run_in_process, function() os.exit(3) end)
      record(curio.BrokenWorkerError:matches(err))
      local pid = curio.run_in_process(function()
        local f = io.open("/proc/self/stat")
        local me = f:read("a"):match("^(%d+)")
        f:close()
        return tonumber(me)
      end)
      -- killed from outside while computing
      local victim = curio.spawn(curio.run_in_process, function() while true do end end)
      curio.sleep(0.3)
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      for _, child in ipairs(children()) do
        if child ~= pid and alive(child) then os.execute("kill -9 " .. child) end
      end
      err = util.catch(victim.join, victim)
      record(curio.BrokenWorkerError:matches(err.cause))
      record(curio.run_in_process(function(x) return x * 2 end, 21))
    end)
    assert.are.same({ "true", "true", "42" }, trace)
  end)

  it("cancellation kills the worker at once and the pool serves the next call", function()
    local trace = util.traced(function(record)
      local t0 = curio.clock()
      local err = util.catch(curio.timeout_after, 0.2, curio.run_in_process, function()
        while true do end
      end)
      record(curio.TaskTimeout:matches(err), curio.clock() - t0 < 2)
      record(curio.run_in_process(fib, 20))
    end)
    assert.are.same({ "true true", "6765" }, trace)
  end)

  it("serves 100 concurrent calls on a pool of 2", function()
    local k = curio.Kernel({ processes = 2 })
    local results = k:run(function()
      local tasks = {}
      for i = 1, 100 do
        tasks[i] = curio.spawn(curio.run_in_process, function(x)
          local f = io.open("/proc/self/stat")
          local me = f:read("a"):match("^(%d+)")
          f:close()
          return x * x, me
        end, i)
      end
      local sum, pids = 0, {}
      for i = 1, 100 do
        local square, pid = tasks[i]:join()
        sum = sum + square
        pids[pid] = true
      end
      local n = 0
      for _ in pairs(pids) do n = n + 1 end
      return { sum, n }
    end)
    k:close()
    assert.are.same({ 338350, 2 }, results)
  end)

  it("leaves no worker behind when the kernel closes", function()
    local before = #children()
    curio.run(function()
      curio.run_in_process(function() return 1 end)
      assert(#children() > before)
    end)
    assert.are.equal(before, #children())
  end)

  it("a kernel's close releases its workers' descriptors at once, without a collection", function()
    local status, stdout = util.lua_code([[
      collectgarbage("stop")
      local curio = require "curio"
      local core = require "curio.core"
      local before = core.open_fds()
      for _ = 1, 5 do
        curio.run(function() return curio.run_in_process(function() return 1 end) end)
      end
      print("left", core.open_fds() - before)
    ]], 30)
    assert.are.same({ 0, "left\t0\n" }, { status, stdout })
  end)

  it("refuses bad arguments and calls outside a task", function()
    local err = util.catch(curio.run_in_process, function() end)
    assert.are.equal("run_in_process: not inside a curio task", err.message)
    err = curio.run(function() return util.catch(curio.run_in_process, 42) end)
    assert.matches("bad argument #1 to 'run_in_process' %(function or \"module.function\" expected, got number%)", err)
  end)

  it("a worker killed while idle: the next call goes to a new worker, and no SIGPIPE kills us", function()
    -- in a child interpreter: a SIGPIPE would kill it (status 141), not busted
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      curio.run(function()
        local pid = curio.run_in_process(function()
          local f = io.open("/proc/self/stat")
          local me = f:read("a"):match("^(%d+)")
          f:close()
          return me
        end)
        os.execute("kill -9 " .. pid)
        curio.sleep(0.1)
        print(curio.run_in_process(function() return "served" end))
      end)
    ]], 20)
    assert.are.same({ 0, "served\n", "" }, { status, stdout, stderr })
  end)

  it("a kernel closed while tasks wait in run_in_process, Popen.wait and communicate leaves no child", function()
    local before = #children()
    local k = curio.Kernel()
    local t0 = os.time()
    k:run(function()
      curio.spawn(curio.run_in_process, function() while true do end end)
      local p = curio.subprocess.Popen({ "sleep", "30" })
      curio.spawn(p.wait, p)
      local q = curio.subprocess.Popen({ "cat" }, { stdin = curio.subprocess.PIPE,
                                                     stdout = curio.subprocess.PIPE })
      curio.spawn(q.communicate, q, ("z"):rep(1 << 20))
      curio.sleep(0.2)
    end)
    k:close()
    collectgarbage()
    assert.is_true(os.time() - t0 < 10)
    assert.are.equal(before, #children())
  end)

  -- issue 15: every error came as a CurioError with the text in .cause.
  it("raises fn's error as that error: a table keeps its fields, a curio error its class", function()
    local trace = util.traced(function(record)
      local err = util.catch(curio.run_in_process, function() error({ code = 7, why = "table" }) end)
      record(type(err), err.code, err.why)
      err = util.catch(curio.run_in_process, function()
        error(require("curio.errors").TaskTimeout("late", { clock = 1.5 }))
      end)
      record(curio.TaskTimeout:matches(err), err.message, err.clock)
      err = util.catch(curio.run_in_process, function() error(42) end)
      record(err)
      err = util.catch(curio.run_in_process, function() error({ f = print }) end)
      record(curio.CurioError:matches(err), type(err.f))
      record(curio.run_in_process(function() return "still serving" end))
    end)
    assert.are.same({ "table 7 table", "true late 1.5", "42", "false string", "still serving" }, trace)
  end)

  -- issue 15 (hostile review): one field the codec cannot carry to another
  -- process (a file, a C function, a Universal object) made the whole error
  -- a CurioError "cannot transfer error #1 .f (userdata)", its code lost.
  it("keeps the fields of an error that can cross; one that cannot comes as a string saying what it was", function()
    local k = curio.Kernel({ processes = 1 }) -- (closed below: the worker goes with it)
    local plain, classed = k:run(function()
      return util.catch(curio.run_in_process, function()
        local t = { code = 3, f = io.stdout, co = coroutine.create(print), print = print,
                    q = require("curio").UniversalQueue(), twice = function(x) return 2 * x end,
                    nested = { deeper = { n = 1, u = io.stderr } } }
        t.self, t.nested.back = t, t -- (cycles)
        t[io.stdin] = "a key that cannot cross"
        t.odd = setmetatable({ kept = true }, { __index = function() error("__index") end,
                                                __pairs = function() error("__pairs") end,
                                                __tostring = function() error("__tostring") end })
        error(t)
      end), util.catch(curio.run_in_process, function()
        getmetatable(io.stdout).__tostring = function() error("__tostring") end -- (this worker only)
        local curio_ = require "curio"
        error(curio_.TaskTimeout("late", { code = 4, f = io.stdout,
                                           cause = curio_.ResourceBusy("held", { u = io.stdin }) }))
      end)
    end)
    k:close()
    crossing.check(plain, classed)
    assert.is_truthy(plain.print:find("^function: "), plain.print) -- (a C function stays home)
    assert.is_truthy(plain.q:find("^userdata: "), plain.q) -- (a shared object too)
    assert.are.equal(14, plain.twice(7)) -- (a Lua function crosses)
  end)

  -- issue 15: the reply protocol shared the worker's stdout (descriptor 1)
  -- and read what the function printed as a frame length: a hang.
  it("a worker's prints, writes and programs reach the parent's stdout; the replies are not disturbed", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      io.stdout:setvbuf("no")
      curio.run(function()
        local r = curio.run_in_process(function()
          print("printed")
          io.stdout:write("written\n")
          io.stdout:flush() -- (a file, not a terminal: fully buffered)
          os.execute("echo started")
          io.stderr:write("to stderr\n")
          return 42
        end)
        print("result", r)
        print("again", curio.run_in_process(function(x) io.write("x") return x + 1 end, 1))
      end)
    ]], 20)
    assert.are.same({ 0, "printed\nwritten\nstarted\nresult\t42\nxagain\t2\n", "to stderr\n" },
                    { status, stdout, stderr })
  end)

  it("a reply that fails its checks kills the worker and raises BrokenWorkerError at once", function()
    local trace = util.traced(function(record)
      local before = #children()
      local err = util.catch(curio.run_in_process, function()
        local f = assert(io.open("/proc/self/fd/4", "wb")) -- (the replies' descriptor)
        f:write("hi there, not a frame")
        f:close()
        while true do end
      end)
      record(curio.BrokenWorkerError:matches(err), err.message)
      record(#children() <= before + 1) -- (the pool keeps none of it: the next call starts anew)
      record(curio.run_in_process(function() return "next" end))
      -- the mark right, and a length of 1.6 GB: refused at once, not waited for
      err = util.catch(curio.run_in_process, function()
        local f = assert(io.open("/proc/self/fd/4", "wb"))
        f:write("CWhi there")
        f:close()
        while true do end
      end)
      record(curio.BrokenWorkerError:matches(err), err.message)
    end)
    assert.are.same({ "true run_in_process: the worker process broke the protocol", "true", "next",
                      "true run_in_process: the worker process broke the protocol" }, trace)
  end)

  it("cannot block here: refused where Lua cannot yield or in a plain coroutine, no worker started", function()
    local trace = util.traced(function(record)
      local before = #children()
      local errs = {}
      table.sort({ 3, 1, 2 }, function(a, b)
        errs[#errs + 1] = errs[#errs + 1] or select(2, pcall(curio.run_in_process, "string.rep", "a", 1))
        return a < b
      end)
      local wrapped = coroutine.wrap(function()
        return select(2, pcall(curio.run_in_process, "string.rep", "a", 1))
      end)
      errs[#errs + 1] = wrapped()
      for _, err in ipairs(errs) do
        local what = tostring(err.message):match("cannot block here") or tostring(err.message):match("curio.coroutine")
        record(curio.CurioError:matches(err), curio.BrokenWorkerError:matches(err), what)
      end
      record("children", #children() - before)
    end)
    assert.are.equal("true false cannot block here", trace[1])
    assert.are.equal("true false curio.coroutine", trace[#trace - 1])
    assert.are.equal("children 0", trace[#trace])
  end)

  it("a worker dies with its parent killed by SIGKILL", function()
    local pidfile = os.tmpname()
    os.remove(pidfile)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write(([[
      local curio = require "curio"
      curio.run(function()
        curio.run_in_process(function(path)
          local s = io.open("/proc/self/stat")
          local me = s:read("a"):match("^(%%d+)")
          s:close()
          local out = io.open(path .. ".tmp", "w")
          out:write(me)
          out:close()
          os.rename(path .. ".tmp", path)
          while true do end
        end, %q)
      end)
    ]]):format(pidfile))
    f:close()
    local _, parent = util.sh(util.env .. " " .. util.lua .. " " .. script .. " >/dev/null 2>&1 & echo $!")
    parent = assert(tonumber(parent))
    local worker
    for _ = 1, 400 do -- (the worker's pid file: an event, bounded)
      local pf = io.open(pidfile)
      if pf then worker = tonumber(pf:read("a")) pf:close() break end
      os.execute("sleep 0.05")
    end
    os.execute("kill -9 " .. parent)
    local gone = false
    for _ = 1, 400 do
      if worker == nil or not alive(worker) then gone = true break end
      os.execute("sleep 0.05")
    end
    if worker and not gone then os.execute("kill -9 " .. worker) end
    os.remove(pidfile)
    os.remove(script)
    assert.is_number(worker)
    assert.is_true(gone)
  end)
end)
