-- TLS echo server on cqueues: bench/peers/cqueues_echo_server.lua (one
-- coroutine per connection, con:read(-100000) and con:write(data), binary
-- unbuffered mode "bn", TCP_NODELAY) with con:starttls(ctx) on each
-- accepted connection, ctx a luaossl server context (the one way cqueues
-- takes a certificate: lua-luaossl, which cqueues' TLS is built on) with
-- TLS 1.2 and 1.3 and the certificate made for the run.
--   lua5.4 bench/peers/cqueues_tls_echo_server.lua HOST PORT CERTFILE KEYFILE
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local context = require "openssl.ssl.context"
local pkey = require "openssl.pkey"
local x509 = require "openssl.x509"

local host, port, certfile, keyfile = arg[1], tonumber(arg[2]), arg[3], arg[4]

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local ctx = context.new("TLS", true)
ctx:setOptions(context.OP_NO_SSLv2 | context.OP_NO_SSLv3 | context.OP_NO_TLSv1 | context.OP_NO_TLSv1_1)
ctx:setCertificate(x509.new(slurp(certfile), "PEM"))
ctx:setPrivateKey(pkey.new(slurp(keyfile), "PEM"))

local function echo(con)
  con:setmode("bn", "bn")
  con:onerror(function(_, _, err) return err end)
  if con:starttls(ctx) then
    while true do
      local data = con:read(-100000)
      if not data then break end -- end of stream or error
      if not con:write(data) then break end
    end
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
