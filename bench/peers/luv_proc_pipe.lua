-- proc_pipe on luv: uv.spawn("head", {"-c", BYTES, "/dev/zero"}) with a
-- uv.new_pipe() as stdout, read_start collecting the chunks (libuv reads at
-- most 64 KiB at a time) in a table and counting their bytes; at the end of
-- stream the chunks are joined once (table.concat) into one string, as
-- check_output returns one, whose length is checked; the clock stops when
-- both the end of stream and the exit have been seen. MIB is the first
-- argument (default 100). n=1, ops_per_sec = 1/seconds; extra lines: bytes,
-- mib, mib_per_sec, read_seconds (spawn to end of stream, the chunks kept
-- but not yet joined), chunks.
package.path = (arg[0]:match("^(.*/)") or "./") .. "../?.lua;" .. package.path
local b = require "benchlib"
local uv = b.require("luv", "proc_pipe", "luv")
local mib = b.n(100)
local bytes = mib * 1048576

local chunks, count, out, exited, t_eof, t1 = {}, 0, nil, false, nil, nil
local function finish()
  if out and exited then t1 = uv.hrtime() end
end

local t0 = uv.hrtime()
local stdout = uv.new_pipe(false)
local handle
handle = assert(uv.spawn("head", { args = { "-c", tostring(bytes), "/dev/zero" },
  stdio = { 0, stdout, 2 } }, function(code, signal)
  assert(code == 0 and signal == 0, "head failed")
  handle:close()
  exited = true
  finish()
end))
stdout:read_start(function(err, chunk)
  assert(not err, err)
  if chunk then
    count = count + #chunk
    chunks[#chunks + 1] = chunk
  else
    t_eof = uv.hrtime()
    stdout:close()
    out = table.concat(chunks)
    finish()
  end
end)
uv.run()
assert(#out == bytes and count == bytes, "short output")
local seconds = (t1 - t0) / 1e9
b.emit("bench", "proc_pipe", "impl", "luv", "n", 1, "seconds", seconds,
  "ops_per_sec", string.format("%.3f", 1 / seconds), "bytes", bytes, "mib", mib,
  "mib_per_sec", string.format("%.1f", mib / seconds), "read_seconds", (t_eof - t0) / 1e9,
  "chunks", #chunks)
