/* ev_client: a single-threaded, non-blocking echo client, written like any
 * unmodified event-loop application (no knowledge of pipedevice).
 *
 *   ev_client MODE HOST PORT CONNS BYTES [--seed S] [--rounds R] [--gate] [--hold] [--timeout S]
 *
 * MODE: epoll-lt | epoll-et | poll | select.
 *
 * Opens CONNS connections with a non-blocking connect() (EINPROGRESS, the
 * completion seen as writability through MODE, then SO_ERROR), and on each
 * sends BYTES of the deterministic stream of seed S*1000003+i (common.h) in
 * writes of pseudo-random sizes 1 B..64 KiB, while reading the echo back
 * concurrently in reads of pseudo-random sizes and verifying every byte.
 * With --rounds R (default 1) each connection sends its BYTES in R rounds and
 * starts a round only once the previous one has fully come back, so that the
 * later rounds run on a connection both ends have long set up.
 * With --gate (and R >= 2) the client stops once the first round came back on
 * every connection, prints "gate LOCAL,LOCAL,..." on stdout, and keeps running
 * its event loop, with stdin added to it, until a line arrives on stdin; then
 * the other rounds follow. A test uses the gate to let the connections be
 * upgraded while idle in the event loop before the rest of the data flows.
 * Sockets are made non-blocking by socket(SOCK_NONBLOCK) or fcntl, and the I/O
 * calls rotate over write/send/writev and read/recv/readv by connection.
 *
 * Without --hold each connection does shutdown(SHUT_WR) once all is sent and
 * must then read exactly BYTES and EOF (the server closes after echoing). With
 * --hold the connections stay open once every echo is verified; the JSON line
 * is printed then, and the client waits for EOF on stdin before it shuts them
 * down and checks each ends with EOF after the last byte.
 *
 * Prints one JSON line on stdout:
 *   {"ok":true,"mode":..,"conns":N,"bytes":BYTES,"total":N*BYTES,"rounds":R,"seconds":..,
 *    "locals":["127.0.0.1:p",..],"peer":"127.0.0.1:P"}
 * Any failure: a message on stderr, status 1 (status 3 from the watchdog,
 * default 120 s).
 *
 * epoll-lt registers EPOLLIN (and EPOLLOUT while it has bytes to send; only
 * EPOLLOUT while connecting), one read or write per event. epoll-et registers
 * EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET once and reads and writes until EAGAIN.
 */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/uio.h>

#define IO_MAX (64 * 1024)

enum mode { M_EPOLL_LT, M_EPOLL_ET, M_POLL, M_SELECT, M_COUNT };
static const char *mode_names[M_COUNT] = {"epoll-lt", "epoll-et", "poll", "select"};

enum st { CONNECTING, OPEN, DONE };

struct cconn {
  int fd;
  int idx;
  enum st st;
  uint64_t seed;
  uint64_t sent, rcvd;
  uint64_t limit; /* end of the current round: send up to here */
  bool wr_shut;
  uint32_t reg;
  struct rng rng;
  char local[64];
};

static enum mode mode;
static int epfd = -1;
static struct cconn *cs;
static int nconns, ndone, nverified;
static uint64_t bytes, round_size;
static bool hold, holding_done; /* holding_done: stdin EOF seen, shut down */
static bool gate, gate_open, gate_shown; /* --gate: stop after round 1 until a line on stdin */
static int nround1; /* connections whose first round came back */
#define STDIN_TAG 0xfffffffeu /* epoll data of stdin while at the gate */
static unsigned char wbuf[IO_MAX], rbuf[IO_MAX], scratch[VERIFY_SCRATCH];

static bool edge(void) { return mode == M_EPOLL_ET; }

__attribute__((format(printf, 2, 3), noreturn)) static void fail(struct cconn *c, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "ev_client: %s: conn %d (%s, fd %d, sent %llu, received %llu of %llu): ", mode_names[mode], c->idx,
          c->local, c->fd, (unsigned long long)c->sent, (unsigned long long)c->rcvd, (unsigned long long)bytes);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static size_t io_size(struct cconn *c) {
  uint64_t top = 1ull << rng_range(&c->rng, 0, 16);
  return (size_t)rng_range(&c->rng, 1, top > IO_MAX ? IO_MAX : top);
}

static uint32_t want(struct cconn *c) {
  if (c->st == CONNECTING) return EPOLLOUT;
  if (c->st == DONE) return 0;
  uint32_t ev = EPOLLIN;
  if (c->sent < c->limit) ev |= EPOLLOUT;
  return ev;
}

static void update_interest(struct cconn *c) {
  if (mode != M_EPOLL_LT || c->st == DONE) return;
  uint32_t w = want(c);
  if (w == c->reg) return;
  struct epoll_event ev = {.events = w, .data.u32 = (uint32_t)c->idx};
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) fail(c, "epoll_ctl MOD: %s", strerror(errno));
  c->reg = w;
}

