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
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
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

/* Polls *flag (atomic) until it is non-zero or `ms` have passed; returns whether it became set.
 * The bounded wait of a test thread for something a task or another thread records. */
static inline bool test_await(const long *flag, long ms)
{
	double end = test_now_ms() + (double)ms;

	while (test_load(flag) == 0) {
		if (test_now_ms() > end)
			return false;
		test_sleep_us(50);
	}
	return true;
}

/* Busy-waits `ns` nanoseconds on CLOCK_MONOTONIC without giving up the CPU (no system call
 * but the vDSO clock read). */
static inline void test_busy_ns(long ns)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < ns);
}

/*
 * A wait for a future on a thread of its own, so that a wait that never returns fails the test
 * instead of hanging it: test_wait_call_start(), then test_wait_call_done() (bounded). If that
 * says false, the caller makes the future final (opens its gate) and calls test_wait_call_join().
 */
struct test_wait_call {
	tp_future *f;
	struct timespec deadline;
	bool has_deadline;
	bool nohelp; /* tp_future_wait_nohelp instead of tp_future_wait_until */
	int rc;
	long done; /* atomic */
	pthread_t thread;
};

static inline void *test_wait_call_main(void *arg)
{
	struct test_wait_call *c = arg;
	const struct timespec *d = c->has_deadline ? &c->deadline : NULL;

	c->rc = c->nohelp ? tp_future_wait_nohelp(c->f, d) : tp_future_wait_until(c->f, d);
	test_store(&c->done, 1);
	return NULL;
}

static inline void test_wait_call_start(struct test_wait_call *c, tp_future *f,
					const struct timespec *deadline, bool nohelp)
{
	c->f = f;
	c->has_deadline = deadline != NULL;
	if (deadline != NULL)
		c->deadline = *deadline;
	c->nohelp = nohelp;
	c->rc = -1;
	c->done = 0;
	assert_int_equal(pthread_create(&c->thread, NULL, test_wait_call_main, c), 0);
}

/* True, with the thread joined, if the wait returned within `ms`. */
static inline bool test_wait_call_done(struct test_wait_call *c, long ms)
{
	if (!test_await(&c->done, ms))
		return false;
	pthread_join(c->thread, NULL);
	return true;
}

/* After a wait that did not return in time: once the caller made the future final. */
static inline void test_wait_call_join(struct test_wait_call *c)
{
	pthread_join(c->thread, NULL);
}

/* What test_child() reports besides an exit status in [0, 255]. */
enum {
	TEST_CHILD_TIMEOUT = -1, /* killed after the timeout (a hang) */
	TEST_CHILD_FORK = -2	 /* fork() failed */
};

/*
 * Waits for child `pid` and returns its exit status (0..255), 256 + the signal number if a signal
 * killed it, or TEST_CHILD_TIMEOUT after killing a child that ran longer than `ms` (so a hang in
 * the child fails the test instead of the suite).
 */
static inline int test_child_wait(pid_t pid, long ms)
{
	double end = test_now_ms() + (double)ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return TEST_CHILD_FORK;
		if (test_now_ms() > end) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return TEST_CHILD_TIMEOUT;
		}
		test_sleep_us(1000);
	}
	if (WIFSIGNALED(status))
		return 256 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/*
 * Runs fn(arg) in a forked child and returns as test_child_wait(): fn's return value (0..255),
 * 256 + a signal, or TEST_CHILD_TIMEOUT. The child runs no cmocka code: fn reports through its
 * return value, and the child leaves with _exit().
 */
static inline int test_child(int (*fn)(void *), void *arg, long ms)
{
	pid_t pid;

	fflush(NULL); /* no buffered output is written twice */
	pid = fork();
	if (pid < 0)
		return TEST_CHILD_FORK;
	if (pid == 0)
		_exit(fn(arg) & 0xff);
	return test_child_wait(pid, ms);
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
