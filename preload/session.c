/* The session with the controller: one-way reports, assignments, attach.
 * Nothing here waits for the controller: a report is one non-blocking
 * sendmsg, and assignments are read only when the session page's seq moved. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "barrier.h"
#include "pd.h"

enum { SS_NONE = 0, SS_OPEN, SS_DOWN };

struct pd_arena {
	uint64_t id;
	uint8_t *base;
	size_t size;
	int refs; /* connections using it, under the session lock */
	/* the header, validated once when mapped and never read again: the
	 * peer maps the same memory and may rewrite it */
	uint32_t slot_count, slot_size, ring_size, slots_offset;
	int memfd; /* kept open (an exec'd image maps the arena again from it), or -1 */
	struct pd_arena *next;
};

static struct {
	pthread_mutex_t lock;
	int fd;
	int state;                 /* SS_*, atomic */
	struct pd_session_page *page; /* atomic pointer */
	uint64_t seen;
	uint64_t next_id;
	uint64_t retry_after_ns;   /* SS_DOWN: when to try connecting again */
	struct pd_conn *pending;   /* REPORTED connections, by conn_id */
	struct pd_arena *arenas;
	bool warned;
	pid_t pid;                 /* the process that opened the session */
} S = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1 };

static void close_internal(int *fd)
{
	if (*fd < 0) return;
	pd_fd_set_kind(*fd, PD_FK_UNKNOWN);
	pd_real.close(*fd);
	*fd = -1;
}

static void msg_hdr(struct pd_msg_hdr *h, uint32_t type, uint32_t len)
{
	h->magic_type = PD_MSG_MAGIC | (type << 16);
	h->len = len;
}

/* sendmsg on the session; fd < 0 sends none. Returns 0 or -errno. */
static int session_send(const void *msg, size_t len, int fd)
{
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	ssize_t r = pd_real.sendmsg(S.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r < 0) return -errno;
	return r == (ssize_t)len ? 0 : -EMSGSIZE;
}

static void session_down_locked(const char *why, int err)
{
	if (S.fd >= 0) pd_real.close(S.fd);
	S.fd = -1;
	if (S.page) munmap(S.page, PD_SESSION_PAGE_SIZE);
	__atomic_store_n(&S.page, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&S.seen, 0, __ATOMIC_RELAXED);
	/* reports to the old session will never be answered */
	for (struct pd_conn *c = S.pending; c; c = c->next_pending) {
		__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
		c->reported = false;
	}
	S.pending = NULL;
	__atomic_store_n(&S.state, SS_DOWN, __ATOMIC_RELEASE);
	S.retry_after_ns = pd_now_ns() + 1000000000ull;
	if (!S.warned) {
		S.warned = true;
		pd_warn("no controller at %s (%s: %s): connections stay on kernel TCP", pd_cfg.socket_path, why,
			strerror(err));
	} else {
		pd_info("session down (%s: %s)", why, strerror(err));
	}
}

static int session_open_locked(void)
{
	if (S.state == SS_OPEN) return 0;
	if (S.state == SS_DOWN && pd_now_ns() < S.retry_after_ns) return -ENOTCONN;
	int fd = pd_real.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		session_down_locked("socket", errno);
		return -ENOTCONN;
	}
	pd_fd_set_kind(fd, PD_FK_INTERNAL);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, pd_cfg.socket_path, sizeof sa.sun_path);
	if (pd_real.connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		pd_real.close(fd);
		pd_fd_set_kind(fd, PD_FK_UNKNOWN);
		session_down_locked("connect", e);
		return -ENOTCONN;
	}
	S.fd = fd;
	S.pid = getpid();
	struct pd_msg_hello h = { 0 };
	msg_hdr(&h.hdr, PD_MSG_HELLO, sizeof h);
	h.proto_version = PD_PROTO_VERSION;
	h.pid = (uint32_t)getpid();
	int r = session_send(&h, sizeof h, -1);
	if (r < 0) {
		session_down_locked("hello", -r);
		return -ENOTCONN;
	}
	__atomic_store_n(&S.state, SS_OPEN, __ATOMIC_RELEASE);
	pd_info("session open at %s", pd_cfg.socket_path);
	return 0;
}

void pd_session_report(struct pd_conn *c, int origin)
{
	if (pd_cfg.no_controller) {
		__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
		return;
	}
	pthread_mutex_lock(&S.lock);
	const int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (c->reported || (st != PD_CS_ESTABLISHED && st != PD_CS_CONNECTING)) {
		/* another thread's call reported it (or settled it) first */
		pthread_mutex_unlock(&S.lock);
		return;
	}
	if (session_open_locked() < 0) {
		__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&S.lock);
		return;
	}
	c->id = ++S.next_id;
	struct pd_msg_conn_report m = { 0 };
	msg_hdr(&m.hdr, PD_MSG_CONN_REPORT, sizeof m);
	m.conn_id = c->id;
	m.origin = (uint32_t)origin;
	int r = session_send(&m, sizeof m, c->sock);
	if (r < 0) {
		if (r == -EAGAIN) { /* controller busy: this one stays on TCP */
			__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
		} else {
			__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
			session_down_locked("report", -r);
		}
		pthread_mutex_unlock(&S.lock);
		return;
	}
	c->reported = true;
	c->next_pending = S.pending;
	S.pending = c;
	__atomic_store_n(&c->state, PD_CS_REPORTED, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&S.lock);
	pd_debug("reported conn %llu fd %d origin %d, %llu us after connect/accept", (unsigned long long)c->id, c->sock,
		 origin, (unsigned long long)((pd_now_ns() - c->t_est_ns) / 1000u));
}

