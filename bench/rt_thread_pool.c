/*
 * rt_thread_pool.c - this project's runtime, through its public API (thread_pool.h) only.
 *
 * Built five times:
 *  - `thread_pool`: recursive kernels fork with tp_enqueue() from inside a task (the task goes on
 *    the worker's own deque) and join with tp_future_wait(), which runs other tasks while it
 *    waits: the futures API, as the reference design is used.
 *  - `tp_spawn` (BENCH_TP_FRAMES): the same kernels with caller-owned frames, tp_spawn() and
 *    tp_join() (no allocation). Only the recursive kernels: the others are the same code.
 *  - `tp_batch` (BENCH_TP_BATCH): the `submit` kernel with tp_enqueue_batch(), 256 tasks per
 *    call, futures as in `thread_pool`: the reference design's advice to batch small operations.
 *  - `tp_submit` (BENCH_TP_DETACHED): the `submit` kernel fire-and-forget: tp_submit() per task,
 *    no futures, then tp_pool_wait_idle(); a failing task reaches the pool's error handler.
 *  - `tp_calls` (BENCH_TP_FRAMES and BENCH_TP_CALLS): the tp_spawn kernels' source with each
 *    spawn recording the call and each join making it, on one thread: what the task-shaped kernel
 *    costs without any runtime, so that tp_spawn's distance to serial splits into the kernel's
 *    shape (tp_calls / serial) and the runtime's share (tp_spawn / tp_calls).
 * In all of them the main thread submits the root task and blocks on its future. `reduce` uses the
 * runtime's loop construct, tp_parallel_reduce() (automatic grain).
 * A failed tp_enqueue() is counted and its work done inline, so the run still ends; the error
 * then fails the measurement (exit 4).
 */
#include "bench.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <thread_pool.h>

static tp_pool *pool;

#ifdef BENCH_TP_CALLS
/* No runtime: a spawn records the call in the frame, the join makes it through a function
 * pointer the compiler cannot see through (tp_join's call is indirect too), so that fib is not
 * turned back into the serial recursion. */
typedef struct {
	tp_task_fn fn;
	void *arg;
} bench_frame;

static inline void bench_spawn(bench_frame *t, tp_task_fn fn, void *arg)
{
	t->fn = fn;
	t->arg = arg;
}

static inline int bench_join(bench_frame *t)
{
	tp_task_fn fn = t->fn;

	__asm__ volatile("" : "+r"(fn));
	return fn(t->arg);
}
#else
typedef tp_frame bench_frame;
#define bench_spawn tp_spawn
#define bench_join  tp_join
#endif
static atomic_int first_error;

static void note_error(int rc)
{
	int zero = 0;
	atomic_compare_exchange_strong(&first_error, &zero, rc ? rc : EIO);
}

/* Joins f (if any) and releases it. */
static void join(tp_future *f)
{
	if (!f)
		return;
	int rc = tp_future_wait(f);
	if (rc)
		note_error(rc);
	tp_future_release(f);
}

/* Submits fn(arg) from outside the pool, waits for it, returns the first error seen. */
static int run_root(tp_task_fn fn, void *arg)
{
	atomic_store(&first_error, 0);
	tp_future *f = tp_enqueue(pool, fn, arg);
	if (!f)
		return errno;
	join(f);
	return atomic_load(&first_error);
}

#ifdef BENCH_TP_DETACHED
static void note_error(int rc);

static void on_task_error(void *user, tp_task_fn fn, void *arg, int code)
{
	(void)user;
	(void)fn;
	(void)arg;
	note_error(code);
}
#endif

static int tp_start(enum bench_kernel k, int threads)
{
	(void)k;
#ifdef BENCH_TP_DETACHED
	tp_pool_options opts;
	tp_pool_options_init(&opts);
	opts.num_threads = (size_t)threads;
	opts.on_error = on_task_error;
	pool = tp_pool_create_ex(&opts);
#else
	pool = tp_pool_create((size_t)threads, NULL);
#endif
	return pool ? 0 : errno;
}

