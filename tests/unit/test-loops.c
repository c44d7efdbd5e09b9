/*
 * test-loops.c - tp_parallel_for(), tp_parallel_try_for() and tp_parallel_reduce(): every index
 * visited exactly once for many sizes and grains, on pools of 1, 2 and 8 threads, from outside the
 * pool and from inside a task, nested loops; reduce results against the serial fold (integer,
 * floating point, and non-commutative combines that check the iteration order), also with
 * accumulators larger than TP_REDUCE_MAX_SIZE (2 KiB, 64 KiB); the identity is copied, not
 * modified; a try loop whose body stops it returns the body's code and skips the chunks not
 * started (far fewer chunks run than the range holds), one that never stops is a parallel for;
 * bad arguments (EINVAL) and a shut-down pool (ESHUTDOWN) leave everything untouched.
 *
 * cmocka is not thread-safe: loop bodies only count (atomics) what they saw; the test thread
 * asserts after the loop has returned.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

static const size_t pool_sizes[] = { 1, 2, 8 };
#define N_POOLS (sizeof(pool_sizes) / sizeof(pool_sizes[0]))

/* The sizes and grains of the brief: 1e6 shrinks under valgrind (TP_STRESS_SCALE). */
static size_t big_size(void)
{
	return (size_t)test_scaled(1000000);
}

#define N_SIZES	 5
#define N_GRAINS 5
static size_t loop_size(int i)
{
	const size_t s[N_SIZES - 1] = { 0, 1, 7, 1000 };

	return i < N_SIZES - 1 ? s[i] : big_size();
}
static const size_t grains[N_GRAINS] = { 0, 1, 3, 1000, 1000000000 };

static void atomic_max(long *p, long v)
{
	long cur = __atomic_load_n(p, __ATOMIC_RELAXED);

	while (cur < v &&
	       !__atomic_compare_exchange_n(p, &cur, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/* ---------------------------------------------------------------------------------------------
 * tp_parallel_for: per-index counters
 * ------------------------------------------------------------------------------------------ */

struct visit {
	size_t begin, end; /* the loop's range */
	long *count;	   /* count[i - begin], atomic */
	long calls;	   /* atomic: body calls */
	long bad_range;	   /* atomic: a chunk outside [begin, end) or reversed */
	long max_chunk;	   /* atomic max of end - begin over the calls */
};

static void visit_body(size_t b, size_t e, void *ctx)
{
	struct visit *v = ctx;

	test_inc(&v->calls);
	if (b > e || b < v->begin || e > v->end) {
		test_inc(&v->bad_range);
		return;
	}
	atomic_max(&v->max_chunk, (long)(e - b));
	for (size_t i = b; i < e; i++)
		__atomic_fetch_add(&v->count[i - v->begin], 1, __ATOMIC_RELAXED);
}

/* visit_body as a try loop's body that never stops it. */
static int visit_try_body(size_t b, size_t e, void *ctx)
{
	visit_body(b, e, ctx);
	return 0;
}

static void visit_init(struct visit *v, size_t begin, size_t n)
{
	v->begin = begin;
	v->end = begin + n;
	v->count = calloc(n + 1, sizeof(long));
	assert_non_null(v->count);
	v->calls = 0;
	v->bad_range = 0;
	v->max_chunk = 0;
}

/* Every index exactly once; frees the counters. */
static void visit_check(struct visit *v, const char *what, size_t threads, size_t grain)
{
	size_t n = v->end - v->begin;

	assert_int_equal(test_load(&v->bad_range), 0);
	for (size_t i = 0; i < n; i++)
		if (test_load(&v->count[i]) != 1)
			fail_msg(
				"%s: %zu threads, size %zu, grain %zu: index %zu visited %ld times",
				what, threads, n, grain, v->begin + i, test_load(&v->count[i]));
	free(v->count);
	v->count = NULL;
}

struct for_call {
	tp_pool *pool;
	size_t begin, end, grain;
	struct visit *v;
	int rc;
};

static int for_task(void *arg)
{
	struct for_call *c = arg;

	c->rc = tp_parallel_for(c->pool, c->begin, c->end, c->grain, visit_body, c->v);
	return 0;
}

/* All sizes x grains on one pool, called from outside (inside == false) or from a task. */
static void for_all_sizes(tp_pool *pool, size_t threads, bool inside)
{
	for (int s = 0; s < N_SIZES; s++) {
		for (int g = 0; g < N_GRAINS; g++) {
			size_t n = loop_size(s), begin = 3 + (size_t)s; /* a non-zero begin */
			struct visit v;
			struct for_call c;

			visit_init(&v, begin, n);
			c = (struct for_call){ pool, begin, begin + n, grains[g], &v, -1 };
			if (inside)
				assert_int_equal(run_in_pool(pool, for_task, &c), 0);
			else
				for_task(&c);
			assert_int_equal(c.rc, 0);
			visit_check(&v, inside ? "inside" : "outside", threads, grains[g]);
		}
	}
}

static void loops_for_visits_each_index_once_from_outside(void **state)
{
	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for_all_sizes(pool, pool_sizes[p], false);
		tp_pool_destroy(pool);
	}
}

static void loops_for_visits_each_index_once_from_a_task(void **state)
{
	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for_all_sizes(pool, pool_sizes[p], true);
		tp_pool_destroy(pool);
	}
}

/* "in chunks of `grain` iterations": with a grain given, no body call gets more than grain. */
static void loops_for_chunks_at_most_grain(void **state)
{
	static const size_t g[] = { 1, 3, 1000 };

	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (size_t k = 0; k < 3; k++) {
			struct visit v;
			struct for_call c;
			size_t n = 100000;

			visit_init(&v, 0, n);
			c = (struct for_call){ pool, 0, n, g[k], &v, -1 };
			for_task(&c);
			assert_int_equal(c.rc, 0);
			if (test_load(&v.max_chunk) > (long)g[k])
				fail_msg("%zu threads, grain %zu: a body call got %ld iterations",
					 pool_sizes[p], g[k], test_load(&v.max_chunk));
			/* At least n / grain calls then. */
			assert_true(test_load(&v.calls) >= (long)(n / g[k]));
			visit_check(&v, "grain", pool_sizes[p], g[k]);
		}
		tp_pool_destroy(pool);
	}
}

