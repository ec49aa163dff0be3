-- Reads bench/run.sh output on stdin and prints one markdown table per
-- benchmark: impl, seconds, ops_per_sec, ratio to curio-lua's ops_per_sec
-- (above 1 = faster than curio-lua), and peak_rss_kb where reported. A
-- plain-Lua floor (impl `*-floor`, e.g. lua5.4-floor under sleepers) does
-- not do the benchmark's work, so it gets no speed ratio; where one reported
-- peak_rss_kb, every row also gets its peak_rss_kb over the floor's.
-- Latency, throughput and CPU columns (p50_us, p99_us, mib_per_sec,
-- client_cpu, server_cpu, other_cpu, server_us_per_op, server_us_per_mib:
-- bench/echo.sh, bench/http.sh, bench/tls.sh, bench/process.sh) are added
-- where reported. A
-- benchmark with no ops_per_sec at all but rss_per_conn_bytes
-- (bench/echo_idle.sh) gets rss_per_conn_bytes, its ratio to curio-lua's
-- (above 1 = more memory than curio-lua), rss_kb, rss_base_kb and
-- setup_seconds instead.
-- Given several runs (outputs concatenated), it keeps each
-- implementation's best run, the same rule for every implementation: the
-- highest ops_per_sec, or else the lowest rss_per_conn_bytes.
--   (bench/run.sh; bench/run.sh) | lua5.4 bench/summary.lua

local order, by_bench = {}, {}

local function add(rec)
  local name = rec.bench
  if not name then return end
  if not by_bench[name] then
    by_bench[name] = {}
    order[#order + 1] = name
  end
  local recs = by_bench[name]
  for i, old in ipairs(recs) do
    if old.impl == rec.impl then -- keep the best of the runs
      if old.ops_per_sec or rec.ops_per_sec then
        if (tonumber(rec.ops_per_sec) or -1) > (tonumber(old.ops_per_sec) or -1) then recs[i] = rec end
      else
        local new_b, old_b = tonumber(rec.rss_per_conn_bytes), tonumber(old.rss_per_conn_bytes)
        if (new_b or math.huge) < (old_b or math.huge) then recs[i] = rec end
      end
      return
    end
  end
  table.insert(recs, rec)
end

local rec = {}
for line in io.lines() do
  local k, v = line:match("^([%w_]+)=(.*)$")
  if k == "bench" and rec.bench then -- a new block with no blank line before
    add(rec)                          -- it (two runs' outputs concatenated)
    rec = {}
  end
  if k then
    rec[k] = v
  elseif line:match("^%s*$") then
    add(rec)
    rec = {}
  end
end
add(rec)

local function cell(r)
  if r.skipped then return "skipped: " .. r.skipped end
  if r.error then return "error: " .. r.error end
  return r.ops_per_sec or "-"
end

local function is_floor(r) return (r.impl or ""):match("%-floor$") ~= nil end

-- optional columns, each shown where some run of the benchmark reports it
local latency_cols = { "p50_us", "p99_us", "mib_per_sec", "client_cpu", "server_cpu", "other_cpu",
                       "server_us_per_op", "server_us_per_mib" }

local function any(recs, key)
  for _, r in ipairs(recs) do
    if r[key] then return true end
  end
  return false
end

-- a memory table (bench/echo_idle.sh): no ops_per_sec anywhere
local function memory_table(recs)
  local base
  for _, r in ipairs(recs) do
    if r.impl == "curio-lua" then base = tonumber(r.rss_per_conn_bytes) end
  end
  io.write("| impl | rss_per_conn_bytes | vs curio-lua | rss_kb | rss_base_kb | setup_seconds |\n")
  io.write("|---|---:|---:|---:|---:|---:|\n")
  for _, r in ipairs(recs) do
    local b = tonumber(r.rss_per_conn_bytes)
    local first = (r.skipped and "skipped: " .. r.skipped) or (r.error and "error: " .. r.error)
      or r.rss_per_conn_bytes or "-"
    local ratio = (b and base and base > 0) and string.format("%.2fx", b / base) or "-"
    io.write("| ", r.impl or "?", " | ", first, " | ", ratio, " | ", r.rss_kb or "-", " | ",
      r.rss_base_kb or "-", " | ", r.setup_seconds or "-", " |\n")
  end
end

for i, name in ipairs(order) do
  local recs = by_bench[name]
  local base, rss, floor_rss, ns = nil, false, nil, {}
  for _, r in ipairs(recs) do
    if r.impl == "curio-lua" then base = tonumber(r.ops_per_sec) end
    if r.peak_rss_kb then rss = true end
    if is_floor(r) then floor_rss = tonumber(r.peak_rss_kb) end
    if r.n and not ns[r.n] then ns[#ns + 1], ns[r.n] = r.n, true end
  end
  if i > 1 then io.write("\n") end
  io.write("### ", name, #ns > 0 and (" (n=" .. table.concat(ns, ", ") .. ")") or "", "\n\n")
  if not any(recs, "ops_per_sec") and any(recs, "rss_per_conn_bytes") then
    memory_table(recs)
  else
    local lat = {}
    for _, k in ipairs(latency_cols) do
      if any(recs, k) then lat[#lat + 1] = k end
    end
    io.write("| impl | seconds | ops_per_sec | vs curio-lua |")
    for _, k in ipairs(lat) do io.write(" ", k, " |") end
    io.write(rss and " peak_rss_kb |" or "", floor_rss and " rss vs floor |" or "", "\n")
    io.write("|---|---:|---:|---:|", string.rep("---:|", #lat), rss and "---:|" or "",
      floor_rss and "---:|" or "", "\n")
    for _, r in ipairs(recs) do
      local ops = tonumber(r.ops_per_sec)
      local ratio = (ops and base and not is_floor(r)) and string.format("%.2fx", ops / base) or "-"
      local kb = tonumber(r.peak_rss_kb)
      io.write("| ", r.impl or "?", " | ", r.seconds or "-", " | ", cell(r), " | ", ratio, " |")
      for _, k in ipairs(lat) do io.write(" ", r[k] or "-", " |") end
      io.write(rss and (" " .. (r.peak_rss_kb or "-") .. " |") or "",
        floor_rss and (" " .. (kb and string.format("%.2fx", kb / floor_rss) or "-") .. " |") or "",
        "\n")
    end
  end
end
