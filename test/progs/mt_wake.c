/* mt_wake: one connection, two threads of one process waiting on it at once:
 * thread A in a blocking call, thread B in a readiness call. A wake-up that A
 * consumes must not be lost for B (issue 3: the blocking waiter used to drain
 * the eventfd doorbell, and the kernel then drops the edge-triggered event
 * B's epoll had collected).
 *
 *   mt_wake MODE [--rounds N] [--timeout S] [--no-bias]
 *
 * MODE:
 *   rx-epoll-et, rx-epoll-lt, rx-poll   A blocks in recv(1 byte); B waits for
 *       EPOLLIN (edge- or level-triggered) or POLLIN. The peer then sends 2
 *       bytes at once: A takes one and returns, and one is left that B must
 *       be told about (as kernel TCP tells it), then B reads it.
 *   tx-epoll-et, tx-epoll-lt, tx-poll   the socket's send side is filled until
 *       EAGAIN; A blocks in send(1 byte); B waits for EPOLLOUT / POLLOUT. The
 *       peer then reads exactly what was filled, in one call: A's byte goes
 *       out, and there is room left that B must be told about.
 *
 * The process listens on 127.0.0.1:0 and forks the peer, which connects; the
 * peer takes its orders on a Unix socketpair (never the object under test).
 * Protocol with the harness: prints "= local ADDR" (the peer's end) and
 * "= ready", then echoes 1 byte through the peer again and again (so that both
 * shims attach and switch both directions) until it reads "go" on stdin; then
 * runs the rounds and prints one JSON line:
 *   {"ok":..,"mode":..,"rounds":..,"done":..,"stuck":..,"error":..,"biased":..}
 * and exits 0 when ok, 1 otherwise.
 *
 * Each round: the main thread starts A and B, waits until each sleeps in a
 * blocking system call (/proc/self/task/TID/stat and .../syscall) or has
 * returned, then orders the peer to send (rx) or to read (tx), and gives A and
 * B 5 s to return. One that does not is reported as stuck (the lost wake-up).
 * To make the order deterministic where it can (the losing order is "A runs
 * first"), A and B are pinned to one CPU, B runs SCHED_IDLE, and A keeps that
 * CPU busy for 20 ms after its call returns; "biased" says whether that was
 * possible (--no-bias: not tried). This only orders the two threads; every assertion is about what
 * the calls return, never how long they take.
 *
 * Bounded by a watchdog (default 60 s). */
#include "common.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define SEED 0x6d74776bULL
#define ROUND_LIMIT_S 5

enum kind { K_EPOLL_ET, K_EPOLL_LT, K_POLL };

static bool tx_mode;
static enum kind kind;
static int sock = -1, ep = -1;
static int cpu_ab = -1; /* the CPU A and B share, -1 when not pinned */
static bool biased;

struct waiter {
  pthread_t th;
  volatile pid_t tid;
  volatile int done; /* 1 returned, -1 failed */
  unsigned char byte;
  char err[160];
};
static struct waiter A, B;

static void pin_self(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) < 0) biased = false;
}

static void busy_ms(unsigned ms) {
  uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
  while (now_ns() < end) {
  }
}

static void *run_a(void *arg) {
  (void)arg;
  A.tid = (pid_t)syscall(SYS_gettid);
  pin_self(cpu_ab);
  ssize_t r;
  if (tx_mode) {
    unsigned char b = A.byte;
    r = send(sock, &b, 1, MSG_NOSIGNAL);
  } else {
    r = recv(sock, &A.byte, 1, 0);
  }
  if (r != 1) {
    snprintf(A.err, sizeof A.err, "A: %s returned %zd (%s)", tx_mode ? "send" : "recv", r, r < 0 ? strerror(errno) : "EOF");
    A.done = -1;
    return NULL;
  }
  if (biased) busy_ms(20); /* B (SCHED_IDLE, same CPU) runs only after this */
  A.done = 1;
  return NULL;
}

