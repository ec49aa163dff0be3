local curio = require "curio"
local util = require "support.util"
local tlsnet = require "support.tlsnet"
local net = require "support.net"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- TLS through the network calls: open_connection's ssl options and the
-- servers' (lua/curio/network.lua rule 5), streams over TLS.

local ssl = curio.ssl
local certs

-- Runs fn(wrote) with io.stderr replaced; returns what was written to it.
-- wrote() waits (in a task) until something was.
local function stderr_of(fn)
  local written, real, event = {}, io.stderr, nil
  io.stderr = { write = function(_, ...) -- luacheck: ignore 122
    for _, s in ipairs({ ... }) do written[#written + 1] = s end
    if event then event:set() end
  end }
  local function wrote()
    event = event or curio.Event()
    if #written == 0 then curio.timeout_after(10, event.wait, event) end
  end
  local ok, err = pcall(fn, wrote)
  io.stderr = real -- luacheck: ignore 122
  if not ok then error(err, 0) end
  return table.concat(written)
end

-- Serves handler over TLS on 127.0.0.1 (run_server); returns the server
-- task and the port.
local function serve(ctx, handler)
  local sock, port = net.listener()
  return curio.spawn(curio.run_server, sock, handler, { ssl = ctx }), port
end

local function echo_lines(client)
  local stream = client:as_stream()
  for line in stream:lines() do stream:write(line:upper()) end
end

describe("TLS servers and connections", function()
  setup(function() certs = require("support.certs").make() end)
  teardown(function() certs.remove() end)

  it("open_connection and run_server speak TLS; handlers get sockets whose handshake is done", function()
    local trace = util.traced(function(record)
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      server_ctx:set_alpn_protocols({ "h2", "http/1.1" })
      local server, port = serve(server_ctx, function(client)
        record("handler", client:version() ~= nil, client.server_side, client.server_hostname,
               client:selected_alpn_protocol())
        echo_lines(client)
      end)
      local conn <close> = curio.open_connection("localhost", port,
        { ssl = client_ctx, alpn_protocols = { "spdy/1", "http/1.1" } })
      record("client", conn.server_hostname, conn:selected_alpn_protocol(), conn:getpeercert().subject.commonName)
      local stream = conn:as_stream()
      stream:write("one\ntwo\n")
      record(stream:readline(), stream:readline())
      stream:write("three\n")
      record(stream:read_exactly(6))
      conn:close()
      net.stop(server)
    end)
    assert.are.same({ "client localhost http/1.1 localhost", "handler true true localhost http/1.1",
                      "ONE\n TWO\n", "THREE\n" }, trace)
  end)

  it("verifies the address given when no server_hostname is", function()
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local server, port = serve(server_ctx, echo_lines)
      local conn <close> = curio.open_connection("127.0.0.1", port, { ssl = client_ctx })
      assert.is_nil(conn:selected_alpn_protocol())
      local err
      stderr_of(function()
        err = util.catch(curio.open_connection, "127.0.0.1", port, { ssl = client_ctx, server_hostname = "other.example" })
      end)
      assert.are.equal("Hostname mismatch, certificate is not valid for 'other.example'", err.verify_message)
      net.stop(server)
    end)
  end)

  it("ssl = true verifies against the system's CA store, which does not know the test CA", function()
    local output = stderr_of(function(wrote)
      curio.run(function()
        local server_ctx = tlsnet.contexts(certs)
        local server, port = serve(server_ctx, echo_lines)
        local err = util.catch(curio.open_connection, "localhost", port, { ssl = true })
        assert.is_true(ssl.SSLCertVerificationError:matches(err))
        assert.are.equal("unable to get local issuer certificate", err.verify_message)
        wrote()
        net.stop(server)
      end)
    end)
    assert.matches("^curio: TLS handshake with 127.0.0.1:%d+ failed: SSLError: do_handshake: [^\n]*\n$", output)
  end)

  it("reports a failed handshake once; the handler never sees it and the server goes on", function()
    local calls = 0
    local output = stderr_of(function()
      curio.run(function()
        local server_ctx, client_ctx = tlsnet.contexts(certs)
        local server, port = serve(server_ctx, function(client)
          calls = calls + 1
          echo_lines(client)
        end)
        local plain <close> = curio.open_connection("127.0.0.1", port) -- speaks no TLS
        plain:sendall("GET / HTTP/1.0\r\n\r\n")
        pcall(net.recv_upto, plain, 1000) -- (an end or a reset)
        local conn <close> = curio.open_connection("localhost", port, { ssl = client_ctx })
        conn:sendall("still there\n")
        assert.are.equal("STILL THERE\n", conn:as_stream():readline())
        net.stop(server)
      end)
    end)
    assert.are.equal(1, calls)
    local lines = util.lines(output)
    assert.are.equal(1, #lines)
    assert.matches("^curio: TLS handshake with 127.0.0.1:%d+ failed: SSLError: do_handshake: ", lines[1])
    assert.matches("%(socket closed%)$", lines[1])
  end)

  -- An abrupt close (no close_notify) is the peer's doing as a reset is:
  -- one line, no traceback (it had a traceback, as a handler's own bug).
  it("reports a peer that closes without close_notify in one line, as a reset", function()
    local output = stderr_of(function(wrote)
      curio.run(function()
        local server_ctx, client_ctx = tlsnet.contexts(certs)
        local server, port = serve(server_ctx, echo_lines)
        local relay_port, relay = tlsnet.relay(port)
        local conn <close> = curio.open_connection("127.0.0.1", relay_port,
          { ssl = client_ctx, server_hostname = "localhost" })
        conn:sendall("one\n")
        assert.are.equal("ONE\n", conn:as_stream():readline())
        relay.cut() -- the handler waits in its next read
        wrote()
        relay.task:join()
        net.stop(server)
      end)
    end)
    local lines = util.lines(output)
    assert.are.equal(1, #lines, output)
    assert.matches("^curio: server handler for 127.0.0.1:%d+: connection closed by the peer "
                   .. "%(SSLEOFError: [^\n]*without close_notify[^\n]*%)$", lines[1])
  end)

  it("drops a client that does not finish its handshake within ssl_handshake_timeout", function()
    local calls, trace = 0, {}
    local output = stderr_of(function(wrote)
      curio.run(function()
        local server_ctx, client_ctx = tlsnet.contexts(certs)
        local sock, port = net.listener()
        local server = curio.spawn(curio.run_server, sock, function(client)
          calls = calls + 1
          echo_lines(client)
        end, { ssl = server_ctx, ssl_handshake_timeout = 0.05 })
        -- a client that connects and says nothing, and one that stops
        -- half way (its ClientHello, then nothing)
        local silent <close> = curio.open_connection("127.0.0.1", port)
        local stalled <close> = curio.open_connection("127.0.0.1", port)
        stalled:sendall("\22\3\1\0\128\1\0\0\124\3\3") -- (a record of 128 bytes, 10 of them sent)
        trace[#trace + 1] = curio.timeout_after(10, silent.recv, silent, 100) -- the server closes it
        wrote()
        local conn <close> = curio.open_connection("localhost", port, { ssl = client_ctx })
        conn:sendall("still serving\n")
        trace[#trace + 1] = conn:as_stream():readline()
        net.stop(server)
      end)
    end)
    assert.are.same({ "", "STILL SERVING\n" }, trace)
    assert.are.equal(1, calls)
    local lines = util.lines(output)
    assert.is_true(#lines >= 1 and #lines <= 2, output)
    for _, line in ipairs(lines) do
      assert.matches("^curio: TLS handshake with 127.0.0.1:%d+ failed: not finished within 0.05 s "
                     .. "%(opts.ssl_handshake_timeout%)$", line)
    end
  end)

  it("serves a hundred clients at once", function()
    local results = {}
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local server, port = serve(server_ctx, echo_lines)
      local clients = {}
      for i = 1, 100 do
        clients[i] = curio.spawn(function()
          local conn <close> = curio.open_connection("localhost", port, { ssl = client_ctx })
          local stream = conn:as_stream()
          stream:write(("client %d\n"):format(i))
          return stream:readline()
        end)
      end
      for i, t in ipairs(clients) do results[i] = t:join() end
      net.stop(server)
    end)
    for i = 1, 100 do assert.are.equal(("CLIENT %d\n"):format(i), results[i]) end
  end)

  it("serves TLS on a unix socket", function()
    local path = os.tmpname()
    os.remove(path)
    curio.run(function()
      local server_ctx, client_ctx = tlsnet.contexts(certs)
      local listener = curio.socket("unix")
      listener:bind(path)
      listener:listen()
      local server = curio.spawn(curio.run_server, listener, echo_lines, { ssl = server_ctx })
      local plain = curio.open_unix_connection(path)
      local conn <close> = client_ctx:wrap_socket(plain, { server_hostname = "localhost" })
      conn:sendall("over unix\n")
      assert.are.equal("OVER UNIX\n", conn:as_stream():readline())
      net.stop(server)
    end)
    os.remove(path)
  end)

  it("refuses bad TLS options with the function and argument named", function()
    local client_ctx = ssl.create_default_context()
    local function message(fn, ...)
      local ok, err = pcall(curio.run, fn, ...)
      assert.is_false(ok)
      return (tostring(err):gsub("^[^:]*:%d+: ", ""))
    end
    assert.are.equal("bad argument #3 to 'open_connection' (opts.ssl must be true or an SSLContext)",
                     message(curio.open_connection, "localhost", 1, { ssl = "yes" }))
    assert.are.equal("bad argument #3 to 'open_connection' (opts.server_hostname and opts.alpn_protocols need opts.ssl)",
                     message(curio.open_connection, "localhost", 1, { server_hostname = "x" }))
    assert.are.equal("bad argument #3 to 'open_connection' (opts.alpn_protocols[1] must be a string of 1 to 255 bytes)",
                     message(curio.open_connection, "localhost", 1, { ssl = true, alpn_protocols = { 2 } }))
    assert.are.equal([[bad argument #4 to 'tcp_server' (opts.ssl must be a server's SSLContext (create_default_context("server")))]],
                     message(curio.tcp_server, "127.0.0.1", 0, print, { ssl = client_ctx }))
    local listener = curio.tcp_server_socket("127.0.0.1", 0)
    assert.are.equal("bad argument #4 to 'tcp_server' (opts.ssl_handshake_timeout must be a positive number "
                     .. "of seconds, got 0)",
                     message(curio.tcp_server, "127.0.0.1", 0, print, { ssl_handshake_timeout = 0 }))
    assert.are.equal("bad argument #3 to 'run_server' (opts.ssl_handshake_timeout needs opts.ssl)",
                     message(curio.run_server, listener, print, { ssl_handshake_timeout = 5 }))
    listener:close()
    assert.are.equal("bad argument #3 to 'unix_server' (unknown option 'tls')",
                     message(curio.unix_server, "/nonexistent/x", print, { tls = true }))
  end)
end)
