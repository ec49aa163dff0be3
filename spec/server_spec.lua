local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Servers and connections (API.md section 10, lua/curio/network.lua,
-- core/socket.c): the How-To echo servers under 100 concurrent clients,
-- 10,000 connections without a leaked descriptor, a server short of
-- descriptors (ulimit -n 64), handler sockets closed however the handler
-- ends, peers that close or reset, unix sockets, open_connection's
-- failures and arguments, and timeouts and cancellation of accept and recv.
-- Servers listen on 127.0.0.1 only; children are started by a shell that a
-- worker thread waits for (so they are reaped), and are killed by PID.

local HOST = "127.0.0.1"

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local data = f:read("a")
  f:close()
  return data
end

local CLK_TCK = (function()
  local p = io.popen("getconf CLK_TCK")
  local n = p and tonumber(p:read("l"))
  if p then p:close() end
  return n or 100
end)()

-- A port nobody listens on (bound, then released).
local function free_port()
  local s = curio.socket("inet", "stream")
  s:bind({ HOST, 0 })
  local port = s:getsockname().port
  s:close()
  return port
end

-- A listening socket on 127.0.0.1 and its port.
local function listener(opts)
  local sock = curio.tcp_server_socket(HOST, 0, opts)
  return sock, sock:getsockname().port
end

