local curio = require "curio"
local util = require "support.util"
local channels = require "support.channels"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- curio.Channel and curio.channel.Connection (lua/curio/channel.lua, its
-- rules; core/codec_frame.c; core/tlsauth.c).

local channel = curio.channel
local AuthenticationError, MessageError = channel.AuthenticationError, channel.MessageError

-- Two connected Connections on the loopback: server side, client side.
local function pair(server_opts, client_opts, channel_opts)
  return channels.pair({ server = server_opts, client = client_opts, channel = channel_opts })
end

local closing = channels.closing

-- Whether a and b are the same value: numbers of the same subtype and
-- bits, tables of the same shape (shared references and cycles alike).
local function same(a, b, seen)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false end
    local fmt = math.type(a) == "integer" and "<j" or "<d"
    return string.pack(fmt, a) == string.pack(fmt, b)
  end
  if type(a) ~= "table" then return a == b end
  seen = seen or {}
  if seen[a] ~= nil then return seen[a] == b end
  seen[a] = b
  for k, v in pairs(a) do
    if type(k) ~= "table" and not same(v, rawget(b, k), seen) then return false end
  end
  for k in pairs(b) do
    if type(k) ~= "table" and rawget(a, k) == nil then return false end
  end
  return true
end

local function all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  return table.concat(t)
end

-- The values of the round-trip specs.
local function sample_values()
  local shared = { "shared" }
  local cyclic = { name = "cycle" }
  cyclic.self = cyclic
  return {
    true, false, 0, -1, math.maxinteger, math.mininteger, 0.1, -0.0, 1 / 0, -1 / 0, 0 / 0, 2 ^ 53,
    3.0, "", all_bytes(), ("\0"):rep(1000), {}, { 1, 2, 3, n = 3 },
    { a = shared, b = shared, [1.5] = "float key", [true] = "bool key" }, cyclic,
    { nested = { deeper = { deepest = { "x" } } } },
  }
end

-- Starts a child lua5.4 running code with the port as arg[1]; returns the
-- Popen. The child's code is in a temporary file removed at once.
local function child(code, ...)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local args = table.pack(...)
  for i = 1, args.n do args[i] = ("'%s'"):format(tostring(args[i])) end
  local p = curio.subprocess.Popen({ "sh", "-c", ("%s exec timeout -s KILL 60 %s %s %s; "):format(
    util.env, util.lua, path, table.concat(args, " ")) }, { stderr = curio.subprocess.PIPE })
  return p, path
end

local ECHO_CHILD = [[
local curio = require "curio"
curio.run(function()
  local address = tonumber(arg[1]) and { "127.0.0.1", math.tointeger(tonumber(arg[1])) } or arg[1]
  local conn <close> = curio.Channel(address):connect({ authkey = arg[2] })
  while true do
    local ok, value = pcall(conn.recv, conn)
    if not ok then
      if curio.channel.EOFError:matches(value) then break end
      error(value, 0)
    end
    conn:send(value)
  end
end)
]]

local function finish(p, path)
  local status = p:wait()
  local stderr = p.stderr:read()
  p.stderr:close()
  os.remove(path)
  return status, stderr
end

