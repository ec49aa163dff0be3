/* tests/host_options.c: curio_attach_opts's options and checks, the
 * report function (a crash when it happens, a task abandoned at detach, a
 * completion callback that raises), and the three detach modes with the
 * words each report uses. */
#include <math.h>
#include "host_util.h"

/* The report function: prints the first line of each report. */
static void report(void *ud, const char *text) {
  printf("%s report: %.*s\n", (const char *)ud, (int)strcspn(text, "\n"), text);
}

static void done(lua_State *L, curio_kernel *k, int task, void *ud) {
  int top = lua_gettop(L);
  if (curio_result(L, k, task) != LUA_OK)
    printf("callback: task failed: %s\n", lua_tostring(L, -1));
  lua_settop(L, top);
  if (ud != NULL) luaL_error(L, "%s", (const char *)ud);
}

static void spawn(lua_State *L, curio_kernel *k, const char *code, curio_done_fn fn, void *ud) {
  host_push_chunk(L, code);
  if (curio_spawn(L, k, 0, fn, ud) != LUA_OK) printf("spawn failed: %s\n", lua_tostring(L, -1));
  lua_pop(L, 1);
}

static const char *cleanup_ok =
  "local curio = require 'curio'\n"
  "return function()\n"
  "  local ok = pcall(curio.sleep, 10)\n"
  "  curio.sleep(0.001)\n"
  "  print('quick cleanup done, sleep ok: ' .. tostring(ok))\n"
  "end";
static const char *cleanup_stuck =
  "local curio = require 'curio'\n"
  "return function()\n"
  "  curio.current_task().name = 'stuck'\n"
  "  pcall(curio.sleep, 10)\n"
  "  curio.sleep(10)\n"
  "end";

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate();
  curio_kernel *k;
  size_t n;
  luaL_openlibs(L);

  printf("-- options out of range\n");
  struct curio_options bad = CURIO_OPTIONS_INIT;
  bad.threads = 5000;
  host_show(L, curio_attach_opts(L, loop, &bad, &k), "threads 5000");
  bad = (struct curio_options)CURIO_OPTIONS_INIT;
  bad.processes = -2;
  host_show(L, curio_attach_opts(L, loop, &bad, &k), "processes -2");
  bad = (struct curio_options)CURIO_OPTIONS_INIT;
  bad.shutdown_timeout = NAN;
  host_show(L, curio_attach_opts(L, loop, &bad, &k), "shutdown_timeout NaN");
  bad = (struct curio_options)CURIO_OPTIONS_INIT;
  bad.debug = 7;
  host_show(L, curio_attach_opts(L, loop, &bad, &k), "debug 7");
  bad = (struct curio_options)CURIO_OPTIONS_INIT;
  bad.longblock = -1;
  host_show(L, curio_attach_opts(L, loop, &bad, &k), "longblock -1");

  printf("-- reports and CURIO_DETACH_CANCEL\n");
  struct curio_options opts = CURIO_OPTIONS_INIT;
  opts.shutdown_timeout = 0.5; /* (valgrind is slow: a quick cleanup takes a while there) */
  opts.report = report;
  opts.report_ud = "host";
  opts.longblock = 0.05;
  host_show(L, curio_attach_opts(L, loop, &opts, &k), "attach");
  spawn(L, k, "return function() error('nobody joins me', 0) end", NULL, NULL);
  spawn(L, k, "return function() local t = os.clock() while os.clock() - t < 0.2 do end end", NULL, NULL);
  spawn(L, k, "return function() error('my callback gets me', 0) end", done, NULL);
  spawn(L, k, "return function() return 1 end", done, "the callback's own error");
  ev_run(loop, 0);
  printf("loop ran\n");
  opts.longblock = 0;
  spawn(L, k, cleanup_ok, NULL, NULL);
  spawn(L, k, cleanup_stuck, NULL, NULL);
  ev_run(loop, EVRUN_NOWAIT);
  host_show(L, curio_detach(L, k, CURIO_DETACH_CANCEL), "detach (cancel)");
  curio_tasks(L, k, &n);
  printf("tasks right after: %zu\n", n);
  host_push_chunk(L, "return print");
  host_show(L, curio_spawn(L, k, 0, NULL, NULL), "spawn while detaching");
  ev_run(loop, 0); /* the cleanups run in our loop; it ends when the kernel is gone */
  host_show(L, curio_tasks(L, k, &n), "tasks after the loop");
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach again");
  curio_release(k);

  printf("-- CURIO_DETACH_ABANDON\n");
  host_show(L, curio_attach_opts(L, loop, &opts, &k), "attach");
  spawn(L, k, cleanup_ok, NULL, NULL);
  ev_run(loop, EVRUN_NOWAIT);
  host_show(L, curio_detach(L, k, CURIO_DETACH_ABANDON), "detach (abandon)");
  curio_release(k);

  printf("-- CURIO_DETACH_WAIT\n");
  host_show(L, curio_attach_opts(L, loop, &opts, &k), "attach");
  spawn(L, k, cleanup_stuck, NULL, NULL);
  spawn(L, k, cleanup_ok, NULL, NULL); /* (newest: cancelled first) */
  ev_run(loop, EVRUN_NOWAIT);
  host_show(L, curio_detach(L, k, CURIO_DETACH_WAIT), "detach (wait)");
  curio_release(k);
  lua_close(L);
  ev_loop_destroy(loop);
  return 0;
}
