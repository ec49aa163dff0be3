local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.socket and the Socket methods (core/socket.c; docs/sockets.md).

-- A connected TCP pair on the loopback: client side, server side.
local function pair(family)
  local host = family == "inet6" and "::1" or "127.0.0.1"
  local listener <close> = curio.socket(family or "inet", "stream")
  listener:bind({ host, 0 })
  listener:listen(1)
  local port = listener:getsockname().port
  local client = curio.socket(family or "inet", "stream")
  local accepted = curio.spawn(function() return listener:accept() end)
  client:connect({ host, port })
  local server = accepted:join()
  return client, server
end

local function has_ipv6()
  local ok = pcall(curio.run, function()
    local s <close> = curio.socket("inet6", "stream")
    s:bind({ "::1", 0 })
  end)
  return ok
end

describe("sockets", function()

  it("connect, accept, send and recv on TCP, with addresses as {host, port}", function()
    local trace = util.traced(function(record)
      local listener <close> = curio.socket("inet", "stream")
      listener:setsockopt("SO_REUSEADDR", true)
      listener:bind({ "127.0.0.1", 0 })
      listener:listen()
      local addr = listener:getsockname()
      record("listening", addr.host, addr[1], math.type(addr.port), addr.port > 0,
             tostring(addr) == "127.0.0.1:" .. addr.port)
      local server = curio.spawn(function()
        local client <close>, peer = listener:accept()
        record("accepted from", peer.host, peer.port == client:getpeername().port)
        local data = client:recv(100)
        record("server got", data)
        client:sendall(data:upper())
        record("server recv after close", client:recv(100) == "")
      end)
      local sock <close> = curio.socket()
      sock:connect(addr)
      record("peer is", tostring(sock:getpeername()) == tostring(addr), sock:getpeername() == addr)
      record("sent", sock:send("hello"))
      record("client got", sock:recv(100))
      sock:shutdown("w")
      server:join()
      record("client recv at end", sock:recv(100) == "")
    end)
    assert.are.same({ "listening 127.0.0.1 127.0.0.1 integer true true",
                      "accepted from 127.0.0.1 true", "peer is true true", "sent 5", "server got hello",
                      "client got HELLO", "server recv after close true",
                      "client recv at end true" }, trace)
  end)

  it("sendall sends megabytes to a slow reader, and recv waits for data", function()
    local same, size = curio.run(function()
      local a, b = pair()
      local _ <close> = a
      local _ <close> = b
      local payload = ("0123456789abcdef"):rep(1024 * 1024 // 16 * 8) -- 8 MiB
      local writer = curio.spawn(function() a:sendall(payload) a:shutdown("w") end)
      local parts = {}
      while true do
        local chunk = b:recv(65536)
        if chunk == "" then break end
        parts[#parts + 1] = chunk
        if #parts % 16 == 0 then curio.sleep(0) end
      end
      writer:join()
      return table.concat(parts) == payload, #table.concat(parts)
    end)
    assert.is_true(same)
    assert.are.equal(8 * 1024 * 1024, size)
  end)

  it("a timeout in sendall carries bytes_sent and leaves the socket usable", function()
    local sent, class, rest = curio.run(function()
      local a, b = pair()
      local _ <close> = a
      local _ <close> = b
      local big = ("x"):rep(32 * 1024 * 1024)
      local err = util.catch(curio.timeout_after, 0.2, a.sendall, a, big)
      local total = 0
      -- the peer drains what was sent; the socket still works afterwards
      a:sendall("END")
      while true do
        local chunk = b:recv(1 << 20)
        total = total + #chunk
        if chunk:sub(-3) == "END" then break end
      end
      return err.bytes_sent, curio.TaskTimeout:matches(err), total - 3
    end)
    assert.is_true(class)
    assert.is_true(sent > 0 and sent < 32 * 1024 * 1024)
    assert.are.equal(sent, rest)
  end)

  it("a cancelled recv leaves the socket usable for the next recv", function()
    local data = curio.run(function()
      local a, b = pair()
      local _ <close> = a
      local _ <close> = b
      local reader = curio.spawn(function() return b:recv(10) end)
      curio.sleep(0.01)
      reader:cancel()
      assert(reader.cancelled)
      local timed_out = curio.ignore_after(0.01, b.recv, b, 10)
      assert(timed_out == nil)
      a:sendall("after")
      return b:recv(10)
    end)
    assert.are.equal("after", data)
  end)

  it("raises ReadResourceBusy and WriteResourceBusy for a second reader or writer", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local _ <close> = a
      local _ <close> = b
      local first = curio.spawn(function() return b:recv(10) end)
      curio.sleep(0.01)
      local err = util.catch(b.recv, b, 10)
      record("second reader", curio.ReadResourceBusy:matches(err), err.message)
      local big = ("y"):rep(64 * 1024 * 1024)
      local writer = curio.spawn(function() return curio.ignore_after(0.5, a.sendall, a, big) end)
      curio.sleep(0.05)
      err = util.catch(a.sendall, a, "z")
      record("second writer", curio.WriteResourceBusy:matches(err))
      writer:cancel()
      a:sendall("") -- no writer left: allowed again
      first:cancel()
    end)
    assert.are.same({ "second reader true recv: another task is already reading from this socket",
                      "second writer true" }, trace)
  end)

  it("closing a socket wakes the task waiting on it with OSError EBADF", function()
    local trace = util.traced(function(record)
      local a, b = pair()
      local _ <close> = a
      local _ <close> = b
      local reader = curio.spawn(function() return b:recv(10) end)
      curio.sleep(0.01)
      local t0 = curio.clock()
      b:close()
      local err = util.catch(reader.join, reader)
      record(curio.TaskError:matches(err), curio.OSError:matches(err.cause), err.cause.code,
             curio.clock() - t0 < 0.5)
    end)
    assert.are.same({ "true true EBADF true" }, trace)
  end)

  it("a closed socket raises, and never touches a descriptor that reused its number", function()
    local trace = util.traced(function(record)
      local s = curio.socket()
      local fd = s:fileno()
      s:close()
      s:close() -- again: nothing
      record("closed", s:closed(), tostring(s))
      local path = os.tmpname()
      local f = io.open(path, "w") -- likely the same number as s had
      for _, call in ipairs({ { "recv", 1 }, { "send", "x" }, { "fileno" }, { "listen" },
                              { "bind", { "127.0.0.1", 0 } }, { "getsockname" }, { "sendall", "x" },
                              { "as_stream" } }) do
        local err = util.catch(s[call[1]], s, call[2])
        record(call[1], curio.OSError:matches(err), err.code, err.message)
      end
      f:write("intact")
      f:close()
      local check = io.open(path)
      record("file", check:read("a"))
      check:close()
      os.remove(path)
      record("fd was", math.type(fd))
    end)
    assert.are.same({ "closed true Socket (inet, closed)",
                      "recv true EBADF recv: socket is closed",
                      "send true EBADF send: socket is closed",
                      "fileno true EBADF fileno: socket is closed",
                      "listen true EBADF listen: socket is closed",
                      "bind true EBADF bind: socket is closed",
                      "getsockname true EBADF getsockname: socket is closed",
                      "sendall true EBADF sendall: socket is closed",
                      "as_stream true EBADF as_stream: socket is closed",
                      "file intact", "fd was integer" }, trace)
  end)

  it("a socket closed while sendall waits says socket is closed, with the bytes sent", function()
    local trace = util.traced(function(record)
      local listener <close> = curio.tcp_server_socket("127.0.0.1", 0)
      local accepted = curio.spawn(function() return listener:accept() end)
      local c = curio.open_connection("127.0.0.1", listener:getsockname().port)
      local peer <close> = accepted:join() -- (open, unread: the sender fills its buffer)
      record("peer", peer:closed())
      local sender = curio.spawn(function()
        return pcall(c.sendall, c, ("x"):rep(64 * 1024 * 1024)) -- more than the buffers hold
      end)
      curio.sleep(0) -- the sender fills the buffers and waits
      c:close()
      local ok, err = sender:join()
      record(ok, curio.OSError:matches(err), err.code, err.message, err.bytes_sent > 0)
    end)
    assert.are.same({ "peer false", "false true EBADF sendall: socket is closed true" }, trace)
  end)

  it("a sendall cut by a cancellation holds the socket until its task has run again", function()
    local trace = util.traced(function(record)
      local listener <close> = curio.tcp_server_socket("127.0.0.1", 0)
      local accepted = curio.spawn(function() return listener:accept() end)
      local c <close> = curio.open_connection("127.0.0.1", listener:getsockname().port)
      local peer <close> = accepted:join()
      record("peer", peer:closed())
      local sender = curio.spawn(function()
        local ok, err = pcall(c.sendall, c, ("x"):rep(64 * 1024 * 1024))
        record("sender", ok, curio.TaskCancelled:matches(err), err.bytes_sent > 0)
      end)
      curio.sleep(0) -- the sender fills the buffers and waits
      sender:cancel({ blocking = false }) -- woken, not run yet
      -- (the bound only keeps the old behaviour, a wait behind full buffers, from hanging)
      record("other", curio.WriteResourceBusy:matches(util.catch(curio.timeout_after, 5, c.sendall, c, "y")))
      sender:join()
      record("then", c:send("")) -- free again
    end)
    assert.are.same({ "peer false", "other true", "sender false true true", "then 0" }, trace)
  end)

  it("closes sockets by <close> and when collected", function()
    local before = util.fd_count()
    do
      local _ <close> = curio.socket()
      assert.is_true(util.fd_count() > before)
    end
    assert.are.equal(before, util.fd_count())
    for _ = 1, 100 do curio.socket("inet", "dgram") end
    collectgarbage()
    collectgarbage()
    assert.are.equal(before, util.fd_count())
  end)

  it("round-trips UDP datagrams with recvfrom and sendto", function()
    local trace = util.traced(function(record)
      local a <close> = curio.socket("inet", "dgram")
      local b <close> = curio.socket("inet", "dgram")
      a:bind({ "127.0.0.1", 0 })
      b:bind({ "127.0.0.1", 0 })
      local echo = curio.spawn(function()
        for _ = 1, 3 do
          local data, from = a:recvfrom(1000)
          a:sendto(data:rep(2), from)
        end
      end)
      for _, msg in ipairs({ "one", "", "three" }) do
        record("sent", b:sendto(msg, a:getsockname()))
        local data, from = b:recvfrom(1000)
        record("got", data, from == a:getsockname())
      end
      echo:join()
    end)
    assert.are.same({ "sent 3", "got oneone true", "sent 0", "got  true", "sent 5",
                      "got threethree true" }, trace)
  end)

  it("works over unix sockets, with paths for addresses", function()
    local dir = os.tmpname()
    os.remove(dir)
    local path = dir .. ".sock"
    local trace = util.traced(function(record)
      local listener <close> = curio.socket("unix", "stream")
      listener:bind(path)
      listener:listen()
      record("name", listener:getsockname() == path)
      local server = curio.spawn(function()
        local c <close>, addr = listener:accept()
        record("addr", addr)
        c:sendall(c:recv(100) .. "!")
      end)
      local s <close> = curio.open_unix_connection(path)
      s:sendall("unix")
      record("got", s:recv(100))
      server:join()
    end)
    os.remove(path)
    assert.are.same({ "name true", "addr ", "got unix!" }, trace)
  end)

  it("works over IPv6 loopback where the machine has it", function()
    if not has_ipv6() then return pending("no IPv6 loopback here") end
    local trace = util.traced(function(record)
      local a, b = pair("inet6")
      local _ <close> = a
      local _ <close> = b
      record(tostring(b:getsockname()):match("^%[::1%]:%d+$") ~= nil, a:getpeername().host)
      a:sendall("six")
      record(b:recv(10))
    end)
    assert.are.same({ "true ::1", "six" }, trace)
  end)

  it("sets and reads named options; TCP_NODELAY is on for servers' and open_connection's sockets", function()
    local trace = util.traced(function(record)
      local s <close> = curio.socket()
      record("nodelay", s:getsockopt("TCP_NODELAY"))
      s:setsockopt("TCP_NODELAY", true)
      s:setsockopt("SO_KEEPALIVE", 1)
      s:setsockopt("SO_RCVBUF", 65536)
      record("after", s:getsockopt("TCP_NODELAY"), s:getsockopt("SO_KEEPALIVE"),
             s:getsockopt("SO_RCVBUF") >= 65536, s:getsockopt("SO_ERROR"))
      local err = util.catch(s.setsockopt, s, "SO_BOGUS", 1)
      record(err:match("bad argument #1 to 'setsockopt' %(unknown option 'SO_BOGUS'%)") ~= nil)
      err = util.catch(s.getsockopt, s, 42)
      record(err:match("bad argument #1 to 'getsockopt'") ~= nil)
      err = util.catch(s.setsockopt, s, "SO_ERROR", 1)
      record(err:match("read%-only") ~= nil)
      err = util.catch(s.setsockopt, s, "TCP_NODELAY", "yes")
      record(err:match("bad argument #2 to 'setsockopt'") ~= nil)

      local listener = curio.tcp_server_socket("127.0.0.1", 0)
      local port = listener:getsockname().port
      local seen = curio.Queue()
      local server = curio.spawn(curio.run_server, listener, function(client)
        seen:put(client:getsockopt("TCP_NODELAY"))
        client:recv(1)
      end)
      local c <close> = curio.open_connection("127.0.0.1", port)
      record("server side", seen:get(), "client side", c:getsockopt("TCP_NODELAY"))
      server:cancel()
    end)
    assert.are.same({ "nodelay false", "after true true true 0", "true", "true", "true", "true",
                      "server side true client side true" }, trace)
  end)

  it("raises ConnectionRefusedError with errno, code and strerror", function()
    local err = curio.run(function()
      local s = curio.socket()
      s:bind({ "127.0.0.1", 0 })
      local port = s:getsockname().port
      s:close() -- nobody listens there now
      return util.catch(curio.open_connection, "127.0.0.1", port)
    end)
    assert.is_true(curio.ConnectionRefusedError:matches(err))
    assert.is_true(curio.OSError:matches(err))
    assert.are.same({ "ECONNREFUSED", "number" }, { err.code, type(err.errno) })
    assert.is_string(err.strerror)
  end)

  it("a peer's close gives \"\" to reads and BrokenPipeError to writes, without SIGPIPE", function()
    local trace = util.traced(function(record)
      local a <close>, b = pair()
      b:close()
      record("recv", a:recv(10) == "")
      local err
      for _ = 1, 100 do
        local ok, e = pcall(a.send, a, "data")
        if not ok then err = e break end
        curio.sleep(0.001)
      end
      record("send", curio.BrokenPipeError:matches(err), err.code)
    end)
    assert.are.same({ "recv true", "send true EPIPE" }, trace)
  end)

  it("a reset gives ConnectionResetError to reads", function()
    local trace = util.traced(function(record)
      local a <close>, b = pair()
      a:sendall("unread")
      curio.sleep(0.01)
      b:close() -- data left unread: the system answers with a reset
      local err = util.catch(a.recv, a, 10)
      record(curio.ConnectionResetError:matches(err), err.code, err.errno > 0)
    end)
    assert.are.same({ "true ECONNRESET true" }, trace)
  end)

  it("refuses bad arguments with errors naming the function", function()
    local trace = util.traced(function(record)
      local s <close> = curio.socket()
      local function msg(fn, ...)
        local err = util.catch(fn, ...)
        return (tostring(err):gsub("^.-bad argument", "bad argument"))
      end
      record(msg(curio.socket, "ipx"))
      record(msg(curio.socket, "inet", "raw"))
      record(msg(s.bind, s, { "127.0.0.1", 70000 }))
      record(msg(s.bind, s, { 127, 80 }))
      record(msg(s.connect, s, "127.0.0.1:80"))
      record(msg(s.recv, s, -1))
      record(msg(s.recv, s, "many"))
      record(msg(s.send, s, 42))
      record(msg(s.shutdown, s, "x"))
      record(msg(curio.open_connection, 123, 80))
      record(msg(curio.open_connection, "127.0.0.1", 70000))
      record(msg(curio.tcp_server_socket, "127.0.0.1", 0, { bogus = 1 }))
      record(msg(curio.tcp_server, "127.0.0.1", 0, "handler"))
    end)
    assert.are.same({
      "bad argument #1 to 'socket' (family \"inet\", \"inet6\" or \"unix\" expected)",
      "bad argument #2 to 'socket' (type \"stream\" or \"dgram\" expected)",
      "bad argument #1 to 'bind' (port out of range 0-65535)",
      "bad argument #1 to 'bind' (address host must be a string)",
      "bad argument #1 to 'connect' (address table {host, port} expected, got string)",
      "bad argument #1 to 'recv' (non-negative integer expected)",
      "bad argument #1 to 'recv' (number expected, got string)",
      "bad argument #1 to 'send' (string expected, got number)",
      "bad argument #1 to 'shutdown' (\"r\", \"w\" or \"rw\" expected)",
      "bad argument #1 to 'open_connection' (string host expected, got number)",
      "bad argument #2 to 'open_connection' (port out of range 0-65535)",
      "bad argument #3 to 'tcp_server_socket' (unknown option 'bogus')",
      "bad argument #3 to 'tcp_server' (function expected, got string)",
    }, trace)
  end)

  it("blocking calls raise outside a task and where Lua cannot yield", function()
    local s <close> = curio.socket()
    local err = util.catch(s.recv, s, 10)
    assert.are.equal("recv: not inside a curio task", err.message)
    err = util.catch(curio.open_connection, "127.0.0.1", 1)
    assert.are.equal("open_connection: not inside a curio task", err.message)
    local trace = util.traced(function(record)
      local a, b = pair()
      local _ <close> = a
      local _ <close> = b
      local ok, e = pcall(table.sort, { 1, 2, 3 }, function(x, y) b:recv(1) return x < y end)
      record(ok, curio.CurioError:matches(e), tostring(e.message):match("cannot block here") ~= nil)
      a:sendall("!")
      record(b:recv(1))
    end)
    assert.are.same({ "false true true", "!" }, trace)
  end)

  it("open_connection resolves names in a thread and tries every address", function()
    local trace = util.traced(function(record)
      local listener = curio.tcp_server_socket("127.0.0.1", 0)
      local port = listener:getsockname().port
      local server = curio.spawn(curio.run_server, listener, function(c) c:sendall("hi") end)
      local c <close> = curio.open_connection("localhost", port)
      record(c:recv(10), c:getpeername().host)
      local err = util.catch(curio.open_connection, "no-such-host.invalid", port)
      record(curio.OSError:matches(err), err.message:match("cannot resolve") ~= nil)
      server:cancel()
    end)
    assert.are.same({ "hi 127.0.0.1", "true true" }, trace)
  end)

  it("closing the kernel while tasks wait in accept, recv and sendall ends them; nothing leaks", function()
    local before = util.fd_count()
    local k = curio.Kernel()
    local waiting, peers = {}, nil
    k:run(function()
      local listener = curio.tcp_server_socket("127.0.0.1", 0)
      local a, b = pair()
      local c, d = pair()
      waiting[1] = curio.spawn(function() local l <close> = listener; l:accept() end)
      waiting[2] = curio.spawn(function() local s <close> = b; s:recv(10) end)
      waiting[3] = curio.spawn(function() local s <close> = c; s:sendall(("w"):rep(64 << 20)) end)
      peers = { a, d }
      curio.sleep(0.05)
    end)
    local states = {}
    for i, t in ipairs(waiting) do states[i] = tostring(t.terminated) end
    k:close()
    for _, t in ipairs(waiting) do states[#states + 1] = tostring(t.cancelled) end
    for _, p in ipairs(peers) do p:close() end
    collectgarbage()
    assert.are.same({ "false", "false", "false", "true", "true", "true" }, states)
    assert.are.equal(before, util.fd_count())
  end)

  it("a socket serves tasks of a second kernel after the first one closed", function()
    local a, b
    local k1 = curio.Kernel()
    k1:run(function()
      a, b = pair()
      curio.spawn(function() b:recv(10) end)
      curio.sleep(0.01)
    end)
    k1:close()
    local got = curio.run(function()
      a:sendall("again")
      return b:recv(10)
    end)
    a:close()
    b:close()
    assert.are.equal("again", got)
  end)
end)

describe("socket errors", function()
  -- the message, class name, code and errno of err, one string each
  local function described(err)
    return { tostring(err), err.__name, err.code, math.type(err.errno), err.strerror }
  end

  it("name the address in bind, connect and accept's OSErrors", function()
    local r = curio.run(function()
      local taken <close> = curio.socket("inet", "stream")
      taken:bind({ "127.0.0.1", 0 })
      local port = taken:getsockname().port
      local second <close> = curio.socket("inet", "stream")
      local bind_err = util.catch(second.bind, second, { "127.0.0.1", port })
      -- bound, not listening: a connection to it is refused, accept refused
      local client <close> = curio.socket("inet", "stream")
      local connect_err = util.catch(client.connect, client, { "127.0.0.1", port })
      local accept_err = util.catch(taken.accept, taken)
      local opened_err = util.catch(curio.open_connection, "127.0.0.1", port)
      return { port = port, bind = described(bind_err), connect = described(connect_err),
               accept = described(accept_err), opened = described(opened_err) }
    end)
    local where = "127.0.0.1:" .. r.port
    assert.are.same({ "OSError: bind " .. where .. ": Address already in use", "OSError", "EADDRINUSE",
                      "integer", "Address already in use" }, r.bind)
    assert.are.same({ "ConnectionRefusedError: connect " .. where .. ": Connection refused",
                      "ConnectionRefusedError", "ECONNREFUSED", "integer", "Connection refused" }, r.connect)
    assert.are.same(r.connect, r.opened)
    assert.are.same({ "OSError: accept " .. where .. ": Invalid argument", "OSError", "EINVAL", "integer",
                      "Invalid argument" }, r.accept)
  end)

  it("name the path of a unix socket, and an IPv6 address in brackets", function()
    local dir = os.tmpname()
    os.remove(dir)
    local path = dir .. ".sock"
    local ipv6 = has_ipv6()
    local r = curio.run(function()
      local missing = util.catch(curio.open_unix_connection, path)
      local server <close> = curio.socket("unix", "stream")
      server:bind(path)
      local again <close> = curio.socket("unix", "stream")
      local bind_err = util.catch(again.bind, again, path)
      local accept_err = util.catch(server.accept, server)
      local v6
      if ipv6 then
        local s <close> = curio.socket("inet6", "stream")
        s:bind({ "::1", 0 })
        local c <close> = curio.socket("inet6", "stream")
        v6 = { s:getsockname().port, tostring(util.catch(c.connect, c, { "::1", s:getsockname().port })) }
      end
      return { missing = tostring(missing), bind = tostring(bind_err), accept = tostring(accept_err), v6 = v6 }
    end)
    os.remove(path)
    assert.are.same({ missing = "OSError: connect " .. path .. ": No such file or directory",
                      bind = "OSError: bind " .. path .. ": Address already in use",
                      accept = "OSError: accept " .. path .. ": Invalid argument",
                      v6 = r.v6 and { r.v6[1], ("ConnectionRefusedError: connect [::1]:%d: Connection refused")
                                                :format(r.v6[1]) } },
                    r)
  end)
end)
