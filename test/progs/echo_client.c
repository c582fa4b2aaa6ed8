/* echo_client: the client side of the echo pair, an "unmodified" blocking TCP
 * program that knows nothing of pipedevice. Every mode ends by itself and
 * prints one JSON line on stdout, and nothing else; errors go to stderr.
 * Exit status: 0 ok, 1 failure (mismatch, short stream, socket error),
 * 2 usage, 3 watchdog timeout.
 *
 *   echo_client stream HOST PORT BYTES CHUNK [--hold] [--seed S]
 *       A writer thread sends BYTES of the deterministic stream `seed` in
 *       CHUNK-sized write() calls; the main thread reads the echo with read()
 *       and recv() into varied buffer sizes and checks every byte against the
 *       same generator (first mismatch offset reported), and a chunking-
 *       independent checksum of what was sent and what came back must agree.
 *       --hold: after the JSON line, keep the connection open until stdin
 *       reaches EOF. Then shutdown(SHUT_WR), expect EOF with no extra byte.
 *   echo_client short HOST PORT N [--seed S]
 *       N sequential connections. Each writes, right after connect(), a
 *       pseudo-random number of bytes (40% 1..64 B, 30% 65 B..16 KiB, 30% up
 *       to 256 KiB) in pseudo-random write sizes, then shutdown(SHUT_WR), and
 *       reads the echo to EOF, checking it byte for byte. Tiny payloads are
 *       written from the main thread before reading; larger ones from a
 *       writer thread while the main thread reads.
 *   echo_client pingpong HOST PORT ITERS SIZE [--hold]
 *       TCP_NODELAY; SIZE-byte message written, exactly SIZE read back and
 *       compared, ITERS times after a warm-up of min(ITERS/10, 2000) rounds.
 *       Reports the round-trip time distribution in microseconds. --hold as
 *       for stream (throughput takes it too).
 *   echo_client throughput HOST PORT BYTES CHUNK [--hold]
 *       Like stream, but the writer cycles a pre-generated 1 MiB pattern, and
 *       the reader (CHUNK-sized read() calls) checks only the byte count and a
 *       sample: the first and last 8 bytes of every read against the pattern
 *       at that offset (catches loss, duplication, reordering of whole reads,
 *       cheaply, so the number measures transport, not verification).
 *   Common options: --timeout S (watchdog, default 600), --seed S (default 1).
 */
#include "common.h"

#include <netdb.h>
#include <pthread.h>

static uint64_t opt_seed = 1;
static int opt_hold = 0;
static unsigned opt_timeout = 600;

