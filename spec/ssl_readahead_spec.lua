local curio = require "curio"
local util = require "support.util"
local tlsnet = require "support.tlsnet"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- The TLS socket's read-ahead (core/tls.c rule 8, core/socket.c rule 6):
-- one recv returns every record already received; the plain bytes that
-- follow close_notify in the same segment belong to the unwrapped socket;
-- an error met after some data comes with the next call.
--
-- The connections are unix sockets: a write is in the peer's receive
-- buffer when it returns, so "in the same segment" is exact (both tasks
-- run in one kernel: the reader runs only once the writer has waited).

local ssl = curio.ssl
local certs

-- util.traced(fn) with fn under a timeout: a lost byte fails instead of
-- hanging.
local function traced(fn)
  return util.traced(function(record) curio.timeout_after(30, fn, record) end)
end

-- In a task: a connected pair of plain unix sockets (client, server).
local function unix_pair()
  local path = os.tmpname()
  os.remove(path)
  local listener = curio.socket("unix")
  listener:bind(path)
  listener:listen(1)
  local accepted = curio.spawn(listener.accept, listener)
  local client = curio.open_unix_connection(path)
  local server = accepted:join()
  listener:close()
  os.remove(path)
  return client, server
end

-- In a task: TLS client and server sockets over plain (client, server).
local function wrap_pair(server_ctx, client_ctx, plain_client, plain_server)
  local accepted = curio.spawn(server_ctx.wrap_socket, server_ctx, plain_server, { server_side = true })
  local client = client_ctx:wrap_socket(plain_client, { server_hostname = "localhost" })
  return client, accepted:join()
end

-- The bytes of the TLS records at the start of data: how many whole
-- records there are and how long they are together.
local function whole_records(data)
  local at, count = 1, 0
  while #data - at + 1 >= 5 do
    local len = data:byte(at + 3) * 256 + data:byte(at + 4)
    if #data - at + 1 < 5 + len then break end
    at, count = at + 5 + len, count + 1
  end
  return count, at - 1
end

