-- What thread_spec and process_spec both assert of an error that crossed
-- from a worker (run_in_thread, run_in_process) with fields that cannot
-- cross: `plain` is the table error the worker raised (code 3, a file, a
-- coroutine, nested fields, cycles, a key that cannot cross, a table with
-- raising metamethods), `classed` the TaskTimeout (code 4, a file whose
-- __tostring raised, a ResourceBusy cause holding a file). What differs
-- between the two (a C function, a Universal object) each spec checks.
local curio = require "curio"
local assert = require "luassert" -- (busted's assert lives in the specs' environment)

local crossing = {}

function crossing.check(plain, classed)
  assert.is_nil(getmetatable(plain))
  assert.are.equal(3, plain.code)
  assert.are.equal("string", type(plain.f))
  assert.is_truthy(plain.f:find("^userdata: file %(0x"), plain.f)
  assert.is_truthy(plain.co:find("^thread: 0x"), plain.co)
  assert.are.equal(1, plain.nested.deeper.n)
  assert.is_truthy(plain.nested.deeper.u:find("^userdata: file %(0x"), plain.nested.deeper.u)
  assert.are.equal(plain, plain.self)
  assert.are.equal(plain, plain.nested.back)
  assert.are.same({ kept = true }, plain.odd)
  local keys = {}
  for key, value in pairs(plain) do
    if type(key) == "string" and key:find("^userdata: file") then keys[#keys + 1] = value end
  end
  assert.are.same({ "a key that cannot cross" }, keys)
  assert.is_true(curio.TaskTimeout:matches(classed))
  assert.are.same({ "late", 4 }, { classed.message, classed.code })
  assert.is_truthy(classed.f:find("^userdata: 0x"), classed.f) -- (its __tostring raised)
  assert.is_true(curio.ResourceBusy:matches(classed.cause))
  assert.is_truthy(classed.cause.u:find("^userdata: 0x"), classed.cause.u)
end

return crossing
