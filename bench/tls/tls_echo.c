/*
 * Echo round trips and handshakes over TLS (tls_loadgen echo | handshake):
 * CONNS connections, each with one round trip in flight. Rules:
 *
 *  1. A connection's steps: TCP connect, handshake, then rounds (write the
 *     message, read the whole echo back, check it). Each wake-up runs the
 *     connection as far as it goes (step()), so data OpenSSL has buffered
 *     is never left waiting for an epoll event that will not come.
 *  2. Phases as bench/echo/loadgen.c: setup (every connection completes a
 *     first round, at most 30 s), warm-up, the measured window, drain (no
 *     new round or connection starts; those in flight finish, at most 5 s).
 *     Only rounds that end inside the window count.
 *  3. Handshake mode: a round is the whole connection (connect, handshake,
 *     one 64-byte echo, close_notify, close), then a new connection starts
 *     in its place; its latency runs from the connect to the echo.
 *  4. Message content differs per connection and per round (a pattern per
 *     connection, the round stamped into every 64-byte block).
 */
#define _GNU_SOURCE
#include "tlsgen.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SETUP_LIMIT_S 30.0
#define DRAIN_LIMIT_S 5.0
#define SCRATCH_BYTES 65536

enum { C_CONNECTING, C_HANDSHAKE, C_BUSY, C_IDLE, C_DEAD };

typedef struct {
  int fd, state, want_out, setup_done;
  SSL *ssl;
  uint64_t round;
  size_t sent, got;
  uint64_t t_start;
  unsigned char *msg;
} conn_t;

typedef struct {
  tlsgen_t *g;
  conn_t *conns;
  int nconns, epfd, handshakes;
  int alive, busy, setup_left;
  size_t msg_bytes;
  long errors;
  uint64_t meas_start, meas_end; /* 0 and UINT64_MAX until the setup ends */
  unsigned char scratch[SCRATCH_BYTES];
  uint32_t *lat;
  size_t nlat, cap_lat;
} run_t;

static uint64_t mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void fill_pattern(run_t *r, conn_t *c, int idx) {
  uint64_t s = 0x1234567ULL + (uint64_t)idx * 0x10001ULL;
  for (size_t i = 0; i < r->msg_bytes; i += 8) {
    uint64_t v = mix(&s);
    size_t k = r->msg_bytes - i < 8 ? r->msg_bytes - i : 8;
    memcpy(c->msg + i, &v, k);
  }
}

static void stamp_round(run_t *r, conn_t *c, int idx) {
  for (size_t i = 0, blk = 0; i < r->msg_bytes; i += 64, blk++) {
    uint64_t v = (c->round << 24) ^ ((uint64_t)idx << 44) ^ blk ^ 0xa5a5a5a5ULL;
    size_t k = r->msg_bytes - i < 8 ? r->msg_bytes - i : 8;
    memcpy(c->msg + i, &v, k);
  }
}

static void set_events(run_t *r, conn_t *c, int idx, int want_out) {
  if (c->want_out == want_out) return;
  struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx};
  if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) tlsgen_die("epoll_ctl");
  c->want_out = want_out;
}

static void drop(run_t *r, conn_t *c) {
  if (c->ssl) SSL_free(c->ssl);
  c->ssl = NULL;
  if (c->fd >= 0) {
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
}

static void fail(run_t *r, conn_t *c, int idx, const char *why) {
  if (c->state == C_DEAD) return;
  if (r->errors < 10)
    fprintf(stderr, "tls_loadgen: connection %d, round %llu: %s\n", idx,
            (unsigned long long)c->round, why);
  else if (r->errors == 10)
    fprintf(stderr, "tls_loadgen: (further errors not shown)\n");
  r->errors++;
  drop(r, c);
  if (c->state != C_IDLE) r->busy--;
  r->alive--;
  if (!c->setup_done) r->setup_left--;
  c->state = C_DEAD;
}

/* A new TCP connection in c's place (state C_CONNECTING); 0, or -1 (failed). */
static int open_conn(run_t *r, conn_t *c, int idx) {
  c->fd = tlsgen_connect(r->g);
  if (c->fd < 0) {
    char why[96];
    snprintf(why, sizeof why, "connect: %s", strerror(errno));
    fail(r, c, idx, why);
    return -1;
  }
  c->state = C_CONNECTING;
  c->want_out = 1;
  c->sent = c->got = 0;
  c->t_start = tlsgen_now_ns();
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)idx};
  if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) tlsgen_die("epoll_ctl");
  return 0;
}

