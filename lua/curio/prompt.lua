-- curio.prompt: the interactive prompt of the `curio` program (host.lua
-- calls prompt.run(host.report) in its main task). lua5.4's conventions: an
-- expression prints its values, `=expr` too, an incomplete statement
-- continues on the next line (_PROMPT and _PROMPT2 are the two prompts).
-- At a terminal, lines are edited with libedit (core/editline.c, in the
-- program only) and kept in ~/.curio_history.
--
-- Rules:
-- 1. One task, the prompt, decides everything, in the order events reach
--    its queue: "input" (stdin is readable: the reader task waits only
--    when the prompt asks it to), "interrupt" (SIGINT, at a terminal),
--    "terminal" (SIGWINCH or SIGCONT while a line is edited: it is drawn
--    again) and "done" (a line's task ended). Nothing is judged twice or
--    lost.
-- 2. Each statement runs as a task of its own while tasks spawned before
--    go on; the prompt reads nothing until it ends.
-- 3. A line's error, timeout or cancellation is printed on stderr (one
--    line, then the traceback: a curio error's own, else where the error
--    left the line), as host.report words an error that ends a program.
--    At a terminal the prompt goes on; when stdin is no terminal,
--    statements are read without prompt or banner and the first error
--    ends the program with status 1 (host.lua prints it).
-- 4. Ctrl-C (SIGINT) at a terminal: while a line runs, cancels that line
--    (a second one stops waiting for a line that holds its cancellation
--    back: it goes on as a task); while a line is typed, drops it, with
--    the statement it continued.
-- 5. The end of input (Ctrl-D) ends the prompt; curio.run then cancels
--    the tasks left, newest first, and their cleanup runs.

local curio = require "curio"
local core = require "curio.core"

local prompt = {}

local INTERRUPTED = {} -- next_line's answer to Ctrl-C
local STUBBORN = 1     -- seconds a cancelled line may take before the prompt says so
local NAME_LENGTH = 40 -- of a line's text in its task's name (ps shows it)

-- The C side (core/editline.c) is the `curio` program's own module: this
-- one loads anywhere, prompt.run works in the program only.
local has_editline, editline = pcall(require, "curio.editline")
if not has_editline then editline = nil end

---------------------------------------------------------------- input

-- Lines from a descriptor that is no terminal (or whose output is none).
local Plain = {}
Plain.__index = Plain

local function plain_input(fd, prompts_to)
  return setmetatable({ fd = fd, head = {}, chunk = nil, pos = 1, ended = false,
                        prompts_to = prompts_to }, Plain)
end

function Plain:start(text)
  if self.prompts_to then
    self.prompts_to:write(text)
    self.prompts_to:flush()
  end
end

