-- A worker for examples/channel_producer.lua: connects to the producer's
-- Channel, runs each job it is handed and sends back the result, until
-- the producer says there is no more work (a nil job).
--   lua5.4 examples/channel_worker.lua ADDRESS [NAME]
--   ADDRESS: host:port, or the path of a unix socket
-- The key is the producer's: CURIO_CHANNEL_KEY in the environment, or the
-- example's default.
local curio = require "curio"

local address = arg[1] or "127.0.0.1:25500"
local name = arg[2] or ("worker-" .. tostring(os.time()))
local authkey = os.getenv("CURIO_CHANNEL_KEY") or "curio example key"

-- "host:port" -> {host, port}; anything else is a unix path.
local function parse(text)
  local host, port = text:match("^(.*):(%d+)$")
  if host then return { host, math.tointeger(tonumber(port)) } end
  return text
end

-- The work: how many steps n takes to reach 1 (the Collatz sequence).
local function steps(n)
  local count = 0
  while n ~= 1 do
    n = n % 2 == 0 and n // 2 or 3 * n + 1
    count = count + 1
  end
  return count
end

curio.run(function()
  -- (the producer may not listen yet: connect tries again until it does)
  local conn <close> = curio.timeout_after(30, function()
    return curio.Channel(parse(address)):connect({ authkey = authkey })
  end)
  conn:send(name) -- who we are
  local done = 0
  while true do
    local job = conn:recv()
    if job == nil then break end
    conn:send({ id = job.id, value = steps(job.n) })
    done = done + 1
  end
  print(("%s: %d jobs done"):format(name, done))
end)
