/* Signal dispositions: which handler interrupted a blocking ring wait.
 *
 * A blocking socket call interrupted by a signal is restarted by the kernel
 * when the handler that ran had SA_RESTART and the socket has no timeout for
 * that direction (SO_RCVTIMEO/SO_SNDTIMEO); otherwise it fails with EINTR
 * (signal(7)). A ring wait sleeps in epoll_wait, which is never restarted, so
 * the shim decides (ring.c, eintr_returns), and for that it must know which
 * handler ran. The kernel does not say; so every handler the application
 * installs through libc is wrapped:
 *
 * - sigaction (and __sigaction) record the application's handler in a
 *   per-signal table and give the kernel our trampoline instead, with the
 *   application's mask and flags unchanged except SA_SIGINFO, always set (the
 *   trampoline takes three arguments; it calls the application's handler with
 *   the signature the application asked for).
 * - signal, bsd_signal, ssignal (glibc's BSD semantics: SA_RESTART unless
 *   siginterrupt() said otherwise), sysv_signal, __sysv_signal (SA_RESETHAND
 *   |SA_NODEFER) and sigset: glibc implements these with its internal
 *   sigaction, not through the PLT, so each is interposed. We let libc
 *   install the handler with the flags and mask it chooses (glibc's private
 *   siginterrupt() set included), read the result back from the kernel and
 *   swap the trampoline in, same flags and mask. A signal arriving between
 *   the two runs the application's handler directly: correct, only unseen
 *   by the wait (see the fallback below). sigset, which also changes the
 *   thread's signal mask, is done on our sigaction instead (see there).
 *
 * The trampoline sets the signal's bit in a thread-local word and calls the
 * application's handler. It does not touch errno: a handler that changes
 * errno changes it for the interrupted code, as without the shim. A signal
 * interrupts a blocking call only on the thread it is delivered to, and the
 * handler runs on that thread before the interrupted call returns to user
 * space; so a thread-local word, cleared right before the wait sleeps, holds
 * exactly the signals whose handlers ran during that sleep (and a handler
 * running on another thread cannot disturb this thread's decision).
 *
 * On EINTR the wait looks the flags of those signals up in the kernel
 * (rt_sigaction, on the rare interrupted path only): restart when every one
 * has SA_RESTART, EINTR otherwise. Reading the flags from the kernel rather
 * than from our table keeps them exact whatever changed them behind the
 * PLT (siginterrupt() rewrites the flags of the installed handler through
 * glibc's internal sigaction). An SA_RESETHAND handler keeps its flags in
 * the kernel after the reset, so its SA_RESTART is still there to read.
 * Two signals delivered in the same interruption: the kernel decides by the
 * first one it handles; we return EINTR if either lacks SA_RESTART.
 *
 * No bit set means no wrapped handler ran: a handler installed behind our
 * back (a raw syscall(SYS_rt_sigaction), glibc's compat sigvec, a full
 * table), or no handler at all (epoll_wait also returns EINTR after a stop
 * signal and SIGCONT, where a socket call without a timeout is not
 * interrupted). Then the old conservative rule applies to the handlers we
 * do not know: EINTR if any installed handler other than our trampoline
 * lacks SA_RESTART, restart otherwise.
 *
 * The table entry of a signal means something only while the kernel's
 * handler for it is our trampoline; it is never cleared. SIG_DFL and SIG_IGN
 * pass straight through to the kernel and leave the entry as it was; so does
 * the kernel's own reset of an SA_RESETHAND handler. Everything that reads
 * the entry (the oldact translation, the trampoline) looks at the kernel's
 * handler first or is only reached through it. Not clearing has one more
 * merit: a trampoline already running when another thread sets SIG_DFL
 * still finds the handler the kernel chose for it. Entries point to
 * immutable records, so the trampoline reads handler and signature with one
 * atomic load.
 *
 * The oldact returned to the application is the kernel's old action with
 * our trampoline replaced by the application's handler and SA_SIGINFO as the
 * application set it: its own handler, flags (SA_RESTORER included, as glibc
 * reports it) and mask, never the trampoline.
 *
 * Writers serialise on a spin lock taken with every signal blocked on the
 * calling thread (sigaction is async-signal-safe: a handler interrupting the
 * lock holder on the same thread must not spin on it). That costs two
 * sigprocmask calls per sigaction; sigaction is not a hot path.
 *
 * fork: the child keeps the dispositions and this memory (the lock is reset
 * in the child, in case another thread held it). execve: the kernel resets
 * handlers to SIG_DFL and the new image's shim starts with an empty table.
 * A vfork() child that installs a handler before exec (undefined by POSIX)
 * would change the parent's table: not handled. */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include "barrier.h"
