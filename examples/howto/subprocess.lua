-- How do you run external commands in a subprocess? (curio How-To)
--
-- curio.subprocess is curio's own version of the subprocess module. Use
-- check_output() as you would in normal code: it takes the same arguments
-- and raises the same errors (CalledProcessError for a non-zero exit,
-- TimeoutExpired for opts.timeout). It runs on the kernel's own I/O: the
-- other tasks go on while the command runs, and no thread is used.
--
--   lua5.4 examples/howto/subprocess.lua   (with the in-tree LUA_PATH/LUA_CPATH)
local curio = require "curio"
local subprocess = curio.subprocess

-- A string as one printable line: "text\n" -> 'text\n'.
local function show(s)
  return "'" .. s:gsub("\n", "\\n") .. "'"
end

local function func()
  local out = subprocess.check_output({ "printf", "%s\n", "arg1", "arg2", "arg3" })
  io.write(out)

  -- A command that fails: the error has its status and what it printed.
  local ok, err = curio.pcall(subprocess.check_output, { "sh", "-c", "echo partial; exit 3" })
  if not ok and subprocess.CalledProcessError:matches(err) then
    print(("exit status %d, output %s"):format(err.returncode, show(err.output)))
  end

  -- A command that takes too long is killed.
  ok, err = curio.pcall(subprocess.check_output, { "sh", "-c", "echo started; exec sleep 10" },
                        { timeout = 0.5 })
  if not ok and subprocess.TimeoutExpired:matches(err) then
    print(("timed out after %g s, output %s"):format(err.timeout, show(err.output)))
  end

  -- run() gives everything at once.
  local result = subprocess.run({ "sh", "-c", "echo to stdout; echo to stderr >&2; exit 1" },
                                { capture_output = true })
  print(("returncode %d, stdout %s, stderr %s"):format(result.returncode, show(result.stdout),
                                                       show(result.stderr)))
end

curio.run(func)
