/*
 * Echo-server load generator: one thread, epoll, level-triggered.
 *
 *   loadgen HOST PORT CONNS MSG_BYTES SECONDS [IMPL [WARMUP]]
 *
 * Opens CONNS TCP connections (TCP_NODELAY) to HOST:PORT. Each connection
 * repeatedly sends one message of MSG_BYTES bytes and waits for the whole echo,
 * checking every byte, then sends the next: one round trip in flight per
 * connection. Message content differs per connection and per round: a
 * per-connection pseudo-random pattern with an 8-byte stamp (round number,
 * connection number, block number) at the start of every 64-byte block.
 *
 * Phases: setup (every connection connects and completes one round trip;
 * at most 30 s), warm-up (WARMUP seconds, default 0.5, or env ECHO_WARMUP),
 * measurement (SECONDS), drain (no new rounds; the rounds in flight are
 * finished, at most 5 s, so that every connection closes idle). Only round
 * trips that complete inside the measurement window are counted; the latency
 * of one is from the send of its first byte to the receipt of its last byte.
 *
 * Prints name=value lines: bench=echo_<conns>x<size>, impl (IMPL, else env
 * ECHO_IMPL, else "unknown"), conns, msg_bytes, round_trips, seconds (the
 * measured window), ops_per_sec (round trips per second), p50_us, p99_us,
 * client_cpu (this process's user+system CPU seconds over the window divided
 * by its length: near 1.0 means the load generator itself is saturated),
 * server_cpu (the same for the server, read from /proc/PID/stat, when env
 * ECHO_SERVER_PID names it: all its threads, 10 ms resolution),
 * server_us_per_op (the server's CPU microseconds per round trip over the
 * window: the fair comparison on two CPUs, where a saturated load generator
 * caps ops_per_sec for every server alike; only with server_cpu), other_cpu
 * (user+system CPU seconds per second of the whole machine, from /proc/stat,
 * minus the load generator's and the server's: other processes competing
 * for the CPUs, which make the point unreliable; only with server_cpu) and
 * errors. A byte mismatch, an unexpected end of stream or a socket error is
 * an error (details on stderr); any error makes the exit status 1.
 *
 * Build: cc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SETUP_LIMIT_S 30.0
#define DRAIN_LIMIT_S 5.0
#define SCRATCH_BYTES 65536
#define MAX_MSG_BYTES (16u << 20)

enum { C_CONNECTING, C_BUSY, C_IDLE, C_DEAD };

typedef struct {
  int fd;
  int state;
  int want_out;       /* EPOLLOUT currently registered */
  int setup_done;     /* completed its first round trip */
  uint64_t round;
  size_t sent, got;   /* bytes of the current message sent / echoed back */
  uint64_t t_start;   /* ns, start of the current round trip */
  unsigned char *msg; /* the current message */
} conn_t;

static conn_t *conns;
static int nconns, epfd;
static int alive, busy; /* connections not dead; connecting or mid round trip */
static int setup_left;  /* connections yet to finish (or fail) their first round trip */
static size_t msg_bytes;
static long errors;