#include "pd.h"

#if NSIG > 65
#error "the ran-signals word holds signals 1..64"
#endif

struct sig_rec {
	union {                                         /* as in struct sigaction */
		void (*handler)(int);                   /* !siginfo */
		void (*action)(int, siginfo_t *, void *); /* siginfo */
	} fn;
	bool siginfo;                                   /* SA_SIGINFO as the application set it */
};

/* Records are never freed or changed once published; identical ones are
 * shared. A program sets few distinct handlers; past this many, handlers are
 * installed unwrapped (the fallback rule covers them). */
#define SIG_RECS 256
static struct sig_rec recs[SIG_RECS];
static unsigned n_recs;                         /* under sig_lock */
static const struct sig_rec *tab[NSIG];         /* atomic; written under sig_lock */
static int sig_lock;

/* Signals whose wrapped handler ran on this thread since pd_sig_wait_begin.
 * initial-exec: read and written from signal context, no __tls_get_addr. */
static __thread uint64_t sig_ran __attribute__((tls_model("initial-exec")));

/* Nothing in this file is instrumented by ThreadSanitizer. The runtime is
 * preloaded ahead of the shim and interposes sigaction itself, calling ours
 * as its "real" one: while it initialises (its own deadly-signal handlers,
 * before it can run instrumented code: a __tsan_func_entry there crashes)
 * and from its handler wrapper's installation. The trampoline runs in
 * signal context ahead of TSan's wrapper, where the runtime may be in the
 * middle of something. So TSan does not check this file; its concurrency is
 * the lock and the atomics above. */
#if defined(__SANITIZE_THREAD__)
#define PD_NO_TSAN __attribute__((no_sanitize_thread))
#else
#define PD_NO_TSAN
#endif

PD_NO_TSAN static void sig_tramp(int sig, siginfo_t *si, void *uc)
{
	if (sig <= 0 || sig >= NSIG) return;
	__atomic_fetch_or(&sig_ran, 1ull << (sig - 1), __ATOMIC_RELAXED);
	const struct sig_rec *r = __atomic_load_n(&tab[sig], __ATOMIC_ACQUIRE);
	if (!r) return; /* the trampoline installed behind our back: nothing to call */
	if (r->siginfo) r->fn.action(sig, si, uc);
	else r->fn.handler(sig);
}

/* This thread holds sig_lock: a hook entered again from inside the real
 * function it called (a sanitizer's signal() calls sigaction, which
 * resolves to ours) passes straight through; the outer hook does the
 * wrapping after. */
static __thread int sig_locked;

PD_NO_TSAN static void lock(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
	for (int i = 0; __atomic_exchange_n(&sig_lock, 1, __ATOMIC_ACQUIRE); i++) {
		if (i < 100) pd_cpu_relax();
		else sched_yield();
	}
	sig_locked = 1;
}

