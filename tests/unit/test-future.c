/*
 * test-future.c - futures through the public API: codes, timed waits, cancellation (also racing
 * the start), several waiters, waiting inside tasks (the work-stealing join), nested fork-join.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

/* A task that blocks until *gate becomes non-zero. */
static int wait_gate(void *arg)
{
	long *gate = arg;

	while (test_load(gate) == 0)
		test_sleep_us(100);
	return 0;
}

static int count_run(void *arg)
{
	test_inc(arg);
	return 0;
}

static void future_wait_returns_task_code(void **state)
{
	tp_pool *pool = tp_pool_create(2, NULL);
	tp_future *ok = tp_enqueue(pool, return_arg, (void *)0);
	tp_future *bad = tp_enqueue(pool, return_arg, (void *)42);

	(void)state;
	assert_int_equal(tp_future_wait(ok), 0);
	assert_int_equal(tp_future_state(ok), TP_FUTURE_DONE);
	assert_int_equal(tp_future_result(ok), 0);
	assert_int_equal(tp_future_wait(bad), 42);
	assert_int_equal(tp_future_state(bad), TP_FUTURE_FAILED);
	assert_int_equal(tp_future_result(bad), 42);
	/* Waiting again gives the same answer. */
	assert_int_equal(tp_future_wait(bad), 42);
	tp_future_release(ok);
	tp_future_release(bad);
	tp_pool_destroy(pool);
}

static void future_wait_until_times_out_then_completes(void **state)
{
	long gate = 0;
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *f = tp_enqueue(pool, wait_gate, &gate);
	struct timespec d = test_deadline_ms(50);
	double t0 = test_now_ms();

	(void)state;
	assert_int_equal(tp_future_wait_until(f, &d), ETIMEDOUT);
	assert_true(test_now_ms() - t0 >= 45);
	assert_int_not_equal(tp_future_state(f), TP_FUTURE_DONE);
	assert_int_equal(tp_future_result(f), EBUSY);
	test_store(&gate, 1);
	d = test_deadline_ms(20000);
	assert_int_equal(tp_future_wait_until(f, &d), 0);
	/* A deadline in the past still reports a final future. */
	d.tv_sec = 0;
	d.tv_nsec = 0;
	assert_int_equal(tp_future_wait_until(f, &d), 0);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

static void future_cancel_before_start(void **state)
{
	long gate = 0, ran = 0;
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_future *victim = tp_enqueue(pool, count_run, &ran);

	(void)state;
	while (tp_future_state(blocker) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	assert_true(tp_future_cancel(victim));
	assert_true(tp_future_cancel(victim)); /* already cancelled: still true */
	assert_int_equal(tp_future_state(victim), TP_FUTURE_CANCELLED);
	assert_int_equal(tp_future_wait(victim), ECANCELED);
	assert_int_equal(tp_future_result(victim), ECANCELED);
	assert_false(tp_future_cancel(blocker)); /* running: not cancellable */
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(blocker), 0);
	assert_false(tp_future_cancel(blocker)); /* finished */
	tp_pool_destroy(pool);
	assert_int_equal(ran, 0);
	tp_future_release(blocker);
	tp_future_release(victim);
}

/* Cancel racing the start: cancel() says true iff the task never runs. */
static void future_cancel_races_start(void **state)
{
	enum {
		N = 2000
	};
	static long ran[N];
	static bool cancelled[N];
	static tp_future *f[N];
	tp_pool *pool = tp_pool_create(2, NULL);
	uint64_t rng = 99;

	(void)state;
	memset(ran, 0, sizeof(ran));
	for (int i = 0; i < N; i++) {
		f[i] = tp_enqueue(pool, count_run, &ran[i]);
		assert_non_null(f[i]);
		if (test_rand(&rng) % 4 == 0)
			test_jitter(&rng);
		cancelled[i] = tp_future_cancel(f[i]);
	}
	for (int i = 0; i < N; i++) {
		int code = tp_future_wait(f[i]);

		assert_int_equal(code, cancelled[i] ? ECANCELED : 0);
	}
	tp_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		assert_int_equal(ran[i], cancelled[i] ? 0 : 1);
		tp_future_release(f[i]);
	}
}

struct waiter {
	tp_future *f;
	int code;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->code = tp_future_wait(w->f);
	tp_future_release(w->f);
	return NULL;
}

static void future_many_waiters_each_get_the_code(void **state)
{
	long gate = 0;
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_future *f = tp_enqueue(pool, return_arg, (void *)7);
	struct waiter w[4];
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++) {
		w[i].f = tp_future_retain(f);
		w[i].code = -1;
		assert_int_equal(pthread_create(&t[i], NULL, wait_thread, &w[i]), 0);
	}
	test_sleep_us(20000); /* let them sleep on the futex */
	test_store(&gate, 1);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].code, 7);
	}
	assert_int_equal(tp_future_wait(f), 7);
	tp_future_release(f);
	tp_future_release(blocker);
	tp_pool_destroy(pool);
}

