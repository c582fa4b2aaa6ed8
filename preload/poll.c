/* poll, ppoll, select, pselect on upgraded sockets.
 *
 * The kernel still does the sleeping: the caller's set is copied, each
 * upgraded socket keeps its kernel entry (TCP bytes before the switch, FIN,
 * errors; EPOLLOUT only until we send by the ring), and one extra entry is a
 * per-thread epoll instance holding the doorbells of upgraded sockets,
 * edge-triggered, so that nothing here ever consumes a doorbell another
 * waiter needs. Ring readiness is computed in user space; when nothing is
 * ready the connections are armed and re-checked before sleeping.
 * A connection inside a poll/select is not attached meanwhile: the caller
 * watches only its kernel socket. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include "pd.h"

#define PD_INIT() do { if (PD_UNLIKELY(!pd_real.read)) pd_init(); } while (0)

static __thread int priv_ep = -1;
static pthread_key_t priv_key;
static pthread_once_t priv_once = PTHREAD_ONCE_INIT;

static void priv_close(void *p)
{
	int fd = (int)(intptr_t)p - 1;
	if (fd >= 0) {
		pd_fd_set_kind(fd, PD_FK_UNKNOWN);
		pd_real.close(fd);
	}
}

static void priv_key_init(void)
{
	pthread_key_create(&priv_key, priv_close);
}

static int priv_epoll(void)
{
	if (priv_ep >= 0) return priv_ep;
	pthread_once(&priv_once, priv_key_init);
	int fd = pd_real.epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) return -1;
	pd_fd_set_kind(fd, PD_FK_INTERNAL);
	priv_ep = fd;
	pthread_setspecific(priv_key, (void *)(intptr_t)(fd + 1));
	return fd;
}

/* fork child: the thread's set is the parent's instance (shared, so each
 * process would collect edges the other needs): start a new one. */
void pd_poll_atfork_child(void)
{
	if (priv_ep >= 0) {
		pd_fd_set_kind(priv_ep, PD_FK_UNKNOWN);
		pd_real.close(priv_ep);
		pthread_setspecific(priv_key, NULL); /* created with the set */
	}
	priv_ep = -1;
}

static void priv_drain(int ep)
{
	struct epoll_event ev[64];
	while (pd_real.epoll_wait(ep, ev, 64, 0) == 64)
		;
}

static void priv_add(int ep, int efd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = efd };
	pd_real.epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev); /* EEXIST: already there */
}

struct ring_ent {
	nfds_t idx;
	struct pd_conn *c;
};

/* An epoll set of ours watched for POLLIN: readable when its rings are (or
 * the kernel says so, its bell drained: epoll.c). */
struct set_ent {
	nfds_t idx;
	struct pd_ep_arms *arms;
};

/* poll_core's arrays: on the stack for small sets, else on the heap, made
 * when the first entry that needs them is found. */
enum { STACK = 64 };
struct pbufs {
	struct ring_ent ring_stack[STACK], *ring;
	struct pd_conn *held_stack[STACK], **held;
	struct set_ent set_stack[STACK], *sets;
	struct pollfd copy_stack[STACK + 1], *copy;
	bool heap;
};

static bool pbufs_ready(struct pbufs *b, nfds_t n)
{
	if (n <= STACK) return true;
	if (!b->heap) {
		b->heap = true;
		b->ring = malloc(n * sizeof *b->ring);
		b->held = malloc(n * sizeof *b->held);
		b->sets = malloc(n * sizeof *b->sets);
		b->copy = malloc((n + 1) * sizeof *b->copy);
	}
	return b->ring && b->held && b->sets && b->copy;
}

static int remaining_ms(int timeout, uint64_t start)
{
	if (timeout < 0) return -1;
	uint64_t el = (pd_now_ns() - start) / 1000000u;
	return el >= (uint64_t)timeout ? 0 : timeout - (int)el;
}

static short ring_revents(struct pd_conn *c, short want)
{
	uint32_t ev = pd_conn_ring_events(c, NULL, NULL);
	if (ev & POLLIN) ev |= POLLRDNORM; /* TCP reports both for in-band data */
	if (ev & POLLOUT) ev |= POLLWRNORM;
	return (short)(ev & (uint32_t)(want | POLLERR | POLLHUP));
}

