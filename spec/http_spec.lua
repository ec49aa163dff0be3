-- examples/http_server.lua as a user runs it: a child process on 127.0.0.1,
-- spoken to with curl and with raw sockets from curio clients.
local util = require "support.util"
local curio = require "curio"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local LIMIT = 10 -- seconds any one exchange may take before the spec fails

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function alive(pid)
  return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == true
end

-- Stops the server by its PID; returns what it wrote on stderr after its
-- startup line (read to the end, which comes when the server is gone).
local function stop(server)
  if not server.stopped then
    server.stopped = true
    os.execute(("kill %d 2>/dev/null"):format(server.pid))
    server.rest = server.pipe:read("a")
    server.pipe:close()
  end
  return server.rest
end

-- Runs fn(stream, sock) in a kernel over a fresh connection to the server,
-- failing after LIMIT seconds; returns fn's results.
local function with_connection(port, fn)
  return curio.run(function()
    return curio.timeout_after(LIMIT, function()
      local sock = curio.open_connection("127.0.0.1", port)
      local stream = sock:as_stream()
      local results = table.pack(pcall(fn, stream, sock))
      stream:close()
      if not results[1] then error(results[2], 0) end
      return table.unpack(results, 2, results.n)
    end)
  end)
end

-- The status line and headers of one response: {status=, headers= (lower-
-- case names)}; nil when the server closed the connection first.
local function read_head(stream)
  local line = stream:readline(8192)
  if line == "" then return nil end
  local status = tonumber(line:match("^HTTP/1%.1 (%d%d%d) .*\r\n$"))
  assert(status, "bad status line: " .. line)
  local headers = {}
  while true do
    line = stream:readline(8192)
    if line == "\r\n" then break end
    local name, value = line:match("^([^:]+):%s*(.-)\r\n$")
    assert(name, "bad header line: " .. line)
    headers[name:lower()] = value
  end
  return { status = status, headers = headers }
end

-- One response from stream: {status=, headers=, body=}; nil when the
-- server closed the connection first.
local function read_response(stream)
  local r = read_head(stream)
  if r == nil then return nil end
  local length = assert(tonumber(r.headers["content-length"]), "no Content-Length")
  r.body = stream:read_exactly(length)
  return r
end

local function exchange(stream, text)
  stream:write(text)
  return read_response(stream)
end

local GET = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
local HELLO = "Hello, world!\n"

local function post(body, extra)
  return ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n%s\r\n%s"):format(#body, extra or "", body)
end

