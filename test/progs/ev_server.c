/* ev_server: a single-threaded, non-blocking echo server written the way the
 * event loops of real servers are (redis, nginx, libevent users), with no
 * knowledge of pipedevice.
 *
 *   ev_server --mode MODE [--port P] [--max-conns N] [--threads T] [--timeout S] [--verbose]
 *
 * Listens on 127.0.0.1:P (0 = ephemeral, the default) and prints exactly
 * "port <N>\n" on stdout once listening; nothing else goes to stdout. Serves
 * any number of clients at once, echoing every byte: each connection keeps a
 * pending-output buffer, a partial write leaves the rest pending until the
 * socket is writable again, and reading stops while more than HIGH bytes are
 * pending (back-pressure) until the buffer drains below LOW. A connection
 * closes once its client's EOF was read and everything was echoed. Exits with
 * status 0 on SIGTERM, or after N connections ended with --max-conns (status 1
 * if any connection failed: every failure is one line on stderr), or status 3
 * after --timeout seconds (default 300: every test program is bounded).
 *
 * MODE selects the readiness API:
 *   epoll-lt       epoll_wait, level-triggered; EPOLLOUT is registered only
 *                  while output is pending (EPOLL_CTL_MOD), EPOLLIN|EPOLLRDHUP
 *                  only while reading; one read or write per event
 *   epoll-et       EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET registered once; reads
 *                  until EAGAIN, writes until EAGAIN (or nothing pending), and
 *                  resumes a read stopped by back-pressure once output drains;
 *                  at most 4 events per epoll_wait
 *   epoll-oneshot  EPOLLONESHOT, re-armed with EPOLL_CTL_MOD after every
 *                  event; at most 3 events per epoll_wait; EPOLL_CTL_DEL
 *                  before close
 *   epoll-pwait    as epoll-lt through epoll_pwait: SIGTERM is blocked except
 *                  inside epoll_pwait (the sigmask argument); EPOLL_CTL_DEL
 *                  before close
 *   poll           poll() over a pollfd array rebuilt every round
 *   ppoll          ppoll() with SIGTERM unblocked only inside it
 *   select         select() (connections with fd >= FD_SETSIZE are refused)
 *
 * --threads T (epoll modes only; default 1) runs T event loops, one per thread,
 * each with its own epoll set holding the shared listening socket with
 * EPOLLEXCLUSIVE (the nginx worker model); a connection stays with the thread
 * that accepted it.
 *
 * Connection k is accepted in one of three ways, rotating with k and the mode:
 * accept4(SOCK_NONBLOCK), accept() + fcntl(F_SETFL, O_NONBLOCK), accept() +
 * ioctl(FIONBIO). Its I/O calls rotate too: read()/write(), recv()/send(),
 * readv()/writev(). Read sizes are pseudo-random in 1 B..64 KiB.
 */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/uio.h>

#define HIGH (1024 * 1024)
#define LOW (256 * 1024)
#define READ_MAX (64 * 1024)

enum mode { M_EPOLL_LT, M_EPOLL_ET, M_EPOLL_ONESHOT, M_EPOLL_PWAIT, M_POLL, M_PPOLL, M_SELECT, M_COUNT };
static const char *mode_names[M_COUNT] = {"epoll-lt", "epoll-et", "epoll-oneshot", "epoll-pwait", "poll", "ppoll", "select"};
static const char *accept_names[3] = {"accept4(SOCK_NONBLOCK)", "accept+fcntl(O_NONBLOCK)", "accept+ioctl(FIONBIO)"};
static const char *io_names[3] = {"read/write", "recv/send", "readv/writev"};

struct conn {
  int fd;
  unsigned long idx;
  int accept_style, io;
  unsigned char *out;
  size_t out_start, out_len, out_cap;
  bool eof;          /* the client's EOF was read */
  bool read_stalled; /* edge-triggered: reading stopped before EAGAIN */
  uint32_t reg;      /* epoll interest registered now (level-triggered modes) */
  struct rng rng;
  unsigned long long in, echoed;
};

#define MAX_FD 65536

