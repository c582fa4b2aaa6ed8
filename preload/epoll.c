/* epoll on upgraded sockets.
 *
 * Every registration of a TCP socket in an application's epoll set is
 * recorded (a pd_epreg) and made in the kernel with our tag (the reg's
 * address) as data, the application's data kept aside. Once the connection
 * is attached, its two doorbells join the set, edge-triggered, tagged too;
 * the socket stays for what only the kernel knows (TCP bytes before the
 * switch, the FIN, errors) but loses EPOLLOUT once we send by the ring.
 * epoll_wait answers from the rings without a syscall when they are ready,
 * else arms the connections (the peer rings on its next write/read), re-
 * checks, and sleeps in the kernel; events with our tag are translated back.
 * A registration whose connection ends on TCP is handed back to the kernel
 * untouched (the application's own data restored): no cost for it after.
 * Known limit: the ring scan is linear in the ring registrations of a set.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "barrier.h"
#include "pd.h"

#define EPREG_MAGIC 0x45505247u
#define REG_CHUNK 1024
#define REG_CHUNKS 1024

enum { KIND_SOCK = 0, KIND_RX = 1, KIND_TX = 2 };
enum { MODE_PLAIN = 0, MODE_RING = 1, MODE_NEST = 2 };
/* MODE_NEST: the registered fd is itself an epoll set of ours (an epoll fd
 * inside another epoll set): its readiness includes its ring registrations'. */
#define NEST_MAX_DEPTH 4 /* the kernel allows 5 levels of nesting (EP_MAX_NESTS) */

struct pd_epreg {
	uint32_t magic;
	int live;
	uint16_t gen;             /* bumped on every reuse; part of the tag */
	int epfd, fd;
	struct pd_conn *conn;     /* NULL until the fd becomes a connection */
	uint32_t events;          /* the application's interest and flags */
	uint64_t data;            /* the application's data */
	int mode;
	bool disabled;            /* EPOLLONESHOT fired, or deleted (zombie) */
	bool zombie;              /* EPOLL_CTL_DEL'd in ring mode: kept, silent, for a re-ADD */
	bool out_in_kernel;       /* the socket registration includes EPOLLOUT */
	uint64_t et_head, et_tail;  /* MODE_NEST: et_head holds the inner rings' fingerprint */
	uint32_t et_last;         /* ring events last reported (edge-triggered) */
	uint32_t inner_id;        /* MODE_NEST: the pd_ep.id of the inner set */
	uint64_t out_batch;       /* epoll_wait round that last reported it */
	int out_idx;              /* its slot in that round's output */
	struct pd_epreg *next_ep, *next_conn, *next_free;
};

struct pd_ep {
	struct pd_epreg *regs;
	int ring_regs;
	uint64_t kernel_ns;   /* last time epoll_wait asked the kernel */
	int kernel_skips;     /* rounds answered from the rings alone since */
	uint32_t spin_ns;     /* adaptive spin budget before arming */
	int sleepers;         /* threads asleep in the kernel on this set */
	bool kernel_idle;     /* the last kernel wait returned nothing */
	int plain_regs;       /* registrations not (yet) in ring mode */
	int session_fd;       /* our session socket as registered in this set, or -1 */
	int nest_regs;        /* registrations of epoll sets of ours (MODE_NEST) */
	int bell;             /* -1, or the private set holding our doorbells (below) */
	uint32_t id;          /* unique for the process's life: MODE_NEST regs name their inner set by it */
};

/* Doorbells are never read (ring.c), so an eventfd that was ever rung stays
 * readable, and the kernel queues its edge in every set holding it. For the
 * application's own epoll_wait that costs a spurious wake-up at most; but an
 * epoll set that is itself watched (inside another epoll set, or by poll or
 * select) is readable to the kernel while such an edge is queued, which would
 * report it readable for nothing. Such a set ("belled") keeps its doorbells in
 * a private epoll instance, the bell, registered in it level-triggered: the
 * bell is drained (its edges mean nothing once the rings are scanned) before
 * the set's readiness is judged or waited on, so the kernel's view of the set
 * is then exactly the application's own fds and sockets, and a doorbell rung
 * after the drain still wakes whoever waits on the set. */
static const char bell_sentinel;
#define BELL_TAG ((uint64_t)(uintptr_t)&bell_sentinel | 3u)

/* Rounds answered from the rings may skip the kernel (its other fds: a
 * listening socket, timers) for at most this long or this many rounds. */
#define KERNEL_SKIP_NS 200000u
#define KERNEL_SKIP_MAX 16

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pd_epreg *reg_chunks[REG_CHUNKS];
static int reg_nchunks;
static struct pd_epreg *reg_free;

static struct pd_epreg *reg_alloc(void)
{
	if (!reg_free) {
		if (reg_nchunks == REG_CHUNKS) return NULL;
		struct pd_epreg *ch = calloc(REG_CHUNK, sizeof *ch);
		if (!ch) return NULL;
		for (int i = REG_CHUNK - 1; i >= 0; i--) {
			ch[i].next_free = reg_free;
			reg_free = &ch[i];
		}
		__atomic_store_n(&reg_chunks[reg_nchunks], ch, __ATOMIC_RELEASE);
		__atomic_store_n(&reg_nchunks, reg_nchunks + 1, __ATOMIC_RELEASE);
	}
	struct pd_epreg *r = reg_free;
	reg_free = r->next_free;
	uint16_t gen = (uint16_t)(r->gen + 1);
	memset(r, 0, sizeof *r);
	r->gen = gen;
	return r;
}

