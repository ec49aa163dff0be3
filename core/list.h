/* core/list.h: the one intrusive doubly linked list (libuv's src/queue.h
 * is the model). A list is a circular ring through a head node; an element
 * embeds a `struct list` node and is found back with LIST_ENTRY. A node
 * that is in no list points to itself (list_init), so list_remove is safe
 * to call twice and list_linked tells whether it is in a list.
 * No dependencies: every file that keeps things in order uses this. */
#ifndef CURIO_LIST_H
#define CURIO_LIST_H

#include <stddef.h>

struct list {
  struct list *prev, *next;
};

#define LIST_ENTRY(node, type, field) ((type *)((char *)(node) - offsetof(type, field)))

static inline void list_init(struct list *node) {
  node->prev = node->next = node;
}

static inline int list_empty(const struct list *head) {
  return head->next == head;
}

static inline int list_linked(const struct list *node) {
  return node->next != node;
}

/* The first node of a list, or NULL when it is empty. */
static inline struct list *list_first(const struct list *head) {
  return head->next == head ? NULL : head->next;
}

static inline void list_insert_tail(struct list *head, struct list *node) {
  node->next = head;
  node->prev = head->prev;
  head->prev->next = node;
  head->prev = node;
}

static inline void list_insert_head(struct list *head, struct list *node) {
  node->prev = head;
  node->next = head->next;
  head->next->prev = node;
  head->next = node;
}

static inline void list_remove(struct list *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  list_init(node);
}

#endif
