// connect_loop: a connection-setup benchmark, connect/accept/close in a loop.
//   connect_loop server ADDR [--echo]     ADDR: 127.0.0.1:PORT (0 = any) or unix:/path
//     prints "port N" (or "ready") on stdout, then accepts forever: (with --echo
//     read 1 byte and write it back), close. Stops on SIGTERM.
//   connect_loop client ADDR COUNT [--echo] [--seconds S]
//     COUNT times: socket, connect, (with --echo write 1 byte, read it back),
//     read until the server's close (EOF), close. Stops early after S seconds.
//     Prints one JSON line: {"ok":true,"conns":N,"seconds":T,"per_s":R}.
// The server closes first, so TIME_WAIT sits on the server's side and the
// client never runs out of ephemeral ports.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what) {
  fprintf(stderr, "connect_loop: %s: %s\n", what, strerror(errno));
  exit(1);
}

struct addr {
  struct sockaddr_storage ss;
  socklen_t len;
  int family;
};

static void parse_addr(const char *s, struct addr *a) {
  memset(a, 0, sizeof *a);
  if (strncmp(s, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
    un->sun_family = AF_UNIX;
    if (strlen(s + 5) >= sizeof un->sun_path) {
      fprintf(stderr, "connect_loop: unix path too long\n");
      exit(2);
    }
    strcpy(un->sun_path, s + 5);
    a->len = sizeof *un;
    a->family = AF_UNIX;
    return;
  }
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) {
    fprintf(stderr, "connect_loop: bad address %s\n", s);
    exit(2);
  }
  memcpy(host, s, colon - s);
  host[colon - s] = 0;
  struct sockaddr_in *in = (struct sockaddr_in *)&a->ss;
  in->sin_family = AF_INET;
  in->sin_port = htons((unsigned short)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
    fprintf(stderr, "connect_loop: bad IPv4 address %s\n", host);
    exit(2);
  }
  a->len = sizeof *in;
  a->family = AF_INET;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static int serve(struct addr *a, int echo) {
  int ls = socket(a->family, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  int one = 1;
  if (a->family == AF_INET) setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)&a->ss, a->len) < 0) die("bind");
  if (listen(ls, 1024) < 0) die("listen");
  if (a->family == AF_INET) {
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    if (getsockname(ls, (struct sockaddr *)&in, &len) < 0) die("getsockname");
    printf("port %d\n", ntohs(in.sin_port));
  } else {
    printf("ready\n");
  }
  fflush(stdout);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;  // no SA_RESTART: accept returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  long n = 0;
  while (!stop) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept");
    }
    if (echo) {
      char b;
      if (read(c, &b, 1) == 1) {
        if (write(c, &b, 1) != 1) die("write");
      }
    }
    close(c);
    n++;
  }
  fprintf(stderr, "connect_loop server: %ld connections\n", n);
  return 0;
}

static int client(struct addr *a, long count, int echo, double seconds) {
  double t0 = now(), deadline = t0 + seconds;
  long n = 0;
  for (; n < count; n++) {
    if ((n & 63) == 0 && now() > deadline) break;
    int s = socket(a->family, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (struct sockaddr *)&a->ss, a->len) < 0) die("connect");
    char b = 'x';
    if (echo) {
      if (write(s, &b, 1) != 1) die("write");
      if (read(s, &b, 1) != 1 || b != 'x') {
        fprintf(stderr, "connect_loop: echo of connection %ld wrong\n", n);
        return 1;
      }
    }
    ssize_t r;
    while ((r = read(s, &b, 1)) > 0) {
    }
    if (r < 0) die("read (waiting for the server's close)");
    close(s);
  }
  double t = now() - t0;
  printf("{\"ok\":true,\"conns\":%ld,\"seconds\":%.6f,\"per_s\":%.1f}\n", n, t, n / t);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: connect_loop server ADDR [--echo] | client ADDR COUNT [--echo] [--seconds S]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct addr a;
  parse_addr(argv[2], &a);
  int echo = 0;
  double seconds = 1e9;
  int first = strcmp(argv[1], "client") == 0 ? 4 : 3;
  for (int i = first; i < argc; i++) {
    if (strcmp(argv[i], "--echo") == 0) echo = 1;
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
    else {
      fprintf(stderr, "connect_loop: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (strcmp(argv[1], "server") == 0) return serve(&a, echo);
  if (strcmp(argv[1], "client") == 0 && argc >= 4) return client(&a, atol(argv[3]), echo, seconds);
  fprintf(stderr, "connect_loop: unknown mode %s\n", argv[1]);
  return 2;
}