PD_NO_TSAN static void unlock(const sigset_t *old)
{
	sig_locked = 0;
	__atomic_store_n(&sig_lock, 0, __ATOMIC_RELEASE);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

PD_NO_TSAN void pd_signal_atfork_child(void)
{
	__atomic_store_n(&sig_lock, 0, __ATOMIC_RELAXED);
	sig_ran = 0;
}

/* A handler the kernel would call (not SIG_DFL, SIG_IGN, SIG_ERR, SIG_HOLD,
 * nor the trampoline itself, which a program can only have read raw). */
PD_NO_TSAN static bool wrappable(void (*h)(int))
{
	return h != SIG_DFL && h != SIG_IGN && h != SIG_ERR && h != SIG_HOLD && (void *)h != (void *)sig_tramp;
}

/* Signals sigaction may change; anything else goes straight to libc, which
 * (with the kernel) gives the error or the answer. */
PD_NO_TSAN static bool ours(int sig)
{
	return sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP;
}

/* Under sig_lock. NULL when the pool is full. */
PD_NO_TSAN static const struct sig_rec *rec_get(const struct sigaction *act)
{
	bool si = (act->sa_flags & SA_SIGINFO) != 0;
	for (unsigned i = 0; i < n_recs; i++) {
		const struct sig_rec *r = &recs[i];
		if (r->siginfo == si && r->fn.handler == act->sa_handler) return r;
	}
	if (n_recs == SIG_RECS) {
		static bool warned;
		if (!warned) pd_info("more than %d distinct signal handlers: the rest are not wrapped", SIG_RECS);
		warned = true;
		return NULL;
	}
	struct sig_rec *r = &recs[n_recs++];
	r->siginfo = si;
	if (si) r->fn.action = act->sa_sigaction;
	else r->fn.handler = act->sa_handler;
	return r;
}

/* What signal() returns for it: the handler's bits, as glibc reads them
 * from the union of struct sigaction whichever member was set. */
PD_NO_TSAN static __sighandler_t rec_handler(const struct sig_rec *r)
{
	return r ? r->fn.handler : SIG_DFL;
}

/* The kernel's action, as libc returned it, made the application's. */
PD_NO_TSAN static void translate(struct sigaction *oa, const struct sig_rec *r)
{
	if ((void *)oa->sa_handler != (void *)sig_tramp) return;
	if (r && r->siginfo) {
		oa->sa_sigaction = r->fn.action;
	} else {
		oa->sa_handler = rec_handler(r);
		oa->sa_flags &= ~SA_SIGINFO;
	}
}

PD_NO_TSAN static int do_sigaction(int (*real)(int, const struct sigaction *, struct sigaction *), int sig,
			const struct sigaction *act, struct sigaction *oact)
{
	if (!ours(sig) || sig_locked) return real(sig, act, oact);
	int saved = errno;
	sigset_t om;
	lock(&om);
	const struct sig_rec *prev = __atomic_load_n(&tab[sig], __ATOMIC_RELAXED);
	struct sigaction k;
	const struct sigaction *kact = act;
	if (act && wrappable(act->sa_handler)) {
		const struct sig_rec *r = rec_get(act);
		if (r) {
			k = *act;
			k.sa_sigaction = sig_tramp;
			k.sa_flags |= SA_SIGINFO;
			kact = &k;
			/* before the kernel sees the trampoline, so that it
			 * always finds a handler to call */
			__atomic_store_n(&tab[sig], r, __ATOMIC_RELEASE);
		}
	}
	errno = saved;
	int rc = real(sig, kact, oact);
	int e = errno;
	if (rc < 0) {
		if (kact == &k) __atomic_store_n(&tab[sig], prev, __ATOMIC_RELEASE);
	} else if (oact) {
		translate(oact, prev);
	}
	unlock(&om);
	errno = rc < 0 ? e : saved;
	return rc;
}

/* The signal() family: libc installs the handler with its own flags and
 * mask; then the trampoline takes its place with the same. The previous
 * handler returned is translated as for sigaction. (glibc's signal,
 * bsd_signal, ssignal and sysv_signal only call its sigaction: running them
 * with every signal blocked changes nothing they see.) */
PD_NO_TSAN static __sighandler_t do_signal(__sighandler_t (*real)(int, __sighandler_t), int sig, __sighandler_t h)
{
	if (!ours(sig) || sig_locked) return real(sig, h);
	int saved = errno;
	sigset_t om;
	lock(&om);
	const struct sig_rec *prev = __atomic_load_n(&tab[sig], __ATOMIC_RELAXED);
	errno = saved;
	__sighandler_t r = real(sig, h);
	int e = errno;
	if (r != SIG_ERR) {
		struct sigaction k;
		if (wrappable(h) && pd_real.sigaction(sig, NULL, &k) == 0 && k.sa_handler == h) {
			const struct sig_rec *rec = rec_get(&k);
			if (rec) {
				__atomic_store_n(&tab[sig], rec, __ATOMIC_RELEASE);
				k.sa_sigaction = sig_tramp;
				k.sa_flags |= SA_SIGINFO;
				pd_real.sigaction(sig, &k, NULL);
			}
		}
		if ((void *)r == (void *)sig_tramp) r = rec_handler(prev);
	}
	unlock(&om);
	errno = r == SIG_ERR ? e : saved;
	return r;
}

/* The real functions of this file, found without pd_init(): a sanitizer
 * runtime calls these hooks while it initialises, before our constructor,
 * when the rest of the shim (instrumented, using intercepted calls) must not
 * run yet. pd_init() looks the same addresses up again later. */
PD_NO_TSAN static void sig_lookup(void)
{
	pd_real.__sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))dlsym(RTLD_NEXT, "__sigaction");
	pd_real.signal = (__sighandler_t (*)(int, __sighandler_t))dlsym(RTLD_NEXT, "signal");
	pd_real.bsd_signal = (__sighandler_t (*)(int, __sighandler_t))dlsym(RTLD_NEXT, "bsd_signal");
	pd_real.ssignal = (__sighandler_t (*)(int, __sighandler_t))dlsym(RTLD_NEXT, "ssignal");
	pd_real.sysv_signal = (__sighandler_t (*)(int, __sighandler_t))dlsym(RTLD_NEXT, "sysv_signal");
	pd_real.__sysv_signal = (__sighandler_t (*)(int, __sighandler_t))dlsym(RTLD_NEXT, "__sysv_signal");
	void *sa = dlsym(RTLD_NEXT, "sigaction");
	if (!sa || sa == (void *)sigaction) {
		static const char m[] = "pipedevice: no real sigaction\n";
		(void)!syscall_write_raw(m, sizeof m - 1);
		abort();
	}
	/* last: the hooks test it */
	__atomic_store_n(&pd_real.sigaction, (int (*)(int, const struct sigaction *, struct sigaction *))sa, __ATOMIC_RELEASE);
}