#define POLL_OUT_ALL (POLLOUT | POLLWRNORM | POLLWRBAND)

/* The core of poll and ppoll. timeout in ms (-1 = forever). */
static int poll_core(struct pollfd *fds, nfds_t n, int timeout, const sigset_t *mask, bool is_ppoll)
{
	struct pbufs b;
	b.ring = b.ring_stack;
	b.held = b.held_stack;
	b.sets = b.set_stack;
	b.copy = b.copy_stack;
	b.heap = false;
	struct ring_ent *ring = b.ring;
	struct pd_conn **held = b.held;
	struct set_ent *sets = b.sets;
	struct pollfd *copy = b.copy;
	nfds_t nring = 0, nheld = 0, nset = 0;
	int saved = errno, result = -1, ep = -1;

	for (nfds_t i = 0; i < n; i++) {
		int kind = pd_fd_kind(fds[i].fd);
		if (kind == PD_FK_EPOLL && (fds[i].events & (POLLIN | POLLRDNORM)) && pd_ep_watch(fds[i].fd)) {
			if (!pbufs_ready(&b, n)) goto fallback;
			b.sets[nset].idx = i;
			b.sets[nset].arms = NULL;
			nset++;
			continue;
		}
		if (kind != PD_FK_TCP) continue;
		struct pd_conn *c = pd_conn_get(fds[i].fd);
		if (!c) continue;
		if (!pbufs_ready(&b, n)) {
			pd_conn_put(c);
			goto fallback;
		}
		int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
		if (st == PD_CS_ESTABLISHED) { /* watched: a use, so report it now (no attach meanwhile) */
			pd_session_report(c, c->origin);
			st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
		}
		if (st == PD_CS_ATTACHED) {
			b.ring[nring].idx = i;
			b.ring[nring].c = c;
			nring++;
		} else if (st != PD_CS_TCP) {
			__atomic_add_fetch(&c->pollers, 1, __ATOMIC_ACQ_REL); /* no attach meanwhile */
			b.held[nheld++] = c;
		} else {
			pd_conn_put(c);
		}
	}
	ring = b.ring;
	held = b.held;
	sets = b.sets;
	copy = b.copy;
	if (nring == 0 && nset == 0) {
	fallback:
		errno = saved;
		if (is_ppoll) {
			struct timespec ts, *tp = NULL;
			if (timeout >= 0) {
				ts.tv_sec = timeout / 1000;
				ts.tv_nsec = (long)(timeout % 1000) * 1000000L;
				tp = &ts;
			}
			result = pd_real.ppoll(fds, n, tp, mask);
		} else {
			result = pd_real.poll(fds, n, timeout);
		}
		goto out;
	}
	if (nring > 0) {
		ep = priv_epoll();
		if (ep < 0) goto fallback;
	}
	for (nfds_t k = 0; k < nring; k++) {
		priv_add(ep, ring[k].c->efd_rx_self);
		priv_add(ep, ring[k].c->efd_tx_self);
	}
	const nfds_t nk = n + (ep >= 0 ? 1 : 0); /* the entries given to the kernel */
	uint64_t start = pd_now_ns();
	for (;;) {
		memcpy(copy, fds, n * sizeof *copy);
		for (nfds_t i = 0; i < n; i++) copy[i].revents = 0;
		int ready = 0;
		for (nfds_t k = 0; k < nring; k++) {
			struct pd_conn *c = ring[k].c;
			struct pollfd *p = &copy[ring[k].idx];
			if (__atomic_load_n(&c->tx_switched, __ATOMIC_ACQUIRE)) p->events &= (short)~POLL_OUT_ALL;
			if (fds[ring[k].idx].events & (POLLIN | POLLRDNORM)) p->events |= POLLRDHUP;
			if (ring_revents(c, fds[ring[k].idx].events)) ready++;
		}
		/* an epoll set's readiness is asked once the kernel has answered
		 * (below); before sleeping, arming it says whether its rings are
		 * ready, and the kernel's poll of it answers for its own fds */
		int t = ready ? 0 : remaining_ms(timeout, start);
		bool armed = false;
		if (!ready && t != 0) {
			if (ep >= 0) priv_drain(ep);
			armed = true;
			for (nfds_t k = 0; k < nring; k++) {
				short want = fds[ring[k].idx].events;
				pd_conn_arm(ring[k].c, want & (POLLIN | POLLRDNORM | POLLRDHUP), want & (POLLOUT | POLLWRNORM));
				if (ring_revents(ring[k].c, want)) ready++;
			}
			for (nfds_t k = 0; k < nset; k++) {
				bool rdy = false;
				sets[k].arms = pd_ep_arm(fds[sets[k].idx].fd, &rdy);
				if (rdy) ready++;
			}
			if (ready) t = 0;
		}
		if (ep >= 0) {
			copy[n].fd = ep;
			copy[n].events = POLLIN;
			copy[n].revents = 0;
		}
		int r;
		if (is_ppoll) {
			struct timespec ts, *tp = NULL;
			if (t >= 0) {
				ts.tv_sec = t / 1000;
				ts.tv_nsec = (long)(t % 1000) * 1000000L;
				tp = &ts;
			}
			r = pd_real.ppoll(copy, nk, tp, mask);
		} else {
			r = pd_real.poll(copy, nk, t);
		}
		if (armed) {
			int e = errno;
			for (nfds_t k = 0; k < nring; k++) {
				short want = fds[ring[k].idx].events;
				pd_conn_disarm(ring[k].c, want & (POLLIN | POLLRDNORM | POLLRDHUP), want & (POLLOUT | POLLWRNORM));
			}
			for (nfds_t k = 0; k < nset; k++) {
				pd_ep_disarm(sets[k].arms);
				sets[k].arms = NULL;
			}
			errno = e;
		}
		if (r < 0) goto out; /* EINTR and friends, as the kernel says */
		if (ep >= 0 && copy[n].revents) priv_drain(ep);
		int count = 0;
		for (nfds_t i = 0; i < n; i++) fds[i].revents = copy[i].revents;
		for (nfds_t k = 0; k < nring; k++) {
			struct pollfd *p = &fds[ring[k].idx];
			short kev = p->revents;
			/* the kernel socket's POLLOUT means nothing once we send by the ring */
			if (__atomic_load_n(&ring[k].c->tx_switched, __ATOMIC_ACQUIRE)) kev &= (short)~POLL_OUT_ALL;
			if (!(p->events & POLLRDHUP)) kev &= (short)~POLLRDHUP;
			p->revents = (short)(kev | ring_revents(ring[k].c, p->events));
		}
		for (nfds_t k = 0; k < nset; k++) {
			/* the kernel's POLLIN may be a stale doorbell edge; the set's
			 * rings may be readable without one: ask the set */
			struct pollfd *p = &fds[sets[k].idx];
			p->revents &= (short)~(POLLIN | POLLRDNORM);
			if (pd_ep_ready(p->fd)) p->revents |= (short)(p->events & (POLLIN | POLLRDNORM));
		}
		for (nfds_t i = 0; i < n; i++)
			if (fds[i].revents) count++;
		if (count > 0 || remaining_ms(timeout, start) == 0) {
			errno = saved;
			result = count;
			goto out;
		}
	}
out:
	for (nfds_t k = 0; k < nring; k++) pd_conn_put(ring[k].c);
	int e = errno;
	for (nfds_t k = 0; k < nheld; k++) {
		__atomic_sub_fetch(&held[k]->pollers, 1, __ATOMIC_ACQ_REL);
		/* Out of the call, the connection may attach: take an assignment
		 * that came meanwhile now, as epoll_wait does, rather than at the
		 * next data call, which a program idle in poll may not make for
		 * long. The revents returned came from the kernel socket and stay
		 * true (bytes sent before the peer's switch still come by TCP). */
		int st = __atomic_load_n(&held[k]->state, __ATOMIC_ACQUIRE);
		if (st == PD_CS_REPORTED || st == PD_CS_ASSIGNED) pd_conn_progress(held[k]);
		pd_conn_put(held[k]);
	}
	errno = e;
	if (b.heap) {
		free(b.ring);
		free(b.held);
		free(b.sets);
		free(b.copy);
	}
	return result;
}

