/* bench/limits/limit.h: what the C limit programs share (not a program):
 * N from the first argument, a monotonic clock, dying on a failed call,
 * and the standard block (bench=, impl=limit, n=, seconds=, ops_per_sec=),
 * as the Lua benchmarks print it (bench/benchlib.lua). */
#ifndef LIMIT_H
#define LIMIT_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* N from argv[1], else def (at least 1). */
static inline long limit_n(int argc, char **argv, long def) {
  long n = argc > 1 ? strtol(argv[1], NULL, 10) : def;
  return n < 1 ? 1 : n;
}

/* Seconds on the monotonic clock (wall time, as curio.clock). */
static inline double limit_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A failed call ends the program with status 2 (bench/run.sh: error=). */
static inline void limit_die(const char *what, int err) {
  fprintf(stderr, "%s failed: error %d\n", what, err);
  exit(2);
}

/* The standard block's lines; the caller may print more after them. */
static inline void limit_report(const char *bench, long n, double seconds) {
  printf("bench=%s\nimpl=limit\nn=%ld\nseconds=%.6f\nops_per_sec=%.0f\n", bench, n, seconds,
         (double)n / seconds);
}

#endif
