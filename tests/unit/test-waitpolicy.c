/*
 * test-waitpolicy.c - what a waiting thread may run (the "waiting policy" of thread_pool.h).
 *
 * The trap (rayon, TileDB): a task holds a lock and waits for a child; a waiter that helps runs
 * some unrelated pending task on its own stack, that task needs the same lock, and the thread
 * deadlocks on itself (or, with a recursive lock, breaks the critical section). The header
 * promises:
 *  - tp_future_wait_nohelp() runs nothing but the awaited task (it claims it if not started);
 *  - tp_join() runs only the joined task's relatives, never unrelated work;
 *  - loops wait like tp_join().
 *
 * Detection: the lock M is an error-checking pthread mutex, so an unrelated task U that locks it
 * on the thread that already holds it gets EDEADLK instead of hanging; the holder also sets a
 * thread-local "holding M" flag that U checks. Either one counts as a violation. U uses a timed
 * lock so that a liveness failure is reported instead of hanging the test.
 *
 * cmocka is not thread-safe: tasks record into atomics; the test thread asserts after waiting.
 */
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

/* Waits (polling) until *p != 0 or `ms` pass; returns whether it became non-zero. */
static bool await_flag(const long *p, double ms)
{
	double t0 = test_now_ms();

	while (test_load(p) == 0) {
		if (test_now_ms() - t0 > ms)
			return false;
		test_sleep_us(50);
	}
	return true;
}

static void wait_ok(tp_future *f, long ms)
{
	struct timespec d = test_deadline_ms(ms);

	assert_non_null(f);
	assert_int_equal(tp_future_wait_until(f, &d), 0);
}

/* ---------------------------------------------------------------------------------------------
 * The lock M, and the unrelated task U that needs it
 * ------------------------------------------------------------------------------------------ */

static _Thread_local bool holding_m; /* set by a task while it holds M */

struct lockcase {
	pthread_mutex_t m; /* error-checking */
	long violations;   /* atomic: U ran on a thread while that thread held M */
	long u_timeouts;   /* atomic: U could not get M within 5 s (the holder never finished) */
	long u_runs;	   /* atomic */
};

static void lockcase_init(struct lockcase *lc)
{
	pthread_mutexattr_t a;

	memset(lc, 0, sizeof(*lc));
	assert_int_equal(pthread_mutexattr_init(&a), 0);
	assert_int_equal(pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK), 0);
	assert_int_equal(pthread_mutex_init(&lc->m, &a), 0);
	pthread_mutexattr_destroy(&a);
}

static void lock_m(struct lockcase *lc)
{
	pthread_mutex_lock(&lc->m);
	holding_m = true;
}

static void unlock_m(struct lockcase *lc)
{
	holding_m = false;
	pthread_mutex_unlock(&lc->m);
}

/* The unrelated task: needs M for a moment. */
static int u_task(void *arg)
{
	struct lockcase *lc = arg;
	struct timespec d;
	int rc;

	if (holding_m)
		test_inc(&lc->violations);
	clock_gettime(CLOCK_REALTIME, &d);
	d.tv_sec += 5;
	rc = pthread_mutex_timedlock(&lc->m, &d);
	if (rc == 0)
		pthread_mutex_unlock(&lc->m);
	else if (rc == EDEADLK)
		test_inc(&lc->violations); /* this thread already holds M */
	else
		test_inc(&lc->u_timeouts);
	test_inc(&lc->u_runs);
	return 0;
}

/* The detector itself: U run directly by a thread that holds M is reported (twice: flag and
 * EDEADLK), and run by a thread that does not hold it, it is not. */
static void waitpolicy_detector_self_check(void **state)
{
	struct lockcase lc;

	(void)state;
	lockcase_init(&lc);
	lock_m(&lc);
	u_task(&lc);
	unlock_m(&lc);
	assert_int_equal(test_load(&lc.violations), 2);
	u_task(&lc);
	assert_int_equal(test_load(&lc.violations), 2);
	assert_int_equal(test_load(&lc.u_timeouts), 0);
	pthread_mutex_destroy(&lc.m);
}

/* ---------------------------------------------------------------------------------------------
 * A task T holds M and waits for its child C with tp_future_wait_nohelp(); U is pending.
 * ------------------------------------------------------------------------------------------ */

