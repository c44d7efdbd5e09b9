/*
 * futex.h - the two Linux futex operations the runtime sleeps and wakes with.
 * Used by the ck_ec ops of the parking code and by future waiters.
 */
#ifndef TP_FUTEX_H
#define TP_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Sleeps while *addr == expected, until woken or the absolute CLOCK_MONOTONIC deadline (NULL: no
 * deadline). Returns 0 (woken, or spuriously), EAGAIN (the word had changed), ETIMEDOUT or EINTR.
 */
static inline int tp__futex_wait(const uint32_t *addr, uint32_t expected,
				 const struct timespec *deadline)
{
	/* FUTEX_WAIT_BITSET takes an absolute deadline, on CLOCK_MONOTONIC by default. */
	long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, expected, deadline, NULL,
			 FUTEX_BITSET_MATCH_ANY);

	return r == 0 ? 0 : errno;
}

/* Wakes every thread sleeping on addr. */
static inline void tp__futex_wake_all(const uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif /* TP_FUTEX_H */
