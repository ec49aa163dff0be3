-- How can you communicate with a subprocess over a pipe? (curio How-To)
--
-- Use curio.subprocess just like you would use the normal subprocess
-- module. With PIPE, p.stdin and p.stdout are curio streams: the same I/O
-- operations as any stream (write, read, readline, lines, ...), which wait
-- in the kernel instead of blocking the program.
--
--   lua5.4 examples/howto/subprocess_pipe.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"
local subprocess = curio.subprocess

local function func()
  -- A conversation: cat answers every write at once.
  local p = subprocess.Popen({ "cat" }, { stdin = subprocess.PIPE, stdout = subprocess.PIPE })
  p.stdin:write("Some data\n")
  local resp = p.stdout:read(1000)
  io.write("cat answered: ", resp)
  p.stdin:write("More data\n")
  io.write("cat answered: ", p.stdout:readline())
  p.stdin:close()                              -- end of its input: cat exits
  print("at the end: '" .. p.stdout:read() .. "'")
  p.stdout:close()
  print("cat exited with " .. p:wait())

  -- A filter that needs all of its input first; <close> closes the pipes
  -- and waits for the process when the block ends.
  do
    local sorter <close> = subprocess.Popen({ "sort" }, { stdin = subprocess.PIPE, stdout = subprocess.PIPE })
    sorter.stdin:writelines({ "pear\n", "apple\n", "fig\n" })
    sorter.stdin:close()
    for line in sorter.stdout:lines() do
      io.write("sorted: ", line)
    end
  end

  -- Or hand everything to communicate(), which writes and reads at once.
  local upper = subprocess.Popen({ "tr", "a-z", "A-Z" },
                                 { stdin = subprocess.PIPE, stdout = subprocess.PIPE })
  local out = upper:communicate("shout this\n")
  io.write("tr answered: ", out)
  print("tr exited with " .. upper.returncode)
end

curio.run(func)
