/* bench/limits/proc_roundtrip.c: the limit of proc_roundtrip. A child
 * process (forked before the clock, warm after one untimed round trip)
 * answers i + 1 to each i over two pipes; N sequential round trips of 8
 * bytes each way, blocking reads and writes. What a call in another
 * process cannot do without: two pipe writes and two wake-ups of a
 * process.
 *
 *   proc_roundtrip [N]      (default 200)
 */
#include <sys/wait.h>
#include <unistd.h>
#include "limit.h"

static void put(int fd, long v) {
  if (write(fd, &v, sizeof v) != (ssize_t)sizeof v) limit_die("write", 0);
}

static int get(int fd, long *v) { return read(fd, v, sizeof *v) == (ssize_t)sizeof *v; }

int main(int argc, char **argv) {
  long n = limit_n(argc, argv, 200);
  int down[2], up[2];
  if (pipe(down) != 0 || pipe(up) != 0) limit_die("pipe", 0);
  pid_t pid = fork();
  if (pid < 0) limit_die("fork", 0);
  if (pid == 0) { /* the worker: answers until the end of stream */
    close(down[1]);
    close(up[0]);
    long v;
    while (get(down[0], &v)) put(up[1], v + 1);
    _exit(0);
  }
  close(down[0]);
  close(up[1]);
  long v;
  put(down[1], 0); /* warm-up */
  if (!get(up[0], &v) || v != 1) limit_die("warm-up", 0);
  double t0 = limit_now();
  for (long i = 1; i <= n; i++) {
    put(down[1], i);
    if (!get(up[0], &v) || v != i + 1) limit_die("round trip", 0);
  }
  double seconds = limit_now() - t0;
  close(down[1]);
  int status;
  waitpid(pid, &status, 0);
  limit_report("proc_roundtrip", n, seconds);
  return 0;
}
