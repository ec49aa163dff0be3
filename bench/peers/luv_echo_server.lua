-- Echo server on luv (libuv): uv.new_tcp, listen, and per connection
-- read_start with a callback that writes each chunk back (uv.write queues
-- it; libuv sends what it can at once). TCP_NODELAY set on every accepted
-- connection (libuv leaves Nagle on), as in the other servers.
--   lua5.4 bench/peers/luv_echo_server.lua HOST PORT
local uv = require "luv"
local host, port = arg[1] or "127.0.0.1", tonumber(arg[2] or 25000)

-- A write to a connection the peer has reset must not kill the process.
uv.new_signal():start("sigpipe", function() end)

local server = uv.new_tcp()
assert(server:bind(host, port))
assert(server:listen(1024, function(err)
  assert(not err, err)
  local client = uv.new_tcp()
  server:accept(client)
  client:nodelay(true)
  client:read_start(function(rerr, data)
    if rerr or not data then -- error or end of stream
      if not client:is_closing() then client:close() end
      return
    end
    client:write(data)
  end)
end))

uv.run()
