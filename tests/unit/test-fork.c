/*
 * test-fork.c - fork() in a process that uses the library: the child can go on using it.
 *
 *  - Forking while other threads log (through the singleton and through a created logger): a
 *    child must not inherit a logger's lock held by a thread that does not exist in it.
 *  - A child of a process whose pool has running and pending tasks: the inherited pool has no
 *    workers in the child, so it refuses new tasks (ESHUTDOWN), its pending futures are
 *    cancelled, its shutdown returns at once and it can be destroyed; a new pool works.
 *  - fork() from inside a task: in the child that pool refuses tasks too (a fork onto the
 *    deque of a worker that does not exist in the child would never run).
 *
 * Children report through their exit status (each check its own code, listed next to it); cmocka
 * runs only in the parent. A child that hangs is killed after CHILD_MS and fails the test.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

#define CHILD_MS 10000

/* ThreadSanitizer cannot start threads in the child of a multi-threaded fork (it makes the child
 * die): under it, children skip the new pool they would otherwise create and use. */
#if defined(__SANITIZE_THREAD__)
#define NEW_POOL_IN_CHILD 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NEW_POOL_IN_CHILD 0
#endif
#endif
#ifndef NEW_POOL_IN_CHILD
#define NEW_POOL_IN_CHILD 1
#endif

static int count_run(void *arg)
{
	test_inc(arg);
	return 0;
}

/* What a child's exit status means, for the failure message. */
static const char *child_status_text(int status)
{
	switch (status) {
	case TEST_CHILD_TIMEOUT:
		return "hung: killed after the timeout";
	case TEST_CHILD_FORK:
		return "fork or waitpid failed";
	default:
		return status >= 256 ? "killed by a signal" : "a check failed (see its code)";
	}
}

#define assert_child_ok(status)                                                                    \
	do {                                                                                       \
		int st_ = (status);                                                                \
		if (st_ != 0)                                                                      \
			fail_msg("child: status %d (%s)", st_, child_status_text(st_));            \
	} while (0)

/* ---------------------------------------------------------------------------------------------
 * Forking while other threads log
 * ------------------------------------------------------------------------------------------ */

struct logging {
	tp_logger *created; /* writes to /dev/null */
	long stop;	    /* atomic */
	long sink_lines;    /* atomic: lines the singleton's sink received */
	long lines[2];	    /* atomic: lines each logging thread emitted */
};

static struct logging lg;

/* The singleton's sink: counts, and holds the logger's lock a little while (as a real
 * destination would), so that forks often land while it is held. */
static void counting_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	(void)user;
	(void)level;
	(void)line;
	(void)len;
	test_inc(&lg.sink_lines);
	test_busy_ns(1000);
}

static void *log_singleton_main(void *arg)
{
	(void)arg;
	while (!test_load(&lg.stop)) {
		tp_log(NULL, TP_LOG_INFO, "parent line %ld through the singleton", lg.lines[0]);
		test_inc(&lg.lines[0]);
	}
	return NULL;
}

static void *log_created_main(void *arg)
{
	(void)arg;
	while (!test_load(&lg.stop)) {
		TP_LOG(lg.created, TP_LOG_INFO, "parent line %ld through a created logger",
		       lg.lines[1]);
		test_inc(&lg.lines[1]);
	}
	return NULL;
}

/* Codes: 10 the singleton's line did not reach its sink, 11 pool create, 12 enqueue, 13 wait,
 * 14 the task did not run once. */
static int child_logs_and_uses_a_pool(void *arg)
{
	long before = test_load(&lg.sink_lines), ran = 0;
	tp_pool *pool;
	tp_future *f;

	(void)arg;
	tp_log(NULL, TP_LOG_INFO, "child line through the singleton");
	TP_LOG(lg.created, TP_LOG_INFO, "child line through a created logger");
	if (test_load(&lg.sink_lines) != before + 1)
		return 10;
	if (!NEW_POOL_IN_CHILD)
		return 0;
	pool = tp_pool_create(2, NULL); /* logs through the singleton too */
	if (pool == NULL)
		return 11;
	f = tp_enqueue(pool, count_run, &ran);
	if (f == NULL)
		return 12;
	if (tp_future_wait(f) != 0)
		return 13;
	tp_future_release(f);
	tp_pool_destroy(pool);
	return test_load(&ran) == 1 ? 0 : 14;
}

