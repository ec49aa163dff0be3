-- What the examples that run to their end print (their stdout lines), for
-- howto_spec (the How-To recipes under lua5.4) and examples_spec (every
-- example under lua5.4 and under the curio program). The servers and
-- their client are run against each other by those specs instead.
local expected = {}

local function consumer_lines(separator)
  local lines = {}
  for n = 0, 9 do lines[#lines + 1] = "Consumer got" .. separator .. n end
  lines[#lines + 1] = "Producer done"
  return lines
end

expected["howto/communicate.lua"] = consumer_lines(" ")
expected["howto/shield.lua"] = { "func cancelled: true", "child finished: 42", "child result: 42" }
expected["howto/cancel_children.lua"] = {
  "child cancelled too", "func cancelled: true", "child cancelled: true, terminated: true",
}
expected["howto/current_task.lua"] = {
  "func: my task is func", "watchdog: cancelling func", "func: cancelled: true",
  "watchdog: func terminated: true",
}
expected["howto/timeout.lua"] = { "Timed out", "Timed out", "finished" }
expected["howto/blocking.lua"] = { "slept 0.3", "other tasks ran meanwhile: true" }
expected["howto/thread_queue.lua"] = consumer_lines("\t")
expected["howto/thread_lock.lua"] = { "critical sections never overlapped: true" }
expected["howto/timeout_block.lua"] = { "completed: statement1, statement2", "timed out: true" }
expected["howto/subprocess.lua"] = {
  "arg1", "arg2", "arg3", "exit status 3, output 'partial\\n'", "timed out after 0.5 s, output 'started\\n'",
  "returncode 1, stdout 'to stdout\\n', stderr 'to stderr\\n'",
}
expected["howto/subprocess_pipe.lua"] = {
  "cat answered: Some data", "cat answered: More data", "at the end: ''", "cat exited with 0",
  "sorted: apple", "sorted: fig", "sorted: pear", "tr answered: SHOUT THIS", "tr exited with 0",
}
-- (it starts three examples/channel_worker.lua as its workers)
expected["channel_producer.lua"] = { "results: 10000", "every job done once: true", "total steps: 849666" }
expected["howto/cpu.lua"] = { "fib(30) = 832040", "other tasks ran meanwhile: true" }

-- demo.lua's two workers tick on the clock, so how their lines interleave
-- with each other and with the main task's depends on the machine's load:
-- normalise() keeps each source's own order (fast's ticks, the main task's
-- lines) and sums up slow's ticks, cut by the cancellation at any count.
expected["demo.lua"] = {
  "fast     tick 1", "fast     tick 2", "fast     tick 3", "fast     tick 4",
  "fast finished", "timeout_after:\tfalse\tTaskTimeout\tafter 0.1s",
  "ignore_after:\tnil\tcurio.TIMEOUT", "slow cancelled:\ttrue\tTaskCancelled", "done",
  "slow ticks 1, 2, ... in order",
}

-- The lines as the tables above hold them (demo.lua's, see above).
local function normalise(script, lines)
  if script ~= "demo.lua" then return lines end
  local fast, main, ticks = {}, {}, 0
  local slow = "slow ticks 1, 2, ... in order"
  for _, line in ipairs(lines) do
    local name, n = line:match("^(%a+) +tick (%d+) at %d+%.%d+s$")
    if name == "fast" then
      fast[#fast + 1] = "fast     tick " .. n
    elseif name == "slow" then
      ticks = ticks + 1
      if tonumber(n) ~= ticks then slow = "slow tick " .. n .. " came as tick " .. ticks end
    else
      main[#main + 1] = line
    end
  end
  if ticks == 0 then slow = "no slow tick" end
  table.move(main, 1, #main, #fast + 1, fast)
  fast[#fast + 1] = slow
  return fast
end

return { expected = expected, normalise = normalise }
