/* bench/limits/c_http_server.c: the limit of bench/http.sh. One thread,
 * epoll, level-triggered, nonblocking sockets with TCP_NODELAY (as
 * bench/echo/c_echo_server.c). Per readable event one read of up to 64 KiB;
 * every complete request in it (a header block ending in an empty line;
 * only GET / is asked by wrk, and no body is read) gets the fixed reply of
 * examples/http_server.lua to GET /, all of them in one send; "Connection:
 * close" closes the connection after its reply. A partial request is kept
 * for the next read. No parsing beyond finding the end of each request and
 * that header: what is left is the system calls and the copy of the reply.
 *
 *   c_http_server HOST PORT       (exits with status 0 on SIGTERM or SIGINT)
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_BYTES 65536

static const char REPLY[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
                            "Connection: keep-alive\r\n\r\nHello, world!\n";
#define REPLY_BYTES (sizeof REPLY - 1)
/* a request is at least 18 bytes ("GET / HTTP/1.1\r\n\r\n"): a read of
 * BUF_BYTES holds fewer than BUF_BYTES / 16 of them */
#define OUT_BYTES ((BUF_BYTES / 16 + 1) * REPLY_BYTES)

typedef struct {
  char *pending; /* unsent reply bytes (malloc'd), or NULL */
  size_t len, off;
  char *part; /* the start of a request not complete yet (malloc'd), or NULL */
  size_t partlen;
  int closing; /* close once pending is sent */
} conn_t;

struct server {
  conn_t *conns; /* indexed by descriptor */
  size_t nslots;
  int ep;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

static conn_t *slot(struct server *s, int fd) {
  if ((size_t)fd >= s->nslots) {
    size_t n = s->nslots ? s->nslots : 1024;
    while (n <= (size_t)fd) n *= 2;
    conn_t *more = realloc(s->conns, n * sizeof *more);
    if (!more) die("realloc");
    memset(more + s->nslots, 0, (n - s->nslots) * sizeof *more);
    s->conns = more;
    s->nslots = n;
  }
  return &s->conns[fd];
}

static void drop(struct server *s, int fd) {
  conn_t *c = slot(s, fd);
  free(c->pending);
  free(c->part);
  memset(c, 0, sizeof *c);
  epoll_ctl(s->ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

static void interest(struct server *s, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl");
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

/* Does the header block h[0..len) have "Connection: close"? */
static int wants_close(const char *h, size_t len) {
  static const char name[] = "\nconnection:";
  for (size_t i = 0; i + sizeof name - 1 < len; i++) {
    if (h[i] != '\n' || strncasecmp(h + i, name, sizeof name - 1) != 0) continue;
    size_t j = i + sizeof name - 1;
    while (j < len && (h[j] == ' ' || h[j] == '\t')) j++;
    return len - j >= 5 && strncasecmp(h + j, "close", 5) == 0;
  }
  return 0;
}

/* Reads from fd, answers the complete requests. */
static void on_readable(struct server *s, int fd, char *buf, char *out) {
  conn_t *c = slot(s, fd);
  size_t have = c->partlen;
  if (c->part) memcpy(buf, c->part, have);
  ssize_t r = read(fd, buf + have, BUF_BYTES - have);
  if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (r <= 0) { /* end of stream or error */
    drop(s, fd);
    return;
  }
  have += (size_t)r;
  size_t start = 0, outlen = 0;
  for (size_t i = 3; i < have; i++) {
    if (buf[i] != '\n' || buf[i - 1] != '\r' || buf[i - 2] != '\n' || buf[i - 3] != '\r') continue;
    memcpy(out + outlen, REPLY, REPLY_BYTES);
    outlen += REPLY_BYTES;
    if (wants_close(buf + start, i + 1 - start)) c->closing = 1;
    start = i + 1;
    if (c->closing) break;
  }
  free(c->part);
  c->part = NULL;
  c->partlen = 0;
  if (start < have && !c->closing) {
    if (have - start > BUF_BYTES / 2) { /* an over-long request: give up */
      drop(s, fd);
      return;
    }
    c->partlen = have - start;
    c->part = malloc(c->partlen);
    if (!c->part) die("malloc");
    memcpy(c->part, buf + start, c->partlen);
  }
  ssize_t w = send_all(fd, out, outlen);
  if (w < 0) {
    drop(s, fd);
  } else if ((size_t)w < outlen) {
    c->len = outlen - (size_t)w;
    c->off = 0;
    c->pending = malloc(c->len);
    if (!c->pending) die("malloc");
    memcpy(c->pending, out + w, c->len);
    interest(s, fd, EPOLLOUT);
  } else if (c->closing) {
    drop(s, fd);
  }
}

static void on_writable(struct server *s, int fd) {
  conn_t *c = slot(s, fd);
  ssize_t w = send_all(fd, c->pending + c->off, c->len - c->off);
  if (w < 0) {
    drop(s, fd);
    return;
  }
  c->off += (size_t)w;
  if (c->off < c->len) return;
  free(c->pending);
  c->pending = NULL;
  if (c->closing) drop(s, fd);
  else interest(s, fd, EPOLLIN);
}

static int listen_on(const char *host, const char *port) {
  struct addrinfo hints, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "c_http_server: %s:%s: %s\n", host, port, gai_strerror(gai));
    exit(2);
  }
  int lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0) die("bind");
  if (listen(lfd, SOMAXCONN) < 0) die("listen");
  freeaddrinfo(ai);
  return lfd;
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

  struct server s = {.conns = NULL, .nslots = 0, .ep = epoll_create1(EPOLL_CLOEXEC)};
  if (s.ep < 0) die("epoll_create1");
  int lfd = listen_on(argv[1], argv[2]);
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(s.ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");

  static char buf[BUF_BYTES], out[OUT_BYTES];
  struct epoll_event evs[256];
  int one = 1;
  while (!stop) {
    int n = epoll_wait(s.ep, evs, 256, -1);
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
          memset(slot(&s, cfd), 0, sizeof(conn_t));
          struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
          if (epoll_ctl(s.ep, EPOLL_CTL_ADD, cfd, &ev) < 0) die("epoll_ctl");
        }
      } else if (slot(&s, fd)->pending) { /* waiting to finish a write */
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(&s, fd);
      } else {
        on_readable(&s, fd, buf, out);
      }
    }
  }
  return 0;
}
