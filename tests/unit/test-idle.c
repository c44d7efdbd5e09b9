/*
 * test-idle.c - tp_pool_wait_idle() through the public API: it returns 0 only once every accepted
 * task and everything those tasks forked (tp_enqueue and tp_submit from inside, groups, tp_spawn)
 * has finished, also for detached tasks and tasks that tp_future_wait_nohelp() runs elsewhere; at
 * once on an idle or shut-down pool; ETIMEDOUT at its deadline; EINVAL; EDEADLK from a task of
 * the pool (also one run by tp_future_wait_nohelp()); from a task of another pool it waits;
 * several threads may wait at once; submissions racing the wait; the waiter sleeps; parked
 * workers are never woken by a timer.
 *
 * cmocka is not thread-safe: tasks only count (atomics); the test thread asserts after waiting.
 */
#include <dirent.h>
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

/* Blocks until *gate becomes non-zero. */
static int wait_gate(void *arg)
{
	long *gate = arg;

	while (test_load(gate) == 0)
		test_sleep_us(100);
	return 0;
}

static void await_running(tp_future *f)
{
	double end = test_now_ms() + 20000;

	while (tp_future_state(f) != TP_FUTURE_RUNNING) {
		assert_true(test_now_ms() < end);
		test_sleep_us(100);
	}
}

/* A task that sleeps arg microseconds, then counts itself in `slept_done`. */
static long slept_done;

