-- The report's data steps, for bench/report.sh (`make bench`) and `make lint`:
--
--   lua5.4 bench/report.lua merge LATEST SECTION   LATEST with SECTION's family replaced
--   lua5.4 bench/report.lua csv LATEST             the CSV of LATEST, on stdout
--   lua5.4 bench/report.lua ratios CSV [family...] markdown ratio tables, on stdout
--   lua5.4 bench/report.lua check CSV README       the CSV parses, README's images exist
--
-- LATEST is bench/results/latest.txt, SECTION one family's output after its
-- header block (bench/reportlib.lua, rule 1). The rules of the CSV and of the
-- roles (project, limit, reference, peer) are reportlib's.
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local lib = require "reportlib"

local function slurp(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

local function die(msg)
  io.stderr:write("bench/report.lua: ", msg, "\n")
  os.exit(1)
end

local commands = {}

function commands.merge(latest, section)
  local new = lib.sections(assert(slurp(section)))
  if #new ~= 1 or not new[1].header.fields.family then die(section .. ": not one family's section") end
  local fam = new[1].header.fields.family
  local old = lib.sections(slurp(latest) or "")
  local keep = {}
  for _, s in ipairs(old) do
    if s.header.fields.family ~= fam then keep[#keep + 1] = s end
  end
  keep[#keep + 1] = new[1]
  local function rank(s)
    local _, i = lib.family(s.header.fields.family)
    return i or #lib.FAMILIES + 1
  end
  table.sort(keep, function(a, b) return rank(a) < rank(b) end)
  local out = {}
  for _, s in ipairs(keep) do out[#out + 1] = s.text end
  local f = assert(io.open(latest .. ".tmp", "wb"))
  f:write(table.concat(out, "\n"))
  f:close()
  assert(os.rename(latest .. ".tmp", latest))
end

-- Each benchmark's implementations once (rule 3), in the order first seen.
local function best_blocks(blocks)
  local order, by = {}, {}
  for _, b in ipairs(blocks) do
    local key = b.fields.bench .. "\0" .. (b.fields.impl or "")
    if not by[key] then
      order[#order + 1] = key
      by[key] = b
    elseif lib.better(b, by[key]) then
      by[key] = b
    end
  end
  local list = {}
  for i, key in ipairs(order) do list[i] = by[key] end
  return list
end

function commands.csv(latest)
  local text = assert(slurp(latest))
  local out = { lib.csv_row(lib.CSV_COLUMNS) }
  for _, s in ipairs(lib.sections(text)) do
    local h = s.header.fields
    for _, b in ipairs(best_blocks(s.blocks)) do
      local f = b.fields
      local function row(figure, value, unit)
        out[#out + 1] = lib.csv_row({ h.family, f.bench, f.impl or "all", figure, value,
          unit or lib.unit(figure),
          h.run_date or "", h.commit or "" })
      end
      if f.skipped then
        row("skipped", f.skipped)
      elseif f.error then
        row("error", f.error)
      else
        for _, k in ipairs(b.keys) do
          if k ~= "bench" and k ~= "impl" then row(k, f[k], not tonumber(f[k]) and "text" or nil) end
        end
      end
    end
  end
  io.write(table.concat(out, "\n"), "\n")
end

local function fmt_ratio(r) return r and ("%.2f"):format(r) or "-" end

-- one row per project implementation of a benchmark, by figure `fig`
local function ratio_rows(bench, fig)
  local c = lib.compare(bench, fig)
  for _, p in ipairs(c.project) do
    io.write(("| %s | %s | %s | %s %s | %s | %s | %s | %s |\n"):format(bench.name, p.name, c.figure,
      lib.short(c.val(p)), p.unit[c.figure], c.limit and lib.short(c.val(c.limit)) or "-",
      fmt_ratio(c.ratio(p, c.limit)), c.best and (c.best.name .. " " .. lib.short(c.val(c.best))) or "-",
      fmt_ratio(c.ratio(p, c.best))))
  end
end

function commands.ratios(csv, ...)
  local only = {}
  for _, f in ipairs({ ... }) do only[f] = true end
  local fams = lib.load(assert(slurp(csv)))
  local first = true
  for _, fam in ipairs(fams) do
    if next(only) == nil or only[fam.name] then
      if not first then io.write("\n") end
      first = false
      io.write(("%s (%s, %s)\n\n"):format(fam.name, fam.run_date, fam.commit))
      io.write("| bench | impl | figure | value | limit | vs limit | best peer | vs best peer |\n")
      io.write("|---|---|---|---:|---:|---:|---|---:|\n")
      for _, bench in ipairs(fam.benches) do
        for _, fig in ipairs(lib.figures(bench)) do ratio_rows(bench, fig) end
      end
    end
  end
end

function commands.check(csv, readme)
  local ok, err = pcall(function()
    local recs = lib.csv_records(assert(slurp(csv)))
    if #recs == 0 then error("no rows", 0) end
  end)
  if not ok then die(csv .. ": " .. err) end
  local text = assert(slurp(readme))
  local dir = readme:match("^(.*)/") or "."
  local missing, seen = {}, 0
  for path in text:gmatch("!%[[^%]]*%]%(([^)%s]+)%)") do
    seen = seen + 1
    local data = slurp(dir .. "/" .. path)
    if not data or data:sub(1, 8) ~= "\137PNG\r\n\26\n" then missing[#missing + 1] = path end
  end
  if #missing > 0 then
    die(readme .. " shows charts that are missing or not PNG: " .. table.concat(missing, " "))
  end
  print(("%s: %d rows parse; %s: %d charts present"):format(csv, #lib.csv_records(slurp(csv)), readme, seen))
end

local cmd = commands[arg[1] or ""]
if not cmd then
  die("usage: report.lua merge LATEST SECTION | csv LATEST | ratios CSV [family...] | check CSV README")
end
cmd(table.unpack(arg, 2))
