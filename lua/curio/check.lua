-- curio.check: the argument checks every Lua module of curio uses (the role
-- lauxlib's luaL_check* plays for C). Each check is called directly by the
-- public function it guards, so that its error points at the user's call:
-- level 3 is check -> API function -> caller. A check called one level
-- deeper passes `depth` (the number of curio frames between it and the user).

local core = require "curio.core"
local errors = require "curio.errors"

local CurioError = errors.CurioError
local current_task = core.current_task
local tointeger = math.tointeger

local check = {}

local function level(depth) return 2 + (depth or 1) end

local function describe(value)
  if value == nil then return "no value" end
  return type(value)
end

-- Raises "bad argument #n to 'fname' (message)".
function check.arg_error(n, fname, message, depth)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, message), level(depth))
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
  for key in pairs(opts) do
    if not known[key] then check.arg_error(n, fname, "unknown option '" .. tostring(key) .. "'", depth) end
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

return check
