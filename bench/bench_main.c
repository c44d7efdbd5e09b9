/*
 * bench_main.c - main() of every rt_<name> executable: runs ONE measurement and prints one line.
 *
 *   rt_<name> --kernel K [--threads N] [--size small|default|large]
 *   rt_<name> --info
 *
 * The line (stdout) is `tp-bench-result` followed by key=value fields; `value` is the figure the
 * driver compares (lower is better for every kernel) in `unit`. Exit status: 0 ok, 2 usage,
 * 3 wrong answer, 4 the runtime reported an error, 77 kernel not supported by this runtime.
 * Only the kernel is timed: data set-up, runtime start-up and a warm-up run are not.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "?"
#endif

#if defined(__clang__)
#define BENCH_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define BENCH_COMPILER "gcc " __VERSION__
#else
#define BENCH_COMPILER "unknown"
#endif

/* The kernels' names, space-separated (kernels.c has the list). */
static void print_kernel_names(FILE *out)
{
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		fprintf(out, "%s%s", k ? " " : "", bench_kernel_name((enum bench_kernel)k));
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: rt_%s --kernel K [--threads N] [--size small|default|large]\n"
		"       rt_%s --info\n"
		"Runs one measurement of kernel K (",
		bench_rt.name, bench_rt.name);
	print_kernel_names(out);
	fprintf(out,
		") on the %s\n"
		"runtime and prints one `tp-bench-result` line. Normally run by tp-bench.\n",
		bench_rt.name);
}

static void print_info(void)
{
	char version[256] = "?";
	if (bench_rt.version)
		bench_rt.version(version, sizeof version);
	printf("runtime=%s\nversion=%s\ncompiler=%s\ncflags=%s\nkernels=", bench_rt.name, version,
	       BENCH_COMPILER, BENCH_CFLAGS);
	const char *sep = "";
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		if (bench_rt.kernels & BENCH_K(k)) {
			printf("%s%s", sep, bench_kernel_name((enum bench_kernel)k));
			sep = ",";
		}
	printf("\nskip_reason=%s\n", bench_rt.skip_reason ? bench_rt.skip_reason : "");
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, size_t n, double p)
{
	if (n == 0)
		return NAN;
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);
	return v[rank ? rank - 1 : 0];
}

static int check_slots(const int *slots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (slots[i] != 1)
			return 0;
	return 1;
}

struct outcome {
	double value;
	const char *unit;
	int ok;
	char answer[64], expected[64], extra[512];
};

