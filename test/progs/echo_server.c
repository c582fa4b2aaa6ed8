/* echo_server: a plain blocking TCP echo server, written like any unmodified
 * application (no knowledge of pipedevice).
 *
 *   echo_server [--port P] [--bind IPV4] [--threads] [--max-conns N] [--timeout S]
 *
 * Listens on 127.0.0.1:P (or --bind's address, e.g. 0.0.0.0 in a network
 * namespace; P 0 = ephemeral, the default), prints exactly
 * "port <N>\n" on stdout once listening, then serves connections one at a time
 * (or one thread per connection with --threads), echoing every byte until the
 * client's EOF, then closes. Exits after N connections with --max-conns, on
 * SIGTERM (status 0), or after --timeout seconds (status 3, default: none).
 *
 * The I/O calls vary by connection number so the shim sees all of them:
 * conn%3 == 0: read()/write(); 1: recv()/send(MSG_NOSIGNAL); 2: alternating.
 * Reads use a 256 KiB buffer. Accepted sockets get TCP_NODELAY, as a latency-
 * minded server would set.
 */
#include "common.h"

#include <pthread.h>

#define BUF_SIZE (256 * 1024)

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long active = 0;
static int verbose = 0;

struct conn {
  int fd;
  unsigned long idx;
};

static void serve(int fd, unsigned long idx) {
  unsigned char *buf = malloc(BUF_SIZE);
  if (!buf) die("out of memory");
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
    fprintf(stderr, "echo_server: TCP_NODELAY: %s\n", strerror(errno));
  int mode = (int)(idx % 3);
  unsigned long long total = 0;
  for (unsigned long it = 0;; it++) {
    int use_recv = mode == 1 || (mode == 2 && (it & 1));
    ssize_t n = use_recv ? recv(fd, buf, BUF_SIZE, 0) : read(fd, buf, BUF_SIZE);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "echo_server: conn %lu: read: %s after %llu bytes\n", idx, strerror(errno), total);
      break;
    }
    if (n == 0) break;
    int use_send = mode == 1 || (mode == 2 && !(it & 1));
    if (write_all(fd, buf, (size_t)n, use_send) < 0) {
      fprintf(stderr, "echo_server: conn %lu: write: %s after %llu bytes\n", idx, strerror(errno), total);
      break;
    }
    total += (unsigned long long)n;
  }
  if (verbose) fprintf(stderr, "echo_server: conn %lu: echoed %llu bytes\n", idx, total);
  if (close(fd) < 0) fprintf(stderr, "echo_server: close: %s\n", strerror(errno));
  free(buf);
}

static void *conn_thread(void *arg) {
  struct conn c = *(struct conn *)arg;
  free(arg);
  serve(c.fd, c.idx);
  pthread_mutex_lock(&mu);
  active--;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
  return NULL;
}

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

int main(int argc, char **argv) {
  prog_name = "echo_server";
  unsigned port = 0;
  int threads = 0;
  unsigned long max_conns = 0;
  unsigned timeout = 0;
  struct in_addr bind_addr = { .s_addr = htonl(INADDR_LOOPBACK) };
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--port") && i + 1 < argc) port = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--bind") && i + 1 < argc) {
      if (inet_pton(AF_INET, argv[++i], &bind_addr) != 1) die("--bind %s: not an IPv4 address", argv[i]);
    }
    else if (!strcmp(argv[i], "--threads")) threads = 1;
    else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc) max_conns = strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--verbose")) verbose = 1;
    else die("usage: echo_server [--port P] [--bind IPV4] [--threads] [--max-conns N] [--timeout S] [--verbose]");
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  if (timeout) watchdog(timeout);

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr = bind_addr;
  a.sin_port = htons((uint16_t)port);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind port %u: %s", port, strerror(errno));
  if (listen(ls, 1024) < 0) die("listen: %s", strerror(errno));
  socklen_t alen = sizeof a;
  if (getsockname(ls, (struct sockaddr *)&a, &alen) < 0) die("getsockname: %s", strerror(errno));
  printf("port %u\n", (unsigned)ntohs(a.sin_port));
  fflush(stdout);

  for (unsigned long idx = 0; max_conns == 0 || idx < max_conns; idx++) {
    int fd;
    do fd = accept(ls, NULL, NULL);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    if (fd < 0) die("accept: %s", strerror(errno));
    if (!threads) {
      serve(fd, idx);
      continue;
    }
    struct conn *c = malloc(sizeof *c);
    if (!c) die("out of memory");
    c->fd = fd;
    c->idx = idx;
    pthread_t t;
    pthread_mutex_lock(&mu);
    active++;
    pthread_mutex_unlock(&mu);
    int e = pthread_create(&t, NULL, conn_thread, c);
    if (e) die("pthread_create: %s", strerror(e));
    pthread_detach(t);
  }
  pthread_mutex_lock(&mu);
  while (active > 0) pthread_cond_wait(&cv, &mu);
  pthread_mutex_unlock(&mu);
  close(ls);
  return 0;
}
