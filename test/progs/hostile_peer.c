/* hostile_peer: a client run under pdrun that, once its connection is
 * upgraded, writes random and adversarial values into the slot it shares with
 * the server: ring indices past the end, huge lengths, wrapped counters,
 * flipped magic and generation, attach/dead/reset/closed flags, armed counts,
 * and garbage ring bytes. After each write it provokes the server (sends a few
 * bytes, reads what comes back). The server must reset that connection
 * (ECONNRESET) or carry on with it, never crash, and never touch memory
 * outside the slot: a second, well-behaved connection to the same server (the
 * "control" connection, in the same arena) is checked byte for byte
 * throughout, and the arena header must never change.
 *
 * It finds the slot in its own address space: the shim maps the arena memfd
 * ("/memfd:pd-arena-N" in /proc/self/maps), and the slot of a connection is
 * the one whose direction-0 ring ends with the marker the client just sent.
 *
 *   hostile_peer PORT [--rounds N] [--seed S] [--timeout S] [--forge-header N]
 *
 * --forge-header N: instead of the rounds, N attempts at making the server
 * map a slot somewhere else than where the controller put it. For each new
 * connection, once our own shim has attached it (the server has not yet), the
 * arena header is rewritten with a consistent but false geometry (4 KiB rings)
 * that places the new slot's index inside the control connection's ring, a
 * fake control block (right magic and generation) is written there, and one
 * message goes to the server over TCP. A server that reads the header once,
 * when it first mapped the arena, attaches the real slot; one that reads it
 * again attaches the fake one: it then writes outside its slot (into another
 * connection's ring). The header is restored after each attempt.
 *
 * Prints one JSON line: {"ok":B,"rounds":N,"conns":C,"resets":R,"silent":Q,
 * "not_upgraded":U,"ctl_checks":K,"ctl_bytes":B}. ok is false (status 1) when
 * the control connection lost or changed a byte, the header changed, or no
 * connection could be upgraded at all. */
#include "common.h"
#include "../../preload/pd_layout.h"

#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>

static struct rng R;
static unsigned port;

/* ---------------------------------------------------------------- arenas */

struct arena {
  uint8_t *base;
  size_t size;
};

static int arenas(struct arena *out, int max) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) die("/proc/self/maps: %s", strerror(errno));
  char line[512];
  int n = 0;
  while (n < max && fgets(line, sizeof line, f)) {
    if (!strstr(line, "/memfd:pd-arena-")) continue;
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) continue;
    out[n].base = (uint8_t *)lo;
    out[n].size = hi - lo;
    n++;
  }
  fclose(f);
  return n;
}

struct slot {
  struct pd_slot_ctrl *ctrl;
  uint8_t *ring0, *ring1;
  uint32_t ring_size;
  uint8_t *arena;
  size_t arena_size;
  uint8_t hdr[64]; /* the arena header when the slot was found */
};

/* The live slot whose direction-0 ring ends with `marker` (we are role 0, the connecting end). */
static bool find_slot(const uint8_t *marker, size_t mlen, struct slot *s) {
  struct arena a[16];
  int n = arenas(a, 16);
  for (int k = 0; k < n; k++) {
    const struct pd_arena_hdr *h = (const void *)a[k].base;
    uint32_t ring = h->ring_size, ss = h->slot_size, cnt = h->slot_count, off = h->slots_offset;
    if (h->magic != PD_ARENA_MAGIC || ring < PD_RING_MIN || ring > PD_RING_MAX || (ring & (ring - 1)) ||
        ss != PD_SLOT_CTRL_SIZE + 2 * ring || off != PD_ARENA_HDR_SIZE)
      continue;
    for (uint32_t i = 0; i < cnt && (uint64_t)off + (uint64_t)(i + 1) * ss <= a[k].size; i++) {
      uint8_t *base = a[k].base + off + (size_t)i * ss;
      struct pd_slot_ctrl *c = (void *)base;
      if (__atomic_load_n(&c->magic, __ATOMIC_ACQUIRE) != PD_SLOT_MAGIC) continue;
      if (!__atomic_load_n(&c->dir0.switched, __ATOMIC_ACQUIRE)) continue;
      uint64_t head = __atomic_load_n(&c->dir0.head, __ATOMIC_ACQUIRE);
      if (head < mlen) continue;
      uint8_t *ring0 = base + PD_SLOT_CTRL_SIZE;
      bool eq = true;
      for (size_t j = 0; j < mlen && eq; j++) eq = ring0[(head - mlen + j) & (ring - 1)] == marker[j];
      if (!eq) continue;
      s->ctrl = c;
      s->ring0 = ring0;
      s->ring1 = ring0 + ring;
      s->ring_size = ring;
      s->arena = a[k].base;
      s->arena_size = a[k].size;
      memcpy(s->hdr, a[k].base, sizeof s->hdr);
      return true;
    }
  }
  return false;
}

