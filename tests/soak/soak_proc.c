/*
 * The soak's view of the server process: its /proc entries (memory,
 * descriptors, threads, children and zombies among them) and its control
 * port (tests/soak/soak_server.lua: a line asks, name=value lines and
 * "end" answer).
 */
#define _GNU_SOURCE
#include "soak.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

uint64_t soak_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void soak_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* The value of a "Name:  value kB" line of /proc/PID/status, or -1. */
static long status_field(long pid, const char *name) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long v = -1;
  size_t len = strlen(name);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, name, len) == 0 && line[len] == ':') {
      v = strtol(line + len + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

/* Entries of a directory, "." and ".." aside, or -1. */
static long count_entries(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  long n = 0;
  const struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

/* The state letter of process pid (from /proc/PID/stat), or 0. */
static char proc_state(long pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* after the name, which may hold spaces */
  return p && p[1] == ' ' ? p[2] : 0;
}

/* Counts the children of every thread of pid, and the zombies among them. */
static void count_children(long pid, soak_proc_t *p) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/task", pid);
  DIR *d = opendir(path);
  p->children = p->zombies = 0;
  if (!d) return;
  const struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char cpath[300];
    snprintf(cpath, sizeof cpath, "/proc/%ld/task/%s/children", pid, e->d_name);
    FILE *f = fopen(cpath, "r");
    if (!f) continue;
    long child;
    while (fscanf(f, "%ld", &child) == 1) {
      p->children++;
      if (proc_state(child) == 'Z') p->zombies++;
    }
    fclose(f);
  }
  closedir(d);
}

int soak_proc_sample(long pid, soak_proc_t *p) {
  char path[64];
  p->rss_kb = status_field(pid, "VmRSS");
  p->threads = status_field(pid, "Threads");
  snprintf(path, sizeof path, "/proc/%ld/fd", pid);
  p->fds = count_entries(path);
  count_children(pid, p);
  return p->rss_kb < 0 || p->threads < 0 || p->fds < 0 ? -1 : 0;
}

int soak_control_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {60, 0}; /* a server that stopped answering fails the run, not hangs it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Sends "command\n", reads the reply up to its "end\n" line (excluded). */
int soak_control_ask(int fd, const char *command, char *reply, size_t cap) {
  char line[128];
  int n = snprintf(line, sizeof line, "%s\n", command);
  if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) return -1;
  size_t len = 0;
  for (;;) {
    if (len + 1 >= cap) return -1;
    ssize_t r = recv(fd, reply + len, cap - 1 - len, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    len += (size_t)r;
    reply[len] = 0;
    if (len >= 4 && strcmp(reply + len - 4, "end\n") == 0) {
      reply[len - 4] = 0;
      return 0;
    }
  }
}
