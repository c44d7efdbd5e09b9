/*
 * stress-forkjoin.c - nested fork-join under randomised timing: recursive fib with futures on
 * pools of 1, 2 and 8 threads, a wide fan-out, outside submitters racing forking tasks, and timed
 * waits from outside under load. Every task must run exactly once (one counter per task, checked
 * after the joins) and every future must end final with its task's code.
 *
 * Tiers: the short tier by default (well under a minute on 2 cores, also under the sanitizers);
 * TP_STRESS_LONG=1 runs 10x the iterations. TP_STRESS_SCALE scales the counts (valgrind: 0.05).
 * TP_STRESS_SEED fixes the seed; the seed is printed as a TAP comment.
 *
 * cmocka is not thread-safe: tasks and threads only count what went wrong (atomics); the test
 * thread asserts once everything has been waited for or joined.
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

/* Per-task run counters: every task gets a slot, increments it when it runs. */
struct slots {
	long *runs;
	long cap;
	long next;     /* atomic: next free slot */
	long overflow; /* atomic: slots requested beyond cap (a test bug, reported) */
};

static void slots_init(struct slots *s, long cap)
{
	s->runs = calloc(cap > 0 ? (size_t)cap : 1, sizeof(long));
	assert_non_null(s->runs);
	s->cap = cap;
	s->next = 0;
	s->overflow = 0;
}

static long slots_take(struct slots *s)
{
	long i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);

	if (i >= s->cap) {
		test_inc(&s->overflow);
		return -1;
	}
	return i;
}

static void slots_check_once(struct slots *s, const char *what)
{
	long used = test_load(&s->next);

	assert_int_equal(test_load(&s->overflow), 0);
	if (used > s->cap)
		used = s->cap;
	for (long i = 0; i < used; i++)
		if (test_load(&s->runs[i]) != 1)
			fail_msg("%s: task %ld ran %ld times (expected exactly once)", what, i,
				 test_load(&s->runs[i]));
	free(s->runs);
	s->runs = NULL;
}

static void slots_ran(struct slots *s, long slot)
{
	if (slot >= 0)
		test_inc(&s->runs[slot]);
}

/* Problems seen by tasks and threads; all must be zero. */
struct errors {
	long enqueue_null; /* a fork or submission refused while the pool runs */
	long bad_code;	   /* a wait returned something other than the task's code */
	long bad_state;	   /* a final future with the wrong state or result */
	long bad_timed;	   /* wait_until: neither ETIMEDOUT nor the code, or ETIMEDOUT early */
	long bad_value;	   /* a computed value differs from the serial one */
};

static void errors_assert_none(const struct errors *e)
{
	assert_int_equal(test_load(&e->enqueue_null), 0);
	assert_int_equal(test_load(&e->bad_code), 0);
	assert_int_equal(test_load(&e->bad_state), 0);
	assert_int_equal(test_load(&e->bad_timed), 0);
	assert_int_equal(test_load(&e->bad_value), 0);
}

/* Waits for f (which must end with `code`), checks its final state, releases it. */
static int wait_check_release(tp_future *f, int code, struct errors *e)
{
	int rc = tp_future_wait(f);
	tp_future_status want = code == 0 ? TP_FUTURE_DONE : TP_FUTURE_FAILED;

	if (rc != code)
		test_inc(&e->bad_code);
	if (tp_future_state(f) != want || tp_future_result(f) != code)
		test_inc(&e->bad_state);
	tp_future_release(f);
	return rc;
}

static bool reached(const struct timespec *d)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