static void fork_while_threads_log(void **state)
{
	tp_logger *single = tp_logger_get_instance();
	tp_log_level saved = tp_logger_get_level(single);
	FILE *devnull = fopen("/dev/null", "w");
	pthread_t t[2];
	uint64_t rng = 0xF0F0;
	int status = 0, i;

	(void)state;
	memset(&lg, 0, sizeof(lg));
	assert_non_null(devnull);
	lg.created = tp_logger_create(TP_LOG_INFO);
	assert_non_null(lg.created);
	assert_int_equal(tp_logger_set_file(lg.created, devnull), 0);
	assert_int_equal(tp_logger_set_sink(single, counting_sink, NULL), 0);
	assert_int_equal(tp_logger_set_level(single, TP_LOG_INFO), 0);
	assert_int_equal(pthread_create(&t[0], NULL, log_singleton_main, NULL), 0);
	assert_int_equal(pthread_create(&t[1], NULL, log_created_main, NULL), 0);
	assert_true(test_await(&lg.lines[0], 10000));
	assert_true(test_await(&lg.lines[1], 10000));
	/* Up to the first failure: one hung child is enough (and costs CHILD_MS). */
	for (i = 0; i < 20 && status == 0; i++) {
		test_sleep_us((long)(test_rand(&rng) % 2000));
		status = test_child(child_logs_and_uses_a_pool, NULL, CHILD_MS);
	}
	test_store(&lg.stop, 1);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	assert_int_equal(tp_logger_set_sink(single, NULL, NULL), 0);
	assert_int_equal(tp_logger_set_level(single, saved), 0);
	tp_logger_destroy(lg.created);
	fclose(devnull);
	if (status != 0)
		fail_msg("fork %d of 20: child status %d (%s)", i, status,
			 child_status_text(status));
}

/* ---------------------------------------------------------------------------------------------
 * A child of a process whose pool has running and pending tasks
 * ------------------------------------------------------------------------------------------ */

enum {
	PENDING = 4
};

struct busy_pool {
	tp_pool *pool;
	long gate;
	long running; /* atomic: gated tasks started */
	long ran[PENDING];
	tp_future *held[2];
	tp_future *pending[PENDING];
};

static int gated_task(void *arg)
{
	struct busy_pool *b = arg;

	test_inc(&b->running);
	while (test_load(&b->gate) == 0)
		test_sleep_us(100);
	return 0;
}

/*
 * Codes: 20 enqueue accepted, 21 enqueue's errno not ESHUTDOWN, 22 a pending future's timed wait
 * timed out, 23 it returned something other than ECANCELED, 24 tp_future_wait not ECANCELED,
 * 25 state not CANCELLED, 26 shutdown failed, 27 shutdown took over a second, 28 new pool
 * create, 29 new pool enqueue, 30 new pool wait, 31 the task did not run once, 32 wait_idle
 * timed out, 33 it failed otherwise.
 */
static int child_of_busy_pool(void *arg)
{
	struct busy_pool *b = arg;
	long ran = 0;
	tp_pool *pool;
	tp_future *f;
	double t0;
	int rc;

	errno = 0;
	f = tp_enqueue(b->pool, count_run, &ran);
	if (f != NULL)
		return 20;
	if (errno != ESHUTDOWN)
		return 21;
	for (int i = 0; i < PENDING; i++) {
		struct timespec d = test_deadline_ms(3000);

		rc = tp_future_wait_until(b->pending[i], &d);
		if (rc == ETIMEDOUT)
			return 22;
		if (rc != ECANCELED)
			return 23;
		if (tp_future_wait(b->pending[i]) != ECANCELED)
			return 24;
		if (tp_future_state(b->pending[i]) != TP_FUTURE_CANCELLED)
			return 25;
	}
	/* An inherited pool behaves as a shut-down one, which is idle: the wait returns at once
	 * although tasks were pending (now cancelled) and running (never ending here). */
	{
		struct timespec d = test_deadline_ms(3000);

		rc = tp_pool_wait_idle(b->pool, &d);
		if (rc != 0)
			return rc == ETIMEDOUT ? 32 : 33;
	}
	t0 = test_now_ms();
	if (tp_pool_shutdown(b->pool, TP_SHUTDOWN_DRAIN) != 0)
		return 26;
	if (test_now_ms() - t0 > 1000)
		return 27;
	tp_pool_destroy(b->pool);
	for (int i = 0; i < PENDING; i++)
		tp_future_release(b->pending[i]);
	if (!NEW_POOL_IN_CHILD)
		return 0;
	pool = tp_pool_create(2, NULL);
	if (pool == NULL)
		return 28;
	f = tp_enqueue(pool, count_run, &ran);
	if (f == NULL)
		return 29;
	if (tp_future_wait(f) != 0)
		return 30;
	tp_future_release(f);
	tp_pool_destroy(pool);
	return test_load(&ran) == 1 ? 0 : 31;
}