/* Tags: the reg's address (8-aligned, below 2^47) | kind in bits 0-1 |
 * the reg's generation in bits 48-63, so an event the kernel queued for a
 * registration since dropped (or recycled) is recognised as stale. */
#define TAG_PTR_MASK 0x0000fffffffffffcull

/* The reg behind a data value the kernel gave back: 1 and *out set when it
 * is a live tag of ours, -1 when it is ours but stale (drop the event), 0
 * when it is the application's own data. */
static int reg_from_tag(uint64_t tag, int epfd, int *kind, struct pd_epreg **out)
{
	uintptr_t p = (uintptr_t)(tag & TAG_PTR_MASK);
	int n = __atomic_load_n(&reg_nchunks, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++) {
		uintptr_t base = (uintptr_t)__atomic_load_n(&reg_chunks[i], __ATOMIC_ACQUIRE);
		if (p < base || p >= base + REG_CHUNK * sizeof(struct pd_epreg)) continue;
		if ((p - base) % sizeof(struct pd_epreg)) return 0;
		struct pd_epreg *r = (struct pd_epreg *)p;
		if (r->magic != EPREG_MAGIC || !r->live || r->epfd != epfd || r->gen != (uint16_t)(tag >> 48)) return -1;
		*kind = (int)(tag & 3);
		*out = r;
		return 1;
	}
	return 0;
}

/* Under ep_lock. The set's record lives in the fd table's aux slot. */
static struct pd_ep *ep_get(int epfd, bool create)
{
	struct pd_ep *ep = pd_fd_aux(epfd);
	if (ep || !create || epfd < 0) return ep;
	static uint32_t ids;
	ep = calloc(1, sizeof *ep);
	if (ep) {
		ep->session_fd = -1;
		ep->bell = -1;
		ep->id = ++ids;
	}
	if (ep && pd_fd_set_aux(epfd, ep) < 0) {
		free(ep);
		return NULL;
	}
	if (ep) pd_fd_set_kind(epfd, PD_FK_EPOLL);
	return ep;
}

static struct pd_epreg *reg_find(struct pd_ep *ep, int fd)
{
	for (struct pd_epreg *r = ep ? ep->regs : NULL; r; r = r->next_ep)
		if (r->fd == fd) return r;
	return NULL;
}

static uint64_t tag(struct pd_epreg *r, int kind)
{
	return (uint64_t)(uintptr_t)r | (uint64_t)kind | ((uint64_t)r->gen << 48);
}

/* What the kernel socket is registered for. */
static uint32_t sock_events(struct pd_epreg *r)
{
	if (r->mode != MODE_RING) return r->events;
	uint32_t ev = (r->events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLET | EPOLLRDNORM)) | EPOLLIN | EPOLLRDHUP;
	if (!__atomic_load_n(&r->conn->tx_switched, __ATOMIC_ACQUIRE)) ev |= r->events & (EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND);
	return ev; /* no EPOLLONESHOT: we disable the registration ourselves */
}

