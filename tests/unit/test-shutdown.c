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

/* ---------------------------------------------------------------------------------------------
 * A task claimed by tp_future_wait_nohelp() from outside the pool runs on the claiming thread,
 * not on a worker; the pool must still count it as running.
 * ------------------------------------------------------------------------------------------ */

static int wait_gate(void *arg)
{
	long *gate = arg;

	while (test_load(gate) == 0)
		test_sleep_us(100);
	return 0;
}

struct claimed {
	tp_pool *pool;
	tp_future *target;	/* the pending future the claiming thread waits for */
	long gate;		/* holds the only worker */
	long started;		/* atomic: the claimed task runs */
	pthread_t ran_on;	/* where it ran */
	long shutdown_called;	/* atomic: the shutdown is about to begin */
	long shutdown_returned; /* atomic */
	long child_ran;		/* atomic: a task the claimed task managed to enqueue ran */
	tp_future *late;	/* its enqueue during the shutdown (NULL expected) */
	int late_errno;
	int shutdown_rc; /* the claimed task's own shutdown call (the EDEADLK case) */
	long returned;	 /* atomic: the claimed task is about to return */
	int nohelp_rc;
	long nohelp_done; /* atomic */
};

/* The claiming thread: an outside thread that waits without helping, so it runs the pending
 * task itself. */
static void *claim_main(void *arg)
{
	struct claimed *c = arg;

	c->nohelp_rc = tp_future_wait_nohelp(c->target, NULL);
	test_store(&c->nohelp_done, 1);
	return NULL;
}

/* Runs on the claiming thread while a DRAIN shutdown is in progress: it enqueues on the pool. */
static int claimed_enqueues_during_shutdown(void *arg)
{
	struct claimed *c = arg;

	c->ran_on = pthread_self();
	test_store(&c->started, 1);
	(void)test_await(&c->shutdown_called, 10000);
	/* Well inside the shutdown, which must wait for this task to return. */
	test_sleep_us(50000);
	errno = 0;
	c->late = tp_enqueue(c->pool, count_run, &c->child_ran);
	c->late_errno = errno;
	test_store(&c->returned, 1);
	return 9;
}