static void loops_for_bad_arguments_einval(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct visit v;

	(void)state;
	visit_init(&v, 0, 10);
	assert_int_equal(tp_parallel_for(pool, 10, 9, 0, visit_body, &v), EINVAL);
	assert_int_equal(tp_parallel_for(pool, (size_t)-1, 0, 1, visit_body, &v), EINVAL);
	assert_int_equal(tp_parallel_for(NULL, 0, 10, 0, visit_body, &v), EINVAL);
	assert_int_equal(tp_parallel_for(pool, 0, 10, 0, NULL, &v), EINVAL);
	assert_int_equal(test_load(&v.calls), 0);
	/* ctx NULL is the caller's business: allowed. An empty range visits nothing. */
	assert_int_equal(tp_parallel_for(pool, 5, 5, 0, visit_body, &v), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(test_load(&v.count[i]), 0);
	free(v.count);
	tp_pool_destroy(pool);
}

/* Nested: an outer loop whose body runs an inner loop on the same pool (on 1 thread too). */
enum {
	OUTER = 32,
	INNER = 2000
};

struct nest {
	tp_pool *pool;
	size_t inner_grain;
	long *count; /* OUTER * INNER, atomic */
	long bad_rc; /* atomic: an inner loop did not return 0 */
	long calls;  /* atomic */
};

struct inner_ctx {
	struct nest *nest;
	size_t outer;
};

static void inner_body(size_t b, size_t e, void *ctx)
{
	struct inner_ctx *ic = ctx;

	for (size_t i = b; i < e; i++)
		__atomic_fetch_add(&ic->nest->count[ic->outer * INNER + i], 1, __ATOMIC_RELAXED);
}

static void outer_body(size_t b, size_t e, void *ctx)
{
	struct nest *n = ctx;

	test_inc(&n->calls);
	for (size_t o = b; o < e; o++) {
		struct inner_ctx ic = { n, o };

		if (tp_parallel_for(n->pool, 0, INNER, n->inner_grain, inner_body, &ic) != 0)
			test_inc(&n->bad_rc);
	}
}

struct nest_call {
	struct nest *nest;
	size_t outer_grain;
	int rc;
};

static int nest_task(void *arg)
{
	struct nest_call *c = arg;

	c->rc = tp_parallel_for(c->nest->pool, 0, OUTER, c->outer_grain, outer_body, c->nest);
	return 0;
}

static void loops_for_nested(void **state)
{
	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int mode = 0; mode < 4; mode++) {
			struct nest n = { pool, mode % 2 == 0 ? 0 : 7,
					  calloc(OUTER * INNER, sizeof(long)), 0, 0 };
			struct nest_call c = { &n, mode % 2 == 0 ? 1 : 0, -1 };

			assert_non_null(n.count);
			if (mode < 2)
				nest_task(&c); /* the outer loop from outside */
			else
				assert_int_equal(run_in_pool(pool, nest_task, &c), 0);
			assert_int_equal(c.rc, 0);
			assert_int_equal(test_load(&n.bad_rc), 0);
			for (size_t i = 0; i < OUTER * INNER; i++)
				if (test_load(&n.count[i]) != 1)
					fail_msg(
						"%zu threads, mode %d: (%zu, %zu) visited %ld times",
						pool_sizes[p], mode, i / INNER, i % INNER,
						test_load(&n.count[i]));
			free(n.count);
		}
		tp_pool_destroy(pool);
	}
}

/* ---------------------------------------------------------------------------------------------
 * tp_parallel_reduce
 * ------------------------------------------------------------------------------------------ */

/* Sum of i as uint64, with a marker that each accumulator must carry from the identity. */
#define SUM_MAGIC 0x5eed5eedu

struct sum {
	uint64_t sum;
	uint32_t magic;
};

struct sum_ctx {
	long bad_magic; /* atomic: an accumulator without the identity's marker */
	long calls;	/* atomic: body calls */
};

static void sum_body(size_t b, size_t e, void *acc, void *ctx)
{
	struct sum *s = acc;
	struct sum_ctx *c = ctx;

	test_inc(&c->calls);
	if (s->magic != SUM_MAGIC)
		test_inc(&c->bad_magic);
	for (size_t i = b; i < e; i++)
		s->sum += i;
}

static void sum_combine(void *acc, const void *other, void *ctx)
{
	struct sum *s = acc;
	const struct sum *o = other;
	struct sum_ctx *c = ctx;

	if (s->magic != SUM_MAGIC || o->magic != SUM_MAGIC)
		test_inc(&c->bad_magic);
	s->sum += o->sum;
}

struct sum_call {
	tp_pool *pool;
	size_t begin, end, grain;
	struct sum result;
	struct sum identity;
	struct sum_ctx ctx;
	int rc;
};

static int sum_task(void *arg)
{
	struct sum_call *c = arg;

	c->rc = tp_parallel_reduce(c->pool, c->begin, c->end, c->grain, &c->result, &c->identity,
				   sizeof(struct sum), sum_body, sum_combine, &c->ctx);
	return 0;
}

static void loops_reduce_sum_matches_formula(void **state)
{
	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int inside = 0; inside < 2; inside++)
			for (int s = 0; s < N_SIZES; s++)
				for (int g = 0; g < N_GRAINS; g++) {
					size_t n = loop_size(s), begin = 1000 + (size_t)g;
					struct sum_call c;
					uint64_t want = (uint64_t)n * begin +
							(uint64_t)n * (n - (n > 0)) / 2;

					memset(&c, 0, sizeof(c)); /* padding too: compared below */
					c.pool = pool;
					c.begin = begin;
					c.end = begin + n;
					c.grain = grains[g];
					c.result = (struct sum){ 12345, 0 };
					c.identity = (struct sum){ 0, SUM_MAGIC };
					c.rc = -1;
					if (inside)
						assert_int_equal(run_in_pool(pool, sum_task, &c),
								 0);
					else
						sum_task(&c);
					assert_int_equal(c.rc, 0);
					assert_int_equal(test_load(&c.ctx.bad_magic), 0);
					if (c.result.sum != want)
						fail_msg(
							"%zu threads, size %zu, grain %zu, %s: sum %llu, "
							"expected %llu",
							pool_sizes[p], n, grains[g],
							inside ? "inside" : "outside",
							(unsigned long long)c.result.sum,
							(unsigned long long)want);
					assert_int_equal(c.result.magic, SUM_MAGIC);
					/* The identity was copied, never modified. */
					assert_int_equal(c.identity.sum, 0);
					assert_int_equal(c.identity.magic, SUM_MAGIC);
				}
		tp_pool_destroy(pool);
	}
}

/*
 * sqrt without libm (the test executables do not link it): bit-trick guess, then Newton steps;
 * exact enough here, and the serial and parallel folds use the same function.
 */
static double root(double x)
{
	uint64_t b;
	double y;

	if (x <= 0)
		return 0;
	memcpy(&b, &x, sizeof(b));
	b = (b >> 1) + (1023ull << 51);
	memcpy(&y, &b, sizeof(y));
	for (int i = 0; i < 5; i++)
		y = 0.5 * (y + x / y);
	return y;
}

