-- Certificates for the TLS specs, made at test time with the `openssl`
-- program into a temporary directory (no private key is committed): a CA,
-- a server certificate for localhost and 127.0.0.1 signed by it, an
-- expired one, one for another name, one from a CA nobody trusts.
--
--   local certs = require("support.certs").make()
--   ctx:load_verify_locations(certs.ca) ... certs.remove()
local certs = {}

local function run(dir, command)
  local ok = os.execute(("cd '%s' && (%s) >/dev/null 2>&1"):format(dir, command))
  if not ok then error("openssl failed: " .. command, 2) end
end

local KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

-- A key and a certificate signed by the CA `ca` (a name in dir) for `cn`
-- with subjectAltName `san`, valid for `days` (negative: expired).
local function signed(dir, name, ca, cn, san, days)
  run(dir, ("printf 'subjectAltName=%s\\nbasicConstraints=CA:FALSE\\n' > %s.ext"):format(san, name))
  run(dir, ("openssl req -new %s -keyout %s.key -out %s.csr -subj '/CN=%s/O=curio tests'"):format(KEY, name, name, cn))
  run(dir, ("openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key -CAcreateserial -out %s.pem -days %d -extfile %s.ext")
    :format(name, ca, ca, name, days, name))
end

-- Makes the directory and its files; returns a table of paths (ca,
-- server_cert, server_key, expired_cert, other_cert, other_key,
-- unknown_cert, unknown_key, dir) and remove().
function certs.make()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
  run(dir, ("openssl req -x509 %s -keyout ca.key -out ca.pem -days 30 -subj '/CN=curio test CA'"):format(KEY))
  run(dir, ("openssl req -x509 %s -keyout rogue.key -out rogue.pem -days 30 -subj '/CN=rogue CA'"):format(KEY))
  signed(dir, "server", "ca", "localhost", "DNS:localhost,IP:127.0.0.1", 30)
  signed(dir, "expired", "ca", "localhost", "DNS:localhost,IP:127.0.0.1", -1)
  signed(dir, "other", "ca", "other.example", "DNS:other.example", 30)
  signed(dir, "unknown", "rogue", "localhost", "DNS:localhost,IP:127.0.0.1", 30)
  signed(dir, "client", "ca", "curio client", "DNS:client.example", 30)
  local paths = { dir = dir, ca = dir .. "/ca.pem" }
  for _, name in ipairs({ "server", "expired", "other", "unknown", "client" }) do
    paths[name .. "_cert"] = ("%s/%s.pem"):format(dir, name)
    paths[name .. "_key"] = ("%s/%s.key"):format(dir, name)
  end
  paths.expired_key = dir .. "/expired.key"
  function paths.remove()
    os.execute("rm -rf '" .. dir .. "'")
  end
  return paths
end

return certs
