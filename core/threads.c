/* core/threads.c: a kernel's pool of worker threads and run_in_thread.
 *
 * Rules (libuv's threadpool is the model):
 * 1. A pool belongs to one kernel (a kernel hook) and is made on first use;
 *    it starts threads on demand, up to Kernel{threads=}: one whenever the
 *    jobs waiting for a thread outnumber its idle threads (a job may block
 *    its thread for ever, so none waits while the pool may grow). It keeps
 *    them and their Lua states (standard libraries, the caller's package
 *    paths) between calls.
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
 *    a CurioError carrying it and the worker's traceback; a field that
 *    cannot cross (codec_crosses says) comes as a string describing it.
 * 6. Closing (the kernel's hook, after its tasks) is bounded: jobs no
 *    thread took are dropped, every running thread is told to stop (one
 *    blocked in a Universal object's wait is woken and raises there:
 *    threads_block_begin), and the threads get shutdown_timeout seconds to
 *    end. One still busy then is reported on stderr and let go: it owns its
 *    job from then on (finishes it, drops the result, closes its Lua state)
 *    and never touches the kernel again (the pool is marked closed under
 *    its lock, which it takes to post). The pool itself is shared by
 *    reference counting (the kernel, each live thread): the last to leave
 *    frees it. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
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
  char what[96];         /* the function, for the report of rule 6 */
};

/* A worker thread's record, in its pool; its Lua state's registry points
 * to it (threads_worker). */
struct worker {
  struct pool *pool;
  pthread_t id;
  struct job *job;       /* the job it runs, under the pool's lock */
  int exited;            /* under the pool's lock */
  atomic_int stop;       /* rule 6: its kernel closed */
  pthread_mutex_t lock;  /* guards the two below */
  pthread_mutex_t *blocked_lock; /* the wait it is blocked in, if any */
  pthread_cond_t *blocked_cond;
};

struct pool {
  struct kernel_hook hook; /* first: the kernel finds us by it */
  struct kernel *k;
  pthread_mutex_t lock;
  pthread_cond_t work;
  struct list pending;   /* under the lock */
  int npending;          /* jobs in pending (rule 1: one idle thread each) */
  struct list out;       /* every job not yet fired or dropped (kernel thread) */
  pthread_cond_t exited; /* a thread ended (rule 6) */
  int nthreads, live, idle, max, stopping;
  int closed;            /* the kernel left: post nothing (rule 6) */
  int refs;              /* the kernel's, each live thread's (rule 6) */
  struct worker *workers; /* max of them, nthreads started */
  struct inbox *inbox;
  char *path, *cpath;    /* package.path and cpath for the workers */
  const struct threads_state_open *open_state; /* or NULL (threads.h) */
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

static void pool_free(struct pool *p) {
  for (int i = 0; i < p->nthreads; i++) pthread_mutex_destroy(&p->workers[i].lock);
  pthread_cond_destroy(&p->exited);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->lock);
  free(p->workers);
  free(p->path);
  free(p->cpath);
  free(p);
}

/* Drops one reference to p (rule 6): under its lock; frees it when last. */
static void pool_unref_unlock(struct pool *p) {
  int last = --p->refs == 0;
  pthread_mutex_unlock(&p->lock);
  if (last) pool_free(p);
}

/* ---- blocking waits of worker threads (rule 6) ---- */

static const char worker_key = 0; /* the registry of a worker's state: its record */

struct worker *threads_worker(lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &worker_key);
  struct worker *w = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return w;
}

int threads_block_begin(struct worker *w, pthread_mutex_t *lock, pthread_cond_t *cond) {
  pthread_mutex_lock(&w->lock);
  w->blocked_lock = lock;
  w->blocked_cond = cond;
  pthread_mutex_unlock(&w->lock);
  return !threads_stopping(w);
}

int threads_stopping(struct worker *w) {
  return atomic_load(&w->stop);
}

void threads_block_end(struct worker *w) {
  pthread_mutex_lock(&w->lock);
  w->blocked_lock = NULL;
  w->blocked_cond = NULL;
  pthread_mutex_unlock(&w->lock);
}

