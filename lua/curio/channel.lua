-- curio.channel: messages between programs (docs/channel.md). A Channel
-- is an address that one program listens on (accept) and others connect
-- to (connect); each side gets a Connection carrying size-prefixed
-- messages both ways: values in the codec's data form (send, recv) or
-- bytes (send_bytes, recv_bytes). As Python curio's curio.channel, with
-- the authentication of Python's multiprocessing.connection.
--
-- Rules:
--  1. A message is a frame: the payload's size as a 4-byte big-endian
--     signed integer (for 2 GiB and more: -1, then the size in 8 bytes),
--     then the payload (core/codec_frame.c), as Python's multiprocessing
--     and curio frame theirs. send(value) sends the value's codec bytes
--     in CODEC_DATA mode: nil, booleans, numbers, strings, tables (shared
--     references and cycles kept); functions, userdata and shared objects
--     are refused before anything is sent (no code crosses a channel), and
--     recv decodes without functions (core.decode's untrusted mode).
--  2. A header is checked against the connection's limit (opts.max_size,
--     default 64 MiB; recv_bytes's maxlength lowers it) before anything
--     is read or allocated for its payload. A size over it, a malformed
--     header or a payload that does not decode raises MessageError and
--     closes the connection.
--  3. One sender and one receiver at a time: a second task that sends
--     (receives) while one does waits its turn, in arrival order (FIFO),
--     so the messages of several tasks never mix and none is refused with
--     ResourceBusy.
--  4. No half message is ever misread. A receive interrupted (a timeout, a
--     cancellation) keeps what it read of a frame (in the connection's
--     buffer, or the stream's and _head/_size): the next receive goes on
--     with the same frame. A send interrupted once part of its frame went
--     out (or over TLS, where that cannot be known) closes the connection,
--     and every later call raises ChannelError saying why; one that wrote
--     nothing (a plain socket or pipe) leaves it usable. An error of the
--     system closes it.
--  5. The end of the stream between two messages raises EOFError (again
--     at each recv); in the middle of one, EOFError and the connection is
--     closed.
--  6. Authentication (opts.authkey of accept and connect) is Python
--     multiprocessing's handshake (3.12's, HMAC-SHA256 from libcrypto):
--     each side sends a random challenge that the other answers with the
--     HMAC of it under the shared key, compared in constant time, the
--     listener challenging first. Before it succeeds, only the
--     handshake's frames (256 bytes at most) are read and nothing is
--     decoded. A wrong key raises AuthenticationError on both sides and
--     closes the connection. OpenSSL (curio.tls) is loaded only then.
--  7. close() never waits: it may be called anywhere (also where Lua
--     cannot yield, a __gc, a __close) and again.
--  8. Over a plain socket or pipe, sends are gathered (core/sockout.c): a
--     message under 64 KiB is appended whole to the connection's out
--     buffer and send returns; the buffer goes to the system before the
--     kernel next waits for events, every message gathered since in one
--     write, and what the system does not take then as it can. A send
--     waits, before queuing its message, while 64 KiB or more are not
--     written yet (a slow reader slows the sender; interrupted there, it
--     queued nothing). A bigger message first waits for the buffer to be
--     written, then goes straight from its string. A write that fails
--     drops what was queued and closes the connection: the next call
--     raises. flush() waits until the system has taken every message
--     sent; close() writes what the system takes at once and drops the
--     rest (rule 7).
--  9. The first message of a megabyte or more sent over a unix socket
--     widens its send buffer to a megabyte (see widen).

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
local io_ = require "curio.io"
local handshake = require "curio.handshake"

local CurioError, CancelledError, IncompleteRead = errors.CurioError, errors.CancelledError,
  errors.IncompleteRead
local ConnectionRefusedError, OSError = errors.ConnectionRefusedError, errors.OSError
local encode_frame, frame_header, frame_parse = core.encode_frame, core.frame_header, core.frame_parse
local decode, read_frame, read_value, growbuf = core.decode, core.read_frame, core.read_value, core.growbuf
local take_buffered, source_of = io_.take_buffered, io_.source
local waitq, sleep, current_task = core.waitq, core.sleep, core.current_task
local socket_methods = core.socket_methods
local out_frame, out_bytes, out_flush, out_close = core.out_frame, core.out_bytes, core.out_flush,
  core.out_close

local channel = {}

local ChannelError = CurioError:subclass("ChannelError")
channel.ChannelError = ChannelError
channel.AuthenticationError = ChannelError:subclass("AuthenticationError")
channel.EOFError = ChannelError:subclass("EOFError")
channel.MessageError = ChannelError:subclass("MessageError")
local AuthenticationError, EOFError, MessageError = channel.AuthenticationError, channel.EOFError,
  channel.MessageError

local DEFAULT_MAX_SIZE = 64 * 1024 * 1024
-- A payload this big or more goes as its own write after its header (no
-- joined copy); a send waits while this much is not written yet (rule 8).
local BIG = 65536
local HIGH = 65536

local function is_socket(value)
  return type(value) == "userdata" and pcall(socket_methods.closed, value)
end

local function check_max_size(value, n, fname)
  if value == nil then return DEFAULT_MAX_SIZE end
  if math.type(value) ~= "integer" or value < 1 then
    check.arg_error(n, fname, "opts.max_size must be a positive integer", 2)
  end
  return value
end

---------------------------------------------------------------- Connection

local Connection = { __name = "curio.channel.Connection" }
Connection.__index = Connection

local connection_opts = { max_size = true }

-- channel.Connection(reader, writer, opts) -> a Connection over two
-- streams (writer defaults to reader: a socket's stream); opts.max_size.
-- A stream over a plain socket or pipe is read by core.read_frame (one C
-- call a message, into a buffer of the connection: core/sockbuf.c), the
-- bytes it had buffered first; any other stream (TLS, a file) through
-- its own methods.
function channel.Connection(reader, writer, opts)
  if not io_.is_stream(reader) then
    check.arg_error(1, "Connection", "Stream expected, got " .. check.describe(reader))
  end
  if writer ~= nil and not io_.is_stream(writer) then
    check.arg_error(2, "Connection", "Stream expected, got " .. check.describe(writer))
  end
  opts = check.options(opts, 3, "Connection", connection_opts)
  local max_size = check_max_size(opts.max_size, 3, "Connection")
  writer = writer or reader
  local rsource, wsource = source_of(reader), source_of(writer)
  local rsock, holder = is_socket(rsource) and rsource or nil, nil
  if rsock ~= nil then
    holder = growbuf()
    holder:put(take_buffered(reader))
  end
  return setmetatable({
    _r = reader, _w = writer, _max_size = max_size,
    _rsock = rsock, _holder = holder,                -- the fast reads
    _wsock = is_socket(wsource) and wsource or nil, -- plain writes (rule 4: one that wrote nothing is clean)
    _closed = nil,                                  -- why it was closed, once closed
    _sending = false, _sendq = waitq("Connection.send"), _nsend = 0,
    _queued = 0,                                    -- bytes buffered at the last send (rule 8: or fewer now)
    _receiving = false, _recvq = waitq("Connection.recv"), _nrecv = 0,
    _head = nil, _size = nil,                       -- a frame begun by an interrupted receive (rule 4)
  }, Connection)
end

local function bad_self(self, fname)
  check.bad_self(self, fname, "Connection", 2)
end

-- conn:close(): closes both streams (rule 7).
function Connection:close()
  if getmetatable(self) ~= Connection then bad_self(self, "close") end
  if self._closed then return end
  self._closed = "closed"
  self._holder = nil
  if self._wsock then out_close(self._wsock) end -- (rule 8: the last write, no wait)
  self._r:close()
  if self._w ~= self._r then self._w:close() end
end

Connection.__close = Connection.close

function Connection:__tostring()
  return ("Connection (%s)"):format(self._closed and "closed" or "open")
end

-- conn:closed() -> whether the connection is closed.
function Connection:closed()
  if getmetatable(self) ~= Connection then bad_self(self, "closed") end
  return self._closed ~= nil
end

local function raise_closed(self, fname)
  local why = self._closed
  local because = why ~= "closed" and (" (" .. why .. ")") or ""
  error(ChannelError(fname .. ": the connection is closed" .. because), 3)
end

-- Closes the connection after a failure (rule 4), saying why.
local function close_for(self, why)
  if self._closed then return end
  self:close()
  self._closed = why
end

local function describe_error(err)
  if type(err) == "table" and err.__name then return err.__name end
  return tostring(err)
end

-- Rule 3: the send (receive) side, taken in arrival order; `count` counts
-- the waiters (a wake is a C call: skipped when nobody waits).
local function take(self, busy, queue, count, fname)
  if self._closed then raise_closed(self, fname) end
  if self[busy] then
    self[count] = self[count] + 1
    local ok, err = pcall(self[queue].wait, self[queue]) -- (woken: handed over)
    self[count] = self[count] - 1
    if not ok then error(err, 0) end
  else
    self[busy] = true
  end
  if self._closed then
    if self[count] == 0 or self[queue]:wake(1) == 0 then self[busy] = false end
    raise_closed(self, fname)
  end
end

local function give(self, busy, queue, count)
  if self[count] == 0 or self[queue]:wake(1) == 0 then self[busy] = false end
end

---------------------------------------------------------------- sending

-- A send's failure (rule 4): the connection stays open only when nothing
-- of the frame went out.
local function send_failed(self, fname, err, clean)
  if self._closed then
    if CancelledError:matches(err) then error(err, 0) end
    raise_closed(self, fname)
  end
  local sent = type(err) == "table" and rawget(err, "bytes_sent") or nil
  if not (clean and self._wsock and (sent == nil or sent == 0)) then
    close_for(self, describe_error(err) .. " in the middle of a send")
  end
  error(err, 0)
end

-- A gathered send's failure (rule 8): an error of the system lost what
-- was queued, and closes the connection; anything else (an interruption,
-- a wait where Lua cannot yield) queued nothing and leaves it open.
local function gather_failed(self, fname, err)
  if self._closed then
    if CancelledError:matches(err) then error(err, 0) end
    raise_closed(self, fname)
  end
  if OSError:matches(err) then
    close_for(self, describe_error(err) .. " in a send (what was queued is lost)")
  end
  error(err, 0)
end

-- Waits, holding the send side, until less than `high` bytes are not
-- written (rule 8); the caller gives the send side back.
local function drain(self, fname, high)
  local ok, err = pcall(out_flush, self._wsock, high, fname)
  if not ok then
    give(self, "_sending", "_sendq", "_nsend")
    gather_failed(self, fname, err)
  end
  self._queued = 0
end

-- Appends one frame (rule 8): put(sock, arg, what) is core.out_frame or
-- core.out_bytes. The send side is taken only to wait: behind a sender
-- that waits or a big message, or while HIGH bytes are not written.
local function gather(self, fname, put, arg)
  local held = self._sending or self._queued >= HIGH
  if held then
    take(self, "_sending", "_sendq", "_nsend", fname)
    drain(self, fname, HIGH)
  end
  local ok, n = pcall(put, self._wsock, arg, "send: value")
  if held then give(self, "_sending", "_sendq", "_nsend") end
  if not ok then
    if type(n) == "string" then error(CurioError(n), 2) end -- (the value: nothing queued)
    gather_failed(self, fname, n)
  end
  self._queued = n
end

-- Writes the frame: head (the whole frame when payload is nil), then
-- payload; straight to a plain socket's sendall (what its stream's write
-- calls), once what was gathered before is written (rule 8).
-- Rule 9: the first message of WIDE bytes or more over a unix socket asks
-- the system for a send buffer of WIDE (within its net.core.wmem_max), so
-- that each side is woken about 8 times less often for the rest of a big
-- message (a unix socket's reader cannot ask for fewer wakeups: it has no
-- SO_RCVLOWAT). Errors (a pipe) are ignored: the buffer stays as it was.
local WIDE = 1024 * 1024

local function widen(self)
  self._widened = true
  local sock = self._wsock
  if sock:family() ~= "unix" then return end
  local ok, size = pcall(sock.getsockopt, sock, "SO_SNDBUF")
  if ok and math.type(size) == "integer" and size < WIDE then
    pcall(sock.setsockopt, sock, "SO_SNDBUF", WIDE)
  end
end

local function send_frame(self, fname, head, payload)
  take(self, "_sending", "_sendq", "_nsend", fname)
  if self._wsock then
    if payload and #payload >= WIDE and not self._widened then widen(self) end
    drain(self, fname, 1)
  end
  local w = self._wsock or self._w
  local ok, err = pcall(w.write, w, head)
  if ok and payload ~= nil then
    ok, err = pcall(w.write, w, payload)
    if not ok then
      give(self, "_sending", "_sendq", "_nsend")
      send_failed(self, fname, err, false)
    end
  end
  give(self, "_sending", "_sendq", "_nsend")
  if not ok then send_failed(self, fname, err, true) end
end

-- conn:send(value): sends value (rule 1).
function Connection:send(value)
  if getmetatable(self) ~= Connection then bad_self(self, "send") end
  if current_task() == nil then check.task("send") end
  if self._closed then raise_closed(self, "send") end
  if self._wsock then return gather(self, "send", out_frame, value) end
  local ok, frame = pcall(encode_frame, value, "send: value")
  if not ok then error(CurioError(frame), 2) end
  send_frame(self, "send", frame, nil)
end

-- conn:send_bytes(data): sends the bytes of data as one message.
function Connection:send_bytes(data)
  if getmetatable(self) ~= Connection then bad_self(self, "send_bytes") end
  if type(data) ~= "string" then
    check.arg_error(1, "send_bytes", "string expected, got " .. check.describe(data))
  end
  if current_task() == nil then check.task("send_bytes") end
  if self._closed then raise_closed(self, "send_bytes") end
  if #data < BIG then
    if self._wsock then return gather(self, "send_bytes", out_bytes, data) end
    send_frame(self, "send_bytes", frame_header(#data) .. data, nil)
  else
    send_frame(self, "send_bytes", frame_header(#data), data)
  end
end

-- conn:flush(): waits until the system has taken every message sent
-- (rule 8); raises, and the connection is closed, when they cannot go.
function Connection:flush()
  if getmetatable(self) ~= Connection then bad_self(self, "flush") end
  if current_task() == nil then check.task("flush") end
  take(self, "_sending", "_sendq", "_nsend", "flush")
  if self._wsock then drain(self, "flush", 1) end
  give(self, "_sending", "_sendq", "_nsend")
end

---------------------------------------------------------------- receiving

local function eof_in_message(n)
  return EOFError(("the peer closed the connection in the middle of a message (%d bytes of it came)")
                  :format(n))
end

local function too_large(size, limit)
  return MessageError(("message of %d bytes over the limit of %d"):format(size, limit), { size = size })
end

-- The next payload of at most limit bytes from a plain socket: one C call
-- (core.read_frame), which keeps what it read when interrupted.
local function frame_error(why, n, limit)
  if why == "eof" then
    if n == 0 then return EOFError("the peer closed the connection") end
    return eof_in_message(n)
  end
  if why == "large" then return too_large(n, limit) end
  return MessageError("malformed message header")
end

local function read_fast(self, limit)
  local payload, why, n = read_frame(self._rsock, self._holder, limit)
  if payload then return payload end
  error(frame_error(why, n, limit), 0)
end

-- stream:read_exactly(n), its IncompleteRead an EOFError (at the start of
-- a frame when `first`).
local function exactly(r, n, first)
  local ok, data = pcall(r.read_exactly, r, n)
  if ok then return data end
  if IncompleteRead:matches(data) then
    if first and data.partial == "" then error(EOFError("the peer closed the connection"), 0) end
    error(eof_in_message(#data.partial), 0)
  end
  error(data, 0)
end

-- The next payload from any other stream. An interrupted read leaves its
-- bytes in the stream's buffer, and what it took of a header in _head,
-- its size in _size: the next receive goes on with the same frame.
local function read_stream(self, limit)
  local r, size = self._r, self._size
  if size == nil then
    local head = self._head or exactly(r, 4, true)
    self._head = head
    local status
    status, size = frame_parse(head, limit)
    if status == 0 then -- the 8-byte form
      head = head .. exactly(r, 8)
      self._head = head
      status, size = frame_parse(head, limit)
    end
    if status == -1 then error(MessageError("malformed message header"), 0) end
    if status == -2 then error(too_large(size, limit), 0) end
    self._head, self._size = nil, size
  elseif size > limit then
    error(too_large(size, limit), 0)
  end
  local data = size == 0 and "" or exactly(r, size)
  self._size = nil
  return data
end

-- A receive's failure (rules 4, 5): the connection is closed unless the
-- receive was only interrupted, or the peer closed between two messages.
local function recv_failed(self, fname, err)
  if self._closed then
    if CancelledError:matches(err) then error(err, 0) end
    raise_closed(self, fname)
  end
  if ChannelError:matches(err) then
    if MessageError:matches(err) then close_for(self, "a bad message came: " .. err.message)
    elseif err.message ~= "the peer closed the connection" then
      close_for(self, "the peer closed it in the middle of a message")
    end
    err.message = fname .. ": " .. err.message
  elseif not CancelledError:matches(err) then
    close_for(self, describe_error(err) .. " in a receive")
  end
  error(err, 0)
end

local function receive(self, fname, limit)
  take(self, "_receiving", "_recvq", "_nrecv", fname)
  local ok, data
  if self._rsock then ok, data = pcall(read_fast, self, limit)
  else ok, data = pcall(read_stream, self, limit) end
  give(self, "_receiving", "_recvq", "_nrecv")
  if not ok then recv_failed(self, fname, data) end
  return data
end

-- conn:recv_bytes(maxlength) -> the next message's bytes; a message over
-- maxlength (or the connection's limit) raises MessageError (rule 2).
function Connection:recv_bytes(maxlength)
  if getmetatable(self) ~= Connection then bad_self(self, "recv_bytes") end
  local limit = self._max_size
  if maxlength ~= nil then
    maxlength = check.count(maxlength, 1, "recv_bytes")
    if maxlength < limit then limit = maxlength end
  end
  if current_task() == nil then check.task("recv_bytes") end
  return receive(self, "recv_bytes", limit)
end

local function no_value(self, why)
  why = tostring(why):gsub("^.-codec: ", "")
  close_for(self, "a bad message came: " .. why)
  error(MessageError("recv: the message is no value: " .. why), 3)
end

local function decoded(self, ok, n, value)
  if not ok then no_value(self, n) end
  if n ~= 1 then no_value(self, "not one value") end
  return value
end

local function counted(...)
  return select("#", ...), ...
end

local function decode_counted(data)
  return counted(decode(data))
end

-- conn:recv() -> the next message's value (rule 1). Over a plain socket,
-- one C call reads and decodes it (core.read_value, no string made).
function Connection:recv()
  if getmetatable(self) ~= Connection then bad_self(self, "recv") end
  if current_task() == nil then check.task("recv") end
  local sock = self._rsock
  if not sock then
    local data = receive(self, "recv", self._max_size)
    return decoded(self, pcall(decode_counted, data))
  end
  take(self, "_receiving", "_recvq", "_nrecv", "recv")
  local limit = self._max_size
  local ok, got, value, n = pcall(read_value, sock, self._holder, limit)
  give(self, "_receiving", "_recvq", "_nrecv")
  if ok and got then return value end
  if not ok then recv_failed(self, "recv", got) end
  if value == "decode" then no_value(self, n) end
  recv_failed(self, "recv", frame_error(value, n, limit))
end

---------------------------------------------------------------- Channel

-- Authenticates a new connection (rule 6: lua/curio/handshake.lua).
local function authenticate(conn, key, server, fname)
  return handshake.authenticate(conn, key, server, fname, ChannelError, AuthenticationError)
end

local Channel = { __name = "curio.Channel" }
Channel.__index = Channel

local channel_opts = { ssl = true, max_size = true, server_hostname = true }

-- The address given to Channel: {host, port} or a unix path.
local function check_address(address)
  if type(address) == "string" then
    return check.cstring(address, 1, "Channel", "path string", 2)
  end
  if type(address) ~= "table" then
    check.arg_error(1, "Channel", "{host, port} or a unix path expected, got " .. check.describe(address), 2)
  end
  local host, port = address[1] or address.host, address[2] or address.port
  check.cstring(host, 1, "Channel", "address {host, port}: string host", 2)
  if math.type(port) ~= "integer" or port < 0 or port > 65535 then
    check.arg_error(1, "Channel", "address {host, port}: integer port 0-65535 expected", 2)
  end
  return { host, port }
end

-- curio.Channel(address, opts) -> a Channel: address {host, port} or a
-- unix socket's path; opts.ssl an SSLContext (a server's to accept, a
-- client's to connect), opts.server_hostname (TLS: the name to verify,
-- by default the address's host), opts.max_size (each connection's
-- limit, rule 2).
function channel.Channel(address, opts)
  address = check_address(address)
  opts = check.options(opts, 2, "Channel", channel_opts)
  if opts.ssl ~= nil then
    local ssl = require "curio.ssl"
    if not ssl.is_context(opts.ssl) then check.arg_error(2, "Channel", "opts.ssl must be an SSLContext") end
  end
  if opts.server_hostname ~= nil then
    check.cstring(opts.server_hostname, 2, "Channel", "opts.server_hostname: string")
  end
  local max_size = check_max_size(opts.max_size, 2, "Channel")
  return setmetatable({ address = address, _ssl = opts.ssl, _hostname = opts.server_hostname,
                        _max_size = max_size, _sock = nil, _made_path = nil, _closed = false }, Channel)
end

local function check_channel(self, fname)
  if getmetatable(self) ~= Channel then check.bad_self(self, fname, "Channel", 2) end
  if self._closed then error(ChannelError(fname .. ": the channel is closed"), 3) end
end

local auth_opts = { authkey = true }

local function check_authkey(opts, fname)
  opts = check.options(opts, 1, fname, auth_opts, 2)
  local key = opts.authkey
  if key ~= nil and type(key) ~= "string" then
    check.arg_error(1, fname, "opts.authkey must be a string, got " .. type(key), 2)
  end
  if key ~= nil then handshake.load() end
  return key
end

-- ch:bind() -> the address listened on (its port once bound to port 0):
-- makes the listening socket now (accept makes it on first use).
function Channel:bind()
  check_channel(self, "bind")
  if self._sock == nil then
    local network = require "curio.network"
    local address = self.address
    if type(address) == "string" then
      local sock = network.socket("unix", "stream")
      local ok, err = pcall(function()
        sock:bind(address)
        sock:listen(128)
      end)
      if not ok then
        sock:close()
        error(err, 0)
      end
      self._made_path = address
      self._sock = sock
    else
      self._sock = network.tcp_server_socket(address[1], address[2])
      local bound = self._sock:getsockname()
      self.address = { address[1], bound[2] }
    end
  end
  local address = self.address
  if type(address) == "string" then return address end
  return { address[1], address[2] }
end

-- The Channel's TLS context (opts.ssl), nil without one; a context made
-- for the other side ("server" for accept, "client" for connect) is a bad
-- argument of fname.
local function context_for(self, purpose, fname)
  local ctx = self._ssl
  if ctx ~= nil and select(2, require("curio.ssl").is_context(ctx)) ~= purpose then
    check.arg_error(1, fname, ("the Channel's opts.ssl must be a %s's SSLContext"):format(purpose))
  end
  return ctx
end

-- ch:accept({authkey = key}) -> a Connection with the next client
-- (authenticated when a key is given: rule 6).
function Channel:accept(opts)
  check_channel(self, "accept")
  local key = check_authkey(opts, "accept")
  check.task("accept")
  local ctx = context_for(self, "server", "accept")
  self:bind()
  local client = self._sock:accept()
  if type(self.address) ~= "string" then client:setsockopt("TCP_NODELAY", true) end
  if ctx ~= nil then
    local ok, tls = pcall(ctx.wrap_socket, ctx, client, { server_side = true })
    if not ok then
      client:close()
      error(tls, 0)
    end
    client = tls
  end
  local conn = channel.Connection(client:as_stream(), nil, { max_size = self._max_size })
  if key ~= nil then authenticate(conn, key, true, "accept") end
  return conn
end

-- Whether a failed connect is to be tried again: nobody listens yet.
local function not_up(err)
  return ConnectionRefusedError:matches(err) or (OSError:matches(err) and err.code == "ENOENT")
end

-- ch:connect({authkey = key}) -> a Connection to the listener, tried
-- again (waiting longer each time, up to half a second) while nobody
-- listens there yet, for as long as the task's timeouts allow.
function Channel:connect(opts)
  check_channel(self, "connect")
  local key = check_authkey(opts, "connect")
  check.task("connect")
  local ctx = context_for(self, "client", "connect")
  local network = require "curio.network"
  local address, delay = self.address, 0.005
  local sock
  while true do
    local ok, result
    if type(address) == "string" then
      ok, result = pcall(network.open_unix_connection, address)
    else
      ok, result = pcall(network.open_connection, address[1], address[2])
    end
    if ok then sock = result break end
    if not not_up(result) then error(result, 0) end
    sleep(delay)
    delay = math.min(delay * 2, 0.5)
  end
  if ctx ~= nil then
    local hostname = self._hostname or (type(address) ~= "string" and address[1] or nil)
    local ok, tls = pcall(ctx.wrap_socket, ctx, sock, { server_hostname = hostname })
    if not ok then
      sock:close()
      error(tls, 0)
    end
    sock = tls
  end
  local conn = channel.Connection(sock:as_stream(), nil, { max_size = self._max_size })
  if key ~= nil then authenticate(conn, key, false, "connect") end
  return conn
end

-- ch:close(): stops listening (a unix socket's file made by bind is
-- removed); never waits.
function Channel:close()
  if getmetatable(self) ~= Channel then check.bad_self(self, "close", "Channel") end
  if self._closed then return end
  self._closed = true
  if self._sock ~= nil then
    self._sock:close()
    self._sock = nil
  end
  if self._made_path ~= nil then
    os.remove(self._made_path)
    self._made_path = nil
  end
end

Channel.__close = Channel.close

function Channel:__tostring()
  local address = self.address
  if type(address) ~= "string" then address = address[1] .. ":" .. address[2] end
  return ("Channel (%s, %s)"):format(address, self._closed and "closed" or
                                      (self._sock and "listening" or "not listening"))
end

return channel
