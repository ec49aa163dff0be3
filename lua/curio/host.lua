-- curio.host: the `curio` program (core/main.c calls host.main(argv)).
--
--   curio [options] [script [args]]
--
-- The options are the table `options` below: parsing and `curio -h` both
-- come from it, so an option is one entry there. Everything given (-l, -e,
-- the script, the prompt) runs in order as the main task of one kernel, so
-- top-level code may block, with `curio` a global. Exit status: 0 success;
-- 1 error (its line and traceback on stderr, see host.report) or a bad
-- command line; 130 after SIGINT; 143 after SIGTERM (treated as SIGINT:
-- the main task is cancelled and its cleanup runs), unless the script
-- watches SIGTERM itself with a SignalQueue or SignalEvent.

local curio = require "curio"
local signal = require "curio.signal"

local host = {}

-- What a command line asks for, filled by the options' `set`.
local function new_request()
  return { actions = {}, ran_code = false, interactive = false, version = false, help = false }
end

-- The options, in the order `curio -h` lists them. An entry has:
--   names     the spellings ("-e", "--long")
--   arg       the name of its argument in the help, nil for a flag
--   optional  for an optional argument: a pattern the next word must
--             match to be taken as it (`--name=value` is always taken)
--   help      one line for `curio -h`
--   set       set(request, value): records the option in the request, or
--             returns a one-line complaint about the value
--   stop      "--" and "-": options end here ("skip": the word is eaten;
--             "keep": the word is the script)
-- A long option's argument is the next word or follows "="; a short one's
-- is the next word or follows at once ("-eprint(1)"), as lua5.4 takes them.
local options = {
  { names = { "-e" }, arg = "code", help = "execute string 'code'",
    set = function(request, code)
      request.actions[#request.actions + 1] = { kind = "code", value = code }
      request.ran_code = true
    end },
  { names = { "-l" }, arg = "mod", help = "require library 'mod' into global 'mod' (-l g=mod: into 'g')",
    set = function(request, name)
      request.actions[#request.actions + 1] = { kind = "library", value = name }
    end },
  { names = { "-i" }, help = "enter interactive mode after running the script",
    set = function(request) request.interactive = true end },
  { names = { "-v", "--version" }, help = "show version information",
    set = function(request) request.version = true end },
  { names = { "-h", "--help" }, help = "show this help and exit",
    set = function(request) request.help = true end },
  { names = { "-m" }, help = "run with the task monitor on (at $CURIO_MONITOR, default 127.0.0.1:48802)",
    set = function(request) request.monitor = true end },
  { names = { "--monitor" }, arg = "address", optional = "^[^-]",
    help = "talk to the monitor at address (host:port, port or path; default 127.0.0.1:48802)",
    set = function(request, address) request.monitor_client = address or "" end },
  { names = { "--longblock" }, arg = "secs",
    help = "report tasks that run longer than secs between two blocking calls",
    set = function(request, secs)
      local seconds = tonumber(secs)
      if not seconds or not (seconds > 0 and seconds < math.huge) then
        return ("option '--longblock' needs a positive number of seconds, got '%s'"):format(secs)
      end
      request.longblock = seconds
    end },
  { names = { "--" }, help = "stop handling options", stop = "skip" },
  { names = { "-" }, help = "execute stdin and stop handling options", stop = "keep" },
}

host.options = options

local by_name = {}
for _, option in ipairs(options) do
  for _, name in ipairs(option.names) do by_name[name] = option end
end

-- The help text, made from the table.
local function usage()
  local rows, width = {}, 0
  for _, option in ipairs(options) do
    local left = table.concat(option.names, ", ")
    if option.arg then
      left = left .. (option.optional and (" [" .. option.arg .. "]") or (" " .. option.arg))
    end
    rows[#rows + 1] = { left, option.help }
    width = math.max(width, #left)
  end
  local lines = { "usage: curio [options] [script [args]]", "Available options are:" }
  for _, row in ipairs(rows) do
    lines[#lines + 1] = ("  %-" .. width .. "s  %s"):format(row[1], row[2])
  end
  return table.concat(lines, "\n") .. "\n"
end

-- The option a word names, and the value glued to it (or nil).
local function lookup(word)
  local option = by_name[word]
  if option then return option, nil end
  local long, value = word:match("^(%-%-[^=]+)=(.*)$")
  if long then return by_name[long], value, long end
  option = by_name[word:sub(1, 2)]
  if option and option.arg and #option.names[1] == 2 and word:sub(2, 2) ~= "-" then
    return option, word:sub(3)
  end
  return nil
end

-- parse(argv) -> request (with script_index, the script's position in
-- argv, or nil), or nil and a one-line complaint.
local function parse(argv)
  local request = new_request()
  local i = 1
  while argv[i] ~= nil do
    local word = argv[i]
    if word:sub(1, 1) ~= "-" then break end
    local option, value, spelled = lookup(word)
    if not option then return nil, ("unrecognized option '%s'"):format(word) end
    if option.stop == "skip" then i = i + 1; break end
    if option.stop == "keep" then break end
    if value ~= nil and not option.arg then
      return nil, ("option '%s' takes no argument"):format(spelled or word)
    end
    if option.arg and value == nil then
      local next_word = argv[i + 1]
      if option.optional then
        if next_word and next_word:match(option.optional) then value = next_word; i = i + 1 end
      else
        if next_word == nil then return nil, ("option '%s' needs an argument"):format(word) end
        value = next_word
        i = i + 1
      end
    end
    local complaint = option.set(request, value)
    if complaint then return nil, complaint end
    i = i + 1
  end
  request.script_index = argv[i] and i or nil
  return request
end

-- The global `arg`, as lua5.4 makes it: the script at 0, its arguments
-- from 1, the interpreter and options below 0.
local function make_arg(argv, script_index)
  local args, first = {}, script_index or #argv + 1
  for j = 0, #argv do args[j - first] = argv[j] end
  return args
end

-- ---- errors ----

-- An error caught where it was raised, with the traceback taken there: for
-- a value that carries none of its own (a string, a foreign table).
local Caught = {}

-- For an error curio.run raised right where fn's task failed (in the
-- program: curio.task.run_here, its rule 5), the traceback of that task,
-- which says more than the line of the curio.run call. (Levels 3 and 4:
-- above catch and `error`.)
local function ran_here(err)
  local task = require "curio.task"
  for level = 3, 4 do
    local info = debug.getinfo(level, "f")
    if info and info.func == task.run_here and task.failure and rawequal(task.failure.value, err) then
      return task.failure.traceback
    end
  end
  return nil
end

-- The handler of the xpcall around user code: a cancellation goes on as it
-- is (the kernel and the prompt act on it); a curio error keeps its own
-- traceback; anything else is caught with a traceback taken here.
local function catch(err)
  if curio.CancelledError:matches(err) then return err end
  if type(err) == "table" and type(err.traceback) == "string" then return err end
  return setmetatable({ value = err, traceback = ran_here(err) or debug.traceback("", 2):sub(2) }, Caught)
end

-- A traceback without the program's own frames below the user's code (the
-- last xpcall in it is the host's: see protect).
local function trim(traceback)
  local cut = nil
  for at in traceback:gmatch("()\n%s*%[C%]: in function 'xpcall'") do cut = at end
  return cut and traceback:sub(1, cut - 1) or traceback
end

-- The one line of an error value, as lua5.4 words it for a value with
-- neither a string form nor __tostring.
local function line_of(value)
  local kind = type(value)
  if kind == "string" or kind == "number" then return tostring(value) end
  local mt = getmetatable(value)
  if type(mt) == "table" and mt.__tostring then return tostring(value) end
  return ("(error object is a %s value)"):format(kind)
end

-- host.report(err) -> the text that reports an error ending the program
-- (or a line at the prompt): "Class: message" or the message on one line,
-- then the traceback (the error's own, or the one taken where it was
-- caught), then, for an error with a cause (TaskError), the cause's the
-- same way. An error whose tostring already ends with its traceback (the
-- multi-line form) is cut to its first part, so the traceback shows once.
function host.report(err)
  if getmetatable(err) == Caught then
    if err.traceback == "" then return line_of(err.value) end
    return line_of(err.value) .. "\n" .. trim(err.traceback)
  end
  local text = line_of(err)
  local traceback = type(err) == "table" and rawget(err, "traceback")
  if type(traceback) ~= "string" then return text end
  if text:sub(-#traceback - 1) == "\n" .. traceback then text = text:sub(1, -#traceback - 2) end
  text = text .. "\n" .. trim(traceback)
  local cause = rawget(err, "cause")
  if cause ~= nil and cause ~= err then text = text .. "\ncaused by: " .. host.report(cause) end
  return text
end

-- Runs fn(...) in the calling task, so that its failure comes out caught
-- (with a traceback) and cancellations as they are.
local function protect(fn, ...)
  local result = table.pack(xpcall(fn, catch, ...))
  if not result[1] then error(result[2], 0) end
  return table.unpack(result, 2, result.n)
end

-- A compile error (a string: its own line says where).
local function compile_error(message)
  return setmetatable({ value = message, traceback = "" }, Caught)
end

-- ---- the main task ----

local function load_or_fail(source, name)
  local chunk, err
  if name == nil then chunk, err = loadfile(source) else chunk, err = load(source, name) end
  if not chunk then error(compile_error(err), 0) end
  return chunk
end

local function run_action(action)
  if action.kind == "library" then
    local global, module = action.value:match("^([^=]+)=(.+)$")
    module = module or action.value
    _G[global or module] = protect(require, module)
  else
    protect(load_or_fail(action.value, "=(command line)"))
  end
end

-- -m: the monitor at $CURIO_MONITOR (as `curio --monitor` takes it) or
-- its default address, said on stderr.
local function start_monitor()
  local monitor = require "curio.monitor"
  local given = os.getenv("CURIO_MONITOR")
  local where = monitor.parse_address(given)
  if where == nil then
    local problem = ("CURIO_MONITOR: bad monitor address '%s' (host:port, port or a path)"):format(given)
    error(compile_error(problem), 0)
  end
  local m = curio.monitor(where)
  io.stderr:write(("curio: monitor listening on %s (curio --monitor %s)\n"):format(m.address, m.address))
end

local function main_task(request, argv, ...)
  if request.monitor then start_monitor() end
  for _, action in ipairs(request.actions) do run_action(action) end
  local script = request.script_index and argv[request.script_index]
  if script then
    protect(load_or_fail(script ~= "-" and script or nil), ...)
  end
  if request.interactive or (not script and not request.ran_code and not request.version) then
    require("curio.prompt").run(host.report)
  end
end

-- SIGTERM cancels the main task, as SIGINT does (a fallback watcher: a
-- script's own SignalQueue for SIGTERM takes it instead). Returns whether
-- it did, and main_task's outcome as pcall gives it.
local function guarded(...)
  local main = curio.current_task()
  local term = signal.fallback_queue("SIGTERM")
  local terminated = false
  curio.spawn_daemon(function()
    if pcall(term.get, term) then -- (fails when closed: the main task ended first)
      terminated = true
      main:cancel()
    end
  end)
  local outcome = table.pack(pcall(main_task, ...))
  term:close()
  return terminated, outcome
end

-- curio.run(fn, ...) on a kernel with the command line's options
-- (--longblock).
local function run_kernel(request, fn, ...)
  local kernel = curio.Kernel(request.longblock and { debug = { longblock = request.longblock } } or nil)
  local outcome = table.pack(pcall(kernel.run, kernel, fn, ...))
  kernel:close()
  if not outcome[1] then error(outcome[2], 0) end
  return table.unpack(outcome, 2, outcome.n)
end

-- host.main(argv) -> exit status. argv[0] is the program, argv.stdin_is_tty
-- whether standard input is a terminal.
function host.main(argv)
  local request, problem = parse(argv)
  if not request then
    io.stderr:write("curio: ", problem, "\n", usage())
    return 1
  end
  if request.help then
    io.stdout:write(usage())
    return 0
  end
  if request.version then print(curio._VERSION .. " (" .. _VERSION .. ", libev)") end
  if request.monitor_client then
    return curio.run(require("curio.monitor").client, request.monitor_client)
  end
  _G.arg = make_arg(argv, request.script_index)
  _G.curio = curio
  require("curio.task").set_hosted(true) -- curio.run in a script runs in this kernel
  local script_args = {}
  if request.script_index then
    table.move(argv, request.script_index + 1, #argv, 1, script_args)
  end
  local ok, terminated, outcome = pcall(run_kernel, request, guarded, request, argv,
                                        table.unpack(script_args))
  if ok and terminated then
    io.stderr:write("curio: terminated\n")
    return 143
  end
  local err
  if not ok then err = terminated elseif not outcome[1] then err = outcome[2] end
  if err == nil then return 0 end
  if curio.KeyboardInterrupt:matches(err) then
    io.stderr:write("curio: interrupted\n")
    return 130
  end
  io.stderr:write("curio: ", host.report(err), "\n")
  return 1
end

return host