int pd_session_fd(void)
{
	return __atomic_load_n(&S.state, __ATOMIC_ACQUIRE) == SS_OPEN ? S.fd : -1;
}

void pd_session_touch(void)
{
	if (pd_cfg.no_controller || __atomic_load_n(&S.state, __ATOMIC_ACQUIRE) == SS_OPEN) return;
	pthread_mutex_lock(&S.lock);
	(void)session_open_locked();
	pthread_mutex_unlock(&S.lock);
}

static struct pd_conn *pending_take(uint64_t id)
{
	for (struct pd_conn **pp = &S.pending; *pp; pp = &(*pp)->next_pending) {
		if ((*pp)->id == id) {
			struct pd_conn *c = *pp;
			*pp = c->next_pending;
			c->next_pending = NULL;
			return c;
		}
	}
	return NULL;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0) pd_real.close(fds[i]);
}

/* Map an arena (once per arena id). Its geometry comes from the controller's
 * message, not from the shared header, which the peer could have rewritten
 * before we mapped it; the header must merely agree. */
static struct pd_arena *arena_map_locked(uint64_t id, uint64_t size, uint32_t ring, int memfd)
{
	if (ring < PD_RING_MIN || ring > PD_RING_MAX || (ring & (ring - 1)) != 0) return NULL;
	for (struct pd_arena *a = S.arenas; a; a = a->next)
		if (a->id == id) return a->size == size && a->ring_size == ring ? a : NULL;
	struct stat st;
	if (fstat(memfd, &st) < 0 || (uint64_t)st.st_size < size || size < PD_ARENA_HDR_SIZE || size > (1ull << 40))
		return NULL;
	const uint32_t slot_size = PD_SLOT_CTRL_SIZE + 2 * ring;
	const uint64_t slot_count = (size - PD_ARENA_HDR_SIZE) / slot_size;
	if (slot_count == 0 || slot_count > UINT32_MAX) return NULL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED) return NULL;
	const struct pd_arena_hdr *h = p;
	bool ok = pd_load_relaxed(&h->magic) == PD_ARENA_MAGIC && pd_load_relaxed(&h->version) == PD_LAYOUT_VERSION &&
		  pd_load_relaxed(&h->ring_size) == ring;
	struct pd_arena *a = ok ? calloc(1, sizeof *a) : NULL;
	if (!a) {
		munmap(p, size);
		return NULL;
	}
	a->id = id;
	a->base = p;
	a->size = size;
	a->slot_count = (uint32_t)slot_count;
	a->slot_size = slot_size;
	a->ring_size = ring;
	a->slots_offset = PD_ARENA_HDR_SIZE;
	a->memfd = -1;
	a->next = S.arenas;
	S.arenas = a;
	return a;
}

static void arena_unref_locked(struct pd_arena *a)
{
	if (--a->refs > 0) return;
	for (struct pd_arena **pp = &S.arenas; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	munmap(a->base, a->size);
	close_internal(&a->memfd);
	free(a);
}

/* Validate an assignment against the arena header (shared memory: read each
 * field once, trust nothing) and fill in the connection. */
static bool assign_locked(struct pd_conn *c, const struct pd_msg_assign *m, int *fds)
{
	if (m->role > 1) return false;
	struct pd_arena *a = arena_map_locked(m->arena_id, m->arena_size, m->ring_size, fds[PD_ASSIGN_FD_ARENA]);
	if (!a) return false;
	if (m->slot_index >= a->slot_count) {
		if (a->refs == 0) {
			a->refs = 1;
			arena_unref_locked(a);
		}
		return false;
	}
	const uint32_t ring = a->ring_size, slot_size = a->slot_size, off = a->slots_offset;
	a->refs++;
	uint8_t *slot = a->base + off + (uint64_t)m->slot_index * slot_size;
	c->arena = a;
	c->slot = (struct pd_slot_ctrl *)slot;
	c->generation = m->generation;
	c->role = (int)m->role;
	c->txd = m->role == 0 ? &c->slot->dir0 : &c->slot->dir1;
	c->rxd = m->role == 0 ? &c->slot->dir1 : &c->slot->dir0;
	c->tx_buf = slot + PD_SLOT_CTRL_SIZE + (size_t)m->role * ring;
	c->rx_buf = slot + PD_SLOT_CTRL_SIZE + (size_t)(1 - m->role) * ring;
	c->ring_size = ring;
	c->tx_head = 0;
	c->rx_tail = 0;
	c->efd_rx_self = fds[PD_ASSIGN_FD_RX_SELF];
	c->efd_tx_self = fds[PD_ASSIGN_FD_TX_SELF];
	c->efd_rx_peer = fds[PD_ASSIGN_FD_RX_PEER];
	c->efd_tx_peer = fds[PD_ASSIGN_FD_TX_PEER];
	c->peer_proc = fds[PD_ASSIGN_FD_PEER_PROC];
	for (int i = 1; i < (int)PD_ASSIGN_NFDS; i++) pd_fd_set_kind(fds[i], PD_FK_INTERNAL);
	if (a->memfd < 0) { /* kept: one descriptor per arena, for an exec'd image */
		a->memfd = fds[PD_ASSIGN_FD_ARENA];
		pd_fd_set_kind(a->memfd, PD_FK_INTERNAL);
	} else {
		pd_real.close(fds[PD_ASSIGN_FD_ARENA]);
	}
	return true;
}

/* Tell the controller this end will not take its ASSIGN: it never attaches,
 * so neither end switches and the connection stays on TCP, with the reason
 * in `pd status`. */
static void refuse_locked(struct pd_conn *c, uint32_t reason, int fd, unsigned limit)
{
	__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
	struct pd_msg_conn_refused m = { 0 };
	msg_hdr(&m.hdr, PD_MSG_CONN_REFUSED, sizeof m);
	m.conn_id = c->id;
	m.reason = reason;
	m.fd = fd > 0 ? (uint32_t)fd : 0;
	m.limit = limit;
	(void)session_send(&m, sizeof m, -1);
}

static unsigned nofile_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur > UINT32_MAX) return UINT32_MAX;
	return (unsigned)rl.rlim_cur;
}

