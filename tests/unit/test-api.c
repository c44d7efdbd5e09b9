/*
 * test-api.c - the public API as a user sees it: linked against the shared library only, every
 * function of include/thread_pool.h called at least once, and bad input on every entry point
 * (NULL handles, out-of-range values, a malformed TP_NUM_THREADS, calls in the wrong state).
 * Each test checks a documented behaviour of the header: the return value, errno, the future's
 * state, and that a refused or failed call had no effect.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers: tasks record what they saw; only the test thread asserts.
 * ------------------------------------------------------------------------------------------ */

static int count_task(void *arg)
{
	test_inc(arg);
	return 0;
}

static int code_task(void *arg)
{
	return (int)(intptr_t)arg;
}

/* A task that holds its worker until the test opens the gate. */
struct gate {
	long started;
	long open;
};

static int gate_task(void *arg)
{
	struct gate *g = arg;

	test_inc(&g->started);
	while (test_load(&g->open) == 0)
		test_sleep_us(100);
	return 0;
}

static void gate_wait_started(struct gate *g)
{
	while (test_load(&g->started) == 0)
		test_sleep_us(100);
}

static void gate_open(struct gate *g)
{
	test_store(&g->open, 1);
}

/* Occupies a worker with gate_task until gate_open(g); returns once it runs. */
static tp_future *hold_worker(tp_pool *pool, struct gate *g)
{
	tp_future *held = tp_enqueue(pool, gate_task, g);

	assert_non_null(held);
	gate_wait_started(g);
	return held;
}

static bool timespec_reached(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* The value of TP_NUM_THREADS when the program started, restored after the env tests. */
static char *saved_num_threads;

static void restore_num_threads(void)
{
	if (saved_num_threads != NULL)
		setenv("TP_NUM_THREADS", saved_num_threads, 1);
	else
		unsetenv("TP_NUM_THREADS");
}

/* ---------------------------------------------------------------------------------------------
 * Pool creation and size
 * ------------------------------------------------------------------------------------------ */

static void api_pool_create_gives_requested_size(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 8 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tp_pool *pool = tp_pool_create(sizes[i], NULL);

		assert_non_null(pool);
		assert_int_equal(tp_pool_size(pool), sizes[i]);
		tp_pool_destroy(pool);
	}
}

static void api_pool_size_null_is_zero(void **state)
{
	(void)state;
	assert_int_equal(tp_pool_size(NULL), 0);
}

static void api_pool_create_above_max_einval(void **state)
{
	(void)state;
	errno = 0;
	assert_null(tp_pool_create(TP_POOL_MAX_THREADS + 1, NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tp_pool_create((size_t)-1, NULL));
	assert_int_equal(errno, EINVAL);
}

static void api_pool_create_env_threads_read_at_each_call(void **state)
{
	tp_pool *pool;

	(void)state;
	assert_int_equal(setenv("TP_NUM_THREADS", "3", 1), 0);
	pool = tp_pool_create(0, NULL);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), 3);
	tp_pool_destroy(pool);

	/* Changed after a first call: the new value counts. */
	assert_int_equal(setenv("TP_NUM_THREADS", "2", 1), 0);
	pool = tp_pool_create(0, NULL);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), 2);
	tp_pool_destroy(pool);

	/* An explicit size wins over the environment. */
	pool = tp_pool_create(1, NULL);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), 1);
	tp_pool_destroy(pool);
	restore_num_threads();
}

static void api_pool_create_default_is_affinity_cpus(void **state)
{
	cpu_set_t all, one;
	tp_pool *pool;
	int first = -1;

	(void)state;
	assert_int_equal(unsetenv("TP_NUM_THREADS"), 0);
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	pool = tp_pool_create(0, NULL);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), (size_t)CPU_COUNT(&all));
	tp_pool_destroy(pool);

	/* Restricted to one CPU: the affinity mask counts, not the CPUs online. */
	if (CPU_COUNT(&all) > 1) {
		for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
			if (CPU_ISSET(c, &all))
				first = c;
		CPU_ZERO(&one);
		CPU_SET(first, &one);
		assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
		pool = tp_pool_create(0, NULL);
		assert_int_equal(sched_setaffinity(0, sizeof(all), &all), 0);
		assert_non_null(pool);
		assert_int_equal(tp_pool_size(pool), 1);
		tp_pool_destroy(pool);
	}
	restore_num_threads();
}

/* ---------------------------------------------------------------------------------------------
 * Enqueue, results, waiting
 * ------------------------------------------------------------------------------------------ */

static void api_enqueue_null_einval(void **state)
{
	long runs = 0;
	tp_pool *pool = tp_pool_create(1, NULL);

	(void)state;
	assert_non_null(pool);
	errno = 0;
	assert_null(tp_enqueue(NULL, count_task, &runs));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tp_enqueue(pool, NULL, &runs));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tp_enqueue(NULL, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	tp_pool_destroy(pool);
	assert_int_equal(test_load(&runs), 0);
}

