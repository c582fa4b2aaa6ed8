/* Internal interface of the shim. Internals return -errno and never touch the
 * global errno; only the hooks (the functions named in pd_syms.h) set it. */
#ifndef PD_H
#define PD_H
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include "pd_layout.h"
#include "pd_syms.h"

#define PD_EXPORT __attribute__((visibility("default")))
#define PD_LIKELY(x) __builtin_expect(!!(x), 1)
#define PD_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- real libc functions (init.c) ---- */
#define PD_REAL_FIELD(ret, name, params, args) ret(*name) params;
struct pd_real {
	PD_SYMS(PD_REAL_FIELD)
};
extern struct pd_real pd_real;
void pd_init(void);

/* ---- configuration and logging (init.c) ---- */
enum pd_log_level { PD_LOG_QUIET = 0, PD_LOG_WARN = 1, PD_LOG_INFO = 2, PD_LOG_DEBUG = 3 };
struct pd_config {
	int log_level;
	int spin_us;          /* PD_SPIN_US: busy-wait before sleeping, 0 = never spin */
	int fd_reserve;       /* PD_FD_RESERVE: descriptors left to the application, -1 = auto */
	bool no_controller;   /* PD_NO_CONTROLLER=1: pure passthrough */
	char socket_path[108];
};
extern struct pd_config pd_cfg;
void pd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pd_debug(...) do { if (PD_UNLIKELY(pd_cfg.log_level >= PD_LOG_DEBUG)) pd_log(PD_LOG_DEBUG, __VA_ARGS__); } while (0)
#define pd_info(...) do { if (PD_UNLIKELY(pd_cfg.log_level >= PD_LOG_INFO)) pd_log(PD_LOG_INFO, __VA_ARGS__); } while (0)
#define pd_warn(...) do { if (pd_cfg.log_level >= PD_LOG_WARN) pd_log(PD_LOG_WARN, __VA_ARGS__); } while (0)
uint64_t pd_now_ns(void);

/* ---- connections (conn.c) ---- */
enum pd_conn_state {
	PD_CS_CONNECTING = 0, /* non-blocking connect in progress */
	PD_CS_TCP,            /* on TCP for good (declined, no controller, inherited) */
	PD_CS_REPORTED,       /* reported, waiting for an assignment */
	PD_CS_ASSIGNED,       /* slot received, not attached yet */
	PD_CS_ATTACHED,       /* attached: the handover protocol is in force */
	PD_CS_ESTABLISHED,    /* connected, reported at its first use (pd_conn_progress) */
};

struct pd_arena;