/* The descriptors of an ASSIGN (four doorbells and a pidfd, kept for the life
 * of the connection) count against the application's RLIMIT_NOFILE. The
 * kernel hands out the lowest free numbers, so when the highest one an ASSIGN
 * got lies within the reserve below the soft limit, the table under it is
 * full: the shim takes no more and leaves the rest to the application. */
static bool near_nofile(const int *fds, int nfds, int *top, unsigned *limit)
{
	*top = -1;
	for (int i = 0; i < nfds; i++)
		if (fds[i] > *top) *top = fds[i];
	*limit = nofile_limit();
	unsigned reserve;
	if (pd_cfg.fd_reserve >= 0) {
		reserve = (unsigned)pd_cfg.fd_reserve;
	} else {
		reserve = *limit / 8;
		reserve = reserve < 32 ? 32 : reserve > 4096 ? 4096 : reserve;
	}
	return (uint64_t)*top + reserve >= *limit;
}

/* The kernel could not install every descriptor of a message (MSG_CTRUNC:
 * the process is at RLIMIT_NOFILE) and closed the rest. For an ASSIGN that
 * one connection stays on TCP; anything else cannot be used and ends the
 * session. */
static void truncated_locked(const uint8_t *buf, ssize_t n)
{
	struct pd_msg_assign m;
	if (n == (ssize_t)sizeof m) {
		memcpy(&m, buf, sizeof m);
		if ((m.hdr.magic_type & 0xffff) == PD_MSG_MAGIC && m.hdr.magic_type >> 16 == PD_MSG_ASSIGN && m.hdr.len == sizeof m) {
			struct pd_conn *c = pending_take(m.conn_id);
			unsigned limit = nofile_limit();
			pd_info("conn %llu: the process is out of descriptors (RLIMIT_NOFILE %u): staying on TCP",
				(unsigned long long)m.conn_id, limit);
			if (c) refuse_locked(c, PD_REFUSE_NOFILE, 0, limit);
			return;
		}
	}
	session_down_locked("a message from the controller lost its descriptors (RLIMIT_NOFILE)", EMFILE);
}

static void handle_msg_locked(const uint8_t *buf, ssize_t n, int *fds, int nfds)
{
	struct pd_msg_hdr h;
	if (n < (ssize_t)sizeof h) goto bad;
	memcpy(&h, buf, sizeof h);
	if ((h.magic_type & 0xffff) != PD_MSG_MAGIC || h.len != (uint32_t)n) goto bad;
	switch (h.magic_type >> 16) {
	case PD_MSG_HELLO_ACK: {
		struct pd_msg_hello_ack m;
		if (n != sizeof m || nfds != 1) goto bad;
		memcpy(&m, buf, sizeof m);
		if (m.proto_version != PD_PROTO_VERSION || S.page) goto bad;
		void *p = mmap(NULL, PD_SESSION_PAGE_SIZE, PROT_READ, MAP_SHARED, fds[0], 0);
		pd_real.close(fds[0]);
		if (p == MAP_FAILED) return;
		if (((struct pd_session_page *)p)->magic != PD_SESSION_MAGIC) {
			munmap(p, PD_SESSION_PAGE_SIZE);
			goto bad_nofds;
		}
		__atomic_store_n(&S.page, p, __ATOMIC_RELEASE);
		return;
	}
	case PD_MSG_ASSIGN: {
		struct pd_msg_assign m;
		if (n != sizeof m || nfds != (int)PD_ASSIGN_NFDS) goto bad;
		memcpy(&m, buf, sizeof m);
		struct pd_conn *c = pending_take(m.conn_id);
		if (!c) { /* closed meanwhile */
			close_fds(fds, nfds);
			return;
		}
		int why = __atomic_load_n(&c->no_attach, __ATOMIC_ACQUIRE);
		if (why) { /* the process forked since the report */
			pd_debug("conn %llu: refusing its assignment (reason %d): staying on TCP", (unsigned long long)m.conn_id, why);
			close_fds(fds, nfds);
			refuse_locked(c, (uint32_t)why, 0, 0);
			return;
		}
		int top;
		unsigned limit;
		if (near_nofile(fds, nfds, &top, &limit)) {
			pd_info("conn %llu: descriptor %d is near RLIMIT_NOFILE %u (PD_FD_RESERVE): staying on TCP",
				(unsigned long long)m.conn_id, top, limit);
			close_fds(fds, nfds);
			refuse_locked(c, PD_REFUSE_NOFILE, top, limit);
			return;
		}
		if (!assign_locked(c, &m, fds)) {
			pd_warn("conn %llu: invalid assignment from the controller: staying on TCP", (unsigned long long)m.conn_id);
			close_fds(fds, nfds);
			refuse_locked(c, PD_REFUSE_INVALID, 0, 0);
			return;
		}
		__atomic_store_n(&c->state, PD_CS_ASSIGNED, __ATOMIC_RELEASE);
		pd_debug("conn %llu assigned slot %u role %u, %llu us after connect/accept", (unsigned long long)m.conn_id,
			 m.slot_index, m.role, (unsigned long long)((pd_now_ns() - c->t_est_ns) / 1000u));
		return;
	}
	case PD_MSG_DECLINE: {
		struct pd_msg_decline m;
		if (n != sizeof m || nfds != 0) goto bad;
		memcpy(&m, buf, sizeof m);
		struct pd_conn *c = pending_take(m.conn_id);
		if (c) __atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
		pd_debug("conn %llu declined (reason %u)", (unsigned long long)m.conn_id, m.reason);
		return;
	}
	default:
		goto bad;
	}
bad:
	close_fds(fds, nfds);
bad_nofds:
	session_down_locked("malformed message from the controller", EPROTO);
}