static int connect_to(const char *host, const char *port) {
  struct addrinfo hints, *res, *ai;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int e = getaddrinfo(host, port, &hints, &res);
  if (e) die("getaddrinfo %s:%s: %s", host, port, gai_strerror(e));
  int fd = -1, err = 0;
  for (ai = res; ai; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int r;
    do r = connect(fd, ai->ai_addr, ai->ai_addrlen);
    while (r < 0 && errno == EINTR);
    if (r == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) die("connect %s:%s: %s", host, port, strerror(err));
  return fd;
}

static void sock_addrs(int fd, char *local, char *peer, size_t len) {
  struct sockaddr_in a;
  socklen_t al = sizeof a;
  if (getsockname(fd, (struct sockaddr *)&a, &al) < 0) die("getsockname: %s", strerror(errno));
  addr_str(&a, local, len);
  al = sizeof a;
  if (getpeername(fd, (struct sockaddr *)&a, &al) < 0) die("getpeername: %s", strerror(errno));
  addr_str(&a, peer, len);
}

/* Close our side gracefully: SHUT_WR, then the echo server's EOF must come with
 * no further byte. */
static void finish_conn(int fd, const char *what) {
  if (shutdown(fd, SHUT_WR) < 0) die("%s: shutdown: %s", what, strerror(errno));
  char c;
  ssize_t n;
  do n = read(fd, &c, 1);
  while (n < 0 && errno == EINTR);
  if (n < 0) die("%s: read after shutdown: %s", what, strerror(errno));
  if (n > 0) die("%s: unexpected byte after the full echo", what);
  if (close(fd) < 0) die("%s: close: %s", what, strerror(errno));
}

static void wait_stdin_eof(void) {
  char b[256];
  for (;;) {
    ssize_t n = read(0, b, sizeof b);
    if (n == 0) return;
    if (n < 0 && errno != EINTR) return;
  }
}

/* ---------------------------------------------------------------- stream */

#define PATTERN_PERIOD (1u << 20)

struct writer {
  int fd;
  uint64_t bytes;
  size_t chunk;
  uint64_t seed;
  int pattern; /* throughput mode: cycle a pre-generated pattern */
  const unsigned char *pat;
  struct csum sum;
  int err; /* errno of a failed write, 0 if ok */
  uint64_t sent;
};

static void *writer_main(void *arg) {
  struct writer *w = arg;
  unsigned char *buf = NULL;
  if (!w->pattern) {
    buf = malloc(w->chunk);
    if (!buf) die("out of memory");
  }
  csum_init(&w->sum);
  uint64_t off = 0;
  while (off < w->bytes) {
    size_t n = w->bytes - off < w->chunk ? (size_t)(w->bytes - off) : w->chunk;
    const unsigned char *p;
    if (w->pattern) {
      p = w->pat + (off % PATTERN_PERIOD);
    } else {
      stream_fill(w->seed, off, buf, n);
      csum_update(&w->sum, buf, n);
      p = buf;
    }
    if (write_all(w->fd, p, n, 0) < 0) {
      w->err = errno;
      break;
    }
    off += n;
  }
  w->sent = off;
  free(buf);
  return NULL;
}

static int run_stream(const char *host, const char *port, uint64_t bytes, size_t chunk, int pattern) {
  const char *mode = pattern ? "throughput" : "stream";
  if (chunk == 0) die("CHUNK must be > 0");
  signal(SIGPIPE, SIG_IGN);
  unsigned char *pat = NULL;
  if (pattern) {
    pat = malloc(PATTERN_PERIOD + chunk + 8);
    if (!pat) die("out of memory");
    stream_fill(opt_seed, 0, pat, PATTERN_PERIOD);
    for (size_t i = PATTERN_PERIOD; i < PATTERN_PERIOD + chunk + 8; i++) pat[i] = pat[i - PATTERN_PERIOD];
  }
  int fd = connect_to(host, port);
  char local[64], peer[64];
  sock_addrs(fd, local, peer, sizeof local);

  struct writer w = {.fd = fd, .bytes = bytes, .chunk = chunk, .seed = opt_seed, .pattern = pattern, .pat = pat};
  double t0 = now_s();
  pthread_t wt;
  int e = pthread_create(&wt, NULL, writer_main, &w);
  if (e) die("pthread_create: %s", strerror(e));

  size_t bufcap = pattern ? chunk : (1u << 20);
  unsigned char *buf = malloc(bufcap);
  unsigned char *scratch = malloc(VERIFY_SCRATCH);
  if (!buf || !scratch) die("out of memory");
  struct csum rsum;
  csum_init(&rsum);
  struct rng r;
  rng_seed(&r, opt_seed ^ 0x5151);
  uint64_t got = 0;
  unsigned long long reads = 0;
  while (got < bytes) {
    size_t want;
    int use_recv = 0;
    if (pattern) {
      want = chunk;
    } else {
      uint64_t x = rng_next(&r);
      want = (x & 31) == 0 ? (size_t)rng_range(&r, 1, 4096) : (size_t)rng_range(&r, 16384, bufcap);
      use_recv = (x >> 8) & 1;
    }
    if (want > bytes - got) want = (size_t)(bytes - got);
    ssize_t n = use_recv ? recv(fd, buf, want, 0) : read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("%s: %s: %s after %llu of %llu bytes", mode, use_recv ? "recv" : "read", strerror(errno),
          (unsigned long long)got, (unsigned long long)bytes);
    }
    if (n == 0)
      die("%s: EOF after %llu of %llu bytes", mode, (unsigned long long)got, (unsigned long long)bytes);
    reads++;
    if (pattern) {
      size_t k = (size_t)n < 8 ? (size_t)n : 8;
      const unsigned char *first = pat + (got % PATTERN_PERIOD);
      const unsigned char *last = pat + ((got + (uint64_t)n - k) % PATTERN_PERIOD);
      if (memcmp(buf, first, k) || memcmp(buf + n - k, last, k))
        die("throughput: sampled mismatch in the read at offset %llu (len %zd)", (unsigned long long)got, n);
    } else {
      long bad = stream_check(opt_seed, got, buf, (size_t)n, scratch);
      if (bad >= 0) {
        unsigned char want_b;
        stream_fill(opt_seed, got + (uint64_t)bad, &want_b, 1);
        die("stream: mismatch at byte offset %llu: got 0x%02x, want 0x%02x (read of %zd bytes at %llu)",
            (unsigned long long)(got + (uint64_t)bad), buf[bad], want_b, n, (unsigned long long)got);
      }
      csum_update(&rsum, buf, (size_t)n);
    }
    got += (uint64_t)n;
  }
  double secs = now_s() - t0;
  pthread_join(wt, NULL);
  if (w.err) die("%s: write: %s after %llu bytes", mode, strerror(w.err), (unsigned long long)w.sent);
  if (w.sent != bytes) die("%s: sent %llu of %llu bytes", mode, (unsigned long long)w.sent, (unsigned long long)bytes);
  char cs[32] = "";
  if (!pattern) {
    uint64_t a = csum_final(&w.sum), b = csum_final(&rsum);
    if (a != b) die("stream: checksum of sent %016llx != received %016llx", (unsigned long long)a, (unsigned long long)b);
    snprintf(cs, sizeof cs, "%016llx", (unsigned long long)b);
  }
  double gbps = secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
  double gBps = secs > 0 ? (double)bytes / secs / 1e9 : 0;
  if (pattern)
    printf("{\"ok\":true,\"mode\":\"throughput\",\"bytes\":%llu,\"sent\":%llu,\"chunk\":%zu,\"verify\":\"sampled\","
           "\"seconds\":%.6f,\"gbps\":%.3f,\"gbytes_per_s\":%.4f,\"reads\":%llu,\"local\":\"%s\",\"peer\":\"%s\"}\n",
           (unsigned long long)got, (unsigned long long)w.sent, chunk, secs, gbps, gBps, reads, local, peer);
  else
    printf("{\"ok\":true,\"mode\":\"stream\",\"bytes\":%llu,\"sent\":%llu,\"chunk\":%zu,\"verify\":\"full\","
           "\"checksum\":\"%s\",\"seconds\":%.6f,\"gbps\":%.3f,\"gbytes_per_s\":%.4f,\"reads\":%llu,"
           "\"local\":\"%s\",\"peer\":\"%s\"}\n",
           (unsigned long long)got, (unsigned long long)w.sent, chunk, cs, secs, gbps, gBps, reads, local, peer);
  fflush(stdout);
  if (opt_hold) {
    alarm(0); /* the test decides how long to hold; stdin EOF ends it */
    wait_stdin_eof();
    alarm(opt_timeout);
  }
  finish_conn(fd, mode);
  free(buf);
  free(scratch);
  free(pat);
  return 0;
}