static void tp_stop(void)
{
	tp_pool_destroy(pool);
	pool = NULL;
}

/* ---- fib: fork fib(n-1), compute fib(n-2) in place, join ---- */

struct fib_arg {
	int n;
	uint64_t r;
};

static uint64_t fib_rec(int n);

static int fib_task(void *p)
{
	struct fib_arg *a = p;
	a->r = fib_rec(a->n);
	return 0;
}

static uint64_t fib_rec(int n)
{
	if (n < 2)
		return (uint64_t)n;
	struct fib_arg child = { n - 1, 0 };
#ifdef BENCH_TP_FRAMES
	bench_frame t;
	bench_spawn(&t, fib_task, &child);
	uint64_t y = fib_rec(n - 2);
	int rc = bench_join(&t);
	if (rc)
		note_error(rc);
#else
	tp_future *f = tp_enqueue(pool, fib_task, &child);
	if (!f) {
		note_error(errno);
		fib_task(&child);
	}
	uint64_t y = fib_rec(n - 2);
	join(f);
#endif
	return child.r + y;
}

static int tp_fib(int n, uint64_t *out)
{
	struct fib_arg root = { n, 0 };
	int rc = run_root(fib_task, &root);
	*out = root.r;
	return rc;
}

/* ---- nqueens: one task per legal placement (BOTS shape, see bench.h) ---- */

struct nq_arg {
	int n, j;
	uint64_t r;
	char board[BENCH_NQ_MAX]; /* rows 0..j-1: built by the parent, owned by this task */
};

static int nq_task(void *p)
{
	struct nq_arg *a = p;
	if (a->j == a->n) {
		a->r = 1;
		return 0;
	}
	struct nq_arg kids[BENCH_NQ_MAX];
#ifdef BENCH_TP_FRAMES
	bench_frame t[BENCH_NQ_MAX];
#else
	tp_future *f[BENCH_NQ_MAX];
#endif
	int k = 0;
	for (int i = 0; i < a->n; i++) {
		if (!bench_nqueens_child(kids[k].board, a->board, a->j, i))
			continue; /* the slot is reused by the next candidate */
		kids[k].n = a->n;
		kids[k].j = a->j + 1;
		kids[k].r = 0;
#ifdef BENCH_TP_FRAMES
		bench_spawn(&t[k], nq_task, &kids[k]);
#else
		if (!(f[k] = tp_enqueue(pool, nq_task, &kids[k]))) {
			note_error(errno);
			nq_task(&kids[k]);
		}
#endif
		k++;
	}
	uint64_t sum = 0;
	while (k-- > 0) { /* newest first: it is on top of this worker's deque */
#ifdef BENCH_TP_FRAMES
		int rc = bench_join(&t[k]);
		if (rc)
			note_error(rc);
#else
		join(f[k]);
#endif
		sum += kids[k].r;
	}
	a->r = sum;
	return 0;
}

static int tp_nqueens(int n, uint64_t *out)
{
	struct nq_arg root = { .n = n, .j = 0 };
	int rc = run_root(nq_task, &root);
	*out = root.r;
	return rc;
}

/* ---- uts: one task per child ---- */

struct uts_arg {
	const struct bench_uts *u;
	uint64_t state;
	int root;
	uint64_t r;
};

#ifdef BENCH_TP_FRAMES
typedef bench_frame uts_join_t;
#else
typedef tp_future *uts_join_t;
#endif

static int uts_task(void *p);

/* A node with n > 0 children: one task per child. Out of line so that a leaf (four nodes in five)
 * costs uts_task only a few instructions, not this function's frame. */
