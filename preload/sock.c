/* Lifecycle hooks: which fds are TCP connections, their duplicates, their
 * flags, their end. Readiness is in epoll.c and poll.c. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include "pd.h"

#define PD_INIT() do { if (PD_UNLIKELY(!pd_real.read)) pd_init(); } while (0)

static bool is_tcp_fd(int fd)
{
	int k = pd_fd_kind(fd);
	if (k == PD_FK_TCP) return true;
	if (k != PD_FK_UNKNOWN) return false;
	int dom = 0, type = 0, proto = 0;
	socklen_t l = sizeof(int);
	bool tcp = getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) == 0 && (dom == AF_INET || dom == AF_INET6) &&
		   (l = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0) && type == SOCK_STREAM &&
		   (l = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0) && proto == IPPROTO_TCP;
	pd_fd_set_kind(fd, tcp ? PD_FK_TCP : PD_FK_OTHER);
	return tcp;
}

static int fd_nonblock(int fd)
{
	int fl = pd_real.fcntl(fd, F_GETFL);
	return fl >= 0 && (fl & O_NONBLOCK);
}

PD_EXPORT int socket(int domain, int type, int protocol)
{
	PD_INIT();
	int fd = pd_real.socket(domain, type, protocol);
	if (fd < 0) return fd;
	bool tcp = (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
		   (protocol == 0 || protocol == IPPROTO_TCP);
	pd_fd_set_kind(fd, tcp ? PD_FK_TCP : PD_FK_OTHER);
	return fd;
}

PD_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	PD_INIT();
	int r = pd_real.connect(fd, addr, len);
	int saved = errno;
	struct pd_conn *c = pd_conn_get(fd);
	if (c) { /* connect() again on a non-blocking socket: did it complete? */
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_CONNECTING && (r == 0 || saved == EISCONN))
			pd_conn_check_connected(c);
		pd_conn_put(c);
		errno = saved;
		return r;
	}
	if ((r == 0 || saved == EINPROGRESS) && is_tcp_fd(fd)) {
		c = pd_conn_new(fd, PD_CS_CONNECTING, fd_nonblock(fd));
		if (c && r == 0) pd_conn_established(c, PD_ORIGIN_CONNECT);
	}
	errno = saved;
	return r;
}

/* A TCP server opens its session now, not at its first connection: the
 * session keeps an on-demand controller alive while the server waits
 * (its pdrun may be gone: a daemon whose parent exited). */
PD_EXPORT int listen(int fd, int backlog)
{
	PD_INIT();
	int r = pd_real.listen(fd, backlog);
	if (r == 0) {
		int saved = errno;
		if (is_tcp_fd(fd)) pd_session_touch();
		errno = saved;
	}
	return r;
}

static int after_accept(int lfd, int fd, int flags)
{
	if (fd < 0) return fd;
	int saved = errno;
	if (is_tcp_fd(lfd)) {
		pd_fd_set_kind(fd, PD_FK_TCP);
		struct pd_conn *c = pd_conn_new(fd, PD_CS_CONNECTING, (flags & SOCK_NONBLOCK) != 0);
		if (c) pd_conn_established(c, PD_ORIGIN_ACCEPT);
	} else {
		pd_fd_set_kind(fd, PD_FK_OTHER);
	}
	errno = saved;
	return fd;
}

PD_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	PD_INIT();
	return after_accept(fd, pd_real.accept(fd, addr, len), 0);
}

PD_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	PD_INIT();
	return after_accept(fd, pd_real.accept4(fd, addr, len, flags), flags);
}

PD_EXPORT int close(int fd)
{
	PD_INIT();
	int k = pd_fd_kind(fd);
	if (PD_UNLIKELY(k == PD_FK_INTERNAL)) {
		/* the application closes every fd (a daemon, say): keep ours */
		pd_debug("close(%d) of a pipedevice fd ignored", fd);
		return 0;
	}
	if (k == PD_FK_EPOLL) pd_ep_fd_closed(fd);
	if (k != PD_FK_UNKNOWN) {
		pd_conn_forget_fd(fd);
		pd_fd_set_kind(fd, PD_FK_UNKNOWN);
	}
	return pd_real.close(fd);
}

