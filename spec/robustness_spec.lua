local curio = require "curio"
local core = require "curio.core"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Every public and core function, called with assorted wrong values, must
-- raise or return, never crash the process or corrupt the kernel; a
-- blocking call made here is bounded by ignore_after.
describe("robustness", function()
  local values = { nil, true, 0, -1, 0 / 0, math.huge, 1.5, "x", {}, function() end,
                   coroutine.create(function() end), io.stdout, core.waitq() }
  -- (monitor: monitor() is right, and would listen on its fixed port)
  local skip = { run = true, print = true, wait_fd = true, set_cancellable = true,
                 timeout_push = true, timeout_push_after = true, timeout_pop = true, monitor = true }

  local function sweep(call)
    local calls = 0
    for _, module in ipairs({ curio, core }) do
      for name, fn in pairs(module) do
        if type(fn) == "function" and not skip[name] then
          for i = 1, #values + 1 do
            call(fn, values[i])
            for j = 1, #values + 1 do call(fn, values[i], values[j]); calls = calls + 1 end
          end
        end
      end
    end
    return calls
  end

  it("survives every function called with wrong values outside a task", function()
    local calls = sweep(function(fn, ...) pcall(fn, ...) end)
    assert.is_true(calls > 5000)
    assert.are.equal(42, curio.run(function() curio.sleep(0) return 42 end))
  end)

  it("survives them inside a task and keeps the kernel working", function()
    local result = curio.run(function()
      sweep(function(fn, ...) pcall(curio.ignore_after, 0.001, fn, ...) end)
      local t = curio.spawn(function(x) curio.sleep(0.001) return x end, 7)
      local q = curio.Queue(1)
      for _, method in ipairs({ "put", "qsize", "empty", "full", "task_done", "join" }) do
        for i = 1, #values + 1 do pcall(curio.ignore_after, 0.001, q[method], q, values[i]) end
      end
      return t:join()
    end)
    assert.are.equal(7, result)
  end)
end)
