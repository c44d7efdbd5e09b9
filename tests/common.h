/*
 * common.h - helpers shared by the test programs: a watchdog so a deadlock fails instead of
 * hanging, deadlines, randomised delays. cmocka asserts stay on the test thread.
 */
#ifndef TP_TEST_COMMON_H
#define TP_TEST_COMMON_H

#include <setjmp.h> /* cmocka needs these before cmocka.h */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thread_pool.h"

static inline void test_on_alarm(int sig)
{
	static const char msg[] = "Bail out! watchdog: test took too long (deadlock?)\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

/* Fails the whole program (TAP "Bail out!") if it runs longer than `seconds`. */
static inline void test_watchdog(unsigned seconds)
{
	signal(SIGALRM, test_on_alarm);
	alarm(seconds);
}

/* Scales iteration counts: TP_STRESS_SCALE (e.g. 0.05 under valgrind), default 1. */
static inline long test_scaled(long n)
{
	const char *s = getenv("TP_STRESS_SCALE");
	double k = s != NULL ? atof(s) : 1.0;
	long v = (long)((double)n * (k > 0 ? k : 1.0));

	return v > 0 ? v : 1;
}

static inline struct timespec test_deadline_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static inline double test_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static inline void test_sleep_us(long us)
{
	struct timespec t = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* splitmix64: per-thread random streams for randomised timing. */
static inline uint64_t test_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15u);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
	return z ^ (z >> 31);
}

/* A random short delay: nothing, a few spins, a yield, or a short sleep. */
static inline void test_jitter(uint64_t *state)
{
	switch (test_rand(state) % 8) {
	case 0:
		sched_yield();
		break;
	case 1:
		test_sleep_us((long)(test_rand(state) % 50));
		break;
	case 2:
	case 3:
		for (volatile int i = 0; i < (int)(test_rand(state) % 500); i++)
			;
		break;
	default:
		break;
	}
}

/* Atomic counters for tasks: the test thread reads them after joining/waiting. */
static inline long test_inc(long *p)
{
	return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST);
}
static inline long test_load(const long *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static inline void test_store(long *p, long v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* The stress tests' seed: TP_STRESS_SEED if set, else time and pid; printed as a TAP comment so a
 * failing run can be repeated. */
static inline uint64_t test_stress_seed(void)
{
	const char *s = getenv("TP_STRESS_SEED");
	uint64_t seed = s != NULL ? strtoull(s, NULL, 0)
				  : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	printf("# seed %llu (TP_STRESS_SEED to repeat)\n", (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

/* A pool of exactly `threads` workers, or the test fails. */
static inline tp_pool *test_pool_new(size_t threads)
{
	tp_pool *pool = tp_pool_create(threads, NULL);

	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), threads);
	return pool;
}

/* Runs fn(arg) as a task of `pool` from the test thread and returns its code. */
static inline int run_in_pool(tp_pool *pool, tp_task_fn fn, void *arg)
{
	tp_future *f = tp_enqueue(pool, fn, arg);
	int code;

	assert_non_null(f);
	code = tp_future_wait(f);
	tp_future_release(f);
	return code;
}

#endif /* TP_TEST_COMMON_H */