static int kctl(int epfd, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return pd_real.epoll_ctl(epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static void conn_unlink(struct pd_epreg *r)
{
	if (!r->conn) return;
	for (struct pd_epreg **pp = &r->conn->epregs; *pp; pp = &(*pp)->next_conn)
		if (*pp == r) {
			*pp = r->next_conn;
			break;
		}
	r->conn = NULL;
}

static void reg_drop(struct pd_ep *ep, struct pd_epreg *r)
{
	for (struct pd_epreg **pp = &ep->regs; *pp; pp = &(*pp)->next_ep)
		if (*pp == r) {
			*pp = r->next_ep;
			break;
		}
	if (r->mode == MODE_RING) ep->ring_regs--;
	else if (r->mode == MODE_NEST) ep->nest_regs--;
	else ep->plain_regs--;
	conn_unlink(r);
	r->live = 0;
	r->magic = 0;
	r->next_free = reg_free;
	reg_free = r;
}

/* Move a registration to ring mode: its connection is attached. */
static void reg_to_ring(struct pd_ep *ep, struct pd_epreg *r)
{
	struct pd_conn *c = r->conn;
	int bfd = ep->bell >= 0 ? ep->bell : r->epfd;
	if (kctl(bfd, EPOLL_CTL_ADD, c->efd_rx_self, EPOLLIN | EPOLLET, tag(r, KIND_RX)) < 0 ||
	    kctl(bfd, EPOLL_CTL_ADD, c->efd_tx_self, EPOLLIN | EPOLLET, tag(r, KIND_TX)) < 0) {
		/* EEXIST: the connection is in this set under another fd too; the
		 * doorbells then report for that registration. Stay usable. */
	}
	r->mode = MODE_RING;
	ep->ring_regs++;
	ep->plain_regs--;
	r->out_in_kernel = sock_events(r) & EPOLLOUT;
	kctl(r->epfd, EPOLL_CTL_MOD, r->fd, sock_events(r), tag(r, KIND_SOCK));
	/* a waiter already asleep in this set has not armed this connection:
	 * wake it to look again (and arm); so for a belled set, whose waiters
	 * may sleep on an outer set or in poll */
	if (ep->sleepers > 0 || ep->bell >= 0) pd_conn_ring_self(c);
}

/* Hand a registration back to the kernel: its connection stays on TCP. */
static void reg_to_kernel(struct pd_ep *ep, struct pd_epreg *r)
{
	if (r->zombie) { /* the application deleted it already */
		kctl(r->epfd, EPOLL_CTL_DEL, r->fd, 0, 0);
		reg_drop(ep, r);
		return;
	}
	uint32_t ev = r->disabled ? (r->events & ~(uint32_t)(EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI)) : r->events;
	kctl(r->epfd, EPOLL_CTL_MOD, r->fd, ev, r->data);
	reg_drop(ep, r);
}

/* Bring a registration up to date with its connection's state. */
static void reg_refresh(struct pd_ep *ep, struct pd_epreg *r)
{
	if (r->mode == MODE_NEST) return;
	if (!r->conn) {
		/* No reference taken: a connection is unlinked from its regs under
		 * ep_lock (pd_ep_conn_gone) before it can be recycled, and one with
		 * fds left has not started that yet. */
		struct pd_conn *c = pd_conn_peek(r->fd);
		if (!c || __atomic_load_n(&c->fds, __ATOMIC_ACQUIRE) <= 0) return;
		r->conn = c;
		r->next_conn = c->epregs;
		c->epregs = r;
	}
	int st = __atomic_load_n(&r->conn->state, __ATOMIC_ACQUIRE);
	if (r->mode == MODE_PLAIN) {
		if (st == PD_CS_TCP) reg_to_kernel(ep, r);
		else if (st == PD_CS_ATTACHED) reg_to_ring(ep, r);
		return;
	}
	if (r->out_in_kernel && !(sock_events(r) & EPOLLOUT)) { /* we switched to sending by the ring */
		r->out_in_kernel = false;
		kctl(r->epfd, EPOLL_CTL_MOD, r->fd, sock_events(r), tag(r, KIND_SOCK));
	}
}

/* Under ep_lock: move a set's doorbells into a bell of their own (see
 * BELL_TAG). Done once, when the set is first nested or polled. Without a
 * bell (no fd left) the set still works; its readiness may then be reported
 * once for a stale doorbell edge. */
static void ep_to_bell(struct pd_ep *ep, int epfd)
{
	if (ep->bell >= 0) return;
	int b = pd_real.epoll_create1(EPOLL_CLOEXEC);
	if (b < 0) return;
	pd_fd_set_kind(b, PD_FK_INTERNAL);
	if (kctl(epfd, EPOLL_CTL_ADD, b, EPOLLIN, BELL_TAG) < 0) {
		pd_fd_set_kind(b, PD_FK_UNKNOWN);
		pd_real.close(b);
		return;
	}
	ep->bell = b;
	for (struct pd_epreg *r = ep->regs; r; r = r->next_ep) {
		if (r->mode != MODE_RING || !r->conn || r->conn->efd_rx_self < 0) continue;
		kctl(epfd, EPOLL_CTL_DEL, r->conn->efd_rx_self, 0, 0);
		kctl(epfd, EPOLL_CTL_DEL, r->conn->efd_tx_self, 0, 0);
		kctl(b, EPOLL_CTL_ADD, r->conn->efd_rx_self, EPOLLIN | EPOLLET, tag(r, KIND_RX));
		kctl(b, EPOLL_CTL_ADD, r->conn->efd_tx_self, EPOLLIN | EPOLLET, tag(r, KIND_TX));
	}
}

/* Under ep_lock: forget the doorbell edges queued in a set's bell. */
static void bell_drain(struct pd_ep *ep)
{
	if (ep->bell < 0) return;
	struct epoll_event ev[64];
	while (pd_real.epoll_wait(ep->bell, ev, 64, 0) == 64)
		;
}

/* Under ep_lock: the inner set a MODE_NEST registration names, if it is
 * still the same set (its fd may have been closed and reused). */
static struct pd_ep *nest_inner(struct pd_epreg *r)
{
	struct pd_ep *in = pd_fd_aux(r->fd);
	return in && in->id == r->inner_id ? in : NULL;
}

void pd_ep_conn_attached(struct pd_conn *c)
{
	pthread_mutex_lock(&ep_lock);
	for (struct pd_epreg *r = c->epregs, *next; r; r = next) {
		next = r->next_conn;
		if (r->mode == MODE_PLAIN) reg_to_ring(ep_get(r->epfd, false), r);
	}
	pthread_mutex_unlock(&ep_lock);
}

void pd_ep_conn_gone(struct pd_conn *c)
{
	pthread_mutex_lock(&ep_lock);
	while (c->epregs) {
		struct pd_epreg *r = c->epregs;
		struct pd_ep *ep = ep_get(r->epfd, false);
		/* the doorbells stay open elsewhere (peer, controller): take them
		 * out of the set ourselves, as closing the socket does for it */
		if (r->mode == MODE_RING && c->efd_rx_self >= 0) {
			int bfd = ep && ep->bell >= 0 ? ep->bell : r->epfd;
			kctl(bfd, EPOLL_CTL_DEL, c->efd_rx_self, 0, 0);
			kctl(bfd, EPOLL_CTL_DEL, c->efd_tx_self, 0, 0);
		}
		if (ep) reg_drop(ep, r);
		else conn_unlink(r);
	}
	pthread_mutex_unlock(&ep_lock);
}

void pd_ep_fd_closed(int epfd)
{
	pthread_mutex_lock(&ep_lock);
	struct pd_ep *ep = ep_get(epfd, false);
	if (ep) {
		while (ep->regs) reg_drop(ep, ep->regs);
		if (ep->bell >= 0) {
			pd_fd_set_kind(ep->bell, PD_FK_UNKNOWN);
			pd_real.close(ep->bell);
		}
		free(ep);
		pd_fd_set_aux(epfd, NULL);
	}
	pthread_mutex_unlock(&ep_lock);
}

PD_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	int fk = pd_fd_kind(fd);
	if (fk != PD_FK_TCP && fk != PD_FK_EPOLL &&
	    !(op == EPOLL_CTL_DEL && pd_fd_kind(epfd) == PD_FK_EPOLL && pd_fd_aux(epfd)))
		return pd_real.epoll_ctl(epfd, op, fd, event);
	int saved = errno, r = 0;
	pthread_mutex_lock(&ep_lock);
	struct pd_ep *ep = ep_get(epfd, op == EPOLL_CTL_ADD);
	struct pd_epreg *reg = reg_find(ep, fd);
	if (op == EPOLL_CTL_ADD && reg && reg->zombie && event) {
		/* re-ADD after a DEL in ring mode (event loops do it per request):
		 * the doorbells never left; the socket gets its interest back */
		reg->zombie = false;
		reg->disabled = false;
		reg->events = event->events;
		reg->data = event->data.u64;
		reg->et_last = 0;
		reg->out_in_kernel = sock_events(reg) & EPOLLOUT;
		r = kctl(epfd, EPOLL_CTL_MOD, fd, sock_events(reg), tag(reg, KIND_SOCK));
		if (r == 0) {
			reg_refresh(ep, reg);
			if (reg->mode == MODE_RING && ep->sleepers > 0) pd_conn_ring_self(reg->conn);
		} else {
			reg_drop(ep, reg);
		}
	} else if (op == EPOLL_CTL_ADD) {
		if (!ep || !event || reg) {
			pthread_mutex_unlock(&ep_lock);
			return pd_real.epoll_ctl(epfd, op, fd, event); /* let the kernel say what is wrong */
		}
		reg = reg_alloc();
		if (!reg) {
			pthread_mutex_unlock(&ep_lock);
			return pd_real.epoll_ctl(epfd, op, fd, event);
		}
		reg->magic = EPREG_MAGIC;
		reg->live = 1;
		reg->epfd = epfd;
		reg->fd = fd;
		reg->events = event->events;
		reg->data = event->data.u64;
		struct pd_ep *inner = NULL;
		if (fk == PD_FK_EPOLL && fd != epfd) { /* a set inside a set: the inner one gets a bell */
			inner = ep_get(fd, true);
			if (inner) {
				ep_to_bell(inner, fd);
				reg->mode = MODE_NEST;
				reg->inner_id = inner->id;
			}
		}
		r = kctl(epfd, EPOLL_CTL_ADD, fd, reg->events, tag(reg, KIND_SOCK));
		if (r < 0) {
			reg->live = 0;
			reg->next_free = reg_free;
			reg_free = reg;
		} else {
			reg->next_ep = ep->regs;
			ep->regs = reg;
			if (reg->mode == MODE_NEST) ep->nest_regs++;
			else ep->plain_regs++;
			reg_refresh(ep, reg);
		}
	} else if (op == EPOLL_CTL_MOD && reg && reg->zombie) {
		r = -ENOENT;
	} else if (op == EPOLL_CTL_MOD && reg && event && ((reg->events | event->events) & EPOLLEXCLUSIVE)) {
		r = -EINVAL; /* the kernel's rule: an exclusive registration cannot be modified */
	} else if (op == EPOLL_CTL_MOD) {
		if (!reg || !event) {
			pthread_mutex_unlock(&ep_lock);
			return pd_real.epoll_ctl(epfd, op, fd, event);
		}
		uint32_t old = reg->events;
		uint32_t old_sock = sock_events(reg);
		reg->events = event->events;
		uint64_t olddata = reg->data;
		reg->data = event->data.u64;
		reg->disabled = false;
		reg->et_last = 0;
		/* In ring mode an EPOLLOUT toggle (event loops do it per reply) does
		 * not change what the kernel watches: no syscall. */
		if (reg->mode == MODE_RING && sock_events(reg) == old_sock && !(old_sock & EPOLLET))
			r = 0;
		else
			r = kctl(epfd, EPOLL_CTL_MOD, fd, sock_events(reg), tag(reg, KIND_SOCK));
		if (r < 0) {
			reg->events = old;
			reg->data = olddata;
		} else {
			reg->out_in_kernel = sock_events(reg) & EPOLLOUT;
			reg_refresh(ep, reg);
		}
	} else if (op == EPOLL_CTL_DEL) {
		if (!reg) {
			pthread_mutex_unlock(&ep_lock);
			return pd_real.epoll_ctl(epfd, op, fd, event);
		}
		if (reg->zombie) {
			r = -ENOENT;
		} else if (reg->mode == MODE_RING && reg->conn && (reg->events & EPOLLEXCLUSIVE)) {
			/* no silent zombie: the kernel does not let an exclusive
			 * registration be modified; take the doorbells out too */
			int bfd = ep->bell >= 0 ? ep->bell : epfd;
			r = kctl(epfd, EPOLL_CTL_DEL, fd, 0, 0);
			if (reg->conn->efd_rx_self >= 0) {
				kctl(bfd, EPOLL_CTL_DEL, reg->conn->efd_rx_self, 0, 0);
				kctl(bfd, EPOLL_CTL_DEL, reg->conn->efd_tx_self, 0, 0);
			}
			reg_drop(ep, reg);
		} else if (reg->mode == MODE_RING && reg->conn) {
			/* keep the registration silent for a likely re-ADD: one MOD
			 * instead of three DELs now and three ADDs then */
			r = kctl(epfd, EPOLL_CTL_MOD, fd, 0, tag(reg, KIND_SOCK));
			if (r == 0) {
				reg->zombie = true;
				reg->disabled = true;
			} else {
				reg_drop(ep, reg);
			}
		} else {
			r = kctl(epfd, EPOLL_CTL_DEL, fd, 0, 0);
			reg_drop(ep, reg);
		}
	} else {
		pthread_mutex_unlock(&ep_lock);
		return pd_real.epoll_ctl(epfd, op, fd, event);
	}
	pthread_mutex_unlock(&ep_lock);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	errno = saved;
	return 0;
}

/* Ring readiness of a registration, as the application asked for it. With
 * commit, an edge-triggered registration's report is recorded (the next
 * call reports only a new edge); without, it is only looked at. *fp, when
 * given, gets the ring indices (a fingerprint of the state reported). */
static uint32_t reg_ring_eval(struct pd_epreg *r, bool commit, uint64_t *fp)
{
	if (r->disabled) return 0;
	uint64_t h = 0, t = 0;
	uint32_t ev = pd_conn_ring_events(r->conn, &h, &t);
	if (fp) *fp = h * 31u + t;
	if (ev & EPOLLIN) ev |= EPOLLRDNORM; /* TCP reports both for in-band data */
	if (ev & EPOLLOUT) ev |= EPOLLWRNORM;
	uint32_t want = (r->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLRDNORM | EPOLLWRNORM)) | EPOLLERR | EPOLLHUP;
	ev &= want;
	if (r->events & EPOLLET) {
		/* an edge: new bytes, new space, or a condition not reported yet */
		uint32_t fresh = 0;
		if ((ev & EPOLLIN) && (h != r->et_head || !(r->et_last & EPOLLIN))) fresh |= EPOLLIN;
		if ((ev & EPOLLOUT) && (t != r->et_tail || !(r->et_last & EPOLLOUT))) fresh |= EPOLLOUT;
		fresh |= ev & ~(r->et_last | EPOLLIN | EPOLLOUT);
		if (commit) {
			r->et_head = h;
			r->et_tail = t;
			r->et_last = ev;
		}
		ev = fresh ? ev : 0; /* an edge reports everything true now, as the kernel does */
	}
	return ev;
}

