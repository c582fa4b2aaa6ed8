/* behave: differential behaviour scenarios (issue 3). One scenario, two
 * processes, one TCP connection; the test runs it once on plain kernel TCP and
 * once with both processes under pdrun, the connection asserted upgraded, and
 * requires the two traces to be identical, line for line, per end.
 *
 *   behave SCENARIO server            listens on 127.0.0.1:0
 *   behave SCENARIO client PORT       connects to it
 *   behave SCENARIO client -          reads "port N" from stdin first
 *   behave --list                     the scenario names
 *
 * Protocol (stdout lines starting with "= " are for the harness, every other
 * line is the trace):
 *   server: "= port N", accepts the connection, echoes warm-up bytes.
 *   client: connects, "= local ADDR", "= ready", then sends 'w' and reads the
 *           echo, again and again (so that both shims pick up the assignment,
 *           attach and switch both directions) until the harness writes "go"
 *           on its stdin; then it sends 'g', which the server echoes: from
 *           here on both ends run the scenario, printing their traces.
 *   both:   "= end" after the scenario, then wait for stdin EOF, then exit 0.
 * The two ends also share a side channel (an abstract Unix socket named after
 * the TCP port) to order their steps without timing guesses; it is never the
 * object under test. Unix sockets pass through the shim untouched.
 *
 * Trace lines: a call, its return value, the errno name when it failed (and a
 * note when a successful call changed errno: wrappers must preserve it),
 * revents in symbolic form, byte counts and whether the bytes are the ones the
 * peer sent. Nothing that depends on kernel buffer sizes, ring sizes, timing,
 * fd numbers, pids or port numbers is traced.
 *
 * Every process is bounded by a watchdog (a POSIX timer on a real-time signal,
 * so SIGALRM stays free for the EINTR scenarios). Header-only so behave.c and
 * behave_fortify.c (the same program under _FORTIFY_SOURCE=2) share it. */
#ifndef BEHAVE_H
#define BEHAVE_H

#include "common.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ */
/* tracing                                                             */

#define ERRNO_SENTINEL 4095 /* no real errno: a successful call must leave it */

static void T(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void T(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static const char *ename(int e) {
  if (e == ERRNO_SENTINEL) return "(unchanged)";
  const char *n = strerrorname_np(e);
  static __thread char b[32];
  if (n) return n;
  snprintf(b, sizeof b, "E#%d", e);
  return b;
}

static long tr_call(const char *label, long r, int e) {
  if (r < 0) T("%s = %ld %s", label, r, ename(e));
  else if (e != ERRNO_SENTINEL) T("%s = %ld (errno changed to %s)", label, r, ename(e));
  else T("%s = %ld", label, r);
  return r;
}

/* TR("what", call): run it with errno set to a sentinel, trace the result. */
#define TR(label, expr)                 \
  __extension__({                       \
    errno = ERRNO_SENTINEL;             \
    long tr_r_ = (long)(expr);          \
    int tr_e_ = errno;                  \
    tr_call((label), tr_r_, tr_e_);     \
  })

/* Same, but keep the errno for the caller (for loops that stop on EAGAIN). */
#define CALL(expr, errp)                \
  __extension__({                       \
    errno = ERRNO_SENTINEL;             \
    long c_r_ = (long)(expr);           \
    *(errp) = errno;                    \
    c_r_;                               \
  })

static const char *evs(unsigned ev) {
  static __thread char b[160];
  static const struct { unsigned bit; const char *name; } names[] = {
      {POLLIN, "IN"},       {POLLPRI, "PRI"},       {POLLOUT, "OUT"},       {POLLERR, "ERR"},
      {POLLHUP, "HUP"},     {POLLNVAL, "NVAL"},     {POLLRDNORM, "RDNORM"}, {POLLRDBAND, "RDBAND"},
      {POLLWRNORM, "WRNORM"}, {POLLWRBAND, "WRBAND"}, {POLLMSG, "MSG"},     {POLLRDHUP, "RDHUP"},
  };
  b[0] = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!(ev & names[i].bit)) continue;
    if (b[0]) strcat(b, "|");
    strcat(b, names[i].name);
    ev &= ~names[i].bit;
  }
  if (ev) snprintf(b + strlen(b), sizeof b - strlen(b), "%s0x%x", b[0] ? "|" : "", ev);
  if (!b[0]) strcpy(b, "0");
  return b;
}

static const char *yn(bool b) { return b ? "yes" : "no"; }

/* ------------------------------------------------------------------ */
/* data: every byte of a scenario is byte `off` of stream `seed`        */

/* Checks received bytes against the stream as they come. */
struct rx {
  uint64_t seed, off, bad_at;
  bool bad;
  unsigned char scratch[VERIFY_SCRATCH];
};
static void rx_init(struct rx *r, uint64_t seed, uint64_t off) {
  r->seed = seed;
  r->off = off;
  r->bad = false;
  r->bad_at = 0;
}
static void rx_add(struct rx *r, const void *buf, size_t n) {
  if (!r->bad) {
    long at = stream_check(r->seed, r->off, buf, n, r->scratch);
    if (at >= 0) {
      r->bad = true;
      r->bad_at = r->off + (uint64_t)at;
    }
  }
  r->off += n;
}
static const char *rx_verdict(const struct rx *r) {
  static __thread char b[64];
  if (!r->bad) return "bytes ok";
  snprintf(b, sizeof b, "bytes differ from offset %llu", (unsigned long long)r->bad_at);
  return b;
}

/* ------------------------------------------------------------------ */
/* process plumbing                                                    */

static volatile sig_atomic_t n_sigpipe, n_alarm, n_usr1;
static void on_sigpipe(int s) { (void)s; n_sigpipe++; }
static void on_sigalrm(int s) { (void)s; n_alarm++; }

static void on_watchdog(int s) {
  (void)s;
  static const char m[] = "behave: watchdog timeout, giving up\n";
  ssize_t r = write(2, m, sizeof m - 1);
  (void)r;
  _exit(3);
}

/* The watchdog: a timer on SIGRTMIN+3 (SIGALRM belongs to the scenarios).
 * Its handler has SA_RESTART, like every handler here except those a
 * scenario installs on purpose: whether a socket call is restarted after a
 * signal depends on the handler's flags (eintr-* scenarios). */
static void behave_watchdog(unsigned seconds) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_watchdog;
  sigaction(SIGRTMIN + 3, &sa, NULL);
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN + 3;
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0) die("timer_create: %s", strerror(errno));
  struct itimerspec its = {.it_value = {.tv_sec = seconds}};
  if (timer_settime(t, 0, &its, NULL) < 0) die("timer_settime: %s", strerror(errno));
}

static void set_handler(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) < 0) die("sigaction: %s", strerror(errno));
}

/* one SIGALRM after ms milliseconds */
static void alarm_ms(unsigned ms) {
  struct itimerval it = {.it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000}};
  if (setitimer(ITIMER_REAL, &it, NULL) < 0) die("setitimer: %s", strerror(errno));
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* After the peer acted and told us so: let loopback TCP settle too. */
static void settle(void) { sleep_ms(30); }

static double ms_since(double t0) { return (now_s() - t0) * 1e3; }

/* Loopback TCP queues the bytes (the FIN, the reset) during the sender's
 * syscall, unless the softirq work was deferred to ksoftirqd on a loaded
 * machine. Before a traced check that expects them, wait until they are
 * visible (untraced and bounded: a missing event shows in the trace). */
static void await_bytes(int fd, int n) {
  for (int i = 0; i < 1500; i++) {
    int q = 0;
    if (ioctl(fd, FIONREAD, &q) == 0 && q >= n) return;
    sleep_ms(2);
  }
}
static void await_event(int fd, short ev, int ms) {
  struct pollfd p = {.fd = fd, .events = ev};
  int r = poll(&p, 1, ms);
  (void)r;
}

/* ------------------------------------------------------------------ */
/* the side channel                                                    */

static int side_fd = -1;

static void side_put(char c) {
  for (;;) {
    ssize_t r = send(side_fd, &c, 1, MSG_NOSIGNAL);
    if (r == 1) return;
    if (r < 0 && errno == EINTR) continue;
    die("side channel send: %s", r < 0 ? strerror(errno) : "short");
  }
}

/* Wait up to ms for the next side byte, which must be `want`; false on timeout. */
static bool side_get_to(char want, int ms) {
  struct pollfd p = {.fd = side_fd, .events = POLLIN};
  double t0 = now_s();
  for (;;) {
    int left = ms - (int)ms_since(t0);
    if (left < 0) left = 0;
    int r = poll(&p, 1, left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("side channel poll: %s", strerror(errno));
    if (r == 0) return false;
    char c;
    ssize_t n = recv(side_fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) die("side channel: %s while waiting for '%c'", n < 0 ? strerror(errno) : "EOF", want);
    if (c != want) die("side channel: got '%c', expected '%c'", c, want);
    return true;
  }
}

/* Every step of a scenario comes within a second or so; 5 s means the peer
 * is stuck (a failing scenario), so give up rather than hold the suite. */
#define SIDE_WAIT_MS 5000
static void side_get(char want) {
  if (!side_get_to(want, SIDE_WAIT_MS)) die("side channel: no '%c' within %d ms", want, SIDE_WAIT_MS);
}

static void side_put_u64(uint64_t v) {
  side_put('#');
  unsigned char b[8];
  memcpy(b, &v, 8);
  for (int i = 0; i < 8; i++) side_put((char)b[i]);
}

static bool side_get_u64_to(uint64_t *v, int ms) {
  if (!side_get_to('#', ms)) return false;
  unsigned char b[8];
  size_t got = 0;
  while (got < 8) {
    ssize_t n = recv(side_fd, b + got, 8 - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("side channel: short number");
    got += (size_t)n;
  }
  memcpy(v, b, 8);
  return true;
}

static uint64_t side_get_u64(void) {
  uint64_t v;
  if (!side_get_u64_to(&v, SIDE_WAIT_MS)) die("side channel: no number within %d ms", SIDE_WAIT_MS);
  return v;
}

/* ------------------------------------------------------------------ */
/* untraced I/O helpers (the scenario's setting, not its subject)       */

static void wait_fd(int fd, short ev) {
  struct pollfd p = {.fd = fd, .events = ev};
  int r = poll(&p, 1, 15000);
  if (r == 0) die("fd %d not ready for 0x%x within 15 s", fd, (unsigned)ev);
}

/* Read up to len bytes into the verifier (stops at EOF); returns the count. */
static uint64_t get_all(int fd, struct rx *r, uint64_t len) {
  unsigned char buf[65536];
  uint64_t got = 0;
  while (got < len) {
    size_t want = len - got < sizeof buf ? (size_t)(len - got) : sizeof buf;
    ssize_t n = recv(fd, buf, want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      wait_fd(fd, POLLIN);
      continue;
    }
    if (n < 0) die("get_all: %s", strerror(errno));
    if (n == 0) break;
    rx_add(r, buf, (size_t)n);
    got += (uint64_t)n;
  }
  return got;
}

static void set_nonblock(int fd, bool on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) < 0) die("fcntl: %s", strerror(errno));
}

static void set_timeo(int fd, int opt, unsigned ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) < 0) die("setsockopt timeout: %s", strerror(errno));
}

/* A temp file holding stream bytes [0, len); returns its fd (unlinked). */
static int stream_file(uint64_t seed, size_t len) {
  char path[] = "/tmp/behave-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) die("mkstemp: %s", strerror(errno));
  unlink(path);
  unsigned char buf[65536];
  for (size_t off = 0; off < len;) {
    size_t k = len - off < sizeof buf ? len - off : sizeof buf;
    stream_fill(seed, off, buf, k);
    if (write(fd, buf, k) != (ssize_t)k) die("write temp file: %s", strerror(errno));
    off += k;
  }
  if (lseek(fd, 0, SEEK_SET) != 0) die("lseek: %s", strerror(errno));
  return fd;
}

/* Fill a non-blocking socket until a write fails with EAGAIN, again after a
 * pause (loopback TCP may still move queued bytes into the peer's buffer),
 * until the socket stays full. Returns the bytes written (not traced: it is
 * the kernel's buffer sizes, or the ring's). */
static uint64_t fill_until_eagain(int fd, uint64_t seed, uint64_t off, int *last_errno) {
  unsigned char buf[65536];
  uint64_t total = 0;
  for (int round = 0; round < 50; round++) {
    uint64_t this_round = 0;
    for (;;) {
      stream_fill(seed, off + total, buf, sizeof buf);
      int e;
      long n = CALL(send(fd, buf, sizeof buf, MSG_NOSIGNAL), &e);
      if (n < 0) {
        *last_errno = e;
        if (e != EAGAIN) return total;
        break;
      }
      total += (uint64_t)n;
      this_round += (uint64_t)n;
    }
    if (round > 0 && this_round == 0) return total;
    sleep_ms(50);
  }
  die("the socket never stayed full");
}

/* ------------------------------------------------------------------ */
/* scenarios                                                           */

struct scen {
  const char *name;
  void (*srv)(int fd);
  void (*cli)(int fd);
  unsigned flags;
};
#define F_NONBLOCK 1u /* client socket(SOCK_NONBLOCK) + non-blocking connect, server accept4(SOCK_NONBLOCK) */
#define F_EARLY_EPOLL 2u /* the server registers the socket in epoll before the warm-up (before it attaches) */

static int early_ep = -1; /* F_EARLY_EPOLL */

/* ---------------- data ---------------- */

/* MSG_PEEK shows the bytes a read then returns; PEEK|DONTWAIT on empty: EAGAIN. */
static void peek_srv(int fd) {
  unsigned char a[256], b[256];
  side_get('d');
  await_bytes(fd, 100);
  settle();
  long n1 = TR("recv(60, MSG_PEEK)", recv(fd, a, 60, MSG_PEEK));
  long n2 = TR("recv(200, MSG_PEEK)", recv(fd, a, 200, MSG_PEEK));
  long n3 = TR("recv(200)", recv(fd, b, 200, 0));
  T("peeked bytes equal the bytes read: %s", yn(n1 == 60 && n2 == n3 && n3 > 0 && !memcmp(a, b, (size_t)n3)));
  struct rx r;
  rx_init(&r, 11, 0);
  if (n3 > 0) rx_add(&r, b, (size_t)n3);
  T("%s", rx_verdict(&r));
  TR("recv(100, MSG_PEEK|MSG_DONTWAIT) on empty", recv(fd, a, 100, MSG_PEEK | MSG_DONTWAIT));
}
static void peek_cli(int fd) {
  unsigned char b[100];
  stream_fill(11, 0, b, sizeof b);
  TR("write(100)", write(fd, b, sizeof b));
  side_put('d');
}

/* MSG_WAITALL gathers many small writes; at EOF it returns what there is. */
static void waitall_srv(int fd) {
  unsigned char *buf = malloc(7000);
  struct rx r;
  rx_init(&r, 12, 0);
  side_put('r');
  long n = TR("recv(7000, MSG_WAITALL) over 1000 writes of 7 bytes", recv(fd, buf, 7000, MSG_WAITALL));
  if (n > 0) rx_add(&r, buf, (size_t)n);
  T("%s", rx_verdict(&r));
  side_put('s');
  n = TR("recv(1000, MSG_WAITALL) with 500 bytes then EOF", recv(fd, buf, 1000, MSG_WAITALL));
  if (n > 0) rx_add(&r, buf, (size_t)n);
  T("%s", rx_verdict(&r));
  TR("recv(1000, MSG_WAITALL) at EOF", recv(fd, buf, 1000, MSG_WAITALL));
  free(buf);
}
static void waitall_cli(int fd) {
  unsigned char b[7];
  side_get('r');
  sleep_ms(20); /* the server is asleep in its recv */
  bool all = true;
  for (int i = 0; i < 1000; i++) {
    stream_fill(12, (uint64_t)i * 7, b, 7);
    if (write(fd, b, 7) != 7) all = false;
    if (i % 100 == 99) sleep_ms(2);
  }
  T("1000 writes of 7 bytes all returned 7: %s", yn(all));
  side_get('s');
  sleep_ms(20);
  unsigned char c[500];
  stream_fill(12, 7000, c, sizeof c);
  TR("write(500)", write(fd, c, sizeof c));
  TR("shutdown(SHUT_WR)", shutdown(fd, SHUT_WR));
}

/* MSG_DONTWAIT: EAGAIN on empty, the bytes when there are some; zero-length reads. */
static void dontwait_srv(int fd) {
  unsigned char b[100];
  TR("recv(100, MSG_DONTWAIT) on empty", recv(fd, b, 100, MSG_DONTWAIT));
  TR("recv(0, MSG_DONTWAIT) on empty", recv(fd, b, 0, MSG_DONTWAIT));
  TR("recvfrom(100, MSG_DONTWAIT) on empty", recvfrom(fd, b, 100, MSG_DONTWAIT, NULL, NULL));
  side_put('e');
  side_get('d');
  await_bytes(fd, 10);
  settle();
  TR("recv(0, 0) with data waiting", recv(fd, b, 0, 0));
  long n = TR("recv(100, MSG_DONTWAIT)", recv(fd, b, 100, MSG_DONTWAIT));
  struct rx r;
  rx_init(&r, 13, 0);
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
  TR("recv(100, MSG_DONTWAIT) drained", recv(fd, b, 100, MSG_DONTWAIT));
  TR("write(0)", write(fd, b, 0));
  TR("send(0, MSG_DONTWAIT)", send(fd, b, 0, MSG_DONTWAIT));
}
static void dontwait_cli(int fd) {
  unsigned char b[10];
  side_get('e');
  stream_fill(13, 0, b, sizeof b);
  TR("send(10, MSG_DONTWAIT)", send(fd, b, sizeof b, MSG_DONTWAIT));
  side_put('d');
}