/* Sum of sqrt(i) in double: the split changes the rounding, not the value beyond a tolerance. */
static void sqrt_body(size_t b, size_t e, void *acc, void *ctx)
{
	double *d = acc;

	(void)ctx;
	for (size_t i = b; i < e; i++)
		*d += root((double)i);
}

static void dsum_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(double *)acc += *(const double *)other;
}

static void loops_reduce_sqrt_sum_within_tolerance(void **state)
{
	size_t n = big_size();
	double want = 0, zero = 0;

	(void)state;
	assert_true(root(4.0) == 2.0 && root(1e6) == 1e3);
	assert_true(root(2.0) * root(2.0) - 2.0 < 1e-15 && root(2.0) * root(2.0) - 2.0 > -1e-15);
	for (size_t i = 0; i < n; i++)
		want += root((double)i);
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int g = 0; g < N_GRAINS; g++) {
			double got = -1;

			assert_int_equal(tp_parallel_reduce(pool, 0, n, grains[g], &got, &zero,
							    sizeof(double), sqrt_body, dsum_combine,
							    NULL),
					 0);
			if (got - want > 1e-9 * want || want - got > 1e-9 * want)
				fail_msg("%zu threads, grain %zu: %.17g, serial %.17g",
					 pool_sizes[p], grains[g], got, want);
		}
		assert_true(zero == 0.0);
		tp_pool_destroy(pool);
	}
}

/*
 * A non-commutative, associative combine that checks the order: an accumulator is the interval
 * of indices it has folded; folding or combining anything but the next contiguous interval on
 * the right clears `ok`. The result must be exactly [begin, end) with ok set.
 */
struct interval {
	size_t first, last; /* [first, last] folded, if count > 0 */
	size_t count;
	int ok;
};

static void interval_body(size_t b, size_t e, void *acc, void *ctx)
{
	struct interval *v = acc;

	(void)ctx;
	if (b >= e)
		return;
	if (v->count == 0) {
		v->first = b;
	} else if (v->last + 1 != b) {
		v->ok = 0; /* folded out of order within a split */
	}
	v->last = e - 1;
	v->count += e - b;
}

static void interval_combine(void *acc, const void *other, void *ctx)
{
	struct interval *v = acc;
	const struct interval *o = other;

	(void)ctx;
	if (!o->ok)
		v->ok = 0;
	if (o->count == 0)
		return;
	if (v->count == 0) {
		v->first = o->first;
	} else if (v->last + 1 != o->first) {
		v->ok = 0; /* the right part was not the next one: combined out of order */
	}
	v->last = o->last;
	v->count += o->count;
}

/* 2x2 matrices mod P: M_i = [[1, i], [i*7+3, 1]] mod P; the product in index order. */
#define MOD_P 1000003u

struct mat {
	uint64_t a, b, c, d;
};

static struct mat mat_mul(struct mat x, struct mat y)
{
	return (struct mat){ (x.a * y.a + x.b * y.c) % MOD_P, (x.a * y.b + x.b * y.d) % MOD_P,
			     (x.c * y.a + x.d * y.c) % MOD_P, (x.c * y.b + x.d * y.d) % MOD_P };
}

static struct mat mat_of(size_t i)
{
	return (struct mat){ 1, i % MOD_P, (i * 7 + 3) % MOD_P, 1 };
}

static void mat_body(size_t b, size_t e, void *acc, void *ctx)
{
	struct mat *m = acc;

	(void)ctx;
	for (size_t i = b; i < e; i++)
		*m = mat_mul(*m, mat_of(i));
}

static void mat_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(struct mat *)acc = mat_mul(*(struct mat *)acc, *(const struct mat *)other);
}

static void loops_reduce_non_commutative_keeps_order(void **state)
{
	const struct interval empty = { 0, 0, 0, 1 };
	const struct mat ident = { 1, 0, 0, 1 };

	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int s = 1; s < N_SIZES; s++)
			for (int g = 0; g < N_GRAINS; g++) {
				size_t n = loop_size(s), begin = 17;
				struct interval iv = { 99, 99, 99, 99 };
				struct mat m = { 0, 0, 0, 0 }, want = ident;
				size_t mn = n < 100000 ? n : 100000;

				assert_int_equal(tp_parallel_reduce(pool, begin, begin + n,
								    grains[g], &iv, &empty,
								    sizeof(iv), interval_body,
								    interval_combine, NULL),
						 0);
				if (iv.ok != 1 || iv.count != n || iv.first != begin ||
				    iv.last != begin + n - 1)
					fail_msg("%zu threads, size %zu, grain %zu: got [%zu, %zu] "
						 "count %zu ok %d",
						 pool_sizes[p], n, grains[g], iv.first, iv.last,
						 iv.count, iv.ok);
				for (size_t i = begin; i < begin + mn; i++)
					want = mat_mul(want, mat_of(i));
				assert_int_equal(tp_parallel_reduce(pool, begin, begin + mn,
								    grains[g], &m, &ident,
								    sizeof(m), mat_body,
								    mat_combine, NULL),
						 0);
				if (memcmp(&m, &want, sizeof(m)) != 0)
					fail_msg("%zu threads, size %zu, grain %zu: matrix product "
						 "differs from the serial one",
						 pool_sizes[p], mn, grains[g]);
			}
		tp_pool_destroy(pool);
	}
}

/* The largest accumulator (TP_REDUCE_MAX_SIZE bytes): 32 buckets of sums by i % 32. */
#define BUCKETS (TP_REDUCE_MAX_SIZE / sizeof(uint64_t))

static void bucket_body(size_t b, size_t e, void *acc, void *ctx)
{
	uint64_t *h = acc;

	(void)ctx;
	for (size_t i = b; i < e; i++)
		h[i % BUCKETS] += i;
}

static void bucket_combine(void *acc, const void *other, void *ctx)
{
	uint64_t *h = acc;
	const uint64_t *o = other;

	(void)ctx;
	for (size_t k = 0; k < BUCKETS; k++)
		h[k] += o[k];
}

static void loops_reduce_max_accumulator_size(void **state)
{
	uint64_t ident[BUCKETS], got[BUCKETS], want[BUCKETS];
	tp_pool *pool = test_pool_new(2);
	size_t n = 100000;

	(void)state;
	assert_int_equal(sizeof(ident), TP_REDUCE_MAX_SIZE);
	memset(ident, 0, sizeof(ident));
	memset(want, 0, sizeof(want));
	memset(got, 0xAA, sizeof(got));
	for (size_t i = 0; i < n; i++)
		want[i % BUCKETS] += i;
	assert_int_equal(tp_parallel_reduce(pool, 0, n, 0, got, ident, sizeof(ident), bucket_body,
					    bucket_combine, NULL),
			 0);
	assert_memory_equal(got, want, sizeof(got));
	for (size_t k = 0; k < BUCKETS; k++)
		assert_int_equal(ident[k], 0);
	tp_pool_destroy(pool);
}