static void finish_sending(struct cconn *c) {
  if (c->sent == bytes && !c->wr_shut && (!hold || holding_done)) {
    if (shutdown(c->fd, SHUT_WR) < 0) fail(c, "shutdown(SHUT_WR): %s", strerror(errno));
    c->wr_shut = true;
  }
}

static void conn_done(struct cconn *c) {
  if (close(c->fd) < 0) fail(c, "close: %s", strerror(errno));
  c->st = DONE;
  ndone++;
}

/* The previous round came back: allow the next one to be sent. */
static void next_round(struct cconn *c) { c->limit = c->limit + round_size < bytes ? c->limit + round_size : bytes; }

/* Returns true when it made progress and may be called again (edge-triggered). */
static bool do_send(struct cconn *c) {
  if (c->sent >= c->limit) return false;
  size_t n = io_size(c);
  if (n > c->limit - c->sent) n = (size_t)(c->limit - c->sent);
  stream_fill(c->seed, c->sent, wbuf, n);
  ssize_t r;
  switch (c->idx % 3) {
    case 0: r = write(c->fd, wbuf, n); break;
    case 1: r = send(c->fd, wbuf, n, MSG_NOSIGNAL); break;
    default: {
      size_t a = n / 2;
      struct iovec v[2] = {{wbuf, a}, {wbuf + a, n - a}};
      r = a ? writev(c->fd, v, 2) : writev(c->fd, v + 1, 1);
    }
  }
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    fail(c, "write of %zu: %s", n, strerror(errno));
  }
  if (r == 0) fail(c, "write of %zu returned 0", n);
  c->sent += (uint64_t)r;
  finish_sending(c);
  return true;
}

static bool do_recv(struct cconn *c) {
  size_t n = io_size(c);
  ssize_t r;
  switch ((c->idx / 3) % 3) {
    case 0: r = read(c->fd, rbuf, n); break;
    case 1: r = recv(c->fd, rbuf, n, 0); break;
    default: {
      size_t a = n / 3;
      struct iovec v[2] = {{rbuf, a}, {rbuf + a, n - a}};
      r = a ? readv(c->fd, v, 2) : readv(c->fd, v + 1, 1);
    }
  }
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    fail(c, "read: %s", strerror(errno));
  }
  if (r == 0) {
    if (c->rcvd < bytes) fail(c, "EOF before all bytes came back");
    if (!c->wr_shut) fail(c, "EOF although the connection was not shut down");
    conn_done(c);
    return false;
  }
  if (c->rcvd + (uint64_t)r > bytes) fail(c, "%zd bytes more than were sent", (ssize_t)(c->rcvd + (uint64_t)r - bytes));
  long bad = stream_check(c->seed, c->rcvd, rbuf, (size_t)r, scratch);
  if (bad >= 0) {
    unsigned char exp;
    stream_fill(c->seed, c->rcvd + (uint64_t)bad, &exp, 1);
    fail(c, "byte %llu of the echo is 0x%02x, expected 0x%02x (read of %zd at offset %llu)",
         (unsigned long long)(c->rcvd + (uint64_t)bad), rbuf[bad], exp, r, (unsigned long long)c->rcvd);
  }
  c->rcvd += (uint64_t)r;
  if (c->rcvd == bytes) nverified++;
  if (c->rcvd == c->limit && c->limit < bytes) { /* the round came back: the next one */
    if (c->limit == round_size) nround1++;
    if (gate && !gate_open) return false; /* round 2 waits for the gate */
    next_round(c);
  }
  return true;
}

static void on_connected(struct cconn *c) {
  int err = 0;
  socklen_t l = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) fail(c, "getsockopt(SO_ERROR): %s", strerror(errno));
  if (err) fail(c, "connect: %s", strerror(err));
  struct sockaddr_in a;
  socklen_t al = sizeof a;
  if (getsockname(c->fd, (struct sockaddr *)&a, &al) < 0) fail(c, "getsockname: %s", strerror(errno));
  addr_str(&a, c->local, sizeof c->local);
  c->st = OPEN;
}

/* A readiness report for c. */
static void service(struct cconn *c, bool rd, bool wr, bool err) {
  if (c->st == DONE) return;
  if (c->st == CONNECTING) {
    if (!wr && !err) {
      if (rd) fail(c, "readable before the connect completed");
      return;
    }
    on_connected(c);
    if (bytes == 0) finish_sending(c);
  }
  if (edge()) {
    /* until EAGAIN both ways; a finished round lets more be sent at once */
    bool more = true;
    while (more && c->st != DONE) {
      more = false;
      while (do_send(c)) more = true;
      while (c->st != DONE && do_recv(c)) more = true;
    }
  } else {
    if (wr || err) do_send(c);
    if (rd || err) do_recv(c);
  }
  if (c->st != DONE) update_interest(c);
}

