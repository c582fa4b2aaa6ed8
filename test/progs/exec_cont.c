/* exec_cont: an upgraded connection goes on across execve.
 *
 *   exec_cont HOST PORT [--fork | --vfork]
 *   exec_cont --continue FD WRITTEN READ      (the image after the exec)
 *
 * Connects to an echo server, prints "connected <local addr>", then takes
 * commands from stdin, one per line:
 *   ping   writes 64 bytes of a deterministic stream (seed 11), reads the
 *          echo back and verifies it; answers "pong <n>"
 *   exec   writes 64 KiB more and, without reading their echo, executes
 *          itself with --continue (the socket is inherited: no CLOEXEC).
 *          With --fork (or --vfork), a child does the exec and the parent
 *          closes its copy and waits for it, exiting with its status.
 * The new image reads the echo it is owed (verified: no byte lost, none
 * twice, in order), then echoes 4 MiB more in 64 KiB rounds, verified, and
 * prints "continued <local addr> <bytes verified>"; it exits 0 at "quit" (or
 * stdin EOF). Any difference exits 1. Bounded by a 60 s watchdog. */
#include "common.h"

#include <stdbool.h>
#include <sys/wait.h>

#define SEED 11
#define CHUNK (64 * 1024)

static unsigned char out[CHUNK], in[CHUNK], scratch[VERIFY_SCRATCH];

static void echo_round(int fd, uint64_t *off, size_t len) {
  stream_fill(SEED, *off, out, len);
  if (write_all(fd, out, len, 0) < 0) die("write: %s", strerror(errno));
  ssize_t n = read_full(fd, in, len, 1);
  if (n != (ssize_t)len) die("read of the echo: %s", n < 0 ? strerror(errno) : "EOF");
  if (stream_check(SEED, *off, in, len, scratch) >= 0) die("echo at offset %llu differs", (unsigned long long)*off);
  *off += len;
}

static int continue_after_exec(int fd, uint64_t written, uint64_t read_off) {
  char local[64];
  local_addr(fd, local, sizeof local);
  uint64_t verified = 0;
  while (read_off < written) { /* the echo owed from before the exec */
    size_t len = written - read_off < CHUNK ? (size_t)(written - read_off) : CHUNK;
    ssize_t n = read_full(fd, in, len, 1);
    if (n != (ssize_t)len) die("read of the owed echo: %s", n < 0 ? strerror(errno) : "EOF");
    if (stream_check(SEED, read_off, in, len, scratch) >= 0)
      die("owed echo at offset %llu differs", (unsigned long long)read_off);
    read_off += len;
    verified += len;
  }
  for (int i = 0; i < 64; i++) {
    echo_round(fd, &read_off, CHUNK);
    verified += CHUNK;
  }
  printf("continued %s %llu\n", local, (unsigned long long)verified);
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin))
    if (!strcmp(line, "quit\n")) break;
  close(fd);
  return 0;
}

int main(int argc, char **argv) {
  prog_name = "exec_cont";
  watchdog(60);
  if (argc == 5 && !strcmp(argv[1], "--continue"))
    return continue_after_exec((int)parse_size(argv[2]), parse_size(argv[3]), parse_size(argv[4]));
  if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--fork") && strcmp(argv[3], "--vfork")))
    die("usage: exec_cont HOST PORT [--fork | --vfork] | exec_cont --continue FD WRITTEN READ");
  bool do_fork = argc == 4, do_vfork = do_fork && !strcmp(argv[3], "--vfork");
  int fd = connect_tcp(argv[1], argv[2]);
  char local[64];
  local_addr(fd, local, sizeof local);
  printf("connected %s\n", local);
  fflush(stdout);
  uint64_t off = 0;
  unsigned long pings = 0;
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (!strcmp(line, "ping\n")) {
      echo_round(fd, &off, 64);
      printf("pong %lu\n", ++pings);
      fflush(stdout);
      continue;
    }
    if (strcmp(line, "exec\n")) die("unknown command %s", line);
    stream_fill(SEED, off, out, CHUNK);
    if (write_all(fd, out, CHUNK, 0) < 0) die("write: %s", strerror(errno));
    char a_fd[16], a_w[32], a_r[32];
    snprintf(a_fd, sizeof a_fd, "%d", fd);
    snprintf(a_w, sizeof a_w, "%llu", (unsigned long long)(off + CHUNK));
    snprintf(a_r, sizeof a_r, "%llu", (unsigned long long)off);
    if (do_fork) {
      pid_t pid = do_vfork ? vfork() : fork();
      if (pid < 0) die("fork: %s", strerror(errno));
      if (pid == 0 && do_vfork) { /* a vfork child may only exec or _exit */
        execl("/proc/self/exe", "exec_cont", "--continue", a_fd, a_w, a_r, (char *)NULL);
        _exit(127);
      }
      if (pid > 0) {
        close(fd);
        int st;
        if (waitpid(pid, &st, 0) < 0) die("waitpid: %s", strerror(errno));
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
      }
    }
    execl("/proc/self/exe", "exec_cont", "--continue", a_fd, a_w, a_r, (char *)NULL);
    die("exec: %s", strerror(errno));
  }
  return 0;
}
