-- Fetches a URL from an HTTPS server and prints the body, verifying the
-- server's certificate and name as a browser does (the system's CA store;
-- cafile: trust that CA instead, for a certificate of your own).
--   lua5.4 examples/https_get.lua https://host[:port]/path [cafile]
-- The status line and headers go to stderr, the body to stdout; exit
-- status 0 for a 2xx answer, 1 otherwise.
local curio = require "curio"

local url, cafile = arg[1], arg[2]
local host, port, path = (url or ""):match("^https://([^/:]+):?(%d*)(/?.*)$")
if not host then
  io.stderr:write("usage: lua5.4 examples/https_get.lua https://host[:port]/path [cafile]\n")
  os.exit(2)
end
port = tonumber(port) or 443
if path == "" then path = "/" end

local ctx = curio.ssl.create_default_context()
if cafile then ctx:load_verify_locations(cafile) end
ctx:set_alpn_protocols({ "http/1.1" })

local status = curio.run(function()
  local conn <close> = curio.open_connection(host, port, { ssl = ctx })
  local stream = conn:as_stream()
  stream:write(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: curio-lua\r\n\r\n")
               :format(path, host))
  local status_line = stream:readline()
  io.stderr:write(status_line)
  local length, chunked
  for line in stream:lines() do
    io.stderr:write(line)
    if line == "\r\n" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*\r\n$")
    if name and name:lower() == "content-length" then length = tonumber(value) end
    if name and name:lower() == "transfer-encoding" then chunked = value:lower():find("chunked") end
  end
  if chunked then -- sizes in hex, each chunk then "\r\n", a last chunk of 0
    while true do
      local size = tonumber(stream:readline():match("^%x+"), 16)
      if not size or size == 0 then break end
      io.stdout:write(stream:read_exactly(size))
      stream:read_exactly(2)
    end
  elseif length then
    io.stdout:write(stream:read_exactly(length))
  else
    io.stdout:write(stream:read()) -- to the end (close_notify)
  end
  return tonumber(status_line:match("^HTTP/%d%.%d (%d%d%d)"))
end)
os.exit(status and status >= 200 and status < 300 and 0 or 1)
