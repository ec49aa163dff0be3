/*
 * The soak's load generator (tests/soak/soak.sh runs it; make soak):
 * one process, one epoll loop, level-triggered, plain TCP and OpenSSL.
 *
 *   soak_load seconds=S seed=N pid=PID control=PORT echo=PORT http=PORT
 *             tls=PORT raise=PORT conns=N raise_conns=N stuck=N
 *
 * Once every connection has connected and been served once (setup, at
 * most SETUP_S), for S seconds it keeps `conns` connections on each of
 * the stream echo, HTTP and TLS echo servers of tests/soak/soak_server.lua
 * (process PID),
 * `raise_conns` on its raising echo server and `stuck` connections that
 * never read on the stream echo server; then every connection finishes its
 * round (the stuck ones read back and check all they sent) and closes.
 * soak_conn.c says what a connection does and checks.
 *
 * Rules:
 *  1. The server is measured from outside (/proc/PID): descriptors,
 *     threads and RSS before the load (the control connection open, the
 *     server's pools filled), during it (a sample every SAMPLE_MS), and
 *     after it (once its descriptors are back to their count before, or
 *     SETTLE_S seconds). RSS "start" is the first sample after setup;
 *     "mid" and "end" are the highest samples of the run's second and
 *     last quarters: a leak shows as a later peak above an earlier one,
 *     while the garbage collector's swings within a quarter do not count
 *     twice.
 *  2. The server's own faults are started by the control command "start S"
 *     as the run starts (setup done); "finish" waits for them and returns
 *     their counts; "quit" ends the server.
 *  3. The report is one block of name=value lines, then a summary in
 *     words; every check is a check_<name>=ok|FAIL line, and the exit
 *     status is 1 when one fails (2 when the run could not start).
 *  4. Between setup and the run, a warm-up: the load goes on until the
 *     server's RSS grew less than WARMUP_GROWTH over the last
 *     WARMUP_WINDOW_S seconds (at most WARMUP_MAX_S). A server's heap
 *     climbs for a while under a new load (its garbage collector finding
 *     its pace, the never-reading connections filling, big messages
 *     reaching each connection); the run's middle-to-end comparison is
 *     about what comes after, where a leak keeps climbing.
 */
#define _GNU_SOURCE
#include "soak.h"

#include <errno.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#define SAMPLE_MS 250
#define SETUP_S 120.0
#define WARMUP_WINDOW_S 5  /* rule 4 */
#define WARMUP_GROWTH 0.01
#define WARMUP_MAX_S 90.0
#define DRAIN_S 60.0
#define SETTLE_S 20.0
#define RSS_GROWTH_MAX 0.05
/* What a connection that never reads may send before the server's writes
   wait: its socket buffers (64 KiB each way, fixed by soak_server.lua;
   the kernel doubles them), ours (16 KiB each way, doubled), the one read
   the handler holds (100,000 bytes; TLS: and a record or two): about
   420 KiB. A server that kept reading while its writes wait would pass it
   soon. */
#define STUCK_BOUND (1u << 20)

typedef struct {
  soak_proc_t before, after, start;
  long rss_mid, rss_end; /* rule 1 */
  long rss_tenths[10];   /* at each tenth of the run, for the report */
  uint64_t stuck_mid, stuck_end;
  uint64_t late_first_rounds[K_NKINDS]; /* connections first served in the last quarter */
  char server[4096];     /* the server's counts ("finish") */
  double setup_seconds, warmup_seconds;
  int queued_at_end, unserved_at_end; /* slots waiting to connect, connections not yet served */
  int open_min, open_max; /* connections open, over the samples of the run */
  double open_min_at;     /* when (seconds into the run) */
  int failed;
} soak_report_t;

