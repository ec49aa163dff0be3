/*
 * The limit of bench/channel.sh: the same shapes as the Channel programs,
 * with no serialization, no event loop and no task: two processes (this
 * one and a fork of it) copying frames of a 4-byte big-endian length and a
 * payload over a socket with blocking read and write calls.
 *
 *   limit SHAPE ADDRESS N
 *
 * SHAPE: oneway (N frames of SMALL bytes one way, then an empty frame, to
 * which the child answers with its count), roundtrip (N frames each echoed
 * back), many<K> (K connections, one frame in flight on each, N frames in
 * all: poll() on both sides), bulk (N frames of 16 MiB one way, then the
 * empty frame and the count). ADDRESS: HOST:PORT, or a unix socket path
 * (anything with a '/'). SMALL is the environment's CHANNEL_SMALL_BYTES,
 * default 92: the small table's size in the codec's form (pickled: 89), a
 * 96-byte frame.
 *
 * A frame is sent with one write() of header and payload, built once,
 * except in oneway, where frames are copied one after the other into a
 * buffer written whenever it holds 64 KiB (as curio-lua's Connection
 * gathers the messages of a sender that does not wait). The
 * receiver reads through a 64 KiB buffer (one read() gets many small
 * frames); a payload larger than what is buffered is read straight into a
 * preallocated buffer, so a 16 MiB frame is copied once, by the system.
 * The parent listens, forks the child (which connects) and times from the
 * last accept to the child's answer. It prints one block of name=value
 * lines as the other programs do (impl=limit), with the CPU both processes
 * used over the window: parent_cpu (CLOCK_PROCESS_CPUTIME_ID), child_cpu
 * (/proc/PID/stat, 10 ms ticks) and cpu_us_per_op.
 *
 * Build (bench/channel.sh does): cc -std=c11 -D_GNU_SOURCE -O2 -o limit limit.c
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BULK_BYTES (16u << 20)
#define RBUF_BYTES 65536
#define MAX_CONNS 1024

typedef struct {
  int fd;
  char *buf;
  size_t off, len; /* buffered bytes: buf[off .. off + len) */
} reader_t;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of process pid so far, from /proc */
static double proc_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[len] = 0;
  const char *p = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut, &st) != 2) {
    fprintf(stderr, "limit: cannot read %s\n", path);
    exit(1);
  }
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

/* n bytes into dst: from the buffer first, then straight from the socket
   when the rest is at least the buffer's size, else through the buffer */
static void read_exact(reader_t *r, char *dst, size_t n) {
  while (n > 0) {
    if (r->len > 0) {
      size_t k = n < r->len ? n : r->len;
      memcpy(dst, r->buf + r->off, k);
      r->off += k, r->len -= k, dst += k, n -= k;
      continue;
    }
    int direct = n >= RBUF_BYTES;
    ssize_t got = read(r->fd, direct ? dst : r->buf, direct ? n : RBUF_BYTES);
    if (got < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (got == 0) {
      fprintf(stderr, "limit: unexpected end of stream\n");
      exit(1);
    }
    if (direct) {
      dst += got, n -= (size_t)got;
    } else {
      r->off = 0, r->len = (size_t)got;
    }
  }
}

/* one frame's payload into payload (at least cap bytes); its length */
static size_t read_frame(reader_t *r, char *payload, size_t cap) {
  unsigned char h[4];
  read_exact(r, (char *)h, 4);
  size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
  if (n > cap) {
    fprintf(stderr, "limit: frame of %zu bytes, over %zu\n", n, cap);
    exit(1);
  }
  read_exact(r, payload, n);
  return n;
}

/* a frame (header and payload) of n bytes, built once */
static char *make_frame(size_t n) {
  char *f = malloc(n + 4);
  if (!f) die("malloc");
  f[0] = (char)(n >> 24), f[1] = (char)(n >> 16), f[2] = (char)(n >> 8), f[3] = (char)n;
  memset(f + 4, 'x', n);
  return f;
}

static void send_count(int fd, uint32_t count) {
  char f[8] = {0, 0, 0, 4};
  uint32_t be = htonl(count);
  memcpy(f + 4, &be, 4);
  write_all(fd, f, 8);
}

static int is_unix(const char *address) { return strchr(address, '/') != NULL; }

static socklen_t make_address(const char *address, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (is_unix(address)) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    un->sun_family = AF_UNIX;
    if (strlen(address) >= sizeof un->sun_path) {
      fprintf(stderr, "limit: path too long\n");
      exit(2);
    }
    strcpy(un->sun_path, address);
    return sizeof *un;
  }
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  char host[64];
  const char *colon = strrchr(address, ':');
  if (!colon || (size_t)(colon - address) >= sizeof host) {
    fprintf(stderr, "limit: bad address %s\n", address);
    exit(2);
  }
  memcpy(host, address, (size_t)(colon - address));
  host[colon - address] = 0;
  in->sin_family = AF_INET;
  in->sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
    fprintf(stderr, "limit: bad host %s\n", host);
    exit(2);
  }
  return sizeof *in;
}

