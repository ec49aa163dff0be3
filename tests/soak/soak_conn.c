/*
 * One connection's life in the soak's load generator, plain TCP or TLS.
 *
 * Rules:
 *  1. A slot holds one connection at a time; when it ends (as its fate
 *     says, or by an error) the slot opens the next one, until the run
 *     stops. Every choice (fate, rounds, sizes, where a reset cuts) comes
 *     from the slot's own generator, seeded from the run's seed and the
 *     slot's number, so a run's choices do not depend on timing.
 *  2. A round is one request and its whole response, which is compared
 *     byte for byte with what it must be (the echo of the body, or the
 *     exact HTTP response) as it arrives. Nothing is read past the round:
 *     a byte the server sends early stays in the socket and fails the next
 *     round's comparison, so no byte goes unchecked.
 *  3. Payload bytes are a function of the connection's seed and their
 *     offset (soak_bytes): a stuck connection can check its echo at the
 *     end without keeping what it sent. A stuck HTTP connection sends the
 *     same request again and again (STUCK_BODY bytes of payload each), so
 *     that its n-th response is known from n (stuck_fill).
 *  4. The injected ends are checked, not just caused: a half-closed
 *     connection must still get all of its last response and then an end
 *     of stream; a marked connection of the raise server must get an end
 *     (or a reset) and no byte. Anything else is an error, counted and
 *     described on stderr (the first few).
 *  5. At most MAX_UNSERVED connections to a server are open and not yet
 *     served (their first round not done) at a time; the others wait
 *     their turn, as a client pool would. Thousands of connects at once overflow the
 *     servers' listen backlog (128, curio's default), the kernel answers
 *     with SYN cookies, and some of those fail and reset the connection:
 *     a test of the kernel, not of the server. Pending connections stay
 *     below the backlog, also while accept meets EMFILE.
 */
#define _GNU_SOURCE
#include "soak.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUCK_BUF 16384 /* the stuck connections' small socket buffers */
#define MAX_UNSERVED 96  /* rule 5 */

const char *const soak_kind_names[K_NKINDS] = {"echo", "http", "tls", "raise",
                                               "stuck_echo", "stuck_http", "stuck_tls"};

#define STUCK_BODY 1000
static const char stuck_request[] = "POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: 1000\r\n\r\n";
static const char stuck_response[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n"
                                     "Connection: keep-alive\r\n\r\n";

/* splitmix64: one step of a 64-bit generator. */
uint64_t soak_mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint32_t below(soak_conn_t *c, uint32_t n) { return (uint32_t)(soak_mix(&c->rng) % n); }

/* The payload bytes [off, off + n) of the stream seeded by seed (rule 3). */
static void soak_bytes(uint64_t seed, uint64_t off, unsigned char *out, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint64_t word = off + i, s = seed ^ ((word >> 3) * 0xd6e8feb86659fd93ULL);
    uint64_t v = soak_mix(&s);
    unsigned k = (unsigned)(word & 7);
    for (; k < 8 && i < n; k++, i++) out[i] = (unsigned char)(v >> (8 * k));
  }
}

/* A stuck connection's bytes [off, off + n) either way (rule 3): the
   payload itself on an echo server; on the HTTP server, requests (tx) or
   responses (rx) of STUCK_BODY payload bytes each. */
static void stuck_fill(const soak_conn_t *c, uint64_t off, unsigned char *out, size_t n, int rx) {
  if (soak_server_of(c->kind) != K_HTTP) {
    soak_bytes(c->data_seed, off, out, n);
    return;
  }
  const char *head = rx ? stuck_response : stuck_request;
  size_t h = rx ? sizeof stuck_response - 1 : sizeof stuck_request - 1, unit = h + STUCK_BODY;
  for (size_t i = 0, m; i < n; i += m) {
    uint64_t o = off + i, k = o / unit;
    size_t p = (size_t)(o % unit);
    if (p < h) {
      m = h - p < n - i ? h - p : n - i;
      memcpy(out + i, head + p, m);
    } else {
      m = unit - p < n - i ? unit - p : n - i;
      soak_bytes(c->data_seed, k * STUCK_BODY + (p - h), out + i, m);
    }
  }
}