/* ---------------------------------------------------------------- sockets */

static int dial(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  int r;
  do r = connect(fd, (struct sockaddr *)&a, sizeof a);
  while (r < 0 && errno == EINTR);
  if (r < 0) die("connect: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Send a marker and read its echo until the connection's slot shows up with
 * both directions switched. false: not upgraded (declined, or too slow). */
static bool upgrade(int fd, unsigned long conn, struct slot *s) {
  uint8_t m[64], back[64];
  for (int attempt = 0; attempt < 400; attempt++) {
    snprintf((char *)m, sizeof m, "hostile %lu %d ", conn, attempt);
    for (size_t i = strlen((char *)m); i < sizeof m; i++) m[i] = (uint8_t)rng_next(&R);
    if (write_all(fd, m, sizeof m, 1) < 0) return false;
    if (read_full(fd, back, sizeof back, 1) != (ssize_t)sizeof back) return false;
    if (memcmp(m, back, sizeof m)) die("conn %lu: the echo of the marker differs before any corruption", conn);
    if (find_slot(m, sizeof m, s) && __atomic_load_n(&s->ctrl->dir1.switched, __ATOMIC_ACQUIRE) &&
        s->ctrl->attached0 && s->ctrl->attached1)
      return true;
    usleep(attempt < 20 ? 100 : 1000);
  }
  return false;
}

/* ---------------------------------------------------------------- the control connection */

static int ctl_fd = -1;
static uint64_t ctl_off, ctl_checks;
static unsigned char *ctl_buf, *ctl_back, *scratch;

static void ctl_check(void) {
  size_t n = (size_t)rng_range(&R, 1, 16384);
  stream_fill(77, ctl_off, ctl_buf, n);
  if (write_all(ctl_fd, ctl_buf, n, 1) < 0) die("control connection: write: %s after %llu bytes", strerror(errno), (unsigned long long)ctl_off);
  ssize_t r = read_full(ctl_fd, ctl_back, n, 1);
  if (r < 0) die("control connection: read: %s after %llu bytes", strerror(errno), (unsigned long long)ctl_off);
  if ((size_t)r != n) die("control connection: EOF after %llu bytes", (unsigned long long)ctl_off + (unsigned long long)r);
  long bad = stream_check(77, ctl_off, ctl_back, n, scratch);
  if (bad >= 0) die("control connection: byte %llu of the echo differs: the server wrote outside the hostile slot",
                    (unsigned long long)ctl_off + (unsigned long long)bad);
  ctl_off += n;
  ctl_checks++;
}

/* ---------------------------------------------------------------- corruption */

enum { F32, F64 };
struct target {
  const char *name;
  int width;
  size_t off; /* within the slot control block */
};

#define T32(n, f) {n, F32, offsetof(struct pd_slot_ctrl, f)}
#define T64(n, f) {n, F64, offsetof(struct pd_slot_ctrl, f)}
static const struct target targets[] = {
    /* what the server reads: its receiving direction (dir0), its sending direction's reader side (dir1) */
    T64("dir0.head", dir0.head), T64("dir0.head", dir0.head), T64("dir0.head", dir0.head),
    T64("dir0.tx_tcp_bytes", dir0.tx_tcp_bytes), T32("dir0.switched", dir0.switched),
    T32("dir0.wr_closed", dir0.wr_closed), T64("dir1.tail", dir1.tail), T64("dir1.tail", dir1.tail),
    T64("dir1.tail", dir1.tail), T32("dir1.rd_closed", dir1.rd_closed), T32("dir1.reader_armed", dir1.reader_armed),
    T32("dir0.writer_armed", dir0.writer_armed),
    /* what the server writes (and reads back for readiness and FIONREAD) */
    T64("dir1.head", dir1.head), T64("dir0.tail", dir0.tail), T32("dir1.switched", dir1.switched),
    T64("dir1.tx_tcp_bytes", dir1.tx_tcp_bytes), T32("dir0.rd_closed", dir0.rd_closed),
    T32("dir1.wr_closed", dir1.wr_closed), T32("dir0.reader_armed", dir0.reader_armed),
    T32("dir1.writer_armed", dir1.writer_armed),
    /* the slot's own words */
    T32("magic", magic), T32("generation", generation), T32("attached0", attached0), T32("attached1", attached1),
    T32("dead0", dead0), T32("dead1", dead1), T32("reset", reset),
};
#define NTARGETS (sizeof targets / sizeof targets[0])

static uint64_t adversarial64(uint64_t cur, uint32_t ring) {
  switch (rng_next(&R) % 16) {
    case 0: return 0;
    case 1: return cur + ring;            /* exactly a full ring: still valid */
    case 2: return cur + ring + 1;        /* one past */
    case 3: return cur - 1;               /* behind: a wrapped difference */
    case 4: return cur - ring - 1;
    case 5: return UINT64_MAX;
    case 6: return UINT64_MAX - ring + 1; /* wraps to a small difference from 0 */
    case 7: return 1ull << 63;
    case 8: return cur + (rng_next(&R) % (2ull * ring));
    case 9: return cur + 0x100000000ull;  /* the high half only */
    case 10: return (cur & ~0xffffffffull) | (uint32_t)rng_next(&R);
    case 11: return cur ^ (1ull << (rng_next(&R) % 64));
    case 12: return (uint64_t)ring;
    case 13: return (uint64_t)ring * 1024;
    default: return rng_next(&R);
  }
}

static uint32_t adversarial32(uint32_t cur) {
  switch (rng_next(&R) % 10) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 2;
    case 3: return UINT32_MAX;
    case 4: return 0x80000000u;
    case 5: return cur ^ (1u << (rng_next(&R) % 32)); /* flipped bit: magic, generation */
    case 6: return cur + 1;
    case 7: return cur - 1;
    default: return (uint32_t)rng_next(&R);
  }
}

struct saved {
  const struct target *t;
  uint64_t old;
};

/* One corruption; returns what it overwrote (NULL target: ring bytes). */
static struct saved corrupt(struct slot *s) {
  struct saved sv = {NULL, 0};
  if (rng_next(&R) % 8 == 0) {
    /* garbage ring bytes, anywhere in either ring */
    uint8_t *ring = rng_next(&R) & 1 ? s->ring0 : s->ring1;
    size_t len = (size_t)rng_range(&R, 1, 256), at = (size_t)(rng_next(&R) % s->ring_size);
    for (size_t i = 0; i < len; i++) ring[(at + i) & (s->ring_size - 1)] = (uint8_t)rng_next(&R);
    return sv;
  }
  const struct target *t = &targets[rng_next(&R) % NTARGETS];
  void *p = (uint8_t *)s->ctrl + t->off;
  sv.t = t;
  if (t->width == F64) {
    uint64_t *w = p;
    sv.old = __atomic_load_n(w, __ATOMIC_RELAXED);
    __atomic_store_n(w, adversarial64(sv.old, s->ring_size), __ATOMIC_RELEASE);
  } else {
    uint32_t *w = p;
    sv.old = __atomic_load_n(w, __ATOMIC_RELAXED);
    __atomic_store_n(w, adversarial32((uint32_t)sv.old), __ATOMIC_RELEASE);
  }
  return sv;
}

static void restore(struct slot *s, struct saved sv) {
  if (!sv.t) return;
  void *p = (uint8_t *)s->ctrl + sv.t->off;
  if (sv.t->width == F64) __atomic_store_n((uint64_t *)p, sv.old, __ATOMIC_RELEASE);
  else __atomic_store_n((uint32_t *)p, (uint32_t)sv.old, __ATOMIC_RELEASE);
}

/* Provoke the server: send a few bytes, read whatever comes back within a few
 * ms. 1: the connection ended (reset, EOF, EPIPE); 0: alive; -1: silent. */
static int provoke(int fd) {
  unsigned char b[4096];
  size_t n = (size_t)rng_range(&R, 1, sizeof b);
  for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rng_next(&R);
  ssize_t w = send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return 1;
  bool got = false;
  for (int i = 0; i < 4; i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, got ? 0 : 2);
    if (r < 0 && errno != EINTR) die("poll: %s", strerror(errno));
    if (r <= 0) break;
    ssize_t k = recv(fd, b, sizeof b, MSG_DONTWAIT);
    if (k == 0) return 1;
    if (k < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return 1;
    }
    got = true;
  }
  return got ? 0 : -1;
}

