-- The manual checks itself: every ```lua block of README.md and docs/*.md
-- runs (bounded) and prints what its `-->` comments say, every relative
-- link points at a file (and heading) that exists, and the man page
-- docs/curio.1 lists exactly the options that `curio -h` lists.
--
-- Markers, on the line just before a block's opening fence:
--   <!-- norun -->       the block is not run (a fragment, a server that
--                        runs until Ctrl-C): use rarely
--   <!-- run: curio -->  the block is a script for the `curio` program
--                        (build/bin/curio), not for lua5.4
-- A block's expected output is the text after each `-->` in it, one line
-- of stdout per comment, in order, compared with runs of blanks made one
-- space; a block with no `-->` must only exit with status 0.
local util = require "support.util"

util.check_leaks(before_each, after_each) -- every spec: no descriptor, no task left

local SECONDS = 30 -- a block still running after this has hung

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The manual's pages: README.md and every docs/*.md.
local function pages()
  local list = { "README.md" }
  local p = assert(io.popen("ls docs/*.md 2>/dev/null"))
  for path in p:lines() do list[#list + 1] = path end
  p:close()
  return list
end

-- The ```lua blocks of one page: { line =, code =, marker =, expected = }.
local function blocks(path)
  local found, block, previous = {}, nil, ""
  local n = 0
  for line in (read(path) .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if block then
      if line:match("^%s*```%s*$") then
        block.code = table.concat(block.lines, "\n") .. "\n"
        found[#found + 1] = block
        block = nil
      else
        block.lines[#block.lines + 1] = line
        local out = line:match("%-%->%s?(.*)$")
        if out then block.expected[#block.expected + 1] = out end
      end
    elseif line:match("^%s*```lua%s*$") then
      block = { line = n, lines = {}, expected = {}, marker = previous:match("^%s*<!%-%-%s*(.-)%s*%-%->%s*$") }
    end
    if line:match("%S") then previous = line end
  end
  assert(block == nil, path .. ": a ```lua block is not closed")
  return found
end

local function normalise(text)
  return (text:gsub("%s+", " "):gsub("^ ", ""):gsub(" $", ""))
end

local function run_block(block)
  if block.marker == "run: curio" then
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(block.code)
    f:close()
    local status, stdout, stderr = util.sh(("%s timeout -s KILL %d %s %s </dev/null"):format(
      util.env, SECONDS, util.bin, path))
    os.remove(path)
    return status, stdout, stderr
  end
  return util.lua_code(block.code, SECONDS)
end

describe("the manual's examples", function()
  for _, page in ipairs(pages()) do
    for _, block in ipairs(blocks(page)) do
      if block.marker ~= "norun" then
        it(("%s:%d runs and prints what it says"):format(page, block.line), function()
          assert(block.marker == nil or block.marker == "run: curio",
                 ("%s:%d: unknown marker <!-- %s -->"):format(page, block.line, block.marker))
          local status, stdout, stderr = run_block(block)
          assert(status == 0, ("%s:%d exited %d\n%s%s"):format(page, block.line, status, stdout, stderr))
          if #block.expected > 0 then
            local printed, wanted = {}, {}
            for line in stdout:gmatch("[^\n]+") do printed[#printed + 1] = normalise(line) end
            for i, line in ipairs(block.expected) do wanted[i] = normalise(line) end
            assert.are.same(wanted, printed)
          end
        end)
      end
    end
  end

  it("marks few blocks as not runnable", function()
    local total, norun = 0, 0
    for _, page in ipairs(pages()) do
      for _, block in ipairs(blocks(page)) do
        total = total + 1
        if block.marker == "norun" then norun = norun + 1 end
      end
    end
    assert(total > 20, "the manual has " .. total .. " lua blocks")
    assert(norun * 10 <= total, ("%d of %d blocks are marked norun"):format(norun, total))
  end)
end)

-- GitHub's anchor for a heading: lower case, punctuation dropped, blanks
-- made dashes.
local function slug(heading)
  heading = heading:gsub("`", ""):lower()
  return (heading:gsub("[^%w%s_-]", ""):gsub("%s", "-"))
end

local function anchors(path)
  local set = {}
  for heading in read(path):gmatch("\n#+%s+([^\n]+)") do set[slug(heading)] = true end
  return set
end

describe("the manual's links", function()
  for _, page in ipairs(pages()) do
    it(page .. " links only to files and headings that exist", function()
      local dir = page:match("^(.*)/") or "."
      local text = read(page):gsub("```.-```", "")
      local broken = {}
      for target in text:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^%a[%w+.-]*:") then
          local file, anchor = target:match("^([^#]*)#?(.*)$")
          local path = file == "" and page or (dir .. "/" .. file)
          if not exists(path) then
            broken[#broken + 1] = target .. " (no such file)"
          elseif anchor ~= "" and path:match("%.md$") and not anchors(path)[anchor] then
            broken[#broken + 1] = target .. " (no such heading)"
          end
        end
      end
      assert.are.same({}, broken)
    end)
  end

  it("README.md opens with the two commands: the program first, the tests second", function()
    local first = read("README.md"):match("```%w*\n(.-)```")
    assert.are.equal("sh tools/deps.sh && make && make run\nsh tools/deps.sh && make test\n", first)
  end)

  it("the index links to every page of docs/", function()
    local index = read("docs/README.md")
    local missing = {}
    for _, page in ipairs(pages()) do
      local name = page:match("^docs/(.+)$")
      if name and name ~= "README.md" and not index:find("(" .. name, 1, true) then
        missing[#missing + 1] = name
      end
    end
    assert(#missing == 0, "docs/README.md (the index) does not link to: " .. table.concat(missing, ", "))
  end)
end)

describe("the manual's coverage", function()
  -- Names a module exports for curio's own use, not for programs.
  local internal = { ["subprocess.start_worker"] = true, ["ssl.alpn_wire"] = true }

  it("documents every name that curio and its submodules export", function()
    local curio = require "curio"
    local text = {}
    for _, page in ipairs(pages()) do text[#text + 1] = read(page) end
    text = table.concat(text, "\n")
    local errors_page = read("docs/errors.md")
    local missing = {}
    local function check(prefix, module)
      for name, value in pairs(module) do
        local full = prefix .. name
        local is_class = type(value) == "table" and require("curio.errors").is_class(value)
        if not internal[full] and not text:find(full, 1, true)
           and not (is_class and errors_page:find(name, 1, true)) then
          missing[#missing + 1] = full
        end
      end
    end
    check("curio.", curio)
    for name, value in pairs(curio) do
      if type(value) == "table" and name:match("^%l") and not require("curio.errors").is_class(value) then
        check(name .. ".", value)
      end
    end
    table.sort(missing)
    assert(#missing == 0, "not documented in README.md or docs/*.md (write each as `curio.name`, "
           .. "`subprocess.name`, ...): " .. table.concat(missing, ", "))
  end)
end)

describe("the man page docs/curio.1", function()
  -- The option words of a piece of text: "-e", "--", "-", "--help" (a
  -- trailing comma dropped).
  local function option_words(text, into)
    for word in text:gmatch("%S+") do
      word = word:gsub(",$", "")
      if word:match("^%-%-?[%w-]*$") then into[word] = true end
    end
  end

  -- The options a usage text lists: the option column (up to two blanks)
  -- of each indented line that starts with a dash.
  local function listed(text)
    local set = {}
    for line in text:gmatch("[^\n]+") do
      local column = line:match("^%s+(%-.-)%s%s") or line:match("^%s+(%-.-)%s*$")
      if column then option_words(column, set) end
    end
    return set
  end

  -- The options the page documents: the tag line after each .TP that is
  -- .B, .BI or .BR of a dash.
  local function documented(page)
    local set = {}
    for tag in page:gmatch("\n%.TP\n(%.B[IR]? [^\n]*)") do
      tag = tag:gsub("\\%-", "-"):gsub("\\f[BIPR]", ""):gsub('"', " ")
      if tag:match("^%.B[IR]? %-") then option_words(tag:sub(4), set) end
    end
    return set
  end

  it("documents exactly the options that curio -h lists", function()
    local _, stdout, stderr = util.sh(util.bin .. " -h")
    local program = listed(stdout .. "\n" .. stderr)
    assert(program["-e"], "curio -h lists no options:\n" .. stdout .. stderr)
    local page = documented(read("docs/curio.1"))
    local only_program, only_page = {}, {}
    for option in pairs(program) do
      if not page[option] then only_program[#only_program + 1] = option end
    end
    for option in pairs(page) do
      if not program[option] then only_page[#only_page + 1] = option end
    end
    table.sort(only_program)
    table.sort(only_page)
    assert(#only_program == 0 and #only_page == 0,
      "docs/curio.1 documents exactly the options of `curio -h`, each in a .TP paragraph tagged "
      .. ".B, .BI or .BR (`.BR \\-h \", \" \\-\\-help`); missing from curio.1: "
      .. table.concat(only_program, " ") .. "; not listed by curio -h: " .. table.concat(only_page, " "))
  end)

  it("renders without warnings", function()
    -- (without the sanitizers that make check preloads: groff is not built for them)
    local status, _, stderr = util.sh("env -u LD_PRELOAD MANWIDTH=80 man --warnings -l docs/curio.1 >/dev/null")
    assert.are.same({ 0, "" }, { status, stderr })
  end)

  it("is installed by make install and by the rockspec", function()
    local status, stdout, stderr = util.sh("env -u LD_PRELOAD make -n install PREFIX=/p")
    assert(status == 0, stderr)
    assert.truthy(stdout:find("docs/curio.1 /p/share/man/man1/curio.1", 1, true))
    local rockspec = read("curio-scm-1.rockspec")
    assert.truthy(rockspec:find('MANDIR = "$(PREFIX)/share/man"', 1, true))
    assert.truthy(rockspec:find('copy_directories = { "docs" }', 1, true))
  end)
end)

describe("the project's files", function()
  it("refer to no document the project does not contain", function()
    local status, stdout = util.sh("{ git ls-files 2>/dev/null || find lua core spec tools examples bench docs tests -type f; } " ..
      "| xargs grep -l -E " ..
      "'(API|DESIGN|STYLE)[.]md|howto[.]txt|/work[/]|/var/tmp[/]' -- 2>/dev/null")
    local offending = {}
    for path in stdout:gmatch("[^\n]+") do
      offending[#offending + 1] = path
    end
    assert(status == 0 or status == 123, "grep failed")
    assert.are.same({}, offending)
  end)
end)
