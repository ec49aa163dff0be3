/* core/hostopts.h: host.c's helpers in hostopts.c. */
#ifndef CURIO_HOSTOPTS_H
#define CURIO_HOSTOPTS_H
#include <lua.h>
#include "curio.h"
#include "threads.h"

/* curio.core, curio.tls and the Lua modules into L's package.preload. */
void host_preload_modules(lua_State *L);
/* The opener that gives worker-thread states the same modules. */
extern const struct threads_state_open host_thread_open;
/* Pushes the Kernel{} options table that o (may be NULL) stands for;
 * raises a CurioError for a bad debug value. */
void host_push_options(lua_State *L, const struct curio_options *o);

#endif
