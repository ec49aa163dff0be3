/* core/io.h: descriptor waits (rules in io.c). */
#ifndef CURIO_IO_H
#define CURIO_IO_H

#include <ev.h>
#include <lua.h>
#include "task.h"

/* A descriptor owned by an object (a socket, a pipe): the first field of
 * its userdata. Each direction has one watcher, whose data is the task
 * waiting in that direction (NULL: none). */
struct io_handle {
  int fd;             /* -1 once closed */
  ev_io rd, wr;
};

void io_handle_init(struct io_handle *h, int fd);
int io_wait(lua_State *L, struct task *t, ev_io *w, lua_KFunction k);
int io_close(struct io_handle *h);
char *io_scratch(lua_State *L, size_t *size);
extern const luaL_Reg io_functions[];

#endif