static void api_task_code_propagates(void **state)
{
	tp_pool *pool = tp_pool_create(2, NULL);
	tp_future *ok, *bad, *after;

	(void)state;
	assert_non_null(pool);
	ok = tp_enqueue(pool, code_task, (void *)0);
	bad = tp_enqueue(pool, code_task, (void *)42);
	assert_non_null(ok);
	assert_non_null(bad);
	assert_int_equal(tp_future_wait(ok), 0);
	assert_int_equal(tp_future_state(ok), TP_FUTURE_DONE);
	assert_int_equal(tp_future_result(ok), 0);
	assert_int_equal(tp_future_wait(bad), 42);
	assert_int_equal(tp_future_state(bad), TP_FUTURE_FAILED);
	assert_int_equal(tp_future_result(bad), 42);
	assert_int_equal(tp_future_wait(bad), 42); /* again: same answer */
	/* A failed task does not harm its worker. */
	after = tp_enqueue(pool, code_task, (void *)0);
	assert_non_null(after);
	assert_int_equal(tp_future_wait(after), 0);
	tp_future_release(ok);
	tp_future_release(bad);
	tp_future_release(after);
	tp_pool_destroy(pool);
}

static void api_future_null_arguments(void **state)
{
	struct timespec d = test_deadline_ms(10);

	(void)state;
	assert_int_equal(tp_future_wait(NULL), EINVAL);
	assert_int_equal(tp_future_wait_until(NULL, &d), EINVAL);
	assert_int_equal(tp_future_wait_until(NULL, NULL), EINVAL);
	assert_false(tp_future_cancel(NULL));
	assert_int_equal(tp_future_state(NULL), TP_FUTURE_CANCELLED);
	assert_int_equal(tp_future_result(NULL), EINVAL);
	assert_null(tp_future_retain(NULL));
	tp_future_release(NULL); /* no-op */
}

static void api_wait_until_bad_deadline_einval(void **state)
{
	struct gate g = { 0 };
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *pending, *done;
	struct timespec neg = test_deadline_ms(1000), big = test_deadline_ms(1000);

	(void)state;
	assert_non_null(pool);
	neg.tv_nsec = -1;
	big.tv_nsec = 1000000000L;
	done = tp_enqueue(pool, code_task, (void *)5);
	assert_non_null(done);
	assert_int_equal(tp_future_wait(done), 5);
	pending = tp_enqueue(pool, gate_task, &g);
	assert_non_null(pending);
	/* Rejected before looking at the future, whatever its state. */
	assert_int_equal(tp_future_wait_until(pending, &neg), EINVAL);
	assert_int_equal(tp_future_wait_until(pending, &big), EINVAL);
	assert_int_equal(tp_future_wait_until(done, &neg), EINVAL);
	assert_int_equal(tp_future_wait_until(done, &big), EINVAL);
	/* The future is unaffected. */
	assert_int_equal(tp_future_result(pending), EBUSY);
	gate_open(&g);
	assert_int_equal(tp_future_wait(pending), 0);
	tp_future_release(pending);
	tp_future_release(done);
	tp_pool_destroy(pool);
}

struct opener {
	struct gate *g;
	long delay_us;
};

static void *open_later(void *arg)
{
	struct opener *o = arg;

	test_sleep_us(o->delay_us);
	gate_open(o->g);
	return NULL;
}

static void api_wait_until_times_out_then_completes(void **state)
{
	struct gate g = { 0 };
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *f;
	struct timespec d, past = { 0, 0 };
	struct opener o = { &g, 20000 };
	pthread_t t;

	(void)state;
	assert_non_null(pool);
	f = tp_enqueue(pool, gate_task, &g);
	assert_non_null(f);
	gate_wait_started(&g);
	assert_int_equal(tp_future_state(f), TP_FUTURE_RUNNING);
	assert_int_equal(tp_future_result(f), EBUSY);
	/* A deadline already past: ETIMEDOUT at once. */
	assert_int_equal(tp_future_wait_until(f, &past), ETIMEDOUT);
	/* A short deadline: ETIMEDOUT, not before the deadline, and the future is unaffected. */
	d = test_deadline_ms(30);
	assert_int_equal(tp_future_wait_until(f, &d), ETIMEDOUT);
	assert_true(timespec_reached(&d));
	assert_int_equal(tp_future_state(f), TP_FUTURE_RUNNING);
	/* deadline == NULL waits until the task finishes. */
	assert_int_equal(pthread_create(&t, NULL, open_later, &o), 0);
	assert_int_equal(tp_future_wait_until(f, NULL), 0);
	pthread_join(t, NULL);
	assert_int_equal(tp_future_state(f), TP_FUTURE_DONE);
	/* A final future answers at once, whatever the deadline. */
	assert_int_equal(tp_future_wait_until(f, &past), 0);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

/* The waiter outside the pool never runs the task: with the only worker held, it must time out. */
struct who {
	pthread_t thread;
	long ran;
};

static int record_thread(void *arg)
{
	struct who *w = arg;

	w->thread = pthread_self();
	test_inc(&w->ran);
	return 0;
}

static void api_wait_outside_never_runs_task(void **state)
{
	struct gate g = { 0 };
	struct who w = { 0 };
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *held, *f;
	struct timespec d;

	(void)state;
	assert_non_null(pool);
	held = hold_worker(pool, &g);
	f = tp_enqueue(pool, record_thread, &w);
	assert_non_null(f);
	assert_int_equal(tp_future_state(f), TP_FUTURE_PENDING);
	assert_int_equal(tp_future_result(f), EBUSY);
	d = test_deadline_ms(50);
	assert_int_equal(tp_future_wait_until(f, &d), ETIMEDOUT);
	assert_int_equal(test_load(&w.ran), 0);
	assert_int_equal(tp_future_state(f), TP_FUTURE_PENDING);
	gate_open(&g);
	assert_int_equal(tp_future_wait(f), 0);
	assert_int_equal(test_load(&w.ran), 1);
	assert_false(pthread_equal(w.thread, pthread_self()));
	tp_future_release(f);
	tp_future_release(held);
	tp_pool_destroy(pool);
}

/* A fork from inside a task, waited on inside the task, on a pool of ONE thread. */
struct forker {
	tp_pool *pool;
	int child_code;
	long child_null;
};

static int fork_and_wait(void *arg)
{
	struct forker *fk = arg;
	tp_future *child = tp_enqueue(fk->pool, code_task, (void *)(intptr_t)fk->child_code);
	int rc;

	if (child == NULL) {
		test_inc(&fk->child_null);
		return -1;
	}
	rc = tp_future_wait(child);
	tp_future_release(child);
	return rc;
}

static void api_enqueue_from_task_forks(void **state)
{
	struct forker fk = { NULL, 7, 0 };
	tp_future *f;

	(void)state;
	fk.pool = tp_pool_create(1, NULL);
	assert_non_null(fk.pool);
	f = tp_enqueue(fk.pool, fork_and_wait, &fk);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 7);
	assert_int_equal(test_load(&fk.child_null), 0);
	tp_future_release(f);
	tp_pool_destroy(fk.pool);
}

