/* core/priority.c: the storage of a PriorityQueue, one of the three
 * orders of core/queue.c (which keeps the rules of putting and getting).
 *
 * Rules:
 * 1. The least priority comes out first; among equal priorities, the item
 *    that entered first (its sequence number). Priorities compare as Lua's
 *    `<` compares numbers: an integer and a float by their exact values.
 * 2. The keys (priority, sequence, slot) form a binary heap in C; the items
 *    stay in the owner's Lua table, each at its slot, so that ordering moves
 *    no Lua value (one table write to store an item, one read and one clear
 *    to take it). Slots taken out are reused (a stack of free slots).
 * 3. The arrays are one userdata held as a user value of the owner: the
 *    garbage collector frees them, and growing replaces it only after the
 *    bigger one is made, so a memory error leaves the heap as it was. */
#include <math.h>
#include <string.h>
#include "priority.h"

/* -> <0, 0 or >0 as integer i is below, equal to or above float f (never
 * NaN), exactly (Lua's LTnum does the same without rounding i). */
static int cmp_int_float(lua_Integer i, lua_Number f) {
  /* -(2^63) and 2^63 are exact floats; inside them floor(f) fits. */
  const lua_Number limit = -(lua_Number)LUA_MININTEGER;
  if (f >= limit) return -1;
  if (f < -limit) return 1;
  lua_Number floor_f = floor(f);
  lua_Integer fi = (lua_Integer)floor_f;
  if (i != fi) return i < fi ? -1 : 1;
  return floor_f == f ? 0 : -1; /* i == floor(f) < f when f has a fraction */
}

static int key_cmp(const struct priority_key *a, const struct priority_key *b) {
  if (a->is_int && b->is_int) return (a->v.i > b->v.i) - (a->v.i < b->v.i);
  if (!a->is_int && !b->is_int) return (a->v.n > b->v.n) - (a->v.n < b->v.n);
  if (a->is_int) return cmp_int_float(a->v.i, b->v.n);
  return -cmp_int_float(b->v.i, a->v.n);
}

/* Rule 1: does entry a come out before entry b? */
static inline int before(const struct priority_entry *a, const struct priority_entry *b) {
  int c = key_cmp(&a->key, &b->key);
  return c < 0 || (c == 0 && a->seq < b->seq);
}

/* The number at idx as a key -> 1; 0 when it is not a number or is NaN. */
int priority_tokey(lua_State *L, int idx, struct priority_key *key) {
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  key->is_int = lua_isinteger(L, idx);
  if (key->is_int) {
    key->v.i = lua_tointeger(L, idx);
    return 1;
  }
  key->v.n = lua_tonumber(L, idx);
  return key->v.n == key->v.n;
}

/* Rule 3: arrays for cap entries, as user value uv of the owner at index
 * `owner`, the old ones copied in. */
static void resize(lua_State *L, struct priority_heap *h, int owner, int uv, lua_Integer cap) {
  size_t bytes = (size_t)cap * (sizeof *h->entries + sizeof *h->free_slots);
  struct priority_entry *entries = lua_newuserdatauv(L, bytes, 0);
  lua_Integer *free_slots = (lua_Integer *)(entries + cap);
  if (h->entries != NULL) {
    memcpy(entries, h->entries, (size_t)h->count * sizeof *entries);
    memcpy(free_slots, h->free_slots, (size_t)h->nfree * sizeof *free_slots);
  }
  lua_setiuservalue(L, owner, uv);
  h->entries = entries;
  h->free_slots = free_slots;
  h->cap = cap;
}

/* An empty heap, its arrays in user value uv of the userdata at owner. */
void priority_init(lua_State *L, struct priority_heap *h, int owner, int uv) {
  memset(h, 0, sizeof *h);
  resize(L, h, owner, uv, 16);
}

/* Stores the value on top of the stack (popping it) with key; the items
 * table is at index items. */
void priority_push(lua_State *L, struct priority_heap *h, int owner, int uv, int items,
                   const struct priority_key *key) {
  if (h->count == h->cap) resize(L, h, owner, uv, h->cap * 2);
  /* a free slot, else the next one: every slot up to count + nfree is taken */
  lua_Integer slot = h->nfree > 0 ? h->free_slots[h->nfree - 1] : h->count + 1;
  lua_rawseti(L, items, slot); /* (may raise: nothing changed yet) */
  if (h->nfree > 0) h->nfree--;
  struct priority_entry entry = {*key, ++h->next_seq, slot};
  lua_Integer i = h->count++;
  struct priority_entry *e = h->entries;
  while (i > 0) { /* sift up */
    lua_Integer parent = (i - 1) / 2;
    if (!before(&entry, &e[parent])) break;
    e[i] = e[parent];
    i = parent;
  }
  e[i] = entry;
}

/* Pushes the first item and its priority, taking it out; the heap is not
 * empty. */
void priority_pop(lua_State *L, struct priority_heap *h, int items) {
  struct priority_entry *e = h->entries;
  struct priority_entry top = e[0];
  struct priority_entry last = e[--h->count];
  lua_Integer n = h->count, i = 0;
  for (;;) { /* sift last down from the root */
    lua_Integer child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(&e[child + 1], &e[child])) child++;
    if (!before(&e[child], &last)) break;
    e[i] = e[child];
    i = child;
  }
  if (n > 0) e[i] = last;
  h->free_slots[h->nfree++] = top.slot;
  lua_rawgeti(L, items, top.slot);
  lua_pushnil(L);
  lua_rawseti(L, items, top.slot);
  if (top.key.is_int) lua_pushinteger(L, top.key.v.i);
  else lua_pushnumber(L, top.key.v.n);
}
