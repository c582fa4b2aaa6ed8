/* Initialisation: the real-function table, configuration, logging. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "pd.h"

struct pd_real pd_real;
struct pd_config pd_cfg = { .log_level = PD_LOG_WARN, .spin_us = 100, .fd_reserve = -1 };

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

#define PD_HOOK_DECL(ret, name, params, args) PD_EXPORT ret name params;
PD_SYMS(PD_HOOK_DECL)

static void lookup_all(void)
{
#define PD_LOOKUP(ret, name, params, args)                                              \
	do {                                                                            \
		void *p = dlsym(RTLD_NEXT, #name);                                      \
		if (p == (void *)name) {                                                \
			static const char m[] = "pipedevice: dlsym returned the hook for " #name "\n"; \
			(void)!syscall_write_raw(m, sizeof m - 1);                      \
			abort();                                                        \
		}                                                                       \
		pd_real.name = (ret(*) params)p;                                        \
	} while (0);
	/* sigset is in the table (its return value must not show the
	 * trampoline); its declaration is deprecated */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	PD_SYMS(PD_LOOKUP)
#pragma GCC diagnostic pop
#undef PD_LOOKUP
}

static void read_config(void)
{
	const char *s = getenv("PD_LOG");
	if (s) {
		if (!strcmp(s, "debug")) pd_cfg.log_level = PD_LOG_DEBUG;
		else if (!strcmp(s, "info")) pd_cfg.log_level = PD_LOG_INFO;
		else if (!strcmp(s, "quiet") || !strcmp(s, "off")) pd_cfg.log_level = PD_LOG_QUIET;
	}
	s = getenv("PD_SPIN_US");
	if (s && *s) {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end == 0 && v >= 0 && v <= 1000000) pd_cfg.spin_us = (int)v;
		else pd_warn("PD_SPIN_US=%s is not a number of microseconds in 0..1000000: using %d", s, pd_cfg.spin_us);
	}
	s = getenv("PD_FD_RESERVE");
	if (s && *s && strcmp(s, "auto") != 0) {
		char *end;
		long v = strtol(s, &end, 10);
		if (*end == 0 && v >= 0 && v <= 1048576) pd_cfg.fd_reserve = (int)v;
		else pd_warn("PD_FD_RESERVE=%s is not a number of descriptors in 0..1048576: using the default", s);
	}
	s = getenv("PD_NO_CONTROLLER");
	pd_cfg.no_controller = s && *s && strcmp(s, "0") != 0;
	s = getenv("PD_SOCKET");
	if (s && *s) {
		if (strlen(s) >= sizeof pd_cfg.socket_path) {
			pd_warn("PD_SOCKET is longer than %zu bytes: running on kernel TCP", sizeof pd_cfg.socket_path - 1);
			pd_cfg.no_controller = true;
		} else {
			strcpy(pd_cfg.socket_path, s);
		}
	} else {
		const char *rt = getenv("XDG_RUNTIME_DIR");
		if (rt && *rt)
			snprintf(pd_cfg.socket_path, sizeof pd_cfg.socket_path, "%s/pipedevice/pd.sock", rt);
		else
			snprintf(pd_cfg.socket_path, sizeof pd_cfg.socket_path, "/tmp/pipedevice-%u/pd.sock", (unsigned)getuid());
	}
}

static void atfork_child(void)
{
	pd_session_atfork_child();
	pd_ring_atfork_child();
	pd_signal_atfork_child();
	pd_poll_atfork_child();
}

static void do_init(void)
{
	int saved = errno;
	lookup_all();
	read_config();
	pthread_atfork(pd_session_atfork_prepare, pd_session_atfork_parent, atfork_child);
	const char *carried = getenv("PD_EXEC_STATE"); /* exec.c: the image before this one */
	if (carried) {
		char *st = strdup(carried);
		unsetenv("PD_EXEC_STATE");
		if (st) pd_session_exec_adopt(st);
		free(st);
	}
	errno = saved;
}

void pd_init(void)
{
	pthread_once(&init_once, do_init);
}

__attribute__((constructor)) static void pd_ctor(void)
{
	pd_init();
}

void pd_log(int level, const char *fmt, ...)
{
	static const char *names[] = { "", "warning", "info", "debug" };
	char buf[512];
	int saved = errno;
	int n = snprintf(buf, sizeof buf, "pipedevice[%d]: %s: ", (int)getpid(), names[level & 3]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof buf) n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0) n = 0;
	if ((size_t)n >= sizeof buf - 1) n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	(void)!syscall_write_raw(buf, (size_t)n);
	errno = saved;
}

uint64_t pd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
