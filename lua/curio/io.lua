-- curio.io: the one stream (docs/sockets.md: Streams, Files) and curio.aopen.
--
-- A Stream reads and writes through a small source, an object with methods
-- (one metatable per kind of source, so that a stream costs two small
-- tables, not a closure per method):
--   source:read(n)     -> up to n bytes, "" at the end (may block the task)
--   source:write(data) -> writes all of data, returns #data (may block)
--   source:close()     source:fileno() -> number
-- File streams (aopen) have a source whose reads and writes run in worker
-- threads (core/fileio.c's fd_read and fd_write through run_in_thread,
-- given the descriptor handle, never its number);
-- a socket is its own source (sock:read is recv, sock:write is sendall:
-- lua/curio/network.lua), and so is a subprocess's pipe.
--
-- Rules:
--  1. Reads are buffered: a source read asks for a whole chunk (64 KiB), so
--     that lines() over a big file costs a thread round trip per chunk, not
--     per line. A read of a chunk or more with nothing buffered goes
--     straight to the source (no copy: an echo server's read(100000)).
--  2. Writes go through to the source at once (flush has nothing to do).
--  3. A closed stream raises CurioError ("I/O operation on a closed
--     stream") from every method but close, which may be called again.
--  4. Errors from the system are OSError with errno, code and strerror.
--  5. One reader and one writer at a time. A task inside a read method
--     holds the stream as its reader while it waits (in fill, the only
--     place a buffered read yields) until its own continuation runs
--     again: any other task entering a read method meanwhile gets
--     ReadResourceBusy at once, even when the buffer could serve it, so no
--     task takes bytes out of a line another is assembling. Sockets and
--     pipes (userdata sources: `_guarded`) refuse a second reader or
--     writer themselves, in C (core/sockio.c: a sendall that waited holds
--     the write side until its continuation has run, so a write cut by a
--     timeout can be finished, err.bytes_sent, before any other writer
--     gets in): their big reads and their writes go straight to them. A
--     file source is held the same way by the stream for its reads and
--     writes (one thread job at a time). A holder that ended while it
--     waited (its coroutine closed) holds nothing.
--  6. A read that resumes after a wait re-reads the buffer's state (its
--     positions and lengths) instead of trusting what it saw before, and
--     raises if the stream was closed meanwhile.
--  7. A job of a regular file, once handed to a thread, runs to its end and
--     its result is kept (appended to the buffer, or counted as written):
--     a cancellation or timeout that comes meanwhile is delivered at the
--     task's next blocking call, so that no byte is lost or written twice.
--     (Reads of other files, FIFOs and terminals, may never end: those are
--     cancelled at once, and what their thread reads then is dropped.)
--  8. The path of an echo loop (a big read with nothing buffered, a write,
--     on a socket, a pipe or a TLS socket) calls no C function but the
--     source's method: a call from Lua to C costs 300 to 500 instructions
--     (callgrind), as much as the rest of the method. A userdata source
--     (rule 5) checks the task, the count and the data itself, with the
--     stream's names and messages (core/sockio.c's read and write); a
--     count already found valid is not checked again (count_ok), and a
--     read the buffer serves still checks the task.

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"

local CurioError, OSError, IncompleteRead = errors.CurioError, errors.OSError, errors.IncompleteRead
local ReadResourceBusy, WriteResourceBusy = errors.ReadResourceBusy, errors.WriteResourceBusy
local current_task, math_type = core.current_task, math.type

local io_ = {}

local CHUNK = 65536

local Stream = { __name = "curio.Stream" }
Stream.__index = Stream

-- curio.io.Stream(source) -> a stream over source (see above). Four
-- fields at birth, the others (_eof, _closed, _reader, _writer, _more,
-- _nmore) absent until set: a table constructor sizes its hash part for
-- every field it names, nil or false ones too, and nine named took 16
-- slots (450 bytes) where four take 4 (150 bytes), for every connection
-- of a stream server.
function io_.Stream(source)
  return setmetatable({ _source = source, _buffer = "", _pos = 1,
                        _guarded = type(source) == "userdata" }, Stream)