/* ---------------------------------------------------------------------------------------------
 * Cancellation
 * ------------------------------------------------------------------------------------------ */

static void api_cancel_before_start(void **state)
{
	struct gate g = { 0 };
	long runs = 0;
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *held, *victim;

	(void)state;
	assert_non_null(pool);
	held = hold_worker(pool, &g);
	victim = tp_enqueue(pool, count_task, &runs);
	assert_non_null(victim);
	/* Running: not affected. */
	assert_false(tp_future_cancel(held));
	assert_int_equal(tp_future_state(held), TP_FUTURE_RUNNING);
	/* Pending: cancelled, and again true. */
	assert_true(tp_future_cancel(victim));
	assert_true(tp_future_cancel(victim));
	assert_int_equal(tp_future_state(victim), TP_FUTURE_CANCELLED);
	assert_int_equal(tp_future_result(victim), ECANCELED);
	assert_int_equal(tp_future_wait(victim), ECANCELED);
	gate_open(&g);
	assert_int_equal(tp_future_wait(held), 0);
	/* Finished: not affected. */
	assert_false(tp_future_cancel(held));
	assert_int_equal(tp_future_state(held), TP_FUTURE_DONE);
	tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN);
	assert_int_equal(test_load(&runs), 0); /* the cancelled task never ran */
	tp_future_release(victim);
	tp_future_release(held);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Shutdown and destroy
 * ------------------------------------------------------------------------------------------ */

static void api_shutdown_bad_input_einval(void **state)
{
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *f;

	(void)state;
	assert_non_null(pool);
	assert_int_equal(tp_pool_shutdown(NULL, TP_SHUTDOWN_DRAIN), EINVAL);
	assert_int_equal(tp_pool_shutdown(NULL, (tp_shutdown_mode)7), EINVAL);
	assert_int_equal(tp_pool_shutdown(pool, (tp_shutdown_mode)7), EINVAL);
	assert_int_equal(tp_pool_shutdown(pool, (tp_shutdown_mode)-1), EINVAL);
	/* No effect: the pool still accepts and runs tasks. */
	f = tp_enqueue(pool, code_task, (void *)3);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 3);
	tp_future_release(f);
	tp_pool_destroy(NULL); /* no-op */
	tp_pool_destroy(pool);
}

static void api_enqueue_after_shutdown_eshutdown(void **state)
{
	long runs = 0;
	tp_pool *pool = tp_pool_create(2, NULL);

	(void)state;
	assert_non_null(pool);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	errno = 0;
	assert_null(tp_enqueue(pool, count_task, &runs));
	assert_int_equal(errno, ESHUTDOWN);
	/* Idempotent, also with the other mode; bad input is still EINVAL. */
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	assert_int_equal(tp_pool_shutdown(pool, (tp_shutdown_mode)7), EINVAL);
	errno = 0;
	assert_null(tp_enqueue(pool, count_task, &runs));
	assert_int_equal(errno, ESHUTDOWN);
	errno = 0;
	assert_null(tp_enqueue(pool, NULL, &runs));
	assert_int_equal(errno, EINVAL);
	assert_int_equal(tp_pool_size(pool), 2);
	tp_pool_destroy(pool);
	assert_int_equal(runs, 0);
}