#define SIG_INIT() do { if (PD_UNLIKELY(!__atomic_load_n(&pd_real.sigaction, __ATOMIC_ACQUIRE))) sig_lookup(); } while (0)

PD_NO_TSAN PD_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	SIG_INIT();
	return do_sigaction(pd_real.sigaction, sig, act, oact);
}

PD_NO_TSAN PD_EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *oact)
{
	SIG_INIT();
	return do_sigaction(pd_real.__sigaction, sig, act, oact);
}

PD_NO_TSAN PD_EXPORT __sighandler_t signal(int sig, __sighandler_t h)
{
	SIG_INIT();
	return do_signal(pd_real.signal, sig, h);
}

PD_NO_TSAN PD_EXPORT __sighandler_t bsd_signal(int sig, __sighandler_t h)
{
	SIG_INIT();
	return do_signal(pd_real.bsd_signal, sig, h);
}

PD_NO_TSAN PD_EXPORT __sighandler_t ssignal(int sig, __sighandler_t h)
{
	SIG_INIT();
	return do_signal(pd_real.ssignal, sig, h);
}

PD_NO_TSAN PD_EXPORT __sighandler_t sysv_signal(int sig, __sighandler_t h)
{
	SIG_INIT();
	return do_signal(pd_real.sysv_signal, sig, h);
}

PD_NO_TSAN PD_EXPORT __sighandler_t __sysv_signal(int sig, __sighandler_t h)
{
	SIG_INIT();
	return do_signal(pd_real.__sysv_signal, sig, h);
}

/* sigset (XSI): not through libc's, which changes the thread's signal mask
 * (do_signal restores the mask it saved when it unlocks, undoing that, and
 * libc's would see every signal blocked) but from its specification, on our
 * sigaction: a handler is installed with no flags and an empty mask and the
 * signal is unblocked; SIG_HOLD blocks it and leaves the disposition. It
 * returns SIG_HOLD when the signal was blocked before, else the previous
 * disposition. */
PD_NO_TSAN PD_EXPORT __sighandler_t sigset(int sig, __sighandler_t h)
{
	SIG_INIT();
	sigset_t one, before;
	struct sigaction act, old;
	sigemptyset(&one);
	if (sigaddset(&one, sig) < 0) return SIG_ERR; /* EINVAL, as libc's */
	if (h == SIG_HOLD) {
		if (sigprocmask(SIG_BLOCK, &one, &before) < 0) return SIG_ERR;
		if (sigismember(&before, sig)) return SIG_HOLD;
		if (do_sigaction(pd_real.sigaction, sig, NULL, &old) < 0) return SIG_ERR;
		return old.sa_handler;
	}
	memset(&act, 0, sizeof act);
	act.sa_handler = h;
	sigemptyset(&act.sa_mask);
	if (do_sigaction(pd_real.sigaction, sig, &act, &old) < 0) return SIG_ERR;
	if (sigprocmask(SIG_UNBLOCK, &one, &before) < 0) return SIG_ERR;
	return sigismember(&before, sig) ? SIG_HOLD : old.sa_handler;
}

/* ---- the blocking waits (ring.c) ---- */

PD_NO_TSAN void pd_sig_wait_begin(void)
{
	__atomic_store_n(&sig_ran, 0, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

PD_NO_TSAN bool pd_sig_wait_restarts(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	uint64_t ran = __atomic_load_n(&sig_ran, __ATOMIC_RELAXED);
	int saved = errno;
	bool restart = true;
	if (ran) {
		for (int sig = 1; sig < NSIG && restart; sig++) {
			struct sigaction sa;
			if (!(ran & (1ull << (sig - 1)))) continue;
			if (pd_real.sigaction(sig, NULL, &sa) < 0 || !(sa.sa_flags & SA_RESTART)) restart = false;
		}
	} else {
		for (int sig = 1; sig < NSIG && restart; sig++) {
			struct sigaction sa;
			if (pd_real.sigaction(sig, NULL, &sa) < 0) continue;
			if (!wrappable(sa.sa_handler)) continue; /* default, ignored, ours */
			if (!(sa.sa_flags & SA_RESTART)) restart = false;
		}
	}
	errno = saved;
	return restart;
}
