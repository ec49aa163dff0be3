local curio = require "curio"
local util = require "support.util"
local tlsnet = require "support.tlsnet"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.ssl against other TLS implementations: the client against
-- `openssl s_server`, the server against `openssl s_client` and curl (the
-- HTTPS example with keep-alive); renegotiation and key updates. Each
-- peer is a child; the specs wait on what it prints (its ACCEPT line) and
-- on its end, never on the clock.

local sub = curio.subprocess
local certs
local peer_line

-- Starts `openssl s_server` with the extra arguments (its stdout made
-- line-buffered, so that each line it prints is an event); returns a peer
-- {proc, port, lines, more} once it listens. It serves one connection.
local function start_peer(command)
  table.insert(command, 1, "stdbuf")
  table.insert(command, 2, "-oL")
  local p = sub.Popen(command, { stdin = sub.PIPE, stdout = sub.PIPE, stderr = sub.STDOUT })
  local peer = { proc = p }
  peer.reader = util.collect_lines(p.stdout, peer)
  return peer
end

local function s_server(args)
  local command = { "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1" }
  for _, a in ipairs(args) do command[#command + 1] = a end
  local peer = start_peer(command)
  peer.port = tonumber(peer_line(peer, "^ACCEPT [%d.]+:(%d+)"))
  return peer, peer.port
end

-- Waits (bounded) until the peer prints a line matching pattern; returns
-- the match.
peer_line = function(peer, pattern)
  local seen = 1
  return curio.timeout_after(10, function()
    while true do
      for i = seen, #peer.lines do
        local found = peer.lines[i]:match(pattern)
        if found then return found end
      end
      seen = #peer.lines + 1
      assert(not peer.eof, "the peer ended without printing " .. pattern)
      peer.more:wait()
    end
  end)
end

-- Ends a peer (its stdin closed, waited for, bounded); returns its output.
local function finish(peer)
  local p = peer.proc or peer
  p.stdin:close()
  if peer.reader then
    curio.timeout_after(10, p.wait, p)
    peer.reader:join()
    p.stdout:close()
    return table.concat(peer.lines)
  end
  local out = curio.timeout_after(10, p.communicate, p)
  return out or ""
end

local function has(text, line)
  return text:find(line, 1, true) ~= nil
end

describe("curio.ssl against other implementations", function()
  setup(function() certs = require("support.certs").make() end)
  teardown(function() certs.remove() end)

  for _, version in ipairs({ "TLSv1.2", "TLSv1.3" }) do
    it("the client talks to openssl s_server over " .. version .. ": ALPN, SNI, both ways", function()
      local got, output
      curio.run(function()
        -- the certificate for localhost only when the client's SNI asks for it
        local peer, port = s_server({ "-cert", certs.other_cert, "-key", certs.other_key,
                                   "-servername", "localhost", "-cert2", certs.server_cert,
                                   "-key2", certs.server_key, version == "TLSv1.2" and "-tls1_2" or "-tls1_3" })
        local _, ctx = tlsnet.contexts(certs)
        local conn = curio.open_connection("localhost", port, { ssl = ctx })
        got = { conn:version(), conn:getpeercert().subject.commonName }
        conn:sendall("hello s_server\n")
        peer.proc.stdin:write("hello curio\n")
        got[3] = conn:as_stream():readline()
        peer_line(peer, "^hello s_server") -- (before its stdin ends: it would quit at once)
        conn:close()
        output = finish(peer)
      end)
      assert.are.same({ version, "localhost", "hello curio\n" }, got)
      assert.is_true(has(output, 'Hostname in TLS extension: "localhost"'), output)
      assert.is_true(has(output, "hello s_server"), output)
    end)
  end

  it("the client agrees on ALPN with openssl s_server", function()
    local chosen, output
    curio.run(function()
      local peer, port = s_server({ "-cert", certs.server_cert, "-key", certs.server_key, "-alpn", "h2,http/1.1" })
      local _, ctx = tlsnet.contexts(certs)
      local conn = curio.open_connection("localhost", port, { ssl = ctx, alpn_protocols = { "http/1.1", "spdy/3" } })
      chosen = conn:selected_alpn_protocol()
      conn:close()
      output = finish(peer)
    end)
    assert.are.equal("http/1.1", chosen)
    assert.is_true(has(output, "ALPN protocols selected: http/1.1"), output)
  end)

  it("the client follows a TLS 1.2 renegotiation and a TLS 1.3 key update asked of it", function()
    local got, outputs = {}, {}
    curio.run(function()
      for _, case in ipairs({ { "-tls1_2", "r" }, { "-tls1_3", "K" } }) do
        local peer, port = s_server({ "-cert", certs.server_cert, "-key", certs.server_key, case[1] })
        local _, ctx = tlsnet.contexts(certs)
        local conn = curio.open_connection("localhost", port, { ssl = ctx })
        local stream = conn:as_stream()
        peer.proc.stdin:write("before\n")
        got[#got + 1] = stream:readline()
        -- while the client reads, s_server renegotiates (blocking until the
        -- client took part) or sends a KeyUpdate asking for one back; then
        -- (a line it reads with the command would be dropped) "after"
        local reader = curio.spawn(stream.readline, stream)
        peer.proc.stdin:write(case[2] .. "\n")
        peer_line(peer, "^SSL_do_handshake %-> 1")
        peer.proc.stdin:write("after\n")
        got[#got + 1] = reader:join()
        stream:write("client after " .. case[2] .. "\n") -- under the new keys
        peer_line(peer, "^client after")
        conn:close()
        outputs[#outputs + 1] = finish(peer)
      end
    end)
    assert.are.same({ "before\n", "after\n", "before\n", "after\n" }, got)
    assert.is_true(has(outputs[1], "SSL_do_handshake -> 1") and has(outputs[1], "client after r"), outputs[1])
    assert.is_true(has(outputs[2], "client after K"), outputs[2])
  end)

  for _, version in ipairs({ "-tls1_2", "-tls1_3" }) do
    it("the server talks to openssl s_client " .. version .. " (SNI and ALPN seen, key update asked)", function()
      local seen, output = {}, nil
      curio.run(function()
        local server_ctx = tlsnet.contexts(certs)
        server_ctx:set_alpn_protocols({ "http/1.1" })
        local listener, port = tlsnet.listener()
        local server = curio.spawn(curio.run_server, listener, function(tls)
          seen = { tls:version(), tls.server_hostname, tls:selected_alpn_protocol() }
          local stream = tls:as_stream()
          for line in stream:lines() do
            stream:write(line:upper())
            if line == "world\n" then return end -- the handler's end closes with close_notify
          end
        end, { ssl = server_ctx })
        local peer = start_peer({ "openssl", "s_client", "-connect", "127.0.0.1:" .. port, "-CAfile", certs.ca,
                                  "-servername", "localhost", "-alpn", "http/1.1", version })
        peer.proc.stdin:write("hello\n")
        peer_line(peer, "^HELLO")
        if version == "-tls1_3" then -- (a line read with the command would be dropped)
          peer.proc.stdin:write("K\n")
          peer_line(peer, "^KEYUPDATE")
        end
        peer.proc.stdin:write("world\n")
        peer_line(peer, "^WORLD") -- (its stdin's end would end it at once)
        output = finish(peer)
        curio.timeout_after(5, server.cancel, server)
      end)
      local expected = version == "-tls1_2" and "TLSv1.2" or "TLSv1.3"
      assert.are.same({ expected, "localhost", "http/1.1" }, seen)
      assert.is_true(has(output, "HELLO\nWORLD\n") or (has(output, "HELLO") and has(output, "WORLD")), output)
      assert.is_true(has(output, "Verify return code: 0 (ok)"), output)
      assert.is_true(has(output, "ALPN protocol: http/1.1"), output)
    end)
  end

  it("examples/https_server.lua serves curl with keep-alive; examples/https_get.lua fetches from it", function()
    local results = {}
    curio.run(function()
      local command = ("exec env %s %s examples/https_server.lua 127.0.0.1 0 %s %s"):format(
        util.env, util.lua, certs.server_cert, certs.server_key)
      local server = sub.Popen({ "sh", "-c", command }, { stdout = sub.PIPE, stderr = sub.PIPE })
      local first = curio.timeout_after(10, server.stdout.readline, server.stdout)
      local port = first:match("listening on 127%.0%.0%.1:(%d+)\n$")
      assert(port, first)
      local url = ("https://localhost:%s/"):format(port)
      local ok, err = pcall(function()
        -- (curl runs without the sanitizers make check preloads)
        local curl = sub.run({ "env", "-u", "LD_PRELOAD", "curl", "-sS", "-v", "--cacert", certs.ca, url,
                               "--next", "-sS", "-v", "--cacert", certs.ca, "-d", "posted", url .. "echo" },
                             { capture_output = true, timeout = 20 })
        results.curl = { curl.returncode, curl.stdout }
        results.reused = has(curl.stderr, "Re-using existing connection")
        results.alpn = has(curl.stderr, "ALPN: server accepted http/1.1")
        local get = sub.run({ "sh", "-c", ("exec env %s %s examples/https_get.lua %s %s"):format(
                               util.env, util.lua, url, certs.ca) }, { capture_output = true, timeout = 20 })
        results.get = { get.returncode, get.stdout, get.stderr:match("^[^\r\n]*") }
        local untrusted = sub.run({ "sh", "-c", ("exec env %s %s examples/https_get.lua %s"):format(
                                     util.env, util.lua, url) }, { capture_output = true, timeout = 20 })
        results.untrusted = { untrusted.returncode, has(untrusted.stderr, "unable to get local issuer certificate") }
      end)
      -- the server goes whatever happened above: a failure must not leave
      -- it running into the specs that count child processes
      server:terminate()
      curio.timeout_after(10, server.communicate, server)
      assert(ok, err)
    end)
    assert.are.same({ 0, "Hello, world!\nposted" }, results.curl)
    assert.is_true(results.reused)
    assert.is_true(results.alpn)
    assert.are.same({ 0, "Hello, world!\n", "HTTP/1.1 200 OK" }, results.get)
    assert.are.same({ 1, true }, results.untrusted)
  end)
end)
