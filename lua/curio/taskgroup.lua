-- curio.taskgroup: TaskGroup (API.md section 5), as curio 1.x's TaskGroup.
--
-- How a group tracks its tasks:
--  1. Members are the group's non-daemon tasks. Each is RUNNING (its
--     completion not yet seen by the group) or DONE (seen by join). Daemon
--     tasks are kept apart: they are cancelled at join, never waited for,
--     and are not in g.tasks.
--  2. Completion: the kernel posts a member to the group's wait queue when
--     it terminates (core.task_notify; the group posts an already
--     terminated task itself), so the mailbox holds finished tasks in the
--     order they finished, O(1) per task.
--  3. A task leaves the group when next_done() hands it out, when it is
--     joined on its own (task:join, wrapped below), or when
--     cancel_remaining() cancels it. Its mailbox entry, if any, is then
--     stale: whoever takes an entry checks that the task is still a RUNNING
--     member, and skips it otherwise. `live` counts RUNNING members, so a
--     take never waits for a completion that will not come.
--  4. Tasks left in a group when it is joined never outlive it: join
--     cancels them and waits for them with cancellation held back (a
--     cancellation arriving meanwhile comes at the next blocking call).
--  5. The group retrieves a failed task's error (core.task_retrieve) only
--     when its user is given it: result, exception, results, exceptions,
--     next_result. Otherwise the kernel reports the crash as for any task.

local core = require "curio.core"
local errors = require "curio.errors"
local task = require "curio.task"

local CurioError = errors.CurioError
local current_task = core.current_task
local task_notify, task_notify_of = core.task_notify, core.task_notify_of
local task_retrieve, task_cancel, task_failed = core.task_retrieve, core.task_cancel, core.task_failed
local group_spawn = core.group_spawn
local disable_cancellation = task.disable_cancellation
local waitq = core.waitq
local task_methods = core.task_methods
local huge = math.huge

local RUNNING, DONE = 1, 2

-- A task's group is found through the wait queue its completion is posted
-- to (core.task_notify_of): one entry per group here, none per task.
local groups = setmetatable({}, { __mode = "k" })

local function group_of(t)
  local done = task_notify_of(t)
  return done and groups[done]
end

local taskgroup = {}

local TaskGroup = { __name = "curio.TaskGroup" }
local methods = {} -- TaskGroup's methods, copied into each group (filled at the end)

local function index_join(value) return value.join end

local function is_task(value)
  if type(value) ~= "userdata" then return false end
  local ok, method = pcall(index_join, value)
  return ok and method == task_methods.join
end

local function check_task(fname)
  if current_task() == nil then
    error(CurioError(fname .. ": not inside a curio task"), 3)
  end
end

local function check_fn(fn, fname)
  if type(fn) ~= "function" then
    error(("bad argument #1 to '%s' (function expected, got %s)"):format(fname,
      fn == nil and "no value" or type(fn)), 3)
  end
end

local function check_joined(self, fname)
  if not self._joined then
    error(CurioError(("TaskGroup.%s: task group not yet joined"):format(fname)), 3)
  end
end

local function check_open(self, fname)
  if self._joined then
    error(CurioError(("TaskGroup.%s: task group already joined"):format(fname)), 3)
  end
end

-- true when a terminated task failed (cancellation included).
local failed = task_failed

---------------------------------------------------------------- membership

