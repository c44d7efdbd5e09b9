/*
 * catalog.c - what tp-bench knows about the runtimes and the kernels, in one table each.
 *
 * The usage text, the error messages, the lookups and the descriptions of the per-kernel
 * defaults are derived from these tables; nothing else names a runtime or lists the kernels
 * (the kernels' names themselves are kernels.c's, which every rt_<runtime> shares).
 */
#include <stdio.h>
#include <string.h>

#include "bench_config.h"
#include "driver.h"

/* ---- the runtimes, in the order of the tables' rows ------------------------------------ */

struct runtime runtimes[] = {
	{ .name = "thread_pool",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL,
	  .baseline = true },
	{ .name = "tp_spawn",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_task",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "serial", .configured = true, .threadless = true, .serial = true, .why_not = "" },
	{ .name = "libgomp", .configured = BENCH_HAVE_LIBGOMP, .why_not = BENCH_WHY_LIBGOMP },
	{ .name = "libomp", .configured = BENCH_HAVE_LIBOMP, .why_not = BENCH_WHY_LIBOMP },
	{ .name = "tbb", .configured = BENCH_HAVE_TBB, .why_not = BENCH_WHY_TBB },
	{ .name = "classic", .configured = true, .why_not = "" },
	{ .name = "tp_batch",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_calls",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .threadless = true,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_submit",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
};

const int runtime_count = (int)(sizeof runtimes / sizeof runtimes[0]);

struct runtime *runtime_find(const char *name)
{
	for (int r = 0; r < runtime_count; r++)
		if (strcmp(runtimes[r].name, name) == 0)
			return &runtimes[r];
	return NULL;
}

struct runtime *runtime_baseline(void)
{
	for (int r = 0; r < runtime_count; r++)
		if (runtimes[r].baseline)
			return &runtimes[r];
	return NULL;
}

struct runtime *runtime_serial(void)
{
	for (int r = 0; r < runtime_count; r++)
		if (runtimes[r].serial)
			return &runtimes[r];
	return NULL;
}

bool runtime_selected(const struct runtime *rt)
{
	return rt->wanted && rt->available;
}

/* Appends `s` to the string in buf[0..len). */
static void append(char *buf, size_t len, const char *s)
{
	size_t used = strlen(buf);
	if (used + 1 < len)
		snprintf(buf + used, len - used, "%s", s);
}

void runtime_names(char *buf, size_t len, const char *sep)
{
	buf[0] = '\0';
	for (int r = 0; r < runtime_count; r++) {
		if (r)
			append(buf, len, sep);
		append(buf, len, runtimes[r].name);
	}
}

/* ---- the kernels -------------------------------------------------------------------------- */

static void title_fib(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(buf, len, "fib(%d), one task per call, no cutoff: time per run", s->fib_n);
}

static void title_nqueens(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(buf, len, "nqueens(%d), BOTS-style, one task per legal placement: time per run",
		 s->nqueens_n);
}

static void title_uts(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(
		buf, len,
		"uts (binomial, root %d, m=%d, q=0.2, seed %llu: %llu nodes), one task per node: time per run",
		s->uts.root_children, s->uts.m, (unsigned long long)s->uts.seed,
		(unsigned long long)s->uts_nodes);
}

static void title_reduce(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(buf, len, "reduce: sum of sqrt over %zu doubles: time per run", s->reduce_n);
}

static void title_submit(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(
		buf, len,
		"submit: one outside thread enqueues %zu trivial tasks, then waits for all: time per task",
		s->submit_n);
}

static void title_latency(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(buf, len,
		 "latency: enqueue -> task start with the workers parked, %zu samples per run: p50",
		 s->latency_samples);
}

static void title_idle(const struct bench_size *s, char *buf, size_t len)
{
	snprintf(
		buf, len,
		"idle: CPU burnt during %.1f s of idleness after a burst of %zu tasks: CPU ms per second",
		s->idle_s, s->burst_n);
}

/*
 * default_repeat: five kept runs everywhere, except where one run is long already and itself an
 * aggregate: uts (13M tasks), latency (1000 samples per run, p50/p99), idle (1 s per run). That
 * keeps a default run within 3 minutes on 2 CPUs.
 * warmup: one discarded round, except for latency and idle, whose runs discard their own warm-up
 * inside the process (latency: its first 10 samples; idle: it measures after a burst) and whose
 * figure is not a speed that caches or clocks would inflate on a first run.
 */
const struct kernel_spec kernel_specs[BENCH_KERNEL_COUNT] = {
	[BENCH_FIB] = {
		.default_repeat = 5,
		.warmup = 1,
		.json_unit = "s",
		.speedup = true,
		.chart_label = "time per run (ms)",
		.chart_scale = 1e3,
		.note = "thread_pool: futures (tp_enqueue + tp_future_wait); tp_spawn: frames "
			"(tp_spawn + tp_join); tp_task: typed tasks (TP_SPAWN + TP_JOIN, slots by value); "
			"tp_calls: tp_spawn's kernel with each join a plain call, "
			"no runtime; OpenMP: task + taskwait; oneTBB: task_group",
		.title = title_fib,
	},
	[BENCH_NQUEENS] = {
		.default_repeat = 5,
		.warmup = 1,
		.json_unit = "s",
		.speedup = true,
		.chart_label = "time per run (ms)",
		.chart_scale = 1e3,
		.title = title_nqueens,
	},
	[BENCH_UTS] = {
		.default_repeat = 3,
		.warmup = 1,
		.json_unit = "s",
		.speedup = true,
		.chart_label = "time per run (ms)",
		.chart_scale = 1e3,
		.title = title_uts,
	},
	[BENCH_REDUCE] = {
		.default_repeat = 5,
		.warmup = 1,
		.json_unit = "s",
		.speedup = true,
		.chart_label = "time per run (ms)",
		.chart_scale = 1e3,
		.note = "thread_pool: tp_parallel_reduce (automatic grain); classic: 65536-element chunks "
			"submitted from outside; OpenMP: parallel for reduction; oneTBB: parallel_reduce",
		.title = title_reduce,
	},
	[BENCH_SUBMIT] = {
		.default_repeat = 5,
		.warmup = 1,
		.json_unit = "ns_per_task",
		.unit = "ns",
		.decimals = 1,
		.chart_label = "time per task (ns)",
		.chart_scale = 1,
		.note = "thread_pool, classic: one future per task, each waited and released; tp_batch: "
			"the same, submitted 256 per tp_enqueue_batch call; tp_submit: no futures, "
			"tp_submit then tp_pool_wait_idle; OpenMP: task + taskwait; "
			"oneTBB: task_group::run + wait (its waiting thread runs tasks too)",
		.title = title_submit,
	},
	[BENCH_LATENCY] = {
		.default_repeat = 3,
		.warmup = 0,
		.json_unit = "p50_us",
		.unit = "us",
		.decimals = 1,
		.serial_row = "floor",
		.chart_label = "p50 enqueue -> start (us)",
		.chart_scale = 1,
		.note = "threads = parked workers (OpenMP, oneTBB: plus the submitting thread). Floors, "
			"measured inside every run, one floor sample before each of its samples: a bare "
			"futex hand-off to a parked thread pinned to the submitter's CPU (local) or to "
			"the other CPU (cross); vs local / vs cross = p50 / that run's floor p50, median "
			"over runs. The `floor` row is a bare hand-off to an unpinned thread, alone in its "
			"process. parked = samples in which every other thread was off-CPU before the "
			"enqueue (a runtime still spinning after 0.5 ms is measured spinning)",
		.title = title_latency,
	},
	[BENCH_IDLE] = {
		.default_repeat = 3,
		.warmup = 0,
		.json_unit = "cpu_ms_per_idle_s",
		.unit = "ms",
		.decimals = 2,
		.chart_label = "CPU ms per idle second",
		.chart_scale = 1,
		.note = "CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID) over the idle period, "
			"per second; the submitting thread sleeps meanwhile",
		.title = title_idle,
	},
};

/* Joins the names of the kernels for which want[k], with `sep` and `last_sep` before the last. */
static void join_kernels(char *buf, size_t len, const bool *want, const char *sep,
			 const char *last_sep)
{
	int total = 0, done = 0;
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		total += want[k];
	buf[0] = '\0';
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		if (!want[k])
			continue;
		if (done)
			append(buf, len, done + 1 == total ? last_sep : sep);
		append(buf, len, bench_kernel_name((enum bench_kernel)k));
		done++;
	}
}

void kernel_names(char *buf, size_t len, const char *sep, const char *last_sep)
{
	bool all[BENCH_KERNEL_COUNT];
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		all[k] = true;
	join_kernels(buf, len, all, sep, last_sep);
}

void kernels_where(char *buf, size_t len, const int *vals, int value, const char *sep,
		   const char *last_sep)
{
	bool want[BENCH_KERNEL_COUNT];
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		want[k] = vals[k] == value;
	join_kernels(buf, len, want, sep, last_sep);
}

int kernels_common(const int *vals)
{
	int best = vals[0], best_n = 0;
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		int n = 0;
		for (int j = 0; j < BENCH_KERNEL_COUNT; j++)
			n += vals[j] == vals[k];
		if (n > best_n) {
			best = vals[k];
			best_n = n;
		}
	}
	return best;
}

