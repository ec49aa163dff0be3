-- curio.network: servers, connections, name resolution and socket streams
-- (docs/sockets.md). The sockets themselves are C (core/socket.c); this
-- module is policy.
--
-- Rules:
--  1. Host names are resolved in a worker thread (getaddrinfo blocks);
--     numeric hosts never leave the task. open_connection tries every
--     resolved address in turn and raises the last failure.
--  2. run_server runs each connection's handler in a task of its own and
--     closes the client socket when the handler ends, however it ends. A
--     failing handler is reported on stderr once and the server goes on:
--     in one line when the peer reset or closed the connection
--     (ConnectionResetError, BrokenPipeError, a TLS peer's close without
--     close_notify (SSLEOFError): the client's doing), else
--     its line and one traceback, where it was raised.
--     Cancelling the server cancels the handlers still running, waits for
--     them and closes the listening socket.
--  3. accept failing for lack of descriptors or memory (EMFILE, ENFILE,
--     ENOBUFS, ENOMEM) is reported once and retried after a pause: the
--     server neither spins nor dies, and serves again once descriptors
--     are freed.
--  4. TCP sockets from tcp_server and open_connection have TCP_NODELAY.
--  5. TLS (opts.ssl): open_connection verifies the server as `host` unless
--     opts.server_hostname names it otherwise, and returns the TLS socket
--     once its handshake is done; a server does each handshake in the
--     connection's task, and a connection whose handshake fails, or does
--     not finish within opts.ssl_handshake_timeout (60 s, asyncio's), is
--     reported once and closed without reaching the handler: a client
--     that never finishes cannot hold a task and a descriptor forever.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
local io_ = require "curio.io"
local ssl = require "curio.ssl"
local time = require "curio.time"

local CancelledError, TaskTimeout, OSError = errors.CancelledError, errors.TaskTimeout, errors.OSError
local ConnectionResetError, BrokenPipeError = errors.ConnectionResetError, errors.BrokenPipeError
local SSLEOFError = errors.SSLEOFError
local spawn, sleep, current_task = core.spawn, core.sleep, core.current_task
local task_cancel, run_in_thread = core.task_cancel, core.run_in_thread
local new_socket, address, is_numeric = core.socket, core.address, core.is_numeric_host
local methods = core.socket_methods

local network = {}

local function is_socket(value)
  return type(value) == "userdata" and methods.closed ~= nil and pcall(methods.closed, value)
end

local function check_port(port, n, fname)
  if math.type(port) ~= "integer" then
    if type(port) == "number" then
      check.arg_error(n, fname, "port must be an integer", 2)
    end
    check.arg_error(n, fname, "integer port expected, got " .. (port == nil and "no value" or type(port)), 2)
  end
  if port < 0 or port > 65535 then check.arg_error(n, fname, "port out of range 0-65535", 2) end
end

local function check_host(host, n, fname)
  if host ~= nil then check.cstring(host, n, fname, "string host", 2) end
end

local function check_family(family, n, fname)
  if family ~= nil and family ~= "inet" and family ~= "inet6" then
    check.arg_error(n, fname, "opts.family must be \"inet\" or \"inet6\"", 2)
  end
end

-- The address list for host:port, rule 1: {{family, host, port}, ...}.
local function resolve(fname, host, port, family, passive)
  if host == nil or host == "" then return { { family or "inet", "", port } } end -- any address
  if is_numeric(host, "inet") then return { { family or "inet", host, port } } end
  if is_numeric(host, "inet6") then return { { "inet6", host, port } } end
  local list, message = run_in_thread(core.getaddrinfo, host, port, family, "stream", passive)
  if (list == nil or #list == 0) and host:lower() == "localhost" then
    -- a machine without /etc/hosts: localhost is the loopback (RFC 6761)
    list = { { family or "inet", family == "inet6" and "::1" or "127.0.0.1", port } }
  end
  if list == nil or #list == 0 then
    error(OSError(("%s: cannot resolve '%s': %s"):format(fname, host, message or "no address"),
                  { code = "EAI", strerror = message, host = host }), 3)
  end
  return list
end

---------------------------------------------------------------- streams

-- A socket is the source of its own stream (curio.io's source protocol):
-- sock:read(n) is recv, sock:write(data) is sendall returning #data (C,
-- core/sockio.c). The stream calls them directly, in the pcall that holds
-- it for its reader or writer (lua/curio/io.lua rule 5): no Lua wrapper
-- frame between the stream and the system call.

-- sock:as_stream() -> a Stream (curio.io) reading and writing the socket;
-- closing the stream closes the socket.
function methods.as_stream(sock)
  -- (a light check and a tail call: each call deeper here may double the
  -- stack of every connection's coroutine; a non-socket fails at its first
  -- read or write)
  if type(sock) ~= "userdata" then check.arg_error(1, "as_stream", "Socket expected") end
  local ok, closed = pcall(methods.closed, sock)
  if ok and closed then -- the OSError EBADF of every method of a closed socket
    local _, err = pcall(methods.fileno, sock)
    err.message = "as_stream: socket is closed"
    error(err, 2)
  end
  return io_.Stream(sock)
end

-- sock:connect(addr) and sock:bind(addr) also take host names (rule 1).
local c_connect, c_bind = methods.connect, methods.bind

-- (An address that C takes as it is, or refuses, goes to C unchanged: C
-- checks it once, at the user's line; only a host name is resolved here.)
local function named(sock, addr, fname)
  if type(addr) ~= "table" then return addr end
  local host, port = addr[1] or addr.host, addr[2] or addr.port
  if type(host) ~= "string" or host:find("\0", 1, true) then return addr end
  if math.type(port) ~= "integer" or port < 0 or port > 65535 then return addr end
  local family = sock:family()
  if family == "unix" or is_numeric(host, family) then return addr end
  check.task(fname, 2)
  local list = resolve(fname, host, port, family, fname == "bind")
  return address(list[1][2], list[1][3])
end

function methods.connect(sock, addr)
  return c_connect(sock, named(sock, addr, "connect"))
end

function methods.bind(sock, addr)
  return c_bind(sock, named(sock, addr, "bind"))
end

---------------------------------------------------------------- servers

local server_opts = { backlog = true, reuse_address = true, reuse_port = true, family = true, ssl = true,
                      ssl_handshake_timeout = true }

local HANDSHAKE_TIMEOUT = 60 -- (seconds: asyncio's default)

-- opts.ssl of a server: nil, or a server's SSLContext; and
-- opts.ssl_handshake_timeout, which needs it (rule 5).
local function check_server_ssl(opts, n, fname)
  local ctx, seconds = opts.ssl, opts.ssl_handshake_timeout
  if seconds ~= nil then
    if type(seconds) ~= "number" or seconds ~= seconds or seconds <= 0 then
      check.arg_error(n, fname, "opts.ssl_handshake_timeout must be a positive number of seconds, got "
                      .. check.shown(seconds), 2)
    end
    if ctx == nil then check.arg_error(n, fname, "opts.ssl_handshake_timeout needs opts.ssl", 2) end
  end
  if ctx == nil then return end
  local is_context, purpose = ssl.is_context(ctx)
  if not is_context or purpose ~= "server" then
    check.arg_error(n, fname,
                    "opts.ssl must be a server's SSLContext (create_default_context(\"server\"))", 2)
  end
end

-- Calls fn(sock, ...) and returns sock; if fn fails, closes sock and
-- raises the error again (no descriptor is left behind).
local function or_close(sock, fn, ...)
  local ok, err = pcall(fn, sock, ...)
  if not ok then
    sock:close()
    error(err, 0)
  end
  return sock
end

local function listen_on(sock, addr, opts)
  return or_close(sock, function()
    if opts.reuse_address ~= false then sock:setsockopt("SO_REUSEADDR", true) end
    if opts.reuse_port then sock:setsockopt("SO_REUSEPORT", true) end
    c_bind(sock, addr)
    sock:listen(opts.backlog or 128)
  end)
end

-- curio.tcp_server_socket(host, port, opts) -> a listening Socket.
function network.tcp_server_socket(host, port, opts)
  check_host(host, 1, "tcp_server_socket")
  check_port(port, 2, "tcp_server_socket")
  opts = check.options(opts, 3, "tcp_server_socket", server_opts)
  check_family(opts.family, 3, "tcp_server_socket")
  if opts.backlog ~= nil then check.count(opts.backlog, 3, "tcp_server_socket") end
  local family = opts.family
  if family == nil and host and host:find(":", 1, true) then family = "inet6" end
  local first = resolve("tcp_server_socket", host, port, family, true)[1]
  local sock = new_socket(first[1], "stream")
  return listen_on(sock, address(first[2], first[3]), opts)
end

local report_failure

-- A value raised without a traceback of its own (a string), caught with
-- the traceback of where it was raised.
local Caught = {}

-- A handler's error as caught: a cancellation, or a curio error (it
-- carries its traceback), as it is; anything else in a Caught.
local function caught(err)
  if CancelledError:matches(err) then return err end
  if type(err) == "table" and type(rawget(err, "traceback")) == "string" then return err end
  return setmetatable({ value = err, traceback = debug.traceback("", 2):sub(2) }, Caught)
end

-- A connection's task (rule 2), one closure per server. (Few parameters
-- and no local before the xpcall: the handler's frames start that much
-- lower in the coroutine's stack, which keeps an echo handler reading
-- through a stream within Lua's first 40 stack slots; one more would
-- double the stack of every connection, 640 bytes each.)
local function client_task(handler, active, server)
  return function(client, addr)
    local ok, err = xpcall(handler, caught, client, addr)
    active[current_task()] = nil
    client:close()
    if not ok then
      if CancelledError:matches(err) then error(err, 0) end
      report_failure(err, addr, server)
    end
  end
end

-- A traceback without the frames below the handler (from the last xpcall
-- in it, client_task's, down: curio's own).
local function trimmed(traceback)
  local cut
  for at in traceback:gmatch("()\n%s*%[C%]: in function 'xpcall'") do cut = at end
  return cut and traceback:sub(1, cut - 1) or traceback
end

-- An error value on one line, protected (a __tostring may raise).
local function line_of(value)
  local ok, text = pcall(tostring, value)
  return ok and type(text) == "string" and text or ("(error object is a %s value)"):format(type(value))
end

-- Reports a failed handler once on stderr (rule 2): the peer's reset or
-- close (the client's doing, not a bug) in one line, any other error in
-- its line then its traceback.
function report_failure(err, addr, server)
  local peer = tostring(addr)
  if peer == "" then -- (a unix peer has no address: the server's path names it)
    local ok, path = pcall(server.getsockname, server)
    peer = "a peer of " .. (ok and tostring(path) or "a unix socket")
  end
  local value = getmetatable(err) == Caught and err.value or err
  if ConnectionResetError:matches(value) or BrokenPipeError:matches(value)
     or SSLEOFError:matches(value) then
    io.stderr:write(("curio: server handler for %s: connection closed by the peer (%s)\n")
                    :format(peer, line_of(value)))
  else
    io.stderr:write(("curio: server handler for %s failed: %s\n%s\n")
                    :format(peer, line_of(value), trimmed(err.traceback)))
  end
end

local tls_server_side = { server_side = true }
local timeout_after = time.timeout_after

-- A connection's task on a TLS server (rule 5): the handshake, within
-- seconds, then the plain server's task with the TLS socket (a tail
-- call: no frame more).
local function tls_client_task(handler, active, server, ctx, seconds)
  local serve = client_task(handler, active, server)
  return function(client, addr)
    local ok, tls = pcall(timeout_after, seconds, ctx.wrap_socket, ctx, client, tls_server_side)
    if not ok then
      active[current_task()] = nil
      client:close()
      local why = line_of(tls)
      if TaskTimeout:matches(tls) then -- (the timeout's own: nothing outside the task sets one)
        why = ("not finished within %g s (opts.ssl_handshake_timeout)"):format(seconds)
      elseif CancelledError:matches(tls) then
        error(tls, 0)
      end
      io.stderr:write(("curio: TLS handshake with %s failed: %s\n"):format(tostring(addr), why))
      return
    end
    return serve(tls, addr)
  end
end

local out_of_resources = { EMFILE = true, ENFILE = true, ENOBUFS = true, ENOMEM = true }

-- Cancels every handler still running and waits for them (rule 2).
local function stop_handlers(active)
  local victims = {}
  for t in pairs(active) do victims[#victims + 1] = t end
  for _, t in ipairs(victims) do task_cancel(t) end
  local function wait_all()
    for _, t in ipairs(victims) do t:wait() end
  end
  require("curio.task").disable_cancellation(wait_all)
end

-- curio.run_server(sock, handler, opts): accepts on the listening sock
-- until cancelled, handler(client, addr) in a task per connection; opts:
-- ssl (a server's SSLContext), ssl_handshake_timeout (rule 5).
function network.run_server(sock, handler, opts)
  if not is_socket(sock) then check.arg_error(1, "run_server", "Socket expected") end
  check.fn(handler, 2, "run_server")
  opts = check.options(opts, 3, "run_server", { ssl = true, ssl_handshake_timeout = true })
  check_server_ssl(opts, 3, "run_server")
  check.task("run_server")
  local nodelay = sock:family() ~= "unix"
  local active, warned = {}, false
  local serve_client = opts.ssl and tls_client_task(handler, active, sock, opts.ssl,
                                                    opts.ssl_handshake_timeout or HANDSHAKE_TIMEOUT)
                       or client_task(handler, active, sock)
  local _, err = pcall(function()
    while true do
      local ok_accept, client, addr = pcall(sock.accept, sock)
      if ok_accept then
        if nodelay then pcall(client.setsockopt, client, "TCP_NODELAY", true) end
        -- listed at once: a cancellation before its first turn reaches it
        active[spawn(serve_client, client, addr)] = true
      elseif OSError:matches(client) and out_of_resources[client.code] then
        if not warned then
          io.stderr:write("curio: run_server: accept failed (" .. client.code .. "), retrying\n")
          warned = true
        end
        sleep(0.05)
      else
        error(client, 0)
      end
    end
  end)
  stop_handlers(active)
  sock:close()
  error(err, 0)
end

-- curio.tcp_server(host, port, handler, opts): serves until cancelled.
function network.tcp_server(host, port, handler, opts)
  check_host(host, 1, "tcp_server")
  check_port(port, 2, "tcp_server")
  check.fn(handler, 3, "tcp_server")
  opts = check.options(opts, 4, "tcp_server", server_opts)
  check_server_ssl(opts, 4, "tcp_server")
  check.task("tcp_server")
  return network.run_server(network.tcp_server_socket(host, port, opts), handler,
                            { ssl = opts.ssl, ssl_handshake_timeout = opts.ssl_handshake_timeout })
end

-- curio.unix_server(path, handler, opts): as tcp_server, on a unix socket.
function network.unix_server(path, handler, opts)
  check.cstring(path, 1, "unix_server", "path string")
  check.fn(handler, 2, "unix_server")
  opts = check.options(opts, 3, "unix_server", { backlog = true, ssl = true, ssl_handshake_timeout = true })
  check_server_ssl(opts, 3, "unix_server")
  check.task("unix_server")
  local sock = new_socket("unix", "stream")
  listen_on(sock, path, { reuse_address = false, backlog = opts.backlog })
  -- the socket file goes when the server does (it made it)
  local _, err = pcall(network.run_server, sock, handler,
                      { ssl = opts.ssl, ssl_handshake_timeout = opts.ssl_handshake_timeout })
  os.remove(path)
  error(err, 0)
end

---------------------------------------------------------------- clients

local connection_opts = { family = true, ssl = true, server_hostname = true, alpn_protocols = true }

-- The TLS options of open_connection (rule 5): the context, the wrap
-- options; nil when opts.ssl is not set.
local function client_tls(host, opts)
  local ctx = opts.ssl
  if ctx ~= nil and ctx ~= false and ctx ~= true and not ssl.is_context(ctx) then
    check.arg_error(3, "open_connection", "opts.ssl must be true or an SSLContext", 2)
  end
  if not ctx then
    if opts.server_hostname ~= nil or opts.alpn_protocols ~= nil then
      check.arg_error(3, "open_connection", "opts.server_hostname and opts.alpn_protocols need opts.ssl", 2)
    end
    return nil
  end
  if opts.server_hostname ~= nil then
    check.cstring(opts.server_hostname, 3, "open_connection", "opts.server_hostname: string", 2)
  end
  if opts.alpn_protocols ~= nil then ssl.alpn_wire(opts.alpn_protocols, 3, "open_connection") end
  if ctx == true then ctx = ssl.default_client_context() end
  return ctx, { server_hostname = opts.server_hostname or host, alpn_protocols = opts.alpn_protocols }
end

-- curio.open_connection(host, port, opts) -> a connected Socket (rule 1),
-- a TLS socket with opts.ssl (rule 5).
function network.open_connection(host, port, opts)
  check.cstring(host, 1, "open_connection", "string host")
  check_port(port, 2, "open_connection")
  opts = check.options(opts, 3, "open_connection", connection_opts)
  check_family(opts.family, 3, "open_connection")
  local tls_ctx, tls_opts = client_tls(host, opts)
  check.task("open_connection")
  local last
  for _, entry in ipairs(resolve("open_connection", host, port, opts.family, false)) do
    local sock = new_socket(entry[1], "stream")
    local ok, err = pcall(c_connect, sock, address(entry[2], entry[3]))
    if ok then
      sock:setsockopt("TCP_NODELAY", true)
      if tls_ctx == nil then return sock end
      local done, tls = pcall(tls_ctx.wrap_socket, tls_ctx, sock, tls_opts)
      if done then return tls end
      sock:close() -- (closed already if the handshake began)
      error(tls, 0)
    end
    sock:close()
    if CancelledError:matches(err) then error(err, 0) end
    last = err
  end
  error(last, 0)
end

-- curio.open_unix_connection(path) -> a connected unix Socket.
function network.open_unix_connection(path)
  check.cstring(path, 1, "open_unix_connection", "path string")
  check.task("open_unix_connection")
  return or_close(new_socket("unix", "stream"), c_connect, path)
end

network.socket = new_socket

return network
