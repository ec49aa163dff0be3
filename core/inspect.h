/* core/inspect.h: what the task monitor and the long-block check read of
 * the scheduler (rules in inspect.c). */
#ifndef CURIO_INSPECT_H
#define CURIO_INSPECT_H

#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include "kernel.h"

struct task;

/* The long-block check's clock (rule 2), in seconds. */
static inline double inspect_clock(const struct kernel *k) {
  struct timespec ts;
  clock_gettime((clockid_t)k->longblock_clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void inspect_debug_option(lua_State *L, int opts, const char *fname, int *crashes,
                          double *longblock);
void inspect_longblock_start(struct kernel *k, double seconds);
void inspect_longblock_report(struct kernel *k, struct task *t, double ran, int status);
extern const luaL_Reg inspect_functions[];

#endif