PD_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	PD_INIT();
	return poll_core(fds, n, timeout, NULL, false);
}

PD_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	PD_INIT();
	if (fdslen / sizeof *fds < n) return pd_real.__poll_chk(fds, n, timeout, fdslen);
	return poll_core(fds, n, timeout, NULL, false);
}

static int ts_to_ms(const struct timespec *ts)
{
	if (!ts) return -1;
	long long ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

PD_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	PD_INIT();
	if (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L))
		return pd_real.ppoll(fds, n, ts, mask); /* EINVAL from the kernel */
	return poll_core(fds, n, ts_to_ms(ts), mask, true);
}

/* select over an upgraded socket: done as a poll. */
static bool select_has_ring(int n, fd_set *r, fd_set *w, fd_set *e)
{
	for (int fd = 0; fd < n && fd < FD_SETSIZE; fd++) {
		if (!((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e)))) continue;
		int kind = pd_fd_kind(fd);
		if (kind == PD_FK_EPOLL && r && FD_ISSET(fd, r) && pd_ep_watch(fd)) return true; /* a set of ours */
		if (kind != PD_FK_TCP) continue;
		struct pd_conn *c = pd_conn_get(fd);
		if (!c) continue;
		int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
		pd_conn_put(c);
		if (st != PD_CS_TCP) return true; /* attached, or may attach: go through poll_core */
	}
	return false;
}

