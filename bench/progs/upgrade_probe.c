// upgrade_probe: time from connect()/accept() to the ring assignment, as the
// shim reports it under PD_LOG=debug ("conn N assigned ..., X us after
// connect/accept"). Both ends wait in epoll_wait on their connection, the way
// an event-loop program idles: the shim puts its session socket in that epoll
// set, so an assignment wakes the waiter and is taken at once, with no data
// call needed and no CPU burnt while waiting.
//   upgrade_probe server ADDR          ADDR: 127.0.0.1:PORT (0 = any)
//     prints "port N", then per connection: accept, wait in epoll_wait until
//     the client's close (EOF), close. Stops on SIGTERM.
//   upgrade_probe client ADDR COUNT HOLD_MS
//     COUNT times: connect, wait HOLD_MS in epoll_wait, close; then the next.
//     Prints one JSON line: {"ok":true,"conns":N}.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what) {
  fprintf(stderr, "upgrade_probe: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void parse_addr(const char *s, struct sockaddr_in *in) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) {
    fprintf(stderr, "upgrade_probe: bad address %s\n", s);
    exit(2);
  }
  memcpy(host, s, colon - s);
  host[colon - s] = 0;
  memset(in, 0, sizeof *in);
  in->sin_family = AF_INET;
  in->sin_port = htons((unsigned short)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
    fprintf(stderr, "upgrade_probe: bad IPv4 address %s\n", host);
    exit(2);
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static int serve(struct sockaddr_in *a) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(ls, (struct sockaddr *)a, sizeof *a) < 0) die("bind");
  if (listen(ls, 128) < 0) die("listen");
  socklen_t len = sizeof *a;
  if (getsockname(ls, (struct sockaddr *)a, &len) < 0) die("getsockname");
  printf("port %d\n", ntohs(a->sin_port));
  fflush(stdout);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  while (!stop) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept");
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = c };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) die("epoll");
    while (!stop) {
      int n = epoll_wait(ep, &ev, 1, 1000);
      if (n < 0 && errno != EINTR) die("epoll_wait");
      if (n > 0) {
        char b[64];
        ssize_t r = read(c, b, sizeof b);
        if (r <= 0) break;
      }
    }
    close(ep);
    close(c);
  }
  return 0;
}

static int client(struct sockaddr_in *a, long count, double hold_ms) {
  long n = 0;
  for (; n < count; n++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (struct sockaddr *)a, sizeof *a) < 0) die("connect");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = s };
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) < 0) die("epoll");
    double end = now_ms() + hold_ms;
    for (double t = now_ms(); t < end; t = now_ms()) {
      int r = epoll_wait(ep, &ev, 1, (int)(end - t) + 1);
      if (r < 0 && errno != EINTR) die("epoll_wait");
      if (r > 0) {
        fprintf(stderr, "upgrade_probe: the server closed connection %ld early\n", n);
        return 1;
      }
    }
    close(ep);
    close(s);
  }
  printf("{\"ok\":true,\"conns\":%ld}\n", n);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in a;
  if (argc == 3 && strcmp(argv[1], "server") == 0) {
    parse_addr(argv[2], &a);
    return serve(&a);
  }
  if (argc == 5 && strcmp(argv[1], "client") == 0) {
    parse_addr(argv[2], &a);
    return client(&a, atol(argv[3]), atof(argv[4]));
  }
  fprintf(stderr, "usage: upgrade_probe server ADDR | client ADDR COUNT HOLD_MS\n");
  return 2;
}
