local util = require "support.util"
local fuzz = require "support.fuzz"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

-- Random programs (spec/support/fuzz.lua) driving the whole API, each run in
-- a child lua5.4, or by the curio program, with the in-tree build (the
-- sanitizer build under CURIO_BIN=build-asan/bin/curio, LD_PRELOAD
-- inherited). A program may end in a Lua error from its kernel, caught by
-- its own pcall, and its tasks may crash ("Task crash" reports on stderr),
-- but the process must exit 0 within its time bound, print FUZZ-OK, lose no
-- queue item (a program counts the puts and gets that returned and prints
-- FUZZ-LOST when an item vanished), read every line of its shared streams
-- whole and in order (FUZZ-CORRUPT otherwise), and show no sign of memory
-- corruption.
--
--   CURIO_FUZZ_SEED   seed of the generator (default 1)
--   CURIO_FUZZ_COUNT  number of programs (default 40)
--   CURIO_FUZZ_ONLY   run only the program with this index
--   CURIO_FUZZ_TIME   wall-clock bound per program in seconds (default 20)
--   CURIO_FUZZ_AVOID  statement kinds or features not to generate, comma
--                     separated (e.g. "many,kernel2"), to look past a known bug
--   CURIO_FUZZ_WITH   kinds of fuzz.OFF to generate too, comma separated
--                     (shapes that still fail on main: see fuzz.OFF)
--
-- A program may use TLS (about three in ten): its certificate, key and CA
-- are made once per run with the openssl program and given to it as
-- CURIO_FUZZ_CERT, CURIO_FUZZ_KEY and CURIO_FUZZ_CA (run by hand without
-- them, its TLS statements do nothing); CURIO_FUZZ_AVOID=tls turns TLS off.
--
-- A failing program is written to /tmp/fuzz-fail-<seed>-<index>.lua and its
-- text is in the failure message; it is also reproduced by
--   LUA_PATH='spec/?.lua;;' lua5.4 -e \
--     'io.write((require("support.fuzz").generate(SEED, INDEX)))'
-- (with AVOID: generate(SEED, INDEX, { many = true, kernel2 = true })).
describe("random programs", function()
  local seed = math.tointeger(tonumber(os.getenv("CURIO_FUZZ_SEED") or "1")) or 1
  local count = math.tointeger(tonumber(os.getenv("CURIO_FUZZ_COUNT") or "40")) or 40
  local only = math.tointeger(tonumber(os.getenv("CURIO_FUZZ_ONLY") or ""))
  local bound = tonumber(os.getenv("CURIO_FUZZ_TIME") or "20") or 20
  local avoid = {}
  for word in (os.getenv("CURIO_FUZZ_AVOID") or ""):gmatch("[%w_]+") do avoid[word] = true end
  local with = {}
  for word in (os.getenv("CURIO_FUZZ_WITH") or ""):gmatch("[%w_]+") do with[word] = true end

  -- the certificate and key of the programs' TLS statements, made once per
  -- run by the openssl program and handed to each program in its
  -- environment: one self-signed certificate for localhost, which the
  -- clients trust as their CA (support/certs.lua's set costs a second)
  local dir, tls_env
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
    assert(os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 "
      .. "-keyout '%s/key.pem' -out '%s/cert.pem' -subj '/CN=localhost' "
      .. "-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' >/dev/null 2>&1"):format(dir, dir)))
    tls_env = ("CURIO_FUZZ_CERT='%s/cert.pem' CURIO_FUZZ_KEY='%s/key.pem' CURIO_FUZZ_CA='%s/cert.pem'")
      :format(dir, dir, dir)
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  -- by lua5.4, or by the curio program (util.bin) when info.bin
  local function run_program(source, info)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(source)
    f:close()
    local status, stdout, stderr = util.sh(("%s %s timeout -k 5 %g %s %s"):format(util.env, tls_env, bound,
      info.bin and util.bin or util.lua, path))
    os.remove(path)
    return status, stdout, stderr
  end

  local function tail(text, max)
    if #text <= max then return text end
    return "[... " .. (#text - max) .. " bytes cut ...]\n" .. text:sub(-max)
  end

  local function verdict(status, stdout, stderr)
    if status == 124 or status == 137 then
      return ("timed out after %gs (hang or livelock)"):format(bound)
    end
    if status ~= 0 then return "exit status " .. status end
    local fatal = fuzz.fatal_in(stderr)
    if fatal then return "stderr shows '" .. fatal .. "'" end
    if not stdout:find("FUZZ-OK", 1, true) then return "no FUZZ-OK on stdout" end
    local lost = stdout:match("FUZZ%-LOST[^\n]*")
    if lost then return "an item was lost (" .. lost .. ")" end
    local corrupt = stdout:match("FUZZ%-CORRUPT[^\n]*")
    if corrupt then return "a stream returned corrupted data (" .. corrupt .. ")" end
    return nil
  end

  for index = 1, count do
    if only == nil or only == index then
      it(("survives program %d of seed %d"):format(index, seed), function()
        local source, info = fuzz.generate(seed, index, avoid, with)
        local status, stdout, stderr = run_program(source, info)
        local problem = verdict(status, stdout, stderr)
        if problem then
          local saved = ("/tmp/fuzz-fail-%d-%d.lua"):format(seed, index)
          local f = io.open(saved, "w")
          if f then f:write(source) f:close() end
          error(("fuzz program %d of seed %d (CURIO_FUZZ_SEED=%d CURIO_FUZZ_ONLY=%d%s, saved as %s): %s\n"
            .. "--- stdout ---\n%s\n--- stderr ---\n%s\n--- program ---\n%s")
            :format(index, seed, seed, index,
                    os.getenv("CURIO_FUZZ_AVOID") and " CURIO_FUZZ_AVOID=" .. os.getenv("CURIO_FUZZ_AVOID") or "",
                    saved, problem, tail(stdout, 2000), tail(stderr, 6000), source), 0)
        end
      end)
    end
  end
end)