static int select_core(int n, fd_set *r, fd_set *w, fd_set *e, int timeout, const sigset_t *mask, bool is_p)
{
	if (n > FD_SETSIZE) n = FD_SETSIZE;
	struct pollfd p[FD_SETSIZE];
	int k = 0;
	for (int fd = 0; fd < n; fd++) {
		short ev = 0;
		if (r && FD_ISSET(fd, r)) ev |= POLLIN;
		if (w && FD_ISSET(fd, w)) ev |= POLLOUT;
		if (e && FD_ISSET(fd, e)) ev |= POLLPRI;
		if (!ev) continue;
		p[k].fd = fd;
		p[k].events = ev;
		p[k].revents = 0;
		k++;
	}
	int rc = poll_core(p, (nfds_t)k, timeout, mask, is_p);
	if (rc < 0) return rc;
	int bad = 0;
	for (int i = 0; i < k; i++)
		if (p[i].revents & POLLNVAL) bad = 1;
	if (bad) {
		errno = EBADF;
		return -1;
	}
	if (r) FD_ZERO(r);
	if (w) FD_ZERO(w);
	if (e) FD_ZERO(e);
	int count = 0;
	for (int i = 0; i < k; i++) {
		short re = p[i].revents;
		if (r && (p[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(p[i].fd, r);
			count++;
		}
		if (w && (p[i].events & POLLOUT) && (re & (POLLOUT | POLLERR))) {
			FD_SET(p[i].fd, w);
			count++;
		}
		if (e && (p[i].events & POLLPRI) && (re & POLLPRI)) {
			FD_SET(p[i].fd, e);
			count++;
		}
	}
	return count;
}

PD_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	PD_INIT();
	if (!select_has_ring(n, r, w, e) || (tv && (tv->tv_sec < 0 || tv->tv_usec < 0)))
		return pd_real.select(n, r, w, e, tv);
	int timeout = -1;
	if (tv) {
		long long ms = (long long)tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
		timeout = ms > 0x7fffffff ? 0x7fffffff : (int)ms;
	}
	uint64_t start = pd_now_ns();
	int rc = select_core(n, r, w, e, timeout, NULL, false);
	if (tv) { /* Linux reports the time left */
		uint64_t el = (pd_now_ns() - start) / 1000u, left = (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec;
		left = el >= left ? 0 : left - el;
		tv->tv_sec = (time_t)(left / 1000000u);
		tv->tv_usec = (suseconds_t)(left % 1000000u);
	}
	return rc;
}

PD_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *mask)
{
	PD_INIT();
	if (!select_has_ring(n, r, w, e) || (ts && (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)))
		return pd_real.pselect(n, r, w, e, ts, mask);
	return select_core(n, r, w, e, ts_to_ms(ts), mask, true);
}