static void fork_child_of_busy_pool(void **state)
{
	static struct busy_pool b;
	int status;

	(void)state;
	memset(&b, 0, sizeof(b));
	b.pool = test_pool_new(2);
	for (int k = 0; k < 2; k++) {
		b.held[k] = tp_enqueue(b.pool, gated_task, &b);
		assert_non_null(b.held[k]);
	}
	/* Both workers hold a gated task: the tasks enqueued now stay pending. */
	while (test_load(&b.running) < 2)
		test_sleep_us(100);
	for (int i = 0; i < PENDING; i++) {
		b.pending[i] = tp_enqueue(b.pool, count_run, &b.ran[i]);
		assert_non_null(b.pending[i]);
	}
	status = test_child(child_of_busy_pool, &b, CHILD_MS);
	/* The parent's pool is untouched by the child: everything runs once the gate opens. */
	test_store(&b.gate, 1);
	for (int k = 0; k < 2; k++) {
		struct timespec d = test_deadline_ms(10000);

		assert_int_equal(tp_future_wait_until(b.held[k], &d), 0);
		tp_future_release(b.held[k]);
	}
	for (int i = 0; i < PENDING; i++) {
		struct timespec d = test_deadline_ms(10000);

		assert_int_equal(tp_future_wait_until(b.pending[i], &d), 0);
		assert_int_equal(test_load(&b.ran[i]), 1);
		tp_future_release(b.pending[i]);
	}
	tp_pool_destroy(b.pool);
	assert_child_ok(status);
}

/* ---------------------------------------------------------------------------------------------
 * fork() from inside a task
 * ------------------------------------------------------------------------------------------ */

struct in_task {
	tp_pool *pool;
	pid_t pid; /* the child, or -1 */
};

/* In the child (the copy of a worker): codes 40 enqueue accepted, 41 errno not ESHUTDOWN. */
static int forking_task(void *arg)
{
	struct in_task *a = arg;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		long ran = 0;
		tp_future *f;

		errno = 0;
		f = tp_enqueue(a->pool, count_run, &ran);
		if (f != NULL)
			_exit(40);
		_exit(errno == ESHUTDOWN ? 0 : 41);
	}
	a->pid = pid;
	return 0;
}

static void fork_inside_task_child_pool_refuses(void **state)
{
	struct in_task a = { NULL, -1 };
	tp_future *f;
	int status;

	(void)state;
	a.pool = test_pool_new(2);
	f = tp_enqueue(a.pool, forking_task, &a);
	assert_non_null(f);
	{
		struct timespec d = test_deadline_ms(10000);

		assert_int_equal(tp_future_wait_until(f, &d), 0);
	}
	tp_future_release(f);
	assert_true(a.pid > 0);
	status = test_child_wait(a.pid, CHILD_MS);
	/* The parent's pool still works. */
	{
		long ran = 0;

		assert_int_equal(run_in_pool(a.pool, count_run, &ran), 0);
		assert_int_equal(ran, 1);
	}
	tp_pool_destroy(a.pool);
	assert_child_ok(status);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fork_while_threads_log),
		cmocka_unit_test(fork_child_of_busy_pool),
		cmocka_unit_test(fork_inside_task_child_pool_refuses),
	};

	test_watchdog(110);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
