/*
 * Minimal echo server: one thread, epoll, level-triggered, nonblocking
 * sockets with TCP_NODELAY. Per readable event, one read of up to 64 KiB
 * into a shared buffer, then all of it written back. Should the socket not
 * take it all (it never happens with the load generator's one message in
 * flight), the rest is kept for that connection, which then waits for
 * writability instead of reading until it is sent. The limit the other echo
 * servers are measured against.
 *
 *   c_echo_server HOST PORT       (exits with status 0 on SIGTERM or SIGINT)
 *
 * Build: cc -O2 -o c_echo_server c_echo_server.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_BYTES 65536

typedef struct {
  char *pending; /* unsent bytes (malloc'd), or NULL */
  size_t len, off;
} conn_t;

static conn_t *conns; /* indexed by descriptor */
static size_t nslots;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static conn_t *slot(int fd) {
  if ((size_t)fd >= nslots) {
    size_t n = nslots ? nslots : 1024;
    while (n <= (size_t)fd) n *= 2;
    conns = realloc(conns, n * sizeof *conns);
    if (!conns) die("realloc");
    memset(conns + nslots, 0, (n - nslots) * sizeof *conns);
    nslots = n;
  }
  return &conns[fd];
}

static void drop(int ep, int fd) {
  conn_t *c = slot(fd);
  free(c->pending);
  c->pending = NULL;
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

static void interest(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl");
}

/* Send buf[0..len); returns how much was sent, or -1 on a socket error. */
static ssize_t send_all(int fd, const char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t w = send(fd, buf + done, len - done, MSG_NOSIGNAL);
    if (w > 0) done += (size_t)w;
    else if (w < 0 && errno == EINTR) continue;
    else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    else return -1;
  }
  return (ssize_t)done;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
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
  hints.ai_flags = AI_PASSIVE;
  int gai = getaddrinfo(argv[1], argv[2], &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "c_echo_server: %s:%s: %s\n", argv[1], argv[2], gai_strerror(gai));
    return 2;
  }
  int lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0) die("bind");
  if (listen(lfd, SOMAXCONN) < 0) die("listen");
  freeaddrinfo(ai);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");

  static char buf[BUF_BYTES];
  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) perror("accept4");
            break; /* EAGAIN, or out of descriptors: try again on the next event */
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          slot(cfd)->pending = NULL;
          struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0) die("epoll_ctl");
        }
        continue;
      }
      conn_t *c = slot(fd);
      if (c->pending) { /* waiting to finish a write */
        if (!(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        ssize_t w = send_all(fd, c->pending + c->off, c->len - c->off);
        if (w < 0) {
          drop(ep, fd);
          continue;
        }
        c->off += (size_t)w;
        if (c->off == c->len) {
          free(c->pending);
          c->pending = NULL;
          interest(ep, fd, EPOLLIN);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (r <= 0) { /* end of stream or error */
        drop(ep, fd);
        continue;
      }
      ssize_t w = send_all(fd, buf, (size_t)r);
      if (w < 0) {
        drop(ep, fd);
        continue;
      }
      if (w < r) {
        c->len = (size_t)(r - w);
        c->off = 0;
        c->pending = malloc(c->len);
        if (!c->pending) die("malloc");
        memcpy(c->pending, buf + w, c->len);
        interest(ep, fd, EPOLLOUT);
      }
    }
  }
  return 0;
}