static __attribute__((noinline)) int uts_fork(struct uts_arg *a, int n)
{
	struct uts_arg small[8], *kids = small;
	uts_join_t small_j[8], *j = small_j;
	if (n > 8) {
		kids = malloc((size_t)n * sizeof *kids);
		j = malloc((size_t)n * sizeof(uts_join_t));
		if (!kids || !j) {
			free(kids);
			free(j);
			note_error(ENOMEM);
			a->r = 0;
			return ENOMEM;
		}
	}
	int k = 0;
	for (; k < n; k++) {
		kids[k] = (struct uts_arg){ a->u, bench_uts_child(a->state, k), 0, 0 };
#ifdef BENCH_TP_FRAMES
		bench_spawn(&j[k], uts_task, &kids[k]);
#else
		if (!(j[k] = tp_enqueue(pool, uts_task, &kids[k]))) {
			note_error(errno);
			uts_task(&kids[k]);
		}
#endif
	}
	uint64_t count = 1;
	while (k-- > 0) { /* newest first: it is on top of this worker's deque */
#ifdef BENCH_TP_FRAMES
		int rc = bench_join(&j[k]);
		if (rc)
			note_error(rc);
#else
		join(j[k]);
#endif
		count += kids[k].r;
	}
	a->r = count;
	if (n > 8) {
		free(kids);
		free(j);
	}
	return 0;
}

static int uts_task(void *p)
{
	struct uts_arg *a = p;
	int n = a->root ? a->u->root_children : bench_uts_children(a->u, a->state);

	if (n == 0) {
		a->r = 1;
		return 0;
	}
	return uts_fork(a, n);
}

static int tp_uts(const struct bench_uts *u, uint64_t *out)
{
	struct uts_arg root = { u, u->seed, 1, 0 };
	int rc = run_root(uts_task, &root);
	*out = root.r;
	return rc;
}

#ifndef BENCH_TP_FRAMES /* the non-recursive kernels: one build is enough */

/* ---- reduce: the runtime's loop construct ---- */

static void red_body(size_t begin, size_t end, void *acc, void *ctx)
{
	*(double *)acc += bench_sum_sqrt((const double *)ctx + begin, end - begin);
}

static void red_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(double *)acc += *(const double *)other;
}

static int tp_reduce(const double *x, size_t n, size_t grain, double *out)
{
	(void)grain; /* automatic, as a user would call it (oneTBB: auto_partitioner) */
	const double zero = 0.0;
	return tp_parallel_reduce(pool, 0, n, 0, out, &zero, sizeof zero, red_body, red_combine,
				  (void *)x);
}

/* ---- submit: the reference design's pattern, futures included ---- */

static int submit_task(void *arg)
{
	bench_submit_body(arg);
	return 0;
}

#ifdef BENCH_TP_BATCH
/* Tasks per tp_enqueue_batch() call in the `tp_batch` build. */
#define SUBMIT_BATCH 256

/* The same work, submitted SUBMIT_BATCH tasks per call: one gate pass, one splice, one wake-up. */
static int rt_submit(int *slots, size_t n)
{
	tp_future **futures = malloc(n * sizeof(tp_future *));
	void *args[SUBMIT_BATCH];
	if (!futures)
		return ENOMEM;
	atomic_store(&first_error, 0);
	size_t i = 0;
	int rc = 0;
	while (i < n) {
		size_t m = n - i < SUBMIT_BATCH ? n - i : SUBMIT_BATCH;
		for (size_t k = 0; k < m; k++)
			args[k] = &slots[i + k];
		if ((rc = tp_enqueue_batch(pool, submit_task, args, m, &futures[i])) != 0)
			break; /* all or nothing: none of this batch was submitted */
		i += m;
	}
	for (size_t j = 0; j < i; j++)
		join(futures[j]);
	free(futures);
	return rc ? rc : atomic_load(&first_error);
}
#elif defined(BENCH_TP_DETACHED)
/* The same work, fire-and-forget: no future per task, one wait for the pool to go idle. */
static int rt_submit(int *slots, size_t n)
{
	atomic_store(&first_error, 0);
	for (size_t i = 0; i < n; i++) {
		int rc = tp_submit(pool, submit_task, &slots[i]);
		if (rc) {
			tp_pool_wait_idle(pool, NULL);
			return rc;
		}
	}
	int rc = tp_pool_wait_idle(pool, NULL);
	return rc ? rc : atomic_load(&first_error);
}
#else
static int rt_submit(int *slots, size_t n)
{
	tp_future **futures = malloc(n * sizeof(tp_future *));
	if (!futures)
		return ENOMEM;
	atomic_store(&first_error, 0);
	size_t i;
	int rc = 0;
	for (i = 0; i < n; i++)
		if (!(futures[i] = tp_enqueue(pool, submit_task, &slots[i]))) {
			rc = errno;
			break;
		}
	for (size_t j = 0; j < i; j++)
		join(futures[j]);
	free(futures);
	return rc ? rc : atomic_load(&first_error);
}
#endif

