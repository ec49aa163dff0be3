local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

describe("error classes", function()
  local hierarchy = {
    CancelledError = {},
    TaskCancelled = { "CancelledError" },
    TaskTimeout = { "CancelledError" },
    TimeoutCancellationError = { "CancelledError" },
    CurioError = {},
    TaskError = { "CurioError" },
    UncaughtTimeoutError = { "CurioError" },
    ResourceBusy = { "CurioError" },
    ReadResourceBusy = { "ResourceBusy", "CurioError" },
    WriteResourceBusy = { "ResourceBusy", "CurioError" },
    BrokenWorkerError = { "CurioError" },
    OSError = { "CurioError" },
    ConnectionError = { "OSError", "CurioError" },
    BrokenPipeError = { "ConnectionError", "OSError", "CurioError" },
    ConnectionResetError = { "ConnectionError", "OSError", "CurioError" },
    ConnectionRefusedError = { "ConnectionError", "OSError", "CurioError" },
    TimeoutError = { "OSError", "CurioError" },
    IncompleteRead = { "CurioError" },
    KeyboardInterrupt = { "CurioError" },
  }

  it("matches an instance by its class and every ancestor, and nothing else", function()
    for name, ancestors in pairs(hierarchy) do
      local err = curio[name]("x")
      local expected, got = { [name] = true }, {}
      for _, a in ipairs(ancestors) do expected[a] = true end
      for other in pairs(hierarchy) do
        if curio[other]:matches(err) then got[other] = true end
      end
      assert.are.same(expected, got, name)
    end
  end)

  it("matches safely on any Lua value", function()
    local values = { "TaskTimeout", 42, true, {}, setmetatable({}, {}), print,
                     coroutine.create(print), io.stdout }
    for _, v in ipairs(values) do
      assert.is_false(curio.CurioError:matches(v))
      assert.is_false(curio.CancelledError:matches(v))
    end
    assert.is_false(curio.CurioError:matches(nil))
  end)

  it("builds instances with message, fields, traceback and is_a", function()
    local err = curio.OSError("no such file", { errno = 2, code = "ENOENT" })
    assert.are.equal("no such file", err.message)
    assert.are.equal(2, err.errno)
    assert.are.equal("ENOENT", err.code)
    assert.is_true(err:is_a(curio.CurioError))
    assert.is_false(err:is_a(curio.CancelledError))
    local text = tostring(err)
    assert.are.equal("OSError: no such file", text:match("^[^\n]*"))
    assert.truthy(text:find("stack traceback:", 1, true))
    assert.truthy(err.traceback:find("errors_spec.lua", 1, true))
  end)

  it("uses the class name as message when none is given", function()
    assert.are.equal("TaskCancelled", curio.TaskCancelled().message)
  end)

  it("makes subclasses that users can extend and match", function()
    local AppError = curio.CurioError:subclass("AppError")
    local DbError = AppError:subclass("DbError")
    local err = DbError("down")
    assert.is_true(DbError:matches(err))
    assert.is_true(AppError:matches(err))
    assert.is_true(curio.CurioError:matches(err))
    assert.is_false(DbError:matches(AppError("x")))
    assert.is_false(curio.CancelledError:matches(err))
    assert.are.equal("DbError: down", tostring(err):match("^[^\n]*"))
  end)

  it("rejects bad arguments with standard messages", function()
    local ok, err = pcall(curio.CurioError, "m", 5)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #2 to 'CurioError' (table expected, got number)", 1, true))
    ok, err = pcall(curio.CurioError.subclass, curio.CurioError, 3)
    assert.is_false(ok)
    assert.truthy(err:find("bad argument #1 to 'subclass'", 1, true))
  end)
end)

describe("curio.pcall and curio.xpcall", function()
  it("return every result on success", function()
    local r = table.pack(curio.pcall(function() return 1, nil, 3 end))
    assert.are.same({ n = 4, true, 1, nil, 3 }, r)
  end)

  it("catch ordinary errors", function()
    local ok, err = curio.pcall(error, "plain")
    assert.are.same({ false, "plain" }, { ok, err })
    ok, err = curio.pcall(error, curio.CurioError("boom"))
    assert.is_false(ok)
    assert.is_true(curio.CurioError:matches(err))
  end)

  it("let every CancelledError through", function()
    for _, class in ipairs({ curio.CancelledError, curio.TaskCancelled, curio.TaskTimeout,
                              curio.TimeoutCancellationError }) do
      local exc = class("stop")
      local ok, err = pcall(curio.pcall, error, exc)
      assert.is_false(ok)
      assert.are.equal(exc, err)
    end
  end)

  it("call the xpcall handler only for non-cancellation errors", function()
    local seen = {}
    local function handler(e) seen[#seen + 1] = e; return "handled" end
    assert.are.same({ false, "handled" }, { curio.xpcall(error, handler, "x") })
    local exc = curio.TaskCancelled("stop")
    local ok, err = pcall(curio.xpcall, error, handler, exc)
    assert.are.same({ false, exc }, { ok, err })
    assert.are.same({ "x" }, seen)
  end)
end)
