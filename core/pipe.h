/* core/pipe.h: pipes and /dev/null for children (pipe.c). */
#ifndef CURIO_PIPE_H
#define CURIO_PIPE_H

#include <lauxlib.h>

extern const luaL_Reg pipe_functions[];

#endif