-- A line already read, without its newline; nil at the end of input; false
-- when more must be read. Linear in the input, however long its lines.
function Plain:take()
  if self.chunk then
    local newline = self.chunk:find("\n", self.pos, true)
    if newline then
      local piece = self.chunk:sub(self.pos, newline - 1)
      self.pos = newline + 1
      if #self.head == 0 then return piece end
      self.head[#self.head + 1] = piece
      local line = table.concat(self.head)
      self.head = {}
      return line
    end
    if self.pos <= #self.chunk then self.head[#self.head + 1] = self.chunk:sub(self.pos) end
    self.chunk = nil
  end
  if not self.ended then return false end
  if #self.head == 0 then return nil end
  local line = table.concat(self.head)
  self.head = {}
  return line
end

-- After the descriptor was readable.
function Plain:feed()
  local data = editline.read(self.fd)
  if data == "" or data == nil then
    self.ended = true
  elseif data then
    self.chunk, self.pos = data, 1
  end
  return self:take()
end

function Plain:interrupt()
  self.head = {}
end

function Plain.add_history() end
function Plain.redraw() end
function Plain.close() end

-- Lines edited at a terminal (core/editline.c).
local Editor = {}
Editor.__index = Editor

local function history_path()
  local home = os.getenv("HOME")
  if home == nil or home == "" then return nil end
  return home .. "/.curio_history"
end

local function editor_input()
  local ed = editline.open(history_path())
  return setmetatable({ ed = ed, fd = ed:fileno() }, Editor)
end

function Editor:start(text) self.ed:start(text) end
function Editor.take() return false end
function Editor:feed() return self.ed:feed() end
function Editor:interrupt() self.ed:interrupt() end
function Editor:redraw() self.ed:redraw() end
function Editor:add_history(line) self.ed:add_history(line) end
function Editor:close() self.ed:close() end

---------------------------------------------------------------- lines

-- lua5.4's way: an expression (also `=expr`) first, then a statement.
-- -> the chunk and whether it is an expression; nil when the statement is
-- incomplete; false and the message when it cannot compile. An expression
-- chunk returns its values packed by the function it is given: so its
-- calls are no tail calls, and a traceback keeps the line's frame.
local function compile(text)
  local source = text:gsub("^=", "return ", 1)
  local chunk = load("return (...)(" .. source .. "\n)", "=stdin", "t")
  if chunk then return chunk, true end
  local err
  chunk, err = load(source, "=stdin", "t")
  if chunk then return chunk end
  if err:sub(-5) == "<eof>" then return nil end
  return false, err
end

-- An error as one line, as lua5.4 shows it.
local function one_line(err)
  local kind = type(err)
  local text
  if kind == "string" or kind == "number" then
    text = tostring(err)
  else
    local mt = getmetatable(err)
    local ok, shown = pcall(tostring, err)
    if type(mt) == "table" and rawget(mt, "__tostring") and ok and type(shown) == "string" then
      text = shown
    else
      text = ("(error object is a %s value)"):format(kind)
    end
  end
  return (text:match("^[^\n]*"))
end

-- An error the prompt shows with a line and a traceback of its own.
local Shown = { __tostring = function(shown) return shown.line end }

local function shown(line, traceback)
  return setmetatable({ line = line, traceback = traceback }, Shown)
end

-- A traceback without the prompt's own frames (those below its xpcall).
local function trimmed(traceback)
  local cut, from = nil, 1
  while true do
    local at, to = traceback:find("\n[^\n]*in function 'xpcall'", from)
    if not at then break end
    cut, from = at, to + 1
  end
  return cut and traceback:sub(1, cut - 1) or traceback
end

-- A line's task: runs chunk, prints its values, tells the prompt.
local function run_line(chunk, is_expression, id, events)
  local traceback
  local function handler(err)
    traceback = trimmed(debug.traceback(nil, 2))
    return err
  end
  local results = table.pack(xpcall(chunk, handler, table.pack))
  if results[1] and is_expression then
    local values = results[2]
    results = table.pack(true, table.unpack(values, 1, values.n))
  end
  if results[1] and results.n > 1 then
    results = table.pack(xpcall(print, handler, table.unpack(results, 2, results.n)))
  end
  io.stdout:flush()
  events:put({ "done", id, results[1], results[2], traceback })
end

---------------------------------------------------------------- the prompt

-- The next line, or nil at the end of input, or INTERRUPTED (Ctrl-C).
local function next_line(state, text)
  local input = state.input
  input:start(text)
  local line = input:take()
  while line == false do
    if not state.reading then
      state.reading = true
      io.stdout:flush()
      state.wants:put(true)
    end
    local event = state.events:get()
    if event[1] == "input" then
      state.reading = false
      line = input:feed()
    elseif event[1] == "interrupt" then
      input:interrupt()
      state.out:write("^C\n")
      return INTERRUPTED
    elseif event[1] == "terminal" then
      input:redraw()
    end -- (a "done" of a line left running: rule 4)
  end
  return line
end

-- The next statement to run, or nil at the end of input.
local function next_statement(state)
  local buffer
  while true do
    local line = next_line(state, tostring(buffer and (_G._PROMPT2 or ">> ") or (_G._PROMPT or "> ")))
    if line == nil then
      if buffer and not state.interactive then
        local _, err = load(buffer, "=stdin", "t")
        error(shown(err), 0)
      end
      return nil
    elseif line == INTERRUPTED then
      buffer = nil
    else
      state.input:add_history(line)
      buffer = buffer and buffer .. "\n" .. line or line
      local chunk, how = compile(buffer)
      if chunk then return chunk, how, buffer end
      if chunk == false then
        if not state.interactive then error(shown(how), 0) end
        io.stderr:write(how, "\n")
        buffer = nil
      end
    end
  end
end

-- What a line's failure is reported as (through host.report, as an error
-- that ends the program is): a curio error with its own traceback as it
-- is; a cancellation by Ctrl-C as KeyboardInterrupt; anything else with
-- the traceback taken where it left the line.
local function failure(err, traceback, interrupted)
  if interrupted and curio.CancelledError:matches(err) then
    return shown("KeyboardInterrupt: the line was cancelled (Ctrl-C)", traceback)
  end
  if type(err) == "table" and type(rawget(err, "traceback")) == "string" then return err end
  return shown(one_line(err), traceback)
