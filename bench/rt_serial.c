/*
 * rt_serial.c - the floor: the kernels as plain C calls, no runtime at all.
 *
 * `submit` calls the trivial task through a function pointer, once per task. `latency` is the
 * floor line of the latency table: a bare futex hand-off to one parked helper thread, through the
 * same harness (bench_latency_begin/end) as every runtime. `idle` is not run: nothing to idle.
 */
#include "bench.h"

#include <errno.h>
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
	static const char root[BENCH_NQ_MAX] = { 0 };
	*out = bench_nqueens_serial(n, 0, root);
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

/* ---- the futex floor: the harness's own helper thread is the "worker" ---- */

static int serial_latency(struct bench_latency *lr)
{
	while (bench_latency_begin(lr) == 0) {
		bench_latency_floor_handoff(lr);
		bench_latency_end(lr);
	}
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