/* ---------------------------------------------------------------- header forging */

static unsigned long forged_attached, real_attached, stayed_tcp, skipped;

static void forge_attempt(struct slot *cs, unsigned long conn) {
  uint8_t *arena = cs->arena;
  struct pd_arena_hdr *h = (void *)arena;
  const uint32_t ring = cs->ring_size, ss = PD_SLOT_CTRL_SIZE + 2 * ring;
  const size_t c0 = (size_t)((uint8_t *)cs->ctrl - arena - PD_ARENA_HDR_SIZE) / ss;
  int fd = dial();
  /* Drive our own shim until it attached the new slot (the server has not: it
   * waits in read() for our first byte). */
  struct pd_slot_ctrl *real = NULL;
  size_t idx = 0;
  char b;
  for (int i = 0; i < 2000 && !real; i++) {
    (void)!recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    for (size_t k = 0; k < h->slot_count; k++) {
      struct pd_slot_ctrl *c = (void *)(arena + PD_ARENA_HDR_SIZE + k * ss);
      if (k != c0 && c->magic == PD_SLOT_MAGIC && c->attached0 && !c->attached1 && !c->dir0.switched) {
        real = c;
        idx = k;
        break;
      }
    }
    if (!real) usleep(500);
  }
  if (!real) {
    skipped++;
    close(fd);
    return;
  }
  /* The false geometry: 4 KiB rings, slot_size 12 KiB. Slot idx then starts at
   * HDR + idx * 12 KiB, which must fall inside the control connection's ring 0. */
  const uint32_t fring = PD_RING_MIN, fss = PD_SLOT_CTRL_SIZE + 2 * PD_RING_MIN;
  size_t fake_off = PD_ARENA_HDR_SIZE + idx * fss;
  size_t ring0_lo = (size_t)(cs->ring0 - arena), ring0_hi = ring0_lo + ring;
  if (fake_off < ring0_lo || fake_off + fss > ring0_hi) {
    skipped++;
    close(fd);
    return;
  }
  struct pd_arena_hdr saved = *h;
  struct pd_slot_ctrl *fake = (void *)(arena + fake_off);
  memset(fake, 0, PD_SLOT_CTRL_SIZE);
  fake->generation = real->generation;
  fake->attached0 = 1;
  __atomic_store_n(&fake->magic, PD_SLOT_MAGIC, __ATOMIC_RELEASE);
  h->ring_size = fring;
  h->slot_size = fss;
  h->slot_count = (uint32_t)((cs->arena_size - PD_ARENA_HDR_SIZE) / fss);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint8_t m[64];
  snprintf((char *)m, sizeof m, "forge %lu", conn);
  if (write_all(fd, m, sizeof m, 1) < 0) die("forge: write: %s", strerror(errno));
  /* The server reads it, then takes its assignment on its next call. */
  int outcome = 0;
  for (int i = 0; i < 400 && !outcome; i++) {
    if (__atomic_load_n(&fake->attached1, __ATOMIC_ACQUIRE)) outcome = 1;
    else if (__atomic_load_n(&real->attached1, __ATOMIC_ACQUIRE)) outcome = 2;
    else usleep(500);
  }
  *h = saved;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (outcome == 1) forged_attached++;
  else if (outcome == 2) real_attached++;
  else stayed_tcp++;
  close(fd);
  usleep(20000); /* let the server release it before the control connection runs again */
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  prog_name = "hostile_peer";
  unsigned long rounds = 10000, forge = 0;
  uint64_t seed = 1;
  unsigned timeout = 300;
  if (argc < 2) die("usage: hostile_peer PORT [--rounds N] [--seed S] [--timeout S]");
  port = (unsigned)strtoul(argv[1], NULL, 10);
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--rounds")) rounds = strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--seed")) seed = strtoull(argv[i + 1], NULL, 0);
    else if (!strcmp(argv[i], "--forge-header")) forge = strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--timeout")) timeout = (unsigned)strtoul(argv[i + 1], NULL, 10);
    else die("unknown option %s", argv[i]);
  }
  watchdog(timeout);
  signal(SIGPIPE, SIG_IGN);
  rng_seed(&R, seed);
  ctl_buf = malloc(16384);
  ctl_back = malloc(16384);
  scratch = malloc(VERIFY_SCRATCH);
  if (!ctl_buf || !ctl_back || !scratch) die("out of memory");

  /* The control connection first: upgraded, then checked throughout. */
  ctl_fd = dial();
  struct slot cs;
  if (!upgrade(ctl_fd, 0, &cs)) die("the control connection was not upgraded");
  uint8_t hdr0[64];
  memcpy(hdr0, cs.hdr, sizeof hdr0);
  ctl_check();

  if (forge) {
    for (unsigned long k = 0; k < forge; k++) {
      forge_attempt(&cs, k + 1);
      ctl_check();
      ctl_check();
    }
    int ok = forged_attached == 0 && !memcmp(cs.arena, hdr0, sizeof hdr0);
    printf("{\"ok\":%s,\"forge_attempts\":%lu,\"forged_attached\":%lu,\"real_attached\":%lu,\"stayed_tcp\":%lu,"
           "\"skipped\":%lu,\"ctl_checks\":%llu}\n",
           ok ? "true" : "false", forge, forged_attached, real_attached, stayed_tcp, skipped, (unsigned long long)ctl_checks);
    fflush(stdout);
    return ok ? 0 : 1;
  }

  unsigned long conns = 0, resets = 0, silent_total = 0, not_upgraded = 0, upgraded = 0;
  int fd = -1, silent = 0;
  struct slot s;
  for (unsigned long r = 0; r < rounds; r++) {
    if (fd < 0) {
      fd = dial();
      conns++;
      if (!upgrade(fd, conns, &s)) {
        not_upgraded++;
        close(fd);
        fd = -1;
        if (not_upgraded > 50 && upgraded == 0) die("no connection gets upgraded (%lu tried)", not_upgraded);
        r--;
        continue;
      }
      upgraded++;
      silent = 0;
      if (memcmp(s.hdr, hdr0, sizeof hdr0) && s.arena == cs.arena) die("the arena header changed");
    }
    struct saved sv = corrupt(&s);
    int p = provoke(fd);
    if (p == -1) {
      silent++;
      silent_total++;
    } else {
      silent = 0;
    }
    if (p == 1 || __atomic_load_n(&s.ctrl->reset, __ATOMIC_ACQUIRE)) {
      resets += p == 1;
      close(fd); /* never touch that slot again: its arena may be unmapped */
      fd = -1;
    } else if (silent >= 3) {
      close(fd);
      fd = -1;
    } else if (rng_next(&R) % 4 == 0) {
      restore(&s, sv);
    }
    if (r % 64 == 0) ctl_check();
  }
  if (fd >= 0) close(fd);
  ctl_check();
  if (memcmp(cs.arena, hdr0, sizeof hdr0)) die("the arena header changed");
  printf("{\"ok\":true,\"rounds\":%lu,\"conns\":%lu,\"upgraded\":%lu,\"resets\":%lu,\"silent\":%lu,\"not_upgraded\":%lu,"
         "\"ctl_checks\":%llu,\"ctl_bytes\":%llu}\n",
         rounds, conns, upgraded, resets, silent_total, not_upgraded, (unsigned long long)ctl_checks,
         (unsigned long long)ctl_off);
  fflush(stdout);
  shutdown(ctl_fd, SHUT_WR);
  char c;
  while (read(ctl_fd, &c, 1) > 0) {
  }
  close(ctl_fd);
  return 0;
}
