/*
 * bench.h - what the per-runtime bench executables (rt_<name>) share.
 *
 * Overview
 *   Each runtime (thread_pool, serial, libgomp, libomp, tbb, classic) is one executable built from
 *   its own rt_<name>.c[pp], which defines `bench_rt` (a table of kernel entry points), plus
 *   kernels.c (sizes, the serial kernels, expected answers, timers, the latency harness) and
 *   bench_main.c (argument parsing, warm-up, timing, answer checks, the result line). One process
 *   runs ONE measurement and prints one machine-readable line; the driver (driver.c, `tp-bench`)
 *   runs those processes interleaved and prints the tables (driver.h lists its files).
 *
 * What "threads N" means
 *   The number of threads that execute tasks. thread_pool and the classic pool: N workers, and the
 *   main thread only submits and waits (it never runs tasks: that is their API). OpenMP and oneTBB:
 *   the main thread is one of the N (their API makes the caller take part: `single` + taskwait,
 *   task_group::wait()). Exception: `latency` needs N *other* threads parked, so OpenMP and oneTBB
 *   get N + 1 threads there, the main thread only submitting.
 *
 * Every header-visible type is plain C so that rt_tbb.cpp can include this file.
 */
#ifndef TP_BENCH_H
#define TP_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uts_tree.h"

