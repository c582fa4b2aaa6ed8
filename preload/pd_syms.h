/* The interposition table: every libc symbol the shim defines, once.
 * X(return type, name, (parameters), (argument names)).
 * It generates the table of real functions and their dlsym lookups (init.c);
 * test/shim/exports.test.ts checks the exported dynamic symbols of
 * libpd.so against this list, so a hook can neither be missing nor extra. */
#ifndef PD_SYMS_H
#define PD_SYMS_H

#define PD_SYMS(X) \
	X(int, socket, (int domain, int type, int protocol), (domain, type, protocol)) \
	X(int, connect, (int fd, const struct sockaddr *addr, socklen_t len), (fd, addr, len)) \
	X(int, listen, (int fd, int backlog), (fd, backlog)) \
	X(int, accept, (int fd, struct sockaddr *addr, socklen_t *len), (fd, addr, len)) \
	X(int, accept4, (int fd, struct sockaddr *addr, socklen_t *len, int flags), (fd, addr, len, flags)) \
	X(int, close, (int fd), (fd)) \
	X(int, shutdown, (int fd, int how), (fd, how)) \
	X(int, dup, (int fd), (fd)) \
	X(int, dup2, (int fd, int fd2), (fd, fd2)) \
	X(int, dup3, (int fd, int fd2, int flags), (fd, fd2, flags)) \
	X(int, fcntl, (int fd, int cmd, ...), (fd, cmd)) \
	X(int, fcntl64, (int fd, int cmd, ...), (fd, cmd)) \
	X(int, ioctl, (int fd, unsigned long req, ...), (fd, req)) \
	X(int, setsockopt, (int fd, int level, int opt, const void *val, socklen_t len), (fd, level, opt, val, len)) \
	X(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n)) \
	X(ssize_t, __read_chk, (int fd, void *buf, size_t n, size_t buflen), (fd, buf, n, buflen)) \
	X(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n)) \
	X(ssize_t, readv, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt)) \
	X(ssize_t, writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt)) \
	X(ssize_t, recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags)) \
	X(ssize_t, __recv_chk, (int fd, void *buf, size_t n, size_t buflen, int flags), (fd, buf, n, buflen, flags)) \
	X(ssize_t, send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags)) \
	X(ssize_t, recvfrom, (int fd, void *buf, size_t n, int flags, struct sockaddr *addr, socklen_t *alen), (fd, buf, n, flags, addr, alen)) \
	X(ssize_t, __recvfrom_chk, (int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr, socklen_t *alen), (fd, buf, n, buflen, flags, addr, alen)) \
	X(ssize_t, sendto, (int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr, socklen_t alen), (fd, buf, n, flags, addr, alen)) \
	X(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags)) \
	X(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags)) \
	X(ssize_t, sendfile, (int out, int in, off_t *off, size_t n), (out, in, off, n)) \
	X(ssize_t, sendfile64, (int out, int in, off64_t *off, size_t n), (out, in, off, n)) \
	X(int, recvmmsg, (int fd, struct mmsghdr *v, unsigned int n, int flags, struct timespec *ts), (fd, v, n, flags, ts)) \
	X(int, sendmmsg, (int fd, struct mmsghdr *v, unsigned int n, int flags), (fd, v, n, flags)) \
	X(ssize_t, splice, (int in, off64_t *offin, int out, off64_t *offout, size_t n, unsigned int flags), (in, offin, out, offout, n, flags)) \
	X(int, poll, (struct pollfd *fds, nfds_t n, int timeout), (fds, n, timeout)) \
	X(int, __poll_chk, (struct pollfd *fds, nfds_t n, int timeout, size_t fdslen), (fds, n, timeout, fdslen)) \
	X(int, ppoll, (struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask), (fds, n, ts, mask)) \
	X(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv), (n, r, w, e, tv)) \
	X(int, pselect, (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts, const sigset_t *mask), (n, r, w, e, ts, mask)) \
	X(int, execve, (const char *path, char *const argv[], char *const envp[]), (path, argv, envp)) \
	X(int, execv, (const char *path, char *const argv[]), (path, argv)) \
	X(int, execvp, (const char *file, char *const argv[]), (file, argv)) \
	X(int, execvpe, (const char *file, char *const argv[], char *const envp[]), (file, argv, envp)) \
	X(int, fexecve, (int fd, char *const argv[], char *const envp[]), (fd, argv, envp)) \
	X(int, execl, (const char *path, const char *arg, ...), (path, arg)) \
	X(int, execlp, (const char *file, const char *arg, ...), (file, arg)) \
	X(int, execle, (const char *path, const char *arg, ...), (path, arg)) \
	X(int, epoll_create, (int size), (size)) \
	X(int, epoll_create1, (int flags), (flags)) \
	X(int, epoll_ctl, (int epfd, int op, int fd, struct epoll_event *ev), (epfd, op, fd, ev)) \
	X(int, epoll_wait, (int epfd, struct epoll_event *ev, int max, int timeout), (epfd, ev, max, timeout)) \
	X(int, epoll_pwait, (int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *mask), (epfd, ev, max, timeout, mask)) \
	X(int, epoll_pwait2, (int epfd, struct epoll_event *ev, int max, const struct timespec *ts, const sigset_t *mask), (epfd, ev, max, ts, mask)) \
	X(int, sigaction, (int sig, const struct sigaction *act, struct sigaction *oact), (sig, act, oact)) \
	X(int, __sigaction, (int sig, const struct sigaction *act, struct sigaction *oact), (sig, act, oact)) \
	X(__sighandler_t, signal, (int sig, __sighandler_t h), (sig, h)) \
	X(__sighandler_t, bsd_signal, (int sig, __sighandler_t h), (sig, h)) \
	X(__sighandler_t, ssignal, (int sig, __sighandler_t h), (sig, h)) \
	X(__sighandler_t, sysv_signal, (int sig, __sighandler_t h), (sig, h)) \
	X(__sighandler_t, __sysv_signal, (int sig, __sighandler_t h), (sig, h)) \
	X(__sighandler_t, sigset, (int sig, __sighandler_t h), (sig, h))

#endif
