/* core/bigblock.h: the cache of big freed blocks in a Lua state's
 * allocator, and strings made in place (rules in bigblock.c). */
#ifndef CURIO_BIGBLOCK_H
#define CURIO_BIGBLOCK_H

#include <stddef.h>
#include <lua.h>
#include <lauxlib.h>

/* The least size of a block that the cache keeps, and of a string that
 * bigblock_reserve is for. */
#define BIGBLOCK_MIN ((size_t)1 << 20)

/* A string being made in place (rule 5): its len bytes go to data; the
 * block (NULL: none) is size bytes, owned by whoever holds this. */
struct bigblock_str {
  char *block, *data;
  size_t size, len;
};

/* Installs the cache in L's allocator unless the state has it already
 * (rule 1); at luaopen of curio.core. Raises a memory error. */
void bigblock_open(lua_State *L);

/* Allocates the block of a string of len bytes into *s: 0, or -1 without
 * memory (*s then holds none). */
int bigblock_reserve(lua_State *L, struct bigblock_str *s, size_t len);

/* Pushes the string of the len bytes written at s->data; *s holds no
 * block afterwards, even when the push raises a memory error. */
void bigblock_push(lua_State *L, struct bigblock_str *s);

/* Frees the block *s holds, if any (an interrupted string's). */
void bigblock_release(lua_State *L, struct bigblock_str *s);

extern const luaL_Reg bigblock_functions[];

#endif