/* MSG_TRUNC on TCP discards the bytes (buffer may be NULL). */
static void trunc_srv(int fd) {
  unsigned char b[200];
  side_get('d');
  await_bytes(fd, 100);
  settle();
  TR("recv(NULL, 40, MSG_TRUNC)", recv(fd, NULL, 40, MSG_TRUNC));
  long n = TR("recv(200)", recv(fd, b, 200, 0));
  struct rx r;
  rx_init(&r, 14, 40);
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s (the 60 bytes after the 40 discarded)", rx_verdict(&r));
}
static void trunc_cli(int fd) {
  unsigned char b[100];
  stream_fill(14, 0, b, sizeof b);
  TR("write(100)", write(fd, b, sizeof b));
  side_put('d');
}

/* readv/writev, recvmsg/sendmsg with 16+ iovecs of odd sizes. */
static void iov_srv(int fd) {
  static unsigned char buf[8192];
  struct iovec v[18];
  side_get('d');
  await_bytes(fd, 289 + 817);
  settle();
  /* readv: 16 iovecs of 5, 9, 13, ... (total 560): takes part of what is there */
  size_t off = 0;
  for (int i = 0; i < 16; i++) {
    v[i].iov_base = buf + off;
    v[i].iov_len = (size_t)(5 + 4 * i);
    off += v[i].iov_len;
  }
  long n1 = TR("readv(16 iovecs, 560 bytes)", readv(fd, v, 16));
  /* recvmsg: 18 iovecs of 33, 35, ... (total 900): takes the rest */
  size_t off2 = off;
  for (int i = 0; i < 18; i++) {
    v[i].iov_base = buf + off2;
    v[i].iov_len = (size_t)(33 + 2 * i);
    off2 += v[i].iov_len;
  }
  struct sockaddr_storage ss;
  char ctl[64];
  struct msghdr mh = {.msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = v, .msg_iovlen = 18,
                      .msg_control = ctl, .msg_controllen = sizeof ctl, .msg_flags = 0};
  long n2 = TR("recvmsg(18 iovecs, 900 bytes)", recvmsg(fd, &mh, 0));
  T("msg_namelen=%u msg_controllen=%zu msg_flags=0x%x", (unsigned)mh.msg_namelen, (size_t)mh.msg_controllen,
    (unsigned)mh.msg_flags);
  /* the bytes are contiguous in buf only if readv filled its 544 */
  struct rx r;
  rx_init(&r, 15, 0);
  if (n1 > 0) rx_add(&r, buf, (size_t)n1);
  if (n2 > 0) rx_add(&r, buf + off, (size_t)n2);
  T("%s", rx_verdict(&r));
  TR("recv(MSG_DONTWAIT) drained", recv(fd, buf, 100, MSG_DONTWAIT));
}
static void iov_cli(int fd) {
  static unsigned char buf[8192];
  struct iovec v[19];
  /* writev: 17 iovecs of 1, 3, 5, ..., 33 (289 bytes) */
  size_t off = 0;
  for (int i = 0; i < 17; i++) {
    v[i].iov_base = buf + off;
    v[i].iov_len = (size_t)(1 + 2 * i);
    off += v[i].iov_len;
  }
  stream_fill(15, 0, buf, off);
  TR("writev(17 iovecs, 289 bytes)", writev(fd, v, 17));
  /* sendmsg: 19 iovecs of 7, 11, ..., 79 (817 bytes) */
  size_t off2 = off;
  for (int i = 0; i < 19; i++) {
    v[i].iov_base = buf + off2;
    v[i].iov_len = (size_t)(7 + 4 * i);
    off2 += v[i].iov_len;
  }
  stream_fill(15, off, buf + off, off2 - off);
  struct msghdr mh = {.msg_iov = v, .msg_iovlen = 19};
  TR("sendmsg(19 iovecs, 817 bytes)", sendmsg(fd, &mh, 0));
  side_put('d');
}

/* 10000 writes of 1 byte arrive complete and in order. */
static void tiny_srv(int fd) {
  struct rx r;
  rx_init(&r, 16, 0);
  uint64_t got = get_all(fd, &r, 10000);
  T("read %llu bytes; %s", (unsigned long long)got, rx_verdict(&r));
  side_get('x');
  settle();
  unsigned char b[10];
  TR("recv(MSG_DONTWAIT) after the last byte", recv(fd, b, sizeof b, MSG_DONTWAIT));
}
static void tiny_cli(int fd) {
  bool all = true;
  for (int i = 0; i < 10000; i++) {
    unsigned char b;
    stream_fill(16, (uint64_t)i, &b, 1);
    if (write(fd, &b, 1) != 1) all = false;
  }
  T("10000 writes of 1 byte all returned 1: %s", yn(all));
  side_put('x');
}

/* One 16 MiB write, read with 1000-byte reads. */
#define BIG (16u << 20)
static void big_srv(int fd) {
  struct rx r;
  rx_init(&r, 17, 0);
  unsigned char b[1000];
  uint64_t got = 0;
  long reads_bad = 0;
  while (got < BIG) {
    ssize_t n = read(fd, b, sizeof b);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reads_bad = n < 0 ? -errno : 0;
      break;
    }
    rx_add(&r, b, (size_t)n);
    got += (uint64_t)n;
  }
  T("read %llu bytes with 1000-byte reads (stopped by %ld); %s", (unsigned long long)got, reads_bad, rx_verdict(&r));
  side_get('x');
  settle();
  TR("recv(MSG_DONTWAIT) after the last byte", recv(fd, b, sizeof b, MSG_DONTWAIT));
}
static void big_cli(int fd) {
  unsigned char *b = malloc(BIG);
  if (!b) die("out of memory");
  stream_fill(17, 0, b, BIG);
  TR("write(16 MiB)", write(fd, b, BIG));
  side_put('x');
  free(b);
}

/* sendmmsg/recvmmsg on a stream socket. */
static void mmsg_srv(int fd) {
  unsigned char buf[4][40];
  struct iovec v[4];
  struct mmsghdr m[4];
  memset(m, 0, sizeof m);
  for (int i = 0; i < 4; i++) {
    v[i].iov_base = buf[i];
    v[i].iov_len = 40;
    m[i].msg_hdr.msg_iov = &v[i];
    m[i].msg_hdr.msg_iovlen = 1;
    m[i].msg_hdr.msg_flags = MSG_CTRUNC; /* the call must overwrite it */
    m[i].msg_len = 7777;
  }
  side_get('d');
  await_bytes(fd, 130);
  settle();
  long n = TR("recvmmsg(4 x 40 bytes, MSG_WAITFORONE) with 130 bytes there", recvmmsg(fd, m, 4, MSG_WAITFORONE, NULL));
  struct rx r;
  rx_init(&r, 18, 0);
  for (long i = 0; i < n && i < 4; i++) {
    T("  msg %ld: msg_len=%u msg_flags=0x%x", i, m[i].msg_len, (unsigned)m[i].msg_hdr.msg_flags);
    rx_add(&r, buf[i], m[i].msg_len <= 40 ? m[i].msg_len : 40);
  }
  T("%s", rx_verdict(&r));
  TR("recvmmsg(4, MSG_DONTWAIT) on empty", recvmmsg(fd, m, 4, MSG_DONTWAIT, NULL));
}
static void mmsg_cli(int fd) {
  static const unsigned sz[4] = {10, 20, 30, 70};
  unsigned char buf[130];
  stream_fill(18, 0, buf, sizeof buf);
  struct iovec v[4];
  struct mmsghdr m[4];
  memset(m, 0, sizeof m);
  size_t off = 0;
  for (int i = 0; i < 4; i++) {
    v[i].iov_base = buf + off;
    v[i].iov_len = sz[i];
    off += sz[i];
    m[i].msg_hdr.msg_iov = &v[i];
    m[i].msg_hdr.msg_iovlen = 1;
  }
  long n = TR("sendmmsg(10, 20, 30, 70 bytes)", sendmmsg(fd, m, 4, 0));
  for (long i = 0; i < n && i < 4; i++) T("  msg %ld: msg_len=%u", i, m[i].msg_len);
  side_put('d');
}

/* sendfile from a file into the socket, whole and with an offset. */
#define SF_LEN 300000u
static void sendfile_srv(int fd) {
  struct rx r;
  rx_init(&r, 19, 0);
  uint64_t got = get_all(fd, &r, SF_LEN);
  T("received %llu bytes of the whole file; %s", (unsigned long long)got, rx_verdict(&r));
  rx_init(&r, 19, 1000);
  got = get_all(fd, &r, 5000);
  T("received %llu bytes of the file from offset 1000; %s", (unsigned long long)got, rx_verdict(&r));
  side_get('x');
  settle();
  unsigned char b[10];
  TR("recv(MSG_DONTWAIT) after the last byte", recv(fd, b, sizeof b, MSG_DONTWAIT));
}
static void sendfile_cli(int fd) {
  int f = stream_file(19, SF_LEN);
  TR("sendfile(NULL offset, 300000)", sendfile(fd, f, NULL, SF_LEN));
  TR("lseek(file, 0, SEEK_CUR) after", lseek(f, 0, SEEK_CUR));
  off_t off = 1000;
  TR("sendfile(&off=1000, 5000)", sendfile(fd, f, &off, 5000));
  T("off after: %lld", (long long)off);
  TR("lseek(file, 0, SEEK_CUR) after (unchanged)", lseek(f, 0, SEEK_CUR));
  TR("sendfile(&off at end of file, 100)", sendfile(fd, f, &(off_t){SF_LEN}, 100));
  close(f);
  side_put('x');
}

/* splice file -> pipe -> socket, and socket -> pipe on the other end. */
static void splice_srv(int fd) {
  int p[2];
  if (pipe(p) < 0) die("pipe: %s", strerror(errno));
  side_get('d');
  settle();
  unsigned char *all = malloc(23000 + 65536);
  if (!all) die("out of memory");
  uint64_t total = 0;
  bool ok = true;
  while (total < 23000) {
    ssize_t n = splice(fd, NULL, p[1], NULL, 65536, 0);
    if (n <= 0) {
      ok = false;
      T("splice(socket -> pipe) = %zd %s", n, n < 0 ? ename(errno) : "");
      break;
    }
    for (ssize_t k = 0; k < n;) {
      ssize_t m = read(p[0], all + total + (size_t)k, (size_t)(n - k));
      if (m <= 0) die("read from pipe: %s", m < 0 ? strerror(errno) : "EOF");
      k += m;
    }
    total += (uint64_t)n;
  }
  struct rx r;
  rx_init(&r, 20, 0);
  rx_add(&r, all, total < 20000 ? (size_t)total : 20000);
  T("splice(socket -> pipe) moved %llu bytes: %s; first 20000: %s", (unsigned long long)total, yn(ok),
    rx_verdict(&r));
  if (total > 20000) {
    rx_init(&r, 20, 5000);
    rx_add(&r, all + 20000, (size_t)(total - 20000));
    T("  the rest (file bytes from 5000): %s", rx_verdict(&r));
  }
  /* SPLICE_F_NONBLOCK is about the pipe: a blocking socket would block */
  set_nonblock(fd, true);
  TR("splice(non-blocking socket -> pipe) on empty", splice(fd, NULL, p[1], NULL, 100, 0));
  free(all);
}
static void splice_cli(int fd) {
  int f = stream_file(20, 20000);
  int p[2];
  if (pipe(p) < 0) die("pipe: %s", strerror(errno));
  loff_t off = 0;
  TR("splice(file@0 -> pipe, 20000)", splice(f, &off, p[1], NULL, 20000, 0));
  TR("splice(pipe -> socket, 20000)", splice(p[0], NULL, fd, NULL, 20000, 0));
  off = 5000;
  TR("splice(file@5000 -> pipe, 3000)", splice(f, &off, p[1], NULL, 3000, 0));
  T("off after: %lld", (long long)off);
  TR("splice(pipe -> socket, 3000, SPLICE_F_MORE)", splice(p[0], NULL, fd, NULL, 3000, SPLICE_F_MORE));
  TR("splice(empty pipe -> socket, SPLICE_F_NONBLOCK)", splice(p[0], NULL, fd, NULL, 100, SPLICE_F_NONBLOCK));
  close(f);
  side_put('d');
}

/* read/recv/recvfrom/poll on stack buffers with sizes the compiler cannot
 * see: under _FORTIFY_SOURCE=2 (behave_fortify) these are __read_chk,
 * __recv_chk, __recvfrom_chk and __poll_chk. */
static volatile size_t chk_len = 50;
static volatile nfds_t chk_nfds = 1;
static void chk_srv(int fd) {
  unsigned char b1[64], b2[64], b3[64], b4[64];
  struct pollfd pf[1] = {{.fd = fd, .events = POLLIN}};
  side_get('d');
  await_bytes(fd, 200);
  settle();
  long p = TR("poll(POLLIN)", poll(pf, chk_nfds, 0));
  T("  revents %s", p > 0 ? evs((unsigned)pf[0].revents) : "-");
  long n1 = TR("read(50)", read(fd, b1, chk_len));
  long n2 = TR("recv(50)", recv(fd, b2, chk_len, 0));
  long n3 = TR("recvfrom(50)", recvfrom(fd, b3, chk_len, 0, NULL, NULL));
  long n4 = TR("recv(50, MSG_DONTWAIT)", recv(fd, b4, chk_len, MSG_DONTWAIT));
  struct rx r;
  rx_init(&r, 21, 0);
  if (n1 > 0) rx_add(&r, b1, (size_t)n1);
  if (n2 > 0) rx_add(&r, b2, (size_t)n2);
  if (n3 > 0) rx_add(&r, b3, (size_t)n3);
  if (n4 > 0) rx_add(&r, b4, (size_t)n4);
  T("%s", rx_verdict(&r));
  TR("recv(50, MSG_DONTWAIT) on empty", recv(fd, b4, chk_len, MSG_DONTWAIT));
  p = TR("poll(POLLIN) on empty", poll(pf, chk_nfds, 0));
  T("  revents %s", evs((unsigned)pf[0].revents));
}
static void chk_cli(int fd) {
  unsigned char b[200];
  stream_fill(21, 0, b, sizeof b);
  TR("write(200)", write(fd, b, sizeof b));
  side_put('d');
}

/* ---------------- ends ---------------- */

static void trace_poll(int fd, short events, const char *when) {
  struct pollfd p = {.fd = fd, .events = events};
  errno = ERRNO_SENTINEL;
  int r = poll(&p, 1, 0);
  int e = errno;
  if (r < 0) T("poll %s = -1 %s", when, ename(e));
  else T("poll %s = %d revents %s", when, r, evs((unsigned)p.revents));
}
#define PALL (POLLIN | POLLOUT | POLLRDHUP | POLLPRI)

/* EOF after the last byte, and again. */
static void eof_srv(int fd) {
  unsigned char b[1000];
  side_get('c');
  await_bytes(fd, 1000);
  await_event(fd, POLLRDHUP, 3000);
  settle();
  trace_poll(fd, PALL, "before reading");
  struct rx r;
  rx_init(&r, 22, 0);
  long n = TR("read(400)", read(fd, b, 400));
  if (n > 0) rx_add(&r, b, (size_t)n);
  n = TR("read(1000)", read(fd, b, 1000));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
  TR("read(1000) at EOF", read(fd, b, 1000));
  TR("read(1000) at EOF again", read(fd, b, 1000));
  TR("recv(1000, MSG_DONTWAIT) at EOF", recv(fd, b, 1000, MSG_DONTWAIT));
  trace_poll(fd, PALL, "at EOF");
}
static void eof_cli(int fd) {
  unsigned char b[1000];
  stream_fill(22, 0, b, sizeof b);
  TR("write(1000)", write(fd, b, sizeof b));
  TR("close", close(fd));
  side_put('c');
}

/* Half-close: the writer shuts its side down, the other direction flows on.
 * `a` shuts down, `b` observes and answers. */