static void api_shutdown_drain_runs_pending(void **state)
{
	enum {
		N = 64
	};
	long runs = 0;
	tp_pool *pool = tp_pool_create(2, NULL);
	tp_future *f[N];

	(void)state;
	assert_non_null(pool);
	for (int i = 0; i < N; i++) {
		f[i] = tp_enqueue(pool, count_task, &runs);
		assert_non_null(f[i]);
	}
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	/* Returned: every accepted task has run, every future is final. */
	assert_int_equal(test_load(&runs), N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(tp_future_state(f[i]), TP_FUTURE_DONE);
		tp_future_release(f[i]);
	}
	tp_pool_destroy(pool);
}

struct canceller {
	tp_pool *pool;
	int rc;
};

static void *shutdown_cancel_thread(void *arg)
{
	struct canceller *c = arg;

	c->rc = tp_pool_shutdown(c->pool, TP_SHUTDOWN_CANCEL);
	return NULL;
}

static void api_shutdown_cancel_cancels_pending(void **state)
{
	enum {
		N = 16
	};
	struct gate g = { 0 };
	long runs = 0, probes = 0;
	struct canceller c = { NULL, -1 };
	tp_future *held, *f[N];
	pthread_t t;

	(void)state;
	c.pool = tp_pool_create(1, NULL);
	assert_non_null(c.pool);
	held = tp_enqueue(c.pool, gate_task, &g);
	assert_non_null(held);
	gate_wait_started(&g);
	for (int i = 0; i < N; i++) {
		f[i] = tp_enqueue(c.pool, count_task, &runs);
		assert_non_null(f[i]);
	}
	assert_int_equal(pthread_create(&t, NULL, shutdown_cancel_thread, &c), 0);
	/* Wait until the shutdown refuses new tasks (accepted probes are pending behind the gate,
	 * so they are cancelled too), then let the running task finish. */
	for (;;) {
		tp_future *p = tp_enqueue(c.pool, count_task, &probes);

		if (p == NULL) {
			assert_int_equal(errno, ESHUTDOWN);
			break;
		}
		tp_future_release(p);
		test_sleep_us(200);
	}
	test_sleep_us(10000);
	gate_open(&g);
	pthread_join(t, NULL);
	assert_int_equal(c.rc, 0);
	/* The running task finished; the pending ones never ran. */
	assert_int_equal(tp_future_state(held), TP_FUTURE_DONE);
	assert_int_equal(test_load(&runs), 0);
	assert_int_equal(test_load(&probes), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(tp_future_state(f[i]), TP_FUTURE_CANCELLED);
		assert_int_equal(tp_future_wait(f[i]), ECANCELED);
		assert_int_equal(tp_future_result(f[i]), ECANCELED);
		tp_future_release(f[i]);
	}
	tp_future_release(held);
	tp_pool_destroy(c.pool);
}

/* Shutdown and destroy from inside a task: EDEADLK / nothing, and the pool keeps working. */
struct inside {
	tp_pool *pool;
	int drain_rc, cancel_rc;
	int child_rc;
};

static int shutdown_from_inside(void *arg)
{
	struct inside *in = arg;
	tp_future *child;

	in->drain_rc = tp_pool_shutdown(in->pool, TP_SHUTDOWN_DRAIN);
	in->cancel_rc = tp_pool_shutdown(in->pool, TP_SHUTDOWN_CANCEL);
	tp_pool_destroy(in->pool); /* documented: does nothing from a task */
	/* The pool is not shutting down: a fork is accepted and runs. */
	child = tp_enqueue(in->pool, code_task, (void *)9);
	in->child_rc = child != NULL ? tp_future_wait(child) : -1;
	tp_future_release(child);
	return 0;
}

static void api_shutdown_from_task_edeadlk(void **state)
{
	tp_logger *quiet = tp_logger_create(TP_LOG_OFF); /* destroy from a task logs an error */
	struct inside in = { NULL, -1, -1, -1 };
	tp_future *f, *after;

	(void)state;
	assert_non_null(quiet);
	in.pool = tp_pool_create(2, quiet);
	assert_non_null(in.pool);
	f = tp_enqueue(in.pool, shutdown_from_inside, &in);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 0);
	assert_int_equal(in.drain_rc, EDEADLK);
	assert_int_equal(in.cancel_rc, EDEADLK);
	assert_int_equal(in.child_rc, 9);
	/* Still accepting from outside, then a real shutdown works. */
	after = tp_enqueue(in.pool, code_task, (void *)4);
	assert_non_null(after);
	assert_int_equal(tp_future_wait(after), 4);
	assert_int_equal(tp_pool_shutdown(in.pool, TP_SHUTDOWN_DRAIN), 0);
	tp_future_release(f);
	tp_future_release(after);
	tp_pool_destroy(in.pool);
	tp_logger_destroy(quiet);
}

/* ---------------------------------------------------------------------------------------------
 * References: retain/release, release before the task ran, release after the pool is gone
 * ------------------------------------------------------------------------------------------ */

static void api_retain_then_two_releases(void **state)
{
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *f, *g;

	(void)state;
	assert_non_null(pool);
	f = tp_enqueue(pool, code_task, (void *)11);
	assert_non_null(f);
	g = tp_future_retain(f);
	assert_ptr_equal(g, f);
	tp_future_release(f);
	/* The second reference keeps the future valid. */
	assert_int_equal(tp_future_wait(g), 11);
	assert_int_equal(tp_future_state(g), TP_FUTURE_FAILED);
	assert_int_equal(tp_future_result(g), 11);
	tp_future_release(g);
	tp_pool_destroy(pool);
}