static enum mode mode;
static int lfd = -1, nthreads = 1;
static __thread int epfd = -1;               /* each event-loop thread has its own set */
static struct conn **conns;                  /* by fd; an entry belongs to one thread */
static int conns_hi;                         /* highest fd used + 1 (poll/select: one thread) */
static unsigned long accepted, ended, failed, max_conns; /* atomic */
static int verbose;
static volatile sig_atomic_t stop;
static __thread unsigned char readbuf[READ_MAX];
static sigset_t wait_mask; /* the mask inside epoll_pwait/ppoll: SIGTERM unblocked */

static bool is_epoll(void) { return mode <= M_EPOLL_PWAIT; }
static bool edge(void) { return mode == M_EPOLL_ET; }

static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

static void conn_fail(struct conn *c, const char *what, int err) {
  fprintf(stderr, "ev_server: %s: conn %lu (fd %d, %s, %s): %s: %s after %llu bytes in, %llu echoed\n",
          mode_names[mode], c->idx, c->fd, accept_names[c->accept_style], io_names[c->io], what, strerror(err),
          c->in, c->echoed);
  __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
}

/* ---- registration ---- */

static uint32_t want(struct conn *c) {
  uint32_t ev = 0;
  if (!c->eof && c->out_len < HIGH) ev |= EPOLLIN | EPOLLRDHUP;
  if (c->out_len > 0) ev |= EPOLLOUT;
  return ev;
}

static void ep_ctl(int op, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) < 0) die("epoll_ctl(%d, fd %d, 0x%x): %s", op, fd, events, strerror(errno));
}

/* After handling a connection: bring its epoll registration up to date. */
static void update_interest(struct conn *c) {
  if (!is_epoll() || edge()) return;
  uint32_t w = want(c);
  if (mode == M_EPOLL_ONESHOT) {
    ep_ctl(EPOLL_CTL_MOD, c->fd, w | EPOLLONESHOT); /* re-arm after every event */
    c->reg = w;
    return;
  }
  if (w != c->reg) {
    ep_ctl(EPOLL_CTL_MOD, c->fd, w);
    c->reg = w;
  }
}

/* ---- connections ---- */

static void conn_close(struct conn *c) {
  if (mode == M_EPOLL_ONESHOT || mode == M_EPOLL_PWAIT) ep_ctl(EPOLL_CTL_DEL, c->fd, 0);
  if (verbose) fprintf(stderr, "ev_server: conn %lu: closed after %llu bytes echoed\n", c->idx, c->echoed);
  if (close(c->fd) < 0) fprintf(stderr, "ev_server: close(%d): %s\n", c->fd, strerror(errno));
  conns[c->fd] = NULL;
  free(c->out);
  free(c);
  __atomic_add_fetch(&ended, 1, __ATOMIC_RELEASE);
}

static void out_append(struct conn *c, const unsigned char *p, size_t n) {
  if (c->out_start > 0 && c->out_start + c->out_len + n > c->out_cap) {
    memmove(c->out, c->out + c->out_start, c->out_len);
    c->out_start = 0;
  }
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 64 * 1024;
    while (cap < c->out_len + n) cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out) die("out of memory");
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_start + c->out_len, p, n);
  c->out_len += n;
}

static ssize_t do_write(struct conn *c, const unsigned char *p, size_t n) {
  switch (c->io) {
    case 0: return write(c->fd, p, n);
    case 1: return send(c->fd, p, n, MSG_NOSIGNAL);
    default: {
      size_t half = n / 2;
      struct iovec v[2] = {{(void *)p, half}, {(void *)(p + half), n - half}};
      return half ? writev(c->fd, v, 2) : writev(c->fd, v + 1, 1);
    }
  }
}

static ssize_t do_read(struct conn *c, unsigned char *p, size_t n) {
  switch (c->io) {
    case 0: return read(c->fd, p, n);
    case 1: return recv(c->fd, p, n, 0);
    default: {
      size_t half = n / 3;
      struct iovec v[2] = {{p, half}, {p + half, n - half}};
      return half ? readv(c->fd, v, 2) : readv(c->fd, v + 1, 1);
    }
  }
}

/* Write pending output: once (level-triggered), or until EAGAIN or nothing is
 * pending (edge-triggered). Returns false when the connection failed. */
