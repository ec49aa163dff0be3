/* core/orphan.h: children whose Process was collected while they ran
 * (orphan.c). */
#ifndef CURIO_ORPHAN_H
#define CURIO_ORPHAN_H

#include <lua.h>
#include <sys/types.h>
#include "ctx.h"

struct orphans;
struct io_handle;

struct orphans *orphans_make(lua_State *L, struct curio_ctx *ctx);
struct orphans *orphans_of(struct curio_ctx *ctx);
void orphans_reap(struct orphans *o);
void orphans_add(struct curio_ctx *ctx, struct io_handle *h, pid_t pid);

#endif
