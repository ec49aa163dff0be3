/* bench/limits/universal_queue.c: the limit of universal_queue. A producer
 * thread puts the integers 1..N into an unbounded queue (an array doubled
 * as it fills, under one mutex) and the main thread gets them one at a
 * time, waiting on a condition variable when the queue is empty (the
 * producer signals only when it waits). Timed from the producer's start
 * until the last get, as the benchmark.
 *
 *   universal_queue [N]      (default 1000000)
 */
#include <pthread.h>
#include <string.h>
#include "limit.h"

struct queue {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  long *items;
  size_t head, len, cap;
  int waiting;
  long n;
};

static void *producer(void *arg) {
  struct queue *q = arg;
  for (long i = 1; i <= q->n; i++) {
    pthread_mutex_lock(&q->mu);
    if (q->head + q->len == q->cap) { /* at the end: slide back, or grow */
      if (q->head >= q->len) {        /* (amortized: at most half moves) */
        memmove(q->items, q->items + q->head, q->len * sizeof *q->items);
        q->head = 0;
      } else {
        long *more = realloc(q->items, 2 * q->cap * sizeof *more);
        if (more == NULL) limit_die("realloc", 0);
        q->items = more;
        q->cap *= 2;
      }
    }
    q->items[q->head + q->len++] = i;
    if (q->waiting) pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
  }
  return NULL;
}

int main(int argc, char **argv) {
  static struct queue q = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  q.n = limit_n(argc, argv, 1000000);
  q.cap = 1024;
  q.items = malloc(q.cap * sizeof *q.items);
  if (q.items == NULL) limit_die("malloc", 0);
  double t0 = limit_now();
  pthread_t th;
  int err = pthread_create(&th, NULL, producer, &q);
  if (err) limit_die("pthread_create", err);
  for (long i = 1; i <= q.n; i++) {
    pthread_mutex_lock(&q.mu);
    while (q.len == 0) {
      q.waiting = 1;
      pthread_cond_wait(&q.cv, &q.mu);
      q.waiting = 0;
    }
    long v = q.items[q.head];
    q.head++;
    q.len--;
    if (q.len == 0) q.head = 0;
    pthread_mutex_unlock(&q.mu);
    if (v != i) limit_die("get", 0);
  }
  double seconds = limit_now() - t0;
  pthread_join(th, NULL);
  free(q.items);
  limit_report("universal_queue", q.n, seconds);
  return 0;
}
