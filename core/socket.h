/* core/socket.h: curio.socket and the Socket type (rules in socket.c):
 * the type and its non-blocking calls in socket.c, the calls that wait in
 * sockio.c, addresses and name resolution in address.c. */
#ifndef CURIO_SOCKET_H
#define CURIO_SOCKET_H

#include <sys/socket.h>
#include <unistd.h>
#include <lua.h>
#include <lauxlib.h>
#include "io.h"

#define SOCKET_MT "curio.Socket"

struct sock {
  struct io_handle io; /* first (io.c) */
  int family, type;
  int drained;         /* rule 2 */
  int write_held;      /* a sendall that waited has not run again yet (sockio.c) */
  int pushed;          /* rule 6: bytes given back wait in user value 1 */
  int pushed_at;       /*   how many of them were read */
  struct sockout *out; /* writes gathered (sockout.c), NULL until first used */
};

/* A pipe (a subprocess's stdin, stdout or stderr) is a Socket whose
 * handle is of kind io_pipe_kind (read and write instead of recv and
 * send): the same waits, busy checks and closing, behind a stream
 * (subprocess.lua). The kind, not the family, says how bytes move. */
static inline ssize_t sock_read(struct sock *s, void *buf, size_t len) {
  return s->io.kind->read(s->io.fd, buf, len);
}

static inline ssize_t sock_write(struct sock *s, const void *buf, size_t len) {
  return s->io.kind->write(s->io.fd, buf, len);
}

void socket_open(lua_State *L, int ctx);

/* socket.c: checks and errors shared by the three files */
int sock_raise_os(lua_State *L, const char *fname, int err);
int sock_raise_os_at(lua_State *L, const char *fname, int err, const struct sockaddr *sa, socklen_t len);
void sock_push_closed(lua_State *L, const char *fname);
int sock_raise_closed(lua_State *L, const char *fname);
struct sock *sock_check(lua_State *L, const char *fname);
struct sock *sock_check_open(lua_State *L, const char *fname);
lua_Integer sock_check_size(lua_State *L, int arg, const char *fname);
const char *sock_check_data(lua_State *L, int arg, const char *fname, size_t *len);
struct sock *sock_new(lua_State *L, int family, int type, const struct io_kind *kind);
struct sock *sock_new_uv(lua_State *L, int family, int type, const struct io_kind *kind, int nuv);
void sock_push_back(lua_State *L, int idx, const char *p, size_t len);
size_t sock_take_back(lua_State *L, int idx, char *buf, size_t max);
void sock_set_fd(struct sock *s, int fd);

/* sockio.c: the methods that may wait, and what sockbuf.c's reads share
 * with them: the busy check (a second reader or writer is refused), the
 * wait for readiness, and a continuation's first step (raising what ended
 * the wait; the socket at 1) */
extern const luaL_Reg sockio_methods[];
void sock_check_idle(lua_State *L, struct sock *s, int writing, const char *fname);
int sock_wait_ready(lua_State *L, struct sock *s, int writing, const struct wait_kind *kind,
                    lua_KFunction k);
struct sock *sock_resumed(lua_State *L, lua_KContext ctx, const char *fname);

/* sockbuf.c: reads into a growing buffer (core.growbuf): core.read_to_end
 * (subprocess pipes), core.read_frame (a Channel's messages) */
extern const luaL_Reg sockbuf_functions[];

/* sockout.c: writes gathered for later (a Channel's sends): core.out_*;
 * sockout_release, before the socket's descriptor closes (its last
 * write, without waiting) */
extern const luaL_Reg sockout_functions[];
void sockout_release(struct sock *s);

/* address.c */
void address_push(lua_State *L, const struct sockaddr *sa, socklen_t len);
const char *address_push_text(lua_State *L, const struct sockaddr *sa, socklen_t len);
socklen_t address_get(lua_State *L, int arg, int family, struct sockaddr_storage *ss, const char *fname);
void address_open(lua_State *L, int ctx);

#endif
