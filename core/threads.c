/* core/threads.c: a kernel's pool of worker threads and run_in_thread.
 *
 * Rules (libuv's threadpool is the model):
 * 1. A pool belongs to one kernel (a kernel hook) and is made on first use;
 *    it starts threads on demand, up to Kernel{threads=}, and keeps them
 *    and their Lua states (standard libraries, the caller's package paths)
 *    between calls. It is stopped and its threads joined when the kernel
 *    is freed, after its tasks.
 * 2. A job carries bytes (the codec, codec.c) both ways: the function and
 *    its arguments in, the results or the error out. A worker thread never
 *    touches the kernel's Lua state or its tasks.
 * 3. A finished job is posted to its kernel's inbox (inbox.c), which
 *    fires it in the kernel's thread: it wakes its task, or is dropped if
 *    the task left. The inbox keeps the loop alive while jobs are out.
 * 4. The waiting task's wait record points at its job (job_wait).
 *    Cancelled before a thread took it, the job is dropped unrun; while it
 *    runs, it is orphaned: the thread finishes it and the kernel frees it.
 *    A woken task owns its job: its continuation decodes and frees it.
 * 5. An error crosses as curio.errors makes it portable in the worker and
 *    restores it in the task (the same functions serve worker processes):
 *    a table keeps its fields, a curio error its class, a string comes as
 *    a CurioError carrying it and the worker's traceback. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <lualib.h>
#include "threads.h"
#include "codec.h"
#include "kernel.h"
#include "task.h"
#include "trap.h"
#include "wait.h"
#include "errors.h"
#include "inbox.h"

enum job_state { JOB_PENDING, JOB_RUNNING, JOB_DONE, JOB_DELIVERED };

/* Threads a pool may start when Kernel{threads=} is not given (rule 1). */
#define THREADS_DEFAULT 64

struct pool;

struct job {
  struct list node;      /* in pool->pending while no thread took it */
  struct list out;       /* in pool->out until it is fired or dropped */
  struct inbox_item done; /* posted to the kernel's inbox when finished */
  struct pool *pool;
  struct task *task;     /* the waiting task; NULL once it left (rule 4) */
  int state;             /* enum job_state, under the pool's lock */
  char *data;            /* encoded fn and args, then results or error */
  size_t len;
  int failed;            /* data holds the error */
};

struct pool {
  struct kernel_hook hook; /* first: the kernel finds us by it */
  struct kernel *k;
  pthread_mutex_t lock;
  pthread_cond_t work;
  struct list pending;   /* under the lock */
  struct list out;       /* every job not yet fired or dropped (kernel thread) */
  int nthreads, idle, max, stopping;
  pthread_t *threads;
  struct inbox *inbox;
  char *path, *cpath;    /* package.path and cpath for the workers */
};

static void job_free(struct job *j) {
  free(j->data);
  free(j);
}

/* Frees a job whose bytes nobody will decode (dropped unrun, or its task
 * left): the shared objects in them are released first. Kernel thread. */
static void job_drop(struct job *j) {
  list_remove(&j->out);
  inbox_hold(j->pool->inbox, -1);
  if (j->data != NULL) codec_release(j->data, j->len);
  job_free(j);
}

/* ---- the worker side ---- */

/* The message handler of a job's function: the error and the worker's
 * traceback, as a pair {err, traceback} (a handler returns one value). */
static int traceback_handler(lua_State *L) {
  lua_createtable(L, 2, 0);
  lua_insert(L, 1);
  lua_rawseti(L, 1, 1);
  luaL_traceback(L, L, NULL, 1);
  lua_rawseti(L, 1, 2);
  return 1;
}

/* Protected: (err, traceback) -> the portable form of err (rule 5). */
static int portable_error(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "curio.errors");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "portable");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_call(L, 2, 1);
  return 1;
}

/* Replaces the pair at the top (traceback_handler's) by what crosses for
 * the error: its portable form, or without curio.errors in this state its
 * text with the traceback (rule 5). */
static void push_failure(lua_State *L) {
  int pair = lua_gettop(L);
  if (!lua_istable(L, pair)) return; /* (an error in the handler: a string) */
  lua_pushcfunction(L, portable_error);
  lua_rawgeti(L, pair, 1);
  lua_rawgeti(L, pair, 2);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    lua_pop(L, 1);
    lua_rawgeti(L, pair, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      lua_rawgeti(L, pair, 2);
      lua_pushfstring(L, "%s\n%s", lua_tostring(L, -2), lua_tostring(L, -1));
      lua_replace(L, -3);
      lua_pop(L, 1);
    }
  }
  lua_replace(L, pair);
}