struct pd_conn {
	/* lifetime */
	int refs;              /* one per fd-table entry, one per call in flight */
	int fds;               /* fd-table entries pointing here */
	int sock;              /* one of those fds: the kernel socket for our own calls */
	uint64_t id;           /* conn_id in the session */
	uint64_t serial;       /* unique per connection object use (objects are recycled) */
	int state;             /* enum pd_conn_state, atomic */
	int nonblock;          /* O_NONBLOCK of the open file description, atomic */
	int no_attach;         /* PD_REFUSE_* != 0: never attach (a fork before it attached), atomic */
	bool forked;           /* shared with another process after fork(), atomic (pd_conn_forked) */
	bool reported;         /* a CONN_REPORT went to the current session */
	int origin;            /* PD_ORIGIN_CONNECT or _ACCEPT, from PD_CS_ESTABLISHED on */
	pthread_mutex_t rx_lock;
	pthread_mutex_t tx_lock;
	/* TCP accounting, under tx_lock / rx_lock */
	uint64_t tx_tcp;       /* bytes sent through the kernel socket */
	uint64_t rx_tcp;       /* bytes read from the kernel socket */
	bool tx_switched;      /* we write only to the ring */
	bool rx_sw_seen;       /* we have seen the peer's switched flag */
	bool rx_ring;          /* peer switched and we consumed its TCP bytes */
	bool rx_eof;           /* EOF returned once; keep returning it */
	bool rx_fin;           /* on the ring: the kernel socket showed the FIN (or an error) */
	bool rx_kcheck;        /* on the ring: the socket had an edge since it was last looked at */
	bool wr_shut;          /* shutdown(SHUT_WR) done by the application */
	bool rd_shut;          /* shutdown(SHUT_RD) done by the application */
	/* assignment, valid from PD_CS_ASSIGNED */
	struct pd_arena *arena;
	struct pd_slot_ctrl *slot;
	uint32_t generation;
	int role;
	struct pd_dir_ctrl *txd, *rxd;   /* direction we write, direction we read */
	uint8_t *tx_buf, *rx_buf;   /* ring data of each direction */
	uint32_t ring_size;
	uint64_t tx_head;      /* private copy of txd->head, under tx_lock */
	uint64_t rx_tail;      /* private copy of rxd->tail, under rx_lock */
	int efd_rx_self, efd_tx_self, efd_rx_peer, efd_tx_peer;
	int peer_proc;         /* pidfd of the peer's process: readable once it exited */
	int peer_exited;       /* seen through peer_proc, atomic */
	int epipe_next;        /* a write found the peer gone: the next ones fail (EPIPE) */
	int tx_sock_err;       /* a send's wait saw the kernel socket's ERR/HUP, atomic */
	int reset;             /* the slot was found corrupted: ECONNRESET, atomic */
	uint32_t rx_spin_ns, tx_spin_ns; /* adaptive spin budgets (ring.c) */
	int rcvlowat;          /* the kernel socket's SO_RCVLOWAT, atomic; 0 = not read yet (acts as 1) */
	uint64_t rx_need;      /* wait_rx: ring bytes past rx_tail that end the wait, under rx_lock */
	uint64_t t_est_ns;        /* when connect()/accept() returned it (PD_LOG=debug timings) */
	struct pd_conn *next_pending; /* session pending list, under the session lock */
	struct pd_conn *next_free;
	struct pd_epreg *epregs;  /* epoll registrations, under the epoll lock */
	int pollers;              /* threads inside poll/select on it, atomic */
};

/* Set by the fork handlers while other threads may be in a call on it; a
 * relaxed load is a plain load: the mark costs the fast path a branch. */
static inline bool pd_conn_forked(const struct pd_conn *c)
{
	return __atomic_load_n(&c->forked, __ATOMIC_RELAXED);
}

/* fd table: lock-free lookup, type-stable conn memory (never freed). */
struct pd_conn *pd_conn_get(int fd);          /* takes a call reference, or NULL */
void pd_conn_put(struct pd_conn *c);           /* drops a call reference */
struct pd_conn *pd_conn_new(int fd, int state, int nonblock);
int pd_conn_install(int fd, struct pd_conn *c); /* another fd for c (dup) */
void pd_conn_forget_fd(int fd);                 /* fd closed by the application */
bool pd_fd_tracked(int fd);
struct pd_conn *pd_conn_peek(int fd);           /* no reference: callers hold a lock that keeps it */
void *pd_fd_aux(int fd);
int pd_fd_set_aux(int fd, void *p);
void pd_conn_foreach(void (*fn)(struct pd_conn *, void *), void *arg);
void pd_fd_foreach(void (*fn)(int fd, struct pd_conn *, void *), void *arg); /* every fd of a connection */
/* Fd kinds for sockets that are not connections (yet). */
enum pd_fd_kind { PD_FK_UNKNOWN = 0, PD_FK_TCP = 1, PD_FK_OTHER = 2, PD_FK_INTERNAL = 3, PD_FK_EPOLL = 4 };
void pd_fd_set_kind(int fd, int kind);
int pd_fd_kind(int fd);