end

local function report(state, ok, err, traceback, interrupted)
  if ok then return end
  err = failure(err, traceback, interrupted)
  if not state.interactive then error(err, 0) end
  io.stderr:write(state.report(err), "\n")
end

-- Runs chunk as a task and waits for its end (rules 2 and 4).
local function run(state, chunk, is_expression, text)
  state.lines = state.lines + 1
  local id = state.lines
  local task = curio.spawn(run_line, chunk, is_expression, id, state.events)
  task.name = ("line %d: %s"):format(id, text:match("^[^\n]*"):sub(1, NAME_LENGTH))
  local interrupts = 0
  while true do
    local event
    if interrupts == 1 then -- (cancelled: a line that ignores it for long is told of)
      event = curio.ignore_after(STUBBORN, state.events.get, state.events)
      if event == nil then
        io.stderr:write("the line is still running: Ctrl-C again leaves it running as a task\n")
        event = state.events:get()
      end
    else
      event = state.events:get()
    end
    if event[1] == "done" and event[2] == id then
      return report(state, event[3], event[4], event[5], interrupts > 0)
    elseif event[1] == "interrupt" then
      interrupts = interrupts + 1
      if interrupts == 1 then
        task:cancel({ blocking = false })
      else
        io.stderr:write(("KeyboardInterrupt: the line goes on as task %d\n"):format(task.id))
        return
      end
    end
  end
end

local function reader_task(fd, wants, events)
  while true do
    wants:get()
    core.wait_fd(fd, "r")
    events:put({ "input" })
  end
end

-- Tells the prompt of signals: SIGINT is "interrupt", SIGWINCH and
-- SIGCONT (a new size, back from Ctrl-Z) are "terminal".
local function signal_task(signals, events)
  while true do
    local ok, name = pcall(signals.get, signals)
    if not ok then return end
    events:put({ name == "SIGINT" and "interrupt" or "terminal" })
  end
end

local function session(state)
  while true do
    local chunk, is_expression, text = next_statement(state)
    if chunk == nil then return end
    run(state, chunk, is_expression, text)
  end
end

-- ps() and where(id) at the prompt, as curio's monitor gives them:
-- printed (not returned, so that an expression's value is not printed
-- twice). Both run inside the line's task (monitor: a task's call).
local function set_globals()
  local monitor = require "curio.monitor"
  _G.ps = function() io.stdout:write(monitor.ps()) end
  _G.where = function(id) io.stdout:write(monitor.where(id)) end
end

-- prompt.run(report): reads and runs statements from stdin until its
-- end; report(err) is the text of an error (host.report).
function prompt.run(report_error)
  if editline == nil then error("curio.prompt: the prompt runs in the curio program only", 2) end
  local interactive = editline.isatty(0)
  local to_terminal = interactive and editline.isatty(1)
  local state = { interactive = interactive, lines = 0, events = curio.Queue(), wants = curio.Queue(),
                  out = to_terminal and io.stdout or io.stderr, report = report_error }
  if to_terminal then
    local ok, editor = pcall(editor_input)
    if ok then
      state.input = editor
    else -- (libedit missing: plain lines, still a prompt)
      io.stderr:write("curio: no line editing: ", one_line(editor), "\n")
    end
  end
  state.input = state.input or plain_input(0, interactive and state.out or nil)
  set_globals()
  curio.current_task().name = "prompt"
  if interactive then
    state.out:write(("%s (%s): lines run as tasks; Ctrl-C cancels a running line, Ctrl-D exits\n")
      :format(curio._VERSION, _VERSION))
  end
  local helpers = { curio.spawn_daemon(reader_task, state.input.fd, state.wants, state.events) }
  helpers[1].name = "prompt input"
  local signals
  if interactive then
    if getmetatable(state.input) == Editor then
      signals = curio.SignalQueue("SIGINT", "SIGWINCH", "SIGCONT")
    else
      signals = curio.SignalQueue("SIGINT")
    end
    helpers[2] = curio.spawn_daemon(signal_task, signals, state.events)
    helpers[2].name = "prompt signals"
  end
  local ok, err = pcall(session, state)
  for _, helper in ipairs(helpers) do helper:cancel() end
  if signals then signals:close() end
  state.input:close()
  if interactive and ok then state.out:write("\n") end
  if not ok then error(err, 0) end
end

return prompt