static void api_release_before_task_ran(void **state)
{
	struct gate g = { 0 };
	long runs = 0;
	tp_pool *pool = tp_pool_create(1, NULL);
	tp_future *held, *f;

	(void)state;
	assert_non_null(pool);
	held = hold_worker(pool, &g);
	f = tp_enqueue(pool, count_task, &runs);
	assert_non_null(f);
	tp_future_release(f); /* still pending: the task must run anyway */
	assert_int_equal(test_load(&runs), 0);
	gate_open(&g);
	tp_future_release(held);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(test_load(&runs), 1);
	tp_pool_destroy(pool);
}

static int jitter_count_task(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)&rng;

	test_jitter(&rng);
	test_inc(arg);
	return 0;
}

static void api_future_outlives_pool(void **state)
{
	enum {
		N = 50
	};
	struct gate g = { 0 };
	long runs = 0, cancelled_runs = 0;
	tp_pool *pool = tp_pool_create(2, NULL);
	tp_future *f[N], *held, *c[N];

	(void)state;
	assert_non_null(pool);
	/* Destroy drains: the futures are final afterwards and still readable. */
	for (int i = 0; i < N; i++) {
		f[i] = tp_enqueue(pool, jitter_count_task, &runs);
		assert_non_null(f[i]);
	}
	tp_pool_destroy(pool);
	assert_int_equal(test_load(&runs), N);
	for (int i = 0; i < N; i++) {
		assert_int_equal(tp_future_state(f[i]), TP_FUTURE_DONE);
		assert_int_equal(tp_future_result(f[i]), 0);
		assert_int_equal(tp_future_wait(f[i]), 0);
		assert_false(tp_future_cancel(f[i]));
		tp_future_release(f[i]);
	}

	/* Cancelled by a CANCEL shutdown, then destroyed: still readable, then released. */
	pool = tp_pool_create(1, NULL);
	assert_non_null(pool);
	held = hold_worker(pool, &g);
	for (int i = 0; i < N; i++) {
		c[i] = tp_enqueue(pool, count_task, &cancelled_runs);
		assert_non_null(c[i]);
	}
	gate_open(&g);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(tp_future_state(held), TP_FUTURE_DONE);
	tp_future_release(held);
	for (int i = 0; i < N; i++) {
		tp_future_status s = tp_future_state(c[i]);

		/* Unless the worker started it between the gate and the shutdown. */
		assert_true(s == TP_FUTURE_CANCELLED || s == TP_FUTURE_DONE);
		assert_int_equal(tp_future_wait(c[i]), s == TP_FUTURE_DONE ? 0 : ECANCELED);
		assert_int_equal(tp_future_result(c[i]), s == TP_FUTURE_DONE ? 0 : ECANCELED);
	}
	{
		long done = 0;

		for (int i = 0; i < N; i++)
			done += tp_future_state(c[i]) == TP_FUTURE_DONE;
		assert_int_equal(test_load(&cancelled_runs), done);
	}
	for (int i = 0; i < N; i++)
		tp_future_release(c[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Logger
 * ------------------------------------------------------------------------------------------ */

/* A sink that keeps the last line; the logger serialises its calls. */
struct capture {
	int lines;
	int bad;	 /* a line that was not whole: one '\n', at the end, no NUL */
	int by_level[5]; /* DEBUG, INFO, WARNING, ERROR, other */
	tp_log_level last_level;
	char last[2048];
};

static void capture_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct capture *c = user;
	int k;

	c->lines++;
	if (len == 0 || line[len - 1] != '\n' || memchr(line, '\0', len) != NULL ||
	    memchr(line, '\n', len) != line + len - 1)
		c->bad++;
	switch (level) {
	case TP_LOG_DEBUG:
		k = 0;
		break;
	case TP_LOG_INFO:
		k = 1;
		break;
	case TP_LOG_WARNING:
		k = 2;
		break;
	case TP_LOG_ERROR:
		k = 3;
		break;
	default:
		k = 4;
		break;
	}
	c->by_level[k]++;
	c->last_level = level;
	snprintf(c->last, sizeof(c->last), "%.*s", (int)len, line);
}

/* A malformed TP_NUM_THREADS is ignored (one warning on the pool's logger): one worker per CPU,
 * never EINVAL. "0" means one per CPU as well, silently. */
static void api_pool_create_env_threads_malformed_ignored(void **state)
{
	static const char *const bad[] = { "abc", "-1", "3abc", "1025", "+2" };
	struct capture c = { 0 };
	tp_logger *lg = tp_logger_create(TP_LOG_WARNING);
	cpu_set_t all;
	tp_pool *pool;

	(void)state;
	assert_non_null(lg);
	assert_int_equal(tp_logger_set_sink(lg, capture_sink, &c), 0);
	assert_int_equal(sched_getaffinity(0, sizeof(all), &all), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int before = c.lines;

		assert_int_equal(setenv("TP_NUM_THREADS", bad[i], 1), 0);
		errno = 0;
		pool = tp_pool_create(0, lg);
		if (pool == NULL)
			fail_msg("TP_NUM_THREADS=\"%s\": refused, errno %d", bad[i], errno);
		assert_int_equal(tp_pool_size(pool), (size_t)CPU_COUNT(&all));
		tp_pool_destroy(pool);
		if (c.lines != before + 1 || strstr(c.last, "TP_NUM_THREADS") == NULL ||
		    strstr(c.last, bad[i]) == NULL)
			fail_msg("TP_NUM_THREADS=\"%s\": expected one warning naming it", bad[i]);
	}
	assert_int_equal(setenv("TP_NUM_THREADS", "0", 1), 0);
	pool = tp_pool_create(0, lg);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), (size_t)CPU_COUNT(&all));
	tp_pool_destroy(pool);
	assert_int_equal(c.lines, (int)(sizeof(bad) / sizeof(bad[0])));
	assert_int_equal(c.bad, 0);
	restore_num_threads();
	tp_logger_destroy(lg);
}

