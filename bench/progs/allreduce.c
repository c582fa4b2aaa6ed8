// allreduce: one rank of a ring allreduce (reduce-scatter then all-gather, as
// NCCL and Gloo do it over TCP) of float32 sums, N processes on one host.
//   allreduce --ranks N --rank R --port BASE [--unix DIR] --floats F --iters K
// Rank R listens on 127.0.0.1:BASE+R (or DIR/rank-R.sock), connects to rank
// R+1 and accepts rank R-1. Every send and receive of a step runs at once over
// non-blocking sockets and poll(), so big chunks cannot deadlock the ring.
// Each iteration re-initialises rank R's data to R+1+(i%7) and checks nothing;
// after the last one every element must equal N(N+1)/2 + N*(i%7), which every
// rank verifies. Rank 0 prints one JSON line: seconds, per-op time, bus bandwidth.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
  fprintf(stderr, "allreduce: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static socklen_t addr_of(struct sockaddr_storage *ss, const char *dir, int port, int rank) {
  memset(ss, 0, sizeof *ss);
  if (dir) {
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    un->sun_family = AF_UNIX;
    snprintf(un->sun_path, sizeof un->sun_path, "%s/rank-%d.sock", dir, rank);
    return sizeof *un;
  }
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  in->sin_family = AF_INET;
  in->sin_port = htons((unsigned short)(port + rank));
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sizeof *in;
}

/* Send len bytes on out while receiving len bytes from in, interleaved. */
static void exchange(int out, const char *sbuf, int in, char *rbuf, size_t len) {
  size_t sent = 0, got = 0;
  while (sent < len || got < len) {
    struct pollfd p[2] = {{out, sent < len ? POLLOUT : 0, 0}, {in, got < len ? POLLIN : 0, 0}};
    if (poll(p, 2, 30000) <= 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "allreduce: poll timed out or failed (sent %zu, got %zu of %zu)\n", sent, got, len);
      exit(1);
    }
    if (sent < len && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(out, sbuf + sent, len - sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) die("send");
      if (n > 0) sent += (size_t)n;
    }
    if (got < len && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) {
      ssize_t n = recv(in, rbuf + got, len - got, 0);
      if (n == 0) {
        fprintf(stderr, "allreduce: peer closed\n");
        exit(1);
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) die("recv");
      if (n > 0) got += (size_t)n;
    }
  }
}

int main(int argc, char **argv) {
  int ranks = 0, rank = -1, port = 0, iters = 10;
  long floats = 1 << 20;
  const char *dir = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--ranks")) ranks = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--rank")) rank = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--unix")) dir = argv[i + 1];
    else if (!strcmp(argv[i], "--floats")) floats = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "allreduce: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (ranks < 2 || rank < 0 || rank >= ranks || (!dir && port <= 0) || floats < ranks || iters < 1) {
    fprintf(stderr, "usage: allreduce --ranks N --rank R --port BASE [--unix DIR] --floats F --iters K\n");
    return 2;
  }
  floats -= floats % ranks;
  const long chunk = floats / ranks;

  struct sockaddr_storage ss;
  socklen_t len = addr_of(&ss, dir, port, rank);
  int ls = socket(ss.ss_family, SOCK_STREAM, 0);
  if (ls < 0) die("socket");
  int one = 1;
  if (!dir) setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (dir) unlink(((struct sockaddr_un *)&ss)->sun_path);
  if (bind(ls, (struct sockaddr *)&ss, len) < 0) die("bind");
  if (listen(ls, 4) < 0) die("listen");

  // connect to the next rank, retrying while it starts
  len = addr_of(&ss, dir, port, (rank + 1) % ranks);
  int next = -1;
  for (double deadline = now() + 20; next < 0;) {
    int s = socket(ss.ss_family, SOCK_STREAM, 0);
    if (s < 0) die("socket");
    if (connect(s, (struct sockaddr *)&ss, len) == 0) {
      next = s;
      break;
    }
    close(s);
    if (now() > deadline) die("connect to the next rank");
    usleep(10000);
  }
  int prev = accept(ls, NULL, NULL);
  if (prev < 0) die("accept");
  close(ls);
  if (!dir) {
    setsockopt(next, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(prev, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  fcntl(next, F_SETFL, fcntl(next, F_GETFL) | O_NONBLOCK);
  fcntl(prev, F_SETFL, fcntl(prev, F_GETFL) | O_NONBLOCK);

  float *data = malloc(floats * sizeof(float)), *tmp = malloc(chunk * sizeof(float));
  if (!data || !tmp) die("malloc");
  char token = 1, back = 0;
  exchange(next, &token, prev, &back, 1);  // everyone is connected

  double t0 = now();
  for (int it = 0; it < iters; it++) {
    for (long i = 0; i < floats; i++) data[i] = (float)(rank + 1 + i % 7);
    for (int s = 0; s < ranks - 1; s++) {  // reduce-scatter
      long sc = ((rank - s) % ranks + ranks) % ranks, rc = ((rank - s - 1) % ranks + ranks) % ranks;
      exchange(next, (char *)(data + sc * chunk), prev, (char *)tmp, chunk * sizeof(float));
      float *d = data + rc * chunk;
      for (long i = 0; i < chunk; i++) d[i] += tmp[i];
    }
    for (int s = 0; s < ranks - 1; s++) {  // all-gather
      long sc = ((rank - s + 1) % ranks + ranks) % ranks, rc = ((rank - s) % ranks + ranks) % ranks;
      exchange(next, (char *)(data + sc * chunk), prev, (char *)(data + rc * chunk), chunk * sizeof(float));
    }
  }
  double t = now() - t0;
  for (long i = 0; i < floats; i++) {
    float want = (float)(ranks * (ranks + 1) / 2 + ranks * (i % 7));
    if (data[i] != want) {
      fprintf(stderr, "allreduce: rank %d element %ld is %g, want %g\n", rank, i, data[i], want);
      return 1;
    }
  }
  exchange(next, &token, prev, &back, 1);  // nobody closes while a peer still reads
  if (rank == 0) {
    double bytes = floats * sizeof(float);
    double busbw = bytes * 2.0 * (ranks - 1) / ranks * iters / t / 1e9;
    printf("{\"ok\":true,\"ranks\":%d,\"bytes\":%.0f,\"iters\":%d,\"seconds\":%.6f,\"us_per_op\":%.3f,\"busbw_gbytes_s\":%.4f}\n",
           ranks, bytes, iters, t, t / iters * 1e6, busbw);
  }
  close(next);
  close(prev);
  return 0;
}
