-- tools/layers.lua: the layering check of core/ (make lint), on the symbols
-- that `nm` finds in the objects.
--
--   lua5.4 tools/layers.lua build/obj/kernel.o build/obj/task.o ...
--
-- Rules (docs/development.md: Layout):
-- 1. Every object belongs to one concern of the table below; an object that
--    is in none (a new or renamed file) is an error until it is added.
-- 2. A concern uses only the concerns it lists in `uses`: the scheduler
--    names no feature built on it (a wait kind, a kernel hook, a context
--    slot, a Kernel{} option are how features reach it). Nothing uses the
--    registration module but a concern marked above_registration (the
--    embedding API, which opens the module for a C host).
-- 3. No circle of calls joins two concerns: the graph of "an object of A
--    references a symbol that an object of B defines" between concerns has
--    no cycle. Files of one concern may call each other (task.c and
--    trap.c do); the registration module, the context helpers and each
--    wing are concerns of their own, so each stands outside every circle.
-- Symbols defined outside core/ (Lua, libev, libc) are not looked at.

-- The concerns of core/, bottom first. A file renamed or added goes here,
-- in one place: its concern's `files` (the object's name without ".o").
-- `uses` lists what a concern may reference beside itself (rule 2); nil
-- means any concern, as long as no circle forms (rule 3).
local concerns = {
  { name = "context",      files = { "ctx" },    uses = { "errors" } },
  { name = "errors",       files = { "errors" }, uses = {} },
  -- the cache of big blocks in the state's allocator (sockets read into it)
  { name = "memory",       files = { "bigblock" }, uses = {} },
  { name = "scheduler",    uses = { "context", "errors" },
    files = { "kernel", "task", "taskext", "trap", "wait", "timer", "waitq", "shutdown", "inspect" } },
  -- the wings
  { name = "coroutines",   files = { "coro" } },
  { name = "queues",       files = { "queue", "priority" } },
  { name = "task groups",  files = { "group" } },
  { name = "codec",        files = { "codec", "codec_encode", "codec_decode", "codec_frame" } },
  { name = "inbox",        files = { "inbox" } },
  { name = "threads",      files = { "threads" } },
  { name = "universal",    files = { "universal", "universal_wait", "universal_methods" } },
  { name = "descriptors",  files = { "io", "fileio", "pipe" } },
  { name = "sockets",      files = { "socket", "sockio", "sockbuf", "sockout", "address" } },
  { name = "processes",    files = { "process", "spawn", "orphan", "worker" } },
  { name = "signals",      files = { "signal" } },
  { name = "tls",          files = { "tls", "tlssock", "tlsctx", "tlsinfo", "tlsauth" } },
  -- the prompt's input (libedit), linked only into the curio program
  { name = "prompt",       files = { "editline" }, uses = {} },
  -- the top: registers every file's functions; nothing may call it but
  -- the embedding API, which loads the whole module into a host's state
  { name = "registration", files = { "module" } },
  { name = "embedding",    files = { "host", "hostopts" }, above_registration = true },
}

local concern_of, by_name = {}, {}
for _, c in ipairs(concerns) do
  by_name[c.name] = c
  for _, f in ipairs(c.files) do concern_of[f] = c end
end

local errors = {}
local function fail(fmt, ...) errors[#errors + 1] = fmt:format(...) end

-- Reads an object's symbols: defined (global) and undefined.
local function symbols(path)
  local defined, used = {}, {}
  local nm = assert(io.popen("nm -g '" .. path:gsub("'", "'\\''") .. "' 2>&1"))
  for line in nm:lines() do
    local kind, name = line:match("^%x*%s+(%a)%s+(%S+)$")
    if kind == "U" then used[#used + 1] = name
    elseif kind and kind:match("[TDRBC]") then defined[#defined + 1] = name end
  end
  if not nm:close() then fail("%s: nm failed", path) end
  return defined, used
end

local objects, definer = {}, {}
for _, path in ipairs(arg) do
  local file = path:match("([^/]+)%.o$")
  if not file then
    fail("%s: not an object file", path)
  elseif not concern_of[file] then
    fail("%s: %s.o is in no concern: add it to the table at the top of tools/layers.lua", path, file)
  else
    local defined, used = symbols(path)
    objects[#objects + 1] = { file = file, concern = concern_of[file], used = used }
    for _, s in ipairs(defined) do definer[s] = file end
  end
end

-- The concern graph: edges[A][B] = an example "a.o -> symbol (b.o)".
local edges = {}
for _, o in ipairs(objects) do
  for _, s in ipairs(o.used) do
    local file = definer[s]
    local target = file and concern_of[file]
    if target and target ~= o.concern then
      local from = o.concern.name
      edges[from] = edges[from] or {}
      edges[from][target.name] = edges[from][target.name]
        or ("%s.o uses %s (%s.o)"):format(o.file, s, file)
    end
  end
end

-- Rule 2.
for _, c in ipairs(concerns) do
  if c.uses and edges[c.name] then
    local allowed = {}
    for _, u in ipairs(c.uses) do allowed[u] = true end
    local names = {}
    for target in pairs(edges[c.name]) do names[#names + 1] = target end
    table.sort(names)
    for _, target in ipairs(names) do
      if not allowed[target] then
        fail("the %s may not use the %s: %s", c.name, target, edges[c.name][target])
      end
    end
  end
end
for name, c in pairs(by_name) do
  if edges[name] and edges[name]["registration"] and not c.above_registration then
    fail("nothing may call the registration module: %s", edges[name]["registration"])
  end
end

-- Rule 3: a depth-first search for a cycle between concerns.
local state, stack = {}, {}
local function visit(name)
  state[name] = "open"
  stack[#stack + 1] = name
  local targets = {}
  for target in pairs(edges[name] or {}) do targets[#targets + 1] = target end
  table.sort(targets)
  for _, target in ipairs(targets) do
    if state[target] == "open" then
      local from = 1
      while stack[from] ~= target do from = from + 1 end
      local ring, why = {}, {}
      for i = from, #stack do
        local a, b = stack[i], stack[i + 1] or target
        ring[#ring + 1] = a
        why[#why + 1] = edges[a][b]
      end
      ring[#ring + 1] = target
      fail("a circle of calls joins concerns: %s (%s)", table.concat(ring, " -> "),
           table.concat(why, "; "))
    elseif state[target] == nil then
      visit(target)
    end
  end
  stack[#stack] = nil
  state[name] = "done"
end
for _, c in ipairs(concerns) do
  if state[c.name] == nil then visit(c.name) end
end

if #errors > 0 then
  for _, e in ipairs(errors) do io.stderr:write("layers: ", e, "\n") end
  os.exit(1)
end
print(("layers: %d objects in %d concerns, no concern out of its layer, no circle")
      :format(#objects, #concerns))
