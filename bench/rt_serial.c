/*
 * rt_serial.c - the floor: the kernels as plain C calls, no runtime at all.
 *
 * `submit` calls the trivial task through a function pointer, once per task. `latency` is the
 * floor line of the latency table: a bare futex hand-off to one parked helper thread, through the
 * same harness (bench_latency_begin/end) as every runtime. `idle` is not run: nothing to idle.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static int serial_start(enum bench_kernel k, int threads)
{
	(void)k;
	(void)threads;
	return 0;
}

static void serial_stop(void)
{
}

static int serial_fib(int n, uint64_t *out)
{
	*out = bench_fib_serial(n);
	return 0;
}

static int serial_nqueens(int n, uint64_t *out)
{
	*out = bench_nqueens_serial(n, 0, 0, 0, 0);
	return 0;
}

static int serial_uts(const struct bench_uts *u, uint64_t *out)
{
	*out = bench_uts_serial(u);
	return 0;
}

static int serial_reduce(const double *x, size_t n, size_t grain, double *out)
{
	(void)grain;
	*out = bench_sum_sqrt(x, n);
	return 0;
}

static int submit_task(void *arg)
{
	bench_submit_body(arg);
	return 0;
}

/* volatile: the compiler must call through the pointer, once per task, as a pool would. */
static int (*volatile submit_fn)(void *) = submit_task;

static int serial_submit(int *slots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (submit_fn(&slots[i]) != 0)
			return EIO;
	return 0;
}

/* ---- the futex floor ---- */

struct floor_helper {
	atomic_uint go; /* bumped by the submitter for each sample; ~0u: exit */
	struct bench_latency *lr;
};

static void *floor_main(void *p)
{
	struct floor_helper *h = p;
	unsigned seen = 0;
	for (;;) {
		unsigned g;
		while ((g = atomic_load_explicit(&h->go, memory_order_acquire)) == seen)
			bench_futex_wait(&h->go, seen);
		if (g == ~0u)
			return NULL;
		seen = g;
		bench_latency_task(h->lr);
	}
}

static int serial_latency(struct bench_latency *lr)
{
	struct floor_helper h = { .lr = lr };
	pthread_t thread;
	int rc = pthread_create(&thread, NULL, floor_main, &h);
	if (rc != 0)
		return rc;
	unsigned g = 0;
	while (bench_latency_begin(lr) == 0) {
		/* The hand-off: one store, one FUTEX_WAKE; the helper's wake-up is what is timed. */
		atomic_store_explicit(&h.go, ++g, memory_order_release);
		bench_futex_wake(&h.go);
		bench_latency_end(lr);
	}
	atomic_store_explicit(&h.go, ~0u, memory_order_release);
	bench_futex_wake(&h.go);
	pthread_join(thread, NULL);
	return 0;
}

static void serial_version(char *buf, size_t len)
{
	snprintf(buf, len, "none (plain C calls; latency = bare futex hand-off)");
}

const struct bench_runtime bench_rt = {
	.name = "serial",
	.kernels = BENCH_ALL_KERNELS & ~BENCH_K(BENCH_IDLE),
	.skip_reason = "no threads, nothing to idle",
	.start = serial_start,
	.stop = serial_stop,
	.fib = serial_fib,
	.nqueens = serial_nqueens,
	.uts = serial_uts,
	.reduce = serial_reduce,
	.submit = serial_submit,
	.latency = serial_latency,
	.version = serial_version,
};
