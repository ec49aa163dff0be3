-- curio.taskgroup: TaskGroup (docs/tasks.md: Task groups), as curio 1.x's TaskGroup.
--
-- How a group tracks its tasks (the per-task part is C, core/group.c):
--  1. Members are the group's non-daemon tasks. Each is RUNNING (its
--     completion not yet taken by the group) or DONE. Daemon tasks belong
--     to the group but are kept apart: they are cancelled at join, never
--     waited for, and are not in g.tasks.
--  2. Completion: a member that ends is handed to the task waiting in the
--     group's take(), or queued in the order members end; take() marks it
--     DONE. O(1) per task, no Lua table entry per task.
--  3. A task leaves the group when next_done() hands it out, when it is
--     joined on its own (task:join, wrapped below), or when
--     cancel_remaining() cancels it; it leaves the done queue with it, and
--     take() never waits for a completion that will not come.
--  4. Tasks left in a group when it is joined never outlive it: join
--     cancels them and waits for them with cancellation held back (a
--     cancellation arriving meanwhile comes at the next blocking call).
--  5. The group retrieves a failed task's error (core.task_retrieve) only
--     when its user is given it: result, exception, results, exceptions,
--     next_result. Otherwise the kernel reports the crash as for any task.
--  6. A group held in a <close> variable is left as TaskGroup(opts, fn)
--     leaves fn: with no error in flight it is joined; with one, the
--     members still running are cancelled (and waited for), then it is
--     joined, and the error goes on. When the error ended the task itself,
--     Lua closes the variable once the task is over, where nothing can
--     wait: the tasks left are cancelled and not waited for (they end at
--     their next blocking call, their cleanup run by the kernel).

local core = require "curio.core"
local errors = require "curio.errors"
local check = require "curio.check"
local task = require "curio.task"

local CurioError = errors.CurioError
local current_task = core.current_task
local task_retrieve, task_cancel, task_failed = core.task_retrieve, core.task_cancel, core.task_failed
local group_spawn, new_group, core_group_of = core.group_spawn, core.group, core.group_of
local disable_cancellation = task.disable_cancellation

-- (core group states, by name: "none", "running", "done", "daemon")

-- The TaskGroup of each core group: one entry per group, none per task.
local groups = setmetatable({}, { __mode = "k" })

local function group_of(t)
  local core_group = core_group_of(t)
  return core_group and groups[core_group]
end

local taskgroup = {}

local TaskGroup = { __name = "curio.TaskGroup" }

local is_task = core.is_task

local check_task, check_fn = check.task, check.fn
-- (a method called on another object: one comparison, check.bad_self)
local bad_self = check.bad_self -- (self._class: as sync.lua, a field read)

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

-- Forgets the daemons that ended, once there are many (a long-lived group
-- may spawn daemons without end).
local function prune_daemons(self)
  local daemons, count = self._daemons, 0
  for t in pairs(daemons) do
    if t.terminated then
      daemons[t] = nil
      self._core:leave(t)
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

-- Puts an existing task in the group, as member (rule 1) or daemon.
local function add(self, t, daemon)
  if not daemon and self._core:counts() > 0 then
    self._sorted = false -- it may be older than a member: sort g.tasks by id
  end
  self._core:add(t, daemon)
  if daemon then return add_daemon(self, t) end
end

-- Takes t out of the group (rule 3).
local function discard(self, t)
  if self._core:leave(t) == "daemon" then
    self._daemons[t] = nil
    self._ndaemons = self._ndaemons - 1
  end
end

-- The members in creation order (task id order).
local function task_list(self)
  local list = self._core:members()
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
  return ("TaskGroup (%d tasks, %s)"):format((self._core:counts()), self._joined and "joined" or "open")
end

