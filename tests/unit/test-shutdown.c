/*
 * test-shutdown.c - both shutdown modes under load with nothing lost, forks during a drain,
 * idempotence, concurrent callers, and the EDEADLK guard.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

struct job {
	tp_pool *pool;
	long ran;
	long children; /* forks to make during the run */
	long child_ran;
	long sleep_us;
	long fork_refused;
};

static int child_task(void *arg)
{
	struct job *j = arg;

	test_inc(&j->child_ran);
	return 0;
}

static int count_run(void *arg)
{
	test_inc(arg);
	return 0;
}

static int job_task(void *arg)
{
	struct job *j = arg;

	test_inc(&j->ran);
	if (j->sleep_us)
		test_sleep_us(j->sleep_us);
	for (long i = 0; i < j->children; i++) {
		tp_future *f = tp_enqueue(j->pool, child_task, j);

		if (f == NULL) {
			test_inc(&j->fork_refused);
			continue;
		}
		tp_future_release(f);
	}
	return 0;
}

static void shutdown_drain_runs_all_accepted_work(void **state)
{
	enum {
		N = 3000
	};
	static struct job jobs[N];
	static tp_future *f[N];
	tp_pool *pool = tp_pool_create(2, NULL);

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < N; i++) {
		jobs[i].pool = pool;
		jobs[i].children = i % 3;
		f[i] = tp_enqueue(pool, job_task, &jobs[i]);
		assert_non_null(f[i]);
	}
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(tp_future_state(f[i]), TP_FUTURE_DONE);
		assert_int_equal(jobs[i].ran, 1);
		assert_int_equal(jobs[i].fork_refused, 0);
		assert_int_equal(jobs[i].child_ran, jobs[i].children);
		tp_future_release(f[i]);
	}
	tp_pool_destroy(pool);
}