static void record(run_t *r, uint64_t ns) {
  if (r->nlat == r->cap_lat) {
    r->cap_lat = r->cap_lat ? r->cap_lat * 2 : 1 << 16;
    r->lat = realloc(r->lat, r->cap_lat * sizeof *r->lat);
    if (!r->lat) tlsgen_die("realloc");
  }
  r->lat[r->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static void start_round(run_t *r, conn_t *c, int idx) {
  c->round++;
  stamp_round(r, c, idx);
  c->sent = c->got = 0;
  if (c->state == C_IDLE) r->busy++;
  c->state = C_BUSY;
  if (!r->handshakes) c->t_start = tlsgen_now_ns();
}

/* The round of c has ended at t: count it, then start what comes next. */
static void round_done(run_t *r, conn_t *c, int idx) {
  uint64_t t = tlsgen_now_ns();
  if (!c->setup_done) {
    c->setup_done = 1;
    r->setup_left--;
  }
  if (r->meas_start && t >= r->meas_start && t <= r->meas_end) record(r, t - c->t_start);
  c->state = C_IDLE;
  r->busy--;
  if (r->handshakes) {
    ERR_clear_error();
    SSL_shutdown(c->ssl); /* close_notify; the server's is not awaited */
    drop(r, c);
    if (t < r->meas_end && open_conn(r, c, idx) == 0) r->busy++;
  } else if (t < r->meas_end) {
    start_round(r, c, idx);
  }
}

/* An SSL call returned n <= 0: wait for what it wants, else fail. 1: wait. */
static int wants(run_t *r, conn_t *c, int idx, int n, const char *what) {
  int err = SSL_get_error(c->ssl, n);
  if (err == SSL_ERROR_WANT_READ) return 1;
  if (err == SSL_ERROR_WANT_WRITE) {
    set_events(r, c, idx, 1);
    return 1;
  }
  char why[256];
  fail(r, c, idx, tlsgen_ssl_error(what, err, why, sizeof why));
  return 0;
}

/* Rule 1: run connection idx as far as it goes. */
static void step(run_t *r, int idx, uint32_t ev) {
  conn_t *c = &r->conns[idx];
  if (c->state == C_CONNECTING) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      char why[96];
      snprintf(why, sizeof why, "connect: %s", strerror(err));
      fail(r, c, idx, why);
      return;
    }
    c->ssl = tlsgen_ssl(r->g, c->fd);
    c->state = C_HANDSHAKE;
  }
  for (;;) {
    if (c->state == C_HANDSHAKE) {
      ERR_clear_error();
      int n = SSL_connect(c->ssl);
      if (n <= 0) {
        if (wants(r, c, idx, n, "handshake")) set_events(r, c, idx, SSL_want_write(c->ssl));
        return;
      }
      tlsgen_note_session(r->g, c->ssl);
      c->state = C_IDLE;
      start_round(r, c, idx);
    }
    if (c->state != C_BUSY) { /* idle: only an end or unasked bytes can come */
      if (c->state != C_IDLE || !(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
      ERR_clear_error();
      int n = SSL_read(c->ssl, r->scratch, sizeof r->scratch);
      if (n > 0) fail(r, c, idx, "unexpected bytes between round trips");
      else wants(r, c, idx, n, "read while idle");
      return;
    }
    int blocked = 0;
    while (c->sent < r->msg_bytes) {
      ERR_clear_error();
      int n = SSL_write(c->ssl, c->msg + c->sent, (int)(r->msg_bytes - c->sent));
      if (n <= 0) {
        if (!wants(r, c, idx, n, "SSL_write")) return;
        blocked = 1;
        break;
      }
      c->sent += (size_t)n;
    }
    if (!blocked) set_events(r, c, idx, 0);
    while (c->got < c->sent) {
      size_t want = r->msg_bytes - c->got;
      if (want > SCRATCH_BYTES) want = SCRATCH_BYTES;
      ERR_clear_error();
      int n = SSL_read(c->ssl, r->scratch, (int)want);
      if (n <= 0) {
        wants(r, c, idx, n, "SSL_read");
        return;
      }
      if (c->got + (size_t)n > c->sent) {
        fail(r, c, idx, "echo ahead of the bytes sent");
        return;
      }
      if (memcmp(r->scratch, c->msg + c->got, (size_t)n) != 0) {
        char why[96];
        snprintf(why, sizeof why, "echo differs at bytes %zu..%zu", c->got, c->got + (size_t)n);
        fail(r, c, idx, why);
        return;
      }
      c->got += (size_t)n;
    }
    if (c->got < r->msg_bytes) return; /* the rest is still to be written */
    round_done(r, c, idx);
    if (c->state != C_BUSY) return; /* idle, or a new connection (rule 3) */
    ev = 0;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_us(const run_t *r, double p) {
  if (r->nlat == 0) return 0;
  size_t rank = (size_t)(p * (double)r->nlat + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > r->nlat) rank = r->nlat;
  return r->lat[rank - 1] / 1000.0;
}

int tlsgen_echo(tlsgen_t *g, int nconns, size_t msg_bytes, int handshakes) {
  run_t *r = calloc(1, sizeof *r);
  if (!r) {
    perror("calloc");
    exit(2);
  }
  r->g = g;
  r->nconns = nconns;
  r->msg_bytes = msg_bytes;
  r->handshakes = handshakes;
  r->epfd = epoll_create1(EPOLL_CLOEXEC);
  r->conns = calloc((size_t)nconns, sizeof *r->conns);
  if (r->epfd < 0 || !r->conns) tlsgen_die("setup");
  r->alive = r->busy = r->setup_left = nconns;
  r->meas_end = UINT64_MAX;
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &r->conns[i];
    c->fd = -1;
    c->msg = malloc(msg_bytes);
    if (!c->msg) tlsgen_die("malloc");
    fill_pattern(r, c, i);
    open_conn(r, c, i);
  }

  uint64_t setup_deadline = tlsgen_now_ns() + (uint64_t)(SETUP_LIMIT_S * 1e9);
  uint64_t drain_deadline = UINT64_MAX;
  tlsgen_cpu_t cpu0 = {0, -1, -1}, cpu1 = {0, -1, -1};
  int in_window = 0, stopping = 0;
  struct epoll_event evs[512];
  for (;;) {
    uint64_t now = tlsgen_now_ns();
    if (r->setup_left > 0 && now >= setup_deadline) {
      for (int i = 0; i < nconns; i++)
        if (!r->conns[i].setup_done) fail(r, &r->conns[i], i, "no first round within the setup limit");
      r->setup_left = 0;
    }
    if (r->setup_left == 0 && r->meas_start == 0) { /* setup over: warm-up starts */
      r->meas_start = now + (uint64_t)(g->warmup * 1e9);
      r->meas_end = r->meas_start + (uint64_t)(g->seconds * 1e9);
    }
    if (r->meas_start && !in_window && now >= r->meas_start && now < r->meas_end) {
      in_window = 1;
      tlsgen_cpu_sample(g, &cpu0);
    }
    if (!stopping && now >= r->meas_end) {
      stopping = 1;
      if (in_window) tlsgen_cpu_sample(g, &cpu1);
      drain_deadline = now + (uint64_t)(DRAIN_LIMIT_S * 1e9);
    }
    if (r->alive == 0 || (stopping && r->busy == 0)) break;
    if (stopping && now >= drain_deadline) {
      for (int i = 0; i < nconns; i++)
        if (r->conns[i].state != C_IDLE) fail(r, &r->conns[i], i, "unfinished at the end of the drain");
      break;
    }
    uint64_t next = r->setup_left > 0 ? setup_deadline
                  : !in_window && now < r->meas_start ? r->meas_start
                  : !stopping ? r->meas_end : drain_deadline;
    int timeout_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
    int n = epoll_wait(r->epfd, evs, 512, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      tlsgen_die("epoll_wait");
    }
    for (int e = 0; e < n; e++) {
      int idx = (int)evs[e].data.u32;
      if (r->conns[idx].state != C_DEAD) step(r, idx, evs[e].events);
    }
  }
  for (int i = 0; i < nconns; i++) {
    if (r->conns[i].ssl && r->conns[i].state == C_IDLE) { /* close_notify, as a client should */
      ERR_clear_error();
      SSL_shutdown(r->conns[i].ssl);
    }
    drop(r, &r->conns[i]);
    free(r->conns[i].msg);
  }
  close(r->epfd);

  double window = in_window ? (r->meas_end - r->meas_start) / 1e9 : 0;
  qsort(r->lat, r->nlat, sizeof *r->lat, cmp_u32);
  if (handshakes)
    printf("bench=tls_handshake\nimpl=%s\nconns=%d\nhandshakes=%zu\n", g->impl, nconns, r->nlat);
  else
    printf("bench=tls_echo_%dx%zu\nimpl=%s\nconns=%d\nmsg_bytes=%zu\nround_trips=%zu\n", nconns,
           msg_bytes, g->impl, nconns, msg_bytes, r->nlat);
  printf("seconds=%.6f\nops_per_sec=%.0f\np50_us=%.1f\np99_us=%.1f\n", window,
         window > 0 ? r->nlat / window : 0.0, pct_us(r, 0.50), pct_us(r, 0.99));
  tlsgen_print_cpu(&cpu0, &cpu1, window, (double)r->nlat, "op");
  tlsgen_print_session(g);
  printf("errors=%ld\n", r->errors);
  int rc = r->errors ? 1 : 0;
  free(r->lat);
  free(r->conns);
  free(r);
  return rc;
}
