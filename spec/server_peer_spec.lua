local curio = require "curio"
local util = require "support.util"
local net = require "support.net"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Connections and their peers (docs/sockets.md): a peer that closes or
-- resets, SIGPIPE, and open_connection's failures and arguments.

local HOST, listener, recv_upto, wait_until, stop = net.HOST, net.listener, net.recv_upto, net.wait_until, net.stop
local fails = util.catch

describe("connections", function()
  describe("a peer", function()
    it("that closes gives \"\" from recv and BrokenPipeError from sendall", function()
      curio.run(function()
        local ls, port = listener()
        local server = curio.spawn(curio.run_server, ls, function() end)
        for _, kind in ipairs({ "socket", "stream" }) do
          local sock = curio.open_connection(HOST, port)
          local s = kind == "stream" and sock:as_stream() or nil
          assert.are.equal("", curio.timeout_after(2, function()
            if s then return s:read(100) end
            return sock:recv(100)
          end))
          local err, tries = nil, 0
          while err == nil and tries < 100 do
            tries = tries + 1
            local ok, e = pcall(function()
              if s then return s:write("more data") end
              return sock:sendall("more data")
            end)
            if not ok then err = e else curio.sleep(0.01) end
          end
          assert.is_true(curio.BrokenPipeError:matches(err), kind .. ": " .. tostring(err))
          assert.are.equal("EPIPE", err.code)
          assert.are.equal(32, err.errno)
          sock:close()
        end
        stop(server)
      end)
    end)

    it("that closes does not kill the process with SIGPIPE", function()
      local status, stdout, stderr = util.lua_code([[
        local curio = require "curio"
        curio.run(function()
          local ls = curio.tcp_server_socket("127.0.0.1", 0)
          local server = curio.spawn(curio.run_server, ls, function() end)
          local sock = curio.open_connection("127.0.0.1", ls:getsockname().port)
          assert(sock:recv(10) == "")
          for i = 1, 100 do
            local ok, err = pcall(sock.sendall, sock, ("x"):rep(70000))
            if not ok then print(err.code, curio.BrokenPipeError:matches(err)) break end
            curio.sleep(0.01)
          end
          sock:close()
          server:cancel()
        end)
        print("survived")
      ]], 10)
      assert.are.same({ 0, "EPIPE\ttrue\nsurvived\n", "" }, { status, stdout, stderr })
    end)

    it("that resets makes recv (or a first write) raise ConnectionResetError", function()
      curio.run(function()
        local ls, port = listener()
        local sent, done = curio.Queue(), 0
        local server = curio.spawn(curio.run_server, ls, function()
          sent:get()
          curio.sleep(0.01) -- the data is in this socket's buffer, unread: close sends RST
          done = done + 1
        end)
        local sock = curio.open_connection(HOST, port)
        sock:sendall("never read")
        sent:put(true)
        local err = fails(curio.timeout_after, 2, sock.recv, sock, 100)
        assert.is_true(curio.ConnectionResetError:matches(err), tostring(err))
        assert.is_true(curio.ConnectionError:matches(err))
        assert.are.equal(1, done)
        assert.are.equal(104, err.errno)
        assert.are.equal("ECONNRESET", err.code)
        assert.is_string(err.strerror)
        assert.is_true(#err.strerror > 0)
        sock:close()

        -- a write is the first to hear of the reset
        local sock2 = curio.open_connection(HOST, port)
        sock2:sendall("never read")
        sent:put(true)
        assert.is_true(wait_until(function() return done == 2 end, 2))
        curio.sleep(0.01)
        local err2 = fails(sock2.sendall, sock2, "more")
        assert.is_true(curio.ConnectionResetError:matches(err2), tostring(err2))
        assert.are.equal("ECONNRESET", err2.code)
        sock2:close()
        stop(server)
      end)
    end)
  end)

  describe("open_connection", function()
    it("to a closed port raises ConnectionRefusedError", function()
      curio.run(function()
        -- a port bound but not listening: nobody can take it meanwhile
        local bound <close> = curio.socket("inet", "stream")
        bound:bind({ HOST, 0 })
        local err = fails(curio.open_connection, HOST, bound:getsockname().port)
        assert.is_true(curio.ConnectionRefusedError:matches(err), tostring(err))
        assert.are.equal("ECONNREFUSED", err.code)
      end)
    end)

    it("resolves a host name and connects", function()
      curio.run(function()
        local ls, port = listener()
        local server = curio.spawn(curio.run_server, ls, function(client)
          client:sendall("hello " .. tostring(client:getsockname()))
        end)
        local sock = curio.open_connection("localhost", port)
        local peer = sock:getpeername()
        assert.are.equal(HOST, peer.host)
        assert.are.equal(port, peer.port)
        local hello = "hello " .. HOST .. ":" .. port
        assert.are.equal(hello, recv_upto(sock, #hello))
        assert.is_true(sock:getsockopt("TCP_NODELAY"))
        sock:close()
        stop(server)
      end)
    end)

    it("refuses bad arguments with messages naming the function", function()
      curio.run(function()
        local cases = {
          { "bad argument #1 to 'open_connection' (string host expected, got number)",
            curio.open_connection, 123, 80 },
          { "bad argument #2 to 'open_connection' (port out of range 0-65535)",
            curio.open_connection, HOST, 70000 },
          { "bad argument #3 to 'tcp_server_socket' (unknown option 'bogus')",
            curio.tcp_server_socket, HOST, 0, { bogus = 1 } },
          { "bad argument #3 to 'tcp_server' (function expected, got number)",
            curio.tcp_server, HOST, 0, 42 },
          { "bad argument #3 to 'tcp_server' (function expected, got no value)",
            curio.tcp_server, HOST, 0 },
          { "bad argument #2 to 'open_connection' (integer port expected, got string)",
            curio.open_connection, HOST, "80" },
        }
        for _, case in ipairs(cases) do
          local err = fails(function()
            local result = case[2](table.unpack(case, 3))
            return result
          end)
          assert.is_string(err, case[1])
          assert.is_truthy(err:find(case[1], 1, true), err)
          assert.is_truthy(err:find("server_peer_spec.lua", 1, true), "points at the caller: " .. err)
        end
      end)
    end)
  end)
end)