/* Forks made by a task that is still running when the drain begins still run. */
static void shutdown_drain_accepts_forks_made_during_it(void **state)
{
	struct job j = { 0 };
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *f;

	(void)state;
	j.pool = pool;
	j.children = 50;
	j.sleep_us = 30000; /* the shutdown starts while it sleeps */
	f = tp_enqueue(pool, job_task, &j);
	while (test_load(&j.ran) == 0)
		test_sleep_us(100);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(j.fork_refused, 0);
	assert_int_equal(j.child_ran, 50);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

static void shutdown_cancel_cancels_pending_and_finishes_running(void **state)
{
	enum {
		N = 1000
	};
	static struct job jobs[N];
	static tp_future *f[N];
	struct job slow[2] = { { 0 }, { 0 } };
	tp_future *s[2];
	tp_pool *pool = tp_pool_create(2, NULL);
	int done = 0, cancelled = 0;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	for (int k = 0; k < 2; k++) {
		slow[k].pool = pool;
		slow[k].sleep_us = 50000;
		slow[k].children = 5; /* forked after the cancel began: refused */
		s[k] = tp_enqueue(pool, job_task, &slow[k]);
	}
	while (test_load(&slow[0].ran) + test_load(&slow[1].ran) < 2)
		test_sleep_us(100);
	for (int i = 0; i < N; i++) {
		jobs[i].pool = pool;
		f[i] = tp_enqueue(pool, job_task, &jobs[i]);
	}
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	for (int k = 0; k < 2; k++) {
		/* The running tasks finished; their late forks were refused (ESHUTDOWN). */
		assert_int_equal(tp_future_wait(s[k]), 0);
		assert_int_equal(slow[k].fork_refused + slow[k].child_ran, 5);
		tp_future_release(s[k]);
	}
	for (int i = 0; i < N; i++) {
		tp_future_status st = tp_future_state(f[i]);

		/* Final, and a task ran iff it is DONE. */
		assert_true(st == TP_FUTURE_DONE || st == TP_FUTURE_CANCELLED);
		assert_int_equal(jobs[i].ran, st == TP_FUTURE_DONE);
		assert_int_equal(tp_future_wait(f[i]), st == TP_FUTURE_DONE ? 0 : ECANCELED);
		done += st == TP_FUTURE_DONE;
		cancelled += st == TP_FUTURE_CANCELLED;
		tp_future_release(f[i]);
	}
	/* Both workers were busy for 50 ms: the pending ones were cancelled. */
	assert_int_equal(cancelled, N);
	assert_int_equal(done, 0);
	tp_pool_destroy(pool);
}

static void shutdown_is_idempotent_and_refuses_new_tasks(void **state)
{
	long ran = 0;
	tp_pool *pool = tp_pool_create(2, NULL);

	(void)state;
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	errno = 0;
	assert_null(tp_enqueue(pool, count_run, &ran));
	assert_int_equal(errno, ESHUTDOWN);
	tp_pool_destroy(pool);
}

static void *shutdown_thread(void *arg)
{
	return (void *)(intptr_t)tp_pool_shutdown(arg, TP_SHUTDOWN_DRAIN);
}

static void shutdown_concurrent_callers_both_return_after_join(void **state)
{
	enum {
		N = 2000
	};
	static struct job jobs[N];
	tp_pool *pool = tp_pool_create(2, NULL);
	pthread_t t[3];
	void *rc;

	(void)state;
	memset(jobs, 0, sizeof(jobs));
	for (int i = 0; i < N; i++) {
		jobs[i].pool = pool;
		tp_future_release(tp_enqueue(pool, job_task, &jobs[i]));
	}
	for (int k = 0; k < 3; k++)
		assert_int_equal(pthread_create(&t[k], NULL, shutdown_thread, pool), 0);
	for (int k = 0; k < 3; k++) {
		pthread_join(t[k], &rc);
		assert_int_equal((intptr_t)rc, 0);
	}
	/* Every caller returned after the drain: all ran. */
	for (int i = 0; i < N; i++)
		assert_int_equal(jobs[i].ran, 1);
	tp_pool_destroy(pool);
}

static int shutdown_from_inside(void *arg)
{
	return tp_pool_shutdown(arg, TP_SHUTDOWN_DRAIN);
}

static void shutdown_from_a_task_is_edeadlk(void **state)
{
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *f = tp_enqueue(pool, shutdown_from_inside, pool);
	long ran = 0;
	tp_future *g;

	(void)state;
	assert_int_equal(tp_future_wait(f), EDEADLK);
	/* Nothing happened: the pool still takes work. */
	g = tp_enqueue(pool, count_run, &ran);
	assert_non_null(g);
	assert_int_equal(tp_future_wait(g), 0);
	assert_int_equal(ran, 1);
	tp_future_release(f);
	tp_future_release(g);
	tp_pool_destroy(pool);
}

static void shutdown_of_idle_and_fresh_pools(void **state)
{
	(void)state;
	for (int i = 0; i < 50; i++) {
		tp_pool *pool = tp_pool_create(1 + (size_t)(i % 4), NULL);

		if (i % 3 == 0)
			test_sleep_us(1000); /* let the workers park first */
		assert_int_equal(
			tp_pool_shutdown(pool, i % 2 ? TP_SHUTDOWN_CANCEL : TP_SHUTDOWN_DRAIN), 0);
		tp_pool_destroy(pool);
	}
	/* destroy alone drains. */
	{
		struct job j = { 0 };
		tp_pool *pool = tp_pool_create(2, NULL);

		j.pool = pool;
		j.children = 10;
		tp_future_release(tp_enqueue(pool, job_task, &j));
		tp_pool_destroy(pool);
		assert_int_equal(j.ran, 1);
		assert_int_equal(j.child_ran, 10);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shutdown_drain_runs_all_accepted_work),
		cmocka_unit_test(shutdown_drain_accepts_forks_made_during_it),
		cmocka_unit_test(shutdown_cancel_cancels_pending_and_finishes_running),
		cmocka_unit_test(shutdown_is_idempotent_and_refuses_new_tasks),
		cmocka_unit_test(shutdown_concurrent_callers_both_return_after_join),
		cmocka_unit_test(shutdown_from_a_task_is_edeadlk),
		cmocka_unit_test(shutdown_of_idle_and_fresh_pools),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
