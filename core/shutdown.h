/* core/shutdown.h: how a kernel ends, its grace period and SIGINT (rules
 * in shutdown.c). */
#ifndef CURIO_SHUTDOWN_H
#define CURIO_SHUTDOWN_H

#include <lua.h>

struct kernel;

void shutdown_init(struct kernel *k);
int shutdown_sigint_start(struct kernel *k);
void shutdown_sigint_stop(struct kernel *k);
void shutdown_grace_stop(struct kernel *k);
void kernel_shutdown(lua_State *L, struct kernel *k);
void shutdown_abandon(lua_State *L, struct kernel *k, const char *why);

#endif