#ifdef __cplusplus
extern "C" {
#endif

enum bench_kernel {
	BENCH_FIB,
	BENCH_NQUEENS,
	BENCH_UTS,
	BENCH_REDUCE,
	BENCH_SUBMIT,
	BENCH_LATENCY,
	BENCH_IDLE,
	BENCH_KERNEL_COUNT
};
#define BENCH_K(k)	  (1u << (k))
#define BENCH_ALL_KERNELS ((1u << BENCH_KERNEL_COUNT) - 1u)

/* The UTS tree (struct bench_uts, its node functions and sizes) is in uts_tree.h, which
 * examples/mpi/uts_mpi.c shares. */

/* The problem sizes of one --size setting. */
struct bench_size {
	const char *name;
	int fib_n;
	int nqueens_n;
	struct bench_uts uts;
	uint64_t uts_nodes; /* expected node count (from the serial walk; see kernels.c) */
	size_t reduce_n;
	size_t reduce_grain; /* leaf size of the task-based reductions */
	size_t submit_n;
	size_t latency_samples;
	double idle_s;
	size_t burst_n; /* trivial tasks in the burst before `idle` */
};

/* Returns the sizes named "small", "default" or "large", or NULL. */
const struct bench_size *bench_size_get(const char *name);

const char *bench_kernel_name(enum bench_kernel k);
int bench_kernel_parse(const char *name); /* -1 if unknown */

/* ---- the serial kernels (also the leaves of the parallel ones) ---- */

uint64_t bench_fib_serial(int n);
uint64_t bench_fib_expected(int n); /* iterative */

/*
 * nqueens, the BOTS shape (Barcelona OpenMP Tasks Suite, Duran et al. 2009): a partial solution
 * is a char array, board[r] = column of the queen in row r. At row j of n, each column i is
 * checked against the queens of rows 0..j-1 (bench_nqueens_ok: O(j)); a legal one becomes a child
 * with its own copy of the board (a task in the parallel runtimes), so there is one task per
 * legal placement: 856,188 for n = 12. Each child owns its board (the parent builds it in the
 * child's argument storage).
 */
#define BENCH_NQ_MAX 16 /* largest n: the boards' size, and the expected-answers table's */

/* True if a queen in row j, column i, shares no column or diagonal with rows 0..j-1. */
static inline bool bench_nqueens_ok(const char *board, int j, int i)
{
	for (int r = 0; r < j; r++) {
		int d = abs(board[r] - i);
		if (d == 0 || d == j - r)
			return false;
	}
	return true;
}

/* If column i is legal in row j, builds the child's board in `child` (board[0..j-1], then i) and
 * returns true. Every runtime builds its children with this, in storage the child owns. */
static inline bool bench_nqueens_child(char *child, const char *board, int j, int i)
{
	if (!bench_nqueens_ok(board, j, i))
		return false;
	memcpy(child, board, (size_t)j);
	child[j] = (char)i;
	return true;
}

/* Solutions below a legal board of j rows (n <= BENCH_NQ_MAX); the root: j = 0. */
uint64_t bench_nqueens_serial(int n, int j, const char *board);
uint64_t bench_nqueens_expected(int n); /* known table, n <= BENCH_NQ_MAX */
uint64_t bench_uts_serial_subtree(const struct bench_uts *u, uint64_t state); /* non-root node */
uint64_t bench_uts_serial(const struct bench_uts *u);

/* reduce: x[i] = i % 1024, so the exact sum has a closed form (bench_reduce_expected). */
double *bench_reduce_data(size_t n); /* NULL on ENOMEM; free with bench_reduce_free */
void bench_reduce_free(double *x, size_t n);
double bench_sum_sqrt(const double *x, size_t n);
double bench_reduce_expected(size_t n);

/* submit: the trivial task stores 1 into its slot. */
static inline void bench_submit_body(int *slot)
{
	*slot = 1;
}

/* ---- the latency harness ----
 * Per sample, the runtime calls, from the submitting (main) thread:
 *     bench_latency_begin(lr);   // waits until the other threads are parked, then takes t0
 *     <enqueue a task that calls bench_latency_task(lr)>
 *     bench_latency_end(lr);     // sleeps on a futex until the task has started (never spins)
 * bench_latency_begin() returns 0 while samples remain, 1 once all are taken. Unless the harness
 * was made without floors, begin() first takes a floor sample: a bare futex hand-off to one of
 * the harness's own parked helper threads, alternately on the submitter's CPU (local) and on
 * another CPU (cross), timed the same way.
 * The submitter never spins after the enqueue: on this kind of VM a woken thread lands on the
 * waker's vCPU, and a spinning waker would delay it by a time slice (docs/machine.md).
 */
struct bench_latency;
int bench_latency_begin(struct bench_latency *lr);
void bench_latency_task(struct bench_latency *lr);
void bench_latency_end(struct bench_latency *lr);
/* The serial runtime's "enqueue": wakes the harness's unpinned helper, which calls
 * bench_latency_task(). */
void bench_latency_floor_handoff(struct bench_latency *lr);
/* For bench_main.c: a harness for `samples` samples, with interleaved floor samples or not; its
 * results in microseconds, in order: us[return value], floor_us[0][nfloor[0]] (local) and
 * floor_us[1][nfloor[1]] (cross); and how many samples found every other thread parked. */
struct bench_latency *bench_latency_new(size_t samples, int floors);
void bench_latency_free(struct bench_latency *lr);
size_t bench_latency_result(struct bench_latency *lr, double **us, double **floor_us,
			    size_t *nfloor);
size_t bench_latency_parked(const struct bench_latency *lr);

/* A 32-bit futex word: FUTEX_WAIT_PRIVATE if *word == expected; FUTEX_WAKE_PRIVATE of one waiter. */
void bench_futex_wait(void *word, unsigned expected);
void bench_futex_wake(void *word);

/* ---- clocks ---- */
uint64_t bench_now_ns(void); /* CLOCK_MONOTONIC */
uint64_t bench_cpu_ns(void); /* CLOCK_PROCESS_CPUTIME_ID: every thread of the process */
void bench_sleep_ns(uint64_t ns);

/* ---- a runtime ---- */
struct bench_runtime {
	const char *name;
	unsigned kernels;	 /* BENCH_K() mask of the kernels it runs */
	const char *skip_reason; /* why the others are not run (NULL if it runs all) */
	/* Starts the runtime for kernel k with `threads` threads (see "What threads N means"). */
	int (*start)(enum bench_kernel k, int threads);
	void (*stop)(void);
	/* Each returns 0 or an errno-style code; answers through the out-parameter. */
	int (*fib)(int n, uint64_t *out);
	int (*nqueens)(int n, uint64_t *out);
	int (*uts)(const struct bench_uts *u, uint64_t *out);
	int (*reduce)(const double *x, size_t n, size_t grain, double *out);
	int (*submit)(int *slots, size_t n); /* runs bench_submit_body(&slots[i]) once per i */
	int (*latency)(struct bench_latency *lr);
	/* Writes a one-line version string of the runtime library into buf. */
	void (*version)(char *buf, size_t len);
};

extern const struct bench_runtime bench_rt;

/* qsort() comparator for doubles, ascending. */
int bench_cmp_double(const void *a, const void *b);

/* Path of the shared object that defines `sym` (dladdr), or "?". */
const char *bench_object_of(const void *sym);

#ifdef __cplusplus
}
#endif

#endif /* TP_BENCH_H */