static void *run_b(void *arg) {
  (void)arg;
  B.tid = (pid_t)syscall(SYS_gettid);
  pin_self(cpu_ab);
  if (cpu_ab >= 0) {
    struct sched_param sp = {.sched_priority = 0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0) biased = false;
  }
  const uint32_t want = tx_mode ? EPOLLOUT : EPOLLIN;
  for (;;) {
    uint32_t got;
    if (kind == K_POLL) {
      struct pollfd p = {.fd = sock, .events = (short)want};
      int n = poll(&p, 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1) {
        snprintf(B.err, sizeof B.err, "B: poll returned %d (%s)", n, strerror(errno));
        B.done = -1;
        return NULL;
      }
      got = (uint32_t)(unsigned short)p.revents;
    } else {
      struct epoll_event ev;
      int n = epoll_wait(ep, &ev, 1, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1) {
        snprintf(B.err, sizeof B.err, "B: epoll_wait returned %d (%s)", n, strerror(errno));
        B.done = -1;
        return NULL;
      }
      got = ev.events;
    }
    if (got & (EPOLLERR | EPOLLHUP)) {
      snprintf(B.err, sizeof B.err, "B: error event 0x%x", got);
      B.done = -1;
      return NULL;
    }
    if (!(got & want)) continue;
    if (tx_mode) break; /* told writable: that is all B waits for */
    ssize_t r = recv(sock, &B.byte, 1, MSG_DONTWAIT);
    if (r == 1) break;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue; /* A took it: wait again */
    snprintf(B.err, sizeof B.err, "B: recv returned %zd (%s)", r, r < 0 ? strerror(errno) : "EOF");
    B.done = -1;
    return NULL;
  }
  B.done = 1;
  return NULL;
}

/* Is thread tid asleep in a system call that can block on the socket? */
static bool asleep(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ' || p[2] != 'S') return false;
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  f = fopen(path, "r");
  if (!f) return false;
  long nr = -2;
  if (fscanf(f, "%ld", &nr) != 1) nr = -2;
  fclose(f);
  static const long waits[] = {SYS_poll, SYS_ppoll, SYS_epoll_wait, SYS_epoll_pwait, SYS_recvfrom, SYS_recvmsg,
                               SYS_sendto, SYS_sendmsg, SYS_read, SYS_write, SYS_select, SYS_pselect6,
#ifdef SYS_epoll_pwait2
                               SYS_epoll_pwait2,
#endif
  };
  for (size_t i = 0; i < sizeof waits / sizeof waits[0]; i++)
    if (nr == waits[i]) return true;
  return false;
}

static void report(bool ok, const char *mode, unsigned rounds, unsigned done, const char *stuck, const char *error) {
  printf("{\"ok\":%s,\"mode\":\"%s\",\"rounds\":%u,\"done\":%u,\"stuck\":\"%s\",\"error\":\"%s\",\"biased\":%s}\n",
         ok ? "true" : "false", mode, rounds, done, stuck, error, biased ? "true" : "false");
  fflush(stdout);
}

/* ---- the peer (the fork child) ---- */

static int peer_main(int port, int ctl) {
  prog_name = "mt_wake peer";
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect: %s", strerror(errno));
  for (;;) { /* warm-up echo, until 'g' */
    unsigned char b;
    if (read_full(fd, &b, 1, 1) != 1) die("warm-up read: %s", strerror(errno));
    if (write_all(fd, &b, 1, 1) < 0) die("warm-up write: %s", strerror(errno));
    if (b == 'g') break;
  }
  uint64_t sent = 0, got = 0;
  static unsigned char buf[8 << 20], scratch[VERIFY_SCRATCH];
  for (;;) {
    char cmd;
    uint64_t n = 0;
    if (read_full(ctl, &cmd, 1, 0) != 1) die("order channel closed");
    if (cmd == 'S') { /* rx round: 2 bytes in one send */
      unsigned char two[2];
      stream_fill(SEED, sent, two, 2);
      if (write_all(fd, two, 2, 1) < 0) die("send: %s", strerror(errno));
      sent += 2;
      continue;
    }
    if (read_full(ctl, &n, sizeof n, 0) != (ssize_t)sizeof n) die("order channel closed");
    /* 'R': read exactly n bytes (one recv when the ring holds them all);
     * 'E': read up to a total of n, then answer on ctl */
    if (cmd == 'E') n -= got;
    while (n > 0) {
      size_t want = n < sizeof buf ? (size_t)n : sizeof buf;
      ssize_t r = recv(fd, buf, want, 0);
      if (r <= 0) die("recv: %s", r < 0 ? strerror(errno) : "EOF");
      long bad = stream_check(SEED, got, buf, (size_t)r, scratch);
      if (bad >= 0) die("byte %llu differs from what was sent", (unsigned long long)(got + (uint64_t)bad));
      got += (uint64_t)r;
      n -= (uint64_t)r;
    }
    if (cmd == 'E') {
      char ok = 'k';
      if (write_all(ctl, &ok, 1, 0) < 0) die("ctl: %s", strerror(errno));
      close(fd);
      return 0;
    }
  }
}