static uint32_t reg_ring_events(struct pd_epreg *r)
{
	return reg_ring_eval(r, true, NULL);
}

/* Under ep_lock: would an epoll_wait on this set report a ring event now
 * (its nested sets' included)? Consumes nothing. *fp sums the fingerprints
 * of what is ready, so a waiter can tell a new edge from one it reported. */
static bool set_ring_ready(struct pd_ep *ep, int depth, uint64_t *fp)
{
	bool ready = false;
	for (struct pd_epreg *r = ep->regs; r; r = r->next_ep) {
		uint64_t f = 0;
		if (r->mode == MODE_RING) {
			if (!reg_ring_eval(r, false, &f)) continue;
		} else if (r->mode == MODE_NEST && !r->disabled && depth < NEST_MAX_DEPTH &&
			   (r->events & (EPOLLIN | EPOLLRDNORM))) {
			struct pd_ep *in = nest_inner(r);
			if (!in || !set_ring_ready(in, depth + 1, &f)) continue;
		} else {
			continue;
		}
		ready = true;
		*fp += f;
	}
	return ready;
}

/* Under ep_lock: is the set readable, as the kernel reports an epoll fd:
 * ring events, or an event of the kernel's own (its bell drained first). */
static bool set_ready(struct pd_ep *ep, int epfd, int depth)
{
	uint64_t fp = 0;
	if (set_ring_ready(ep, depth, &fp)) return true;
	bell_drain(ep);
	struct pollfd p = { .fd = epfd, .events = POLLIN };
	return pd_real.poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Ring readiness of a MODE_NEST registration: the inner set's, reported as
 * the kernel reports an epoll fd (EPOLLIN; for EPOLLET, once per new state
 * of the inner rings). */
static uint32_t nest_events(struct pd_epreg *r, int depth)
{
	struct pd_ep *in = nest_inner(r);
	uint64_t fp = 0;
	if (!in || r->disabled || depth >= NEST_MAX_DEPTH || !set_ring_ready(in, depth + 1, &fp)) {
		r->et_last = 0;
		return 0;
	}
	if ((r->events & EPOLLET) && (r->et_last & EPOLLIN) && fp == r->et_head) return 0;
	r->et_head = fp;
	r->et_last = EPOLLIN;
	return (EPOLLIN | EPOLLRDNORM) & r->events;
}

static uint64_t batch_seq; /* under ep_lock: one per epoll_wait round */

/* Put (or merge) a registration's events into the output. */
static void reg_emit(struct pd_epreg *r, uint32_t ev, struct epoll_event *out, int *n)
{
	if (r->out_batch == batch_seq) {
		out[r->out_idx].events |= ev;
		return;
	}
	r->out_batch = batch_seq;
	r->out_idx = *n;
	out[*n].events = ev;
	out[*n].data.u64 = r->data;
	(*n)++;
	if (r->events & EPOLLONESHOT) r->disabled = true;
}

/* Connections armed by one sleeping epoll_wait, to disarm when it wakes. */
struct armset {
	struct { struct pd_conn *c; bool rx, tx; } *v;
	int n, cap;
};

/* Arm a ring registration's connection for a sleeping waiter, recorded
 * (with a reference) so the caller can disarm it after sleeping. */
static bool arm_reg(struct pd_epreg *r, struct armset *arms)
{
	void *v = pd_grow(arms->v, arms->n, &arms->cap, sizeof *arms->v, 64);
	if (!v) return false; /* cannot arm: the caller will not sleep long */
	arms->v = v;
	bool rx = r->events & (EPOLLIN | EPOLLRDHUP | EPOLLRDNORM), tx = r->events & (EPOLLOUT | EPOLLWRNORM);
	__atomic_add_fetch(&r->conn->refs, 1, __ATOMIC_ACQ_REL); /* linked to a reg: alive */
	arms->v[arms->n].c = r->conn;
	arms->v[arms->n].rx = rx;
	arms->v[arms->n].tx = tx;
	arms->n++;
	pd_conn_arm(r->conn, rx, tx);
	return true;
}

/* Under ep_lock: arm every ring registration of a nested set (and of the
 * sets nested in it), its bell drained first: a ring event after this rings
 * a doorbell, which makes the set readable to the kernel, which wakes the
 * waiter on the outer set or in poll. */
static bool arm_set(struct pd_ep *ep, struct armset *arms, int depth)
{
	bell_drain(ep);
	for (struct pd_epreg *r = ep->regs; r; r = r->next_ep) {
		reg_refresh(ep, r);
		if (r->disabled) continue;
		if (r->mode == MODE_RING && !arm_reg(r, arms)) return false;
		if (r->mode != MODE_NEST || depth >= NEST_MAX_DEPTH || !(r->events & (EPOLLIN | EPOLLRDNORM))) continue;
		struct pd_ep *in = nest_inner(r);
		if (in && !arm_set(in, arms, depth + 1)) return false;
	}
	return true;
}

/* Scan the ring registrations of a set (and its nested sets); returns how
 * many events it wrote. With arms, each scanned connection is armed first. */
static int scan_rings(struct pd_ep *ep, struct epoll_event *out, int max, struct armset *arms)
{
	int n = 0;
	for (struct pd_epreg *r = ep->regs, *next; r && n < max; r = next) {
		next = r->next_ep;
		reg_refresh(ep, r);
		if (r->disabled) continue;
		uint32_t ev = 0;
		if (r->mode == MODE_RING) {
			if (arms && !arm_reg(r, arms)) return n;
			ev = reg_ring_events(r);
		} else if (r->mode == MODE_NEST) {
			struct pd_ep *in = nest_inner(r);
			if (arms && in && (r->events & (EPOLLIN | EPOLLRDNORM)) && !arm_set(in, arms, 1)) return n;
			ev = nest_events(r, 0);
		}
		if (ev) reg_emit(r, ev, out, &n);
	}
	return n;
}

/* Outside ep_lock: the sleeper woke. */
static void disarm_all(struct armset *arms);

/* For poll and select on an epoll fd (poll.c). Does the set need the shim's
 * help to be watched: does it have ring (or nested) registrations? If so
 * it gets a bell. */
bool pd_ep_watch(int epfd)
{
	if (!pd_fd_aux(epfd)) return false;
	pthread_mutex_lock(&ep_lock);
	struct pd_ep *ep = ep_get(epfd, false);
	bool yes = ep && ep->ring_regs + ep->nest_regs > 0;
	if (yes) ep_to_bell(ep, epfd);
	pthread_mutex_unlock(&ep_lock);
	return yes;
}

/* Is the set readable (as the kernel would report the epoll fd)? */
bool pd_ep_ready(int epfd)
{
	pthread_mutex_lock(&ep_lock);
	struct pd_ep *ep = ep_get(epfd, false);
	bool r = ep && set_ready(ep, epfd, 1);
	pthread_mutex_unlock(&ep_lock);
	return r;
}

/* Before poll sleeps on an epoll fd: arm the set's rings; *ready tells
 * whether a ring event came meanwhile (then do not sleep). Returns what
 * pd_ep_disarm takes back (NULL when nothing was armed). */
struct pd_ep_arms *pd_ep_arm(int epfd, bool *ready)
{
	struct armset *arms = calloc(1, sizeof *arms);
	*ready = false;
	if (!arms) return NULL;
	pthread_mutex_lock(&ep_lock);
	struct pd_ep *ep = ep_get(epfd, false);
	if (ep) {
		uint64_t fp = 0;
		arm_set(ep, arms, 1);
		*ready = set_ring_ready(ep, 1, &fp);
	}
	pthread_mutex_unlock(&ep_lock);
	return (struct pd_ep_arms *)arms;
}

void pd_ep_disarm(struct pd_ep_arms *a)
{
	struct armset *arms = (struct armset *)a;
	if (!arms) return;
	disarm_all(arms);
	free(arms->v);
	free(arms);
}

/* Outside ep_lock: the sleeper woke. */
static void disarm_all(struct armset *arms)
{
	for (int i = 0; i < arms->n; i++) {
		pd_conn_disarm(arms->v[i].c, arms->v[i].rx, arms->v[i].tx);
		pd_conn_put(arms->v[i].c);
	}
	arms->n = 0;
}

/* Data of our session socket's registration in an application's set: it
 * wakes a sleeping epoll_wait when the controller sends an assignment, so a
 * connection idle in that set still attaches (and upgrades). */
static const char session_sentinel;
#define SESSION_TAG ((uint64_t)(uintptr_t)&session_sentinel | 3u)

/* Translate what the kernel returned into ev[have..]; drops our doorbell
 * events that mean nothing for the application, merges one registration's
 * events into one. */
static int translate(int epfd, struct epoll_event *ev, int n, int have, bool *session)
{
	int out = have;
	for (int i = 0; i < n; i++) {
		struct epoll_event k = ev[have + i];
		if (k.data.u64 == SESSION_TAG) { /* the controller wrote: read it (below), attach next round */
			*session = true;
			continue;
		}
		if (k.data.u64 == BELL_TAG) { /* a doorbell rang: the rings are scanned next round */
			struct pd_ep *ep = ep_get(epfd, false);
			if (ep) bell_drain(ep);
			continue;
		}
		int kind;
		struct pd_epreg *r = NULL;
		int is = reg_from_tag(k.data.u64, epfd, &kind, &r);
		if (is == 0) { /* the application's own registration */
			ev[out++] = k;
			continue;
		}
		if (is < 0) continue; /* queued for a registration since dropped */
		if (r->disabled && r->out_batch != batch_seq) continue;
		uint32_t e = 0;
		if (r->mode == MODE_RING) {
			if (kind == KIND_SOCK) {
				e = k.events & ((r->events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLRDNORM)) | EPOLLERR | EPOLLHUP);
				if (r->out_in_kernel) e |= k.events & (EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND) & r->events;
			}
			if (!r->disabled) e |= reg_ring_events(r);
		} else if (r->mode == MODE_NEST) {
			/* the kernel says the inner set is readable: believe it only
			 * if its rings or its own fds say so now (not a stale edge) */
			struct pd_ep *in = nest_inner(r);
			e = k.events;
			if (in && (e & (EPOLLIN | EPOLLRDNORM)) && !set_ready(in, r->fd, 1)) e &= ~(uint32_t)(EPOLLIN | EPOLLRDNORM);
			e |= nest_events(r, 0);
		} else {
			e = k.events;
		}
		if (e) reg_emit(r, e, ev, &out);
	}
	return out;
}

