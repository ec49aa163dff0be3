local curio = require "curio"
local util = require "support.util"
local channels = require "support.channels"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.channel at its edges: limits, malformed frames, peers that go
-- away, several tasks on one connection, timeouts and cancellation in the
-- middle of messages, TLS, unix paths, connecting before the listener is
-- up (lua/curio/channel.lua, its rules).

local channel = curio.channel
local ChannelError, EOFError, MessageError = channel.ChannelError, channel.EOFError, channel.MessageError

-- Two connected Connections on the loopback: server side, client side.
local function pair(channel_opts, server_opts, client_opts)
  return channels.pair({ channel = channel_opts, server = server_opts, client = client_opts })
end

local closing = channels.closing

-- A Connection served to a raw socket: the server's Connection (with
-- channel_opts) and the raw client socket. With `wrapped`, the server's
-- Connection reads and writes through a Stream over a Lua source (the
-- path of TLS and other streams) instead of its socket directly.
local function raw_peer(channel_opts, wrapped)
  local ch = curio.Channel({ "127.0.0.1", 0 }, channel_opts)
  local addr = ch:bind()
  local accepting = curio.spawn(ch.accept, ch)
  local raw = curio.open_connection(addr[1], addr[2])
  local server = accepting:join()
  ch:close()
  if wrapped then
    local sock = server._rsock -- (taken from the plain Connection, which is dropped)
    local source = {
      read = function(_, n) return sock:recv(n) end,
      write = function(_, data) sock:sendall(data) return #data end,
      close = function() sock:close() end,
      fileno = function() return sock:fileno() end,
    }
    server = channel.Connection(curio.Stream(source), nil, channel_opts)
    assert(server._rsock == nil)
  end
  return server, raw
end

local paths = { { "read by core.read_frame", false }, { "read through a Stream", true } }

