-- Runs an example server on a port the system picks, and says which one
-- once it listens, so that a spec waits for that line instead of picking a
-- free port (bind, close, let the child rebind it: another process may take
-- it meanwhile) and polling until the child has bound it:
--
--   lua5.4 spec/support/serve.lua examples/echo_server.lua 127.0.0.1
--
-- The example is run with arguments {host, 0}; the first listening socket
-- it makes (network.tcp_server_socket, which curio.tcp_server calls) has
-- its port written as the first line of stdout, flushed, after listen(): a
-- client that connects after reading it is queued by the kernel even if
-- the server has not reached accept yet. Its stdout is line-buffered, so
-- that the spec reads each line the server prints as it prints it.
local network = require "curio.network"

local script, host = assert(arg[1], "script expected"), arg[2] or "127.0.0.1"
local listen, told = network.tcp_server_socket, false
network.tcp_server_socket = function(...)
  local sock = listen(...)
  if not told then
    told = true
    io.stdout:write(sock:getsockname().port, "\n")
    io.stdout:flush()
  end
  return sock
end
io.stdout:setvbuf("line")
arg[0], arg[1], arg[2] = script, host, "0" -- luacheck: ignore 122 (the example reads arg)
dofile(script)
