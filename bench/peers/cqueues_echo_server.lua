-- Echo server on cqueues: one coroutine per connection (cq:wrap), reading
-- with the partial-read format -100000 (1 to 100000 bytes, returning as
-- soon as any are available) and writing each chunk back. Sockets in binary
-- mode without output buffering ("bn": cqueues' default "tl" is text with
-- line buffering), TCP_NODELAY on the accepted connections (the nodelay
-- option of accept; cqueues' default is off), errors returned instead of
-- thrown so that a reset connection ends only its own coroutine.
--   lua5.4 bench/peers/cqueues_echo_server.lua HOST PORT
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local host, port = arg[1] or "127.0.0.1", tonumber(arg[2] or 25000)

local function echo(con)
  con:setmode("bn", "bn")
  con:onerror(function(_, _, err) return err end)
  while true do
    local data = con:read(-100000)
    if not data then break end -- end of stream or error
    if not con:write(data) then break end
  end
  con:close()
end

local srv = socket.listen{ host = host, port = port, reuseaddr = true }
local cq = cqueues.new()
cq:wrap(function()
  for con in srv:clients{ nodelay = true } do
    cq:wrap(echo, con)
  end
end)
assert(cq:loop())
