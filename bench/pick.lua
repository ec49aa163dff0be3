-- Reads the blocks of several runs of a benchmark script (name=value lines,
-- blocks separated by blank lines) on stdin and prints, per benchmark and
-- implementation, the block of one run chosen by ops_per_sec:
--   best    the highest (bench/channel.sh: on the shared machine a slow run
--           is other processes' doing, never a fast one)
--   median  the median (of an even number, the lower of the two middle
--           ones; bench/tls.sh)
-- with lines added: runs (how many blocks there were), ops_per_sec_runs
-- (every run's figure, in run order; "error" for a failed one) and, when
-- some runs failed, failed_runs and failed_error (the first failure's). A
-- benchmark and implementation with no successful run gets its first block
-- (skipped=... or error=...) as it was.
--   lua5.4 bench/pick.lua best|median < raw.txt | lua5.4 bench/summary.lua

local rule = arg[1]
if rule ~= "best" and rule ~= "median" then
  io.stderr:write("usage: lua5.4 bench/pick.lua best|median < raw.txt\n")
  os.exit(2)
end

local order, groups = {}, {}

local function add(block)
  if not block.fields.bench then return end
  local key = block.fields.bench .. "\0" .. (block.fields.impl or "")
  if not groups[key] then
    groups[key] = {}
    order[#order + 1] = key
  end
  table.insert(groups[key], block)
end

local block = { lines = {}, fields = {} }
for line in io.lines() do
  local k, v = line:match("^([%w_]+)=(.*)$")
  if k == "bench" and block.fields.bench then -- no blank line before it
    add(block)
    block = { lines = {}, fields = {} }
  end
  if k then
    block.lines[#block.lines + 1] = line
    block.fields[k] = v
  elseif line:match("^%s*$") then
    add(block)
    block = { lines = {}, fields = {} }
  end
end
add(block)

local function ops(b) return tonumber(b.fields.ops_per_sec) end

local function succeeded(b)
  return b.fields.error == nil and b.fields.skipped == nil and ops(b) ~= nil
end

for i, key in ipairs(order) do
  local runs, ok, figures, failed = groups[key], {}, {}, nil
  for _, b in ipairs(runs) do
    if succeeded(b) then
      ok[#ok + 1] = b
      figures[#figures + 1] = b.fields.ops_per_sec
    elseif b.fields.error then
      failed = failed or { count = 0, error = b.fields.error }
      failed.count = failed.count + 1
      figures[#figures + 1] = "error"
    end
  end
  if i > 1 then io.write("\n") end
  if #ok == 0 then
    io.write(table.concat(runs[1].lines, "\n"), "\n")
  else
    table.sort(ok, function(a, b) return ops(a) < ops(b) end)
    local chosen = rule == "best" and ok[#ok] or ok[(#ok + 1) // 2]
    io.write(table.concat(chosen.lines, "\n"), "\n")
    io.write(("runs=%d\nops_per_sec_runs=%s\n"):format(#runs, table.concat(figures, ",")))
    if failed then io.write(("failed_runs=%d\nfailed_error=%s\n"):format(failed.count, failed.error)) end
  end
end
