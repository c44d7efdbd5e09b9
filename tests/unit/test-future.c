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

/* ---------------------------------------------------------------------------------------------
 * Deadlines in the past, of any sign
 * ------------------------------------------------------------------------------------------ */

/*
 * A future RUNNING (held by a gate), waited for from outside with deadlines in the past: each
 * wait returns ETIMEDOUT at once, also with tv_sec < 0 (which the futex would refuse: a wait that
 * retried it would spin until the task ended). tv_nsec out of range stays EINVAL. Each wait runs
 * on a thread of its own and must return within 2 s; if one does not, the gate is opened so the
 * thread can end, and the test fails.
 */
static void past_deadlines_time_out_at_once(bool nohelp)
{
	long gate = 0;
	tp_pool *pool = test_pool_new(1);
	tp_future *f = tp_enqueue(pool, wait_gate, &gate);
	struct timespec now, past[6], bad[3] = { { -1, 1000000000L }, { -1, -1 }, { 5, -1 } };
	int rc[6] = { 0 };
	double took[6] = { 0 };
	int hung = -1;

	assert_non_null(f);
	while (tp_future_state(f) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	clock_gettime(CLOCK_MONOTONIC, &now);
	past[0] = (struct timespec){ -1, 0 };
	past[1] = (struct timespec){ -1, 999999999L };
	past[2] = (struct timespec){ -1000000, 5 };
	past[3] = (struct timespec){ 0, 0 };
	past[4] = (struct timespec){ 1, 0 };
	past[5] = (struct timespec){ now.tv_sec - 1, now.tv_nsec };
	for (int i = 0; i < 6 && hung < 0; i++) {
		struct test_wait_call c;
		double t0 = test_now_ms();

		test_wait_call_start(&c, f, &past[i], nohelp);
		if (!test_wait_call_done(&c, 2000)) {
			hung = i;
			test_store(&gate, 1);
			test_wait_call_join(&c);
			break;
		}
		rc[i] = c.rc;
		took[i] = test_now_ms() - t0;
	}
	for (int i = 0; i < 3 && hung < 0; i++)
		assert_int_equal(nohelp ? tp_future_wait_nohelp(f, &bad[i])
					: tp_future_wait_until(f, &bad[i]),
				 EINVAL);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	tp_pool_destroy(pool);
	if (hung >= 0)
		fail_msg("deadline {%lld, %ld}: the wait did not return within 2 s",
			 (long long)past[hung].tv_sec, past[hung].tv_nsec);
	for (int i = 0; i < 6; i++) {
		if (rc[i] != ETIMEDOUT)
			fail_msg("deadline {%lld, %ld}: %d, expected ETIMEDOUT",
				 (long long)past[i].tv_sec, past[i].tv_nsec, rc[i]);
		if (took[i] > 1000)
			fail_msg("deadline {%lld, %ld}: ETIMEDOUT after %.0f ms, not at once",
				 (long long)past[i].tv_sec, past[i].tv_nsec, took[i]);
	}
}

static void future_wait_until_past_deadline_any_sign_etimedout(void **state)
{
	(void)state;
	past_deadlines_time_out_at_once(false);
}

static void future_wait_nohelp_past_deadline_any_sign_etimedout(void **state)
{
	(void)state;
	past_deadlines_time_out_at_once(true);
}

/* The same from a task, on the other worker of a pool of 2, for both waits. */
struct past_inside {
	tp_future *target; /* running on the other worker */
	int rc[2][2];	   /* [deadline][wait_until, nohelp] */
};

static int past_inside_task(void *arg)
{
	struct past_inside *p = arg;
	const struct timespec past[2] = { { -1, 0 }, { 0, 0 } };

	for (int i = 0; i < 2; i++) {
		p->rc[i][0] = tp_future_wait_until(p->target, &past[i]);
		p->rc[i][1] = tp_future_wait_nohelp(p->target, &past[i]);
	}
	return 0;
}

static void future_wait_past_deadline_inside_task_etimedout(void **state)
{
	long gate = 0;
	tp_pool *pool = test_pool_new(2);
	struct past_inside p = { NULL, { { -1, -1 }, { -1, -1 } } };
	tp_future *w;
	struct timespec d;
	int rc;

	(void)state;
	p.target = tp_enqueue(pool, wait_gate, &gate);
	assert_non_null(p.target);
	while (tp_future_state(p.target) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	w = tp_enqueue(pool, past_inside_task, &p);
	assert_non_null(w);
	d = test_deadline_ms(2000);
	rc = tp_future_wait_until(w, &d);
	test_store(&gate, 1); /* also ends a wait that never returned */
	assert_int_equal(tp_future_wait(w), 0);
	assert_int_equal(tp_future_wait(p.target), 0);
	tp_future_release(w);
	tp_future_release(p.target);
	tp_pool_destroy(pool);
	if (rc != 0)
		fail_msg("the waiting task did not return within 2 s");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(p.rc[i][0], ETIMEDOUT);
		assert_int_equal(p.rc[i][1], ETIMEDOUT);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Waiting for an ancestor: a task running lower on the waiter's own stack can never finish
 * while the waiter waits, so the wait is EDEADLK instead of a hang.
 *
 * On a pool of one worker, root task T forks g and h and waits for g (helping): the worker pops
 * h, the newest fork, and runs it on top of T's stack. h waits for T's own future (handed over
 * through shared memory): EDEADLK. Then h waits for a future that finished (its code) and for
 * its sibling g, still pending (run by h's helping wait: its code). T gets g's and h's codes.
 * ------------------------------------------------------------------------------------------ */

enum wait_kind {
	WAIT_PLAIN,  /* tp_future_wait */
	WAIT_UNTIL,  /* tp_future_wait_until, 2 s */
	WAIT_NOHELP, /* tp_future_wait_nohelp, 2 s */
};

static int wait_as(tp_future *f, enum wait_kind kind)
{
	struct timespec d = test_deadline_ms(2000);

	switch (kind) {
	case WAIT_UNTIL:
		return tp_future_wait_until(f, &d);
	case WAIT_NOHELP:
		return tp_future_wait_nohelp(f, &d);
	default:
		return tp_future_wait(f);
	}
}

struct ancestry {
	tp_pool *pool;
	enum wait_kind kind;
	tp_future *root;     /* T's future: stored by the test thread (atomic) */
	tp_future *finished; /* a future of T's that finished before g and h were forked */
	tp_future *g;
	int on_root;	 /* h's wait for T */
	int on_finished; /* h's wait for the finished future */
	int on_g;	 /* h's wait for g */
	int t_on_g, t_on_h;
	int self_wait; /* T's wait for itself (the "self" case) */
};

static tp_future *root_of(struct ancestry *a)
{
	double end = test_now_ms() + 10000;
	tp_future *r;

	while ((r = __atomic_load_n(&a->root, __ATOMIC_ACQUIRE)) == NULL && test_now_ms() < end)
		test_sleep_us(100);
	return r;
}

static int h_task(void *arg)
{
	struct ancestry *a = arg;

	a->on_root = wait_as(a->root, a->kind);
	a->on_finished = tp_future_wait(a->finished);
	a->on_g = tp_future_wait(a->g);
	return 6;
}

static int ancestor_root_task(void *arg)
{
	struct ancestry *a = arg;
	tp_future *h;

	if (root_of(a) == NULL)
		return ETIME;
	a->finished = tp_enqueue(a->pool, return_arg, (void *)4);
	if (a->finished == NULL || tp_future_wait(a->finished) != 4)
		return EIO;
	a->g = tp_enqueue(a->pool, return_arg, (void *)3);
	h = tp_enqueue(a->pool, h_task, a);
	if (a->g == NULL || h == NULL)
		return ENOMEM;
	a->t_on_g = tp_future_wait(a->g);
	a->t_on_h = tp_future_wait(h);
	tp_future_release(h);
	tp_future_release(a->g);
	tp_future_release(a->finished);
	return 0;
}

static int self_root_task(void *arg)
{
	struct ancestry *a = arg;

	if (root_of(a) == NULL)
		return ETIME;
	a->self_wait = wait_as(a->root, a->kind);
	return 0;
}

/* Runs the case on a fresh pool of one worker; 0 if every wait returned what it should, else a
 * code saying which did not (a child process reports it as its exit status). */
static int run_ancestry(enum wait_kind kind, bool self, struct ancestry *a)
{
	tp_future *f;
	int rc;

	memset(a, 0, sizeof(*a));
	a->pool = tp_pool_create(1, NULL);
	a->kind = kind;
	if (a->pool == NULL)
		return 10;
	f = tp_enqueue(a->pool, self ? self_root_task : ancestor_root_task, a);
	if (f == NULL)
		return 11;
	__atomic_store_n(&a->root, f, __ATOMIC_RELEASE);
	rc = tp_future_wait(f);
	tp_future_release(f);
	tp_pool_destroy(a->pool);
	if (rc != 0)
		return 12;
	if (self)
		return a->self_wait == EDEADLK ? 0 : 13;
	if (a->on_root != EDEADLK)
		return 14;
	if (a->on_finished != 4 || a->on_g != 3)
		return 15;
	if (a->t_on_g != 3 || a->t_on_h != 6)
		return 16;
	return 0;
}

static const char *ancestry_text(int code)
{
	switch (code) {
	case 0:
		return "ok";
	case 13:
		return "the task's wait for its own future did not return EDEADLK";
	case 14:
		return "the wait for the ancestor did not return EDEADLK";
	case 15:
		return "a wait for a finished or a pending sibling future went wrong";
	case 16:
		return "the root's waits for its children went wrong";
	case TEST_CHILD_TIMEOUT:
		return "hung: the child was killed after 10 s";
	default:
		return "setup failed";
	}
}

static int ancestry_plain_child(void *arg)
{
	struct ancestry a;

	return run_ancestry(WAIT_PLAIN, arg != NULL, &a);
}

/* tp_future_wait has no deadline: a wait that hangs is caught in a child process, killed after
 * 10 s. */
static void future_wait_for_ancestor_edeadlk(void **state)
{
	int st;

	(void)state;
	st = test_child(ancestry_plain_child, NULL, 10000);
	if (st != 0)
		fail_msg("child status %d: %s", st, ancestry_text(st));
}

static void future_wait_for_own_future_edeadlk(void **state)
{
	int st;

	(void)state;
	st = test_child(ancestry_plain_child, (void *)1, 10000);
	if (st != 0)
		fail_msg("child status %d: %s", st, ancestry_text(st));
}

static void ancestry_timed(enum wait_kind kind)
{
	struct ancestry a;
	double t0 = test_now_ms();
	int code;

	code = run_ancestry(kind, false, &a);
	if (code != 0)
		fail_msg("ancestor: %s (h's wait for T returned %d)", ancestry_text(code),
			 a.on_root);
	assert_true(test_now_ms() - t0 < 1500); /* EDEADLK at once, not at the deadline */
	t0 = test_now_ms();
	code = run_ancestry(kind, true, &a);
	if (code != 0)
		fail_msg("self: %s (returned %d)", ancestry_text(code), a.self_wait);
	assert_true(test_now_ms() - t0 < 1500);
}

static void future_wait_until_for_ancestor_edeadlk(void **state)
{
	(void)state;
	ancestry_timed(WAIT_UNTIL);
}

static void future_wait_nohelp_for_ancestor_edeadlk(void **state)
{
	(void)state;
	ancestry_timed(WAIT_NOHELP);
}

/* No false positive: on a pool of two, a task waits (each way) for a sibling that runs on the
 * other worker at that moment, and gets its code. */
struct sibling {
	tp_pool *pool;
	long started; /* atomic */
	int rc[3];
	int stolen[3];
};

static int sibling_task(void *arg)
{
	struct sibling *s = arg;

	test_store(&s->started, 1);
	test_sleep_us(20000); /* still running when the waiter waits */
	return 8;
}

static int sibling_waiter_task(void *arg)
{
	struct sibling *s = arg;

	for (int k = 0; k < 3; k++) {
		tp_future *f;
		double end = test_now_ms() + 2000;

		test_store(&s->started, 0);
		f = tp_enqueue(s->pool, sibling_task, s);
		if (f == NULL)
			return ENOMEM;
		/* Spin (no helping) until the other worker took it. */
		while (test_load(&s->started) == 0 && test_now_ms() < end)
			;
		s->stolen[k] = test_load(&s->started) != 0;
		s->rc[k] = wait_as(f, (enum wait_kind)k);
		tp_future_release(f);
	}
	return 0;
}

static void future_wait_for_running_sibling_not_edeadlk(void **state)
{
	struct sibling s = { 0 };

	(void)state;
	s.pool = test_pool_new(2);
	assert_int_equal(run_in_pool(s.pool, sibling_waiter_task, &s), 0);
	tp_pool_destroy(s.pool);
	for (int k = 0; k < 3; k++) {
		assert_true(s.stolen[k]);
		assert_int_equal(s.rc[k], 8);
	}
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
		cmocka_unit_test(future_wait_until_past_deadline_any_sign_etimedout),
		cmocka_unit_test(future_wait_nohelp_past_deadline_any_sign_etimedout),
		cmocka_unit_test(future_wait_past_deadline_inside_task_etimedout),
		cmocka_unit_test(future_wait_for_ancestor_edeadlk),
		cmocka_unit_test(future_wait_for_own_future_edeadlk),
		cmocka_unit_test(future_wait_until_for_ancestor_edeadlk),
		cmocka_unit_test(future_wait_nohelp_for_ancestor_edeadlk),
		cmocka_unit_test(future_wait_for_running_sibling_not_edeadlk),
	};

	test_watchdog(115);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
