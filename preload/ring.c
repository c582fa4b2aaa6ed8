/* The data path of a tracked connection: TCP with byte accounting until the
 * handover, then the SPSC rings; waiting and waking.
 *
 * Every value read from the slot is the peer's and may be hostile: indices
 * are compared through their unsigned difference against ring_size before a
 * copy length is derived from them, and a bad one resets the connection. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>
#include "barrier.h"
#include "pd.h"

static void doorbell(int efd)
{
	uint64_t one = 1;
	(void)!pd_real.write(efd, &one, sizeof one);
}

static int conn_reset(struct pd_conn *c, const char *why)
{
	if (!__atomic_exchange_n(&c->reset, 1, __ATOMIC_ACQ_REL)) {
		pd_warn("conn %llu: %s: connection reset", (unsigned long long)c->id, why);
		pd_store_release(&c->slot->reset, 1);
		doorbell(c->efd_rx_peer);
		doorbell(c->efd_tx_peer);
	}
	return -ECONNRESET;
}

static bool slot_reset(struct pd_conn *c)
{
	if (PD_UNLIKELY(__atomic_load_n(&c->reset, __ATOMIC_RELAXED))) return true;
	if (PD_UNLIKELY(pd_load_relaxed(&c->slot->reset))) {
		__atomic_store_n(&c->reset, 1, __ATOMIC_RELAXED);
		return true;
	}
	return false;
}

static int sock_timeout_ms(struct pd_conn *c, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	if (getsockopt(c->sock, SOL_SOCKET, opt, &tv, &len) < 0) return -1;
	if (tv.tv_sec == 0 && tv.tv_usec == 0) return -1;
	long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

/* A wait interrupted by a signal: does TCP return EINTR here, or restart?
 * The kernel restarts a socket call when the handler that ran has
 * SA_RESTART and the socket has no timeout for that direction (signal(7)).
 * signal.c wraps the application's handlers and tells which ones ran on this
 * thread during the sleep (pd_sig_wait_begin before it); see there for the
 * handlers it cannot see. Runs only on the rare interrupted wait. */
static bool eintr_returns(struct pd_conn *c, int timeo_opt)
{
	if (sock_timeout_ms(c, timeo_opt) >= 0) return true;
	return !pd_sig_wait_restarts();
}

/* ---- copies between iovecs and a ring ---- */

struct iov_cursor {
	const struct iovec *iov;
	int cnt;
	int i;
	size_t off;
};

static void cursor_skip(struct iov_cursor *cu, size_t n)
{
	while (n > 0 && cu->i < cu->cnt) {
		size_t left = cu->iov[cu->i].iov_len - cu->off;
		if (n < left) {
			cu->off += n;
			return;
		}
		n -= left;
		cu->i++;
		cu->off = 0;
	}
}

/* copy n bytes from the cursor into ring[pos & mask ...], wrapping */
static void copy_to_ring(uint8_t *ring, uint32_t size, uint64_t pos, struct iov_cursor *cu, size_t n)
{
	while (n > 0) {
		while (cu->iov[cu->i].iov_len == cu->off) {
			cu->i++;
			cu->off = 0;
		}
		size_t at = (size_t)(pos & (size - 1));
		size_t k = cu->iov[cu->i].iov_len - cu->off;
		if (k > n) k = n;
		if (k > size - at) k = size - at;
		memcpy(ring + at, (const uint8_t *)cu->iov[cu->i].iov_base + cu->off, k);
		cu->off += k;
		pos += k;
		n -= k;
	}
}

static void copy_from_ring(const uint8_t *ring, uint32_t size, uint64_t pos, struct iov_cursor *cu, size_t n)
{
	while (n > 0) {
		while (cu->iov[cu->i].iov_len == cu->off) {
			cu->i++;
			cu->off = 0;
		}
		size_t at = (size_t)(pos & (size - 1));
		size_t k = cu->iov[cu->i].iov_len - cu->off;
		if (k > n) k = n;
		if (k > size - at) k = size - at;
		memcpy((uint8_t *)cu->iov[cu->i].iov_base + cu->off, ring + at, k);
		cu->off += k;
		pos += k;
		n -= k;
	}
}

/* ---- waking ---- */

/* The armed words count the peer's threads asleep (or about to sleep) on a
 * doorbell: a waiter adds itself, fences, re-checks, sleeps, and removes
 * itself when it wakes. So a busy peer is never rung, and the waker needs no
 * exchange: it rings while the count is non-zero. */

/* After publishing head: wake the peer's reader if it is asleep. */
static inline void wake_reader(struct pd_conn *c)
{
	pd_fence_full(); /* orders our head (or switched) store before the armed load */
	if (pd_load_relaxed(&c->txd->reader_armed)) doorbell(c->efd_rx_peer);
}

/* After publishing tail: wake the peer's writer if it is asleep. */
static inline void wake_writer(struct pd_conn *c)
{
	pd_fence_full(); /* orders our tail store before the armed load */
	if (pd_load_relaxed(&c->rxd->writer_armed)) doorbell(c->efd_tx_peer);
}

static inline void arm_add(uint32_t *w, int d)
{
	__atomic_add_fetch(w, (uint32_t)d, __ATOMIC_RELAXED);
}

/* ---- waiting ---- */

/* Something for the reader: ring data (rx_need bytes past rx_tail: 1, or
 * more than a MSG_PEEK under SO_RCVLOWAT already saw), end of stream, reset,
 * or (before the peer switched) the switch itself. */
static bool rx_ready(struct pd_conn *c)
{
	if (slot_reset(c)) return true;
	/* before the switch is seen, the switch itself is news; after it, the
	 * remaining TCP bytes arrive on the socket, which wait_rx polls */
	if (!c->rx_ring) {
		if (!c->rx_sw_seen) return pd_load_acquire(&c->rxd->switched) != 0;
		/* shared after fork(): the other process may have read the last
		 * TCP bytes (it rings our doorbell when it does, rx_tcp_count) */
		return PD_UNLIKELY(pd_conn_forked(c)) &&
		       pd_load_relaxed(&c->rxd->rx_tcp_bytes) >= pd_load_relaxed(&c->rxd->tx_tcp_bytes);
	}
	/* shared after fork(): our private tail is stale once the other
	 * process consumed; the shared one says what is left */
	uint64_t t = PD_UNLIKELY(pd_conn_forked(c)) ? pd_load_acquire(&c->rxd->tail) : c->rx_tail;
	return pd_load_acquire(&c->rxd->head) - t >= c->rx_need || pd_load_acquire(&c->rxd->wr_closed);
}

/* The peer will never read again: it closed its last fd, or the controller
 * saw its process die (a SIGKILLed reader sets no flag of its own). */
static bool peer_gone(struct pd_conn *c)
{
	return pd_load_acquire(&c->txd->rd_closed) || __atomic_load_n(&c->peer_exited, __ATOMIC_RELAXED) ||
	       pd_load_acquire(c->role == 0 ? &c->slot->dead1 : &c->slot->dead0);
}