static void halfclose_shutter(int fd, uint64_t seed) {
  unsigned char b[700];
  stream_fill(seed, 0, b, 500);
  TR("write(500)", write(fd, b, 500));
  TR("shutdown(SHUT_WR)", shutdown(fd, SHUT_WR));
  side_put('h');
  int before = n_sigpipe;
  TR("write(10) after own SHUT_WR", write(fd, b, 10));
  T("  SIGPIPE delivered: %d", n_sigpipe - before);
  before = n_sigpipe;
  TR("send(10, MSG_NOSIGNAL) after own SHUT_WR", send(fd, b, 10, MSG_NOSIGNAL));
  T("  SIGPIPE delivered: %d", n_sigpipe - before);
  TR("shutdown(SHUT_WR) again", shutdown(fd, SHUT_WR));
  trace_poll(fd, PALL, "after own SHUT_WR");
  side_get('s');
  settle();
  struct rx r;
  rx_init(&r, seed + 1, 0);
  uint64_t got = get_all(fd, &r, 700);
  T("read %llu bytes from the peer after our SHUT_WR; %s", (unsigned long long)got, rx_verdict(&r));
  side_get('x');
  settle();
  TR("read at the peer's EOF", read(fd, b, sizeof b));
  trace_poll(fd, PALL, "after both ends shut down");
}
static void halfclose_observer(int fd, uint64_t seed) {
  unsigned char b[1000];
  side_get('h');
  await_bytes(fd, 500);
  await_event(fd, POLLRDHUP, 3000);
  settle();
  trace_poll(fd, PALL, "after the peer's SHUT_WR");
  struct rx r;
  rx_init(&r, seed, 0);
  long n = TR("read(1000)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
  TR("read(1000) at EOF", read(fd, b, sizeof b));
  trace_poll(fd, PALL, "at EOF, before writing");
  stream_fill(seed + 1, 0, b, 700);
  TR("write(700) after the peer's SHUT_WR", write(fd, b, 700));
  side_put('s');
  TR("close", close(fd));
  side_put('x');
}
static void halfclose_srv(int fd) { halfclose_observer(fd, 23); }
static void halfclose_cli(int fd) { halfclose_shutter(fd, 23); }
/* the same with the accepting end shutting down */
static void halfclose_rev_srv(int fd) { halfclose_shutter(fd, 25); }
static void halfclose_rev_cli(int fd) { halfclose_observer(fd, 25); }

/* shutdown(SHUT_RD): queued bytes are still delivered, then EOF. */
static void shutrd_srv(int fd) {
  unsigned char b[1000];
  side_get('d');
  await_bytes(fd, 100);
  settle();
  TR("shutdown(SHUT_RD) with 100 bytes queued", shutdown(fd, SHUT_RD));
  trace_poll(fd, PALL, "after SHUT_RD");
  struct rx r;
  rx_init(&r, 27, 0);
  long n = TR("read(1000)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
  TR("read(1000) after the queued bytes", read(fd, b, sizeof b));
  stream_fill(28, 0, b, 10);
  TR("write(10) still allowed", write(fd, b, 10));
}
static void shutrd_cli(int fd) {
  unsigned char b[100];
  stream_fill(27, 0, b, sizeof b);
  TR("write(100)", write(fd, b, sizeof b));
  side_put('d');
  struct rx r;
  rx_init(&r, 28, 0);
  uint64_t got = get_all(fd, &r, 10);
  T("read %llu bytes; %s", (unsigned long long)got, rx_verdict(&r));
}

/* Writing to a peer that closed: the first write still succeeds on TCP (the
 * peer's kernel answers it with a reset), the next ones fail with EPIPE. */
static void epipe_srv(int fd) {
  TR("close", close(fd));
  side_put('c');
}
static void epipe_common(int fd, bool nosignal) {
  unsigned char b[100];
  stream_fill(29, 0, b, sizeof b);
  side_get('c');
  await_event(fd, POLLRDHUP, 3000);
  settle();
  trace_poll(fd, PALL, "after the peer's close");
  for (int i = 1; i <= 3; i++) {
    int before = n_sigpipe;
    char label[64];
    snprintf(label, sizeof label, "%s(100) #%d after the peer's close", nosignal ? "send(MSG_NOSIGNAL)" : "write", i);
    if (nosignal) TR(label, send(fd, b, sizeof b, MSG_NOSIGNAL));
    else TR(label, write(fd, b, sizeof b));
    T("  SIGPIPE delivered: %d", n_sigpipe - before);
    if (i == 1) await_event(fd, POLLERR | POLLHUP, 1000); /* TCP: the peer's reset to this write */
    settle();
  }
  trace_poll(fd, PALL, "after the writes");
  TR("read(100)", read(fd, b, sizeof b));
  int err = -1;
  socklen_t l = sizeof err;
  TR("getsockopt(SO_ERROR)", getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l));
  T("  SO_ERROR %s", err ? ename(err) : "0");
}
static void epipe_cli(int fd) { epipe_common(fd, false); }
static void epipe_nosig_cli(int fd) { epipe_common(fd, true); }

/* SO_LINGER {1, 0}: close sends a reset; the peer sees ECONNRESET. */
static void linger0_srv(int fd) {
  unsigned char b[100];
  side_get('c');
  await_event(fd, POLLERR | POLLHUP, 3000);
  settle();
  trace_poll(fd, PALL, "after the peer's reset");
  TR("recv(100)", recv(fd, b, sizeof b, 0));
  TR("recv(100) again", recv(fd, b, sizeof b, 0));
  int before = n_sigpipe;
  TR("write(10)", write(fd, b, 10));
  T("  SIGPIPE delivered: %d", n_sigpipe - before);
  int err = -1;
  socklen_t l = sizeof err;
  TR("getsockopt(SO_ERROR)", getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l));
  T("  SO_ERROR %s", err ? ename(err) : "0");
  trace_poll(fd, PALL, "at the end");
}
static void linger0_cli(int fd) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  TR("setsockopt(SO_LINGER {1, 0})", setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  TR("close", close(fd));
  side_put('c');
}

/* FIONREAD / SIOCINQ count the bytes waiting. */
static void fionread_srv(int fd) {
  unsigned char b[3000];
  int v = -1;
  TR("ioctl(FIONREAD) on empty", ioctl(fd, FIONREAD, &v));
  T("  %d", v);
  side_put('e');
  side_get('d');
  await_bytes(fd, 3000);
  settle();
  TR("ioctl(FIONREAD)", ioctl(fd, FIONREAD, &v));
  T("  %d", v);
  TR("ioctl(SIOCINQ)", ioctl(fd, SIOCINQ, &v));
  T("  %d", v);
  TR("read(1000)", read(fd, b, 1000));
  TR("ioctl(FIONREAD) after reading 1000", ioctl(fd, FIONREAD, &v));
  T("  %d", v);
  TR("recv(3000)", recv(fd, b, 3000, 0));
  TR("ioctl(FIONREAD) drained", ioctl(fd, FIONREAD, &v));
  T("  %d", v);
}
static void fionread_cli(int fd) {
  unsigned char b[1000];
  side_get('e');
  for (int i = 0; i < 3; i++) {
    stream_fill(30, (uint64_t)i * 1000, b, sizeof b);
    TR("write(1000)", write(fd, b, sizeof b));
  }
  side_put('d');
}

/* SIOCOUTQ: on TCP, bytes the peer's kernel has acknowledged (delivered into
 * its receive queue, read or not) are no longer in the send queue; a delayed
 * ACK takes at most 200 ms here, so we ask after 300 ms. */
static void siocoutq_srv(int fd) {
  side_get('d');
  struct rx r;
  rx_init(&r, 31, 0);
  uint64_t got = get_all(fd, &r, 3000);
  T("read %llu bytes; %s", (unsigned long long)got, rx_verdict(&r));
  unsigned char one = 1;
  TR("write(1) answer", write(fd, &one, 1));
}
static void siocoutq_cli(int fd) {
  unsigned char b[3000];
  int v = -1;
  sleep_ms(300); /* the warm-up's last TCP bytes acknowledged: a delayed ACK takes up to 200 ms */
  TR("ioctl(SIOCOUTQ) idle", ioctl(fd, SIOCOUTQ, &v));
  T("  %d", v);
  stream_fill(31, 0, b, sizeof b);
  TR("write(3000)", write(fd, b, sizeof b));
  sleep_ms(300);
  TR("ioctl(SIOCOUTQ) 300 ms later, the peer not reading", ioctl(fd, SIOCOUTQ, &v));
  T("  %d", v);
  side_put('d');
  TR("read(1) the peer's answer", read(fd, b, 1));
  sleep_ms(50);
  TR("ioctl(SIOCOUTQ) after the peer read all and answered", ioctl(fd, SIOCOUTQ, &v));
  T("  %d", v);
}

/* The kernel socket still answers what the shim does not handle. */
static void sockopts_both(int fd) {
  int v = -1;
  socklen_t l = sizeof v;
  TR("getsockopt(SO_ERROR)", getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l));
  T("  SO_ERROR %d", v);
  l = sizeof v;
  TR("getsockopt(SO_TYPE)", getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l));
  T("  SOCK_STREAM: %s", yn(v == SOCK_STREAM));
  l = sizeof v;
  TR("getsockopt(SO_ACCEPTCONN)", getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l));
  T("  %d", v);
  struct tcp_info ti;
  l = sizeof ti;
  memset(&ti, 0, sizeof ti);
  TR("getsockopt(TCP_INFO)", getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l));
  T("  state ESTABLISHED: %s", yn(ti.tcpi_state == 1 /* TCP_ESTABLISHED */));
  v = 1;
  TR("setsockopt(TCP_NODELAY, 1)", setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v));
  v = -1;
  l = sizeof v;
  TR("getsockopt(TCP_NODELAY)", getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l));
  T("  %s", yn(v != 0));
  struct sockaddr_in a;
  l = sizeof a;
  TR("getpeername", getpeername(fd, (struct sockaddr *)&a, &l));
  T("  AF_INET loopback: %s", yn(a.sin_family == AF_INET && a.sin_addr.s_addr == htonl(INADDR_LOOPBACK)));
  struct stat st;
  TR("fstat", fstat(fd, &st));
  T("  S_ISSOCK: %s", yn(S_ISSOCK(st.st_mode)));
  int fl = (int)TR("fcntl(F_GETFL)", fcntl(fd, F_GETFL));
  T("  O_RDWR: %s, O_NONBLOCK: %s", yn((fl & O_ACCMODE) == O_RDWR), yn(fl & O_NONBLOCK));
}
static void sockopts_srv(int fd) {
  sockopts_both(fd);
  side_put('x');
}
static void sockopts_cli(int fd) {
  side_get('x');
  sockopts_both(fd);
}

/* ---------------- blocking ---------------- */

/* SO_RCVTIMEO on an idle socket: EAGAIN after about the timeout. */
static void rcvtimeo_srv(int fd) {
  unsigned char b[100];
  TR("setsockopt(SO_RCVTIMEO 200 ms)", (set_timeo(fd, SO_RCVTIMEO, 200), 0));
  double t0 = now_s();
  TR("recv(100) on idle", recv(fd, b, sizeof b, 0));
  double w = ms_since(t0);
  T("  waited about the timeout (150..2000 ms): %s", yn(w >= 150 && w < 2000));
  t0 = now_s();
  TR("read(100) on idle", read(fd, b, sizeof b));
  w = ms_since(t0);
  T("  waited about the timeout (150..2000 ms): %s", yn(w >= 150 && w < 2000));
  side_put('w');
  side_get('d');
  settle();
  t0 = now_s();
  long n = TR("recv(100, MSG_WAITALL) with 10 bytes there", recv(fd, b, sizeof b, MSG_WAITALL));
  w = ms_since(t0);
  T("  waited about the timeout (150..2000 ms): %s", yn(w >= 150 && w < 2000));
  struct rx r;
  rx_init(&r, 32, 0);
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
}
static void rcvtimeo_cli(int fd) {
  unsigned char b[10];
  side_get('w');
  stream_fill(32, 0, b, sizeof b);
  TR("write(10)", write(fd, b, sizeof b));
  side_put('d');
}

/* SO_SNDTIMEO with a peer that does not read: the writes end in EAGAIN. */
static void sndtimeo_srv(int fd) {
  uint64_t total = side_get_u64();
  struct rx r;
  rx_init(&r, 33, 0);
  uint64_t got = get_all(fd, &r, total);
  T("read everything the peer wrote: %s; %s", yn(got == total), rx_verdict(&r));
}
static void sndtimeo_cli(int fd) {
  TR("setsockopt(SO_SNDTIMEO 200 ms)", (set_timeo(fd, SO_SNDTIMEO, 200), 0));
  unsigned char buf[65536];
  uint64_t total = 0;
  int e = 0;
  long n;
  double t0 = 0;
  for (int i = 0; i < 100000; i++) {
    stream_fill(33, total, buf, sizeof buf);
    t0 = now_s();
    n = CALL(write(fd, buf, sizeof buf), &e);
    if (n < 0) break;
    total += (uint64_t)n;
  }
  double w = ms_since(t0);
  T("the writes ended in: %s", ename(e));
  T("  the failing write waited about the timeout (150..2000 ms): %s", yn(w >= 150 && w < 2000));
  side_put_u64(total);
}

/* O_NONBLOCK, set three ways: EAGAIN on empty and on full; normal after. */
static void nonblock_body(int fd, bool server) {
  unsigned char b[100];
  int fl = fcntl(fd, F_GETFL);
  T("O_NONBLOCK set: %s", yn(fl >= 0 && (fl & O_NONBLOCK)));
  if (server) {
    TR("recv(100) on empty", recv(fd, b, sizeof b, 0));
    TR("read(100) on empty", read(fd, b, sizeof b));
    side_put('e');
    side_get('d');
    await_bytes(fd, 10);
    settle();
    long n = TR("recv(100) with 10 there", recv(fd, b, sizeof b, 0));
    struct rx r;
    rx_init(&r, 34, 0);
    if (n > 0) rx_add(&r, b, (size_t)n);
    T("%s", rx_verdict(&r));
    TR("recv(100) drained", recv(fd, b, sizeof b, 0));
    int e = 0;
    uint64_t total = fill_until_eagain(fd, 35, 0, &e);
    T("filled the socket until a write failed with: %s", ename(e));
    side_put_u64(total);
    side_get('r');
    settle();
    stream_fill(35, total, b, 10);
    TR("write(10) after the peer drained", write(fd, b, 10));
    side_put_u64(total + 10);
  } else {
    side_get('e');
    stream_fill(34, 0, b, 10);
    TR("write(10)", write(fd, b, 10));
    side_put('d');
    uint64_t total = side_get_u64();
    struct rx r;
    rx_init(&r, 35, 0);
    uint64_t got = get_all(fd, &r, total);
    side_put('r');
    uint64_t total2 = side_get_u64();
    got += get_all(fd, &r, total2 - total);
    T("read everything the peer wrote: %s; %s", yn(got == total2), rx_verdict(&r));
    TR("recv(100) on empty again", recv(fd, b, sizeof b, 0));
  }
}
static void nb_fcntl_srv(int fd) {
  int fl = fcntl(fd, F_GETFL);
  TR("fcntl(F_SETFL, O_NONBLOCK)", fcntl(fd, F_SETFL, fl | O_NONBLOCK));
  nonblock_body(fd, true);
  TR("fcntl(F_SETFL, blocking)", fcntl(fd, F_SETFL, fl & ~O_NONBLOCK));
}
static void nb_fcntl_cli(int fd) {
  int fl = fcntl(fd, F_GETFL);
  TR("fcntl(F_SETFL, O_NONBLOCK)", fcntl(fd, F_SETFL, fl | O_NONBLOCK));
  nonblock_body(fd, false);
}
static void nb_fionbio_srv(int fd) {
  int one = 1;
  TR("ioctl(FIONBIO, 1)", ioctl(fd, FIONBIO, &one));
  nonblock_body(fd, true);
}
static void nb_fionbio_cli(int fd) {
  int one = 1;
  TR("ioctl(FIONBIO, 1)", ioctl(fd, FIONBIO, &one));
  nonblock_body(fd, false);
}
static void nb_flag_srv(int fd) { nonblock_body(fd, true); }
static void nb_flag_cli(int fd) { nonblock_body(fd, false); }

/* A blocking recv interrupted by a signal: EINTR without SA_RESTART,
 * restarted with it, EINTR with it when SO_RCVTIMEO is set (signal(7)). */
static void eintr_recv(int fd, int flags, bool timeo) {
  unsigned char b[100];
  set_handler(SIGALRM, on_sigalrm, flags);
  if (timeo) set_timeo(fd, SO_RCVTIMEO, 3000);
  n_alarm = 0;
  side_put('r');
  alarm_ms(100);
  long n = TR("recv(100), SIGALRM after 100 ms, data after 700 ms", recv(fd, b, sizeof b, 0));
  T("  SIGALRM handled: %d", (int)n_alarm);
  if (n < 0) n = TR("recv(100) again", recv(fd, b, sizeof b, 0));
  struct rx r;
  rx_init(&r, 36, 0);
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
}
static void eintr_cli(int fd) {
  unsigned char b[10];
  side_get('r');
  sleep_ms(700);
  stream_fill(36, 0, b, sizeof b);
  TR("write(10)", write(fd, b, sizeof b));
}
static void eintr_norestart_srv(int fd) { eintr_recv(fd, 0, false); }
/* SIGALRM with SA_RESTART fires; another handler, installed without
 * SA_RESTART for a signal that never comes, must not change that. */
static void on_sigusr1(int s) { (void)s; n_usr1++; }
static void eintr_restart_mixed_srv(int fd) {
  set_handler(SIGUSR1, on_sigusr1, 0);
  eintr_recv(fd, SA_RESTART, false);
}
/* signal() (glibc: BSD semantics, SA_RESTART) on SIGALRM, sigaction without
 * SA_RESTART on SIGUSR1: a recv interrupted by SIGUSR1 returns EINTR, the
 * next one, interrupted by SIGALRM, restarts and gets the data. Before that,
 * every disposition reads back as the program set it (handler, flags, mask;
 * from sigaction's oldact, the return value of signal(), sysv_signal() and
 * sigset(), whose signal mask changes hold too), an SA_SIGINFO
 * handler gets its siginfo, and an SA_RESETHAND one reads back as SIG_DFL
 * after it ran. */
static volatile sig_atomic_t n_usr2, usr2_info_ok, n_hup;
static void on_sigusr2_info(int s, siginfo_t *si, void *uc) {
  (void)uc;
  n_usr2++;
  usr2_info_ok = s == SIGUSR2 && si && si->si_signo == SIGUSR2 && si->si_code == SI_TKILL && si->si_pid == getpid();
}
static void on_sighup(int s) { (void)s; n_hup++; }

