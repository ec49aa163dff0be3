/* tests/two_kernels.c: two curio kernels in two OS threads at once, each in
 * its own Lua state (the kernel keeps no global state). Prints one line per
 * thread; spec/kernel_spec.lua runs it and checks them. */
#include <pthread.h>
#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static const char *script =
  "local curio = require 'curio'\n"
  "return curio.run(function()\n"
  "  local tasks, total = {}, 0\n"
  "  for i = 1, 200 do\n"
  "    tasks[i] = curio.spawn(function()\n"
  "      for _ = 1, 50 do curio.sleep(0) end\n"
  "      curio.sleep(0.001 * (i % 5))\n"
  "      return i\n"
  "    end)\n"
  "  end\n"
  "  for i = 1, 200 do total = total + tasks[i]:join() end\n"
  "  local _, flag = curio.ignore_after(0.01, curio.sleep, 1)\n"
  "  return total, flag == curio.TIMEOUT\n"
  "end)\n";

struct job {
  int id;
  char line[256];
};

static void *run(void *arg) {
  struct job *job = arg;
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  if (luaL_dostring(L, script) != LUA_OK) {
    snprintf(job->line, sizeof job->line, "thread %d: error: %s", job->id, lua_tostring(L, -1));
  } else {
    snprintf(job->line, sizeof job->line, "thread %d: %lld %s", job->id,
             (long long)lua_tointeger(L, -2), lua_toboolean(L, -1) ? "timeout" : "no-timeout");
  }
  lua_close(L);
  return NULL;
}

int main(void) {
  pthread_t threads[2];
  struct job jobs[2] = {{1, ""}, {2, ""}};
  for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, run, &jobs[i]);
  for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < 2; i++) puts(jobs[i].line);
  return 0;
}
