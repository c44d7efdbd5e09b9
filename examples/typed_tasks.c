/*
 * typed_tasks.c - fine-grained fork-join with typed tasks (thread_pool_task.h).
 *
 *  1. fib(n) with no cutoff at all: one task per call. TP_SPAWN writes the argument into the
 *     worker's task stack, TP_JOIN is a direct call when no thief took the task.
 *  2. The sum of an array by recursive halving, a task taking three arguments (the array, and
 *     the range) and a helper function that spawns on its task's behalf (TP_TASK_PARAMS).
 *  3. TP_RUN from several threads of the program at once, into the same pool.
 *
 * Each part checks its result against a serial computation. The program exits 1 if a result is
 * wrong, so it also runs as a test (meson test --suite examples).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread_pool.h"
#include "thread_pool_task.h"

/* ---------------------------------------------------------------------------------------------
 * 1. fib(n), one task per call
 * ------------------------------------------------------------------------------------------ */

TP_TASK_1(long, fib, int, n)
{
	if (n < 2)
		return n;
	TP_SPAWN(fib, n - 1);	      /* may be stolen by an idle worker */
	long y = TP_CALL(fib, n - 2); /* meanwhile, the other half here */
	long x = TP_JOIN(fib);	      /* the newest spawn not joined yet: fib(n - 1) */
	return x + y;
}

static long fib_serial(int n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* ---------------------------------------------------------------------------------------------
 * 2. Sum of an array by halving
 * ------------------------------------------------------------------------------------------ */

#define SUM_N	  (1 << 20)
#define SUM_GRAIN 2048

TP_TASK_DECL_3(double, sum, const double *, size_t, size_t)

/* Spawns the left half, sums the right half itself: a helper called with TP_TASK_ARGS may spawn
 * and join for its task. */
static double sum_halves(TP_TASK_PARAMS, const double *x, size_t lo, size_t hi)
{
	size_t mid = lo + (hi - lo) / 2;

	TP_SPAWN(sum, x, lo, mid);
	double right = TP_CALL(sum, x, mid, hi);
	return TP_JOIN(sum) + right;
}

TP_TASK_IMPL_3(double, sum, const double *, x, size_t, lo, size_t, hi)
{
	if (hi - lo <= SUM_GRAIN) {
		double s = 0;

		for (size_t i = lo; i < hi; i++)
			s += x[i];
		return s;
	}
	return sum_halves(TP_TASK_ARGS, x, lo, hi);
}

/* ---------------------------------------------------------------------------------------------
 * 3. Several threads of the program run tasks in the same pool
 * ------------------------------------------------------------------------------------------ */

struct caller {
	tp_pool *pool;
	int n;
	long result;
	int err;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;

	c->err = TP_RUN(c->pool, fib, &c->result, c->n);
	return NULL;
}

int main(void)
{
	tp_pool *pool = tp_pool_create(0, NULL); /* one worker per CPU */
	struct caller callers[3];
	pthread_t threads[3];
	double *x, total = 0, want = 0;
	long r = 0;
	int failures = 0, err;

	if (pool == NULL) {
		perror("tp_pool_create");
		return 1;
	}

	/* 1 */
	err = TP_RUN(pool, fib, &r, 30);
	printf("fib(30) = %ld (%s)\n", r, err == 0 && r == fib_serial(30) ? "ok" : "WRONG");
	failures += err != 0 || r != fib_serial(30);

	/* 2 */
	x = malloc(SUM_N * sizeof(*x));
	if (x == NULL) {
		perror("malloc");
		tp_pool_destroy(pool);
		return 1;
	}
	for (size_t i = 0; i < SUM_N; i++) {
		x[i] = (double)(i % 1000) /
		       8; /* exact in binary: any summation order gives `want` */
		want += x[i];
	}
	err = TP_RUN(pool, sum, &total, x, 0, SUM_N);
	printf("sum of %d values = %.1f (%s)\n", SUM_N, total,
	       err == 0 && total == want ? "ok" : "WRONG");
	failures += err != 0 || total != want;
	free(x);

	/* 3 */
	for (int i = 0; i < 3; i++) {
		callers[i] = (struct caller){ pool, 24 + i, 0, 0 };
		if (pthread_create(&threads[i], NULL, caller_main, &callers[i]) != 0) {
			perror("pthread_create");
			return 1;
		}
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(threads[i], NULL);
		printf("thread %d: fib(%d) = %ld (%s)\n", i, callers[i].n, callers[i].result,
		       callers[i].err == 0 && callers[i].result == fib_serial(callers[i].n)
			       ? "ok"
			       : "WRONG");
		failures += callers[i].err != 0 || callers[i].result != fib_serial(callers[i].n);
	}

	tp_pool_destroy(pool);
	return failures == 0 ? 0 : 1;
}