static void future_outside_wait_never_runs_the_task(void **state)
{
	long gate = 0, ran = 0;
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_future *f = tp_enqueue(pool, count_run, &ran);
	struct timespec d = test_deadline_ms(30);

	(void)state;
	/* The only worker is busy: an outside waiter blocks, it does not run f itself. */
	assert_int_equal(tp_future_wait_until(f, &d), ETIMEDOUT);
	assert_int_equal(test_load(&ran), 0);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(f), 0);
	assert_int_equal(test_load(&ran), 1);
	tp_future_release(blocker);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

/* Recursive fib with one future per call: the join must help, or one thread deadlocks. */
struct fib {
	tp_pool *pool;
	int n;
	long result;
};

static int fib_task(void *arg)
{
	struct fib *a = arg;
	struct fib left = { a->pool, a->n - 1, 0 }, right = { a->pool, a->n - 2, 0 };
	tp_future *f;
	int code;

	if (a->n < 2) {
		a->result = a->n;
		return 0;
	}
	f = tp_enqueue(a->pool, fib_task, &left);
	if (f == NULL)
		return errno;
	code = fib_task(&right);
	if (tp_future_wait(f) != 0 || code != 0)
		code = EIO;
	tp_future_release(f);
	a->result = left.result + right.result;
	return code;
}

static long fib_serial(int n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static void fib_on(size_t threads, int n)
{
	tp_pool *pool = tp_pool_create(threads, NULL);
	struct fib root = { pool, n, 0 };
	tp_future *f;

	assert_non_null(pool);
	f = tp_enqueue(pool, fib_task, &root);
	assert_int_equal(tp_future_wait(f), 0);
	assert_int_equal(root.result, fib_serial(n));
	tp_future_release(f);
	tp_pool_destroy(pool);
}

static void future_nested_fork_join_1_thread(void **state)
{
	(void)state;
	fib_on(1, 18);
}

static void future_nested_fork_join_2_threads(void **state)
{
	(void)state;
	fib_on(2, 20);
}

static void future_nested_fork_join_8_threads(void **state)
{
	(void)state;
	fib_on(8, 20);
}

/* A task on the only worker waits for a future submitted from outside after it: the worker must
 * take it from the injection queue while it waits. */
struct later {
	tp_future *inner; /* published by the test thread */
	int code;
};

static int wait_for_later(void *arg)
{
	struct later *l = arg;
	tp_future *inner;

	while ((inner = __atomic_load_n(&l->inner, __ATOMIC_ACQUIRE)) == NULL)
		test_sleep_us(100);
	l->code = tp_future_wait(inner);
	return 0;
}

static void future_task_waits_for_outside_future_on_one_thread(void **state)
{
	tp_pool *pool = tp_pool_create(1, NULL);
	struct later l = { NULL, -1 };
	tp_future *outer = tp_enqueue(pool, wait_for_later, &l);
	tp_future *inner;

	(void)state;
	while (tp_future_state(outer) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	inner = tp_enqueue(pool, return_arg, (void *)5);
	__atomic_store_n(&l.inner, inner, __ATOMIC_RELEASE);
	assert_int_equal(tp_future_wait(outer), 0);
	assert_int_equal(l.code, 5);
	tp_future_release(inner);
	tp_future_release(outer);
	tp_pool_destroy(pool);
}

static void future_release_before_completion_still_runs(void **state)
{
	long ran = 0;
	tp_pool *pool = tp_pool_create(2, NULL);

	(void)state;
	for (int i = 0; i < 1000; i++)
		tp_future_release(tp_enqueue(pool, count_run, &ran));
	tp_pool_destroy(pool);
	assert_int_equal(ran, 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(future_wait_returns_task_code),
		cmocka_unit_test(future_wait_until_times_out_then_completes),
		cmocka_unit_test(future_cancel_before_start),
		cmocka_unit_test(future_cancel_races_start),
		cmocka_unit_test(future_many_waiters_each_get_the_code),
		cmocka_unit_test(future_outside_wait_never_runs_the_task),
		cmocka_unit_test(future_nested_fork_join_1_thread),
		cmocka_unit_test(future_nested_fork_join_2_threads),
		cmocka_unit_test(future_nested_fork_join_8_threads),
		cmocka_unit_test(future_task_waits_for_outside_future_on_one_thread),
		cmocka_unit_test(future_release_before_completion_still_runs),
	};

	test_watchdog(115);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
