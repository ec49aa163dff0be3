local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Runs `body` (Lua code inside a main task of Kernel{debug = debug}) in a
-- child; returns its status, stdout and stderr. The spinning helper
-- spin(s) computes until the clock has moved s seconds.
local function run(debug, body)
  return util.lua_code(([[
    local curio = require "curio"
    local function spin(s)
      local t0 = curio.clock()
      while curio.clock() - t0 < s do end
    end
    local k = curio.Kernel({ debug = %s })
    k:run(function()
%s
    end)
    k:close()
  ]]):format(debug, body), 30)
end

-- The lines of the reports in stderr: {id, name, then}, and the tracebacks.
local function reports(stderr)
  local found = {}
  for id, name, seconds, after in stderr:gmatch(
      "curio: long block: task (%d+) %((.-)%) ran ([%d.]+) s without blocking, then ([^\n]*)") do
    found[#found + 1] = { tonumber(id), name, after, tonumber(seconds) }
  end
  return found
end

describe("Kernel{debug = {longblock = s}}", function()
  it("reports a task that ran longer than s without blocking, with its name and where it yielded", function()
    local status, stdout, stderr = run("{ longblock = 0.05 }", [[
      local t = curio.spawn(function()
        curio.current_task().name = "spinner"
        spin(0.2)
        curio.sleep(0.01) -- line 11 of the child's chunk
      end)
      t:join()
      print("done")
    ]])
    assert.are.same({ 0, "done\n" }, { status, stdout })
    local found = reports(stderr)
    assert.are.equal(1, #found)
    assert.are.same({ 2, "spinner", "waited in sleep" }, { found[1][1], found[1][2], found[1][3] })
    assert.is_true(found[1][4] >= 0.2 and found[1][4] < 10) -- loose: the clock bound of spin
    assert.truthy(stderr:find("\nstack traceback:\n\t%[C%]: in function 'curio[%.%w]*%.sleep'\n\t[^\n]*:11: in function"))
  end)

  it("does not report tasks that only sleep, wait or switch", function()
    local status, stdout, stderr = run("{ longblock = 0.05 }", [[
      local q = curio.Queue()
      local sleeper = curio.spawn(function() for _ = 1, 5 do curio.sleep(0.05) end end)
      local getter = curio.spawn(function() return q:get() end)
      for i = 1, 1000 do curio.sleep(0) end
      q:put(1)
      sleeper:join()
      print(getter:join())
    ]])
    assert.are.same({ 0, "1\n", "" }, { status, stdout, stderr })
  end)

  it("reports a task that spun and then returned or failed", function()
    local status, _, stderr = run("{ longblock = 0.05, crashes = false }", [[
      local a = curio.spawn(function() spin(0.1); return 1 end)
      a.name = "returner"
      local b = curio.spawn(function() spin(0.1); error("boom") end)
      b.name = "failer"
      a:wait() b:wait()
    ]])
    assert.are.equal(0, status)
    local found = reports(stderr)
    assert.are.same({ { 2, "returner", "returned" }, { 3, "failer", "failed" } },
                    { { found[1][1], found[1][2], found[1][3] }, { found[2][1], found[2][2], found[2][3] } })
    assert.truthy(stderr:find("then failed\nstack traceback:\n", 1, true))
    assert.is_nil(stderr:find("Task crash", 1, true)) -- (crashes = false)
  end)

  it("is off with longblock = false, and with debug = true or false", function()
    for _, debug in ipairs({ "{ longblock = false }", "true", "false", "{}" }) do
      local status, stdout, stderr = run(debug, "spin(0.1) print('ok')")
      assert.are.same({ 0, "ok\n", "" }, { status, stdout, stderr })
    end
  end)

  it("refuses a bad value, naming the option", function()
    local function message(debug)
      local ok, err = pcall(curio.Kernel, { debug = debug })
      assert.is_false(ok)
      return tostring(err)
    end
    assert.truthy(message(1):find(
      "bad argument #1 to 'Kernel' (option 'debug' must be a boolean or a table, got number)", 1, true))
    assert.truthy(message({ longblock = -1 }):find(
      "option 'debug.longblock' must be a positive number of seconds or false, got -1", 1, true))
    assert.truthy(message({ longblock = 0 }):find("option 'debug.longblock' must be a positive number", 1, true))
    assert.truthy(message({ longblock = 0 / 0 }):find("option 'debug.longblock' must be a positive number", 1, true))
    assert.truthy(message({ longblock = math.huge }):find("option 'debug.longblock' must be a positive number", 1, true))
    assert.truthy(message({ longblock = "1" }):find("got string", 1, true))
    assert.truthy(message({ longblok = 1 }):find(
      "option 'debug' has no key 'longblok': it takes 'longblock' and 'crashes'", 1, true))
    assert.truthy(message({ [1] = 1 }):find("option 'debug' has no key number", 1, true))
    assert.truthy(message({ crashes = 1 }):find("option 'debug.crashes' must be a boolean, got number", 1, true))
  end)
end)

describe("curio --longblock", function()
  it("runs the script with the check on, curio.run's tasks included", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
curio.run(function()
  curio.current_task().name = "inner"
  local t0 = curio.clock()
  while curio.clock() - t0 < 0.2 do end
  curio.sleep(0) -- line 5
end)
print("done")
]])
    f:close()
    local status, stdout, stderr = util.sh(util.bin .. " --longblock 0.05 " .. path)
    local plain = { util.sh(util.bin .. " " .. path) }
    os.remove(path)
    assert.are.same({ 0, "done\n" }, { status, stdout })
    local found = reports(stderr)
    assert.are.same({ "inner", "yielded (sleep(0))" }, { found[1][2], found[1][3] })
    assert.truthy(stderr:find(":5: in function", 1, true))
    assert.are.same({ 0, "done\n", "" }, plain) -- (off without the option)
  end)

  it("refuses a value that is no positive number of seconds, in one line", function()
    for _, value in ipairs({ "x", "0", "-1", "inf", "nan" }) do
      local status, stdout, stderr = util.sh(util.bin .. " --longblock " .. value .. " -e 'print(1)'")
      assert.are.same({ 1, "" }, { status, stdout })
      assert.are.equal(("curio: option '--longblock' needs a positive number of seconds, got '%s'"):format(value),
                       stderr:match("^[^\n]*"))
    end
  end)
end)