int main(int argc, char **argv) {
  prog_name = "mt_wake";
  const char *mode = NULL;
  unsigned rounds = 10, timeout = 60;
  bool no_bias = false;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = (unsigned)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--no-bias")) no_bias = true;
    else if (!mode && argv[i][0] != '-') mode = argv[i];
    else die("bad argument %s", argv[i]);
  }
  if (!mode) die("usage: mt_wake MODE [--rounds N] [--timeout S] [--no-bias]");
  if (!strncmp(mode, "rx-", 3)) tx_mode = false;
  else if (!strncmp(mode, "tx-", 3)) tx_mode = true;
  else die("unknown mode %s", mode);
  const char *k = mode + 3;
  if (!strcmp(k, "epoll-et")) kind = K_EPOLL_ET;
  else if (!strcmp(k, "epoll-lt")) kind = K_EPOLL_LT;
  else if (!strcmp(k, "poll")) kind = K_POLL;
  else die("unknown mode %s", mode);
  if (timeout) watchdog(timeout);

  /* CPUs: A and B on the first allowed one, the peer on another */
  cpu_set_t allowed;
  int cpu_peer = -1;
  if (!no_bias && sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) >= 2) {
    for (int c = 0; c < CPU_SETSIZE; c++) {
      if (!CPU_ISSET(c, &allowed)) continue;
      if (cpu_ab < 0) cpu_ab = c;
      else if (cpu_peer < 0) cpu_peer = c;
    }
    biased = true;
  }

  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1) < 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) < 0)
    die("listen: %s", strerror(errno));
  int ctl[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, ctl) < 0) die("socketpair: %s", strerror(errno));
  fflush(stdout);
  pid_t child = fork();
  if (child < 0) die("fork: %s", strerror(errno));
  if (child == 0) {
    close(ctl[0]);
    close(ls);
    if (cpu_peer >= 0) pin_self(cpu_peer);
    _exit(peer_main(ntohs(sa.sin_port), ctl[1]));
  }
  close(ctl[1]);
  struct sockaddr_in pa;
  socklen_t pal = sizeof pa;
  sock = accept(ls, (struct sockaddr *)&pa, &pal);
  if (sock < 0) die("accept: %s", strerror(errno));
  close(ls);
  if (kind != K_POLL) {
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = (tx_mode ? EPOLLOUT : EPOLLIN) | (kind == K_EPOLL_ET ? EPOLLET : 0u), .data.u64 = 7};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sock, &ev) < 0) die("epoll: %s", strerror(errno));
  }
  char local[64];
  addr_str(&pa, local, sizeof local);
  printf("= local %s\n= ready\n", local);
  fflush(stdout);

  /* warm-up: 1-byte echoes until "go" */
  for (;;) {
    struct pollfd in = {.fd = 0, .events = POLLIN};
    bool go = false;
    if (poll(&in, 1, 0) == 1) {
      char line[32];
      if (!fgets(line, sizeof line, stdin)) die("stdin closed before go");
      go = !strcmp(line, "go\n");
    }
    unsigned char b = go ? 'g' : 'w', e;
    if (write_all(sock, &b, 1, 1) < 0 || read_full(sock, &e, 1, 1) != 1 || e != b) die("warm-up echo failed");
    if (go) break;
    usleep(2000);
  }
  /* B's edge-triggered set saw the warm-up: collect what it reported, so a
   * round starts clean (a level-triggered one reports the state each time) */
  if (kind == K_EPOLL_ET) {
    struct epoll_event ev[4];
    while (epoll_wait(ep, ev, 4, 0) > 0) {
    }
  }

  uint64_t sent = 0, ordered = 0; /* tx: bytes written; bytes the peer was told to read */
  uint64_t received = 0;          /* rx: bytes read */
  static unsigned char fill[256 << 10];
  char stuck[16] = "", error[200] = "";
  unsigned done = 0;
  for (unsigned r = 0; r < rounds; r++) {
    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    if (tx_mode) { /* fill the send side until EAGAIN */
      for (;;) {
        stream_fill(SEED, sent, fill, sizeof fill);
        ssize_t n = send(sock, fill, sizeof fill, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) die("fill: %s", n < 0 ? strerror(errno) : "0");
        sent += (uint64_t)n;
      }
      stream_fill(SEED, sent, &A.byte, 1); /* A's byte, next in the stream */
    }
    if (pthread_create(&A.th, NULL, run_a, NULL) || pthread_create(&B.th, NULL, run_b, NULL)) die("pthread_create");
    /* both asleep (or already back) before the peer moves */
    double t0 = now_s();
    while (!(A.tid && (A.done || asleep(A.tid)) && B.tid && (B.done || asleep(B.tid)))) {
      if (now_s() - t0 > ROUND_LIMIT_S) die("round %u: the threads never went to sleep", r);
      usleep(1000);
    }
    usleep(2000);
    char cmd = tx_mode ? 'R' : 'S';
    uint64_t n = sent - ordered; /* tx: exactly what was filled, not A's byte */
    if (write_all(ctl[0], &cmd, 1, 0) < 0 || (tx_mode && write_all(ctl[0], &n, sizeof n, 0) < 0)) die("ctl: %s", strerror(errno));
    ordered += n;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ROUND_LIMIT_S;
    bool a_ok = pthread_timedjoin_np(A.th, NULL, &dl) == 0;
    bool b_ok = pthread_timedjoin_np(B.th, NULL, &dl) == 0;
    if (!a_ok || !b_ok) {
      snprintf(stuck, sizeof stuck, "%s", !a_ok && !b_ok ? "A+B" : !a_ok ? "A" : "B");
      snprintf(error, sizeof error, "round %u: thread %s not back %d s after the peer %s", r, stuck, ROUND_LIMIT_S,
               tx_mode ? "made room" : "sent");
      break;
    }
    if (A.done < 0 || B.done < 0) {
      snprintf(error, sizeof error, "round %u: %s", r, A.done < 0 ? A.err : B.err);
      break;
    }
    if (tx_mode) {
      sent += 1;
    } else {
      unsigned char two[2];
      stream_fill(SEED, received, two, 2);
      if (!((A.byte == two[0] && B.byte == two[1]) || (A.byte == two[1] && B.byte == two[0]))) {
        snprintf(error, sizeof error, "round %u: the two bytes read are not the two sent", r);
        break;
      }
      received += 2;
    }
    done++;
  }
  bool ok = done == rounds;
  if (ok) { /* the peer reads the rest and checks every byte */
    char cmd = 'E', ans = 0;
    if (write_all(ctl[0], &cmd, 1, 0) < 0 || write_all(ctl[0], &sent, sizeof sent, 0) < 0 || read_full(ctl[0], &ans, 1, 0) != 1 ||
        ans != 'k') {
      ok = false;
      snprintf(error, sizeof error, "the peer did not confirm the byte stream");
    }
    int st = 0;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      ok = false;
      snprintf(error, sizeof error, "the peer failed (status 0x%x)", st);
    }
  }
  report(ok, mode, rounds, done, stuck, error);
  if (!ok) {
    kill(child, SIGKILL);
    _exit(1);
  }
  return 0;
}