static int sleep_task(void *arg)
{
	test_sleep_us((long)(intptr_t)arg);
	test_inc(&slept_done);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Everything forked is waited for
 * ------------------------------------------------------------------------------------------ */

/* Counts of the tree test: created is counted before a task is submitted or spawned, finished at
 * its very end, after every child it made was created. So created == finished, read after the
 * wait, says no task was alive. */
static struct tree {
	tp_pool *pool;
	long created, started, finished, running; /* atomic */
	long failed_submit;			  /* atomic */
	uint64_t seed;
} tree;

static __thread uint64_t tree_rng;

static uint64_t tree_rand(void)
{
	if (tree_rng == 0)
		tree_rng =
			__atomic_add_fetch(&tree.seed, 0x9E3779B97F4A7C15u, __ATOMIC_RELAXED) | 1;
	return test_rand(&tree_rng);
}

static int tree_task(void *arg);

static void tree_child(long depth, int how)
{
	void *child = (void *)(intptr_t)(depth + 1);

	test_inc(&tree.created);
	switch (how) {
	case 0: {
		tp_future *f = tp_enqueue(tree.pool, tree_task, child);

		if (f == NULL) {
			test_inc(&tree.failed_submit);
			test_inc(&tree.finished); /* never runs: balance its count */
		}
		tp_future_release(f);
		break;
	}
	case 1:
		if (tp_submit(tree.pool, tree_task, child) != 0) {
			test_inc(&tree.failed_submit);
			test_inc(&tree.finished);
		}
		break;
	case 2: {
		tp_group g;

		test_inc(&tree.created); /* two tasks in the group */
		if (tp_group_init(&g, tree.pool) != 0 ||
		    tp_group_spawn(&g, tree_task, child) != 0 ||
		    tp_group_spawn(&g, tree_task, child) != 0)
			test_inc(&tree.failed_submit);
		(void)tp_group_wait(&g);
		break;
	}
	default: {
		tp_frame t;

		tp_spawn(&t, tree_task, child);
		if (test_rand(&tree_rng) % 2)
			test_sleep_us(20);
		(void)tp_join(&t);
		break;
	}
	}
}

static int tree_task(void *arg)
{
	long depth = (long)(intptr_t)arg;
	uint64_t r = tree_rand();

	test_inc(&tree.started);
	test_inc(&tree.running);
	switch (r % 4) {
	case 0:
		break;
	case 1:
		test_busy_ns((long)(r >> 8) % 100000);
		break;
	case 2:
		test_sleep_us((long)(r >> 8) % 300);
		break;
	default:
		sched_yield();
		break;
	}
	if (depth < 3) {
		int kids = (int)((r >> 20) % 4);

		for (int k = 0; k < kids; k++)
			tree_child(depth, (int)((r >> (24 + 2 * k)) % 4));
	}
	__atomic_sub_fetch(&tree.running, 1, __ATOMIC_SEQ_CST);
	test_inc(&tree.finished);
	return 0;
}

static void idle_waits_for_everything_forked(void **state)
{
	long iterations = test_scaled(400);
	uint64_t rng = test_stress_seed();

	(void)state;
	memset(&tree, 0, sizeof(tree));
	tree.seed = rng;
	tree.pool = test_pool_new(3);
	for (long it = 0; it < iterations; it++) {
		int roots = 1 + (int)(test_rand(&rng) % 12);
		long created, finished;

		for (int i = 0; i < roots; i++) {
			test_inc(&tree.created);
			if (i % 2 == 0) {
				assert_int_equal(tp_submit(tree.pool, tree_task, (void *)0), 0);
			} else {
				tp_future *f = tp_enqueue(tree.pool, tree_task, (void *)0);

				assert_non_null(f);
				tp_future_release(f);
			}
		}
		if (test_rand(&rng) % 4 == 0)
			test_jitter(&rng);
		assert_int_equal(tp_pool_wait_idle(tree.pool, NULL), 0);
		finished = test_load(&tree.finished);
		created = test_load(&tree.created);
		if (created != finished)
			printf("# iteration %ld: wait_idle returned with %ld of %ld tasks finished, "
			       "%ld running\n",
			       it, finished, created, test_load(&tree.running));
		assert_int_equal(created, finished);
		assert_int_equal(test_load(&tree.started), finished);
		assert_int_equal(test_load(&tree.running), 0);
	}
	assert_int_equal(tree.failed_submit, 0);
	tp_pool_destroy(tree.pool);
}

/* Detached tasks (no future anywhere) are waited for. */
static void idle_waits_for_detached_tasks(void **state)
{
	enum {
		N = 20
	};
	tp_pool *pool = test_pool_new(2);
	double t0;

	(void)state;
	test_store(&slept_done, 0);
	t0 = test_now_ms();
	for (int i = 0; i < N; i++)
		assert_int_equal(tp_submit(pool, sleep_task, (void *)(intptr_t)20000), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(test_load(&slept_done), N);
	/* 20 tasks of 20 ms on 2 workers. */
	assert_true(test_now_ms() - t0 >= 190);
	tp_pool_destroy(pool);
}

/* A task claimed by tp_future_wait_nohelp() on another thread is waited for, even once its
 * queue entry was taken by a worker; inside it, waiting for its own pool is EDEADLK. */
struct claimed {
	tp_pool *pool;
	long done; /* atomic */
	int rc;
};

static int claimed_task(void *arg)
{
	struct claimed *c = arg;

	c->rc = tp_pool_wait_idle(c->pool, NULL);
	test_sleep_us(100 * 1000);
	test_store(&c->done, 1);
	return 0;
}

struct nohelp_call {
	tp_future *f;
	int rc;
	pthread_t thread;
};

static void *nohelp_thread(void *arg)
{
	struct nohelp_call *c = arg;

	c->rc = tp_future_wait_nohelp(c->f, NULL);
	return NULL;
}

static void idle_waits_for_task_run_by_nohelp(void **state)
{
	long gate = 0;
	struct claimed c = { NULL, 0, -1 };
	struct nohelp_call call;
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	struct timespec d;
	long done_at_return;
	int rc;

	(void)state;
	c.pool = pool;
	assert_non_null(blocker);
	await_running(blocker);
	call.f = tp_enqueue(pool, claimed_task, &c);
	call.rc = -1;
	assert_non_null(call.f);
	assert_int_equal(pthread_create(&call.thread, NULL, nohelp_thread, &call), 0);
	await_running(call.f); /* claimed by that thread: the only worker is blocked */
	/* The worker now takes the claimed record's queue entry while its task still runs. */
	test_store(&gate, 1);
	/* Bounded, so that a wait that never returns fails this test only. */
	d = test_deadline_ms(10000);
	rc = tp_pool_wait_idle(pool, &d);
	done_at_return = test_load(&c.done);
	pthread_join(call.thread, NULL);
	if (rc != 0) {
		printf("# tp_pool_wait_idle: %d after 10 s, the claimed task %s\n", rc,
		       done_at_return ? "long finished" : "still running");
		/* Any submission wakes the worker, which then retires the record. */
		assert_int_equal(tp_submit(pool, sleep_task, (void *)0), 0);
		d = test_deadline_ms(10000);
		printf("# after one more submission: %d\n", tp_pool_wait_idle(pool, &d));
	}
	assert_int_equal(call.rc, 0);
	assert_int_equal(c.rc, EDEADLK);
	assert_int_equal(tp_future_wait(blocker), 0);
	tp_future_release(blocker);
	tp_future_release(call.f);
	tp_pool_destroy(pool);
	assert_int_equal(rc, 0);
	assert_int_equal(done_at_return, 1);
}

/* Cancelled tasks do not keep the pool busy. */
static void idle_after_cancelled_tasks(void **state)
{
	enum {
		N = 50
	};
	long gate = 0;
	tp_future *f[N];
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	struct timespec d;

	(void)state;
	assert_non_null(blocker);
	await_running(blocker);
	for (int i = 0; i < N; i++) {
		f[i] = tp_enqueue(pool, sleep_task, (void *)(intptr_t)1000);
		assert_non_null(f[i]);
		assert_true(tp_future_cancel(f[i]));
	}
	test_store(&gate, 1);
	d = test_deadline_ms(20000);
	assert_int_equal(tp_pool_wait_idle(pool, &d), 0);
	for (int i = 0; i < N; i++)
		tp_future_release(f[i]);
	tp_future_release(blocker);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Idle pools, deadlines, bad input
 * ------------------------------------------------------------------------------------------ */

static void idle_pool_returns_at_once(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct timespec d = test_deadline_ms(10000);
	double t0 = test_now_ms();

	(void)state;
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, &d), 0);
	/* Idle again after some work and a quiet period. */
	test_store(&slept_done, 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(tp_submit(pool, sleep_task, (void *)0), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	test_sleep_us(20 * 1000);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, &d), 0);
	assert_true(test_now_ms() - t0 < 5000);
	tp_pool_destroy(pool);
}

static void idle_deadline_etimedout(void **state)
{
	long gate = 0;
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	struct timespec d = test_deadline_ms(50);
	double t0 = test_now_ms();

	(void)state;
	assert_non_null(blocker);
	assert_int_equal(tp_pool_wait_idle(pool, &d), ETIMEDOUT);
	assert_true(test_now_ms() - t0 >= 45);
	/* Deadlines in the past, a negative one included: at once. */
	d.tv_sec = 0;
	d.tv_nsec = 0;
	assert_int_equal(tp_pool_wait_idle(pool, &d), ETIMEDOUT);
	d.tv_sec = -5;
	d.tv_nsec = 0;
	assert_int_equal(tp_pool_wait_idle(pool, &d), ETIMEDOUT);
	/* The pool is unaffected: once the task ends, the pool is idle. */
	assert_int_equal(tp_future_state(blocker) == TP_FUTURE_RUNNING ||
				 tp_future_state(blocker) == TP_FUTURE_PENDING,
			 1);
	test_store(&gate, 1);
	d = test_deadline_ms(20000);
	assert_int_equal(tp_pool_wait_idle(pool, &d), 0);
	assert_int_equal(tp_future_state(blocker), TP_FUTURE_DONE);
	tp_future_release(blocker);
	tp_pool_destroy(pool);
}

static void idle_einval(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct timespec d = test_deadline_ms(1000);

	(void)state;
	assert_int_equal(tp_pool_wait_idle(NULL, NULL), EINVAL);
	assert_int_equal(tp_pool_wait_idle(NULL, &d), EINVAL);
	d.tv_nsec = -1;
	assert_int_equal(tp_pool_wait_idle(pool, &d), EINVAL);
	d.tv_nsec = 1000000000L;
	assert_int_equal(tp_pool_wait_idle(pool, &d), EINVAL);
	d.tv_nsec = 999999999L;
	assert_int_equal(tp_pool_wait_idle(pool, &d), 0);
	tp_pool_destroy(pool);
}

struct waiter {
	tp_pool *pool;
	int rc;
	long done_seen;
	pthread_t thread;
};

static void *waiter_thread(void *arg)
{
	struct waiter *w = arg;

	w->rc = tp_pool_wait_idle(w->pool, NULL);
	w->done_seen = test_load(&slept_done);
	return NULL;
}

struct shutdown_call {
	tp_pool *pool;
	int rc;
	pthread_t thread;
};

static void *shutdown_thread(void *arg)
{
	struct shutdown_call *c = arg;

	c->rc = tp_pool_shutdown(c->pool, TP_SHUTDOWN_CANCEL);
	return NULL;
}

/* A thread waiting for idleness while another shuts the pool down: it returns 0 once the pool
 * is shut down (or idle before that). */
static void idle_waiter_released_by_shutdown(void **state)
{
	long gate = 0;
	tp_pool *pool = test_pool_new(2);
	struct waiter w = { pool, -1, -1, 0 };
	struct shutdown_call sc = { pool, -1, 0 };
	double end;

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(tp_submit(pool, wait_gate, &gate), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(tp_submit(pool, sleep_task, (void *)(intptr_t)1000), 0);
	assert_int_equal(pthread_create(&w.thread, NULL, waiter_thread, &w), 0);
	assert_int_equal(pthread_create(&sc.thread, NULL, shutdown_thread, &sc), 0);
	/* Once outside submissions are refused, the shutdown has begun. */
	end = test_now_ms() + 20000;
	while (tp_submit(pool, sleep_task, (void *)0) == 0) {
		assert_true(test_now_ms() < end);
		test_sleep_us(100);
	}
	test_store(&gate, 1);
	pthread_join(sc.thread, NULL);
	pthread_join(w.thread, NULL);
	assert_int_equal(sc.rc, 0);
	assert_int_equal(w.rc, 0);
	tp_pool_destroy(pool);
}

/* A shut-down pool is idle. */
static void idle_after_shutdown(void **state)
{
	long gate = 1;
	tp_pool *pool = test_pool_new(2);
	struct timespec d = test_deadline_ms(10000);

	(void)state;
	for (int i = 0; i < 100; i++)
		assert_int_equal(tp_submit(pool, wait_gate, &gate), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, &d), 0);
	tp_pool_destroy(pool);

	pool = test_pool_new(2);
	for (int i = 0; i < 100; i++)
		assert_int_equal(tp_submit(pool, wait_gate, &gate), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * EDEADLK, other pools, several waiters
 * ------------------------------------------------------------------------------------------ */

struct self_wait {
	tp_pool *pool;
	int rc_null, rc_deadline;
};

static int self_wait_task(void *arg)
{
	struct self_wait *s = arg;
	struct timespec d = test_deadline_ms(1000);

	s->rc_null = tp_pool_wait_idle(s->pool, NULL);
	s->rc_deadline = tp_pool_wait_idle(s->pool, &d);
	return 0;
}

static void idle_edeadlk_inside_the_pool(void **state)
{
	long gate = 0;
	struct self_wait s = { NULL, -1, -1 };
	tp_pool *pool = test_pool_new(2);
	tp_future *blocker, *f;

	(void)state;
	s.pool = pool;
	assert_int_equal(run_in_pool(pool, self_wait_task, &s), 0);
	assert_int_equal(s.rc_null, EDEADLK);
	assert_int_equal(s.rc_deadline, EDEADLK);
	tp_pool_destroy(pool);

	/* A task that tp_future_wait_nohelp() runs on this (outside) thread. */
	pool = test_pool_new(1);
	s.pool = pool;
	s.rc_null = s.rc_deadline = -1;
	blocker = tp_enqueue(pool, wait_gate, &gate);
	assert_non_null(blocker);
	await_running(blocker);
	f = tp_enqueue(pool, self_wait_task, &s);
	assert_non_null(f);
	assert_int_equal(tp_future_wait_nohelp(f, NULL), 0);
	assert_int_equal(s.rc_null, EDEADLK);
	assert_int_equal(s.rc_deadline, EDEADLK);
	test_store(&gate, 1);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_future_release(blocker);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

struct cross {
	tp_pool *other;
	int rc;
	long done_seen;
};

static int cross_wait_task(void *arg)
{
	struct cross *c = arg;

	c->rc = tp_pool_wait_idle(c->other, NULL);
	c->done_seen = test_load(&slept_done);
	return 0;
}

/* A task of pool B may wait for pool A to be idle. */
static void idle_from_task_of_another_pool(void **state)
{
	enum {
		N = 40
	};
	tp_pool *a = test_pool_new(2), *b = test_pool_new(1);
	struct cross c = { a, -1, -1 };

	(void)state;
	test_store(&slept_done, 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(tp_submit(a, sleep_task, (void *)(intptr_t)2000), 0);
	assert_int_equal(run_in_pool(b, cross_wait_task, &c), 0);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.done_seen, N);
	tp_pool_destroy(b);
	tp_pool_destroy(a);
}

static void idle_several_waiters(void **state)
{
	enum {
		W = 4,
		N = 100
	};
	struct waiter w[W];
	long rounds = test_scaled(20);
	tp_pool *pool = test_pool_new(2);

	(void)state;
	for (long r = 0; r < rounds; r++) {
		test_store(&slept_done, 0);
		for (int i = 0; i < N; i++)
			assert_int_equal(
				tp_submit(pool, sleep_task, (void *)(intptr_t)(i % 3 * 300)), 0);
		for (int k = 0; k < W; k++) {
			w[k] = (struct waiter){ pool, -1, -1, 0 };
			assert_int_equal(pthread_create(&w[k].thread, NULL, waiter_thread, &w[k]),
					 0);
		}
		for (int k = 0; k < W; k++) {
			pthread_join(w[k].thread, NULL);
			assert_int_equal(w[k].rc, 0);
			assert_int_equal(w[k].done_seen, N);
		}
	}
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Submissions racing the wait
 * ------------------------------------------------------------------------------------------ */

static struct race {
	tp_pool *pool;
	long *done; /* [cap] atomic */
	long cap;
	long published;	  /* atomic: tasks whose tp_submit() has returned 0 */
	long stop;	  /* atomic */
	long outstanding; /* keep at most this many unfinished (0: no limit) */
	long finished;	  /* atomic */
	long task_us;
	pthread_t thread;
} race;

static int race_task(void *arg)
{
	long seq = (long)(intptr_t)arg;

	if (race.task_us > 0)
		test_sleep_us(race.task_us);
	test_store(&race.done[seq], 1);
	test_inc(&race.finished);
	return 0;
}

static void *race_submitter(void *arg)
{
	uint64_t rng = 12345;

	(void)arg;
	while (!test_load(&race.stop)) {
		long seq = test_load(&race.published);

		if (seq >= race.cap)
			break;
		if (race.outstanding > 0 && seq - test_load(&race.finished) >= race.outstanding) {
			test_sleep_us(100);
			continue;
		}
		if (tp_submit(race.pool, race_task, (void *)(intptr_t)seq) != 0)
			break;
		test_store(&race.published, seq + 1);
		if (test_rand(&rng) % 8 == 0)
			test_jitter(&rng);
	}
	return NULL;
}

static void race_start(tp_pool *pool, long cap, long outstanding, long task_us)
{
	memset(&race, 0, sizeof(race));
	race.pool = pool;
	race.cap = cap;
	race.done = calloc((size_t)cap, sizeof(race.done[0]));
	assert_non_null(race.done);
	race.outstanding = outstanding;
	race.task_us = task_us;
	assert_int_equal(pthread_create(&race.thread, NULL, race_submitter, NULL), 0);
}

static void race_stop(void)
{
	test_store(&race.stop, 1);
	pthread_join(race.thread, NULL);
	assert_int_equal(tp_pool_wait_idle(race.pool, NULL), 0);
	for (long i = 0; i < race.published; i++)
		assert_int_equal(race.done[i], 1);
	free(race.done);
}

/* Whatever the racing submitter does, a 0 from the wait means every task accepted before the
 * call had finished. */
static void idle_racing_submissions_accepted_before_are_waited_for(void **state)
{
	long waits = test_scaled(300), zero = 0, timedout = 0;
	tp_pool *pool = test_pool_new(2);

	(void)state;
	race_start(pool, 400000, 64, 0);
	for (long k = 0; k < waits; k++) {
		long before = test_load(&race.published);
		struct timespec d = test_deadline_ms(20);
		int rc = tp_pool_wait_idle(pool, &d);

		if (rc == 0) {
			zero++;
			for (long i = 0; i < before; i++)
				if (test_load(&race.done[i]) != 1) {
					printf("# wait %ld returned 0 with task %ld (of %ld accepted "
					       "before the call) unfinished\n",
					       k, i, before);
					fail();
				}
		} else {
			assert_int_equal(rc, ETIMEDOUT);
			timedout++;
		}
	}
	race_stop();
	printf("# racing submitter, 20 ms deadlines: %ld waits returned 0, %ld ETIMEDOUT\n", zero,
	       timedout);
	tp_pool_destroy(pool);
}

/* A pool kept busy by another thread (never fewer than 16 tasks of 2 ms outstanding): the wait
 * lasts until its deadline, unless the submitter was held up long enough for the pool to drain
 * (then 0 is right too). Reported, not asserted. */
static void idle_pool_kept_busy_waits_until_deadline(void **state)
{
	long waits = test_scaled(10), zero = 0, timedout = 0;
	tp_pool *pool = test_pool_new(2);

	(void)state;
	race_start(pool, 400000, 16, 2000);
	while (test_load(&race.published) < 16)
		test_sleep_us(100);
	for (long k = 0; k < waits; k++) {
		struct timespec d = test_deadline_ms(100);
		double t0 = test_now_ms();
		int rc = tp_pool_wait_idle(pool, &d);

		if (rc == ETIMEDOUT) {
			timedout++;
			assert_true(test_now_ms() - t0 >= 95);
		} else {
			assert_int_equal(rc, 0);
			zero++;
		}
	}
	race_stop();
	printf("# pool kept busy, 100 ms deadlines: %ld ETIMEDOUT, %ld returned 0 (the submitter "
	       "fell behind)\n",
	       timedout, zero);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * The waiter sleeps
 * ------------------------------------------------------------------------------------------ */

static double thread_cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void idle_waiter_does_not_spin(void **state)
{
	tp_pool *pool = test_pool_new(1);
	double cpu0, wall0, cpu, wall;

	(void)state;
	test_store(&slept_done, 0);
	assert_int_equal(tp_submit(pool, sleep_task, (void *)(intptr_t)200000), 0);
	cpu0 = thread_cpu_ms();
	wall0 = test_now_ms();
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	cpu = thread_cpu_ms() - cpu0;
	wall = test_now_ms() - wall0;
	printf("# waiting %.1f ms for a 200 ms task cost %.2f ms of CPU\n", wall, cpu);
	assert_int_equal(test_load(&slept_done), 1);
	assert_true(wall >= 150);
	assert_true(cpu < 50);
	tp_pool_destroy(pool);
}

/* Context switches, voluntary and not, of this process's threads whose name starts with
 * `prefix` (/proc/self/task/TID/comm and status). */
static long switches_of(const char *prefix)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long sum = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		char path[300], line[256];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(line, sizeof(line), f) == NULL ||
		    strncmp(line, prefix, strlen(prefix)) != 0) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		while (fgets(line, sizeof(line), f) != NULL) {
			long v;

			if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
			    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
				sum += v;
		}
		fclose(f);
	}
	closedir(d);
	return sum;
}

static int nothing(void *arg)
{
	(void)arg;
	return 0;
}

/* Parked workers sleep until work comes: no timed wake-up, in the first idle second or later. */
static void idle_parked_workers_never_wake(void **state)
{
	tp_pool_options opts;
	tp_pool *pool;
	long before, after;

	(void)state;
	tp_pool_options_init(&opts);
	opts.num_threads = 4;
	opts.name = "tpidlechk";
	pool = tp_pool_create_ex(&opts);
	assert_non_null(pool);
	for (int i = 0; i < 2000; i++)
		assert_int_equal(tp_submit(pool, nothing, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	test_sleep_us(50 * 1000); /* every worker parks */
	before = switches_of("tpidlechk");
	test_sleep_us(1200 * 1000);
	after = switches_of("tpidlechk");
	print_message("# parked workers switched %ld times in 1.2 s\n", after - before);
	assert_int_equal(after - before, 0);
	tp_pool_destroy(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(idle_waits_for_everything_forked),
		cmocka_unit_test(idle_waits_for_detached_tasks),
		cmocka_unit_test(idle_waits_for_task_run_by_nohelp),
		cmocka_unit_test(idle_after_cancelled_tasks),
		cmocka_unit_test(idle_pool_returns_at_once),
		cmocka_unit_test(idle_deadline_etimedout),
		cmocka_unit_test(idle_einval),
		cmocka_unit_test(idle_waiter_released_by_shutdown),
		cmocka_unit_test(idle_after_shutdown),
		cmocka_unit_test(idle_edeadlk_inside_the_pool),
		cmocka_unit_test(idle_from_task_of_another_pool),
		cmocka_unit_test(idle_several_waiters),
		cmocka_unit_test(idle_racing_submissions_accepted_before_are_waited_for),
		cmocka_unit_test(idle_pool_kept_busy_waits_until_deadline),
		cmocka_unit_test(idle_waiter_does_not_spin),
		cmocka_unit_test(idle_parked_workers_never_wake),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