static void drain_locked(void)
{
	for (;;) {
		if (S.state != SS_OPEN) return;
		uint8_t buf[PD_MSG_MAX];
		union { char b[CMSG_SPACE(sizeof(int) * PD_ASSIGN_NFDS)]; struct cmsghdr align; } u;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof u.b };
		ssize_t n = pd_real.recvmsg(S.fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) return;
			session_down_locked("recvmsg", errno);
			return;
		}
		int fds[PD_ASSIGN_NFDS];
		int nfds = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
				if (nfds < (int)PD_ASSIGN_NFDS) fds[nfds++] = fd;
				else pd_real.close(fd);
			}
		}
		if (n == 0) {
			close_fds(fds, nfds);
			session_down_locked("controller closed the session", ECONNRESET);
			return;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			close_fds(fds, nfds);
			session_down_locked("oversized message from the controller", EPROTO);
			return;
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			close_fds(fds, nfds);
			truncated_locked(buf, n);
			continue;
		}
		handle_msg_locked(buf, n, fds, nfds);
	}
}

void pd_session_poll(void)
{
	if (__atomic_load_n(&S.state, __ATOMIC_ACQUIRE) != SS_OPEN) return;
	struct pd_session_page *p = __atomic_load_n(&S.page, __ATOMIC_ACQUIRE);
	uint64_t seq = 0;
	if (p) {
		/* acquire: the message the controller sent before bumping seq is queued */
		seq = pd_load_acquire(&p->seq);
		if (seq == __atomic_load_n(&S.seen, __ATOMIC_RELAXED)) return;
	}
	if (pthread_mutex_trylock(&S.lock) != 0) return;
	if (p && S.page == p) __atomic_store_n(&S.seen, seq, __ATOMIC_RELAXED);
	drain_locked();
	if (!p && S.page) __atomic_store_n(&S.seen, 0, __ATOMIC_RELAXED); /* page just arrived: next poll compares */
	pthread_mutex_unlock(&S.lock);
}

/* The session socket was seen readable (an edge consumed by epoll_wait):
 * read what is queued without consulting the page's seq, which the
 * controller bumps only after its sendmsg. Blocking on the lock, unlike
 * pd_session_poll: nothing else would read these messages for this waiter. */
void pd_session_drain(void)
{
	if (__atomic_load_n(&S.state, __ATOMIC_ACQUIRE) != SS_OPEN) return;
	pthread_mutex_lock(&S.lock);
	struct pd_session_page *p = __atomic_load_n(&S.page, __ATOMIC_ACQUIRE);
	if (p) __atomic_store_n(&S.seen, pd_load_acquire(&p->seq), __ATOMIC_RELAXED); /* a later bump reads again */
	drain_locked();
	pthread_mutex_unlock(&S.lock);
}

/* A connection is reported at its first use, not when connect() or accept()
 * returns it: one that is closed unused (a server that accepts and closes, a
 * port probe) costs the controller nothing, and every call that could carry
 * data, wait for it or register it (read/write family, epoll, poll/select)
 * passes through pd_conn_progress first, so no byte moves before the report. */
void pd_conn_established(struct pd_conn *c, int origin)
{
	c->origin = origin;
	if (pd_cfg.log_level >= PD_LOG_DEBUG) c->t_est_ns = pd_now_ns();
	__atomic_store_n(&c->state, PD_CS_ESTABLISHED, __ATOMIC_RELEASE);
}

void pd_conn_check_connected(struct pd_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getpeername(c->sock, (struct sockaddr *)&ss, &len) == 0) {
		pd_conn_established(c, PD_ORIGIN_CONNECT);
		return;
	}
	int err = 0;
	socklen_t el = sizeof err;
	if (errno == ENOTCONN && getsockopt(c->sock, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err != 0) {
		/* the connect failed: nothing to accelerate. SO_ERROR is consumed
		 * here, so put the connection on TCP for good and let the
		 * application's next call see the error from the kernel. */
		__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
	}
}

static void conn_progress(struct pd_conn *c);

/* The hooks read errno after this (io.c saves the caller's errno once it
 * knows the call is ours): it must come back untouched, though reading the
 * session socket meets EAGAIN. */
void pd_conn_progress(struct pd_conn *c)
{
	int saved = errno;
	conn_progress(c);
	errno = saved;
}