/* ---------------------------------------------------------------- short */

struct short_writer {
  int fd;
  uint64_t seed;
  size_t size;
  int err;
};

static void *short_writer_main(void *arg) {
  struct short_writer *sw = arg;
  unsigned char buf[16384];
  struct rng r;
  rng_seed(&r, sw->seed ^ 0x77);
  size_t off = 0;
  while (off < sw->size) {
    size_t n = (size_t)rng_range(&r, 1, sizeof buf);
    if (n > sw->size - off) n = sw->size - off;
    stream_fill(sw->seed, off, buf, n);
    if (write_all(sw->fd, buf, n, (r.s & 1) != 0) < 0) {
      sw->err = errno;
      return NULL;
    }
    off += n;
  }
  if (shutdown(sw->fd, SHUT_WR) < 0) sw->err = errno;
  return NULL;
}

static int run_short(const char *host, const char *port, unsigned long nconns) {
  signal(SIGPIPE, SIG_IGN);
  struct rng r;
  rng_seed(&r, opt_seed);
  unsigned char *buf = malloc(65536), *scratch = malloc(VERIFY_SCRATCH);
  if (!buf || !scratch) die("out of memory");
  unsigned long long total = 0;
  unsigned long tiny = 0, threaded = 0;
  double t0 = now_s();
  for (unsigned long i = 0; i < nconns; i++) {
    uint64_t cseed = splitmix64(opt_seed * 1000003ULL + i);
    uint64_t cls = rng_next(&r) % 10;
    size_t size = cls < 4 ? (size_t)rng_range(&r, 1, 64)
                  : cls < 7 ? (size_t)rng_range(&r, 65, 16384)
                            : (size_t)rng_range(&r, 16385, 256 * 1024);
    int fd = connect_to(host, port);
    struct short_writer sw = {.fd = fd, .seed = cseed, .size = size};
    pthread_t wt;
    int use_thread = size > 64;
    if (use_thread) {
      int e = pthread_create(&wt, NULL, short_writer_main, &sw);
      if (e) die("pthread_create: %s", strerror(e));
      threaded++;
    } else {
      unsigned char small[64];
      stream_fill(cseed, 0, small, size);
      if (write_all(fd, small, size, i & 1) < 0) die("short: conn %lu: write: %s", i, strerror(errno));
      if (shutdown(fd, SHUT_WR) < 0) die("short: conn %lu: shutdown: %s", i, strerror(errno));
      tiny++;
    }
    size_t got = 0;
    for (;;) {
      size_t want = (size_t)rng_range(&r, 1, 65536);
      ssize_t n = (i & 2) ? recv(fd, buf, want, 0) : read(fd, buf, want);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("short: conn %lu (size %zu): read: %s after %zu bytes", i, size, strerror(errno), got);
      }
      if (n == 0) break;
      if (got + (size_t)n > size)
        die("short: conn %lu: received %zu bytes, more than the %zu sent", i, got + (size_t)n, size);
      long bad = stream_check(cseed, got, buf, (size_t)n, scratch);
      if (bad >= 0) {
        unsigned char want_b;
        stream_fill(cseed, got + (size_t)bad, &want_b, 1);
        die("short: conn %lu (size %zu): mismatch at byte offset %zu: got 0x%02x, want 0x%02x", i, size,
            got + (size_t)bad, buf[bad], want_b);
      }
      got += (size_t)n;
    }
    if (use_thread) {
      pthread_join(wt, NULL);
      if (sw.err) die("short: conn %lu (size %zu): write: %s", i, size, strerror(sw.err));
    }
    if (got != size) die("short: conn %lu: EOF after %zu of %zu bytes", i, got, size);
    if (close(fd) < 0) die("short: conn %lu: close: %s", i, strerror(errno));
    total += size;
  }
  double secs = now_s() - t0;
  printf("{\"ok\":true,\"mode\":\"short\",\"conns\":%lu,\"bytes\":%llu,\"tiny\":%lu,\"threaded\":%lu,\"seconds\":%.6f}\n",
         nconns, total, tiny, threaded, secs);
  fflush(stdout);
  free(buf);
  free(scratch);
  return 0;
}