static void set_events(soak_t *g, soak_conn_t *c, int events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = (uint32_t)events, .data.u32 = (uint32_t)c->slot};
  if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) perror("soak: epoll_ctl");
  c->events = events;
}

/* The round's request and response bytes still to go either way. */
static size_t tx_total(const soak_conn_t *c) { return c->req_head_len + c->body_len; }
static size_t tx_done(const soak_conn_t *c) { return c->req_head_sent + c->body_sent; }
static size_t rx_left(const soak_conn_t *c) {
  return (c->resp_head_len - c->resp_head_got) + (c->body_len - c->body_got);
}

/* The connection is served, or ends before: the next waiting slot may
   connect (rule 5). */
static void release(soak_t *g, soak_conn_t *c) {
  if (c->served && !c->ever_served) c->ever_served = 1, g->setup_left--;
  if (!c->unserved) return;
  int k = soak_server_of(c->kind);
  c->unserved = 0;
  g->unserved[k]--;
  while (!g->stopping && g->queue_len[k] > 0 && g->unserved[k] < MAX_UNSERVED) {
    int slot = g->queue[k][g->queue_head[k]];
    g->queue_head[k] = (g->queue_head[k] + 1) % g->nslots;
    g->queue_len[k]--;
    soak_open(g, &g->slots[slot]);
  }
}

/* Ends the connection: an RST when linger0, else an orderly close (TLS: a
   close_notify first). The slot opens the next one unless the run stops. */
static void finish(soak_t *g, soak_conn_t *c, int linger0) {
  if (c->ssl) {
    if (!linger0) SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (linger0) {
    struct linger l = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
  epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  c->state = S_IDLE;
  g->live--;
  g->st[c->kind].conns_done++;
  release(g, c);
  if (!g->stopping) soak_open(g, c);
}

void soak_abandon(soak_t *g, soak_conn_t *c, const char *why) {
  soak_stats_t *st = &g->st[c->kind];
  if (c->state == S_IDLE) return;
  if (st->errors < 5)
    soak_note("soak: %s connection (slot %d) at %.1f s, round %u from the end, %zu of %zu bytes back: %s",
              soak_kind_names[c->kind], c->slot, (double)(soak_now_ns() - g->t0) / 1e9,
              (unsigned)c->rounds_left, c->resp_head_got + c->body_got, c->resp_head_len + c->body_len, why);
  st->errors++;
  if (c->state == S_ROUND || c->state == S_WAIT_END) st->bytes_lost += rx_left(c);
  if (c->state == S_DRAIN) st->bytes_lost += c->rx_goal - c->rx_off;
  finish(g, c, 1);
}

/* Plain or TLS I/O: > 0 bytes, 0 would block, -1 the end (reads), -2 an error
   (errno set, or EPROTO for TLS). */
static ssize_t conn_write(soak_conn_t *c, const void *p, size_t n) {
  if (!c->ssl) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w >= 0) return w;
    return errno == EAGAIN || errno == EINTR ? 0 : -2;
  }
  ERR_clear_error();
  int w = SSL_write(c->ssl, p, (int)n);
  if (w > 0) return w;
  int e = SSL_get_error(c->ssl, w);
  if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
  if (e != SSL_ERROR_SYSCALL || errno == 0) errno = EPROTO;
  return -2;
}

static ssize_t conn_read(soak_conn_t *c, void *p, size_t n) {
  if (!c->ssl) {
    ssize_t r = recv(c->fd, p, n, 0);
    if (r > 0) return r;
    if (r == 0) return -1;
    return errno == EAGAIN || errno == EINTR ? 0 : -2;
  }
  ERR_clear_error();
  int r = SSL_read(c->ssl, p, (int)n);
  if (r > 0) return r;
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  if (e == SSL_ERROR_ZERO_RETURN) return -1; /* close_notify (or an EOF: SSL_OP_IGNORE_UNEXPECTED_EOF) */
  if (e != SSL_ERROR_SYSCALL || errno == 0) errno = EPROTO;
  return -2;
}

