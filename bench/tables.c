/*
 * tables.c - what tp-bench prints on stdout: the header, then one table per kernel.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "driver.h"

/* A figure in the kernel's unit ("12.3 ms"), or "-". */
static void fmt_value(int kernel, double v, char *buf, size_t len)
{
	const struct kernel_spec *ks = &kernel_specs[kernel];
	if (!isfinite(v))
		snprintf(buf, len, "-");
	else if (ks->unit)
		snprintf(buf, len, "%.*f %s", ks->decimals, v, ks->unit);
	else if (v < 10)
		snprintf(buf, len, "%.1f ms", v * 1e3);
	else
		snprintf(buf, len, "%.2f s", v);
}

/* "lo-hi unit", the unit once. */
static void fmt_range(int kernel, double lo, double hi, char *buf, size_t len)
{
	if (!isfinite(lo)) {
		snprintf(buf, len, "-");
		return;
	}
	char a[32], b[32];
	fmt_value(kernel, lo, a, sizeof a);
	fmt_value(kernel, hi, b, sizeof b);
	char *unit = strchr(a, ' ');
	if (unit)
		*unit = '\0';
	snprintf(buf, len, "%s-%s", a, b);
}

const char *row_name(const struct kernel_result *kr, const struct config *c)
{
	const char *serial_row = kernel_specs[kr->kernel].serial_row;
	if (c->rt->serial && serial_row)
		return serial_row;
	return c->rt->name;
}

/* ---- the header ----------------------------------------------------------------------------- */

/* "after 1 discarded warm-up round (none for latency, idle)", from the kernel table. */
static void describe_warmup(char *buf, size_t len)
{
	int vals[BENCH_KERNEL_COUNT], zero[BENCH_KERNEL_COUNT];
	char groups[200], none[160];
	kernel_warmups(vals);
	int common = kernels_describe(groups, sizeof groups, vals, ", ", ": ", "; ");
	bool only_zeros = true;
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		only_zeros &= vals[k] == common || vals[k] == 0;
		zero[k] = vals[k] == 0;
	}
	kernels_where(none, sizeof none, zero, 1, ", ", ", ");
	if (!groups[0])
		snprintf(buf, len, "after %d discarded warm-up round%s", common,
			 common == 1 ? "" : "s");
	else if (only_zeros)
		snprintf(buf, len, "after %d discarded warm-up round%s (none for %s)", common,
			 common == 1 ? "" : "s", none);
	else
		snprintf(buf, len, "after %d discarded warm-up round%s (%s)", common,
			 common == 1 ? "" : "s", groups);
}

void print_header(void)
{
	char model[256], kept[200], warmup[256], groups[160];
	cpu_model(model, sizeof model);
	if (opt.repeat) {
		snprintf(kept, sizeof kept, "%d", opt.repeat);
	} else {
		int vals[BENCH_KERNEL_COUNT];
		kernel_repeats(vals);
		int common = kernels_describe(groups, sizeof groups, vals, ", ", ": ", "; ");
		if (groups[0])
			snprintf(kept, sizeof kept, "%d (%s)", common, groups);
		else
			snprintf(kept, sizeof kept, "%d", common);
	}
	describe_warmup(warmup, sizeof warmup);
	printf("tp-bench: %s, %d CPUs; size %s; kept runs per row: %s, %s; rounds interleaved\n",
	       model, cpu_count(), opt.size->name, kept, warmup);
	for (int r = 0; r < runtime_count; r++)
		if (runtime_selected(&runtimes[r]))
			printf("  %-12s %s\n", runtimes[r].name, runtimes[r].version);
	const char *base = runtime_baseline()->name;
	printf("ratio = runtime / %s, paired run by run (same round, same threads): above 1 "
	       "means %s did better.\n",
	       base, base);
}

/* ---- a table -------------------------------------------------------------------------------- */

static void print_table_head(int k)
{
	char title[256];
	kernel_specs[k].title(opt.size, title, sizeof title);
	printf("\n== %s\n", title);
	printf("%-12s %7s %12s %20s %8s", "runtime", "threads", "median", "min-max", "ratio");
	if (k == BENCH_LATENCY)
		printf(" %9s %11s %11s %8s %8s %7s", "p99", "floor:local", "floor:cross",
		       "vs local", "vs cross", "parked");
	printf("\n");
}

