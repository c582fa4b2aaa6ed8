/* The fd table and connection lifetime.
 * Lookups take no lock: a two-level table of atomic pointers. Connection
 * objects are type-stable (recycled through a free list, never returned to
 * malloc), so a lookup that races with a close can take a reference with
 * inc-if-not-zero and then re-check the table entry. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pd.h"

#define PD_FD_CHUNK 4096
#define PD_FD_CHUNKS 1024 /* fds up to 4 Mi */

struct fd_chunk {
	struct pd_conn *conn[PD_FD_CHUNK];
	void *aux[PD_FD_CHUNK];   /* per-fd data of other modules (epoll.c) */
	uint8_t kind[PD_FD_CHUNK];
};

static struct fd_chunk *chunks[PD_FD_CHUNKS];
static pthread_mutex_t tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pd_conn *free_list;

static struct fd_chunk *chunk_for(int fd, bool create)
{
	if (fd < 0 || fd >= PD_FD_CHUNK * PD_FD_CHUNKS) return NULL;
	struct fd_chunk **slot = &chunks[fd / PD_FD_CHUNK];
	struct fd_chunk *ch = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (ch || !create) return ch;
	pthread_mutex_lock(&tab_lock);
	ch = *slot;
	if (!ch) {
		ch = calloc(1, sizeof *ch);
		if (ch) __atomic_store_n(slot, ch, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&tab_lock);
	return ch;
}

void pd_fd_set_kind(int fd, int kind)
{
	struct fd_chunk *ch = chunk_for(fd, true);
	if (ch) __atomic_store_n(&ch->kind[fd % PD_FD_CHUNK], (uint8_t)kind, __ATOMIC_RELAXED);
}

int pd_fd_kind(int fd)
{
	struct fd_chunk *ch = chunk_for(fd, false);
	return ch ? __atomic_load_n(&ch->kind[fd % PD_FD_CHUNK], __ATOMIC_RELAXED) : PD_FK_UNKNOWN;
}

void *pd_fd_aux(int fd)
{
	struct fd_chunk *ch = chunk_for(fd, false);
	return ch ? __atomic_load_n(&ch->aux[fd % PD_FD_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

int pd_fd_set_aux(int fd, void *p)
{
	struct fd_chunk *ch = chunk_for(fd, true);
	if (!ch) return -EMFILE;
	__atomic_store_n(&ch->aux[fd % PD_FD_CHUNK], p, __ATOMIC_RELEASE);
	return 0;
}

struct pd_conn *pd_conn_peek(int fd)
{
	struct fd_chunk *ch = chunk_for(fd, false);
	return ch ? __atomic_load_n(&ch->conn[fd % PD_FD_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

bool pd_fd_tracked(int fd)
{
	struct fd_chunk *ch = chunk_for(fd, false);
	return ch && __atomic_load_n(&ch->conn[fd % PD_FD_CHUNK], __ATOMIC_ACQUIRE) != NULL;
}

struct pd_conn *pd_conn_get(int fd)
{
	struct fd_chunk *ch = chunk_for(fd, false);
	if (!ch) return NULL;
	struct pd_conn **e = &ch->conn[fd % PD_FD_CHUNK];
	for (;;) {
		struct pd_conn *c = __atomic_load_n(e, __ATOMIC_ACQUIRE);
		if (PD_LIKELY(!c)) return NULL;
		int r = __atomic_load_n(&c->refs, __ATOMIC_RELAXED);
		while (r > 0 && !__atomic_compare_exchange_n(&c->refs, &r, r + 1, true, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			;
		if (r <= 0) continue; /* being recycled: the entry must have changed */
		if (__atomic_load_n(e, __ATOMIC_ACQUIRE) == c) return c;
		pd_conn_put(c);
	}
}

static void conn_destroy(struct pd_conn *c)
{
	pd_ep_conn_gone(c);
	pd_conn_wait_forget(c);
	pd_conn_release_slot(c);
	pthread_mutex_lock(&tab_lock);
	c->next_free = free_list;
	free_list = c;
	pthread_mutex_unlock(&tab_lock);
}

void pd_conn_put(struct pd_conn *c)
{
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) conn_destroy(c);
}

struct pd_conn *pd_conn_new(int fd, int state, int nonblock)
{
	struct fd_chunk *ch = chunk_for(fd, true);
	if (!ch) return NULL;
	pthread_mutex_lock(&tab_lock);
	struct pd_conn *c = free_list;
	if (c) free_list = c->next_free;
	pthread_mutex_unlock(&tab_lock);
	if (!c) {
		c = malloc(sizeof *c);
		if (!c) return NULL;
	} else {
		pthread_mutex_destroy(&c->rx_lock);
		pthread_mutex_destroy(&c->tx_lock);
	}
	/* refs is still 0 here: concurrent lookups of a stale entry fail. */
	int zero_refs = 0;
	memset(c, 0, sizeof *c);
	__atomic_store_n(&c->refs, zero_refs, __ATOMIC_RELAXED);
	pthread_mutex_init(&c->rx_lock, NULL);
	pthread_mutex_init(&c->tx_lock, NULL);
	static uint64_t serials;
	c->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	c->sock = fd;
	c->state = state;
	c->nonblock = nonblock;
	c->efd_rx_self = c->efd_tx_self = c->efd_rx_peer = c->efd_tx_peer = c->peer_proc = -1;
	c->fds = 1;
	__atomic_store_n(&c->refs, 1, __ATOMIC_RELEASE); /* the table's reference */
	struct pd_conn *old = __atomic_exchange_n(&ch->conn[fd % PD_FD_CHUNK], c, __ATOMIC_ACQ_REL);
	if (old) { /* fd reused behind our back (closed by a raw syscall): drop it */
		__atomic_sub_fetch(&old->fds, 1, __ATOMIC_ACQ_REL);
		pd_conn_put(old);
	}
	pd_fd_set_kind(fd, PD_FK_TCP);
	return c;
}

int pd_conn_install(int fd, struct pd_conn *c)
{
	struct fd_chunk *ch = chunk_for(fd, true);
	if (!ch) return -EMFILE;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	__atomic_add_fetch(&c->fds, 1, __ATOMIC_ACQ_REL);
	struct pd_conn *old = __atomic_exchange_n(&ch->conn[fd % PD_FD_CHUNK], c, __ATOMIC_ACQ_REL);
	if (old) {
		__atomic_sub_fetch(&old->fds, 1, __ATOMIC_ACQ_REL);
		pd_conn_put(old);
	}
	pd_fd_set_kind(fd, PD_FK_TCP);
	return 0;
}

void pd_conn_forget_fd(int fd)
{
	struct fd_chunk *ch = chunk_for(fd, false);
	if (!ch) return;
	__atomic_store_n(&ch->kind[fd % PD_FD_CHUNK], PD_FK_UNKNOWN, __ATOMIC_RELAXED);
	struct pd_conn *c = __atomic_exchange_n(&ch->conn[fd % PD_FD_CHUNK], NULL, __ATOMIC_ACQ_REL);
	if (!c) return;
	int left = __atomic_sub_fetch(&c->fds, 1, __ATOMIC_ACQ_REL);
	if (left > 0 && c->sock == fd) {
		/* our calls need a live fd of the same socket: find another one */
		for (int i = 0; i < PD_FD_CHUNKS; i++) {
			struct fd_chunk *k = __atomic_load_n(&chunks[i], __ATOMIC_ACQUIRE);
			if (!k) continue;
			for (int j = 0; j < PD_FD_CHUNK; j++)
				if (__atomic_load_n(&k->conn[j], __ATOMIC_ACQUIRE) == c) {
					__atomic_store_n(&c->sock, i * PD_FD_CHUNK + j, __ATOMIC_RELEASE);
					goto found;
				}
		}
	found:;
	}
	pd_conn_put(c);
}


void pd_fd_foreach(void (*fn)(int fd, struct pd_conn *, void *), void *arg)
{
	for (int i = 0; i < PD_FD_CHUNKS; i++) {
		struct fd_chunk *k = __atomic_load_n(&chunks[i], __ATOMIC_ACQUIRE);
		if (!k) continue;
		for (int j = 0; j < PD_FD_CHUNK; j++) {
			struct pd_conn *c = pd_conn_get(i * PD_FD_CHUNK + j);
			if (!c) continue;
			fn(i * PD_FD_CHUNK + j, c, arg);
			pd_conn_put(c);
		}
	}
}

/* Each connection once: at the fd that is its socket. */
struct conn_each {
	void (*fn)(struct pd_conn *, void *);
	void *arg;
};

static void conn_once(int fd, struct pd_conn *c, void *arg)
{
	struct conn_each *e = arg;
	if (c->sock == fd) e->fn(c, e->arg);
}

void pd_conn_foreach(void (*fn)(struct pd_conn *, void *), void *arg)
{
	struct conn_each e = { fn, arg };
	pd_fd_foreach(conn_once, &e);
}

void *pd_grow(void *v, int n, int *cap, size_t elem, int first)
{
	if (n < *cap) return v;
	int c = *cap ? *cap * 2 : first;
	void *p = realloc(v, (size_t)c * elem);
	if (p) *cap = c;
	return p;
}

size_t pd_iov_len(const struct iovec *iov, int cnt)
{
	size_t n = 0;
	for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
	return n;
}