-- (task:join() of a task in a group takes it out of the group, as curio:
-- the kernel's join does it, core/group.c.)

local wait_modes = { all = "all", any = "any", object = "object", [false] = false }
local group_opts = { wait = true, tasks = true }

local function new(opts)
  local wait, tasks = "all", nil
  if opts ~= nil then
    check.options(opts, 1, "TaskGroup", group_opts, 2)
    if opts.wait ~= nil then
      wait = wait_modes[opts.wait]
      if wait == nil then
        check.arg_error(1, "TaskGroup", "opts.wait: \"all\", \"any\", \"object\" or "
              .. "false expected, got " .. tostring(opts.wait), 2)
      end
    end
    tasks = opts.tasks
    if tasks ~= nil then
      if type(tasks) ~= "table" then
        check.arg_error(1, "TaskGroup", "opts.tasks: table expected, got " .. type(tasks), 2)
      end
      local listed = {}
      for i, t in ipairs(tasks) do
        if not is_task(t) then
          check.arg_error(1, "TaskGroup", ("opts.tasks[%d]: Task expected, got %s"):format(i, type(t)), 2)
        end
        if group_of(t) ~= nil or listed[t] then
          error(CurioError("TaskGroup: task already in a task group"), 3)
        end
        listed[t] = true
      end
    end
  end
  local self = setmetatable({
    _class = TaskGroup,
    completed = nil,
    _wait = wait,
    _core = new_group(), -- members, their states, the done queue (core/group.c)
    _daemons = {},    -- daemon task -> true
    _ndaemons = 0,
    _daemon_mark = 64, -- prune ended daemons beyond this many
    _joined = false,
    _sorted = true,   -- members were added in id order (spawned, or into an empty group)
  }, TaskGroup)
  groups[self._core] = self
  if tasks ~= nil then
    for _, t in ipairs(tasks) do add(self, t, t.daemon) end
  end
  return self
end

-- g:spawn(fn, ...) -> a new task in the group (the group's bookkeeping is
-- C, core/group.c, which refuses once the group is joined).
function TaskGroup:spawn(fn, ...)
  if self == nil or self._class ~= TaskGroup then bad_self(self, "spawn", "TaskGroup") end
  if type(fn) ~= "function" then check_fn(fn, 1, "spawn") end -- (inline: the hot path)
  return group_spawn(self._core, false, fn, ...)
end

-- g:spawn_daemon(fn, ...) -> a new daemon task, cancelled at join.
function TaskGroup:spawn_daemon(fn, ...)
  if self == nil or self._class ~= TaskGroup then bad_self(self, "spawn_daemon", "TaskGroup") end
  if type(fn) ~= "function" then check_fn(fn, 1, "spawn_daemon") end -- (inline: the hot path)
  local t = group_spawn(self._core, true, fn, ...)
  add_daemon(self, t)
  return t
end

-- g:add_task(task): puts an existing task (maybe terminated) in the group.
function TaskGroup:add_task(t)
  if self == nil or self._class ~= TaskGroup then bad_self(self, "add_task", "TaskGroup") end
  if not is_task(t) then
    check.arg_error(1, "add_task", "Task expected, got " .. check.describe(t))
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
  if self == nil or self._class ~= TaskGroup then bad_self(self, "next_done", "TaskGroup") end
  check_task("TaskGroup.next_done")
  local t = self._core:take()
  if t == nil then return nil end
  self._core:leave(t)
  return t
end

-- g:next_result() -> the results of the next task to finish (raises its
-- error if it failed); CurioError when no task is left.
function TaskGroup:next_result()
  if self == nil or self._class ~= TaskGroup then bad_self(self, "next_result", "TaskGroup") end
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
  local core_group = self._core
  local _, live = core_group:counts()
  if live == 0 then return victims end -- (every member was seen done)
  local list = core_group:members()
  for i = 1, #list do
    local t = list[i]
    if core_group:state(t) == "running" and not t.terminated then victims[#victims + 1] = t end
  end
  return victims
end

local function cancel_remaining(self)
  local victims = running_members(self)
  cancel_all(victims)
  for i = 1, #victims do
    if group_of(victims[i]) == self then discard(self, victims[i]) end
  end
end

-- g:cancel_remaining(): cancels the members still running and takes them
-- out of the group.
function TaskGroup:cancel_remaining()
  if self == nil or self._class ~= TaskGroup then bad_self(self, "cancel_remaining", "TaskGroup") end
  check_task("TaskGroup.cancel_remaining")
  cancel_remaining(self)
end

-- The wait of join() by the group's policy (curio's TaskGroup.join).
local function wait_policy(self)
  local mode = self._wait
  if mode == false then return end
  local completed, core_group = rawget(self, "completed"), self._core
  if mode == "all" then -- the common case, kept lean: 100,000 tasks pass here
    while true do
      local t, bad = core_group:take()
      if t == nil then return end
      if completed == nil then completed = t; self.completed = t end
      if bad then return end
    end
  end
  while true do
    local t, bad = core_group:take()
    if t == nil then return end
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
  if self == nil or self._class ~= TaskGroup then bad_self(self, "join", "TaskGroup") end
  check_task("TaskGroup.join")
  if self._joined then return end -- (nothing can be added after a join)
  local ok, err = pcall(wait_policy, self)
  local victims = running_members(self)
  for t in pairs(self._daemons) do
    if not t.terminated then victims[#victims + 1] = t end
  end
  cancel_all(victims)
  self._joined = true
  self._core:close()
  raise_if(ok, err)
end

-- g:result() -> the results of g.completed, raising its error.
function TaskGroup:result()
  if self == nil or self._class ~= TaskGroup then bad_self(self, "result", "TaskGroup") end
  check_joined(self, "result")
  if self.completed == nil then
    errors.raise(CurioError, "TaskGroup.result: no task completed")
  end
  return self.completed:result()
end

-- g:exception() -> the error of g.completed, or nil.
function TaskGroup:exception()
  if self == nil or self._class ~= TaskGroup then bad_self(self, "exception", "TaskGroup") end
  check_joined(self, "exception")
  local t = self.completed
  if t == nil or not failed(t) then return nil end
  task_retrieve(t)
  return t.exception
end

-- g:results() -> list (with n) of each task's first result, in creation
-- order; raises the error of the first task that failed.
function TaskGroup:results()
  if self == nil or self._class ~= TaskGroup then bad_self(self, "results", "TaskGroup") end
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
  if self == nil or self._class ~= TaskGroup then bad_self(self, "exceptions", "TaskGroup") end
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

-- Leaves the group's block (curio's __aexit__): an error in flight cancels
-- what runs first; then the group is joined as usual.
local function leave(g, failed_block)
  if failed_block then cancel_remaining(g) end
  g:join()
end

local function finish(g, ok, err)
  leave(g, not ok)
  if not ok then error(err, 0) end
  return g
end

-- `local g <close> = curio.TaskGroup()`: leaving the variable's scope is
-- leaving the group's block (rule 6).
function TaskGroup.__close(self, err)
  if self._joined then return end -- (joined inside the block)
  if coroutine.isyieldable() or current_task() == nil then return leave(self, err ~= nil) end
  -- the error left the task's function: Lua closes the variable after
  -- the task ended, where nothing can wait; cancel without waiting
  local victims = running_members(self)
  for t in pairs(self._daemons) do
    if not t.terminated then victims[#victims + 1] = t end
  end
  for i = 1, #victims do task_cancel(victims[i]) end
  self._joined = true
  self._core:close()
end

-- curio.TaskGroup(opts) -> a new group; curio.TaskGroup(opts, fn) runs
-- fn(g), joins the group and returns it; if fn raises, the group's tasks
-- are cancelled and the error propagates. opts: wait ("all", "any",
-- "object" or false), tasks (existing tasks to add). TaskGroup(fn) is
-- TaskGroup(nil, fn).
function taskgroup.TaskGroup(opts, fn)
  if fn == nil and type(opts) == "function" then opts, fn = nil, opts end
  if fn ~= nil then check_fn(fn, 2, "TaskGroup") end
  local g = new(opts)
  if fn == nil then return g end
  check_task("TaskGroup")
  return finish(g, pcall(fn, g))
end

return taskgroup
