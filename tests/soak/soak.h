/*
 * The soak's load generator (make soak, tests/soak/soak.sh): what its
 * files share. soak_load.c runs the clock, the epoll loop and the report;
 * soak_conn.c is one connection's life (plain or TLS); soak_proc.c reads
 * the server's /proc and talks to its control port.
 */
#ifndef SOAK_H
#define SOAK_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* The kinds of connections: the servers (tests/soak/soak_server.lua)
   they talk to, and the connections that never read, on the first three. */
enum soak_kind { K_ECHO, K_HTTP, K_TLS, K_RAISE, K_STUCK_ECHO, K_STUCK_HTTP, K_STUCK_TLS, K_NKINDS };

static inline int soak_is_stuck(int kind) { return kind >= K_STUCK_ECHO; }
/* The server (and protocol) of a kind: K_ECHO, K_HTTP, K_TLS or K_RAISE. */
static inline int soak_server_of(int kind) { return soak_is_stuck(kind) ? kind - K_STUCK_ECHO : kind; }

/* How a connection's life ends, drawn when it opens. */
enum soak_fate {
  F_CLOSE,     /* its last round done, it closes (HTTP: "Connection: close") */
  F_RESET,     /* mid-message of a round: SO_LINGER 0 and close (an RST) */
  F_HALFCLOSE, /* its last request sent, shutdown(SHUT_WR); the rest of the echo and then an end must come */
  F_RAISE,     /* (raise server) its first bytes are the marker: the handler raises, the connection ends */
};

enum soak_state { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_ROUND, S_WAIT_END, S_STUCK, S_DRAIN };

/* Counters of one kind of server. */
typedef struct {
  uint64_t round_trips, conns_opened, conns_done, conns_served; /* served: a first round done */
  uint64_t resets, halfcloses, raises; /* injected, each one's outcome checked */
  uint64_t errors;                     /* everything not injected */
  uint64_t bytes_sent, bytes_checked;  /* payload bytes sent; bytes of responses compared */
  uint64_t bytes_corrupt, bytes_lost;  /* differing at the first bad byte; owed when a connection ended */
} soak_stats_t;

typedef struct soak_conn {
  int fd, kind, fate, state, events, slot;
  SSL *ssl;
  uint64_t rng;          /* the connection's own stream of choices */
  uint64_t data_seed;    /* its payload: byte i is soak_byte(data_seed, i) */
  uint64_t tx_off, rx_off; /* payload bytes sent, echoed back (stuck and echo kinds) */
  uint64_t tx_goal, rx_goal; /* a stuck connection's drain: all it sends, all it must get */
  uint32_t rounds_left, reset_round;
  /* the current round: request head + body, expected response head + body */
  char req_head[256], resp_head[320];
  size_t req_head_len, resp_head_len, req_head_sent, resp_head_got;
  size_t body_len, body_sent, body_got;
  size_t cut;            /* F_RESET's round: request bytes sent before the reset;
                            a stuck one: the size of its write waiting */
  uint64_t body_base;    /* the body's offset in the payload stream */
  int want_write;        /* the last write could not finish: wait for EPOLLOUT */
  int served;            /* its first round is done */
  int unserved;          /* it counts in g->unserved */
  int ever_served;       /* the slot has served a connection (setup) */
} soak_conn_t;

typedef struct {
  /* arguments */
  double seconds;
  uint64_t seed;
  long server_pid;
  int port[K_NKINDS], control_port;
  int conns, raise_conns, stuck_conns;
  /* run */
  int epfd;
  SSL_CTX *tls;
  soak_conn_t *slots;
  int nslots;
  uint64_t t0;  /* when the run started (soak_now_ns) */
  int stopping; /* the run is over: no new rounds, no new connections */
  int live;     /* slots with an open connection */
  /* per server (soak_server_of): connections open and not yet served
     (soak_conn.c rule 5), and the slots waiting to connect (a ring of nslots) */
  int unserved[K_STUCK_ECHO];
  int *queue[K_STUCK_ECHO], queue_head[K_STUCK_ECHO], queue_len[K_STUCK_ECHO];
  int setup_left; /* slots not yet served once: the run starts when none is left */
  soak_stats_t st[K_NKINDS];
  unsigned char scratch[65536], expect[65536];
} soak_t;

extern const char *const soak_kind_names[K_NKINDS];

/* soak_conn.c */
uint64_t soak_mix(uint64_t *s);
void soak_open(soak_t *g, soak_conn_t *c);
void soak_on_event(soak_t *g, soak_conn_t *c, uint32_t ev);
void soak_stop(soak_t *g, soak_conn_t *c); /* the run ends: finish or leave */
void soak_abandon(soak_t *g, soak_conn_t *c, const char *why);

/* soak_proc.c */
typedef struct {
  long rss_kb, fds, threads, children, zombies;
} soak_proc_t;
int soak_proc_sample(long pid, soak_proc_t *p);
int soak_control_open(int port);
int soak_control_ask(int fd, const char *command, char *reply, size_t cap);
void soak_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t soak_now_ns(void);

#endif