/* Runs kernel k; returns 0 or the runtime's error code. */
static int run_kernel(enum bench_kernel k, const struct bench_size *sz, struct outcome *o)
{
	const struct bench_size *warm = bench_size_get("small");
	uint64_t got = 0, want = 0, t0;
	int rc = 0;

	o->unit = "s";
	switch (k) {
	case BENCH_FIB:
		if ((rc = bench_rt.fib(warm->fib_n, &got)) != 0)
			return rc;
		t0 = bench_now_ns();
		rc = bench_rt.fib(sz->fib_n, &got);
		o->value = (double)(bench_now_ns() - t0) / 1e9;
		want = bench_fib_expected(sz->fib_n);
		break;
	case BENCH_NQUEENS:
		if (sz->nqueens_n > BENCH_NQ_MAX) /* the boards' size (bench.h) */
			return EINVAL;
		if ((rc = bench_rt.nqueens(warm->nqueens_n, &got)) != 0)
			return rc;
		t0 = bench_now_ns();
		rc = bench_rt.nqueens(sz->nqueens_n, &got);
		o->value = (double)(bench_now_ns() - t0) / 1e9;
		want = bench_nqueens_expected(sz->nqueens_n);
		break;
	case BENCH_UTS:
		if ((rc = bench_rt.uts(&warm->uts, &got)) != 0)
			return rc;
		t0 = bench_now_ns();
		rc = bench_rt.uts(&sz->uts, &got);
		o->value = (double)(bench_now_ns() - t0) / 1e9;
		want = sz->uts_nodes;
		break;
	case BENCH_REDUCE: {
		double *x = bench_reduce_data(sz->reduce_n);
		if (!x)
			return ENOMEM;
		double sum = 0.0, exp = bench_reduce_expected(sz->reduce_n);
		if ((rc = bench_rt.reduce(x, warm->reduce_n, warm->reduce_grain, &sum)) == 0) {
			t0 = bench_now_ns();
			rc = bench_rt.reduce(x, sz->reduce_n, sz->reduce_grain, &sum);
			o->value = (double)(bench_now_ns() - t0) / 1e9;
		}
		bench_reduce_free(x, sz->reduce_n);
		/* Summation order differs between runtimes: compare within 1e-8 relative. */
		o->ok = fabs(sum - exp) <= 1e-8 * fabs(exp);
		snprintf(o->answer, sizeof o->answer, "%.17g", sum);
		snprintf(o->expected, sizeof o->expected, "%.17g", exp);
		return rc;
	}
	case BENCH_SUBMIT:
	case BENCH_IDLE: {
		size_t n = k == BENCH_SUBMIT ? sz->submit_n : sz->burst_n;
		int *slots = calloc(n, sizeof *slots);
		int *warm_slots = calloc(warm->submit_n, sizeof *warm_slots);
		if (!slots || !warm_slots) {
			free(slots);
			free(warm_slots);
			return ENOMEM;
		}
		if (k == BENCH_SUBMIT)
			rc = bench_rt.submit(warm_slots, warm->submit_n);
		if (rc == 0) {
			struct rusage r0, r1;
			t0 = bench_now_ns();
			rc = bench_rt.submit(slots, n);
			o->value = (double)(bench_now_ns() - t0) / (double)n; /* ns per task */
			o->unit = "ns/task";
			if (k == BENCH_IDLE && rc == 0) {
				/* The burst is done: now measure what the idle runtime burns. */
				getrusage(RUSAGE_SELF, &r0);
				uint64_t c0 = bench_cpu_ns(), w0 = bench_now_ns();
				bench_sleep_ns((uint64_t)(sz->idle_s * 1e9));
				uint64_t c1 = bench_cpu_ns(), w1 = bench_now_ns();
				getrusage(RUSAGE_SELF, &r1);
				double wall_s = (double)(w1 - w0) / 1e9;
				o->value = (double)(c1 - c0) / 1e6 / wall_s;
				o->unit = "cpu_ms/s";
				double user_ms =
					(double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 +
					(double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3;
				double sys_ms =
					(double)(r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
					(double)(r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
				snprintf(o->extra, sizeof o->extra,
					 "idle_s=%.3f user_ms=%.3f sys_ms=%.3f csw=%ld", wall_s,
					 user_ms, sys_ms,
					 (r1.ru_nvcsw - r0.ru_nvcsw) +
						 (r1.ru_nivcsw - r0.ru_nivcsw));
			}
		}
		o->ok = check_slots(slots, n) &&
			(k == BENCH_IDLE || check_slots(warm_slots, warm->submit_n));
		snprintf(o->answer, sizeof o->answer, "%s", o->ok ? "all-ran" : "missing-tasks");
		snprintf(o->expected, sizeof o->expected, "all-ran");
		free(slots);
		free(warm_slots);
		return rc;
	}
	case BENCH_LATENCY: {
		struct bench_latency *lr = bench_latency_new(sz->latency_samples, 1);
		if (!lr)
			return ENOMEM;
		rc = bench_rt.latency(lr);
		double *us, *fl[2];
		size_t nf[2], n = bench_latency_result(lr, &us, fl, nf);
		o->ok = rc == 0 && n == sz->latency_samples;
		qsort(us, n, sizeof *us, bench_cmp_double);
		qsort(fl[0], nf[0], sizeof(double), bench_cmp_double);
		qsort(fl[1], nf[1], sizeof(double), bench_cmp_double);
		o->value = percentile(us, n, 50);
		o->unit = "us";
		snprintf(o->extra, sizeof o->extra,
			 "p50_us=%.3f p99_us=%.3f max_us=%.3f samples=%zu parked=%zu "
			 "local_p50_us=%.3f cross_p50_us=%.3f local_samples=%zu cross_samples=%zu",
			 percentile(us, n, 50), percentile(us, n, 99), n ? us[n - 1] : NAN, n,
			 bench_latency_parked(lr), percentile(fl[0], nf[0], 50),
			 percentile(fl[1], nf[1], 50), nf[0], nf[1]);
		snprintf(o->answer, sizeof o->answer, "%zu", n);
		snprintf(o->expected, sizeof o->expected, "%zu", sz->latency_samples);
		bench_latency_free(lr);
		return rc;
	}
	default:
		return EINVAL;
	}
	o->ok = got == want;
	snprintf(o->answer, sizeof o->answer, "%llu", (unsigned long long)got);
	snprintf(o->expected, sizeof o->expected, "%llu", (unsigned long long)want);
	return rc;
}

int main(int argc, char **argv)
{
	const char *kernel = NULL, *size = "default";
	int threads = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--info") == 0) {
			print_info();
			return 0;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (i + 1 < argc && strcmp(a, "--kernel") == 0) {
			kernel = argv[++i];
		} else if (i + 1 < argc && strcmp(a, "--threads") == 0) {
			char *end;
			long t = strtol(argv[++i], &end, 10);
			if (*end || t < 1 || t > 1024) {
				fprintf(stderr, "rt_%s: bad --threads '%s'\n", bench_rt.name,
					argv[i]);
				return 2;
			}
			threads = (int)t;
		} else if (i + 1 < argc && strcmp(a, "--size") == 0) {
			size = argv[++i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	int k = kernel ? bench_kernel_parse(kernel) : -1;
	const struct bench_size *sz = bench_size_get(size);
	if (k < 0) {
		fprintf(stderr, "rt_%s: --kernel must be one of ", bench_rt.name);
		print_kernel_names(stderr);
		fputc('\n', stderr);
		return 2;
	}
	if (!sz) {
		fprintf(stderr, "rt_%s: --size must be small, default or large\n", bench_rt.name);
		return 2;
	}
	if (threads == 0)
		threads = 1;
	if (!(bench_rt.kernels & BENCH_K(k))) {
		printf("tp-bench-skip runtime=%s kernel=%s reason=%s\n", bench_rt.name, kernel,
		       bench_rt.skip_reason ? bench_rt.skip_reason : "not supported");
		return 77;
	}

	int rc = bench_rt.start((enum bench_kernel)k, threads);
	if (rc != 0) {
		fprintf(stderr, "rt_%s: FAILED to start with %d threads: %s\n", bench_rt.name,
			threads, strerror(rc));
		return 4;
	}
	struct outcome o = { 0 };
	rc = run_kernel((enum bench_kernel)k, sz, &o);
	bench_rt.stop();
	if (rc != 0) {
		fprintf(stderr, "rt_%s: FAILED: kernel %s reported an error: %s\n", bench_rt.name,
			kernel, strerror(rc));
		return 4;
	}
	printf("tp-bench-result runtime=%s kernel=%s threads=%d size=%s value=%.9g unit=%s ok=%d "
	       "answer=%s expected=%s%s%s\n",
	       bench_rt.name, kernel, threads, sz->name, o.value, o.unit, o.ok, o.answer,
	       o.expected, o.extra[0] ? " " : "", o.extra);
	fflush(stdout);
	if (!o.ok) {
		fprintf(stderr,
			"rt_%s: WRONG ANSWER: kernel %s (size %s, %d threads) gave %s, serial gives %s\n",
			bench_rt.name, kernel, sz->name, threads, o.answer, o.expected);
		return 3;
	}
	return 0;
}
