-- Draws one PNG chart per benchmark family from the report's CSV, with
-- gnuplot (Debian's gnuplot-nox): the project, the limit, the references
-- and every peer side by side, each in the same colour in every chart.
--
--   lua5.4 bench/chart.lua bench/results/latest.csv bench/results [family...]
--
-- writes OUTDIR/<family>.png. Each benchmark is drawn by its primary figure
-- (reportlib.primary: ops_per_sec, else rss_per_conn_bytes, else
-- median_ms). A family of several benchmarks is a clustered bar chart, one
-- cluster per benchmark, each bar the implementation's figure relative to
-- curio-lua's in that benchmark (above 1: better than curio-lua; for a
-- figure where less is better, curio-lua's over the implementation's), so
-- that benchmarks of different sizes share one axis. A family of one
-- benchmark (idle connections, HTTP, start-up) is drawn in its own unit,
-- one labelled bar per implementation. The y axis is logarithmic when the
-- bars span more than 30 times.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lib = require "reportlib"

local csv, outdir = arg[1], arg[2]
if not (csv and outdir) then
  io.stderr:write("usage: lua5.4 bench/chart.lua CSV OUTDIR [family...]\n")
  os.exit(2)
end
local only = {}
for i = 3, #arg do only[arg[i]] = true end