-- Calls fn(...), which must fail; returns its error.
local function fails(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return err
end

-- Reads from sock until n bytes or end of stream (within 5 seconds).
local function recv_upto(sock, n)
  local parts, got = {}, 0
  curio.timeout_after(5, function()
    while got < n do
      local data = sock:recv(n - got)
      if data == "" then break end
      parts[#parts + 1] = data
      got = got + #data
    end
  end)
  return table.concat(parts)
end

-- Waits (bounded) until pred() is true; returns whether it became true.
local function wait_until(pred, seconds)
  local deadline = curio.clock() + (seconds or 5)
  while not pred() do
    if curio.clock() > deadline then return false end
    curio.sleep(0.005)
  end
  return true
end

-- Cancels a server task, bounded (a server that does not end fails).
local function stop(server)
  curio.timeout_after(5, server.cancel, server)
  assert(server.terminated, "server task did not end")
end

---------------------------------------------------------------- children

-- /proc/<pid>/stat: state letter and CPU seconds (utime + stime).
local function proc_stat(pid)
  local text = read_file("/proc/" .. pid .. "/stat")
  local rest = text:match("%) (.*)$")
  if not rest then return nil, 0 end
  local fields = {}
  for field in rest:gmatch("%S+") do fields[#fields + 1] = field end
  -- fields[1] is the state (field 3); utime and stime are fields 14, 15.
  return fields[1], (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK
end

-- Starts `lua5.4 <script> 127.0.0.1 <port>` (with `ulimit -n fd_limit`
-- when given) from a shell that a worker thread waits for. Must run in a
-- task; returns a child table {pid, port, waiter, out, err, ...}.
local function start_child(script, fd_limit)
  local child = { pidfile = os.tmpname(), out = os.tmpname(), err = os.tmpname(), port = free_port() }
  local command = ("echo $$ >%s; %sexec env %s %s %s %s %d >%s 2>%s"):format(
    child.pidfile, fd_limit and ("ulimit -n %d; "):format(fd_limit) or "",
    util.env, util.lua, script, HOST, child.port, child.out, child.err)
  child.waiter = curio.spawn(curio.run_in_thread, os.execute, command)
  return child
end

local function child_alive(child)
  if child.pid == nil or child.waiter.terminated then return false end
  local state = proc_stat(child.pid)
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Waits until the child has written its pid and accepts connections.
local function wait_ready(child)
  assert(wait_until(function()
    child.pid = tonumber(read_file(child.pidfile):match("%d+"))
    return child.pid ~= nil or child.waiter.terminated
  end, 5), "child wrote no pid")
  for _ = 1, 200 do
    assert(child_alive(child), "server child died: " .. read_file(child.err))
    local ok, sock = pcall(curio.open_connection, HOST, child.port)
    if ok then
      sock:close()
      return
    end
    assert(curio.ConnectionRefusedError:matches(sock), tostring(sock))
    curio.sleep(0.025)
  end
  error("server child never listened: " .. read_file(child.err))
end

-- Kills the child by its PID (if it ever got one), waits for the shell's
-- wait to return, removes the files; returns how, code, stderr.
local function stop_child(child)
  if child.pid and not child.waiter.terminated then
    os.execute(("kill -TERM %d 2>/dev/null"):format(child.pid))
  end
  local ok, _, how, code = pcall(curio.timeout_after, 10, function() return child.waiter:join() end)
  local stderr = read_file(child.err)
  os.remove(child.pidfile)
  os.remove(child.out)
  os.remove(child.err)
  assert(ok, "server child did not end after SIGTERM")
  return how, code, stderr
end

-- Runs body(child) with a server child started and ready, in curio.run;
-- the child is killed afterwards whatever happens. Returns body's result
-- and the child's end {how, code, stderr}.
local function with_child(script, fd_limit, body)
  return curio.run(function()
    local child = start_child(script, fd_limit)
    local ok, result = pcall(function()
      wait_ready(child)
      return body(child)
    end)
    local how, code, stderr = stop_child(child)
    if not ok then error(result, 0) end
    return result, { how = how, code = code, stderr = stderr }
  end)
end

---------------------------------------------------------------- echo clients

-- Client i's data: four chunks of ~1 KB carrying its number and every
-- byte value.
local function client_chunks(i)
  local chunks = {}
  for k = 1, 4 do
    local bytes = {}
    for b = 0, 1023 do bytes[#bytes + 1] = string.char((i * 7 + k * 31 + b) % 256) end
    chunks[k] = ("<client %03d chunk %d>"):format(i, k) .. table.concat(bytes)
  end
  return chunks
end

-- n clients connect, wait until all n are connected, then each sends its
-- chunks in several sendall calls, reads the echo, shuts down its writing
-- side and reads the end of stream. Returns per-client results.
local function echo_clients(port, n)
  local results, connected, all_in = {}, 0, curio.Event()
  local peak = 0
  curio.timeout_after(10, curio.TaskGroup, nil, function(g)
    for i = 1, n do
      g:spawn(function()
        local sock <close> = curio.open_connection(HOST, port)
        connected = connected + 1
        peak = math.max(peak, connected)
        if connected == n then all_in:set() end
        all_in:wait()
        local chunks = client_chunks(i)
        for _, chunk in ipairs(chunks) do
          sock:sendall(chunk)
          curio.sleep(0)
        end
        local expected = table.concat(chunks)
        local echo = recv_upto(sock, #expected)
        sock:shutdown("w")
        local tail = sock:recv(100)
        results[i] = { echo == expected, #echo, tail }
      end)
    end
  end)
  return results, peak
end

local function check_echo_results(results, n)
  local good = 0
  for i = 1, n do
    local r = results[i]
    assert.is_table(r, "client " .. i .. " has no result")
    assert.is_true(r[1], ("client %d: echo differs (%d bytes)"):format(i, r[2]))
    assert.are.equal("", r[3], "client " .. i .. ": no end of stream after shutdown")
    good = good + 1
  end
  assert.are.equal(n, good)
end

describe("server", function()

  describe("How-To echo servers", function()
    for _, script in ipairs({ "examples/echo_server.lua", "examples/echo_stream_server.lua" }) do
      it(script .. " echoes 100 concurrent clients byte for byte (child process)", function()
        local results, ended = with_child(script, nil, function(child)
          local results, peak = echo_clients(child.port, 100)
          assert.are.equal(100, peak)
          assert.is_true(child_alive(child))
          return results
        end)
        check_echo_results(results, 100)
        assert.are.same({ how = "signal", code = 15, stderr = "" }, ended)
      end)
    end

    it("run in-process with curio.tcp_server serve 100 concurrent clients each", function()
      local function echo_socket(client)
        while true do
          local data = client:recv(100000)
          if data == "" then break end
          client:sendall(data)
        end
      end
      local function echo_stream(client)
        local s = client:as_stream()
        while true do
          local data = s:read(100000)
          if data == "" then break end
          s:write(data)
        end
      end
      curio.run(function()
        for _, handler in ipairs({ echo_socket, echo_stream }) do
          local port = free_port()
          local server = curio.spawn(curio.tcp_server, HOST, port, handler)
          assert.is_true(wait_until(function()
            local ok, sock = pcall(curio.open_connection, HOST, port)
            if ok then sock:close() end
            return ok
          end, 5))
          local results, peak = echo_clients(port, 100)
          assert.are.equal(100, peak)
          check_echo_results(results, 100)
          stop(server)
          assert.is_true(server.terminated)
        end
      end)
    end)
  end)

  it("opens and closes 10,000 connections without leaking a descriptor", function()
    local before, peak_fds, after, handled, echoed = nil, 0, nil, 0, 0
    local failures, elapsed = {}, nil
    curio.run(function()
      local started = curio.clock()
      collectgarbage()
      collectgarbage()
      before = util.fd_count()
      local ls, port = listener()
      local server = curio.spawn(curio.run_server, ls, function(client)
        handled = handled + 1
        local data = client:recv(10)
        if data ~= "" then client:sendall(data) end
      end)
      curio.timeout_after(20, function()
        for batch = 0, 99 do
          curio.TaskGroup(nil, function(g)
            for i = 1, 100 do
              g:spawn(function()
                local ok, err = pcall(function()
                  local sock <close> = curio.open_connection(HOST, port)
                  if i % 2 == 0 then
                    local byte = string.char((batch + i) % 256)
                    sock:sendall(byte)
                    if sock:recv(10) == byte then echoed = echoed + 1 end
                  end
                end)
                if not ok then failures[#failures + 1] = tostring(err) end
              end)
            end
          end)
          peak_fds = math.max(peak_fds, util.fd_count())
        end
      end)
      assert.is_true(wait_until(function() return handled == 10000 end, 5))
      stop(server)
      assert.is_true(ls:closed())
      collectgarbage()
      collectgarbage()
      after = util.fd_count()
      elapsed = curio.clock() - started
    end)
    assert.are.same({}, failures)
    assert.are.equal(10000, handled)
    assert.are.equal(5000, echoed)
    assert.are.equal(before, after)
    -- sockets are closed as connections end, not left to the collector
    assert.is_true(peak_fds < before + 400, "peak descriptors " .. peak_fds .. " from " .. before)
    assert.is_true(elapsed < 12, elapsed)
  end)

  it("survives 200 clients at once under ulimit -n 64, without spinning", function()
    local o, ended = with_child("examples/echo_server.lua", 64, function(child)
      local outcomes = { served = 0, timeout = 0, refused = 0, reset = 0, closed = 0, bad = {} }
      local _, cpu0 = proc_stat(child.pid)
      local t0 = curio.clock()
      curio.timeout_after(15, curio.TaskGroup, nil, function(g)
        for i = 1, 200 do
          g:spawn(function()
            local message = ("burst client %03d|"):format(i):rep(20)
            local ok, err = pcall(curio.timeout_after, 3, function()
              local sock <close> = curio.open_connection(HOST, child.port)
              sock:sendall(message)
              local echo = recv_upto(sock, #message)
              if echo == "" then return "closed" end
              if echo ~= message then return "bad" end
              curio.sleep(0.3) -- hold the connection: the server runs short of descriptors
              return "served"
            end)
            if ok then
              if err == "bad" then outcomes.bad[#outcomes.bad + 1] = i else outcomes[err] = outcomes[err] + 1 end
            elseif curio.TaskTimeout:matches(err) then outcomes.timeout = outcomes.timeout + 1
            elseif curio.ConnectionRefusedError:matches(err) then outcomes.refused = outcomes.refused + 1
            elseif curio.ConnectionResetError:matches(err) then outcomes.reset = outcomes.reset + 1
            else outcomes.bad[#outcomes.bad + 1] = tostring(err) end
          end)
        end
      end)
      local wall = curio.clock() - t0
      local _, cpu1 = proc_stat(child.pid)
      outcomes.alive = child_alive(child)
      outcomes.cpu, outcomes.wall = cpu1 - cpu0, wall
      -- a fresh client after the burst
      local sock <close> = curio.open_connection(HOST, child.port)
      sock:sendall("after the burst")
      outcomes.fresh = curio.timeout_after(5, recv_upto, sock, #"after the burst")
      outcomes.alive_after = child_alive(child)
      return outcomes
    end)
    assert.are.same({}, o.bad)
    assert.are.equal(0, o.closed, "clients whose connection was closed without an echo")
    assert.is_true(o.served > 30, "served " .. o.served)
    assert.are.equal(200, o.served + o.timeout + o.refused + o.reset)
    assert.is_true(o.alive)
    assert.is_true(o.alive_after)
    assert.are.equal("after the burst", o.fresh)
    assert.is_true(o.cpu < o.wall / 2, ("server used %.2f s of CPU in %.2f s"):format(o.cpu, o.wall))
    assert.are.equal("signal", ended.how)
    assert.are.equal(15, ended.code)
    -- rule 3: accept's EMFILE is reported once, and the server went on
    local _, reports = ended.stderr:gsub("curio: run_server: accept failed %(EMFILE%), retrying\n", "")
    assert.are.equal(1, reports, ended.stderr)
  end)

  describe("handler sockets", function()
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
        curio.sleep(0.01)
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
        curio.sleep(0.5) -- let a handler that escaped finish before the kernel closes
        sock:close()
        assert.are.same({ "handler started", "handler cancelled", "cancel returned" },
                        { trace[1], trace[2], trace[3] })
        assert.is_true(handler_closed, "handler socket closed when cancel returned")
        assert.are.same({ "", nil }, { data, why })
      end)
    end)
  end)

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

  it("serves on a unix socket: unix_server and open_unix_connection round trip", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert.is_true(os.execute("mkdir -m 700 '" .. dir .. "'"))
    local path = dir .. "/server.sock"
    local ok, err = pcall(curio.run, function()
      local addrs = {}
      local server = curio.spawn(curio.unix_server, path, function(client, addr)
        addrs[#addrs + 1] = addr
        while true do
          local data = client:recv(65536)
          if data == "" then break end
          client:sendall(data:upper())
        end
      end)
      assert.is_true(wait_until(function()
        local ok, sock = pcall(curio.open_unix_connection, path)
        if ok then sock:close() end
        return ok or server.terminated
      end, 5))
      assert.is_false(server.terminated)
      for i = 1, 3 do
        local sock = curio.open_unix_connection(path)
        assert.are.equal("unix", sock:family())
        local message = ("unix round trip %d "):format(i):rep(500)
        sock:sendall(message)
        assert.are.equal(message:upper(), recv_upto(sock, #message))
        sock:close()
      end
      stop(server)
      assert.are.equal(4, #addrs)
      for _, addr in ipairs(addrs) do assert.are.equal("string", type(addr)) end
      local refused = fails(curio.open_unix_connection, dir .. "/nobody.sock")
      assert.is_true(curio.OSError:matches(refused))
      assert.are.equal("ENOENT", refused.code)
    end)
    os.remove(path)
    local removed = os.remove(dir)
    assert.is_true(ok, tostring(err))
    assert.is_true(removed)
  end)

  describe("open_connection", function()
    it("to a closed port raises ConnectionRefusedError", function()
      curio.run(function()
        local err = fails(curio.open_connection, HOST, free_port())
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
          assert.is_truthy(err:find("server_spec.lua", 1, true), "points at the caller: " .. err)
        end
      end)
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