/* The HTTP request of a round and the exact response it must get. */
static void http_round(soak_conn_t *c, int last) {
  const char *conn = last ? "close" : "keep-alive", *hdr = last ? "Connection: close\r\n" : "";
  if (below(c, 10) == 0) { /* GET / */
    c->body_len = 0;
    c->req_head_len = (size_t)snprintf(c->req_head, sizeof c->req_head,
                                       "GET / HTTP/1.1\r\nHost: soak\r\n%s\r\n", hdr);
    c->resp_head_len = (size_t)snprintf(
        c->resp_head, sizeof c->resp_head,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n"
        "Connection: %s\r\n\r\nHello, world!\n", conn);
    return;
  }
  c->body_len = below(c, 4097);
  c->req_head_len = (size_t)snprintf(c->req_head, sizeof c->req_head,
                                     "POST /echo HTTP/1.1\r\nHost: soak\r\nContent-Length: %zu\r\n%s\r\n",
                                     c->body_len, hdr);
  c->resp_head_len = (size_t)snprintf(c->resp_head, sizeof c->resp_head,
                                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                      "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
                                      c->body_len, conn);
}

static void start_round(soak_t *g, soak_conn_t *c) {
  if (g->stopping) { /* connected (or shaken hands) after the run: just close */
    finish(g, c, 0);
    return;
  }
  int last = c->rounds_left == 1;
  c->req_head_len = c->resp_head_len = c->req_head_sent = c->resp_head_got = 0;
  c->body_sent = c->body_got = 0;
  c->body_base = c->tx_off;
  c->state = S_ROUND;
  if (c->kind == K_HTTP) {
    http_round(c, last && c->fate == F_CLOSE);
  } else {
    /* mostly small messages, some up to 64 KiB */
    c->body_len = below(c, 20) == 0 ? 1 + below(c, 65536) : 1 + below(c, 4096);
    if (c->kind == K_RAISE && c->fate == F_RAISE) {
      memcpy(c->req_head, "RAISE!", 6);
      c->req_head_len = 6;
      c->body_len = below(c, 100);
    } else if (c->kind == K_RAISE && c->tx_off == 0) {
      memcpy(c->req_head, "HELLO!", 6);
      memcpy(c->resp_head, "HELLO!", 6);
      c->req_head_len = c->resp_head_len = 6;
    }
  }
  if (c->fate == F_RESET && c->rounds_left == c->reset_round) { /* cut it mid-message */
    if (c->body_len < 2) c->body_len = 2;
    c->cut = 1 + below(c, (uint32_t)(tx_total(c) - 1));
  }
  set_events(g, c, EPOLLIN);
}

/* Sends what is left of the round's request (up to a reset's cut). Returns
   0 when it is all out (or the socket is full), -1 when the connection ended. */
