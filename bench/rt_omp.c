/*
 * rt_omp.c - OpenMP tasks and loops. Built twice from this one file: `libgomp` (GCC, the project's
 * C compiler, -fopenmp) and `libomp` (LLVM's runtime, compiled with clang -fopenmp by a
 * custom_target, the way LLVM OpenMP is used; its figures therefore include clang's code
 * generation of the kernels too).
 *
 * Recursive kernels: `parallel` + `single` runs the root, `task` forks, `taskwait` joins (the
 * classic OpenMP fib). reduce: `parallel for reduction(+:s) schedule(static)`. submit: one thread
 * (in `single`) creates n tasks, then `taskwait`. latency: a team of threads + 1 in which the master
 * only submits, the others wait for tasks at the region's closing barrier. Runtime settings are the
 * defaults (OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME unset), as a user gets them.
 */
#include "bench.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>

#ifndef BENCH_OMP_NAME
#define BENCH_OMP_NAME "openmp"
#endif

static int nthreads;

static int omp_start(enum bench_kernel k, int threads)
{
	(void)k;
	nthreads = threads;
	omp_set_dynamic(0);
	return 0;
}

static void omp_stop(void)
{
}

/* ---- fib ---- */

static uint64_t fib_omp(int n)
{
	if (n < 2)
		return (uint64_t)n;
	uint64_t x, y;
#pragma omp task shared(x) firstprivate(n)
	x = fib_omp(n - 1);
	y = fib_omp(n - 2);
#pragma omp taskwait
	return x + y;
}

static int omp_fib(int n, uint64_t *out)
{
	uint64_t r = 0;
#pragma omp parallel num_threads(nthreads)
#pragma omp single
	r = fib_omp(n);
	*out = r;
	return 0;
}

/* ---- nqueens: one task per legal placement (BOTS shape, see bench.h) ---- */

static uint64_t nq_omp(int n, int j, const char *board)
{
	if (j == n)
		return 1;
	char boards[BENCH_NQ_MAX][BENCH_NQ_MAX]; /* boards[k]: child k's, owned by its task */
	uint64_t counts[BENCH_NQ_MAX];
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (!bench_nqueens_child(boards[k], board, j, i))
			continue; /* the slot is reused by the next candidate */
#pragma omp task shared(counts, boards) firstprivate(k)
		counts[k] = nq_omp(n, j + 1, boards[k]);
		k++;
	}
#pragma omp taskwait
	uint64_t sum = 0;
	for (int i = 0; i < k; i++)
		sum += counts[i];
	return sum;
}

static int omp_nqueens(int n, uint64_t *out)
{
	static const char root[BENCH_NQ_MAX] = { 0 };
	uint64_t r = 0;
#pragma omp parallel num_threads(nthreads)
#pragma omp single
	r = nq_omp(n, 0, root);
	*out = r;
	return 0;
}

/* ---- uts ---- */

static uint64_t uts_omp(const struct bench_uts *u, uint64_t state, int n)
{
	if (n == 0) /* a leaf, four nodes in five: no taskwait (every runtime's kernel does this) */
		return 1;
	uint64_t small[8], *counts = n > 8 ? malloc((size_t)n * sizeof *counts) : small;
	if (!counts)
		return 0; /* the count comes out wrong: reported as a mismatch */
	for (int i = 0; i < n; i++) {
#pragma omp task shared(counts) firstprivate(i)
		{
			uint64_t s = bench_uts_child(state, i);
			counts[i] = uts_omp(u, s, bench_uts_children(u, s));
		}
	}
#pragma omp taskwait
	uint64_t sum = 1;
	for (int i = 0; i < n; i++)
		sum += counts[i];
	if (counts != small)
		free(counts);
	return sum;
}

static int omp_uts(const struct bench_uts *u, uint64_t *out)
{
	uint64_t r = 0;
#pragma omp parallel num_threads(nthreads)
#pragma omp single
	r = uts_omp(u, u->seed, u->root_children);
	*out = r;
	return 0;
}

/* ---- reduce ---- */

static int omp_reduce(const double *x, size_t n, size_t grain, double *out)
{
	(void)grain;
	double s = 0.0;
#pragma omp parallel for reduction(+ : s) num_threads(nthreads) schedule(static)
	for (size_t i = 0; i < n; i++)
		s += sqrt(x[i]);
	*out = s;
	return 0;
}

/* ---- submit ---- */

static int omp_submit(int *slots, size_t n)
{
#pragma omp parallel num_threads(nthreads)
#pragma omp single
	{
		for (size_t i = 0; i < n; i++) {
#pragma omp task firstprivate(i)
			bench_submit_body(&slots[i]);
		}
#pragma omp taskwait
	}
	return 0;
}

/* ---- latency ---- */

static int omp_latency(struct bench_latency *lr)
{
#pragma omp parallel num_threads(nthreads + 1)
	{
#pragma omp master
		{
			while (bench_latency_begin(lr) == 0) {
#pragma omp task firstprivate(lr)
				bench_latency_task(lr);
				bench_latency_end(lr);
			}
		}
	}
	return 0;
}

static void omp_version(char *buf, size_t len)
{
#if defined(__clang__)
	const char *cc = "clang " __clang_version__;
#else
	const char *cc = "gcc " __VERSION__;
#endif
	snprintf(buf, len, "%s, OpenMP %d, built by %s (%s)", BENCH_OMP_NAME, _OPENMP, cc,
		 bench_object_of((const void *)omp_get_num_threads));
}

const struct bench_runtime bench_rt = {
	.name = BENCH_OMP_NAME,
	.kernels = BENCH_ALL_KERNELS,
	.start = omp_start,
	.stop = omp_stop,
	.fib = omp_fib,
	.nqueens = omp_nqueens,
	.uts = omp_uts,
	.reduce = omp_reduce,
	.submit = omp_submit,
	.latency = omp_latency,
	.version = omp_version,
};