/* latency: p99, the floors measured in the same runs, the ratios to them, the parked share. */
static void print_latency_columns(int k, const struct config *c)
{
	double vl = ratio_vs_own_floor(c, c->local_p50);
	double vc = ratio_vs_own_floor(c, c->cross_p50);
	double fl = median(c->local_p50, c->n, NULL, NULL);
	double fc = median(c->cross_p50, c->n, NULL, NULL);
	double p99 = median(c->p99, c->n, NULL, NULL);
	double parked = 0, samples = 0;
	for (int j = 0; j < c->n; j++)
		if (isfinite(c->parked[j]) && isfinite(c->samples[j])) {
			parked += c->parked[j];
			samples += c->samples[j];
		}
	char vls[16], vcs[16], fls[24], fcs[24], p99s[24], ps[16];
	snprintf(vls, sizeof vls, isfinite(vl) ? "%.2f" : "-", vl);
	snprintf(vcs, sizeof vcs, isfinite(vc) ? "%.2f" : "-", vc);
	fmt_value(k, fl, fls, sizeof fls);
	fmt_value(k, fc, fcs, sizeof fcs);
	fmt_value(k, p99, p99s, sizeof p99s);
	snprintf(ps, sizeof ps, samples > 0 ? "%.0f%%" : "-",
		 100.0 * parked / (samples > 0 ? samples : 1));
	printf(" %9s %11s %11s %8s %8s %7s", p99s, fls, fcs, vls, vcs, ps);
}

static void print_row(const struct kernel_result *kr, const struct config *c)
{
	int k = kr->kernel;
	char med[32], range[80], ratio[16], threads[16];
	double lo, hi, m = median(c->value, c->n, &lo, &hi);
	fmt_value(k, m, med, sizeof med);
	fmt_range(k, lo, hi, range, sizeof range);
	double rr = ratio_vs_baseline(kr, c);
	if (isfinite(rr))
		snprintf(ratio, sizeof ratio, "%.2f", rr);
	else
		snprintf(ratio, sizeof ratio, "-");
	if (c->rt->threadless)
		snprintf(threads, sizeof threads, "-");
	else
		snprintf(threads, sizeof threads, "%d", c->threads);
	printf("%-12s %7s %12s %20s %8s", row_name(kr, c), threads, c->failed ? "FAILED" : med,
	       range, c->rt->baseline ? "1.00" : ratio);
	if (k == BENCH_LATENCY)
		print_latency_columns(k, c);
	printf("\n");
	if (c->failed)
		printf("  ^ FAILED: %s\n", c->error);
}

/* The runtimes asked for that have no row: they skip this kernel, or are missing. */
static void print_absent_rows(int k)
{
	for (int r = 0; r < runtime_count; r++) {
		const struct runtime *rt = &runtimes[r];
		if (runtime_selected(rt) && !(rt->kernels & BENCH_K(k)))
			printf("%-12s %7s   not run: %s\n", rt->name, "-", rt->skip_reason);
	}
	/* A peer that was asked for but is missing says so here, where the comparison is read. */
	for (int r = 0; r < runtime_count; r++) {
		const struct runtime *rt = &runtimes[r];
		if (rt->wanted && !rt->available)
			printf("%-12s %7s   %s: %s\n", rt->name, "-",
			       rt->configured ? "does not run" : "not built",
			       rt->configured ? rt->path : rt->why_not);
	}
}

/* The kernel's note, and how much of the machine other processes took meanwhile. */
static void print_table_foot(const struct kernel_result *kr)
{
	const char *note = kernel_specs[kr->kernel].note;
	if (note)
		printf("note: %s\n", note);
	double share = foreign_share(kr->foreign_cpu_s, kr->steal_s, kr->elapsed_s);
	printf("%s: other processes used %.0f%% of the machine during these %.0f s (%.1f CPU-s, "
	       "steal %.1f s)%s\n",
	       share > 0.25 ? "WARNING" : "load", 100 * share, kr->elapsed_s, kr->foreign_cpu_s,
	       kr->steal_s,
	       share > 0.25 ? ": the machine was not quiet, figures are disturbed" : "");
	if (!find_config(kr, runtime_baseline(), -1))
		printf("(%s was not run: no ratios)\n", runtime_baseline()->name);
}

void print_table(const struct kernel_result *kr)
{
	print_table_head(kr->kernel);
	int last_threads = -1;
	for (int i = 0; i < kr->nconfigs; i++) {
		const struct config *c = &kr->configs[i];
		if (last_threads >= 0 && c->threads != last_threads)
			printf("\n");
		last_threads = c->threads;
		print_row(kr, c);
	}
	print_absent_rows(kr->kernel);
	print_table_foot(kr);
}
