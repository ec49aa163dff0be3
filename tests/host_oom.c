/* tests/host_oom.c: out of memory at every point of a host's life. For
 * each N of a range, a state whose allocator refuses its Nth growth
 * (and its retry; later ones succeed) attaches, runs a script that spawns tasks
 * (with arguments, and in a burst that starts them lazily, so that a task
 * may fail to start inside the loop), spawns a task with a completion
 * callback, detaches and releases. Each step ends in a status; the
 * program never aborts, and valgrind and ASan see no leak and no bad
 * access (spec/embed_spec.lua).
 *
 *   host_oom FIRST LAST STEP    (N from FIRST to LAST by STEP)
 *   host_oom                    (prints how many growths a whole run makes)
 * Prints, per outcome, how many N ended so, then "survived N runs". */
#include <stdlib.h>
#include "host_util.h"

struct limit {
  long count, fail_at;
};

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct limit *lim = ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  /* The Nth growth and the next fail: Lua retries a failed one after an
   * emergency collection, and gives up on the second failure. (Lua
   * requires shrinking never to fail.) */
  if (ptr == NULL || nsize > osize) {
    ++lim->count;
    if (lim->count == lim->fail_at || lim->count == lim->fail_at + 1) return NULL;
  }
  return realloc(ptr, nsize);
}

static int openlibs(lua_State *L) {
  luaL_openlibs(L);
  return 0;
}

static const char *script =
  "local curio = require 'curio'\n"
  "return function(n)\n"
  "  local tasks = {}\n"
  "  for i = 1, n do tasks[#tasks + 1] = curio.spawn(function(x) curio.sleep(0) return x end, i) end\n"
  "  for _ = 1, 80 do tasks[#tasks + 1] = curio.spawn(function() curio.sleep(0) end) end\n"
  "  local sum = 0\n"
  "  for _, t in ipairs(tasks) do local ok, v = pcall(t.join, t) if ok then sum = sum + (v or 0) end end\n"
  "  return sum\n"
  "end\n";

static int callbacks;
static void done(lua_State *L, curio_kernel *k, int task, void *ud) {
  int top = lua_gettop(L);
  (void)ud;
  curio_result(L, k, task);
  lua_settop(L, top);
  callbacks++;
}

enum { OUT_NO_STATE, OUT_NO_LIBS, OUT_ATTACH, OUT_SCRIPT, OUT_SPAWN, OUT_TASK_FAILED,
       OUT_RAN, OUT_DETACH, OUT_COUNT };
static const char *const out_names[] = {"no state", "no libraries", "attach failed",
  "script failed", "spawn failed", "task failed", "ran", "detach failed"};

static long last_count, attach_count; /* growths a run made, and its attach */

static int run(long n) {
  struct limit lim = {0, n};
  lua_State *L = lua_newstate(limited_alloc, &lim);
  if (L == NULL) return OUT_NO_STATE;
  lua_pushcfunction(L, openlibs);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    return OUT_NO_LIBS;
  }
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  curio_kernel *k;
  int out = OUT_RAN;
  int status = curio_attach(L, loop, &k);
  attach_count = lim.count;
  if (status != LUA_OK) {
    out = OUT_ATTACH;
  } else if (luaL_loadstring(L, script) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    out = OUT_SCRIPT;
  } else {
    lua_pushinteger(L, 5);
    if (curio_spawn(L, k, 1, done, NULL) != LUA_OK) {
      out = OUT_SPAWN;
    } else {
      ev_run(loop, 0);
      if (curio_result(L, k, -1) != LUA_OK) out = OUT_TASK_FAILED;
    }
    lua_settop(L, 0);
    if (curio_detach(L, k, CURIO_DETACH_WAIT) != LUA_OK) {
      out = OUT_DETACH;
      lua_settop(L, 0);
      curio_detach(L, k, CURIO_DETACH_ABANDON); /* (the one failure is past: this frees) */
    }
  }
  if (out != OUT_ATTACH) curio_release(k);
  last_count = lim.count;
  lua_close(L);
  ev_loop_destroy(loop);
  return out;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    run(-1);
    printf("growths: %ld after attach, %ld in all\n", attach_count, last_count);
    return 0;
  }
  long first = argc > 1 ? atol(argv[1]) : 1, last = argc > 2 ? atol(argv[2]) : 2000;
  long step = argc > 3 ? atol(argv[3]) : 1, runs = 0;
  int counts[OUT_COUNT] = {0};
  for (long n = first; n <= last; n += step) {
    counts[run(n)]++;
    runs++;
  }
  for (int i = 0; i < OUT_COUNT; i++)
    if (counts[i] > 0) printf("%s: %d\n", out_names[i], counts[i]);
  printf("callbacks: %s\n", callbacks > 0 ? "some" : "none");
  printf("survived %ld runs\n", runs);
  return 0;
}