static void conn_progress(struct pd_conn *c)
{
	int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (st == PD_CS_CONNECTING) {
		pd_conn_check_connected(c);
		st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	}
	if (st == PD_CS_ESTABLISHED) {
		pd_session_report(c, c->origin);
		st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	}
	if (st == PD_CS_REPORTED) {
		pd_session_poll();
		st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	}
	if (st == PD_CS_ASSIGNED && PD_UNLIKELY(__atomic_load_n(&c->no_attach, __ATOMIC_ACQUIRE))) {
		/* assigned before a fork(): refuse it, the connection stays on TCP */
		pthread_mutex_lock(&S.lock);
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ASSIGNED)
			refuse_locked(c, (uint32_t)__atomic_load_n(&c->no_attach, __ATOMIC_RELAXED), 0, 0);
		pthread_mutex_unlock(&S.lock);
		return;
	}
	/* not while a poll/select of the application watches only the socket */
	if (st != PD_CS_ASSIGNED || __atomic_load_n(&c->pollers, __ATOMIC_ACQUIRE) > 0) return;
	/* Attaching lets the peer switch the direction we read, so it needs
	 * no thread of ours blocked in a kernel read on the socket: it takes
	 * rx_lock, which every read holds. Our own sending direction switches
	 * later, under tx_lock, in tx_use_ring(). */
	if (pthread_mutex_trylock(&c->rx_lock) != 0) return;
	if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ASSIGNED && !__atomic_load_n(&c->no_attach, __ATOMIC_ACQUIRE)) {
		uint32_t magic = pd_load_acquire(&c->slot->magic), gen = pd_load_relaxed(&c->slot->generation);
		if (magic == PD_SLOT_MAGIC && gen == c->generation) {
			/* The application's epoll sets get our doorbells (and we arm)
			 * before the peer can see us attached and switch: its first
			 * ring write then wakes any epoll_wait already asleep. */
			pd_conn_lowat_read(c, c->sock, true); /* set before the connection was ours to watch, or inherited from the listener */
			pd_ep_conn_attached(c);
			/* the TCP bytes read so far, which every process sharing this
			 * end after a fork() adds to (ring.c, rx_tcp_count) */
			pd_store_relaxed(&c->rxd->rx_tcp_bytes, c->rx_tcp);
			/* release: our private state is set before the peer can see us attached */
			pd_store_release(c->role == 0 ? &c->slot->attached0 : &c->slot->attached1, 1);
			__atomic_store_n(&c->state, PD_CS_ATTACHED, __ATOMIC_RELEASE);
			pd_debug("conn %llu attached, %llu us after connect/accept", (unsigned long long)c->id,
				 (unsigned long long)((pd_now_ns() - c->t_est_ns) / 1000u));
		} else {
			__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&c->rx_lock);
}

static void ring_doorbell(int efd)
{
	uint64_t one = 1;
	if (efd >= 0) (void)!pd_real.write(efd, &one, sizeof one);
}

void pd_conn_release_slot(struct pd_conn *c)
{
	int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	bool send_closed = false;
	pthread_mutex_lock(&S.lock);
	if (st == PD_CS_REPORTED) pending_take(c->id);
	if (c->slot) {
		if (!pd_conn_forked(c) && st == PD_CS_ATTACHED) {
			/* release: every ring byte we wrote is visible before wr_closed */
			pd_store_release(&c->txd->wr_closed, 1);
			pd_store_release(&c->rxd->rd_closed, 1);
			ring_doorbell(c->efd_rx_peer);
			ring_doorbell(c->efd_tx_peer);
		}
		int efds[5] = { c->efd_rx_self, c->efd_tx_self, c->efd_rx_peer, c->efd_tx_peer, c->peer_proc };
		for (int i = 0; i < 5; i++) {
			if (efds[i] < 0) continue;
			pd_fd_set_kind(efds[i], PD_FK_UNKNOWN);
			pd_real.close(efds[i]);
		}
		c->efd_rx_self = c->efd_tx_self = c->efd_rx_peer = c->efd_tx_peer = c->peer_proc = -1;
		if (c->arena) arena_unref_locked(c->arena);
		c->arena = NULL;
		c->slot = NULL;
	}
	send_closed = c->reported && !pd_conn_forked(c) && S.state == SS_OPEN;
	if (send_closed) {
		struct pd_msg_conn_closed m = { 0 };
		msg_hdr(&m.hdr, PD_MSG_CONN_CLOSED, sizeof m);
		m.conn_id = c->id;
		(void)session_send(&m, sizeof m, -1);
	}
	c->reported = false;
	__atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&S.lock);
}

/* fork parent. An attached connection is shared from now on (c->forked:
 * the ring.c paths take the slot's locks). One not attached yet stays on
 * TCP in both processes: the child has it on TCP (child_inherit), and a
 * parent that attached it later would take the peer's bytes after its switch
 * from the ring while the child reads the kernel socket, and neither would
 * count the TCP bytes the other read. Never reported: TCP now. Reported or
 * assigned: the assignment is refused (REFUSE_FORKED) at its arrival or at
 * the connection's next call (pd_conn_progress), under the session lock. */
static void mark_forked(struct pd_conn *c, void *arg)
{
	(void)arg;
	int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (st == PD_CS_ATTACHED) __atomic_store_n(&c->forked, true, __ATOMIC_RELAXED);
	else if (st == PD_CS_CONNECTING || st == PD_CS_ESTABLISHED) __atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE);
	else if (st == PD_CS_REPORTED || st == PD_CS_ASSIGNED) __atomic_store_n(&c->no_attach, PD_REFUSE_FORKED, __ATOMIC_RELEASE);
}

void pd_session_atfork_prepare(void)
{
	pthread_mutex_lock(&S.lock);
}

void pd_session_atfork_parent(void)
{
	pthread_mutex_unlock(&S.lock);
	pd_conn_foreach(mark_forked, NULL);
}

static void child_inherit(struct pd_conn *c, void *arg)
{
	(void)arg;
	/* a thread of the parent blocked in a call on it held these; it does
	 * not exist here. What they guarded is resynced from the slot on the
	 * forked paths (tail, head, TCP count) or is TCP's own. */
	pthread_mutex_init(&c->rx_lock, NULL);
	pthread_mutex_init(&c->tx_lock, NULL);
	int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (st == PD_CS_ATTACHED) __atomic_store_n(&c->forked, true, __ATOMIC_RELAXED);
	else __atomic_store_n(&c->state, PD_CS_TCP, __ATOMIC_RELEASE); /* the assignment is the parent's */
	c->reported = false; /* the report belongs to the parent's session */
}