describe("curio.Channel", function()
  it("carries every kind of data value exactly across two processes", function()
    curio.run(function()
      local ch <close> = curio.Channel({ "127.0.0.1", 0 })
      local p, path = child(ECHO_CHILD, ch:bind()[2], "two processes")
      local conn <close> = ch:accept({ authkey = "two processes" })
      for i, value in ipairs(sample_values()) do
        conn:send(value)
        local back = conn:recv()
        assert.is_true(same(value, back), "value #" .. i)
      end
      conn:send(nil)
      assert.is_nil(conn:recv())
      local t = sample_values()
      conn:send(t)
      local back = conn:recv()
      assert.is_true(same(t, back))
      assert.are.equal(back[19].a, back[19].b) -- a shared reference stays shared
      assert.are.equal(back[20], back[20].self) -- a cycle stays a cycle
      conn:send_bytes(all_bytes()) -- a raw message reaches a recv as no value
      conn:close()
      local status, stderr = finish(p, path)
      assert.are.equal(1, status)
      assert.matches("MessageError: recv: the message is no value: malformed data %(not curio data%)", stderr)
    end)
  end)

  it("gives a value's every kind of data and raw bytes within one process", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      client:send_bytes("")
      client:send_bytes(all_bytes())
      client:send({ 1, "two", { three = 3 } })
      assert.are.equal("", server:recv_bytes())
      assert.are.equal(all_bytes(), server:recv_bytes())
      assert.are.same({ 1, "two", { three = 3 } }, server:recv())
    end)
  end)

  it("runs over a pipe pair: a subprocess's stdout and stdin, and its own stdin and stdout", function()
    -- the child reads and writes file streams (aopen: worker threads), the
    -- parent the subprocess's pipe streams
    local CHILD = [[
local curio = require "curio"
curio.run(function()
  local conn <close> = curio.channel.Connection(curio.aopen("/dev/stdin", "rb"), curio.aopen("/dev/stdout", "wb"))
  while true do
    local ok, value = pcall(conn.recv, conn)
    if not ok then break end
    conn:send({ echo = value })
  end
end)
]]
    curio.run(function()
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write(CHILD)
      f:close()
      local sub = curio.subprocess
      local p = sub.Popen({ "sh", "-c", ("%s exec timeout -s KILL 60 %s %s"):format(util.env, util.lua, path) },
                          { stdin = sub.PIPE, stdout = sub.PIPE, stderr = sub.PIPE })
      local conn = channel.Connection(p.stdout, p.stdin)
      for _, value in ipairs({ "one", { 2, 3 }, ("x"):rep(300000) }) do
        conn:send(value)
        assert.are.same({ echo = value }, conn:recv())
      end
      conn:close()
      local status, stderr = finish(p, path)
      assert.are.same({ 0, "" }, { status, stderr })
    end)
  end)

  it("refuses functions, userdata and shared objects with the value's path, and stays usable", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      local err = util.catch(client.send, client, { job = { run = print } })
      assert.is_true(curio.CurioError:matches(err))
      assert.are.equal("send: cannot transfer value #1 field 'job.run' (function)", err.message)
      err = util.catch(client.send, client, function() end)
      assert.are.equal("send: cannot transfer value #1 (function)", err.message)
      err = util.catch(client.send, client, { io.stdout })
      assert.are.equal("send: cannot transfer value #1 field '[1]' (userdata)", err.message)
      err = util.catch(client.send, client, { q = curio.UniversalQueue() })
      assert.are.equal("send: cannot transfer value #1 field 'q' (userdata: a shared object, to another process)",
                       err.message)
      client:send("after")
      assert.are.equal("after", server:recv())
    end)
  end)

  it("refuses a function's bytecode that a peer sends (the decoder takes data only)", function()
    curio.run(function()
      local server, client = pair()
      local _ <close> = closing(server, client)
      client:send_bytes(require("curio.core").encode(function() end))
      local err = util.catch(server.recv, server)
      assert.is_true(MessageError:matches(err))
      assert.matches("a function where none may be", err.message)
      assert.is_true(server:closed())
    end)
  end)

  it("raises AuthenticationError on both sides when the keys differ, either side wrong", function()
    curio.run(function()
      for _, keys in ipairs({ { "right", "wrong" }, { "wrong", "right" }, { "", "x" } }) do
        local ch <close> = curio.Channel({ "127.0.0.1", 0 })
        local addr = ch:bind()
        local accepting = curio.spawn(function() return pcall(ch.accept, ch, { authkey = keys[1] }) end)
        local client_ok, client_err = pcall(curio.Channel(addr).connect, curio.Channel(addr),
                                            { authkey = keys[2] })
        local server_ok, server_err = accepting:join()
        assert.is_false(client_ok)
        assert.is_false(server_ok)
        assert.is_true(AuthenticationError:matches(client_err), tostring(client_err))
        assert.is_true(AuthenticationError:matches(server_err), tostring(server_err))
        assert.are.equal("connect: digest sent was rejected", client_err.message)
        assert.are.equal("accept: digest received was wrong", server_err.message)
      end
    end)
  end)

  it("authenticates with the same key both ways, then carries messages", function()
    curio.run(function()
      local server, client = pair({ authkey = "k\0ey" }, { authkey = "k\0ey" })
      local _ <close> = closing(server, client)
      server:send("hello")
      assert.are.equal("hello", client:recv())
      client:send("back")
      assert.are.equal("back", server:recv())
    end)
  end)

  it("reads nothing but the handshake from a peer that does not authenticate", function()
    curio.run(function()
      local ch <close> = curio.Channel({ "127.0.0.1", 0 })
      local addr = ch:bind()
      -- a raw client: takes the challenge, answers with a 1 GiB header
      local accepting = curio.spawn(function() return pcall(ch.accept, ch, { authkey = "k" }) end)
      local raw <close> = curio.open_connection(addr[1], addr[2])
      local stream = raw:as_stream()
      local size = string.unpack(">i4", stream:read_exactly(4))
      assert.matches("^#CHALLENGE#{sha256}", stream:read_exactly(size))
      raw:sendall(string.pack(">i4", 1 << 30) .. "not a digest")
      local ok, err = accepting:join()
      assert.is_false(ok)
      assert.is_true(AuthenticationError:matches(err))
      assert.are.equal("accept: the handshake failed: recv_bytes: message of 1073741824 bytes over the limit of 256",
                       err.message)
      assert.are.equal("", stream:read()) -- the server closed it
    end)
  end)

  it("speaks Python multiprocessing's frames and its HMAC-SHA256 handshake", function()
    if not os.execute("python3 -c 'import multiprocessing.connection, hmac' 2>/dev/null") then
      pending("no python3 here")
      return
    end
    -- a Python peer: multiprocessing's Client for the frames, the handshake
    -- of Python 3.12 written out (so that an older Python checks it too)
    local PEER = [[
import hmac, os, sys
from multiprocessing.connection import Client
c = Client(('127.0.0.1', int(sys.argv[1])))
key = sys.argv[2].encode()
m = c.recv_bytes(256)
assert m.startswith(b'#CHALLENGE#{sha256}') and len(m) == 11 + 8 + 40, m
c.send_bytes(b'{sha256}' + hmac.new(key, m[11:], 'sha256').digest())
assert c.recv_bytes(256) == b'#WELCOME#'
m = b'{sha256}' + os.urandom(40)
c.send_bytes(b'#CHALLENGE#' + m)
ok = hmac.compare_digest(c.recv_bytes(256), b'{sha256}' + hmac.new(key, m, 'sha256').digest())
c.send_bytes(b'#WELCOME#' if ok else b'#FAILURE#')
c.send_bytes(c.recv_bytes()[::-1])
c.send_bytes(str(len(c.recv_bytes())).encode())
]]
    curio.run(function()
      local ch <close> = curio.Channel({ "127.0.0.1", 0 })
      local path = os.tmpname()
      local f = assert(io.open(path, "w"))
      f:write(PEER)
      f:close()
      local p = curio.subprocess.Popen({ "python3", path, tostring(ch:bind()[2]), "py key" },
                                       { stderr = curio.subprocess.PIPE })
      local conn <close> = ch:accept({ authkey = "py key" })
      conn:send_bytes("stressed")
      assert.are.equal("desserts", conn:recv_bytes())
      conn:send_bytes(("b"):rep(3000000))
      assert.are.equal("3000000", conn:recv_bytes())
      local status, stderr = finish(p, path)
      assert.are.same({ 0, "" }, { status, stderr })
    end)
  end)

  it("checks its arguments, naming the function and the argument", function()
    curio.run(function()
      assert.has_error(function() curio.Channel(42) end,
                       "bad argument #1 to 'Channel' ({host, port} or a unix path expected, got number)")
      assert.has_error(function() curio.Channel({ "127.0.0.1", "80" }) end,
                       "bad argument #1 to 'Channel' (address {host, port}: integer port 0-65535 expected)")
      assert.has_error(function() curio.Channel("/tmp/x", { colour = 1 }) end,
                       "bad argument #2 to 'Channel' (unknown option 'colour')")
      assert.has_error(function() curio.Channel("/tmp/x", { ssl = true }) end,
                       "bad argument #2 to 'Channel' (opts.ssl must be an SSLContext)")
      assert.has_error(function() curio.Channel("/tmp/x", { max_size = 0 }) end,
                       "bad argument #2 to 'Channel' (opts.max_size must be a positive integer)")
      local ch <close> = curio.Channel("/tmp/x")
      assert.has_error(function() ch:accept({ authkey = 5 }) end,
                       "bad argument #1 to 'accept' (opts.authkey must be a string, got number)")
      assert.has_error(function() ch:connect({ key = "x" }) end,
                       "bad argument #1 to 'connect' (unknown option 'key')")
      assert.has_error(function() ch.accept(nil) end,
                       "calling 'accept' on bad self (Channel expected, got no value)")
      assert.has_error(function() channel.Connection({}) end,
                       "bad argument #1 to 'Connection' (Stream expected, got table)")
      local server, client = pair()
      local _ <close> = closing(server, client)
      assert.has_error(function() client:send_bytes(12) end,
                       "bad argument #1 to 'send_bytes' (string expected, got number)")
      assert.has_error(function() client:recv_bytes(-1) end,
                       "bad argument #1 to 'recv_bytes' (non-negative integer expected)")
      assert.has_error(function() client.recv({}) end,
                       "calling 'recv' on bad self (Connection expected, got table)")
    end)
    local ch <close> = curio.Channel({ "127.0.0.1", 0 })
    local err = util.catch(ch.accept, ch)
    assert.are.equal("accept: not inside a curio task", err.message)
  end)
end)