/* The closing kernel's thread: tells w to stop and wakes its wait. */
static void worker_stop(struct worker *w) {
  pthread_mutex_lock(&w->lock);
  atomic_store(&w->stop, 1);
  if (w->blocked_lock != NULL) { /* (its object lives while it is blocked) */
    pthread_mutex_lock(w->blocked_lock);
    pthread_cond_broadcast(w->blocked_cond);
    pthread_mutex_unlock(w->blocked_lock);
  }
  pthread_mutex_unlock(&w->lock);
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
  lua_pushcfunction(L, codec_crosses); /* (what this codec can carry) */
  lua_call(L, 3, 1);
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
    codec_encode(L, lua_gettop(L), 1, "error", 0);
    return 1;
  }
  codec_encode(L, 2, lua_gettop(L) - 1, "run_in_thread: result", 0);
  return 1;
}

static int encode_message(lua_State *L) {
  codec_encode(L, 1, 1, "error", 0);
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

static lua_State *worker_state(struct worker *w) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  if (w->pool->path) { lua_pushstring(L, w->pool->path); lua_setfield(L, -2, "path"); }
  if (w->pool->cpath) { lua_pushstring(L, w->pool->cpath); lua_setfield(L, -2, "cpath"); }
  lua_pop(L, 1);
  if (w->pool->open_state != NULL) w->pool->open_state->open(L);
  lua_pushlightuserdata(L, w);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &worker_key);
  return L;
}

/* Frees a job whose result nobody will take, in the thread that let go of
 * it (rule 6): no kernel is involved any more. */
static void job_drop_let_go(struct job *j) {
  if (j->data != NULL) codec_release(j->data, j->len);
  job_free(j);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct pool *p = w->pool;
  lua_State *L = worker_state(w);
  pthread_mutex_lock(&p->lock);
  while (!p->stopping) {
    if (list_empty(&p->pending)) {
      p->idle++;
      pthread_cond_wait(&p->work, &p->lock);
      p->idle--;
      continue;
    }
    struct list *node = list_first(&p->pending);
    list_remove(node);
    p->npending--;
    struct job *j = LIST_ENTRY(node, struct job, node);
    j->state = JOB_RUNNING;
    w->job = j;
    pthread_mutex_unlock(&p->lock);
    if (L != NULL) worker_run(L, j);
    else { free(j->data); j->data = NULL; j->len = 0; j->failed = 1; }
    pthread_mutex_lock(&p->lock);
    w->job = NULL;
    if (p->closed) { /* let go (rule 6): ours to drop */
      pthread_mutex_unlock(&p->lock);
      job_drop_let_go(j);
      pthread_mutex_lock(&p->lock);
      continue;
    }
    j->state = JOB_DONE;
    inbox_post(p->inbox, &j->done); /* (under the pool's lock: rule 6) */
  }
  pthread_mutex_unlock(&p->lock);
  if (L != NULL) lua_close(L);
  pthread_mutex_lock(&p->lock);
  w->exited = 1;
  p->live--;
  pthread_cond_broadcast(&p->exited);
  pool_unref_unlock(p);
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
  if (unrun) { list_remove(&j->node); p->npending--; }
  j->task = NULL;
  pthread_mutex_unlock(&p->lock);
  if (unrun) job_drop(j); /* (else it fires later, and is dropped then) */
}

static const struct wait_kind job_wait = {"run_in_thread", job_undo};

/* A thread let go may outlive the Lua state that loaded this library (a
 * host closes it, a program ends): it keeps the library loaded (one more
 * reference, never dropped), so that the code it returns to stays mapped
 * until the process exits. */
