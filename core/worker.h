/* core/worker.h: run_in_process's C side (rules in worker.c). */
#ifndef CURIO_WORKER_H
#define CURIO_WORKER_H

#include <lauxlib.h>

extern const luaL_Reg worker_functions[];

#endif
