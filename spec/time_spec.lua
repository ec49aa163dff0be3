local curio = require "curio"
local core = require "curio.core"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

local function kind(err)
  for _, name in ipairs({ "TaskTimeout", "TimeoutCancellationError", "UncaughtTimeoutError",
                          "TaskCancelled", "CurioError" }) do
    if curio[name]:matches(err) then return name end
  end
  return tostring(err)
end

describe("sleep and clock", function()

  it("sleeps at least the time asked and returns the clock", function()
    local start, woke, after = curio.run(function()
      local t0 = curio.clock()
      local w = curio.sleep(0.02)
      return t0, w, curio.clock()
    end)
    assert.is_true(woke - start >= 0.02)
    assert.is_true(after >= woke)
  end)

  it("wakes sleepers in deadline order", function()
    local trace = {}
    curio.run(function()
      for _, d in ipairs({ 0.03, 0.01, 0.02, 0.005 }) do
        curio.spawn(function() curio.sleep(d); trace[#trace + 1] = d end)
      end
      curio.sleep(0.05)
    end)
    assert.are.same({ 0.005, 0.01, 0.02, 0.03 }, trace)
  end)

  -- All tasks first park on a wait queue; main measures how long one pass
  -- over them takes and sets the deadlines' base beyond ten such passes, so
  -- every timer is armed before the first deadline, at any build speed.
  it("keeps 5,000 sleepers with distinct deadlines in order", function()
    -- absolute deadlines (ignore_at), all set before any of them is due,
    -- and the main task joins every sleeper: no clock arithmetic in a task
    local n, count, order = 5000, 0, {}
    curio.run(function()
      local gate, never, base = core.waitq(), core.waitq(), nil
      local tasks = {}
      for i = 1, n do
        tasks[i] = curio.spawn(function()
          gate:wait()
          curio.ignore_at(base + (n - i) * 5e-5, never.wait, never)
          count = count + 1
          order[count] = n - i
        end)
      end
      local t0 = curio.clock()
      curio.sleep(0) -- every task reaches gate:wait()
      base = curio.clock() + 10 * (curio.clock() - t0) + 0.05
      gate:wake(math.huge)
      for i = 1, n do tasks[i]:join() end
    end)
    assert.are.equal(n, count)
    -- tasks whose deadlines passed before they first ran (a loaded
    -- machine) are all due at once and keep their FIFO order, not theirs
    local misplaced = 0
    for j = 1, n do if order[j] ~= j - 1 then misplaced = misplaced + 1 end end
    assert.is_true(misplaced < n / 50, misplaced .. " of " .. n .. " woke out of order")
  end)
end)

describe("timeouts", function()

  it("return every result of a function that finishes in time", function()
    local r = curio.run(function()
      return table.pack(curio.timeout_after(1, function(a) curio.sleep(0) return a, nil, 3 end, 1))
    end)
    assert.are.same({ n = 3, 1, nil, 3 }, r)
  end)

  it("raise TaskTimeout with seconds and deadline at the blocking call", function()
    local err, before = curio.run(function()
      local t0 = curio.clock()
      return catch(curio.timeout_after, 0.01, curio.sleep, 5), t0
    end)
    assert.are.equal("TaskTimeout", kind(err))
    assert.are.equal(0.01, err.seconds)
    assert.is_true(err.deadline >= before + 0.01 and err.deadline < before + 1)
  end)

  it("let ignore_after tell a timeout from a nil result", function()
    local r = curio.run(function()
      return {
        { curio.ignore_after(0.01, curio.sleep, 5) },
        { curio.ignore_after(1, function() return nil end) },
        { curio.ignore_after(1, function() return "v" end) },
      }
    end)
    assert.are.equal(curio.TIMEOUT, r[1][2])
    assert.is_nil(r[1][1])
    assert.are.same({ {}, { "v" } }, { r[2], r[3] })
  end)

  it("take clock deadlines in timeout_at and ignore_at", function()
    local r = curio.run(function()
      local now = curio.clock()
      local e = catch(curio.timeout_at, now + 0.01, curio.sleep, 5)
      local a, b = curio.ignore_at(now + 0.02, curio.sleep, 5)
      local c = curio.ignore_at(curio.clock() + 1, function() return "fast" end)
      return { kind(e), a, b == curio.TIMEOUT, c }
    end)
    assert.are.same({ "TaskTimeout", nil, true, "fast" }, r)
  end)

  it("give the inner block TaskTimeout when it expires first", function()
    local trace = {}
    curio.run(function()
      curio.timeout_after(1, function()
        local e = catch(curio.timeout_after, 0.01, curio.sleep, 5)
        trace[#trace + 1] = "inner " .. kind(e)
        curio.sleep(0.001)
        trace[#trace + 1] = "outer goes on"
      end)
    end)
    assert.are.same({ "inner TaskTimeout", "outer goes on" }, trace)
  end)

  it("pass an outer expiry through inner blocks as TimeoutCancellationError", function()
    local trace = {}
    curio.run(function()
      local e = catch(curio.timeout_after, 0.01, function()
        local inner = catch(curio.timeout_after, 5, function()
          local innermost = catch(curio.ignore_after, 5, curio.sleep, 10)
          trace[#trace + 1] = "innermost " .. kind(innermost)
          error(innermost, 0)
        end)
        trace[#trace + 1] = "inner " .. kind(inner)
        error(inner, 0)
      end)
      trace[#trace + 1] = "outer " .. kind(e) .. " " .. e.seconds
    end)
    assert.are.same({ "innermost TimeoutCancellationError", "inner TimeoutCancellationError",
                      "outer TaskTimeout 0.01" }, trace)
  end)

  it("let an ignore block swallow only its own expiry", function()
    local trace = {}
    curio.run(function()
      local a, b = curio.ignore_after(0.01, function()
        local inner = { curio.ignore_after(5, curio.sleep, 10) }
        trace[#trace + 1] = "unreachable " .. #inner
      end)
      trace[#trace + 1] = (a == nil and b == curio.TIMEOUT) and "outer ignored" or "?"
    end)
    assert.are.same({ "outer ignored" }, trace)
  end)

  it("turn a TaskTimeout leaking out of an expired inner block into UncaughtTimeoutError", function()
    local err = curio.run(function()
      return catch(curio.timeout_after, 5, function()
        curio.timeout_after(0.01, curio.sleep, 1)
      end)
    end)
    assert.are.equal("UncaughtTimeoutError", kind(err))
  end)

  it("say how long in their messages, one line each", function()
    local r = curio.run(function()
      local after = catch(curio.timeout_after, 0.01, curio.sleep, 5)
      local at = catch(curio.timeout_at, curio.clock() + 0.05, curio.sleep, 5)
      local past = catch(curio.timeout_at, curio.clock() - 1, curio.sleep, 5)
      local tce
      local outer = catch(curio.timeout_after, 0.01, function()
        tce = catch(curio.timeout_after, 5, curio.sleep, 10)
        error(tce, 0)
      end)
      local uncaught = catch(curio.timeout_after, 5, function()
        curio.timeout_after(0.01, curio.sleep, 1)
      end)
      local ignored = catch(curio.ignore_after, 5, function()
        curio.timeout_at(curio.clock() + 0.01, curio.sleep, 1)
      end)
      return { after = after, at = at, past = past, tce = tce, outer = outer,
               uncaught = uncaught, ignored = ignored }
    end)
    assert.are.equal("TaskTimeout: timed out after 0.01 s", tostring(r.after))
    assert.are.equal("timed out after 0.01 s", r.after.message)
    local deadline, seconds = r.at.message:match("^timed out at deadline (%d+%.%d%d%d) %((.-) s after the block began%)$")
    assert.are.equal(("%.3f"):format(r.at.deadline), deadline, r.at.message)
    assert.is_true(tonumber(seconds) > 0.04 and tonumber(seconds) <= 0.05, r.at.message)
    assert.are.equal(("TaskTimeout: timed out at deadline %.3f (already past when the block began)")
                     :format(r.past.deadline), tostring(r.past))
    assert.are.equal(("TimeoutCancellationError: an outer timeout expired (deadline %.3f) inside timeout_after(5)")
                     :format(r.outer.deadline), tostring(r.tce))
    assert.are.equal("TaskTimeout: timed out after 0.01 s", tostring(r.outer))
    assert.are.equal("UncaughtTimeoutError: a TaskTimeout (timed out after 0.01 s) escaped its block"
                     .. " and reached timeout_after(5), whose time had not run out", tostring(r.uncaught))
    assert.matches("^UncaughtTimeoutError: a TaskTimeout %(timed out at deadline [%d.]+ %(0.01 s after the block began%)%)"
                   .. " escaped its block and reached ignore_after%(5%), whose time had not run out$", tostring(r.ignored))
  end)

  it("keep the line where the timeout struck in the traceback, also when an outer block expired", function()
    local r = curio.run(function()
      local direct = catch(curio.timeout_after, 0.01, function()
        curio.sleep(5) -- the line a traceback must show
      end)
      local through = catch(curio.timeout_after, 0.01, function()
        curio.timeout_after(5, function()
          curio.sleep(5) -- this one too
        end)
      end)
      return { direct, through }
    end)
    for i, err in ipairs(r) do
      local tb = err.traceback
      assert.truthy(tb:find("in function 'curio[%w.]*%.sleep'\n\t[^\n]*time_spec.lua:%d+:"), i .. ": " .. tb)
    end
  end)

  it("treat nil seconds as no limit that still nests", function()
    local trace = {}
    curio.run(function()
      local e = catch(curio.timeout_after, 0.01, function()
        local inner = catch(curio.timeout_after, nil, curio.sleep, 5)
        trace[#trace + 1] = "nil block " .. kind(inner)
        error(inner, 0)
      end)
      trace[#trace + 1] = "outer " .. kind(e)
      trace[#trace + 1] = curio.timeout_after(nil, function() curio.sleep(0.001) return "done" end)
    end)
    assert.are.same({ "nil block TimeoutCancellationError", "outer TaskTimeout", "done" }, trace)
  end)

  it("deliver a timeout once, so cleanup inside the block may block", function()
    local trace = {}
    curio.run(function()
      curio.ignore_after(0.01, function()
        local ok = pcall(curio.sleep, 5)
        trace[#trace + 1] = "caught " .. tostring(not ok)
        curio.sleep(0.001)
        trace[#trace + 1] = "slept in cleanup"
      end)
    end)
    assert.are.same({ "caught true", "slept in cleanup" }, trace)
  end)

  it("deliver an expiry that passed while the task ran at its next blocking call", function()
    local got = curio.run(function()
      return kind(catch(curio.timeout_after, 0.01, function()
        local t0 = os.clock()
        while os.clock() - t0 < 0.03 do end -- busy, no blocking call
        curio.sleep(0)
      end))
    end)
    assert.are.equal("TaskTimeout", got)
  end)

  it("hold a timeout back inside disable_cancellation", function()
    local trace = {}
    curio.run(function()
      local e = catch(curio.timeout_after, 0.01, function()
        curio.disable_cancellation(function()
          curio.sleep(0.03)
          trace[#trace + 1] = "slept past deadline"
          trace[#trace + 1] = "pending " .. kind(curio.check_cancellation())
        end)
        curio.sleep(1)
      end)
      trace[#trace + 1] = kind(e)
    end)
    assert.are.same({ "slept past deadline", "pending TaskTimeout", "TaskTimeout" }, trace)
  end)

  it("stop timing a block once it is left", function()
    local ok = curio.run(function()
      curio.timeout_after(0.01, function() end)
      curio.sleep(0.03)
      return true
    end)
    assert.is_true(ok)
  end)

  it("enter and leave 100,000 blocks without growing", function()
    local n = curio.run(function()
      local count = 0
      for _ = 1, 100000 do count = count + curio.timeout_after(1, function() return 1 end) end
      return count
    end)
    assert.are.equal(100000, n)
  end)

  it("reject bad arguments in Lua's standard form", function()
    curio.run(function()
      local f = function() end
      assert.truthy(catch(curio.timeout_after, "x", f):find("bad argument #1 to 'timeout_after'", 1, true))
      assert.truthy(catch(curio.timeout_after, -1, f):find("non-negative", 1, true))
      assert.truthy(catch(curio.timeout_after, 0 / 0, f):find("bad argument #1", 1, true))
      assert.truthy(catch(curio.timeout_after, 1, 5):find("bad argument #2 to 'timeout_after' (function expected, got number)", 1, true))
      assert.truthy(catch(curio.ignore_at, "x", f):find("bad argument #1 to 'ignore_at'", 1, true))
      assert.truthy(catch(curio.timeout_at, 0 / 0, f):find("NaN", 1, true))
    end)
  end)
end)
