-- A small workload for valgrind memcheck (make check): tasks, joins,
-- cancellation, timeouts, wait queues, curio.coroutine and kernel reuse.
-- Prints one line and exits 0; valgrind's exit status tells the rest.
local curio = require "curio"
local core = require "curio.core"

local results = {}
curio.run(function()
  local tasks = {}
  for i = 1, 50 do
    tasks[i] = curio.spawn(function(x) curio.sleep(0.001 * (x % 3)) return x end, i)
  end
  local sum = 0
  for _, t in ipairs(tasks) do sum = sum + t:join() end
  results[#results + 1] = sum
  local q = core.waitq()
  local waiter = curio.spawn(function() return q:wait() end)
  curio.sleep(0)
  q:wake(1, "handed")
  results[#results + 1] = waiter:join()
  local victim = curio.spawn(function() curio.sleep(10) end)
  curio.sleep(0)
  victim:cancel()
  results[#results + 1] = select(2, curio.ignore_after(0.005, curio.sleep, 1)) == curio.TIMEOUT
  local ok = pcall(curio.timeout_after, 0.005, function()
    curio.timeout_after(1, curio.sleep, 1)
  end)
  results[#results + 1] = ok
  local gen = curio.coroutine.wrap(function()
    for i = 1, 3 do curio.sleep(0) curio.coroutine.yield(i) end
  end)
  results[#results + 1] = gen() + gen() + gen()
  local g = curio.TaskGroup()
  for i = 1, 20 do g:spawn(function() curio.sleep(0.001 * (i % 3)) return i end) end
  g:spawn_daemon(function() curio.sleep(10) end)
  local first = g:next_done()
  g:add_task(curio.spawn(function() return 0 end))
  g:join()
  results[#results + 1] = first ~= nil and #g:results()
  local fifo = curio.Queue(2)
  local producer = curio.spawn(function() for i = 1, 50 do fifo:put(i) end end)
  local got = 0
  for _ = 1, 50 do got = got + fifo:get() end
  producer:join()
  results[#results + 1] = got
  -- a PriorityQueue: its heap grows past its first arrays, putters block
  -- carrying {item, priority}, and one is collected holding items
  local pq, held = curio.PriorityQueue(40), curio.PriorityQueue()
  local pproducer = curio.spawn(function() for i = 1, 100 do pq:put(i, i % 7 + 0.5) end end)
  curio.sleep(0)
  got = 0
  for _ = 1, 100 do got = got + pq:get() end
  pproducer:join()
  for i = 1, 30 do held:put({ i }, -i) end
  results[#results + 1] = got + held:qsize()
  curio.spawn(function() error("unjoined") end)
  curio.spawn_daemon(function() curio.sleep(10) end)
  curio.sleep(0.001)
end)
local k = curio.Kernel()
k:run(function() curio.spawn(function() curio.sleep(10) end) end)
k:close()
-- shutdown with cleanups that block, one stuck past the grace period
do
  local k2 <close> = curio.Kernel({ shutdown_timeout = 0.05 })
  k2:run(function()
    curio.spawn(function() pcall(curio.sleep, 10); curio.sleep(0.001) end)
    curio.spawn(function() pcall(curio.sleep, 10); curio.Event():wait() end).name = "stuck"
    local q = curio.Queue()
    curio.spawn(function() return q:get() end)
    curio.sleep(0)
    q:put("reserved") -- the getter is woken, not yet run, when the kernel closes
  end)
end
-- worker threads: results, an error, a call cancelled while it runs
do
  local k3 = curio.Kernel({ threads = 2 })
  k3:run(function()
    local t = curio.spawn(curio.run_in_thread, function()
      local t0 = os.clock()
      while os.clock() - t0 < 0.05 do end
    end)
    results[#results + 1] = curio.run_in_thread(function(a, b) return a .. b end, "th", "read")
    pcall(curio.run_in_thread, error, "boom")
    curio.sleep(0.01)
    t:cancel()
    -- Universal objects in bytes never decoded: a call dropped before a
    -- thread took it, items of a queue freed untaken, an orphaned result
    local q, inner = curio.UniversalQueue(), curio.UniversalQueue()
    q:put({ inner, curio.UniversalEvent() })
    local busy = curio.spawn(curio.run_in_thread, function()
      local t0 = os.clock()
      while os.clock() - t0 < 0.05 do end
    end)
    local busy2 = curio.spawn(curio.run_in_thread, function()
      local t0 = os.clock()
      while os.clock() - t0 < 0.05 do end
    end)
    local dropped = curio.spawn(curio.run_in_thread, function(x) return x end, curio.UniversalLock())
    local orphan = curio.spawn(curio.run_in_thread, function(e) return e end, curio.UniversalEvent())
    curio.sleep(0.01)
    dropped:cancel()
    orphan:cancel()
    busy:join()
    busy2:join()
    -- queues that hold themselves or each other: collected, with what
    -- they hold (a definite leak otherwise)
    for _ = 1, 3 do
      local a, b = curio.UniversalQueue(), curio.UniversalQueue()
      a:put(a)
      a:put({ b, curio.UniversalEvent() })
      b:put(a)
    end
  end)
  k3:close()
  collectgarbage()
end
-- many tasks, most never given a coroutine of their own before they run
curio.run(function()
  local tasks = {}
  for i = 1, 500 do tasks[i] = curio.spawn(function() end) end
  for i = 1, 500, 3 do tasks[i].name = "t" .. i end
  for i = 1, 500 do tasks[i]:join() end
  local t = curio.spawn(function() return curio.timeout_after(1, curio.sleep, 0) end)
  t:join()
  results[#results + 1] = #tasks
end)
-- sockets: a server, clients, streams, UDP, a kernel closed mid-wait
curio.run(function()
  local listener = curio.tcp_server_socket("127.0.0.1", 0)
  local port = listener:getsockname().port
  local server = curio.spawn(curio.run_server, listener, function(client)
    local s = client:as_stream()
    for line in s:lines() do s:write(line) end
  end)
  local total = 0
  for _ = 1, 5 do
    local c <close> = curio.open_connection("127.0.0.1", port)
    local s = c:as_stream()
    s:write("one\ntwo\n")
    total = total + #s:readline() + #s:readline()
  end
  local u1, u2 = curio.socket("inet", "dgram"), curio.socket("inet", "dgram")
  u1:bind({ "127.0.0.1", 0 })
  u2:sendto("dgram", u1:getsockname())
  total = total + #u1:recvfrom(100)
  u1:close()
  server:cancel()
  results[#results + 1] = total
end)
do
  local kernel = curio.Kernel()
  local a = curio.socket()
  kernel:run(function()
    a:bind({ "127.0.0.1", 0 })
    a:listen()
    curio.spawn(function() a:accept() end)
    curio.sleep(0)
  end)
  kernel:close()
  a:close()
end
-- channels: gathered sends (written before the poll, by the buffer's own
-- watcher, when held back, at the kernel's end), a held send cancelled
do
  local kept
  local kernel = curio.Kernel()
  kernel:run(function()
    local server, client = dofile("spec/support/channels.lua").pair({ unix = true })
    client._wsock:setsockopt("SO_SNDBUF", 4096)
    for i = 1, 50 do client:send({ i = i, pad = ("p"):rep(900) }) end
    local n = 0
    for _ = 1, 50 do n = n + server:recv().i end
    local sent = 0
    local held = curio.spawn(function()
      while true do
        client:send_bytes(("z"):rep(1000))
        sent = sent + 1
      end
    end)
    while require("curio.core").out_pending(client._wsock) < 65536 do curio.sleep(0) end
    held:cancel()
    for _ = 1, sent do if #server:recv_bytes() ~= 1000 then n = -1 end end
    client:send("last")
    results[#results + 1] = n
    kept = { server, client }
  end) -- (the kernel's last write: "last")
  kernel:close()
  curio.run(function()
    results[#results + 1] = kept[1]:recv()
  end)
  kept[2]:close()
  kept[1]:close()
end

-- big blocks: Channel messages over 1 MiB read in place into their
-- strings (core/bigblock.c, sockbuf.c rule 4), one left half read in a
-- holder, and freed blocks kept in the allocator when the state closes
curio.run(function()
  local server, client = dofile("spec/support/channels.lua").pair()
  local sizes = { 1048575, 1048576, 3 * 1048576 + 7, 40 }
  local sender = curio.spawn(function()
    for i, n in ipairs(sizes) do client:send_bytes(string.char(64 + i):rep(n)) end
  end)
  local same = true
  for i, n in ipairs(sizes) do same = same and server:recv_bytes() == string.char(64 + i):rep(n) end
  sender:join()
  local holder = core.growbuf()
  local reading = curio.spawn(core.read_frame, server._rsock, holder, 1 << 30)
  client._wsock:sendall(string.pack(">I4", 2 * 1048576) .. ("h"):rep(1048576))
  while holder:size() <= 4 do curio.sleep(0) end -- (the payload's block taken)
  reading:cancel()
  _G.memcheck_half_read = { server, client, holder } -- closed by lua_close
  results[#results + 1] = same and holder:size() > 4
end)
-- processes: subprocesses (under valgrind, which lacks pidfd_open, the
-- polled fallback), pipes, a worker process, a child left to the reaper
curio.run(function()
  local sp = curio.subprocess
  local total = #sp.check_output({ "echo", "memcheck" })
  local r = sp.run({ "cat" }, { input = ("m"):rep(100000), capture_output = true })
  total = total + #r.stdout + r.returncode
  local p = sp.Popen({ "sleep", "5" })
  p:kill()
  total = total + p:wait()
  sp.Popen({ "true" }) -- never waited for
  total = total + curio.run_in_process(function(x) return x * 2 end, 21)
  results[#results + 1] = total
end)
-- the monitor (ps, where, cancel over a socket, a client gone mid-reply,
-- one left open at the kernel's close) and the long-block check
do
  local k4 <close> = curio.Kernel({ debug = { longblock = 0.02 } })
  k4:run(function()
    local m = curio.monitor({ port = 0 })
    local e = curio.Event()
    local waiter = curio.spawn(function() e:wait() end)
    waiter.name = "waiter"
    local t0 = curio.clock()
    while curio.clock() - t0 < 0.03 do end -- (reported on stderr)
    local c = curio.open_connection(m.host, m.port)
    c:sendall("ps\nwhere " .. waiter.id .. "\ncancel " .. waiter.id .. "\nbogus\nquit\n")
    local total = 0
    while true do
      local data = c:recv(65536)
      if data == "" then break end
      total = total + #data
    end
    c:close()
    curio.open_connection(m.host, m.port):sendall(("ps\n"):rep(50)) -- left open, unread
    results[#results + 1] = total > 0 and waiter.cancelled and #require("curio.monitor").ps() > 0
  end)
end
-- TLS: handshakes (one failing verification), an echo both ways, a write
-- interrupted in a record and finished, STARTTLS's unwrap (bytes after
-- close_notify given back), close_notify, a
-- TLS socket collected open and a kernel closed while TLS tasks wait
do
  local certs = dofile("spec/support/certs.lua").make()
  local tlsnet = dofile("spec/support/tlsnet.lua")
  local k5 = curio.Kernel()
  k5:run(function()
    local server_ctx, client_ctx = tlsnet.contexts(certs)
    local client, server = tlsnet.pair(server_ctx, client_ctx)
    local data = tlsnet.bytes(300000, 3)
    client:setsockopt("SO_SNDBUF", 4096)
    local err = select(2, pcall(curio.timeout_after, 0.02, client.sendall, client, data))
    local reader = curio.spawn(function()
      local got = {}
      for _ = 1, 1000 do
        got[#got + 1] = server:recv(65536)
        if #table.concat(got) >= #data then break end
      end
      return table.concat(got)
    end)
    client:sendall(data:sub((err and err.bytes_sent or #data) + 1))
    local echoed = reader:join() == data
    client:sendall("one")
    client:sendall("two") -- (both records in the server's read-ahead)
    local partly, rest = server:recv(2) == "on", server:recv(100)
    if #rest < 4 then rest = rest .. server:recv(100) end
    partly = partly and rest == "etwo"
    local unwrapping = curio.spawn(server.unwrap, server)
    curio.sleep(0)
    local plain = client:unwrap()
    plain:sendall("plain bytes after close_notify")
    local plain2 = unwrapping:join()
    partly = partly and plain2:recv(5) == "plain" -- (the rest, given back, goes with the socket)
    plain:close()
    plain2:close()
    local bad = pcall(tlsnet.pair, tlsnet.contexts(certs, "expired"), client_ctx)
    local c2, s2 = tlsnet.pair(server_ctx, client_ctx)
    c2:close()
    local eof = s2:recv(10) == ""
    curio.spawn(s2.recv, s2, 10) -- waits when the kernel closes
    tlsnet.pair(server_ctx, client_ctx) -- both sockets collected open
    results[#results + 1] = echoed and partly and not bad and eof
  end)
  k5:close()
  certs.remove()
end
collectgarbage()
local printed = {}
for i = 1, #results do printed[i] = tostring(results[i]) end
print(table.concat(printed, " "))
