/*
 * TLS load generator for the TLS echo servers (bench/tls.sh): one thread,
 * epoll, nonblocking OpenSSL client connections.
 *
 *   tls_loadgen echo      HOST PORT CONNS MSG_BYTES SECONDS [IMPL [WARMUP]]
 *   tls_loadgen handshake HOST PORT CONNS SECONDS [IMPL [WARMUP]]
 *   tls_loadgen bulk      HOST PORT MIB [IMPL]
 *
 * echo: CONNS connections, each with one message of MSG_BYTES in flight
 * (send it, wait for the whole echo, check every byte, send the next), as
 * bench/echo/loadgen.c does over plain TCP: bench=tls_echo_<conns>x<bytes>.
 * handshake: CONNS connections at a time, each a new TCP connection and a
 * full handshake (no session is ever resumed: the client keeps none), one
 * 64-byte echo that shows the server finished its side and hands the
 * connection to its handler, then close_notify and close; then the next
 * connection: bench=tls_handshake, ops_per_sec = handshakes a second.
 * bulk: one connection, MIB mebibytes written as fast as the server takes
 * them while its echo is read back and checked; timed from the first byte
 * written to the last byte echoed: bench=tls_bulk.
 *
 * The client offers TLS 1.2 and 1.3 with OpenSSL's default cipher suites
 * and the key exchange groups of env TLS_GROUPS (default "X25519"; e.g.
 * "P-256"), verifies no certificate (the servers' is made for the run; the
 * handshake still checks the server's signature), reads ahead (fewer reads
 * per record). Every block reports what the first handshake negotiated
 * (protocol, cipher, group), client_cpu, and with env TLS_SERVER_PID
 * server_cpu and other_cpu, as bench/echo/loadgen.c does. A byte that
 * differs, a failed handshake or a connection the server ends is an error:
 * details on stderr, errors=N, exit status 1.
 *
 * Build: cc -O2 -o tls_loadgen tls_loadgen.c tls_echo.c tls_bulk.c -lssl -lcrypto
 */
#define _GNU_SOURCE
#include "tlsgen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct addrinfo *target; /* resolved once, kept for the process */

_Noreturn void tlsgen_die(const char *what) {
  perror(what);
  exit(2);
}