static void api_log_level_parse(void **state)
{
	static const struct {
		const char *text;
		tp_log_level level;
	} good[] = {
		{ "debug", TP_LOG_DEBUG }, { "INFO", TP_LOG_INFO },  { "Warning", TP_LOG_WARNING },
		{ "error", TP_LOG_ERROR }, { "off", TP_LOG_OFF },    { "10", TP_LOG_DEBUG },
		{ "20", TP_LOG_INFO },	   { "30", TP_LOG_WARNING }, { "40", TP_LOG_ERROR },
		{ "100", TP_LOG_OFF },
	};
	static const char *const bad[] = { "", "verbose", "15", "-10", "warn ing", "101" };
	tp_log_level out;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		out = (tp_log_level)-1;
		assert_int_equal(tp_log_level_parse(good[i].text, &out), 0);
		assert_int_equal(out, good[i].level);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = (tp_log_level)-1;
		if (tp_log_level_parse(bad[i], &out) != EINVAL)
			fail_msg("\"%s\" parsed as a level", bad[i]);
		assert_int_equal(out, (tp_log_level)-1); /* no effect */
	}
	assert_int_equal(tp_log_level_parse(NULL, &out), EINVAL);
	assert_int_equal(tp_log_level_parse("info", NULL), EINVAL);
}

static void api_logger_create_and_levels(void **state)
{
	tp_logger *lg;

	(void)state;
	errno = 0;
	assert_null(tp_logger_create((tp_log_level)15));
	assert_int_equal(errno, EINVAL);
	lg = tp_logger_create(TP_LOG_INFO);
	assert_non_null(lg);
	assert_int_equal(tp_logger_get_level(lg), TP_LOG_INFO);
	assert_false(tp_logger_enabled(lg, TP_LOG_DEBUG));
	assert_true(tp_logger_enabled(lg, TP_LOG_INFO));
	assert_true(tp_logger_enabled(lg, TP_LOG_ERROR));
	assert_int_equal(tp_logger_set_level(lg, TP_LOG_ERROR), 0);
	assert_int_equal(tp_logger_get_level(lg), TP_LOG_ERROR);
	assert_false(tp_logger_enabled(lg, TP_LOG_WARNING));
	assert_true(tp_logger_enabled(lg, TP_LOG_ERROR));
	/* Bad level: EINVAL, threshold unchanged. */
	assert_int_equal(tp_logger_set_level(lg, (tp_log_level)33), EINVAL);
	assert_int_equal(tp_logger_get_level(lg), TP_LOG_ERROR);
	assert_int_equal(tp_logger_set_level(lg, TP_LOG_OFF), 0);
	assert_false(tp_logger_enabled(lg, TP_LOG_ERROR));
	assert_int_equal(tp_logger_set_level(lg, TP_LOG_DEBUG), 0);
	assert_true(tp_logger_enabled(lg, TP_LOG_DEBUG));
	/* NULL logger. */
	assert_int_equal(tp_logger_set_level(NULL, TP_LOG_INFO), EINVAL);
	assert_int_equal(tp_logger_get_level(NULL), TP_LOG_OFF);
	assert_false(tp_logger_enabled(NULL, TP_LOG_ERROR));
	assert_int_equal(tp_logger_set_sink(NULL, capture_sink, NULL), EINVAL);
	assert_int_equal(tp_logger_set_file(NULL, stderr), EINVAL);
	tp_logger_destroy(lg);
	tp_logger_destroy(NULL); /* no-op */
}

static long evaluated;

static int side_effect(void)
{
	return (int)++evaluated;
}

static void logv_helper(tp_logger *lg, tp_log_level level, const char *file, int line,
			const char *func, const char *fmt, ...) TP_PRINTF(6, 7);

static void logv_helper(tp_logger *lg, tp_log_level level, const char *file, int line,
			const char *func, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tp_log_atv(lg, level, file, line, func, fmt, ap);
	va_end(ap);
}

