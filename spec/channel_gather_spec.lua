local curio = require "curio"
local core = require "curio.core"
local util = require "support.util"
local channels = require "support.channels"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- A Connection's gathered sends (lua/curio/channel.lua rule 8,
-- core/sockout.c): messages appended to an out buffer that goes to the
-- system before the kernel next waits, the sender held back past 64 KiB,
-- flush(), and the buffer's last write when the connection, its socket or
-- the kernel goes.

local channel = curio.channel
local ChannelError = channel.ChannelError
local HIGH = 65536

-- A connected pair over TCP, or over a unix socket with `unix` (where a
-- narrow buffer does not meet TCP's small-window stalls).
local function pair(unix)
  return channels.pair({ unix = unix })
end

local closing = channels.closing

local function pending(conn)
  return core.out_pending(conn._wsock)
end

-- A unix pair whose kernel buffers are small, so that the system takes
-- little at a time (the sender's SO_SNDBUF, the receiver's SO_RCVBUF).
local function narrow_pair()
  local server, client = pair(true)
  client._wsock:setsockopt("SO_SNDBUF", 4096)
  server._rsock:setsockopt("SO_RCVBUF", 4096)
  return server, client
end

local function message(i, size)
  local head = string.pack(">I4", i)
  return head .. string.rep(string.char(65 + i % 26), size - #head)
end

-- A lua5.4 child running code with arg[1] = path; returns the Popen and
-- the code's temporary file (to remove once the child runs).
local function child(code, path)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write(code)
  f:close()
  return curio.subprocess.Popen({ "sh", "-c", ("%s exec timeout -s KILL 60 %s %s '%s'"):format(
    util.env, util.lua, file, path) }), file
end

local READER_CHILD = [[
local curio = require "curio"
curio.run(function()
  local conn <close> = curio.Channel(arg[1]):connect()
  for i = 1, 40 do
    local head = string.pack(">I4", i)
    assert(conn:recv_bytes() == head .. string.rep(string.char(65 + i % 26), 1000 - #head))
  end
  conn:send(40)
end)
]]

-- The server receives messages 1 to sent (of 1000 bytes), then "after",
-- sent by the client now: what an interrupted or refused send left.
local function follows(server, client, sent)
  local reader = curio.spawn(function()
    for i = 1, sent do assert.are.equal(message(i, 1000), server:recv_bytes()) end
    return server:recv_bytes()
  end)
  client:send_bytes("after")
  assert.are.equal("after", reader:join())
end

describe("a Connection's sends", function()
  it("gather: messages sent without waiting are all in the buffer, then arrive in order", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local frame = 0
      for i = 1, 100 do
        client:send({ seq = i, name = "alpha" })
        if i == 1 then frame = pending(client) end
        assert.are.equal(i * frame, pending(client)) -- (no system call yet)
      end
      for i = 1, 100 do assert.are.same({ seq = i, name = "alpha" }, server:recv()) end
      assert.are.equal(0, pending(client))
    end)
  end)

  it("flush: returns once the system has every message", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      for i = 1, 10 do client:send_bytes(message(i, 100)) end
      assert.is_true(pending(client) > 0)
      client:flush()
      assert.are.equal(0, pending(client))
      client:flush() -- (nothing left: returns)
      for i = 1, 10 do assert.are.equal(message(i, 100), server:recv_bytes()) end
    end)
  end)

  it("hold the sender back past 64 KiB while the reader is slow; nothing is lost", function()
    curio.run(function()
      local server, client = narrow_pair()
      local _ <close> = closing(server, client)
      local most = 0
      local sender = curio.spawn(function()
        for i = 1, 2000 do
          client:send_bytes(message(i, 1000))
          most = math.max(most, pending(client))
        end
        client:send_bytes("end")
      end)
      for i = 1, 2000 do assert.are.equal(message(i, 1000), server:recv_bytes()) end
      assert.are.equal("end", server:recv_bytes())
      sender:join()
      assert.is_true(most >= HIGH, "the buffer never filled: " .. most)
      assert.is_true(most < HIGH + 1004, "the buffer grew past its bound: " .. most)
    end)
  end)

  it("interrupted while held back, queue nothing: the next message follows the last sent", function()
    curio.run(function()
      local server, client = narrow_pair()
      local _ <close> = closing(server, client)
      local sent = 0
      while true do -- (nobody reads: the sender ends up held back)
        local ok, err = pcall(curio.timeout_after, 0.05, client.send_bytes, client, message(sent + 1, 1000))
        if not ok then
          assert.is_true(curio.TaskTimeout:matches(err))
          break
        end
        sent = sent + 1
        assert.is_true(sent < 100000, "never held back")
      end
      assert.is_false(client:closed())
      follows(server, client, sent)
    end)
  end)

  it("held back where Lua cannot yield: refused, nothing queued, the connection open", function()
    curio.run(function()
      local server, client = narrow_pair()
      local _ <close> = closing(server, client)
      local sent = 0
      local filler = curio.spawn(function()
        while true do
          client:send_bytes(message(sent + 1, 1000))
          sent = sent + 1
        end
      end)
      while pending(client) < HIGH do curio.sleep(0) end
      filler:cancel()
      local ok, err = pcall(string.gsub, "x", "x", function() client:send_bytes("refused") end)
      assert.is_false(ok)
      assert.matches("send_bytes: cannot block here", tostring(err.message or err))
      assert.is_false(client:closed())
      follows(server, client, sent)
    end)
  end)

  it("go on by themselves when the system takes part of them and no task sends again", function()
    curio.run(function()
      local server, client = narrow_pair()
      local _ <close> = closing(server, client)
      local done = curio.Event()
      curio.spawn(function()
        for i = 1, 40 do client:send_bytes(message(i, 1000)) end -- (40 KB: under 64 KiB, never held)
        done:wait() -- (no send, no flush: the buffer's own watcher writes the rest)
      end)
      curio.timeout_after(30, function()
        for i = 1, 40 do assert.are.equal(message(i, 1000), server:recv_bytes()) end
      end)
      done:set()
    end)
  end)

  it("go on by themselves, no task sending, as a reader in another process drains them", function()
    curio.run(function()
      local path = os.tmpname()
      os.remove(path)
      local ch <close> = curio.Channel(path)
      ch:bind()
      local p, file = child(READER_CHILD, path)
      local conn <close> = ch:accept()
      os.remove(file)
      os.remove(path)
      conn._wsock:setsockopt("SO_SNDBUF", 4096)
      for i = 1, 40 do conn:send_bytes(message(i, 1000)) end
      -- (40 KB, under 64 KiB: no send waits, and the system takes about
      -- 4 KB at a time; only the buffer's own watcher writes the rest)
      assert.are.equal(40, curio.timeout_after(30, conn.recv, conn))
      assert.are.equal(0, p:wait())
    end)
  end)

  it("after a failed write, the connection is closed and says why", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      server:close()
      local err
      for _ = 1, 1000 do
        local ok, e = pcall(function()
          client:send_bytes(string.rep("x", 1000))
          client:flush()
        end)
        if not ok then err = e break end
      end
      assert.is_not_nil(err, "sends to a closed peer never failed")
      assert.is_true(curio.OSError:matches(err) or ChannelError:matches(err), tostring(err))
      assert.is_true(client:closed())
      local again = util.catch(client.send, client, 1)
      assert.is_true(ChannelError:matches(again))
      assert.matches("the connection is closed", again.message)
      assert.is_true(ChannelError:matches(util.catch(client.flush, client)))
    end)
  end)

  it("to a child that has exited, over its pipe: the write fails, no SIGPIPE, and says so", function()
    curio.run(function()
      local sub = curio.subprocess
      local p = sub.Popen({ "sh", "-c", "exit 0" }, { stdin = sub.PIPE, stdout = sub.PIPE })
      local conn <close> = channel.Connection(p.stdout, p.stdin)
      assert.are.equal(0, p:wait())
      local err
      for i = 1, 1000 do
        local ok, e = pcall(function()
          conn:send({ i = i })
          conn:flush()
        end)
        if not ok then err = e break end
      end
      assert.is_true(curio.BrokenPipeError:matches(err), tostring(err))
      assert.is_true(conn:closed())
      assert.matches("BrokenPipeError in a send", util.catch(conn.send, conn, 1).message)
    end)
  end)

  it("held back when the connection closes: the sender gets ChannelError", function()
    curio.run(function()
      local server, client = narrow_pair()
      local _ <close> = closing(server, client)
      local sender = curio.spawn(function()
        while true do client:send_bytes(string.rep("y", 1000)) end
      end)
      while pending(client) < HIGH do curio.sleep(0) end
      curio.sleep(0)
      client:close()
      local err = util.catch(sender.join, sender)
      assert.is_true(ChannelError:matches(err.cause or err), tostring(err))
      assert.matches("the connection is closed", (err.cause or err).message)
    end)
  end)

  it("reach the peer when close follows them at once", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      for i = 1, 10 do client:send(i) end
      client:close()
      for i = 1, 10 do assert.are.equal(i, server:recv()) end
      assert.is_true(channel.EOFError:matches(util.catch(server.recv, server)))
    end)
  end)

  it("reach the peer when the kernel ends right after them", function()
    local server, client
    curio.run(function()
      server, client = pair()
      for i = 1, 5 do client:send(i) end
      assert.is_true(pending(client) > 0)
    end) -- (the kernel's last write)
    curio.run(function()
      local _ <close> = closing(server, client)
      assert.are.equal(0, pending(client))
      for i = 1, 5 do assert.are.equal(i, server:recv()) end
    end)
  end)

  it("reach the peer when the connection is dropped and collected", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server)
      for i = 1, 5 do client:send(i) end
      client = nil -- luacheck: ignore (dropped with its buffer)
      collectgarbage()
      collectgarbage()
      for i = 1, 5 do assert.are.equal(i, server:recv()) end
      assert.is_true(channel.EOFError:matches(util.catch(server.recv, server)))
    end)
  end)

  it("let the kernel close while a sender is held back", function()
    local server, client
    curio.run(function()
      server, client = narrow_pair()
      curio.spawn_daemon(function()
        while true do client:send_bytes(string.rep("y", 1000)) end
      end)
      while pending(client) < HIGH do curio.sleep(0) end
    end) -- (the sender is cancelled where it waits)
    assert.is_false(client:closed())
    client:close()
    server:close()
  end)

  it("flush refuses bad calls", function()
    local server, client
    curio.run(function()
      server, client = pair()
    end)
    local _ <close> = closing(server, client)
    assert.matches("flush", util.catch(client.flush, client).message or "")
    assert.matches("flush", tostring(util.catch(getmetatable(client).flush, {})))
    client:close()
    curio.run(function()
      assert.is_true(ChannelError:matches(util.catch(client.flush, client)))
    end)
  end)

  it("widen a unix socket's send buffer at the first message of a megabyte, and only then", function()
    curio.run(function()
      local server, client = pair(true)
      local _ <close> = closing(server, client)
      local before = client._wsock:getsockopt("SO_SNDBUF")
      local reader = curio.spawn(function()
        local sizes = {}
        for i = 1, 3 do sizes[i] = #server:recv_bytes() end
        return sizes
      end)
      client:send_bytes(string.rep("s", 1024 * 1024 - 1))
      assert.are.equal(before, client._wsock:getsockopt("SO_SNDBUF"))
      client:send_bytes(string.rep("b", 1024 * 1024))
      local wide = client._wsock:getsockopt("SO_SNDBUF")
      assert.is_true(wide > before, ("%d, was %d"):format(wide, before))
      client:send_bytes(string.rep("c", 2 * 1024 * 1024))
      assert.are.equal(wide, client._wsock:getsockopt("SO_SNDBUF"))
      assert.are.same({ 1024 * 1024 - 1, 1024 * 1024, 2 * 1024 * 1024 }, reader:join())
    end)
  end)

  it("keep several senders' messages whole, in each sender's order", function()
    curio.run(function()
      local server, client = narrow_pair()
      local _ <close> = closing(server, client)
      local senders = {}
      for s = 1, 5 do
        senders[s] = curio.spawn(function()
          for i = 1, 300 do
            client:send({ s = s, i = i, pad = string.rep("p", (i * 37) % 3000) })
            if i % 7 == 0 then curio.sleep(0) end
          end
        end)
      end
      local last = { 0, 0, 0, 0, 0 }
      for _ = 1, 1500 do
        local m = server:recv()
        assert.are.equal(last[m.s] + 1, m.i)
        assert.are.equal((m.i * 37) % 3000, #m.pad)
        last[m.s] = m.i
      end
      for s = 1, 5 do senders[s]:join() end
    end)
  end)
end)