/* ---- latency ---- */

static int latency_task(void *arg)
{
	bench_latency_task(arg);
	return 0;
}

static int tp_latency(struct bench_latency *lr)
{
	atomic_store(&first_error, 0);
	while (bench_latency_begin(lr) == 0) {
		tp_future *f = tp_enqueue(pool, latency_task, lr);
		if (!f)
			return errno;
		bench_latency_end(lr);
		join(f);
	}
	return atomic_load(&first_error);
}

#endif /* !BENCH_TP_FRAMES */

/* What differs between the four builds (see the top of this file). */
#if defined(BENCH_TP_BATCH)
#define RT_NAME	   "tp_batch"
#define RT_API	   "futures, submitted 256 per tp_enqueue_batch call"
#define RT_KERNELS BENCH_K(BENCH_SUBMIT)
#define RT_SKIP	   "tp_enqueue_batch: the submit kernel only; see the thread_pool row"
#elif defined(BENCH_TP_DETACHED)
#define RT_NAME	   "tp_submit"
#define RT_API	   "fire-and-forget: tp_submit, then tp_pool_wait_idle"
#define RT_KERNELS BENCH_K(BENCH_SUBMIT)
#define RT_SKIP	   "tp_submit: the submit kernel only; see the thread_pool row"
#elif defined(BENCH_TP_CALLS)
#define RT_NAME	   "tp_calls"
#define RT_API	   "no runtime: tp_spawn kernels, each join a plain call"
#define RT_KERNELS (BENCH_K(BENCH_FIB) | BENCH_K(BENCH_NQUEENS) | BENCH_K(BENCH_UTS))
#define RT_SKIP	   "the fork-join kernels' shape without a runtime: fork-join kernels only"
#elif defined(BENCH_TP_FRAMES)
#define RT_NAME	   "tp_spawn"
#define RT_API	   "frames: tp_spawn/tp_join"
#define RT_KERNELS (BENCH_K(BENCH_FIB) | BENCH_K(BENCH_NQUEENS) | BENCH_K(BENCH_UTS))
#define RT_SKIP	   "frames (tp_spawn/tp_join) are for fork-join only: see the thread_pool row"
#else
#define RT_NAME	   "thread_pool"
#define RT_API	   "futures: tp_enqueue/tp_future_wait"
#define RT_KERNELS BENCH_ALL_KERNELS
#define RT_SKIP	   NULL
#endif

static void rt_version(char *buf, size_t len)
{
	snprintf(buf, len, "thread_pool %d.%d.%d, %s (%s)", TP_VERSION_MAJOR, TP_VERSION_MINOR,
		 TP_VERSION_PATCH, RT_API, bench_object_of((const void *)tp_enqueue));
}

/* Kernels outside RT_KERNELS are never run (tp_batch keeps thread_pool's). */
const struct bench_runtime bench_rt = {
	.name = RT_NAME,
	.kernels = RT_KERNELS,
	.skip_reason = RT_SKIP,
	.start = tp_start,
	.stop = tp_stop,
	.fib = tp_fib,
	.nqueens = tp_nqueens,
	.uts = tp_uts,
#ifndef BENCH_TP_FRAMES
	.reduce = tp_reduce,
	.submit = rt_submit,
	.latency = tp_latency,
#endif
	.version = rt_version,
};
