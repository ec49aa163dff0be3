-- How can a timeout be applied to a block of statements? (curio How-To)
--
-- Python writes `async with timeout_after(5):`; in Lua the block is the
-- body of the function given to timeout_after. It is a cumulative timeout
-- for the whole block: when the time is up, TaskTimeout is raised in the
-- blocking operation in progress.
--
--   lua5.4 examples/howto/timeout_block.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"

curio.run(function()
  local done = {}
  local ok, err = pcall(curio.timeout_after, 0.5, function()
    curio.sleep(0.05)               -- statement1
    done[#done + 1] = "statement1"
    curio.sleep(0.05)               -- statement2
    done[#done + 1] = "statement2"
    curio.sleep(5)                  -- statement3: time runs out here
    done[#done + 1] = "statement3"
  end)
  print("completed: " .. table.concat(done, ", "))
  print("timed out: " .. tostring(not ok and curio.TaskTimeout:matches(err)))
end)
