/* tests/host_detach_in_task.c: curio_detach and curio_release called from
 * inside one of the kernel's tasks (a C function the task calls) and from
 * a completion callback are refused with an error status; the kernel goes
 * on and detaches normally after. */
#include "host_util.h"

static curio_kernel *kernel;

/* detach(): what a task calls; returns the status and message it got. */
static int l_detach(lua_State *L) {
  int status = curio_detach(L, kernel, CURIO_DETACH_WAIT);
  lua_pushinteger(L, status);
  lua_insert(L, -2);
  printf("release from a task: status %d\n", curio_release(kernel));
  return 2;
}

static void done(lua_State *L, curio_kernel *k, int task, void *ud) {
  (void)task; (void)ud;
  host_show(L, curio_detach(L, k, CURIO_DETACH_ABANDON), "detach from a completion callback");
  printf("release from a completion callback: status %d\n", curio_release(k));
}

int main(void) {
  struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  host_show(L, curio_attach(L, loop, &kernel), "attach");
  lua_pushcfunction(L, l_detach);
  lua_setglobal(L, "detach");
  host_push_chunk(L, "local curio = require 'curio'\n"
                     "return function()\n"
                     "  curio.sleep(0)\n"
                     "  local status, err = detach()\n"
                     "  print('detach from a task: status ' .. status .. ': ' .. err.message)\n"
                     "  curio.sleep(0.001)\n"
                     "  return 'task went on'\n"
                     "end");
  host_show(L, curio_spawn(L, kernel, 0, done, NULL), "spawn");
  int top = lua_gettop(L);
  ev_run(loop, 0);
  host_show(L, curio_result(L, kernel, top), "result");
  printf("%s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
  host_show(L, curio_detach(L, kernel, CURIO_DETACH_WAIT), "detach");
  host_show(L, curio_release(kernel), "release");
  lua_close(L);
  ev_loop_destroy(loop);
  return 0;
}
