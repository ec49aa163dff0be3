/* core/universal.h: UniversalQueue, UniversalEvent, UniversalLock (rules in
 * universal.c): the object, shared by universal.c (lifetime, proxies,
 * cycles), universal_wait.c (how tasks and threads wait on one) and
 * universal_methods.c (the methods). */
#ifndef CURIO_UNIVERSAL_H
#define CURIO_UNIVERSAL_H

#include <pthread.h>
#include <stddef.h>
#include <lauxlib.h>
#include "list.h"

#define UNIVERSAL_MT "curio.Universal"

enum { U_QUEUE, U_EVENT, U_LOCK };

struct uobj {
  int kind;
  int refs;                   /* under lock */
  pthread_mutex_t lock;
  pthread_cond_t changed;     /* threads waiting for any change */
  struct list task_waiters;   /* struct uwaiter */
  char *buf;                  /* queue: items as [u32 header][bytes], from */
  size_t rd, wr, cap;         /* rd to wr (no malloc per item) */
  lua_Integer holding;        /* queue: items that hold shared objects (rule 7) */
  lua_Integer size, maxsize, unfinished;
  int set;                    /* event */
  int held;                   /* lock */
  const void *owner;          /* lock: the holding task, or thread token */
};

#define UNIVERSAL_ITEM_MAX 0x7fffffffu /* (the header's top bit: rule 7) */

/* universal.c */
extern const char *const universal_kind_names[];
int universal_new(lua_State *L, int kind, lua_Integer maxsize);
struct uobj *universal_object(lua_State *L, int idx);
struct uobj *universal_check(lua_State *L, int kind);
int universal_ring_push(struct uobj *o, const char *data, size_t len, int holds);
size_t universal_ring_peek(const struct uobj *o);
void universal_ring_pop(struct uobj *o, char *into, size_t len);

/* universal_wait.c */
struct uwaiter;
struct task;
struct curio_ctx;
struct worker;
struct block {                /* a thread's blocking wait (rule 6) */
  struct worker *worker;      /* NULL: not a worker thread, or not yet asked */
  int asked;
};
struct curio_ctx *universal_ctx(lua_State *L);
struct task *universal_running_task(lua_State *L);
struct task *universal_enter(lua_State *L, const char *fname, struct uwaiter **wp);
void universal_wake_all(struct uobj *o);
int universal_wait_then_retry(lua_State *L, struct task *t, struct uwaiter *w, struct uobj *o,
                              lua_CFunction retry, int nargs);
void universal_thread_wait(lua_State *L, struct uobj *o, struct block *b, const char *fname);
void universal_thread_unblock(struct block *b);

/* universal_methods.c */
extern const luaL_Reg universal_methods[];
extern const luaL_Reg universal_functions[];

#endif
