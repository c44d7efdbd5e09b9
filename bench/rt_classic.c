/*
 * rt_classic.c - the classic pool (classic_pool.c, the reference design ported literally).
 *
 * Runs submit, reduce, latency and idle only: its futures block the waiting thread, so a recursive
 * kernel (a task waiting on the tasks it forked) deadlocks as soon as every worker waits. `reduce`
 * is therefore flat: the main thread cuts the array into `grain`-sized chunks, submits one task
 * per chunk and adds up the futures' partial sums in order.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "classic_pool.h"

static cp_pool *pool;

static int classic_start(enum bench_kernel k, int threads)
{
	(void)k;
	pool = cp_pool_create((size_t)threads);
	return pool ? 0 : errno;
}

static void classic_stop(void)
{
	cp_pool_destroy(pool);
	pool = NULL;
}

static int submit_task(void *arg)
{
	bench_submit_body(arg);
	return 0;
}

/* Waits for and releases futures[0..n); returns the first error. */
static int wait_all(cp_future **futures, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		int r = cp_future_wait(futures[i]);
		if (r && !rc)
			rc = r;
		cp_future_release(futures[i]);
	}
	return rc;
}

static int classic_submit(int *slots, size_t n)
{
	cp_future **futures = malloc(n * sizeof(cp_future *));
	if (!futures)
		return ENOMEM;
	size_t i;
	int rc = 0;
	for (i = 0; i < n; i++)
		if (!(futures[i] = cp_pool_enqueue(pool, submit_task, &slots[i]))) {
			rc = errno;
			break;
		}
	int w = wait_all(futures, i);
	free(futures);
	return rc ? rc : w;
}

struct chunk {
	const double *x;
	size_t n;
	double sum;
};

static int chunk_task(void *arg)
{
	struct chunk *c = arg;
	c->sum = bench_sum_sqrt(c->x, c->n);
	return 0;
}

static int classic_reduce(const double *x, size_t n, size_t grain, double *out)
{
	size_t chunks = (n + grain - 1) / grain;
	struct chunk *c = malloc(chunks * sizeof *c);
	cp_future **futures = malloc(chunks * sizeof(cp_future *));
	int rc = 0;
	size_t i;
	if (!c || !futures) {
		free(c);
		free(futures);
		return ENOMEM;
	}
	for (i = 0; i < chunks; i++) {
		c[i] = (struct chunk){ x + i * grain, i + 1 < chunks ? grain : n - i * grain, 0.0 };
		if (!(futures[i] = cp_pool_enqueue(pool, chunk_task, &c[i]))) {
			rc = errno;
			break;
		}
	}
	int w = wait_all(futures, i);
	double sum = 0.0;
	for (size_t j = 0; j < i; j++)
		sum += c[j].sum;
	*out = sum;
	free(c);
	free(futures);
	return rc ? rc : w;
}

static int latency_task(void *arg)
{
	bench_latency_task(arg);
	return 0;
}

static int classic_latency(struct bench_latency *lr)
{
	while (bench_latency_begin(lr) == 0) {
		cp_future *f = cp_pool_enqueue(pool, latency_task, lr);
		if (!f)
			return errno;
		bench_latency_end(lr);
		int rc = cp_future_wait(f);
		cp_future_release(f);
		if (rc)
			return rc;
	}
	return 0;
}

static void classic_version(char *buf, size_t len)
{
	snprintf(buf, len,
		 "classic pool (literal C port of the reference design; pthread mutex+condvar)");
}

const struct bench_runtime bench_rt = {
	.name = "classic",
	.kernels = BENCH_K(BENCH_SUBMIT) | BENCH_K(BENCH_REDUCE) | BENCH_K(BENCH_LATENCY) |
		   BENCH_K(BENCH_IDLE),
	.skip_reason =
		"blocking futures deadlock on recursive kernels deeper than its thread count",
	.start = classic_start,
	.stop = classic_stop,
	.reduce = classic_reduce,
	.submit = classic_submit,
	.latency = classic_latency,
	.version = classic_version,
};