static void pin_library(void) {
  Dl_info info;
  if (dladdr((void *)worker_main, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
}

/* The deadline of rule 6, on the clock condition variables use. */
static struct timespec deadline_after(double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  if (!(seconds < 1e9)) seconds = 1e9;
  double whole = (double)(long)seconds;
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)((seconds - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
  return ts;
}

/* Kernel hook (rule 6): stops the threads, waits for them up to
 * shutdown_timeout, lets go of those still busy, drops the jobs left
 * (their tasks were abandoned with the kernel). Closes before the inbox
 * (added after it). */
static void pool_close(lua_State *L, struct kernel *k, struct kernel_hook *hook) {
  struct pool *p = (struct pool *)hook;
  (void)L;
  pthread_mutex_lock(&p->lock);
  p->stopping = 1;
  for (struct list *n; (n = list_first(&p->pending)) != NULL;) list_remove(n);
  p->npending = 0;
  pthread_cond_broadcast(&p->work);
  for (int i = 0; i < p->nthreads; i++)
    if (p->workers[i].job != NULL) worker_stop(&p->workers[i]); /* (lock order: pool, worker, object) */
  struct timespec deadline = deadline_after(k->shutdown_timeout);
  while (p->live > 0 && pthread_cond_timedwait(&p->exited, &p->lock, &deadline) != ETIMEDOUT) {}
  p->closed = 1;
  int pinned = 0;
  for (int i = 0; i < p->nthreads; i++) {
    struct worker *w = &p->workers[i];
    if (w->exited) continue;
    if (w->job != NULL) {
      if (!pinned) pin_library();
      pinned = 1;
      list_remove(&w->job->out); /* the thread's from now on */
      inbox_hold(p->inbox, -1);
      fprintf(stderr, "curio: shutdown: a worker thread still runs %s %g s after its kernel closed; "
              "let go (its result will be dropped)\n", w->job->what, k->shutdown_timeout);
    }
  }
  fflush(stderr);
  pthread_mutex_unlock(&p->lock);
  for (int i = 0; i < p->nthreads; i++) {
    struct worker *w = &p->workers[i];
    pthread_mutex_lock(&p->lock);
    int exited = w->exited;
    pthread_mutex_unlock(&p->lock);
    if (exited) pthread_join(w->id, NULL);
    else pthread_detach(w->id);
  }
  /* what is left out was never run, or is done and not fired: no thread
   * touches it any more (rule 6) */
  for (struct list *n; (n = list_first(&p->out)) != NULL;) {
    struct job *j = LIST_ENTRY(n, struct job, out);
    inbox_take_back(p->inbox, &j->done);
    job_drop(j);
  }
  pthread_mutex_lock(&p->lock);
  pool_unref_unlock(p);
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
  struct worker *workers = calloc((size_t)size, sizeof *workers);
  if (p == NULL || workers == NULL) {
    free(p); free(workers);
    luaL_error(L, "run_in_thread: not enough memory");
  }
  p->k = k;
  p->max = size;
  p->workers = workers;
  p->inbox = inbox;
  p->refs = 1;
  list_init(&p->pending);
  list_init(&p->out);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&p->exited, &attr);
  pthread_condattr_destroy(&attr);
  p->path = package_field(L, "path");
  p->cpath = package_field(L, "cpath");
  p->open_state = lua_getfield(L, LUA_REGISTRYINDEX, THREADS_OPEN_FIELD) == LUA_TLIGHTUSERDATA
                  ? lua_touserdata(L, -1) : NULL;
  lua_pop(L, 1);
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

/* Under p's lock: one more thread, if it can be started. */
static void start_worker(struct pool *p) {
  struct worker *w = &p->workers[p->nthreads];
  w->pool = p;
  pthread_mutex_init(&w->lock, NULL);
  if (pthread_create(&w->id, NULL, worker_main, w) != 0) {
    pthread_mutex_destroy(&w->lock);
    return;
  }
  p->nthreads++;
  p->live++;
  p->refs++;
}

/* What j runs, in words, for the report of rule 6 (fn is at index 1). */
static void describe(lua_State *L, struct job *j) {
  lua_Debug ar;
  lua_pushvalue(L, 1);
  if (lua_getinfo(L, ">S", &ar) && ar.what[0] != 'C')
    snprintf(j->what, sizeof j->what, "function <%s:%d>", ar.short_src, ar.linedefined);
  else
    snprintf(j->what, sizeof j->what, "a C function");
}

/* curio.run_in_thread(fn, ...) -> fn's results, run in a worker thread. */
static int l_run_in_thread(lua_State *L) {
  errors_checkfunction(L, 1, "run_in_thread");
  struct task *t = trap_enter(L, "run_in_thread");
  struct pool *p = pool_get(L, t->k);
  codec_encode(L, 1, lua_gettop(L), "run_in_thread: argument", 0);
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
  describe(L, j);
  pthread_mutex_lock(&p->lock);
  list_insert_tail(&p->pending, &j->node);
  p->npending++;
  /* one more thread unless an idle one is there for each waiting job: an
   * idle thread already signalled for an earlier job stays counted idle
   * until it wakes, and a job that blocks for ever in its thread must
   * not leave the next one without a thread while the pool may grow */
  if (p->npending > p->idle && p->nthreads < p->max) start_worker(p);
  int none = p->nthreads == 0;
  if (none) { list_remove(&j->node); p->npending--; }
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
