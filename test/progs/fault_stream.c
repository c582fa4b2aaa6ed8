/* fault_stream: one TCP connection carrying a deterministic stream each way,
 * for the fault tests. An "unmodified application": plain libc socket calls.
 * Either end may be killed with SIGKILL (by the test, or by itself after a
 * chosen number of bytes); the survivor must then see EOF or ECONNRESET on
 * its reads and an error (EPIPE, ECONNRESET) on its writes, soon, and every
 * byte it received must be the byte the peer sent.
 *
 *   fault_stream server [--port P] [options]
 *       listens on 127.0.0.1:P (0 = ephemeral), prints "port N\n", accepts
 *       one connection
 *   fault_stream client PORT [options]
 *       connects to 127.0.0.1:PORT
 * options:
 *   --bytes N        bytes to send, then shutdown(SHUT_WR) (default: no end,
 *                    write until an error)
 *   --chunk N        largest write (default 64K); sizes vary 1..N
 *   --tx-seed S      seed of the stream we send (default 1)
 *   --rx-seed S      seed of the stream we expect (default 2)
 *   --die-after N    after N bytes were sent, print "dying <ns>\n" (CLOCK_MONOTONIC)
 *                    and raise(SIGKILL): a kill -9 at an exact point of the stream
 *   --pause-every N  each time another N bytes were sent, print "paused <sent>\n"
 *                    and wait for a line on stdin before sending more
 *   --rx-bytes N     stop reading after N bytes (rx_end "complete")
 *   --no-shutdown    do not shutdown(SHUT_WR) after --bytes were sent
 *   --linger         after the JSON line, keep the socket open until stdin EOF
 *   --timeout S      watchdog (default 60)
 *
 * Once connected: "conn <pid> <local> <peer>\n". At the end one JSON line:
 *   {"ok":B,"rx":N,"rx_end":"eof|complete|ECONNRESET|<errno>|mismatch","rx_end_ns":T,
 *    "tx":N,"tx_end":"done|EPIPE|ECONNRESET|<errno>|stuck","tx_end_ns":T,"mismatch_at":-1}
 * ok is false only for a mismatch (a byte that is not the byte sent) or a
 * writer that did not finish within 3 s of the reader's end ("stuck"); which
 * ends are acceptable is the test's call. T: CLOCK_MONOTONIC ns when the
 * call returned. Status 0 when ok, 1 otherwise, 3 from the watchdog.
 *
 * I/O calls rotate: write/send/writev and read/recv/readv. */
#include "common.h"

#include <pthread.h>
#include <sys/uio.h>

static uint64_t opt_bytes = UINT64_MAX, opt_chunk = 64 * 1024, opt_die = UINT64_MAX;
static uint64_t tx_seed = 1, rx_seed = 2, opt_pause = 0;
static uint64_t opt_rx_bytes = UINT64_MAX;
static int fd = -1, opt_linger = 0, opt_no_shutdown = 0;

struct end {
  uint64_t bytes;
  int err;          /* 0 = clean end (EOF / all sent) */
  uint64_t ns;
  int done;         /* atomic */
};
static struct end rx_end, tx_end;

static void *writer(void *arg) {
  (void)arg;
  unsigned char *buf = malloc(opt_chunk);
  if (!buf) die("out of memory");
  struct rng r;
  rng_seed(&r, tx_seed ^ 0x77);
  uint64_t off = 0, next_pause = opt_pause ? opt_pause : UINT64_MAX;
  int err = 0;
  while (off < opt_bytes) {
    if (off >= next_pause) {
      printf("paused %llu\n", (unsigned long long)off);
      fflush(stdout);
      char line[64];
      if (!fgets(line, sizeof line, stdin)) die("stdin closed while paused");
      next_pause += opt_pause;
    }
    if (off >= opt_die) {
      printf("dying %llu\n", (unsigned long long)now_ns());
      fflush(stdout);
      raise(SIGKILL);
    }
    uint64_t x = rng_next(&r);
    size_t n = (size_t)rng_range(&r, 1, opt_chunk);
    if (n > opt_bytes - off) n = (size_t)(opt_bytes - off);
    if (opt_die != UINT64_MAX && n > opt_die - off && opt_die > off) n = (size_t)(opt_die - off);
    if (n > next_pause - off) n = (size_t)(next_pause - off);
    stream_fill(tx_seed, off, buf, n);
    ssize_t w;
    switch (x % 3) {
      case 0: w = write(fd, buf, n); break;
      case 1: w = send(fd, buf, n, MSG_NOSIGNAL); break;
      default: {
        size_t h = n / 2;
        struct iovec v[2] = {{buf, h}, {buf + h, n - h}};
        w = writev(fd, v, 2);
      }
    }
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += (uint64_t)w;
  }
  if (!err && off >= opt_bytes && !opt_no_shutdown && shutdown(fd, SHUT_WR) < 0) err = errno;
  tx_end.ns = now_ns();
  tx_end.bytes = off;
  tx_end.err = err;
  __atomic_store_n(&tx_end.done, 1, __ATOMIC_RELEASE);
  free(buf);
  return NULL;
}

static const char *end_name(int err, const char *clean) {
  static char b[2][32];
  static int k;
  if (err == 0) return clean;
  if (err == -1) return "mismatch";
  if (err == ECONNRESET) return "ECONNRESET";
  if (err == EPIPE) return "EPIPE";
  char *p = b[k++ & 1];
  snprintf(p, 32, "errno%d", err);
  return p;
}

