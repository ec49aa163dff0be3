/* bench/limits/proc_spawn.c: the limit of proc_spawn. N sequential
 * posix_spawnp of "true" (found on PATH, as the benchmark's run({"true"}))
 * and waitpid, each checked for exit status 0, after one untimed warm-up;
 * the child inherits stdin, stdout and stderr. What remains is the kernel's
 * process creation, the exec of true and the wait.
 *
 *   proc_spawn [N]      (default 200)
 */
#include <spawn.h>
#include <sys/wait.h>
#include "limit.h"

extern char **environ;

static void run_true(void) {
  char *argv[] = {"true", NULL};
  pid_t pid;
  int status, err = posix_spawnp(&pid, "true", NULL, NULL, argv, environ);
  if (err) limit_die("posix_spawnp", err);
  if (waitpid(pid, &status, 0) != pid) limit_die("waitpid", 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) limit_die("true", status);
}

int main(int argc, char **argv) {
  long n = limit_n(argc, argv, 200);
  run_true(); /* warm-up */
  double t0 = limit_now();
  for (long i = 0; i < n; i++) run_true();
  limit_report("proc_spawn", n, limit_now() - t0);
  return 0;
}
