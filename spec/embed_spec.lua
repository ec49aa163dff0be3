-- The C embedding API (curio.h): the host test programs (tests/host_*.c),
-- each a misuse case ending in a status, never a crash; the example
-- (examples/embed/) with both sides making progress; the library as
-- installed. Each program runs under valgrind too when the build is the
-- plain one (make check runs this file on the ASan build, make tsan on
-- the ThreadSanitizer one, where the programs carry their sanitizer).
local util = require "spec.support.util"

local bindir = util.bin:match("^(.*)/curio$") or "build/bin"
local sanitized = bindir:find("build%-asan") or bindir:find("build%-tsan")
local tsan = bindir:find("build%-tsan") ~= nil
local has_valgrind = not sanitized and util.sh("command -v valgrind") == 0
-- (make check turns leak detection off for the Lua process; the host
-- programs free everything, and are checked for leaks)
local env = bindir:find("build%-asan") and "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 " or ""

-- Runs a host program (args: a string) with a bound; returns status,
-- stdout lines, stderr.
local function host(name, args, seconds)
  if tsan then -- (no shell starts with ThreadSanitizer preloaded: the program is run directly)
    local curio = require "curio"
    local argv = { bindir .. "/" .. name }
    for word in (args or ""):gmatch("%S+") do argv[#argv + 1] = word end
    local r = curio.run(curio.subprocess.run, argv, { capture_output = true, timeout = seconds or 60 })
    return r.returncode, util.lines(r.stdout), r.stderr
  end
  local command = ("%stimeout -s KILL %d %s/%s %s"):format(env, seconds or 60, bindir, name, args or "")
  local status, stdout, stderr = util.sh(command)
  return status, util.lines(stdout), stderr
end

-- The same under valgrind (memcheck: errors and definite leaks fail).
local function under_valgrind(name, args, seconds)
  return util.sh(("timeout -s KILL %d valgrind -q --error-exitcode=99 " ..
    "--leak-check=full --errors-for-leak-kinds=definite %s/%s %s"):format(seconds or 300, bindir,
    name, args or ""))
end

-- Runs the program natively, checks its lines, then (plain build) under
-- valgrind, expecting the same lines and a clean report.
-- (a long block's duration varies: "ran N s")
local function normal(lines)
  for i, line in ipairs(lines) do lines[i] = line:gsub("ran %d+%.%d+ s without", "ran N s without") end
  return lines
end

local function check_program(name, expected, args)
  local status, lines, stderr = host(name, args)
  assert.are.equal(0, status, stderr)
  assert.are.same(expected, normal(lines))
  if has_valgrind then
    local vstatus, vout, verr = under_valgrind(name, args)
    assert.are.equal(0, vstatus, verr)
    assert.are.same(expected, normal(util.lines(vout)))
  end
  return stderr
end

describe("curio.h", function()
  util.check_leaks(before_each, after_each)

  -- core/bigblock.c rule 2 over an allocator that is not lauxlib's: every
  -- block goes back to it with the size it was made with (the program
  -- exits at the first wrong one), a block is reused for its own size,
  -- kept blocks are given back when the allocator refuses (rule 7), and
  -- lua_close leaves none behind.
  it("gives a host's own allocator every block back, with its size", function()
    if tsan then return end
    check_program("host_allocator", {
      "same size: 2 big blocks made for 40",
      "mixed: exact same-size",
      "kept: 3 or more",
      "other size: made", -- (a memory error without rule 7)
      "live 0",
    })
  end)

  it("refuses every call on a detached handle, detach twice included, with collections between", function()
    if tsan then return end
    check_program("host_detach_twice", {
      "attach: ok",
      "spawn: ok",
      "cleanup ran\tfalse",
      "detach: ok",
      "detach again: ok",
      "detach a third time (abandon): ok",
      "spawn after detach: error 2: curio_spawn: the kernel is detached",
      "stack after the refused spawn: 0 value",
      "tasks after detach: error 2: curio_tasks: the kernel is detached",
      "count given: 0",
      "result after detach: error 2: curio_result: the kernel is detached",
      "detach with an unknown mode: error 2: curio_detach: unknown mode " ..
        "(CURIO_DETACH_WAIT, _CANCEL or _ABANDON expected)",
      "detach NULL: error 2: curio_detach: no kernel (a NULL handle)",
      "release: ok",
      "release NULL: ok",
    })
  end)

  it("keeps the handle valid after lua_close or ev_loop_destroy without detach, running no cleanup", function()
    if tsan then return end
    local stderr = check_program("host_lifetimes", {
      "-- lua_close without curio_detach",
      "attach: ok",
      "spawn: ok",
      "own timer fired on the loop after lua_close: 1",
      "detach from another state: error 2: CurioError: curio_detach: the lua_State is not of the " ..
        "state the kernel was attached to",
      "release: ok",
      "-- ev_loop_destroy before curio_detach",
      "attach: ok",
      "spawn: ok",
      "detach after the loop went: error 2: curio_detach: the loop was destroyed before " ..
        "curio_detach: the tasks were abandoned without their cleanup",
      "detach again: ok",
      "spawn: error 2: curio_spawn: the kernel is detached",
      "release: ok",
      "-- a new loop, the same state: attach again",
      "attach: ok",
      "spawn: ok",
      "-- curio_release without curio_detach abandons",
      "release: ok",
    })
    assert.truthy(stderr:find("task 1 (Task-1) did not run its cleanup: the loop was destroyed " ..
      "before curio_detach; abandoned while it waits (sleep)", 1, true), stderr)
    assert.truthy(stderr:find("did not run its cleanup: curio_release without curio_detach " ..
      "abandons the tasks at once", 1, true), stderr)
  end)

  it("refuses curio_detach and curio_release from a task and from a completion callback", function()
    if tsan then return end
    check_program("host_detach_in_task", {
      "attach: ok",
      "spawn: ok",
      "release from a task: status 2",
      "detach from a task: status 2: curio_detach: called from inside a task or a completion " ..
        "callback of the kernel",
      "detach from a completion callback: error 2: curio_detach: called from inside a task or a " ..
        "completion callback of the kernel",
      "release from a completion callback: status 2",
      "result: ok",
      "task went on",
      "detach: ok",
      "release: ok",
    })
  end)

  it("detaches from the program's own callback, running the loop nested, and refuses a detach nested in it", function()
    if tsan then return end
    check_program("host_detach_in_callback", {
      "attach: ok",
      "spawn: ok",
      "detach from a callback of the detach: error 2: curio_detach: called from a callback that the " ..
        "kernel's own detach runs",
      "spawn from a callback of the detach: error 2: curio_spawn: the kernel is being detached",
      "cleanup done, sleep ok: false",
      "detach from the program's callback: ok",
      "the program's ticks during the detach: several",
    })
  end)

  it("refuses another state and accepts a coroutine of the attached one", function()
    if tsan then return end
    local wrong = ": the lua_State is not of the state the kernel was attached to"
    check_program("host_wrong_state", {
      "attach: ok",
      "spawn with another state: error 2: CurioError: curio_spawn" .. wrong,
      "other state's stack: 0 value",
      "tasks with another state: error 2: CurioError: curio_tasks" .. wrong,
      "result with another state: error 2: CurioError: curio_result" .. wrong,
      "detach with another state: error 2: CurioError: curio_detach" .. wrong,
      "spawn with nargs INT_MAX: error 2: curio_spawn: fewer values on the stack than a function and nargs",
      "stack: 1 value",
      "spawn with nargs -1: error 2: curio_spawn: fewer values on the stack than a function and nargs",
      "spawn of a number: error 2: curio_spawn: the value below the arguments is not a function",
      "stack: 0 value",
      "result at index 1000: error 2: curio_result: no value at that stack index",
      "result at index INT_MIN: error 2: curio_result: no value at that stack index",
      "result of a number: error 2: curio_result: the value is not a Task",
      "spawn with a coroutine of the state: ok",
      "result with the coroutine: ok",
      "result: 42",
      "attach the other state to the same loop: ok",
      "spawn in the other state: ok",
      "result in the other state: ok",
      "result: other",
      "detach the other's kernel with the first state: error 2: curio_detach" .. wrong,
      "detach the other's kernel: ok",
      "detach: ok",
    })
  end)

  it("refuses a second attach to one state until the first is detached", function()
    if tsan then return end
    check_program("host_attach_twice", {
      "attach: ok",
      "attach again: error 2: curio_attach: a kernel is attached to this state already",
      "handle given on error: NULL",
      "attach from a coroutine to another loop: error 2: curio_attach: a kernel is attached to this " ..
        "state already",
      "attach to no loop: error 2: curio_attach: no loop (NULL)",
      "attach with no handle pointer: error 2: curio_attach: no place for the handle (kp is NULL)",
      "detach: ok",
      "attach after detach: ok",
      "spawn: ok",
      "result: ok",
      "result: ran",
      "detach: ok",
    })
  end)

  it("checks the options, routes reports to the host, and detaches in each of the three modes", function()
    if tsan then return end
    local stderr = check_program("host_options", {
      "-- options out of range",
      "threads 5000: error 2: bad argument #3 to 'curio_attach_opts' (option 'threads' must be a " ..
        "whole number from 1 to 4096)",
      "processes -2: error 2: bad argument #3 to 'curio_attach_opts' (option 'processes' must be a " ..
        "whole number from 1 to 4096)",
      "shutdown_timeout NaN: error 2: bad argument #3 to 'curio_attach_opts' (option " ..
        "'shutdown_timeout' must be a non-negative number)",
      "debug 7: error 2: curio_attach_opts: option 'debug' must be -1, 0 or 1",
      "longblock -1: error 2: bad argument #3 to 'curio_attach_opts' (option 'debug.longblock' must " ..
        "be a positive number of seconds or false, got -1.0)",
      "-- reports and CURIO_DETACH_CANCEL",
      "attach: ok",
      "host report: Task crash: task 1 failed: nobody joins me",
      "host report: curio: long block: task 2 (Task-2) ran N s without blocking, then returned",
      "callback: task failed: my callback gets me",
      "host report: curio: the completion callback of task 4 raised an error: the callback's own error",
      "loop ran",
      "detach (cancel): ok",
      "tasks right after: 2",
      "spawn while detaching: error 2: curio_spawn: the kernel is being detached",
      "quick cleanup done, sleep ok: false",
      "host report: curio: shutdown: task 6 (stuck) did not finish its cleanup within the 0.5 s " ..
        "that curio_detach (CURIO_DETACH_CANCEL) gave it; abandoned while it waits (sleep) in:",
      "tasks after the loop: error 2: curio_tasks: the kernel is detached",
      "detach again: ok",
      "-- CURIO_DETACH_ABANDON",
      "attach: ok",
      "host report: curio: shutdown: task 1 (Task-1) did not run its cleanup: curio_detach " ..
        "(CURIO_DETACH_ABANDON) abandons the tasks at once; abandoned while it waits (sleep) in:",
      "detach (abandon): ok",
      "-- CURIO_DETACH_WAIT",
      "attach: ok",
      "quick cleanup done, sleep ok: false",
      "host report: curio: shutdown: task 1 (stuck) did not finish its cleanup within 0.5 s; " ..
        "abandoned while it waits (sleep) in:",
      "detach (wait): ok",
    })
    assert.are.equal("", stderr) -- every report went to the host's function
  end)

  it("ends in a status, never an abort, when memory runs out at any point", function()
    if tsan then return end
    local status, lines, stderr = host("host_oom")
    assert.are.equal(0, status, stderr)
    local after_attach, total = lines[1]:match("^growths: (%d+) after attach, (%d+) in all$")
    after_attach, total = tonumber(after_attach), tonumber(total)
    assert.truthy(after_attach and total > after_attach, lines[1])
    -- every point after attach (the loop, the tasks, detach), then a
    -- sample of attach's own
    local seen = {}
    for _, r in ipairs { { after_attach - 20, total + 5, 1 }, { 1, after_attach, sanitized and 7 or 3 } } do
      local first, last, step = r[1], r[2], r[3]
      local st, out, err = host("host_oom", ("%d %d %d"):format(first, last, step), 600)
      assert.are.equal(0, st, err)
      assert.are.equal(("survived %d runs"):format((last - first) // step + 1), out[#out])
      for _, line in ipairs(out) do seen[line:match("^([^:]+):") or line] = true end
    end
    for _, outcome in ipairs { "attach failed", "script failed", "task failed", "ran", "callbacks" } do
      assert.truthy(seen[outcome], outcome .. " never happened")
    end
    if has_valgrind then
      for _, r in ipairs { { after_attach - 20, total + 5, 13 }, { 1, after_attach, 331 } } do
        local vstatus, vout, verr = under_valgrind("host_oom", ("%d %d %d"):format(r[1], r[2], r[3]), 900)
        assert.are.equal(0, vstatus, verr)
        assert.truthy(vout:find("survived", 1, true))
      end
    end
  end)

  it("runs two hosts in two threads at once, each with its own loop and state, curio in their worker threads", function()
    local status, lines, stderr = host("host_threads")
    assert.are.equal(0, status, stderr)
    assert.are.same({
      "host 1: 20 tasks done, sum 210, detach ok",
      "host 2: 20 tasks done, sum 210, detach ok",
    }, lines)
  end)
end)

describe("examples/embed", function()
  util.check_leaks(before_each, after_each)

  local function check_example(lines)
    local echoes, works = {}, {}
    for _, line in ipairs(lines) do
      if line:find("^echo: ") then echoes[#echoes + 1] = line end
      if line:find("^work: ") then works[#works + 1] = line end
    end
    local expected_echoes, expected_works = {}, {}
    for i = 1, 10 do
      expected_echoes[i] = "echo: ping " .. i
      expected_works[i] = i % 3 == 0 and ("work: failed: tick %d is a multiple of 3"):format(i)
        or ("work: returned %d squared"):format(i * i)
    end
    assert.are.same(expected_echoes, echoes)
    assert.are.same(expected_works, works) -- every result and error, through the callbacks
    assert.are.equal("host connected to the script's echo server", lines[1])
    assert.are.same({
      "ticks 10, works done 10, echoes 10, sleeper naps before the last tick: some",
      "tasks left before detach: 3",
    }, { lines[#lines - 4], lines[#lines - 3] })
    local ends = { lines[#lines - 2], lines[#lines - 1] }
    table.sort(ends)
    assert.are.same({ "serve: failed: TaskCancelled: task cancelled",
                      "sleeper: failed: TaskCancelled: task cancelled" }, ends)
    assert.are.equal("detached", lines[#lines])
  end

  it("hosts an echo server and a sleeper beside the program's own timer and socket", function()
    local status, lines, stderr = host("embed_example", "examples/embed/script.lua")
    assert.are.equal(0, status, stderr)
    check_example(lines)
  end)

  it("does the same under valgrind, with no error and no leak", function()
    if not has_valgrind then return end
    local status, stdout, stderr = under_valgrind("embed_example", "examples/embed/script.lua")
    assert.are.equal(0, status, stderr)
    check_example(util.lines(stdout))
  end)

  it("builds against the installed library through pkg-config (shared, with its SONAME)", function()
    if sanitized then return end
    local root = os.tmpname()
    os.remove(root)
    local ok, stdout, stderr = util.sh(("make -s install DESTDIR= PREFIX=%s >/dev/null && " ..
      "cc -std=c11 -D_DEFAULT_SOURCE -o %s/embed_host examples/embed/host.c " ..
      "$(PKG_CONFIG_PATH=%s/lib/pkgconfig pkg-config --cflags --libs curio) && " ..
      "readelf -d %s/lib/libcurio.so | grep SONAME && readelf -d %s/embed_host | grep 'NEEDED.*curio' && " ..
      "LD_LIBRARY_PATH=%s/lib %s/embed_host examples/embed/script.lua | tail -1")
      :format(root, root, root, root, root, root, root))
    util.sh("rm -rf " .. root)
    assert.are.equal(0, ok, stderr)
    assert.are.same({
      "(SONAME)             Library soname: [libcurio.so.0]",
      "(NEEDED)             Shared library: [libcurio.so.0]",
      "detached",
    }, (function()
      local out = {}
      for _, line in ipairs(util.lines(stdout)) do out[#out + 1] = line:gsub("^%s*0x%x+%s*", "") end
      return out
    end)())
  end)
end)