/* An empty range: success, and the result is the identity. */
static void loops_reduce_empty_range_gives_identity(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct sum_ctx ctx = { 0, 0 };
	struct sum ident = { 77, SUM_MAGIC }, got = { 1, 2 };

	(void)state;
	assert_int_equal(tp_parallel_reduce(pool, 5, 5, 0, &got, &ident, sizeof(got), sum_body,
					    sum_combine, &ctx),
			 0);
	assert_int_equal(got.sum, 77);
	assert_int_equal(got.magic, SUM_MAGIC);
	tp_pool_destroy(pool);
}

static void loops_reduce_bad_arguments_einval(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct sum_ctx ctx = { 0, 0 };
	const struct sum ident = { 0, SUM_MAGIC };
	struct sum got = { 4242, 4242 };

	(void)state;
	/* (An accumulator above TP_REDUCE_MAX_SIZE is no error: loops_reduce_wide_*.) */
	assert_int_equal(
		tp_parallel_reduce(pool, 0, 100, 0, &got, &ident, 0, sum_body, sum_combine, &ctx),
		EINVAL);
	assert_int_equal(tp_parallel_reduce(pool, 100, 99, 0, &got, &ident, sizeof(got), sum_body,
					    sum_combine, &ctx),
			 EINVAL);
	assert_int_equal(tp_parallel_reduce(NULL, 0, 100, 0, &got, &ident, sizeof(got), sum_body,
					    sum_combine, &ctx),
			 EINVAL);
	assert_int_equal(tp_parallel_reduce(pool, 0, 100, 0, NULL, &ident, sizeof(got), sum_body,
					    sum_combine, &ctx),
			 EINVAL);
	assert_int_equal(tp_parallel_reduce(pool, 0, 100, 0, &got, NULL, sizeof(got), sum_body,
					    sum_combine, &ctx),
			 EINVAL);
	assert_int_equal(tp_parallel_reduce(pool, 0, 100, 0, &got, &ident, sizeof(got), NULL,
					    sum_combine, &ctx),
			 EINVAL);
	assert_int_equal(tp_parallel_reduce(pool, 0, 100, 0, &got, &ident, sizeof(got), sum_body,
					    NULL, &ctx),
			 EINVAL);
	/* Nothing ran, the result is untouched. */
	assert_int_equal(test_load(&ctx.calls), 0);
	assert_int_equal(got.sum, 4242);
	assert_int_equal(got.magic, 4242);
	tp_pool_destroy(pool);
}

static void loops_after_shutdown_eshutdown(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct sum_ctx ctx = { 0, 0 };
	const struct sum ident = { 0, SUM_MAGIC };
	struct sum got = { 4242, 4242 };
	struct visit v;

	(void)state;
	visit_init(&v, 0, 100);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_parallel_for(pool, 0, 100, 0, visit_body, &v), ESHUTDOWN);
	assert_int_equal(tp_parallel_try_for(pool, 0, 100, 0, visit_try_body, &v), ESHUTDOWN);
	assert_int_equal(tp_parallel_reduce(pool, 0, 100, 0, &got, &ident, sizeof(got), sum_body,
					    sum_combine, &ctx),
			 ESHUTDOWN);
	assert_int_equal(test_load(&v.calls), 0);
	assert_int_equal(test_load(&ctx.calls), 0);
	assert_int_equal(got.sum, 4242);
	assert_int_equal(got.magic, 4242);
	free(v.count);
	tp_pool_destroy(pool);
}

/*
 * A loop called from outside the pool, still queued behind a gated task when a CANCEL shutdown
 * begins: the shutdown cancels it before it starts, and the caller gets ESHUTDOWN (the pool is
 * shutting down), not the ECANCELED of the internal task, with no iteration run.
 */
enum queued_kind {
	QUEUED_FOR,
	QUEUED_TRY_FOR,
	QUEUED_REDUCE,
	N_QUEUED
};

static const char *const queued_name[N_QUEUED] = { "tp_parallel_for", "tp_parallel_try_for",
						   "tp_parallel_reduce" };

struct queued_loop {
	tp_pool *pool;
	enum queued_kind kind;
	struct visit v;
	struct sum_ctx ctx;
	struct sum got;
	int rc;
	long done; /* atomic */
};

static void *queued_loop_main(void *arg)
{
	struct queued_loop *q = arg;
	const struct sum ident = { 0, SUM_MAGIC };

	if (q->kind == QUEUED_REDUCE)
		q->rc = tp_parallel_reduce(q->pool, 0, 100, 0, &q->got, &ident, sizeof(q->got),
					   sum_body, sum_combine, &q->ctx);
	else if (q->kind == QUEUED_TRY_FOR)
		q->rc = tp_parallel_try_for(q->pool, 0, 100, 0, visit_try_body, &q->v);
	else
		q->rc = tp_parallel_for(q->pool, 0, 100, 0, visit_body, &q->v);
	test_store(&q->done, 1);
	return NULL;
}

struct gate_open_later {
	long *gate;
	long ms;
};

static void *open_gate_later(void *arg)
{
	struct gate_open_later *g = arg;

	test_sleep_us(g->ms * 1000);
	test_store(g->gate, 1);
	return NULL;
}

static int wait_gate(void *arg)
{
	long *gate = arg;

	while (test_load(gate) == 0)
		test_sleep_us(100);
	return 0;
}

static void loops_outside_cancelled_by_shutdown_eshutdown(void **state)
{
	(void)state;
	for (int kind = 0; kind < N_QUEUED; kind++) {
		struct queued_loop q = { 0 };
		long gate = 0;
		struct gate_open_later opener = { &gate, 50 };
		tp_future *held;
		pthread_t caller, gate_thread;

		q.pool = test_pool_new(1);
		q.kind = (enum queued_kind)kind;
		q.got = (struct sum){ 4242, 4242 };
		visit_init(&q.v, 0, 100);
		held = tp_enqueue(q.pool, wait_gate, &gate);
		assert_non_null(held);
		while (tp_future_state(held) != TP_FUTURE_RUNNING)
			test_sleep_us(100);
		assert_int_equal(pthread_create(&caller, NULL, queued_loop_main, &q), 0);
		/* Let the caller queue its loop behind the gated task and wait for it. (Were the
		 * shutdown to begin first, the loop would be refused with ESHUTDOWN too.) */
		test_sleep_us(50000);
		/* The gate opens while the shutdown waits for the running task. */
		assert_int_equal(pthread_create(&gate_thread, NULL, open_gate_later, &opener), 0);
		assert_int_equal(tp_pool_shutdown(q.pool, TP_SHUTDOWN_CANCEL), 0);
		pthread_join(gate_thread, NULL);
		if (!test_await(&q.done, 10000))
			fail_msg("the loop's caller did not return after the shutdown");
		pthread_join(caller, NULL);
		assert_int_equal(tp_future_wait(held), 0);
		tp_future_release(held);
		tp_pool_destroy(q.pool);
		if (q.rc != ESHUTDOWN)
			fail_msg("%s: %d, expected ESHUTDOWN (%d)", queued_name[kind], q.rc,
				 ESHUTDOWN);
		assert_int_equal(test_load(&q.v.calls), 0);
		assert_int_equal(test_load(&q.ctx.calls), 0);
		assert_int_equal(q.got.sum, 4242); /* written only on success */
		free(q.v.count);
	}
}

