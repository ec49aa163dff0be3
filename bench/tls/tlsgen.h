/*
 * The TLS load generator's shared parts (bench/tls/tls_loadgen.c, the echo
 * and handshake engine in tls_echo.c, the bulk transfer in tls_bulk.c).
 * One thread, epoll, nonblocking OpenSSL client connections.
 */
#ifndef TLSGEN_H
#define TLSGEN_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* What every mode is given and reports. */
typedef struct {
  const char *host, *port, *impl;
  long server_pid;        /* 0: no server_cpu */
  double seconds, warmup; /* measured window, warm-up before it */
  SSL_CTX *ctx;
  char protocol[32], cipher[64], group[32]; /* of the first handshake */
} tlsgen_t;

/* CPU seconds of this process, the server and the machine at one instant. */
typedef struct {
  double self, server, machine;
} tlsgen_cpu_t;

uint64_t tlsgen_now_ns(void);
void tlsgen_cpu_sample(const tlsgen_t *g, tlsgen_cpu_t *s);
/* client_cpu, server_cpu, other_cpu lines for the window a..b of `window`
   s, and the server's CPU microseconds per unit (`per` names it: op, mib)
   of the `units` done in it */
void tlsgen_print_cpu(const tlsgen_cpu_t *a, const tlsgen_cpu_t *b, double window, double units,
                      const char *per);
/* protocol, cipher and group lines (what the first handshake negotiated) */
void tlsgen_print_session(const tlsgen_t *g);
void tlsgen_note_session(tlsgen_t *g, SSL *ssl); /* remembered once */
/* a nonblocking TCP connection to the target (connect in progress), or -1 */
int tlsgen_connect(const tlsgen_t *g);
/* a client SSL on fd, SNI "localhost", or exits */
SSL *tlsgen_ssl(const tlsgen_t *g, int fd);
/* "SSL_read: error:0A000126:SSL routines::unexpected eof..." into buf */
const char *tlsgen_ssl_error(const char *what, int err, char *buf, size_t len);
_Noreturn void tlsgen_die(const char *what);

/* The modes; each returns the process's exit status. */
int tlsgen_echo(tlsgen_t *g, int conns, size_t msg_bytes, int handshakes);
int tlsgen_bulk(tlsgen_t *g, uint64_t total_bytes);

#endif