/* ---------------------------------------------------------------- pingpong */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int run_pingpong(const char *host, const char *port, unsigned long iters, size_t size) {
  if (size == 0 || iters == 0) die("pingpong: ITERS and SIZE must be > 0");
  signal(SIGPIPE, SIG_IGN);
  int fd = connect_to(host, port);
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("TCP_NODELAY: %s", strerror(errno));
  char local[64], peer[64];
  sock_addrs(fd, local, peer, sizeof local);
  unsigned char *msg = malloc(size), *back = malloc(size);
  uint64_t *rtt = malloc(iters * sizeof *rtt);
  if (!msg || !back || !rtt) die("out of memory");
  stream_fill(opt_seed, 0, msg, size);
  unsigned long warm = iters / 10 < 2000 ? iters / 10 : 2000;
  double t0 = 0;
  for (unsigned long i = 0; i < warm + iters; i++) {
    if (i == warm) t0 = now_s();
    uint64_t tag = i;
    memcpy(msg, &tag, size < 8 ? size : 8);
    uint64_t a = now_ns();
    if (write_all(fd, msg, size, 0) < 0) die("pingpong: write: %s at round %lu", strerror(errno), i);
    ssize_t n = read_full(fd, back, size, 0);
    uint64_t b = now_ns();
    if (n < 0) die("pingpong: read: %s at round %lu", strerror(errno), i);
    if ((size_t)n != size) die("pingpong: EOF at round %lu (%zd of %zu bytes)", i, n, size);
    if (memcmp(msg, back, size)) die("pingpong: echo differs at round %lu", i);
    if (i >= warm) rtt[i - warm] = b - a;
  }
  double secs = now_s() - t0;
  double sum = 0;
  for (unsigned long i = 0; i < iters; i++) sum += (double)rtt[i];
  qsort(rtt, iters, sizeof *rtt, cmp_u64);
  double med = (double)rtt[iters / 2] / 1e3;
  double p99 = (double)rtt[(unsigned long)((double)(iters - 1) * 0.99)] / 1e3;
  double p999 = (double)rtt[(unsigned long)((double)(iters - 1) * 0.999)] / 1e3;
  printf("{\"ok\":true,\"mode\":\"pingpong\",\"iters\":%lu,\"warmup\":%lu,\"size\":%zu,\"seconds\":%.6f,"
         "\"rtt_us\":{\"median\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"mean\":%.3f,\"min\":%.3f,\"max\":%.3f},"
         "\"local\":\"%s\",\"peer\":\"%s\"}\n",
         iters, warm, size, secs, med, p99, p999, sum / (double)iters / 1e3, (double)rtt[0] / 1e3,
         (double)rtt[iters - 1] / 1e3, local, peer);
  fflush(stdout);
  if (opt_hold) {
    alarm(0);
    wait_stdin_eof();
    alarm(opt_timeout);
  }
  finish_conn(fd, "pingpong");
  free(msg);
  free(back);
  free(rtt);
  return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(void) {
  fprintf(stderr,
          "usage: echo_client stream HOST PORT BYTES CHUNK [--hold] [--seed S] [--timeout S]\n"
          "       echo_client short HOST PORT N [--seed S] [--timeout S]\n"
          "       echo_client pingpong HOST PORT ITERS SIZE [--hold] [--timeout S]\n"
          "       echo_client throughput HOST PORT BYTES CHUNK [--hold] [--timeout S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  prog_name = "echo_client";
  const char *pos[8];
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--hold")) opt_hold = 1;
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) opt_seed = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) opt_timeout = (unsigned)strtoul(argv[++i], NULL, 10);
    else if (argv[i][0] == '-' && argv[i][1] == '-') usage();
    else if (npos < 8) pos[npos++] = argv[i];
    else usage();
  }
  if (npos < 1) usage();
  watchdog(opt_timeout);
  const char *m = pos[0];
  if (!strcmp(m, "stream") && npos == 5)
    return run_stream(pos[1], pos[2], parse_size(pos[3]), (size_t)parse_size(pos[4]), 0);
  if (!strcmp(m, "throughput") && npos == 5)
    return run_stream(pos[1], pos[2], parse_size(pos[3]), (size_t)parse_size(pos[4]), 1);
  if (!strcmp(m, "short") && npos == 4) return run_short(pos[1], pos[2], (unsigned long)parse_size(pos[3]));
  if (!strcmp(m, "pingpong") && npos == 5)
    return run_pingpong(pos[1], pos[2], (unsigned long)parse_size(pos[3]), (size_t)parse_size(pos[4]));
  usage();
  return 2;
}