/* Under ep_lock: spin over the rings for the set's adaptive budget before
 * arming (the peer is often about to write). Yields after the first
 * microseconds, as ring.c's spin does, so a peer on our core can run. */
static int spin_rings(struct pd_ep *ep, struct epoll_event *out, int max)
{
	const uint32_t cap = (uint32_t)pd_cfg.spin_us * 1000u;
	if (cap == 0) return 0;
	uint32_t budget = ep->spin_ns == 0 || ep->spin_ns > cap ? cap : ep->spin_ns;
	uint64_t start = pd_now_ns(), now;
	for (;;) {
		int n = scan_rings(ep, out, max, NULL);
		if (n > 0) {
			uint32_t grown = budget + cap / 8;
			ep->spin_ns = grown > cap ? cap : grown;
			return n;
		}
		now = pd_now_ns();
		if (now - start >= budget) break;
		if (now - start >= 2000) sched_yield();
		else pd_cpu_relax();
	}
	ep->spin_ns = budget / 2 < 1000 ? 1000 : budget / 2;
	return 0;
}

/* Under ep_lock: connections of the set still on their way to a ring, with
 * a reference each (at most cap). Also registers the session socket. */
static int collect_pending(struct pd_ep *ep, int epfd, struct pd_conn **out, int cap)
{
	if (ep->plain_regs <= 0) return 0;
	int sfd = pd_session_fd();
	if (sfd >= 0 && sfd != ep->session_fd &&
	    kctl(epfd, EPOLL_CTL_ADD, sfd, EPOLLIN | EPOLLET, SESSION_TAG) == 0)
		ep->session_fd = sfd;
	int n = 0;
	for (struct pd_epreg *r = ep->regs; r && n < cap; r = r->next_ep) {
		if (r->mode != MODE_PLAIN || r->zombie) continue;
		reg_refresh(ep, r);
		if (r->mode != MODE_PLAIN || !r->conn) continue;
		int st = __atomic_load_n(&r->conn->state, __ATOMIC_ACQUIRE);
		if (st == PD_CS_TCP || st == PD_CS_ATTACHED) continue;
		__atomic_add_fetch(&r->conn->refs, 1, __ATOMIC_ACQ_REL); /* linked to a reg: alive */
		out[n++] = r->conn;
	}
	return n;
}

