-- curio.errors: the error classes (docs/errors.md).
--
-- A class is a table callable as Class(message, fields). Its instances are
-- tables whose metatable carries __class, so Class:matches(value) is one
-- metatable read and one set lookup (class.__is holds every ancestor).
-- The C core finds classes by name through core.set_errors(classes).
-- An error crosses to another Lua state (a worker thread or process) in a
-- portable form (errors.portable) and is restored by class name there
-- (errors.restore).

local errors = {}

local class_methods = {}
local class_mt = { __index = class_methods }

-- tostring(err): "Class: message", one line as Python's str with its
-- class; the traceback stays in err.traceback, for whoever prints a crash.
local function instance_tostring(err)
  return err.__name .. ": " .. tostring(err.message)
end

local instance_methods = {}

function instance_methods:is_a(class)
  return class_methods.matches(class, self)
end

-- Every class made here by name, for errors.restore (the last one made
-- wins a name; a class nobody holds any more is forgotten).
local named = setmetatable({}, { __mode = "v" })

local function new_class(name, parent)
  local class = setmetatable({ __name = name, __parent = parent, __is = {} }, class_mt)
  named[name] = class
  class.__is[class] = true
  if parent then
    for ancestor in pairs(parent.__is) do class.__is[ancestor] = true end
  end
  class.__instance = {
    __class = class,
    __index = function(_, key)
      if key == "__name" then return name end
      return instance_methods[key]
    end,
    __tostring = instance_tostring,
    __name = name,
  }
  return class
end

-- Class(message, fields) -> a new instance, ready for error().
function class_mt.__call(class, message, fields)
  local err = {}
  if fields ~= nil then
    if type(fields) ~= "table" then
      require("curio.check").table(fields, 2, class.__name)
    end
    for key, value in pairs(fields) do err[key] = value end
  end
  if message == nil then message = class.__name end
  err.message = message
  err.traceback = debug.traceback("", 2):sub(2)
  return setmetatable(err, class.__instance)
end

function class_mt.__tostring(class)
  return "class " .. class.__name
end

-- Class:matches(value): true when value is an instance of Class or below.
function class_methods.matches(class, value)
  if type(value) ~= "table" then return false end
  local mt = getmetatable(value)
  if type(mt) ~= "table" then return false end
  local of = rawget(mt, "__class")
  return of ~= nil and of.__is[class] == true
end

-- Class:subclass(name) -> a new class below Class.
function class_methods.subclass(class, name)
  if type(name) ~= "string" then
    require("curio.check").arg_error(1, "subclass", "string expected, got " .. type(name))
  end
  return new_class(name, class)
end

-- Class:is_subclass(other): true when Class is other or below it.
function class_methods.is_subclass(class, other)
  return getmetatable(class) == class_mt and class.__is[other] == true
end

-- true when value is a class made here.
function errors.is_class(value)
  return type(value) == "table" and getmetatable(value) == class_mt
end

local hierarchy = {
  { "CancelledError" },
  { "TaskCancelled", "CancelledError" },
  { "TaskTimeout", "CancelledError" },
  { "TimeoutCancellationError", "CancelledError" },
  { "CurioError" },
  { "TaskError", "CurioError" },
  { "UncaughtTimeoutError", "CurioError" },
  { "ResourceBusy", "CurioError" },
  { "ReadResourceBusy", "ResourceBusy" },
  { "WriteResourceBusy", "ResourceBusy" },
  { "BrokenWorkerError", "CurioError" },
  { "OSError", "CurioError" },
  { "ConnectionError", "OSError" },
  { "BrokenPipeError", "ConnectionError" },
  { "ConnectionResetError", "ConnectionError" },
  { "ConnectionRefusedError", "ConnectionError" },
  { "TimeoutError", "OSError" },
  { "SSLError", "OSError" },
  { "SSLCertVerificationError", "SSLError" },
  { "SSLEOFError", "SSLError" },
  { "IncompleteRead", "CurioError" },
  { "KeyboardInterrupt", "CurioError" },
}

errors.classes = {}
for _, entry in ipairs(hierarchy) do
  local name, parent = entry[1], entry[2]
  local class = new_class(name, parent and errors.classes[parent])
  errors.classes[name] = class
  errors[name] = class
end

local CancelledError = errors.CancelledError

local function pass_cancel(ok, ...)
  if not ok and CancelledError:matches((...)) then error((...), 0) end
  return ok, ...
end

-- curio.pcall(fn, ...): pcall that lets the CancelledError family through.
function errors.pcall(fn, ...)
  return pass_cancel(pcall(fn, ...))
end

-- curio.xpcall(fn, handler, ...): likewise; handler never sees a cancellation.
function errors.xpcall(fn, handler, ...)
  if type(handler) ~= "function" then
    require("curio.check").fn(handler, 2, "xpcall")
  end
  return pass_cancel(xpcall(fn, function(err)
    if CancelledError:matches(err) then return err end
    return handler(err)
  end, ...))
end

---------------------------------------------------------------- crossing

