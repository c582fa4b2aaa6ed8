/* Shared helpers for the test programs: a random-access deterministic byte
 * stream, a streaming checksum that does not depend on how the stream is
 * chunked, blocking I/O loops, timing and a watchdog. Header-only so every
 * program in test/progs/ stays one translation unit. These programs are
 * "unmodified applications": they use plain libc socket calls and nothing
 * from pipedevice. */
#ifndef PD_TEST_COMMON_H
#define PD_TEST_COMMON_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static const char *prog_name = "prog";

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* splitmix64: a bijective mixer; stream word k of seed s is mix(s + k*gamma). */
static inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static inline uint64_t stream_word(uint64_t seed, uint64_t k) {
  return splitmix64(seed ^ (k * 0xd1342543de82ef95ULL));
}

/* Fill buf with bytes [off, off+len) of the stream `seed` (little-endian words). */
static inline void stream_fill(uint64_t seed, uint64_t off, unsigned char *buf, size_t len) {
  while (len > 0 && (off & 7)) {
    uint64_t w = stream_word(seed, off >> 3);
    *buf++ = (unsigned char)(w >> (8 * (off & 7)));
    off++;
    len--;
  }
  uint64_t k = off >> 3;
  while (len >= 8) {
    uint64_t w = stream_word(seed, k++);
    memcpy(buf, &w, 8);
    buf += 8;
    len -= 8;
  }
  off = k << 3;
  for (size_t i = 0; i < len; i++) {
    uint64_t w = stream_word(seed, (off + i) >> 3);
    buf[i] = (unsigned char)(w >> (8 * ((off + i) & 7)));
  }
}

/* Compare buf with stream bytes [off, off+len). Returns -1 when equal, else the
 * index in buf of the first differing byte. `scratch` holds at least 64 KiB. */
#define VERIFY_SCRATCH (64 * 1024)
static inline long stream_check(uint64_t seed, uint64_t off, const unsigned char *buf, size_t len,
                         unsigned char *scratch) {
  size_t done = 0;
  while (done < len) {
    size_t n = len - done < VERIFY_SCRATCH ? len - done : VERIFY_SCRATCH;
    stream_fill(seed, off + done, scratch, n);
    if (memcmp(scratch, buf + done, n) != 0) {
      for (size_t i = 0; i < n; i++)
        if (scratch[i] != buf[done + i]) return (long)(done + i);
    }
    done += n;
  }
  return -1;
}

/* Chunking-independent checksum: 4 lanes over the stream's 8-byte words (word k
 * goes to lane k%4), then a final mix with the byte count. */
struct csum {
  uint64_t lane[4];
  uint64_t nbytes;
  unsigned char part[8];
};

static inline void csum_init(struct csum *c) {
  memset(c, 0, sizeof *c);
  c->lane[0] = 0x243f6a8885a308d3ULL;
  c->lane[1] = 0x13198a2e03707344ULL;
  c->lane[2] = 0xa4093822299f31d0ULL;
  c->lane[3] = 0x082efa98ec4e6c89ULL;
}

static inline void csum_word(struct csum *c, uint64_t k, uint64_t w) {
  uint64_t *l = &c->lane[k & 3];
  *l ^= w * 0x9fb21c651e98df25ULL;
  *l = ((*l << 29) | (*l >> 35)) * 0xc2b2ae3d27d4eb4fULL;
}

static inline void csum_update(struct csum *c, const unsigned char *p, size_t n) {
  while (n > 0 && (c->nbytes & 7)) {
    c->part[c->nbytes & 7] = *p++;
    c->nbytes++;
    n--;
    if ((c->nbytes & 7) == 0) {
      uint64_t w;
      memcpy(&w, c->part, 8);
      csum_word(c, (c->nbytes >> 3) - 1, w);
    }
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    csum_word(c, c->nbytes >> 3, w);
    c->nbytes += 8;
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    c->part[c->nbytes & 7] = *p++;
    c->nbytes++;
    n--;
  }
}

static inline uint64_t csum_final(const struct csum *c) {
  uint64_t h = c->nbytes * 0x9e3779b97f4a7c15ULL;
  for (int i = 0; i < 4; i++) h = splitmix64(h ^ c->lane[i]);
  if (c->nbytes & 7) {
    unsigned char tail[8] = {0};
    memcpy(tail, c->part, c->nbytes & 7);
    uint64_t w;
    memcpy(&w, tail, 8);
    h = splitmix64(h ^ w);
  }
  return h;
}

/* Small PRNG for sizes and choices (xorshift64*). */
struct rng {
  uint64_t s;
};
static inline void rng_seed(struct rng *r, uint64_t seed) { r->s = splitmix64(seed) | 1; }
static inline uint64_t rng_next(struct rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545f4914f6cdd1dULL;
}
/* uniform-ish in [lo, hi] */
static inline uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi) {
  return lo + rng_next(r) % (hi - lo + 1);
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Write all of buf; use_send selects send(MSG_NOSIGNAL) over write(). Returns 0,
 * or -1 with errno set. */
static inline int write_all(int fd, const void *buf, size_t len, int use_send) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = use_send ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) {
      errno = EIO;
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Read exactly len bytes. Returns len, the short count at EOF, or -1 (errno). */
static inline ssize_t read_full(int fd, void *buf, size_t len, int use_recv) {
  char *p = buf;
  size_t got = 0;
  while (got < len) {
    ssize_t n = use_recv ? recv(fd, p + got, len - got, 0) : read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static inline void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = ": watchdog timeout, giving up\n";
  ssize_t r = write(2, prog_name, strlen(prog_name));
  r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(3);
}

/* Every program is bounded: after `seconds` it exits with status 3. */
static inline void watchdog(unsigned seconds) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigaction(SIGALRM, &sa, NULL);
  alarm(seconds);
}

static inline void addr_str(const struct sockaddr_in *a, char *out, size_t outlen) {
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
  snprintf(out, outlen, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
}

static inline unsigned long long parse_size(const char *s) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s) die("bad number: %s", s);
  switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
  }
  if (*end == 'i' || *end == 'B') end++;
  if (*end == 'B') end++;
  if (*end) die("bad number: %s", s);
  return v;
}

/* The local "ip:port" of a socket. */
static inline void local_addr(int fd, char *out, size_t outlen) {
  struct sockaddr_in la;
  socklen_t lal = sizeof la;
  if (getsockname(fd, (struct sockaddr *)&la, &lal) < 0) die("getsockname: %s", strerror(errno));
  addr_str(&la, out, outlen);
}

/* A blocking connect to IPv4 host:port; dies on failure. */
static inline int connect_tcp(const char *host, const char *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)parse_size(port))};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("bad IPv4 address %s", host);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect: %s", strerror(errno));
  return fd;
}

#endif