enum c_source {
	C_FROM_OUTSIDE_AFTER_U, /* test thread: U, then C (a helper taking queue order runs U first) */
	C_FROM_OUTSIDE_BEFORE_U, /* test thread: C, then U (on 2 threads the other worker runs C) */
	C_FORKED_BY_T		 /* T forks C itself (own deque) after U is queued */
};

struct holder {
	struct lockcase *lc;
	tp_pool *pool;
	enum c_source source;
	long c_sleep_us;    /* C's duration: 0, or long enough to be running elsewhere */
	long t_holds;	    /* atomic: T holds M, the test thread may queue U (and C) */
	tp_future *c;	    /* published by the test thread (C_FROM_OUTSIDE_*) */
	long u_queued;	    /* atomic */
	long c_runs;	    /* atomic */
	pthread_t t_thread; /* written by T before t_holds */
	pthread_t c_thread; /* written by C */
	int wait_code;	    /* tp_future_wait_nohelp's answer inside T */
};

static int c_task(void *arg)
{
	struct holder *h = arg;

	h->c_thread = pthread_self();
	if (h->c_sleep_us > 0)
		test_sleep_us(h->c_sleep_us);
	test_inc(&h->c_runs);
	return 33;
}

static int t_task(void *arg)
{
	struct holder *h = arg;
	tp_future *c;

	lock_m(h->lc);
	h->t_thread = pthread_self();
	test_store(&h->t_holds, 1);
	if (!await_flag(&h->u_queued, 10000)) {
		unlock_m(h->lc);
		return ETIMEDOUT;
	}
	if (h->source == C_FORKED_BY_T) {
		c = tp_enqueue(h->pool, c_task, h);
		if (c == NULL) {
			unlock_m(h->lc);
			return ENOMEM;
		}
	} else {
		c = __atomic_load_n(&h->c, __ATOMIC_ACQUIRE);
	}
	h->wait_code = tp_future_wait_nohelp(c, NULL);
	if (h->source == C_FORKED_BY_T)
		tp_future_release(c);
	unlock_m(h->lc);
	return 0;
}

static void holder_case(size_t threads, enum c_source source, long c_sleep_us, int rounds)
{
	tp_pool *pool = test_pool_new(threads);
	long c_on_t = 0;

	for (int r = 0; r < rounds; r++) {
		struct lockcase lc;
		struct holder h;
		tp_future *t, *u, *c = NULL;

		lockcase_init(&lc);
		memset(&h, 0, sizeof(h));
		h = (struct holder){ .lc = &lc,
				     .pool = pool,
				     .source = source,
				     .c_sleep_us = c_sleep_us,
				     .wait_code = -1 };
		t = tp_enqueue(pool, t_task, &h);
		assert_non_null(t);
		assert_true(await_flag(&h.t_holds, 10000));
		if (source == C_FROM_OUTSIDE_BEFORE_U)
			c = tp_enqueue(pool, c_task, &h);
		u = tp_enqueue(pool, u_task, &lc);
		assert_non_null(u);
		if (source == C_FROM_OUTSIDE_AFTER_U)
			c = tp_enqueue(pool, c_task, &h);
		if (c != NULL)
			__atomic_store_n(&h.c, c, __ATOMIC_RELEASE);
		test_store(&h.u_queued, 1);
		/* T must finish: nohelp claims C or waits for it, it never blocks on U. */
		wait_ok(t, 20000);
		wait_ok(u, 20000);
		assert_int_equal(h.wait_code, 33);
		assert_int_equal(test_load(&h.c_runs), 1);
		if (threads == 1) /* C pending: the waiter claimed it and ran it itself */
			assert_true(pthread_equal(h.c_thread, h.t_thread));
		if (pthread_equal(h.c_thread, h.t_thread))
			c_on_t++;
		assert_int_equal(test_load(&lc.u_runs), 1);
		assert_int_equal(test_load(&lc.violations), 0);
		assert_int_equal(test_load(&lc.u_timeouts), 0);
		if (c != NULL) {
			assert_int_equal(tp_future_wait(c), 33);
			tp_future_release(c);
		}
		tp_future_release(t);
		tp_future_release(u);
		pthread_mutex_destroy(&lc.m);
	}
	print_message("# %zu threads, source %d, C %ld us: C ran on T's thread %ld/%d times\n",
		      threads, (int)source, c_sleep_us, c_on_t, rounds);
	tp_pool_destroy(pool);
}

