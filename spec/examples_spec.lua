-- Every file in examples/ runs the same way under lua5.4 (with the
-- in-tree LUA_PATH/LUA_CPATH) and under the curio program, and prints what
-- it should: the scripts that end are compared line by line with
-- spec/support/examples.lua; the servers listen on a port the system
-- picks, say so on their first line, answer the client example (and a
-- request made here), and print their log when stopped with SIGINT. Each
-- run is bounded (a hang is a failure) and each child is waited for.
local curio = require "curio"
local util = require "support.util"
local examples = require "support.examples"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local sub = curio.subprocess
local LIMIT = 60 -- seconds one run of an example may take
local SIGINT = 2

local runners = {
  { name = "lua5.4", program = util.lua },
  { name = "curio", program = util.bin },
}

local function command(runner, script, args)
  return ("exec env %s %s examples/%s %s"):format(util.env, runner.program, script, args or "")
end

-- Runs an example to its end (bounded); returns status, stdout, stderr.
local function run(runner, script, args, input)
  local result = sub.run({ "sh", "-c", command(runner, script, args) },
                         { capture_output = true, timeout = LIMIT, input = input })
  return result.returncode, result.stdout, result.stderr
end

-- Starts a server example on 127.0.0.1, port 0; returns its Popen and the
-- port of its first line, "<what> listening on 127.0.0.1:<port>".
local function start_server(runner, script, what)
  local p = sub.Popen({ "sh", "-c", command(runner, script, "127.0.0.1 0") },
                      { stdout = sub.PIPE, stderr = sub.PIPE })
  local first = curio.ignore_after(LIMIT, p.stdout.readline, p.stdout)
  local port = first and first:match("^" .. what .. " listening on 127%.0%.0%.1:(%d+)\n$")
  return p, tonumber(port), first
end

-- Stops a server with SIGINT (Ctrl-C); returns its status and the rest of
-- its stdout and its stderr (killed if it does not end within LIMIT).
local function stop_server(p)
  p:send_signal(SIGINT)
  local out, err = curio.timeout_after(LIMIT, p.communicate, p)
  return p.returncode, out, err
end

-- How each runner ends on SIGINT: lua5.4 with curio.run's
-- KeyboardInterrupt (status 1), the program with 130.
local function check_interrupted(runner, status, stderr)
  if runner.name == "curio" then
    assert.are.same({ 130, "curio: interrupted\n" }, { status, stderr })
  else
    assert.are.equal(1, status)
    assert.truthy(stderr:find("KeyboardInterrupt", 1, true), stderr)
  end
end

-- Runs body(port) against a server example started under runner, then
-- stops it; returns its status, stdout lines after the first, stderr.
local function with_server(runner, script, what, body)
  return curio.run(function()
    local p, port, first = start_server(runner, script, what)
    local ok, err = true, nil
    if port then ok, err = pcall(body, port) end
    local status, out, stderr = stop_server(p)
    assert(port, ("%s did not say where it listens: %s %s"):format(script, tostring(first), stderr))
    assert(ok, err)
    return status, util.lines(out), stderr
  end)
end

-- A connection that sends nothing and waits for the server to close it:
-- once it ends, the server has run each earlier connection's handler to
-- its end (their ends of stream were there before this one was accepted),
-- so the log lines of all are printed, whenever SIGINT comes after.
local function last_connection(port)
  curio.timeout_after(LIMIT, function()
    local sock <close> = curio.open_connection("127.0.0.1", port)
    sock:shutdown("w")
    assert(sock:recv(100) == "", "the server sent something")
  end)
end

local function sorted(lines)
  table.sort(lines)
  return lines
end

