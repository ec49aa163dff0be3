/* bench/limits/proc_pipe.c: the limit of proc_pipe. posix_spawnp of
 * `head -c BYTES /dev/zero` with its stdout on a pipe (1 MiB of pipe
 * buffer, as curio asks for), read until the end of stream straight into
 * one buffer of BYTES mapped before the clock (untouched, advised into huge
 * pages: the least page faults fresh memory can cost), then waitpid. What
 * remains is the child's writes, the pipe copy and the first touch of the
 * pages that keep the output.
 *
 *   proc_pipe [MIB]      (default 100)
 */
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "limit.h"

extern char **environ;

int main(int argc, char **argv) {
  long mib = limit_n(argc, argv, 100);
  size_t bytes = (size_t)mib << 20;
  char *buf = mmap(NULL, bytes + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) limit_die("mmap", 0);
  madvise(buf, bytes + 1, MADV_HUGEPAGE); /* a hint: may fail */
  char count[32];
  snprintf(count, sizeof count, "%zu", bytes);
  char *args[] = {"head", "-c", count, "/dev/zero", NULL};

  double t0 = limit_now();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) limit_die("pipe2", 0);
  fcntl(fds[0], F_SETPIPE_SZ, 1 << 20); /* a hint: may fail */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  pid_t pid;
  int err = posix_spawnp(&pid, "head", &fa, NULL, args, environ);
  if (err) limit_die("posix_spawnp", err);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  size_t got = 0;
  for (;;) { /* one byte of room past the end: a longer output shows */
    ssize_t r = read(fds[0], buf + got, bytes + 1 - got);
    if (r == 0) break;
    if (r < 0) limit_die("read", 0);
    got += (size_t)r;
    if (got > bytes) limit_die("head: too much output", 0);
  }
  close(fds[0]);
  int status;
  if (waitpid(pid, &status, 0) != pid) limit_die("waitpid", 0);
  double seconds = limit_now() - t0;
  if (got != bytes || !WIFEXITED(status) || WEXITSTATUS(status) != 0) limit_die("head", status);
  printf("bench=proc_pipe\nimpl=limit\nn=1\nseconds=%.6f\nops_per_sec=%.3f\nbytes=%zu\nmib=%ld\n"
         "mib_per_sec=%.1f\n",
         seconds, 1 / seconds, bytes, mib, (double)mib / seconds);
  munmap(buf, bytes + 1);
  return 0;
}