/* One thread: U is pending the whole time T waits, and is first in the queue when C comes from
 * outside after it. A waiter that helped would run U on T's thread: EDEADLK. */
static void waitpolicy_nohelp_lock_holder_1_thread(void **state)
{
	(void)state;
	holder_case(1, C_FROM_OUTSIDE_AFTER_U, 0, 20);
	holder_case(1, C_FORKED_BY_T, 0, 20);
	holder_case(1, C_FROM_OUTSIDE_BEFORE_U, 0, 20);
}

/* Two threads: C may be claimed by T or run by the other worker (then T blocks while U is
 * pending, C sleeping 2 ms to keep it running); U may run on the other worker (blocking on M
 * until T releases it), never on T's thread while T holds M. */
static void waitpolicy_nohelp_lock_holder_2_threads(void **state)
{
	int rounds = (int)test_scaled(40);

	(void)state;
	holder_case(2, C_FROM_OUTSIDE_BEFORE_U, 2000, rounds);
	holder_case(2, C_FROM_OUTSIDE_AFTER_U, 2000, rounds);
	holder_case(2, C_FORKED_BY_T, 2000, rounds);
	holder_case(2, C_FORKED_BY_T, 0, rounds);
}

/* ---------------------------------------------------------------------------------------------
 * tp_future_wait_nohelp from outside the pool, and with deadlines
 * ------------------------------------------------------------------------------------------ */

struct rec {
	pthread_t thread;
	long runs; /* atomic */
	int code;
};

static int rec_task(void *arg)
{
	struct rec *r = arg;

	r->thread = pthread_self();
	test_inc(&r->runs);
	return r->code;
}

/* The only worker is blocked: the outside caller claims the pending future and runs it inline. */
static void waitpolicy_nohelp_outside_runs_pending_inline(void **state)
{
	tp_pool *pool = test_pool_new(1);
	long gate = 0;
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	struct rec r1 = { 0, 0, 44 }, r2 = { 0, 0, 0 };
	tp_future *f1 = tp_enqueue(pool, rec_task, &r1), *f2 = tp_enqueue(pool, rec_task, &r2);
	struct timespec d = test_deadline_ms(10000);

	(void)state;
	assert_non_null(blocker);
	assert_non_null(f1);
	assert_non_null(f2);
	while (tp_future_state(blocker) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	assert_int_equal(tp_future_wait_nohelp(f1, NULL), 44);
	assert_int_equal(test_load(&r1.runs), 1);
	assert_true(pthread_equal(r1.thread, pthread_self()));
	assert_int_equal(tp_future_state(f1), TP_FUTURE_FAILED);
	/* With a deadline as well: a pending future is run, not timed out. */
	assert_int_equal(tp_future_wait_nohelp(f2, &d), 0);
	assert_true(pthread_equal(r2.thread, pthread_self()));
	/* The worker was blocked all along; the waits ran nothing else (the blocker still runs). */
	assert_int_equal(tp_future_state(blocker), TP_FUTURE_RUNNING);
	/* Waiting again: the code, at once. */
	assert_int_equal(tp_future_wait_nohelp(f1, NULL), 44);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(blocker), 0);
	tp_pool_destroy(pool);
	assert_int_equal(r1.runs, 1);
	assert_int_equal(r2.runs, 1);
	tp_future_release(blocker);
	tp_future_release(f1);
	tp_future_release(f2);
}

/* A gated task that records its thread and when it finished. */
struct gated {
	long gate;
	long done; /* atomic */
	pthread_t thread;
};

static int gated_task(void *arg)
{
	struct gated *g = arg;

	g->thread = pthread_self();
	wait_gate(&g->gate);
	test_store(&g->done, 1);
	return 0;
}

static void *open_gate_later(void *arg)
{
	struct gated *g = arg;

	test_sleep_us(30000);
	test_store(&g->gate, 1);
	return NULL;
}