/* Nested reduce: an outer reduce whose body runs an inner reduce per index (on 1 thread too). */
struct nest_red {
	tp_pool *pool;
	long bad_rc; /* atomic */
};

static void inner_sum_body(size_t b, size_t e, void *acc, void *ctx)
{
	(void)ctx;
	for (size_t i = b; i < e; i++)
		*(uint64_t *)acc += i;
}

static void u64_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(uint64_t *)acc += *(const uint64_t *)other;
}

static void outer_sum_body(size_t b, size_t e, void *acc, void *ctx)
{
	struct nest_red *nr = ctx;
	const uint64_t zero = 0;

	for (size_t o = b; o < e; o++) {
		uint64_t inner = 0;

		if (tp_parallel_reduce(nr->pool, 0, o, 0, &inner, &zero, sizeof(inner),
				       inner_sum_body, u64_combine, NULL) != 0)
			test_inc(&nr->bad_rc);
		*(uint64_t *)acc += inner;
	}
}

struct nest_red_call {
	struct nest_red *nr;
	uint64_t result;
	int rc;
};

static int nest_red_task(void *arg)
{
	struct nest_red_call *c = arg;
	const uint64_t zero = 0;

	c->rc = tp_parallel_reduce(c->nr->pool, 0, 300, 1, &c->result, &zero, sizeof(c->result),
				   outer_sum_body, u64_combine, c->nr);
	return 0;
}

static void loops_reduce_nested(void **state)
{
	uint64_t want = 0;

	(void)state;
	for (uint64_t o = 0; o < 300; o++)
		want += o * (o - (o > 0)) / 2;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int inside = 0; inside < 2; inside++) {
			struct nest_red nr = { pool, 0 };
			struct nest_red_call c = { &nr, 0, -1 };

			if (inside)
				assert_int_equal(run_in_pool(pool, nest_red_task, &c), 0);
			else
				nest_red_task(&c);
			assert_int_equal(c.rc, 0);
			assert_int_equal(test_load(&nr.bad_rc), 0);
			assert_int_equal(c.result, want);
		}
		tp_pool_destroy(pool);
	}
}

/* ---------------------------------------------------------------------------------------------
 * tp_parallel_reduce with accumulators larger than TP_REDUCE_MAX_SIZE
 * ------------------------------------------------------------------------------------------ */

/* splitmix64's finalizer: a bijection of 64-bit words, so key(i) == key(j) only for i == j. */
static uint64_t key(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
	return x ^ (x >> 31);
}

/*
 * A weighted histogram of `words - 1` uint64 bins: index i adds i + 1 to bin key(i) % bins, so a
 * lost or repeated index changes the result. The last word is a tag that the identity holds and
 * every accumulator must carry (a split that did not start from a copy of the identity shows).
 */
#define HIST_TAG 0x7a67a67a67a67a67u

struct hist_ctx {
	size_t words;
	long bad_tag; /* atomic: an accumulator without the identity's tag */
	long calls;   /* atomic: body calls */
};

static void hist_body(size_t b, size_t e, void *acc, void *ctx)
{
	struct hist_ctx *c = ctx;
	uint64_t *h = acc;
	size_t bins = c->words - 1;

	test_inc(&c->calls);
	if (h[bins] != HIST_TAG)
		test_inc(&c->bad_tag);
	for (size_t i = b; i < e; i++)
		h[key(i) % bins] += i + 1;
}

static void hist_combine(void *acc, const void *other, void *ctx)
{
	struct hist_ctx *c = ctx;
	uint64_t *h = acc;
	const uint64_t *o = other;
	size_t bins = c->words - 1;

	if (h[bins] != HIST_TAG || o[bins] != HIST_TAG)
		test_inc(&c->bad_tag);
	for (size_t k = 0; k < bins; k++)
		h[k] += o[k];
}

struct hist_call {
	tp_pool *pool;
	size_t n, grain;
	uint64_t *result;
	const uint64_t *identity;
	struct hist_ctx *ctx;
	int rc;
};

static int hist_task(void *arg)
{
	struct hist_call *c = arg;

	c->rc = tp_parallel_reduce(c->pool, 0, c->n, c->grain, c->result, c->identity,
				   c->ctx->words * sizeof(uint64_t), hist_body, hist_combine,
				   c->ctx);
	return 0;
}

/* A histogram of `words` words against the serial fold: every pool, grain, inside and outside. */
static void hist_check(size_t words, size_t n)
{
	static const size_t g[] = { 0, 1, 7, 1000 };
	size_t bytes = words * sizeof(uint64_t);
	uint64_t *ident = calloc(words, sizeof(uint64_t)), *want = calloc(words, sizeof(uint64_t));
	uint64_t *got = malloc(bytes);
	struct hist_ctx serial = { words, 0, 0 };

	assert_true(bytes > TP_REDUCE_MAX_SIZE);
	assert_non_null(ident);
	assert_non_null(want);
	assert_non_null(got);
	ident[words - 1] = HIST_TAG;
	memcpy(want, ident, bytes);
	hist_body(0, n, want, &serial);
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int inside = 0; inside < 2; inside++)
			for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
				struct hist_ctx ctx = { words, 0, 0 };
				struct hist_call c = { pool, n, g[k], got, ident, &ctx, -1 };

				memset(got, 0xAA, bytes);
				if (inside)
					assert_int_equal(run_in_pool(pool, hist_task, &c), 0);
				else
					hist_task(&c);
				assert_int_equal(c.rc, 0);
				assert_int_equal(test_load(&ctx.bad_tag), 0);
				if (memcmp(got, want, bytes) != 0)
					fail_msg(
						"%zu bytes, %zu threads, grain %zu, %s: the histogram "
						"differs from the serial one",
						bytes, pool_sizes[p], g[k],
						inside ? "inside" : "outside");
				/* The identity was copied, never modified. */
				for (size_t w = 0; w + 1 < words; w++)
					assert_int_equal(ident[w], 0);
				assert_int_equal(ident[words - 1], HIST_TAG);
			}
		tp_pool_destroy(pool);
	}
	free(ident);
	free(want);
	free(got);
}