static void nodelay(int fd, const char *address) {
  int one = 1;
  if (!is_unix(address) && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
    die("TCP_NODELAY");
}

static int connect_to(const char *address) {
  struct sockaddr_storage ss;
  socklen_t len = make_address(address, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) die("connect");
  nodelay(fd, address);
  return fd;
}

static int listen_on(const char *address) {
  struct sockaddr_storage ss;
  socklen_t len = make_address(address, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
  if (fd < 0) die("socket");
  if (!is_unix(address)) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0) die("bind");
  if (listen(fd, MAX_CONNS) < 0) die("listen");
  return fd;
}

/* the child: connects K times, then receives (oneway, bulk) or echoes */
static void child(const char *shape, const char *address, int conns, size_t small) {
  int fds[MAX_CONNS];
  reader_t rd[MAX_CONNS];
  size_t cap = strcmp(shape, "bulk") == 0 ? BULK_BYTES : small;
  char *payload = malloc(cap + 4), *rbufs = malloc((size_t)conns * RBUF_BYTES);
  if (!payload || !rbufs) die("malloc");
  memset(payload, 1, cap + 4); /* its pages are there before the clock starts (0 could make it calloc) */
  for (int k = 0; k < conns; k++) {
    fds[k] = connect_to(address);
    rd[k] = (reader_t){fds[k], rbufs + (size_t)k * RBUF_BYTES, 0, 0};
  }
  if (strcmp(shape, "oneway") == 0 || strcmp(shape, "bulk") == 0) {
    uint32_t count = 0;
    while (read_frame(&rd[0], payload, cap) > 0) count++;
    send_count(fds[0], count);
  } else if (conns == 1) { /* roundtrip: the payload goes back after its header */
    size_t n;
    while ((n = read_frame(&rd[0], payload + 4, cap)) > 0) {
      payload[0] = (char)(n >> 24), payload[1] = (char)(n >> 16);
      payload[2] = (char)(n >> 8), payload[3] = (char)n;
      write_all(fds[0], payload, n + 4);
    }
  } else { /* many: echo on every connection until each sends the empty frame */
    struct pollfd pfd[MAX_CONNS];
    int open = conns;
    for (int k = 0; k < conns; k++) pfd[k] = (struct pollfd){fds[k], POLLIN, 0};
    while (open > 0) {
      if (poll(pfd, (nfds_t)conns, -1) < 0) die("poll");
      for (int k = 0; k < conns; k++) {
        if (!(pfd[k].revents & (POLLIN | POLLHUP))) continue;
        size_t n = read_frame(&rd[k], payload + 4, cap);
        if (n == 0) {
          pfd[k].fd = -1, open--;
          continue;
        }
        payload[0] = (char)(n >> 24), payload[1] = (char)(n >> 16);
        payload[2] = (char)(n >> 8), payload[3] = (char)n;
        write_all(fds[k], payload, n + 4);
      }
    }
  }
  for (int k = 0; k < conns; k++) { /* alive until the parent has read this CPU time */
    char c;
    if (read(fds[k], &c, 1) != 0) die("a message after the end");
  }
  exit(0);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: limit oneway|roundtrip|many<K>|bulk ADDRESS N\n");
    return 2;
  }
  const char *shape = argv[1], *address = argv[2];
  long n = atol(argv[3]);
  const char *env = getenv("CHANNEL_SMALL_BYTES");
  size_t small = env ? (size_t)atol(env) : 92;
  int conns = 1, bulk = strcmp(shape, "bulk") == 0;
  if (strncmp(shape, "many", 4) == 0) conns = atoi(shape + 4);
  else if (!bulk && strcmp(shape, "oneway") != 0 && strcmp(shape, "roundtrip") != 0) conns = 0;
  if (conns < 1 || conns > MAX_CONNS || n < 1 || small < 1) {
    fprintf(stderr, "limit: bad shape or N\n");
    return 2;
  }
  if (conns > 1) n = n / conns * conns;

  int lfd = listen_on(address);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(lfd);
    child(shape, address, conns, small);
  }
  int fds[MAX_CONNS];
  reader_t rd[MAX_CONNS];
  size_t size = bulk ? BULK_BYTES : small;
  char *frame = make_frame(size), *payload = malloc(size + 4);
  char *rbufs = malloc((size_t)conns * RBUF_BYTES);
  if (!payload || !rbufs) die("malloc");
  memset(payload, 1, size + 4);
  for (int k = 0; k < conns; k++) {
    fds[k] = accept(lfd, NULL, NULL);
    if (fds[k] < 0) die("accept");
    nodelay(fds[k], address);
    rd[k] = (reader_t){fds[k], rbufs + (size_t)k * RBUF_BYTES, 0, 0};
  }
  static const char end[4] = {0, 0, 0, 0};
  double t0 = now(), p0 = cpu_now(), c0 = proc_cpu(pid);
  if (strcmp(shape, "oneway") == 0 || bulk) {
    if (bulk) {
      for (long i = 0; i < n; i++) write_all(fds[0], frame, size + 4);
      write_all(fds[0], end, 4);
    } else { /* frames gathered: one write() per 64 KiB (see the head) */
      char *wbuf = malloc(RBUF_BYTES + size + 8);
      size_t wlen = 0;
      if (!wbuf) die("malloc");
      for (long i = 0; i < n; i++) {
        memcpy(wbuf + wlen, frame, size + 4);
        wlen += size + 4;
        if (wlen >= RBUF_BYTES) write_all(fds[0], wbuf, wlen), wlen = 0;
      }
      memcpy(wbuf + wlen, end, 4);
      write_all(fds[0], wbuf, wlen + 4);
    }
    uint32_t count;
    if (read_frame(&rd[0], payload, size) != 4) die("count");
    memcpy(&count, payload, 4);
    if (ntohl(count) != (uint32_t)n) {
      fprintf(stderr, "limit: child counted %u of %ld\n", ntohl(count), n);
      return 1;
    }
  } else if (conns == 1) {
    for (long i = 0; i < n; i++) {
      write_all(fds[0], frame, size + 4);
      if (read_frame(&rd[0], payload, size) != size) die("echo");
    }
    write_all(fds[0], end, 4);
  } else {
    struct pollfd pfd[MAX_CONNS];
    long left[MAX_CONNS];
    int open = conns;
    for (int k = 0; k < conns; k++) {
      pfd[k] = (struct pollfd){fds[k], POLLIN, 0};
      left[k] = n / conns - 1;
      write_all(fds[k], frame, size + 4);
    }
    while (open > 0) {
      if (poll(pfd, (nfds_t)conns, -1) < 0) die("poll");
      for (int k = 0; k < conns; k++) {
        if (!(pfd[k].revents & (POLLIN | POLLHUP))) continue;
        if (read_frame(&rd[k], payload, size) != size) die("echo");
        if (left[k]-- > 0) {
          write_all(fds[k], frame, size + 4);
        } else {
          write_all(fds[k], end, 4);
          pfd[k].fd = -1, open--;
        }
      }
    }
  }
  double seconds = now() - t0, cpu = cpu_now() - p0, child_cpu = proc_cpu(pid) - c0;
  for (int k = 0; k < conns; k++) close(fds[k]);
  int status;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "limit: the child failed\n");
    return 1;
  }
  if (is_unix(address)) unlink(address);
  printf("bench=channel_%s_%s\nimpl=limit\nn=%ld\nseconds=%.6f\nops_per_sec=%.0f\n", shape,
         is_unix(address) ? "unix" : "tcp", n, seconds, n / seconds);
  if (bulk) printf("mib_per_sec=%.1f\n", n * (BULK_BYTES / 1048576.0) / seconds);
  printf("msg_bytes=%zu\nparent_cpu=%.2f\nchild_cpu=%.2f\ncpu_us_per_op=%.2f\nauth=none\n", size, cpu,
         child_cpu, (cpu + child_cpu) / n * 1e6);
  return 0;
}
