local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Random programs (fixed seeds) mixing spawns, sleeps, nested timeouts,
-- cancellations, joins, events, queues and groups. Whatever the
-- interleaving, every task must end with a result or an error of the
-- expected kinds, no item may be lost, and the kernel must end clean.
describe("the kernel under random load", function()

  local function program(seed)
    local random = math.random
    math.randomseed(seed)
    local outcome = { ended = 0, cancelled = 0, timed_out = 0, ok = 0, items_in = 0, items_out = 0 }
    curio.run(function()
      local queue, event = curio.Queue(8), curio.Event()
      local tasks = {}
      local function worker(id, depth)
        local ok, err = curio.pcall(function()
          for _ = 1, random(3, 8) do
            local action = random(1, 6)
            if action == 1 then
              curio.sleep(random() * 0.002)
            elseif action == 2 then
              curio.ignore_after(random() * 0.002, curio.sleep, 0.01)
            elseif action == 3 then
              queue:put(id)
              outcome.items_in = outcome.items_in + 1
            elseif action == 4 and depth < 3 then
              local child = curio.spawn(worker, id * 10, depth + 1)
              tasks[#tasks + 1] = child
              curio.timeout_after(random() * 0.003, child.wait, child)
            elseif action == 5 then
              curio.ignore_after(random() * 0.002, event.wait, event)
            else
              curio.TaskGroup(function(g)
                for _ = 1, random(1, 3) do g:spawn(curio.sleep, random() * 0.001) end
              end)
            end
          end
        end)
        if not ok then error(err, 0) end
        return id
      end
      local consumer = curio.spawn(function()
        while true do
          queue:get()
          outcome.items_out = outcome.items_out + 1
        end
      end)
      for id = 1, 40 do tasks[#tasks + 1] = curio.spawn(worker, id, 0) end
      for _ = 1, 30 do
        curio.sleep(random() * 0.002)
        local victim = tasks[random(1, #tasks)]
        victim:cancel({ blocking = random() < 0.5 })
        if random() < 0.2 then event:set(); event:clear() end
      end
      for _, t in ipairs(tasks) do
        t:wait()
        outcome.ended = outcome.ended + 1
        local err = t.exception
        if err == nil then outcome.ok = outcome.ok + 1
        elseif curio.TaskCancelled:matches(err) then outcome.cancelled = outcome.cancelled + 1
        elseif curio.TaskTimeout:matches(err) or curio.TimeoutCancellationError:matches(err) then
          outcome.timed_out = outcome.timed_out + 1
        else
          error("unexpected task error: " .. tostring(err))
        end
      end
      while not queue:empty() do curio.sleep(0.001) end
      consumer:cancel()
      outcome.tasks = #tasks
    end)
    return outcome
  end

  for _, seed in ipairs({ 1, 2, 3, 4, 5, 6, 7, 8 }) do
    it("ends every task and loses no item, seed " .. seed, function()
      local o = program(seed)
      assert.are.equal(o.tasks, o.ended)
      assert.are.equal(o.ended, o.ok + o.cancelled + o.timed_out)
      assert.are.equal(o.items_in, o.items_out)
      assert.is_true(o.ok > 0 and o.cancelled + o.timed_out > 0, "the mix ended tasks both ways")
    end)
  end
end)

-- Many tasks reading and writing the same streams (socket, pipe and file
-- streams) under random timeouts and cancellations (fixed seeds). Writers
-- write numbered lines, retry when busy and finish a line a timeout or a
-- cancellation cut (err.bytes_sent) before anything else; readers mix
-- readline, read and read_exactly, and retry when busy. Every byte is
-- checked: what was read, in the order it was read, is exactly what was
-- written, in the order it was written (one writer and one reader at a
-- time: the order of the calls is the order in the stream).
describe("streams shared by many tasks under random timeouts and cancellations", function()
  local core = require "curio.core"
  local WRITERS, READERS, LINES = 4, 4, 300

  -- Writes lines "w<id> <seq>" to stream; appends each whole line to
  -- written once it is all in the stream.
  local function writer(stream, id, written, random)
    for seq = 1, LINES do
      local line = ("w%d %d %s\n"):format(id, seq, ("x"):rep(random() < 0.05 and random(0, 40000) or random(0, 40)))
      local rest = line
      while rest ~= "" do
        local ok, err = pcall(curio.timeout_after, random() * 0.002, stream.write, stream, rest)
        if ok then
          rest = ""
        elseif curio.WriteResourceBusy:matches(err) then -- nothing written
          curio.sleep(random() * 0.001)
        elseif curio.TaskTimeout:matches(err) then
          rest = rest:sub((err.bytes_sent or 0) + 1)
        elseif curio.TaskCancelled:matches(err) then
          rest = rest:sub((err.bytes_sent or 0) + 1)
          if rest ~= line then -- a line begun: finish it, then stop
            curio.disable_cancellation(stream.write, stream, rest)
            written[#written + 1] = line
          end
          return
        else
          error(err, 0)
        end
      end
      written[#written + 1] = line
      curio.sleep(random() < 0.2 and random() * 0.001 or 0) -- (let the others in)
    end
  end

  -- Reads until the end, appending what each call returns to got.
  local function reader(stream, got, random)
    while true do
      local action, limit = random(1, 3), random() * 0.003
      local method, n = stream.readline, nil
      if action == 2 then method, n = stream.read, random(1, 60)
      elseif action == 3 then method, n = stream.read_exactly, random(1, 30) end
      local ok, data = pcall(curio.timeout_after, limit, method, stream, n)
      if not ok and curio.IncompleteRead:matches(data) then -- (the end, read_exactly)
        got[#got + 1] = data.partial
        return
      end
      if ok then
        if data == "" then return end
        got[#got + 1] = data
        if random() < 0.03 then curio.sleep(random() * 0.006) end -- (writers fill the buffers)
      elseif curio.ReadResourceBusy:matches(data) then
        curio.sleep(random() * 0.001)
      elseif not curio.TaskTimeout:matches(data) then -- (a timeout took nothing)
        error(data, 0)
      end
    end
  end

  -- Runs writers on wstream and readers on rstream (nil: writers only;
  -- wstream nil: readers only) while a monkey cancels random ones;
  -- cancelled readers are replaced. Closes wstream once the writers end.
  local function run(wstream, rstream, written, got, random)
    local writers, readers = {}, {}
    if wstream then
      for id = 1, WRITERS do writers[id] = curio.spawn(writer, wstream, id, written, random) end
    end
    if rstream then
      for i = 1, READERS do readers[i] = curio.spawn(reader, rstream, got, random) end
    end
    local function alive(list)
      for _, t in ipairs(list) do if not t.terminated then return true end end
      return false
    end
    local cancels, writers_cancelled = 0, 0
    while alive(wstream and writers or readers) do
      curio.sleep(random() * 0.002)
      local pick_writer = wstream ~= nil and (rstream == nil or random() < 0.2)
      if pick_writer and writers_cancelled == WRITERS - 1 then pick_writer = rstream == nil end
      local list = pick_writer and writers or readers
      local i = random(1, #list)
      if #list > 0 and not list[i].terminated and cancels < 30 and
         not (pick_writer and writers_cancelled == WRITERS - 1) then
        list[i]:cancel()
        cancels = cancels + 1
        if pick_writer then writers_cancelled = writers_cancelled + 1
        else readers[i] = curio.spawn(reader, rstream, got, random) end
      end
    end
    if wstream then wstream:close() end
    for _, t in ipairs(readers) do t:wait() end
    for _, t in ipairs(writers) do t:wait() end
    for _, t in ipairs(readers) do
      if t.exception and not curio.TaskCancelled:matches(t.exception) then error(t.exception, 0) end
    end
    for _, t in ipairs(writers) do
      if t.exception and not curio.TaskCancelled:matches(t.exception) then error(t.exception, 0) end
    end
    return cancels
  end

  -- A connected pair with small buffers (set before connecting, inherited
  -- from the listener): writers wait, and timeouts cut their writes.
  local function pair()
    local listener <close> = curio.socket("inet", "stream")
    listener:setsockopt("SO_RCVBUF", 8192)
    listener:bind({ "127.0.0.1", 0 })
    listener:listen()
    local accepted = curio.spawn(function() return listener:accept() end)
    local client = curio.socket("inet", "stream")
    client:setsockopt("SO_SNDBUF", 8192)
    client:connect(listener:getsockname())
    return client:as_stream(), accepted:join():as_stream()
  end

  local function pipe()
    local r, w = core.pipe()
    local as_stream = core.socket_methods.as_stream
    return as_stream(core.pipe_object(w)), as_stream(core.pipe_object(r))
  end

  local function check(written, got)
    local expected, actual = table.concat(written), table.concat(got)
    assert.is_true(#written > 0)
    assert.are.equal(#expected, #actual)
    assert.is_true(expected == actual, "what was read differs from what was written")
  end

  for _, seed in ipairs({ 1, 2, 3 }) do
    for _, kind in ipairs({ "socket", "pipe" }) do
      it(("loses, duplicates and corrupts no byte of a %s stream, seed %d"):format(kind, seed), function()
        local written, got = {}, {}
        local cancels = curio.run(function()
          local random = math.random
          math.randomseed(seed)
          local w, r = (kind == "socket" and pair or pipe)()
          local n = run(w, r, written, got, random)
          r:close()
          return n
        end)
        assert.is_true(cancels > 0)
        check(written, got)
      end)
    end

    it(("loses, duplicates and corrupts no byte of a file stream, seed %d"):format(seed), function()
      local path = os.tmpname()
      local written, got = {}, {}
      local cancels = curio.run(function()
        local random = math.random
        math.randomseed(seed)
        local cancels = run(curio.aopen(path, "w"), nil, written, got, random)
        local r <close> = curio.aopen(path)
        return cancels + run(nil, r, written, got, random)
      end)
      os.remove(path)
      assert.is_true(cancels > 0)
      check(written, got)
    end)
  end
end)
