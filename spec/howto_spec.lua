-- Runs every How-To recipe of examples/howto/ as a script, as a user would,
-- and compares what it prints.
local util = require "support.util"

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
end)
