-- Reads bench/run.sh output on stdin and prints one markdown table per
-- benchmark: impl, seconds, ops_per_sec, ratio to curio-lua's ops_per_sec
-- (above 1 = faster than curio-lua), and peak_rss_kb where reported.
-- The limit (impl `limit`: what the benchmark's work costs at the least on
-- this machine, bench/limits/; older outputs' `*-floor`, `c-epoll`,
-- `c-openssl` and `lua5.4-bare` count as the limit too) gets no `vs limit`
-- of its own; every other row gets it, its ops_per_sec over the
-- limit's (1 = at the limit), and curio-lua's rows (impl curio-lua and
-- curio-lua-*) `vs best peer`, their ops_per_sec over the fastest peer's,
-- named (above 1 = ahead of every peer). A limit block with
-- `compare=peak_rss_kb` (sleepers: bare coroutines that do not sleep) is a
-- memory limit only: no speed ratio to it. Where the limit reported
-- peak_rss_kb, every row also gets its peak_rss_kb over the limit's (`rss
-- vs floor`). Further rows named `limit-*` are other limits, shown without
-- ratios.
-- Latency, throughput and CPU columns (p50_us, p99_us, mib_per_sec,
-- client_cpu, server_cpu, other_cpu, server_us_per_op, server_us_per_mib,
-- server_cpu_us_per_req:
-- bench/echo.sh, bench/http.sh, bench/tls.sh, bench/process.sh) are added
-- where reported. A
-- benchmark with no ops_per_sec at all but rss_per_conn_bytes
-- (bench/echo_idle.sh) gets rss_per_conn_bytes, its ratio to curio-lua's
-- (above 1 = more memory than curio-lua), to the limit's and to the peer's
-- with the fewest bytes, rss_kb, rss_base_kb and setup_seconds instead.
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

-- the limit: impl `limit`, or an older output's name for it
local limit_names = { limit = true, ["c-epoll"] = true, ["c-openssl"] = true, ["lua5.4-bare"] = true }
local function is_limit(r)
  local impl = r.impl or ""
  return limit_names[impl] or impl:match("%-floor$") ~= nil
end
-- another limit shown beside it (impl `limit-*`), or the limit itself
local function is_any_limit(r) return is_limit(r) or (r.impl or ""):match("^limit%-") ~= nil end
local function is_ours(r)
  local impl = r.impl or ""
  return impl == "curio-lua" or impl:match("^curio%-lua%-") ~= nil
end
local function is_peer(r) return not is_ours(r) and not is_any_limit(r) end

local function ratio(a, b) return (a and b and b > 0) and string.format("%.2fx", a / b) or "-" end

-- r's rate for the ratios: n / seconds where ops_per_sec is that rounded
-- (codec's 50 round trips a second: rounding would move a ratio by 1%),
-- else ops_per_sec
local function rate(r)
  local ops, n, s = tonumber(r.ops_per_sec), tonumber(r.n), tonumber(r.seconds)
  if ops and n and s and s > 0 and math.abs(n / s - ops) <= 0.5 + ops * 1e-6 then return n / s end
  return ops
end

-- the limit's row and the best peer's row by `better(a, b)` of `key`
local function limit_and_best(recs, key, better)
  local lim, best
  for _, r in ipairs(recs) do
    local v = tonumber(r[key])
    if v and is_limit(r) and not lim then lim = r end
    if v and is_peer(r) and (not best or better(v, tonumber(best[key]))) then best = r end
  end
  return lim, best
end

-- optional columns, each shown where some run of the benchmark reports it
local latency_cols = { "p50_us", "p99_us", "mib_per_sec", "cpu_us_per_op", "client_cpu", "server_cpu",
                       "other_cpu", "server_us_per_op", "server_us_per_mib", "server_cpu_us_per_req" }

local function any(recs, key)
  for _, r in ipairs(recs) do
    if r[key] then return true end
  end
  return false
end

-- a memory table (bench/echo_idle.sh): no ops_per_sec anywhere; a column
-- per further limit (limit-coroutine: a bare coroutine per connection)
local function memory_table(recs)
  local base
  local others = {}
  for _, r in ipairs(recs) do
    if r.impl == "curio-lua" then base = tonumber(r.rss_per_conn_bytes) end
    if not is_limit(r) and is_any_limit(r) and tonumber(r.rss_per_conn_bytes) then others[#others + 1] = r end
  end
  local lim, best = limit_and_best(recs, "rss_per_conn_bytes", function(a, b) return a < b end)
  local lim_b = lim and tonumber(lim.rss_per_conn_bytes)
  local best_b = best and tonumber(best.rss_per_conn_bytes)
  io.write("| impl | rss_per_conn_bytes | vs curio-lua |", lim and " vs limit |" or "")
  for _, o in ipairs(others) do io.write(" vs ", o.impl, " |") end
  io.write(best and " vs best peer |" or "", " rss_kb | rss_base_kb | setup_seconds |\n")
  io.write("|---|---:|---:|", lim and "---:|" or "", string.rep("---:|", #others), best and "---:|" or "",
    "---:|---:|---:|\n")
  for _, r in ipairs(recs) do
    local b = tonumber(r.rss_per_conn_bytes)
    local first = (r.skipped and "skipped: " .. r.skipped) or (r.error and "error: " .. r.error)
      or r.rss_per_conn_bytes or "-"
    local any_lim = is_any_limit(r)
    io.write("| ", r.impl or "?", " | ", first, " | ", ratio(b, base), " |")
    if lim then io.write(" ", any_lim and "-" or ratio(b, lim_b), " |") end
    for _, o in ipairs(others) do
      io.write(" ", any_lim and "-" or ratio(b, tonumber(o.rss_per_conn_bytes)), " |")
    end
    if best then
      io.write(" ", is_ours(r) and b and (ratio(b, best_b) .. " (" .. best.impl .. ")") or "-", " |")
    end
    io.write(" ", r.rss_kb or "-", " | ", r.rss_base_kb or "-", " | ", r.setup_seconds or "-", " |\n")
  end
end

for i, name in ipairs(order) do
  local recs = by_bench[name]
  local base, rss, floor_rss, ns = nil, false, nil, {}
  for _, r in ipairs(recs) do
    if r.impl == "curio-lua" then base = rate(r) end
    if r.peak_rss_kb then rss = true end
    if is_limit(r) and tonumber(r.peak_rss_kb) then floor_rss = tonumber(r.peak_rss_kb) end
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
    local lim, best = limit_and_best(recs, "ops_per_sec", function(a, b) return a > b end)
    if lim and lim.compare and lim.compare ~= "ops_per_sec" then lim = nil end
    local lim_ops = lim and rate(lim)
    local best_ops = best and rate(best)
    io.write("| impl | seconds | ops_per_sec | vs curio-lua |", lim and " vs limit |" or "",
      best and " vs best peer |" or "")
    for _, k in ipairs(lat) do io.write(" ", k, " |") end
    io.write(rss and " peak_rss_kb |" or "", floor_rss and " rss vs floor |" or "", "\n")
    io.write("|---|---:|---:|---:|", lim and "---:|" or "", best and "---:|" or "",
      string.rep("---:|", #lat), rss and "---:|" or "", floor_rss and "---:|" or "", "\n")
    for _, r in ipairs(recs) do
      local ops = rate(r)
      local any_lim = is_any_limit(r)
      local kb = tonumber(r.peak_rss_kb)
      local memory_only = (r.compare and r.compare ~= "ops_per_sec") or (r.impl or ""):match("%-floor$")
      io.write("| ", r.impl or "?", " | ", r.seconds or "-", " | ", cell(r), " | ",
        memory_only and "-" or ratio(ops, base), " |")
      if lim then io.write(" ", any_lim and "-" or ratio(ops, lim_ops), " |") end
      if best then
        io.write(" ", is_ours(r) and ops and (ratio(ops, best_ops) .. " (" .. best.impl .. ")") or "-", " |")
      end
      for _, k in ipairs(lat) do io.write(" ", r[k] or "-", " |") end
      io.write(rss and (" " .. (r.peak_rss_kb or "-") .. " |") or "",
        floor_rss and (" " .. (kb and string.format("%.2fx", kb / floor_rss) or "-") .. " |") or "",
        "\n")
    end
  end
end