/* Protected, in a worker's state: runs the job (arg 1, light) and leaves
 * its encoded outcome on the stack as a string. */
static int run_job(lua_State *L) {
  struct job *j = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback_handler);
  int n = codec_decode(L, j->data, j->len, CODEC_FUNCTIONS);
  if (n < 1 || !lua_isfunction(L, 2)) return luaL_error(L, "run_in_thread: no function");
  if (lua_pcall(L, n - 1, LUA_MULTRET, 1) != LUA_OK) {
    j->failed = 1;
    push_failure(L);
    codec_encode(L, lua_gettop(L), 1, "error");
    return 1;
  }
  codec_encode(L, 2, lua_gettop(L) - 1, "run_in_thread: result");
  return 1;
}

static int encode_message(lua_State *L) {
  codec_encode(L, 1, 1, "error");
  return 1;
}

/* Runs j in L; its data becomes the encoded outcome: results, or the error
 * (a failure to decode, encode or allocate sends its message instead), or
 * NULL when even that failed. */
static void worker_run(lua_State *L, struct job *j) {
  lua_settop(L, 0);
  lua_pushcfunction(L, run_job);
  lua_pushlightuserdata(L, j);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    j->failed = 1;
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      lua_pushliteral(L, "run_in_thread: error in the worker");
    }
    lua_pushcfunction(L, encode_message);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) lua_pushnil(L);
  }
  size_t len = 0;
  const char *out = lua_tolstring(L, -1, &len);
  char *copy = out != NULL ? malloc(len) : NULL;
  if (copy != NULL) memcpy(copy, out, len);
  free(j->data);
  j->data = copy;
  j->len = copy != NULL ? len : 0;
  lua_settop(L, 0);
}

static lua_State *worker_state(struct pool *p) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  if (p->path) { lua_pushstring(L, p->path); lua_setfield(L, -2, "path"); }
  if (p->cpath) { lua_pushstring(L, p->cpath); lua_setfield(L, -2, "cpath"); }
  lua_pop(L, 1);
  return L;
}

static void *worker_main(void *arg) {
  struct pool *p = arg;
  lua_State *L = worker_state(p);
  pthread_mutex_lock(&p->lock);
  for (;;) {
    while (list_empty(&p->pending) && !p->stopping) {
      p->idle++;
      pthread_cond_wait(&p->work, &p->lock);
      p->idle--;
    }
    if (list_empty(&p->pending)) break; /* stopping */
    struct list *node = list_first(&p->pending);
    list_remove(node);
    struct job *j = LIST_ENTRY(node, struct job, node);
    j->state = JOB_RUNNING;
    pthread_mutex_unlock(&p->lock);
    if (L != NULL) worker_run(L, j);
    else { free(j->data); j->data = NULL; j->len = 0; j->failed = 1; }
    pthread_mutex_lock(&p->lock);
    j->state = JOB_DONE;
    pthread_mutex_unlock(&p->lock);
    inbox_post(p->inbox, &j->done);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  if (L != NULL) lua_close(L);
  return NULL;
}

/* ---- the kernel side ---- */

/* A finished job, in the kernel's thread (rule 3). */
static void job_fire(struct inbox_item *n) {
  struct job *j = (struct job *)((char *)n - offsetof(struct job, done));
  struct pool *p = j->pool;
  pthread_mutex_lock(&p->lock);
  struct task *t = j->task;
  if (t != NULL) j->state = JOB_DELIVERED;
  pthread_mutex_unlock(&p->lock);
  if (t == NULL) { job_drop(j); return; } /* orphaned (rule 4) */
  list_remove(&j->out);
  inbox_hold(p->inbox, -1);
  trap_wake(t, WAKE_OK);
}

/* The undo of a wait for a job: the task leaves its job (rule 4). */
static void job_undo(struct task *t) {
  struct job *j = t->wait_obj;
  struct pool *p = j->pool;
  pthread_mutex_lock(&p->lock);
  if (j->state == JOB_DELIVERED) { /* woken with it: the task owns it */
    pthread_mutex_unlock(&p->lock);
    return;
  }
  int unrun = j->state == JOB_PENDING;
  if (unrun) list_remove(&j->node);
  j->task = NULL;
  pthread_mutex_unlock(&p->lock);
  if (unrun) job_drop(j); /* (else it fires later, and is dropped then) */
}

static const struct wait_kind job_wait = {"run_in_thread", job_undo};

/* Kernel hook: stops the threads, joins them, drops the jobs left (their
 * tasks were abandoned with the kernel). Closes before the inbox (added
 * after it). */
static void pool_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct pool *p = (struct pool *)hook;
  (void)L; (void)k;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  for (struct list *n; (n = list_first(&p->pending)) != NULL;) list_remove(n);
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  for (struct list *n; (n = list_first(&p->out)) != NULL;) {
    struct job *j = LIST_ENTRY(n, struct job, out);
    inbox_take_back(p->inbox, &j->done);
    job_drop(j);
  }
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->lock);
  free(p->threads);
  free(p->path);
  free(p->cpath);
  free(p);
}