static bool flush(struct conn *c) {
  while (c->out_len > 0) {
    ssize_t n = do_write(c, c->out + c->out_start, c->out_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      conn_fail(c, "write", errno);
      return false;
    }
    if (n == 0) {
      conn_fail(c, "write returned 0", EIO);
      return false;
    }
    c->out_start += (size_t)n;
    c->out_len -= (size_t)n;
    c->echoed += (unsigned long long)n;
    if (c->out_len == 0) c->out_start = 0;
    if (!edge()) return true;
  }
  return true;
}

/* Echo n freshly read bytes: straight to the socket when nothing is pending,
 * what does not fit into the pending buffer. */
static bool echo(struct conn *c, const unsigned char *p, size_t n) {
  if (c->out_len == 0) {
    for (;;) {
      ssize_t w = do_write(c, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        conn_fail(c, "write", errno);
        return false;
      }
      if (w > 0) {
        c->echoed += (unsigned long long)w;
        p += w;
        n -= (size_t)w;
      }
      break;
    }
  }
  if (n > 0) {
    out_append(c, p, n);
    if (edge()) return flush(c); /* until EAGAIN, or the edge may never come */
  }
  return true;
}

static size_t read_size(struct conn *c) {
  uint64_t top = 1ull << rng_range(&c->rng, 0, 16);
  return (size_t)rng_range(&c->rng, 1, top > READ_MAX ? READ_MAX : top);
}

/* Read: once (level-triggered) or until EAGAIN, EOF or back-pressure (edge-
 * triggered). Returns false when the connection failed. */
static bool fill(struct conn *c) {
  while (!c->eof && c->out_len < HIGH) {
    ssize_t n = do_read(c, readbuf, read_size(c));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->read_stalled = false;
        return true;
      }
      conn_fail(c, "read", errno);
      return false;
    }
    if (n == 0) {
      c->eof = true;
      c->read_stalled = false;
      return true;
    }
    c->in += (unsigned long long)n;
    if (!echo(c, readbuf, (size_t)n)) return false;
    if (!edge()) return true;
  }
  if (!c->eof) c->read_stalled = true; /* edge-triggered: stopped before EAGAIN */
  return true;
}

/* A readiness report for c: readable and/or writable (errors count as both). */
static void service(struct conn *c, bool rd, bool wr) {
  bool ok = true;
  if (wr && c->out_len > 0) ok = flush(c);
  if (ok && rd) ok = fill(c);
  /* edge-triggered: a read stopped by back-pressure resumes once output drained */
  while (ok && edge() && c->read_stalled && c->out_len < LOW) {
    ok = fill(c);
    if (ok && c->out_len > 0) ok = flush(c);
    if (ok && c->read_stalled && c->out_len >= LOW) break; /* wait for EPOLLOUT */
  }
  if (!ok || (c->eof && c->out_len == 0)) {
    conn_close(c);
    return;
  }
  update_interest(c);
}

static void set_nonblock(int fd, int style) {
  if (style == 1) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl(O_NONBLOCK): %s", strerror(errno));
  } else if (style == 2) {
    int on = 1;
    if (ioctl(fd, FIONBIO, &on) < 0) die("ioctl(FIONBIO): %s", strerror(errno));
  }
}

static void accept_all(void) {
  for (;;) {
    unsigned long n = __atomic_load_n(&accepted, __ATOMIC_RELAXED);
    int style = (int)((n + (unsigned long)mode) % 3);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = style == 0 ? accept4(lfd, (struct sockaddr *)&a, &alen, SOCK_NONBLOCK)
                        : accept(lfd, (struct sockaddr *)&a, &alen);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == ECONNABORTED) continue;
      die("accept: %s", strerror(errno));
    }
    set_nonblock(fd, style);
    unsigned long idx = __atomic_fetch_add(&accepted, 1, __ATOMIC_RELAXED);
    if ((mode == M_SELECT && fd >= FD_SETSIZE) || fd >= MAX_FD) {
      fprintf(stderr, "ev_server: conn %lu: fd %d too large for %s, refused\n", idx, fd, mode_names[mode]);
      close(fd);
      __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
      __atomic_add_fetch(&ended, 1, __ATOMIC_RELEASE);
      continue;
    }
    if (fd >= conns_hi) conns_hi = fd + 1;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->fd = fd;
    c->idx = idx;
    c->accept_style = style;
    c->io = (int)((idx / 3) % 3);
    rng_seed(&c->rng, idx * 7919 + 17);
    conns[fd] = c;
    if (verbose) fprintf(stderr, "ev_server: conn %lu: fd %d, %s, %s\n", idx, fd, accept_names[style], io_names[c->io]);
    if (is_epoll()) {
      uint32_t ev = edge() ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : want(c);
      if (mode == M_EPOLL_ONESHOT) ev |= EPOLLONESHOT;
      ep_ctl(EPOLL_CTL_ADD, fd, ev);
      c->reg = ev & ~(uint32_t)EPOLLONESHOT;
    }
  }
}

