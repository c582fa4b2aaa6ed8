/* idle_wait: how much CPU a process uses while it waits on an idle socket.
 *
 *   idle_wait MODE HOST PORT [--ms N] [--timeout S]
 *
 * MODE: epoll | epoll-nested | epoll-polled | poll | select | recv.
 *
 * Connects (blocking) to an echo server, prints "connected <local addr>", then
 * takes commands from stdin, one per line, answering each with one line on
 * stdout:
 *   ping   writes 64 bytes of a deterministic stream, reads the 64 echoed bytes
 *          back and verifies them; answers "pong <n>" (the test repeats this
 *          until the connection shows as upgraded in `pd status`)
 *   idle   waits N ms (default 2000) for the socket to become readable while
 *          the peer stays silent, in the MODE's call with a timeout:
 *            epoll   epoll_wait on a set holding the socket (EPOLLIN), N ms
 *            epoll-nested  epoll_wait on a set holding that set, N ms
 *            epoll-polled  poll(POLLIN) on the set's fd, N ms
 *            poll    poll(POLLIN), N ms
 *            select  select(readfds), N ms
 *            recv    a blocking recv() with SO_RCVTIMEO = N ms
 *          measures its own CPU time with getrusage(RUSAGE_SELF) just before
 *          and after the call, and answers with one JSON line:
 *          {"ok":..,"mode":..,"ret":..,"errno":..,"wall_ms":..,"cpu_ms":..,
 *           "user_ms":..,"sys_ms":..,"local":..}
 *          ok is true when the call timed out as TCP would (epoll/poll/select
 *          return 0, recv fails with EAGAIN) after at least N-50 ms.
 * Exits 0 at stdin EOF or after "idle". Bounded by a watchdog (default 60 s).
 */
#include "common.h"

#include <poll.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/time.h>

static double tv_ms(struct timeval tv) { return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3; }

int main(int argc, char **argv) {
  prog_name = "idle_wait";
  const char *pos[3];
  int npos = 0;
  unsigned ms = 2000, timeout = 60;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--ms") && i + 1 < argc) ms = (unsigned)parse_size(argv[++i]);
    else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) timeout = (unsigned)parse_size(argv[++i]);
    else if (npos < 3 && argv[i][0] != '-') pos[npos++] = argv[i];
    else die("bad argument %s", argv[i]);
  }
  if (npos != 3) die("usage: idle_wait MODE HOST PORT [--ms N] [--timeout S]");
  const char *mode = pos[0];
  bool nested = !strcmp(mode, "epoll-nested"), polled = !strcmp(mode, "epoll-polled");
  if (strcmp(mode, "epoll") && strcmp(mode, "poll") && strcmp(mode, "select") && strcmp(mode, "recv") && !nested &&
      !polled)
    die("unknown mode %s (epoll, epoll-nested, epoll-polled, poll, select, recv)", mode);
  if (timeout) watchdog(timeout);

  int fd = connect_tcp(pos[1], pos[2]);
  char local[64];
  local_addr(fd, local, sizeof local);
  printf("connected %s\n", local);
  fflush(stdout);

  /* set up the waiting call's objects before anything is measured */
  int ep = -1, polled_ep = -1;
  if (!strcmp(mode, "epoll") || nested || polled) {
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    if (nested) { /* the set holding the socket sits inside the one waited on */
      int outer = epoll_create1(0);
      if (outer < 0) die("epoll_create1: %s", strerror(errno));
      ev.data.u64 = 0x5678;
      if (epoll_ctl(outer, EPOLL_CTL_ADD, ep, &ev) < 0) die("epoll_ctl(outer): %s", strerror(errno));
      ep = outer;
    } else if (polled) { /* poll() on the set's fd */
      polled_ep = ep;
      ep = -1;
    }
  } else if (!strcmp(mode, "recv")) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) die("SO_RCVTIMEO: %s", strerror(errno));
  }

  unsigned char out[64], in[64], scratch[VERIFY_SCRATCH];
  uint64_t off = 0;
  char line[64];
  unsigned long pings = 0;
  while (fgets(line, sizeof line, stdin)) {
    if (!strcmp(line, "ping\n")) {
      stream_fill(7, off, out, sizeof out);
      if (write_all(fd, out, sizeof out, 0) < 0) die("write: %s", strerror(errno));
      ssize_t n = read_full(fd, in, sizeof in, 1);
      if (n != (ssize_t)sizeof in) die("read of the echo: %s", n < 0 ? strerror(errno) : "EOF");
      if (stream_check(7, off, in, sizeof in, scratch) >= 0) die("echo of ping %lu differs", pings);
      off += sizeof out;
      printf("pong %lu\n", ++pings);
      fflush(stdout);
      continue;
    }
    if (strcmp(line, "idle\n")) die("unknown command %s", line);
    struct rusage r0, r1;
    long ret;
    int err = 0;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now_s();
    if (ep >= 0) {
      struct epoll_event ev[4];
      ret = epoll_wait(ep, ev, 4, (int)ms);
    } else if (!strcmp(mode, "poll") || polled) {
      struct pollfd p = {.fd = polled ? polled_ep : fd, .events = POLLIN};
      ret = poll(&p, 1, (int)ms);
    } else if (!strcmp(mode, "select")) {
      fd_set rs;
      FD_ZERO(&rs);
      FD_SET(fd, &rs);
      struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
      ret = select(fd + 1, &rs, NULL, NULL, &tv);
    } else {
      ret = (long)recv(fd, in, sizeof in, 0);
    }
    if (ret < 0) err = errno;
    double wall = (now_s() - t0) * 1e3;
    getrusage(RUSAGE_SELF, &r1);
    double user = tv_ms(r1.ru_utime) - tv_ms(r0.ru_utime), sys = tv_ms(r1.ru_stime) - tv_ms(r0.ru_stime);
    bool expected = !strcmp(mode, "recv") ? (ret < 0 && (err == EAGAIN || err == EWOULDBLOCK)) : ret == 0;
    bool ok = expected && wall >= (double)ms - 50;
    printf("{\"ok\":%s,\"mode\":\"%s\",\"ret\":%ld,\"errno\":\"%s\",\"wall_ms\":%.3f,\"cpu_ms\":%.3f,\"user_ms\":%.3f,"
           "\"sys_ms\":%.3f,\"local\":\"%s\"}\n",
           ok ? "true" : "false", mode, ret, err ? strerror(err) : "", wall, user + sys, user, sys, local);
    fflush(stdout);
    close(fd);
    return 0;
  }
  close(fd);
  return 0;
}