static void hold_then_shutdown(void) {
  /* every echo verified and the connections are open: report, then wait */
  char buf[256];
  while (read(0, buf, sizeof buf) > 0) {
  }
  holding_done = true;
  for (int i = 0; i < nconns; i++) finish_sending(&cs[i]);
}

/* Every first round came back: say so (with the local addresses) and watch stdin. */
static void show_gate(void) {
  gate_shown = true;
  printf("gate ");
  for (int i = 0; i < nconns; i++) printf("%s%s", i ? "," : "", cs[i].local);
  printf("\n");
  fflush(stdout);
  if (epfd >= 0) {
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = STDIN_TAG};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &e) < 0) die("epoll_ctl ADD stdin: %s", strerror(errno));
  }
}

/* stdin is readable at the gate: one line opens it, EOF is an error. */
static void open_gate(void) {
  char buf[256];
  ssize_t r = read(0, buf, sizeof buf);
  if (r < 0 && errno == EINTR) return;
  if (r <= 0) die("stdin %s at the gate", r == 0 ? "closed" : strerror(errno));
  gate_open = true;
  if (epfd >= 0 && epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL) < 0) die("epoll_ctl DEL stdin: %s", strerror(errno));
  for (int i = 0; i < nconns; i++) {
    struct cconn *c = &cs[i];
    if (c->st == DONE || c->limit >= bytes) continue;
    next_round(c);
    service(c, false, true, false); /* nothing else would start the round under ET */
  }
}

static bool at_gate(void) { return gate && !gate_open && gate_shown; }

static void loop(void) {
  struct pollfd *p = calloc((size_t)nconns + 1, sizeof *p);
  int *pidx = calloc((size_t)nconns + 1, sizeof *pidx);
  if (!p || !pidx) die("out of memory");
  while (ndone < nconns) {
    if (hold && !holding_done && nverified == nconns) return; /* the caller reports and holds */
    if (gate && !gate_open && !gate_shown && nround1 == nconns) show_gate();
    if (mode == M_EPOLL_LT || mode == M_EPOLL_ET) {
      struct epoll_event evs[32];
      int n = epoll_wait(epfd, evs, 32, 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("epoll_wait: %s", strerror(errno));
      }
      for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        if (evs[i].data.u32 == STDIN_TAG && at_gate()) {
          open_gate();
          continue;
        }
        if (evs[i].data.u32 >= (uint32_t)nconns) die("epoll_wait returned unknown data %u", evs[i].data.u32);
        struct cconn *c = &cs[evs[i].data.u32];
        if (c->st == DONE) fail(c, "event 0x%x after the connection was closed", e);
        bool err = e & (EPOLLERR | EPOLLHUP);
        service(c, e & (EPOLLIN | EPOLLRDHUP), e & EPOLLOUT, err);
      }
    } else if (mode == M_POLL) {
      int k = 0;
      for (int i = 0; i < nconns; i++) {
        struct cconn *c = &cs[i];
        if (c->st == DONE) continue;
        uint32_t w = want(c);
        short ev = (short)(((w & EPOLLIN) ? POLLIN : 0) | ((w & EPOLLOUT) ? POLLOUT : 0));
        pidx[k] = i;
        p[k++] = (struct pollfd){.fd = c->fd, .events = ev};
      }
      if (at_gate()) {
        pidx[k] = -1;
        p[k++] = (struct pollfd){.fd = 0, .events = POLLIN};
      }
      int n = poll(p, (nfds_t)k, 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("poll: %s", strerror(errno));
      }
      for (int j = 0; j < k && n > 0; j++) {
        short re = p[j].revents;
        if (!re) continue;
        if (pidx[j] < 0) {
          open_gate();
          continue;
        }
        struct cconn *c = &cs[pidx[j]];
        if (re & POLLNVAL) fail(c, "POLLNVAL");
        if ((re & POLLOUT) && !(p[j].events & POLLOUT)) fail(c, "POLLOUT reported without being asked for");
        service(c, re & POLLIN, re & POLLOUT, re & (POLLERR | POLLHUP));
      }
    } else {
      fd_set r, w;
      FD_ZERO(&r);
      FD_ZERO(&w);
      int maxfd = -1;
      for (int i = 0; i < nconns; i++) {
        struct cconn *c = &cs[i];
        if (c->st == DONE) continue;
        uint32_t x = want(c);
        if (x & EPOLLIN) FD_SET(c->fd, &r);
        if (x & EPOLLOUT) FD_SET(c->fd, &w);
        if (c->fd > maxfd) maxfd = c->fd;
      }
      bool stdin_watched = at_gate();
      if (stdin_watched) {
        FD_SET(0, &r);
        if (maxfd < 0) maxfd = 0;
      }
      struct timeval tv = {1, 0};
      int n = select(maxfd + 1, &r, &w, NULL, &tv);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("select: %s", strerror(errno));
      }
      for (int i = 0; i < nconns && n > 0; i++) {
        struct cconn *c = &cs[i];
        if (c->st == DONE) continue;
        bool rd = FD_ISSET(c->fd, &r), wr = FD_ISSET(c->fd, &w);
        if (rd || wr) service(c, rd, wr, false);
      }
      if (stdin_watched && FD_ISSET(0, &r)) open_gate();
    }
  }
  free(p);
  free(pidx);
}

