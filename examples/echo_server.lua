-- The How-To's TCP echo server, on sockets:
--   lua5.4 examples/echo_server.lua [host [port]]   (default: all interfaces, 25000)
local curio = require "curio"

local function echo_client(client, addr)
  print("Connection from", addr)
  while true do
    local data = client:recv(100000)
    if data == "" then break end
    client:sendall(data)
  end
  print("Connection closed")
end

local host, port = arg[1] or "", tonumber(arg[2] or 25000)
curio.run(function()
  local sock = curio.tcp_server_socket(host, port)
  print("echo server listening on " .. tostring(sock:getsockname())) -- the port it got, if 0
  io.stdout:flush()
  curio.run_server(sock, echo_client)
end)