static void shutdown_drain_waits_for_task_claimed_by_nohelp(void **state)
{
	struct claimed c = { 0 };
	tp_future *held, *f;
	pthread_t claimer;
	long returned_at_shutdown;
	int rc;

	(void)state;
	c.pool = test_pool_new(1);
	held = tp_enqueue(c.pool, wait_gate, &c.gate);
	assert_non_null(held);
	while (tp_future_state(held) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	f = tp_enqueue(c.pool, claimed_enqueues_during_shutdown, &c); /* pending */
	assert_non_null(f);
	c.target = f;
	assert_int_equal(pthread_create(&claimer, NULL, claim_main, &c), 0);
	assert_true(test_await(&c.started, 10000));
	/* The worker finishes its task and meets the claimed record in the queue. */
	test_store(&c.gate, 1);
	test_store(&c.shutdown_called, 1);
	rc = tp_pool_shutdown(c.pool, TP_SHUTDOWN_DRAIN);
	returned_at_shutdown = test_load(&c.returned);
	/* What a user may do once the shutdown has returned (ASan sees a task still using it). */
	tp_pool_destroy(c.pool);
	if (!test_await(&c.nohelp_done, 10000))
		fail_msg("the claiming thread did not return");
	pthread_join(claimer, NULL);
	assert_int_equal(tp_future_wait(held), 0);
	tp_future_release(held);
	tp_future_release(f);
	tp_future_release(c.late);

	assert_int_equal(rc, 0);
	assert_true(pthread_equal(c.ran_on, claimer));
	assert_int_equal(c.nohelp_rc, 9);
	/* The shutdown returned only after the claimed task had. */
	assert_int_equal(returned_at_shutdown, 1);
	/* Its enqueue during the shutdown was refused. */
	assert_null(c.late);
	assert_int_equal(c.late_errno, ESHUTDOWN);
	assert_int_equal(test_load(&c.child_ran), 0);
}

/* Runs on the claiming thread: a shutdown from inside a running task is EDEADLK, even there. */
static int claimed_shuts_down(void *arg)
{
	struct claimed *c = arg;

	c->ran_on = pthread_self();
	test_store(&c->started, 1);
	c->shutdown_rc = tp_pool_shutdown(c->pool, TP_SHUTDOWN_DRAIN);
	test_store(&c->returned, 1);
	return 0;
}

static void shutdown_from_task_claimed_by_nohelp_edeadlk(void **state)
{
	struct claimed c = { 0 };
	tp_future *held, *f;
	pthread_t claimer;
	bool at_once;
	long ran = 0;

	(void)state;
	c.pool = test_pool_new(1);
	c.shutdown_rc = -1;
	held = tp_enqueue(c.pool, wait_gate, &c.gate);
	assert_non_null(held);
	while (tp_future_state(held) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	f = tp_enqueue(c.pool, claimed_shuts_down, &c); /* pending */
	assert_non_null(f);
	c.target = f;
	assert_int_equal(pthread_create(&claimer, NULL, claim_main, &c), 0);
	assert_true(test_await(&c.started, 10000));
	/* EDEADLK returns at once; a shutdown that went ahead would wait for the gated task. */
	at_once = test_await(&c.returned, 2000);
	test_store(&c.gate, 1);
	if (!test_await(&c.nohelp_done, 10000))
		fail_msg("the claiming thread did not return");
	pthread_join(claimer, NULL);
	assert_int_equal(tp_future_wait(held), 0);
	tp_future_release(held);
	tp_future_release(f);
	assert_true(pthread_equal(c.ran_on, claimer));
	assert_int_equal(c.shutdown_rc, EDEADLK);
	assert_true(at_once);
	/* It had no effect: the pool still takes work. */
	assert_int_equal(run_in_pool(c.pool, count_run, &ran), 0);
	assert_int_equal(ran, 1);
	tp_pool_destroy(c.pool);
}

/* ---------------------------------------------------------------------------------------------
 * A second shutdown while one is in progress waits for it to complete; its mode is ignored.
 * ------------------------------------------------------------------------------------------ */

struct two_shutdowns {
	tp_pool *pool;
	long gate;
	long gated_done;     /* atomic: the gated task returned */
	long pending_ran[8]; /* atomic */
	int rc_a, rc_b;
	long a_returned, b_returned; /* atomic */
	long b_saw_gated_done;	     /* what B saw when it returned */
	long b_saw_pending_ran;
};

static int gated_then_done(void *arg)
{
	struct two_shutdowns *t = arg;

	wait_gate(&t->gate);
	test_sleep_us(20000); /* a little longer, for a B returning too early to show */
	test_store(&t->gated_done, 1);
	return 0;
}

static void *shutdown_a_main(void *arg)
{
	struct two_shutdowns *t = arg;

	t->rc_a = tp_pool_shutdown(t->pool, TP_SHUTDOWN_DRAIN);
	test_store(&t->a_returned, 1);
	return NULL;
}

static void *shutdown_b_main(void *arg)
{
	struct two_shutdowns *t = arg;

	t->rc_b = tp_pool_shutdown(t->pool, TP_SHUTDOWN_CANCEL);
	t->b_saw_gated_done = test_load(&t->gated_done);
	for (int i = 0; i < 8; i++)
		t->b_saw_pending_ran += test_load(&t->pending_ran[i]);
	test_store(&t->b_returned, 1);
	return NULL;
}

static void shutdown_second_call_waits_for_the_first(void **state)
{
	struct two_shutdowns t = { 0 };
	tp_future *held, *pending[8];
	pthread_t a, b;
	long probe_ran = 0, b_early;
	tp_future *probe;

	(void)state;
	t.pool = test_pool_new(1);
	held = tp_enqueue(t.pool, gated_then_done, &t);
	assert_non_null(held);
	while (tp_future_state(held) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	for (int i = 0; i < 8; i++) {
		pending[i] = tp_enqueue(t.pool, count_run, &t.pending_ran[i]);
		assert_non_null(pending[i]);
	}
	assert_int_equal(pthread_create(&a, NULL, shutdown_a_main, &t), 0);
	/* A's shutdown has begun once the pool refuses new tasks. */
	{
		double end = test_now_ms() + 10000;

		while ((probe = tp_enqueue(t.pool, count_run, &probe_ran)) != NULL &&
		       test_now_ms() < end) {
			tp_future_release(probe);
			test_sleep_us(100);
		}
	}
	assert_null(probe);
	assert_int_equal(errno, ESHUTDOWN);
	assert_int_equal(pthread_create(&b, NULL, shutdown_b_main, &t), 0);
	test_sleep_us(50000);
	b_early = test_load(&t.b_returned);
	test_store(&t.gate, 1);
	if (!test_await(&t.b_returned, 10000) || !test_await(&t.a_returned, 10000))
		fail_msg("a shutdown did not return");
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	for (int i = 0; i < 8; i++) {
		/* DRAIN, as A asked: B's CANCEL was ignored. */
		assert_int_equal(tp_future_state(pending[i]), TP_FUTURE_DONE);
		tp_future_release(pending[i]);
	}
	assert_int_equal(tp_future_wait(held), 0);
	tp_future_release(held);
	tp_pool_destroy(t.pool);
	assert_int_equal(t.rc_a, 0);
	assert_int_equal(t.rc_b, 0);
	assert_int_equal(b_early, 0);
	assert_int_equal(t.b_saw_gated_done, 1);
	assert_int_equal(t.b_saw_pending_ran, 8);
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
		cmocka_unit_test(shutdown_drain_waits_for_task_claimed_by_nohelp),
		cmocka_unit_test(shutdown_from_task_claimed_by_nohelp_edeadlk),
		cmocka_unit_test(shutdown_second_call_waits_for_the_first),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