/* ---- the loops ---- */

static bool finished(void) { return stop || (max_conns && __atomic_load_n(&ended, __ATOMIC_ACQUIRE) >= max_conns); }

static void loop_epoll(void) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  ep_ctl(EPOLL_CTL_ADD, lfd, (edge() ? EPOLLIN | EPOLLET : EPOLLIN) | (nthreads > 1 ? EPOLLEXCLUSIVE : 0));
  int maxev = mode == M_EPOLL_ET ? 4 : mode == M_EPOLL_ONESHOT ? 3 : 64;
  struct epoll_event evs[64];
  while (!finished()) {
    /* with several loops, one may wait on after another ended the run: bounded */
    int n = mode == M_EPOLL_PWAIT ? epoll_pwait(epfd, evs, maxev, nthreads > 1 ? 1000 : -1, &wait_mask)
                                  : epoll_wait(epfd, evs, maxev, 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait: %s", strerror(errno));
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      uint32_t e = evs[i].events;
      if (fd == lfd) {
        accept_all();
        continue;
      }
      struct conn *c = fd >= 0 && fd < MAX_FD ? conns[fd] : NULL;
      if (!c) {
        fprintf(stderr, "ev_server: epoll reported fd %d (events 0x%x), which is no open connection\n", fd, e);
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
        continue;
      }
      bool err = e & (EPOLLERR | EPOLLHUP);
      if (mode != M_EPOLL_ET && !(e & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
        fprintf(stderr, "ev_server: conn %lu: epoll event 0x%x with nothing in it\n", c->idx, e);
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
      }
      service(c, err || (e & (EPOLLIN | EPOLLRDHUP)), err || (e & EPOLLOUT));
    }
  }
}

static void *epoll_thread(void *arg) {
  (void)arg;
  loop_epoll();
  return NULL;
}

static void loop_poll(void) {
  struct pollfd *p = NULL;
  size_t pcap = 0;
  while (!finished()) {
    size_t need = 1;
    for (int fd = 0; fd < conns_hi; fd++) need += conns[fd] != NULL;
    if (need > pcap) {
      pcap = need * 2;
      p = realloc(p, pcap * sizeof *p);
      if (!p) die("out of memory");
    }
    size_t k = 0;
    p[k++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (int fd = 0; fd < conns_hi; fd++) {
      struct conn *c = conns[fd];
      if (!c) continue;
      uint32_t w = want(c);
      short ev = 0;
      if (w & EPOLLIN) ev |= POLLIN | (c->idx & 1 ? POLLRDHUP : 0);
      if (w & EPOLLOUT) ev |= POLLOUT;
      p[k++] = (struct pollfd){.fd = fd, .events = ev};
    }
    int n;
    if (mode == M_PPOLL) {
      struct timespec ts = {1, 0};
      n = ppoll(p, k, &ts, &wait_mask);
    } else {
      n = poll(p, k, 1000);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      die("poll: %s", strerror(errno));
    }
    if (n == 0) continue;
    for (size_t i = 1; i < k; i++) {
      short re = p[i].revents;
      if (!re) continue;
      struct conn *c = conns[p[i].fd];
      if (re & POLLNVAL) die("poll: POLLNVAL on conn %lu fd %d", c->idx, p[i].fd);
      bool err = re & (POLLERR | POLLHUP);
      if ((re & POLLRDHUP) && !(p[i].events & POLLRDHUP)) {
        fprintf(stderr, "ev_server: conn %lu: POLLRDHUP reported without being asked for (revents 0x%x)\n", c->idx, re);
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
      }
      if ((re & POLLOUT) && !(p[i].events & POLLOUT)) {
        fprintf(stderr, "ev_server: conn %lu: POLLOUT reported without being asked for (revents 0x%x)\n", c->idx, re);
        __atomic_add_fetch(&failed, 1, __ATOMIC_RELAXED);
      }
      service(c, err || (re & (POLLIN | POLLRDHUP)), err || (re & POLLOUT));
    }
    if (p[0].revents) accept_all();
  }
  free(p);
}

static void loop_select(void) {
  while (!finished()) {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(lfd, &r);
    int maxfd = lfd;
    for (int fd = 0; fd < conns_hi; fd++) {
      struct conn *c = conns[fd];
      if (!c) continue;
      uint32_t x = want(c);
      if (x & EPOLLIN) FD_SET(fd, &r);
      if (x & EPOLLOUT) FD_SET(fd, &w);
      if ((x & (EPOLLIN | EPOLLOUT)) && fd > maxfd) maxfd = fd;
    }
    struct timeval tv = {1, 0};
    int n = select(maxfd + 1, &r, &w, NULL, &tv);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("select: %s", strerror(errno));
    }
    if (n == 0) continue;
    for (int fd = 0; fd <= maxfd; fd++) {
      if (fd == lfd) continue;
      bool rd = FD_ISSET(fd, &r), wr = FD_ISSET(fd, &w);
      if (!rd && !wr) continue;
      struct conn *c = conns[fd];
      if (!c) die("select reported fd %d, which is no open connection", fd);
      service(c, rd, wr);
    }
    if (FD_ISSET(lfd, &r)) accept_all();
  }
}