static int push(soak_t *g, soak_conn_t *c) {
  size_t limit = tx_total(c);
  int resetting = c->fate == F_RESET && c->rounds_left == c->reset_round;
  if (resetting) limit = c->cut;
  while (tx_done(c) < limit) {
    size_t n = 0, done = tx_done(c);
    if (c->req_head_sent < c->req_head_len) {
      n = c->req_head_len - c->req_head_sent;
      memcpy(g->scratch, c->req_head + c->req_head_sent, n);
    }
    size_t body_n = limit - done - n;
    if (body_n > sizeof g->scratch - n) body_n = sizeof g->scratch - n;
    soak_bytes(c->data_seed, c->body_base + c->body_sent, g->scratch + n, body_n);
    ssize_t w = conn_write(c, g->scratch, n + body_n);
    if (w == 0) {
      c->want_write = 1;
      set_events(g, c, EPOLLIN | EPOLLOUT);
      return 0;
    }
    if (w < 0) {
      if (c->fate == F_RAISE) { /* the server may have gone already: the read says how */
        c->state = S_WAIT_END;
        return 0;
      }
      char why[96];
      snprintf(why, sizeof why, "send: %s", strerror(errno));
      soak_abandon(g, c, why);
      return -1;
    }
    size_t head_part = (size_t)w < n ? (size_t)w : n;
    c->req_head_sent += head_part;
    c->body_sent += (size_t)w - head_part;
    g->st[c->kind].bytes_sent += (uint64_t)w;
  }
  c->want_write = 0;
  set_events(g, c, EPOLLIN);
  if (resetting) {
    g->st[c->kind].resets++;
    finish(g, c, 1);
    return -1;
  }
  if (c->fate == F_HALFCLOSE && c->rounds_left == 1) {
    if (c->ssl) SSL_shutdown(c->ssl);
    else shutdown(c->fd, SHUT_WR);
  }
  if (c->fate == F_RAISE) c->state = S_WAIT_END;
  return 0;
}

/* The round is complete: what the fate says comes next. */
static void round_done(soak_t *g, soak_conn_t *c) {
  g->st[c->kind].round_trips++;
  if (!c->served) c->served = 1, g->st[c->kind].conns_served++, release(g, c);
  c->tx_off = c->body_base + c->body_len;
  c->rx_off = c->tx_off;
  c->rounds_left--;
  if (c->rounds_left == 0 && (c->fate == F_HALFCLOSE || c->kind == K_HTTP)) {
    c->state = S_WAIT_END; /* the server must end the stream */
    return;
  }
  if (c->rounds_left == 0 || g->stopping) {
    finish(g, c, 0);
    return;
  }
  start_round(g, c);
}

/* Compares a received chunk with what the round expects. */
static int check(soak_t *g, soak_conn_t *c, const unsigned char *p, size_t n) {
  size_t i = 0;
  if (c->resp_head_got < c->resp_head_len) {
    size_t k = c->resp_head_len - c->resp_head_got;
    if (k > n) k = n;
    if (memcmp(p, c->resp_head + c->resp_head_got, k) != 0) return -1;
    c->resp_head_got += k;
    i = k;
  }
  if (i < n) {
    soak_bytes(c->data_seed, c->body_base + c->body_got, g->expect, n - i);
    if (memcmp(p + i, g->expect, n - i) != 0) return -1;
    c->body_got += n - i;
  }
  g->st[c->kind].bytes_checked += n;
  return 0;
}

/* The connection ended where its fate expected it to (rule 4). */
static void ended_as_expected(soak_t *g, soak_conn_t *c) {
  if (c->fate == F_HALFCLOSE) g->st[c->kind].halfcloses++;
  if (c->fate == F_RAISE) g->st[c->kind].raises++;
  finish(g, c, 0);
}

/* Reads what the state expects, as long as there is some. */
static void pull(soak_t *g, soak_conn_t *c) {
  while (c->fd >= 0 && (c->state == S_ROUND || c->state == S_WAIT_END || c->state == S_DRAIN)) {
    if (c->state == S_ROUND && tx_done(c) < tx_total(c)) return; /* (push first) */
    size_t want = c->state == S_ROUND ? rx_left(c)
                : c->state == S_DRAIN ? (size_t)(c->rx_goal - c->rx_off) : 1;
    if (want > sizeof g->scratch) want = sizeof g->scratch;
    if (c->state == S_DRAIN && want == 0) {
      if (c->tx_off < c->tx_goal) return; /* (cannot be: its responses wait for it) */
      finish(g, c, 0);
      return;
    }
    ssize_t r = conn_read(c, g->scratch, want);
    if (r == 0) return;
    if (c->state == S_WAIT_END) {
      if (r == -1 || (r == -2 && c->fate == F_RAISE && errno == ECONNRESET)) ended_as_expected(g, c);
      else if (r > 0) soak_abandon(g, c, "bytes after the last response");
      else soak_abandon(g, c, strerror(errno));
      return;
    }
    if (r < 0) {
      soak_abandon(g, c, r == -1 ? "the server ended the stream mid-response" : strerror(errno));
      return;
    }
    if (c->state == S_DRAIN) {
      stuck_fill(c, c->rx_off, g->expect, (size_t)r, 1);
      if (memcmp(g->scratch, g->expect, (size_t)r) != 0) {
        g->st[c->kind].bytes_corrupt += (uint64_t)r;
        soak_abandon(g, c, "a stuck connection's echo differs");
        return;
      }
      c->rx_off += (uint64_t)r;
      g->st[c->kind].bytes_checked += (uint64_t)r;
      continue;
    }
    if (check(g, c, g->scratch, (size_t)r) < 0) {
      g->st[c->kind].bytes_corrupt += (uint64_t)r;
      soak_abandon(g, c, "a response differs from what was expected");
      return;
    }
    if (rx_left(c) == 0) round_done(g, c);
  }
}