static bool tx_ready(struct pd_conn *c)
{
	if (slot_reset(c)) return true;
	if (peer_gone(c) || __atomic_load_n(&c->tx_sock_err, __ATOMIC_RELAXED)) return true;
	return c->tx_head - pd_load_acquire(&c->txd->tail) < c->ring_size;
}

/* Bounded, adaptive spin before sleeping. Each wait kind keeps a budget
 * that halves when a spin ends in sleep anyway and grows when it pays, so a
 * connection whose peer is rarely quick stops burning CPU. After the first
 * microseconds the loop yields the CPU: the peer we wait for may have been
 * woken onto our own core (wake-affine) and cannot run while we spin. */
static bool spin(struct pd_conn *c, bool (*ready)(struct pd_conn *), uint32_t *budget_ns)
{
	const uint32_t max = (uint32_t)pd_cfg.spin_us * 1000u;
	if (max == 0) return false;
	uint32_t budget = *budget_ns;
	if (budget == 0 || budget > max) budget = max;
	uint64_t start = pd_now_ns(), now = start;
	for (;;) {
		for (int i = 0; i < 64; i++) {
			if (ready(c)) {
				uint32_t grown = budget + max / 8;
				*budget_ns = grown > max ? max : grown;
				return true;
			}
			pd_cpu_relax();
		}
		now = pd_now_ns();
		if (now - start >= budget) break;
		if (now - start >= 2000) sched_yield();
	}
	*budget_ns = budget / 2 < 1000 ? 1000 : budget / 2;
	return false;
}

/* ---- the waiting set ----
 *
 * A blocking call sleeps in epoll_wait on a per-thread epoll instance that
 * holds the connection it waits on: its two doorbells, its kernel socket and
 * the peer's pidfd, all edge-triggered. Nothing here ever reads a doorbell:
 * its eventfd count only grows, so an edge the kernel queued for another
 * waiter (an application's epoll set, a poll) is never dropped when that
 * waiter collects it (the kernel drops an edge-triggered event whose file is
 * no longer ready at collection: an eventfd read to 0 is not). The waiter
 * arms before its re-check, so any publish it needs comes after the arm and
 * rings: a fresh edge in its own registration, never consumed by anyone else.
 *
 * The set is bound to one connection at a time (a thread blocks on one
 * connection at a time): blocking on another one moves the registrations
 * (a few epoll_ctl calls), blocking on the same one again costs nothing.
 * The socket and the pidfd are level conditions seen through edges: an edge
 * collected by the other direction's waiter of the same thread is passed on
 * in look_rx/look_tx, and the conditions they signal (FIN, reset, a dead
 * peer) are made sticky on the connection, so no later wait depends on an
 * edge that was already collected. */
enum { WK_SOCK = 0, WK_RX = 1, WK_TX = 2, WK_PEER = 3, WK_N = 4 };

struct wait_set {
	int ep;                /* the thread's epoll instance, -1 until first needed */
	struct pd_conn *c;     /* the connection registered in it */
	uint64_t serial;       /* its serial then (connection objects are recycled) */
	uint64_t gen;          /* bumped at each binding: tags of older ones are stale */
	int fd[WK_N];          /* the fds registered, -1 when none */
	bool look_rx, look_tx; /* an edge the other direction's waiter collected */
};

static __thread struct wait_set ws = { .ep = -1, .fd = { -1, -1, -1, -1 } };
static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;

static void ws_close(void *p)
{
	int fd = (int)(intptr_t)p - 1;
	if (fd >= 0) {
		pd_fd_set_kind(fd, PD_FK_UNKNOWN);
		pd_real.close(fd);
	}
}

static void ws_key_init(void)
{
	pthread_key_create(&ws_key, ws_close);
}

static uint64_t ws_tag(int kind)
{
	return ws.gen << 2 | (uint64_t)kind;
}

/* Unregister the bound connection: its fds may be closed or renumbered by
 * now, so an fd number may name another file (ENOENT, harmless: only the
 * bound connection's files are ever in the set under those numbers) or the
 * old file may linger under its old number until its last reference closes;
 * its events then carry an old generation and are ignored. */
static void ws_unbind(void)
{
	int saved = errno;
	for (int k = 0; k < WK_N; k++) {
		if (ws.fd[k] >= 0) (void)pd_real.epoll_ctl(ws.ep, EPOLL_CTL_DEL, ws.fd[k], NULL);
		ws.fd[k] = -1;
	}
	ws.c = NULL;
	ws.serial = 0;
	ws.look_rx = ws.look_tx = false;
	ws.gen++;
	errno = saved;
}

static bool ws_add(int kind, int fd, uint32_t events)
{
	if (fd < 0) return kind == WK_PEER; /* no pidfd: the flags and the controller tell */
	struct epoll_event ev = { .events = events | EPOLLET, .data.u64 = ws_tag(kind) };
	if (pd_real.epoll_ctl(ws.ep, EPOLL_CTL_ADD, fd, &ev) < 0 && errno != EEXIST) return false;
	ws.fd[kind] = fd;
	return true;
}

/* The thread's set with c registered in it, or -1 (no fd, no memory: the
 * caller falls back to a short poll). Under the caller's rx or tx lock, so c
 * is attached and its fds are open. No syscall when c is bound already. */
static int ws_bind(struct pd_conn *c)
{
	if (PD_LIKELY(ws.c == c && ws.serial == c->serial && ws.ep >= 0)) return ws.ep;
	int saved = errno;
	if (ws.ep < 0) {
		pthread_once(&ws_once, ws_key_init);
		int fd = pd_real.epoll_create1(EPOLL_CLOEXEC);
		if (fd < 0) {
			errno = saved;
			return -1;
		}
		pd_fd_set_kind(fd, PD_FK_INTERNAL);
		ws.ep = fd;
		pthread_setspecific(ws_key, (void *)(intptr_t)(fd + 1));
	}
	ws_unbind();
	/* registering reports what is true already: no edge predates the set */
	bool ok = ws_add(WK_SOCK, __atomic_load_n(&c->sock, __ATOMIC_ACQUIRE), EPOLLIN | EPOLLRDHUP) &&
		  ws_add(WK_RX, c->efd_rx_self, EPOLLIN) && ws_add(WK_TX, c->efd_tx_self, EPOLLIN) &&
		  ws_add(WK_PEER, c->peer_proc, EPOLLIN);
	errno = saved;
	if (!ok) {
		ws_unbind();
		return -1;
	}
	ws.c = c;
	ws.serial = c->serial;
	return ws.ep;
}

/* The connection is going away (its doorbells close next): if this thread's
 * set holds it, take it out now, while the fd numbers still name its files. */
void pd_conn_wait_forget(struct pd_conn *c)
{
	if (ws.c == c && ws.ep >= 0) ws_unbind();
}

static uint32_t self_pid; /* the lock owner id (below) */

