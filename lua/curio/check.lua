-- curio.check: the argument checks every module of curio's API uses (the
-- role lauxlib's luaL_check* plays for C; core/errors.c is the one place in
-- C; host.lua, the `curio` program, takes no arguments from Lua code).
-- No other Lua file builds a "bad argument" message: tools/lint_args.sh
-- refuses one.
--
-- Rules:
--  1. Each check is called directly by the public function it guards:
--     level 3 is check -> API function -> caller. A check called one level
--     deeper passes `depth` (the number of curio frames between it and the
--     user).
--  2. The error's position is the user's line: frames of curio's own Lua
--     modules above that level are skipped (as core/errors.c does for C),
--     so a check made in a helper or a wrapper still points at the caller.
--  3. Arguments are numbered as the user counts them: a method's self is
--     not counted (the first argument after it is #1).
--  4. A string that reaches C as a C string (a path, a host, a name) must
--     not hold a zero byte (check.cstring).
--  5. An options table is checked whole: an unknown key is refused with an
--     error naming it (check.options).

local core = require "curio.core"
local errors = require "curio.errors"

local CurioError = errors.CurioError
local current_task = core.current_task
local tointeger = math.tointeger
local getinfo = debug.getinfo

local check = {}

-- The source prefix of curio's Lua modules ("@/usr/share/lua/5.4/curio/"),
-- from this file's own chunk name; nil when it was loaded otherwise.
check.module_dir = getinfo(1, "S").source:match("^(@.*[/\\])[^/\\]+$")
local module_dir = check.module_dir

-- The level, for error() in the function that calls level() (arg_error,
-- check.task), of the user's frame (rules 1 and 2).
local function level(depth)
  local n = 2 + (depth or 1)
  while module_dir ~= nil do
    local info = getinfo(n + 1, "S") -- (getinfo counts level() itself)
    if info == nil or info.source:sub(1, #module_dir) ~= module_dir then break end
    n = n + 1
  end
  return n
end

local function describe(value)
  if value == nil then return "no value" end
  return type(value)
end
check.describe = describe

-- A user's value shown in a message: a string with its zero bytes as "\0"
-- (a raw zero byte would cut the message short where C prints it), a
-- number or boolean as itself, anything else by its type (its own
-- __tostring is not called: it may raise or lie).
function check.shown(value)
  local kind = type(value)
  if kind == "string" then return (value:gsub("%z", "\\0")) end
  if kind == "number" or kind == "boolean" then return tostring(value) end
  return describe(value)
end

-- Raises "bad argument #n to 'fname' (message)".
function check.arg_error(n, fname, message, depth)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, message), level(depth))
end

-- Raises "calling 'fname' on bad self (tname expected, got ...)": a Lua
-- class's method called on another object (as core/errors.c for C). The
-- method itself compares the metatable, one comparison on the success
-- path, and calls this only when it fails.
function check.bad_self(value, fname, tname, depth)
  error(("calling '%s' on bad self (%s expected, got %s)"):format(fname, tname, describe(value)),
        level(depth))
end

-- Raises CurioError "fname: not inside a curio task" unless a task runs:
-- every call that may block does this first, even when it would not block.
function check.task(fname, depth)
  if current_task() == nil then
    error(CurioError(fname .. ": not inside a curio task"), level(depth))
  end
end

function check.fn(value, n, fname, depth)
  if type(value) ~= "function" then
    check.arg_error(n, fname, "function expected, got " .. describe(value), (depth or 1) + 1)
  end
  return value
end

function check.table(value, n, fname, depth)
  if type(value) ~= "table" then
    check.arg_error(n, fname, "table expected, got " .. describe(value), (depth or 1) + 1)
  end
  return value
end

-- An optional table of options whose keys are all in `known`: nil gives {}.
function check.options(opts, n, fname, known, depth)
  if opts == nil then return {} end
  depth = (depth or 1) + 1
  if type(opts) ~= "table" then check.arg_error(n, fname, "table expected, got " .. type(opts), depth) end
  for key in next, opts do -- (raw, as C's check: what it sees is what is read)
    if not known[key] then
      -- (a key's own __tostring is not called: it may raise or lie)
      local shown = type(key) == "string" and ("'" .. check.shown(key) .. "'")
        or ("(a " .. type(key) .. " key)")
      check.arg_error(n, fname, "unknown option " .. shown, depth)
    end
  end
  return opts
end

-- An optional count: nil gives `default`, else a non-negative integer.
function check.count(value, n, fname, default, depth)
  if value == nil then return default end
  depth = (depth or 1) + 1
  if type(value) ~= "number" then
    check.arg_error(n, fname, "number expected, got " .. type(value), depth)
  end
  local count = tointeger(value)
  if count == nil then check.arg_error(n, fname, "number has no integer representation", depth) end
  if count < 0 then check.arg_error(n, fname, "non-negative integer expected", depth) end
  return count
end

-- A queue's optional maxsize: nil, 0 or math.huge (unbounded) give 0,
-- else a positive integer (every queue constructor takes it alike).
function check.maxsize(value, n, fname, depth)
  if value == nil or value == math.huge then return 0 end
  depth = (depth or 1) + 1
  if type(value) == "number" and value ~= value then
    check.arg_error(n, fname, "non-negative maxsize expected", depth)
  end
  local size = check.count(value, n, fname, 0, depth)
  return size -- (not a tail call: the error levels count this frame)
end

-- Optional seconds: nil (no limit) or a non-negative number, not NaN.
function check.seconds(value, n, fname, depth)
  if value == nil then return nil end
  depth = (depth or 1) + 1
  if type(value) ~= "number" then
    check.arg_error(n, fname, "number expected, got " .. type(value), depth)
  end
  if value ~= value or value < 0 then check.arg_error(n, fname, "non-negative number expected", depth) end
  return value
end

-- An optional clock time: nil or a number, not NaN.
function check.deadline(value, n, fname, depth)
  if value == nil then return nil end
  depth = (depth or 1) + 1
  if type(value) ~= "number" then
    check.arg_error(n, fname, "number expected, got " .. type(value), depth)
  end
  if value ~= value then check.arg_error(n, fname, "number expected, got NaN", depth) end
  return value
end

-- A value of any type but nil.
function check.value(value, n, fname, depth)
  if value == nil then check.arg_error(n, fname, "value expected", (depth or 1) + 1) end
  return value
end

-- A string (rule 4: no zero byte, since C takes it as a C string). `what`
-- names it in the message ("string" unless given, e.g. "path string").
function check.cstring(value, n, fname, what, depth)
  depth = (depth or 1) + 1
  if type(value) ~= "string" then
    check.arg_error(n, fname, (what or "string") .. " expected, got " .. describe(value), depth)
  end
  if value:find("\0", 1, true) then check.arg_error(n, fname, "string contains a zero byte", depth) end
  return value
end

return check