/* A stuck connection sends as long as the server takes bytes (up to
   tx_goal when it drains), and never reads until it drains. */
static void stuck_push(soak_t *g, soak_conn_t *c) {
  for (;;) {
    size_t n = sizeof g->scratch;
    if (c->state == S_DRAIN && c->tx_goal - c->tx_off < n) n = (size_t)(c->tx_goal - c->tx_off);
    if (n == 0) break;
    stuck_fill(c, c->tx_off, g->scratch, n, 0);
    ssize_t w = conn_write(c, g->scratch, n);
    if (w == 0) { /* (TLS: a record may wait in OpenSSL until this write is retried) */
      c->want_write = 1;
      c->cut = n;
      if (c->state == S_DRAIN) set_events(g, c, EPOLLIN | EPOLLOUT);
      return;
    }
    c->want_write = 0;
    if (w < 0) {
      soak_abandon(g, c, strerror(errno));
      return;
    }
    c->tx_off += (uint64_t)w;
    g->st[c->kind].bytes_sent += (uint64_t)w;
  }
  if (c->state == S_DRAIN) set_events(g, c, EPOLLIN);
}

/* Connected (TLS: the handshake done): its rounds, or its stuck life. */
static void begin(soak_t *g, soak_conn_t *c) {
  if (!soak_is_stuck(c->kind)) {
    start_round(g, c);
    return;
  }
  if (g->stopping) {
    finish(g, c, 0);
    return;
  }
  c->state = S_STUCK; /* (served: it will not say more) */
  c->served = 1;
  release(g, c);
  set_events(g, c, EPOLLOUT);
}

static void connected(soak_t *g, soak_conn_t *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    char why[96];
    snprintf(why, sizeof why, "connect: %s", strerror(err));
    soak_abandon(g, c, why);
    return;
  }
  if (soak_server_of(c->kind) == K_TLS) {
    c->ssl = SSL_new(g->tls);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
      soak_abandon(g, c, "SSL_new failed");
      return;
    }
    c->state = S_HANDSHAKE;
    set_events(g, c, EPOLLIN);
    return;
  }
  begin(g, c);
}

