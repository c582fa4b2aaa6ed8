/* fault_nofile: an application close to RLIMIT_NOFILE. It lowers its limit,
 * fills every descriptor number but --free K with dup()s of stdin, then opens
 * connections to an echo server one by one, echoing a few KiB on each (so
 * they can be upgraded) and keeping them open, until socket() or connect()
 * fails. Then it checks every connection it holds with one more echo.
 *
 *   fault_nofile PORT [--limit N] [--free K] [--timeout S] [--hold]
 *
 * With --hold the connections stay open after the JSON line until EOF on stdin.
 *
 * Prints one JSON line: {"ok":B,"limit":N,"free":K,"held":H,"stopped_by":"socket: EMFILE",
 * "errors":E}. Under pipedevice it must hold as many connections as on plain
 * TCP (minus the shim's session socket): the shim must not take the
 * descriptors the application needs. ok is false when an echo failed or
 * came back different, or a call failed with something other than EMFILE. */
#include "common.h"

#include <stdbool.h>
#include <sys/resource.h>

static int echo(int fd, unsigned round) {
  unsigned char out[2048], in[2048];
  stream_fill(round * 7919u + (unsigned)fd, 0, out, sizeof out);
  if (write_all(fd, out, sizeof out, 1) < 0) return -1;
  ssize_t n = read_full(fd, in, sizeof in, 1);
  if (n != (ssize_t)sizeof in) {
    if (n >= 0) errno = EPIPE;
    return -1;
  }
  if (memcmp(out, in, sizeof in)) {
    errno = EBADMSG;
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  prog_name = "fault_nofile";
  if (argc < 2) die("usage: fault_nofile PORT [--limit N] [--free K] [--timeout S] [--hold]");
  unsigned port = (unsigned)strtoul(argv[1], NULL, 10);
  rlim_t limit = 256;
  int free_k = 32;
  unsigned timeout = 60;
  bool hold = false;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--hold")) hold = true;
    else if (i + 1 >= argc) die("option %s needs a value", argv[i]);
    else if (!strcmp(argv[i], "--limit")) limit = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--free")) free_k = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--timeout")) timeout = (unsigned)strtoul(argv[++i], NULL, 10);
    else die("unknown option %s", argv[i]);
  }
  watchdog(timeout);
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl = {limit, limit};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit: %s", strerror(errno));
  /* Fill every free number, then give back the last free_k. */
  int *fill = calloc(limit, sizeof *fill);
  int nfill = 0;
  for (;;) {
    int d = dup(2);
    if (d < 0) {
      if (errno != EMFILE) die("dup: %s", strerror(errno));
      break;
    }
    fill[nfill++] = d;
  }
  if (nfill < free_k) die("only %d free descriptors to begin with", nfill);
  for (int i = 0; i < free_k; i++) close(fill[--nfill]);

  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  int *held = calloc((size_t)free_k + 1, sizeof *held);
  int nheld = 0, errors = 0;
  char stopped[64] = "limit";
  while (nheld <= free_k) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      snprintf(stopped, sizeof stopped, "socket: %s", errno == EMFILE ? "EMFILE" : strerror(errno));
      if (errno != EMFILE) errors++;
      break;
    }
    int r;
    do r = connect(fd, (struct sockaddr *)&a, sizeof a);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      snprintf(stopped, sizeof stopped, "connect: %s", strerror(errno));
      errors++;
      close(fd);
      break;
    }
    held[nheld++] = fd;
    for (unsigned k = 0; k < 4; k++) {
      if (echo(fd, k) < 0) {
        fprintf(stderr, "fault_nofile: connection %d: echo %u: %s\n", nheld, k, strerror(errno));
        errors++;
        break;
      }
      usleep(1000);
    }
  }
  for (int i = 0; i < nheld; i++) {
    if (echo(held[i], 99) < 0) {
      fprintf(stderr, "fault_nofile: connection %d: final echo: %s\n", i + 1, strerror(errno));
      errors++;
    }
  }
  printf("{\"ok\":%s,\"limit\":%lu,\"free\":%d,\"held\":%d,\"stopped_by\":\"%s\",\"errors\":%d}\n", errors ? "false" : "true",
         (unsigned long)limit, free_k, nheld, stopped, errors);
  fflush(stdout);
  if (hold) {
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
  }
  return errors ? 1 : 0;
}
