-- Channel pairs for the specs: two connected Connections (the server's
-- side and the client's) over the loopback or a unix path, and a value
-- for a <close> variable that closes them.
local curio = require "curio"

local channels = {}

-- channels.pair{channel = opts, server = opts, client = opts, unix = true}
-- -> server, client: a Channel bound on 127.0.0.1 (or a temporary unix
-- path), accepting with `server` options while its address connects with
-- `client` options; a failure on either side closes the other and raises.
function channels.pair(opts)
  opts = opts or {}
  local path
  if opts.unix then
    path = os.tmpname()
    os.remove(path)
  end
  local ch = curio.Channel(path or { "127.0.0.1", 0 }, opts.channel)
  local addr = ch:bind()
  local accepting = curio.spawn(ch.accept, ch, opts.server)
  local other = curio.Channel(addr, opts.channel)
  local ok, client = pcall(other.connect, other, opts.client)
  local server_ok, server = pcall(accepting.join, accepting)
  ch:close() -- (a unix path's file goes with it)
  if not ok then
    if server_ok then server:close() end
    error(client, 0)
  end
  if not server_ok then
    client:close()
    error(server.cause or server, 0)
  end
  return server, client
end

-- A value for a <close> variable that closes every connection given (nil
-- ones skipped).
function channels.closing(...)
  local list = table.pack(...)
  return setmetatable({}, { __close = function()
    for i = 1, list.n do
      if list[i] then list[i]:close() end
    end
  end })
end

return channels