-- n pseudo-random bytes from seed.
local function bytes(n, seed)
  local parts, state = {}, seed
  local word = string.pack(">I4", seed % 4294967296)
  local block = word:rep(1024)
  for i = 1, n // #block do
    state = (state * 1103515245 + 12345) % 2147483648
    parts[i] = string.pack(">I4", state) .. block:sub(5)
  end
  parts[#parts + 1] = block:sub(1, n % #block)
  return table.concat(parts)
end

describe("a Connection's limit", function()
  it("refuses a bigger message before reading it, closes, and says why afterwards", function()
    curio.run(function()
      local server, client = pair({ max_size = 1000 })
      local _ <close> = closing(server, client)
      client:send_bytes(("x"):rep(1000))
      assert.are.equal(1000, #server:recv_bytes())
      client:send_bytes(("x"):rep(1001))
      local err = util.catch(server.recv_bytes, server)
      assert.is_true(MessageError:matches(err))
      assert.are.equal("recv_bytes: message of 1001 bytes over the limit of 1000", err.message)
      assert.are.equal(1001, err.size)
      assert.is_true(server:closed())
      err = util.catch(server.recv, server)
      assert.is_true(ChannelError:matches(err))
      assert.are.equal("recv: the connection is closed (a bad message came: message of 1001 bytes over "
                       .. "the limit of 1000)", err.message)
      err = util.catch(server.send, server, 1)
      assert.are.equal("send: the connection is closed (a bad message came: message of 1001 bytes over "
                       .. "the limit of 1000)", err.message)
    end)
  end)

  it("takes recv_bytes's maxlength as a lower limit", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      client:send_bytes("0123456789")
      client:send_bytes("0123456789!")
      assert.are.equal("0123456789", server:recv_bytes(10))
      local err = util.catch(server.recv_bytes, server, 10)
      assert.are.equal("recv_bytes: message of 11 bytes over the limit of 10", err.message)
    end)
  end)

  it("allocates nothing for a header that claims 2^62 bytes", function()
    curio.run(function()
      local server, raw = raw_peer()
      local _ <close> = closing(server, raw)
      local before = util.resident_bytes()
      raw:sendall("\255\255\255\255" .. string.pack(">I8", 1 << 62))
      local err = util.catch(server.recv_bytes, server)
      assert.are.equal("recv_bytes: message of 4611686018427387904 bytes over the limit of 67108864", err.message)
      assert.is_true(util.resident_bytes() - before < 8 * 1024 * 1024)
    end)
  end)
end)

for _, path in ipairs(paths) do
describe("malformed frames from a raw socket, " .. path[1], function()
  local cases = {
    { "a negative size", "\128\0\0\0", "recv_bytes: malformed message header" },
    { "-2", "\255\255\255\254", "recv_bytes: malformed message header" },
    { "an 8-byte size of 2^63", "\255\255\255\255\128\0\0\0\0\0\0\0", "recv_bytes: malformed message header" },
  }
  for _, case in ipairs(cases) do
    it("refuses " .. case[1] .. " and closes the connection", function()
      curio.run(function()
        local server, raw = raw_peer(nil, path[2])
        local _ <close> = closing(server, raw)
        raw:sendall(case[2])
        local err = util.catch(server.recv_bytes, server)
        assert.is_true(MessageError:matches(err))
        assert.are.equal(case[3], err.message)
        assert.is_true(server:closed())
        assert.are.equal("", raw:recv(10)) -- the server closed it
      end)
    end)
  end

  it("reads the 8-byte form of the header", function()
    curio.run(function()
      local server, raw = raw_peer(nil, path[2])
      local _ <close> = closing(server, raw)
      raw:sendall("\255\255\255\255" .. string.pack(">I8", 5) .. "hello")
      assert.are.equal("hello", server:recv_bytes())
    end)
  end)

  it("refuses a payload that is no codec data, or holds more than one value", function()
    curio.run(function()
      for _, payload in ipairs({ "junk", require("curio.core").encode(1, 2), "CL\1\1\6\255\255\255\255" }) do
        local server, raw = raw_peer(nil, path[2])
        local _ <close> = closing(server, raw)
        raw:sendall(string.pack(">i4", #payload) .. payload)
        local err = util.catch(server.recv, server)
        assert.is_true(MessageError:matches(err), tostring(err))
        assert.matches("^recv: the message is no value: ", err.message)
        assert.is_true(server:closed())
      end
    end)
  end)

  it("raises EOFError when the peer closes in a header or a payload, and closes", function()
    curio.run(function()
      for _, partial in ipairs({ "\0\0", "\0\0\0\100" .. ("x"):rep(10), string.pack(">i4", 200000) .. ("y"):rep(70000) }) do
        local server, raw = raw_peer(nil, path[2])
        local _ <close> = closing(server)
        raw:sendall(partial)
        raw:close()
        local err = util.catch(server.recv_bytes, server)
        assert.is_true(EOFError:matches(err), tostring(err))
        assert.matches("^recv_bytes: the peer closed the connection in the middle of a message", err.message)
        assert.is_true(server:closed())
      end
    end)
  end)

  it("raises EOFError at a clean end, again at each call, and stays open", function()
    curio.run(function()
      local server, raw = raw_peer(nil, path[2])
      local _ <close> = closing(server)
      raw:close()
      for _ = 1, 2 do
        local err = util.catch(server.recv, server)
        assert.is_true(EOFError:matches(err))
        assert.are.equal("recv: the peer closed the connection", err.message)
      end
      assert.is_false(server:closed())
    end)
  end)

  it("closes on a reset in the middle of a message", function()
    curio.run(function()
      local server, raw = raw_peer(nil, path[2])
      local _ <close> = closing(server, raw)
      server:send_bytes("unread") -- left unread: closing raw resets the connection
      raw:sendall(string.pack(">i4", 100000) .. ("z"):rep(1000))
      curio.sleep(0)
      raw:close()
      local err = util.catch(server.recv_bytes, server)
      assert.is_true(curio.ConnectionResetError:matches(err) or EOFError:matches(err), tostring(err))
      assert.is_true(server:closed())
      err = util.catch(server.recv_bytes, server)
      assert.is_true(ChannelError:matches(err))
    end)
  end)
end)
end

describe("several tasks on one Connection", function()
  it("never mix 1,000 messages each way, sent and received by several tasks at once", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local SENDERS, EACH = 4, 250
      local function message(side, sender, seq)
        -- sizes from 1 byte to 200 KiB: big ones block their writer
        local size = (seq * 7919 + sender * 104729) % 6 == 0 and 200000 or (seq % 50) + 1
        return { side = side, sender = sender, seq = seq, data = bytes(size, seq * 10 + sender) }
      end
      local function run_side(conn, side)
        local group = curio.TaskGroup()
        for s = 1, SENDERS do
          group:spawn(function()
            for seq = 1, EACH do
              if seq % 2 == 0 then conn:send(message(side, s, seq))
              else conn:send_bytes(string.pack(">s4s4", side, s) .. string.pack(">i4", seq)) end
            end
          end)
        end
        local received = {}
        for _ = 1, 3 do
          group:spawn(function()
            while #received < SENDERS * EACH do
              local ok, got = pcall(conn.recv_bytes, conn)
              if not ok then break end
              received[#received + 1] = got
              if #received == SENDERS * EACH then break end
            end
          end)
        end
        return group, received
      end
      local g1, from_client = run_side(server, "server")
      local g2, from_server = run_side(client, "client")
      -- every sender's messages arrive once each, whole
      local function check(list, side)
        local seen = {}
        for _, raw in ipairs(list) do
          local sender, seq, payload
          if raw:sub(1, 3) == "CL\1" then
            local m = require("curio.core").decode(raw)
            assert.are.equal(side, m.side)
            assert.are.equal(bytes(#m.data, m.seq * 10 + m.sender), m.data)
            sender, seq = m.sender, m.seq
            assert.are.same(message(side, sender, seq), m)
          else
            local who, s, pos = string.unpack(">s4s4", raw)
            assert.are.equal(side, who)
            payload = string.unpack(">i4", raw, pos)
            sender, seq = tonumber(s), payload
          end
          local key = sender .. ":" .. seq
          assert.is_nil(seen[key], key)
          seen[key] = true
        end
        local n = 0
        for _ in pairs(seen) do n = n + 1 end
        assert.are.equal(SENDERS * EACH, n)
      end
      -- the receivers stop at 1,000 each; the last ones waiting are cancelled
      local function finish(group, list)
        while #list < SENDERS * EACH do curio.sleep(0.01) end
        group:cancel_remaining()
        group:join()
      end
      finish(g1, from_client)
      finish(g2, from_server)
      check(from_client, "client")
      check(from_server, "server")
    end)
  end)

  it("leaves the connection usable when a sender waiting its turn times out", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local big = bytes(8 * 1024 * 1024, 9)
      local first = curio.spawn(client.send_bytes, client, big) -- (blocks: nobody reads yet)
      curio.sleep(0)
      local err = util.catch(curio.timeout_after, 0.01, client.send_bytes, client, "second")
      assert.is_true(curio.TaskTimeout:matches(err))
      assert.is_false(client:closed())
      local reader = curio.spawn(function() return server:recv_bytes() == big, server:recv_bytes() end)
      client:send_bytes("third") -- (after the first, once the reader drains it)
      assert.are.same({ true, "third" }, { reader:join() })
      first:join()
    end)
  end)

  it("makes a second receiver wait its turn, and wakes every waiter when closed", function()
    local trace = util.traced(function(record)
      local server, client = pair()
      local _ <close> = closing(server, client)
      local function receiver(name)
        local ok, value = pcall(server.recv, server)
        record(name, ok and value or (ChannelError:matches(value) and value.message or tostring(value)))
      end
      local a = curio.spawn(receiver, "a")
      local b = curio.spawn(receiver, "b")
      local c = curio.spawn(receiver, "c")
      curio.sleep(0)
      client:send("first")
      a:join()
      server:close()
      b:join()
      c:join()
    end)
    assert.are.same({ "a first", "b recv: the connection is closed", "c recv: the connection is closed" }, trace)
  end)
end)

describe("big messages", function()
  it("carries a 50 MiB message, as bytes and inside a value", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local big = bytes(50 * 1024 * 1024, 7)
      local sender = curio.spawn(function()
        client:send_bytes(big)
        client:send({ blob = big, n = 1 })
      end)
      local got = server:recv_bytes()
      assert.is_true(got == big)
      local value = server:recv()
      assert.is_true(value.blob == big)
      assert.are.equal(1, value.n)
      sender:join()
    end)
  end)
end)

describe("interruptions", function()
  -- Timeouts at random points of sends and receives of messages of random
  -- sizes: every message that arrives is whole and the one expected next;
  -- a connection interrupted mid-message is closed (then a new pair goes
  -- on), and one interrupted before any byte moved goes on.
  it("leave no half message behind, whatever the point (every message checked)", function()
    curio.run(function()
      math.randomseed(os.getenv("CURIO_CHANNEL_SEED") and tonumber(os.getenv("CURIO_CHANNEL_SEED")) or 12345)
      local stats = { delivered = 0, closed = 0, clean = 0 }
      for _ = 1, 12 do
        local server, client = pair()
        local _ <close> = closing(server, client)
        local expected = {} -- seq -> size, of messages whose send returned
        local sent_seq = 0
        local sender = curio.spawn(function()
          while not client:closed() do
            sent_seq = sent_seq + 1
            local size = math.random(0, 3) == 0 and math.random(100000, 1500000) or math.random(1, 2000)
            local seq = sent_seq
            local ok, err = pcall(curio.timeout_after, math.random() * 0.004, client.send_bytes, client,
                                  string.pack(">I4", seq) .. bytes(size, seq))
            if ok then expected[seq] = size
            elseif not (curio.TaskTimeout:matches(err) or ChannelError:matches(err)) then
              error(err, 0)
            end
          end
        end)
        local last = 0
        while not server:closed() do
          local ok, data = pcall(curio.timeout_after, math.random() * 0.004, server.recv_bytes, server)
          if ok then
            local seq = string.unpack(">I4", data)
            assert.is_true(seq > last)
            for missing = last + 1, seq - 1 do assert.is_nil(expected[missing]) end -- only failed sends skipped
            assert.is_true(data:sub(5) == bytes(#data - 4, seq), "message " .. seq .. " is not whole")
            last = seq
            stats.delivered = stats.delivered + 1
            if stats.delivered % 30 == 0 then break end
          elseif curio.TaskTimeout:matches(data) then
            if server:closed() then stats.closed = stats.closed + 1 else stats.clean = stats.clean + 1 end
          elseif not (ChannelError:matches(data) or curio.ConnectionResetError:matches(data)) then
            error(data, 0)
          end
        end
        server:close()
        client:close()
        sender:join()
      end
      assert.is_true(stats.delivered >= 50)
    end)
  end)

  for _, path in ipairs(paths) do
    it("keeps what a receive cancelled mid-message read: the next one gets it whole, " .. path[1], function()
      curio.run(function()
        local server, raw = raw_peer(nil, path[2])
        local _ <close> = closing(server, raw)
        -- cut inside the header's 8-byte size, then inside the payload
        local frame = "\255\255\255\255" .. string.pack(">I8", 100) .. ("p"):rep(100)
        for _, cut in ipairs({ 6, 50 }) do
          raw:sendall(frame:sub(1, cut))
          local receiving = curio.spawn(server.recv_bytes, server)
          curio.sleep(0)
          curio.sleep(0)
          receiving:cancel()
          assert.is_false(server:closed())
          raw:sendall(frame:sub(cut + 1))
          assert.are.equal(("p"):rep(100), server:recv_bytes())
        end
        -- over a lower limit the frame begun is refused all the same
        raw:sendall(frame:sub(1, 20))
        assert.is_nil(curio.ignore_after(0.01, server.recv_bytes, server))
        local err = util.catch(server.recv_bytes, server, 99)
        assert.is_true(MessageError:matches(err))
        assert.is_true(server:closed())
      end)
    end)
  end

  -- Cancellations at random points: each send and receive runs in a task
  -- of its own that is cancelled after a random pause; every message that
  -- arrives is whole and in order, whatever was cut.
  it("leave no half message behind when cancelled at random points (every message checked)", function()
    curio.run(function()
      math.randomseed(tonumber(os.getenv("CURIO_CHANNEL_SEED") or "") or 54321)
      local delivered = 0
      for _ = 1, 8 do
        local server, client = pair()
        local _ <close> = closing(server, client)
        local function cut(fn, ...)
          local t = curio.spawn(fn, ...)
          curio.ignore_after(math.random() * 0.003, t.wait, t)
          t:cancel()
          local ok, result = pcall(t.join, t)
          if ok then return true, result end
          return false, result.cause
        end
        local sent = {}
        local sender = curio.spawn(function()
          local seq = 0
          while not client:closed() do
            seq = seq + 1
            local size = math.random(0, 3) == 0 and math.random(100000, 1500000) or math.random(1, 2000)
            if cut(client.send_bytes, client, string.pack(">I4", seq) .. bytes(size, seq)) then sent[seq] = true end
          end
        end)
        local last, got = 0, 0
        while not server:closed() and got < 30 do
          local ok, data = cut(server.recv_bytes, server)
          if ok then
            local seq = string.unpack(">I4", data)
            assert.is_true(seq > last)
            for missing = last + 1, seq - 1 do assert.is_nil(sent[missing]) end
            assert.is_true(data:sub(5) == bytes(#data - 4, seq), "message " .. seq .. " is not whole")
            last, got = seq, got + 1
            delivered = delivered + 1
          elseif not (curio.CancelledError:matches(data) or ChannelError:matches(data)
                      or curio.ConnectionResetError:matches(data)) then
            error(data, 0)
          end
        end
        server:close()
        client:close()
        sender:join()
      end
      assert.is_true(delivered >= 30)
    end)
  end)

  it("keeps a connection whose receive is cancelled before a message began", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local receiving = curio.spawn(server.recv, server)
      curio.sleep(0)
      receiving:cancel()
      assert.is_false(server:closed())
      assert.is_nil(curio.ignore_after(0.01, server.recv, server))
      client:send("still fine")
      assert.are.equal("still fine", server:recv())
    end)
  end)

  it("lets the kernel close while a receive waits; the connection goes with its last reference", function()
    local server, client
    curio.run(function()
      server, client = pair()
      curio.spawn(server.recv, server)
      curio.spawn_daemon(client.recv, client)
      curio.sleep(0)
    end) -- (both receivers are cancelled as the kernel closes)
    assert.is_false(server:closed())
    server, client = nil, nil -- (collected: check_leaks finds no descriptor left)
  end)

  it("refuses a value nested deeper than the codec goes, before sending anything", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local deep = {}
      for _ = 1, 300 do deep = { deep } end
      local err = util.catch(client.send, client, deep)
      assert.is_true(curio.CurioError:matches(err))
      assert.matches("^send: cannot transfer value #1 .*%(table: nested too deeply%)$", err.message)
      client:send("next")
      assert.are.equal("next", server:recv())
    end)
  end)

  it("closes with close() where Lua cannot yield, and refuses to wait there", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local ok, err = pcall(string.gsub, "x", "x", function() return client:recv() end)
      assert.is_false(ok)
      assert.matches("yield", tostring(err))
      string.gsub("x", "x", function() client:close() end)
      assert.is_true(client:closed())
      client:close()
      assert.is_true(EOFError:matches(util.catch(server.recv, server)))
    end)
  end)
end)

describe("a Channel", function()
  it("connects over a unix path, retrying until the listener is up", function()
    curio.run(function()
      local path = os.tmpname()
      os.remove(path)
      local connecting = curio.spawn(function()
        local conn <close> = curio.Channel(path):connect({ authkey = "unix" })
        conn:send("over unix")
        return conn:recv()
      end)
      curio.sleep(0) -- its first try finds no file, and it waits to retry
      assert.is_false(connecting.terminated)
      local ch <close> = curio.Channel(path)
      local conn <close> = ch:accept({ authkey = "unix" })
      assert.are.equal("over unix", conn:recv())
      conn:send("back")
      assert.are.equal("back", connecting:join())
      ch:close()
      assert.is_nil(io.open(path)) -- the socket file goes with the channel
    end)
  end)

  it("retries within the task's timeout only", function()
    curio.run(function()
      local path = os.tmpname()
      os.remove(path)
      local err = util.catch(curio.timeout_after, 0.05, curio.Channel(path).connect, curio.Channel(path))
      assert.is_true(curio.TaskTimeout:matches(err))
    end)
  end)

  it("runs over TLS, the server's context to accept and the client's to connect", function()
    local certs = require("support.certs").make()
    local ok, err = pcall(curio.run, function()
      local server_ctx = curio.ssl.create_default_context("server")
      server_ctx:load_cert_chain(certs.server_cert, certs.server_key)
      local client_ctx = curio.ssl.create_default_context("client")
      client_ctx:load_verify_locations(certs.ca)
      -- over a unix socket first (the name to verify given)
      local path = os.tmpname()
      os.remove(path)
      local unix_ch <close> = curio.Channel(path, { ssl = server_ctx })
      unix_ch:bind()
      local unix_accepting = curio.spawn(unix_ch.accept, unix_ch)
      local unix_client <close> = curio.Channel(path, { ssl = client_ctx, server_hostname = "localhost" }):connect()
      local unix_server <close> = unix_accepting:join()
      unix_client:send({ over = "tls on unix" })
      assert.are.same({ over = "tls on unix" }, unix_server:recv())
      local ch <close> = curio.Channel({ "127.0.0.1", 0 }, { ssl = server_ctx })
      local addr = ch:bind()
      local accepting = curio.spawn(ch.accept, ch, { authkey = "tls" })
      local client_ch = curio.Channel(addr, { ssl = client_ctx, server_hostname = "localhost" })
      local client <close> = client_ch:connect({ authkey = "tls" })
      local server <close> = accepting:join()
      local big = bytes(3 * 1024 * 1024, 3)
      local echo = curio.spawn(function()
        for _ = 1, 3 do server:send(server:recv()) end
      end)
      for _, value in ipairs({ "hello", { big = big }, { 1, 2, { 3 } } }) do
        client:send(value)
        assert.are.same(value, client:recv())
      end
      echo:join()
      -- a send cut by a timeout over TLS closes the connection (what went
      -- out is not known), and the next call says so
      local huge = bytes(20 * 1024 * 1024, 5)
      local err = util.catch(curio.timeout_after, 0.001, client.send_bytes, client, huge)
      assert.is_true(curio.TaskTimeout:matches(err))
      assert.is_true(client:closed())
      err = util.catch(client.send, client, 1)
      assert.are.equal("send: the connection is closed (TaskTimeout in the middle of a send)", err.message)
      assert.has_error(function() client_ch:accept() end,
                       "bad argument #1 to 'accept' (the Channel's opts.ssl must be a server's SSLContext)")
      assert.has_error(function() ch:connect() end,
                       "bad argument #1 to 'connect' (the Channel's opts.ssl must be a client's SSLContext)")
    end)
    certs.remove()
    assert(ok, err)
  end)

  it("refuses calls once closed, and closes again quietly", function()
    local ch = curio.Channel({ "127.0.0.1", 0 })
    ch:bind()
    ch:close()
    ch:close()
    local err = util.catch(ch.bind, ch)
    assert.is_true(ChannelError:matches(err))
    assert.are.equal("bind: the channel is closed", err.message)
  end)
end)