static void handshake(soak_t *g, soak_conn_t *c) {
  ERR_clear_error();
  int r = SSL_connect(c->ssl);
  if (r == 1) {
    begin(g, c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ) set_events(g, c, EPOLLIN);
  else if (e == SSL_ERROR_WANT_WRITE) set_events(g, c, EPOLLIN | EPOLLOUT);
  else {
    char why[160];
    unsigned long code = ERR_peek_error();
    snprintf(why, sizeof why, "handshake: %s", code ? ERR_reason_error_string(code) : strerror(errno));
    soak_abandon(g, c, why);
  }
}

void soak_on_event(soak_t *g, soak_conn_t *c, uint32_t ev) {
  if (c->state == S_IDLE) return;
  if (c->state == S_CONNECTING) {
    connected(g, c);
    if (c->state == S_CONNECTING || c->state == S_IDLE) return;
  }
  if (c->state == S_HANDSHAKE) {
    handshake(g, c);
    if (c->state == S_HANDSHAKE || c->state == S_IDLE) return;
  }
  if (c->state == S_STUCK) {
    if (ev & (EPOLLERR | EPOLLHUP)) soak_abandon(g, c, "a stuck connection failed");
    else stuck_push(g, c);
    return;
  }
  /* a round: push the request while the socket takes it, read the response */
  while (c->fd >= 0 && c->state == S_ROUND) {
    unsigned rounds = (unsigned)c->rounds_left;
    uint64_t base = c->body_base;
    if (tx_done(c) < tx_total(c) && push(g, c) < 0) return;
    pull(g, c);
    if (c->fd < 0 || c->state != S_ROUND || (rounds == c->rounds_left && base == c->body_base)) break;
  }
  if (c->fd >= 0 && c->state == S_DRAIN) stuck_push(g, c);
  if (c->fd >= 0 && (c->state == S_WAIT_END || c->state == S_DRAIN)) pull(g, c);
}

void soak_open(soak_t *g, soak_conn_t *c) {
  soak_stats_t *st = &g->st[c->kind];
  int k = soak_server_of(c->kind);
  if (g->unserved[k] >= MAX_UNSERVED) { /* its turn comes (rule 5) */
    g->queue[k][(g->queue_head[k] + g->queue_len[k]) % g->nslots] = c->slot;
    g->queue_len[k]++;
    return;
  }
  c->data_seed = soak_mix(&c->rng);
  c->tx_off = c->rx_off = 0;
  c->want_write = c->served = 0;
  c->fate = F_CLOSE;
  c->rounds_left = 1 + below(c, c->kind == K_RAISE ? 5 : 40);
  uint32_t draw = below(c, 1000);
  if (c->kind == K_RAISE) {
    if (draw < 100) c->fate = F_RAISE, c->rounds_left = 1;
  } else if (!soak_is_stuck(c->kind)) {
    if (draw < 10) c->fate = F_RESET; /* 1% */
    else if (draw < 40) c->fate = F_HALFCLOSE; /* 3% */
  }
  c->reset_round = 1 + below(c, c->rounds_left);
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    soak_note("soak: socket: %s", strerror(errno));
    st->errors++;
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (soak_is_stuck(c->kind)) {
    int size = STUCK_BUF;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g->port[soak_server_of(c->kind)])};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->state = S_CONNECTING;
  c->unserved = 1;
  g->unserved[k]++;
  g->live++;
  st->conns_opened++;
  c->events = EPOLLOUT;
  struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)c->slot};
  if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) perror("soak: epoll_ctl");
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
    /* counted, and the slot stays empty: reopening at once could loop */
    soak_note("soak: connect to port %d: %s", g->port[soak_server_of(c->kind)], strerror(errno));
    st->errors++;
    epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = S_IDLE;
    g->live--;
    release(g, c);
  }
}

/* The run is over: rounds finish (round_done), connections still
   connecting close once connected (start_round), stuck ones read back. */
void soak_stop(soak_t *g, soak_conn_t *c) {
  if (c->state == S_STUCK) { /* now it reads back all it must get */
    uint64_t goal = c->tx_off + (c->want_write ? c->cut : 0); /* a write waiting is made whole */
    if (soak_server_of(c->kind) == K_HTTP) { /* its last request whole, then its responses */
      uint64_t req = sizeof stuck_request - 1 + STUCK_BODY, resp = sizeof stuck_response - 1 + STUCK_BODY;
      uint64_t n = (goal + req - 1) / req;
      c->tx_goal = n * req;
      c->rx_goal = n * resp;
    } else {
      c->tx_goal = c->rx_goal = goal;
    }
    c->state = S_DRAIN;
    set_events(g, c, EPOLLIN);
    soak_on_event(g, c, EPOLLIN);
  }
}