/* 256 bins of uint64 (2 KiB) and the tag. */
static void loops_reduce_wide_2k_histogram_matches_serial(void **state)
{
	(void)state;
	hist_check(256 + 1, big_size());
}

/* 64 KiB: 8191 bins and the tag. */
static void loops_reduce_wide_64k_accumulator_matches_serial(void **state)
{
	(void)state;
	hist_check(65536 / sizeof(uint64_t), (size_t)test_scaled(200000));
}

/*
 * The order check of loops_reduce_non_commutative_keeps_order on accumulators of `size` bytes: a
 * struct interval followed by a pattern that the identity holds. Each combine checks both
 * patterns (a split's accumulator copied from somewhere else than the identity shows).
 */
struct wide_interval_ctx {
	size_t size;
	long bad_pattern; /* atomic */
};

static unsigned char pattern_byte(size_t k)
{
	return (unsigned char)(k * 131 + 7);
}

static bool pattern_ok(const void *acc, size_t size)
{
	const unsigned char *p = acc;

	for (size_t k = sizeof(struct interval); k < size; k++)
		if (p[k] != pattern_byte(k))
			return false;
	return true;
}

static void wide_interval_body(size_t b, size_t e, void *acc, void *ctx)
{
	struct wide_interval_ctx *c = ctx;
	const unsigned char *p = acc;

	/* The last byte only here: chunks are many, splits few. */
	if (p[c->size - 1] != pattern_byte(c->size - 1))
		test_inc(&c->bad_pattern);
	interval_body(b, e, acc, NULL);
}

static void wide_interval_combine(void *acc, const void *other, void *ctx)
{
	struct wide_interval_ctx *c = ctx;

	if (!pattern_ok(acc, c->size) || !pattern_ok(other, c->size))
		test_inc(&c->bad_pattern);
	interval_combine(acc, other, NULL);
}

static void loops_reduce_wide_non_commutative_keeps_order(void **state)
{
	/* The largest accumulator kept in a split's frame, the smallest allocated one, larger. */
	static const size_t sizes[] = { TP_REDUCE_MAX_SIZE, TP_REDUCE_MAX_SIZE + 1, 4096, 65536 };
	static const struct interval empty = { 0, 0, 0, 1 }; /* static: its padding is zero too */

	(void)state;
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		size_t size = sizes[z];
		unsigned char *ident = malloc(size), *ident_copy = malloc(size),
			      *got = malloc(size);

		assert_non_null(ident);
		assert_non_null(ident_copy);
		assert_non_null(got);
		memcpy(ident, &empty, sizeof(empty));
		for (size_t k = sizeof(empty); k < size; k++)
			ident[k] = pattern_byte(k);
		memcpy(ident_copy, ident, size);
		for (size_t p = 0; p < N_POOLS; p++) {
			tp_pool *pool = test_pool_new(pool_sizes[p]);

			for (int s = 1; s < N_SIZES; s++)
				for (int g = 0; g < N_GRAINS; g++) {
					size_t n = loop_size(s), begin = 17;
					struct wide_interval_ctx ctx = { size, 0 };
					struct interval iv;

					/* Checking 64 KiB per combine: a shorter range there. */
					if (size > 4096 && n > 100000)
						n = 100000;
					memset(got, 0x99, size);
					assert_int_equal(
						tp_parallel_reduce(pool, begin, begin + n,
								   grains[g], got, ident, size,
								   wide_interval_body,
								   wide_interval_combine, &ctx),
						0);
					memcpy(&iv, got, sizeof(iv));
					if (iv.ok != 1 || iv.count != n || iv.first != begin ||
					    iv.last != begin + n - 1)
						fail_msg(
							"%zu bytes, %zu threads, size %zu, grain %zu: "
							"got [%zu, %zu] count %zu ok %d",
							size, pool_sizes[p], n, grains[g], iv.first,
							iv.last, iv.count, iv.ok);
					assert_int_equal(test_load(&ctx.bad_pattern), 0);
					assert_true(pattern_ok(got, size));
					assert_memory_equal(ident, ident_copy, size);
				}
			tp_pool_destroy(pool);
		}
		free(ident);
		free(ident_copy);
		free(got);
	}
}

/* ---------------------------------------------------------------------------------------------
 * tp_parallel_try_for
 * ------------------------------------------------------------------------------------------ */

/*
 * A search for the index whose key is key(target), or, with first_chunk, for whatever the first
 * chunk to run (in time) holds; the body that finds it records it and returns `code`. Each body
 * call counts one chunk.
 */
struct search {
	size_t begin, end; /* the loop's range */
	size_t target;	   /* the index searched for (none if outside the range) */
	int code;	   /* what the body that finds it returns */
	long chunks;	   /* atomic: body calls */
	long found;	   /* atomic: target + 1 once found */
	long bad_range;	   /* atomic: a chunk outside [begin, end) or reversed */
	bool first_chunk;  /* the first body call finds (the index it begins with) */
};

static int search_body(size_t b, size_t e, void *ctx)
{
	struct search *s = ctx;
	uint64_t want = key(s->target);
	long chunk = test_inc(&s->chunks);

	if (b > e || b < s->begin || e > s->end) {
		test_inc(&s->bad_range);
		return 0;
	}
	if (s->first_chunk) {
		if (chunk != 1)
			return 0;
		test_store(&s->found, (long)b + 1);
		return s->code;
	}
	for (size_t i = b; i < e; i++)
		if (key(i) == want) {
			test_store(&s->found, (long)i + 1);
			return s->code;
		}
	return 0;
}

struct search_call {
	tp_pool *pool;
	size_t grain;
	struct search *s;
	int rc;
};

static int search_task(void *arg)
{
	struct search_call *c = arg;

	c->rc = tp_parallel_try_for(c->pool, c->s->begin, c->s->end, c->grain, search_body, c->s);
	return 0;
}

/* Runs the search on `pool` from outside or from a task; returns the loop's code. */
static int search_run(tp_pool *pool, struct search *s, size_t grain, bool inside)
{
	struct search_call c = { pool, grain, s, -1 };

	if (inside)
		assert_int_equal(run_in_pool(pool, search_task, &c), 0);
	else
		search_task(&c);
	return c.rc;
}

/*
 * The range holds far more work than a few time slices of the workers, so that "far fewer chunks
 * than all" does not measure the scheduler; the floor under the scaled size keeps it so under
 * valgrind (where a broken stop would cost under a second). A search that stops does little of
 * it.
 */
static size_t search_size(void)
{
	size_t n = (size_t)test_scaled(100000000);

	return n > 16000000 ? n : 16000000;
}

