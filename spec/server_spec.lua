local curio = require "curio"
local util = require "support.util"
local net = require "support.net"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Servers under load (docs/sockets.md; lua/curio/network.lua,
-- core/socket.c): the How-To echo servers under 100 concurrent clients,
-- 10,000 connections without a leaked descriptor, a server short of
-- descriptors (ulimit -n 64), and a unix socket server. Handler sockets and
-- cancellation: server_cancel_spec.lua; peers and open_connection:
-- server_peer_spec.lua. Servers listen on 127.0.0.1 only, on a port the
-- system picks; children are curio subprocesses that say their port once
-- they listen (util.start_server), and are stopped by PID.

local HOST, listener, recv_upto, wait_until, stop = net.HOST, net.listener, net.recv_upto, net.wait_until, net.stop
local fails = util.catch

local CLK_TCK = (function()
  local p = io.popen("getconf CLK_TCK")
  local n = p and tonumber(p:read("l"))
  if p then p:close() end
  return n or 100
end)()

---------------------------------------------------------------- children

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local data = f:read("a")
  f:close()
  return data
end

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

local function child_alive(child)
  if child.proc:poll() ~= nil then return false end
  local state = proc_stat(child.pid)
  return state ~= nil and state ~= "Z" and state ~= "X"
end

-- Runs body(child) with a server child started and listening (util.start_server),
-- in curio.run; the child is stopped afterwards whatever happens. Returns
-- body's result and the child's end {how, code, stderr}.
local function with_child(script, fd_limit, body)
  return curio.run(function()
    local child = util.start_server(script, fd_limit)
    local ok, result = pcall(body, child)
    local how, code, stderr = util.stop_server(child)
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

    it("run in-process with curio.run_server serve 100 concurrent clients each", function()
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
          local ls, port = listener() -- listening already: clients queue until accept
          local server = curio.spawn(curio.run_server, ls, handler)
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
    local failures = {}
    curio.run(function()
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
    end)
    assert.are.same({}, failures)
    assert.are.equal(10000, handled)
    assert.are.equal(5000, echoed)
    assert.are.equal(before, after)
    -- sockets are closed as connections end, not left to the collector
    assert.is_true(peak_fds < before + 400, "peak descriptors " .. peak_fds .. " from " .. before)
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
end)
