-- Runs every How-To recipe of examples/howto/ as a script, as a user would,
-- and compares what it prints (spec/support/examples.lua: what each prints;
-- examples_spec runs them under the curio program too).
local util = require "support.util"
local examples = require "support.examples"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local function run(script)
  return util.sh(util.env .. " " .. util.lua .. " examples/howto/" .. script)
end

describe("How-To recipe", function()
  local function check(script)
    local status, stdout, stderr = run(script)
    assert.are.same({ status = 0, stderr = "", lines = examples.expected["howto/" .. script] },
                    { status = status, stderr = stderr, lines = util.lines(stdout) })
  end

  it("'How can tasks communicate?' passes items through a queue and joins it", function()
    check("communicate.lua")
  end)

  it("'How do you shield a coroutine from cancellation?' lets the child finish", function()
    check("shield.lua")
  end)

  it("'How do you make cancellation apply to child tasks?' cancels the child", function()
    check("cancel_children.lua")
  end)

  it("'How does a coroutine get its enclosing Task instance?' hands it to another task", function()
    check("current_task.lua")
  end)

  it("'How do you apply a timeout?' times out with timeout_after and ignore_after", function()
    check("timeout.lua")
  end)

  it("'How do you perform a blocking operation?' runs it in a thread while tasks go on", function()
    check("blocking.lua")
  end)

  it("'How can a task and a thread communicate?' passes items through a UniversalQueue", function()
    check("thread_queue.lua")
  end)

  it("'How can coroutines and threads share a common lock?' never overlaps their sections", function()
    check("thread_lock.lua")
  end)

  it("'How can a timeout be applied to a block of statements?' stops the block", function()
    check("timeout_block.lua")
  end)

  -- The two echo servers ("How do you write a simple TCP server?") run as
  -- scripts on a loopback port the system picks (util.start_server); 100
  -- clients at once each send their own bytes and check the echo.
  local function echo_server(script)
    local curio = require "curio"
    return curio.run(function()
      local child = util.start_server("examples/" .. script)
      local ok, results = pcall(function()
        local clients = {}
        for i = 1, 100 do
          clients[i] = curio.spawn(function()
            local sock <close> = curio.open_connection("127.0.0.1", child.port)
            local sent = {}
            for round = 1, 5 do
              local piece = ("client %d round %d;"):format(i, round):rep(i * 10)
              sock:sendall(piece)
              sent[#sent + 1] = piece
            end
            local want = table.concat(sent)
            local got = {}
            local n = 0
            while n < #want do
              local data = sock:recv(100000)
              if data == "" then break end
              got[#got + 1] = data
              n = n + #data
            end
            return table.concat(got) == want
          end)
        end
        local all = {}
        for i = 1, 100 do all[i] = clients[i]:join() end
        -- the server prints a line as each connection ends: wait for the
        -- hundredth rather than for a while
        curio.timeout_after(10, util.server_output, child, function(lines)
          local closed = 0
          for _, line in ipairs(lines) do
            if line == "Connection closed\n" then closed = closed + 1 end
          end
          return closed >= 100
        end)
        return all
      end)
      util.stop_server(child)
      assert(ok, results)
      return results, table.concat(child.lines)
    end)
  end

  for _, script in ipairs({ "echo_server.lua", "echo_stream_server.lua" }) do
    it("'How do you write a simple TCP server?' (" .. script .. ") echoes 100 clients at once", function()
      local results, printed = echo_server(script)
      local expected = {}
      for i = 1, 100 do expected[i] = true end
      assert.are.same(expected, results)
      local _, from = printed:gsub("Connection from\t127%.0%.0%.1:%d+\n", "")
      local _, closed = printed:gsub("Connection closed\n", "")
      assert.are.same({ 100, 100 }, { from, closed })
    end)
  end

  it("'How do you run external commands in a subprocess?' uses check_output and its errors", function()
    check("subprocess.lua")
  end)

  it("'How can you communicate with a subprocess over a pipe?' talks to cat, sort and tr", function()
    check("subprocess_pipe.lua")
  end)

  it("'How do you perform a CPU intensive operation?' runs fib in a worker process", function()
    check("cpu.lua")
  end)
end)