/*
 * A stop at the start, two ways: the target is the first index, or the first chunk to run (in
 * time) stops the loop. The code is the body's (negative codes too); on one thread exactly one
 * chunk runs, the rest are skipped. With more threads, after a stop in the first chunk to run,
 * far fewer chunks run than the range holds (each other worker finishes the chunk it had
 * started, then sees the stop). A stop at the first index comes only when the worker holding it
 * gets to run, and other workers may have stolen halves of the range before (under valgrind,
 * which runs one thread at a time, 8 workers once ran 3,000 of 16,000 chunks first): there the
 * check is that chunks were skipped.
 */
static void loops_try_for_stop_at_start_skips_the_rest(void **state)
{
	const size_t grain = 1000;
	size_t n = search_size(), all = (n + grain - 1) / grain;

	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int mode = 0; mode < 4; mode++) {
			bool inside = mode % 2 == 1, first_chunk = mode >= 2;
			struct search s = { 5, 5 + n, 5, inside ? -7 : 42, 0, 0, 0, first_chunk };
			int rc = search_run(pool, &s, grain, inside);
			long chunks = test_load(&s.chunks);
			long bound = pool_sizes[p] == 1 ? 1
				     : first_chunk	? (long)all / 4
							: (long)all - 1;

			if (rc != s.code)
				fail_msg("%zu threads, mode %d: returned %d, the body returned %d",
					 pool_sizes[p], mode, rc, s.code);
			if (first_chunk)
				assert_true(test_load(&s.found) != 0);
			else
				assert_int_equal(test_load(&s.found), (long)s.target + 1);
			assert_int_equal(test_load(&s.bad_range), 0);
			if (chunks < 1 || chunks > bound)
				fail_msg(
					"%zu threads, mode %d: %ld of %zu chunks ran after a stop at "
					"the start (at most %ld expected)",
					pool_sizes[p], mode, chunks, all, bound);
		}
		tp_pool_destroy(pool);
	}
}

/* Targets anywhere (and none): found and returned when in the range; 0 and every chunk if not. */
static void loops_try_for_search_finds_target(void **state)
{
	const size_t n = (size_t)test_scaled(300000);
	const size_t targets[] = { 0, n / 2, n - 1, n / 3 + 1, n + 10 };

	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int inside = 0; inside < 2; inside++)
			for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++)
				for (int g = 0; g < N_GRAINS; g++) {
					struct search s = { 0, n, targets[t], ETIMEDOUT,
							    0, 0, 0,	      false };
					bool in_range = targets[t] < n;
					int rc = search_run(pool, &s, grains[g], inside);

					if (rc != (in_range ? ETIMEDOUT : 0))
						fail_msg("%zu threads, grain %zu, target %zu: "
							 "returned %d",
							 pool_sizes[p], grains[g], targets[t], rc);
					assert_int_equal(test_load(&s.found),
							 in_range ? (long)targets[t] + 1 : 0);
					assert_int_equal(test_load(&s.bad_range), 0);
				}
		tp_pool_destroy(pool);
	}
}

/*
 * Several bodies stop the loop, with different codes: every chunk that starts at or after n / 2.
 * The loop returns one of their codes; on one thread, where chunks run in iteration order, the
 * first such chunk's, and no other chunk runs after it.
 */
struct multi_stop {
	size_t n;
	long stops; /* atomic: bodies that returned non-zero */
	long codes; /* atomic: bit c set when a body returned code c (1..62) */
	long first; /* atomic: the lowest begin of a stopping chunk, + 1 */
	long after; /* atomic: chunks that began after a stop had been returned (one thread only) */
};

static int multi_stop_code(size_t b)
{
	return 1 + (int)(b % 62);
}

static int multi_stop_body(size_t b, size_t e, void *ctx)
{
	struct multi_stop *m = ctx;
	long first;

	(void)e;
	if (test_load(&m->stops) != 0)
		test_inc(&m->after);
	if (b < m->n / 2)
		return 0;
	test_inc(&m->stops);
	__atomic_fetch_or(&m->codes, 1L << multi_stop_code(b), __ATOMIC_SEQ_CST);
	first = test_load(&m->first);
	while ((first == 0 || (long)b + 1 < first) &&
	       !__atomic_compare_exchange_n(&m->first, &first, (long)b + 1, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST))
		;
	return multi_stop_code(b);
}

static void loops_try_for_several_stops_return_one_code(void **state)
{
	const size_t n = (size_t)test_scaled(100000);

	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int g = 0; g < N_GRAINS; g++) {
			struct multi_stop m = { n, 0, 0, 0, 0 };
			int rc = tp_parallel_try_for(pool, 0, n, grains[g], multi_stop_body, &m);
			long codes = test_load(&m.codes);

			if (n / 2 >= n || grains[g] >= n) {
				/* One chunk [0, n) that begins below n / 2: nothing stops. */
				assert_int_equal(rc, 0);
				continue;
			}
			if (rc < 1 || rc > 62 || (codes & (1L << rc)) == 0)
				fail_msg("%zu threads, grain %zu: returned %d, bodies returned "
					 "codes 0x%lx",
					 pool_sizes[p], grains[g], rc, codes);
			if (pool_sizes[p] == 1) {
				assert_int_equal(test_load(&m.stops), 1);
				assert_int_equal(test_load(&m.after), 0);
				assert_int_equal(rc,
						 multi_stop_code((size_t)test_load(&m.first) - 1));
			}
		}
		tp_pool_destroy(pool);
	}
}

/* A body that never stops the loop: tp_parallel_for, every index exactly once, chunks <= grain. */
struct try_visit_call {
	tp_pool *pool;
	size_t begin, end, grain;
	struct visit *v;
	int rc;
};

static int try_visit_task(void *arg)
{
	struct try_visit_call *c = arg;

	c->rc = tp_parallel_try_for(c->pool, c->begin, c->end, c->grain, visit_try_body, c->v);
	return 0;
}

static void loops_try_for_never_stopping_visits_each_index_once(void **state)
{
	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int inside = 0; inside < 2; inside++)
			for (int s = 0; s < N_SIZES; s++)
				for (int g = 0; g < N_GRAINS; g++) {
					size_t n = loop_size(s), begin = 3 + (size_t)s;
					struct visit v;
					struct try_visit_call c;

					/* A quarter of the big size: the driver is tp_parallel_for's,
					 * which the tests above run on the whole one. */
					if (s == N_SIZES - 1)
						n /= 4;
					visit_init(&v, begin, n);
					c = (struct try_visit_call){ pool,	begin, begin + n,
								     grains[g], &v,    -1 };
					if (inside)
						assert_int_equal(
							run_in_pool(pool, try_visit_task, &c), 0);
					else
						try_visit_task(&c);
					assert_int_equal(c.rc, 0);
					if (grains[g] > 0 &&
					    test_load(&v.max_chunk) > (long)grains[g])
						fail_msg(
							"%zu threads, grain %zu: a body call got %ld "
							"iterations",
							pool_sizes[p], grains[g],
							test_load(&v.max_chunk));
					visit_check(&v, inside ? "try inside" : "try outside",
						    pool_sizes[p], grains[g]);
				}
		tp_pool_destroy(pool);
	}
}

