-- The HTTP example over TLS: examples/http_server.lua (HTTP/1.1 with
-- keep-alive on curio streams) with each connection's TLS handshake done
-- before its handler runs (curio.run_server's ssl option).
--   lua5.4 examples/https_server.lua [host [port [certfile keyfile]]]
--   (default: all interfaces, 8443, cert.pem and key.pem)
--
-- A certificate for trying it, valid 30 days for localhost and 127.0.0.1
-- (a client must trust it: curl --cacert cert.pem https://localhost:8443/):
--   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
--     -nodes -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost \
--     -addext subjectAltName=DNS:localhost,IP:127.0.0.1
local curio = require "curio"

local host, port = arg[1] or "", arg[2] or "8443"
local certfile, keyfile = arg[3] or "cert.pem", arg[4] or "key.pem"

local ctx = curio.ssl.create_default_context("server")
ctx:load_cert_chain(certfile, keyfile)
ctx:set_alpn_protocols({ "http/1.1" })

-- http_server.lua as it is, given a curio whose run_server serves TLS
-- with ctx (everything else is curio's own).
local tls_curio = setmetatable({
  run_server = function(sock, handler) return curio.run_server(sock, handler, { ssl = ctx }) end,
}, { __index = curio })
local env = setmetatable({
  arg = { [0] = "examples/http_server.lua", host, port },
  require = function(name)
    if name == "curio" then return tls_curio end
    return require(name)
  end,
}, { __index = _G })
local here = (arg[0] or ""):match("^(.*[/\\])") or ""
assert(loadfile(here .. "http_server.lua", "t", env))()
