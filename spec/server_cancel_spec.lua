local curio = require "curio"
local util = require "support.util"
local net = require "support.net"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Servers' handler sockets, closed however the handler ends and when the
-- server is cancelled, and timeouts and cancellation of accept and recv
-- (docs/sockets.md; lua/curio/network.lua rules, core/socket.c).

local HOST, listener, recv_upto, wait_until, stop = net.HOST, net.listener, net.recv_upto, net.wait_until, net.stop
local fails = util.catch

describe("server handler sockets", function()
  it("are closed when the handler returns", function()
    curio.run(function()
      local ls, port = listener()
      local kept, done = {}, curio.Event()
      local server = curio.spawn(curio.run_server, ls, function(client, addr)
        kept[#kept + 1] = { client, addr }
        client:sendall("hello")
        done:set()
      end)
      local sock = curio.open_connection(HOST, port)
      assert.are.equal("hello", recv_upto(sock, 5))
      assert.are.equal("", curio.timeout_after(2, sock.recv, sock, 10))
      done:wait()
      assert.are.equal(1, #kept)
      assert.is_true(kept[1][1]:closed())
      assert.are.equal(tostring(sock:getsockname()), tostring(kept[1][2]))
      sock:close()
      stop(server)
    end)
  end)

  it("are closed when the handler raises; the failure is reported and the server goes on", function()
    local status, stdout, stderr = util.lua_code([[
      local curio = require "curio"
      curio.run(function()
        local ls = curio.tcp_server_socket("127.0.0.1", 0)
        local port = ls:getsockname().port
        local kept = {}
        local server = curio.spawn(curio.run_server, ls, function(client, addr)
          kept[#kept + 1] = client
          if #kept == 1 then error("handler boom") end
          client:sendall(client:recv(100))
        end)
        local a = curio.open_connection("127.0.0.1", port)
        print("first", ("%q"):format(curio.timeout_after(2, a.recv, a, 100)))
        print("first closed", kept[1]:closed())
        print("first addr", tostring(a:getsockname()))
        local b = curio.open_connection("127.0.0.1", port)
        b:sendall("still serving")
        print("second", curio.timeout_after(2, b.recv, b, 100))
        b:close()
        a:close()
        server:cancel()
        print("server closed", ls:closed())
      end)
    ]], 10)
    assert.are.equal(0, status, stderr)
    local lines = util.lines(stdout)
    assert.are.equal(5, #lines, stdout)
    assert.are.equal('first\t""', lines[1])
    assert.are.equal("first closed\ttrue", lines[2])
    local addr = lines[3]:match("^first addr\t(127%.0%.0%.1:%d+)$")
    assert.is_string(addr, lines[3])
    assert.are.equal("second\tstill serving", lines[4])
    assert.are.equal("server closed\ttrue", lines[5])
    local first = stderr:match("^[^\n]*")
    assert.is_truthy(first:find("curio: server handler for " .. addr .. " failed: ", 1, true), stderr)
    assert.is_truthy(first:find("handler boom", 1, true), stderr)
    assert.is_truthy(stderr:find("stack traceback:", 1, true), stderr)
    local _, reports = stderr:gsub("server handler for", "")
    assert.are.equal(1, reports, stderr)
  end)

  it("report a failed handler once: one line when the peer reset or closed, else its line and one traceback", function()
    local path = os.tmpname()
    os.remove(path)
    local status, stdout, stderr = util.lua_code(([[
      local curio = require "curio"
      local core = require "curio.core"
      curio.run(function()
        local ls = curio.tcp_server_socket("127.0.0.1", 0)
        local ended, n = curio.Event(), 0
        local function finish(ok, err) ended:set(); if not ok then error(err, 0) end end
        local server = curio.spawn(curio.run_server, ls, function(client)
          n = n + 1
          if n == 1 then -- the peer resets: it closes with our data unread
            client:sendall("hello")
            finish(pcall(client.recv, client, 100))
          elseif n == 2 then -- the peer closed: writes break
            assert(client:recv(100) == "")
            finish(pcall(function() while true do client:sendall(("x"):rep(65536)) end end))
          elseif n == 3 then
            ended:set()
            error("handler boom")
          else
            local function deeper() error(curio.OSError("disk on fire")) end
            finish(pcall(deeper))
          end
        end)
        for i = 1, 4 do
          local a = curio.open_connection("127.0.0.1", ls:getsockname().port)
          print(tostring(a:getsockname()))
          if i == 1 then core.wait_fd(a:fileno(), "r") end
          a:close()
          ended:wait()
          ended:clear()
        end
        server:cancel()
        local unix = curio.spawn(curio.unix_server, %q, function()
          ended:set()
          error(curio.ConnectionResetError("recv: Connection reset by peer"))
        end)
        curio.sleep(0)
        curio.open_unix_connection(%q):close()
        ended:wait()
        unix:cancel()
      end)
    ]]):format(path, path), 20)
    assert.are.equal(0, status, stderr)
    local peers = util.lines(stdout)
    assert.are.equal(4, #peers, stdout)
    local lines = util.lines(stderr)
    assert.are.same({
      "curio: server handler for " .. peers[1]
        .. ": connection closed by the peer (ConnectionResetError: recv: Connection reset by peer)",
      "curio: server handler for " .. peers[2]
        .. ": connection closed by the peer (BrokenPipeError: sendall: Broken pipe)",
      "curio: server handler for " .. peers[3] .. " failed: " .. lines[3]:match("failed: (.*)$"),
      "stack traceback:",
      "\t[C]: in function 'error'",
      lines[6],
      "curio: server handler for " .. peers[4] .. " failed: OSError: disk on fire",
      "stack traceback:",
      lines[9],
      "\t[C]: in function 'pcall'",
      lines[11],
      "curio: server handler for a peer of " .. path
        .. ": connection closed by the peer (ConnectionResetError: recv: Connection reset by peer)",
    }, lines)
    assert.matches(":17: handler boom$", lines[3])
    assert.matches("^\t[^\t]*:17: in function <[^\t]*:7>$", lines[6])
    assert.matches("^\t[^\t]*:19: in function <[^\t]*:19>$", lines[9])
    assert.matches("^\t[^\t]*:20: in function <[^\t]*:7>$", lines[11])
  end)

  it("are closed, their handlers cancelled and the port freed when the server is cancelled", function()
    curio.run(function()
      local ls, port = listener()
      local kept, trace = {}, {}
      local server = curio.spawn(curio.run_server, ls, function(client)
        kept[#kept + 1] = client
        local ok, err = pcall(client.recv, client, 100) -- blocks: the clients send nothing
        trace[#trace + 1] = curio.TaskCancelled:matches(err) and "handler cancelled" or tostring(ok)
        error(err, 0)
      end)
      local clients = {}
      for i = 1, 3 do clients[i] = curio.open_connection(HOST, port) end
      assert.is_true(wait_until(function() return #kept == 3 end, 5))
      local busy = fails(curio.tcp_server_socket, HOST, port)
      assert.is_true(curio.OSError:matches(busy))
      assert.are.equal("EADDRINUSE", busy.code)
      stop(server)
      trace[#trace + 1] = "cancel returned"
      assert.are.same({ "handler cancelled", "handler cancelled", "handler cancelled", "cancel returned" }, trace)
      assert.is_true(server.cancelled)
      for i = 1, 3 do
        assert.is_true(kept[i]:closed(), "handler socket " .. i)
        assert.are.equal("", curio.timeout_after(2, clients[i].recv, clients[i], 100))
        clients[i]:close()
      end
      assert.is_true(ls:closed())
      local again = curio.tcp_server_socket(HOST, port)
      assert.are.equal(port, again:getsockname().port)
      again:close()
    end)
  end)

  it("include one accepted just before the server is cancelled, before its handler ran", function()
    -- The server accepts and spawns the handler's task; the server is
    -- cancelled before that task first runs. Rule 2: the handler must
    -- still be cancelled and its socket closed before cancel returns.
    curio.run(function()
      local ls, port = listener()
      local trace, kept = {}, {}
      local server = curio.spawn(curio.run_server, ls, function(client)
        kept[#kept + 1] = client
        trace[#trace + 1] = "handler started"
        local ok, err = pcall(curio.sleep, 0.5)
        trace[#trace + 1] = ok and "handler finished" or "handler cancelled"
        if not ok then error(err, 0) end
      end)
      curio.sleep(0.01)
      local sock = curio.open_connection(HOST, port)
      stop(server)
      trace[#trace + 1] = "cancel returned"
      local handler_closed = kept[1] ~= nil and kept[1]:closed()
      local data, why = curio.ignore_after(0.1, sock.recv, sock, 10)
      sock:close()
      assert.are.same({ "handler started", "handler cancelled", "cancel returned" },
                      { trace[1], trace[2], trace[3] })
      assert.is_true(handler_closed, "handler socket closed when cancel returned")
      assert.are.same({ "", nil }, { data, why })
    end)
  end)

  describe("timeouts and cancellation", function()
    it("of a server's accept", function()
      curio.run(function()
        -- run_server under a timeout: TaskTimeout, listening socket closed
        local ls, port = listener()
        local t0 = curio.clock()
        local err = fails(curio.timeout_after, 0.05, curio.run_server, ls, function() end)
        assert.is_true(curio.TaskTimeout:matches(err), tostring(err))
        local elapsed = curio.clock() - t0
        assert.is_true(elapsed >= 0.045 and elapsed < 1, elapsed)
        assert.is_true(ls:closed())
        curio.tcp_server_socket(HOST, port):close()

        -- accept itself: a timeout, a cancellation, then an accept that works
        local sock = curio.tcp_server_socket(HOST, 0)
        port = sock:getsockname().port
        local none, why = curio.ignore_after(0.02, sock.accept, sock)
        assert.is_nil(none)
        assert.are.equal(curio.TIMEOUT, why)
        local waiter = curio.spawn(sock.accept, sock)
        curio.sleep(0.01)
        waiter:cancel()
        assert.is_true(waiter.cancelled)
        assert.is_true(curio.TaskCancelled:matches(waiter.exception))
        local client = curio.open_connection(HOST, port)
        local conn, addr = curio.timeout_after(2, sock.accept, sock)
        assert.are.equal(tostring(client:getsockname()), tostring(addr))
        conn:sendall("accepted")
        assert.are.equal("accepted", recv_upto(client, 8))
        conn:close()
        client:close()
        sock:close()
      end)
    end)

    it("of a client's recv leave the socket usable", function()
      curio.run(function()
        local ls, port = listener()
        local go = curio.Queue()
        local server = curio.spawn(curio.run_server, ls, function(client)
          while true do
            local item = go:get()
            if item == "stop" then break end
            client:sendall(item)
          end
        end)
        local sock = curio.open_connection(HOST, port)
        local t0 = curio.clock()
        local err = fails(curio.timeout_after, 0.05, sock.recv, sock, 100)
        assert.is_true(curio.TaskTimeout:matches(err), tostring(err))
        assert.are.equal(0.05, err.seconds)
        local elapsed = curio.clock() - t0
        assert.is_true(elapsed >= 0.045 and elapsed < 1, elapsed)
        go:put("later")
        assert.are.equal("later", curio.timeout_after(2, sock.recv, sock, 100))

        -- ignore_after, then a cancelled reader task, then a reader that gets the data
        local none, why = curio.ignore_after(0.02, sock.recv, sock, 100)
        assert.is_nil(none)
        assert.are.equal(curio.TIMEOUT, why)
        local reader = curio.spawn(sock.recv, sock, 100)
        curio.sleep(0.01)
        reader:cancel()
        assert.is_true(reader.cancelled)
        local second = curio.spawn(function() return sock:recv(100) end)
        curio.sleep(0.01)
        go:put("after cancel")
        assert.are.equal("after cancel", curio.timeout_after(2, second.join, second))
        go:put("stop")
        assert.are.equal("", curio.timeout_after(2, sock.recv, sock, 100))
        sock:close()
        stop(server)
      end)
    end)
  end)
end)
