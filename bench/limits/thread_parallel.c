/* bench/limits/thread_parallel.c: the limit of thread_parallel. N calls of
 * "x + 1", 64 in flight: 64 callers each make N/64 sequential calls (the
 * first N % 64 one more), served by 64 worker threads (started before the
 * clock). The main thread plays the event loop: it puts a caller's next
 * call on a job queue (mutex + condition variable, a worker woken only if
 * one is idle) as soon as its previous one is answered on a result queue
 * (another mutex + condition variable, the main thread woken only when it
 * waits). What 64 calls in flight cannot do without: each call crosses to
 * a thread and back, the threads share the two queues' locks.
 *
 *   thread_parallel [N]      (default 10000)
 */
#include <pthread.h>
#include "limit.h"

#define WIDTH 64

struct job {
  int caller;
  long x, y;
};

struct pool {
  pthread_mutex_t in_mu, out_mu;
  pthread_cond_t in_cv, out_cv;
  struct job in[WIDTH], out[WIDTH]; /* rings: at most WIDTH calls in flight */
  unsigned in_head, in_len, out_head, out_len;
  int idle, waiting, stop;
};

static void *worker(void *arg) {
  struct pool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->in_mu);
    while (p->in_len == 0 && !p->stop) {
      p->idle++;
      pthread_cond_wait(&p->in_cv, &p->in_mu);
      p->idle--;
    }
    if (p->in_len == 0) { /* stop */
      pthread_mutex_unlock(&p->in_mu);
      return NULL;
    }
    struct job j = p->in[p->in_head];
    p->in_head = (p->in_head + 1) % WIDTH;
    p->in_len--;
    pthread_mutex_unlock(&p->in_mu);
    j.y = j.x + 1;
    pthread_mutex_lock(&p->out_mu);
    p->out[(p->out_head + p->out_len) % WIDTH] = j;
    p->out_len++;
    if (p->waiting) pthread_cond_signal(&p->out_cv);
    pthread_mutex_unlock(&p->out_mu);
  }
}

static void submit(struct pool *p, int caller, long x) {
  pthread_mutex_lock(&p->in_mu);
  p->in[(p->in_head + p->in_len) % WIDTH] = (struct job){.caller = caller, .x = x};
  p->in_len++;
  if (p->idle > 0) pthread_cond_signal(&p->in_cv);
  pthread_mutex_unlock(&p->in_mu);
}

int main(int argc, char **argv) {
  long n = limit_n(argc, argv, 10000);
  static struct pool p = {.in_mu = PTHREAD_MUTEX_INITIALIZER,
                          .out_mu = PTHREAD_MUTEX_INITIALIZER,
                          .in_cv = PTHREAD_COND_INITIALIZER,
                          .out_cv = PTHREAD_COND_INITIALIZER};
  pthread_t th[WIDTH];
  long left[WIDTH], next[WIDTH];
  for (int w = 0; w < WIDTH; w++) {
    int err = pthread_create(&th[w], NULL, worker, &p);
    if (err) limit_die("pthread_create", err);
    left[w] = n / WIDTH + (w < n % WIDTH ? 1 : 0);
    next[w] = 1;
  }
  double t0 = limit_now();
  for (int w = 0; w < WIDTH; w++)
    if (left[w] > 0) submit(&p, w, next[w]);
  long done = 0;
  while (done < n) {
    struct job got[WIDTH] = {{0}};
    unsigned k = 0;
    pthread_mutex_lock(&p.out_mu);
    while (p.out_len == 0) {
      p.waiting = 1;
      pthread_cond_wait(&p.out_cv, &p.out_mu);
      p.waiting = 0;
    }
    while (p.out_len > 0) {
      got[k++] = p.out[p.out_head];
      p.out_head = (p.out_head + 1) % WIDTH;
      p.out_len--;
    }
    pthread_mutex_unlock(&p.out_mu);
    for (unsigned i = 0; i < k; i++) {
      int w = got[i].caller;
      if (got[i].y != next[w] + 1) limit_die("call", 0);
      done++;
      next[w]++;
      if (--left[w] > 0) submit(&p, w, next[w]);
    }
  }
  double seconds = limit_now() - t0;
  pthread_mutex_lock(&p.in_mu);
  p.stop = 1;
  pthread_cond_broadcast(&p.in_cv);
  pthread_mutex_unlock(&p.in_mu);
  for (int w = 0; w < WIDTH; w++) pthread_join(th[w], NULL);
  limit_report("thread_parallel", n, seconds);
  return 0;
}