local scripts = {}
for script in pairs(examples.expected) do scripts[#scripts + 1] = script end
table.sort(scripts)

describe("every example", function()
  it("is run by this spec", function()
    local listed = io.popen("cd examples && ls *.lua howto/*.lua")
    local covered = { ["echo_server.lua"] = true, ["echo_stream_server.lua"] = true,
                      ["echo_client.lua"] = true, ["http_server.lua"] = true,
                      -- (spec/ssl_peers_spec.lua runs these two with curl and a test CA)
                      ["https_server.lua"] = true, ["https_get.lua"] = true,
                      -- (channel_producer.lua starts three of these as its workers)
                      ["channel_worker.lua"] = true }
    for _, script in ipairs(scripts) do covered[script] = true end
    local missing = {}
    for script in listed:lines() do
      if not covered[script] then missing[#missing + 1] = script end
    end
    listed:close()
    assert.are.same({}, missing)
  end)
end)

for _, runner in ipairs(runners) do
  describe("under " .. runner.name, function()
    for _, script in ipairs(scripts) do
      it(script .. " prints what it should and ends with 0", function()
        local status, stdout, stderr = curio.run(run, runner, script)
        assert.are.same({ status = 0, stderr = "", lines = examples.expected[script] },
                        { status = status, stderr = stderr,
                          lines = examples.normalise(script, util.lines(stdout)) })
      end)
    end

    for _, script in ipairs({ "echo_server.lua", "echo_stream_server.lua" }) do
      it(script .. " echoes echo_client.lua (both ways, arguments and stdin) and logs each connection",
        function()
          local replies = {}
          local status, lines, stderr = with_server(runner, script, "echo server", function(port)
            for i, client in ipairs(runners) do
              local args, input = "127.0.0.1 " .. port, nil
              if i == 1 then args = args .. " hello world" else input = "one\ntwo\n" end
              local code, out, err = run(client, "echo_client.lua", args, input)
              replies[#replies + 1] = { code, out, err }
            end
            last_connection(port)
          end)
          assert.are.same({ { 0, "hello\nworld\n", "" }, { 0, "one\ntwo\n", "" } }, replies)
          check_interrupted(runner, status, stderr)
          for i, line in ipairs(lines) do lines[i] = line:gsub("127%.0%.0%.1:%d+$", "127.0.0.1:N") end
          local expected = {}
          for _ = 1, 3 do -- two clients, the last connection
            table.insert(expected, "Connection from\t127.0.0.1:N")
            table.insert(expected, "Connection closed")
          end
          assert.are.same(sorted(expected), sorted(lines))
        end)
    end

    it("http_server.lua answers GET / and prints only where it listens", function()
      local reply
      local status, lines, stderr = with_server(runner, "http_server.lua", "http server", function(port)
        local sock <close> = curio.open_connection("127.0.0.1", port)
        local stream = sock:as_stream()
        stream:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = curio.timeout_after(LIMIT, function() -- to the end: the server closes
          local parts = {}
          repeat parts[#parts + 1] = stream:read(65536) until parts[#parts] == ""
          return table.concat(parts)
        end)
      end)
      assert.are.equal("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n" ..
                       "Connection: close\r\n\r\nHello, world!\n", reply)
      check_interrupted(runner, status, stderr)
      assert.are.same({}, lines)
    end)
  end)
end

describe("make run", function()
  it("starts the echo server on HOST and PORT, which says where it listens and echoes", function()
    local reply
    local status, rest, stderr = curio.run(function()
      -- its own process group (setsid), which Ctrl-C at a terminal would reach whole
      -- (BUILD: the build under test, up to date, so make builds nothing)
      local build = util.bin:match("^(.-)/bin/curio$") or "build"
      local p = sub.Popen({ "setsid", "make", "-s", "run", "BUILD=" .. build, "HOST=127.0.0.1", "PORT=0" },
                          { stdout = sub.PIPE, stderr = sub.PIPE })
      local first = curio.ignore_after(LIMIT, p.stdout.readline, p.stdout)
      local port = tonumber(first and first:match("^echo server listening on 127%.0%.0%.1:(%d+)\n$"))
      if port then
        reply = curio.timeout_after(LIMIT, function()
          local sock <close> = curio.open_connection("127.0.0.1", port)
          sock:sendall("ping\n")
          return sock:recv(100)
        end)
        last_connection(port)
      end
      curio.run_in_thread(os.execute, "kill -INT -" .. p.pid)
      local out, err = curio.timeout_after(LIMIT, p.communicate, p)
      assert(port, "no listening line: " .. tostring(first) .. err)
      return p.returncode, out, err
    end)
    assert.are.equal("ping\n", reply)
    assert.are.same(sorted({ "Connection from\t127.0.0.1:N", "Connection closed",
                             "Connection from\t127.0.0.1:N", "Connection closed" }),
                    sorted(util.lines((rest:gsub("127%.0%.0%.1:%d+", "127.0.0.1:N")))))
    assert.truthy(stderr:find("KeyboardInterrupt", 1, true), stderr)
    assert.are_not.equal(0, status)
  end)
end)
