/*
 * stress-shutdown-race.c - tp_enqueue racing tp_pool_shutdown, and futures outliving their pool.
 *
 *  - Outside submitters hammer tp_enqueue while the test thread shuts the pool down (DRAIN and
 *    CANCEL alternately) at a random moment. Each call returns a future or NULL with ESHUTDOWN;
 *    once refused, always refused, and a refused task never runs. When the shutdown returns every
 *    accepted future is final: DRAIN ran each accepted task exactly once (forks included); CANCEL
 *    left each task either run once (DONE/FAILED) or never run (CANCELLED), never both.
 *  - Tasks fork after the gate has visibly closed: in DRAIN the forks are accepted and run; in
 *    CANCEL they may be refused with ESHUTDOWN, and whatever was accepted is consistent.
 *  - The pool is destroyed while outside threads hold (and cancel) futures; they wait and release
 *    afterwards (ASan/valgrind catch any use of the freed pool).
 *
 * Tiers: short by default; TP_STRESS_LONG=1 runs 10x the iterations; TP_STRESS_SCALE scales
 * (valgrind: 0.05); TP_STRESS_SEED fixes the seed, printed as a TAP comment.
 * cmocka is not thread-safe: threads and tasks only record; the test thread asserts after joins.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

static uint64_t seed;

static long iters(long n)
{
	const char *l = getenv("TP_STRESS_LONG");

	return test_scaled(l != NULL && strcmp(l, "1") == 0 ? 10 * n : n);
}

static const char *mode_name(tp_shutdown_mode m)
{
	return m == TP_SHUTDOWN_DRAIN ? "DRAIN" : "CANCEL";
}

/* The code task `slot` returns: mostly 0, sometimes a failure. */
static int slot_code(long slot)
{
	return slot % 9 == 4 ? 50 + (int)(slot % 4) : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Shared bookkeeping: one node per task that was submitted (accepted or refused)
 * ------------------------------------------------------------------------------------------ */

struct race;

struct node {
	struct race *r;
	long slot;
	int depth;
	/* Written by whoever called tp_enqueue for this node, read by the test thread after joins. */
	tp_future *f;
	int refused; /* tp_enqueue returned NULL */
	int waited;  /* the enqueuer waited: wait_rc is what it got */
	int wait_rc;
	int cancelled; /* the holder's tp_future_cancel returned true */
	/* Written by the task. */
	long runs;
};

struct race {
	tp_pool *pool;
	tp_shutdown_mode mode;
	struct node *nodes;
	long cap;
	long next;	      /* atomic: next free node */
	long start;	      /* atomic: submitters may go */
	long shutdown_begun;  /* atomic: set just before tp_pool_shutdown is called */
	long gate_closed;     /* atomic: an outside tp_enqueue has been refused */
	long submitters_done; /* atomic */
	uint64_t seed;
	/* Problems, recorded by threads and tasks (atomics); all must stay 0. */
	long bad_errno;	    /* NULL with an errno other than ESHUTDOWN */
	long early_refusal; /* refused before the shutdown began */
	long accepted_after_refusal;
	long refused_ran; /* a refused task ran */
	long drain_fork_refused;
	/* Statistics. */
	long forks_after_close;
	long forks_refused;
};

static struct node *node_take(struct race *r, int depth)
{
	long i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
	struct node *n;

	if (i >= r->cap)
		return NULL;
	n = &r->nodes[i];
	n->r = r;
	n->slot = i;
	n->depth = depth;
	return n;
}

/* A task that must never run: it is handed only to calls that must be refused. */
static int never_task(void *arg)
{
	struct race *r = arg;

	test_inc(&r->refused_ran);
	return 0;
}

static int race_task(void *arg);
static void check_refusal(struct race *r, int e);

/* A fork from inside a task: recorded in the child's node; sometimes joined. */
static void fork_child(struct node *parent, uint64_t *rng)
{
	struct race *r = parent->r;
	struct node *c = node_take(r, parent->depth + 1);
	bool closed = test_load(&r->gate_closed) != 0;

	if (c == NULL)
		return;
	c->f = tp_enqueue(r->pool, race_task, c);
	if (c->f == NULL) {
		int e = errno;

		c->refused = 1;
		test_inc(&r->forks_refused);
		if (r->mode == TP_SHUTDOWN_DRAIN)
			test_inc(&r->drain_fork_refused);
		else
			check_refusal(r, e);
		return;
	}
	if (closed)
		test_inc(&r->forks_after_close);
	if (test_rand(rng) % 2) {
		c->wait_rc = tp_future_wait(c->f);
		c->waited = 1;
	}
}

static int race_task(void *arg)
{
	struct node *n = arg;
	uint64_t rng = n->r->seed ^ ((uint64_t)n->slot * 0x9E3779B97F4A7C15u);

	test_inc(&n->runs);
	test_jitter(&rng);
	if (n->depth < 2 && test_rand(&rng) % 3 == 0) {
		int kids = 1 + (int)(test_rand(&rng) % 2);

		for (int i = 0; i < kids; i++) {
			fork_child(n, &rng);
			test_jitter(&rng);
		}
	}
	return slot_code(n->slot);
}

/*
 * Checks a refused call: NULL with ESHUTDOWN, only once the shutdown began. The acquire fence
 * (after the library's load that saw the shutdown's release RMW, whatever its own ordering)
 * makes the test thread's earlier store of shutdown_begun visible here. GCC's ThreadSanitizer
 * does not support stand-alone fences (-Wtsan); there both are atomics and x86 keeps the order.
 */
#if defined(__SANITIZE_THREAD__)
#define ACQUIRE_FENCE() ((void)0)
#else
#define ACQUIRE_FENCE() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#endif

static void check_refusal(struct race *r, int e)
{
	if (e != ESHUTDOWN)
		test_inc(&r->bad_errno);
	ACQUIRE_FENCE();
	if (!test_load(&r->shutdown_begun))
		test_inc(&r->early_refusal);
}

struct submitter {
	struct race *r;
	int index;
};

static void *submitter_main(void *arg)
{
	struct submitter *s = arg;
	struct race *r = s->r;
	uint64_t rng = r->seed ^ ((uint64_t)(s->index + 1) << 48);

	while (!test_load(&r->start))
		sched_yield();
	for (;;) {
		struct node *n = node_take(r, 0);

		if (n == NULL)
			break;
		n->f = tp_enqueue(r->pool, race_task, n);
		if (n->f == NULL) {
			check_refusal(r, errno);
			n->refused = 1;
			test_store(&r->gate_closed, 1);
			/* Once refused, always refused, and the refused task never runs. */
			for (int k = 0; k < 3; k++) {
				tp_future *f = tp_enqueue(r->pool, never_task, r);

				if (f != NULL) {
					test_inc(&r->accepted_after_refusal);
					tp_future_release(f);
				} else {
					check_refusal(r, errno);
				}
			}
			break;
		}
		/* Sometimes wait from outside, racing the shutdown. */
		if (test_rand(&rng) % 64 == 0) {
			n->wait_rc = tp_future_wait(n->f);
			n->waited = 1;
		}
		if (test_rand(&rng) % 16 == 0)
			test_jitter(&rng);
	}
	test_inc(&r->submitters_done);
	return NULL;
}

/* Verdict on all nodes after the shutdown returned; then waits for and releases every future. */
struct verdict {
	long accepted, refused, ran, cancelled;
	long not_final, wrong_runs, wrong_code, wrong_wait, neither;
};

static void judge_nodes(struct race *r, struct verdict *v)
{
	long used = test_load(&r->next) < r->cap ? test_load(&r->next) : r->cap;

	for (long i = 0; i < used; i++) {
		struct node *n = &r->nodes[i];
		long runs = test_load(&n->runs);
		int code = slot_code(n->slot);
		tp_future_status st;
		int res;

		if (n->refused) {
			v->refused++;
			v->wrong_runs += runs != 0;
			continue;
		}
		if (n->f == NULL) {
			v->neither++;
			continue;
		}
		v->accepted++;
		st = tp_future_state(n->f); /* before any wait: final already */
		res = tp_future_result(n->f);
		switch (st) {
		case TP_FUTURE_DONE:
		case TP_FUTURE_FAILED:
			v->ran++;
			v->wrong_runs += runs != 1;
			v->wrong_code +=
				res != code || st != (code ? TP_FUTURE_FAILED : TP_FUTURE_DONE);
			break;
		case TP_FUTURE_CANCELLED:
			v->cancelled++;
			/* Only a CANCEL shutdown (or a holder's cancel) may cancel. */
			v->wrong_code +=
				res != ECANCELED || (r->mode == TP_SHUTDOWN_DRAIN && !n->cancelled);
			v->wrong_runs += runs != 0;
			break;
		default:
			v->not_final++;
			break;
		}
		if (n->waited && n->wait_rc != res)
			v->wrong_wait++;
		if (tp_future_wait(n->f) != res)
			v->wrong_wait++;
		tp_future_release(n->f);
		n->f = NULL;
	}
}

static void assert_verdict(const struct race *r, const struct verdict *v, long it)
{
	if (v->not_final || v->wrong_runs || v->wrong_code || v->wrong_wait || v->neither)
		fail_msg(
			"iteration %ld (%s): %ld not final, %ld wrong run counts, %ld wrong codes, "
			"%ld wrong waits, %ld neither accepted nor refused",
			it, mode_name(r->mode), v->not_final, v->wrong_runs, v->wrong_code,
			v->wrong_wait, v->neither);
	assert_int_equal(test_load(&r->bad_errno), 0);
	assert_int_equal(test_load(&r->early_refusal), 0);
	assert_int_equal(test_load(&r->accepted_after_refusal), 0);
	assert_int_equal(test_load(&r->refused_ran), 0);
	assert_int_equal(test_load(&r->drain_fork_refused), 0);
	if (r->mode == TP_SHUTDOWN_DRAIN)
		assert_int_equal(v->cancelled, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Enqueue racing shutdown
 * ------------------------------------------------------------------------------------------ */

enum {
	SUBMITTERS = 3
};

static void shutdown_race_enqueue_vs_shutdown(void **state)
{
	static const size_t sizes[] = { 1, 2, 3, 4, 8 };
	uint64_t rng = seed ^ 0xE9;
	long rounds = iters(400);
	long total_accepted = 0, total_refused = 0, total_cancelled = 0, total_after_close = 0;

	(void)state;
	for (long it = 0; it < rounds; it++) {
		struct race r = { .mode = it % 2 ? TP_SHUTDOWN_CANCEL : TP_SHUTDOWN_DRAIN,
				  .seed = test_rand(&rng),
				  .cap = test_scaled(6000) };
		struct submitter sub[SUBMITTERS];
		pthread_t t[SUBMITTERS];
		struct verdict v = { 0 };
		long target;
		int rc;

		r.nodes = calloc((size_t)r.cap, sizeof(*r.nodes));
		assert_non_null(r.nodes);
		r.pool = tp_pool_create(sizes[test_rand(&rng) % 5], NULL);
		assert_non_null(r.pool);
		for (int i = 0; i < SUBMITTERS; i++) {
			sub[i] = (struct submitter){ &r, i };
			assert_int_equal(pthread_create(&t[i], NULL, submitter_main, &sub[i]), 0);
		}
		/* A random moment: after 0 .. cap/3 submissions, plus a random delay. */
		target = (long)(test_rand(&rng) % (uint64_t)(r.cap / 3 + 1));
		test_store(&r.start, 1);
		while (test_load(&r.next) < target && test_load(&r.submitters_done) < SUBMITTERS)
			test_sleep_us(20);
		for (int k = (int)(test_rand(&rng) % 4); k > 0; k--)
			test_jitter(&rng);
		test_store(&r.shutdown_begun, 1);
		rc = tp_pool_shutdown(r.pool, r.mode);
		for (int i = 0; i < SUBMITTERS; i++)
			pthread_join(t[i], NULL);
		assert_int_equal(rc, 0);
		judge_nodes(&r, &v);
		assert_verdict(&r, &v, it);
		assert_int_equal(tp_pool_shutdown(r.pool, r.mode), 0); /* idempotent */
		tp_pool_destroy(r.pool);
		total_accepted += v.accepted;
		total_refused += v.refused;
		if (r.mode == TP_SHUTDOWN_CANCEL)
			total_cancelled += v.cancelled;
		total_after_close += test_load(&r.forks_after_close);
		free(r.nodes);
	}
	printf("# enqueue vs shutdown: %ld accepted, %ld refused, %ld cancelled, %ld forks after "
	       "the gate closed\n",
	       total_accepted, total_refused, total_cancelled, total_after_close);
	assert_true(total_refused > 0);	  /* the race did reach the shutdown */
	assert_true(total_cancelled > 0); /* and CANCEL did cancel pending tasks */
}

/* ---------------------------------------------------------------------------------------------
 * Forks after the gate has visibly closed
 * ------------------------------------------------------------------------------------------ */

enum {
	HOLDERS = 4
};

/* Holds its worker until an outside call has been refused, then forks. */
static int fork_after_close_task(void *arg)
{
	struct node *n = arg;
	struct race *r = n->r;
	uint64_t rng = r->seed ^ (uint64_t)n->slot;

	test_inc(&n->runs);
	while (!test_load(&r->gate_closed))
		test_sleep_us(50);
	test_jitter(&rng);
	for (int i = 0; i < 4; i++)
		fork_child(n, &rng); /* children fork again (depth < 2) */
	return slot_code(n->slot);
}

/* Probes from outside until refused; counts the probes accepted meanwhile. */
struct prober {
	struct race *r;
	long accepted_probes;
	tp_future *probes[4096];
};

static void *prober_main(void *arg)
{
	struct prober *p = arg;
	struct race *r = p->r;

	while (!test_load(&r->shutdown_begun))
		test_sleep_us(20);
	for (;;) {
		struct node *n = node_take(r, 2);
		tp_future *f;

		if (n == NULL)
			break;
		f = tp_enqueue(r->pool, race_task, n);
		if (f == NULL) {
			check_refusal(r, errno);
			n->refused = 1;
			break;
		}
		n->f = f;
		p->accepted_probes++;
		test_sleep_us(20);
	}
	test_store(&r->gate_closed, 1);
	return NULL;
}

static void run_forks_after_close(tp_shutdown_mode mode)
{
	uint64_t rng = seed ^ (0xC1 + (uint64_t)mode);
	long rounds = iters(200), after_close = 0, refused = 0, cancelled = 0;

	for (long it = 0; it < rounds; it++) {
		struct race r = { .mode = mode, .seed = test_rand(&rng), .cap = 4096 };
		struct prober p = { .r = &r };
		struct verdict v = { 0 };
		pthread_t t;
		int rc;

		r.nodes = calloc((size_t)r.cap, sizeof(*r.nodes));
		assert_non_null(r.nodes);
		r.pool = tp_pool_create(1 + test_rand(&rng) % 4, NULL);
		assert_non_null(r.pool);
		for (int i = 0; i < HOLDERS; i++) {
			struct node *n = node_take(&r, 0);

			n->f = tp_enqueue(r.pool, fork_after_close_task, n);
			assert_non_null(n->f);
		}
		assert_int_equal(pthread_create(&t, NULL, prober_main, &p), 0);
		test_jitter(&rng);
		test_store(&r.shutdown_begun, 1);
		rc = tp_pool_shutdown(r.pool, mode);
		pthread_join(t, NULL);
		assert_int_equal(rc, 0);
		judge_nodes(&r, &v);
		assert_verdict(&r, &v, it);
		if (mode == TP_SHUTDOWN_DRAIN)
			assert_int_equal(v.refused, 1); /* only the prober's last call */
		tp_pool_destroy(r.pool);
		after_close += test_load(&r.forks_after_close);
		refused += test_load(&r.forks_refused);
		cancelled += v.cancelled;
		free(r.nodes);
	}
	printf("# forks after close (%s): %ld accepted, %ld refused, %ld cancelled\n",
	       mode_name(mode), after_close, refused, cancelled);
	if (mode == TP_SHUTDOWN_DRAIN)
		assert_true(after_close >= rounds * 4); /* every holder forked after the close */
	else
		assert_true(cancelled > 0); /* holders still pending at the close were cancelled */
}

static void shutdown_race_drain_runs_forks_after_close(void **state)
{
	(void)state;
	run_forks_after_close(TP_SHUTDOWN_DRAIN);
}

static void shutdown_race_cancel_forks_after_close(void **state)
{
	(void)state;
	run_forks_after_close(TP_SHUTDOWN_CANCEL);
}

/* ---------------------------------------------------------------------------------------------
 * Destroy while outside threads hold futures
 * ------------------------------------------------------------------------------------------ */

enum {
	HOLDER_THREADS = 3
};

struct holder {
	struct race *r;
	int index;
	long first, count; /* its nodes */
	long *submitted;   /* atomic: threads that have submitted everything */
	long *destroyed;   /* atomic: the pool is gone */
	long not_final;	   /* futures not final once the pool was destroyed */
	long bad;	   /* wrong wait results */
};

/* Forks children and releases them at once: DRAIN must still run them. */
static int fire_and_forget_task(void *arg)
{
	struct node *n = arg;
	struct race *r = n->r;
	uint64_t rng = r->seed ^ ((uint64_t)n->slot << 16);

	test_inc(&n->runs);
	test_jitter(&rng);
	if (n->depth == 0 && test_rand(&rng) % 2) {
		struct node *c = node_take(r, 1);

		if (c != NULL) {
			tp_future *f = tp_enqueue(r->pool, fire_and_forget_task, c);

			if (f == NULL) {
				c->refused = 1;
				test_inc(&r->drain_fork_refused);
			}
			tp_future_release(f); /* before it ran, most likely */
		}
	}
	return slot_code(n->slot);
}

static void *holder_main(void *arg)
{
	struct holder *h = arg;
	struct race *r = h->r;
	uint64_t rng = r->seed ^ ((uint64_t)(h->index + 7) << 40);

	for (long i = h->first; i < h->first + h->count; i++) {
		struct node *n = &r->nodes[i];

		n->f = tp_enqueue(r->pool, fire_and_forget_task, n);
		if (n->f == NULL) {
			n->refused = 1;
			test_inc(&r->bad_errno);
		}
	}
	test_inc(h->submitted);
	/* While the pool drains and is destroyed: cancel some, look at others. */
	for (long i = h->first; i < h->first + h->count; i++) {
		struct node *n = &r->nodes[i];

		if (n->f == NULL)
			continue;
		if (test_rand(&rng) % 8 == 0)
			n->cancelled = tp_future_cancel(n->f);
		else
			(void)tp_future_state(n->f);
		if (test_rand(&rng) % 32 == 0)
			test_jitter(&rng);
	}
	while (!test_load(h->destroyed))
		test_sleep_us(50);
	/* The pool is gone: every future is final; wait, then release. */
	for (long i = h->first; i < h->first + h->count; i++) {
		struct node *n = &r->nodes[i];
		tp_future_status st;
		int rc;

		if (n->f == NULL)
			continue;
		st = tp_future_state(n->f);
		if (st != TP_FUTURE_DONE && st != TP_FUTURE_FAILED && st != TP_FUTURE_CANCELLED)
			h->not_final++;
		rc = tp_future_wait(n->f);
		if (n->cancelled ? rc != ECANCELED : rc != slot_code(n->slot))
			h->bad++;
		if (tp_future_result(n->f) != rc || tp_future_cancel(n->f) != n->cancelled)
			h->bad++;
		n->wait_rc = rc;
		n->waited = 1;
		tp_future_release(n->f);
		n->f = NULL;
	}
	return NULL;
}

static void shutdown_race_destroy_while_threads_hold_futures(void **state)
{
	uint64_t rng = seed ^ 0xDE;
	long rounds = iters(150), per = test_scaled(400), cancelled = 0;

	(void)state;
	for (long it = 0; it < rounds; it++) {
		struct race r = { .mode = TP_SHUTDOWN_DRAIN, .seed = test_rand(&rng) };
		struct holder h[HOLDER_THREADS];
		pthread_t t[HOLDER_THREADS];
		long submitted = 0, destroyed = 0;

		/* Top-level nodes first (fixed ranges per thread), then room for the children. */
		r.cap = 2 * HOLDER_THREADS * per;
		r.next = HOLDER_THREADS * per;
		r.nodes = calloc((size_t)r.cap, sizeof(*r.nodes));
		assert_non_null(r.nodes);
		for (long i = 0; i < r.next; i++)
			r.nodes[i] = (struct node){ .r = &r, .slot = i, .depth = 0 };
		r.pool = tp_pool_create(1 + test_rand(&rng) % 4, NULL);
		assert_non_null(r.pool);
		for (int i = 0; i < HOLDER_THREADS; i++) {
			h[i] = (struct holder){ &r, i, i * per, per, &submitted, &destroyed, 0, 0 };
			assert_int_equal(pthread_create(&t[i], NULL, holder_main, &h[i]), 0);
		}
		while (test_load(&submitted) < HOLDER_THREADS)
			test_sleep_us(20);
		test_jitter(&rng);
		tp_pool_destroy(r.pool); /* drains, while the holders cancel and look */
		test_store(&destroyed, 1);
		for (int i = 0; i < HOLDER_THREADS; i++)
			pthread_join(t[i], NULL);
		for (int i = 0; i < HOLDER_THREADS; i++) {
			assert_int_equal(h[i].not_final, 0);
			assert_int_equal(h[i].bad, 0);
		}
		assert_int_equal(test_load(&r.bad_errno), 0);
		assert_int_equal(test_load(&r.drain_fork_refused), 0);
		/* Ran exactly once unless cancelled, and a cancelled task never ran. */
		for (long i = 0; i < test_load(&r.next) && i < r.cap; i++) {
			struct node *n = &r.nodes[i];
			long runs = test_load(&n->runs);

			if (n->refused)
				continue;
			if (runs != (n->cancelled ? 0 : 1))
				fail_msg("iteration %ld: task %ld ran %ld times (cancelled: %d)",
					 it, i, runs, n->cancelled);
			cancelled += n->cancelled;
		}
		free(r.nodes);
	}
	printf("# destroy while holding: %ld cancelled by holders during the drain\n", cancelled);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shutdown_race_enqueue_vs_shutdown),
		cmocka_unit_test(shutdown_race_drain_runs_forks_after_close),
		cmocka_unit_test(shutdown_race_cancel_forks_after_close),
		cmocka_unit_test(shutdown_race_destroy_while_threads_hold_futures),
	};
	seed = test_stress_seed();
	test_watchdog(280);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
