/*
 * Bulk transfer over one TLS connection (tls_loadgen bulk): write TOTAL
 * bytes to the echo server as fast as it takes them, read the echo back at
 * the same time and check every byte. Timed from the first byte written to
 * the last byte echoed. Byte i of the stream is pat[i % PERIOD]: PERIOD is
 * a prime, so records and reads fall at every offset of the pattern, and
 * pat holds PERIOD + CHUNK bytes so that any chunk is one contiguous span.
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

#define CHUNK 65536
#define PERIOD 65521
#define WRITE_TURN (1u << 20) /* bytes written per turn before reading again */
#define STALL_S 30            /* no byte moved for this long: an error */

typedef struct {
  int fd, epfd, want_out;
  SSL *ssl;
} bulk_t;

static void set_out(bulk_t *b, int out) {
  if (b->want_out == out) return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0)};
  if (epoll_ctl(b->epfd, EPOLL_CTL_MOD, b->fd, &ev) < 0) tlsgen_die("epoll_ctl");
  b->want_out = out;
}

/* After an SSL call returned n <= 0: 1 to wait (interest set), 0 on error. */
static int wait_for(bulk_t *b, int n, const char *what) {
  int err = SSL_get_error(b->ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    if (err == SSL_ERROR_WANT_WRITE) set_out(b, 1);
    return 1;
  }
  char why[256];
  fprintf(stderr, "tls_loadgen: bulk: %s\n", tlsgen_ssl_error(what, err, why, sizeof why));
  return 0;
}

/* Wait for an event; 0 when STALL_S pass without one. */
static int await(bulk_t *b) {
  struct epoll_event ev;
  for (;;) {
    int n = epoll_wait(b->epfd, &ev, 1, STALL_S * 1000);
    if (n > 0) return 1;
    if (n == 0) return 0;
    if (errno != EINTR) tlsgen_die("epoll_wait");
  }
}

static int handshake(tlsgen_t *g, bulk_t *b) {
  for (;;) {
    ERR_clear_error();
    int n = SSL_connect(b->ssl);
    if (n == 1) break;
    if (!wait_for(b, n, "handshake")) return 0;
    set_out(b, SSL_want_write(b->ssl));
    if (!await(b)) {
      fprintf(stderr, "tls_loadgen: bulk: no handshake after %d s\n", STALL_S);
      return 0;
    }
  }
  tlsgen_note_session(g, b->ssl);
  return 1;
}

/* The transfer itself; 0 on an error (reported). */
static int transfer(bulk_t *b, const unsigned char *pat, unsigned char *buf, uint64_t total) {
  uint64_t sent = 0, got = 0;
  set_out(b, 1);
  while (got < total) {
    for (uint64_t turn = 0; sent < total && turn < WRITE_TURN;) {
      uint64_t len = total - sent < CHUNK ? total - sent : CHUNK;
      ERR_clear_error();
      int n = SSL_write(b->ssl, pat + sent % PERIOD, (int)len);
      if (n <= 0) {
        if (!wait_for(b, n, "SSL_write")) return 0;
        break;
      }
      sent += (uint64_t)n;
      turn += (uint64_t)n;
    }
    if (sent == total) set_out(b, 0);
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(b->ssl, buf, CHUNK);
      if (n <= 0) {
        if (!wait_for(b, n, "SSL_read")) return 0;
        break;
      }
      if (got + (uint64_t)n > sent) {
        fprintf(stderr, "tls_loadgen: bulk: echo ahead of the bytes sent\n");
        return 0;
      }
      if (memcmp(buf, pat + got % PERIOD, (size_t)n) != 0) {
        fprintf(stderr, "tls_loadgen: bulk: echo differs in bytes %llu..%llu\n",
                (unsigned long long)got, (unsigned long long)(got + (uint64_t)n));
        return 0;
      }
      got += (uint64_t)n;
    }
    if (got < total && !await(b)) {
      fprintf(stderr, "tls_loadgen: bulk: stalled %d s at %llu bytes sent, %llu echoed\n", STALL_S,
              (unsigned long long)sent, (unsigned long long)got);
      return 0;
    }
  }
  return 1;
}

int tlsgen_bulk(tlsgen_t *g, uint64_t total) {
  unsigned char *pat = malloc(PERIOD + CHUNK), *buf = malloc(CHUNK);
  if (!pat || !buf) {
    perror("malloc");
    exit(2);
  }
  uint64_t s = 0x5eed;
  for (size_t i = 0; i < PERIOD; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    pat[i] = (unsigned char)(s >> 56);
  }
  for (size_t i = PERIOD; i < PERIOD + CHUNK; i++) pat[i] = pat[i - PERIOD];

  bulk_t b = {.fd = tlsgen_connect(g), .want_out = 1};
  if (b.fd < 0) tlsgen_die("connect");
  b.epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT};
  if (b.epfd < 0 || epoll_ctl(b.epfd, EPOLL_CTL_ADD, b.fd, &ev) < 0) tlsgen_die("epoll");
  if (!await(&b)) tlsgen_die("connect timed out");
  b.ssl = tlsgen_ssl(g, b.fd);

  tlsgen_cpu_t cpu0, cpu1;
  uint64_t t0 = 0, t1 = 0;
  int ok = handshake(g, &b);
  if (ok) {
    tlsgen_cpu_sample(g, &cpu0);
    t0 = tlsgen_now_ns();
    ok = transfer(&b, pat, buf, total);
    t1 = tlsgen_now_ns();
    tlsgen_cpu_sample(g, &cpu1);
    ERR_clear_error();
    SSL_shutdown(b.ssl);
  }
  SSL_free(b.ssl);
  close(b.fd);
  close(b.epfd);
  free(pat);
  free(buf);

  double secs = ok ? (t1 - t0) / 1e9 : 0;
  double mib = (double)total / 1048576.0;
  printf("bench=tls_bulk\nimpl=%s\nbytes=%llu\nmib=%.0f\nn=1\n", g->impl, (unsigned long long)total, mib);
  if (ok && secs > 0) {
    printf("seconds=%.6f\nops_per_sec=%.3f\nmib_per_sec=%.1f\n", secs, 1 / secs, mib / secs);
    tlsgen_print_cpu(&cpu0, &cpu1, secs, mib, "mib");
  }
  tlsgen_print_session(g);
  printf("errors=%d\n", ok ? 0 : 1);
  return ok ? 0 : 1;
}
