-- What bench/report.lua and bench/chart.lua share (not a benchmark): the
-- families `make bench` runs, the raw file's sections, the CSV, and which
-- implementation plays which part in a comparison.
--
-- Rules:
-- 1. The raw file (bench/results/latest.txt) is the scripts' output as
--    printed, each family's blocks after a header block of its own
--    (`family=`, `run_date=`, `commit=`, `script=`, `wall_seconds=`), so
--    that `lua5.4 bench/summary.lua < latest.txt` still makes the tables
--    (a block without `bench=` is ignored there). Running one family
--    replaces that family's section and keeps the others.
-- 2. The CSV has one row per figure: every name=value line of a block
--    other than bench and impl, with its unit (`text` for a value that is
--    not a number: `compare`, TLS's `cipher`, ...); a block that was
--    skipped or failed gives one row, figure `skipped` or `error`, the
--    reason as its value. Its columns are CSV_COLUMNS.
-- 3. A benchmark's implementation appearing twice (runs concatenated) is
--    kept once, its best run by summary.lua's rule: the highest
--    ops_per_sec, else the lowest rss_per_conn_bytes, else the lowest
--    median_ms.
-- 4. Roles: `limit` is the physical limit (so are its older names, as in
--    summary.lua: `c-epoll`, `c-openssl`, `lua5.4-bare`, `*-floor`);
--    `limit-*` is a further limit, a reference shown without ratios;
--    curio-lua* and curio-program are the project; every other
--    implementation is a peer. A limit whose block says `compare=FIGURE`
--    (sleepers: bare coroutines that do not sleep) is compared by that
--    figure only.
local M = {}

-- family, the script that measures it (run.sh's own list first)
M.FAMILIES = {
  { name = "run", script = "bench/run.sh", title = "tasks, queues, sync, threads (bench/run.sh)" },
  { name = "echo", script = "bench/echo.sh", title = "TCP echo round trips (bench/echo.sh)" },
  { name = "idle", script = "bench/echo_idle.sh", title = "memory per idle connection (bench/echo_idle.sh)" },
  { name = "http", script = "bench/http.sh", title = "HTTP keep-alive requests (bench/http.sh)" },
  { name = "process", script = "bench/process.sh", title = "processes (bench/process.sh)" },
  { name = "tls", script = "bench/tls.sh", title = "TLS echo, handshakes, bulk (bench/tls.sh)" },
  { name = "startup", script = "bench/startup.sh", title = "start-up (bench/startup.sh)" },
  { name = "channel", script = "bench/channel.sh", title = "Channel messages (bench/channel.sh)" },
}

function M.family(name)
  for i, f in ipairs(M.FAMILIES) do
    if f.name == name then return f, i end
  end
end

M.CSV_COLUMNS = { "family", "benchmark", "implementation", "figure", "value", "unit", "run_date", "commit" }

-- Reads name=value blocks from a string: a list of blocks, each
-- { keys = {names in order}, fields = {name = value} }. A blank line ends a
-- block; so does a `bench=` or `family=` line after another line.
function M.parse_blocks(text)
  local blocks, cur = {}, { keys = {}, fields = {} }
  local function close()
    if #cur.keys > 0 then blocks[#blocks + 1] = cur end
    cur = { keys = {}, fields = {} }
  end
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then
      if (k == "bench" or k == "family") and #cur.keys > 0 then close() end
      if cur.fields[k] == nil then cur.keys[#cur.keys + 1] = k end
      cur.fields[k] = v
    elseif line:match("^%s*$") then
      close()
    end
  end
  close()
  return blocks
end

-- The raw file's sections (rule 1): a list of { header = block, text =
-- the section as written, blocks = its benchmark blocks }.
function M.sections(text)
  local list, blank = {}, true
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if blank and line:match("^family=") then list[#list + 1] = { lines = {} } end
    if #list > 0 then table.insert(list[#list].lines, line) end
    blank = line:match("^%s*$") ~= nil
  end
  for _, s in ipairs(list) do
    s.text = table.concat(s.lines, "\n"):gsub("%s+$", "") .. "\n"
    s.lines = nil
    local blocks = M.parse_blocks(s.text)
    s.header, s.blocks = blocks[1], {}
    for j = 2, #blocks do
      if blocks[j].fields.bench then s.blocks[#s.blocks + 1] = blocks[j] end
    end
  end
  return list
end

-- units of the figures the scripts print; others by their suffix
local UNITS = {
  ops_per_sec = "ops/s", mib_per_sec = "MiB/s", n = "count", conns = "count", round_trips = "count",
  requests = "count", errors = "count", runs = "count", tries = "count", chunks = "count",
  instructions = "instructions", msg_bytes = "bytes", bytes = "bytes", encoded_bytes = "bytes",
  mib = "MiB", client_cpu = "CPU s/s", server_cpu = "CPU s/s", other_cpu = "CPU s/s",
  server_us_per_mib = "us/MiB", server_cpu_us_per_req = "us", failed_runs = "count",
}
local SUFFIXES = {
  { "_seconds$", "s" }, { "^seconds$", "s" }, { "_us$", "us" }, { "_us_per_op$", "us" }, { "_ms$", "ms" },
  { "_kb$", "KiB" }, { "_bytes$", "bytes" }, { "_per_sec$", "/s" }, { "_ratio$", "ratio" },
  { "^ratio_", "ratio" }, { "^vs_", "ratio" },
}

function M.unit(figure)
  if UNITS[figure] then return UNITS[figure] end
  for _, s in ipairs(SUFFIXES) do
    if figure:match(s[1]) then return s[2] end
  end
  return ""
end

-- The figure a benchmark is compared by: name, and whether higher is better.
function M.primary(has)
  if has.ops_per_sec then return "ops_per_sec", true end
  if has.rss_per_conn_bytes then return "rss_per_conn_bytes", false end
  if has.median_ms then return "median_ms", false end
  if has.seconds then return "seconds", false end
end

-- the limit under its older names (summary.lua's list)
local OLD_LIMITS = { ["lua5.4-bare"] = true, ["c-epoll"] = true, ["c-openssl"] = true }

function M.role(impl) -- rule 4
  if impl == "limit" or OLD_LIMITS[impl] or impl:match("%-floor$") then return "limit" end
  if impl:match("^limit%-") or impl == "lua5.4" then return "reference" end
  if impl:match("^curio%-lua") or impl == "curio-program" then return "project" end
  return "peer"
end

-- is block b a better run than block a (rule 3)?
function M.better(b, a)
  local function num(blk, k) return tonumber(blk.fields[k]) end
  if num(a, "ops_per_sec") or num(b, "ops_per_sec") then
    return (num(b, "ops_per_sec") or -1) > (num(a, "ops_per_sec") or -1)
  end
  for _, k in ipairs({ "rss_per_conn_bytes", "median_ms" }) do
    if num(a, k) or num(b, k) then return (num(b, k) or math.huge) < (num(a, k) or math.huge) end
  end
  return false
end

-- CSV (RFC 4180): a field with a comma, quote or line break is quoted.
local function csv_field(v)
  v = tostring(v)
  if v:find('[,"\r\n]') then return '"' .. v:gsub('"', '""') .. '"' end
  return v
end

function M.csv_row(fields)
  local out = {}
  for i, v in ipairs(fields) do out[i] = csv_field(v) end
  return table.concat(out, ",")
end

-- Parses CSV text into a list of rows (lists of strings); raises on a
-- malformed field (an unclosed quote, a quote inside an unquoted field).
function M.csv_parse(text)
  local rows, row, i, n = {}, {}, 1, #text
  local line = 1
  while i <= n do
    local c = text:sub(i, i)
    if c == '"' then
      local buf = {}
      i = i + 1
      while true do
        local q = text:find('"', i, true)
        if not q then error(("CSV line %d: unclosed quote"):format(line), 0) end
        buf[#buf + 1] = text:sub(i, q - 1)
        if text:sub(q + 1, q + 1) == '"' then
          buf[#buf + 1] = '"'
          i = q + 2
        else
          i = q + 1
          break
        end
      end
      local field = table.concat(buf)
      for _ in field:gmatch("\n") do line = line + 1 end
      row[#row + 1] = field
    else
      local e = text:find("[,\r\n]", i) or n + 1
      local field = text:sub(i, e - 1)
      if field:find('"', 1, true) then
        error(("CSV line %d: a quote inside an unquoted field"):format(line), 0)
      end
      row[#row + 1] = field
      i = e
    end
    c = text:sub(i, i)
    if c == "," then
      i = i + 1
      if i > n then row[#row + 1] = "" end
    elseif c == "\r" or c == "\n" or c == "" then
      rows[#rows + 1] = row
      row = {}
      if c == "\r" and text:sub(i + 1, i + 1) == "\n" then i = i + 1 end
      i = i + 1
      line = line + 1
    else
      error(("CSV line %d: text after a quoted field"):format(line), 0)
    end
  end
  return rows
end

-- The CSV's rows as records keyed by CSV_COLUMNS; raises when the header or
-- a row's width is wrong, or a numeric figure's value is not a number.
function M.csv_records(text)
  local rows = M.csv_parse(text)
  local header = rows[1]
  if not header or table.concat(header, ",") ~= table.concat(M.CSV_COLUMNS, ",") then
    error("CSV header is not " .. table.concat(M.CSV_COLUMNS, ","), 0)
  end
  local recs = {}
  for r = 2, #rows do
    local row = rows[r]
    if #row ~= #header then
      error(("CSV row %d: %d fields, %d expected"):format(r, #row, #header), 0)
    end
    local rec = {}
    for j, name in ipairs(header) do rec[name] = row[j] end
    local textual = rec.figure == "skipped" or rec.figure == "error" or rec.unit == "text"
    if not textual and not tonumber(rec.value) then
      error(("CSV row %d: %s is not a number"):format(r, rec.value), 0)
    end
    recs[#recs + 1] = rec
  end
  return recs
end

-- The CSV as families -> benchmarks -> implementations -> figures, in the
-- order first seen; skipped and error rows under figure `skipped`/`error`.
function M.load(text)
  local fams, by_name = {}, {}
  for _, r in ipairs(M.csv_records(text)) do
    local fam = by_name[r.family]
    if not fam then
      fam = { name = r.family, benches = {}, by_bench = {}, run_date = r.run_date, commit = r.commit }
      by_name[r.family] = fam
      fams[#fams + 1] = fam
    end
    local bench = fam.by_bench[r.benchmark]
    if not bench then
      bench = { name = r.benchmark, impls = {}, by_impl = {}, has = {} }
      fam.by_bench[r.benchmark] = bench
      fam.benches[#fam.benches + 1] = bench
    end
    local impl = bench.by_impl[r.implementation]
    if not impl then
      impl = { name = r.implementation, role = M.role(r.implementation), fig = {}, unit = {} }
      bench.by_impl[r.implementation] = impl
      bench.impls[#bench.impls + 1] = impl
    end
    impl.fig[r.figure] = tonumber(r.value) or r.value
    impl.unit[r.figure] = r.unit
    bench.has[r.figure] = true
  end
  return fams
end

-- A benchmark's comparison by `fig` (default its primary figure): the
-- project's implementations, the limit, the best peer; a ratio above 1 is
-- the project better (higher ops/s, or less memory or time). An
-- implementation whose block says `compare=` another figure has none by
-- this one (rule 4), nor has a floor a speed (an older output's).
function M.compare(bench, fig)
  local higher
  if fig then higher = fig:match("_per_sec$") ~= nil else fig, higher = M.primary(bench.has) end
  if not fig then return nil end
  local function val(i)
    if type(i.fig.compare) == "string" and i.fig.compare ~= fig then return nil end
    if fig == "ops_per_sec" and i.name:match("%-floor$") then return nil end
    local v = i.fig[fig]
    -- (no time or memory is 0: a 0 is a clock too coarse for the window)
    if type(v) ~= "number" or (not higher and v <= 0) then return nil end
    return v
  end
  local c = { figure = fig, higher = higher, project = {}, limit = nil, best = nil }
  for _, i in ipairs(bench.impls) do
    local v = val(i)
    if v then
      if i.role == "project" then c.project[#c.project + 1] = i
      elseif i.role == "limit" then c.limit = c.limit or i
      elseif i.role == "peer" then
        local b = c.best and val(c.best)
        if not b or (higher and v > b) or (not higher and v < b) then c.best = i end
      end
    end
  end
  function c.ratio(p, other)
    local a, b = val(p), other and val(other)
    if not (a and b) or a == 0 or b == 0 then return nil end
    return higher and a / b or b / a
  end
  c.val = val
  return c
end

-- CPU time per operation (or instructions, start-up's callgrind count), where
-- a script reports it: on a loaded machine
-- it holds better than the rates (a process waiting for a CPU adds to the
-- seconds, not to its CPU time)
local CPU_FIGURES = { "server_us_per_op", "server_us_per_mib", "server_cpu_us_per_req", "cpu_us_per_op",
  "instructions" }

-- The figures a benchmark is compared by: its primary one, then each
-- other one a block names in `compare=`, then CPU time per operation.
function M.figures(bench)
  local list, seen = {}, {}
  local fig = M.primary(bench.has)
  if fig then list[1], seen[fig] = fig, true end
  for _, i in ipairs(bench.impls) do
    local f = i.fig.compare
    if type(f) == "string" and not seen[f] and bench.has[f] then
      list[#list + 1], seen[f] = f, true
    end
  end
  for _, f in ipairs(CPU_FIGURES) do
    if bench.has[f] and not seen[f] then list[#list + 1], seen[f] = f, true end
  end
  return list
end

-- Formats a number for tables and labels: 3 significant digits, with k/M.
function M.short(v)
  local a = math.abs(v)
  if a >= 1e6 then return (("%.3g"):format(v / 1e6)) .. "M" end
  if a >= 1e4 then return (("%.3g"):format(v / 1e3)) .. "k" end
  if a >= 100 or a == math.floor(a) then return ("%.0f"):format(v) end
  return ("%.3g"):format(v)
end

return M
