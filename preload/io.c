/* Data-call hooks: each is a dispatch on the fd's connection, if any.
 * The errno rule: internals return -errno; a hook sets errno only when it
 * fails and restores the caller's errno when it succeeds. */
#include <errno.h>
#include <limits.h>
#include <sys/sendfile.h>
#include "pd.h"

/* The connection behind fd when the shim has to handle the call, else NULL
 * (the real function then runs untouched). Takes a call reference. */
static inline struct pd_conn *io_conn(int fd)
{
	struct pd_conn *c = pd_conn_get(fd);
	if (PD_LIKELY(!c)) return NULL;
	int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
	if (st == PD_CS_TCP) {
		pd_conn_put(c);
		return NULL;
	}
	if (st != PD_CS_ATTACHED) pd_conn_progress(c);
	return c;
}

static inline ssize_t finish(struct pd_conn *c, ssize_t r, int saved)
{
	pd_conn_put(c);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	errno = saved;
	return r;
}

#define PD_INIT_OR(expr) do { if (PD_UNLIKELY(!pd_real.read)) pd_init(); } while (0)

PD_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.read(fd, buf, n);
	int saved = errno;
	struct iovec v = { .iov_base = buf, .iov_len = n };
	return finish(c, pd_conn_recv(c, &v, 1, 0), saved);
}

PD_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	PD_INIT_OR();
	if (n > buflen) return pd_real.__read_chk(fd, buf, n, buflen); /* let glibc report the overflow */
	return read(fd, buf, n);
}

PD_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.write(fd, buf, n);
	int saved = errno;
	struct iovec v = { .iov_base = (void *)buf, .iov_len = n };
	return finish(c, pd_conn_send(c, &v, 1, 0), saved);
}

PD_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.readv(fd, iov, cnt);
	int saved = errno;
	if (cnt < 0 || cnt > IOV_MAX) return finish(c, -EINVAL, saved);
	return finish(c, pd_conn_recv(c, iov, cnt, 0), saved);
}

PD_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.writev(fd, iov, cnt);
	int saved = errno;
	if (cnt < 0 || cnt > IOV_MAX) return finish(c, -EINVAL, saved);
	return finish(c, pd_conn_send(c, iov, cnt, 0), saved);
}

PD_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.recv(fd, buf, n, flags);
	int saved = errno;
	struct iovec v = { .iov_base = buf, .iov_len = n };
	return finish(c, pd_conn_recv(c, &v, 1, flags), saved);
}

PD_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	PD_INIT_OR();
	if (n > buflen) return pd_real.__recv_chk(fd, buf, n, buflen, flags);
	return recv(fd, buf, n, flags);
}

PD_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.send(fd, buf, n, flags);
	int saved = errno;
	struct iovec v = { .iov_base = (void *)buf, .iov_len = n };
	return finish(c, pd_conn_send(c, &v, 1, flags), saved);
}

PD_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *alen)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.recvfrom(fd, buf, n, flags, addr, alen);
	int saved = errno;
	struct iovec v = { .iov_base = buf, .iov_len = n };
	ssize_t r = pd_conn_recv(c, &v, 1, flags);
	if (r >= 0 && addr && alen) *alen = 0; /* TCP reports no source address */
	return finish(c, r, saved);
}

PD_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr,
				 socklen_t *alen)
{
	PD_INIT_OR();
	if (n > buflen) return pd_real.__recvfrom_chk(fd, buf, n, buflen, flags, addr, alen);
	return recvfrom(fd, buf, n, flags, addr, alen);
}

PD_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t alen)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.sendto(fd, buf, n, flags, addr, alen);
	int saved = errno;
	struct iovec v = { .iov_base = (void *)buf, .iov_len = n };
	return finish(c, pd_conn_send(c, &v, 1, flags), saved); /* a connected TCP socket ignores addr */
}

