/* Whether waiting may spin at all.
 *
 * A waiter spins only because its peer is running on another core and is
 * about to write (or read). When more threads are runnable than this
 * process may use CPUs, that is no longer true: a spinning waiter takes the
 * core its peer, or anyone else, needs, and every spin ends in a sleep
 * anyway. So spinning is off while the machine is oversubscribed. The
 * runnable count is the kernel's (the fourth field of /proc/loadavg,
 * "running/total", counting the reader), sampled at most every 20 ms by one
 * waiter at a time; the others read the last verdict. One sample over the
 * CPU count may be a passing thread: spinning stops after two in a row and
 * resumes at the first that is not. No allocation, no log.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#include "pd.h"

#define SAMPLE_NS 20000000ull

static uint64_t next_sample_ns;
static int crowded;   /* the last two samples saw more runnable threads than CPUs */
static int over;      /* consecutive samples over the CPU count */
static int ncpu;      /* CPUs this process may run on; 0 until known */

static int cpus_usable(void)
{
	cpu_set_t set;
	int n = 0;
	if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0 || (online > 0 && online < n)) n = online > 0 ? (int)online : 1;
	return n;
}

/* The number before the '/' of /proc/loadavg's fourth field, or -1. */
static int runnable_now(void)
{
	int fd = openat(AT_FDCWD, "/proc/loadavg", O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	char buf[128];
	ssize_t n = pd_real.read(fd, buf, sizeof buf - 1);
	pd_real.close(fd);
	if (n <= 0) return -1;
	buf[n] = 0;
	const char *p = buf;
	for (int field = 0; field < 3; field++) {
		while (*p && *p != ' ') p++;
		while (*p == ' ') p++;
	}
	if (*p < '0' || *p > '9') return -1;
	int v = 0;
	while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
	return *p == '/' ? v : -1;
}

uint32_t pd_spin_max_ns(void)
{
	const uint32_t max = (uint32_t)pd_cfg.spin_us * 1000u;
	if (max == 0) return 0;
	uint64_t now = pd_now_ns();
	uint64_t due = __atomic_load_n(&next_sample_ns, __ATOMIC_RELAXED);
	if (now >= due &&
	    __atomic_compare_exchange_n(&next_sample_ns, &due, now + SAMPLE_NS, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		int saved = errno;
		int cpus = __atomic_load_n(&ncpu, __ATOMIC_RELAXED);
		if (cpus == 0) {
			cpus = cpus_usable();
			__atomic_store_n(&ncpu, cpus, __ATOMIC_RELAXED);
		}
		int run = runnable_now();
		if (run >= 0) {
			int o = run > cpus ? __atomic_load_n(&over, __ATOMIC_RELAXED) + 1 : 0;
			__atomic_store_n(&over, o > 2 ? 2 : o, __ATOMIC_RELAXED);
			__atomic_store_n(&crowded, o >= 2, __ATOMIC_RELAXED);
		}
		errno = saved;
	}
	return __atomic_load_n(&crowded, __ATOMIC_RELAXED) ? 0 : max;
}
