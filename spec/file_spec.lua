local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.aopen's file streams (lua/curio/io.lua over core/fileio.c): the
-- stream methods of API.md section 10, with the blocking work in threads.
describe("aopen file streams", function()

  local path
  before_each(function() path = os.tmpname() end)
  after_each(function() os.remove(path) end)

  it("writes and reads back with every stream method", function()
    local trace = util.traced(function(record)
      do
        local f <close> = curio.aopen(path, "w")
        record("wrote", f:write("one\ntwo\n"))
        f:writelines({ "thr", "ee\n", "four" })
        f:flush()
      end
      local f <close> = curio.aopen(path, "r")
      record("readline", f:readline())
      record("read", f:read(2))
      record("read_exactly", f:read_exactly(2))
      record("readlines", table.concat(f:readlines(), "|"))
      record("at end", f:read(10) == "", f:readline() == "")
    end)
    assert.are.same({ "wrote 8", "readline one\n", "read tw", "read_exactly o\n",
                      "readlines three\n|four", "at end true true" }, trace)
  end)

  it("iterates a big file's lines with a thread round trip per chunk, not per line", function()
    local count, last = curio.run(function()
      local f = curio.aopen(path, "w")
      local parts = {}
      for i = 1, 50000 do parts[i] = ("line %d\n"):format(i) end
      f:write(table.concat(parts))
      f:close()
      local n, final = 0, nil
      local reader <close> = curio.aopen(path)
      for line in reader:lines() do n = n + 1; final = line end
      return n, final
    end)
    assert.are.equal(50000, count)
    assert.are.equal("line 50000\n", last)
  end)

  it("appends, reads everything with read(), and raises IncompleteRead with .partial", function()
    local all, partial = curio.run(function()
      local a = curio.aopen(path, "w") a:write("abc") a:close()
      a = curio.aopen(path, "a") a:write("def") a:close()
      local f <close> = curio.aopen(path)
      local everything = f:read()
      local g <close> = curio.aopen(path)
      local err = util.catch(g.read_exactly, g, 100)
      assert(curio.IncompleteRead:matches(err))
      return everything, err.partial
    end)
    assert.are.equal("abcdef", all)
    assert.are.equal("abcdef", partial)
  end)

  it("lets other tasks run while it reads and writes", function()
    local ticks = curio.run(function()
      local n = 0
      local ticker = curio.spawn(function() while true do curio.sleep(0) n = n + 1 end end)
      local f = curio.aopen(path, "w")
      for _ = 1, 20 do f:write(("x"):rep(1000)) end
      f:close()
      ticker:cancel()
      return n
    end)
    assert.is_true(ticks >= 20)
  end)

  it("refuses a closed stream, bad modes and missing files with clear errors", function()
    curio.run(function()
      local f = curio.aopen(path, "w")
      f:close()
      f:close() -- (again: nothing)
      assert.is_truthy(tostring(util.catch(f.write, f, "x")):find("closed stream", 1, true))
      assert.is_truthy(tostring(util.catch(f.fileno, f)):find("closed stream", 1, true))
      assert.is_truthy(tostring(util.catch(curio.aopen, path, "q")):find("bad argument #2 to 'aopen'", 1, true))
      assert.is_truthy(tostring(util.catch(curio.aopen, 5)):find("bad argument #1 to 'aopen'", 1, true))
      local err = util.catch(curio.aopen, path .. ".missing/x")
      assert.is_true(curio.OSError:matches(err))
      assert.are.equal("ENOENT", err.code)
      local g <close> = curio.aopen(path)
      assert.is_truthy(tostring(util.catch(g.write, g, 5)):find("bad argument #1 to 'write'", 1, true))
    end)
    local f = curio.aopen(path) -- opening needs no task (as curio's)
    assert.is_truthy(tostring(util.catch(f.read, f)):find("read: not inside a curio task", 1, true))
    f:close()
  end)

  it("closes the file when the stream is collected", function()
    local before = util.fd_count()
    do curio.aopen(path) end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, util.fd_count())
  end)
end)
