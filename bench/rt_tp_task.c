/*
 * rt_tp_task.c - this project's runtime with typed tasks (thread_pool_task.h): TP_TASK_n,
 * TP_SPAWN, TP_CALL, TP_JOIN, the root started with TP_RUN from the main thread.
 *
 * The fork-join kernels only, in the shapes of rt_thread_pool.c's (and bench.h's):
 *  - fib: no cutoff; spawn fib(n-1), compute fib(n-2) in place, join.
 *  - nqueens: one task per legal placement; the parent builds each child's board (rows 0..j-1,
 *    then the new column) in storage the child owns until it is joined (an array in the parent's
 *    C frame), joins newest first.
 *  - uts: one task per node; a leaf returns before spawning anything; children spawned 0..n-1,
 *    joined newest first; a node with children forks out of line (uts_fork), as in the others.
 * Each task's arguments travel by value in its slot; its result comes back from TP_JOIN.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>

#include <thread_pool.h>
#include <thread_pool_task.h>

static tp_pool *pool;

static int tp_start(enum bench_kernel k, int threads)
{
	(void)k;
	pool = tp_pool_create((size_t)threads, NULL);
	return pool ? 0 : errno;
}

static void tp_stop(void)
{
	tp_pool_destroy(pool);
	pool = NULL;
}

/* ---- fib ---- */

TP_TASK_1(uint64_t, fib, int, n)
{
	if (n < 2)
		return (uint64_t)n;
	TP_SPAWN(fib, n - 1);
	uint64_t y = TP_CALL(fib, n - 2);
	uint64_t x = TP_JOIN(fib);
	return x + y;
}

static int tp_fib(int n, uint64_t *out)
{
	return TP_RUN(pool, fib, out, n);
}

/* ---- nqueens ---- */

TP_TASK_3(uint64_t, nqueens, int, n, int, j, const char *, board)
{
	if (j == n)
		return 1;
	char kids[BENCH_NQ_MAX][BENCH_NQ_MAX]; /* each child's board, owned by that child */
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (!bench_nqueens_child(kids[k], board, j, i))
			continue; /* the slot is reused by the next candidate */
		TP_SPAWN(nqueens, n, j + 1, kids[k]);
		k++;
	}
	uint64_t sum = 0;
	while (k-- > 0) /* newest first */
		sum += TP_JOIN(nqueens);
	return sum;
}

static int tp_nqueens(int n, uint64_t *out)
{
	static const char root_board[BENCH_NQ_MAX] = { 0 };
	return TP_RUN(pool, nqueens, out, n, 0, root_board);
}

/* ---- uts ---- */

TP_TASK_DECL_2(uint64_t, uts_node, const struct bench_uts *, uint64_t)

/* A node with n > 0 children: one task per child. Out of line (noinline) so that a leaf costs
 * uts_node only a few instructions. */
static __attribute__((noinline)) uint64_t uts_fork(TP_TASK_PARAMS, const struct bench_uts *u,
						   uint64_t state, int n)
{
	for (int k = 0; k < n; k++)
		TP_SPAWN(uts_node, u, bench_uts_child(state, k));
	uint64_t count = 1;
	for (int k = 0; k < n; k++) /* TP_JOIN takes the newest first */
		count += TP_JOIN(uts_node);
	return count;
}

TP_TASK_IMPL_2(uint64_t, uts_node, const struct bench_uts *, u, uint64_t, state)
{
	int n = bench_uts_children(u, state);
	if (n == 0)
		return 1;
	return uts_fork(TP_TASK_ARGS, u, state, n);
}

/* The root: root_children children whatever its state. */
TP_TASK_1(uint64_t, uts_root, const struct bench_uts *, u)
{
	return uts_fork(TP_TASK_ARGS, u, u->seed, u->root_children);
}

static int tp_uts(const struct bench_uts *u, uint64_t *out)
{
	return TP_RUN(pool, uts_root, out, u);
}

static void rt_version(char *buf, size_t len)
{
	snprintf(buf, len, "thread_pool %d.%d.%d, typed tasks: TP_SPAWN/TP_JOIN (%s)",
		 TP_VERSION_MAJOR, TP_VERSION_MINOR, TP_VERSION_PATCH,
		 bench_object_of((const void *)tp_enqueue));
}

const struct bench_runtime bench_rt = {
	.name = "tp_task",
	.kernels = BENCH_K(BENCH_FIB) | BENCH_K(BENCH_NQUEENS) | BENCH_K(BENCH_UTS),
	.skip_reason =
		"typed tasks (TP_SPAWN/TP_JOIN) are for fork-join only: see the thread_pool row",
	.start = tp_start,
	.stop = tp_stop,
	.fib = tp_fib,
	.nqueens = tp_nqueens,
	.uts = tp_uts,
	.version = rt_version,
};
