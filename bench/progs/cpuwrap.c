// cpuwrap OUT CMD ARGS...: run CMD, relay signals to it, wait for it, then write
// the CPU time of CMD and every descendant it waited for (getrusage
// RUSAGE_CHILDREN) to OUT as one line: "utime_s stime_s maxrss_kb status".
// Exits as CMD did (128+signal when it was killed). The bench harness starts
// every server and client through it, under pdrun or not, so the launcher's
// own CPU (pdrun is a Node process) is never counted.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child = -1;

static void relay(int sig) {
  int saved = errno;
  if (child > 0) kill(child, sig);
  errno = saved;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: cpuwrap OUT CMD ARGS...\n");
    return 2;
  }
  static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = relay;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

  pid_t pid = fork();
  if (pid < 0) {
    perror("cpuwrap: fork");
    return 126;
  }
  if (pid == 0) {
    // the child starts with default dispositions (exec resets handlers)
    execvp(argv[2], argv + 2);
    fprintf(stderr, "cpuwrap: %s: %s\n", argv[2], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  child = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("cpuwrap: waitpid");
      return 126;
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  FILE *f = fopen(argv[1], "w");
  if (f) {
    fprintf(f, "%ld.%06ld %ld.%06ld %ld %d\n", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss, status);
    fclose(f);
  } else {
    fprintf(stderr, "cpuwrap: %s: %s\n", argv[1], strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 126;
}