static void loops_try_for_bad_arguments_einval(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct visit v;

	(void)state;
	visit_init(&v, 0, 10);
	assert_int_equal(tp_parallel_try_for(pool, 10, 9, 0, visit_try_body, &v), EINVAL);
	assert_int_equal(tp_parallel_try_for(pool, (size_t)-1, 0, 1, visit_try_body, &v), EINVAL);
	assert_int_equal(tp_parallel_try_for(NULL, 0, 10, 0, visit_try_body, &v), EINVAL);
	assert_int_equal(tp_parallel_try_for(pool, 0, 10, 0, NULL, &v), EINVAL);
	assert_int_equal(test_load(&v.calls), 0);
	/* An empty range visits nothing and succeeds. */
	assert_int_equal(tp_parallel_try_for(pool, 5, 5, 0, visit_try_body, &v), 0);
	assert_int_equal(test_load(&v.calls), 0);
	free(v.count);
	tp_pool_destroy(pool);
}

/*
 * Nested try loops: an outer loop over OUTER indices whose body runs an inner search over INNER.
 * Each inner loop has its own stop: an inner stop ends only that inner loop. With `propagate`,
 * only outer index STOP_OUTER's inner search finds its target and the outer body returns the
 * inner code, which stops the outer loop; without, every inner search finds its target and the
 * outer body swallows the code, so every outer index runs.
 */
enum {
	STOP_OUTER = 20,
	STOP_INNER = 1500,
	NEST_CODE = 77
};

struct try_nest {
	tp_pool *pool;
	bool propagate;
	size_t inner_grain;
	long outer_runs[OUTER];	 /* atomic */
	long inner_rc[OUTER];	 /* atomic: inner loop's code + 1 */
	long inner_found[OUTER]; /* atomic: what the inner search found (its `found`) */
};

static int try_outer_body(size_t b, size_t e, void *ctx)
{
	struct try_nest *tn = ctx;

	for (size_t o = b; o < e; o++) {
		bool has_target = !tn->propagate || o == STOP_OUTER;
		struct search s = { 0, INNER, has_target ? STOP_INNER : INNER, NEST_CODE, 0, 0,
				    0, false };
		int rc = tp_parallel_try_for(tn->pool, 0, INNER, tn->inner_grain, search_body, &s);

		test_inc(&tn->outer_runs[o]);
		test_store(&tn->inner_rc[o], (long)rc + 1);
		test_store(&tn->inner_found[o], test_load(&s.found));
		if (rc != 0 && tn->propagate)
			return rc;
	}
	return 0;
}

struct try_nest_call {
	struct try_nest *tn;
	int rc;
};

static int try_nest_task(void *arg)
{
	struct try_nest_call *c = arg;

	c->rc = tp_parallel_try_for(c->tn->pool, 0, OUTER, 1, try_outer_body, c->tn);
	return 0;
}

static void loops_try_for_nested(void **state)
{
	(void)state;
	for (size_t p = 0; p < N_POOLS; p++) {
		tp_pool *pool = test_pool_new(pool_sizes[p]);

		for (int mode = 0; mode < 4; mode++) {
			struct try_nest tn = { 0 };
			struct try_nest_call c = { &tn, -1 };
			bool inside = mode >= 2;

			tn.pool = pool;
			tn.propagate = mode % 2 == 1;
			tn.inner_grain = tn.propagate ? 7 : 0;
			if (inside)
				assert_int_equal(run_in_pool(pool, try_nest_task, &c), 0);
			else
				try_nest_task(&c);
			if (c.rc != (tn.propagate ? NEST_CODE : 0))
				fail_msg("%zu threads, mode %d: the outer loop returned %d",
					 pool_sizes[p], mode, c.rc);
			for (size_t o = 0; o < OUTER; o++) {
				long runs = test_load(&tn.outer_runs[o]);
				long rc = test_load(&tn.inner_rc[o]) - 1;
				bool has_target = !tn.propagate || o == STOP_OUTER;

				/* Stopped: outer indices may be skipped, none runs twice. */
				assert_true(runs == 1 || (tn.propagate && runs == 0));
				if (runs == 0)
					continue;
				if (rc != (has_target ? NEST_CODE : 0))
					fail_msg(
						"%zu threads, mode %d: inner loop %zu returned %ld",
						pool_sizes[p], mode, o, rc);
				assert_int_equal(test_load(&tn.inner_found[o]),
						 has_target ? STOP_INNER + 1 : 0);
			}
			if (tn.propagate)
				assert_int_equal(test_load(&tn.outer_runs[STOP_OUTER]), 1);
		}
		tp_pool_destroy(pool);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loops_for_visits_each_index_once_from_outside),
		cmocka_unit_test(loops_for_visits_each_index_once_from_a_task),
		cmocka_unit_test(loops_for_chunks_at_most_grain),
		cmocka_unit_test(loops_for_bad_arguments_einval),
		cmocka_unit_test(loops_for_nested),
		cmocka_unit_test(loops_reduce_sum_matches_formula),
		cmocka_unit_test(loops_reduce_sqrt_sum_within_tolerance),
		cmocka_unit_test(loops_reduce_non_commutative_keeps_order),
		cmocka_unit_test(loops_reduce_max_accumulator_size),
		cmocka_unit_test(loops_reduce_empty_range_gives_identity),
		cmocka_unit_test(loops_reduce_bad_arguments_einval),
		cmocka_unit_test(loops_after_shutdown_eshutdown),
		cmocka_unit_test(loops_outside_cancelled_by_shutdown_eshutdown),
		cmocka_unit_test(loops_reduce_nested),
		cmocka_unit_test(loops_reduce_wide_2k_histogram_matches_serial),
		cmocka_unit_test(loops_reduce_wide_64k_accumulator_matches_serial),
		cmocka_unit_test(loops_reduce_wide_non_commutative_keeps_order),
		cmocka_unit_test(loops_try_for_stop_at_start_skips_the_rest),
		cmocka_unit_test(loops_try_for_search_finds_target),
		cmocka_unit_test(loops_try_for_several_stops_return_one_code),
		cmocka_unit_test(loops_try_for_never_stopping_visits_each_index_once),
		cmocka_unit_test(loops_try_for_bad_arguments_einval),
		cmocka_unit_test(loops_try_for_nested),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
