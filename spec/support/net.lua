-- Helpers of the server specs (server_spec, server_cancel_spec,
-- server_peer_spec): listening sockets on 127.0.0.1, bounded reads and
-- waits, and stopping a server task.
local curio = require "curio"

local net = {}

net.HOST = "127.0.0.1"

-- A listening socket on 127.0.0.1 and its port.
function net.listener(opts)
  local sock = curio.tcp_server_socket(net.HOST, 0, opts)
  return sock, sock:getsockname().port
end

-- Reads from sock until n bytes or end of stream (within 5 seconds).
function net.recv_upto(sock, n)
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

-- Waits (bounded) until pred() is true, looking again after each short
-- pause (for conditions of this process that no event announces); returns
-- whether it became true.
function net.wait_until(pred, seconds)
  local deadline = curio.clock() + (seconds or 5)
  while not pred() do
    if curio.clock() > deadline then return false end
    curio.sleep(0.005)
  end
  return true
end

-- Cancels a server task, bounded (a server that does not end fails).
function net.stop(server)
  curio.timeout_after(5, server.cancel, server)
  assert(server.terminated, "server task did not end")
end

return net
