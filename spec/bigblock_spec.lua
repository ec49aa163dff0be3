local curio = require "curio"
local core = require "curio.core"
local util = require "support.util"
local channels = require "support.channels"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- The cache of big freed blocks in the Lua state's allocator and the
-- strings read in place by core.read_frame (core/bigblock.c and
-- core/sockbuf.c, their rules): contents stay exact however blocks are
-- reused, the cache is bounded, and every way a state ends (lua_close
-- with blocks kept, finalizers that allocate at exit, worker threads'
-- and processes' states, the module loaded again) leaves no crash.

local MiB = 1024 * 1024
local KEPT_MAX, KEPT_BYTES_MAX = 4, 64 * MiB -- (bigblock.c rule 2)

-- A string of n bytes, distinct for each tag: a header naming it, then
-- one byte repeated.
local function big(n, tag)
  local head = ("<%d:%d>"):format(tag, n)
  return head .. string.char(65 + tag % 50):rep(n - #head)
end

local function full_collect()
  collectgarbage()
  collectgarbage()
end

-- A Channel pair over the loopback (channel_opts for both ends): the
-- server's Connection and the client's.
local function pair(channel_opts)
  return channels.pair({ channel = channel_opts })
end

-- Waits (a task switch at a time, bounded) until the holder holds n bytes.
local function until_held(holder, n)
  for _ = 1, 1000000 do
    if holder:size() >= n then return end
    curio.sleep(0)
  end
  error("the holder never got " .. n .. " bytes")
end

describe("the cache of big blocks", function()
  it("is installed in the state that loads curio", function()
    local blocks, bytes, any_size = core.bigblock_kept()
    assert.is_number(blocks)
    assert.is_number(bytes)
    assert.is_true(any_size) -- lua5.4's allocator is lauxlib's own
  end)

  it("hands a freed block to the next string of its size", function()
    full_collect()
    local held = { big(4 * MiB, 1) }
    local before = core.bigblock_kept()
    assert.are.equal(4 * MiB, #held[1])
    held[1] = nil
    full_collect()
    local kept = core.bigblock_kept()
    assert.is_true(kept >= 1 and kept >= math.min(before + 1, KEPT_MAX))
    local again = big(4 * MiB, 2)
    assert.is_true(core.bigblock_kept() < kept)
    assert.are.equal(big(4 * MiB, 2), again)
  end)

  it("never hands one block to two live strings", function()
    local live, sizes = {}, {}
    local tag = 0
    for round = 1, 6 do
      -- drop every other string, collect, make new ones of other sizes
      for i = round % 2 + 1, #live, 2 do live[i] = false end
      full_collect()
      for i = 1, 8 do
        if not live[i] then
          tag = tag + 1
          sizes[i] = (2 + (tag * 7) % 19) * MiB + tag -- 2 to 20 MiB
          live[i] = { tag, big(sizes[i], tag) }
        end
      end
      full_collect()
      for i = 1, 8 do
        assert.are.equal(sizes[i], #live[i][2])
        assert.are.equal(big(sizes[i], live[i][1]), live[i][2])
      end
    end
  end)

  it("keeps what grows by reallocation exact", function()
    for round = 1, 3 do
      local t = {}
      for i = 1, 300000 do t[i] = i * round end -- an array part over 4 MiB, grown by realloc
      local parts = {}
      for i = 1, 40 do parts[i] = ("%d"):format(i):rep(30000) end
      local joined = table.concat(parts) -- a buffer grown past 1 MiB
      local rep = ("ab"):rep(3 * MiB)
      full_collect()
      for i = 1, 300000, 997 do assert.are.equal(i * round, t[i]) end
      assert.are.equal(300000, #t)
      local at = 1
      for i = 1, 40 do
        local part = ("%d"):format(i):rep(30000)
        assert.are.equal(part, joined:sub(at, at + #part - 1))
        at = at + #part
      end
      assert.are.equal(6 * MiB, #rep)
      assert.are.equal(("ab"):rep(3 * MiB), rep)
    end
  end)

  it("keeps at most its bound, and gives the rest back", function()
    full_collect()
    local resident = util.resident_bytes()
    local burst = {}
    for i = 1, 20 do burst[i] = big(8 * MiB, i) end
    for i = 1, 20 do
      assert.are.equal(8 * MiB, #burst[i])
      burst[i] = nil
    end
    full_collect()
    local blocks, bytes = core.bigblock_kept()
    assert.is_true(blocks <= KEPT_MAX and bytes <= KEPT_BYTES_MAX, ("kept %d, %d bytes"):format(blocks, bytes))
    -- loose: the kept bytes and what malloc keeps of its own
    local grown = util.resident_bytes() - resident
    assert.is_true(grown < KEPT_BYTES_MAX + 48 * MiB, ("%d MiB more resident"):format(grown // MiB))
  end)

end)

describe("a state with big blocks kept", function()
  local make_and_drop = [[
    local core = require "curio.core"
    local t = {}
    for i = 1, 6 do t[i] = ("x"):rep(3 * 1024 * 1024 + i) end
    t = nil
    collectgarbage() collectgarbage()
    assert(core.bigblock_kept() > 0, "nothing kept")
  ]]

  it("closes and exits", function()
    local status, out, err = util.lua_code(make_and_drop .. "print('end')", 60)
    assert.are.same({ 0, "end\n", "" }, { status, out, err })
    status, out, err = util.lua_code(make_and_drop .. "print('end') os.exit(0, true)", 60)
    assert.are.same({ 0, "end\n", "" }, { status, out, err })
  end)

  it("closes when finalizers allocate and collect at exit", function()
    local at_exit = [[
      local function finalizer(name)
        return setmetatable({}, { __gc = function()
          collectgarbage()
          local s = ("y"):rep(5 * 1024 * 1024)
          io.write(name, " ", #s, "\n")
          s = nil
          collectgarbage()
        end })
      end
    ]]
    local code = at_exit .. "_G.first = finalizer('before')\n" .. make_and_drop
      .. "_G.second = finalizer('after')\nprint('end')"
    local status, out, err = util.lua_code(code, 60)
    assert.are.same({ 0, "end\nafter 5242880\nbefore 5242880\n", "" }, { status, out, err })
  end)

  it("is installed once however often curio.core is loaded, and closes", function()
    local code = make_and_drop .. [[
      local blocks = core.bigblock_kept()
      for _ = 1, 50 do
        package.loaded["curio.core"] = nil
        local n, _, any_size = require("curio.core").bigblock_kept()
        assert(n == blocks, "another cache") -- the same cache
        assert(any_size, "over another cache") -- over lauxlib's allocator
      end
      local s = ("z"):rep(2 * 1024 * 1024)
      print(#s)
    ]]
    local status, out, err = util.lua_code(code, 60)
    assert.are.same({ 0, "2097152\n", "" }, { status, out, err })
  end)

  it("closes with a big message half read", function()
    local code = [[
      local curio = require "curio"
      local core = require "curio.core"
      curio.run(function()
        local ch = curio.Channel({ "127.0.0.1", 0 })
        local addr = ch:bind()
        local accepting = curio.spawn(ch.accept, ch)
        local client = curio.Channel(addr):connect()
        local server = accepting:join()
        local holder = core.growbuf()
        local reading = curio.spawn(core.read_frame, server._rsock, holder, 1 << 30)
        client._wsock:sendall(string.pack(">I4", 3 << 20) .. ("w"):rep(1 << 20))
        -- (over 4 bytes: the header is read, the payload's block taken;
        -- the rest of the megabyte may stay in the socket: sockbuf.c rule 5)
        while holder:size() <= 4 do curio.sleep(0) end
        reading:cancel()
        _G.keep = { server, client, ch, holder } -- the state's end frees them
      end)
      print("end")
    ]]
    local status, out, err = util.lua_code(code, 60)
    assert.are.same({ 0, "end\n", "" }, { status, out, err })
  end)

  it("works in a worker thread's state and a worker process's", function()
    local code = [[
      local curio = require "curio"
      local function work(n)
        local core = require "curio.core"
        local kept = {}
        for round = 1, 3 do
          local t = {}
          for i = 1, 4 do t[i] = ("%d"):format(i):rep(n) end
          for i = 1, 4 do assert(t[i] == ("%d"):format(i):rep(n)) end
          t = nil
          collectgarbage() collectgarbage()
          kept[round] = core.bigblock_kept()
        end
        return kept[3] > 0 and "kept"
      end
      curio.run(function()
        print(curio.run_in_thread(work, 2 * 1024 * 1024))
        print(curio.run_in_process(work, 2 * 1024 * 1024))
      end)
    ]]
    local status, out, err = util.lua_code(code, 120)
    assert.are.same({ 0, "kept\nkept\n", "" }, { status, out, err })
  end)
end)

describe("big messages read in place", function()
  it("arrive exact, between small ones, at every size around the threshold", function()
    curio.run(function()
      local server, client = pair()
      local sizes = { MiB - 1, MiB, MiB + 1, MiB + 70000, 3 * MiB + 5, 64, 17 * MiB, 0, 2 * MiB }
      local sender = curio.spawn(function()
        for i, n in ipairs(sizes) do
          client:send_bytes(big(math.max(n, 16), i):sub(1, n))
          client:send({ i = i })
        end
      end)
      for i, n in ipairs(sizes) do
        local got = server:recv_bytes()
        assert.are.equal(n, #got)
        assert.are.equal(big(math.max(n, 16), i):sub(1, n), got)
        assert.are.same({ i = i }, server:recv())
      end
      sender:join()
      server:close()
      client:close()
    end)
  end)

  -- Over TCP the reader asks to be woken only once more of a big payload
  -- has come (sockbuf.c rule 5): never more than the payload lacks, and
  -- back to one byte after it, or a peer that then waits for an answer
  -- would wait forever (the bound makes such a hang a failure).
  it("wake their reader when the peer stops after each (TCP)", function()
    curio.run(function()
      local server, client = pair()
      local sizes = { MiB + 1, MiB + 70000, 2 * MiB + 3, 5 * MiB }
      local answers = curio.spawn(function()
        local got = {}
        for i, n in ipairs(sizes) do
          client:send_bytes(big(n, i))
          got[i] = client:recv()
          client:send_bytes("tiny")
          got[#sizes + i] = client:recv()
        end
        return got
      end)
      curio.timeout_after(30, function()
        for i, n in ipairs(sizes) do
          assert.are.equal(big(n, i), server:recv_bytes())
          server:send(i)
          assert.are.equal("tiny", server:recv_bytes())
          server:send(-i)
        end
      end)
      assert.are.same({ 1, 2, 3, 4, -1, -2, -3, -4 }, answers:join())
      server:close()
      client:close()
    end)
  end)

  it("keep a message's bytes over an interrupted read", function()
    curio.run(function()
      local server, client = pair()
      local payload = big(3 * MiB, 7)
      local frame = string.pack(">I4", #payload) .. payload
      local sock, holder = server._rsock, core.growbuf()
      -- half the frame, then a read that is cancelled once it holds a
      -- megabyte (the rest of the half may wait in the socket: over TCP
      -- the reader is woken a megabyte at a time, sockbuf.c rule 5), then
      -- the rest
      local half = #frame // 2
      local reading = curio.spawn(core.read_frame, sock, holder, 64 * MiB)
      client._wsock:sendall(frame:sub(1, half))
      until_held(holder, MiB)
      reading:cancel()
      assert.is_true(holder:size() >= MiB and holder:size() <= half)
      local sending = curio.spawn(client._wsock.sendall, client._wsock, frame:sub(half + 1) .. "\0\0\0\2hi")
      assert.are.equal(payload, core.read_frame(sock, holder, 64 * MiB))
      assert.are.equal("hi", core.read_frame(sock, holder, 64 * MiB))
      assert.are.equal(0, holder:size())
      sending:join()
      server:close()
      client:close()
    end)
  end)

  it("say how much of a big message came before the peer closed", function()
    curio.run(function()
      local server, client = pair()
      local sending = curio.spawn(function()
        client._wsock:sendall(string.pack(">I4", 2 * MiB) .. ("e"):rep(MiB + 3))
        client:close()
      end)
      local err = util.catch(server.recv_bytes, server)
      assert.is_true(curio.channel.EOFError:matches(err))
      assert.matches("(1048583 bytes of it came)", tostring(err), 1, true)
      sending:join()
      server:close()
    end)
  end)

  it("are refused over the connection's limit before any is read", function()
    curio.run(function()
      local server, client = pair({ max_size = 2 * MiB })
      client._wsock:sendall(string.pack(">I4", 2 * MiB + 1))
      local err = util.catch(server.recv_bytes, server)
      assert.is_true(curio.channel.MessageError:matches(err))
      server:close()
      client:close()
    end)
  end)
end)