static void api_logger_sink_gets_whole_lines(void **state)
{
	struct capture c = { 0 };
	tp_logger *lg = tp_logger_create(TP_LOG_INFO);

	(void)state;
	assert_non_null(lg);
	assert_int_equal(tp_logger_set_sink(lg, capture_sink, &c), 0);

	tp_log(lg, TP_LOG_WARNING, "hello %d %s", 42, "world");
	assert_int_equal(c.lines, 1);
	assert_int_equal(c.last_level, TP_LOG_WARNING);
	assert_non_null(strstr(c.last, "hello 42 world"));
	assert_non_null(strstr(c.last, "WARNING"));

	/* Below the threshold: dropped. */
	tp_log(lg, TP_LOG_DEBUG, "dropped");
	assert_int_equal(c.lines, 1);

	/* TP_LOG adds file:line and function; its arguments are not evaluated when filtered. */
	evaluated = 0;
	TP_LOG(lg, TP_LOG_DEBUG, "filtered %d", side_effect());
	assert_int_equal(evaluated, 0);
	assert_int_equal(c.lines, 1);
	TP_LOG(lg, TP_LOG_ERROR, "macro %d", side_effect());
	assert_int_equal(evaluated, 1);
	assert_int_equal(c.lines, 2);
	assert_int_equal(c.last_level, TP_LOG_ERROR);
	assert_non_null(strstr(c.last, "macro 1"));
	assert_non_null(strstr(c.last, "test-api.c:"));
	assert_non_null(strstr(c.last, "api_logger_sink_gets_whole_lines"));

	/* tp_log_at and tp_log_atv with a location; tp_log_atv without one. */
	tp_log_at(lg, TP_LOG_INFO, "dir/somefile.c", 123, "somefunc", "at %s", "x");
	assert_int_equal(c.lines, 3);
	assert_non_null(strstr(c.last, "somefile.c:123"));
	assert_non_null(strstr(c.last, "somefunc"));
	assert_non_null(strstr(c.last, "at x"));
	logv_helper(lg, TP_LOG_INFO, "other.c", 7, "otherfunc", "atv %d", 5);
	assert_int_equal(c.lines, 4);
	assert_non_null(strstr(c.last, "other.c:7"));
	assert_non_null(strstr(c.last, "otherfunc"));
	assert_non_null(strstr(c.last, "atv 5"));
	logv_helper(lg, TP_LOG_INFO, NULL, 0, NULL, "bare %s", "line");
	assert_int_equal(c.lines, 5);
	assert_non_null(strstr(c.last, "bare line"));
	assert_null(strstr(c.last, "(null)"));
	logv_helper(lg, TP_LOG_DEBUG, NULL, 0, NULL, "dropped %d", 1);
	assert_int_equal(c.lines, 5);

	/* A very long message still arrives as one whole line. */
	{
		char big[4096];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		tp_log(lg, TP_LOG_ERROR, "%s", big);
		assert_int_equal(c.lines, 6);
		assert_true(strlen(c.last) <= 1023); /* cut, and marked "..." */
		assert_non_null(strstr(c.last, "...\n"));
	}
	assert_int_equal(c.bad, 0);

	/* sink == NULL restores stderr: the old sink gets nothing more. */
	assert_int_equal(tp_logger_set_level(lg, TP_LOG_OFF), 0);
	assert_int_equal(tp_logger_set_sink(lg, NULL, NULL), 0);
	tp_log(lg, TP_LOG_ERROR, "to nowhere");
	assert_int_equal(c.lines, 6);
	tp_logger_destroy(lg);
}

static void api_logger_file(void **state)
{
	tp_logger *lg = tp_logger_create(TP_LOG_DEBUG);
	FILE *f = tmpfile();
	char line[2048];
	long size;

	(void)state;
	assert_non_null(lg);
	assert_non_null(f);
	assert_int_equal(tp_logger_set_file(lg, f), 0);
	tp_log(lg, TP_LOG_DEBUG, "to the file %d", 1);
	tp_log(lg, TP_LOG_INFO, "second");
	size = ftell(f);
	assert_true(size > 0);
	rewind(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "to the file 1"));
	assert_non_null(strstr(line, "DEBUG"));
	assert_int_equal(line[strlen(line) - 1], '\n');
	assert_non_null(fgets(line, sizeof(line), f));
	assert_non_null(strstr(line, "second"));
	assert_null(fgets(line, sizeof(line), f));
	/* file == NULL restores stderr: nothing more reaches the file (quiet threshold). */
	assert_int_equal(tp_logger_set_file(lg, NULL), 0);
	assert_int_equal(tp_logger_set_level(lg, TP_LOG_OFF), 0);
	tp_log(lg, TP_LOG_ERROR, "not in the file");
	fseek(f, 0, SEEK_END);
	assert_int_equal(ftell(f), size);
	tp_logger_destroy(lg);
	fclose(f);
}