static const char *hname(void *h) {
  if (h == (void *)SIG_DFL) return "SIG_DFL";
  if (h == (void *)SIG_IGN) return "SIG_IGN";
  if (h == (void *)SIG_ERR) return "SIG_ERR";
  if (h == (void *)SIG_HOLD) return "SIG_HOLD";
  if (h == (void *)on_sigalrm) return "on_sigalrm";
  if (h == (void *)on_sigusr1) return "on_sigusr1";
  if (h == (void *)on_sigusr2_info) return "on_sigusr2_info";
  if (h == (void *)on_sighup) return "on_sighup";
  return "another function";
}

static const char *saflags(int f) {
  static __thread char b[160];
  static const struct { int bit; const char *name; } names[] = {
      {SA_RESTART, "RESTART"},   {SA_SIGINFO, "SIGINFO"},     {SA_RESETHAND, "RESETHAND"}, {SA_NODEFER, "NODEFER"},
      {SA_ONSTACK, "ONSTACK"},   {SA_NOCLDSTOP, "NOCLDSTOP"}, {SA_NOCLDWAIT, "NOCLDWAIT"},
  };
  b[0] = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!(f & names[i].bit)) continue;
    if (b[0]) strcat(b, "|");
    strcat(b, names[i].name);
    f &= ~names[i].bit;
  }
  /* the rest as a number (glibc reports its SA_RESTORER too) */
  if (f) snprintf(b + strlen(b), sizeof b - strlen(b), "%s0x%x", b[0] ? "|" : "", (unsigned)f);
  if (!b[0]) strcpy(b, "0");
  return b;
}

static void trace_sa(const char *label, const struct sigaction *sa) {
  char m[200];
  m[0] = 0;
  for (int s = 1; s < NSIG; s++)
    if (sigismember(&sa->sa_mask, s) == 1) snprintf(m + strlen(m), sizeof m - strlen(m), "%s%d", m[0] ? "," : "", s);
  void *h = (sa->sa_flags & SA_SIGINFO) ? (void *)sa->sa_sigaction : (void *)sa->sa_handler;
  T("  %s: handler %s, flags %s, mask {%s}", label, hname(h), saflags(sa->sa_flags), m);
}

/* sigaction(sig, NULL, &old), traced */
static void trace_action(int sig, const char *name) {
  struct sigaction old;
  memset(&old, 0, sizeof old);
  char label[64];
  snprintf(label, sizeof label, "sigaction(%s, NULL, &old)", name);
  if (TR(label, sigaction(sig, NULL, &old)) == 0) trace_sa("old", &old);
}

/* one signal to the process after ms milliseconds (a POSIX timer: SIGALRM's
 * interval timer is the other one) */
static void signal_after_ms(int sig, unsigned ms) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = sig;
  timer_t t;
  if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0) die("timer_create: %s", strerror(errno));
  struct itimerspec its = {.it_value = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L}};
  if (timer_settime(t, 0, &its, NULL) < 0) die("timer_settime: %s", strerror(errno));
}

static void eintr_signal_mixed_srv(int fd) {
  unsigned char b[100];
  T("signal(SIGALRM, on_sigalrm) returned %s", hname((void *)signal(SIGALRM, on_sigalrm)));
  trace_action(SIGALRM, "SIGALRM");
  T("signal(SIGALRM, SIG_IGN) returned %s", hname((void *)signal(SIGALRM, SIG_IGN)));
  T("signal(SIGALRM, on_sigalrm) returned %s", hname((void *)signal(SIGALRM, on_sigalrm)));
  set_handler(SIGUSR1, on_sigusr1, 0);
  trace_action(SIGUSR1, "SIGUSR1");
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigusr2_info;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR1);
  memset(&old, 0, sizeof old);
  if (TR("sigaction(SIGUSR2, SA_SIGINFO|SA_RESETHAND|SA_RESTART, mask {SIGUSR1}, &old)", sigaction(SIGUSR2, &sa, &old)) == 0)
    trace_sa("old", &old);
  trace_action(SIGUSR2, "SIGUSR2");
  TR("raise(SIGUSR2)", raise(SIGUSR2));
  T("  SIGUSR2 handled: %d, its siginfo right: %s", (int)n_usr2, yn(usr2_info_ok));
  trace_action(SIGUSR2, "SIGUSR2");
  /* replacing a handler gives the previous one back in oldact */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGHUP);
  memset(&old, 0, sizeof old);
  if (TR("sigaction(SIGUSR1, on_sigusr1, no SA_RESTART, mask {SIGHUP}, &old)", sigaction(SIGUSR1, &sa, &old)) == 0)
    trace_sa("old", &old);
  trace_action(SIGUSR1, "SIGUSR1");
  T("sysv_signal(SIGHUP, on_sighup) returned %s", hname((void *)sysv_signal(SIGHUP, on_sighup)));
  trace_action(SIGHUP, "SIGHUP");
  T("signal(SIGHUP, SIG_DFL) returned %s", hname((void *)signal(SIGHUP, SIG_DFL)));
  trace_action(SIGHUP, "SIGHUP");
  /* sigset (XSI, deprecated) also blocks and unblocks the signal */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  T("sigset(SIGHUP, on_sighup) returned %s", hname((void *)sigset(SIGHUP, on_sighup)));
  trace_action(SIGHUP, "SIGHUP");
  T("sigset(SIGHUP, SIG_HOLD) returned %s", hname((void *)sigset(SIGHUP, SIG_HOLD)));
  sigset_t cur;
  sigprocmask(SIG_SETMASK, NULL, &cur);
  T("  SIGHUP blocked: %s", yn(sigismember(&cur, SIGHUP) == 1));
  T("sigset(SIGHUP, SIG_HOLD) again returned %s", hname((void *)sigset(SIGHUP, SIG_HOLD)));
  T("sigset(SIGHUP, SIG_DFL) returned %s", hname((void *)sigset(SIGHUP, SIG_DFL)));
  sigprocmask(SIG_SETMASK, NULL, &cur);
  T("  SIGHUP blocked: %s", yn(sigismember(&cur, SIGHUP) == 1));
  trace_action(SIGHUP, "SIGHUP");
  T("sigset(SIGHUP, on_sighup) returned %s", hname((void *)sigset(SIGHUP, on_sighup)));
  T("sigset(SIGHUP, SIG_DFL) returned %s", hname((void *)sigset(SIGHUP, SIG_DFL)));
#pragma GCC diagnostic pop

  n_alarm = n_usr1 = 0;
  side_put('r');
  signal_after_ms(SIGUSR1, 100);
  long n = TR("recv(100), SIGUSR1 (sigaction, no SA_RESTART) after 100 ms", recv(fd, b, sizeof b, 0));
  T("  SIGUSR1 handled: %d", (int)n_usr1);
  struct rx r;
  rx_init(&r, 36, 0);
  if (n > 0) rx_add(&r, b, (size_t)n);
  if (n < 0) {
    alarm_ms(100);
    n = TR("recv(100), SIGALRM (signal(), SA_RESTART) after 100 ms, data after 700 ms", recv(fd, b, sizeof b, 0));
    T("  SIGALRM handled: %d", (int)n_alarm);
    if (n > 0) rx_add(&r, b, (size_t)n);
  }
  T("%s", rx_verdict(&r));
}

/* Signals go to one thread: another thread runs a handler without
 * SA_RESTART while this one sleeps in recv, then this one is interrupted by
 * a handler with SA_RESTART: its recv restarts. */
static void *eintr_kicker(void *arg) {
  pthread_t main_thread = *(pthread_t *)arg;
  sleep_ms(100);
  pthread_kill(pthread_self(), SIGUSR1);
  sleep_ms(100);
  pthread_kill(main_thread, SIGALRM);
  return NULL;
}
static void eintr_thread_mixed_srv(int fd) {
  unsigned char b[100];
  set_handler(SIGALRM, on_sigalrm, SA_RESTART);
  set_handler(SIGUSR1, on_sigusr1, 0);
  n_alarm = n_usr1 = 0;
  pthread_t self = pthread_self(), t;
  side_put('r');
  if (pthread_create(&t, NULL, eintr_kicker, &self) != 0) die("pthread_create");
  long n = TR("recv(100); another thread handles SIGUSR1 (no SA_RESTART) after 100 ms, this one SIGALRM "
              "(SA_RESTART) after 200 ms, data after 700 ms", recv(fd, b, sizeof b, 0));
  pthread_join(t, NULL);
  T("  SIGUSR1 handled: %d, SIGALRM handled: %d", (int)n_usr1, (int)n_alarm);
  if (n < 0) n = TR("recv(100) again", recv(fd, b, sizeof b, 0));
  struct rx r;
  rx_init(&r, 36, 0);
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
}
static void eintr_restart_srv(int fd) { eintr_recv(fd, SA_RESTART, false); }
static void eintr_restart_timeo_srv(int fd) { eintr_recv(fd, SA_RESTART, true); }

/* poll and epoll_wait are never restarted (signal(7)), SA_RESTART or not. */
static void eintr_poll_srv(int fd) {
  set_handler(SIGALRM, on_sigalrm, SA_RESTART);
  n_alarm = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  alarm_ms(150);
  TR("poll(POLLIN, 2000 ms), SIGALRM after 150 ms", poll(&p, 1, 2000));
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234}, out[4];
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  alarm_ms(150);
  TR("epoll_wait(2000 ms), SIGALRM after 150 ms", epoll_wait(ep, out, 4, 2000));
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(fd, &rs);
  struct timeval tv = {.tv_sec = 2};
  alarm_ms(150);
  TR("select(read, 2 s), SIGALRM after 150 ms", select(fd + 1, &rs, NULL, NULL, &tv));
  T("  SIGALRM handled: %d", (int)n_alarm);
  side_put('r');
  long n = TR("poll(POLLIN, 2000 ms), data after 700 ms", poll(&p, 1, 2000));
  T("  revents %s", n > 0 ? evs((unsigned)p.revents) : "-");
  n = TR("epoll_wait(2000 ms) with data there", epoll_wait(ep, out, 4, 2000));
  if (n > 0) T("  events %s data 0x%llx", evs(out[0].events), (unsigned long long)out[0].data.u64);
  close(ep);
}

/* A blocking write to a peer that does not read, interrupted by a signal
 * without SA_RESTART: TCP returns the part written so far. */
#define EINTR_SEND_LEN (32u << 20)
static void eintr_send_srv(int fd) {
  uint64_t total = 0;
  bool in_time = side_get_u64_to(&total, 3000);
  T("the writer's count arrived before we read anything: %s", yn(in_time));
  struct rx r;
  rx_init(&r, 37, 0);
  uint64_t got = 0;
  if (!in_time) { /* the writer is stuck: drain until it tells us */
    unsigned char buf[65536];
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = side_fd, .events = POLLIN}};
    while (!in_time) {
      if (poll(p, 2, 10000) <= 0) die("eintr-send: nothing from the writer");
      if (p[0].revents) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          rx_add(&r, buf, (size_t)n);
          got += (uint64_t)n;
        }
      }
      if (p[1].revents) in_time = side_get_u64_to(&total, 1000);
    }
  }
  got += get_all(fd, &r, total - got);
  T("read everything the peer wrote: %s; %s", yn(got == total), rx_verdict(&r));
}
static void eintr_send_cli(int fd) {
  unsigned char *b = malloc(EINTR_SEND_LEN);
  if (!b) die("out of memory");
  stream_fill(37, 0, b, EINTR_SEND_LEN);
  set_handler(SIGALRM, on_sigalrm, 0);
  n_alarm = 0;
  alarm_ms(300);
  int e;
  long n = CALL(write(fd, b, EINTR_SEND_LEN), &e);
  if (n < 0) T("write(32 MiB), peer not reading, SIGALRM after 300 ms = -1 %s", ename(e));
  else T("write(32 MiB), peer not reading, SIGALRM after 300 ms: returned a partial count: %s",
         yn(n > 0 && n < (long)EINTR_SEND_LEN));
  T("  SIGALRM handled: %d", (int)n_alarm);
  side_put_u64(n > 0 ? (uint64_t)n : 0);
  free(b);
}

/* SO_RCVLOWAT: poll reports readable only from that many bytes; a blocking
 * recv with fewer waits for more, here until SO_RCVTIMEO, then returns what
 * there is. (Not traced: a recv that already holds part of the mark is not
 * woken on Linux when the rest arrives, tcp_data_ready compares the mark with
 * the unread bytes only, so on TCP it sleeps until the timeout or the peer's
 * FIN; with no timeout that is not a usable scenario.) */