PD_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.recvmsg(fd, msg, flags);
	int saved = errno;
	if (msg->msg_iovlen > IOV_MAX) return finish(c, -EMSGSIZE, saved);
	ssize_t r = pd_conn_recv_msg(c, msg->msg_iov, (int)msg->msg_iovlen, flags, msg);
	if (r >= 0 && __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ATTACHED) {
		msg->msg_namelen = 0;
		msg->msg_controllen = 0;
		msg->msg_flags = 0;
	}
	return finish(c, r, saved);
}

PD_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.sendmsg(fd, msg, flags);
	int saved = errno;
	if (msg->msg_iovlen > IOV_MAX) return finish(c, -EMSGSIZE, saved);
	return finish(c, pd_conn_send_msg(c, msg->msg_iov, (int)msg->msg_iovlen, flags, msg), saved);
}

PD_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(out);
	if (!c) return pd_real.sendfile(out, in, off, n);
	int saved = errno;
	return finish(c, pd_conn_sendfile(c, in, off, n), saved);
}

PD_EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	return sendfile(out, in, (off_t *)off, n);
}

/* recvmmsg/sendmmsg on a TCP socket: one recvmsg/sendmsg per entry, the
 * first as the caller asked, the rest without waiting (TCP gives the same). */
PD_EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *ts)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.recvmmsg(fd, v, n, flags, ts);
	int saved = errno;
	unsigned int i;
	ssize_t r = 0;
	for (i = 0; i < n; i++) {
		int f = flags & ~MSG_WAITFORONE;
		if (i > 0 && (flags & MSG_WAITFORONE)) f |= MSG_DONTWAIT;
		if (v[i].msg_hdr.msg_iovlen > IOV_MAX) { r = -EMSGSIZE; break; }
		r = pd_conn_recv_msg(c, v[i].msg_hdr.msg_iov, (int)v[i].msg_hdr.msg_iovlen, f, &v[i].msg_hdr);
		if (r < 0) break;
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == PD_CS_ATTACHED) {
			v[i].msg_hdr.msg_namelen = 0;
			v[i].msg_hdr.msg_controllen = 0;
			v[i].msg_hdr.msg_flags = 0;
		}
		v[i].msg_len = (unsigned int)r;
		if (r == 0) { i++; break; }
	}
	if (i > 0) return (int)finish(c, (ssize_t)i, saved);
	return (int)finish(c, r, saved);
}

PD_EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	PD_INIT_OR();
	struct pd_conn *c = io_conn(fd);
	if (!c) return pd_real.sendmmsg(fd, v, n, flags);
	int saved = errno;
	unsigned int i;
	ssize_t r = 0;
	for (i = 0; i < n; i++) {
		if (v[i].msg_hdr.msg_iovlen > IOV_MAX) { r = -EMSGSIZE; break; }
		r = pd_conn_send_msg(c, v[i].msg_hdr.msg_iov, (int)v[i].msg_hdr.msg_iovlen, flags, &v[i].msg_hdr);
		if (r < 0) break;
		v[i].msg_len = (unsigned int)r;
		if ((size_t)r < pd_iov_len(v[i].msg_hdr.msg_iov, (int)v[i].msg_hdr.msg_iovlen)) { i++; break; }
	}
	if (i > 0) return (int)finish(c, (ssize_t)i, saved);
	return (int)finish(c, r, saved);
}

PD_EXPORT ssize_t splice(int in, off64_t *offin, int out, off64_t *offout, size_t n, unsigned int flags)
{
	PD_INIT_OR();
	struct pd_conn *c = offout ? NULL : io_conn(out);
	if (c) {
		int saved = errno;
		return finish(c, pd_conn_splice_in(c, in, n, flags), saved);
	}
	c = offin ? NULL : io_conn(in);
	if (c) {
		int saved = errno;
		return finish(c, pd_conn_splice_out(c, out, n, flags), saved);
	}
	return pd_real.splice(in, offin, out, offout, n, flags);
}