static uint32_t *lat;  /* latencies in ns (saturating) of measured round trips */
static size_t nlat, cap_lat;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* user+system CPU seconds of process `pid` (all its threads), or -1 */
static double proc_cpu_seconds(long pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* after the command name, which may hold spaces */
  if (!p) return -1;
  unsigned long long ut, st;
  /* fields 3..15 after the name: state ppid pgrp session tty tpgid flags
     minflt cminflt majflt cmajflt utime stime */
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* user+nice+system CPU seconds of the whole machine, or -1 */
static double machine_cpu_seconds(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  unsigned long long u, n, sy;
  int ok = fscanf(f, "cpu %llu %llu %llu", &u, &n, &sy) == 3;
  fclose(f);
  return ok ? (double)(u + n + sy) / (double)sysconf(_SC_CLK_TCK) : -1;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

/* A 64-bit mixing step (an additive counter run through a finalizer). */
static uint64_t mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* The connection's base pattern: pseudo-random bytes seeded by its number. */
static void fill_pattern(conn_t *c, int idx) {
  uint64_t s = 0x1234567ULL + (uint64_t)idx * 0x10001ULL;
  for (size_t i = 0; i < msg_bytes; i += 8) {
    uint64_t v = mix(&s);
    size_t k = msg_bytes - i < 8 ? msg_bytes - i : 8;
    memcpy(c->msg + i, &v, k);
  }
}

/* Stamp the round into every 64-byte block: the content changes each round. */
static void stamp_round(conn_t *c, int idx) {
  for (size_t i = 0, blk = 0; i < msg_bytes; i += 64, blk++) {
    uint64_t v = (c->round << 24) ^ ((uint64_t)idx << 44) ^ blk ^ 0xa5a5a5a5ULL;
    size_t k = msg_bytes - i < 8 ? msg_bytes - i : 8;
    memcpy(c->msg + i, &v, k);
  }
}

static void set_events(conn_t *c, int idx, int want_out) {
  struct epoll_event ev;
  if (c->want_out == want_out) return;
  ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
  ev.data.u32 = (uint32_t)idx;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
  c->want_out = want_out;
}

static void fail(conn_t *c, int idx, const char *why) {
  if (c->state == C_DEAD) return;
  if (errors < 10)
    fprintf(stderr, "loadgen: connection %d, round %llu: %s\n", idx,
            (unsigned long long)c->round, why);
  else if (errors == 10)
    fprintf(stderr, "loadgen: (further errors not shown)\n");
  errors++;
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  if (c->state == C_BUSY || c->state == C_CONNECTING) busy--;
  alive--;
  if (!c->setup_done) setup_left--;
  c->state = C_DEAD;
}

/* Write what is left of the current message, as far as the socket takes it. */
static void push(conn_t *c, int idx) {
  while (c->sent < msg_bytes) {
    ssize_t w = send(c->fd, c->msg + c->sent, msg_bytes - c->sent, MSG_NOSIGNAL);
    if (w > 0) {
      c->sent += (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_events(c, idx, 1);
      return;
    } else {
      char why[96];
      snprintf(why, sizeof why, "send: %s", strerror(errno));
      fail(c, idx, why);
      return;
    }
  }
  set_events(c, idx, 0);
}

static void start_round(conn_t *c, int idx) {
  c->round++;
  stamp_round(c, idx);
  c->sent = c->got = 0;
  if (c->state == C_IDLE) busy++;
  c->state = C_BUSY;
  c->t_start = now_ns();
  push(c, idx);
}

static void record(uint64_t ns) {
  if (nlat == cap_lat) {
    cap_lat = cap_lat ? cap_lat * 2 : 1 << 16;
    lat = realloc(lat, cap_lat * sizeof *lat);
    if (!lat) die("realloc");
  }
  lat[nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* nearest-rank percentile of the sorted latencies, in microseconds */
static double pct_us(double p) {
  if (nlat == 0) return 0;
  size_t rank = (size_t)(p * (double)nlat + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > nlat) rank = nlat;
  return lat[rank - 1] / 1000.0;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s HOST PORT CONNS MSG_BYTES SECONDS [IMPL [WARMUP]]\n", argv[0]);
    return 2;
  }
  const char *host = argv[1], *port = argv[2];
  nconns = atoi(argv[3]);
  long mb = atol(argv[4]);
  double seconds = atof(argv[5]);
  const char *impl = argc > 6 ? argv[6] : getenv("ECHO_IMPL");
  const char *warm_s = argc > 7 ? argv[7] : getenv("ECHO_WARMUP");
  double warmup = warm_s ? atof(warm_s) : 0.5;
  if (!impl || !*impl) impl = "unknown";
  const char *spid = getenv("ECHO_SERVER_PID");
  long server_pid = spid && *spid ? atol(spid) : 0;
  if (nconns < 1 || mb < 1 || (unsigned long)mb > MAX_MSG_BYTES || seconds <= 0 || warmup < 0) {
    fprintf(stderr, "loadgen: bad arguments\n");
    return 2;
  }
  msg_bytes = (size_t)mb;
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(host, port, &hints, &ai);
  if (gai != 0) {
    fprintf(stderr, "loadgen: %s:%s: %s\n", host, port, gai_strerror(gai));
    return 2;
  }

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  conns = calloc((size_t)nconns, sizeof *conns);
  unsigned char *scratch = malloc(SCRATCH_BYTES);
  if (!conns || !scratch) die("malloc");

  /* Nonblocking connects, all at once; completion shows as writability. */
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &conns[i];
    c->msg = malloc(msg_bytes);
    if (!c->msg) die("malloc");
    fill_pattern(c, i);
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) die("connect");
    c->state = C_CONNECTING;
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
  }
  freeaddrinfo(ai);

  uint64_t t0 = now_ns();
  uint64_t setup_deadline = t0 + (uint64_t)(SETUP_LIMIT_S * 1e9);
  uint64_t meas_start = 0, meas_end = UINT64_MAX, drain_deadline = UINT64_MAX;
  setup_left = alive = busy = nconns;
  double cpu0 = 0, cpu1 = 0, scpu0 = -1, scpu1 = -1, mcpu0 = -1, mcpu1 = -1;
  int in_window = 0, stopping = 0;
  struct epoll_event evs[512];

  for (;;) {
    uint64_t now = now_ns();
    if (setup_left > 0 && now >= setup_deadline) {
      for (int i = 0; i < nconns; i++)
        if (!conns[i].setup_done) fail(&conns[i], i, "no first round trip within the setup limit");
      setup_left = 0;
    }
    if (setup_left == 0 && meas_start == 0) { /* setup over: warm-up starts */
      meas_start = now + (uint64_t)(warmup * 1e9);
      meas_end = meas_start + (uint64_t)(seconds * 1e9);
    }
    if (meas_start && !in_window && now >= meas_start && now < meas_end) {
      in_window = 1;
      cpu0 = cpu_seconds();
      if (server_pid > 0) scpu0 = proc_cpu_seconds(server_pid);
      mcpu0 = machine_cpu_seconds();
    }
    if (!stopping && now >= meas_end) {
      stopping = 1;
      cpu1 = cpu_seconds();
      if (server_pid > 0 && in_window) scpu1 = proc_cpu_seconds(server_pid);
      if (in_window) mcpu1 = machine_cpu_seconds();
      drain_deadline = now + (uint64_t)(DRAIN_LIMIT_S * 1e9);
    }
    if (alive == 0) break;
    if (stopping && busy == 0) break;
    if (stopping && now >= drain_deadline) {
      for (int i = 0; i < nconns; i++)
        if (conns[i].state == C_BUSY) fail(&conns[i], i, "round trip unfinished at the end of the drain");
      break;
    }
    uint64_t next = setup_left > 0 ? setup_deadline
                  : !in_window && now < meas_start ? meas_start
                  : !stopping ? meas_end : drain_deadline;
    int timeout_ms = next > now ? (int)((next - now + 999999) / 1000000) : 0;
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < n; e++) {
      int idx = (int)evs[e].data.u32;
      conn_t *c = &conns[idx];
      uint32_t ev = evs[e].events;
      if (c->state == C_DEAD) continue;
      if (c->state == C_CONNECTING) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          char why[96];
          snprintf(why, sizeof why, "connect: %s", strerror(err));
          fail(c, idx, why);
          continue;
        }
        start_round(c, idx);
        continue;
      }
      if ((ev & EPOLLOUT) && c->state == C_BUSY && c->sent < msg_bytes) push(c, idx);
      if (c->state == C_DEAD) continue;
      if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      if (c->state != C_BUSY) { /* bytes (or an end) nobody asked for */
        ssize_t r = recv(c->fd, scratch, SCRATCH_BYTES, 0);
        if (r > 0) fail(c, idx, "unexpected bytes between round trips");
        else if (r == 0) fail(c, idx, "connection closed by the server");
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          char why[96];
          snprintf(why, sizeof why, "recv: %s", strerror(errno));
          fail(c, idx, why);
        }
        continue;
      }
      size_t want = msg_bytes - c->got;
      if (want > SCRATCH_BYTES) want = SCRATCH_BYTES;
      ssize_t r = recv(c->fd, scratch, want, 0);
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
        char why[96];
        snprintf(why, sizeof why, "recv: %s", strerror(errno));
        fail(c, idx, why);
        continue;
      }
      if (r == 0) {
        fail(c, idx, "connection closed by the server mid round trip");
        continue;
      }
      if (c->got + (size_t)r > c->sent) {
        fail(c, idx, "echo ahead of the bytes sent");
        continue;
      }
      if (memcmp(scratch, c->msg + c->got, (size_t)r) != 0) {
        char why[96];
        snprintf(why, sizeof why, "echo differs at bytes %zu..%zu", c->got, c->got + (size_t)r);
        fail(c, idx, why);
        continue;
      }
      c->got += (size_t)r;
      if (c->got < msg_bytes) continue;
      /* round trip complete */
      uint64_t t = now_ns();
      if (!c->setup_done) {
        c->setup_done = 1;
        setup_left--;
      }
      if (meas_start && t >= meas_start && t <= meas_end) record(t - c->t_start);
      c->state = C_IDLE;
      busy--;
      if (t < meas_end) start_round(c, idx);
    }
  }
  if (!stopping) cpu1 = cpu_seconds();

  for (int i = 0; i < nconns; i++)
    if (conns[i].state != C_DEAD) close(conns[i].fd);

  double window = in_window ? (meas_end - meas_start) / 1e9 : 0; /* 0: never measured */
  qsort(lat, nlat, sizeof *lat, cmp_u32);
  printf("bench=echo_%dx%zu\nimpl=%s\nconns=%d\nmsg_bytes=%zu\nround_trips=%zu\n", nconns,
         msg_bytes, impl, nconns, msg_bytes, nlat);
  printf("seconds=%.6f\nops_per_sec=%.0f\np50_us=%.1f\np99_us=%.1f\nclient_cpu=%.2f\n", window,
         window > 0 ? nlat / window : 0.0, pct_us(0.50), pct_us(0.99),
         window > 0 ? (cpu1 - cpu0) / window : 0.0);
  if (window > 0 && scpu0 >= 0 && scpu1 >= 0) {
    printf("server_cpu=%.2f\n", (scpu1 - scpu0) / window);
    if (nlat > 0) printf("server_us_per_op=%.2f\n", (scpu1 - scpu0) * 1e6 / (double)nlat);
    if (mcpu0 >= 0 && mcpu1 >= 0) {
      double other = (mcpu1 - mcpu0) - (cpu1 - cpu0) - (scpu1 - scpu0);
      printf("other_cpu=%.2f\n", other > 0 ? other / window : 0.0);
    }
  }
  printf("errors=%ld\n", errors);
  return errors ? 1 : 0;
}