-- fixed colours: the project blues, the limit black, references grey
local COLOURS = {
  ["curio-lua"] = "#0b4f9c", ["curio-lua-stream"] = "#4a90d9", ["curio-lua-require"] = "#0b4f9c",
  ["curio-program"] = "#4a90d9", ["curio-lua-longblock"] = "#7fb3e6",
  limit = "#111111",
  ["lua5.4"] = "#9a9a9a",
  ["curio-py"] = "#e67e22", asyncio = "#2ca02c", uvloop = "#98df8a", trio = "#9467bd", cqueues = "#d62728",
  luv = "#8c564b", node = "#e377c2", cjson = "#bcbd22",
}
local SPARE = { "#17becf", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#ff9896", "#c5b0d5" }
local spare_used = 0
local function colour(impl)
  -- (the limit under an older name is black too, a further limit grey)
  if not COLOURS[impl] and lib.role(impl) == "limit" then COLOURS[impl] = COLOURS.limit end
  if not COLOURS[impl] and lib.role(impl) == "reference" then COLOURS[impl] = "#9a9a9a" end
  if not COLOURS[impl] then
    spare_used = spare_used % #SPARE + 1
    COLOURS[impl] = SPARE[spare_used]
  end
  return COLOURS[impl]
end

local ROLE_RANK = { project = 1, limit = 2, reference = 3, peer = 4 }

-- the implementations drawn in a family, project first, then the limit,
-- the references and the peers, each group in the order first seen
local function columns(fam)
  local list, seen = {}, {}
  for _, bench in ipairs(fam.benches) do
    local c = lib.compare(bench)
    -- (of several benchmarks, only those with curio-lua's figure are drawn)
    local drawn = c and (#fam.benches == 1 or c.project[1])
    for _, i in ipairs(bench.impls) do
      if drawn and c.val(i) and not seen[i.name] then
        seen[i.name] = #list + 1
        list[#list + 1] = { name = i.name, role = i.role, first = #list + 1 }
      end
    end
  end
  table.sort(list, function(a, b)
    if a.role ~= b.role then return ROLE_RANK[a.role] < ROLE_RANK[b.role] end
    return a.first < b.first
  end)
  return list
end

-- an implementation's name in a legend or under its bar
local function label(col)
  if col.name == "limit" then return "the limit" end
  return col.name .. (col.role == "limit" and " (the limit)" or "")
end

local function q(s) -- a gnuplot string in double quotes
  local body = tostring(s):gsub('[\\"]', "\\%0"):gsub("\n", "\\n")
  return '"' .. body .. '"'
end

local function axis(values, lines)
  local lo, hi = math.huge, 0
  for _, v in ipairs(values) do
    if v > 0 then lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  if hi == 0 then return end
  if hi / lo > 30 then
    lines[#lines + 1] = "set logscale y"
    lines[#lines + 1] = ("set yrange [%g:%g]"):format(10 ^ math.floor(math.log(lo * 0.9, 10)),
      10 ^ math.ceil(math.log(hi * 1.5, 10)))
  else
    lines[#lines + 1] = ("set yrange [0:%g]"):format(hi * 1.18)
  end
end

local function header(fam, title, w, h)
  return {
    ("set terminal pngcairo size %d,%d font 'DejaVu Sans,13' noenhanced"):format(w, h),
    "set title " .. q(title .. "\n" .. fam.run_date .. ", commit " .. fam.commit),
    "set datafile separator '\\t'",
    "set datafile missing '?'",
    "set style fill solid 0.9 border rgb '#333333'",
    "set grid ytics lc rgb '#cccccc'",
    "set border 3",
    "set tics nomirror",
  }
end

-- a family of several benchmarks: clustered bars relative to the project
local function clustered(fam, cols, dir, info)
  local data = {}
  local values, base_name = {}, nil
  for _, bench in ipairs(fam.benches) do
    local c = lib.compare(bench)
    local base = c and c.project[1]
    if base then
      base_name = base_name or base.name
      local row = { bench.name }
      for _, col in ipairs(cols) do
        local i = bench.by_impl[col.name]
        -- i over curio-lua (higher is better), or curio-lua over i
        local v = i and c.ratio(i, base)
        row[#row + 1] = v and ("%.6g"):format(v) or "?"
        if v then values[#values + 1] = v end
      end
      data[#data + 1] = table.concat(row, "\t")
    end
  end
  if #data == 0 then return nil end
  local nb = #data
  local w = math.max(1000, math.min(2000, 200 + nb * (#cols + 1) * 12))
  local lines = header(fam, info.title, w, nb > 5 and 720 or 600)
  lines[#lines + 1] = "set style data histograms"
  lines[#lines + 1] = "set style histogram clustered gap 1"
  lines[#lines + 1] = "set boxwidth 1"
  lines[#lines + 1] = "set key outside right top vertical"
  lines[#lines + 1] = ("set xrange [-0.6:%g]"):format(nb - 0.4)
  lines[#lines + 1] = "set ylabel " .. q("relative to " .. base_name .. " (above 1: better)")
  if nb > 3 then -- (rotated labels reach left of the first cluster)
    lines[#lines + 1] = "set xtics rotate by 30 right"
    lines[#lines + 1] = "set lmargin 18"
  end
  axis(values, lines)
  lines[#lines + 1] = "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#444444'"
  local plots = {}
  for j, col in ipairs(cols) do
    plots[#plots + 1] = ("%s using %d%s title %s lc rgb %s"):format(j == 1 and q(dir .. "/data.tsv") or "''",
      j + 1, j == 1 and ":xtic(1)" or "", q(label(col)),
      q(colour(col.name)))
  end
  lines[#lines + 1] = "plot " .. table.concat(plots, ", \\\n  ")
  return data, lines
end

-- a family of one benchmark: one labelled bar per implementation, in its unit
local function single(fam, cols, dir, info)
  local bench = fam.benches[1]
  local c = lib.compare(bench)
  local data, values, unit = {}, {}, nil
  for _, col in ipairs(cols) do
    local i = bench.by_impl[col.name]
    local v = c.val(i)
    unit = unit or i.unit[c.figure]
    values[#values + 1] = v
    data[#data + 1] = ("%s\t%.6g\t%d\t%s"):format(label(col), v,
      tonumber(colour(col.name):sub(2), 16), lib.short(v))
  end
  local lines = header(fam, info.title, math.max(900, 140 + #cols * 90), 560)
  lines[#lines + 1] = "set boxwidth 0.7"
  lines[#lines + 1] = "set key off"
  lines[#lines + 1] = "set xrange [-0.6:" .. (#cols - 0.4) .. "]"
  lines[#lines + 1] = "set ylabel " .. q(c.figure .. " (" .. (unit or "") .. "), "
    .. (c.higher and "higher" or "lower") .. " is better")
  if #cols > 6 then lines[#lines + 1] = "set xtics rotate by 30 right" end
  axis(values, lines)
  local file = q(dir .. "/data.tsv")
  lines[#lines + 1] = ("plot %s using 0:2:3:xtic(1) with boxes lc rgb variable, \\\n"
    .. "  %s using 0:2:4 with labels offset 0,0.8"):format(file, file)
  return data, lines
end

local function write(path, lines)
  local f = assert(io.open(path, "wb"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
end

local f = assert(io.open(csv, "rb"))
local fams = lib.load(f:read("a"))
f:close()
local dir = assert(io.popen("mktemp -d")):read("l")
local failed = false
for _, fam in ipairs(fams) do
  if next(only) == nil or only[fam.name] then
    local info = lib.family(fam.name) or { title = fam.name }
    local cols = columns(fam)
    local data, lines
    if #cols > 0 then
      if #fam.benches == 1 then data, lines = single(fam, cols, dir, info)
      else data, lines = clustered(fam, cols, dir, info) end
    end
    if data then
      local png = outdir .. "/" .. fam.name .. ".png"
      table.insert(lines, 2, "set output " .. q(png .. ".tmp"))
      write(dir .. "/data.tsv", data)
      write(dir .. "/chart.gp", lines)
      if os.execute("gnuplot " .. dir .. "/chart.gp") and os.rename(png .. ".tmp", png) then
        io.stderr:write("bench: chart ", png, "\n")
      else
        io.stderr:write("bench: gnuplot failed on ", fam.name, "'s chart (", dir, "/chart.gp kept)\n")
        failed = true
      end
    else
      io.stderr:write("bench: ", fam.name, ": no figure to chart\n")
    end
  end
end
if not failed then os.execute("rm -rf " .. dir) end
os.exit(failed and 1 or 0)