int main(int argc, char **argv) {
  prog_name = "fault_stream";
  if (argc < 2) die("usage: fault_stream server|client ...");
  int server = !strcmp(argv[1], "server");
  unsigned port = 0, timeout = 60;
  int i = 2;
  if (!server) {
    if (strcmp(argv[1], "client") || argc < 3) die("usage: fault_stream client PORT ...");
    port = (unsigned)strtoul(argv[2], NULL, 10);
    i = 3;
  }
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--linger") || !strcmp(a, "--no-shutdown")) {
      *(a[2] == 'l' ? &opt_linger : &opt_no_shutdown) = 1;
      continue;
    }
    if (i + 1 >= argc) die("%s needs a value", a);
    const char *v = argv[++i];
    if (!strcmp(a, "--port")) port = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--bytes")) opt_bytes = parse_size(v);
    else if (!strcmp(a, "--chunk")) opt_chunk = parse_size(v);
    else if (!strcmp(a, "--tx-seed")) tx_seed = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--rx-seed")) rx_seed = strtoull(v, NULL, 0);
    else if (!strcmp(a, "--die-after")) opt_die = parse_size(v);
    else if (!strcmp(a, "--rx-bytes")) opt_rx_bytes = parse_size(v);
    else if (!strcmp(a, "--pause-every")) opt_pause = parse_size(v);
    else if (!strcmp(a, "--timeout")) timeout = (unsigned)strtoul(v, NULL, 10);
    else die("unknown option %s", a);
  }
  if (opt_chunk == 0) die("--chunk must be > 0");
  signal(SIGPIPE, SIG_IGN);
  watchdog(timeout);

  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  if (server) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0) die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind: %s", strerror(errno));
    if (listen(ls, 16) < 0) die("listen: %s", strerror(errno));
    socklen_t al = sizeof a;
    if (getsockname(ls, (struct sockaddr *)&a, &al) < 0) die("getsockname: %s", strerror(errno));
    printf("port %u\n", (unsigned)ntohs(a.sin_port));
    fflush(stdout);
    do fd = accept(ls, NULL, NULL);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    if (fd < 0) die("accept: %s", strerror(errno));
    close(ls);
  } else {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    int r;
    do r = connect(fd, (struct sockaddr *)&a, sizeof a);
    while (r < 0 && errno == EINTR);
    if (r < 0) die("connect: %s", strerror(errno));
  }
  char local[64] = "?", peer[64] = "?";
  struct sockaddr_in x;
  socklen_t xl = sizeof x;
  if (getsockname(fd, (struct sockaddr *)&x, &xl) == 0) addr_str(&x, local, sizeof local);
  xl = sizeof x;
  if (getpeername(fd, (struct sockaddr *)&x, &xl) == 0) addr_str(&x, peer, sizeof peer);
  printf("conn %d %s %s\n", (int)getpid(), local, peer);
  fflush(stdout);

  pthread_t wt;
  int e = pthread_create(&wt, NULL, writer, NULL);
  if (e) die("pthread_create: %s", strerror(e));

  enum { BUF = 256 * 1024 };
  unsigned char *buf = malloc(BUF), *scratch = malloc(VERIFY_SCRATCH);
  if (!buf || !scratch) die("out of memory");
  struct rng r;
  rng_seed(&r, rx_seed ^ 0x99);
  uint64_t got = 0;
  long bad = -1;
  int err = 0, complete = 0;
  for (;;) {
    if (got >= opt_rx_bytes) {
      complete = 1;
      break;
    }
    uint64_t y = rng_next(&r);
    size_t want = (y & 7) == 0 ? (size_t)rng_range(&r, 1, 512) : (size_t)rng_range(&r, 4096, BUF);
    if (want > opt_rx_bytes - got) want = (size_t)(opt_rx_bytes - got);
    ssize_t n;
    switch ((y >> 8) % 3) {
      case 0: n = read(fd, buf, want); break;
      case 1: n = recv(fd, buf, want, 0); break;
      default: {
        size_t h = want / 3;
        struct iovec v[2] = {{buf, h}, {buf + h, want - h}};
        n = readv(fd, v, 2);
      }
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) break;
    long k = stream_check(rx_seed, got, buf, (size_t)n, scratch);
    if (k >= 0) {
      bad = (long)got + k;
      err = -1;
      break;
    }
    got += (uint64_t)n;
  }
  rx_end.ns = now_ns();
  rx_end.bytes = got;
  rx_end.err = err;

  /* The writer ends by itself (all sent, or an error once the peer is gone);
   * give it 3 s, then call it stuck. */
  uint64_t limit = now_ns() + 3000000000ull;
  while (!__atomic_load_n(&tx_end.done, __ATOMIC_ACQUIRE) && now_ns() < limit) usleep(1000);
  int stuck = !__atomic_load_n(&tx_end.done, __ATOMIC_ACQUIRE);
  int ok = bad < 0 && !stuck;
  printf("{\"ok\":%s,\"rx\":%llu,\"rx_end\":\"%s\",\"rx_end_ns\":%llu,\"tx\":%llu,\"tx_end\":\"%s\",\"tx_end_ns\":%llu,"
         "\"mismatch_at\":%ld}\n",
         ok ? "true" : "false", (unsigned long long)got, end_name(err, complete ? "complete" : "eof"), (unsigned long long)rx_end.ns,
         (unsigned long long)(stuck ? 0 : tx_end.bytes), stuck ? "stuck" : end_name(tx_end.err, "done"),
         (unsigned long long)(stuck ? 0 : tx_end.ns), bad);
  fflush(stdout);
  if (bad >= 0) fprintf(stderr, "fault_stream: received byte %ld differs from the byte sent\n", bad);
  if (opt_linger) {
    char b[256];
    while (read(0, b, sizeof b) > 0) {
    }
  }
  _exit(ok ? 0 : 1);
}
