local core = require "curio.core"
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- The codec (core/codec.c) that carries values to worker threads and
-- processes: exact round trips, refusals naming the value's path, and a
-- decoder that survives any input.
describe("the value codec", function()
  local encode, decode = core.encode, core.decode

  -- Deep comparison that follows shared references and cycles: a and b
  -- must have the same shape, with the same sharing.
  local function same(a, b, seen)
    seen = seen or {}
    if type(a) ~= type(b) then return false end
    if type(a) == "number" then
      if math.type(a) ~= math.type(b) then return false end
      if a ~= a then return b ~= b end
      if a == 0 and b == 0 then return 1 / a == 1 / b end
      return a == b
    end
    if type(a) ~= "table" then return a == b end
    if seen[a] ~= nil then return seen[a] == b end
    seen[a] = b
    for k, v in pairs(a) do
      local kb = k
      if type(k) == "table" then return false end -- (not generated)
      if not same(v, b[kb], seen) then return false end
    end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end

  local specials = { 0, -0.0, 1 / 0, -1 / 0, 0 / 0, math.maxinteger, math.mininteger,
                     math.pi, 2 ^ 53, -2 ^ 63, 1e-310, "", "\0\255\n", ("x"):rep(70000),
                     true, false }

  -- A random nested value (fixed seed: the test is the same every run).
  local function random_value(depth, pool)
    local r = math.random(1, depth > 3 and 6 or 9)
    if r <= 3 then return specials[math.random(#specials)] end
    if r == 4 then return math.random(-1000, 1000) end
    if r == 5 then return math.random() * 1e6 end
    if r == 6 then return tostring(math.random()) end
    if r == 7 and #pool > 0 then return pool[math.random(#pool)] end -- shared
    local t = {}
    pool[#pool + 1] = t
    for i = 1, math.random(0, 6) do t[i] = random_value(depth + 1, pool) end
    for _ = 1, math.random(0, 4) do t["k" .. math.random(100)] = random_value(depth + 1, pool) end
    if math.random() < 0.2 then t.self = t end
    return t
  end

  it("round-trips every special number and string exactly", function()
    for _, v in ipairs(specials) do
      local back = decode(encode(v))
      assert.is_true(same(v, back), tostring(v))
    end
    assert.are.equal(math.mininteger, (decode(encode(math.mininteger))))
    assert.are.equal("integer", math.type((decode(encode(3)))))
    assert.are.equal("float", math.type((decode(encode(3.0)))))
  end)

  it("round-trips 300 generated nested tables with shared references and cycles", function()
    math.randomseed(42)
    for _ = 1, 300 do
      local v = random_value(0, {})
      assert.is_true(same(v, (decode(encode(v)))))
    end
  end)

  it("keeps every value of a tuple, nils included", function()
    assert.are.same({ n = 5, nil, 2, nil, "x", nil }, table.pack(decode(encode(nil, 2, nil, "x", nil))))
    assert.are.equal(0, select("#", decode(encode())))
  end)

  it("carries Lua functions with their upvalues, rebinding _ENV", function()
    local base = { 10 }
    local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
    local function f(x) return x + base[1], fib(10), type(print) end
    local g = decode(encode(f), true)
    assert.are.same({ 15, 55, "function" }, { g(5) })
    assert.are.equal(print, (decode(encode(print), true)))
  end)

  it("refuses functions unless the sender is trusted", function()
    local err = util.catch(decode, encode(function() end))
    assert.is_truthy(tostring(err):find("malformed", 1, true))
  end)

  it("names the path and type of a value that cannot cross", function()
    local function message(...)
      return tostring(util.catch(encode, ...)):match("cannot transfer.*")
    end
    assert.are.equal("cannot transfer argument #2 field 'conn' (userdata)", message(1, { conn = io.stdout }))
    assert.are.equal("cannot transfer argument #1 field 'a[3]' (thread)",
                     message({ a = { [3] = coroutine.create(print) } }))
    assert.is_truthy(message(setmetatable({}, { __index = print }), string.gmatch("", "")):find("#2 %(function"))
    local deep = {}
    local cur = deep
    for _ = 1, 300 do cur[1] = {}; cur = cur[1] end
    assert.is_truthy(message(deep):find("nested too deeply", 1, true))
  end)

  it("rejects every truncation and many corruptions of valid data, never crashing", function()
    math.randomseed(7)
    local data = encode({ 1, "two", { 3.5, x = { true, false } }, n = math.mininteger }, "tail", -0.0)
    for cut = 0, #data - 1 do
      local ok = pcall(decode, data:sub(1, cut))
      assert.is_false(ok, "a truncation to " .. cut .. " bytes was accepted")
    end
    for _ = 1, 3000 do
      local bytes = { data:byte(1, -1) }
      for _ = 1, math.random(1, 3) do bytes[math.random(#bytes)] = math.random(0, 255) end
      pcall(decode, string.char(table.unpack(bytes))) -- an error or values: no crash
    end
    for _, bad in ipairs({ "", "CL", "CL\1\255\255\255\255\255\255\255\255\255\1", "CL\1\1\5\255\255\255\255\15",
                           "CL\1\1\8\1", "CL\1\1\6\0", "CL\1\2\0", "XY\1\0" }) do
      assert.is_false((pcall(decode, bad)))
    end
  end)

  it("decodes the fuzzer's corpus and regression inputs without crashing", function()
    local files = {}
    for i = 1, 6 do files[#files + 1] = "tests/fuzz/corpus/seed" .. i end
    -- (regression inputs have names libFuzzer chose: listed with ls, which
    -- may fail under a sanitizer's LD_PRELOAD; the seeds are enough then)
    local p = io.popen("ls tests/fuzz/regressions 2>/dev/null")
    for name in p:lines() do
      if name ~= "README" then files[#files + 1] = "tests/fuzz/regressions/" .. name end
    end
    p:close()
    for _, file in ipairs(files) do
      local f = assert(io.open(file, "rb"))
      local data = f:read("a")
      f:close()
      pcall(decode, data)
    end
    assert.is_true(#files >= 6)
  end)

  it("carries an error to another process: errors.portable, encode_portable, decode, errors.restore", function()
    local errors = require "curio.errors"
    local function cross(err, traceback)
      local bytes = core.encode_portable("error", errors.portable(err, traceback))
      return errors.restore((decode(bytes)))
    end
    local t = cross(errors.TaskTimeout("late", { code = 3, where = io.stdout }))
    assert.is_true(errors.TaskTimeout:matches(t))
    assert.are.same({ "late", 3 }, { t.message, t.code })
    assert.is_truthy(t.where:find("file", 1, true)) -- (a userdata field: its name)
    local s = cross("x.lua:1: boom", "stack traceback:\n\tx.lua:1")
    assert.is_true(errors.CurioError:matches(s))
    assert.are.same({ "x.lua:1: boom", "stack traceback:\n\tx.lua:1" }, { s.message, s.traceback })
    assert.are.same({ code = 7 }, cross({ code = 7 }))
    assert.are.equal(false, cross(false))
    local loop = errors.CurioError("outer")
    loop.cause = loop -- (a cycle of causes ends)
    assert.is_true(errors.CurioError:matches(cross(loop).cause))
  end)
end)