/* ---- session with the controller (session.c) ---- */
void pd_session_report(struct pd_conn *c, int origin);
void pd_session_closed(struct pd_conn *c);
void pd_session_poll(void);                     /* read pending assignments, no block */
void pd_session_drain(void);                    /* the session socket was readable: read it now */
void pd_session_touch(void);                    /* open the session if not yet open */
int pd_session_fd(void);                        /* the session socket, or -1 */
void pd_session_atfork_prepare(void);
void pd_session_atfork_parent(void);
void pd_session_atfork_child(void);
void pd_conn_progress(struct pd_conn *c);       /* take an assignment / attach if possible */
void pd_conn_release_slot(struct pd_conn *c);   /* last reference gone */
void pd_conn_check_connected(struct pd_conn *c);
void pd_conn_established(struct pd_conn *c, int origin); /* connected: report at first use */
char *pd_session_exec_save(void **token);        /* before execve: PD_EXEC_STATE=..., or NULL */
void pd_session_exec_done(void *token, bool failed); /* after it (failed: restore FD_CLOEXEC) */
void pd_session_exec_adopt(const char *state);    /* at start: what the image before carried */

/* ---- data path (ring.c) ---- */
ssize_t pd_conn_send(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags);
ssize_t pd_conn_send_msg(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags, const struct msghdr *orig);
ssize_t pd_conn_recv(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags);
ssize_t pd_conn_recv_msg(struct pd_conn *c, const struct iovec *iov, int iovcnt, int flags, struct msghdr *orig);
ssize_t pd_conn_sendfile(struct pd_conn *c, int in, off_t *off, size_t count);
ssize_t pd_conn_splice_in(struct pd_conn *c, int pipe_in, size_t len, unsigned int flags);
ssize_t pd_conn_splice_out(struct pd_conn *c, int pipe_out, size_t len, unsigned int flags);
int pd_conn_shutdown(struct pd_conn *c, int how);
uint32_t pd_conn_ring_events(struct pd_conn *c, uint64_t *head, uint64_t *tail);
void pd_conn_arm(struct pd_conn *c, bool rx, bool tx);
void pd_conn_disarm(struct pd_conn *c, bool rx, bool tx);
void pd_conn_ring_self(struct pd_conn *c);
int pd_conn_queued(struct pd_conn *c, bool inq, int kernel);
void pd_conn_lowat_read(struct pd_conn *c, int fd, bool first); /* SO_RCVLOWAT from the kernel socket */
void pd_conn_wait_forget(struct pd_conn *c);   /* drop it from this thread's waiting set */
void pd_ring_atfork_child(void);

/* ---- signal dispositions (signal.c) ---- */
void pd_signal_atfork_child(void);
/* A blocking wait: pd_sig_wait_begin right before it sleeps; when the sleep
 * ends in EINTR, pd_sig_wait_restarts says whether the socket call would
 * have been restarted by the handlers that ran (the socket's timeout aside). */
void pd_sig_wait_begin(void);
bool pd_sig_wait_restarts(void);
void pd_poll_atfork_child(void);

/* ---- readiness (epoll.c, poll.c) ---- */
struct pd_epreg;
void pd_ep_conn_attached(struct pd_conn *c);   /* convert its epoll registrations */
void pd_ep_conn_gone(struct pd_conn *c);       /* drop its epoll registrations */
void pd_ep_fd_closed(int fd);                  /* fd was an epoll instance */
/* An epoll set watched by poll/select (poll.c): */
struct pd_ep_arms;
bool pd_ep_watch(int epfd);                     /* has ring registrations: needs our help */
bool pd_ep_ready(int epfd);                     /* readable, as the kernel reports an epoll fd */
struct pd_ep_arms *pd_ep_arm(int epfd, bool *ready); /* before sleeping */
void pd_ep_disarm(struct pd_ep_arms *a);        /* after */

/* ---- helpers ---- */
#include <sys/syscall.h>
#include <unistd.h>
/* write(2) to stderr without going through our own write hook */
static inline ssize_t syscall_write_raw(const void *buf, size_t n)
{
	return syscall(SYS_write, 2, buf, n);
}
size_t pd_iov_len(const struct iovec *iov, int cnt);
/* An array with n of *cap elements used, made room for one more: the array
 * (moved, *cap doubled, starting at first, when it was full), or NULL with
 * the array and *cap unchanged when memory ran out. */
void *pd_grow(void *v, int n, int *cap, size_t elem, int first);

#endif