void pd_session_atfork_child(void)
{
	pthread_mutex_init(&S.lock, NULL);
	if (S.fd >= 0) {
		pd_real.close(S.fd);
		pd_fd_set_kind(S.fd, PD_FK_UNKNOWN);
	}
	S.fd = -1;
	if (S.page) munmap(S.page, PD_SESSION_PAGE_SIZE);
	S.page = NULL;
	S.seen = 0;
	S.pending = NULL;
	S.state = SS_NONE;
	pd_conn_foreach(child_inherit, NULL);
}

/* ---- exec: the new image keeps the process's connections ----
 * Before an execve (exec.c) the state the new image needs to go on with the
 * process's connections is written into its environment (PD_EXEC_STATE) and
 * every descriptor it names loses FD_CLOEXEC; the new image's shim adopts
 * them as it starts. The session socket goes along: the controller sees the
 * same session (same pid) go on, so no end is declared dead, and a socket
 * the new image inherits keeps its ring, its private indices and its TCP
 * byte counts: no byte is lost or reordered. A connection whose every fd is
 * close-on-exec is closed by the exec; the new image says so to the
 * controller (CONN_CLOSED) and marks its ring ends closed, as close() would.
 * The session page is not carried (its memfd was closed once mapped): the
 * new image reads the session socket without the page's hint. */

struct exec_save {
	char *s;
	size_t len, cap;
	bool bad;
	bool foreign; /* not the session's process: a vfork child (memory shared with its parent) */
	bool unlocked; /* the session lock was let go already (foreign) */
	uint64_t *held; /* serials of the connections the new image inherits an fd of */
	int nheld, capheld;
	int *cleared; /* fds whose FD_CLOEXEC we cleared: restored if execve fails */
	int ncleared, capcleared;
};

static void xs_printf(struct exec_save *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xs_printf(struct exec_save *x, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = x->cap - x->len;
		int n = x->s ? vsnprintf(x->s + x->len, room, fmt, ap) : -1;
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			x->len += (size_t)n;
			return;
		}
		size_t cap = x->cap ? x->cap * 2 : 4096;
		char *p = realloc(x->s, cap);
		if (!p) {
			x->bad = true;
			return;
		}
		x->s = p;
		x->cap = cap;
	}
}

static void xs_keep(struct exec_save *x, int fd)
{
	if (fd < 0) return;
	int fl = pd_real.fcntl(fd, F_GETFD);
	if (fl < 0 || !(fl & FD_CLOEXEC)) return;
	int *v = pd_grow(x->cleared, x->ncleared, &x->capcleared, sizeof *v, 32);
	if (!v) {
		x->bad = true;
		return;
	}
	x->cleared = v;
	if (pd_real.fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) == 0) x->cleared[x->ncleared++] = fd;
}

static void save_conn(struct pd_conn *c, void *arg)
{
	struct exec_save *x = arg;
	int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (st == PD_CS_TCP && !c->reported) return; /* nothing to carry: the new image sees a plain socket */
	if (st == PD_CS_CONNECTING) return;
	bool held = false;
	for (int i = 0; i < x->nheld && !held; i++) held = x->held[i] == c->serial;
	/* closed by the exec: only a connection of this process alone needs
	 * the new image to close its ends (a shared one goes on in the other) */
	if (!held && (__atomic_load_n(&c->forked, __ATOMIC_RELAXED) || x->foreign)) return;
	if (x->foreign && st != PD_CS_ATTACHED) {
		/* a fork or vfork child's: a connection not attached yet stays on
		 * TCP in both processes, as fork() leaves it (mark_forked; from a
		 * vfork child this writes the parent's memory, which is the point);
		 * the new image gets the plain socket */
		mark_forked(c, NULL);
		return;
	}
	uint64_t arena_id = 0, arena_size = 0;
	uint32_t ring = 0, slot = 0;
	bool has_slot = (st == PD_CS_ASSIGNED || st == PD_CS_ATTACHED) && c->slot && c->arena;
	if (has_slot) {
		struct pd_arena *a = c->arena;
		if (a->memfd < 0) return; /* cannot be mapped again: the connection ends with this image */
		arena_id = a->id;
		arena_size = a->size;
		ring = a->ring_size;
		slot = (uint32_t)(((uint8_t *)c->slot - a->base - a->slots_offset) / a->slot_size);
		xs_keep(x, a->memfd);
		int e[5] = { c->efd_rx_self, c->efd_tx_self, c->efd_rx_peer, c->efd_tx_peer, c->peer_proc };
		for (int i = 0; i < 5; i++) xs_keep(x, e[i]);
	} else if (st == PD_CS_ASSIGNED || st == PD_CS_ATTACHED) {
		return;
	}
	/* A vfork child's connections are its parent's objects (no atfork ran):
	 * from now on two processes share them, as after fork(). */
	if (x->foreign && has_slot) __atomic_store_n(&c->forked, true, __ATOMIC_RELAXED);
	unsigned flags = (unsigned)c->tx_switched | (unsigned)c->rx_sw_seen << 1 | (unsigned)c->rx_ring << 2 |
			 (unsigned)c->rx_eof << 3 | (unsigned)c->rx_fin << 4 | (unsigned)c->wr_shut << 5 |
			 (unsigned)c->rd_shut << 6 | (unsigned)c->forked << 7 | (unsigned)c->reported << 8 |
			 (unsigned)(__atomic_load_n(&c->no_attach, __ATOMIC_RELAXED) == (int)PD_REFUSE_FORKED) << 9;
	xs_printf(x, "c %llu %d %llu %u %d %llu %llu %u %u %u %u %u %llu %llu %llu %llu %d %d %d %d %d %d %d;",
		  (unsigned long long)c->serial, st, (unsigned long long)c->id, flags, c->origin,
		  (unsigned long long)arena_id, (unsigned long long)arena_size, ring, slot, c->generation, (unsigned)c->role,
		  (unsigned)has_slot, (unsigned long long)c->tx_head, (unsigned long long)c->rx_tail,
		  (unsigned long long)c->tx_tcp, (unsigned long long)c->rx_tcp, c->efd_rx_self, c->efd_tx_self,
		  c->efd_rx_peer, c->efd_tx_peer, c->peer_proc, __atomic_load_n(&c->rcvlowat, __ATOMIC_RELAXED),
		  has_slot ? c->arena->memfd : -1);
}

