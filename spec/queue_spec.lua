local curio = require "curio"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local catch = util.catch

local traced = util.traced

-- Gets every item left without waiting.
local function drain(q)
  local items = {}
  while not q:empty() do items[#items + 1] = q:get() end
  return items
end

describe("Queue", function()

  it("gives items back in the order they were put", function()
    local items = curio.run(function()
      local q = curio.Queue()
      for _, item in ipairs({ "a", false, 3, "d" }) do q:put(item) end
      return drain(q)
    end)
    assert.are.same({ "a", false, 3, "d" }, items)
  end)

  it("keeps order while its storage wraps around and grows", function()
    local got = curio.run(function()
      local fifo, lifo, out, expected = curio.Queue(), curio.LifoQueue(), {}, {}
      local next_in, next_out = 1, 1
      for round = 1, 40 do -- sizes rise and fall across the ring's edges
        for _ = 1, round % 7 * 5 + 3 do fifo:put(next_in); next_in = next_in + 1 end
        for _ = 1, round % 5 * 4 + 2 do
          if fifo:empty() then break end
          out[#out + 1] = fifo:get()
          expected[#expected + 1] = next_out
          next_out = next_out + 1
        end
      end
      while not fifo:empty() do
        out[#out + 1] = fifo:get(); expected[#expected + 1] = next_out; next_out = next_out + 1
      end
      for i = 1, 100 do lifo:put(i) end
      local lifo_out = {}
      for _ = 1, 100 do lifo_out[#lifo_out + 1] = lifo:get() end
      return { fifo = out, lifo_first = lifo_out[1], lifo_last = lifo_out[100], expected = expected,
               count = next_in - 1, size = fifo:qsize() + lifo:qsize() }
    end)
    assert.are.same(got.expected, got.fifo)
    assert.are.same({ 100, 1, got.count, 0 }, { got.lifo_first, got.lifo_last, #got.fifo, got.size })
  end)

  it("reports its size, emptiness and fullness", function()
    local trace = traced(function(record)
      local q = curio.Queue(2)
      record(q:qsize(), q:empty(), q:full(), q.maxsize)
      q:put(1)
      record(q:qsize(), q:empty(), q:full())
      q:put(2)
      record(q:qsize(), q:empty(), q:full())
      local unbounded = curio.Queue(0)
      for i = 1, 100 do unbounded:put(i) end
      record(unbounded:qsize(), unbounded:full())
    end)
    assert.are.same({ "0 true false 2", "1 false false", "2 false true", "100 false" }, trace)
  end)

  it("makes put wait while the queue is full, and lets putters in in order", function()
    local trace = traced(function(record)
      local q = curio.Queue(1)
      q:put("first")
      local putters = {}
      for i = 1, 3 do
        putters[i] = curio.spawn(function() q:put("p" .. i); record("put p" .. i .. " done") end)
      end
      curio.sleep(0)
      record("size", q:qsize())
      for _ = 1, 4 do record("got", q:get()); curio.sleep(0) end
      for _, t in ipairs(putters) do t:join() end
    end)
    assert.are.same({
      "size 1", "got first", "put p1 done", "got p1", "put p2 done", "got p2", "put p3 done", "got p3",
    }, trace)
  end)

  it("serves getters in arrival order", function()
    local trace = traced(function(record)
      local q = curio.Queue()
      local getters = {}
      for i = 1, 3 do
        getters[i] = curio.spawn(function() record("getter", i, "got", q:get()) end)
      end
      curio.sleep(0)
      for _, item in ipairs({ "x", "y", "z" }) do q:put(item) end
      for _, t in ipairs(getters) do t:join() end
    end)
    assert.are.same({ "getter 1 got x", "getter 2 got y", "getter 3 got z" }, trace)
  end)

  it("makes join wait until every item had its task_done", function()
    local trace = traced(function(record)
      local q = curio.Queue()
      q:join() -- nothing put: returns at once
      for i = 1, 3 do q:put(i) end
      local joiner = curio.spawn(function() q:join(); record("joined") end)
      for _ = 1, 3 do
        local item = q:get()
        curio.sleep(0)
        record("done", item)
        q:task_done()
      end
      joiner:join()
    end)
    assert.are.same({ "done 1", "done 2", "done 3", "joined" }, trace)
  end)

  it("raises CurioError when task_done is called more times than items were put", function()
    curio.run(function()
      local q = curio.Queue()
      q:put(1)
      q:get()
      q:task_done()
      local err = catch(q.task_done, q)
      assert.is_true(curio.CurioError:matches(err))
    end)
  end)

  it("checks its arguments", function()
    assert.truthy(catch(curio.Queue, -1):match("^bad argument #1 to 'Queue'"))
    assert.truthy(catch(curio.Queue, "big"):match("^bad argument #1 to 'Queue'"))
    assert.truthy(catch(curio.LifoQueue, 1.5):match("^bad argument #1 to 'LifoQueue'"))
    curio.run(function()
      local q = curio.Queue()
      assert.truthy(catch(q.put, q, nil):match("bad argument #1 to 'put' %(value expected%)"))
      local pq = curio.PriorityQueue()
      assert.truthy(catch(pq.put, pq, nil, 1):match("bad argument #1 to 'put'"))
      assert.truthy(catch(pq.put, pq, "x", "high"):match("bad argument #2 to 'put'"))
      assert.truthy(catch(pq.put, pq, "x", 0 / 0):match("bad argument #2 to 'put'"))
      assert.is_true(q:empty() and pq:empty())
    end)
  end)

  it("takes the same maxsize in every queue constructor, UniversalQueue's included", function()
    for _, name in ipairs { "Queue", "LifoQueue", "PriorityQueue", "UniversalQueue" } do
      local new = curio[name]
      curio.run(function()
        for _, unbounded in ipairs { 0, math.huge } do -- (UniversalQueue refused math.huge)
          local q = new(unbounded)
          for i = 1, 3 do q:put(i) end
          assert.is_false(q:full(), name)
        end
      end)
      assert.is_true(new(2 ^ 53):empty(), name)
      for _, bad in ipairs { -1, 1.5, 0 / 0, -math.huge, 2 ^ 63, "3", {} } do
        local message = catch(new, bad)
        assert.truthy(message:match("^bad argument #1 to '" .. name .. "'"), message)
      end
      -- (NaN: the same words in all four)
      assert.truthy(catch(new, 0 / 0):match("non%-negative maxsize expected"), name)
    end
  end)

  it("refuses to get or put outside a task", function()
    local q = curio.Queue()
    assert.is_true(curio.CurioError:matches(catch(q.put, q, 1)))
    assert.is_true(curio.CurioError:matches(catch(q.get, q)))
    assert.are.equal(0, q:qsize())
  end)
end)

describe("LifoQueue and PriorityQueue", function()

  it("give the newest item first from a LifoQueue", function()
    local items = curio.run(function()
      local q = curio.LifoQueue()
      for i = 1, 4 do q:put(i) end
      return drain(q)
    end)
    assert.are.same({ 4, 3, 2, 1 }, items)
  end)

  it("give the lowest priority first, in put order among equals, with its priority", function()
    local trace = traced(function(record)
      local q = curio.PriorityQueue()
      local entries = { { "a", 5 }, { "b", 1 }, { "c" }, { "d", 1 }, { "e", -2.5 }, { "f", 5 }, { "g" } }
      for _, entry in ipairs(entries) do q:put(entry[1], entry[2]) end
      while not q:empty() do record(q:get()) end
    end)
    assert.are.same({ "e -2.5", "c 0", "g 0", "b 1", "d 1", "a 5", "f 5" }, trace)
  end)

  it("order integer and float priorities exactly as Lua's < does", function()
    local big = 2 ^ 53 -- a float: 2^53 + 1 as an integer is above it, though
                       -- both convert to the same float
    local priorities = { math.tointeger(big) + 1, big, math.maxinteger, math.huge, 0.5, 0, -0.0,
                         math.mininteger, -math.huge, math.tointeger(big), -big, 1e300, 3 }
    local got = curio.run(function()
      local q = curio.PriorityQueue()
      for i, priority in ipairs(priorities) do q:put(i, priority) end
      local out = {}
      while not q:empty() do
        local item, priority = q:get()
        out[#out + 1] = { item, math.type(priority), priority }
      end
      return out
    end)
    local expected = {}
    for i, priority in ipairs(priorities) do expected[i] = { i, math.type(priority), priority } end
    table.sort(expected, function(a, b) return a[3] < b[3] or (a[3] == b[3] and a[1] < b[1]) end)
    assert.are.same(expected, got)
  end)

  it("keep heap order through many mixed puts and gets", function()
    math.randomseed(11)
    local got, expected = curio.run(function()
      local q = curio.PriorityQueue()
      local model, got, seq = {}, {}, 0
      for _ = 1, 2000 do
        if math.random() < 0.6 or q:empty() then
          seq = seq + 1
          local priority = math.random(1, 20)
          q:put(seq, priority)
          model[#model + 1] = { priority, seq }
        else
          local item, priority = q:get()
          got[#got + 1] = priority .. ":" .. item
        end
      end
      while not q:empty() do
        local item, priority = q:get()
        got[#got + 1] = priority .. ":" .. item
      end
      return got, model
    end)
    -- replay against a sorted model: each get takes the least (priority, seq)
    math.randomseed(11)
    local model, out, seq = {}, {}, 0
    for _ = 1, 2000 do
      if math.random() < 0.6 or #model == 0 then
        seq = seq + 1
        model[#model + 1] = { math.random(1, 20), seq }
      else
        table.sort(model, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
        local e = table.remove(model, 1)
        out[#out + 1] = e[1] .. ":" .. e[2]
      end
    end
    table.sort(model, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
    for _, e in ipairs(model) do out[#out + 1] = e[1] .. ":" .. e[2] end
    assert.are.equal(#expected, seq)
    assert.are.same(out, got)
  end)

  it("block putters of a full bounded PriorityQueue and hand items to waiting getters", function()
    local trace = traced(function(record)
      local q = curio.PriorityQueue(1)
      local getter = curio.spawn(function() record("getter got", q:get()) end)
      curio.sleep(0)
      q:put("handed", 7)
      getter:join()
      q:put("low", 1)
      local putter = curio.spawn(function() q:put("waited", 0); record("putter done") end)
      curio.sleep(0)
      record("full", q:full())
      record("got", q:get())
      putter:join()
      record("got", q:get())
    end)
    assert.are.same({ "getter got handed 7", "full true", "got low 1", "putter done", "got waited 0" }, trace)
  end)
end)

describe("Queue under cancellation", function()

  it("gives nothing to a getter cancelled or timed out while waiting", function()
    local trace = traced(function(record)
      local q = curio.Queue()
      local cancelled = curio.spawn(function() record("cancelled got", q:get()) end)
      local timed = curio.spawn(function()
        local err = catch(curio.timeout_after, 0.01, q.get, q)
        record("timed out", curio.TaskTimeout:matches(err))
      end)
      local patient = curio.spawn(function() record("patient got", q:get()) end)
      curio.sleep(0)
      cancelled:cancel()
      timed:join()
      q:put("only")
      patient:join()
      record("left", q:qsize())
    end)
    assert.are.same({ "timed out true", "patient got only", "left 0" }, trace)
  end)

  -- A woken task owns what it was handed (as curio, and as Event, Lock and
  -- Semaphore here): its call returns, the cancellation comes at its next
  -- blocking call. (Before, the getter raised and left the item queued.)
  for _, kind in ipairs({ "Queue", "LifoQueue", "PriorityQueue" }) do
    it("returns its item to a woken " .. kind .. " getter cancelled before it runs", function()
      local trace = traced(function(record)
        local q = curio[kind]()
        local first = curio.spawn(function()
          record("first got", (q:get()))
          curio.sleep(0) -- its next blocking call: the cancellation
          record("first not cancelled")
        end)
        local second = curio.spawn(function() record("second got", (q:get())) end)
        curio.sleep(0)
        q:put("item") -- reserved for first, which is woken
        record("size", q:qsize())
        first:cancel() -- before it runs
        record("first", curio.TaskCancelled:matches(first.exception))
        record("left", q:qsize())
        q:put("next")
        second:join()
      end)
      assert.are.same({ "size 1", "first got item", "first true", "left 0", "second got next" }, trace)
    end)

    it("completes the put of a woken " .. kind .. " putter cancelled before it runs", function()
      local trace = traced(function(record)
        local q = curio[kind](1)
        q:put("a")
        local putter = curio.spawn(function()
          q:put("b")
          record("put returned")
          curio.sleep(0)
          record("putter not cancelled")
        end)
        curio.sleep(0) -- the putter waits, carrying "b"
        record("got", (q:get())) -- moves "b" in and wakes the putter
        putter:cancel()
        record("putter", curio.TaskCancelled:matches(putter.exception))
        record("got", (q:get()))
        record("left", q:qsize(), q:empty())
      end)
      assert.are.same({ "got a", "put returned", "putter true", "got b", "left 0 true" }, trace)
    end)

    it("returns from join to a woken " .. kind .. " joiner cancelled before it runs", function()
      local trace = traced(function(record)
        local q = curio[kind]()
        q:put("a")
        local joiner = curio.spawn(function()
          q:join()
          record("join returned")
          curio.sleep(0)
          record("joiner not cancelled")
        end)
        curio.sleep(0)
        q:get()
        q:task_done() -- wakes the joiner
        joiner:cancel()
        record("joiner", curio.TaskCancelled:matches(joiner.exception))
      end)
      assert.are.same({ "join returned", "joiner true" }, trace)
    end)
  end

  it("keeps the item of a putter cancelled while waiting out of the queue", function()
    local trace = traced(function(record)
      local q = curio.Queue(1)
      q:put(1)
      local quitter = curio.spawn(function() q:put("never") end)
      local stayer = curio.spawn(function() q:put(2) end)
      curio.sleep(0)
      quitter:cancel()
      record("quitter", quitter.exception and curio.TaskCancelled:matches(quitter.exception))
      record("got", q:get())
      stayer:join()
      record("got", q:get())
      record("empty", q:empty())
      q:task_done(); q:task_done()
      record("unfinished join returns")
      q:join()
    end)
    assert.are.same({ "quitter true", "got 1", "got 2", "empty true", "unfinished join returns" }, trace)
  end)

  for _, kind in ipairs({ "Queue", "LifoQueue", "PriorityQueue" }) do
    it("never loses nor duplicates an item of a " .. kind .. " when tasks are cancelled at random",
       function()
      math.randomseed(1234)
      local put_ok, got, left, bad = curio.run(function()
        local q = curio[kind](4)
        local put_ok, got, bad = {}, {}, {}
        local tasks = {}
        local next_item = 0
        for i = 1, 120 do
          if i % 2 == 0 then
            tasks[#tasks + 1] = curio.spawn(function() -- producer
              for _ = 1, 10 do
                next_item = next_item + 1
                local item = next_item
                local ok, err = pcall(curio.timeout_after, math.random() * 0.003, q.put, q, item)
                if ok then put_ok[#put_ok + 1] = item
                elseif not curio.CancelledError:matches(err) then bad[#bad + 1] = tostring(err)
                else
                  if not curio.TaskTimeout:matches(err) then error(err, 0) end
                end
                if math.random() < 0.5 then curio.sleep(0) end
              end
            end)
          else
            tasks[#tasks + 1] = curio.spawn(function() -- consumer
              for _ = 1, 10 do
                local ok, item = pcall(curio.timeout_after, math.random() * 0.003, q.get, q)
                if ok then
                  got[#got + 1] = item
                  q:task_done()
                elseif not curio.CancelledError:matches(item) then bad[#bad + 1] = tostring(item)
                elseif not curio.TaskTimeout:matches(item) then error(item, 0)
                end
              end
            end)
          end
        end
        for _ = 1, 200 do
          if math.random() < 0.3 then tasks[math.random(#tasks)]:cancel({ blocking = false }) end
          curio.sleep(math.random() < 0.1 and 0.001 or 0)
        end
        for _, t in ipairs(tasks) do t:wait() end
        local left = {}
        while not q:empty() do
          left[#left + 1] = q:get()
          q:task_done()
        end
        q:join() -- every item had its task_done (else: deadlock error)
        return put_ok, got, left, bad
      end)
      assert.are.same({}, bad)
      -- every item put is got exactly once or still in the queue; no other item is
      local seen = {}
      for _, item in ipairs(got) do
        assert.is_nil(seen[item], "item got twice: " .. tostring(item))
        seen[item] = "got"
      end
      for _, item in ipairs(left) do
        assert.is_nil(seen[item], "item got and left: " .. tostring(item))
        seen[item] = "left"
      end
      local expected = {}
      for _, item in ipairs(put_ok) do expected[item] = true end
      local accounted = {}
      for item in pairs(seen) do accounted[item] = true end
      assert.are.same(expected, accounted)
      assert.is_true(#got > 0)
    end)
  end
end)

-- curio's and asyncio's rule: an item put stays in the queue, counted by
-- qsize/empty/full and bounded by maxsize, until a getter takes it, even
-- when a getter was already waiting.
describe("Queue items waiting for their getter", function()
  for _, kind in ipairs({ "Queue", "LifoQueue", "PriorityQueue" }) do
    it("counts an item put for a waiting " .. kind .. " getter until the getter takes it", function()
      local trace = traced(function(record)
        local q = curio[kind](2)
        local getter = curio.spawn(function() record("got", (q:get())) end)
        curio.sleep(0)
        q:put("a")
        record("after put", q:qsize(), q:empty(), q:full())
        q:put("b")
        record("after second put", q:qsize(), q:full())
        local third = curio.spawn(function() q:put("c") record("third put done") end)
        curio.sleep(0) -- the getter takes one, the third put goes in
        getter:join()
        third:join()
        record("end", q:qsize())
      end)
      local first = kind == "LifoQueue" and "b" or "a"
      assert.are.same({ "after put 1 false false", "after second put 2 true",
                        "got " .. first, "third put done", "end 2" }, trace)
    end)
  end

  it("matches curio's test_queue_bounded trace", function()
    local trace = traced(function(record)
      local q = curio.Queue(2)
      local function consumer(label)
        while true do
          local item = q:get()
          if item == "stop" then break end
          record(label, item)
          curio.sleep(0.02)
          q:task_done()
        end
        q:task_done()
        record(label, "done")
      end
      record("producer_start")
      curio.spawn(consumer, "cons1")
      curio.sleep(0.02)
      for n = 0, 3 do
        q:put(n)
        record("produced", n)
      end
      q:put("stop")
      record("producer_join")
      q:join()
      record("producer_done")
    end)
    assert.are.same({ "producer_start", "produced 0", "produced 1", "cons1 0", "produced 2",
                      "cons1 1", "produced 3", "cons1 2", "producer_join", "cons1 3",
                      "cons1 done", "producer_done" }, trace)
  end)

  it("matches curio's test_queue_unbounded trace", function()
    local trace = traced(function(record)
      local q = curio.Queue()
      curio.spawn(function()
        while true do
          local item = q:get()
          if item == "stop" then break end
          record("cons1", item)
          q:task_done()
        end
        q:task_done()
        record("cons1 done")
      end)
      record("producer_start")
      curio.sleep(0.02)
      for n = 0, 3 do q:put(n) end
      q:put("stop")
      record("producer_join", q:qsize())
      q:join()
      record("producer_done")
    end)
    assert.are.same({ "producer_start", "producer_join 5", "cons1 0", "cons1 1", "cons1 2", "cons1 3",
                      "cons1 done", "producer_done" }, trace)
  end)

  it("serves getters in FIFO order while items are reserved", function()
    local trace = traced(function(record)
      local q = curio.Queue()
      for i = 1, 3 do curio.spawn(function() record("getter", i, q:get()) end) end
      curio.sleep(0)
      q:put("x"); q:put("y")
      -- a task arriving now finds both items reserved: it waits its turn
      local late = curio.spawn(function() record("late", q:get()) end)
      q:put("z")
      curio.sleep(0)
      q:put("w")
      late:join()
    end)
    assert.are.same({ "getter 1 x", "getter 2 y", "getter 3 z", "late w" }, trace)
  end)
end)

describe("a woken getter whose time runs out before it runs", function()
  for _, kind in ipairs({ "Queue", "LifoQueue", "PriorityQueue" }) do
    it("takes its " .. kind .. " item (the timeout comes at its next blocking call)", function()
      local trace = traced(function(record)
        local q = curio[kind]()
        local getter = curio.spawn(function()
          local item = curio.timeout_after(0.01, function()
            local item = q:get()
            local ok, err = pcall(curio.sleep, 0)
            record("next blocking call", ok, curio.TaskTimeout:matches(err))
            return item
          end)
          return item
        end)
        curio.sleep(0)
        q:put("item")
        local t0 = os.clock()
        while os.clock() - t0 < 0.03 do end -- (no yield: the getter's time runs out)
        record("got", (getter:join()))
        record("left", q:qsize())
      end)
      assert.are.same({ "next blocking call false true", "got item", "left 0" }, trace)
    end)
  end
end)
