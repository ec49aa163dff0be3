local curio = require "curio"
local util = require "support.util"
local tlsnet = require "support.tlsnet"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- TLS at its edges (core/tls.c rules 3-7): STARTTLS and unwrap, shutdown,
-- timeouts and cancellations at random points with every byte checked,
-- a kernel closed while TLS tasks wait.

local ssl = curio.ssl
local certs

-- A pseudo-random generator of its own (math.random is the program's).
local function generator(seed)
  local state = seed
  return function(n)
    state = (state * 48271) % 2147483647
    return state % n
  end
end

describe("TLS at its edges", function()
  setup(function() certs = require("support.certs").make() end)
  teardown(function() certs.remove() end)

  it("upgrades a plain connection (STARTTLS) and unwraps it back to plain", function()
    local trace = util.traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local listener, port = tlsnet.listener()
      local server = curio.spawn(function()
        local plain = listener:accept()
        listener:close()
        local stream = plain:as_stream()
        record("server got", stream:readline())
        plain:sendall("220 go ahead\n")
        local tls = server_ctx:wrap_socket(plain, { server_side = true })
        local tstream = tls:as_stream()
        record("server got over TLS", tstream:readline())
        tstream:write("secret answer\n")
        local back = tls:unwrap()
        record("server unwrapped", tls:closed(), tostring(back):match("^Socket") ~= nil)
        record("server got in plain again", back:recv(100))
        back:sendall("bye\n")
        back:close()
      end)
      local plain = curio.open_connection("127.0.0.1", port)
      plain:sendall("STARTTLS\n")
      record("client got", plain:recv(100))
      local tls = client_ctx:wrap_socket(plain, { server_hostname = "localhost" })
      record("plain socket taken", plain:closed())
      tls:sendall("secret question\n")
      record("client got over TLS", tls:as_stream():readline())
      local back = tls:unwrap()
      back:sendall("plain again\n")
      record("client got in plain again", back:recv(100))
      back:close()
      server:join()
    end)
    assert.are.same({ "server got STARTTLS\n", "client got 220 go ahead\n", "plain socket taken true",
                      "server got over TLS secret question\n", "client got over TLS secret answer\n",
                      "server unwrapped true true", "server got in plain again plain again\n",
                      "client got in plain again bye\n" }, trace)
  end)

  it("shutdown(\"w\") sends close_notify; the other direction goes on", function()
    local trace = util.traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      client:sendall("request")
      client:shutdown("w")
      record("server read", server:recv(100), server:recv(100) == "")
      server:sendall("response after the half close")
      record("client read", client:recv(100))
      local err = util.catch(client.shutdown, client, "up")
      record(err:match("bad argument #1 to 'shutdown' %(\"r\", \"w\" or \"rw\" expected%)") ~= nil)
      client:shutdown("r")
    end)
    assert.are.same({ "server read request true", "client read response after the half close", "true" }, trace)
  end)

  it("keeps every byte whole through timeouts and cancellations at random points", function()
    local size = 1024 * 1024
    local up, down = tlsnet.bytes(size, 17), tlsnet.bytes(size, 19)
    local counts = { timeouts = 0, cancels = 0, read_timeouts = 0 }
    curio.run(curio.timeout_after, 60, function() -- (a lost byte would hang the readers)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      for _, sock in ipairs({ client, server }) do
        sock:setsockopt("SO_SNDBUF", 4096) -- (full soon: writes wait, records get committed)
      end
      -- sends data in random pieces, each under a random timeout or a
      -- cancellation from another task, going on from err.bytes_sent
      local function sender(sock, data, seed)
        local random, at = generator(seed), 1
        while at <= #data do
          local piece = data:sub(at, at + random(200000))
          local how = random(3)
          local ok, err
          if how == 0 then
            ok, err = pcall(curio.timeout_after, random(3) * 0.0005, sock.sendall, sock, piece)
          elseif how == 1 then
            local t = curio.spawn(function() return pcall(sock.sendall, sock, piece) end)
            for _ = 1, random(4) do curio.sleep(0) end
            t:cancel()
            ok, err = t:join()
          else
            ok, err = pcall(sock.send, sock, piece)
            if ok then piece, ok = piece:sub(1, err), false end
            err = ok or { bytes_sent = #piece }
          end
          if ok then
            at = at + #piece
          else
            assert(type(err) == "table" and err.bytes_sent, tostring(err))
            if curio.TaskTimeout:matches(err) then counts.timeouts = counts.timeouts + 1 end
            if curio.TaskCancelled:matches(err) then counts.cancels = counts.cancels + 1 end
            at = at + err.bytes_sent
          end
        end
      end
      -- reads everything, each read under a random timeout
      local function receiver(sock, n, seed)
        local random, parts, got = generator(seed), {}, 0
        while got < n do
          local ok, data = pcall(curio.timeout_after, random(4) * 0.0005, sock.recv, sock, random(50000) + 1)
          if ok then
            assert(data ~= "", "early end")
            parts[#parts + 1] = data
            got = got + #data
          else
            assert(curio.TaskTimeout:matches(data), tostring(data))
            counts.read_timeouts = counts.read_timeouts + 1
          end
        end
        return table.concat(parts)
      end
      local tasks = {
        curio.spawn(sender, client, up, 3), curio.spawn(sender, server, down, 5),
        curio.spawn(receiver, server, size, 7), curio.spawn(receiver, client, size, 11),
      }
      tasks[1]:join()
      tasks[2]:join()
      assert.is_true(tasks[3]:join() == up, "client to server bytes differ")
      assert.is_true(tasks[4]:join() == down, "server to client bytes differ")
    end)
    assert.is_true(counts.timeouts > 0 and counts.cancels > 0 and counts.read_timeouts > 0,
                   ("timeouts %d, cancels %d, read timeouts %d"):format(counts.timeouts, counts.cancels,
                                                                     counts.read_timeouts))
  end)

  it("an interrupted sendall counts what went; going on from bytes_sent finishes the record it began", function()
    local data = tlsnet.bytes(2 * 1024 * 1024, 29)
    local trace = util.traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      client:setsockopt("SO_SNDBUF", 4096)
      -- nobody reads yet: the connection fills, the write waits in a record
      local err = util.catch(curio.timeout_after, 0.05, client.sendall, client, data)
      record("timed out", curio.TaskTimeout:matches(err), err.bytes_sent < #data, err.bytes_sent % 16384)
      local reader = curio.spawn(function()
        local parts, got = {}, 0
        while got < #data do
          local part = server:recv(1 << 20)
          parts[#parts + 1] = part
          got = got + #part
        end
        return table.concat(parts)
      end)
      client:sendall(data:sub(err.bytes_sent + 1))
      record("every byte once", reader:join() == data)
      -- a write that does not go on with the record's bytes cannot be reconciled
      local err2 = util.catch(curio.timeout_after, 0.05, client.sendall, client, data)
      record("timed out again", curio.TaskTimeout:matches(err2))
      local err3 = util.catch(client.sendall, client, "something else")
      record(ssl.SSLError:matches(err3), err3.message, client:closed())
    end)
    assert.are.same({ "timed out true true 0", "every byte once true", "timed out again true",
                      "true sendall: a write interrupted in the middle of a TLS record must go on with the same "
                      .. "bytes (socket closed) true" }, trace)
  end)

  it("interrupts handshakes at random points and leaves nothing open", function()
    local outcomes = { done = 0, interrupted = 0 }
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local listener, port = tlsnet.listener()
      local served = 0
      local server = curio.spawn(curio.run_server, listener, function(tls)
        served = served + 1
        tls:sendall("welcome")
      end, { ssl = server_ctx })
      local random = generator(23)
      local real = io.stderr
      io.stderr = { write = function() end } -- luacheck: ignore 122 (the server reports each failed handshake)
      for _ = 1, 40 do
        local plain = curio.open_connection("127.0.0.1", port)
        local ok, tls = pcall(curio.timeout_after, random(6) * 0.0003, client_ctx.wrap_socket, client_ctx, plain,
                              { server_hostname = "localhost" })
        assert.is_true(plain:closed())
        if ok then
          outcomes.done = outcomes.done + 1
          assert.are.equal("welcome", tls:recv(100))
          tls:close()
        else
          assert.is_true(curio.TaskTimeout:matches(tls), tostring(tls))
          outcomes.interrupted = outcomes.interrupted + 1
        end
      end
      curio.timeout_after(5, server.cancel, server)
      io.stderr = real -- luacheck: ignore 122
    end)
    assert.are.equal(40, outcomes.done + outcomes.interrupted)
  end)

  it("survives its kernel closing while TLS tasks wait", function()
    local kernel = curio.Kernel()
    local sockets = {}
    kernel:run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      sockets = { client, server }
      client:setsockopt("SO_SNDBUF", 4096)
      curio.spawn(client.recv, client, 100)                       -- waits to read
      curio.spawn(client.sendall, client, string.rep("x", 1 << 22)) -- waits to write
      -- a handshake that waits: the peer speaks no TLS
      local listener, port = tlsnet.listener()
      local accepted = curio.spawn(listener.accept, listener)
      local plain = curio.open_connection("127.0.0.1", port)
      sockets[3], sockets[4], sockets[5] = accepted:join(), listener, plain
      curio.spawn(server_ctx.wrap_socket, server_ctx, sockets[3], { server_side = true })
      curio.spawn(function() -- a cleanup that waits on TLS again: abandoned by the shutdown
        local ok = pcall(server.recv, server, 100)
        if not ok then server:recv(100) end
      end)
      for _ = 1, 5 do curio.sleep(0) end
    end)
    kernel:close()
    for _, sock in ipairs(sockets) do sock:close() end
    collectgarbage()
    collectgarbage()
  end)

  it("refuses to wrap a socket a task waits on, and unwraps only once", function()
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local listener, port = tlsnet.listener()
      local plain = curio.open_connection("127.0.0.1", port)
      local peer = listener:accept()
      listener:close()
      local reader = curio.spawn(plain.recv, plain, 10)
      curio.sleep(0)
      local err = util.catch(client_ctx.wrap_socket, client_ctx, plain, { server_hostname = "localhost" })
      assert.matches("bad argument #1 to 'wrap_socket' %(socket in use by another task%)", err)
      peer:sendall("x")
      reader:join()
      peer:close()
      plain:close()
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local unwrapped = curio.spawn(server.unwrap, server)
      local back = client:unwrap()
      local server_back = unwrapped:join()
      assert.are.equal("unwrap: socket is closed", util.catch(client.unwrap, client).message)
      back:close()
      server_back:close()
      assert.is_true(ssl.SSLError:is_subclass(curio.OSError))
    end)
  end)
end)