describe("the TLS read-ahead", function()
  setup(function() certs = require("support.certs").make() end)
  teardown(function() certs.remove() end)

  it("returns every record received, in order, in one recv", function()
    local trace = traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = wrap_pair(server_ctx, client_ctx, unix_pair())
      local _ <close> = tlsnet.closing(client, server)
      local sent = {}
      for i = 1, 100 do -- a record each, all in the server's buffer before it reads
        sent[i] = ("record %d;"):format(i)
        client:sendall(sent[i])
      end
      local all = table.concat(sent)
      local first = server:recv(1 << 20)
      record("one recv", first == all, #first)
      -- a small maxbytes: the rest of a record, then the next ones
      for i = 1, 3 do client:sendall(sent[i]) end
      record("pieces", server:recv(4), server:recv(10), server:recv(100))
      -- through a stream: the lines of many records, whole and in order
      local lines = {}
      for i = 1, 200 do lines[i] = ("line %d\n"):format(i) end
      for i = 1, 200, 2 do -- (records that end inside a line)
        client:sendall(lines[i] .. lines[i + 1]:sub(1, 3))
        client:sendall(lines[i + 1]:sub(4))
      end
      client:shutdown("w")
      local got = {}
      for line in server:as_stream():lines() do got[#got + 1] = line end
      record("lines", table.concat(got) == table.concat(lines), #got)
    end)
    local total = 0
    for i = 1, 100 do total = total + #("record %d;"):format(i) end
    assert.are.same({ "one recv true " .. total,
                      "pieces reco rd 1;recor d 2;record 3;", "lines true 200" }, trace)
  end)

  it("gives the plain bytes after close_notify, in the same segment, to the unwrapped socket", function()
    local trace = traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = wrap_pair(server_ctx, client_ctx, unix_pair())
      client:sendall("over TLS")
      record("server got", server:recv(100))
      -- the server waits in unwrap; the client's close_notify and its
      -- first plain bytes then arrive together
      local unwrapping = curio.spawn(server.unwrap, server)
      curio.sleep(0)
      local plain_client = client:unwrap()
      plain_client:sendall("plain 1\nplain 2\n")
      local plain_server = unwrapping:join()
      record("server got in plain", plain_server:recv(3)) -- (a part: the rest stays first)
      local stream = plain_server:as_stream()
      record("then", stream:readline(), stream:readline())
      -- recv returns what was given back before reading the descriptor
      plain_client:sendall("more\n")
      record("and more", plain_server:recv(100))
      plain_client:close()
      record("end", plain_server:recv(100))
      plain_server:close()
    end)
    assert.are.same({ "server got over TLS", "server got in plain pla", "then in 1\n plain 2\n",
                      "and more more\n", "end " }, trace)
  end)

  it("gives them to a Channel connection over the unwrapped socket (core.read_frame)", function()
    local trace = traced(function(record)
      local channel = require "curio.channel"
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = wrap_pair(server_ctx, client_ctx, unix_pair())
      local unwrapping = curio.spawn(server.unwrap, server)
      curio.sleep(0)
      local plain_client = client:unwrap()
      local sender = channel.Connection(plain_client:as_stream())
      sender:send_bytes("framed after close_notify")
      sender:send("and a value")
      local plain_server = unwrapping:join()
      local receiver = channel.Connection(plain_server:as_stream())
      record(receiver:recv_bytes(), receiver:recv())
      sender:close()
      receiver:close()
    end)
    assert.are.same({ "framed after close_notify and a value" }, trace)
  end)

  it("hands a handshake that came with close_notify to the next wrap_socket", function()
    local trace = traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = wrap_pair(server_ctx, client_ctx, unix_pair())
      local unwrapping = curio.spawn(server.unwrap, server)
      curio.sleep(0)
      -- the client unwraps and at once begins a new handshake: the server
      -- receives close_notify and the new ClientHello in one read
      local again = curio.spawn(function()
        local tls = client_ctx:wrap_socket(client:unwrap(), { server_hostname = "localhost" })
        tls:sendall("second session")
        return tls
      end)
      local plain_server = unwrapping:join()
      local server2 = server_ctx:wrap_socket(plain_server, { server_side = true })
      local client2 = again:join()
      local _ <close> = tlsnet.closing(client2, server2)
      record("second session", server2:recv(100), server2:version())
    end)
    assert.are.same({ "second session second session TLSv1.3" }, trace)
  end)

  it("returns the records before a corrupt one; the next call raises its error and closes", function()
    local trace = traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      -- client <-> relay (unix) <-> server (unix): the relay passes the
      -- handshake on, then holds two records and spoils the second's tag
      local client_end, relay_near = unix_pair()
      local relay_far, server_end = unix_pair()
      local relay = { spoil = false }
      local function pump(from, to, spoils)
        local held = ""
        while true do
          local ok, data = pcall(from.recv, from, 65536)
          if not ok or data == "" then break end
          if spoils and relay.spoil then
            held = held .. data
            if whole_records(held) >= 2 then
              local _, len = whole_records(held)
              data = held:sub(1, len - 1) .. string.char(held:byte(len) ~ 1) .. held:sub(len + 1)
              relay.spoil, held = false, ""
            else
              data = nil
            end
          end
          if data and not pcall(to.sendall, to, data) then break end
        end
        pcall(to.shutdown, to, "w")
      end
      local pumps = { curio.spawn(pump, relay_near, relay_far, true), curio.spawn(pump, relay_far, relay_near) }
      local client, server = wrap_pair(server_ctx, client_ctx, client_end, server_end)
      relay.spoil = true
      client:sendall("good record")
      client:sendall("spoilt record")
      record("first", server:recv(100))
      local err = util.catch(server.recv, server, 100)
      record("then", ssl.SSLError:matches(err), err.message:match("%(socket closed%)$") ~= nil, server:closed())
      client:close()
      for _, pump_task in ipairs(pumps) do pump_task:join() end
      relay_near:close()
      relay_far:close()
    end)
    assert.are.same({ "first good record", "then true true true" }, trace)
  end)
end)