static int parse_args(soak_t *g, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (!eq || eq - argv[i] >= 16) return -1;
    char k[16];
    memcpy(k, argv[i], (size_t)(eq - argv[i]));
    k[eq - argv[i]] = 0;
    const char *v = eq + 1;
    long n = strtol(v, NULL, 10);
    if (strcmp(k, "seconds") == 0) g->seconds = strtod(v, NULL);
    else if (strcmp(k, "seed") == 0) g->seed = strtoull(v, NULL, 10);
    else if (strcmp(k, "pid") == 0) g->server_pid = n;
    else if (strcmp(k, "control") == 0) g->control_port = (int)n;
    else if (strcmp(k, "echo") == 0) g->port[K_ECHO] = (int)n;
    else if (strcmp(k, "http") == 0) g->port[K_HTTP] = (int)n;
    else if (strcmp(k, "tls") == 0) g->port[K_TLS] = (int)n;
    else if (strcmp(k, "raise") == 0) g->port[K_RAISE] = (int)n;
    else if (strcmp(k, "conns") == 0) g->conns = (int)n;
    else if (strcmp(k, "raise_conns") == 0) g->raise_conns = (int)n;
    else if (strcmp(k, "stuck") == 0) g->stuck_conns = (int)n;
    else return -1;
  }
  return g->seconds > 0 && g->server_pid > 0 && g->control_port > 0 && g->conns > 0 ? 0 : -1;
}

/* The soft descriptor limit raised to the hard one; -1 if short of need. */
static int raise_nofile(long need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < need) {
    soak_note("soak: the hard descriptor limit (%ld) is below the %ld this run needs: "
              "run fewer connections (tests/soak/soak.sh scales them to the limit)",
              (long)rl.rlim_max, need);
    return -1;
  }
  return 0;
}

static void make_slots(soak_t *g) {
  int quarter = g->stuck_conns / 4; /* half of the stuck ones on echo, a quarter each on http and tls */
  int per[K_NKINDS] = {g->conns, g->conns, g->conns, g->raise_conns,
                       g->stuck_conns - 2 * quarter, quarter, quarter};
  for (int k = 0; k < K_NKINDS; k++)
    if (g->port[soak_server_of(k)] == 0) per[k] = 0; /* a server not given is not loaded */
  g->nslots = 0;
  for (int k = 0; k < K_NKINDS; k++) g->nslots += per[k];
  g->slots = calloc((size_t)g->nslots, sizeof *g->slots);
  if (!g->slots) exit(2);
  for (int k = 0; k < K_STUCK_ECHO; k++) {
    g->queue[k] = calloc((size_t)g->nslots, sizeof *g->queue[k]);
    if (!g->queue[k]) exit(2);
  }
  int i = 0;
  for (int k = 0; k < K_NKINDS; k++)
    for (int j = 0; j < per[k]; j++, i++) {
      soak_conn_t *c = &g->slots[i];
      c->slot = i;
      c->kind = k;
      c->fd = -1;
      uint64_t s = g->seed * 0x100000001b3ULL + (uint64_t)i; /* far apart on the generator's walk */
      c->rng = soak_mix(&s);
    }
}

static SSL_CTX *client_tls(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return NULL;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the certificate is made for the run */
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return ctx;
}

static uint64_t stuck_bytes(const soak_t *g) {
  uint64_t n = 0;
  for (int k = K_STUCK_ECHO; k < K_NKINDS; k++) n += g->st[k].bytes_sent;
  return n;
}

static void wait_events(soak_t *g) {
  struct epoll_event evs[512];
  int n = epoll_wait(g->epfd, evs, 512, SAMPLE_MS / 2);
  if (n < 0 && errno != EINTR) {
    perror("soak: epoll_wait");
    exit(2);
  }
  for (int e = 0; e < n; e++) soak_on_event(g, &g->slots[evs[e].data.u32], evs[e].events);
}