int kernels_describe_as(char *buf, size_t len, const int *vals, const char *sep,
			const char *last_sep, const char *between, bool value_first,
			const char *group_sep)
{
	int common = kernels_common(vals);
	char names[160], group[200];
	buf[0] = '\0';
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		bool first_of_value = vals[k] != common;
		for (int j = 0; j < k && first_of_value; j++)
			first_of_value = vals[j] != vals[k];
		if (!first_of_value)
			continue;
		kernels_where(names, sizeof names, vals, vals[k], sep, last_sep);
		if (value_first)
			snprintf(group, sizeof group, "%s%d%s%s", buf[0] ? group_sep : "", vals[k],
				 between, names);
		else
			snprintf(group, sizeof group, "%s%s%s%d", buf[0] ? group_sep : "", names,
				 between, vals[k]);
		append(buf, len, group);
	}
	return common;
}

int kernels_describe(char *buf, size_t len, const int *vals, const char *sep,
		     const char *before_value, const char *group_sep)
{
	return kernels_describe_as(buf, len, vals, sep, sep, before_value, false, group_sep);
}

void kernel_repeats(int *vals)
{
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		vals[k] = kernel_specs[k].default_repeat;
}

void kernel_warmups(int *vals)
{
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		vals[k] = kernel_specs[k].warmup;
}
