local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.aopen's file streams (lua/curio/io.lua over core/fileio.c): the
-- stream methods (docs/sockets.md: Streams, Files), with the blocking work in threads.
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

  it("refuses a second reader and a second writer while a thread's job runs", function()
    local trace = util.traced(function(record)
      local w <close> = curio.aopen(path, "w")
      local writer = curio.spawn(function() return w:write("one\ntwo\n") end)
      curio.sleep(0) -- the write runs in a thread
      record("write", curio.WriteResourceBusy:matches(util.catch(w.write, w, "x")))
      record("first wrote", writer:join())
      local r <close> = curio.aopen(path)
      local reader = curio.spawn(function() return r:readline() end)
      curio.sleep(0)
      for _, method in ipairs({ "readline", "read", "read_exactly", "readlines" }) do
        local err = util.catch(r[method], r, method == "read_exactly" and 1 or nil)
        record(method, curio.ReadResourceBusy:matches(err))
      end
      record("first read", reader:join())
      record("then", r:readline())
    end)
    assert.are.same({ "write true", "first wrote 8", "readline true", "read true",
                      "read_exactly true", "readlines true", "first read one\n", "then two\n" }, trace)
  end)

  it("four tasks reading lines of one stream (retrying when busy) get every line whole", function()
    local f = assert(io.open(path, "w"))
    for i = 1, 50000 do f:write(("line %d\n"):format(i)) end
    f:close()
    local count, bad, in_order = curio.run(function()
      local s <close> = curio.aopen(path)
      local got, wrong, seq = {}, 0, 0
      local function reader()
        while true do
          local ok, line = pcall(s.readline, s)
          if ok then
            if line == "" then return end
            seq = seq + 1
            local k = line:match("^line (%d+)\n$")
            if k then got[seq] = tonumber(k) else wrong = wrong + 1 end
          elseif curio.ReadResourceBusy:matches(line) then
            curio.sleep(0)
          else
            error(line, 0)
          end
        end
      end
      local tasks = {}
      for i = 1, 4 do tasks[i] = curio.spawn(reader) end
      for i = 1, 4 do tasks[i]:join() end
      local sorted = true
      for i = 1, seq do if got[i] ~= i then sorted = false end end
      return seq, wrong, sorted
    end)
    assert.are.same({ 50000, 0, true }, { count, bad, in_order })
  end)

  it("read(n) above 16 MiB returns up to n bytes, as a socket stream's does", function()
    local size = 20 * 1024 * 1024
    local f = assert(io.open(path, "w"))
    f:write(("0123456789abcdef"):rep(size // 16))
    f:close()
    local first, total = curio.run(function()
      local s <close> = curio.aopen(path)
      local data = s:read(size + 1)
      local n = #data
      while true do
        local more = s:read(size + 1)
        if more == "" then break end
        n = n + #more
      end
      return #data, n
    end)
    assert.is_true(first > 0 and first <= size + 1)
    assert.are.equal(size, total)
  end)

  it("a regular file's job is not cut by a timeout: the bytes it read are kept", function()
    local f = assert(io.open(path, "w"))
    f:write("first\nsecond\n")
    f:close()
    local trace = {}
    local function record(...) trace[#trace + 1] = table.concat({ ... }, " ") end
    local k <close> = curio.Kernel({ threads = 1 })
    k:run(function()
      local s <close> = curio.aopen(path)
      local release = curio.UniversalEvent()
      local blocker = curio.spawn(curio.run_in_thread, function() release:wait() end)
      curio.sleep(0)
      local reader = curio.spawn(function()
        return curio.timeout_after(0.01, function()
          local line = s:readline()   -- queued behind the blocker (one thread)
          record("read", line)
          curio.sleep(1)              -- the timeout comes here
        end)
      end)
      curio.sleep(0.05) -- past the reader's deadline
      release:set()
      blocker:join()
      record("timed out", tostring(curio.TaskTimeout:matches(util.catch(reader.join, reader).cause)))
      record("next", s:readline())
    end)
    assert.are.same({ "read first\n", "timed out true", "next second\n" }, trace)
  end)

  it("a stream closed while its job waits for a thread keeps the descriptor until the job ends", function()
    local other = os.tmpname()
    local trace = {}
    local function record(...) trace[#trace + 1] = table.concat({ ... }, " ") end
    local k <close> = curio.Kernel({ threads = 1 })
    k:run(function()
      local release = curio.UniversalEvent()
      local blocker = curio.spawn(curio.run_in_thread, function() release:wait() end)
      curio.sleep(0) -- the only thread is busy
      local w = curio.aopen(path, "w")
      local number = w:fileno()
      local writer = curio.spawn(function() return w:write("STRAY") end)
      curio.sleep(0) -- its job waits for the thread
      w:close()
      local g = curio.aopen(other, "w") -- would take the closed number
      record("number reused", tostring(g:fileno() == number))
      release:set()
      blocker:join()
      writer:join()
      g:close()
    end)
    local function contents(name)
      local f = assert(io.open(name))
      local text = f:read("a")
      f:close()
      return text
    end
    record("file", contents(path), "other", contents(other))
    os.remove(other)
    assert.are.same({ "number reused false", "file STRAY other " }, trace)
  end)

  it("closes the file when the stream is collected", function()
    local before = util.fd_count()
    do curio.aopen(path) end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, util.fd_count())
  end)
end)
