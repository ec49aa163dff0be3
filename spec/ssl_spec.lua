local curio = require "curio"
local util = require "support.util"
local tlsnet = require "support.tlsnet"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.ssl: contexts, wrap_socket, the handshake, recv/send/sendall/close
-- (core/tls.c, core/tlsctx.c, core/tlsinfo.c, lua/curio/ssl.lua).

local ssl = curio.ssl
local certs

describe("curio.ssl", function()
  setup(function() certs = require("support.certs").make() end)
  teardown(function() certs.remove() end)

  it("makes contexts with secure defaults, fields checked when set", function()
    local client = ssl.create_default_context()
    local server = ssl.create_default_context("server")
    assert.are.same({ "client", true, "required", "TLSv1.2" },
                    { client.purpose, client.check_hostname, client.verify_mode, client.minimum_version })
    assert.are.same({ "server", false, "none", "TLSv1.2" },
                    { server.purpose, server.check_hostname, server.verify_mode, server.minimum_version })
    assert.has_error(function() client.verify_mode = "none" end,
                     'SSLContext.verify_mode: cannot be "none" while check_hostname is on')
    client.check_hostname = false
    client.verify_mode = "none"
    client.check_hostname = true -- turns verification on again, as Python does
    assert.are.equal("required", client.verify_mode)
    server.minimum_version = "TLSv1.3"
    server.maximum_version = "TLSv1.3"
    assert.are.same({ "TLSv1.3", "TLSv1.3" }, { server.minimum_version, server.maximum_version })
    server.maximum_version = nil
    assert.is_nil(server.maximum_version)
    assert.has_error(function() server.verify_mode = "sometimes" end,
                     'SSLContext.verify_mode: "none", "optional" or "required" expected')
    assert.has_error(function() server.minimum_version = "TLSv1.1" end,
                     'SSLContext.minimum_version: "TLSv1.2" or "TLSv1.3" expected')
    assert.has_error(function() server.colour = "red" end, "SSLContext has no field 'colour' to set")
    assert.matches("^SSLContext %(server%)$", tostring(server))
  end)

  it("refuses bad arguments with the function and argument named", function()
    local ctx = ssl.create_default_context("server")
    local function message(fn, ...)
      local ok, err = pcall(fn, ...)
      assert.is_false(ok)
      return (tostring(err):gsub("^[^:]*:%d+: ", ""))
    end
    assert.are.equal([[bad argument #1 to 'create_default_context' ("client" or "server" expected, got both)]],
                     message(ssl.create_default_context, "both"))
    assert.are.equal("bad argument #1 to 'load_cert_chain' (path string expected, got number)",
                     message(ctx.load_cert_chain, ctx, 42))
    assert.are.equal("bad argument #1 to 'load_verify_locations' (cafile or capath expected)",
                     message(ctx.load_verify_locations, ctx))
    assert.are.equal("calling 'set_ciphers' on bad self (SSLContext expected, got table)",
                     message(ctx.set_ciphers, {}, "HIGH"))
    assert.are.equal("bad argument #1 to 'set_alpn_protocols' (list of strings expected, got string)",
                     message(ctx.set_alpn_protocols, ctx, "h2"))
    assert.are.equal("bad argument #1 to 'set_alpn_protocols' (protocol #2: string of 1 to 255 bytes expected)",
                     message(ctx.set_alpn_protocols, ctx, { "h2", "" }))
    assert.are.equal("bad argument #2 to 'wrap_socket' (unknown option 'server_name')",
                     message(ctx.wrap_socket, ctx, curio.socket(), { server_name = "x" }))
    assert.are.equal("bad argument #2 to 'wrap_socket' (opts.server_side must be a boolean, got string)",
                     message(ctx.wrap_socket, ctx, curio.socket(), { server_side = "yes" }))
    assert.are.equal("bad argument #1 to 'wrap_socket' (Socket expected, got number)",
                     message(ctx.wrap_socket, ctx, 42, { do_handshake_on_connect = false }))
    local client = ssl.create_default_context()
    local sock <close> = curio.socket()
    assert.are.equal("bad argument #2 to 'wrap_socket' (opts.server_hostname expected: the context checks host names)",
                     message(client.wrap_socket, client, sock, { do_handshake_on_connect = false }))
    assert.is_false(sock:closed()) -- nothing was taken
    local udp <close> = curio.socket("inet", "dgram")
    assert.are.equal("bad argument #1 to 'wrap_socket' (stream socket expected)",
                     message(ctx.wrap_socket, ctx, udp, { server_side = true, do_handshake_on_connect = false }))
    assert.matches("wrap_socket: not inside a curio task", message(ctx.wrap_socket, ctx, sock, { server_side = true }))
    assert.is_false(sock:closed())
    collectgarbage()
  end)

  it("loads certificates, and reports files and keys that do not fit", function()
    local ctx = ssl.create_default_context("server")
    ctx:load_cert_chain(certs.server_cert, certs.server_key)
    local err = util.catch(ctx.load_cert_chain, ctx, certs.dir .. "/missing.pem")
    assert.is_true(curio.OSError:matches(err))
    assert.are.same({ "ENOENT", certs.dir .. "/missing.pem" }, { err.code, err.filename })
    err = util.catch(ctx.load_cert_chain, ctx, certs.server_cert, certs.other_key)
    assert.is_true(ssl.SSLError:matches(err))
    assert.is_true(curio.OSError:matches(err))
    assert.are.same({ "x509 certificate routines", "key values mismatch" }, { err.library, err.reason })
    assert.matches("^load_cert_chain: key values mismatch", err.message)
    err = util.catch(ctx.set_ciphers, ctx, "NO-SUCH-CIPHER")
    assert.are.equal("no cipher match", err.reason)
  end)

  it("completes a handshake and echoes bytes; both sides see what was agreed", function()
    local trace = util.traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      record("versions", client:version(), server:version())
      local name, protocol, bits = client:cipher()
      record("cipher", type(name), protocol, bits >= 128)
      record("sni seen by the server", server.server_hostname, client.server_hostname)
      record("sides", client.server_side, server.server_side)
      local echo = curio.spawn(function()
        local data = server:recv(100)
        server:sendall(data:upper())
        return server:send("!")
      end)
      record("sent", client:send("hello"))
      record("echo sent", echo:join())
      record("got", client:recv(100)) -- (both records: a recv returns what has come, rule 8)
      local cert = client:getpeercert()
      record("subject", cert.subject.commonName, cert.subject[1][1], cert.subject[1][2], cert.issuer.commonName)
      record("alt names", cert.subjectAltName[1][1], cert.subjectAltName[1][2],
             cert.subjectAltName[2][1], cert.subjectAltName[2][2])
      record("dates", cert.notBefore:match("GMT$"), cert.notAfter:match("GMT$"), cert.version)
      record("der", client:getpeercert(true):byte(1) == 0x30)
      record("server got no client certificate", server:getpeercert())
      record("tostring", tostring(client):match("^SSLSocket %(fd=%d+, client, TLSv1.3%)$") ~= nil)
      record("fileno", math.type(client:fileno()), client:getpeername().port == server:getsockname().port)
      client:close()
      record("closed", client:closed(), tostring(client))
    end)
    assert.are.same({ "versions TLSv1.3 TLSv1.3", "cipher string TLSv1.3 true",
                      "sni seen by the server localhost localhost", "sides false true", "sent 5",
                      "echo sent 1", "got HELLO!", "subject localhost commonName localhost curio test CA",
                      "alt names DNS localhost IP Address 127.0.0.1", "dates GMT GMT 3", "der true",
                      "server got no client certificate nil", "tostring true", "fileno integer true",
                      "closed true SSLSocket (closed)" }, trace)
  end)

  it("speaks TLS 1.2 when that is the most one side allows", function()
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      server_ctx.maximum_version = "TLSv1.2"
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      assert.are.same({ "TLSv1.2", "TLSv1.2" }, { client:version(), server:version() })
      client:sendall("over 1.2")
      assert.are.equal("over 1.2", server:recv(100))
    end)
  end)

  it("fails verification with the reason: unknown CA, expired, another name", function()
    local results = {}
    curio.run(function()
      for _, case in ipairs({ { "unknown" }, { "expired" }, { "other" }, { "server", "127.0.0.2" } }) do
        local server_ctx, client_ctx = tlsnet.contexts(certs, case[1])
        local err = util.catch(tlsnet.pair, server_ctx, client_ctx, { server_hostname = case[2] or "localhost" })
        assert.is_true(ssl.SSLCertVerificationError:matches(err), tostring(err))
        assert.is_true(ssl.SSLError:matches(err))
        results[#results + 1] = err.verify_message
        assert.are.equal("do_handshake: certificate verify failed: " .. err.verify_message .. " (socket closed)",
                         err.message)
        assert.are.equal("certificate verify failed", err.reason)
        local server_err = tlsnet.last_server[2] -- the server saw the client's alert
        assert.is_true(ssl.SSLError:matches(server_err), tostring(server_err))
      end
    end)
    assert.are.same({ "unable to get local issuer certificate", "certificate has expired",
                      "Hostname mismatch, certificate is not valid for 'localhost'",
                      "IP address mismatch, certificate is not valid for '127.0.0.2'" }, results)
  end)

  it("connects without verification when the context says so", function()
    curio.run(function()
      local server_ctx = tlsnet.contexts(certs, "unknown")
      local client_ctx = ssl.create_default_context()
      client_ctx.check_hostname = false
      client_ctx.verify_mode = "none"
      local client, server = tlsnet.pair(server_ctx, client_ctx, {})
      local _ <close> = tlsnet.closing(client, server)
      assert.are.same({}, client:getpeercert()) -- not verified: nothing to trust
      assert.is_string(client:getpeercert(true))
      server:sendall("unverified")
      assert.are.equal("unverified", client:recv(100))
    end)
  end)

  it("gives \"\" after close_notify, SSLEOFError after an abrupt close", function()
    local trace = util.traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client)
      server:sendall("last words")
      server:close() -- sends close_notify
      record("read", client:recv(100))
      record("then", client:recv(100) == "", client:recv(100) == "")
      -- the same through a relay that is cut (no close_notify)
      local listener, port = tlsnet.listener()
      local relay_port, relay = tlsnet.relay(port)
      local accepted = curio.spawn(function()
        local c = listener:accept()
        listener:close()
        return server_ctx:wrap_socket(c, { server_side = true })
      end)
      local tls = client_ctx:wrap_socket(curio.open_connection("127.0.0.1", relay_port), { server_hostname = "localhost" })
      local far <close> = accepted:join()
      far:sendall("before the cut")
      record("read", tls:recv(100))
      local reader = curio.spawn(function() return util.catch(tls.recv, tls, 100) end)
      curio.sleep(0)
      relay.cut()
      local err = reader:join()
      record("abrupt", ssl.SSLEOFError:matches(err), err.message)
      record("closed after", tls:closed())
      relay.task:join()
    end)
    assert.are.same({ "read last words", "then true true", "read before the cut",
                      "abrupt true recv: EOF in violation of protocol (the peer closed without close_notify) (socket closed)",
                      "closed after true" }, trace)
  end)

  it("lets one reader and one writer at a time, as plain sockets", function()
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      local reader = curio.spawn(client.recv, client, 10)
      curio.sleep(0)
      local err = util.catch(client.recv, client, 10)
      assert.is_true(curio.ReadResourceBusy:matches(err))
      assert.are.equal("recv: another task is already reading from this socket", err.message)
      assert.is_true(curio.ReadResourceBusy:matches(util.catch(client.do_handshake, client)))
      client:sendall("a writer may write meanwhile")
      assert.are.equal("a writer may write meanwhile", server:recv(100))
      server:sendall("x")
      assert.are.equal("x", reader:join())
      -- a writer stuck on a full connection holds the write side
      client:setsockopt("SO_SNDBUF", 4096)
      local big = string.rep("w", 4 * 1024 * 1024)
      local writer = curio.spawn(client.sendall, client, big)
      curio.sleep(0.01)
      err = util.catch(client.sendall, client, "y")
      assert.is_true(curio.WriteResourceBusy:matches(err))
      local got = 0
      while got < #big do got = got + #server:recv(1 << 20) end
      writer:join()
      assert.are.equal(#big, got)
    end)
  end)

  it("raises outside a task and on a closed socket", function()
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(server)
      client:close()
      client:close() -- again: nothing
      for _, call in ipairs({ { "recv", 1 }, { "send", "x" }, { "sendall", "x" }, { "do_handshake" },
                              { "getpeername" }, { "fileno" }, { "getpeercert" }, { "as_stream" } }) do
        local err = util.catch(client[call[1]], client, call[2])
        assert.are.same({ "EBADF", call[1] .. ": socket is closed" }, { err.code, err.message })
      end
    end)
    local server_ctx = ssl.create_default_context("server")
    local plain = curio.socket()
    local tls <close> = server_ctx:wrap_socket(plain, { server_side = true, do_handshake_on_connect = false })
    assert.is_true(plain:closed()) -- its descriptor went to tls
    local err = util.catch(tls.recv, tls, 10)
    assert.matches("recv: not inside a curio task", err.message)
  end)

  it("echoes 10 MiB each way byte for byte, in random chunk sizes", function()
    local size = 10 * 1024 * 1024
    local up, down = tlsnet.bytes(size, 7), tlsnet.bytes(size, 11)
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local client, server = tlsnet.pair(server_ctx, client_ctx)
      local _ <close> = tlsnet.closing(client, server)
      local function send_chunks(sock, data, seed)
        local rng, at = seed, 1
        while at <= #data do
          rng = (rng * 48271) % 2147483647
          local n = rng % 100000 + 1
          sock:sendall(data:sub(at, at + n - 1))
          at = at + n
        end
      end
      local function receive(sock, n, seed)
        local parts, got, rng = {}, 0, seed
        while got < n do
          rng = (rng * 48271) % 2147483647
          local data = sock:recv(rng % 70000 + 1)
          assert(data ~= "", "early end")
          parts[#parts + 1] = data
          got = got + #data
        end
        return table.concat(parts)
      end
      local tasks = {
        curio.spawn(send_chunks, client, up, 3),
        curio.spawn(send_chunks, server, down, 5),
        curio.spawn(receive, server, size, 9),
        curio.spawn(receive, client, size, 13),
      }
      tasks[1]:join()
      tasks[2]:join()
      assert.is_true(tasks[3]:join() == up, "client to server bytes differ")
      assert.is_true(tasks[4]:join() == down, "server to client bytes differ")
    end)
  end)

  -- OpenSSL's loading (its relocations) doubled every script's start-up:
  -- curio.ssl's C part (curio.tls) is a module of its own, loaded on
  -- first use, in lua5.4 as in the program.
  it("loads OpenSSL only when curio.ssl is first used", function()
    local code = [[
      local function openssl()
        local f = assert(io.open("/proc/self/maps"))
        local maps = f:read("a")
        f:close()
        return maps:find("libssl", 1, true) ~= nil
      end
      local curio = require "curio"
      curio.run(function() curio.sleep(0) end)
      local before = openssl()
      local ctx = curio.ssl.create_default_context("server")
      print(before, openssl(), ctx.purpose, require("curio.ssl") == curio.ssl)
    ]]
    local status, stdout, stderr = util.lua_code(code, 20)
    assert.are.same({ 0, "false\ttrue\tserver\ttrue\n" }, { status, stdout }, stderr)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(code)
    f:close()
    -- the program loads curio.tls from tls.so too (core/main.c)
    status, stdout, stderr = util.sh("timeout -s KILL 20 " .. util.bin .. " " .. path)
    os.remove(path)
    assert.are.same({ 0, "false\ttrue\tserver\ttrue\n" }, { status, stdout }, stderr)
  end)
end)
