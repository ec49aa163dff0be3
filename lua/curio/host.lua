-- curio.host: the `curio` program (core/main.c calls host.main(argv)).
--   curio [options] [script [args]]
--   -e code    run code      -l mod   require mod into global mod
--   -v         print version -i       interactive prompt after the script
--   --         stop options  -        run standard input as the script
-- Everything given runs as the main task of one kernel, so top-level code
-- may block. Exit status: 0 success, 1 error (message and traceback on
-- stderr), 130 after SIGINT, 143 after SIGTERM (treated as SIGINT: the
-- main task is cancelled and its cleanup runs), unless the script watches
-- SIGTERM itself with a SignalQueue or SignalEvent.

local curio = require "curio"
local core = require "curio.core"
local signal = require "curio.signal"

local host = {}

local usage = [=[
usage: curio [options] [script [args]]
  -e code   execute string 'code'
  -l mod    require library 'mod' into global 'mod' (-l g=mod: into 'g')
  -i        enter interactive mode after running the script
  -v        show version information
  --        stop handling options
  -         execute stdin and stop handling options]=]

local function parse(argv)
  local opts = { actions = {} }
  local i = 1
  while argv[i] ~= nil do
    local a = argv[i]
    if a == "--" then i = i + 1; break
    elseif a == "-" then break
    elseif a:sub(1, 2) == "-e" or a:sub(1, 2) == "-l" then
      local value = a:sub(3)
      if value == "" then i = i + 1; value = argv[i] end
      if value == nil then return nil, ("'%s' needs argument"):format(a) end
      opts.actions[#opts.actions + 1] = { a:sub(2, 2), value }
      opts.ran_code = opts.ran_code or a:sub(1, 2) == "-e"
    elseif a == "-v" then opts.version = true
    elseif a == "-i" then opts.interactive = true; opts.version = true
    elseif a:sub(1, 1) == "-" then return nil, ("unrecognized option '%s'"):format(a)
    else break
    end
    i = i + 1
  end
  opts.script_index = argv[i] and i or nil
  return opts
end

local function make_arg(argv, script_index)
  local args, first = {}, script_index or #argv + 1
  for j = 0, #argv do args[j - first] = argv[j] end
  return args
end

-- An error as text: curio errors carry their traceback, others get one.
local function describe(err)
  if type(err) == "table" and tostring(err):find("\n") then return tostring(err) end
  return debug.traceback(tostring(err), 3)
end

local function protect(fn, ...)
  local function handler(err)
    if curio.CancelledError:matches(err) then return err end
    return { describe = describe(err) }
  end
  local result = table.pack(xpcall(fn, handler, ...))
  if not result[1] then error(result[2], 0) end
  return table.unpack(result, 2, result.n)
end

local function print_results(ok, ...)
  if not ok then
    io.stderr:write(describe((...)), "\n")
  elseif select("#", ...) > 0 then
    print(...)
  end
end

-- The interactive prompt: each line runs in the main task, so spawned
-- tasks keep running while it waits for input.
local function repl()
  io.stdin:setvbuf("no")
  local buffer = ""
  while true do
    io.stdout:write(buffer == "" and "> " or ">> ")
    io.stdout:flush()
    core.wait_fd(0, "r")
    local line = io.stdin:read("L")
    if line == nil then io.stdout:write("\n"); return end
    buffer = buffer .. line
    local chunk, err = load("return " .. buffer, "=stdin")
    if not chunk then chunk, err = load(buffer, "=stdin") end
    if chunk or not err:find("<eof>$") then
      buffer = ""
      if chunk then print_results(curio.pcall(chunk)) else io.stderr:write(err, "\n") end
    end
  end
end

local function main_task(opts, argv, ...)
  for _, action in ipairs(opts.actions) do
    if action[1] == "l" then
      local name, module = action[2]:match("^([^=]+)=(.+)$")
      module = module or action[2]
      _G[name or module] = protect(require, module)
    else
      local chunk, err = load(action[2], "=(command line)")
      if not chunk then error({ describe = err }, 0) end
      protect(chunk)
    end
  end
  if opts.script_index then
    local script = argv[opts.script_index]
    local chunk, err = loadfile(script ~= "-" and script or nil)
    if not chunk then error({ describe = err }, 0) end
    protect(chunk, ...)
  end
  if opts.interactive or (not opts.script_index and not opts.ran_code and argv.stdin_is_tty) then
    repl()
  elseif not opts.script_index and not opts.ran_code and not opts.version then
    local chunk, err = load(io.read("a"), "=stdin")
    if not chunk then error({ describe = err }, 0) end
    protect(chunk, ...)
  end
end

-- SIGTERM cancels the main task, as SIGINT does (a fallback watcher: a
-- script's own SignalQueue for SIGTERM takes it instead).
local terminated = false
local function guarded(...)
  local main = curio.current_task()
  local term = signal.fallback_queue("SIGTERM")
  curio.spawn_daemon(function()
    if pcall(term.get, term) then -- (fails when closed: the main task ended first)
      terminated = true
      main:cancel()
    end
  end)
  local ok, err = pcall(main_task, ...)
  term:close()
  if not ok then error(err, 0) end
end

function host.main(argv)
  local opts, problem = parse(argv)
  if not opts then
    io.stderr:write("curio: ", problem, "\n", usage, "\n")
    return 1
  end
  if opts.version then print(curio._VERSION .. " (" .. _VERSION .. ", libev)") end
  _G.arg = make_arg(argv, opts.script_index)
  local script_args = {}
  if opts.script_index then
    for j = opts.script_index + 1, #argv do script_args[#script_args + 1] = argv[j] end
  end
  local ok, err = pcall(curio.run, guarded, opts, argv, table.unpack(script_args))
  if terminated then
    io.stderr:write("curio: terminated\n")
    return 143
  end
  if ok then return 0 end
  if curio.KeyboardInterrupt:matches(err) then
    io.stderr:write("curio: interrupted\n")
    return 130
  end
  if type(err) == "table" and err.describe then
    io.stderr:write("curio: ", err.describe, "\n")
  else
    io.stderr:write("curio: ", describe(err), "\n")
  end
  return 1
end

return host
