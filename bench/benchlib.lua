-- Helpers shared by the Lua benchmark programs (not a benchmark itself).
-- A benchmark prints only `name=value` lines.
local M = {}

-- N from the first command-line argument, else `default`.
function M.n(default)
  local v = tonumber(arg and arg[1])
  return v and math.max(1, math.floor(v)) or default
end

-- Print name=value lines in the order given: M.emit("bench", "x", "n", 5).
function M.emit(...)
  local kv = table.pack(...)
  for i = 1, kv.n, 2 do
    local v = kv[i + 1]
    if math.type(v) == "float" then v = string.format("%.6f", v) end
    io.write(kv[i], "=", tostring(v), "\n")
  end
end

-- The standard block; `ops` defaults to n; extra name/value pairs follow.
function M.report(bench, impl, n, seconds, ops, ...)
  M.emit("bench", bench, "impl", impl, "n", n, "seconds", seconds,
    "ops_per_sec", string.format("%.0f", (ops or n) / seconds), ...)
end

function M.skip(bench, impl, why)
  M.emit("bench", bench, "impl", impl, "skipped", why)
  os.exit(0)
end

-- require(name), or report the benchmark as skipped when it is not there.
function M.require(name, bench, impl)
  local ok, mod = pcall(require, name)
  if ok then return mod end
  if tostring(mod):find("module '" .. name .. "' not found", 1, true) then
    M.skip(bench, impl, name .. " not found")
  end
  error(mod, 0)
end

-- Peak resident set size of this process in kB (VmHWM), or "unknown".
function M.peak_rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return "unknown" end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) or "unknown"
end

return M
