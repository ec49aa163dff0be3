/* bench/limits/thread_roundtrip.c: the limit of thread_roundtrip. N
 * sequential round trips between two threads through one mutex and two
 * condition variables: the caller posts i and waits, the worker (started
 * before the clock) wakes, answers i + 1 and signals back. Every round trip
 * is two thread wake-ups, what a run_in_thread call cannot do without.
 *
 *   thread_roundtrip [N]      (default 10000)
 */
#include <pthread.h>
#include "limit.h"

struct chan {
  pthread_mutex_t mu;
  pthread_cond_t to_worker, to_caller;
  long req, resp;
  int has_req, has_resp, stop;
};

static void *worker(void *arg) {
  struct chan *c = arg;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->has_req && !c->stop) pthread_cond_wait(&c->to_worker, &c->mu);
    if (c->stop) break;
    c->has_req = 0;
    c->resp = c->req + 1;
    c->has_resp = 1;
    pthread_cond_signal(&c->to_caller);
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

int main(int argc, char **argv) {
  long n = limit_n(argc, argv, 10000);
  struct chan c = {.mu = PTHREAD_MUTEX_INITIALIZER,
                   .to_worker = PTHREAD_COND_INITIALIZER,
                   .to_caller = PTHREAD_COND_INITIALIZER};
  pthread_t th;
  int err = pthread_create(&th, NULL, worker, &c);
  if (err) limit_die("pthread_create", err);
  double t0 = limit_now();
  pthread_mutex_lock(&c.mu);
  for (long i = 1; i <= n; i++) {
    c.req = i;
    c.has_req = 1;
    pthread_cond_signal(&c.to_worker);
    while (!c.has_resp) pthread_cond_wait(&c.to_caller, &c.mu);
    c.has_resp = 0;
    if (c.resp != i + 1) limit_die("round trip", 0);
  }
  double seconds = limit_now() - t0;
  c.stop = 1;
  pthread_cond_signal(&c.to_worker);
  pthread_mutex_unlock(&c.mu);
  pthread_join(th, NULL);
  limit_report("thread_roundtrip", n, seconds);
  return 0;
}