/* Outside ep_lock: report what connected, read assignments, attach. */
static void progress_pending(struct pd_conn **v, int n)
{
	for (int i = 0; i < n; i++) {
		pd_conn_progress(v[i]);
		pd_conn_put(v[i]);
	}
}

static int remaining_ms(int timeout, uint64_t start)
{
	if (timeout < 0) return -1;
	uint64_t el = (pd_now_ns() - start) / 1000000u;
	return el >= (uint64_t)timeout ? 0 : timeout - (int)el;
}

typedef int (*kwait_fn)(int epfd, struct epoll_event *ev, int max, int timeout, const void *arg);

static int ep_wait(int epfd, struct epoll_event *events, int max, int timeout, kwait_fn kwait, const void *arg)
{
	struct pd_ep *ep = pd_fd_aux(epfd);
	if (PD_LIKELY(!ep) || max <= 0) return kwait(epfd, events, max, timeout, arg);
	int saved = errno;
	uint64_t start = pd_now_ns();
	struct armset arms = { 0 };
	for (;;) {
		pthread_mutex_lock(&ep_lock);
		ep = ep_get(epfd, false);
		if (!ep) {
			pthread_mutex_unlock(&ep_lock);
			free(arms.v);
			return kwait(epfd, events, max, timeout, arg);
		}
		if (ep->plain_regs > 0) {
			struct pd_conn *pend[64];
			int np = collect_pending(ep, epfd, pend, 64);
			if (np > 0) {
				pthread_mutex_unlock(&ep_lock);
				progress_pending(pend, np);
				pthread_mutex_lock(&ep_lock);
				ep = ep_get(epfd, false);
				if (!ep) {
					pthread_mutex_unlock(&ep_lock);
					free(arms.v);
					return kwait(epfd, events, max, timeout, arg);
				}
			}
		}
		batch_seq++;
		/* when the kernel is due, the rings leave it one slot at least */
		int rmax = max > 1 && (ep->kernel_skips >= KERNEL_SKIP_MAX || !ep->kernel_idle) ? max - 1 : max;
		int n = scan_rings(ep, events, rmax, NULL);
		int t = remaining_ms(timeout, start);
		bool rings = ep->ring_regs + ep->nest_regs > 0;
		if (n == 0 && t != 0 && rings) n = spin_rings(ep, events, rmax);
		if (n == 0 && t != 0 && rings) {
			/* about to sleep: ask the peers to ring, then look again */
			n = scan_rings(ep, events, rmax, &arms);
		}
		uint64_t now = pd_now_ns();
		/* Rings ready: the kernel is asked too unless it had nothing for us
		 * the last time, within the last 200 us and 16 rounds (a busy ring
		 * set then makes no syscall per round; a level-triggered fd of the
		 * set that is ready keeps being reported every round). */
		if (n > 0 && (n == max || ep->kernel_idle) && ep->kernel_skips < KERNEL_SKIP_MAX &&
		    now - ep->kernel_ns < KERNEL_SKIP_NS) {
			/* (n == max: the kernel could not be given a slot anyway) */
			ep->kernel_skips++;
			pthread_mutex_unlock(&ep_lock);
			disarm_all(&arms); /* armed, then found ready on the re-check */
			free(arms.v);
			errno = saved;
			return n;
		}
		ep->kernel_skips = 0;
		ep->kernel_ns = now;
		bool sleeping = n == 0 && t != 0;
		if (sleeping) ep->sleepers++;
		pthread_mutex_unlock(&ep_lock);
		int k = kwait(epfd, events + n, max - n, n ? 0 : t, arg);
		if (sleeping) {
			int e = errno;
			pthread_mutex_lock(&ep_lock);
			struct pd_ep *e2 = ep_get(epfd, false);
			if (e2 == ep) ep->sleepers--;
			pthread_mutex_unlock(&ep_lock);
			errno = e;
		}
		if (arms.n) {
			int e = errno;
			disarm_all(&arms);
			errno = e;
		}
		if (k < 0) {
			free(arms.v);
			if (n > 0) {
				errno = saved;
				return n;
			}
			return -1;
		}
		bool session = false;
		pthread_mutex_lock(&ep_lock);
		int total = translate(epfd, events, k, n, &session);
		struct pd_ep *e3 = ep_get(epfd, false);
		if (e3) e3->kernel_idle = k == 0;
		pthread_mutex_unlock(&ep_lock);
		/* The edge is consumed: read the messages now, whatever the session
		 * page's seq says (the controller bumps it after its sendmsg, so it
		 * may not have moved yet, and nothing would wake us again). */
		if (session) pd_session_drain();
		if (total > 0 || remaining_ms(timeout, start) == 0) {
			free(arms.v);
			errno = saved;
			return total;
		}
	}
}

