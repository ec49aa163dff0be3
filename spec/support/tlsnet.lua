-- Helpers of the TLS specs: contexts over the certificates of
-- support/certs.lua, a connected pair of TLS sockets on the loopback, and
-- a plain relay between a client and a server that a spec can cut.
local curio = require "curio"

local tlsnet = {}

-- A server context with certificate `name` (certs[name .. "_cert"]) and a
-- client context trusting the test CA.
function tlsnet.contexts(certs, name)
  local server = curio.ssl.create_default_context("server")
  server:load_cert_chain(certs[(name or "server") .. "_cert"], certs[(name or "server") .. "_key"])
  local client = curio.ssl.create_default_context("client")
  client:load_verify_locations(certs.ca)
  return server, client
end

-- A TCP listener on 127.0.0.1 and its port.
local function listener()
  local sock = curio.tcp_server_socket("127.0.0.1", 0)
  return sock, sock:getsockname().port
end
tlsnet.listener = listener

-- In a task: a client TLS socket and the server's, handshakes done.
-- client_opts default to {server_hostname = "localhost"}. When the client's
-- handshake fails its error is raised; the server's outcome (a socket or
-- nil and its error) is in tlsnet.last_server.
function tlsnet.pair(server_ctx, client_ctx, client_opts, server_opts)
  local sock, port = listener()
  local accepted = curio.spawn(function()
    local client = sock:accept()
    sock:close()
    local ok, tls = pcall(server_ctx.wrap_socket, server_ctx, client, server_opts or { server_side = true })
    if ok then return tls end
    return nil, tls
  end)
  local plain = curio.open_connection("127.0.0.1", port)
  local ok, client = pcall(client_ctx.wrap_socket, client_ctx, plain,
                           client_opts or { server_hostname = "localhost" })
  local server, server_err = accepted:join()
  tlsnet.last_server = { server, server_err }
  if not ok then
    if server then server:close() end
    error(client, 0)
  end
  return client, server
end

-- A plain relay to 127.0.0.1:port: returns the port to connect to and a
-- relay object whose cut() closes both of its sockets at once (an abrupt
-- close, without close_notify, in the middle of whatever is in flight).
function tlsnet.relay(port)
  local sock, relay_port = listener()
  local relay = { sockets = {} }
  relay.task = curio.spawn(function()
    local near = sock:accept()
    sock:close()
    local far = curio.open_connection("127.0.0.1", port)
    relay.sockets = { near, far }
    local function pump(from, to)
      while true do
        local ok, data = pcall(from.recv, from, 65536)
        if not ok or data == "" then break end
        if not pcall(to.sendall, to, data) then break end
      end
      pcall(to.shutdown, to, "w")
    end
    local a = curio.spawn(pump, near, far)
    local b = curio.spawn(pump, far, near)
    a:join()
    b:join()
    near:close()
    far:close()
  end)
  function relay.cut()
    for _, s in ipairs(relay.sockets) do s:close() end
  end
  return relay_port, relay
end

-- A value for a <close> variable that closes every socket given.
function tlsnet.closing(...)
  local sockets = table.pack(...)
  return setmetatable({}, { __close = function()
    for i = 1, sockets.n do
      if sockets[i] then sockets[i]:close() end
    end
  end })
end

-- A string of n pseudo-random bytes from seed (the same for the same seed).
function tlsnet.bytes(n, seed)
  local parts, state = {}, seed or 1
  local chunk = {}
  for i = 1, n do
    state = (state * 1103515245 + 12345) % 2147483648
    chunk[#chunk + 1] = state % 256
    if #chunk == 4096 or i == n then
      parts[#parts + 1] = string.char(table.unpack(chunk))
      chunk = {}
    end
  end
  return table.concat(parts)
end

return tlsnet