-- The marker of a portable error: the names of its class and ancestors.
local PORTABLE = "__curio_class"
local MAX_DEPTH = 100 -- tables nested in an error (the codec's bound is 200)

-- The class of a curio error made here (registered under its name), or nil.
-- Raw reads only: an error's metatable may be anyone's.
local function class_of(value)
  local mt = getmetatable(value)
  local class = type(mt) == "table" and rawget(mt, "__class") or nil
  local name = type(class) == "table" and rawget(class, "__name")
  if type(name) == "string" and named[name] == class then return class end
  return nil
end

-- What a value that cannot cross becomes: its type and its tostring
-- ("userdata: file (0x...)"), protected; a raising or odd __tostring gives
-- way to the type and address.
local function describe(value)
  local kind = type(value)
  local ok, text = pcall(tostring, value)
  if not ok or type(text) ~= "string" then return ("%s: %p"):format(kind, value) end
  if text:sub(1, #kind + 1) == kind .. ":" then return text end
  return kind .. ": " .. text
end

-- Without a probe from the caller: threads never cross, userdata only when
-- shared (a Universal object), functions do.
local function default_crosses(value)
  if type(value) == "function" then return true end
  local mt = type(value) == "userdata" and debug.getmetatable(value)
  return type(mt) == "table" and type(rawget(mt, "__curio_shared")) == "userdata"
end

-- A copy of value that the codec carries (rule of errors.portable): tables
-- copied with raw reads (keys too, cycles and shared parts kept through
-- `copies`, curio errors marked with their class names), a leaf that the
-- probe refuses described instead.
local function portable_value(value, crosses, copies, depth)
  local kind = type(value)
  if kind == "nil" or kind == "boolean" or kind == "number" or kind == "string" then return value end
  if kind ~= "table" then
    if kind ~= "thread" then
      local ok, yes = pcall(crosses, value)
      if ok and yes then return value end
    end
    return describe(value)
  end
  if copies[value] then return copies[value] end
  if depth >= MAX_DEPTH then return describe(value) .. " (nested too deeply)" end
  local form = {}
  copies[value] = form
  for key, field in next, value do
    key = portable_value(key, crosses, copies, depth + 1)
    if rawget(form, key) == nil then form[key] = portable_value(field, crosses, copies, depth + 1) end
  end
  local class = class_of(value)
  if class then
    local names = {}
    while type(class) == "table" and #names < MAX_DEPTH do
      names[#names + 1] = rawget(class, "__name")
      class = rawget(class, "__parent")
    end
    form[PORTABLE] = names
  end
  return form
end

-- errors.portable(err, traceback, crosses) -> what the codec carries for an
-- error raised in a worker (thread or process). A table (a curio error or
-- any other) becomes a plain copy of its fields, read raw, recursively,
-- cycles kept; a curio error's copy also carries its class names. A field
-- (or key) that cannot cross becomes a string saying what it was
-- ("userdata: file (0x...)"): crosses(value) says which can (the caller's
-- codec: a shared object or a C function does not cross to another
-- process), a coroutine never does. A string becomes a CurioError's form
-- carrying the message and traceback (the worker's, at the raise); nil,
-- booleans and numbers stay as they are; anything else becomes a
-- CurioError's form with its description. Needs no kernel.
function errors.portable(err, traceback, crosses)
  local kind = type(err)
  if kind == "table" then
    return portable_value(err, type(crosses) == "function" and crosses or default_crosses, {}, 0)
  elseif kind == "nil" or kind == "boolean" or kind == "number" then
    return err
  end
  return { [PORTABLE] = { "CurioError" }, message = kind == "string" and err or describe(err),
           traceback = type(traceback) == "string" and traceback or nil }
end

-- errors.restore(value) -> the error to raise in the caller's state for a
-- value that errors.portable made (decoded: plain tables): every table in
-- it marked as a curio error becomes one, of the first of its class names
-- known here (CurioError when none is); a string (a worker that could not
-- load this module) becomes a CurioError; anything else is returned as it
-- is.
local function restore(value, done)
  if done[value] then return end
  done[value] = true
  local names = rawget(value, PORTABLE)
  value[PORTABLE] = nil
  for key, field in next, value do
    if type(key) == "table" and getmetatable(key) == nil then restore(key, done) end
    if type(field) == "table" and getmetatable(field) == nil then restore(field, done) end
  end
  if type(names) ~= "table" then return end
  local class
  for _, name in ipairs(names) do
    class = type(name) == "string" and named[name] or nil
    if class then break end
  end
  if value.message == nil then value.message = (class or errors.CurioError).__name end
  setmetatable(value, (class or errors.CurioError).__instance)
end

function errors.restore(value)
  if type(value) == "string" then return errors.CurioError(value) end
  if type(value) ~= "table" or getmetatable(value) ~= nil then return value end
  restore(value, {})
  return value
end

-- Raises a new instance of class with message (and fields) at level 2.
function errors.raise(class, message, fields)
  error(class(message, fields), 2)
end

return errors