int main(int argc, char **argv) {
  prog_name = "ev_server";
  unsigned port = 0, timeout = 300;
  const char *mname = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--mode") && i + 1 < argc) mname = argv[++i];
    else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = (unsigned)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc) max_conns = (unsigned long)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nthreads = (int)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--verbose")) verbose = 1;
    else die("usage: ev_server --mode MODE [--port P] [--max-conns N] [--timeout S] [--verbose] (bad argument %s)", argv[i]);
  }
  if (!mname) die("--mode is required (epoll-lt, epoll-et, epoll-oneshot, epoll-pwait, poll, ppoll, select)");
  mode = M_COUNT;
  for (int m = 0; m < M_COUNT; m++)
    if (!strcmp(mname, mode_names[m])) mode = (enum mode)m;
  if (mode == M_COUNT) die("unknown mode %s", mname);
  if (nthreads < 1 || nthreads > 64) die("--threads must be 1..64");
  if (nthreads > 1 && !is_epoll()) die("--threads is for the epoll modes");
  conns = calloc(MAX_FD, sizeof *conns);
  if (!conns) die("out of memory");
  if (timeout) watchdog(timeout);

  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term; /* no SA_RESTART: the wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigprocmask(SIG_BLOCK, NULL, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  if (mode == M_EPOLL_PWAIT || mode == M_PPOLL) {
    /* SIGTERM only inside the wait, where the sigmask argument unblocks it */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, NULL);
  }

  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket: %s", strerror(errno));
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind: %s", strerror(errno));
  if (listen(lfd, 1024) < 0) die("listen: %s", strerror(errno));
  socklen_t alen = sizeof a;
  if (getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) die("getsockname: %s", strerror(errno));
  printf("port %u\n", (unsigned)ntohs(a.sin_port));
  fflush(stdout);

  if (is_epoll()) {
    pthread_t th[64];
    for (int t = 1; t < nthreads; t++)
      if (pthread_create(&th[t], NULL, epoll_thread, NULL) != 0) die("pthread_create failed");
    loop_epoll();
    for (int t = 1; t < nthreads; t++) pthread_join(th[t], NULL);
  } else if (mode == M_SELECT) {
    loop_select();
  } else {
    loop_poll();
  }

  unsigned long nf = __atomic_load_n(&failed, __ATOMIC_ACQUIRE);
  if (verbose || nf)
    fprintf(stderr, "ev_server: %s: %lu accepted, %lu ended, %lu failed%s\n", mode_names[mode],
            __atomic_load_n(&accepted, __ATOMIC_ACQUIRE), __atomic_load_n(&ended, __ATOMIC_ACQUIRE), nf,
            stop ? " (SIGTERM)" : "");
  return nf ? 1 : 0;
}