/* fork child: the thread's set is the parent's instance (shared): start a
 * new one on first need. */
void pd_ring_atfork_child(void)
{
	__atomic_store_n(&self_pid, 0, __ATOMIC_RELAXED); /* the parent's pid */
	if (ws.ep >= 0) {
		pd_fd_set_kind(ws.ep, PD_FK_UNKNOWN);
		pd_real.close(ws.ep);
		pthread_setspecific(ws_key, NULL); /* created with the set */
	}
	ws.ep = -1;
	for (int k = 0; k < WK_N; k++) ws.fd[k] = -1;
	ws.c = NULL;
	ws.serial = 0;
	ws.look_rx = ws.look_tx = false;
	ws.gen++;
}

/* What a wait saw of the kernel socket and the peer's process. */
struct wait_ev {
	uint32_t sock;  /* EPOLL* events of the kernel socket */
	bool peer;      /* the peer's process exited */
};

/* The socket and the pidfd now, level (a zero-timeout poll): a waiter that
 * could not bind a set, or that was told an edge went to the other side. */
static void look_now(struct pd_conn *c, struct wait_ev *we)
{
	struct pollfd p[2] = { { .fd = c->sock, .events = POLLIN | POLLRDHUP }, { .fd = c->peer_proc, .events = POLLIN } };
	int saved = errno;
	if (pd_real.poll(p, c->peer_proc >= 0 ? 2 : 1, 0) > 0) {
		we->sock = (uint32_t)(unsigned short)p[0].revents;
		we->peer = c->peer_proc >= 0 && p[1].revents;
	}
	errno = saved;
}

/* The sleep both waits share: spin, count ourselves in *armed, fence,
 * re-check, sleep on the set, uncount. Returns 0 when ready without
 * sleeping or woken (*we says what the kernel reported, zero when it did not
 * sleep), -EAGAIN when the socket's timeout for that direction expired, or
 * -errno (EINTR as TCP would). */
static int doorbell_wait(struct pd_conn *c, bool rx, bool (*ready)(struct pd_conn *), uint32_t *spin_ns,
			 uint32_t *armed, int timeo_opt, struct wait_ev *we)
{
	we->sock = 0;
	we->peer = false;
	if (spin(c, ready, spin_ns)) return 0;
	int ep = ws_bind(c);
	arm_add(armed, 1);
	pd_fence_full(); /* orders the armed store before the re-check loads */
	if (ready(c)) {
		arm_add(armed, -1);
		return 0;
	}
	bool *look = rx ? &ws.look_rx : &ws.look_tx;
	if (ep < 0 || *look) {
		/* an edge the other direction's waiter took, or no set: look at
		 * the socket now; without a set, sleep in short steps (the
		 * doorbell cannot be watched without reading it) */
		*look = false;
		look_now(c, we);
		if (ep < 0 && !we->sock && !we->peer) {
			struct pollfd p = { .fd = c->sock, .events = rx ? POLLIN | POLLRDHUP : 0 };
			int saved = errno;
			if (pd_real.poll(&p, 1, 1) > 0) we->sock = (uint32_t)(unsigned short)p.revents;
			errno = saved;
		}
		arm_add(armed, -1);
		return 0;
	}
	int timeout = sock_timeout_ms(c, timeo_opt);
	uint64_t start = timeout > 0 ? pd_now_ns() : 0;
	const int mine = rx ? WK_RX : WK_TX;
	struct epoll_event ev[8];
	int r = 0, e = 0;
	bool woke = false;
	while (!woke) {
		int t = timeout;
		if (timeout > 0) {
			uint64_t el = (pd_now_ns() - start) / 1000000u;
			t = el >= (uint64_t)timeout ? 0 : timeout - (int)el;
		}
		pd_sig_wait_begin();
		r = pd_real.epoll_wait(ep, ev, 8, t);
		if (r < 0) {
			e = errno;
			if (e == EINTR && !eintr_returns(c, timeo_opt)) continue;
			break;
		}
		if (r == 0) break; /* the socket's timeout */
		for (int i = 0; i < r; i++) {
			if (ev[i].data.u64 >> 2 != ws.gen) continue; /* queued for an older binding */
			int kind = (int)(ev[i].data.u64 & 3);
			if (kind == mine) {
				woke = true;
			} else if (kind == WK_SOCK) {
				we->sock |= ev[i].events;
				if (rx) {
					woke = true;
					if (ev[i].events & (EPOLLERR | EPOLLHUP)) ws.look_tx = true;
				} else {
					ws.look_rx = true;
					if (ev[i].events & (EPOLLERR | EPOLLHUP)) woke = true;
				}
			} else if (kind == WK_PEER) {
				we->peer = true;
				if (rx) ws.look_tx = true;
				else woke = true;
			}
			/* the other direction's doorbell: it arms and re-checks
			 * before it sleeps, so it needs no edge from before */
		}
	}
	arm_add(armed, -1);
	if (r < 0) return -e;
	return woke ? 0 : -EAGAIN;
}

/* Wait until rx_ready or the kernel socket is readable. Returns 0, -EAGAIN
 * (SO_RCVTIMEO expired) or another -errno. *sock_ev gets the socket's events. */
static int wait_rx(struct pd_conn *c, uint64_t need, uint32_t *sock_ev)
{
	struct wait_ev we;
	c->rx_need = need;
	int r = doorbell_wait(c, true, rx_ready, &c->rx_spin_ns, &c->rxd->reader_armed, SO_RCVTIMEO, &we);
	if (we.peer) __atomic_store_n(&c->peer_exited, 1, __ATOMIC_RELAXED);
	*sock_ev = r == 0 ? we.sock : 0;
	return r;
}

static int wait_tx(struct pd_conn *c)
{
	/* the socket only for errors (a half-closed peer makes it readable
	 * forever); the peer's pidfd: a SIGKILLed reader sets no flag, and
	 * the controller that would may be dead too. Both are sticky here:
	 * their edges come once. */
	struct wait_ev we;
	int r = doorbell_wait(c, false, tx_ready, &c->tx_spin_ns, &c->txd->writer_armed, SO_SNDTIMEO, &we);
	if (we.peer) __atomic_store_n(&c->peer_exited, 1, __ATOMIC_RELAXED);
	if (we.sock & (EPOLLERR | EPOLLHUP)) __atomic_store_n(&c->tx_sock_err, 1, __ATOMIC_RELAXED);
	if (r < 0) return r;
	if (__atomic_load_n(&c->tx_sock_err, __ATOMIC_RELAXED)) return -EPIPE;
	return 0;
}

/* ---- send ---- */

static ssize_t tcp_send(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags, const struct msghdr *orig)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	if (orig) {
		mh.msg_control = orig->msg_control;
		mh.msg_controllen = orig->msg_controllen;
	}
	ssize_t r = pd_real.sendmsg(c->sock, &mh, flags);
	if (r < 0) return -errno;
	c->tx_tcp += (uint64_t)r;
	return r;
}