static void rcvlowat_srv(int fd) {
  unsigned char b[200];
  int v = 100;
  TR("setsockopt(SO_RCVLOWAT, 100)", setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
  set_timeo(fd, SO_RCVTIMEO, 300);
  side_put('a');
  side_get('b');
  await_bytes(fd, 50);
  settle();
  struct pollfd p = {.fd = fd, .events = POLLIN};
  TR("poll(POLLIN, 0) with 50 bytes there", poll(&p, 1, 0));
  T("  revents %s", evs((unsigned)p.revents));
  int q = -1;
  TR("ioctl(FIONREAD)", ioctl(fd, FIONREAD, &q));
  T("  %d", q);
  struct rx r;
  rx_init(&r, 38, 0);
  double t0 = now_s();
  long n = TR("recv(200) with 50 bytes there, SO_RCVTIMEO 300 ms", recv(fd, b, sizeof b, 0));
  T("  waited for the low-water mark until the timeout (250..2000 ms): %s", yn(ms_since(t0) >= 250 && ms_since(t0) < 2000));
  if (n > 0) rx_add(&r, b, (size_t)n);
  side_put('c');
  side_get('d');
  await_bytes(fd, 110);
  settle();
  p.revents = 0;
  TR("poll(POLLIN, 0) with 110 bytes there", poll(&p, 1, 0));
  T("  revents %s", evs((unsigned)p.revents));
  n = TR("recv(200) with 110 bytes there", recv(fd, b, sizeof b, 0));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
}
static void rcvlowat_cli(int fd) {
  unsigned char b[160];
  stream_fill(38, 0, b, sizeof b);
  side_get('a');
  TR("write(50)", write(fd, b, 50));
  side_put('b');
  side_get('c');
  TR("write(60)", write(fd, b + 50, 60));
  TR("write(50)", write(fd, b + 110, 50));
  side_put('d');
}

/* SO_RCVLOWAT with epoll (level and edge), MSG_PEEK, a lowered mark and
 * getsockopt: 50 bytes under a mark of 100 are not readable for either
 * registration; a peek waits until the timeout and returns them; lowering the
 * mark to 40 makes them readable (an edge too); back at 100, 60 more make
 * 110: an edge; a blocking recv takes them all. */
static void trace_epoll(int ep, const char *name, const char *when);
static void rcvlowat_ep_srv(int fd) {
  unsigned char b[200];
  int v = 100;
  TR("setsockopt(SO_RCVLOWAT, 100)", setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
  int g = -1;
  socklen_t gl = sizeof g;
  TR("getsockopt(SO_RCVLOWAT)", getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &g, &gl));
  T("  %d", g);
  set_timeo(fd, SO_RCVTIMEO, 300);
  int lt = epoll_create1(0), et = epoll_create1(0);
  struct epoll_event e = {.events = EPOLLIN, .data.u64 = 1};
  if (epoll_ctl(lt, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl: %s", strerror(errno));
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = 2;
  if (epoll_ctl(et, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl: %s", strerror(errno));
  side_put('a');
  side_get('b');
  await_bytes(fd, 50);
  settle();
  trace_epoll(lt, "epoll_wait(LT)", "with 50 bytes, mark 100");
  trace_epoll(et, "epoll_wait(ET)", "with 50 bytes, mark 100");
  double t0 = now_s();
  TR("recv(200, MSG_PEEK) with 50 bytes there, SO_RCVTIMEO 300 ms", recv(fd, b, sizeof b, MSG_PEEK));
  T("  waited for the low-water mark until the timeout (250..2000 ms): %s", yn(ms_since(t0) >= 250 && ms_since(t0) < 2000));
  TR("recv(200, MSG_DONTWAIT|MSG_PEEK)", recv(fd, b, sizeof b, MSG_DONTWAIT | MSG_PEEK));
  v = 40;
  TR("setsockopt(SO_RCVLOWAT, 40)", setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
  trace_epoll(lt, "epoll_wait(LT)", "with 50 bytes, mark 40");
  trace_epoll(et, "epoll_wait(ET)", "with 50 bytes, mark 40");
  trace_epoll(et, "epoll_wait(ET)", "again");
  v = 100;
  TR("setsockopt(SO_RCVLOWAT, 100)", setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
  trace_epoll(lt, "epoll_wait(LT)", "with 50 bytes, mark 100 again");
  side_put('c');
  side_get('d');
  await_bytes(fd, 110);
  settle();
  trace_epoll(lt, "epoll_wait(LT)", "with 110 bytes");
  trace_epoll(et, "epoll_wait(ET)", "with 110 bytes");
  struct rx r;
  rx_init(&r, 39, 0);
  long n = TR("recv(200) with 110 bytes there", recv(fd, b, sizeof b, 0));
  if (n > 0) rx_add(&r, b, (size_t)n);
  v = 0;
  TR("setsockopt(SO_RCVLOWAT, 0)", setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v));
  gl = sizeof g;
  TR("getsockopt(SO_RCVLOWAT)", getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &g, &gl));
  T("  %d", g);
  side_put('e');
  n = TR("recv(200) with mark 1", recv(fd, b, sizeof b, 0));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
  close(lt);
  close(et);
}
static void rcvlowat_ep_cli(int fd) {
  unsigned char b[120];
  stream_fill(39, 0, b, sizeof b);
  side_get('a');
  TR("write(50)", write(fd, b, 50));
  side_put('b');
  side_get('c');
  TR("write(60)", write(fd, b + 50, 60));
  side_put('d');
  side_get('e');
  TR("write(10)", write(fd, b + 110, 10));
}

/* ---------------- readiness ---------------- */

enum rmode {
  RM_POLL, RM_PPOLL, RM_SELECT, RM_PSELECT, RM_POLL_NORM, RM_EP_LT, RM_EP_IN, RM_EP_ET, RM_EP_ONESHOT, RM_EP_TWO,
  RM_EP_NESTED, RM_EP_POLLED, RM_EP_MIXED, RM_EP_EARLY
};

struct rstate {
  enum rmode m;
  int fd, ep, ep2, inner, pipe_r, pipe_w;
};

static void trace_epoll(int ep, const char *name, const char *when) {
  struct epoll_event out[8];
  errno = ERRNO_SENTINEL;
  int n = epoll_wait(ep, out, 8, 0);
  int e = errno;
  if (n < 0) {
    T("%s %s = -1 %s", name, when, ename(e));
    return;
  }
  T("%s %s = %d%s", name, when, n, e != ERRNO_SENTINEL ? " (errno changed)" : "");
  /* kernel order of several ready items is not part of the contract: sort by data */
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (out[j].data.u64 < out[i].data.u64) {
        struct epoll_event t = out[i];
        out[i] = out[j];
        out[j] = t;
      }
  for (int i = 0; i < n; i++) T("  data 0x%llx events %s", (unsigned long long)out[i].data.u64, evs(out[i].events));
}

static void rcheck(struct rstate *s, const char *when) {
  switch (s->m) {
    case RM_POLL:
    case RM_PPOLL:
    case RM_POLL_NORM: {
      struct pollfd p = {.fd = s->fd, .events = s->m == RM_POLL_NORM ? (POLLRDNORM | POLLWRNORM) : PALL};
      errno = ERRNO_SENTINEL;
      int r;
      if (s->m == RM_PPOLL) {
        struct timespec ts = {0, 0};
        r = ppoll(&p, 1, &ts, NULL);
      } else {
        r = poll(&p, 1, 0);
      }
      int e = errno;
      if (r < 0) T("%s %s = -1 %s", s->m == RM_PPOLL ? "ppoll" : "poll", when, ename(e));
      else T("%s %s = %d revents %s", s->m == RM_PPOLL ? "ppoll" : "poll", when, r, evs((unsigned)p.revents));
      break;
    }
    case RM_SELECT:
    case RM_PSELECT: {
      fd_set rs, ws, es;
      FD_ZERO(&rs);
      FD_ZERO(&ws);
      FD_ZERO(&es);
      FD_SET(s->fd, &rs);
      FD_SET(s->fd, &ws);
      FD_SET(s->fd, &es);
      errno = ERRNO_SENTINEL;
      int r;
      if (s->m == RM_PSELECT) {
        struct timespec ts = {0, 0};
        r = pselect(s->fd + 1, &rs, &ws, &es, &ts, NULL);
      } else {
        struct timeval tv = {0, 0};
        r = select(s->fd + 1, &rs, &ws, &es, &tv);
      }
      int e = errno;
      if (r < 0) T("select %s = -1 %s", when, ename(e));
      else T("%s %s = %d read %d write %d except %d", s->m == RM_PSELECT ? "pselect" : "select", when, r,
             FD_ISSET(s->fd, &rs) ? 1 : 0, FD_ISSET(s->fd, &ws) ? 1 : 0, FD_ISSET(s->fd, &es) ? 1 : 0);
      break;
    }
    case RM_EP_TWO:
      trace_epoll(s->ep, "epoll A", when);
      trace_epoll(s->ep2, "epoll B", when);
      break;
    case RM_EP_NESTED:
      trace_epoll(s->ep, "outer epoll", when);
      trace_epoll(s->inner, "  inner epoll", when);
      break;
    case RM_EP_POLLED: {
      struct pollfd p = {.fd = s->ep, .events = POLLIN};
      int r = poll(&p, 1, 0);
      T("poll(epoll fd) %s = %d revents %s", when, r, evs((unsigned)p.revents));
      trace_epoll(s->ep, "  epoll", when);
      break;
    }
    default:
      trace_epoll(s->ep, "epoll", when);
  }
}

static int ep_add(int ep, int fd, uint32_t events, uint64_t data) {
  struct epoll_event ev = {.events = events, .data.u64 = data};
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void readiness_srv(int fd, enum rmode m) {
  struct rstate s = {.m = m, .fd = fd, .ep = -1, .ep2 = -1, .inner = -1, .pipe_r = -1, .pipe_w = -1};
  const uint32_t lt = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
  switch (m) {
    case RM_EP_LT: s.ep = epoll_create1(0); TR("epoll_ctl(ADD, IN|OUT|RDHUP)", ep_add(s.ep, fd, lt, 0x1111)); break;
    case RM_EP_IN: s.ep = epoll_create1(0); TR("epoll_ctl(ADD, IN)", ep_add(s.ep, fd, EPOLLIN, 0x1111)); break;
    case RM_EP_ET:
      s.ep = epoll_create1(0);
      TR("epoll_ctl(ADD, IN|OUT|RDHUP|ET)", ep_add(s.ep, fd, lt | EPOLLET, 0x1111));
      break;
    case RM_EP_ONESHOT:
      s.ep = epoll_create1(0);
      TR("epoll_ctl(ADD, IN|RDHUP|ONESHOT)", ep_add(s.ep, fd, EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, 0x1111));
      break;
    case RM_EP_TWO:
      s.ep = epoll_create1(0);
      s.ep2 = epoll_create1(0);
      TR("epoll A: epoll_ctl(ADD, IN|OUT|RDHUP)", ep_add(s.ep, fd, lt, 0xaaaa));
      TR("epoll B: epoll_ctl(ADD, IN|RDHUP|ET)", ep_add(s.ep2, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, 0xbbbb));
      break;
    case RM_EP_NESTED:
      s.ep = epoll_create1(0);
      s.inner = epoll_create1(0);
      TR("inner: epoll_ctl(ADD socket, IN|RDHUP)", ep_add(s.inner, fd, EPOLLIN | EPOLLRDHUP, 0x1111));
      TR("outer: epoll_ctl(ADD inner epoll, IN)", ep_add(s.ep, s.inner, EPOLLIN, 0x2222));
      break;
    case RM_EP_POLLED:
      s.ep = epoll_create1(0);
      TR("epoll_ctl(ADD, IN|RDHUP)", ep_add(s.ep, fd, EPOLLIN | EPOLLRDHUP, 0x1111));
      break;
    case RM_EP_MIXED: {
      int p[2];
      if (pipe(p) < 0) die("pipe: %s", strerror(errno));
      s.pipe_r = p[0];
      s.pipe_w = p[1];
      s.ep = epoll_create1(0);
      TR("epoll_ctl(ADD socket, IN|RDHUP)", ep_add(s.ep, fd, EPOLLIN | EPOLLRDHUP, 0x1111));
      TR("epoll_ctl(ADD pipe, IN)", ep_add(s.ep, p[0], EPOLLIN, 0x3333));
      break;
    }
    case RM_EP_EARLY:
      s.ep = early_ep; /* registered with IN|OUT|RDHUP before the warm-up */
      break;
    default: break;
  }
  unsigned char b[100];
  rcheck(&s, "before data");
  if (m == RM_EP_MIXED) {
    TR("write(pipe, 1)", write(s.pipe_w, "p", 1));
    rcheck(&s, "with a byte in the pipe");
  }
  side_put('a');
  side_get('b');
  await_bytes(fd, 100);
  settle();
  rcheck(&s, "after 100 bytes arrived");
  if (m != RM_EP_ONESHOT) rcheck(&s, "again");
  TR("read(40)", read(fd, b, 40));
  rcheck(&s, "after a partial read");
  if (m == RM_EP_MIXED) {
    TR("read(pipe, 1)", read(s.pipe_r, b, 1));
    rcheck(&s, "after draining the pipe");
  }
  side_put('c');
  side_get('d');
  await_event(fd, POLLRDHUP, 3000);
  settle();
  rcheck(&s, "after the peer's SHUT_WR");
  if (m == RM_EP_ONESHOT) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.u64 = 0x1112};
    TR("epoll_ctl(MOD, IN|RDHUP|ONESHOT) re-arm", epoll_ctl(s.ep, EPOLL_CTL_MOD, fd, &ev));
    rcheck(&s, "after re-arming");
    rcheck(&s, "again");
  }
  TR("read(100)", read(fd, b, 100));
  TR("read(100) at EOF", read(fd, b, 100));
  rcheck(&s, "after the full drain");
  if (s.ep >= 0 && m != RM_EP_NESTED && m != RM_EP_EARLY) {
    TR("epoll_ctl(DEL)", epoll_ctl(s.ep, EPOLL_CTL_DEL, fd, NULL));
    rcheck(&s, "after EPOLL_CTL_DEL");
  }
}
static void readiness_cli(int fd) {
  unsigned char b[100];
  side_get('a');
  stream_fill(39, 0, b, sizeof b);
  TR("write(100)", write(fd, b, sizeof b));
  side_put('b');
  side_get('c');
  TR("shutdown(SHUT_WR)", shutdown(fd, SHUT_WR));
  side_put('d');
}
#define READINESS(fn, mode) \
  static void fn(int fd) { readiness_srv(fd, mode); }
READINESS(rd_poll_srv, RM_POLL)
READINESS(rd_ppoll_srv, RM_PPOLL)
READINESS(rd_select_srv, RM_SELECT)
READINESS(rd_pselect_srv, RM_PSELECT)
READINESS(rd_pollnorm_srv, RM_POLL_NORM)
READINESS(rd_ep_lt_srv, RM_EP_LT)
READINESS(rd_ep_in_srv, RM_EP_IN)
READINESS(rd_ep_et_srv, RM_EP_ET)
READINESS(rd_ep_oneshot_srv, RM_EP_ONESHOT)
READINESS(rd_ep_two_srv, RM_EP_TWO)
READINESS(rd_ep_nested_srv, RM_EP_NESTED)
READINESS(rd_ep_polled_srv, RM_EP_POLLED)
READINESS(rd_ep_mixed_srv, RM_EP_MIXED)
READINESS(rd_ep_early_srv, RM_EP_EARLY)

/* EPOLLEXCLUSIVE is passed through (the kernel's rules: no MOD of such a
 * registration, EINVAL), and epoll_pwait / epoll_pwait2 answer as
 * epoll_wait does, a signal mask given. */
static void ep_excl_srv(int fd) {
  unsigned char b[100];
  struct epoll_event out[4];
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  struct timespec zero = {0, 0}, t200 = {0, 200000000};
  int ep = epoll_create1(EPOLL_CLOEXEC);
  TR("epoll_ctl(ADD, IN|EXCLUSIVE)", ep_add(ep, fd, EPOLLIN | EPOLLEXCLUSIVE, 0x1111));
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = 0x1112};
  TR("epoll_ctl(MOD) of an EXCLUSIVE registration", epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
  TR("epoll_pwait(0) before data", epoll_pwait(ep, out, 4, 0, &mask));
  TR("epoll_pwait2({0, 200 ms}) before data", epoll_pwait2(ep, out, 4, &t200, &mask));
  side_put('a');
  side_get('b');
  await_bytes(fd, 100);
  settle();
  long n = TR("epoll_pwait(0) after 100 bytes", epoll_pwait(ep, out, 4, 0, &mask));
  if (n > 0) T("  data 0x%llx events %s", (unsigned long long)out[0].data.u64, evs(out[0].events));
  n = TR("epoll_pwait2({0, 0}) after 100 bytes", epoll_pwait2(ep, out, 4, &zero, NULL));
  if (n > 0) T("  data 0x%llx events %s", (unsigned long long)out[0].data.u64, evs(out[0].events));
  struct rx r;
  rx_init(&r, 41, 0);
  n = TR("read(100)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  TR("epoll_pwait2({0, 200 ms}) after the read", epoll_pwait2(ep, out, 4, &t200, &mask));
  side_put('c');
  n = TR("epoll_pwait2(NULL: forever), 50 bytes after 300 ms", epoll_pwait2(ep, out, 4, NULL, &mask));
  if (n > 0) T("  data 0x%llx events %s", (unsigned long long)out[0].data.u64, evs(out[0].events));
  n = TR("read(100)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  TR("epoll_ctl(DEL)", epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
  TR("epoll_ctl(ADD, IN|EXCLUSIVE|ET): EINVAL with ET? no: allowed", ep_add(ep, fd, EPOLLIN | EPOLLEXCLUSIVE | EPOLLET, 0x1113));
  TR("epoll_ctl(ADD, IN|EXCLUSIVE|ONESHOT) again", ep_add(ep, fd, EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT, 0x1114));
  T("%s", rx_verdict(&r));
  close(ep);
}
static void ep_excl_cli(int fd) {
  unsigned char b[150];
  stream_fill(41, 0, b, sizeof b);
  side_get('a');
  TR("write(100)", write(fd, b, 100));
  side_put('b');
  side_get('c');
  sleep_ms(300);
  TR("write(50)", write(fd, b + 100, 50));
}

/* MSG_MORE: pieces sent with it arrive with the last one sent without it,
 * whole and in order. */
static void msg_more_srv(int fd) {
  unsigned char b[400];
  struct rx r;
  rx_init(&r, 42, 0);
  side_put('a');
  long got = 0;
  while (got < 300) {
    long n = recv(fd, b, sizeof b, 0);
    if (n <= 0) break;
    rx_add(&r, b, (size_t)n);
    got += n;
  }
  T("received %ld bytes", got);
  T("%s", rx_verdict(&r));
}
static void msg_more_cli(int fd) {
  unsigned char b[300];
  stream_fill(42, 0, b, sizeof b);
  side_get('a');
  TR("send(100, MSG_MORE)", send(fd, b, 100, MSG_MORE));
  TR("send(1, MSG_MORE)", send(fd, b + 100, 1, MSG_MORE));
  struct iovec v[2] = {{b + 101, 49}, {b + 150, 50}};
  struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
  TR("sendmsg(2 iovecs, 99 bytes, MSG_MORE)", sendmsg(fd, &m, MSG_MORE));
  TR("send(100) without MSG_MORE", send(fd, b + 200, 100, 0));
}

/* Blocking waits on an epoll set that is nested in another set, polled or
 * selected: each wakes when bytes arrive (not at its timeout), and none
 * wakes for nothing once the bytes are read. An edge-triggered outer
 * registration reports each arrival once. */
static void nested_wait_srv(int fd) {
  unsigned char b[200];
  struct epoll_event out[4];
  int inner = epoll_create1(0), outer = epoll_create1(0), outer_et = epoll_create1(0);
  TR("inner: epoll_ctl(ADD socket, IN)", ep_add(inner, fd, EPOLLIN, 0x1111));
  TR("outer: epoll_ctl(ADD inner, IN)", ep_add(outer, inner, EPOLLIN, 0x2222));
  TR("outer ET: epoll_ctl(ADD inner, IN|ET)", ep_add(outer_et, inner, EPOLLIN | EPOLLET, 0x3333));
  TR("outer epoll_wait(200 ms), idle", epoll_wait(outer, out, 4, 200));
  struct pollfd p = {.fd = inner, .events = POLLIN};
  TR("poll(inner, 200 ms), idle", poll(&p, 1, 200));
  struct rx r;
  rx_init(&r, 40, 0);
  side_put('a');
  long n = TR("outer epoll_wait(3000 ms), 10 bytes after 300 ms", epoll_wait(outer, out, 4, 3000));
  if (n > 0) T("  data 0x%llx events %s", (unsigned long long)out[0].data.u64, evs(out[0].events));
  trace_epoll(outer_et, "outer ET", "after 10 bytes");
  trace_epoll(outer_et, "outer ET", "again");
  trace_epoll(inner, "  inner", "after 10 bytes");
  n = TR("read(200)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  TR("outer epoll_wait(200 ms) after the read", epoll_wait(outer, out, 4, 200));
  trace_epoll(outer_et, "outer ET", "after the read");
  side_put('b');
  p.revents = 0;
  TR("poll(inner, 3000 ms), 20 bytes after 300 ms", poll(&p, 1, 3000));
  T("  revents %s", evs((unsigned)p.revents));
  trace_epoll(outer_et, "outer ET", "after 20 more bytes");
  n = TR("read(200)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  p.revents = 0;
  TR("poll(inner, 200 ms) after the read", poll(&p, 1, 200));
  side_put('c');
  fd_set rs;
  FD_ZERO(&rs);
  FD_SET(inner, &rs);
  struct timeval tv = {3, 0};
  TR("select(inner, 3 s), 30 bytes after 300 ms", select(inner + 1, &rs, NULL, NULL, &tv));
  T("  inner in the read set: %d", FD_ISSET(inner, &rs) ? 1 : 0);
  n = TR("read(200)", read(fd, b, sizeof b));
  if (n > 0) rx_add(&r, b, (size_t)n);
  side_put('d');
  n = TR("outer epoll_wait(3000 ms), SHUT_WR after 300 ms", epoll_wait(outer, out, 4, 3000));
  if (n > 0) T("  data 0x%llx events %s", (unsigned long long)out[0].data.u64, evs(out[0].events));
  TR("read(200) at EOF", read(fd, b, sizeof b));
  T("%s", rx_verdict(&r));
  close(outer_et);
  close(outer);
  close(inner);
}
static void nested_wait_cli(int fd) {
  unsigned char b[60];
  stream_fill(40, 0, b, sizeof b);
  side_get('a');
  sleep_ms(300);
  TR("write(10)", write(fd, b, 10));
  side_get('b');
  sleep_ms(300);
  TR("write(20)", write(fd, b + 10, 20));
  side_get('c');
  sleep_ms(300);
  TR("write(30)", write(fd, b + 30, 30));
  side_get('d');
  sleep_ms(300);
  TR("shutdown(SHUT_WR)", shutdown(fd, SHUT_WR));
}

/* Writability: fill until EAGAIN, then POLLOUT is clear; the peer drains,
 * POLLOUT is back. Only booleans: how many bytes fill a socket is the
 * kernel's buffer sizes on TCP and the ring size under pdrun. */
static bool wcheck(enum rmode m, int fd, int ep, int timeout, const char *when) {
  bool w = false;
  if (m == RM_POLL || m == RM_POLL_NORM) {
    short want = m == RM_POLL ? POLLOUT : POLLWRNORM;
    struct pollfd p = {.fd = fd, .events = want};
    int r = poll(&p, 1, timeout);
    w = r > 0 && (p.revents & want);
    T("poll(%s) %s: writable %s", m == RM_POLL ? "POLLOUT" : "POLLWRNORM", when, yn(w));
  } else if (m == RM_SELECT) {
    fd_set ws;
    FD_ZERO(&ws);
    FD_SET(fd, &ws);
    struct timeval tv = {.tv_sec = timeout / 1000, .tv_usec = (timeout % 1000) * 1000};
    int r = select(fd + 1, NULL, &ws, NULL, &tv);
    w = r > 0 && FD_ISSET(fd, &ws);
    T("select(write) %s: writable %s", when, yn(w));
  } else {
    struct epoll_event out[4];
    int r = epoll_wait(ep, out, 4, timeout);
    w = r > 0 && (out[0].events & EPOLLOUT);
    T("epoll_wait %s = %d%s%s", when, r, r > 0 ? " events " : "", r > 0 ? evs(out[0].events) : "");
  }
  return w;
}
static void writable_srv(int fd, enum rmode m) {
  int ep = -1;
  set_nonblock(fd, true);
  if (m == RM_EP_LT || m == RM_EP_ET) {
    ep = epoll_create1(0);
    TR("epoll_ctl(ADD, OUT)", ep_add(ep, fd, EPOLLOUT | (m == RM_EP_ET ? EPOLLET : 0), 0x1111));
  }
  wcheck(m, fd, ep, 0, "idle");
  if (m == RM_EP_ET) wcheck(m, fd, ep, 0, "idle again");
  int e = 0;
  uint64_t total = fill_until_eagain(fd, 40, 0, &e);
  T("filled the socket until a write failed with: %s", ename(e));
  wcheck(m, fd, ep, 0, "full");
  wcheck(m, fd, ep, 100, "full, 100 ms");
  side_put_u64(total);
  side_get('r');
  wcheck(m, fd, ep, 2000, "after the peer drained (up to 2 s)");
  if (m == RM_EP_ET) wcheck(m, fd, ep, 0, "again");
}
static void writable_cli(int fd) {
  uint64_t total = side_get_u64();
  struct rx r;
  rx_init(&r, 40, 0);
  uint64_t got = get_all(fd, &r, total);
  T("read everything the peer wrote: %s; %s", yn(got == total), rx_verdict(&r));
  side_put('r');
}
static void wr_poll_srv(int fd) { writable_srv(fd, RM_POLL); }
static void wr_pollnorm_srv(int fd) { writable_srv(fd, RM_POLL_NORM); }
static void wr_select_srv(int fd) { writable_srv(fd, RM_SELECT); }
static void wr_ep_lt_srv(int fd) { writable_srv(fd, RM_EP_LT); }
static void wr_ep_et_srv(int fd) { writable_srv(fd, RM_EP_ET); }

/* ---------------- descriptors and processes ---------------- */

/* dup, dup2, dup3, F_DUPFD_CLOEXEC; the original closed, the dups go on. */
static void dup_srv(int fd) {
  unsigned char b[100];
  int d1 = dup(fd);
  T("dup returned a new fd: %s", yn(d1 >= 0 && d1 != fd));
  int d2 = (int)TR("dup2(fd, 100)", dup2(fd, 100));
  int d3 = (int)TR("dup3(fd, 101, O_CLOEXEC)", dup3(fd, 101, O_CLOEXEC));
  int d4 = fcntl(fd, F_DUPFD_CLOEXEC, 200);
  T("fcntl(F_DUPFD_CLOEXEC, 200) >= 200: %s", yn(d4 >= 200));
  T("FD_CLOEXEC: dup %d, dup2 %d, dup3 %d, F_DUPFD_CLOEXEC %d", fcntl(d1, F_GETFD) & FD_CLOEXEC,
    fcntl(d2, F_GETFD) & FD_CLOEXEC, fcntl(d3, F_GETFD) & FD_CLOEXEC, fcntl(d4, F_GETFD) & FD_CLOEXEC);
  TR("close(original)", close(fd));
  TR("recv(original) after close", recv(fd, b, sizeof b, MSG_DONTWAIT));
  side_put('1');
  struct rx r;
  rx_init(&r, 41, 0);
  long n = TR("recv(dup, 30)", recv(d1, b, 30, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  stream_fill(42, 0, b, 20);
  TR("write(dup2, 20)", write(d2, b, 20));
  TR("close(dup)", close(d1));
  TR("close(dup2)", close(d2));
  n = TR("recv(dup3, 30)", recv(d3, b, 30, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  TR("close(dup3)", close(d3));
  n = TR("recv(F_DUPFD_CLOEXEC dup, 40)", recv(d4, b, 40, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s", rx_verdict(&r));
  stream_fill(42, 20, b, 20);
  TR("write(F_DUPFD_CLOEXEC dup, 20)", write(d4, b, 20));
  TR("dup2(d4, d4)", dup2(d4, d4) == d4 ? 0 : -1);
  TR("close(last dup)", close(d4));
  TR("recv(last dup) after close", recv(d4, b, sizeof b, MSG_DONTWAIT));
}
static void dup_cli(int fd) {
  unsigned char b[100];
  side_get('1');
  stream_fill(41, 0, b, sizeof b);
  TR("write(100)", write(fd, b, 100));
  struct rx r;
  rx_init(&r, 42, 0);
  uint64_t got = get_all(fd, &r, 1000);
  T("read %llu bytes until EOF; %s", (unsigned long long)got, rx_verdict(&r));
}

/* fork after the upgrade: one process keeps using the socket, the other
 * closes its copy first. A pipe orders parent and child (the side channel
 * leads to the peer process). */
static void gate_open(int g[2]) {
  if (pipe(g) < 0) die("pipe: %s", strerror(errno));
}
static void gate_pass(int g[2]) {
  ssize_t w = write(g[1], "x", 1);
  if (w != 1) die("gate: %s", strerror(errno));
}
static void gate_wait(int g[2]) {
  char c;
  ssize_t r = read(g[0], &c, 1);
  if (r != 1) die("gate: %s", r < 0 ? strerror(errno) : "EOF");
}
static void fork_srv(int fd, bool child_uses) {
  int g[2];
  gate_open(g);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  bool child = pid == 0;
  const char *me = child ? "child" : "parent";
  char label[64];
  if (child) behave_watchdog(20);
  if (child != child_uses) { /* this process closes its copy */
    snprintf(label, sizeof label, "%s: close", me);
    TR(label, close(fd));
    gate_pass(g);
    if (child) _exit(0);
    int st;
    waitpid(pid, &st, 0);
    T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return;
  }
  gate_wait(g); /* the other process closed its copy */
  unsigned char b[200];
  side_put('1');
  struct rx r;
  rx_init(&r, 43, 0);
  snprintf(label, sizeof label, "%s: recv(100, MSG_WAITALL)", me);
  long n = TR(label, recv(fd, b, 100, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("%s: %s", me, rx_verdict(&r));
  stream_fill(44, 0, b, 200);
  snprintf(label, sizeof label, "%s: write(200)", me);
  TR(label, write(fd, b, 200));
  snprintf(label, sizeof label, "%s: close", me);
  TR(label, close(fd));
  if (child) _exit(0);
  int st;
  waitpid(pid, &st, 0);
  T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
static void fork_child_srv(int fd) { fork_srv(fd, true); }
static void fork_parent_srv(int fd) { fork_srv(fd, false); }
static void fork_cli(int fd) {
  unsigned char b[100];
  side_get('1');
  stream_fill(43, 0, b, sizeof b);
  TR("write(100)", write(fd, b, sizeof b));
  struct rx r;
  rx_init(&r, 44, 0);
  set_timeo(fd, SO_RCVTIMEO, 5000);
  uint64_t got = get_all(fd, &r, 10000);
  T("read %llu bytes until EOF; %s", (unsigned long long)got, rx_verdict(&r));
}

/* fork after the upgrade, both processes write in turn (parent, then child).
 * Documented as a known limit of the shim (docs/architecture.md): kept so
 * the report shows what an application sees. */
static void fork_both_srv(int fd) {
  unsigned char b[100];
  stream_fill(45, 0, b, 100);
  int g[2];
  gate_open(g);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    behave_watchdog(20);
    gate_wait(g);
    TR("child: write(50)", write(fd, b + 50, 50));
    TR("child: close", close(fd));
    _exit(0);
  }
  TR("parent: write(50)", write(fd, b, 50));
  gate_pass(g);
  int st;
  waitpid(pid, &st, 0);
  T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  TR("parent: close", close(fd));
}
static void fork_both_cli(int fd) {
  struct rx r;
  rx_init(&r, 45, 0);
  set_timeo(fd, SO_RCVTIMEO, 3000);
  uint64_t got = get_all(fd, &r, 10000);
  T("read %llu bytes until EOF or 3 s of silence (100 expected); %s", (unsigned long long)got, rx_verdict(&r));
}

/* fork after the upgrade, both processes READ the socket. TCP gives each
 * read a disjoint piece of the byte stream, in order, none twice, none
 * lost, whichever process makes it. Pipes pass the turns and the child's
 * results to the parent. */
static void pipe_put_u64(int p[2], uint64_t v) {
  if (write(p[1], &v, sizeof v) != (ssize_t)sizeof v) die("pipe: %s", strerror(errno));
}
static uint64_t pipe_get_u64(int p[2]) {
  uint64_t v;
  size_t got = 0;
  while (got < sizeof v) {
    ssize_t r = read(p[0], (char *)&v + got, sizeof v - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("pipe: %s", r < 0 ? strerror(errno) : "EOF");
    got += (size_t)r;
  }
  return v;
}

/* Which 50-byte piece of stream 46 (at 300 or at 350) b is: 'A', 'B', or 'X'. */
static char turns_piece(const unsigned char *b, long n) {
  unsigned char want[50];
  if (n != 50) return 'X';
  stream_fill(46, 300, want, 50);
  if (!memcmp(b, want, 50)) return 'A';
  stream_fill(46, 350, want, 50);
  if (!memcmp(b, want, 50)) return 'B';
  return 'X';
}

/* In turns: the peer sends 300 bytes; the parent reads 100, then the child
 * peeks and reads 120, then the parent reads the last 80; then both block in
 * recv at once and the peer sends two 50-byte pieces, 100 ms apart: the
 * reader the first one wakes takes it, the other sleeps on and takes the
 * second (which one gets which is the scheduler's: only the verdict is
 * traced); then the peer closes and each sees EOF. */
static void fork_rd_turns_srv(int fd) {
  unsigned char b[200];
  int to_child[2], to_parent[2];
  gate_open(to_child);
  gate_open(to_parent);
  side_put('1');
  await_bytes(fd, 300);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    behave_watchdog(20);
    gate_wait(to_child);
    int q = -1;
    TR("child: ioctl(FIONREAD)", ioctl(fd, FIONREAD, &q));
    T("child:   %d bytes queued", q);
    struct rx pr, r;
    rx_init(&pr, 46, 100);
    long n = TR("child: recv(10, MSG_PEEK)", recv(fd, b, 10, MSG_PEEK));
    if (n > 0) rx_add(&pr, b, (size_t)n);
    T("child:   peeked %s", rx_verdict(&pr));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    TR("child: poll(POLLIN, 0)", poll(&p, 1, 0));
    T("child:   revents %s", evs((unsigned)p.revents));
    rx_init(&r, 46, 100);
    n = TR("child: recv(120, MSG_WAITALL)", recv(fd, b, 120, MSG_WAITALL));
    if (n > 0) rx_add(&r, b, (size_t)n);
    T("child:   %s", rx_verdict(&r));
    pipe_put_u64(to_parent, n > 0 ? (uint64_t)n : 0);
    gate_wait(to_child); /* both block now */
    n = recv(fd, b, 50, MSG_WAITALL);
    pipe_put_u64(to_parent, (uint64_t)(unsigned char)turns_piece(b, n));
    gate_wait(to_child); /* the peer closed */
    TR("child: recv after the peer closed", recv(fd, b, sizeof b, 0));
    TR("child: close", close(fd));
    _exit(0);
  }
  struct rx r;
  rx_init(&r, 46, 0);
  long n = TR("parent: recv(100, MSG_WAITALL)", recv(fd, b, 100, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("parent:   %s", rx_verdict(&r));
  uint64_t total = n > 0 ? (uint64_t)n : 0;
  gate_pass(to_child);
  total += pipe_get_u64(to_parent); /* the child read its piece */
  rx_init(&r, 46, 220);
  n = TR("parent: recv(80, MSG_WAITALL)", recv(fd, b, 80, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("parent:   %s", rx_verdict(&r));
  if (n > 0) total += (uint64_t)n;
  int q = -1;
  TR("parent: ioctl(FIONREAD)", ioctl(fd, FIONREAD, &q));
  T("parent:   %d bytes queued", q);
  TR("parent: recv(MSG_DONTWAIT)", recv(fd, b, sizeof b, MSG_DONTWAIT));
  T("read in turns: %llu bytes of 300", (unsigned long long)total);
  /* both block in recv; the peer sends 50, then 50 more */
  gate_pass(to_child);
  side_put('2');
  n = recv(fd, b, 50, MSG_WAITALL);
  char mine = turns_piece(b, n), theirs = (char)pipe_get_u64(to_parent);
  T("two blocked readers, two 50-byte pieces: each got one whole piece, none twice: %s",
    yn(mine != 'X' && theirs != 'X' && mine != theirs));
  side_put('3');
  n = TR("parent: recv after the peer closed", recv(fd, b, sizeof b, 0));
  gate_pass(to_child);
  int st;
  waitpid(pid, &st, 0);
  T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  TR("parent: close", close(fd));
}
static void fork_rd_turns_cli(int fd) {
  unsigned char b[300];
  side_get('1');
  stream_fill(46, 0, b, 300);
  TR("write(300)", write(fd, b, 300));
  side_get('2');
  sleep_ms(100); /* both readers asleep (not required: the outcome is the same) */
  stream_fill(46, 300, b, 50);
  TR("write(50)", write(fd, b, 50));
  sleep_ms(100); /* the reader that did not get it sleeps again */
  stream_fill(46, 350, b, 50);
  TR("write(50)", write(fd, b, 50));
  side_get('3');
  TR("close", close(fd));
}

/* Both processes read at once until EOF: the parent with blocking recv,
 * MSG_WAITALL and readv of random sizes, the child with poll or epoll (LT,
 * ET) and MSG_DONTWAIT (EAGAIN when the parent took what it was told of). Each logs the
 * bytes it got in shared memory; the parent then checks that the two byte
 * sequences interleave into exactly the stream that was sent: every byte
 * once, each process's in stream order. (Bytes, not pieces: a MSG_WAITALL
 * call that waits lets the other reader in, on TCP as on the ring, so one
 * call's bytes need not be contiguous in the stream.) The split between the
 * two is the scheduler's: only totals and verdicts are traced. */
#define RACE_TOTAL (2u << 20)
struct race_log {
  uint64_t bytes;
  bool eof, overflow, stuck;
  int err;
  unsigned char data[RACE_TOTAL];
};
static void race_add(struct race_log *lg, const unsigned char *b, size_t n) {
  if (lg->overflow || lg->bytes + n > RACE_TOTAL) {
    lg->overflow = true;
    return;
  }
  memcpy(lg->data + lg->bytes, b, n);
  lg->bytes += n;
}

/* Is s[0, total) an interleaving of a and b (each in its order)? Walk the
 * stream; where the next byte of both matches, try one side and remember
 * the other; a branch point that failed once is not tried again. With
 * random data a wrong branch dies within a few bytes. */
struct race_seen {
  uint64_t *slot;
  size_t mask, used;
};
static bool race_seen_add(struct race_seen *h, uint64_t key) {
  if (h->used * 2 >= h->mask) return true; /* full: stop remembering (only slower) */
  size_t k = (size_t)(splitmix64(key) & h->mask);
  while (h->slot[k]) {
    if (h->slot[k] == key + 1) return false;
    k = (k + 1) & h->mask;
  }
  h->slot[k] = key + 1;
  h->used++;
  return true;
}
static bool race_merge(const struct race_log *a, const struct race_log *b, const unsigned char *s, uint64_t total) {
  if (a->bytes + b->bytes != total) return false;
  struct frame {
    uint64_t i, j;
  };
  size_t cap = 1024, sp = 0;
  struct frame *st = malloc(cap * sizeof *st);
  struct race_seen seen = {.mask = (1u << 20) - 1};
  seen.slot = calloc(seen.mask + 1, sizeof *seen.slot);
  if (!st || !seen.slot) die("race: out of memory");
  bool ok = false;
  st[sp++] = (struct frame){0, 0};
  while (sp > 0 && !ok) {
    struct frame f = st[--sp];
    for (;;) {
      uint64_t o = f.i + f.j;
      if (o == total) {
        ok = true;
        break;
      }
      bool ta = f.i < a->bytes && a->data[f.i] == s[o];
      bool tb = f.j < b->bytes && b->data[f.j] == s[o];
      if (ta && tb) {
        if (!race_seen_add(&seen, f.i * (total + 1) + f.j)) break;
        if (sp == cap) {
          cap *= 2;
          st = realloc(st, cap * sizeof *st);
          if (!st) die("race: out of memory");
        }
        st[sp++] = (struct frame){f.i, f.j + 1};
      }
      if (ta) f.i++;
      else if (tb) f.j++;
      else break;
    }
  }
  free(st);
  free(seen.slot);
  return ok;
}

static void race_read_parent(int fd, struct race_log *lg) {
  static unsigned char b[2][16384];
  struct rng g;
  rng_seed(&g, 4711);
  for (;;) {
    size_t want = (size_t)rng_range(&g, 1, sizeof b[0]);
    int how = (int)rng_range(&g, 0, 3);
    ssize_t n;
    if (how == 0) {
      n = recv(fd, b[0], want, MSG_WAITALL);
    } else if (how == 1) {
      struct iovec v[2] = {{b[0], (want + 1) / 2}, {b[1], want - (want + 1) / 2}};
      n = readv(fd, v, 2);
      if (n > (ssize_t)v[0].iov_len) memcpy(b[0] + v[0].iov_len, b[1], (size_t)n - v[0].iov_len);
    } else {
      n = recv(fd, b[0], want, 0);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      lg->err = errno;
      return;
    }
    if (n == 0) {
      lg->eof = true;
      return;
    }
    race_add(lg, b[0], (size_t)n);
  }
}
/* The child waits in turn with poll, a level-triggered epoll set and an
 * edge-triggered one, then reads (MSG_DONTWAIT, random sizes) until EAGAIN
 * (the parent took the rest) or EOF. 10 s without data or EOF while the
 * parent is reading is a lost wake-up. */
static void race_read_child(int fd, struct race_log *lg) {
  static unsigned char b[16384];
  struct rng g;
  rng_seed(&g, 815);
  int lt = epoll_create1(0), et = epoll_create1(0);
  if (lt < 0 || et < 0 || ep_add(lt, fd, EPOLLIN | EPOLLRDHUP, 1) < 0 || ep_add(et, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, 2) < 0)
    die("epoll: %s", strerror(errno));
  for (unsigned turn = 0;; turn++) {
    int pr;
    if (turn % 3 == 0) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      pr = poll(&p, 1, 10000);
    } else {
      struct epoll_event ev;
      pr = epoll_wait(turn % 3 == 1 ? lt : et, &ev, 1, 10000);
    }
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) die("poll/epoll_wait: %s", strerror(errno));
    if (pr == 0) {
      lg->stuck = true;
      break;
    }
    for (;;) {
      ssize_t n = recv(fd, b, (size_t)rng_range(&g, 1, sizeof b), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break; /* the parent took it: wait again */
      if (n < 0) {
        lg->err = errno;
        goto out;
      }
      if (n == 0) {
        lg->eof = true;
        goto out;
      }
      race_add(lg, b, (size_t)n);
    }
  }
out:
  close(lt);
  close(et);
}
static void fork_rd_race_srv(int fd) {
  struct race_log *lg = mmap(NULL, 2 * sizeof *lg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (lg == MAP_FAILED) die("mmap: %s", strerror(errno));
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    behave_watchdog(30);
    race_read_child(fd, &lg[1]);
    close(fd);
    _exit(0);
  }
  side_put('1'); /* both are reading: send */
  race_read_parent(fd, &lg[0]);
  int st;
  waitpid(pid, &st, 0);
  T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  unsigned char *s = malloc(RACE_TOTAL);
  if (!s) die("race: out of memory");
  stream_fill(47, 0, s, RACE_TOTAL);
  for (int k = 0; k < 2; k++)
    if (lg[k].err || lg[k].stuck || lg[k].overflow)
      T("%s reader: %s%s%s", k ? "child" : "parent", lg[k].err ? ename(lg[k].err) : "",
        lg[k].stuck ? "no data and no EOF for 10 s" : "", lg[k].overflow ? "more bytes than were sent" : "");
  T("both readers until EOF: %llu bytes in all (%u sent), both saw EOF: %s",
    (unsigned long long)(lg[0].bytes + lg[1].bytes), RACE_TOTAL, yn(lg[0].eof && lg[1].eof));
  T("the two readers' pieces interleave into the stream, every byte once, each reader's in order: %s",
    yn(!lg[0].overflow && !lg[1].overflow && race_merge(&lg[0], &lg[1], s, RACE_TOTAL)));
  free(s);
  munmap(lg, 2 * sizeof *lg);
  TR("parent: close", close(fd));
}
static void fork_rd_race_cli(int fd) {
  static unsigned char b[65536];
  struct rng g;
  rng_seed(&g, 99);
  side_get('1');
  uint64_t off = 0;
  bool ok = true;
  while (off < RACE_TOTAL) {
    size_t n = (size_t)rng_range(&g, 1, sizeof b);
    if (n > RACE_TOTAL - off) n = (size_t)(RACE_TOTAL - off);
    stream_fill(47, off, b, n);
    if (write_all(fd, b, n, 1) < 0) {
      ok = false;
      break;
    }
    off += n;
  }
  T("wrote %u bytes in pieces of 1 to 65536: %s", RACE_TOTAL, yn(ok));
  TR("close", close(fd));
}

/* Bytes owed by TCP at the fork: on a second connection, made for the
 * purpose, the peer writes 1000 bytes at once (before its shim has its
 * ring: they go by TCP), the server's shim attaches (untraced polls give it
 * the time), the server forks, and only then the peer writes 1000 more
 * (by the ring, after its switch: the first 1000 are owed by TCP). The
 * parent reads 600, the child 800 (the last 400 TCP bytes and 400 of the
 * ring), the parent the last 600: each process must know that the other
 * read TCP bytes. Under kernel TCP all 2000 come by TCP; the trace is the
 * same. (Had the server's shim not attached by the fork, the connection
 * would stay on TCP in both processes: fork-unattached.) */
static int listen_lo(unsigned *port) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0) die("socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0) die("listen: %s", strerror(errno));
  getsockname(l, (struct sockaddr *)&a, &al);
  *port = ntohs(a.sin_port);
  return l;
}
/* Untraced calls on fd for ms: each gives the shim a chance to report the
 * connection, take its assignment and attach. */
static void poll_for(int fd, unsigned ms) {
  for (unsigned t = 0;; t += 5) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    (void)poll(&p, 1, 0);
    if (t >= ms) break;
    sleep_ms(5);
  }
}
static void fork_rd_owed_run(bool attach_first) {
  unsigned char b[1000];
  unsigned port;
  int l = listen_lo(&port);
  side_put_u64(port);
  int c2 = accept(l, NULL, NULL);
  if (c2 < 0) die("accept: %s", strerror(errno));
  close(l);
  await_bytes(c2, 1000);
  /* calls on it: the shim reports it, takes its slot, attaches; or only
   * one call, which reports it, and the fork comes before the slot */
  poll_for(c2, attach_first ? 200 : 0);
  int to_child[2], to_parent[2];
  gate_open(to_child);
  gate_open(to_parent);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    behave_watchdog(20);
    gate_wait(to_child);
    await_bytes(c2, 1400);
    int q = -1;
    TR("child: ioctl(FIONREAD)", ioctl(c2, FIONREAD, &q));
    T("child:   %d bytes queued", q);
    struct rx r;
    rx_init(&r, 48, 600);
    long n = TR("child: recv(800, MSG_WAITALL)", recv(c2, b, 800, MSG_WAITALL));
    if (n > 0) rx_add(&r, b, (size_t)n);
    T("child:   %s", rx_verdict(&r));
    gate_pass(to_parent);
    gate_wait(to_child); /* the peer closed */
    TR("child: recv after the peer closed", recv(c2, b, sizeof b, 0));
    TR("child: close", close(c2));
    _exit(0);
  }
  if (!attach_first) poll_for(c2, 200); /* the parent's shim would attach now, were it let */
  struct rx r;
  rx_init(&r, 48, 0);
  long n = TR("parent: recv(600, MSG_WAITALL)", recv(c2, b, 600, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("parent:   %s", rx_verdict(&r));
  side_put('f'); /* the peer writes the rest (by the ring, under the shim) */
  gate_pass(to_child);
  gate_wait(to_parent);
  struct pollfd p = {.fd = c2, .events = POLLIN};
  TR("parent: poll(POLLIN, 0)", poll(&p, 1, 0));
  T("parent:   revents %s", evs((unsigned)p.revents));
  int q = -1;
  TR("parent: ioctl(FIONREAD)", ioctl(c2, FIONREAD, &q));
  T("parent:   %d bytes queued", q);
  rx_init(&r, 48, 1400);
  n = TR("parent: recv(600, MSG_WAITALL)", recv(c2, b, 600, MSG_WAITALL));
  if (n > 0) rx_add(&r, b, (size_t)n);
  T("parent:   %s", rx_verdict(&r));
  TR("parent: recv(MSG_DONTWAIT)", recv(c2, b, sizeof b, MSG_DONTWAIT));
  side_put('c');
  TR("parent: recv after the peer closed", recv(c2, b, sizeof b, 0));
  gate_pass(to_child);
  int st;
  waitpid(pid, &st, 0);
  T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  TR("parent: close", close(c2));
}
static void fork_rd_owed_srv(int fd) {
  (void)fd;
  fork_rd_owed_run(true);
}
/* The same with the fork right after the server's first call on the second
 * connection: its shim has reported it, not attached it. Both processes must keep it on TCP: a
 * parent that attached it later (its polls after the fork would let it)
 * would take the bytes after the peer's switch from the ring while the child
 * reads the kernel socket. */
static void fork_unattached_srv(int fd) {
  (void)fd;
  fork_rd_owed_run(false);
}
static void fork_rd_owed_cli(int fd) {
  (void)fd;
  unsigned char b[1000];
  unsigned port = (unsigned)side_get_u64();
  int c2 = socket(AF_INET, SOCK_STREAM, 0);
  if (c2 < 0) die("socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
  if (connect(c2, (struct sockaddr *)&a, sizeof a) < 0) die("connect: %s", strerror(errno));
  stream_fill(48, 0, b, 1000);
  TR("second connection: write(1000)", write(c2, b, 1000));
  side_get('f');
  stream_fill(48, 1000, b, 1000);
  TR("second connection: write(1000)", write(c2, b, 1000));
  side_get('c');
  TR("second connection: close", close(c2));
}

/* fork while a thread of the parent waits in recv on the upgraded socket:
 * the child (where that thread does not exist) reads the socket at once and
 * closes it; then the peer writes and the parent's thread gets the bytes. */
struct fwr_arg {
  int fd;
  long n;
  struct rx r;
};
static void *fwr_reader(void *p) {
  struct fwr_arg *a = p;
  unsigned char b[100];
  a->n = recv(a->fd, b, 100, MSG_WAITALL);
  if (a->n > 0) rx_add(&a->r, b, (size_t)a->n);
  return NULL;
}
static void fork_while_recv_srv(int fd) {
  struct fwr_arg a = {.fd = fd};
  rx_init(&a.r, 49, 0);
  pthread_t t;
  if (pthread_create(&t, NULL, fwr_reader, &a) != 0) die("pthread_create");
  sleep_ms(100); /* the thread is asleep in recv (not required: the outcome is the same) */
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    behave_watchdog(10);
    unsigned char b[10];
    TR("child: recv(MSG_DONTWAIT) while a parent thread waits in recv", recv(fd, b, sizeof b, MSG_DONTWAIT));
    TR("child: close", close(fd));
    _exit(0);
  }
  int st;
  waitpid(pid, &st, 0);
  T("parent: the child exited with %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  side_put('1');
  pthread_join(t, NULL);
  T("parent thread: recv(100, MSG_WAITALL) = %ld; %s", a.n, rx_verdict(&a.r));
  TR("parent: close", close(fd));
}
static void fork_while_recv_cli(int fd) {
  unsigned char b[100];
  side_get('1');
  stream_fill(49, 0, b, 100);
  TR("write(100)", write(fd, b, 100));
  struct rx r;
  rx_init(&r, 0, 0);
  T("read %llu bytes until EOF", (unsigned long long)get_all(fd, &r, 1000));
}

/* Threads: three senders on one socket, one receiver, both directions at
 * once. Records of 100 bytes: sender id, sequence number, stream bytes. The
 * interleaving is the scheduler's; the trace has per-sender counts, whether
 * each sender's records arrived in order and intact, and totals. */
#define TH_SENDERS 3
#define TH_RECORDS 400
#define TH_REC 100
struct th_arg {
  int fd;
  int id;
  bool ok;
};
static void *th_send(void *p) {
  struct th_arg *a = p;
  unsigned char rec[TH_REC];
  a->ok = true;
  for (uint32_t i = 0; i < TH_RECORDS; i++) {
    rec[0] = (unsigned char)a->id;
    memcpy(rec + 1, &i, 4);
    stream_fill(100 + (uint64_t)a->id, (uint64_t)i * TH_REC, rec + 5, TH_REC - 5);
    if (write_all(a->fd, rec, TH_REC, 0) < 0) a->ok = false;
  }
  return NULL;
}
struct th_rx {
  int fd;
  uint32_t count[TH_SENDERS];
  bool in_order, intact;
  uint64_t bytes;
};
static void *th_recv(void *p) {
  struct th_rx *x = p;
  unsigned char rec[TH_REC], want[TH_REC];
  x->in_order = x->intact = true;
  uint32_t total = 0;
  while (total < TH_SENDERS * TH_RECORDS) {
    ssize_t n = read_full(x->fd, rec, TH_REC, 1);
    if (n != TH_REC) break;
    x->bytes += TH_REC;
    int id = rec[0];
    uint32_t seq;
    memcpy(&seq, rec + 1, 4);
    if (id >= TH_SENDERS) {
      x->intact = false;
      break;
    }
    if (seq != x->count[id]) x->in_order = false;
    stream_fill(100 + (uint64_t)id, (uint64_t)seq * TH_REC, want + 5, TH_REC - 5);
    if (memcmp(rec + 5, want + 5, TH_REC - 5)) x->intact = false;
    x->count[id]++;
    total++;
  }
  return NULL;
}
static void threads_both(int fd) {
  pthread_t s[TH_SENDERS], r;
  struct th_arg a[TH_SENDERS];
  struct th_rx x;
  memset(&x, 0, sizeof x);
  x.fd = fd;
  pthread_create(&r, NULL, th_recv, &x);
  for (int i = 0; i < TH_SENDERS; i++) {
    a[i].fd = fd;
    a[i].id = i;
    pthread_create(&s[i], NULL, th_send, &a[i]);
  }
  for (int i = 0; i < TH_SENDERS; i++) pthread_join(s[i], NULL);
  pthread_join(r, NULL);
  for (int i = 0; i < TH_SENDERS; i++) T("sender %d: all writes succeeded: %s", i, yn(a[i].ok));
  for (int i = 0; i < TH_SENDERS; i++) T("received %u records from peer sender %d", x.count[i], i);
  T("received %llu bytes; each sender's records in order: %s; intact: %s", (unsigned long long)x.bytes,
    yn(x.in_order), yn(x.intact));
}

/* close() in one thread while another waits in recv: on Linux the recv goes
 * on waiting (it holds the file) and gets the data sent later. */
struct cw_arg {
  int fd;
  long r;
  int e;
  unsigned char b[100];
};
static void *cw_recv(void *p) {
  struct cw_arg *a = p;
  a->r = CALL(recv(a->fd, a->b, sizeof a->b, 0), &a->e);
  return NULL;
}
static void close_wait_srv(int fd) {
  set_timeo(fd, SO_RCVTIMEO, 2000);
  struct cw_arg a = {.fd = fd};
  pthread_t t;
  pthread_create(&t, NULL, cw_recv, &a);
  sleep_ms(200);
  TR("close while another thread waits in recv", close(fd));
  side_put('c');
  pthread_join(t, NULL);
  tr_call("the waiting recv(100) (data sent 300 ms after the close)", a.r, a.e);
  struct rx r;
  rx_init(&r, 46, 0);
  if (a.r > 0) rx_add(&r, a.b, (size_t)a.r);
  T("%s", rx_verdict(&r));
  TR("recv on the closed fd", recv(fd, a.b, sizeof a.b, MSG_DONTWAIT));
  side_put('d');
}
static void close_wait_cli(int fd) {
  unsigned char b[10];
  side_get('c');
  sleep_ms(300);
  stream_fill(46, 0, b, sizeof b);
  TR("write(10)", write(fd, b, sizeof b));
  side_get('d');
  settle();
  set_timeo(fd, SO_RCVTIMEO, 2000);
  TR("read after the peer's last fd is gone", read(fd, b, sizeof b));
}

/* ---------------- passthrough (the TCP connection is upgraded meanwhile) ---------------- */

static void udp_srv(int fd) {
  (void)fd;
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(u, (struct sockaddr *)&a, sizeof a) < 0) die("bind udp: %s", strerror(errno));
  socklen_t al = sizeof a;
  getsockname(u, (struct sockaddr *)&a, &al);
  side_put_u64(ntohs(a.sin_port));
  side_get('s');
  await_event(u, POLLIN, 3000);
  settle();
  int q = -1;
  TR("ioctl(FIONREAD) (size of the next datagram)", ioctl(u, FIONREAD, &q));
  T("  %d", q);
  struct pollfd p = {.fd = u, .events = POLLIN | POLLOUT};
  TR("poll", poll(&p, 1, 0));
  T("  revents %s", evs((unsigned)p.revents));
  unsigned char b[2000];
  struct sockaddr_in from;
  for (int i = 0; i < 2; i++) {
    al = sizeof from;
    long n = TR("recvfrom(2000)", recvfrom(u, b, sizeof b, 0, (struct sockaddr *)&from, &al));
    struct rx r;
    rx_init(&r, 47, (uint64_t)i * 10000);
    if (n > 0) rx_add(&r, b, (size_t)n);
    T("  from loopback: %s; %s", yn(from.sin_addr.s_addr == htonl(INADDR_LOOPBACK)), rx_verdict(&r));
    TR("sendto(echo)", sendto(u, b, (size_t)(n > 0 ? n : 0), 0, (struct sockaddr *)&from, al));
  }
  TR("recv(50, MSG_TRUNC) of a 1000-byte datagram", recv(u, b, 50, MSG_TRUNC));
  struct iovec v = {.iov_base = b, .iov_len = 50};
  struct msghdr mh = {.msg_iov = &v, .msg_iovlen = 1};
  TR("recvmsg(50) of a 700-byte datagram", recvmsg(u, &mh, 0));
  T("  MSG_TRUNC in msg_flags: %s", yn(mh.msg_flags & MSG_TRUNC));
  TR("recv(MSG_DONTWAIT) on empty", recv(u, b, sizeof b, MSG_DONTWAIT));
  close(u);
}
static void udp_cli(int fd) {
  (void)fd;
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  a.sin_port = htons((uint16_t)side_get_u64());
  TR("connect(udp)", connect(u, (struct sockaddr *)&a, sizeof a));
  unsigned char b[2000];
  static const unsigned sz[4] = {10, 1500, 1000, 700};
  for (int i = 0; i < 4; i++) {
    stream_fill(47, (uint64_t)i * 10000, b, sz[i]);
    char label[32];
    snprintf(label, sizeof label, "send(%u)", sz[i]);
    TR(label, send(u, b, sz[i], 0));
  }
  side_put('s');
  for (int i = 0; i < 2; i++) {
    long n = TR("recv(2000) echo", recv(u, b, sizeof b, 0));
    struct rx r;
    rx_init(&r, 47, (uint64_t)i * 10000);
    if (n > 0) rx_add(&r, b, (size_t)n);
    T("  %s", rx_verdict(&r));
  }
  close(u);
}

static void unixpair_srv(int fd) {
  (void)fd;
  int sv[2];
  TR("socketpair(AF_UNIX, SOCK_STREAM)", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  unsigned char b[400];
  stream_fill(48, 0, b, 100);
  TR("write(a, 100)", write(sv[0], b, 100));
  int q = -1;
  TR("ioctl(b, FIONREAD)", ioctl(sv[1], FIONREAD, &q));
  T("  %d", q);
  trace_poll(sv[1], PALL, "b with data");
  TR("recv(b, 60, MSG_PEEK)", recv(sv[1], b + 100, 60, MSG_PEEK));
  TR("read(b, 200)", read(sv[1], b + 100, 200));
  T("  bytes equal: %s", yn(!memcmp(b, b + 100, 100)));
  TR("recv(b, MSG_DONTWAIT) on empty", recv(sv[1], b, 10, MSG_DONTWAIT));
  TR("shutdown(a, SHUT_WR)", shutdown(sv[0], SHUT_WR));
  trace_poll(sv[1], PALL, "b after a's SHUT_WR");
  TR("read(b) at EOF", read(sv[1], b, 10));
  TR("close(a)", close(sv[0]));
  int before = n_sigpipe;
  TR("write(b, 10) after a closed", write(sv[1], b, 10));
  T("  SIGPIPE delivered: %d", n_sigpipe - before);
  trace_poll(sv[1], PALL, "b after a closed");
  close(sv[1]);
  TR("socketpair(AF_UNIX, SOCK_SEQPACKET)", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
  TR("send(a, 30)", send(sv[0], b, 30, 0));
  TR("send(a, 40)", send(sv[0], b, 40, 0));
  TR("recv(b, 100)", recv(sv[1], b, 100, 0));
  TR("recv(b, 10) of 40 (truncated)", recv(sv[1], b, 10, 0));
  TR("recv(b, MSG_DONTWAIT) on empty", recv(sv[1], b, 10, MSG_DONTWAIT));
  close(sv[0]);
  close(sv[1]);
}
static void pipe_srv(int fd) {
  (void)fd;
  int p[2];
  TR("pipe", pipe(p));
  unsigned char b[400];
  stream_fill(49, 0, b, 100);
  TR("write(pipe, 100)", write(p[1], b, 100));
  int q = -1;
  TR("ioctl(FIONREAD)", ioctl(p[0], FIONREAD, &q));
  T("  %d", q);
  trace_poll(p[0], POLLIN | POLLOUT, "read end with data");
  TR("read(pipe, 200)", read(p[0], b + 100, 200));
  T("  bytes equal: %s", yn(!memcmp(b, b + 100, 100)));
  set_nonblock(p[0], true);
  TR("read(pipe) non-blocking on empty", read(p[0], b, 10));
  TR("close(write end)", close(p[1]));
  trace_poll(p[0], POLLIN, "read end after the write end closed");
  TR("read(pipe) at EOF", read(p[0], b, 10));
  close(p[0]);
  TR("pipe", pipe(p));
  TR("close(read end)", close(p[0]));
  int before = n_sigpipe;
  TR("write(pipe, 10) with the read end closed", write(p[1], b, 10));
  T("  SIGPIPE delivered: %d", n_sigpipe - before);
  close(p[1]);
}
static void idle_cli(int fd) { (void)fd; }

static const struct scen scenarios[] = {
    /* data */
    {"peek", peek_srv, peek_cli, 0},
    {"waitall", waitall_srv, waitall_cli, 0},
    {"dontwait", dontwait_srv, dontwait_cli, 0},
    {"trunc", trunc_srv, trunc_cli, 0},
    {"iov", iov_srv, iov_cli, 0},
    {"tiny-writes", tiny_srv, tiny_cli, 0},
    {"big-write", big_srv, big_cli, 0},
    {"mmsg", mmsg_srv, mmsg_cli, 0},
    {"sendfile", sendfile_srv, sendfile_cli, 0},
    {"splice", splice_srv, splice_cli, 0},
    {"chk", chk_srv, chk_cli, 0},
    /* ends */
    {"eof", eof_srv, eof_cli, 0},
    {"halfclose", halfclose_srv, halfclose_cli, 0},
    {"halfclose-rev", halfclose_rev_srv, halfclose_rev_cli, 0},
    {"shut-rd", shutrd_srv, shutrd_cli, 0},
    {"msg-more", msg_more_srv, msg_more_cli, 0},
    {"epipe", epipe_srv, epipe_cli, 0},
    {"epipe-nosignal", epipe_srv, epipe_nosig_cli, 0},
    {"linger0", linger0_srv, linger0_cli, 0},
    {"fionread", fionread_srv, fionread_cli, 0},
    {"siocoutq", siocoutq_srv, siocoutq_cli, 0},
    {"sockopts", sockopts_srv, sockopts_cli, 0},
    /* blocking */
    {"rcvtimeo", rcvtimeo_srv, rcvtimeo_cli, 0},
    {"sndtimeo", sndtimeo_srv, sndtimeo_cli, 0},
    {"nonblock-fcntl", nb_fcntl_srv, nb_fcntl_cli, 0},
    {"nonblock-fionbio", nb_fionbio_srv, nb_fionbio_cli, 0},
    {"nonblock-sockflag", nb_flag_srv, nb_flag_cli, F_NONBLOCK},
    {"eintr-norestart", eintr_norestart_srv, eintr_cli, 0},
    {"eintr-restart", eintr_restart_srv, eintr_cli, 0},
    {"eintr-restart-timeo", eintr_restart_timeo_srv, eintr_cli, 0},
    {"eintr-restart-mixed", eintr_restart_mixed_srv, eintr_cli, 0},
    {"eintr-signal-mixed", eintr_signal_mixed_srv, eintr_cli, 0},
    {"eintr-thread-mixed", eintr_thread_mixed_srv, eintr_cli, 0},
    {"eintr-poll", eintr_poll_srv, eintr_cli, 0},
    {"eintr-send", eintr_send_srv, eintr_send_cli, 0},
    {"rcvlowat", rcvlowat_srv, rcvlowat_cli, 0},
    {"rcvlowat-epoll", rcvlowat_ep_srv, rcvlowat_ep_cli, 0},
    /* readiness */
    {"poll", rd_poll_srv, readiness_cli, 0},
    {"ppoll", rd_ppoll_srv, readiness_cli, 0},
    {"select", rd_select_srv, readiness_cli, 0},
    {"pselect", rd_pselect_srv, readiness_cli, 0},
    {"poll-rdnorm", rd_pollnorm_srv, readiness_cli, 0},
    {"epoll-lt", rd_ep_lt_srv, readiness_cli, 0},
    {"epoll-in", rd_ep_in_srv, readiness_cli, 0},
    {"epoll-et", rd_ep_et_srv, readiness_cli, 0},
    {"epoll-oneshot", rd_ep_oneshot_srv, readiness_cli, 0},
    {"epoll-two-sets", rd_ep_two_srv, readiness_cli, 0},
    {"epoll-nested", rd_ep_nested_srv, readiness_cli, 0},
    {"epoll-polled", rd_ep_polled_srv, readiness_cli, 0},
    {"epoll-mixed", rd_ep_mixed_srv, readiness_cli, 0},
    {"epoll-early", rd_ep_early_srv, readiness_cli, F_EARLY_EPOLL},
    {"epoll-nested-wait", nested_wait_srv, nested_wait_cli, 0},
    {"epoll-exclusive-pwait", ep_excl_srv, ep_excl_cli, 0},
    {"writable-poll", wr_poll_srv, writable_cli, 0},
    {"writable-poll-wrnorm", wr_pollnorm_srv, writable_cli, 0},
    {"writable-select", wr_select_srv, writable_cli, 0},
    {"writable-epoll-lt", wr_ep_lt_srv, writable_cli, 0},
    {"writable-epoll-et", wr_ep_et_srv, writable_cli, 0},
    /* descriptors and processes */
    {"dup", dup_srv, dup_cli, 0},
    {"fork-child", fork_child_srv, fork_cli, 0},
    {"fork-parent", fork_parent_srv, fork_cli, 0},
    {"fork-both", fork_both_srv, fork_both_cli, 0},
    {"fork-readers-turns", fork_rd_turns_srv, fork_rd_turns_cli, 0},
    {"fork-readers-race", fork_rd_race_srv, fork_rd_race_cli, 0},
    {"fork-readers-owed", fork_rd_owed_srv, fork_rd_owed_cli, 0},
    {"fork-unattached", fork_unattached_srv, fork_rd_owed_cli, 0},
    {"fork-while-recv", fork_while_recv_srv, fork_while_recv_cli, 0},
    {"threads", threads_both, threads_both, 0},
    {"close-while-recv", close_wait_srv, close_wait_cli, 0},
    /* passthrough */
    {"udp", udp_srv, udp_cli, 0},
    {"unix-pair", unixpair_srv, idle_cli, 0},
    {"pipe", pipe_srv, idle_cli, 0},
};

/* ------------------------------------------------------------------ */
/* connection setup and warm-up                                         */

static void side_name(struct sockaddr_un *u, socklen_t *len, unsigned port) {
  memset(u, 0, sizeof *u);
  u->sun_family = AF_UNIX;
  int n = snprintf(u->sun_path + 1, sizeof u->sun_path - 1, "pipedevice-behave-%u-%u", port, (unsigned)getuid());
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void put1(int fd, char c) {
  for (;;) {
    ssize_t n = send(fd, &c, 1, MSG_NOSIGNAL);
    if (n == 1) return;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      wait_fd(fd, POLLOUT);
      continue;
    }
    die("warm-up send: %s", n < 0 ? strerror(errno) : "0");
  }
}
static char get1(int fd) {
  for (;;) {
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    if (n == 1) return c;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      wait_fd(fd, POLLIN);
      continue;
    }
    die("warm-up recv: %s", n < 0 ? strerror(errno) : "EOF");
  }
}

/* Both ends set TCP_NODELAY before the warm-up. Nagle's algorithm only
 * changes when bytes arrive (timing, which is not part of the contract), but
 * combined with delayed ACKs it makes the kernel's own traces depend on
 * timers: a write held back until an ACK that comes 40 ms to seconds later
 * (with SO_RCVLOWAT, not before the peer's exit). */
static void nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("TCP_NODELAY: %s", strerror(errno));
}

/* After the scenario: tell the harness, wait for stdin EOF (bounded), exit. */
static void finish(void) {
  printf("= end\n");
  fflush(stdout);
  struct pollfd p = {.fd = 0, .events = POLLIN};
  char buf[64];
  while (poll(&p, 1, 20000) > 0) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n <= 0) break;
  }
  exit(0);
}

static int run_server(const struct scen *s) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind: %s", strerror(errno));
  if (listen(lfd, 4) < 0) die("listen: %s", strerror(errno));
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  unsigned port = ntohs(a.sin_port);
  int sl = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un u;
  socklen_t ul;
  side_name(&u, &ul, port);
  if (bind(sl, (struct sockaddr *)&u, ul) < 0 || listen(sl, 1) < 0) die("side channel: %s", strerror(errno));
  printf("= port %u\n", port);
  fflush(stdout);
  int fd = accept4(lfd, NULL, NULL, (s->flags & F_NONBLOCK) ? SOCK_NONBLOCK : 0);
  if (fd < 0) die("accept: %s", strerror(errno));
  nodelay(fd);
  side_fd = accept(sl, NULL, NULL);
  if (side_fd < 0) die("side channel accept: %s", strerror(errno));
  close(lfd);
  close(sl);
  if (s->flags & F_EARLY_EPOLL) {
    early_ep = epoll_create1(0);
    if (ep_add(early_ep, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0x1111) < 0) die("epoll_ctl: %s", strerror(errno));
  }
  for (;;) { /* warm-up: echo until 'g' */
    char c = get1(fd);
    put1(fd, c);
    if (c == 'g') break;
  }
  s->srv(fd);
  finish();
  return 0;
}

/* "client -": the harness starts the client with the server (both pdrun
 * launches overlap) and writes "port N" on its stdin once it knows it. */
static unsigned port_from_stdin(void) {
  char line[64];
  size_t n = 0;
  while (n < sizeof line - 1) {
    ssize_t r = read(0, line + n, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) die("stdin closed before the port");
    if (line[n] == '\n') break;
    n++;
  }
  line[n] = 0;
  unsigned port = 0;
  if (sscanf(line, "port %u", &port) != 1 || port == 0 || port > 65535) die("expected \"port N\" on stdin, got %s", line);
  return port;
}

static int run_client(const struct scen *s, unsigned port) {
  if (port == 0) port = port_from_stdin();
  int fd = socket(AF_INET, SOCK_STREAM | ((s->flags & F_NONBLOCK) ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons((uint16_t)port)};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    if (errno != EINPROGRESS) die("connect: %s", strerror(errno));
    wait_fd(fd, POLLOUT);
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) die("non-blocking connect: %s", strerror(err));
  }
  nodelay(fd);
  side_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un u;
  socklen_t ul;
  side_name(&u, &ul, port);
  if (connect(side_fd, (struct sockaddr *)&u, ul) < 0) die("side channel connect: %s", strerror(errno));
  struct sockaddr_in la;
  socklen_t lal = sizeof la;
  getsockname(fd, (struct sockaddr *)&la, &lal);
  char local[64];
  addr_str(&la, local, sizeof local);
  printf("= local %s\n= ready\n", local);
  fflush(stdout);
  /* warm-up: 'w' and its echo until the harness says go */
  char line[64];
  size_t ll = 0;
  for (;;) {
    put1(fd, 'w');
    if (get1(fd) != 'w') die("warm-up: bad echo");
    struct pollfd p = {.fd = 0, .events = POLLIN};
    if (poll(&p, 1, 2) > 0) {
      ssize_t n = read(0, line + ll, sizeof line - 1 - ll);
      if (n <= 0) die("stdin closed before go");
      ll += (size_t)n;
      line[ll] = 0;
      if (strstr(line, "go\n")) break;
      if (ll >= sizeof line - 1) die("garbage on stdin");
    }
  }
  put1(fd, 'g');
  if (get1(fd) != 'g') die("warm-up: bad echo of go");
  s->cli(fd);
  finish();
  return 0;
}

static int behave_main(int argc, char **argv) {
  prog_name = "behave";
  if (argc == 2 && !strcmp(argv[1], "--list")) {
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) printf("%s\n", scenarios[i].name);
    return 0;
  }
  if (argc < 3) die("usage: behave SCENARIO server | behave SCENARIO client PORT | behave --list");
  const struct scen *s = NULL;
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
    if (!strcmp(scenarios[i].name, argv[1])) s = &scenarios[i];
  if (!s) die("unknown scenario %s (behave --list)", argv[1]);
  behave_watchdog(40);
  set_handler(SIGPIPE, on_sigpipe, SA_RESTART);
  if (!strcmp(argv[2], "server")) return run_server(s);
  if (!strcmp(argv[2], "client") && argc == 4)
    return run_client(s, strcmp(argv[3], "-") ? (unsigned)parse_size(argv[3]) : 0);
  die("usage: behave SCENARIO server | behave SCENARIO client PORT|-");
}

#endif
