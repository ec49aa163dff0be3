/* core/waitq.h: the FIFO wait queue (contract in waitq.c). */
#ifndef CURIO_WAITQ_H
#define CURIO_WAITQ_H

#include <lua.h>
#include <lauxlib.h>

#define WAITQ_MT "curio.waitq"

struct task;

/* FIFO of waiting tasks, a circular list through task->wq_prev/wq_next
 * (the tail is head->wq_prev): 16 bytes, as every task holds one. */
struct waitq {
  struct task *head;
  lua_Integer count;
};

void waitq_init(struct waitq *q);
void waitq_append(struct waitq *q, struct task *t);
void waitq_unlink(struct task *t);
struct task *waitq_pop(struct waitq *q);
void waitq_detach_all(struct waitq *q);
void waitq_hand_over(lua_State *L, struct task *t, int vidx);
void waitq_enqueue(lua_State *L, struct waitq *q, struct task *t, int carry_idx);
void waitq_push_carry(lua_State *L, struct task *t);
int waitq_wait_k(lua_State *L, int status, lua_KContext ctx);
extern const luaL_Reg waitq_methods[];
extern const luaL_Reg waitq_functions[];

#endif