/* A running future: nohelp blocks until it is done (it cannot claim it). */
static void waitpolicy_nohelp_running_blocks_until_done(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct gated g = { 0, 0, 0 };
	tp_future *f = tp_enqueue(pool, gated_task, &g);
	pthread_t opener;
	double t0;

	(void)state;
	assert_non_null(f);
	while (tp_future_state(f) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	t0 = test_now_ms();
	assert_int_equal(pthread_create(&opener, NULL, open_gate_later, &g), 0);
	assert_int_equal(tp_future_wait_nohelp(f, NULL), 0);
	assert_true(test_now_ms() - t0 >= 25);
	assert_int_equal(test_load(&g.done), 1);
	assert_false(pthread_equal(g.thread, pthread_self()));
	pthread_join(opener, NULL);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

/* A running future and a deadline: ETIMEDOUT, the future unaffected; later it completes. */
static void waitpolicy_nohelp_deadline_times_out(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct gated g = { 0, 0, 0 };
	tp_future *f = tp_enqueue(pool, gated_task, &g);
	struct timespec d;
	double t0;

	(void)state;
	assert_non_null(f);
	while (tp_future_state(f) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	d = test_deadline_ms(50);
	t0 = test_now_ms();
	assert_int_equal(tp_future_wait_nohelp(f, &d), ETIMEDOUT);
	assert_true(test_now_ms() - t0 >= 45);
	assert_int_equal(tp_future_state(f), TP_FUTURE_RUNNING);
	assert_int_equal(test_load(&g.done), 0);
	/* A deadline in the past: ETIMEDOUT at once while it runs. */
	d.tv_sec = 0;
	d.tv_nsec = 0;
	assert_int_equal(tp_future_wait_nohelp(f, &d), ETIMEDOUT);
	test_store(&g.gate, 1);
	d = test_deadline_ms(20000);
	assert_int_equal(tp_future_wait_nohelp(f, &d), 0);
	assert_int_equal(test_load(&g.done), 1);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

/*
 * Every worker waits (helping, nothing to run) for a task that tp_future_wait_nohelp() runs on a
 * thread outside the pool; that task submits g and waits for it. A helping waiter sleeps on the
 * future's word, not parked, so g's submission wakes nobody: the waiter must still look for new
 * work now and then and run g (before, g never ran and the claimed task timed out).
 */
struct starve {
	tp_pool *pool;
	tp_future *f;
	long go;      /* atomic: the blocker may return */
	long claimed; /* atomic: f runs on the claiming thread */
	long h_waits; /* atomic: h is about to wait for f */
	long g_ran;   /* atomic */
};

static int starve_blocker(void *arg)
{
	struct starve *s = arg;

	return test_await(&s->go, 10000) ? 0 : ETIMEDOUT;
}

static int starve_g(void *arg)
{
	struct starve *s = arg;

	test_store(&s->g_ran, 1);
	return 5;
}

/* f, claimed outside: once h waits for it (and has had time to fall asleep), submit g, wait. */
static int starve_f(void *arg)
{
	struct starve *s = arg;
	struct timespec d = test_deadline_ms(5000);
	tp_future *g;
	int code;

	test_store(&s->claimed, 1);
	if (!test_await(&s->h_waits, 10000))
		return ETIMEDOUT;
	test_sleep_us(20000);
	g = tp_enqueue(s->pool, starve_g, s);
	if (g == NULL)
		return errno;
	code = tp_future_wait_until(g, &d);
	tp_future_release(g);
	return code;
}

/* On the only worker: waits (helping) for f. */
static int starve_h(void *arg)
{
	struct starve *s = arg;

	test_store(&s->h_waits, 1);
	return tp_future_wait(s->f);
}

static void *starve_claimer(void *arg)
{
	struct starve *s = arg;

	return (void *)(intptr_t)tp_future_wait_nohelp(s->f, NULL);
}

static void waitpolicy_help_wait_runs_work_submitted_while_every_worker_waits(void **state)
{
	struct starve s = { 0 };
	tp_future *b, *h;
	pthread_t claimer;
	void *code;

	(void)state;
	s.pool = test_pool_new(1);
	/* The only worker is busy: f stays pending until the claimer takes it. */
	b = tp_enqueue(s.pool, starve_blocker, &s);
	assert_non_null(b);
	s.f = tp_enqueue(s.pool, starve_f, &s);
	assert_non_null(s.f);
	assert_int_equal(pthread_create(&claimer, NULL, starve_claimer, &s), 0);
	assert_true(test_await(&s.claimed, 10000));
	h = tp_enqueue(s.pool, starve_h, &s);
	assert_non_null(h);
	test_store(&s.go, 1);
	assert_int_equal(pthread_join(claimer, &code), 0);
	assert_int_equal((int)(intptr_t)code, 5);
	assert_int_equal(test_load(&s.g_ran), 1);
	wait_ok(b, 10000);
	assert_int_equal(tp_future_wait(h), 5);
	tp_future_release(b);
	tp_future_release(h);
	tp_future_release(s.f);
	tp_pool_destroy(s.pool);
}

static void waitpolicy_nohelp_bad_arguments_and_final_states(void **state)
{
	tp_pool *pool = test_pool_new(1);
	long gate = 0;
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	struct rec r = { 0, 0, 0 };
	tp_future *f = tp_enqueue(pool, rec_task, &r);
	struct timespec bad1 = { 0, 1000000000L }, bad2 = { 0, -1 };

	(void)state;
	assert_non_null(blocker);
	assert_non_null(f);
	assert_int_equal(tp_future_wait_nohelp(NULL, NULL), EINVAL);
	assert_int_equal(tp_future_wait_nohelp(f, &bad1), EINVAL);
	assert_int_equal(tp_future_wait_nohelp(f, &bad2), EINVAL);
	/* EINVAL had no effect: f is still pending, not run by the rejected calls. */
	assert_int_equal(test_load(&r.runs), 0);
	/* A cancelled future: ECANCELED, and it never runs. */
	assert_true(tp_future_cancel(f));
	assert_int_equal(tp_future_wait_nohelp(f, NULL), ECANCELED);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait_nohelp(blocker, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(r.runs, 0);
	tp_future_release(blocker);
	tp_future_release(f);
}

/* Inside a task, with a deadline, while the awaited task runs on the other worker and an
 * unrelated task is pending: ETIMEDOUT, and the waiter ran nothing (the unrelated task can only
 * run on the waiter's thread, both workers being busy). */
struct inside_deadline {
	tp_future *target; /* running on the other worker */
	struct rec *unrelated;
	int code;
	long unrelated_runs_after; /* what the waiter saw after its wait */
};

static int inside_deadline_task(void *arg)
{
	struct inside_deadline *a = arg;
	struct timespec d = test_deadline_ms(50);

	a->code = tp_future_wait_nohelp(a->target, &d);
	a->unrelated_runs_after = test_load(&a->unrelated->runs);
	return 0;
}

static void waitpolicy_nohelp_inside_task_deadline_runs_nothing(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct gated g = { 0, 0, 0 };
	tp_future *target = tp_enqueue(pool, gated_task, &g);
	struct rec unrelated = { 0, 0, 0 };
	struct inside_deadline a = { target, &unrelated, -1, -1 };
	long gate2 = 0;
	tp_future *waiter, *u, *hold;

	(void)state;
	assert_non_null(target);
	while (tp_future_state(target) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	/* Occupy the second worker briefly to queue the unrelated task behind the waiter. */
	hold = tp_enqueue(pool, wait_gate, &gate2);
	assert_non_null(hold);
	while (tp_future_state(hold) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	waiter = tp_enqueue(pool, inside_deadline_task, &a); /* pending: both workers busy */
	u = tp_enqueue(pool, rec_task, &unrelated);
	assert_non_null(waiter);
	assert_non_null(u);
	/* The worker running `hold` is freed; it takes the waiter (or u first: then the waiter
	 * runs after it, and the check below is weaker but still must hold). */
	test_store(&gate2, 1);
	wait_ok(waiter, 20000);
	assert_int_equal(a.code, ETIMEDOUT);
	if (a.unrelated_runs_after == 1)
		print_message("# the free worker ran the unrelated task before the waiter\n");
	else
		assert_int_equal(a.unrelated_runs_after, 0);
	test_store(&g.gate, 1);
	wait_ok(target, 20000);
	wait_ok(u, 20000);
	tp_future_release(target);
	tp_future_release(waiter);
	tp_future_release(u);
	tp_future_release(hold);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * tp_join runs only relatives: while P joins a stolen frame X, unrelated tasks U submitted from
 * outside are pending, and both workers are busy (P joining, X running on the thief). A join that
 * helped with any pending work would run a U on P's thread during the join.
 * ------------------------------------------------------------------------------------------ */

enum {
	N_UNRELATED = 8,
	N_Y = 4
};

struct joincase {
	pthread_t p_thread;
	long phase;	/* atomic: 1 = P is joining a stolen X, 2 = X was not stolen */
	long p_joining; /* atomic */
	long x_started; /* atomic */
	pthread_t x_thread;
	long u_submitted; /* atomic */
	long violations;  /* atomic: a U ran on P's thread during P's join */
	long u_runs;	  /* atomic */
	long y_runs;	  /* atomic */
	long y_on_p;	  /* atomic: thief's children that P ran (leapfrogging; allowed) */
	int join_code;
	int x_join_bad;
};

static int y_task(void *arg)
{
	struct joincase *jc = arg;

	if (pthread_equal(pthread_self(), jc->p_thread))
		test_inc(&jc->y_on_p);
	test_sleep_us(500);
	test_inc(&jc->y_runs);
	return 0;
}

static int x_task(void *arg)
{
	struct joincase *jc = arg;
	tp_frame y[N_Y];

	jc->x_thread = pthread_self();
	test_store(&jc->x_started, 1);
	if (!pthread_equal(jc->x_thread, jc->p_thread)) {
		/* Stolen: keep running while the U's are pending and P is in its join. */
		await_flag(&jc->u_submitted, 10000);
		test_sleep_us(3000);
	}
	for (int i = 0; i < N_Y; i++)
		tp_spawn(&y[i], y_task, jc);
	for (int i = N_Y - 1; i >= 0; i--)
		if (tp_join(&y[i]) != 0)
			jc->x_join_bad++;
	return 17;
}

static int unrelated_task(void *arg)
{
	struct joincase *jc = arg;

	if (pthread_equal(pthread_self(), jc->p_thread) && test_load(&jc->p_joining))
		test_inc(&jc->violations);
	test_inc(&jc->u_runs);
	return 0;
}

static int noop_task(void *arg)
{
	(void)arg;
	return 0;
}

/* P joins X: phase 1 (and p_joining set meanwhile) if X started elsewhere, else phase 2. */
static void p_join_x(struct joincase *jc, tp_frame *x)
{
	if (test_load(&jc->x_started) != 0) {
		test_store(&jc->p_joining, 1);
		test_store(&jc->phase, 1);
		jc->join_code = tp_join(x);
		test_store(&jc->p_joining, 0);
	} else {
		test_store(&jc->phase, 2);
		jc->join_code = tp_join(x);
	}
}

static int p_task(void *arg)
{
	struct joincase *jc = arg;
	tp_frame x;

	double t0;

	jc->p_thread = pthread_self();
	tp_spawn(&x, x_task, jc);
	/* Give the other worker time to steal X. Frames are published lazily, at the owner's next
	 * push or pop after a thief asked: keep spawning and joining tiny frames of our own (which
	 * is what a real task would be doing) so that a request is answered. */
	t0 = test_now_ms();
	while (test_load(&jc->x_started) == 0 && test_now_ms() - t0 < 200) {
		tp_frame d;

		tp_spawn(&d, noop_task, NULL);
		(void)tp_join(&d);
		test_sleep_us(20);
	}
	p_join_x(jc, &x);
	return 0;
}

static void waitpolicy_join_runs_only_relatives(void **state)
{
	tp_pool *pool = test_pool_new(2);
	int rounds = (int)test_scaled(100);
	long stolen = 0, y_on_p = 0;

	(void)state;
	for (int r = 0; r < rounds; r++) {
		struct joincase jc;
		tp_future *p, *u[N_UNRELATED];

		memset(&jc, 0, sizeof(jc));
		jc.join_code = -1;
		p = tp_enqueue(pool, p_task, &jc);
		assert_non_null(p);
		assert_true(await_flag(&jc.phase, 10000));
		for (int i = 0; i < N_UNRELATED; i++) {
			u[i] = tp_enqueue(pool, unrelated_task, &jc);
			assert_non_null(u[i]);
		}
		test_store(&jc.u_submitted, 1);
		wait_ok(p, 20000);
		for (int i = 0; i < N_UNRELATED; i++) {
			wait_ok(u[i], 20000);
			tp_future_release(u[i]);
		}
		tp_future_release(p);
		assert_int_equal(jc.join_code, 17);
		assert_int_equal(jc.x_join_bad, 0);
		assert_int_equal(test_load(&jc.u_runs), N_UNRELATED);
		assert_int_equal(test_load(&jc.y_runs), N_Y);
		if (test_load(&jc.violations) != 0)
			fail_msg("round %d: %ld unrelated tasks ran inside tp_join on the joiner",
				 r, test_load(&jc.violations));
		if (test_load(&jc.phase) == 1) {
			stolen++;
			y_on_p += test_load(&jc.y_on_p);
		}
	}
	print_message("# X stolen in %ld/%d rounds; joiner ran %ld of the thief's children\n",
		      stolen, rounds, y_on_p);
	/* Without steals the test proves nothing: the idle worker must steal X sometimes. */
	assert_true(stolen >= 1);
	tp_pool_destroy(pool);
}

/*
 * The same promise at the moment the thief finishes: X returns as soon as the unrelated tasks are
 * queued, so the thief goes straight from storing X's DONE to taking them from the injection
 * queue (a batch of them lands on its deque) while the joiner may still be leapfrogging on that
 * deque. A joiner that checked "not done yet" and then stole from the thief would take an
 * unrelated task. Many short rounds, to hit the window between the two.
 */
static int x_quick_task(void *arg)
{
	struct joincase *jc = arg;

	test_store(&jc->x_started, 1);
	if (!pthread_equal(pthread_self(), jc->p_thread))
		while (test_load(&jc->u_submitted) == 0)
			sched_yield();
	return 17;
}

static int p_quick_task(void *arg)
{
	struct joincase *jc = arg;
	tp_frame x;

	jc->p_thread = pthread_self();
	tp_spawn(&x, x_quick_task, jc);
	for (int i = 0; i < 100000 && test_load(&jc->x_started) == 0; i++) {
		tp_frame d;

		tp_spawn(&d, noop_task, NULL);
		(void)tp_join(&d);
	}
	p_join_x(jc, &x);
	return 0;
}

static void waitpolicy_join_never_takes_unrelated_work_as_thief_finishes(void **state)
{
	tp_pool *pool = test_pool_new(2);
	int rounds = (int)test_scaled(6000), r;
	long stolen = 0, bad_rounds = 0, first_bad = -1;
	double t0 = test_now_ms();

	(void)state;
	/* At most 4 s (sanitizers, a loaded machine), but at least 100 rounds. */
	for (r = 0; r < rounds && (r < 100 || test_now_ms() - t0 < 4000); r++) {
		struct joincase jc;
		void *args[N_UNRELATED];
		tp_future *p, *u[N_UNRELATED];

		memset(&jc, 0, sizeof(jc));
		jc.join_code = -1;
		for (int i = 0; i < N_UNRELATED; i++)
			args[i] = &jc;
		p = tp_enqueue(pool, p_quick_task, &jc);
		assert_non_null(p);
		while (test_load(&jc.phase) == 0)
			sched_yield();
		assert_int_equal(tp_enqueue_batch(pool, unrelated_task, args, N_UNRELATED, u), 0);
		test_store(&jc.u_submitted, 1);
		wait_ok(p, 20000);
		for (int i = 0; i < N_UNRELATED; i++) {
			wait_ok(u[i], 20000);
			tp_future_release(u[i]);
		}
		tp_future_release(p);
		assert_int_equal(jc.join_code, 17);
		assert_int_equal(test_load(&jc.u_runs), N_UNRELATED);
		if (test_load(&jc.phase) == 1)
			stolen++;
		if (test_load(&jc.violations) != 0 && bad_rounds++ == 0)
			first_bad = r;
	}
	print_message("# X stolen in %ld/%d rounds\n", stolen, r);
	if (bad_rounds != 0)
		fail_msg(
			"tp_join ran unrelated tasks on the joiner in %ld of %ld rounds with a stolen "
			"frame (first: round %ld)",
			bad_rounds, stolen, first_bad);
	assert_true(stolen >= 1);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Loops wait like tp_join: a task T holding M runs a parallel loop; the other worker steals a
 * chunk, and while that chunk runs (and T, done with its part, waits for it) unrelated U's are
 * submitted from outside. T's wait must not run them: both workers are busy, so a U that ran
 * during the loop could only have run inside T's wait, on T's thread, with M held.
 * ------------------------------------------------------------------------------------------ */

struct loopcase {
	struct lockcase *lc;
	tp_pool *pool;
	long holds;	     /* atomic */
	long stolen_running; /* atomic: the first chunk on the other worker has started */
	long u_queued;	     /* atomic */
	long visits;	     /* atomic */
	pthread_t holder;
	int rc;
};

static void slow_body(size_t b, size_t e, void *ctx)
{
	struct loopcase *l = ctx;

	if (!pthread_equal(pthread_self(), l->holder) &&
	    __atomic_exchange_n(&l->stolen_running, 1, __ATOMIC_SEQ_CST) == 0) {
		/* The first stolen chunk: hold the other worker until the U's are queued, then long
		 * enough for T to finish its part and wait for this chunk. */
		await_flag(&l->u_queued, 10000);
		test_sleep_us(10000);
	}
	for (size_t i = b; i < e; i++) {
		test_sleep_us(100);
		test_inc(&l->visits);
	}
}

static int loop_holder_task(void *arg)
{
	struct loopcase *l = arg;

	lock_m(l->lc);
	l->holder = pthread_self();
	test_store(&l->holds, 1);
	l->rc = tp_parallel_for(l->pool, 0, 64, 1, slow_body, l);
	unlock_m(l->lc);
	return 0;
}

static void waitpolicy_loop_wait_runs_no_unrelated_task(void **state)
{
	tp_pool *pool = test_pool_new(2);
	int rounds = (int)test_scaled(20);
	long shared = 0;

	(void)state;
	for (int r = 0; r < rounds; r++) {
		struct lockcase lc;
		struct loopcase l;
		tp_future *t, *u[N_UNRELATED];

		lockcase_init(&lc);
		memset(&l, 0, sizeof(l));
		l.lc = &lc;
		l.pool = pool;
		l.rc = -1;
		t = tp_enqueue(pool, loop_holder_task, &l);
		assert_non_null(t);
		assert_true(await_flag(&l.holds, 10000));
		/* Until a chunk was stolen, or the loop ended without a steal. */
		while (test_load(&l.stolen_running) == 0 && tp_future_result(t) == EBUSY)
			test_sleep_us(50);
		if (test_load(&l.stolen_running) != 0)
			shared++;
		for (int i = 0; i < N_UNRELATED; i++) {
			u[i] = tp_enqueue(pool, u_task, &lc);
			assert_non_null(u[i]);
		}
		test_store(&l.u_queued, 1);
		wait_ok(t, 20000);
		for (int i = 0; i < N_UNRELATED; i++) {
			wait_ok(u[i], 20000);
			tp_future_release(u[i]);
		}
		tp_future_release(t);
		assert_int_equal(l.rc, 0);
		assert_int_equal(test_load(&l.visits), 64);
		assert_int_equal(test_load(&lc.violations), 0);
		assert_int_equal(test_load(&lc.u_timeouts), 0);
		assert_int_equal(test_load(&lc.u_runs), N_UNRELATED);
		pthread_mutex_destroy(&lc.m);
	}
	print_message("# the other worker stole a chunk in %ld/%d loops\n", shared, rounds);
	/* Without steals the test proves nothing: an idle worker must take part sometimes. */
	assert_true(shared >= 1);
	tp_pool_destroy(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(waitpolicy_detector_self_check),
		cmocka_unit_test(waitpolicy_nohelp_lock_holder_1_thread),
		cmocka_unit_test(waitpolicy_nohelp_lock_holder_2_threads),
		cmocka_unit_test(waitpolicy_nohelp_outside_runs_pending_inline),
		cmocka_unit_test(waitpolicy_nohelp_running_blocks_until_done),
		cmocka_unit_test(waitpolicy_nohelp_deadline_times_out),
		cmocka_unit_test(waitpolicy_nohelp_bad_arguments_and_final_states),
		cmocka_unit_test(waitpolicy_help_wait_runs_work_submitted_while_every_worker_waits),
		cmocka_unit_test(waitpolicy_nohelp_inside_task_deadline_runs_nothing),
		cmocka_unit_test(waitpolicy_join_runs_only_relatives),
		cmocka_unit_test(waitpolicy_join_never_takes_unrelated_work_as_thief_finishes),
		cmocka_unit_test(waitpolicy_loop_wait_runs_no_unrelated_task),
	};

	test_watchdog(110);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
