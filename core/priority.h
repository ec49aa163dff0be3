/* core/priority.h: the storage of a PriorityQueue (contract in priority.c). */
#ifndef CURIO_PRIORITY_H
#define CURIO_PRIORITY_H

#include <lua.h>

/* A priority as Lua has it: an integer or a float (never NaN), compared
 * exactly as Lua's `<` compares them. */
struct priority_key {
  union {
    lua_Integer i;
    lua_Number n;
  } v;
  int is_int;
};

struct priority_entry {
  struct priority_key key;
  lua_Integer seq; /* order of entry: first in, first out among equals */
  lua_Integer slot; /* where the item is in the queue's items table */
};

/* The heap's fields; its arrays live in a userdata that the owner keeps
 * as a user value (see priority_init). */
struct priority_heap {
  struct priority_entry *entries; /* entries[0] is the least */
  lua_Integer *free_slots;        /* slots of the items table taken out */
  lua_Integer count, cap, nfree, next_seq;
};

void priority_init(lua_State *L, struct priority_heap *h, int owner, int uv);
int priority_tokey(lua_State *L, int idx, struct priority_key *key);
void priority_push(lua_State *L, struct priority_heap *h, int owner, int uv, int items,
                   const struct priority_key *key);
void priority_pop(lua_State *L, struct priority_heap *h, int items);

#endif
