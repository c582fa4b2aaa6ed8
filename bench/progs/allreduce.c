// allreduce: one rank of a ring allreduce (reduce-scatter then all-gather, as
// NCCL and Gloo do it over TCP) of float32 sums, N processes on one host.
//   allreduce --ranks N --rank R --port BASE [--unix DIR] --floats F --iters K
// Rank R listens on 127.0.0.1:BASE+R (or DIR/rank-R.sock), connects to rank
// R+1 and accepts rank R-1. Every send and receive of a step runs at once over
// non-blocking sockets and poll(), so big chunks cannot deadlock the ring.
// Each iteration re-initialises rank R's data to R+1+(i%7) and checks nothing;
// after the last one every element must equal N(N+1)/2 + N*(i%7), which every
// rank verifies. Rank 0 prints one JSON line: seconds, per-op time, bus bandwidth.
// Test modes (test/apps/allreduce.test.ts):
//   --check   element i of rank R in iteration k is (131R + 17k + i) % 251, so
//             every iteration differs; every rank verifies every iteration
//             and prints one JSON line with a checksum of its final vector,
//             sum of v[i] * (i % 1009 + 1) (exact in a double); the time
//             counts the communication only
//   --gate    after connecting, print "connected" and wait for a line on stdin
//   --hold    after the JSON line, keep the connections open until stdin's EOF
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

static float check_value(int rank, int it, long i) { return (float)((131L * rank + 17L * it + i) % 251); }

/* --check: the allreduce of iteration `it` must hold the sum over the ranks */
static void check_iteration(const float *data, long floats, int ranks, int rank, int it) {
  for (long i = 0; i < floats; i++) {
    float want = 0;
    for (int r = 0; r < ranks; r++) want += check_value(r, it, i);
    if (data[i] != want) {
      fprintf(stderr, "allreduce: rank %d iteration %d element %ld is %g, want %g\n", rank, it, i, data[i], want);
      exit(1);
    }
  }
}

static void wait_stdin(int until_eof) {
  char line[64];
  while (fgets(line, sizeof line, stdin))
    if (!until_eof) return;
}

int main(int argc, char **argv) {
  int ranks = 0, rank = -1, port = 0, iters = 10, check = 0, gate = 0, hold = 0;
  long floats = 1 << 20;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--check")) { check = 1; continue; }
    if (!strcmp(argv[i], "--gate")) { gate = 1; continue; }
    if (!strcmp(argv[i], "--hold")) { hold = 1; continue; }
    if (i + 1 >= argc) {
      fprintf(stderr, "allreduce: %s needs a value\n", argv[i]);
      return 2;
    }
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
    i++;
  }
  if (ranks < 2 || rank < 0 || rank >= ranks || (!dir && port <= 0) || floats < ranks || iters < 1) {
    fprintf(stderr, "usage: allreduce --ranks N --rank R --port BASE [--unix DIR] --floats F --iters K [--check] [--gate] [--hold]\n");
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
  if (gate) {
    printf("connected\n");
    fflush(stdout);
    wait_stdin(0);
  }

  double t0 = now(), busy = 0, t1 = 0;
  for (int it = 0; it < iters; it++) {
    if (check) {
      for (long i = 0; i < floats; i++) data[i] = check_value(rank, it, i);
      t1 = now();
    } else {
      for (long i = 0; i < floats; i++) data[i] = (float)(rank + 1 + i % 7);
    }
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
    if (check) {
      busy += now() - t1;
      check_iteration(data, floats, ranks, rank, it);
    }
  }
  double t = check ? busy : now() - t0;
  if (check) {
    double sum = 0;
    for (long i = 0; i < floats; i++) sum += (double)data[i] * (double)(i % 1009 + 1);
    exchange(next, &token, prev, &back, 1);
    double bytes = floats * sizeof(float);
    printf("{\"ok\":true,\"rank\":%d,\"ranks\":%d,\"floats\":%ld,\"iters\":%d,\"checksum\":%.0f,\"seconds\":%.6f,\"busbw_gbytes_s\":%.4f}\n",
           rank, ranks, floats, iters, sum, t, bytes * 2.0 * (ranks - 1) / ranks * iters / t / 1e9);
    fflush(stdout);
    if (hold) wait_stdin(1);
    close(next);
    close(prev);
    return 0;
  }
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
