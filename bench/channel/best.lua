-- Reads the blocks of several runs of bench/channel.sh (name=value lines,
-- blocks separated by blank lines) on stdin and prints, per benchmark and
-- implementation, the block of its best run (the highest ops_per_sec: on
-- the shared machine a slow run is other processes' doing, never a fast
-- one), with runs (how many blocks there were) and ops_per_sec_runs (every
-- run's figure, in run order; "error" for a failed one) added, and, when
-- some runs failed, failed_runs and failed_error (the first failure's). A
-- benchmark and implementation with no successful run gets its first block
-- (skipped=... or error=...) as it was.
--   lua5.4 bench/channel/best.lua < raw.txt | lua5.4 bench/summary.lua

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

for i, key in ipairs(order) do
  local runs, best, figures, failed = groups[key], nil, {}, nil
  for _, b in ipairs(runs) do
    local ops = tonumber(b.fields.ops_per_sec)
    if ops and not b.fields.error and not b.fields.skipped then
      figures[#figures + 1] = b.fields.ops_per_sec
      if not best or ops > tonumber(best.fields.ops_per_sec) then best = b end
    elseif b.fields.error then
      failed = failed or { count = 0, error = b.fields.error }
      failed.count = failed.count + 1
      figures[#figures + 1] = "error"
    end
  end
  if i > 1 then io.write("\n") end
  if not best then
    io.write(table.concat(runs[1].lines, "\n"), "\n")
  else
    io.write(table.concat(best.lines, "\n"), "\n")
    io.write(("runs=%d\nops_per_sec_runs=%s\n"):format(#runs, table.concat(figures, ",")))
    if failed then io.write(("failed_runs=%d\nfailed_error=%s\n"):format(failed.count, failed.error)) end
  end
end