-- The members in the order they were added (_order less its stale and
-- repeated entries: a task may leave and be added again).
local function members(self)
  local list, listed, state, order = {}, {}, self._state, self._order
  for i = 1, #order do
    local t = order[i]
    if state[t] ~= nil and not listed[t] then
      listed[t] = true
      list[#list + 1] = t
    end
  end
  return list
end

-- Forgets the daemons that ended, once there are many (a long-lived group
-- may spawn daemons without end).
local function prune_daemons(self)
  local daemons, count = self._daemons, 0
  for t in pairs(daemons) do
    if t.terminated then
      daemons[t] = nil
      task_notify(t, nil)
    else
      count = count + 1
    end
  end
  self._ndaemons = count
  self._daemon_mark = math.max(64, 2 * count)
end

local function add_daemon(self, t)
  self._daemons[t] = true
  self._ndaemons = self._ndaemons + 1
  if self._ndaemons > self._daemon_mark then prune_daemons(self) end
end

-- Makes t a RUNNING member (rule 1).
local function add_member(self, t)
  self._state[t] = RUNNING
  self._count = self._count + 1
  self._live = self._live + 1
  local order = self._order
  order[#order + 1] = t
end

-- Puts an existing task in the group, as member (rule 1) or daemon.
local function add(self, t, daemon)
  local kernel_posts = task_notify(t, self._done) -- records membership too
  if daemon then return add_daemon(self, t) end
  add_member(self, t)
  if t.id < self._last_id then self._sorted = false else self._last_id = t.id end
  if not kernel_posts then self._done:post(t) end -- rule 2: it has ended
end

-- Marks a RUNNING member's completion as seen.
local function seen(self, t)
  self._state[t] = DONE
  self._live = self._live - 1
end

-- When no completion is left to come: wakes every task still waiting on
-- the mailbox (they find nothing and return) and drops stale entries.
local function settle(self)
  if self._live > 0 then return end
  local done = self._done
  if #done > 0 then done:wake(huge, false) end
  while done:posted() > 0 do done:take() end
end

-- Takes t out of the group (rule 3).
local function discard(self, t)
  task_notify(t, nil)
  if self._daemons[t] then
    self._daemons[t] = nil
    self._ndaemons = self._ndaemons - 1
    return
  end
  local state = self._state[t]
  if state == nil then return end
  self._state[t] = nil
  self._count = self._count - 1
  if state == RUNNING then self._live = self._live - 1 end
  local stale = #self._order - self._count
  if stale > 64 and stale > self._count then self._order = members(self) end
  settle(self)
end

-- -> the next member whose completion was not seen, waiting for one; nil
-- when there is none left to come.
local function next_finished(self)
  local done, state = self._done, self._state
  while self._live > 0 do
    local t = done:take()
    if state[t] == RUNNING then return t end
  end
  settle(self)
  return nil
end

-- The members in creation order (task id order).
local function task_list(self)
  local list = members(self)
  if not self._sorted then
    table.sort(list, function(a, b) return a.id < b.id end)
  end
  return list
end

---------------------------------------------------------------- the class

function TaskGroup.__index(self, key)
  local method = TaskGroup[key]
  if method ~= nil then return method end
  if key == "tasks" then return task_list(self) end
  return nil
end

function TaskGroup.__tostring(self)
  return ("TaskGroup (%d tasks, %s)"):format(self._count, self._joined and "joined" or "open")
end

-- task:join() of a task in a group takes it out of the group (as curio).
-- Installed when the first group is made, so that programs without groups
-- keep the kernel's join as it is.
local raw_join = task_methods.join
local function join(t)
  local g = group_of(t)
  if g == nil or t == current_task() then return raw_join(t) end
  t:wait()
  if group_of(t) == g then discard(g, t) end
  return raw_join(t)
end

local wait_modes = { all = "all", any = "any", object = "object", [false] = false }

local function new(opts)
  if task_methods.join == raw_join then task_methods.join = join end
  local wait, tasks = "all", nil
  if opts ~= nil then
    if type(opts) ~= "table" then
      error("bad argument #1 to 'TaskGroup' (table expected, got " .. type(opts) .. ")", 3)
    end
    if opts.wait ~= nil then
      wait = wait_modes[opts.wait]
      if wait == nil then
        error("bad argument #1 to 'TaskGroup' (opts.wait: \"all\", \"any\", \"object\" or "
              .. "false expected, got " .. tostring(opts.wait) .. ")", 3)
      end
    end
    tasks = opts.tasks
    if tasks ~= nil then
      if type(tasks) ~= "table" then
        error("bad argument #1 to 'TaskGroup' (opts.tasks: table expected, got "
              .. type(tasks) .. ")", 3)
      end
      local listed = {}
      for i, t in ipairs(tasks) do
        if not is_task(t) then
          error(("bad argument #1 to 'TaskGroup' (opts.tasks[%d]: Task expected, got %s)")
                :format(i, type(t)), 3)
        end
        if group_of(t) ~= nil or listed[t] then
          error(CurioError("TaskGroup: task already in a task group"), 3)
        end
        listed[t] = true
      end
    end
  end
  local self = setmetatable({
    completed = nil,
    _wait = wait,
    _state = {},      -- member -> RUNNING | DONE
    _order = {},      -- members in the order added (with stale entries)
    _count = 0,       -- members
    _live = 0,        -- RUNNING members
    _daemons = {},    -- daemon task -> true
    _ndaemons = 0,
    _daemon_mark = 64, -- prune ended daemons beyond this many
    _done = waitq(),  -- mailbox of finished members (rule 2)
    _joined = false,
    _sorted = true,   -- _order is in id order
    _last_id = 0,
  }, TaskGroup)
  groups[self._done] = self
  for name, method in pairs(methods) do self[name] = method end -- no __index call per g:spawn
  if tasks ~= nil then
    for _, t in ipairs(tasks) do add(self, t, t.daemon) end
  end
  return self
end

-- g:spawn(fn, ...) -> a new task in the group.
function TaskGroup:spawn(fn, ...)
  if type(fn) ~= "function" then check_fn(fn, "spawn") end -- (inline: the hot path)
  if self._joined then check_open(self, "spawn") end
  local t = group_spawn(self._done, false, fn, ...)
  self._state[t] = RUNNING -- add_member, inline: 100,000 spawns pass here
  local count = self._count + 1
  self._count, self._live = count, self._live + 1
  local order, n = self._order, #self._order + 1
  order[n] = t
  self._last_id = huge -- the newest task: any task added later is older
  return t
end

-- g:spawn_daemon(fn, ...) -> a new daemon task, cancelled at join.
function TaskGroup:spawn_daemon(fn, ...)
  if type(fn) ~= "function" then check_fn(fn, "spawn_daemon") end -- (inline: the hot path)
  if self._joined then check_open(self, "spawn_daemon") end
  local t = group_spawn(self._done, true, fn, ...)
  add_daemon(self, t)
  return t
end

-- g:add_task(task): puts an existing task (maybe terminated) in the group.
function TaskGroup:add_task(t)
  if not is_task(t) then
    error("bad argument #1 to 'add_task' (Task expected, got " ..
      (t == nil and "no value" or type(t)) .. ")", 2)
  end
  if group_of(t) ~= nil then
    errors.raise(CurioError, "TaskGroup.add_task: task already in a task group")
  end
  check_open(self, "add_task")
  add(self, t, t.daemon)
end

-- g:next_done() -> the next task to finish, taken out of the group; nil
-- when no task is left.
function TaskGroup:next_done()
  check_task("TaskGroup.next_done")
  local t = next_finished(self)
  if t == nil then return nil end
  seen(self, t)
  discard(self, t)
  return t
end

-- g:next_result() -> the results of the next task to finish (raises its
-- error if it failed); CurioError when no task is left.
function TaskGroup:next_result()
  check_task("TaskGroup.next_result")
  local t = self:next_done()
  if t == nil then errors.raise(CurioError, "TaskGroup.next_result: no task available") end
  return t:result()
end

-- Cancels the given tasks and waits for them all to end (rule 4).
local function cancel_all(victims)
  local me = current_task()
  for i = 1, #victims do
    if victims[i] ~= me then task_cancel(victims[i]) end
  end
  disable_cancellation(function()
    for i = 1, #victims do
      local t = victims[i]
      if t ~= me then t:wait() end
    end
  end)
end

-- The members still running.
local function running_members(self)
  local victims = {}
  if self._live == 0 then return victims end -- (every member was seen done)
  local state, list = self._state, members(self)
  for i = 1, #list do
    local t = list[i]
    if state[t] == RUNNING and not t.terminated then victims[#victims + 1] = t end
  end
  return victims
end

local function cancel_remaining(self)
  local victims = running_members(self)
  cancel_all(victims)
  for i = 1, #victims do
    if group_of(victims[i]) == self then discard(self, victims[i]) end
  end
  settle(self)
end

-- g:cancel_remaining(): cancels the members still running and takes them
-- out of the group.
function TaskGroup:cancel_remaining()
  check_task("TaskGroup.cancel_remaining")
  cancel_remaining(self)
end

-- The wait of join() by the group's policy (curio's TaskGroup.join).
local function wait_policy(self)
  local mode = self._wait
  if mode == false then return end
  local completed = rawget(self, "completed")
  if mode == "all" then -- the common case, kept lean: 100,000 tasks pass here
    local done, state = self._done, self._state
    while self._live > 0 do
      local t = done:take()
      if state[t] == RUNNING then
        state[t] = DONE
        self._live = self._live - 1
        if completed == nil then completed = t; self.completed = t end
        if failed(t) then return end
      end
    end
    settle(self)
    return
  end
  while true do
    local t = next_finished(self)
    if t == nil then return end
    seen(self, t)
    local bad = failed(t)
    local first = nil
    if mode == "object" and not bad then
      local ok, value = pcall(t.result, t)
      if ok then first = value else bad = true end -- (it raised nil)
    end
    if completed == nil and not (mode == "object" and not bad and first == nil) then
      completed = t
      self.completed = t
    end
    if bad or mode == "any" or (mode == "object" and first ~= nil) then return end
  end
end

local function raise_if(ok, err)
  if not ok then error(err, 0) end
end

-- g:join(): waits for the tasks by the group's wait policy, then cancels
-- every task left (daemons included) and waits for them. Raises no task's
-- error; raises what interrupted the wait (a cancellation, a timeout).
function TaskGroup:join()
  check_task("TaskGroup.join")
  if self._joined then return end -- (nothing can be added after a join)
  local ok, err = pcall(wait_policy, self)
  local victims = running_members(self)
  for t in pairs(self._daemons) do
    if not t.terminated then victims[#victims + 1] = t end
  end
  cancel_all(victims)
  self._joined = true
  settle(self)
  raise_if(ok, err)
end

-- g:result() -> the results of g.completed, raising its error.
function TaskGroup:result()
  check_joined(self, "result")
  if self.completed == nil then
    errors.raise(CurioError, "TaskGroup.result: no task completed")
  end
  return self.completed:result()
end

-- g:exception() -> the error of g.completed, or nil.
function TaskGroup:exception()
  check_joined(self, "exception")
  local t = self.completed
  if t == nil or not failed(t) then return nil end
  task_retrieve(t)
  return t.exception
end

-- g:results() -> list (with n) of each task's first result, in creation
-- order; raises the error of the first task that failed.
function TaskGroup:results()
  check_joined(self, "results")
  local list = task_list(self)
  local results = { n = #list }
  for i = 1, #list do
    results[i] = (list[i]:result())
  end
  return results
end

-- g:exceptions() -> list (with n) of each task's error or nil.
function TaskGroup:exceptions()
  check_joined(self, "exceptions")
  local list = task_list(self)
  local exceptions = { n = #list }
  for i = 1, #list do
    local t = list[i]
    if failed(t) then
      task_retrieve(t)
      exceptions[i] = t.exception
    end
  end
  return exceptions
end

local function finish(g, ok, err)
  if not ok then
    -- the body failed: cancel what runs, then join as usual (curio's __aexit__)
    cancel_remaining(g)
    g:join()
    error(err, 0)
  end
  g:join()
  return g
end

-- curio.TaskGroup(opts) -> a new group; curio.TaskGroup(opts, fn) runs
-- fn(g), joins the group and returns it; if fn raises, the group's tasks
-- are cancelled and the error propagates. opts: wait ("all", "any",
-- "object" or false), tasks (existing tasks to add). TaskGroup(fn) is
-- TaskGroup(nil, fn).
function taskgroup.TaskGroup(opts, fn)
  if fn == nil and type(opts) == "function" then opts, fn = nil, opts end
  if fn ~= nil and type(fn) ~= "function" then
    error("bad argument #2 to 'TaskGroup' (function expected, got " .. type(fn) .. ")", 2)
  end
  local g = new(opts)
  if fn == nil then return g end
  check_task("TaskGroup")
  return finish(g, pcall(fn, g))
end

for name, value in pairs(TaskGroup) do
  if type(value) == "function" and name:sub(1, 2) ~= "__" then methods[name] = value end
end

return taskgroup