-- Binary bytes of every value, n of them.
local function binary(n)
  local bytes = {}
  for i = 1, n do bytes[i] = string.char((i * 7 + i // 256) % 256) end
  return table.concat(bytes)
end

-- Starts examples/http_server.lua on a port the system picks and reads the
-- line it writes on stdout once it listens ("http server listening on
-- 127.0.0.1:<port>") through a pipe: no free-port guess, no polling; the
-- rest of its output (stderr too) stays in that pipe until stop. `timeout` bounds its
-- life should this spec die without stopping it. Returns {pid, port,
-- pipe, startup}.
local function start_server()
  local pipe = assert(io.popen(("echo $$; exec env %s timeout 900 %s examples/http_server.lua 127.0.0.1 0 2>&1")
    :format(util.env, util.lua)))
  local server = { pipe = pipe, pid = tonumber(pipe:read("l")), startup = pipe:read("L") }
  server.port = tonumber((server.startup or ""):match("^http server listening on 127%.0%.0%.1:(%d+)\n$"))
  if not server.port then
    error("examples/http_server.lua did not start: " .. tostring(server.startup) .. stop(server))
  end
  return server
end

-- curl, installed with apt when missing and possible; nil if unavailable.
local function find_curl()
  if util.sh("command -v curl") == 0 then return "curl" end
  util.sh("[ \"$(id -u)\" = 0 ] && command -v apt-get && timeout 300 apt-get install -y -qq curl")
  if util.sh("command -v curl") == 0 then return "curl" end
  return nil
end

describe("examples/http_server.lua", function()
  local server, port, curl, base

  setup(function()
    server = start_server()
    port = server.port
    base = ("http://127.0.0.1:%d"):format(port)
    curl = find_curl()
  end)

  teardown(function()
    if server then stop(server) end
  end)


  describe("with curl", function()
    local function need_curl()
      if not curl then pending("curl is not installed and could not be installed") end
    end

    -- curl's stdout and stderr.
    local function run_curl(args)
      need_curl()
      -- (without the sanitizer build's LD_PRELOAD: curl hangs under it)
      local status, stdout, stderr = util.sh(("env -u LD_PRELOAD timeout %d curl -sS --max-time %d %s")
                                               :format(LIMIT + 5, LIMIT, args))
      assert.are.equal(0, status, stderr)
      return stdout, stderr
    end

    it("GET / gives 200 and the body", function()
      local out = run_curl("-w '\\n%{http_code} %{content_type}' " .. base .. "/")
      assert.are.equal(HELLO .. "\n200 text/plain", out)
    end)

    it("reuses one keep-alive connection for two requests", function()
      local out, err = run_curl("-v " .. base .. "/ " .. base .. "/")
      assert.are.equal(HELLO .. HELLO, out)
      assert.truthy(err:find("Re%-using existing connection"), err)
    end)

    it("POST /echo sends back a binary body byte for byte, also 100 KiB", function()
      need_curl()
      local temporary = {}
      finally(function() for _, path in ipairs(temporary) do os.remove(path) end end)
      for _, size in ipairs({ 256, 100 * 1024 }) do
        local data, input, output = binary(size), os.tmpname(), os.tmpname()
        table.insert(temporary, input)
        table.insert(temporary, output)
        local f = assert(io.open(input, "wb"))
        f:write(data)
        f:close()
        local out = run_curl(("--data-binary @%s -o %s -w '%%{http_code}' %s/echo")
          :format(shell_quote(input), shell_quote(output), base))
        f = assert(io.open(output, "rb"))
        local echoed = f:read("a")
        f:close()
        assert.are.equal("200", out)
        assert.are.equal(#data, #echoed)
        assert.is_true(data == echoed, "echoed body differs")
      end
    end)

    it("answers a 2 MiB body with 413, sent or held back (Expect: 100-continue)", function()
      need_curl()
      local input = os.tmpname()
      finally(function() os.remove(input) end)
      local f = assert(io.open(input, "wb"))
      f:write(("z"):rep(2 * 1024 * 1024))
      f:close()
      local results = {}
      for _, expect in ipairs({ "-H 'Expect:'", "" }) do
        results[#results + 1] = run_curl(("%s --data-binary @%s -w ' %%{http_code}' %s/echo")
          :format(expect, shell_quote(input), base))
      end
      assert.are.same({ "Content Too Large\n 413", "Content Too Large\n 413" }, results)
    end)

    it("HEAD / (curl -I) gives the headers of GET /, Content-Length included, and no body", function()
      local out = run_curl("-I " .. base .. "/")
      local lines = util.lines(out:gsub("\r", ""))
      table.sort(lines)
      assert.are.same({ "Connection: keep-alive", "Content-Length: " .. #HELLO, "Content-Type: text/plain",
                        "HTTP/1.1 200 OK" }, lines)
    end)

    it("gives 404 for an unknown path and 405 for another method", function()
      local out = run_curl(("-w '%%{http_code}' -o /dev/null %s/nowhere"):format(base))
      assert.are.equal("404", out)
      out = run_curl(("-X DELETE -w '%%{http_code}' -o /dev/null %s/"):format(base))
      assert.are.equal("405", out)
    end)
  end)

  describe("with curio clients", function()
    it("GET / gives 200, text/plain and the exact body", function()
      local r = with_connection(port, function(s) return exchange(s, GET) end)
      assert.are.same({ status = 200, body = HELLO, type = "text/plain", connection = "keep-alive" },
        { status = r.status, body = r.body, type = r.headers["content-type"],
          connection = r.headers["connection"] })
    end)

    it("answers two requests on one connection, also sent in one write", function()
      local r1, r2, r3, r4 = with_connection(port, function(s)
        local a, b = exchange(s, GET), exchange(s, post("second"))
        s:write(GET .. post("fourth"))
        return a, b, read_response(s), read_response(s)
      end)
      assert.are.same({ HELLO, "second", HELLO, "fourth" }, { r1.body, r2.body, r3.body, r4.body })
    end)

    it("POST /echo echoes a 100 KiB binary body byte for byte", function()
      local data = binary(100 * 1024)
      local r = with_connection(port, function(s) return exchange(s, post(data)) end)
      assert.are.equal(200, r.status)
      assert.is_true(r.body == data, "echoed body differs")
    end)

    it("reads a request sent in 1-byte writes", function()
      local r1, r2 = with_connection(port, function(s, sock)
        local function dribble(text)
          for i = 1, #text do
            sock:sendall(text:sub(i, i))
            curio.sleep(0.0005)
          end
          return read_response(s)
        end
        return dribble(GET), dribble(post("a\r\nb\n"))
      end)
      assert.are.same({ 200, HELLO, 200, "a\r\nb\n" }, { r1.status, r1.body, r2.status, r2.body })
    end)

    it("takes header names in any case and bare \\n line ends", function()
      local r1, r2 = with_connection(port, function(s)
        return exchange(s, "POST /echo HTTP/1.1\nhOsT: x\nCONTENT-length: 3\n\nabc"),
          exchange(s, "GET /?q=1 HTTP/1.1\r\nCONNECTION: Close\r\n\r\n")
      end)
      assert.are.same({ "abc", HELLO, "close" }, { r1.body, r2.body, r2.headers["connection"] })
    end)

    -- The response to text, then what the server sends after it ("" when
    -- it closed the connection).
    local function then_closed(text)
      return with_connection(port, function(s)
        local r = exchange(s, text)
        return r, curio.timeout_after(2, s.read, s, 100)
      end)
    end

    for _, case in ipairs({
      { "a bad request line", "GET /\r\n\r\n", 400 },
      { "an unknown protocol", "GET / SPDY/3\r\n\r\n", 400 },
      { "a bad header line", "GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400 },
      { "a negative Content-Length", "POST /echo HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400 },
      { "a non-numeric Content-Length", "POST /echo HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400 },
      { "a body over 1 MiB", "POST /echo HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", 413 },
      { "a huge Content-Length", "POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", 413 },
      { "a header line over 8 KiB", "GET / HTTP/1.1\r\nX: " .. ("y"):rep(9000) .. "\r\n\r\n", 431 },
      { "a request line over 8 KiB", "GET /" .. ("y"):rep(9000) .. " HTTP/1.1\r\n\r\n", 400 },
      { "a chunked body", "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501 },
    }) do
      it("answers " .. case[1] .. " with " .. case[3] .. " and closes", function()
        local r, after = then_closed(case[2])
        assert.are.same({ case[3], "close", "" }, { r.status, r.headers["connection"], after })
      end)
    end

    it("answers a body over 1 MiB with 413 even while the client goes on sending it", function()
      local r, after, sent = with_connection(port, function(s, sock)
        local writer = curio.spawn(function()
          sock:sendall(post(("z"):rep(2 * 1024 * 1024)))
          sock:shutdown("w")
          return true
        end)
        local response = read_response(s)
        return response, s:read(100), writer:join()
      end)
      assert.are.same({ 413, "close", "", true }, { r.status, r.headers["connection"], after, sent })
    end)

    it("gives 404 for an unknown path and 405 for another method, keeping the connection", function()
      local r1, r2, r3 = with_connection(port, function(s)
        return exchange(s, "GET /nowhere HTTP/1.1\r\n\r\n"),
          exchange(s, "PUT / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"), exchange(s, GET)
      end)
      assert.are.same({ 404, 405, "GET, HEAD", 200 }, { r1.status, r2.status, r2.headers["allow"], r3.status })
    end)

    it("answers HEAD with the headers of GET and never a body, whatever the status", function()
      local replies = with_connection(port, function(s)
        local got = {}
        for _, path in ipairs({ "/", "/?q=1", "/nowhere", "/echo" }) do
          s:write(("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n"):format(path))
          local r = read_head(s)
          got[#got + 1] = ("%d %s %s"):format(r.status, r.headers["content-length"], r.headers["allow"] or "-")
        end
        -- a body after any of them would be read here instead of this reply
        local r = exchange(s, GET)
        got[#got + 1] = ("%d %s"):format(r.status, r.body)
        return got
      end)
      assert.are.same({ "200 14 -", "200 14 -", "404 10 -", "405 19 POST", "200 " .. HELLO }, replies)
    end)

    it("sends no body with the error reply to a bad HEAD request, and closes", function()
      local r, after = with_connection(port, function(s)
        s:write("HEAD / HTTP/1.1\r\nno colon here\r\n\r\n")
        return read_head(s), curio.timeout_after(2, s.read, s, 100)
      end)
      assert.are.same({ 400, "12", "close", "" },
                      { r.status, r.headers["content-length"], r.headers["connection"], after })
    end)

    it("allows GET and HEAD on /", function()
      local r = with_connection(port, function(s)
        return exchange(s, "PUT / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
      end)
      assert.are.same({ 405, "GET, HEAD" }, { r.status, r.headers["allow"] })
    end)

    it("closes the connection after Connection: close", function()
      local r, after = then_closed("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
      assert.are.same({ 200, HELLO, "close", "" }, { r.status, r.body, r.headers["connection"], after })
    end)

    it("closes an HTTP/1.0 connection unless it asks for keep-alive", function()
      local r, after = then_closed("GET / HTTP/1.0\r\n\r\n")
      assert.are.same({ 200, HELLO, "close", "" }, { r.status, r.body, r.headers["connection"], after })
      local r1, r2 = with_connection(port, function(s)
        return exchange(s, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), exchange(s, GET)
      end)
      assert.are.same({ "keep-alive", HELLO }, { r1.headers["connection"], r2.body })
    end)

    it("serves 50 concurrent clients, each making 20 keep-alive requests", function()
      local clients, requests = 50, 20
      local good = curio.run(function()
        return curio.timeout_after(LIMIT, function()
          local tasks = {}
          for c = 1, clients do
            tasks[c] = curio.spawn(function()
              local sock <close> = curio.open_connection("127.0.0.1", port)
              local s, ok = sock:as_stream(), 0
              for i = 1, requests do
                local body = ("client %d request %d"):format(c, i)
                local r = i % 2 == 0 and exchange(s, GET) or exchange(s, post(body))
                if r.status == 200 and r.body == (i % 2 == 0 and HELLO or body) then ok = ok + 1 end
              end
              return ok
            end)
          end
          local total = 0
          for _, t in ipairs(tasks) do total = total + t:join() end
          return total
        end)
      end)
      assert.are.equal(clients * requests, good)
    end)
  end)

  it("is still running after all that, having printed only its startup line", function()
    assert.is_true(alive(server.pid))
    assert.are.equal(("http server listening on 127.0.0.1:%d\n"):format(port), server.startup)
    assert.are.equal("", stop(server))
  end)
end)
