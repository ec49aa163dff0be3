local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Socket streams (sock:as_stream()): the one Stream of lua/curio/io.lua
-- over a socket, read with recv and written with sendall.

-- A connected TCP pair on the loopback.
local function pair()
  local listener <close> = curio.tcp_server_socket("127.0.0.1", 0)
  local accepted = curio.spawn(function() return listener:accept() end)
  local client = curio.open_connection("127.0.0.1", listener:getsockname().port)
  return client, accepted:join()
end

-- Writes text to sock one byte at a time (each byte its own segment).
local function dribble(sock, text)
  for i = 1, #text do
    sock:sendall(text:sub(i, i))
    if i % 7 == 0 then curio.sleep(0.001) end
  end
end

describe("socket streams", function()

  it("reads lines and exact counts across arbitrary chunk boundaries", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local writer = curio.spawn(function()
        dribble(a, "first line\nsecond\n0123456789tail")
        a:close()
      end)
      local s <close> = b:as_stream()
      record("readline", s:readline())
      record("read_exactly", s:read_exactly(3))
      record("readline", s:readline())
      record("read_exactly", s:read_exactly(10))
      record("rest", s:read())
      record("at end", s:read(10) == "", s:readline() == "")
      writer:join()
    end)
    assert.are.same({ "readline first line\n", "read_exactly sec", "readline ond\n",
                      "read_exactly 0123456789", "rest tail", "at end true true" }, trace)
  end)

  it("refuses a second reader while one waits inside a read, even when the buffer could serve it", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local s <close> = b:as_stream()
      a:sendall("abc\n")
      local first = curio.spawn(function() return s:read_exactly(10) end)
      curio.sleep(0) -- first buffers "abc\n" and waits for 6 bytes more
      for _, method in ipairs({ "readline", "read", "read_exactly", "readlines" }) do
        local err = util.catch(s[method], s, method == "read_exactly" and 1 or nil)
        record(method, curio.ReadResourceBusy:matches(err))
      end
      a:sendall("defghi")
      record("first", first:join())
      a:sendall("next\n")
      record("after", s:readline()) -- free again once the reader is done
      a:close()
    end)
    assert.are.same({ "readline true", "read true", "read_exactly true", "readlines true",
                      "first abc\ndefghi", "after next\n" }, trace)
  end)

  it("a read that waited raises when the stream was closed meanwhile", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local s = b:as_stream()
      local reader = curio.spawn(function() return pcall(s.readline, s) end)
      curio.sleep(0)
      s:close()
      local ok, err = reader:join()
      record(ok, curio.OSError:matches(err), err.code)
      a:close()
    end)
    assert.are.same({ "false true EBADF" }, trace)
  end)

  it("two readers taking turns (ResourceBusy: retry) get every line whole, in order", function()
    local lines, bad, sorted = curio.run(function()
      local a, b = pair()
      local n = 20000
      local writer = curio.spawn(function()
        local parts = {}
        for i = 1, n do parts[i] = ("line %d\n"):format(i) end
        local text = table.concat(parts)
        for i = 1, #text, 4093 do a:sendall(text:sub(i, i + 4092)) end
        a:close()
      end)
      local s <close> = b:as_stream()
      local got, wrong = {}, 0
      local function reader()
        while true do
          local ok, line = pcall(s.readline, s)
          if ok then
            if line == "" then return end
            local k = line:match("^line (%d+)\n$")
            if k then got[#got + 1] = tonumber(k) else wrong = wrong + 1 end
          elseif curio.ReadResourceBusy:matches(line) then
            curio.sleep(0)
          else
            error(line, 0)
          end
        end
      end
      local r1, r2 = curio.spawn(reader), curio.spawn(reader)
      r1:join(); r2:join(); writer:join()
      local in_order = true
      for i = 1, #got do if got[i] ~= i then in_order = false end end
      return #got, wrong, in_order
    end)
    assert.are.same({ 20000, 0, true }, { lines, bad, sorted })
  end)

  it("reads lines longer than the stream's buffer", function()
    local lengths = curio.run(function()
      local a, b = pair()
      local long = ("x"):rep(300000) .. "\n"
      local writer = curio.spawn(function()
        a:sendall(long .. long:sub(2) .. "short\n")
        a:close()
      end)
      local s <close> = b:as_stream()
      local got = {}
      for line in s:lines() do got[#got + 1] = #line end
      writer:join()
      return got
    end)
    assert.are.same({ 300001, 300000, 6 }, lengths)
  end)

  it("raises IncompleteRead with .partial when the end comes first", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      a:sendall("abc")
      a:close()
      local s <close> = b:as_stream()
      local err = util.catch(s.read_exactly, s, 5)
      record(curio.IncompleteRead:matches(err), err.partial, err.expected)
      record("then", s:read_exactly(0) == "", s:read(5) == "")
    end)
    assert.are.same({ "true abc 5", "then true true" }, trace)
  end)

  it("writes, writelines and readlines; closing the stream closes the socket", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local sa, sb = a:as_stream(), b:as_stream()
      record("wrote", sa:write("one\n"))
      sa:writelines({ "two\n", "thr", "ee\n" })
      sa:flush()
      record("fileno", sa:fileno() == a:fileno())
      sa:close()
      record("socket closed", a:closed())
      record("lines", table.concat(sb:readlines(), "|"))
      local err = util.catch(sa.write, sa, "x")
      record(curio.CurioError:matches(err), err.message)
      sb:close()
    end)
    assert.are.same({ "wrote 4", "fileno true", "socket closed true", "lines one\n|two\n|three\n",
                      "true write: I/O operation on a closed stream" }, trace)
  end)

  it("big reads go straight through, small reads are buffered", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local _ <close>, sb = a:as_stream(), b:as_stream()
      a:sendall("hello world")
      curio.sleep(0.01)
      record(sb:read(3), sb:read(100000))
      a:sendall(("z"):rep(70000))
      local total = 0
      while total < 70000 do total = total + #sb:read(100000) end
      record(total)
      sb:close()
    end)
    assert.are.same({ "hel lo world", "70000" }, trace)
  end)

  it("a socket stream's fast path (a big read, a write) names the stream's methods in its errors", function()
    -- the socket checks these itself (lua/curio/io.lua rule 8): the task,
    -- the count, the data, with read's and write's names and messages
    local kernel = curio.Kernel()
    local a, b, sb = kernel:run(function()
      local a, b = pair()
      a:sendall("buffered\n")
      curio.sleep(0.01)
      local sb = b:as_stream()
      return a, b, sb, sb:read(100000) -- 100000: the count now known valid
    end)
    local messages = {}
    local function caught(fn, ...)
      local e = util.catch(fn, ...)
      messages[#messages + 1] = curio.CurioError:matches(e) and e.message or tostring(e)
    end
    caught(sb.read, sb, 100000) -- outside a task, nothing buffered
    caught(sb.read, sb, 200000) -- a count not seen before
    caught(sb.write, sb, "x")
    local trace = kernel:run(function()
      local got = {}
      caught(sb.read, sb, "100000")
      caught(sb.read, sb, 100000.5)
      caught(sb.read, sb, -2)
      caught(sb.write, sb, 5)
      caught(sb.write, sb)
      got[#got + 1] = sb:write("ok")         -- fine again after the errors
      got[#got + 1] = a:recv(10)
      a:sendall("more")
      got[#got + 1] = sb:read(100000.0)     -- a float with an integer value, as before
      a:close()
      got[#got + 1] = sb:read(100000)       -- the end
      sb:close()
      return table.concat(got, " ")
    end)
    kernel:close()
    assert.are.same({
      "read: not inside a curio task", "read: not inside a curio task", "write: not inside a curio task",
      "bad argument #1 to 'read' (number expected, got string)",
      "bad argument #1 to 'read' (number has no integer representation)",
      "bad argument #1 to 'read' (non-negative integer expected)",
      "bad argument #1 to 'write' (string expected, got number)",
      "bad argument #1 to 'write' (string expected, got no value)",
    }, messages)
    assert.are.equal("2 ok more ", trace)
    assert.is_true(b:closed())
  end)

  it("a buffered read outside a task raises, even when the buffer could serve it", function()
    local kernel = curio.Kernel()
    local a, sb = kernel:run(function()
      local a, b = pair()
      a:sendall("two lines\nsecond\n")
      local sb = b:as_stream()
      return a, sb, sb:readline()
    end)
    local e1, e2 = util.catch(sb.read, sb, 3), util.catch(sb.read, sb, 100000)
    local rest = kernel:run(function()
      local r = sb:read(100000)
      a:close()
      sb:close()
      return r
    end)
    kernel:close()
    assert.are.same({ "read: not inside a curio task", "read: not inside a curio task", "second\n" },
                    { e1.message, e2.message, rest })
  end)

  it("a stream server's idle connection costs at most 600 bytes more than a socket server's", function()
    -- (its Stream of four fields, its read's frame; a call deeper in the
    -- echo path would double every connection's coroutine stack: 720
    -- bytes more.) The handlers have the shape of examples/echo_server.lua
    -- and echo_stream_server.lua (a frame's size decides when the stack
    -- doubles); note() stands for their print().
    local function note() end
    local function per_connection(handler, k)
      return curio.run(function()
        local listener = curio.tcp_server_socket("127.0.0.1", 0)
        local port = listener:getsockname().port
        local clients = {}
        collectgarbage() collectgarbage()
        local before = collectgarbage("count")
        local server = curio.spawn(curio.run_server, listener, handler)
        for i = 1, k do
          clients[i] = curio.open_connection("127.0.0.1", port)
          clients[i]:sendall("hello")
          assert(clients[i]:recv(10) == "hello")
        end
        collectgarbage() collectgarbage()
        local bytes = (collectgarbage("count") - before) * 1024 / k
        for i = 1, k do clients[i]:close() end
        server:cancel()
        return bytes
      end)
    end
    local function echo_client(client, addr)
      note("Connection from", addr)
      while true do
        local data = client:recv(100000)
        if data == "" then break end
        client:sendall(data)
      end
      note("Connection closed")
    end
    local function echo_stream_client(client, addr)
      note("Connection from", addr)
      local s = client:as_stream()
      while true do
        local data = s:read(100000)
        if data == "" then break end
        s:write(data)
      end
      note("Connection closed")
    end
    per_connection(echo_stream_client, 10) -- (what is made once: the read buffer, modules)
    local socket_bytes = per_connection(echo_client, 200)
    local stream_bytes = per_connection(echo_stream_client, 200)
    assert.is_true(stream_bytes - socket_bytes < 600, ("%.0f and %.0f bytes"):format(stream_bytes, socket_bytes))
  end)

  it("a stream read interrupted by a timeout loses no data", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local s <close> = b:as_stream()
      a:sendall("partial ")
      local err = util.catch(curio.timeout_after, 0.05, s.readline, s)
      record(curio.TaskTimeout:matches(err))
      a:sendall("line\n")
      record(s:readline())
      a:close()
    end)
    assert.are.same({ "true", "partial line\n" }, trace)
  end)

  it("reads of many chunks return them whole, and a timed-out read_exactly keeps what it read", function()
    local io_ = require "curio.io"
    local chunk = ("0123456789abcdef"):rep(4096) -- 64 KiB
    local trace = util.traced(function(record)
      local s = io_.Stream({ read = function() return chunk end })
      local big = s:read_exactly(16 * 1024 * 1024)
      local line = io_.Stream({ read = function() return chunk end }):readline(8 * 1024 * 1024)
      -- their cost (linear, not quadratic) is bench/stream_read.lua's
      record(#big, big == chunk:rep(256), #line)

      local a, b = pair()
      local sb <close> = b:as_stream()
      a:sendall(("p"):rep(100000))
      local err = util.catch(curio.timeout_after, 0.1, sb.read_exactly, sb, 300000)
      record(curio.TaskTimeout:matches(err))
      a:sendall(("q"):rep(200000))
      local got = sb:read_exactly(300000)
      record(got == ("p"):rep(100000) .. ("q"):rep(200000))
      a:close()
    end)
    assert.are.same({ "16777216 true 8388608", "true", "true" }, trace)
  end)
end)
