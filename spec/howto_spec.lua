-- Runs every How-To recipe of examples/howto/ as a script, as a user would,
-- and compares what it prints.
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local function run(script)
  return util.sh(util.env .. " " .. util.lua .. " examples/howto/" .. script)
end

describe("How-To recipe", function()
  local function check(script, expected)
    local status, stdout, stderr = run(script)
    assert.are.same({ status = 0, stderr = "", lines = expected },
                    { status = status, stderr = stderr, lines = util.lines(stdout) })
  end

  it("'How can tasks communicate?' passes items through a queue and joins it", function()
    local expected = {}
    for n = 0, 9 do expected[#expected + 1] = "Consumer got " .. n end
    expected[#expected + 1] = "Producer done"
    check("communicate.lua", expected)
  end)

  it("'How do you shield a coroutine from cancellation?' lets the child finish", function()
    check("shield.lua", { "func cancelled: true", "child finished: 42", "child result: 42" })
  end)

  it("'How do you make cancellation apply to child tasks?' cancels the child", function()
    check("cancel_children.lua", {
      "child cancelled too", "func cancelled: true", "child cancelled: true, terminated: true",
    })
  end)

  it("'How does a coroutine get its enclosing Task instance?' hands it to another task", function()
    check("current_task.lua", {
      "func: my task is func", "watchdog: cancelling func", "func: cancelled: true",
      "watchdog: func terminated: true",
    })
  end)

  it("'How do you apply a timeout?' times out with timeout_after and ignore_after", function()
    check("timeout.lua", { "Timed out", "Timed out", "finished" })
  end)

  it("'How do you perform a blocking operation?' runs it in a thread while tasks go on", function()
    check("blocking.lua", { "slept 0.3", "other tasks ran meanwhile: true" })
  end)

  it("'How can a task and a thread communicate?' passes items through a UniversalQueue", function()
    local expected = {}
    for n = 0, 9 do expected[#expected + 1] = "Consumer got\t" .. n end
    expected[#expected + 1] = "Producer done"
    check("thread_queue.lua", expected)
  end)

  it("'How can coroutines and threads share a common lock?' never overlaps their sections", function()
    check("thread_lock.lua", { "critical sections never overlapped: true" })
  end)

  it("'How can a timeout be applied to a block of statements?' stops the block", function()
    check("timeout_block.lua", { "completed: statement1, statement2", "timed out: true" })
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
    check("subprocess.lua", {
      "arg1", "arg2", "arg3", "exit status 3, output 'partial\\n'", "timed out after 0.5 s, output 'started\\n'",
      "returncode 1, stdout 'to stdout\\n', stderr 'to stderr\\n'",
    })
  end)

  it("'How can you communicate with a subprocess over a pipe?' talks to cat, sort and tr", function()
    check("subprocess_pipe.lua", {
      "cat answered: Some data", "cat answered: More data", "at the end: ''", "cat exited with 0",
      "sorted: apple", "sorted: fig", "sorted: pear", "tr answered: SHOUT THIS", "tr exited with 0",
    })
  end)

  it("'How do you perform a CPU intensive operation?' runs fib in a worker process", function()
    check("cpu.lua", { "fib(30) = 832040", "other tasks ran meanwhile: true" })
  end)
end)
