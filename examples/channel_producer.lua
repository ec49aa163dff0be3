-- A producer that hands 10,000 jobs to workers over a curio.Channel and
-- gathers their results (examples/channel_worker.lua is the worker).
--   lua5.4 examples/channel_producer.lua [ADDRESS [LOCAL_WORKERS]]
--   ADDRESS: host:port (default 127.0.0.1:0, a port the system picks) or
--            the path of a unix socket
--   LOCAL_WORKERS: how many workers to start here as subprocesses
--            (default 3); with 0, the producer waits for workers started
--            elsewhere, in other terminals or on other machines
-- Waiting for workers from elsewhere, it says where it listens and how
-- many jobs each worker did. Workers authenticate with CURIO_CHANNEL_KEY
-- (or the example's default key).
local curio = require "curio"

local JOBS, WINDOW = 10000, 32 -- jobs in all; jobs in flight per worker
local address = arg[1] or "127.0.0.1:0"
local local_workers = math.tointeger(tonumber(arg[2] or "3"))
local authkey = os.getenv("CURIO_CHANNEL_KEY") or "curio example key"

local function parse(text)
  local host, port = text:match("^(.*):(%d+)$")
  if host then return { host, math.tointeger(tonumber(port)) } end
  return text
end

-- Serves one worker: sends it jobs from the queue, WINDOW at most in
-- flight, and records each result; a nil job tells it to stop.
local function serve(conn, jobs, results, all_done)
  local name = conn:recv()
  local window = curio.Semaphore(WINDOW)
  local feeder = curio.spawn(function()
    while not jobs:empty() do
      window:acquire()
      if jobs:empty() then break end
      local id = jobs:get()
      conn:send({ id = id, n = id })
    end
    conn:send(nil)
    conn:flush() -- (sends are queued: the stop is with the system before the close)
  end)
  local count = 0
  while results.n < JOBS do
    local ok, result = pcall(conn.recv, conn)
    if not ok then break end -- the worker has gone (after its last job)
    results[result.id] = (results[result.id] or 0) + 1
    results.sum = results.sum + result.value
    results.n = results.n + 1
    count = count + 1
    window:release()
  end
  if results.n == JOBS then all_done:set() end
  feeder:join()
  if local_workers == 0 then print(("%s did %d jobs"):format(name, count)) end
end

curio.run(function()
  local ch <close> = curio.Channel(parse(address))
  local bound = ch:bind()
  local where = type(bound) == "table" and (bound[1] .. ":" .. bound[2]) or bound
  if local_workers == 0 then print("producer listening on " .. where) end
  local jobs = curio.Queue()
  for id = 1, JOBS do jobs:put(id) end
  local results = { n = 0, sum = 0 }
  local all_done = curio.Event()
  local workers = {}
  for i = 1, local_workers do
    -- the same program runs them (lua5.4, or the curio program)
    local script = arg[0]:gsub("channel_producer", "channel_worker")
    workers[i] = curio.subprocess.Popen({ arg[-1], script, where, "worker-" .. i },
                                        { stdout = curio.subprocess.DEVNULL })
  end
  local group = curio.TaskGroup()
  local accepting = group:spawn(function()
    while true do
      -- a client with another key (or none) is refused, and the next one
      -- accepted (curio.pcall lets the cancellation at the end through)
      local ok, conn = curio.pcall(ch.accept, ch, { authkey = authkey })
      if ok then
        group:spawn(function()
          local _ <close> = conn
          serve(conn, jobs, results, all_done)
        end)
      else
        io.stderr:write("refused a worker: ", tostring(conn), "\n")
      end
    end
  end)
  all_done:wait()
  accepting:cancel()
  group:join()
  for _, p in ipairs(workers) do p:wait() end
  local once = true
  for id = 1, JOBS do once = once and results[id] == 1 end
  print(("results: %d"):format(results.n))
  print(("every job done once: %s"):format(once))
  print(("total steps: %d"):format(results.sum))
end)