PD_EXPORT int shutdown(int fd, int how)
{
	PD_INIT();
	struct pd_conn *c = pd_conn_get(fd);
	if (c) {
		int saved = errno;
		if (how == SHUT_RD || how == SHUT_WR || how == SHUT_RDWR) pd_conn_shutdown(c, how);
		pd_conn_put(c);
		errno = saved;
	}
	return pd_real.shutdown(fd, how);
}

static void after_dup(int oldfd, int newfd)
{
	if (newfd < 0 || newfd == oldfd) return;
	int saved = errno;
	if (pd_fd_kind(newfd) != PD_FK_UNKNOWN) pd_conn_forget_fd(newfd); /* dup2 closed it */
	struct pd_conn *c = pd_conn_get(oldfd);
	if (c) {
		pd_conn_install(newfd, c);
		pd_conn_put(c);
	} else {
		int k = pd_fd_kind(oldfd);
		pd_fd_set_kind(newfd, k == PD_FK_INTERNAL ? PD_FK_UNKNOWN : k);
	}
	errno = saved;
}

PD_EXPORT int dup(int fd)
{
	PD_INIT();
	int r = pd_real.dup(fd);
	after_dup(fd, r);
	return r;
}

PD_EXPORT int dup2(int fd, int fd2)
{
	PD_INIT();
	int r = pd_real.dup2(fd, fd2);
	after_dup(fd, r);
	return r;
}

PD_EXPORT int dup3(int fd, int fd2, int flags)
{
	PD_INIT();
	int r = pd_real.dup3(fd, fd2, flags);
	after_dup(fd, r);
	return r;
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int r = real(fd, cmd, arg);
	if (r < 0) return r;
	int saved = errno;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		after_dup(fd, r);
	} else if (cmd == F_SETFL) {
		struct pd_conn *c = pd_conn_get(fd);
		if (c) {
			__atomic_store_n(&c->nonblock, ((long)arg & O_NONBLOCK) != 0, __ATOMIC_RELAXED);
			pd_conn_put(c);
		}
	}
	errno = saved;
	return r;
}

PD_EXPORT int fcntl(int fd, int cmd, ...)
{
	PD_INIT();
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(pd_real.fcntl, fd, cmd, arg);
}

PD_EXPORT int fcntl64(int fd, int cmd, ...)
{
	PD_INIT();
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(pd_real.fcntl64 ? pd_real.fcntl64 : pd_real.fcntl, fd, cmd, arg);
}

/* Everything goes to the kernel socket (invariant 1); SO_RCVLOWAT is also
 * read back (the kernel's value, normalised) for the ring's readiness and
 * receive path. */
PD_EXPORT int setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	PD_INIT();
	int r = pd_real.setsockopt(fd, level, opt, val, len);
	if (PD_UNLIKELY(r == 0 && level == SOL_SOCKET && opt == SO_RCVLOWAT)) {
		int saved = errno;
		struct pd_conn *c = pd_conn_get(fd);
		if (c) {
			pd_conn_lowat_read(c, fd, false);
			pd_conn_put(c);
		}
		errno = saved;
	}
	return r;
}

PD_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	PD_INIT();
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	int r = pd_real.ioctl(fd, req, arg);
	if (r == 0 && (req == FIONREAD || req == SIOCOUTQ) && arg) {
		struct pd_conn *c = pd_conn_get(fd);
		if (c) {
			if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ATTACHED)
				*(int *)arg = pd_conn_queued(c, req == FIONREAD, *(int *)arg);
			pd_conn_put(c);
		}
	}
	if (r == 0 && req == FIONBIO && arg) {
		int saved = errno;
		struct pd_conn *c = pd_conn_get(fd);
		if (c) {
			__atomic_store_n(&c->nonblock, *(int *)arg != 0, __ATOMIC_RELAXED);
			pd_conn_put(c);
		}
		errno = saved;
	}
	return r;
}
