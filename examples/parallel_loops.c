/*
 * parallel_loops.c - data-parallel loops on a pool:
 *
 *  1. tp_parallel_for(): Jacobi sweeps of a 2D heat equation. Each sweep computes every interior
 *     point of a new grid from the old one. Rows are independent, so a sweep is a parallel loop
 *     over rows, and the loop's return is the barrier between two sweeps.
 *  2. tp_parallel_try_for(): a check of the grid that stops at the first bad value.
 *  3. tp_parallel_reduce(): a histogram of the final temperatures. Each split of the range counts
 *     into its own copy of the bins, and the copies are added up at the end.
 *
 * Each result is checked against a serial loop. The program exits 1 if one is wrong, so it also
 * runs as a test (meson test --suite examples).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread_pool.h"

#define N      128 /* grid points per side, the fixed boundary included */
#define SWEEPS 1000
#define HOT    100.0 /* the top edge's temperature; the other edges are at 0 */
#define BINS   10    /* the histogram's bins: [0, 10), [10, 20), ..., [90, 100] degrees */

/* ---------------------------------------------------------------------------------------------
 * 1. Jacobi sweeps
 * ------------------------------------------------------------------------------------------ */

struct sweep {
	const double *cur; /* read only during a sweep */
	double *next;	   /* each row written by exactly one chunk */
};

/* The one place that does the arithmetic. The serial and the parallel sweep both call it, so
 * each point is computed by the same operations in the same order: the results are identical
 * to the last bit, whichever thread computes a row. */
static void relax_row(const double *cur, double *next, size_t i)
{
	for (size_t j = 1; j < N - 1; j++)
		next[i * N + j] = 0.25 * (cur[(i - 1) * N + j] + cur[(i + 1) * N + j] +
					  cur[i * N + j - 1] + cur[i * N + j + 1]);
}

/* A tp_for_fn: the pool calls it with chunks [begin, end) of the row range. */
static void relax_rows(size_t begin, size_t end, void *ctx)
{
	const struct sweep *s = ctx;

	for (size_t i = begin; i < end; i++)
		relax_row(s->cur, s->next, i);
}

/* Both grids get the same boundary (never written by a sweep) and a cold interior. */
static void init_grid(double *g)
{
	for (size_t i = 0; i < N * N; i++)
		g[i] = i < N ? HOT : 0.0;
}

/* Bit-for-bit equality: stricter than ==, for which -0.0 == 0.0. */
static int same_bits(const double *x, const double *y, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t u, v;

		memcpy(&u, &x[i], sizeof(u));
		memcpy(&v, &y[i], sizeof(v));
		if (u != v)
			return 0;
	}
	return 1;
}

/* SWEEPS sweeps from a and b; returns the grid that holds the last one (a or b). */
static double *heat(tp_pool *pool, double *a, double *b, int *rc)
{
	init_grid(a);
	init_grid(b);
	for (int k = 0; k < SWEEPS; k++) {
		struct sweep s = { a, b };
		double *t;

		if (pool == NULL) {
			for (size_t i = 1; i < N - 1; i++)
				relax_row(a, b, i);
		} else {
			/* Interior rows 1 .. N-2, 8 rows per chunk (grain 0 would pick one). It
			 * returns once every row is done: b is complete, a can be reused. */
			*rc = tp_parallel_for(pool, 1, N - 1, 8, relax_rows, &s);
			if (*rc != 0)
				return b;
		}
		t = a;
		a = b;
		b = t;
	}
	return a;
}

/* ---------------------------------------------------------------------------------------------
 * 2. A check that stops early
 * ------------------------------------------------------------------------------------------ */

struct check {
	const double *grid;
	atomic_size_t bad_at; /* where a bad value was found (SIZE_MAX: nowhere) */
};

/* A tp_try_for_fn: returning non-zero stops the loop, and tp_parallel_try_for() returns that
 * code. Which other chunks ran is unspecified, so what was found goes through ctx. */
