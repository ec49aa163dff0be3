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
expected["howto/cpu.lua"] = { "fib(30) = 832040", "other tasks ran meanwhile: true" }

-- demo.lua prints times: "at 0.05s" stands as "at T" here.
expected["demo.lua"] = {
  "fast     tick 1 at T", "fast     tick 2 at T", "slow     tick 1 at T", "fast     tick 3 at T",
  "fast     tick 4 at T", "fast finished", "slow     tick 2 at T",
  "timeout_after:\tfalse\tTaskTimeout\tafter 0.1s", "slow     tick 3 at T",
  "ignore_after:\tnil\tcurio.TIMEOUT", "slow cancelled:\ttrue\tTaskCancelled", "done",
}

-- The lines as the tables above hold them (demo.lua's times masked).
local function normalise(script, lines)
  if script ~= "demo.lua" then return lines end
  local masked = {}
  for i, line in ipairs(lines) do masked[i] = line:gsub(" at %d+%.%d+s$", " at T") end
  return masked
end

return { expected = expected, normalise = normalise }