end

local function check_open(self, fname)
  if self._closed then
    error(CurioError(fname .. ": I/O operation on a closed stream"), 3)
  end
end

-- The buffer is self._buffer from self._pos on (taking moves _pos, not
-- bytes: a chunk of many lines is cut once per line, not copied), then
-- the chunks of self._more (_nmore bytes; both absent when there are
-- none), read while a line or a count spanned more than one chunk. They
-- are joined once, by the take that needs them: reading n bytes across
-- chunks costs O(n), not O(n^2).
local function buffered(self)
  return #self._buffer - self._pos + 1 + (self._nmore or 0)
end

-- Rule 5: raises ReadResourceBusy when another task waits inside a read
-- of self.
local function check_reader(self, fname)
  local reader = self._reader
  if reader ~= nil and not reader.terminated then
    error(ReadResourceBusy(fname .. ": another task is already reading from this stream"), 3)
  end
  self._reader = nil
end



-- Reads one more chunk into the buffer; false at the end. The task holds
-- the stream as its reader while it waits (rule 5).
local function fill(self)
  if self._eof then return false end
  local source = self._source
  self._reader = current_task()
  local ok, data = pcall(source.read, source, CHUNK)
  self._reader = nil
  if not ok then error(data, 0) end
  if self._closed then check_open(self, "read") end -- closed while we waited (rule 6)
  if data == "" then self._eof = true return false end
  if buffered(self) == 0 then
    self._buffer, self._pos = data, 1
  else
    local more = self._more
    if more == nil then more = {} self._more = more end
    more[#more + 1] = data
    self._nmore = (self._nmore or 0) + #data
  end
  return true
end

local function take(self, n)
  local pos, buffer = self._pos, self._buffer
  if n > #buffer - pos + 1 and self._more ~= nil then -- spans chunks: join them once
    buffer, pos = buffer:sub(pos) .. table.concat(self._more), 1
    self._buffer, self._more, self._nmore = buffer, nil, nil
  end
  local out = buffer:sub(pos, pos + n - 1)
  self._pos = pos + #out
  return out
end

-- io_.take_buffered(stream) -> the bytes the stream has buffered, taken
-- (for code that reads the source directly afterwards: subprocess pipes,
-- a Channel's big messages).
function io_.take_buffered(self)
  return take(self, buffered(self))
end

-- io_.buffered(stream) -> how many bytes the stream has buffered.
io_.buffered = buffered

-- io_.is_stream(value) -> whether value is a Stream.
function io_.is_stream(value)
  return getmetatable(value) == Stream
end

-- io_.source(stream) -> the stream's source (a Channel reads a plain
-- socket's big messages from it directly, after io_.take_buffered).
function io_.source(self)
  return self._source
end

-- A big read straight from a source that does not refuse a second reader
-- itself (a file's): the task holds the stream while it waits (rule 5).
local function read_through(self, maxbytes)
  local source = self._source
  self._reader = current_task()
  local ok, data = pcall(source.read, source, maxbytes)
  self._reader = nil
  if not ok then error(data, 0) end
  if self._closed then check_open(self, "read") end -- closed while we waited (rule 6)
  return data
end

-- The last read count found valid (rule 8): a read with the same count
-- skips the check (a pure function of the value, so one memo serves every
-- stream).
local count_ok = 0

-- stream:read(maxbytes) -> up to maxbytes bytes ("" at the end); without
-- maxbytes (or -1), everything to the end.
function Stream:read(maxbytes)
  -- (the checks inlined, no call to C but the read: rule 8)
  if self._closed then check_open(self, "read") end
  if self._reader ~= nil then
    if current_task() == nil then check.task("read") end
    check_reader(self, "read")
  end
  if maxbytes ~= count_ok then
    if current_task() == nil then check.task("read") end
    if maxbytes == nil or maxbytes == -1 then
      while fill(self) do end
      return take(self, buffered(self))
    end
    if math_type(maxbytes) ~= "integer" or maxbytes < 0 then
      maxbytes = check.count(maxbytes, 1, "read", nil)
    end
    count_ok = maxbytes
  end
  if maxbytes >= CHUNK and #self._buffer < self._pos and self._more == nil and not self._eof then
    -- rule 1: a big read with nothing buffered goes straight through
    if self._guarded then -- ("" again at the end; a tail call: a frame less)
      return self._source:read(maxbytes)
    end
    if current_task() == nil then check.task("read") end
    return read_through(self, maxbytes)
  end
  if current_task() == nil then check.task("read") end
  if buffered(self) == 0 then fill(self) end
  return take(self, maxbytes)
end

-- stream:read_exactly(n) -> n bytes; IncompleteRead (with .partial) when
-- the end comes first.
function Stream:read_exactly(n)
  check_open(self, "read_exactly")
  n = check.count(n, 1, "read_exactly", nil)
  check.task("read_exactly")
  check_reader(self, "read_exactly")
  while buffered(self) < n and fill(self) do end
  if buffered(self) < n then
    local partial = take(self, buffered(self))
    error(IncompleteRead(("read_exactly: %d bytes expected, %d read"):format(n, #partial),
                         { partial = partial, expected = n }), 2)
  end
  return take(self, n)
end

-- stream:readline(maxbytes?) -> the next line with its "\n" ("" at the end).
-- Each byte is searched once, however many chunks the line spans: `scanned`
-- counts the chunks of _more searched; what that amounts to in bytes is
-- worked out again from the buffer after every wait (rule 6).
function Stream:readline(maxbytes)
  check_open(self, "readline")
  if maxbytes ~= nil then maxbytes = check.count(maxbytes, 1, "readline", nil) end
  check.task("readline")
  check_reader(self, "readline")
  local scanned = -1 -- -1: the first chunk is not searched yet
  while true do
    if scanned < 0 then
      local buffer, pos = self._buffer, self._pos
      local at = buffer:find("\n", pos, true)
      if at then
        local len = at - pos + 1
        return take(self, maxbytes and math.min(len, maxbytes) or len)
      end
      scanned = 0
    end
    -- the bytes searched: all that is buffered now but the chunks not
    -- searched yet (the one a wait added)
    local len, more = buffered(self), self._more
    if more ~= nil then
      for i = scanned + 1, #more do len = len - #more[i] end
      for i = scanned + 1, #more do
        local chunk = more[i]
        local at = chunk:find("\n", 1, true)
        if at then
          len = len + at
          return take(self, maxbytes and math.min(len, maxbytes) or len)
        end
        len = len + #chunk
      end
      scanned = #more
    end
    if maxbytes and len >= maxbytes then return take(self, maxbytes) end
    if not fill(self) then return take(self, buffered(self)) end
    if len == 0 then scanned = -1 end -- the chunk became the first one
  end
end

-- stream:readlines() -> list of every line left.
function Stream:readlines()
  check_open(self, "readlines")
  check.task("readlines")
  check_reader(self, "readlines")
  local lines = {}
  while true do
    local line = self:readline()
    if line == "" then return lines end
    lines[#lines + 1] = line
  end
end

-- for line in stream:lines() do ... end (each line keeps its "\n").
function Stream:lines()
  check_open(self, "lines")
  return function()
    local line = self:readline()
    if line ~= "" then return line end
    return nil
  end
end

-- Rule 5: raises WriteResourceBusy when another task waits inside a write.
local function check_writer(self)
  local writer = self._writer
  if writer ~= nil and not writer.terminated then
    error(WriteResourceBusy("write: another task is already writing to this stream"), 3)
  end
  self._writer = nil
end

-- stream:write(data) -> number of bytes written (rule 2).
function Stream:write(data)
  if self._closed then check_open(self, "write") end
  if self._guarded and data ~= nil then -- (rule 8; a tail call: a frame less)
    return self._source:write(data) -- (the source returns #data)
  end
  if type(data) ~= "string" then
    check.arg_error(1, "write", "string expected, got " .. (data == nil and "no value" or type(data)))
  end
  local task = current_task()
  if task == nil then check.task("write") end
  if self._writer ~= nil then check_writer(self) end
  local source = self._source
  self._writer = task
  local ok, n = pcall(source.write, source, data)
  self._writer = nil
  if not ok then error(n, 0) end
  return n
end

-- stream:writelines(list): writes every string of list, in one go.
function Stream:writelines(list)
  check_open(self, "writelines")
  check.table(list, 1, "writelines")
  for i = 1, #list do
    if type(list[i]) ~= "string" then
      check.arg_error(1, "writelines", ("list of strings expected, got %s at #%d"):format(type(list[i]), i))
    end
  end
  return self:write(table.concat(list))
end

function Stream:flush()
  check_open(self, "flush")
end

function Stream:fileno()
  check_open(self, "fileno")
  return self._source:fileno()
end

-- stream:close(): closes the source once (rule 3).
function Stream:close()
  if self._closed then return end
  self._closed = true
  self._buffer, self._pos, self._more, self._nmore = "", 1, nil, nil
  self._source:close()
end

Stream.__close = Stream.close

function Stream:__tostring()
  return ("Stream (%s)"):format(self._closed and "closed" or "open")
end

---------------------------------------------------------------- aopen

local run_in_thread, fd_read, fd_write = core.run_in_thread, core.fd_read, core.fd_write
local set_cancellable, check_cancellation = core.set_cancellable, core.check_cancellation

local function raise_os(level, fname, path, errno, code, message)
  error(OSError(("%s: %s: %s"):format(fname, path, message),
                { errno = errno, code = code, strerror = message, filename = path }), level)
end

-- The source of a file stream: { handle = core.fd_open's handle, path,
-- regular = a regular file (rule 7) }. (Its stream lets one job at a time
-- run: rule 5.)
local FileSource = {}
FileSource.__index = FileSource

local function job_done(self, fname, cancellable, ok, result, errno, code, message)
  if cancellable ~= nil then set_cancellable(cancellable) end
  if not ok then error(result, 0) end
  if result == nil then raise_os(3, fname, self.path, errno, code, message) end
  return result
end

-- Runs job(handle, arg) in a worker thread (the handle crosses, never its
-- number: core/fileio.c rule 2); a regular file's job is not interrupted
-- (rule 7), a pending cancellation is raised before it.
local function file_job(self, fname, job, arg)
  local cancellable
  if self.regular then
    check_cancellation()
    cancellable = set_cancellable(false)
  end
  return job_done(self, fname, cancellable, pcall(run_in_thread, job, self.handle, arg))
end

function FileSource:read(n)
  return file_job(self, "read", fd_read, n)
end

function FileSource:write(data)
  return file_job(self, "write", fd_write, data)
end -- (fd_write returns the bytes written: all of them)

function FileSource:close() self.handle:close() end
function FileSource:fileno() return self.handle:fileno() end

-- curio.aopen(path, mode) -> a file stream (mode as io.open's: "r", "w",
-- "a", with "+" and "b"); the file is opened at once, its reads and writes
-- run in worker threads.
function io_.aopen(path, mode)
  check.cstring(path, 1, "aopen")
  local valid = type(mode) == "string" and (mode:match("^[rwa]%+?b?$") or mode:match("^[rwa]b%+$"))
  if mode ~= nil and not valid then
    check.arg_error(2, "aopen", "invalid mode " .. check.shown(mode))
  end
  local handle, errno, code, message = core.fd_open(path, mode or "r") -- (errno: regular)
  if handle == nil then raise_os(3, "aopen", path, errno, code, message) end
  return io_.Stream(setmetatable({ handle = handle, path = path, regular = errno }, FileSource))
end

return io_