static void save_fd(int fd, struct pd_conn *c, void *arg)
{
	struct exec_save *x = arg;
	int fl = pd_real.fcntl(fd, F_GETFD);
	if (fl < 0 || (fl & FD_CLOEXEC)) return; /* closed by the exec */
	xs_printf(x, "f %d %llu;", fd, (unsigned long long)c->serial);
	uint64_t *v = pd_grow(x->held, x->nheld, &x->capheld, sizeof *v, 16);
	if (!v) {
		x->bad = true;
		return;
	}
	x->held = v;
	x->held[x->nheld++] = c->serial;
}

/* Called by the exec hooks with the environment the new image gets. Returns
 * the PD_EXEC_STATE=... string (malloc'd) and holds the session lock until
 * pd_session_exec_done, or NULL when there is nothing to carry. */
char *pd_session_exec_save(void **token)
{
	*token = NULL;
	pthread_mutex_lock(&S.lock);
	/* Without a session (a fork child: the session was the parent's) the
	 * connections still go on: their rings need no controller. */
	bool foreign = S.pid != getpid();
	bool open = S.state == SS_OPEN && S.fd >= 0 && !foreign; /* a vfork child leaves the session to its parent */
	struct exec_save *x = calloc(1, sizeof *x);
	if (!x) {
		pthread_mutex_unlock(&S.lock);
		return NULL;
	}
	x->foreign = foreign;
	xs_printf(x, "PD_EXEC_STATE=1;s %d %llu;", open ? S.fd : -1, (unsigned long long)S.next_id);
	if (open) xs_keep(x, S.fd);
	size_t header = x->len;
	pd_fd_foreach(save_fd, x);
	pd_conn_foreach(save_conn, x);
	if (x->bad || (!open && x->len == header)) {
		pd_session_exec_done(x, true);
		return NULL;
	}
	if (foreign) { /* a vfork child: its lock would stay taken in the parent's memory after the exec */
		x->unlocked = true;
		pthread_mutex_unlock(&S.lock);
	}
	*token = x;
	return x->s;
}

/* After the exec failed (or was not tried): descriptors back as they were. */
void pd_session_exec_done(void *token, bool failed)
{
	struct exec_save *x = token;
	if (!x) return;
	if (failed)
		for (int i = 0; i < x->ncleared; i++) {
			int fl = pd_real.fcntl(x->cleared[i], F_GETFD);
			if (fl >= 0) pd_real.fcntl(x->cleared[i], F_SETFD, fl | FD_CLOEXEC);
		}
	bool unlocked = x->unlocked;
	free(x->cleared);
	free(x->held);
	free(x->s);
	free(x);
	if (!unlocked) pthread_mutex_unlock(&S.lock);
}