static int kwait_plain(int epfd, struct epoll_event *ev, int max, int timeout, const void *arg)
{
	(void)arg;
	return pd_real.epoll_wait(epfd, ev, max, timeout);
}

static int kwait_sigmask(int epfd, struct epoll_event *ev, int max, int timeout, const void *arg)
{
	return pd_real.epoll_pwait(epfd, ev, max, timeout, (const sigset_t *)arg);
}

struct pwait2_arg {
	const sigset_t *mask;
};

static int kwait_pwait2(int epfd, struct epoll_event *ev, int max, int timeout, const void *arg)
{
	const struct pwait2_arg *a = arg;
	struct timespec ts, *tp = NULL;
	if (timeout >= 0) {
		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000L;
		tp = &ts;
	}
	return pd_real.epoll_pwait2(epfd, ev, max, tp, a->mask);
}

PD_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int max, int timeout)
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	return ep_wait(epfd, events, max, timeout, kwait_plain, NULL);
}

PD_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int max, int timeout, const sigset_t *mask)
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	return ep_wait(epfd, events, max, timeout, kwait_sigmask, mask);
}

PD_EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int max, const struct timespec *ts,
			   const sigset_t *mask)
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	if (!pd_real.epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	int timeout = -1;
	if (ts) {
		long long ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
		timeout = ms > 0x7fffffff ? 0x7fffffff : (int)ms;
	}
	struct pwait2_arg a = { mask };
	return ep_wait(epfd, events, max, timeout, kwait_pwait2, &a);
}

/* Every epoll set is marked, so a set of ours registered in another set (or
 * polled) is recognised as one. */
PD_EXPORT int epoll_create(int size)
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	int fd = pd_real.epoll_create(size);
	if (fd >= 0) pd_fd_set_kind(fd, PD_FK_EPOLL);
	return fd;
}

PD_EXPORT int epoll_create1(int flags)
{
	if (PD_UNLIKELY(!pd_real.read)) pd_init();
	int fd = pd_real.epoll_create1(flags);
	if (fd >= 0) pd_fd_set_kind(fd, PD_FK_EPOLL);
	return fd;
}