/* The load goes on until the server's RSS settles (rule 4). */
static void warm_up(soak_t *g, soak_report_t *r) {
  enum { WINDOW = WARMUP_WINDOW_S * 1000 / SAMPLE_MS };
  long rss[WINDOW];
  uint64_t t0 = soak_now_ns(), next = t0;
  int n = 0;
  for (;;) {
    uint64_t now = soak_now_ns();
    if (now >= next) {
      soak_proc_t p;
      if (soak_proc_sample(g->server_pid, &p) < 0) break;
      long then = n >= WINDOW ? rss[n % WINDOW] : -1;
      rss[n++ % WINDOW] = p.rss_kb;
      double t = (double)(now - t0) / 1e9;
      if (t >= WARMUP_MAX_S || (then > 0 && (double)(p.rss_kb - then) < WARMUP_GROWTH * (double)then)) break;
      next = now + SAMPLE_MS * 1000000ULL;
    }
    wait_events(g);
  }
  r->warmup_seconds = (double)(soak_now_ns() - t0) / 1e9;
}

/* Every slot connects and is served once (at most SETUP_S seconds), the
   warm-up; then the server's faults start (rule 2). */
static int setup(soak_t *g, soak_report_t *r, int control) {
  uint64_t end = soak_now_ns() + (uint64_t)(SETUP_S * 1e9);
  g->t0 = soak_now_ns();
  g->setup_left = g->nslots;
  for (int i = 0; i < g->nslots; i++) soak_open(g, &g->slots[i]);
  while (g->setup_left > 0 && soak_now_ns() < end) wait_events(g);
  r->setup_seconds = (double)(soak_now_ns() - g->t0) / 1e9;
  if (g->setup_left > 0) {
    soak_note("soak: %d connections not served within %.0f s of setup", g->setup_left, SETUP_S);
    return -1;
  }
  warm_up(g, r);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "start %.3f", g->seconds);
  return soak_control_ask(control, cmd, r->server, sizeof r->server);
}

/* The load from start to the last connection closed; samples the server. */
static void run(soak_t *g, soak_report_t *r) {
  uint64_t t0 = g->t0 = soak_now_ns(), total = (uint64_t)(g->seconds * 1e9), next_sample = t0;
  uint64_t drain_end = 0, served_before[K_NKINDS] = {0};
  int sampled_start = 0, snapped_late = 0;
  for (;;) {
    uint64_t now = soak_now_ns(), t = now - t0;
    if (now >= next_sample && !g->stopping) {
      soak_proc_t p;
      if (r->open_max == 0 || g->live < r->open_min) r->open_min = g->live, r->open_min_at = (double)t / 1e9;
      if (g->live > r->open_max) r->open_max = g->live;
      if (soak_proc_sample(g->server_pid, &p) == 0) {
        if (!sampled_start) r->start = p, sampled_start = 1;
        if (t >= total / 4 && t < total / 2 && p.rss_kb > r->rss_mid) r->rss_mid = p.rss_kb;
        if (t >= total * 3 / 4 && p.rss_kb > r->rss_end) r->rss_end = p.rss_kb;
        if (t < total && r->rss_tenths[t * 10 / total] == 0) r->rss_tenths[t * 10 / total] = p.rss_kb;
      }
      if (t < total / 2) r->stuck_mid = stuck_bytes(g);
      if (t >= total * 3 / 4 && !snapped_late) {
        snapped_late = 1;
        for (int k = 0; k < K_NKINDS; k++) served_before[k] = g->st[k].conns_served;
      }
      next_sample = now + SAMPLE_MS * 1000000ULL;
    }
    if (!g->stopping && t >= total) {
      r->stuck_end = stuck_bytes(g);
      for (int k = 0; k < K_STUCK_ECHO; k++) {
        r->queued_at_end += g->queue_len[k];
        r->unserved_at_end += g->unserved[k];
      }
      for (int k = 0; k < K_NKINDS; k++)
        r->late_first_rounds[k] = snapped_late ? g->st[k].conns_served - served_before[k] : 0;
      g->stopping = 1;
      drain_end = now + (uint64_t)(DRAIN_S * 1e9);
      for (int i = 0; i < g->nslots; i++) soak_stop(g, &g->slots[i]);
    }
    if (g->stopping && g->live == 0) break;
    if (g->stopping && now >= drain_end) {
      for (int i = 0; i < g->nslots; i++)
        if (g->slots[i].state != S_IDLE) soak_abandon(g, &g->slots[i], "unfinished at the end of the drain");
      break;
    }
    wait_events(g);
  }
}

