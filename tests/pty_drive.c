/* tests/pty_drive.c: runs a program on a pseudo-terminal and drives it
 * from a script, as a user at a terminal would (spec/prompt_spec.lua).
 *
 *   pty_drive SECONDS SCRIPT command [args...]
 *
 * SCRIPT holds one step a line:
 *   send TEXT     writes TEXT to the terminal (the program's keyboard)
 *   expect TEXT   waits until TEXT appears in the program's output after
 *                 the end of the previous match
 *   hangup        closes the terminal (the program sees its input end)
 * In TEXT, \n \r \t \e (escape) \\ and \xHH stand for those bytes.
 *
 * Everything the program writes goes to stdout as it comes. After the
 * last step it waits for the program's end. Exit status: the program's
 * (128 + n when killed by signal n); 124 when SECONDS passed first (in
 * all: every wait is bounded by it), the program then killed and the step
 * it waited on told on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

struct drive {
  int master;         /* -1 after hangup */
  pid_t child;
  double deadline;
  char *out;          /* all output so far */
  size_t len, cap, matched;
  int eof;
};

static double drive_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Decodes the escapes of TEXT in place; returns its length. */
static size_t drive_unescape(char *s) {
  char *w = s;
  for (const char *r = s; *r != '\0'; r++) {
    if (*r != '\\' || r[1] == '\0') { *w++ = *r; continue; }
    r++;
    switch (*r) {
    case 'n': *w++ = '\n'; break;
    case 'r': *w++ = '\r'; break;
    case 't': *w++ = '\t'; break;
    case 'e': *w++ = '\033'; break;
    case 'x': {
      char hex[3] = {r[1], r[1] ? r[2] : '\0', '\0'};
      *w++ = (char)strtol(hex, NULL, 16);
      r += 2;
      break;
    }
    default: *w++ = *r; break;
    }
  }
  return (size_t)(w - s);
}

/* Waits until the program wrote something (read and kept) or, with
 * `writable`, until the terminal takes more input, at most until the
 * deadline; -> 0, or -1 when the time is up. The terminal is
 * non-blocking: a program that echoes what it is sent is read while it is
 * sent a long text, never left blocked on its own output. */
static int drive_wait(struct drive *d, int writable) {
  double left = d->deadline - drive_now();
  if (left <= 0) return -1;
  struct pollfd p = {d->master, (short)(POLLIN | (writable ? POLLOUT : 0)), 0};
  int r = poll(&p, 1, (int)(left * 1000) + 1);
  if (r < 0 && errno == EINTR) return 0;
  if (r <= 0) return r == 0 ? -1 : 0;
  if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return 0;
  if (d->len + 4096 > d->cap) {
    d->cap = d->cap * 2 + 4096;
    d->out = realloc(d->out, d->cap);
    if (d->out == NULL) { perror("pty_drive"); exit(2); }
  }
  ssize_t n = read(d->master, d->out + d->len, 4096);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  if (n <= 0) { /* EIO: every descriptor of the terminal's other side is closed */
    d->eof = 1;
    return 0;
  }
  fwrite(d->out + d->len, 1, (size_t)n, stdout);
  fflush(stdout);
  d->len += (size_t)n;
  return 0;
}

static int drive_read(struct drive *d) {
  return drive_wait(d, 0);
}

static int drive_expect(struct drive *d, const char *text, size_t n) {
  for (;;) {
    for (size_t i = d->matched; i + n <= d->len; i++) {
      if (memcmp(d->out + i, text, n) == 0) {
        d->matched = i + n;
        return 0;
      }
    }
    if (d->eof || drive_read(d) < 0) return -1;
  }
}

static int drive_send(struct drive *d, const char *text, size_t n) {
  while (n > 0) {
    ssize_t w = write(d->master, text, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      if (d->eof || drive_wait(d, 1) < 0) return -1;
      continue;
    }
    if (w < 0) return -1;
    text += w, n -= (size_t)w;
  }
  return 0;
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  return -1;
#endif
}

static int drive_fail(struct drive *d, const char *what) {
  fprintf(stderr, "pty_drive: %s\n", what);
  kill(d->child, SIGKILL);
  waitpid(d->child, NULL, 0);
  return 124;
}

static int drive_script(struct drive *d, FILE *script) {
  char *line = NULL;
  size_t size = 0;
  ssize_t got;
  int rc = 0;
  while (rc == 0 && (got = getline(&line, &size, script)) >= 0) {
    if (got > 0 && line[got - 1] == '\n') line[got - 1] = '\0';
    if (strncmp(line, "send ", 5) == 0) {
      if (d->master < 0 || drive_send(d, line + 5, drive_unescape(line + 5)) < 0) rc = -1;
    } else if (strncmp(line, "expect ", 7) == 0) {
      if (drive_expect(d, line + 7, drive_unescape(line + 7)) < 0) {
        fprintf(stderr, "pty_drive: did not see '%s'\n", line + 7);
        rc = -1;
      }
    } else if (strcmp(line, "hangup") == 0 && d->master >= 0) {
      close(d->master);
      d->master = -1;
      d->eof = 1;
    } else if (line[0] != '\0') {
      fprintf(stderr, "pty_drive: unknown step '%s'\n", line);
      rc = -1;
    }
  }
  free(line);
  return rc;
}

int main(int argc, char **argv) {
  struct drive d = {-1, 0, 0, NULL, 0, 0, 0, 0};
  struct winsize ws = {24, 80, 0, 0};
  int status;
  if (argc < 4) {
    fprintf(stderr, "usage: pty_drive SECONDS SCRIPT command [args...]\n");
    return 2;
  }
  FILE *script = fopen(argv[2], "re");
  if (script == NULL) { perror(argv[2]); return 2; }
  d.deadline = drive_now() + atof(argv[1]);
  d.child = forkpty(&d.master, NULL, NULL, &ws);
  if (d.child < 0) {
    perror("forkpty");
    fclose(script);
    return 2;
  }
  if (d.child == 0) {
    execvp(argv[3], argv + 3);
    perror(argv[3]);
    _exit(127);
  }
  fcntl(d.master, F_SETFL, fcntl(d.master, F_GETFL) | O_NONBLOCK);
  int rc = drive_script(&d, script);
  fclose(script);
  if (rc < 0) return drive_fail(&d, "a step failed");
  while (!d.eof) {
    if (drive_read(&d) < 0) return drive_fail(&d, "the program did not end in time");
  }
  int exited = open_pidfd(d.child); /* (the terminal is closed: the end follows; bounded still) */
  if (exited >= 0) {
    struct pollfd p = {exited, POLLIN, 0};
    double left = d.deadline - drive_now();
    int r = left > 0 ? poll(&p, 1, (int)(left * 1000) + 1) : 0;
    close(exited);
    if (r <= 0) return drive_fail(&d, "the program did not end in time");
  }
  waitpid(d.child, &status, 0);
  if (d.master >= 0) close(d.master);
  free(d.out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