uint64_t tlsgen_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double self_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* user+system CPU seconds of process `pid` (all its threads), or -1 */
static double proc_cpu(long pid) {
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
  if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* user+nice+system CPU seconds of the whole machine, or -1 */
static double machine_cpu(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return -1;
  unsigned long long u, n, sy;
  int ok = fscanf(f, "cpu %llu %llu %llu", &u, &n, &sy) == 3;
  fclose(f);
  return ok ? (double)(u + n + sy) / (double)sysconf(_SC_CLK_TCK) : -1;
}

void tlsgen_cpu_sample(const tlsgen_t *g, tlsgen_cpu_t *s) {
  s->self = self_cpu();
  s->server = g->server_pid > 0 ? proc_cpu(g->server_pid) : -1;
  s->machine = machine_cpu();
}

void tlsgen_print_cpu(const tlsgen_cpu_t *a, const tlsgen_cpu_t *b, double window, double units,
                      const char *per) {
  if (window <= 0) return;
  double self = b->self - a->self;
  printf("client_cpu=%.2f\n", self / window);
  if (a->server < 0 || b->server < 0) return;
  double server = b->server - a->server;
  printf("server_cpu=%.2f\n", server / window);
  if (units > 0) printf("server_us_per_%s=%.1f\n", per, server * 1e6 / units);
  if (a->machine < 0 || b->machine < 0) return;
  double other = (b->machine - a->machine) - self - server;
  printf("other_cpu=%.2f\n", other > 0 ? other / window : 0.0);
}

void tlsgen_note_session(tlsgen_t *g, SSL *ssl) {
  if (g->protocol[0]) return;
  snprintf(g->protocol, sizeof g->protocol, "%s", SSL_get_version(ssl));
  snprintf(g->cipher, sizeof g->cipher, "%s", SSL_get_cipher_name(ssl));
  int nid = SSL_get_negotiated_group(ssl);
  const char *name = nid > 0 ? SSL_group_to_name(ssl, nid) : NULL;
  snprintf(g->group, sizeof g->group, "%s", name ? name : "unknown");
}

void tlsgen_print_session(const tlsgen_t *g) {
  if (!g->protocol[0]) return;
  printf("protocol=%s\ncipher=%s\ngroup=%s\n", g->protocol, g->cipher, g->group);
}

int tlsgen_connect(const tlsgen_t *g) {
  (void)g;
  int fd = socket(target->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, target->ai_addr, target->ai_addrlen) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

SSL *tlsgen_ssl(const tlsgen_t *g, int fd) {
  SSL *ssl = SSL_new(g->ctx);
  if (!ssl || !SSL_set_fd(ssl, fd)) {
    ERR_print_errors_fp(stderr);
    exit(2);
  }
  SSL_set_tlsext_host_name(ssl, "localhost");
  SSL_set_connect_state(ssl);
  return ssl;
}

const char *tlsgen_ssl_error(const char *what, int err, char *buf, size_t len) {
  unsigned long e = ERR_get_error();
  if (e) {
    char detail[200];
    ERR_error_string_n(e, detail, sizeof detail);
    snprintf(buf, len, "%s: %s", what, detail);
  } else if (err == SSL_ERROR_SYSCALL) {
    snprintf(buf, len, "%s: %s", what, errno ? strerror(errno) : "unexpected end of stream");
  } else if (err == SSL_ERROR_ZERO_RETURN) {
    snprintf(buf, len, "%s: closed by the server (close_notify)", what);
  } else {
    snprintf(buf, len, "%s: SSL error %d", what, err);
  }
  ERR_clear_error();
  return buf;
}

static SSL_CTX *client_ctx(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  const char *groups = getenv("TLS_GROUPS");
  if (!groups || !*groups) groups = "X25519";
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      !SSL_CTX_set1_groups_list(ctx, groups)) {
    fprintf(stderr, "tls_loadgen: client context (groups %s):\n", groups);
    ERR_print_errors_fp(stderr);
    exit(2);
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* every handshake full */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  return ctx;
}

static int usage(const char *prog) {
  fprintf(stderr,
          "usage: %s echo HOST PORT CONNS MSG_BYTES SECONDS [IMPL [WARMUP]]\n"
          "       %s handshake HOST PORT CONNS SECONDS [IMPL [WARMUP]]\n"
          "       %s bulk HOST PORT MIB [IMPL]\n",
          prog, prog, prog);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 5) return usage(argv[0]);
  const char *mode = argv[1];
  tlsgen_t g;
  memset(&g, 0, sizeof g);
  g.host = argv[2];
  g.port = argv[3];
  const char *spid = getenv("TLS_SERVER_PID");
  g.server_pid = spid && *spid ? atol(spid) : 0;
  signal(SIGPIPE, SIG_IGN);

  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(g.host, g.port, &hints, &target);
  if (gai != 0) {
    fprintf(stderr, "tls_loadgen: %s:%s: %s\n", g.host, g.port, gai_strerror(gai));
    return 2;
  }
  g.ctx = client_ctx();

  int rc;
  if (strcmp(mode, "echo") == 0 || strcmp(mode, "handshake") == 0) {
    int hs = mode[0] == 'h';
    int need = hs ? 6 : 7; /* arguments up to SECONDS */
    if (argc < need) return usage(argv[0]);
    int conns = atoi(argv[4]);
    long mb = hs ? 64 : atol(argv[5]);
    g.seconds = atof(argv[need - 1]);
    g.impl = argc > need ? argv[need] : "unknown";
    g.warmup = argc > need + 1 ? atof(argv[need + 1]) : 0.5;
    if (conns < 1 || mb < 1 || mb > (16L << 20) || g.seconds <= 0 || g.warmup < 0) {
      fprintf(stderr, "tls_loadgen: bad arguments\n");
      return 2;
    }
    rc = tlsgen_echo(&g, conns, (size_t)mb, hs);
  } else if (strcmp(mode, "bulk") == 0) {
    long mib = atol(argv[4]);
    g.impl = argc > 5 ? argv[5] : "unknown";
    if (mib < 1 || mib > (1L << 20)) {
      fprintf(stderr, "tls_loadgen: bad arguments\n");
      return 2;
    }
    rc = tlsgen_bulk(&g, (uint64_t)mib << 20);
  } else {
    return usage(argv[0]);
  }
  freeaddrinfo(target);
  SSL_CTX_free(g.ctx);
  return rc;
}