static int check_points(size_t begin, size_t end, void *ctx)
{
	struct check *c = ctx;

	for (size_t i = begin; i < end; i++)
		if (!(c->grid[i] >= 0.0 && c->grid[i] <= HOT)) { /* NaN fails both */
			atomic_store(&c->bad_at, i);
			return ERANGE;
		}
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * 3. A histogram
 * ------------------------------------------------------------------------------------------ */

struct histogram {
	uint64_t bin[BINS]; /* 80 bytes: up to TP_REDUCE_MAX_SIZE, copies live on the stack */
};

static size_t bin_of(double t)
{
	size_t b = (size_t)(t / (HOT / BINS));

	return b < BINS ? b : BINS - 1; /* HOT itself goes in the last bin */
}

/* A tp_reduce_fn: folds points [begin, end) into this split's accumulator. */
static void count_points(size_t begin, size_t end, void *acc, void *ctx)
{
	struct histogram *h = acc;
	const double *grid = ctx;

	for (size_t i = begin; i < end; i++)
		h->bin[bin_of(grid[i])]++;
}

/* A tp_combine_fn: adds one split's counts into another's. */
static void add_counts(void *acc, const void *other, void *ctx)
{
	struct histogram *h = acc;
	const struct histogram *o = other;

	(void)ctx;
	for (size_t b = 0; b < BINS; b++)
		h->bin[b] += o->bin[b];
}

int main(void)
{
	static double a[N * N], b[N * N], sa[N * N], sb[N * N]; /* two grids per run */
	tp_pool *pool = tp_pool_create(0, NULL); /* TP_NUM_THREADS, else one worker per CPU */
	const struct histogram zero = { { 0 } };
	struct histogram par = zero, ser = zero;
	struct check check;
	double *grid, *serial;
	int rc = 0, failures = 0, same;

	if (pool == NULL) {
		perror("tp_pool_create");
		return EXIT_FAILURE;
	}

	grid = heat(pool, a, b, &rc);
	serial = heat(NULL, sa, sb, &rc);
	same = same_bits(grid, serial, N * N);
	printf("heat: %d sweeps of %dx%d, centre at %.6f degrees: %s\n", SWEEPS, N, N,
	       grid[N / 2 * N + N / 2], same ? "bit-exact" : "WRONG");
	failures += rc != 0 || !same;

	/* Every value of a Jacobi sweep is a mean of values in [0, HOT]: the check passes. */
	check.grid = grid;
	atomic_init(&check.bad_at, SIZE_MAX);
	rc = tp_parallel_try_for(pool, 0, N * N, 1024, check_points, &check);
	failures += rc != 0 || atomic_load(&check.bad_at) != SIZE_MAX;
	/* One corrupted point: the loop stops with the body's code and we learn where it is. */
	serial[12345] = -1.0;
	check.grid = serial;
	rc = tp_parallel_try_for(pool, 0, N * N, 1024, check_points, &check);
	printf("check: a bad value at %zu (%s)\n", atomic_load(&check.bad_at), strerror(rc));
	failures += rc != ERANGE || atomic_load(&check.bad_at) != 12345;

	/* Each split starts from a copy of `zero`; the copies are combined in iteration order. */
	rc = tp_parallel_reduce(pool, 0, N * N, 0, &par, &zero, sizeof(par), count_points,
				add_counts, grid);
	count_points(0, N * N, &ser, grid);
	printf("histogram:");
	for (size_t k = 0; k < BINS; k++)
		printf(" %llu", (unsigned long long)par.bin[k]);
	printf(" (%s)\n", memcmp(&par, &ser, sizeof(par)) ? "WRONG" : "same as serial");
	failures += rc != 0 || memcmp(&par, &ser, sizeof(par)) != 0;

	tp_pool_destroy(pool);
	printf("%s\n", failures ? "parallel_loops: FAILED" : "parallel_loops: all results correct");
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
