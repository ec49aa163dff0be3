/*
 * TLS echo server in plain C on OpenSSL: one thread, epoll, level-triggered,
 * nonblocking sockets with TCP_NODELAY, one SSL object per connection
 * reading and writing its descriptor (rule 4). The limit the other TLS
 * echo servers are measured against: what is left is the crypto and one
 * recv and one send per round trip.
 *
 *   c_tls_echo_server HOST PORT CERTFILE KEYFILE   (status 0 on SIGTERM/SIGINT)
 *
 * Rules:
 *  1. A connection is run as far as it goes on every event (drive()):
 *     SSL_read until OpenSSL wants more bytes from the socket (it may hold
 *     decrypted records the descriptor no longer shows), each chunk written
 *     back at once.
 *  2. Should a write not go through (the socket is full), the rest is kept
 *     and the connection waits for writability and reads nothing more until
 *     it is written (the echo's back-pressure), retrying the same bytes as
 *     OpenSSL requires.
 *  3. Context: TLS 1.2 and 1.3, OpenSSL's default cipher suites, groups and
 *     session tickets (two per TLS 1.3 handshake), read-ahead on (a read
 *     takes what the socket has rather than a record header then its body).
 *  4. OpenSSL reads through a BIO of this file (recv, send): a read that
 *     comes back short of what was asked marks the connection drained, and
 *     until epoll reports it readable again a read says "retry" without a
 *     system call (a round trip: one recv and one send, not a second recv
 *     that fails with EAGAIN).
 *
 * Build: cc -O2 -o c_tls_echo_server c_tls_echo_server.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_BYTES 65536

typedef struct {
  SSL *ssl;
  unsigned char *pending; /* bytes still to write (malloc'd), or NULL */
  size_t len, off;
  uint32_t events;
  int drained; /* rule 4 */
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

/* ---- the BIO (rule 4); its data is the descriptor ---- */

static int bio_fd(BIO *b) {
  return (int)(intptr_t)BIO_get_data(b);
}

static int bio_read(BIO *b, char *buf, int len) {
  int fd = bio_fd(b);
  conn_t *c = slot(fd);
  BIO_clear_retry_flags(b);
  if (c->drained) {
    BIO_set_retry_read(b);
    return -1;
  }
  ssize_t n;
  do n = recv(fd, buf, (size_t)len, 0); while (n < 0 && errno == EINTR);
  if (n > 0 && n < len) c->drained = 1;
  if (n >= 0) return (int)n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
  return -1;
}

static int bio_write(BIO *b, const char *buf, int len) {
  ssize_t n;
  BIO_clear_retry_flags(b);
  do n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  if (n >= 0) return (int)n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
  return -1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static BIO_METHOD *bio_method(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "echo socket");
  if (!m || !BIO_meth_set_read(m, bio_read) || !BIO_meth_set_write(m, bio_write) ||
      !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create))
    die("BIO_meth_new");
  return m;
}

static void drop(int ep, int fd) {
  conn_t *c = slot(fd);
  if (c->ssl) SSL_free(c->ssl);
  free(c->pending);
  memset(c, 0, sizeof *c);
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
}

static void interest(int ep, int fd, uint32_t events) {
  conn_t *c = slot(fd);
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0) die("epoll_ctl");
  c->events = events;
}

/* After an SSL call returned n <= 0: 1 if it only waits for the socket
   (interest set accordingly), 0 if the connection is over. */
static int waits(int ep, int fd, int n) {
  int err = SSL_get_error(slot(fd)->ssl, n);
  if (err == SSL_ERROR_WANT_READ) {
    interest(ep, fd, EPOLLIN);
    return 1;
  }
  if (err == SSL_ERROR_WANT_WRITE) {
    interest(ep, fd, EPOLLOUT);
    return 1;
  }
  if (err == SSL_ERROR_ZERO_RETURN) { /* close_notify: answer it */
    ERR_clear_error();
    SSL_shutdown(slot(fd)->ssl);
  }
  ERR_clear_error();
  return 0;
}

/* Write c->pending from c->off; 1 when all is written or it waits, 0 over. */
static int flush(int ep, int fd, conn_t *c) {
  while (c->off < c->len) {
    ERR_clear_error();
    int n = SSL_write(c->ssl, c->pending + c->off, (int)(c->len - c->off));
    if (n <= 0) return waits(ep, fd, n);
    c->off += (size_t)n;
  }
  free(c->pending);
  c->pending = NULL;
  return 1;
}

/* Rule 1: read and echo until OpenSSL wants the socket. */
static void drive(int ep, int fd, unsigned char *buf) {
  conn_t *c = slot(fd);
  if (c->pending) {
    if (!flush(ep, fd, c)) {
      drop(ep, fd);
      return;
    }
    if (c->pending) return; /* rule 2 */
  }
  for (;;) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf, BUF_BYTES);
    if (n <= 0) {
      if (!waits(ep, fd, n)) drop(ep, fd);
      return;
    }
    size_t off = 0;
    while (off < (size_t)n) {
      ERR_clear_error();
      int w = SSL_write(c->ssl, buf + off, n - (int)off);
      if (w <= 0) {
        int err = SSL_get_error(c->ssl, w);
        if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) {
          ERR_clear_error();
          drop(ep, fd);
          return;
        }
        c->len = (size_t)n - off; /* rule 2: keep the rest, retry it later */
        c->off = 0;
        c->pending = malloc(c->len);
        if (!c->pending) die("malloc");
        memcpy(c->pending, buf + off, c->len);
        interest(ep, fd, err == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
        return;
      }
      off += (size_t)w;
    }
  }
}

static SSL_CTX *server_ctx(const char *cert, const char *key) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    fprintf(stderr, "c_tls_echo_server: context (%s, %s):\n", cert, key);
    ERR_print_errors_fp(stderr);
    exit(2);
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  return ctx;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s HOST PORT CERTFILE KEYFILE\n", argv[0]);
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  SSL_CTX *ctx = server_ctx(argv[3], argv[4]);
  BIO_METHOD *method = bio_method();

  struct addrinfo hints, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  int gai = getaddrinfo(argv[1], argv[2], &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "c_tls_echo_server: %s:%s: %s\n", argv[1], argv[2], gai_strerror(gai));
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

  static unsigned char buf[BUF_BYTES];
  struct epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd != lfd) {
        conn_t *c = slot(fd);
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) c->drained = 0;
        if (c->ssl) drive(ep, fd, buf);
        continue;
      }
      for (;;) {
        int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK) perror("accept4");
          break; /* EAGAIN, or out of descriptors: try again on the next event */
        }
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn_t *c = slot(cfd);
        c->ssl = SSL_new(ctx);
        BIO *bio = c->ssl ? BIO_new(method) : NULL;
        if (!bio) die("SSL_new");
        BIO_set_data(bio, (void *)(intptr_t)cfd);
        SSL_set_bio(c->ssl, bio, bio);
        SSL_set_accept_state(c->ssl);
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) < 0) die("epoll_ctl");
        drive(ep, cfd, buf); /* the client's hello may be there already */
      }
    }
  }
  SSL_CTX_free(ctx);
  BIO_meth_free(method);
  return 0;
}
