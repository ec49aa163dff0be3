-- curio.ssl: TLS on OpenSSL (docs/sockets.md: TLS). Contexts and TLS
-- sockets are C (core/tlsctx.c, core/tls.c, core/tlsinfo.c: the module
-- curio.tls, apart from curio.core so that OpenSSL loads only with this
-- module, which curio loads on first use); this module
-- is policy: the default contexts, wrap_socket's options, and the socket
-- calls that go to the plain socket under a TLS socket.
--
-- Rules:
--  1. create_default_context("client") verifies the server against the
--     system's CA store and checks its host name; ("server") asks clients
--     for nothing. Both speak TLS 1.2 and 1.3 only.
--  2. wrap_socket takes the socket's descriptor (the socket given is
--     closed, as Python's detach): the TLS socket owns it from then on. A
--     handshake made by wrap_socket that fails or is interrupted closes
--     the TLS socket, so nothing is left half-open.
--  3. A TLS socket is a stream source as a plain socket is (tls:read is
--     recv, tls:write is sendall returning #data): as_stream gives the
--     same Stream (curio.io).

local core = require "curio.core"
core.export_symbols() -- (curio.tls's C calls resolve in curio.core)
local tls_core = require "curio.tls"
local errors = require "curio.errors"
local check = require "curio.check"
local io_ = require "curio.io"

local ssl = {
  SSLError = errors.SSLError,
  SSLCertVerificationError = errors.SSLCertVerificationError,
  SSLEOFError = errors.SSLEOFError,
}

-- ssl.create_default_context(purpose) -> an SSLContext (rule 1).
function ssl.create_default_context(purpose)
  if purpose ~= nil and purpose ~= "client" and purpose ~= "server" then
    check.arg_error(1, "create_default_context",
                    "\"client\" or \"server\" expected, got " .. check.shown(purpose))
  end
  local ctx = tls_core.tls_context(purpose or "client")
  if purpose ~= "server" then ctx:load_default_certs() end
  return ctx
end

local default_client

-- The context of open_connection(..., {ssl = true}): one default client
-- context, made on first use (loading the CA store costs milliseconds).
function ssl.default_client_context()
  if default_client == nil then default_client = ssl.create_default_context("client") end
  return default_client
end

-- ssl.is_context(value) -> whether value is an SSLContext, and its purpose.
ssl.is_context = tls_core.tls_is_context

local context_methods, tls_methods = tls_core.tls_context_methods, tls_core.tls_methods
local transport, tls_wrap = tls_core.tls_transport, tls_core.tls_wrap

local wrap_options = { server_side = true, server_hostname = true, do_handshake_on_connect = true,
                       alpn_protocols = true }

local function check_boolean(value, n, fname, name)
  if value ~= nil and type(value) ~= "boolean" then
    check.arg_error(n, fname, ("opts.%s must be a boolean, got %s"):format(name, type(value)), 3)
  end
end

-- The protocol list in ALPN's wire format (each name after its length).
function ssl.alpn_wire(list, n, fname)
  if type(list) ~= "table" then
    check.arg_error(n, fname, "opts.alpn_protocols must be a list of strings, got " .. type(list), 3)
  end
  local parts = {}
  for i, name in ipairs(list) do
    if type(name) ~= "string" or #name == 0 or #name > 255 then
      check.arg_error(n, fname, ("opts.alpn_protocols[%d] must be a string of 1 to 255 bytes"):format(i), 3)
    end
    parts[i] = string.char(#name) .. name
  end
  return table.concat(parts)
end

-- ctx:wrap_socket(sock, {server_side, server_hostname,
-- do_handshake_on_connect = true, alpn_protocols}) -> a TLS socket over
-- sock's connection (rule 2).
function context_methods.wrap_socket(ctx, sock, opts)
  opts = check.options(opts, 2, "wrap_socket", wrap_options)
  check_boolean(opts.server_side, 2, "wrap_socket", "server_side")
  check_boolean(opts.do_handshake_on_connect, 2, "wrap_socket", "do_handshake_on_connect")
  local host = opts.server_hostname
  if host ~= nil then check.cstring(host, 2, "wrap_socket", "opts.server_hostname: string") end
  local alpn = opts.alpn_protocols and ssl.alpn_wire(opts.alpn_protocols, 2, "wrap_socket")
  local handshake = opts.do_handshake_on_connect ~= false
  if handshake then check.task("wrap_socket") end
  local tls = tls_wrap(ctx, sock, opts.server_side, host, alpn)
  if handshake then
    local ok, err = pcall(tls.do_handshake, tls)
    if not ok then
      tls:close()
      error(err, 0)
    end
  end
  return tls
end

-- The calls that go to the plain socket under a TLS socket (getpeername,
-- setsockopt, ...): they name themselves in their errors.
for _, name in ipairs({ "getpeername", "getsockname", "setsockopt", "getsockopt", "fileno", "family" }) do
  local plain = core.socket_methods[name]
  tls_methods[name] = function(self, ...)
    return plain(transport(self, name), ...)
  end
end

-- tls:as_stream() -> a Stream reading and writing through TLS (rule 3);
-- closing the stream closes the TLS socket.
function tls_methods.as_stream(self)
  transport(self, "as_stream")
  return io_.Stream(self)
end

return ssl