int main(int argc, char **argv) {
  prog_name = "ev_client";
  const char *pos[5];
  int npos = 0;
  uint64_t seed = 1, rounds = 1;
  unsigned timeout = 120;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--hold")) hold = true;
    else if (!strcmp(argv[i], "--gate")) gate = true;
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)parse_size(argv[++i]);
    else if (npos < 5 && argv[i][0] != '-') pos[npos++] = argv[i];
    else die("bad argument %s", argv[i]);
  }
  if (npos != 5) die("usage: ev_client MODE HOST PORT CONNS BYTES [--seed S] [--rounds R] [--gate] [--hold] [--timeout S]");
  mode = M_COUNT;
  for (int m = 0; m < M_COUNT; m++)
    if (!strcmp(pos[0], mode_names[m])) mode = (enum mode)m;
  if (mode == M_COUNT) die("unknown mode %s (epoll-lt, epoll-et, poll, select)", pos[0]);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)parse_size(pos[2]))};
  if (inet_pton(AF_INET, pos[1], &sa.sin_addr) != 1) die("bad IPv4 address %s", pos[1]);
  nconns = (int)parse_size(pos[3]);
  bytes = parse_size(pos[4]);
  if (nconns <= 0) die("CONNS must be positive");
  if (rounds == 0) die("--rounds must be positive");
  round_size = (bytes + rounds - 1) / rounds;
  if (gate && (rounds < 2 || round_size >= bytes)) die("--gate needs at least two rounds of data");
  if (timeout) watchdog(timeout);
  signal(SIGPIPE, SIG_IGN);

  cs = calloc((size_t)nconns, sizeof *cs);
  if (!cs) die("out of memory");
  if (mode == M_EPOLL_LT || mode == M_EPOLL_ET) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  }
  double t0 = now_s();
  for (int i = 0; i < nconns; i++) {
    struct cconn *c = &cs[i];
    c->idx = i;
    c->seed = seed * 1000003ULL + (uint64_t)i;
    c->limit = round_size < bytes ? round_size : bytes;
    rng_seed(&c->rng, c->seed ^ 0x5bd1e995);
    snprintf(c->local, sizeof c->local, "?");
    c->fd = socket(AF_INET, SOCK_STREAM | (i % 2 ? 0 : SOCK_NONBLOCK), 0);
    if (c->fd < 0) die("socket: %s", strerror(errno));
    if (mode == M_SELECT && c->fd >= FD_SETSIZE) die("fd %d >= FD_SETSIZE: too many connections for select", c->fd);
    if (i % 2) {
      int fl = fcntl(c->fd, F_GETFL);
      if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl(O_NONBLOCK): %s", strerror(errno));
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
      on_connected(c); /* loopback may complete at once */
    } else if (errno != EINPROGRESS) {
      die("connect %s:%s: %s", pos[1], pos[2], strerror(errno));
    }
    if (mode == M_EPOLL_LT || mode == M_EPOLL_ET) {
      uint32_t ev = mode == M_EPOLL_ET ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : want(c);
      struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)i};
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e) < 0) die("epoll_ctl ADD: %s", strerror(errno));
      c->reg = ev;
    }
  }
  loop();
  double secs = now_s() - t0;
  if (hold && !holding_done) {
    if (nverified != nconns) die("internal: holding with %d of %d verified", nverified, nconns);
  } else if (nverified != nconns) {
    die("internal: %d of %d verified", nverified, nconns);
  }
  printf("{\"ok\":true,\"mode\":\"%s\",\"conns\":%d,\"bytes\":%llu,\"total\":%llu,\"rounds\":%llu,\"seconds\":%.3f,"
         "\"peer\":\"%s:%s\",\"locals\":[",
         mode_names[mode], nconns, (unsigned long long)bytes, (unsigned long long)bytes * (unsigned long long)nconns,
         (unsigned long long)rounds, secs, pos[1], pos[2]);
  for (int i = 0; i < nconns; i++) printf("%s\"%s\"", i ? "," : "", cs[i].local);
  printf("]}\n");
  fflush(stdout);
  if (hold) {
    hold_then_shutdown();
    loop(); /* every connection must now end with EOF after its last byte */
  }
  return 0;
}
