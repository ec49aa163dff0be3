-- curio-lua's TLS echo server for bench/tls.sh: examples/echo_server.lua
-- (client:recv(100000) and client:sendall(data) until the end of stream)
-- on curio.tcp_server's ssl option, with a server context made by
-- curio.ssl.create_default_context("server") and the certificate made for
-- the run. No line printed per connection (the handshake benchmark makes
-- thousands).
--   lua5.4 bench/tls/echo_server.lua HOST PORT CERTFILE KEYFILE
local curio = require "curio"

local host, port, certfile, keyfile = arg[1], tonumber(arg[2]), arg[3], arg[4]

local ctx = curio.ssl.create_default_context("server")
ctx:load_cert_chain(certfile, keyfile)

local function echo_client(client)
  while true do
    local data = client:recv(100000)
    if data == "" then break end
    client:sendall(data)
  end
end

curio.run(curio.tcp_server, host, port, echo_client, { ssl = ctx })
