/* tests/host_threads.c: two hosts in two OS threads at once, each with its
 * own libev loop, Lua state and kernel (curio.h keeps no global state): a
 * timer of the host spawns a task at each tick (some use a worker thread),
 * completion callbacks add up the results, then each detaches. Run under
 * ThreadSanitizer by `make tsan` (spec/embed_spec.lua). */
#include <pthread.h>
#include "host_util.h"

#define TICKS 20

struct host {
  int id;
  struct ev_loop *loop;
  lua_State *L;
  curio_kernel *k;
  ev_timer tick;
  int ticks, done, fn_ref;
  long sum;
  char line[200];
};

static void done(lua_State *L, curio_kernel *k, int task, void *ud) {
  struct host *h = ud;
  int top = lua_gettop(L);
  if (curio_result(L, k, task) == LUA_OK) h->sum += (long)lua_tointeger(L, top + 1);
  lua_settop(L, top);
  if (++h->done == TICKS) ev_break(h->loop, EVBREAK_ALL);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct host *h = (struct host *)((char *)w - offsetof(struct host, tick));
  (void)revents;
  if (++h->ticks == TICKS) ev_timer_stop(loop, w);
  lua_rawgeti(h->L, LUA_REGISTRYINDEX, h->fn_ref);
  lua_pushinteger(h->L, h->ticks);
  if (curio_spawn(h->L, h->k, 1, done, h) != LUA_OK) h->done = -1000;
  lua_pop(h->L, 1);
}

static void *run(void *arg) {
  struct host *h = arg;
  h->loop = ev_loop_new(EVFLAG_AUTO);
  h->L = luaL_newstate();
  luaL_openlibs(h->L);
  struct curio_options opts = CURIO_OPTIONS_INIT;
  opts.threads = 2;
  if (curio_attach_opts(h->L, h->loop, &opts, &h->k) != LUA_OK) {
    snprintf(h->line, sizeof h->line, "host %d: attach: %s", h->id, lua_tostring(h->L, -1));
    return NULL;
  }
  host_push_chunk(h->L, "local curio = require 'curio'\n"
                        "return function(i)\n"
                        "  for _ = 1, 10 do curio.sleep(0) end\n"
                        "  if i % 4 == 0 then -- (the thread's state has curio too: libcurio carries it)\n"
                        "    return curio.run_in_thread(function(x) return require('curio').run(function() return x * 2 end) end, i) / 2\n"
                        "  end\n"
                        "  curio.sleep(0.001)\n"
                        "  return i\n"
                        "end");
  h->fn_ref = luaL_ref(h->L, LUA_REGISTRYINDEX);
  ev_timer_init(&h->tick, tick_cb, 0.002, 0.002);
  ev_timer_start(h->loop, &h->tick);
  ev_run(h->loop, 0);
  int status = curio_detach(h->L, h->k, CURIO_DETACH_WAIT);
  snprintf(h->line, sizeof h->line, "host %d: %d tasks done, sum %ld, detach %s", h->id, h->done,
           h->sum, status == LUA_OK ? "ok" : "failed");
  curio_release(h->k);
  lua_close(h->L);
  ev_loop_destroy(h->loop);
  return NULL;
}

int main(void) {
  pthread_t threads[2];
  struct host hosts[2] = {{.id = 1}, {.id = 2}};
  for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, run, &hosts[i]);
  for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < 2; i++) puts(hosts[i].line);
  return 0;
}