static void raise_sigpipe(int flags)
{
	if (!(flags & MSG_NOSIGNAL)) pthread_kill(pthread_self(), SIGPIPE);
}

/* ---- the locks of a connection shared by processes after fork() ----
 *
 * After fork() both processes may write, and read, the same upgraded
 * socket, as TCP allows. A ring has one producer and one consumer: the
 * processes sharing an end take a lock word in the slot (tx_owner around
 * each chunk written, rx_owner around each consume) and resync their private
 * index from the shared one. Only connections marked forked take them: a
 * process that never forked pays one not-taken branch. The word holds the
 * owner's pid (cached: getpid() is a system call), for debugging only. */

/* self_pid: atomic; 0 = not read yet (and in a fork child) */
static uint32_t lock_owner_id(void)
{
	uint32_t p = __atomic_load_n(&self_pid, __ATOMIC_RELAXED);
	if (PD_UNLIKELY(!p)) {
		p = (uint32_t)getpid();
		__atomic_store_n(&self_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

/* false when the word stayed taken for a second: its holder died holding
 * it, or the memory was scribbled on; either way the connection cannot go
 * on (the caller resets it) */
static bool fork_lock(uint32_t *word)
{
	uint32_t me = lock_owner_id();
	uint64_t give_up = 0;
	for (int i = 0;; i++) {
		uint32_t z = 0;
		if (__atomic_compare_exchange_n(word, &z, me, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return true;
		if (i < 64) {
			pd_cpu_relax();
			continue;
		}
		uint64_t now = pd_now_ns();
		if (!give_up) give_up = now + 1000000000ull;
		else if (now > give_up) return false;
		sched_yield();
	}
}

static void fork_unlock(uint32_t *word)
{
	__atomic_store_n(word, 0, __ATOMIC_RELEASE); /* release: our index stores before the next owner's loads */
}

/* Writers: tx_owner around each chunk, the head resynced under it. (A
 * connection not yet switched at the fork stays on TCP for sending: the
 * two processes' TCP byte counts would disagree.) */
static bool fork_tx_lock(struct pd_conn *c)
{
	if (!fork_lock(&c->txd->tx_owner)) return false;
	c->tx_head = pd_load_acquire(&c->txd->head);
	return true;
}

static void fork_tx_unlock(struct pd_conn *c)
{
	fork_unlock(&c->txd->tx_owner);
}

static ssize_t ring_send(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	size_t total = pd_iov_len(iov, iovcnt);
	bool nonblock = (flags & MSG_DONTWAIT) || __atomic_load_n(&c->nonblock, __ATOMIC_RELAXED);
	struct iov_cursor cu = { .iov = iov, .cnt = iovcnt };
	size_t done = 0;
	const uint32_t size = c->ring_size;
	const size_t chunk = size / 4 > 16384 ? size / 4 : size;
	if (total == 0) return 0;
	for (;;) {
		if (slot_reset(c)) return done ? (ssize_t)done : -ECONNRESET;
		if (!c->wr_shut && peer_gone(c) && !__atomic_load_n(&c->epipe_next, __ATOMIC_RELAXED)) {
			/* TCP accepts the first write after the peer closed (its RST
			 * comes back); the bytes go nowhere, the next write fails */
			__atomic_store_n(&c->epipe_next, 1, __ATOMIC_RELAXED);
			return (ssize_t)total;
		}
		if (c->wr_shut || peer_gone(c)) {
			if (done) return (ssize_t)done;
			raise_sigpipe(flags);
			return -EPIPE;
		}
		if (PD_UNLIKELY(pd_conn_forked(c))) c->tx_head = pd_load_acquire(&c->txd->head); /* another process may have written */
		uint64_t tail = pd_load_acquire(&c->txd->tail); /* acquire: the reader is done with those bytes */
		uint64_t used = c->tx_head - tail;
		if (PD_UNLIKELY(used > size)) return conn_reset(c, "peer published a tail past the head");
		size_t space = size - (size_t)used;
		if (space > 0) {
			size_t n = total - done;
			if (n > space) n = space;
			if (n > chunk) n = chunk;
			if (PD_UNLIKELY(pd_conn_forked(c))) {
				if (!fork_tx_lock(c)) return done ? (ssize_t)done : conn_reset(c, "the shared writer lock is stuck");
				used = c->tx_head - pd_load_acquire(&c->txd->tail);
				if (used > size || size - (size_t)used < n) { /* the other process wrote meanwhile */
					fork_tx_unlock(c);
					if (used > size) return conn_reset(c, "peer published a tail past the head");
					continue;
				}
			}
			copy_to_ring(c->tx_buf, size, c->tx_head, &cu, n);
			c->tx_head += n;
			pd_store_release(&c->txd->head, c->tx_head); /* release: the bytes before the index */
			if (PD_UNLIKELY(pd_conn_forked(c))) fork_tx_unlock(c);
			wake_reader(c);
			done += n;
			if (done == total) return (ssize_t)done;
			continue;
		}
		if (nonblock) return done ? (ssize_t)done : -EAGAIN;
		int r = wait_tx(c);
		if (r == -EPIPE) {
			if (done) return (ssize_t)done;
			raise_sigpipe(flags);
			return -EPIPE;
		}
		if (r < 0) return done ? (ssize_t)done : r;
	}
}

/* Under tx_lock: true when we send by the ring, switching now if we may. */
static bool tx_use_ring(struct pd_conn *c, int flags, const struct msghdr *orig)
{
	if (PD_LIKELY(c->tx_switched)) return true;
	if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != PD_CS_ATTACHED || c->wr_shut || pd_conn_forked(c) ||
	    (orig && orig->msg_controllen) || (flags & MSG_OOB) ||
	    !pd_load_acquire(c->role == 0 ? &c->slot->attached1 : &c->slot->attached0))
		return false;
	/* The handover of our sending direction: every byte so far went by
	 * TCP and is counted; the peer is attached and will read TCP up to
	 * tx_tcp_bytes, then the ring. */
	pd_store_relaxed(&c->txd->tx_tcp_bytes, c->tx_tcp);
	pd_store_release(&c->txd->switched, 1); /* release: tx_tcp_bytes before switched */
	__atomic_store_n(&c->tx_switched, true, __ATOMIC_RELEASE);
	wake_reader(c);
	pd_debug("conn %llu: sending direction switched after %llu TCP bytes", (unsigned long long)c->id,
		 (unsigned long long)c->tx_tcp);
	return true;
}

ssize_t pd_conn_send_msg(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags, const struct msghdr *orig)
{
	ssize_t r;
	pthread_mutex_lock(&c->tx_lock);
	if (tx_use_ring(c, flags, orig)) r = ring_send(c, iov, iovcnt, flags);
	else r = tcp_send(c, iov, iovcnt, flags, orig);
	pthread_mutex_unlock(&c->tx_lock);
	return r;
}

/* sendfile into a connection: the kernel's own while on TCP, a copy through
 * a bounce buffer once on the ring. off == NULL uses and moves in's offset. */
ssize_t pd_conn_sendfile(struct pd_conn *c, int in, off_t *off, size_t count)
{
	ssize_t r;
	pthread_mutex_lock(&c->tx_lock);
	if (!tx_use_ring(c, 0, NULL)) {
		r = pd_real.sendfile(c->sock, in, off, count);
		if (r < 0) r = -errno;
		else c->tx_tcp += (uint64_t)r;
		pthread_mutex_unlock(&c->tx_lock);
		return r;
	}
	off_t pos = off ? *off : lseek(in, 0, SEEK_CUR);
	if (pos < 0) {
		pthread_mutex_unlock(&c->tx_lock);
		return -errno;
	}
	uint8_t buf[65536];
	size_t done = 0;
	r = 0;
	while (done < count) {
		size_t want = count - done < sizeof buf ? count - done : sizeof buf;
		ssize_t n = pread(in, buf, want, pos + (off_t)done);
		if (n < 0) {
			if (errno == EINTR) continue;
			r = -errno;
			break;
		}
		if (n == 0) break;
		struct iovec v = { .iov_base = buf, .iov_len = (size_t)n };
		ssize_t s = ring_send(c, &v, 1, 0);
		if (s < 0) {
			r = s;
			break;
		}
		done += (size_t)s;
		if (s < n) break; /* non-blocking and the ring is full */
	}
	if (done > 0 || r == 0) {
		r = (ssize_t)done;
		if (off) *off = pos + (off_t)done;
		else lseek(in, pos + (off_t)done, SEEK_SET);
	}
	pthread_mutex_unlock(&c->tx_lock);
	return r;
}

ssize_t pd_conn_send(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	return pd_conn_send_msg(c, iov, iovcnt, flags, NULL);
}

/* ---- receive ---- */

/* iovecs limited to n bytes (for the TCP bytes before the switch) */
static int iov_limit(const struct iovec *in, int cnt, size_t n, struct iovec *out, int max)
{
	int k = 0;
	for (int i = 0; i < cnt && n > 0 && k < max; i++) {
		out[k] = in[i];
		if (out[k].iov_len > n) out[k].iov_len = n;
		n -= out[k].iov_len;
		k++;
	}
	return k;
}

/* The reader (under rx_lock) counts its TCP bytes; readiness in other
 * threads reads the count (rx_tcp_owed), hence the atomic store. */
static void rx_tcp_add(struct pd_conn *c, uint64_t n)
{
	__atomic_store_n(&c->rx_tcp, c->rx_tcp + n, __ATOMIC_RELAXED);
}

/* The same once attached: the count is also published in the slot
 * (rx_tcp_bytes, stored at attach), where every process sharing the end
 * after fork() adds what it read, so each knows when the TCP bytes from
 * before the peer's switch are all read, whoever read them. An add, not a
 * store: a thread of the parent that was inside this read when another
 * thread forked does not know yet that the end is shared (one atomic add
 * beside a recvmsg, and only before the switch). A forked reader that read
 * the last of them wakes the other process's waiters: their condition
 * (rx_ready) just became true, and nobody else would ring (their edge for
 * the arrival of those bytes is dropped by epoll_wait once the socket is
 * empty again: preload/model/forkread.pml, BROKEN_NO_COUNT_DOORBELL). */
static void rx_tcp_count(struct pd_conn *c, uint64_t n)
{
	rx_tcp_add(c, n);
	uint64_t all = __atomic_add_fetch(&c->rxd->rx_tcp_bytes, n, __ATOMIC_RELAXED);
	if (PD_UNLIKELY(pd_conn_forked(c))) {
		pd_fence_full(); /* orders the count's add before the armed load */
		if (pd_load_relaxed(&c->rxd->reader_armed) && pd_load_acquire(&c->rxd->switched) &&
		    all >= pd_load_relaxed(&c->rxd->tx_tcp_bytes))
			doorbell(c->efd_rx_self);
	}
}

/* TCP bytes read by this end: after fork() by all the processes sharing
 * it (the slot's count), else our own. Any thread. */
static uint64_t rx_tcp_read(struct pd_conn *c)
{
	if (PD_UNLIKELY(pd_conn_forked(c))) return pd_load_relaxed(&c->rxd->rx_tcp_bytes);
	return __atomic_load_n(&c->rx_tcp, __ATOMIC_RELAXED);
}

/* Readers of an end shared after fork() take rx_owner around each consume
 * (in pd_conn_recv_msg: from the first attempt of a call until it waits or
 * returns, so a call that needs no wait takes one contiguous piece, as
 * tcp_recvmsg does under the socket lock) and resync the private tail and
 * TCP count from the slot under it. Under rx_lock. */
static bool fork_rx_lock(struct pd_conn *c)
{
	if (!fork_lock(&c->rxd->rx_owner)) return false;
	c->rx_tail = pd_load_acquire(&c->rxd->tail); /* checked against head by ring_recv_once */
	__atomic_store_n(&c->rx_tcp, pd_load_relaxed(&c->rxd->rx_tcp_bytes), __ATOMIC_RELAXED); /* checked by tcp_recv_once */
	return true;
}

static void fork_rx_unlock(struct pd_conn *c)
{
	fork_unlock(&c->rxd->rx_owner);
}

/* One attempt at the TCP part: >0 bytes, 0 EOF, -EAGAIN nothing yet, or -errno. */
static ssize_t tcp_recv_once(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags, bool *switched_now)
{
	uint32_t sw = pd_load_acquire(&c->rxd->switched); /* acquire: tx_tcp_bytes is valid */
	*switched_now = sw != 0;
	if (sw) c->rx_sw_seen = true;
	struct iovec lim[64];
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	if (sw) {
		uint64_t limit = pd_load_relaxed(&c->rxd->tx_tcp_bytes);
		if (PD_UNLIKELY(limit < c->rx_tcp)) return conn_reset(c, "peer claims fewer TCP bytes than were read");
		if (limit == c->rx_tcp) {
			__atomic_store_n(&c->rx_ring, true, __ATOMIC_RELAXED); /* read by readiness in other threads */
			return -EAGAIN;
		}
		int k = iov_limit(iov, iovcnt, (size_t)(limit - c->rx_tcp), lim, 64);
		mh.msg_iov = lim;
		mh.msg_iovlen = (size_t)k;
	}
	ssize_t r = pd_real.recvmsg(c->sock, &mh, (flags & ~MSG_WAITALL) | MSG_DONTWAIT);
	if (r < 0) return -errno;
	if (r == 0 && !sw && pd_load_acquire(&c->rxd->switched)) {
		/* FIN after a switch we had not seen: the ring may hold the rest */
		*switched_now = true;
		return -EAGAIN;
	}
	if (r > 0 && !(flags & MSG_PEEK)) rx_tcp_count(c, (uint64_t)r);
	return r;
}

/* One attempt at the ring: >0 bytes, 0 EOF, -EAGAIN nothing yet, or -errno.
 * skip: ring bytes a MSG_PEEK of this call already copied (SO_RCVLOWAT). */
static ssize_t ring_recv_once(struct pd_conn *c, struct iov_cursor *cu, size_t want, int flags, bool check_kernel,
			      uint64_t skip)
{
	const uint32_t size = c->ring_size;
	const uint64_t pos = c->rx_tail + skip;
	uint64_t head = pd_load_acquire(&c->rxd->head); /* acquire: the bytes before the index */
	uint64_t avail = head - pos;
	if (PD_UNLIKELY(avail > size)) return conn_reset(c, "peer published a head past the ring");
	if (avail > 0) {
		size_t n = avail < want ? (size_t)avail : want;
		if (!(flags & MSG_TRUNC)) copy_from_ring(c->rx_buf, size, pos, cu, n); /* TCP: MSG_TRUNC discards */
		if (!(flags & MSG_PEEK)) {
			c->rx_tail += n;
			pd_store_release(&c->rxd->tail, c->rx_tail); /* release: we are done reading those bytes */
			wake_writer(c);
		}
		return (ssize_t)n;
	}
	if (pd_load_acquire(&c->rxd->wr_closed)) {
		if (pd_load_acquire(&c->rxd->head) != pos) return -EINTR; /* raced: go again */
		/* a peer that closed with SO_LINGER {1,0} reset the kernel
		 * connection: TCP reports ECONNRESET once, then EOF */
		char b;
		if (pd_real.recv(c->sock, &b, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == ECONNRESET) {
			__atomic_store_n(&c->epipe_next, 1, __ATOMIC_RELAXED); /* the RST is in: writes fail now */
			return -ECONNRESET;
		}
		return 0;
	}
	if (c->rd_shut) return 0; /* SHUT_RD: what was queued was read; now EOF */
	if (c->rx_fin) { /* the FIN was seen: EOF for good, as TCP */
		if (pd_load_acquire(&c->rxd->head) != pos) return -EINTR;
		return 0;
	}
	if (!check_kernel) return -EAGAIN;
	/* The peer's FIN (or RST) still arrives on the kernel socket. Its edge
	 * comes once (wait_rx): rx_kcheck keeps it until this look, and rx_fin
	 * keeps what the look found. */
	c->rx_kcheck = false;
	char b;
	ssize_t r = pd_real.recv(c->sock, &b, 1, MSG_DONTWAIT | MSG_PEEK);
	if (r > 0) return conn_reset(c, "peer wrote to TCP after switching to the ring");
	if (r == 0) {
		/* FIN: the peer published every ring byte before closing */
		c->rx_fin = true;
		if (pd_load_acquire(&c->rxd->head) != pos) return -EINTR;
		return 0;
	}
	if (errno == ECONNRESET || errno == ETIMEDOUT || errno == EHOSTUNREACH || errno == ENETUNREACH) {
		c->rx_fin = true; /* TCP reports the error once, then EOF */
		__atomic_store_n(&c->epipe_next, 1, __ATOMIC_RELAXED);
	}
	return -errno;
}

ssize_t pd_conn_recv_msg(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags, struct msghdr *orig)
{
	size_t want = pd_iov_len(iov, iovcnt);
	bool nonblock = (flags & MSG_DONTWAIT) || __atomic_load_n(&c->nonblock, __ATOMIC_RELAXED);
	ssize_t got = 0;
	pthread_mutex_lock(&c->rx_lock);
	/* read under rx_lock: attaching takes it, so the state cannot change under us */
	bool attached = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ATTACHED;
	if (!attached) {
		/* Not attached: the peer cannot switch; the kernel does it all. */
		struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
		ssize_t r = pd_real.recvmsg(c->sock, orig ? orig : &mh, flags);
		if (r < 0) r = -errno;
		else if (!(flags & MSG_PEEK)) rx_tcp_add(c, (uint64_t)r);
		pthread_mutex_unlock(&c->rx_lock);
		return r;
	}
	struct iov_cursor cu = { .iov = iov, .cnt = iovcnt };
	bool forked = PD_UNLIKELY(pd_conn_forked(c)); /* read again after each wait: a fork may come meanwhile */
	bool owner = false;       /* forked: we hold rx_owner */
	uint64_t peek_tail = 0;   /* forked: the tail a MSG_PEEK of this call started from */
	if (want == 0) { /* TCP: EAGAIN when nothing is there and the call may not wait */
		uint64_t t = forked ? pd_load_acquire(&c->rxd->tail) : c->rx_tail;
		if (nonblock && c->rx_ring && pd_load_acquire(&c->rxd->head) == t &&
		    !pd_load_acquire(&c->rxd->wr_closed) && !c->rd_shut)
			got = -EAGAIN;
		else if (nonblock && !c->rx_ring)
			got = pd_real.recv(c->sock, NULL, 0, flags | MSG_DONTWAIT) < 0 ? -errno : 0;
		goto out;
	}
	/* What the call waits for, as tcp_recvmsg's target: all of it with
	 * MSG_WAITALL, else min(SO_RCVLOWAT, len); it copies what comes
	 * meanwhile and returns it at the timeout, a signal or EOF. A MSG_PEEK
	 * goes on peeking past what it saw, up to a ring's worth at most. */
	size_t target = 1;
	if (flags & MSG_WAITALL) target = want;
	else {
		int lw = __atomic_load_n(&c->rcvlowat, __ATOMIC_RELAXED);
		if (PD_UNLIKELY(lw > 1)) target = (size_t)lw < want ? (size_t)lw : want;
	}
	if (PD_UNLIKELY(flags & MSG_PEEK) && target > c->ring_size) target = c->ring_size;
	for (;;) {
		ssize_t r;
		bool from_ring = false;
		if (PD_UNLIKELY(forked) && !owner && !slot_reset(c)) {
			if (!fork_rx_lock(c)) {
				if (got == 0) got = conn_reset(c, "the shared reader lock is stuck");
				break;
			}
			owner = true;
			/* a peek that waited: if the other process consumed meanwhile,
			 * what it saw is gone; return that (the kernel's tcp_recvmsg
			 * warns of the race and starts again from the new place) */
			if ((flags & MSG_PEEK) && got > 0 && c->rx_tail != peek_tail) break;
			peek_tail = c->rx_tail;
		}
		if (slot_reset(c)) {
			r = -ECONNRESET;
		} else if (!c->rx_ring) {
			bool sw;
			struct iovec rest[64];
			const struct iovec *v = iov;
			int vc = iovcnt;
			if (got > 0) { /* MSG_WAITALL continuing */
				struct iov_cursor tmp = { .iov = iov, .cnt = iovcnt };
				cursor_skip(&tmp, (size_t)got);
				vc = 0;
				for (int i = tmp.i; i < iovcnt && vc < 64; i++) {
					rest[vc].iov_base = (uint8_t *)iov[i].iov_base + (i == tmp.i ? tmp.off : 0);
					rest[vc].iov_len = iov[i].iov_len - (i == tmp.i ? tmp.off : 0);
					vc++;
				}
				v = rest;
			}
			r = tcp_recv_once(c, v, vc, flags, &sw);
			if (r > 0) cursor_skip(&cu, (size_t)r);
			if (r == -EAGAIN && c->rx_ring) continue; /* all TCP bytes read: go to the ring */
			(void)sw;
		} else {
			r = ring_recv_once(c, &cu, want - (size_t)got, flags, c->rx_kcheck || nonblock,
					   (flags & MSG_PEEK) ? (uint64_t)got : 0);
			if (r == -EINTR) continue;
			from_ring = true;
		}
		if (r > 0) {
			got += r;
			if ((size_t)got >= target) break;
			if ((flags & MSG_PEEK) && !from_ring) break; /* a peek cannot go on past the kernel's queue */
			continue;
		}
		if (r == 0) break;
		if (r != -EAGAIN) {
			if (got == 0) got = r;
			break;
		}
		if (nonblock) {
			if (got == 0) got = -EAGAIN;
			break;
		}
		uint32_t ev;
		if (owner) { /* never wait holding the other process up */
			fork_rx_unlock(c);
			owner = false;
		}
		/* a peek waits for more than it saw; a read for any byte */
		int w = wait_rx(c, (flags & MSG_PEEK) ? (uint64_t)got + 1 : 1, &ev);
		if (w < 0) {
			if (got == 0) got = w;
			break;
		}
		if (ev) c->rx_kcheck = true; /* an edge: kept until the socket is looked at */
		forked = PD_UNLIKELY(pd_conn_forked(c));
	}
	if (owner) fork_rx_unlock(c);
out:
	pthread_mutex_unlock(&c->rx_lock);
	return got;
}

ssize_t pd_conn_recv(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags)
{
	return pd_conn_recv_msg(c, iov, iovcnt, flags, NULL);
}

int pd_conn_shutdown(struct pd_conn *c, int how)
{
	if (how == SHUT_WR || how == SHUT_RDWR) {
		pthread_mutex_lock(&c->tx_lock);
		c->wr_shut = true;
		/* release: our ring bytes are visible before the end marker */
		if (c->tx_switched) {
			pd_store_release(&c->txd->wr_closed, 1);
			wake_reader(c);
		}
		pthread_mutex_unlock(&c->tx_lock);
	}
	if (how == SHUT_RD || how == SHUT_RDWR) c->rd_shut = true;
	return 0;
}

/* Readiness of an attached connection from the ring alone (EPOLL* bits,
 * which equal the POLL* ones). Lock-free and approximate in the way the
 * kernel's is: a racing call may change it right after. What the ring does
 * not know (TCP bytes before the switch, EPOLLOUT before our switch, the
 * peer's FIN) the kernel socket still reports. *head and *tail receive the
 * indices seen, for edge-triggered callers. */
/* TCP bytes the peer sent before its switch that we have not read yet: the
 * read path takes them first, so the ring (its bytes and its EOF) is
 * readable only once this is 0; meanwhile the kernel socket, which stays in
 * every readiness set, reports them as they arrive. Reporting the ring
 * earlier would send a non-blocking reader into EAGAIN after EPOLLIN. 0 as
 * well when nothing is on the ring yet (no switch, or a scribble the read
 * resets). Any thread: relaxed loads of the reader's progress (a stale one
 * only delays the report to the socket's event or the next call). */
static uint64_t rx_tcp_owed(struct pd_conn *c)
{
	if (__atomic_load_n(&c->rx_ring, __ATOMIC_RELAXED)) return 0;
	if (!pd_load_acquire(&c->rxd->switched)) return 0;
	uint64_t sent = pd_load_relaxed(&c->rxd->tx_tcp_bytes), got = rx_tcp_read(c);
	return sent > got ? sent - got : 0;
}

/* Readability under SO_RCVLOWAT lw > 1 (tcp_poll, tcp_epollin_ready): the
 * unread bytes reach min(lw, ring size) (a full ring is readable, as a
 * closed receive window is: nobody else can make room), or EOF. While TCP
 * bytes from before the peer's switch are still owed, the kernel socket
 * counts only its own queue against the mark, and TCP would count both: so
 * when owed + ring bytes reach it, ask the kernel whether all the owed ones
 * are queued (FIONREAD; only in this short window, and only under a mark). */
static __attribute__((noinline)) uint32_t rx_lowat_events(struct pd_conn *c, uint64_t avail, int lw)
{
	uint64_t target = (uint64_t)lw < c->ring_size ? (uint64_t)lw : c->ring_size;
	uint64_t owed = rx_tcp_owed(c);
	if (owed == 0) {
		uint32_t ev = avail >= target ? EPOLLIN : 0;
		if (pd_load_acquire(&c->rxd->wr_closed)) ev |= EPOLLIN | EPOLLRDHUP;
		return ev;
	}
	if (owed >= target || owed + avail < target) return 0; /* the kernel socket reports it, or nothing to */
	int q = 0, saved = errno;
	int r = pd_real.ioctl(c->sock, FIONREAD, &q);
	errno = saved;
	return r == 0 && q >= 0 && (uint64_t)q >= owed ? EPOLLIN : 0;
}

uint32_t pd_conn_ring_events(struct pd_conn *c, uint64_t *head, uint64_t *tail)
{
	uint32_t ev = 0;
	if (slot_reset(c)) return EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP;
	/* tail first: head can only have grown since, so h - t never wraps on
	 * a race with a reader thread; a difference past the ring size (ours
	 * racing, or a scribbled index) reads as "data": the read that follows
	 * validates and resets if it must */
	uint64_t t = pd_load_acquire(&c->rxd->tail), h = pd_load_acquire(&c->rxd->head);
	int lw = __atomic_load_n(&c->rcvlowat, __ATOMIC_RELAXED);
	if (PD_UNLIKELY(lw > 1)) {
		ev |= rx_lowat_events(c, h - t, lw);
	} else if (rx_tcp_owed(c) == 0) {
		if (h != t) ev |= EPOLLIN;
		if (pd_load_acquire(&c->rxd->wr_closed)) ev |= EPOLLIN | EPOLLRDHUP;
	}
	if (c->rd_shut) ev |= EPOLLIN | EPOLLRDHUP;
	uint64_t th = pd_load_acquire(&c->txd->head), tt = pd_load_acquire(&c->txd->tail);
	if (__atomic_load_n(&c->tx_switched, __ATOMIC_ACQUIRE)) {
		/* as TCP: a closed peer leaves the socket writable; its error
		 * comes from the kernel socket (RST), which the caller merges */
		if (peer_gone(c)) ev |= EPOLLOUT | (__atomic_load_n(&c->epipe_next, __ATOMIC_RELAXED) ? EPOLLHUP : 0);
		else if (th - tt < c->ring_size) ev |= EPOLLOUT;
	}
	if (head) *head = h;
	if (tail) *tail = tt;
	return ev;
}

/* Ask the peer to ring our doorbells on its next write (data) or read
 * (space), then re-check: a caller about to sleep on the doorbells. */
void pd_conn_arm(struct pd_conn *c, bool rx, bool tx)
{
	if (rx) arm_add(&c->rxd->reader_armed, 1);
	if (tx) arm_add(&c->txd->writer_armed, 1);
	pd_fence_full(); /* orders the armed stores before the caller's re-check */
}

/* The waiter woke (or will not sleep): it no longer needs the doorbell. */
void pd_conn_disarm(struct pd_conn *c, bool rx, bool tx)
{
	if (rx) arm_add(&c->rxd->reader_armed, -1);
	if (tx) arm_add(&c->txd->writer_armed, -1);
}

/* Wake whoever of ours waits on this connection's doorbells (epoll and poll
 * waiters that started watching before the connection attached). */
void pd_conn_ring_self(struct pd_conn *c)
{
	doorbell(c->efd_rx_self);
	doorbell(c->efd_tx_self);
}

/* SO_RCVLOWAT as the kernel socket holds it (normalised: 0 reads back as
 * 1, a negative value as INT_MAX). first: at attach, unless a setsockopt
 * already stored a value. A lowered mark may make the socket readable now
 * (tcp_set_rcvlowat calls tcp_data_ready): our readiness waiters re-check. */
void pd_conn_lowat_read(struct pd_conn *c, int fd, bool first)
{
	int v = 1, saved = errno;
	socklen_t l = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &l) < 0 || v < 1) v = 1;
	errno = saved;
	if (first) {
		int z = 0;
		__atomic_compare_exchange_n(&c->rcvlowat, &z, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		return;
	}
	int old = __atomic_exchange_n(&c->rcvlowat, v, __ATOMIC_RELAXED);
	if (v < old && __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ATTACHED) doorbell(c->efd_rx_self);
}

/* FIONREAD/SIOCINQ and SIOCOUTQ of an attached connection: the kernel's
 * count (TCP bytes before the switch) plus the ring's. Returns -1 when the
 * kernel's answer stands alone. */
int pd_conn_queued(struct pd_conn *c, bool inq, int kernel)
{
	if (slot_reset(c)) return kernel;
	if (inq) {
		uint64_t avail = pd_load_acquire(&c->rxd->head) - pd_load_acquire(&c->rxd->tail);
		if (avail > c->ring_size) return kernel;
		if (!__atomic_load_n(&c->rx_ring, __ATOMIC_RELAXED)) { /* ring bytes follow the TCP bytes: count only those reachable */
			if (!pd_load_acquire(&c->rxd->switched)) return kernel;
			uint64_t left = pd_load_relaxed(&c->rxd->tx_tcp_bytes) - rx_tcp_read(c);
			if ((uint64_t)kernel < left) return kernel; /* TCP bytes still in flight */
		}
		uint64_t n = (uint64_t)kernel + avail;
		return n > 0x7fffffff ? 0x7fffffff : (int)n;
	}
	/* SIOCOUTQ: bytes in the ring are in the peer's receive queue, which TCP
	 * does not count as unsent: only the kernel's own queue */
	return kernel;
}

/* splice from a pipe into a connection. On TCP the kernel's own; on the ring,
 * at most the ring's free space is taken from the pipe, so what is taken is
 * always delivered (never lost to a full ring). */
ssize_t pd_conn_splice_in(struct pd_conn *c, int pipe_in, size_t len, unsigned int flags)
{
	ssize_t r;
	pthread_mutex_lock(&c->tx_lock);
	if (!tx_use_ring(c, 0, NULL)) {
		r = pd_real.splice(pipe_in, NULL, c->sock, NULL, len, flags);
		if (r < 0) r = -errno;
		else c->tx_tcp += (uint64_t)r;
		pthread_mutex_unlock(&c->tx_lock);
		return r;
	}
	bool nonblock = (flags & SPLICE_F_NONBLOCK) || __atomic_load_n(&c->nonblock, __ATOMIC_RELAXED);
	uint8_t buf[65536];
	for (;;) {
		if (slot_reset(c)) { r = -ECONNRESET; break; }
		if (c->wr_shut || peer_gone(c)) { raise_sigpipe(0); r = -EPIPE; break; }
		uint64_t used = c->tx_head - pd_load_acquire(&c->txd->tail);
		if (used > c->ring_size) { r = conn_reset(c, "peer published a tail past the head"); break; }
		size_t space = c->ring_size - (size_t)used;
		if (space == 0) {
			if (nonblock) { r = -EAGAIN; break; }
			int w = wait_tx(c);
			if (w < 0) { r = w; break; }
			continue;
		}
		size_t want = len < space ? len : space;
		if (want > sizeof buf) want = sizeof buf;
		if (flags & SPLICE_F_NONBLOCK) { /* as splice: EAGAIN on an empty pipe, never block on it */
			struct pollfd pp = { .fd = pipe_in, .events = POLLIN };
			if (pd_real.poll(&pp, 1, 0) == 0) { r = -EAGAIN; break; }
		}
		ssize_t n = pd_real.read(pipe_in, buf, want);
		if (n < 0) { r = -errno; break; }
		if (n == 0) { r = 0; break; }
		struct iovec v = { .iov_base = buf, .iov_len = (size_t)n };
		r = ring_send(c, &v, 1, MSG_NOSIGNAL); /* fits: only we write this ring */
		break;
	}
	pthread_mutex_unlock(&c->tx_lock);
	return r;
}

/* splice from a connection into a pipe: peek, write what the pipe takes,
 * then consume exactly that much. */
ssize_t pd_conn_splice_out(struct pd_conn *c, int pipe_out, size_t len, unsigned int flags)
{
	if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != PD_CS_ATTACHED) {
		pthread_mutex_lock(&c->rx_lock);
		ssize_t r = pd_real.splice(c->sock, NULL, pipe_out, NULL, len, flags);
		if (r < 0) r = -errno;
		else rx_tcp_add(c, (uint64_t)r);
		pthread_mutex_unlock(&c->rx_lock);
		return r;
	}
	uint8_t buf[65536];
	if (len > sizeof buf) len = sizeof buf;
	struct iovec v = { .iov_base = buf, .iov_len = len };
	int rf = (flags & SPLICE_F_NONBLOCK) ? MSG_DONTWAIT : 0;
	ssize_t n = pd_conn_recv(c, &v, 1, rf | MSG_PEEK);
	if (n <= 0) return n;
	ssize_t w = pd_real.write(pipe_out, buf, (size_t)n);
	if (w <= 0) return w < 0 ? -errno : 0;
	v.iov_len = (size_t)w;
	ssize_t k = pd_conn_recv(c, &v, 1, MSG_DONTWAIT);
	return k < 0 ? k : w;
}
