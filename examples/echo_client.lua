-- A client for the echo servers: sends each line it reads from stdin (or
-- the arguments after the port) and prints the echo.
--   lua5.4 examples/echo_client.lua [host [port [message...]]]
--   default: localhost 25000, then lines from stdin
local curio = require "curio"

local host, port = arg[1] or "localhost", tonumber(arg[2] or 25000)

local function main()
  local sock <close> = curio.open_connection(host, port)
  local stream = sock:as_stream()
  local function echo(line)
    stream:write(line .. "\n")
    io.write(stream:readline())
  end
  if arg[3] then
    for i = 3, #arg do echo(arg[i]) end
  else
    -- stdin is read in a worker thread, so that the kernel never blocks
    while true do
      local line = curio.run_in_thread(io.read, "l")
      if line == nil then break end
      echo(line)
    end
  end
end

curio.run(main)
