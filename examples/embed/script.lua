-- The Lua half of examples/embed/host.c: an echo server, a task that
-- sleeps, and the work the host spawns at each tick. The host calls this
-- chunk with its table of C functions and spawns what it returns.
local curio = require "curio"
local host = ...

local function echo(client)
  while true do
    local data = client:recv(4096)
    if data == "" then break end
    client:sendall(data)
  end
  client:close()
end

return {
  -- listens on a port the system picks, tells the host which, serves
  serve = function()
    local sock = curio.tcp_server_socket("127.0.0.1", 0)
    host.listening(sock:getsockname().port)
    curio.run_server(sock, echo)
  end,
  -- naps until cancelled, telling the host at each wake
  sleeper = function()
    while true do
      curio.sleep(0.003)
      host.nap()
    end
  end,
  -- one tick's work: a result, or an error every third tick
  work = function(i)
    curio.sleep(0.001)
    if i % 3 == 0 then error("tick " .. i .. " is a multiple of 3", 0) end
    return i * i, "squared"
  end,
}
