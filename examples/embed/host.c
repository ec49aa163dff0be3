/* examples/embed/host.c: a C program that owns its libev loop and hosts
 * curio on it (curio.h). Its own watchers: a timer that ticks TICKS times
 * and a TCP client (an ev_io) of the echo server that the Lua script runs.
 * At each tick it spawns the script's `work(i)` with a completion callback
 * and sends "ping i"; it prints every result and error the callbacks get
 * and every echo, then detaches, which cancels the server and the sleeper.
 *
 *   cc host.c $(pkg-config --cflags --libs curio) -o embed_host
 *   ./embed_host examples/embed/script.lua
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <ev.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <curio.h>

#define TICKS 10

struct host {
  struct ev_loop *loop;
  lua_State *L;
  curio_kernel *k;
  ev_timer tick;
  ev_io client;            /* our connection to the script's echo server */
  int ticks, works_done, echoes, naps, naps_at_last_tick;
  int script_ref;          /* the table the script returned */
  char line[256];
  size_t line_len;
};

/* ---- what the script calls ---- */

static struct host *host_of(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

static void client_cb(struct ev_loop *loop, ev_io *w, int revents);

/* host.listening(port): the echo server listens; connect to it. */
static int l_listening(lua_State *L) {
  struct host *h = host_of(L);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_port = htons((unsigned short)luaL_checkinteger(L, 1));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
    return luaL_error(L, "host: cannot connect: %s", strerror(errno));
  ev_io_init(&h->client, client_cb, fd, EV_READ);
  ev_io_start(h->loop, &h->client);
  printf("host connected to the script's echo server\n");
  return 0;
}

/* host.nap(): the sleeper woke once. */
static int l_nap(lua_State *L) {
  host_of(L)->naps++;
  return 0;
}

/* ---- ending ---- */

static void maybe_done(struct host *h) {
  if (h->ticks == TICKS && h->works_done == TICKS && h->echoes == TICKS)
    ev_break(h->loop, EVBREAK_ALL);
}

/* ---- the completion callbacks ---- */

/* Prints the task's results, or the first line of its error. */
static void print_outcome(lua_State *L, curio_kernel *k, int task, const char *what) {
  int top = lua_gettop(L);
  if (curio_result(L, k, task) == LUA_OK) {
    printf("%s: returned", what);
    for (int i = top + 1; i <= lua_gettop(L); i++) {
      printf(" %s", luaL_tolstring(L, i, NULL));
      lua_pop(L, 1);
    }
    printf("\n");
  } else {
    const char *msg = luaL_tolstring(L, -1, NULL);
    printf("%s: failed: %.*s\n", what, (int)strcspn(msg, "\n"), msg);
  }
  lua_settop(L, top);
}

static void work_done(lua_State *L, curio_kernel *k, int task, void *ud) {
  struct host *h = ud;
  print_outcome(L, k, task, "work");
  h->works_done++;
  maybe_done(h);
}

static void daemon_done(lua_State *L, curio_kernel *k, int task, void *ud) {
  print_outcome(L, k, task, ud);
}

/* ---- our own watchers ---- */

static void client_cb(struct ev_loop *loop, ev_io *w, int revents) {
  struct host *h = (struct host *)((char *)w - offsetof(struct host, client));
  char buf[256];
  (void)loop; (void)revents;
  ssize_t n = read(w->fd, buf, sizeof buf);
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (h->line_len < sizeof h->line - 1) h->line[h->line_len++] = buf[i];
      continue;
    }
    h->line[h->line_len] = '\0';
    printf("echo: %s\n", h->line);
    h->line_len = 0;
    h->echoes++;
  }
  maybe_done(h);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) {
  struct host *h = (struct host *)((char *)w - offsetof(struct host, tick));
  lua_State *L = h->L;
  (void)revents;
  h->ticks++;
  if (h->ticks == TICKS) {
    ev_timer_stop(loop, w);
    h->naps_at_last_tick = h->naps;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->script_ref);
  lua_getfield(L, -1, "work");
  lua_pushinteger(L, h->ticks);
  if (curio_spawn(L, h->k, 1, work_done, h) != LUA_OK)
    printf("tick %d: spawn failed: %s\n", h->ticks, lua_tostring(L, -1));
  lua_pop(L, 2); /* the Task (or the error) and the script's table */
  if (ev_is_active(&h->client)) {
    char ping[32];
    int len = snprintf(ping, sizeof ping, "ping %d\n", h->ticks);
    if (write(h->client.fd, ping, (size_t)len) != len) printf("tick %d: send failed\n", h->ticks);
  }
}

/* ---- main ---- */

static int fail(lua_State *L, const char *what) {
  fprintf(stderr, "embed_host: %s: %s\n", what, lua_tostring(L, -1));
  return 1;
}

int main(int argc, char **argv) {
  struct host h = {0};
  const char *script = argc > 1 ? argv[1] : "examples/embed/script.lua";
  struct curio_options opts = CURIO_OPTIONS_INIT;
  opts.shutdown_timeout = 1;
  h.loop = ev_loop_new(EVFLAG_AUTO);
  h.L = luaL_newstate();
  lua_State *L = h.L;
  luaL_openlibs(L);
  if (curio_attach_opts(L, h.loop, &opts, &h.k) != LUA_OK) return fail(L, "attach");

  /* the script, given our functions; it returns its table */
  if (luaL_loadfile(L, script) != LUA_OK) return fail(L, "load");
  const luaL_Reg fns[] = {{"listening", l_listening}, {"nap", l_nap}, {NULL, NULL}};
  lua_newtable(L);
  lua_pushlightuserdata(L, &h);
  luaL_setfuncs(L, fns, 1);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) return fail(L, "script");
  h.script_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  static const char *const daemons[] = {"serve", "sleeper"};
  for (int i = 0; i < 2; i++) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, h.script_ref);
    lua_getfield(L, -1, daemons[i]);
    if (curio_spawn(L, h.k, 0, daemon_done, (void *)daemons[i]) != LUA_OK) return fail(L, "spawn");
    lua_pop(L, 2);
  }
  ev_timer_init(&h.tick, tick_cb, 0.01, 0.01);
  ev_timer_start(h.loop, &h.tick);

  ev_run(h.loop, 0); /* the program's loop: our watchers and the tasks */

  size_t left;
  curio_tasks(L, h.k, &left);
  printf("ticks %d, works done %d, echoes %d, sleeper naps before the last tick: %s\n",
         h.ticks, h.works_done, h.echoes, h.naps_at_last_tick > 0 ? "some" : "none");
  printf("tasks left before detach: %zu\n", left);
  ev_io_stop(h.loop, &h.client);
  close(h.client.fd);
  if (curio_detach(L, h.k, CURIO_DETACH_WAIT) != LUA_OK) return fail(L, "detach");
  printf("detached\n");
  curio_release(h.k);
  luaL_unref(L, LUA_REGISTRYINDEX, h.script_ref);
  lua_close(L);
  ev_loop_destroy(h.loop);
  return 0;
}