static char *package_field(lua_State *L, const char *name) {
  char *copy = NULL;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1) && lua_getfield(L, -1, name) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    copy = malloc(len + 1);
    if (copy) memcpy(copy, s, len + 1);
  }
  lua_settop(L, lua_gettop(L) - (lua_istable(L, -1) ? 1 : 2));
  return copy;
}

/* The pool of k, made on first use (rule 1). */
static struct pool *pool_get(lua_State *L, struct kernel *k) {
  struct kernel_hook *hook = kernel_find_hook(k, pool_close);
  if (hook != NULL) return (struct pool *)hook;
  struct inbox *inbox = inbox_get(L, k); /* (before: it closes after the pool) */
  struct pool *p = calloc(1, sizeof *p);
  int size = kernel_option(L, k, "threads", THREADS_DEFAULT); /* Kernel{threads=} */
  pthread_t *threads = calloc((size_t)size, sizeof *threads);
  if (p == NULL || threads == NULL) {
    free(p); free(threads);
    luaL_error(L, "run_in_thread: not enough memory");
  }
  p->k = k;
  p->max = size;
  p->threads = threads;
  p->inbox = inbox;
  list_init(&p->pending);
  list_init(&p->out);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  p->path = package_field(L, "path");
  p->cpath = package_field(L, "cpath");
  p->hook.close = pool_close;
  kernel_add_hook(k, &p->hook);
  return p;
}

static int run_k(lua_State *L, int status, lua_KContext ctx) {
  struct task *t = trap_resumed(L);
  struct job *j = lua_touserdata(L, 1);
  (void)status;
  trap_result(L, t, (int)ctx); /* a cancellation: the undo took care of j */
  lua_settop(L, 0);
  int failed = j->failed;
  if (j->data == NULL) {
    job_free(j);
    return errors_raise(L, "CurioError", "run_in_thread: the worker thread failed (no memory)");
  }
  lua_pushlstring(L, j->data, j->len);
  job_free(j);
  size_t len;
  const char *data = lua_tolstring(L, 1, &len);
  int n = codec_decode(L, data, len, CODEC_FUNCTIONS);
  if (!failed) return n;
  /* the thread's error, restored by curio.errors when it is loaded (rule 5) */
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "curio.errors") == LUA_TTABLE && lua_getfield(L, -1, "restore") == LUA_TFUNCTION) {
    lua_pushvalue(L, 2);
    lua_call(L, 1, 1);
    return lua_error(L);
  }
  lua_settop(L, 2);
  return lua_error(L);
}

/* curio.run_in_thread(fn, ...) -> fn's results, run in a worker thread. */
static int l_run_in_thread(lua_State *L) {
  errors_checkfunction(L, 1, "run_in_thread");
  struct task *t = trap_enter(L, "run_in_thread");
  struct pool *p = pool_get(L, t->k);
  codec_encode(L, 1, lua_gettop(L), "run_in_thread: argument");
  size_t len;
  const char *data = lua_tolstring(L, -1, &len);
  struct job *j = calloc(1, sizeof *j);
  char *copy = malloc(len);
  if (j == NULL || copy == NULL) {
    free(j); free(copy);
    return luaL_error(L, "run_in_thread: not enough memory");
  }
  memcpy(copy, data, len);
  j->data = copy;
  j->len = len;
  j->pool = p;
  j->task = t;
  j->state = JOB_PENDING;
  j->done.fire = job_fire;
  pthread_mutex_lock(&p->lock);
  list_insert_tail(&p->pending, &j->node);
  int start = p->idle == 0 && p->nthreads < p->max;
  if (start && pthread_create(&p->threads[p->nthreads], NULL, worker_main, p) == 0) p->nthreads++;
  int none = p->nthreads == 0;
  if (none) list_remove(&j->node);
  else pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->lock);
  if (none) {
    job_free(j);
    return errors_raise(L, "CurioError", "run_in_thread: cannot start a worker thread");
  }
  list_insert_tail(&p->out, &j->out);
  inbox_hold(p->inbox, 1);
  lua_settop(L, 0);
  lua_pushlightuserdata(L, j);
  t->wait_obj = j;
  return trap_suspend(L, t, &job_wait, run_k);
}

const luaL_Reg threads_functions[] = {
  {"run_in_thread", l_run_in_thread},
  {NULL, NULL}
};
