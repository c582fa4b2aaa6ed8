/* Memory ordering for memory shared with another process. One place says
 * what each primitive means; every use site says what it orders. */
#ifndef PD_BARRIER_H
#define PD_BARRIER_H
#include <stdint.h>

/* Load that later loads/stores cannot move above (pairs with pd_store_release). */
#define pd_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
/* Store that earlier loads/stores cannot move below. */
#define pd_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* Plain single-copy-atomic access to a shared word, no ordering. */
#define pd_load_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define pd_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Full fence: orders an earlier store before a later load (the store-load
 * order that arm-then-recheck and publish-then-check-armed both need). */
#define pd_fence_full() __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* Exchange with full ordering: the waker's claim of an armed flag. */
#define pd_xchg(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

static inline void pd_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}
#endif