static void cloexec(int fd)
{
	int fl = fd >= 0 ? pd_real.fcntl(fd, F_GETFD) : -1;
	if (fl >= 0) pd_real.fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

struct exec_conn {
	unsigned long long serial, id, arena_id, arena_size, tx_head, rx_tail, tx_tcp, rx_tcp;
	int st, origin, efd[5], rcvlowat, memfd;
	unsigned flags, ring, slot, gen, role, has_slot;
	struct pd_conn *c;
};

static bool adopt_slot(struct pd_conn *c, const struct exec_conn *e)
{
	struct pd_msg_assign m = { 0 };
	m.conn_id = e->id;
	m.arena_id = e->arena_id;
	m.arena_size = e->arena_size;
	m.slot_index = e->slot;
	m.role = e->role;
	m.generation = e->gen;
	m.ring_size = e->ring;
	int fds[PD_ASSIGN_NFDS];
	fds[PD_ASSIGN_FD_ARENA] = pd_real.dup(e->memfd); /* assign_locked keeps or closes it */
	fds[PD_ASSIGN_FD_RX_SELF] = e->efd[0];
	fds[PD_ASSIGN_FD_TX_SELF] = e->efd[1];
	fds[PD_ASSIGN_FD_RX_PEER] = e->efd[2];
	fds[PD_ASSIGN_FD_TX_PEER] = e->efd[3];
	fds[PD_ASSIGN_FD_PEER_PROC] = e->efd[4];
	for (int i = 1; i < (int)PD_ASSIGN_NFDS; i++) cloexec(fds[i]);
	if (fds[0] < 0 || !assign_locked(c, &m, fds)) {
		if (fds[0] >= 0) pd_real.close(fds[0]);
		return false;
	}
	cloexec(c->arena->memfd);
	c->tx_head = e->tx_head;
	c->rx_tail = e->rx_tail;
	return true;
}

static void adopt_flags(struct pd_conn *c, const struct exec_conn *e)
{
	c->id = e->id;
	c->origin = e->origin;
	c->tx_switched = e->flags & 1;
	c->rx_sw_seen = e->flags >> 1 & 1;
	c->rx_ring = e->flags >> 2 & 1;
	c->rx_eof = e->flags >> 3 & 1;
	c->rx_fin = e->flags >> 4 & 1;
	c->wr_shut = e->flags >> 5 & 1;
	c->rd_shut = e->flags >> 6 & 1;
	c->forked = e->flags >> 7 & 1;
	c->reported = e->flags >> 8 & 1;
	if (e->flags >> 9 & 1) c->no_attach = (int)PD_REFUSE_FORKED; /* forked before it attached: its ASSIGN is refused */
	c->rx_kcheck = true; /* look at the kernel socket at the first read */
	c->tx_tcp = e->tx_tcp;
	c->rx_tcp = e->rx_tcp;
	c->rcvlowat = e->rcvlowat;
}

/* At start (init.c): adopt what the image before the exec carried. */
void pd_session_exec_adopt(const char *st)
{
	if (strncmp(st, "1;", 2) != 0) return;
	const char *p = st + 2;
	int sfd = -1;
	unsigned long long next_id = 0;
	struct exec_conn *cv = NULL;
	int nc = 0, capc = 0;
	struct { int fd; unsigned long long serial; } *fv = NULL;
	int nf = 0, capf = 0;
	while (*p) {
		const char *end = strchr(p, ';');
		if (!end) break;
		if (p[0] == 's') {
			sscanf(p, "s %d %llu", &sfd, &next_id);
		} else if (p[0] == 'c') {
			void *v = pd_grow(cv, nc, &capc, sizeof *cv, 16);
			if (!v) break;
			cv = v;
			struct exec_conn *e = &cv[nc];
			memset(e, 0, sizeof *e);
			if (sscanf(p, "c %llu %d %llu %u %d %llu %llu %u %u %u %u %u %llu %llu %llu %llu %d %d %d %d %d %d %d",
				   &e->serial, &e->st, &e->id, &e->flags, &e->origin, &e->arena_id, &e->arena_size, &e->ring,
				   &e->slot, &e->gen, &e->role, &e->has_slot, &e->tx_head, &e->rx_tail, &e->tx_tcp, &e->rx_tcp,
				   &e->efd[0], &e->efd[1], &e->efd[2], &e->efd[3], &e->efd[4], &e->rcvlowat, &e->memfd) == 23)
				nc++;
		} else if (p[0] == 'f') {
			void *v = pd_grow(fv, nf, &capf, sizeof *fv, 16);
			if (!v) break;
			fv = v;
			if (sscanf(p, "f %d %llu", &fv[nf].fd, &fv[nf].serial) == 2) nf++;
		}
		p = end + 1;
	}
	pthread_mutex_lock(&S.lock);
	bool session = sfd >= 0 && pd_real.fcntl(sfd, F_GETFD) >= 0;
	if (session) {
		S.fd = sfd;
		cloexec(sfd);
		pd_fd_set_kind(sfd, PD_FK_INTERNAL);
		S.next_id = next_id;
		__atomic_store_n(&S.state, SS_OPEN, __ATOMIC_RELEASE);
	}
	for (int i = 0; i < nf; i++) { /* the connections the new image holds */
		struct exec_conn *e = NULL;
		for (int k = 0; k < nc; k++)
			if (cv[k].serial == fv[i].serial) e = &cv[k];
		if (!e) continue;
		if (e->c) {
			pd_conn_install(fv[i].fd, e->c);
			continue;
		}
		int fl = pd_real.fcntl(fv[i].fd, F_GETFL);
		if (fl < 0) continue;
		int st = e->st;
		if (!session && st == PD_CS_REPORTED) st = PD_CS_TCP; /* its assignment would come to no one */
		struct pd_conn *c = pd_conn_new(fv[i].fd, PD_CS_TCP, (fl & O_NONBLOCK) != 0);
		if (!c) continue;
		e->c = c;
		adopt_flags(c, e);
		if (!session) c->reported = false;
		if (st == PD_CS_REPORTED) {
			c->next_pending = S.pending;
			S.pending = c;
		} else if ((st == PD_CS_ASSIGNED || st == PD_CS_ATTACHED) && e->has_slot) {
			if (!adopt_slot(c, e)) st = PD_CS_TCP;
		} else if (st != PD_CS_ESTABLISHED) {
			st = PD_CS_TCP;
		}
		__atomic_store_n(&c->state, st, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&S.lock);
	for (int k = 0; k < nc; k++) { /* closed by the exec: close their ends as close() would */
		struct exec_conn *e = &cv[k];
		if (e->c) continue;
		struct pd_conn gone;
		memset(&gone, 0, sizeof gone);
		gone.efd_rx_self = gone.efd_tx_self = gone.efd_rx_peer = gone.efd_tx_peer = gone.peer_proc = -1;
		adopt_flags(&gone, e);
		if (!session) gone.reported = false;
		int st = e->st;
		pthread_mutex_lock(&S.lock);
		if ((st == PD_CS_ASSIGNED || st == PD_CS_ATTACHED) && e->has_slot && !adopt_slot(&gone, e)) st = PD_CS_TCP;
		if (st == PD_CS_REPORTED) st = PD_CS_TCP;
		gone.state = st;
		pthread_mutex_unlock(&S.lock);
		pd_conn_release_slot(&gone);
	}
	/* each use above took a dup of its arena's memfd (an arena keeps its
	 * own): the carried descriptors are closed, each once */
	for (int k = 0; k < nc; k++)
		if (cv[k].memfd >= 0) {
			if (pd_real.fcntl(cv[k].memfd, F_GETFD) >= 0) pd_real.close(cv[k].memfd);
			for (int j = k + 1; j < nc; j++)
				if (cv[j].memfd == cv[k].memfd) cv[j].memfd = -1;
		}
	free(cv);
	free(fv);
}
