/*
 * rt_tbb.cpp - oneTBB: tbb::task_group for the recursive kernels and submit, tbb::parallel_reduce
 * (auto_partitioner) for reduce, in a tbb::task_arena of `threads` slots (the main thread takes one).
 * latency: an arena of `threads` worker-only slots; the main thread only calls arena.enqueue().
 * Default settings otherwise.
 */
#include "bench.h"

#include <cerrno>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

static std::unique_ptr<tbb::global_control> control;
static std::unique_ptr<tbb::task_arena> arena;

static int tbb_start(enum bench_kernel k, int threads)
{
	try {
		bool latency = k == BENCH_LATENCY;
		/* The market must allow as many workers as the arena wants: by default it allows one
		 * fewer than the CPUs. */
		control.reset(new tbb::global_control(tbb::global_control::max_allowed_parallelism,
						      (size_t)threads + (latency ? 1 : 0)));
		arena.reset(new tbb::task_arena(threads, latency ? 0 : 1));
		arena->initialize();
	} catch (...) {
		return ENOMEM;
	}
	return 0;
}

static void tbb_stop(void)
{
	arena.reset();
	control.reset();
}

static uint64_t fib_tbb(int n)
{
	if (n < 2)
		return (uint64_t)n;
	uint64_t x, y;
	tbb::task_group g;
	g.run([&] { x = fib_tbb(n - 1); });
	y = fib_tbb(n - 2);
	g.wait();
	return x + y;
}

static int tbb_fib(int n, uint64_t *out)
{
	arena->execute([&] { *out = fib_tbb(n); });
	return 0;
}

/* nqueens: one task per legal placement (BOTS shape, see bench.h). */
static uint64_t nq_tbb(int n, int j, const char *board)
{
	if (j == n)
		return 1;
	char boards[BENCH_NQ_MAX][BENCH_NQ_MAX]; /* boards[k]: child k's, owned by its task */
	uint64_t counts[BENCH_NQ_MAX];
	int k = 0;
	tbb::task_group g;
	for (int i = 0; i < n; i++) {
		if (!bench_nqueens_child(boards[k], board, j, i))
			continue; /* the slot is reused by the next candidate */
		const char *child = boards[k];
		uint64_t *slot = &counts[k++];
		g.run([=] { *slot = nq_tbb(n, j + 1, child); });
	}
	g.wait();
	uint64_t sum = 0;
	for (int i = 0; i < k; i++)
		sum += counts[i];
	return sum;
}

static int tbb_nqueens(int n, uint64_t *out)
{
	static const char root[BENCH_NQ_MAX] = {};
	arena->execute([&] { *out = nq_tbb(n, 0, root); });
	return 0;
}

static uint64_t uts_tbb(const struct bench_uts *u, uint64_t state, int n)
{
	if (n ==
	    0) /* a leaf, four nodes in five: no task_group (every runtime's kernel does this) */
		return 1;
	uint64_t small[8];
	std::vector<uint64_t> big;
	uint64_t *counts = small;
	if (n > 8) {
		big.resize((size_t)n);
		counts = big.data();
	}
	tbb::task_group g;
	for (int i = 0; i < n; i++)
		g.run([=] {
			uint64_t s = bench_uts_child(state, i);
			counts[i] = uts_tbb(u, s, bench_uts_children(u, s));
		});
	g.wait();
	uint64_t sum = 1;
	for (int i = 0; i < n; i++)
		sum += counts[i];
	return sum;
}

static int tbb_uts(const struct bench_uts *u, uint64_t *out)
{
	arena->execute([&] { *out = uts_tbb(u, u->seed, u->root_children); });
	return 0;
}

static int tbb_reduce(const double *x, size_t n, size_t grain, double *out)
{
	(void)grain;
	arena->execute([&] {
		*out = tbb::parallel_reduce(
			tbb::blocked_range<size_t>(0, n), 0.0,
			[=](const tbb::blocked_range<size_t> &r, double acc) {
				return acc + bench_sum_sqrt(x + r.begin(), r.size());
			},
			std::plus<double>());
	});
	return 0;
}

static int tbb_submit(int *slots, size_t n)
{
	arena->execute([&] {
		tbb::task_group g;
		for (size_t i = 0; i < n; i++)
			g.run([=] { bench_submit_body(&slots[i]); });
		g.wait();
	});
	return 0;
}

static int tbb_latency(struct bench_latency *lr)
{
	while (bench_latency_begin(lr) == 0) {
		arena->enqueue([=] { bench_latency_task(lr); });
		bench_latency_end(lr);
	}
	return 0;
}

static void tbb_version(char *buf, size_t len)
{
	snprintf(buf, len, "oneTBB %s (headers %s, %s)", TBB_runtime_version(), TBB_VERSION_STRING,
		 bench_object_of((const void *)TBB_runtime_version));
}

extern "C" const struct bench_runtime bench_rt = {
	"tbb",	     BENCH_ALL_KERNELS, nullptr,    tbb_start,	tbb_stop,    tbb_fib,
	tbb_nqueens, tbb_uts,		tbb_reduce, tbb_submit, tbb_latency, tbb_version,
};
