/*
 * Idle connections for the echo servers' memory benchmark: one thread, epoll.
 *
 *   idle_clients HOST PORT CONNS [HOLD_SECONDS]
 *
 * Opens CONNS TCP connections to HOST:PORT (at most 64 being set up at a
 * time), sends one 16-byte message on each ("idle" and the connection's
 * number) and reads its echo back, checking it, so that the server has set up
 * everything it keeps per connection (task, buffers). When all are done it
 * prints `ready conns=N setup_seconds=S` on stdout, then holds them all open
 * and idle until SIGTERM or SIGINT, or HOLD_SECONDS (default 120) have
 * passed, and exits with status 0. A connection the server closes while held
 * is reported on stderr. A failed connection, a wrong echo or a setup longer
 * than 120 s is an error: message on stderr, exit status 1.
 *
 * Needs CONNS + a few descriptors: raise `ulimit -n` first.
 *
 * Build: cc -O2 -o idle_clients idle_clients.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_BYTES 16
#define IN_FLIGHT 64
#define SETUP_LIMIT_S 120.0

enum { S_CONNECTING, S_SENT, S_DONE, S_CLOSED };

typedef struct {
  int fd, state, got;
  char msg[MSG_BYTES + 1];
  char echo[MSG_BYTES];
} conn_t;

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s HOST PORT CONNS [HOLD_SECONDS]\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[3]);
  double hold = argc > 4 ? atof(argv[4]) : 120.0;
  if (n < 1 || hold < 0) {
    fprintf(stderr, "idle_clients: bad arguments\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(argv[1], argv[2], &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "idle_clients: %s:%s: %s\n", argv[1], argv[2], gai_strerror(gai));
    return 2;
  }
  conn_t *c = calloc((size_t)n, sizeof *c);
  if (!c) die("calloc");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");

  int started = 0, in_flight = 0, done = 0;
  double t0 = now_s();
  struct epoll_event evs[256];
  while (done < n) {
    while (in_flight < IN_FLIGHT && started < n) { /* start more connects */
      conn_t *k = &c[started];
      snprintf(k->msg, sizeof k->msg, "idle%012d", started);
      k->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (k->fd < 0) {
        fprintf(stderr, "idle_clients: socket %d of %d: %s\n", started + 1, n, strerror(errno));
        return 1;
      }
      int one = 1;
      setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connect(k->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) die("connect");
      k->state = S_CONNECTING;
      struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)started};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev) < 0) die("epoll_ctl");
      started++;
      in_flight++;
    }
    double left = SETUP_LIMIT_S - (now_s() - t0);
    if (stop || left <= 0) {
      fprintf(stderr, "idle_clients: %s with %d of %d connections set up\n",
              stop ? "stopped" : "setup limit reached", done, n);
      return 1;
    }
    int m = epoll_wait(ep, evs, 256, (int)(left * 1000) + 1);
    if (m < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < m; e++) {
      int i = (int)evs[e].data.u32;
      conn_t *k = &c[i];
      if (k->state == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          fprintf(stderr, "idle_clients: connection %d: connect: %s\n", i, strerror(err));
          return 1;
        }
        /* 16 bytes always fit in an empty socket buffer */
        if (send(k->fd, k->msg, MSG_BYTES, MSG_NOSIGNAL) != MSG_BYTES) die("send");
        k->state = S_SENT;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &ev) < 0) die("epoll_ctl");
      } else if (k->state == S_SENT) {
        ssize_t r = recv(k->fd, k->echo + k->got, MSG_BYTES - k->got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
          fprintf(stderr, "idle_clients: connection %d: %s before its echo\n", i,
                  r == 0 ? "closed by the server" : strerror(errno));
          return 1;
        }
        k->got += (int)r;
        if (k->got < MSG_BYTES) continue;
        if (memcmp(k->echo, k->msg, MSG_BYTES) != 0) {
          fprintf(stderr, "idle_clients: connection %d: wrong echo\n", i);
          return 1;
        }
        k->state = S_DONE; /* stays registered for EPOLLIN: a close shows */
        done++;
        in_flight--;
      } else { /* S_DONE: readable again, closed (or bytes nobody asked for) */
        fprintf(stderr, "idle_clients: connection %d: closed by the server after its echo\n", i);
        return 1;
      }
    }
  }
  freeaddrinfo(ai);
  printf("ready conns=%d setup_seconds=%.3f\n", n, now_s() - t0);
  fflush(stdout);

  double t_end = now_s() + hold;
  int closed = 0;
  while (!stop) {
    double left = t_end - now_s();
    if (left <= 0) break;
    int m = epoll_wait(ep, evs, 256, (int)(left * 1000) + 1);
    if (m < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < m; e++) { /* an idle connection became readable */
      conn_t *k = &c[evs[e].data.u32];
      char b[64];
      ssize_t r = recv(k->fd, b, sizeof b, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r > 0) fprintf(stderr, "idle_clients: unexpected bytes on an idle connection\n");
      epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
      k->state = S_CLOSED;
      if (closed++ == 0) fprintf(stderr, "idle_clients: the server closed a held connection\n");
    }
  }
  return 0;
}