/* The server's descriptors and threads once it has settled (rule 1). */
static void settle(soak_t *g, soak_report_t *r) {
  uint64_t end = soak_now_ns() + (uint64_t)(SETTLE_S * 1e9);
  do {
    if (soak_proc_sample(g->server_pid, &r->after) == 0 && r->after.fds == r->before.fds &&
        r->after.threads == r->before.threads && r->after.zombies == 0)
      return;
    usleep(100000);
  } while (soak_now_ns() < end);
}

static void check(soak_report_t *r, const char *name, int ok) {
  printf("check_%s=%s\n", name, ok ? "ok" : "FAIL");
  if (!ok) r->failed = 1;
}

/* A count from the server's reply ("name=value" lines), or -1. */
static long server_count(const soak_report_t *r, const char *name) {
  size_t len = strlen(name);
  for (const char *p = r->server; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
    if (strncmp(p, name, len) == 0 && p[len] == '=') return strtol(p + len + 1, NULL, 10);
  return -1;
}

static void report(const soak_t *g, soak_report_t *r) {
  uint64_t errors = 0, corrupt = 0, lost = 0;
  printf("bench=soak\nseconds=%.0f\nsetup_seconds=%.1f\nwarmup_seconds=%.1f\nseed=%llu\nconns=%d\nraise_conns=%d\nstuck_conns=%d\n", g->seconds,
         r->setup_seconds, r->warmup_seconds, (unsigned long long)g->seed, g->conns, g->raise_conns, g->stuck_conns);
  for (int k = 0; k < K_NKINDS; k++) {
    const soak_stats_t *s = &g->st[k];
    const char *n = soak_kind_names[k];
    if (!soak_is_stuck(k)) printf("%s_round_trips=%llu\n", n, (unsigned long long)s->round_trips);
    else printf("%s_bytes_sent=%llu\n", n, (unsigned long long)s->bytes_sent);
    printf("%s_connections=%llu\n%s_errors=%llu\n%s_bytes_checked=%llu\n", n,
           (unsigned long long)s->conns_opened, n, (unsigned long long)s->errors, n,
           (unsigned long long)s->bytes_checked);
    if (!soak_is_stuck(k) && k != K_RAISE)
      printf("%s_resets=%llu\n%s_halfcloses=%llu\n", n, (unsigned long long)s->resets, n,
             (unsigned long long)s->halfcloses);
    errors += s->errors, corrupt += s->bytes_corrupt, lost += s->bytes_lost;
  }
  printf("slots=%d\nopen_min=%d\nopen_min_at=%.1f\nopen_max=%d\nqueued_at_end=%d\nunserved_at_end=%d\n", g->nslots,
         r->open_min, r->open_min_at, r->open_max, r->queued_at_end, r->unserved_at_end);
  printf("raise_raised=%llu\n", (unsigned long long)g->st[K_RAISE].raises);
  printf("stuck_bytes_mid=%llu\nstuck_bytes_end=%llu\n", (unsigned long long)r->stuck_mid,
         (unsigned long long)r->stuck_end);
  printf("errors=%llu\nbytes_corrupt=%llu\nbytes_lost=%llu\n", (unsigned long long)errors,
         (unsigned long long)corrupt, (unsigned long long)lost);
  double growth = r->rss_mid > 0 ? (double)(r->rss_end - r->rss_mid) / (double)r->rss_mid : 1;
  printf("rss_before_kb=%ld\nrss_start_kb=%ld\nrss_mid_kb=%ld\nrss_end_kb=%ld\nrss_after_kb=%ld\n"
         "rss_growth=%.4f\n", r->before.rss_kb, r->start.rss_kb, r->rss_mid, r->rss_end,
         r->after.rss_kb, growth);
  printf("rss_tenths_kb=");
  for (int i = 0; i < 10; i++) printf("%s%ld", i ? "," : "", r->rss_tenths[i]);
  printf("\nfds_before=%ld\nfds_after=%ld\nthreads_before=%ld\nthreads_after=%ld\n"
         "children_before=%ld\nchildren_after=%ld\nzombies=%ld\n", r->before.fds, r->after.fds,
         r->before.threads, r->after.threads, r->before.children, r->after.children, r->after.zombies);
  for (const char *p = r->server; *p;) { /* the server's counts, prefixed */
    const char *nl = strchr(p, '\n');
    int len = nl ? (int)(nl - p) : (int)strlen(p);
    if (len > 0) printf("server_%.*s\n", len, p);
    p += len + (nl != NULL);
  }
  check(r, "errors", errors == 0);
  check(r, "bytes", corrupt == 0 && lost == 0);
  for (int k = 0; k < K_NKINDS; k++)
    if (g->port[k] && !soak_is_stuck(k) && g->st[k].round_trips == 0) check(r, soak_kind_names[k], 0);
  check(r, "rss_growth", growth < RSS_GROWTH_MAX);
  check(r, "fds", r->after.fds == r->before.fds);
  check(r, "threads", r->after.threads == r->before.threads);
  check(r, "zombies", r->after.zombies == 0);
  /* the stuck connections' bytes stop once the server's writes wait */
  check(r, "stuck_bounded", r->stuck_end <= (uint64_t)g->stuck_conns * STUCK_BOUND);
  for (int k = K_ECHO; k <= K_TLS; k++) /* accepting after the EMFILE window */
    if (g->port[k] && r->late_first_rounds[k] == 0) check(r, "accepts_late", 0);
  if (g->port[K_RAISE]) check(r, "raised", server_count(r, "raised") == (long)g->st[K_RAISE].raises);
}

static int soak_main(soak_t *g, soak_report_t *r, int argc, char **argv) {
  if (parse_args(g, argc, argv) < 0) {
    soak_note("usage: soak_load seconds=S seed=N pid=PID control=PORT echo=PORT [http=PORT tls=PORT "
              "raise=PORT] conns=N [raise_conns=N stuck=N]");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  make_slots(g);
  if (raise_nofile(g->nslots + 64) < 0) return 2;
  g->epfd = epoll_create1(EPOLL_CLOEXEC);
  g->tls = client_tls();
  if (g->epfd < 0 || !g->tls) return 2;
  int control = soak_control_open(g->control_port);
  char cmd[64];
  /* (a first exchange: the server has accepted the control connection) */
  if (control < 0 || soak_control_ask(control, "ping", cmd, sizeof cmd) < 0 ||
      soak_proc_sample(g->server_pid, &r->before) < 0) {
    soak_note("soak: no server at pid %ld and control port %d", g->server_pid, g->control_port);
    return 2;
  }
  if (setup(g, r, control) < 0) r->failed = 1;
  run(g, r);
  if (soak_control_ask(control, "finish", r->server, sizeof r->server) < 0) {
    soak_note("soak: the server did not answer \"finish\"");
    r->server[0] = 0;
    r->failed = 1;
  }
  settle(g, r);
  report(g, r);
  if (soak_control_ask(control, "quit", cmd, sizeof cmd) < 0) r->failed = 1;
  close(control);
  return r->failed;
}

int main(int argc, char **argv) {
  soak_t *g = calloc(1, sizeof *g);
  soak_report_t *r = calloc(1, sizeof *r);
  int status = g && r ? soak_main(g, r, argc, argv) : 2;
  free(g);
  free(r);
  return status;
}
