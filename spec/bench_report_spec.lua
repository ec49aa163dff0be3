-- The benchmark report's data steps (bench/reportlib.lua, bench/report.lua):
-- the raw file's sections, the CSV written and read back, a family's
-- section replaced by a new run, the ratios' direction, and the check that
-- `make lint` runs. No benchmark runs here.
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

package.path = "./bench/?.lua;" .. package.path
local lib = require "reportlib"

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local RUN = [[
family=run
run_date=2026-12-07T10:00Z
commit=abc
wall_seconds=5

bench=switch
impl=curio-lua
n=10
seconds=0.5
ops_per_sec=20

bench=switch
impl=limit
ops_per_sec=40

bench=switch
impl=trio
ops_per_sec=5

bench=switch
impl=cqueues
ops_per_sec=10

bench=switch
impl=curio-py
skipped=curio not found, "set" CURIO_PY_SRC
]]

local IDLE = [[
family=idle
run_date=2026-12-07T10:05Z
commit=abc

bench=echo_idle_10k
impl=curio-lua
rss_per_conn_bytes=2000

bench=echo_idle_10k
impl=limit
rss_per_conn_bytes=1000

bench=echo_idle_10k
impl=luv
rss_per_conn_bytes=500
]]

describe("the benchmark report", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
  end)

  after_each(function()
    os.execute("rm -rf " .. dir)
  end)

  it("writes a CSV that reads back, a quoted reason included", function()
    local row = { "run", "switch", "curio-py", "skipped", 'no "x", y\nz', "", "d", "c" }
    local text = lib.csv_row(lib.CSV_COLUMNS) .. "\n" .. lib.csv_row(row) .. "\n"
    assert.are.same({ lib.CSV_COLUMNS, row }, lib.csv_parse(text))
  end)

  it("refuses a malformed CSV, naming the line", function()
    assert.has_error(function() lib.csv_parse('a,"b\n') end, "CSV line 1: unclosed quote")
    assert.has_error(function() lib.csv_parse('a,b"c\n') end, "CSV line 1: a quote inside an unquoted field")
    local header = table.concat(lib.CSV_COLUMNS, ",")
    assert.has_error(function() lib.csv_records(header .. "\nrun,switch,x,ops_per_sec,fast,ops/s,d,c\n") end,
      "CSV row 2: fast is not a number")
    assert.has_error(function() lib.csv_records(header .. "\nrun,switch\n") end, "CSV row 2: 2 fields, 8 expected")
  end)

  it("gives one row per numeric figure and one per skipped implementation", function()
    write(dir .. "/latest.txt", RUN)
    local status, stdout = util.sh("lua5.4 bench/report.lua csv " .. dir .. "/latest.txt")
    assert.are.equal(0, status)
    local recs = lib.csv_records(stdout)
    local got = {}
    for _, r in ipairs(recs) do
      got[#got + 1] = table.concat({ r.implementation, r.figure, r.value, r.unit }, " ")
    end
    assert.are.same({
      "curio-lua n 10 count", "curio-lua seconds 0.5 s", "curio-lua ops_per_sec 20 ops/s",
      "limit ops_per_sec 40 ops/s", "trio ops_per_sec 5 ops/s", "cqueues ops_per_sec 10 ops/s",
      'curio-py skipped curio not found, "set" CURIO_PY_SRC ',
    }, got)
    assert.are.equal("2026-12-07T10:00Z", recs[1].run_date)
    assert.are.equal("abc", recs[1].commit)
  end)

  it("replaces a family's section and keeps the others, in the families' order", function()
    local latest, new = dir .. "/latest.txt", dir .. "/section.txt"
    write(latest, IDLE .. "\n" .. RUN)
    write(new, (RUN:gsub("ops_per_sec=20", "ops_per_sec=25"):gsub("10:00Z", "11:00Z")))
    assert.are.equal(0, (util.sh("lua5.4 bench/report.lua merge " .. latest .. " " .. new)))
    local sections = lib.sections(read(latest))
    assert.are.same({ "run", "idle" }, { sections[1].header.fields.family, sections[2].header.fields.family })
    assert.are.equal("2026-12-07T11:00Z", sections[1].header.fields.run_date)
    assert.are.equal("25", sections[1].blocks[1].fields.ops_per_sec)
    assert.are.equal(5, #sections[1].blocks)
    assert.are.equal(3, #sections[2].blocks)
  end)

  it("keeps an implementation's best run when it appears twice", function()
    write(dir .. "/latest.txt", RUN .. "\nbench=switch\nimpl=curio-lua\nops_per_sec=30\n")
    local _, stdout = util.sh("lua5.4 bench/report.lua csv " .. dir .. "/latest.txt")
    local rates = {}
    for _, r in ipairs(lib.csv_records(stdout)) do
      if r.implementation == "curio-lua" and r.figure == "ops_per_sec" then rates[#rates + 1] = r.value end
    end
    assert.are.same({ "30" }, rates)
  end)

  it("rates curio-lua against the limit and the best peer, above 1 meaning curio-lua better", function()
    for _, case in ipairs({ { RUN, "switch", 0.5, 2.0, "cqueues" }, { IDLE, "echo_idle_10k", 0.5, 0.25, "luv" } }) do
      write(dir .. "/latest.txt", case[1])
      local _, csv = util.sh("lua5.4 bench/report.lua csv " .. dir .. "/latest.txt")
      local bench = lib.load(csv)[1].by_bench[case[2]]
      local c = lib.compare(bench)
      local p = bench.by_impl["curio-lua"]
      assert.are.same({ case[3], case[4], case[5] }, { c.ratio(p, c.limit), c.ratio(p, c.best), c.best.name })
    end
  end)

  it("compares a limit that says compare= by that figure only, and CPU time per operation too", function()
    write(dir .. "/latest.txt", [[
family=run
run_date=d
commit=c

bench=sleepers
impl=curio-lua
ops_per_sec=100
peak_rss_kb=1200
server_us_per_op=10

bench=sleepers
impl=limit
ops_per_sec=400
peak_rss_kb=1000
compare=peak_rss_kb

bench=sleepers
impl=cqueues
ops_per_sec=50
peak_rss_kb=1500
server_us_per_op=20
]])
    local _, csv = util.sh("lua5.4 bench/report.lua csv " .. dir .. "/latest.txt")
    local bench = lib.load(csv)[1].by_bench.sleepers
    assert.are.same({ "ops_per_sec", "peak_rss_kb", "server_us_per_op" }, lib.figures(bench))
    local p = bench.by_impl["curio-lua"]
    local speed, memory, cpu = lib.compare(bench), lib.compare(bench, "peak_rss_kb"),
      lib.compare(bench, "server_us_per_op")
    assert.are.same({ nil, 2.0 }, { speed.ratio(p, speed.limit), speed.ratio(p, speed.best) })
    assert.are.same({ 1000 / 1200, 1500 / 1200 }, { memory.ratio(p, memory.limit), memory.ratio(p, memory.best) })
    assert.are.same({ nil, 2.0 }, { cpu.ratio(p, cpu.limit), cpu.ratio(p, cpu.best) })
  end)

  it("counts the limit's older names as the limit, and limit-* as a further reference", function()
    assert.are.same({ "limit", "limit", "limit", "limit", "reference", "project", "project", "peer" },
      { lib.role("limit"), lib.role("c-epoll"), lib.role("lua5.4-bare"), lib.role("lua5.4-floor"),
        lib.role("limit-coroutine"), lib.role("curio-lua-stream"), lib.role("curio-program"), lib.role("uvloop") })
  end)

  it("checks that the CSV parses and that every chart the page shows exists", function()
    write(dir .. "/latest.txt", RUN)
    assert.are.equal(0, (util.sh("lua5.4 bench/report.lua csv " .. dir .. "/latest.txt > " .. dir .. "/latest.csv")))
    write(dir .. "/README.md", "![run](run.png)\n")
    local check = "lua5.4 bench/report.lua check " .. dir .. "/latest.csv " .. dir .. "/README.md"
    local status, _, stderr = util.sh(check)
    assert.are.equal(1, status)
    assert.truthy(stderr:find("missing or not PNG: run.png", 1, true))
    write(dir .. "/run.png", "\137PNG\r\n\26\n")
    assert.are.equal(0, (util.sh(check)))
    write(dir .. "/latest.csv", read(dir .. "/latest.csv") .. "run,switch,x,ops_per_sec,fast,ops/s,d,c\n")
    status, _, stderr = util.sh(check)
    assert.are.equal(1, status)
    assert.truthy(stderr:find("is not a number", 1, true))
  end)

  it("checks the committed CSV and charts", function()
    assert.are.equal(0, (util.sh("lua5.4 bench/report.lua check bench/results/latest.csv bench/README.md")))
  end)
end)