static struct timespec deadline_us(long us)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += us * 1000L;
	while (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* ---------------------------------------------------------------------------------------------
 * Recursive fib with futures
 * ------------------------------------------------------------------------------------------ */

struct fib_ctx {
	tp_pool *pool;
	struct slots slots;
	struct errors err;
	uint64_t seed;
};

struct fib_arg {
	struct fib_ctx *ctx;
	int n;
	long slot;
	long result;
};

static long fib_serial(int n)
{
	long a = 0, b = 1;

	for (int i = 0; i < n; i++) {
		long t = a + b;

		a = b;
		b = t;
	}
	return a;
}

static long fib_forked(struct fib_ctx *ctx, int n, uint64_t *rng);

static int fib_task(void *p)
{
	struct fib_arg *a = p;
	uint64_t rng = a->ctx->seed ^ ((uint64_t)a->slot * 0x9E3779B97F4A7C15u);

	slots_ran(&a->ctx->slots, a->slot);
	test_jitter(&rng);
	a->result = fib_forked(a->ctx, a->n, &rng);
	return 0;
}

/* fib(n): fib(n-1) as a forked task; fib(n-2) inline or as a second task; then join. */
static long fib_forked(struct fib_ctx *ctx, int n, uint64_t *rng)
{
	struct fib_arg c1, c2;
	tp_future *f1, *f2 = NULL;
	long r2 = 0;

	if (n < 2)
		return n;
	c1 = (struct fib_arg){ ctx, n - 1, slots_take(&ctx->slots), 0 };
	f1 = tp_enqueue(ctx->pool, fib_task, &c1);
	if (f1 == NULL) {
		test_inc(&ctx->err.enqueue_null);
		return fib_serial(n);
	}
	if (test_rand(rng) % 2) {
		c2 = (struct fib_arg){ ctx, n - 2, slots_take(&ctx->slots), 0 };
		f2 = tp_enqueue(ctx->pool, fib_task, &c2);
		if (f2 == NULL)
			test_inc(&ctx->err.enqueue_null);
	}
	if (f2 == NULL)
		r2 = fib_forked(ctx, n - 2, rng);
	test_jitter(rng);
	/* Join in either order. */
	if (f2 != NULL && test_rand(rng) % 2) {
		wait_check_release(f2, 0, &ctx->err);
		r2 = c2.result;
		f2 = NULL;
	}
	wait_check_release(f1, 0, &ctx->err);
	if (f2 != NULL) {
		wait_check_release(f2, 0, &ctx->err);
		r2 = c2.result;
	}
	return c1.result + r2;
}

static void run_fib(size_t threads, long rounds)
{
	uint64_t rng = seed ^ threads;

	for (long it = 0; it < rounds; it++) {
		struct fib_ctx ctx = { .seed = test_rand(&rng) };
		int n = 8 + (int)(test_rand(&rng) % 9); /* 8..16 */
		struct fib_arg root;
		tp_future *f;

		ctx.pool = tp_pool_create(threads, NULL);
		assert_non_null(ctx.pool);
		/* At most one task per call of the recursion: 2 fib(n+1) - 1 calls. */
		slots_init(&ctx.slots, 2 * fib_serial(n + 1));
		root = (struct fib_arg){ &ctx, n, slots_take(&ctx.slots), 0 };
		f = tp_enqueue(ctx.pool, fib_task, &root);
		assert_non_null(f);
		assert_int_equal(tp_future_wait(f), 0);
		assert_int_equal(tp_future_state(f), TP_FUTURE_DONE);
		tp_future_release(f);
		tp_pool_destroy(ctx.pool);
		if (root.result != fib_serial(n))
			fail_msg("fib(%d) = %ld on %zu threads, expected %ld", n, root.result,
				 threads, fib_serial(n));
		errors_assert_none(&ctx.err);
		slots_check_once(&ctx.slots, "fib");
	}
}

static void forkjoin_fib_matches_serial_1_thread(void **state)
{
	(void)state;
	run_fib(1, iters(60));
}

static void forkjoin_fib_matches_serial_2_threads(void **state)
{
	(void)state;
	run_fib(2, iters(60));
}

static void forkjoin_fib_matches_serial_8_threads(void **state)
{
	(void)state;
	run_fib(8, iters(60));
}

/* ---------------------------------------------------------------------------------------------
 * Wide fan-out: one task forks 1000 children and joins them all
 * ------------------------------------------------------------------------------------------ */

enum {
	FANOUT = 1000
};

struct fan_ctx {
	tp_pool *pool;
	struct slots slots;
	struct errors err;
	uint64_t seed;
};

struct fan_child {
	struct fan_ctx *ctx;
	long slot;
};

/* The code child i returns: mostly 0, sometimes an error code. */
static int fan_code(long slot)
{
	return slot % 7 == 3 ? 100 + (int)(slot % 5) : 0;
}

static int fan_child_task(void *p)
{
	struct fan_child *c = p;
	uint64_t rng = c->ctx->seed ^ ((uint64_t)c->slot << 20);

	test_jitter(&rng);
	slots_ran(&c->ctx->slots, c->slot);
	return fan_code(c->slot);
}

static int fan_parent_task(void *p)
{
	struct fan_ctx *ctx = p;
	struct fan_child *kids = calloc(FANOUT, sizeof(*kids));
	tp_future **f = calloc(FANOUT, sizeof(tp_future *));
	uint64_t rng = ctx->seed;

	if (kids == NULL || f == NULL) {
		free(kids);
		free(f);
		return ENOMEM;
	}
	for (long i = 0; i < FANOUT; i++) {
		kids[i] = (struct fan_child){ ctx, slots_take(&ctx->slots) };
		f[i] = tp_enqueue(ctx->pool, fan_child_task, &kids[i]);
		if (f[i] == NULL)
			test_inc(&ctx->err.enqueue_null);
		if (test_rand(&rng) % 64 == 0)
			test_jitter(&rng);
	}
	/* Join from a random starting point; some children first with a short timed wait, which
	 * on a worker helps until the deadline. */
	for (long k = 0, start = (long)(test_rand(&rng) % FANOUT); k < FANOUT; k++) {
		long i = (start + k) % FANOUT;
		int code = fan_code(kids[i].slot);

		if (f[i] == NULL)
			continue;
		if (test_rand(&rng) % 4 == 0) {
			struct timespec d = deadline_us((long)(test_rand(&rng) % 200));
			int rc = tp_future_wait_until(f[i], &d);

			if (rc != code && (rc != ETIMEDOUT || !reached(&d)))
				test_inc(&ctx->err.bad_timed);
		}
		wait_check_release(f[i], code, &ctx->err);
	}
	free(kids);
	free(f);
	return 0;
}

static void forkjoin_wide_fanout(void **state)
{
	uint64_t rng = seed ^ 0xFA;
	long rounds = iters(30);

	(void)state;
	for (long it = 0; it < rounds; it++) {
		struct fan_ctx ctx = { .seed = test_rand(&rng) };
		tp_future *f;

		ctx.pool = tp_pool_create(it % 2 ? 8 : 2, NULL);
		assert_non_null(ctx.pool);
		slots_init(&ctx.slots, FANOUT);
		f = tp_enqueue(ctx.pool, fan_parent_task, &ctx);
		assert_non_null(f);
		assert_int_equal(tp_future_wait(f), 0);
		tp_future_release(f);
		tp_pool_destroy(ctx.pool);
		errors_assert_none(&ctx.err);
		assert_int_equal(test_load(&ctx.slots.next), FANOUT);
		slots_check_once(&ctx.slots, "fan-out child");
	}
}

/* ---------------------------------------------------------------------------------------------
 * Outside submitters while tasks fork
 * ------------------------------------------------------------------------------------------ */

enum {
	SUBMITTERS = 4,
	MAX_KIDS = 3,
	MAX_DEPTH = 2
};

struct mix_ctx {
	tp_pool *pool;
	struct slots slots;
	struct errors err;
	uint64_t seed;
	long per_thread;
};

struct mix_node {
	struct mix_ctx *ctx;
	long slot;
	int depth;
};

static int mix_code(long slot)
{
	return slot % 11 == 5 ? 20 + (int)(slot % 3) : 0;
}

/* Runs, forks 0..3 children (not below MAX_DEPTH), joins them, returns its own code. */
static int mix_task(void *p)
{
	struct mix_node *self = p;
	struct mix_ctx *ctx = self->ctx;
	uint64_t rng = ctx->seed ^ ((uint64_t)self->slot * 0xBF58476D1CE4E5B9u);
	struct mix_node kids[MAX_KIDS];
	tp_future *f[MAX_KIDS] = { NULL };
	int nkids = self->depth < MAX_DEPTH ? (int)(test_rand(&rng) % (MAX_KIDS + 1)) : 0;

	slots_ran(&ctx->slots, self->slot);
	test_jitter(&rng);
	for (int i = 0; i < nkids; i++) {
		kids[i] = (struct mix_node){ ctx, slots_take(&ctx->slots), self->depth + 1 };
		f[i] = kids[i].slot >= 0 ? tp_enqueue(ctx->pool, mix_task, &kids[i]) : NULL;
		if (f[i] == NULL && kids[i].slot >= 0)
			test_inc(&ctx->err.enqueue_null);
	}
	test_jitter(&rng);
	for (int i = MAX_KIDS - 1; i >= 0; i--)
		if (f[i] != NULL)
			wait_check_release(f[i], mix_code(kids[i].slot), &ctx->err);
	return mix_code(self->slot);
}

struct submitter {
	struct mix_ctx *ctx;
	int index;
};

static void *submitter_main(void *p)
{
	struct submitter *s = p;
	struct mix_ctx *ctx = s->ctx;
	long n = ctx->per_thread;
	struct mix_node *nodes = calloc((size_t)n, sizeof(*nodes));
	tp_future **f = calloc((size_t)n, sizeof(tp_future *));
	uint64_t rng = ctx->seed ^ ((uint64_t)s->index << 40);
	long waited = 0;

	if (nodes == NULL || f == NULL) {
		test_inc(&ctx->err.enqueue_null);
		free(nodes);
		free(f);
		return NULL;
	}
	for (long i = 0; i < n; i++) {
		nodes[i] = (struct mix_node){ ctx, slots_take(&ctx->slots), 0 };
		f[i] = tp_enqueue(ctx->pool, mix_task, &nodes[i]);
		if (f[i] == NULL)
			test_inc(&ctx->err.enqueue_null);
		if (test_rand(&rng) % 32 == 0)
			test_jitter(&rng);
		/* Now and then, join the oldest half of what is outstanding. */
		if (test_rand(&rng) % 256 == 0)
			for (long end = waited + (i + 1 - waited) / 2; waited < end; waited++)
				if (f[waited] != NULL)
					wait_check_release(f[waited], mix_code(nodes[waited].slot),
							   &ctx->err);
	}
	for (; waited < n; waited++)
		if (f[waited] != NULL)
			wait_check_release(f[waited], mix_code(nodes[waited].slot), &ctx->err);
	free(nodes);
	free(f);
	return NULL;
}

static void forkjoin_outside_submitters_and_forks(void **state)
{
	uint64_t rng = seed ^ 0x5B;
	long rounds = iters(3);

	(void)state;
	for (long it = 0; it < rounds; it++) {
		struct mix_ctx ctx = { .seed = test_rand(&rng), .per_thread = test_scaled(3000) };
		struct submitter sub[SUBMITTERS];
		pthread_t t[SUBMITTERS];
		/* Each top-level task has at most 3 + 9 descendants. */
		long cap = SUBMITTERS * ctx.per_thread * (1 + MAX_KIDS + MAX_KIDS * MAX_KIDS);

		ctx.pool = tp_pool_create(it % 2 ? 3 : 2, NULL);
		assert_non_null(ctx.pool);
		slots_init(&ctx.slots, cap);
		for (int i = 0; i < SUBMITTERS; i++) {
			sub[i] = (struct submitter){ &ctx, i };
			assert_int_equal(pthread_create(&t[i], NULL, submitter_main, &sub[i]), 0);
		}
		for (int i = 0; i < SUBMITTERS; i++)
			pthread_join(t[i], NULL);
		tp_pool_destroy(ctx.pool);
		errors_assert_none(&ctx.err);
		assert_true(test_load(&ctx.slots.next) >= SUBMITTERS * ctx.per_thread);
		slots_check_once(&ctx.slots, "mixed");
	}
}

/* ---------------------------------------------------------------------------------------------
 * Timed waits from outside under load
 * ------------------------------------------------------------------------------------------ */

struct timed_ctx {
	tp_pool *pool;
	struct slots slots;
	struct errors err;
	long stop;
	uint64_t seed;
};

struct timed_task {
	struct timed_ctx *ctx;
	long slot;
	long spin_us;
	long *gate; /* if set: hold until *gate != 0 */
};

static int timed_code(long slot)
{
	return slot % 5 == 2 ? 33 : 0;
}

static int timed_task_fn(void *p)
{
	struct timed_task *t = p;
	uint64_t rng = t->ctx->seed ^ (uint64_t)t->slot;

	slots_ran(&t->ctx->slots, t->slot);
	test_jitter(&rng);
	if (t->spin_us > 0)
		test_sleep_us(t->spin_us);
	if (t->gate != NULL)
		while (test_load(t->gate) == 0)
			test_sleep_us(50);
	return timed_code(t->slot);
}

/* Background load: an outside thread submitting forking tasks until told to stop. */
static void *load_main(void *p)
{
	struct timed_ctx *ctx = p;
	struct mix_ctx mix = { .pool = ctx->pool, .seed = ctx->seed ^ 0x10AD };
	struct mix_node nodes[16];
	tp_future *f[16];

	/* The load's own tasks are not counted: a private slot table, reused every batch (not
	 * slots_init: no cmocka calls off the test thread). */
	mix.slots.cap = 16 * (1 + MAX_KIDS + MAX_KIDS * MAX_KIDS);
	mix.slots.runs = calloc((size_t)mix.slots.cap, sizeof(long));
	if (mix.slots.runs == NULL) {
		test_inc(&ctx->err.enqueue_null);
		return NULL;
	}
	while (!test_load(&ctx->stop)) {
		test_store(&mix.slots.next, 0);
		memset(mix.slots.runs, 0, (size_t)mix.slots.cap * sizeof(long));
		for (int i = 0; i < 16; i++) {
			nodes[i] = (struct mix_node){ &mix, slots_take(&mix.slots), 0 };
			f[i] = tp_enqueue(ctx->pool, mix_task, &nodes[i]);
		}
		for (int i = 0; i < 16; i++)
			if (f[i] != NULL)
				wait_check_release(f[i], mix_code(nodes[i].slot), &mix.err);
			else
				test_inc(&ctx->err.enqueue_null);
		for (long i = 0; i < test_load(&mix.slots.next) && i < mix.slots.cap; i++)
			if (test_load(&mix.slots.runs[i]) != 1)
				test_inc(&ctx->err.bad_state);
	}
	__atomic_add_fetch(&ctx->err.bad_code,
			   mix.err.bad_code + mix.err.enqueue_null + mix.slots.overflow,
			   __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&ctx->err.bad_state, mix.err.bad_state, __ATOMIC_SEQ_CST);
	free(mix.slots.runs);
	return NULL;
}

static void forkjoin_wait_until_under_load(void **state)
{
	uint64_t rng = seed ^ 0x7E;
	long rounds = iters(2), n = test_scaled(1500);
	long timeouts = 0, forced_timeouts = 0, gated_total = 0;
	long early = 0, wrong_timed = 0, wrong_final = 0, gated_not_busy = 0, refused = 0;

	(void)state;
	for (long it = 0; it < rounds; it++) {
		struct timed_ctx ctx = { .seed = test_rand(&rng) };
		struct timed_task *tasks = calloc((size_t)n, sizeof(*tasks));
		pthread_t load[2];

		assert_non_null(tasks);
		ctx.pool = tp_pool_create(2, NULL);
		assert_non_null(ctx.pool);
		slots_init(&ctx.slots, n);
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&load[i], NULL, load_main, &ctx), 0);
		/* Only counts in this loop: the asserts come after the load threads are joined. */
		for (long i = 0; i < n; i++) {
			struct timed_task *t = &tasks[i];
			long gate = 0;
			bool gated = i % 64 == 0; /* cannot finish before its deadline */
			tp_future *f;
			struct timespec d;
			int rc, code;

			*t = (struct timed_task){ &ctx, slots_take(&ctx.slots),
						  test_rand(&rng) % 4 == 0
							  ? (long)(test_rand(&rng) % 300)
							  : 0,
						  gated ? &gate : NULL };
			code = timed_code(t->slot);
			f = tp_enqueue(ctx.pool, timed_task_fn, t);
			if (f == NULL) {
				refused++;
				test_inc(&ctx.slots.runs[t->slot]); /* reported once, not twice */
				continue;
			}
			gated_total += gated;
			d = deadline_us(gated ? 2000 : (long)(test_rand(&rng) % 400));
			rc = tp_future_wait_until(f, &d);
			if (rc == ETIMEDOUT) {
				timeouts++;
				forced_timeouts += gated;
				early += !reached(&d);
			} else if (rc != code || gated) {
				wrong_timed++;
			}
			if (gated) {
				gated_not_busy += tp_future_result(f) != EBUSY;
				test_store(&gate, 1);
			}
			/* The final wait gets the code. */
			wrong_final += tp_future_wait(f) != code;
			wrong_final +=
				tp_future_state(f) != (code ? TP_FUTURE_FAILED : TP_FUTURE_DONE);
			wrong_final += tp_future_result(f) != code;
			tp_future_release(f);
		}
		test_store(&ctx.stop, 1);
		for (int i = 0; i < 2; i++)
			pthread_join(load[i], NULL);
		tp_pool_destroy(ctx.pool);
		free(tasks);
		errors_assert_none(&ctx.err);
		slots_check_once(&ctx.slots, "timed");
	}
	printf("# wait_until under load: %ld timeouts (%ld of %ld gated)\n", timeouts,
	       forced_timeouts, gated_total);
	assert_int_equal(refused, 0);
	assert_int_equal(early, 0);	  /* ETIMEDOUT only once the deadline has passed */
	assert_int_equal(wrong_timed, 0); /* ETIMEDOUT or the code, nothing else */
	assert_int_equal(wrong_final, 0);
	assert_int_equal(gated_not_busy, 0);
	assert_int_equal(forced_timeouts, gated_total); /* a task that cannot finish times out */
	assert_true(gated_total > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(forkjoin_fib_matches_serial_1_thread),
		cmocka_unit_test(forkjoin_fib_matches_serial_2_threads),
		cmocka_unit_test(forkjoin_fib_matches_serial_8_threads),
		cmocka_unit_test(forkjoin_wide_fanout),
		cmocka_unit_test(forkjoin_outside_submitters_and_forks),
		cmocka_unit_test(forkjoin_wait_until_under_load),
	};
	seed = test_stress_seed();
	test_watchdog(280);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