static void api_logger_singleton(void **state)
{
	tp_logger *s = tp_logger_get_instance();
	const char *env = getenv("TP_LOG_LEVEL");
	tp_log_level expected = TP_LOG_WARNING, before;
	struct capture c = { 0 };

	(void)state;
	assert_non_null(s);
	assert_ptr_equal(tp_logger_get_instance(), s);
	if (env != NULL && tp_log_level_parse(env, &expected) != 0)
		expected = TP_LOG_WARNING;
	before = tp_logger_get_level(s);
	assert_int_equal(before, expected);
	tp_logger_destroy(s); /* a no-op for the singleton */
	assert_ptr_equal(tp_logger_get_instance(), s);

	/* logger == NULL means the singleton, for tp_log, tp_log_at and TP_LOG. */
	assert_int_equal(tp_logger_set_sink(s, capture_sink, &c), 0);
	assert_int_equal(tp_logger_set_level(s, TP_LOG_INFO), 0);
	tp_log(NULL, TP_LOG_INFO, "via null %d", 1);
	assert_int_equal(c.lines, 1);
	assert_non_null(strstr(c.last, "via null 1"));
	tp_log_at(NULL, TP_LOG_WARNING, "f.c", 1, "fn", "at null");
	assert_int_equal(c.lines, 2);
	assert_non_null(strstr(c.last, "at null"));
	TP_LOG(NULL, TP_LOG_ERROR, "macro null");
	assert_int_equal(c.lines, 3);
	assert_non_null(strstr(c.last, "macro null"));
	TP_LOG(NULL, TP_LOG_DEBUG, "filtered");
	assert_int_equal(c.lines, 3);
	assert_int_equal(c.bad, 0);
	assert_int_equal(tp_logger_set_level(s, before), 0);
	assert_int_equal(tp_logger_set_sink(s, NULL, NULL), 0);
}

/* The pool logs its life cycle at INFO, per-task events only at DEBUG, nothing above INFO. */
static void run_pool_with_logger(tp_logger *lg, int tasks)
{
	tp_pool *pool = tp_pool_create(2, lg);

	assert_non_null(pool);
	for (int i = 0; i < tasks; i++) {
		tp_future *f = tp_enqueue(pool, code_task, (void *)0);

		assert_non_null(f);
		assert_int_equal(tp_future_wait(f), 0);
		tp_future_release(f);
	}
	tp_pool_destroy(pool);
}

static void api_pool_logs_life_cycle_at_info(void **state)
{
	struct capture warn = { 0 }, info = { 0 }, debug = { 0 };
	tp_logger *lg = tp_logger_create(TP_LOG_WARNING);

	(void)state;
	assert_non_null(lg);
	assert_int_equal(tp_logger_set_sink(lg, capture_sink, &warn), 0);
	run_pool_with_logger(lg, 100);
	assert_int_equal(warn.lines, 0);

	assert_int_equal(tp_logger_set_level(lg, TP_LOG_INFO), 0);
	assert_int_equal(tp_logger_set_sink(lg, capture_sink, &info), 0);
	run_pool_with_logger(lg, 100);
	assert_true(info.lines >= 1);
	assert_true(info.lines < 10); /* not one per task */
	assert_int_equal(info.by_level[0], 0);

	assert_int_equal(tp_logger_set_level(lg, TP_LOG_DEBUG), 0);
	assert_int_equal(tp_logger_set_sink(lg, capture_sink, &debug), 0);
	run_pool_with_logger(lg, 100);
	/* A lower threshold shows at least as much. */
	assert_true(debug.lines >= info.lines);
	assert_int_equal(debug.bad + info.bad, 0);
	tp_logger_destroy(lg); /* after the pool: the logger outlives it */
}

int main(void)
{
	const char *env = getenv("TP_NUM_THREADS");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(api_pool_create_gives_requested_size),
		cmocka_unit_test(api_pool_size_null_is_zero),
		cmocka_unit_test(api_pool_create_above_max_einval),
		cmocka_unit_test(api_pool_create_env_threads_read_at_each_call),
		cmocka_unit_test(api_pool_create_env_threads_malformed_ignored),
		cmocka_unit_test(api_pool_create_default_is_affinity_cpus),
		cmocka_unit_test(api_enqueue_null_einval),
		cmocka_unit_test(api_task_code_propagates),
		cmocka_unit_test(api_future_null_arguments),
		cmocka_unit_test(api_wait_until_bad_deadline_einval),
		cmocka_unit_test(api_wait_until_times_out_then_completes),
		cmocka_unit_test(api_wait_outside_never_runs_task),
		cmocka_unit_test(api_enqueue_from_task_forks),
		cmocka_unit_test(api_cancel_before_start),
		cmocka_unit_test(api_shutdown_bad_input_einval),
		cmocka_unit_test(api_enqueue_after_shutdown_eshutdown),
		cmocka_unit_test(api_shutdown_drain_runs_pending),
		cmocka_unit_test(api_shutdown_cancel_cancels_pending),
		cmocka_unit_test(api_shutdown_from_task_edeadlk),
		cmocka_unit_test(api_retain_then_two_releases),
		cmocka_unit_test(api_release_before_task_ran),
		cmocka_unit_test(api_future_outlives_pool),
		cmocka_unit_test(api_log_level_parse),
		cmocka_unit_test(api_logger_create_and_levels),
		cmocka_unit_test(api_logger_sink_gets_whole_lines),
		cmocka_unit_test(api_logger_file),
		cmocka_unit_test(api_logger_singleton),
		cmocka_unit_test(api_pool_logs_life_cycle_at_info),
	};

	saved_num_threads = env != NULL ? strdup(env) : NULL;
	/* Read TP_LOG_LEVEL before any thread exists (setenv below is not thread-safe). */
	(void)tp_logger_get_instance();
	test_watchdog(55);
	{
		int rc = cmocka_run_group_tests(tests, NULL, NULL);

		free(saved_num_threads);
		return rc;
	}
}
