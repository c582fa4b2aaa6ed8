/* uring_client: a client that moves its bytes with io_uring (raw syscalls,
 * no liburing), to show the shim leaves io_uring users alone.
 *
 *   uring_client HOST PORT BYTES
 *
 * Connects (connect(2)), then sends BYTES of a deterministic stream (seed 13)
 * in 64 KiB IORING_OP_SEND requests, each followed by IORING_OP_RECV of its
 * echo until it is all back, verified. Prints one JSON line:
 *   {"ok":..,"bytes":..,"local":".."}
 * Bounded by a 60 s watchdog. */
#include "common.h"

#include <linux/io_uring.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define SEED 13
#define CHUNK (64 * 1024)

struct uring {
  int fd;
  unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
};

static void uring_init(struct uring *u) {
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  u->fd = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (u->fd < 0) die("io_uring_setup: %s", strerror(errno));
  size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  uint8_t *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
  uint8_t *cq = mmap(NULL, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
  u->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                 u->fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || u->sqes == MAP_FAILED) die("mmap io_uring: %s", strerror(errno));
  u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
  u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
  u->sq_array = (unsigned *)(sq + p.sq_off.array);
  u->cq_head = (unsigned *)(cq + p.cq_off.head);
  u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
  u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
}

/* One request, waited for: returns its result (bytes, or -errno). */
static int uring_do(struct uring *u, int op, int fd, void *buf, unsigned len) {
  unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask;
  struct io_uring_sqe *e = &u->sqes[idx];
  memset(e, 0, sizeof *e);
  e->opcode = (uint8_t)op;
  e->fd = fd;
  e->addr = (uint64_t)(uintptr_t)buf;
  e->len = len;
  u->sq_array[idx] = idx;
  __atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
  for (;;) {
    long r = syscall(__NR_io_uring_enter, u->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    if (r >= 0 || errno != EINTR) {
      if (r < 0) die("io_uring_enter: %s", strerror(errno));
      break;
    }
  }
  unsigned head = *u->cq_head;
  if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) die("io_uring: no completion");
  int res = u->cqes[head & *u->cq_mask].res;
  __atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
  return res;
}

static unsigned char out[CHUNK], in[CHUNK], scratch[VERIFY_SCRATCH];

int main(int argc, char **argv) {
  prog_name = "uring_client";
  watchdog(60);
  if (argc != 4) die("usage: uring_client HOST PORT BYTES");
  uint64_t total = parse_size(argv[3]);
  int fd = connect_tcp(argv[1], argv[2]);
  char local[64];
  local_addr(fd, local, sizeof local);
  struct uring u;
  uring_init(&u);
  bool ok = true;
  uint64_t off = 0;
  while (off < total && ok) {
    unsigned len = total - off < CHUNK ? (unsigned)(total - off) : CHUNK;
    stream_fill(SEED, off, out, len);
    for (unsigned sent = 0; sent < len;) {
      int r = uring_do(&u, IORING_OP_SEND, fd, out + sent, len - sent);
      if (r <= 0) die("IORING_OP_SEND: %s", r < 0 ? strerror(-r) : "0");
      sent += (unsigned)r;
    }
    for (unsigned got = 0; got < len;) {
      int r = uring_do(&u, IORING_OP_RECV, fd, in + got, len - got);
      if (r <= 0) die("IORING_OP_RECV: %s", r < 0 ? strerror(-r) : "EOF");
      got += (unsigned)r;
    }
    if (stream_check(SEED, off, in, len, scratch) >= 0) ok = false;
    off += len;
  }
  printf("{\"ok\":%s,\"bytes\":%llu,\"local\":\"%s\"}\n", ok ? "true" : "false", (unsigned long long)off, local);
  fflush(stdout);
  close(fd);
  return ok ? 0 : 1;
}
