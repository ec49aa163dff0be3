-- A small HTTP/1.1 server with keep-alive, on curio streams:
--   lua5.4 examples/http_server.lua [host [port]]   (default: all interfaces, 8080)
--
--   GET /        -> 200 "Hello, world!\n"
--   HEAD /       -> the headers of GET / (Content-Length included), no body
--   POST /echo   -> 200 with the request body sent back
--   other paths  -> 404; another method on / or /echo -> 405
--   A reply to HEAD never has a body, whatever its status.
--
-- Each connection is a task (curio.tcp_server) reading its requests one
-- after another from a buffered stream: readline for the request line and
-- the headers, read_exactly for a Content-Length body. Each response goes
-- out in one write. Malformed requests get 400 (413 for a body over 1 MiB,
-- 431 for an over-long header line) and the connection is closed.
-- A server facing the Internet would also bound the time a client may take
-- (curio.timeout_after around reading a request) and support chunked bodies.
local curio = require "curio"

local MAX_LINE = 8192          -- longest request line or header line, "\r\n" included
local MAX_HEADERS = 100        -- header lines per request
local MAX_BODY = 1024 * 1024   -- longest request body

local REASONS = {
  [200] = "OK", [400] = "Bad Request", [404] = "Not Found", [405] = "Method Not Allowed",
  [413] = "Content Too Large", [431] = "Request Header Fields Too Large",
  [501] = "Not Implemented",
}

-- Sends one whole response with a single write. A reply to HEAD has the
-- headers the reply to GET would have, Content-Length included, and no
-- body (RFC 9110 9.3.2).
local function respond(stream, method, status, body, keep_alive, extra_headers)
  stream:write(("HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n" ..
                "Connection: %s\r\n%s\r\n%s"):format(
    status, REASONS[status], #body, keep_alive and "keep-alive" or "close",
    extra_headers or "", method == "HEAD" and "" or body))
end

-- The next line, at most MAX_LINE bytes; nil at the end of the stream (or
-- in the middle of a line), false when the line is too long.
local function read_line(stream)
  local line = stream:readline(MAX_LINE)
  if line:sub(-1) == "\n" then return line end
  if #line == MAX_LINE then return false end
  return nil
end

-- Does a Connection header value (a comma-separated list) hold token?
local function has_token(value, token)
  for item in value:gmatch("[^,]+") do
    if item:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

-- Reads one request: returns a table {method, path, keep_alive, body}, or
-- nil, an error status and the method when it was read (nil and nil when
-- the client went away).
local function read_request(stream)
  local line = read_line(stream)
  if line == nil then return nil end
  if line == false then return nil, 400 end
  local method, target, minor = line:match("^(%u+) (%S+) HTTP/1%.([01])\r?\n$")
  if not method then return nil, 400, line:match("^%u+") end

  -- Header lines up to an empty line; names are case-insensitive, so they
  -- are kept lower-cased; a repeated header's values are joined with ", ".
  local headers = {}
  for _ = 1, MAX_HEADERS + 1 do
    line = read_line(stream)
    if line == nil then return nil end
    if line == false then return nil, 431, method end
    if line == "\r\n" or line == "\n" then break end
    local name, value = line:match("^([^:%s]+):[ \t]*(.-)[ \t]*\r?\n$")
    if not name then return nil, 400, method end
    name = name:lower()
    headers[name] = headers[name] and headers[name] .. ", " .. value or value
  end
  if line ~= "\r\n" and line ~= "\n" then return nil, 431, method end -- too many headers

  -- HTTP/1.1 keeps the connection unless told to close it; 1.0 the reverse.
  local connection = headers["connection"] or ""
  local keep_alive
  if minor == "1" then keep_alive = not has_token(connection, "close")
  else keep_alive = has_token(connection, "keep-alive") end

  -- The body: Content-Length bytes (chunked bodies are not supported).
  if headers["transfer-encoding"] then return nil, 501, method end
  local body, length = "", headers["content-length"]
  if length then
    if not length:match("^%d+$") then return nil, 400, method end
    if tonumber(length) > MAX_BODY then return nil, 413, method end
    -- A client may wait for a go-ahead before sending its body (curl does
    -- for big ones): an interim response, then the body.
    if minor == "1" and (headers["expect"] or ""):lower() == "100-continue" then
      stream:write("HTTP/1.1 100 Continue\r\n\r\n")
    end
    body = stream:read_exactly(tonumber(length))
  end
  return { method = method, path = target:match("^[^?]*"), keep_alive = keep_alive, body = body }
end

-- The application: status, body and extra header lines for a request.
local function route(request)
  local method, path = request.method, request.path
  if path == "/" then
    if method == "GET" or method == "HEAD" then return 200, "Hello, world!\n" end
    return 405, "Method Not Allowed\n", "Allow: GET, HEAD\r\n"
  elseif path == "/echo" then
    if method == "POST" then return 200, request.body end
    return 405, "Method Not Allowed\n", "Allow: POST\r\n"
  end
  return 404, "Not Found\n"
end

-- After a bad request part of it may still be unsent or unread, and
-- closing a socket with unread data resets the connection, which can wipe
-- out the error response before the client reads it. So stop writing, then
-- drain what the client still sends (bounded: 4 MiB, 1 second) before the
-- socket is closed.
local function linger(client, stream)
  if not pcall(client.shutdown, client, "w") then return end -- the client is gone
  curio.ignore_after(1, function()
    for _ = 1, 64 do
      if stream:read(65536) == "" then return end
    end
  end)
end

-- One connection: requests until the client closes or asks to close.
local function serve(client, stream)
  while true do
    local request, error_status, method = read_request(stream)
    if not request then -- a bad request, or the end of the stream
      if error_status then
        respond(stream, method, error_status, REASONS[error_status] .. "\n", false)
        linger(client, stream)
      end
      return
    end
    local status, body, extra_headers = route(request)
    respond(stream, request.method, status, body, request.keep_alive, extra_headers)
    if not request.keep_alive then return end
  end
end

local function http_client(client)
  local ok, err = pcall(serve, client, client:as_stream())
  -- A client that resets the connection or leaves in the middle of a
  -- request is no failure of the server; anything else (cancellation
  -- included) goes on up. tcp_server closes the socket either way.
  if not ok and not curio.ConnectionError:matches(err) and not curio.IncompleteRead:matches(err) then
    error(err, 0)
  end
end

local host, port = arg[1] or "", math.tointeger(tonumber(arg[2] or 8080))
if not port then
  io.stderr:write("usage: lua5.4 examples/http_server.lua [host [port]]\n")
  os.exit(2)
end
curio.run(function()
  local sock = curio.tcp_server_socket(host, port)
  -- said once it listens, with the port it got (port 0: the system picks)
  print("http server listening on " .. tostring(sock:getsockname()))
  io.stdout:flush()
  curio.run_server(sock, http_client)
end)
