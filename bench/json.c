/*
 * json.c - --json FILE: every figure, the machine, compilers, flags and versions.
 *
 * Written after each kernel, so that a run killed midway leaves its figures up to the last
 * finished table; "complete" says whether the run ended. Written to FILE.partial, then renamed:
 * the file at FILE is always a whole document.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "bench_config.h"
#include "driver.h"

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.9g", v);
	else
		fputs("null", f);
}

static void json_array(FILE *f, const double *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		json_num(f, v[i]);
	}
	fputc(']', f);
}

/* `"key": ` and a string, a number or an array, after a comma. */
static void json_key_str(FILE *f, const char *key, const char *s)
{
	fprintf(f, ", \"%s\": ", key);
	json_str(f, s);
}

static void json_key_num(FILE *f, const char *key, double v)
{
	fprintf(f, ", \"%s\": ", key);
	json_num(f, v);
}

static void json_key_array(FILE *f, const char *key, const double *v, int n)
{
	fprintf(f, ", \"%s\": ", key);
	json_array(f, v, n);
}

/* ---- the run: command, settings, machine, build --------------------------------------------- */

static void json_command(FILE *f, int argc, char **argv)
{
	char cmd[2048] = "";
	for (int i = 0; i < argc; i++) {
		strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 2);
		if (i + 1 < argc)
			strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
	}
	json_str(f, cmd);
}

/* "repeat" and "discarded_warmup_rounds", from the options and the kernel table. */
static void json_rounds(FILE *f)
{
	int vals[BENCH_KERNEL_COUNT];
	char groups[200], text[256];
	fprintf(f, ",\n  \"repeat\": ");
	if (opt.repeat) {
		fprintf(f, "%d", opt.repeat);
	} else {
		kernel_repeats(vals);
		int common = kernels_describe(groups, sizeof groups, vals, "/", " ", ", ");
		if (groups[0])
			snprintf(text, sizeof text, "per kernel: %d, %s", common, groups);
		else
			snprintf(text, sizeof text, "per kernel: %d", common);
		json_str(f, text);
	}
	kernel_warmups(vals);
	int common = kernels_describe(groups, sizeof groups, vals, ", ", ": ", "; ");
	if (groups[0])
		snprintf(text, sizeof text, "%d (%s)", common, groups);
	else
		snprintf(text, sizeof text, "%d", common);
	fprintf(f, ",\n  \"discarded_warmup_rounds\": ");
	json_str(f, text);
}

static void json_machine(FILE *f)
{
	char model[256], kern[400];
	struct utsname u;
	cpu_model(model, sizeof model);
	uname(&u);
	snprintf(kern, sizeof kern, "%s %s %s", u.sysname, u.release, u.machine);
	fprintf(f, "  \"machine\": {\"cpu_model\": ");
	json_str(f, model);
	fprintf(f, ", \"cpus\": %d", cpu_count());
	json_key_str(f, "kernel", kern);
	fprintf(f, "},\n  \"build\": {\"buildtype\": ");
	json_str(f, BENCH_BUILDTYPE);
	json_key_str(f, "c_compiler", BENCH_C_COMPILER);
	json_key_str(f, "bench_flags", BENCH_FLAGS);
	fprintf(f, "}");
}

static void json_runtimes(FILE *f)
{
	fprintf(f, ",\n  \"runtimes\": [\n");
	for (int r = 0; r < runtime_count; r++) {
		const struct runtime *rt = &runtimes[r];
		fprintf(f, "%s    {\"name\": ", r ? ",\n" : "");
		json_str(f, rt->name);
		fprintf(f, ", \"available\": %s", rt->available ? "true" : "false");
		if (rt->available) {
			json_key_str(f, "version", rt->version);
			json_key_str(f, "compiler", rt->compiler);
			json_key_str(f, "flags", rt->cflags);
			if (rt->skip_reason[0])
				json_key_str(f, "skips", rt->skip_reason);
		} else {
			json_key_str(f, "why",
				     rt->configured ? "executable missing or broken" : rt->why_not);
		}
		fputc('}', f);
	}
	fprintf(f, "\n  ]");
}

/* ---- the kernels and their rows ---------------------------------------------------------- */

static void json_kernels(FILE *f, const struct kernel_result *krs)
{
	bool first = true;
	fprintf(f, ",\n  \"kernels\": {");
	for (int i = 0; i < BENCH_KERNEL_COUNT; i++) {
		const struct kernel_result *kr = &krs[i];
		if (!kr->ran)
			continue;
		fprintf(f,
			"%s\n    \"%s\": {\"kept_runs\": %d, \"elapsed_s\": %.1f, \"other_cpu_s\": %.2f, "
			"\"steal_s\": %.2f, \"other_share\": %.3f}",
			first ? "" : ",", bench_kernel_name((enum bench_kernel)i), kr->repeat,
			kr->elapsed_s, kr->foreign_cpu_s, kr->steal_s,
			foreign_share(kr->foreign_cpu_s, kr->steal_s, kr->elapsed_s));
		first = false;
	}
	fprintf(f, "\n  }");
}

static void json_latency_fields(FILE *f, const struct config *c)
{
	json_key_num(f, "ratio_vs_floor", ratio_vs_own_floor(c, c->cross_p50));
	json_key_num(f, "ratio_vs_local_floor", ratio_vs_own_floor(c, c->local_p50));
	json_key_array(f, "floor_local_p50_us", c->local_p50, c->n);
	json_key_array(f, "floor_cross_p50_us", c->cross_p50, c->n);
	json_key_array(f, "p99_us", c->p99, c->n);
	json_key_array(f, "parked_samples", c->parked, c->n);
	json_key_array(f, "samples", c->samples, c->n);
}

static void json_result(FILE *f, const struct kernel_result *kr, const struct config *c)
{
	int k = kr->kernel;
	double lo, hi, m = median(c->value, c->n, &lo, &hi);
	fprintf(f,
		"    {\"kernel\": \"%s\", \"runtime\": \"%s\", \"threads\": %d, \"unit\": \"%s\", \"ok\": %s",
		bench_kernel_name((enum bench_kernel)k), row_name(kr, c), c->threads,
		kernel_specs[k].json_unit, c->failed ? "false" : "true");
	json_key_num(f, "median", m);
	json_key_num(f, "min", lo);
	json_key_num(f, "max", hi);
	json_key_num(f, "ratio_vs_thread_pool", ratio_vs_baseline(kr, c));
	json_key_array(f, "runs", c->value, c->n);
	if (k == BENCH_LATENCY)
		json_latency_fields(f, c);
	if (c->failed)
		json_key_str(f, "error", c->error);
	fputc('}', f);
}

static void json_results(FILE *f, const struct kernel_result *krs)
{
	bool first = true;
	fprintf(f, ",\n  \"results\": [\n");
	for (int i = 0; i < BENCH_KERNEL_COUNT; i++) {
		const struct kernel_result *kr = &krs[i];
		if (!kr->ran)
			continue;
		for (int j = 0; j < kr->nconfigs; j++) {
			if (!first)
				fputs(",\n", f);
			first = false;
			json_result(f, kr, &kr->configs[j]);
		}
	}
	fprintf(f, "\n  ]\n}\n");
}

bool write_json(const char *path, const struct kernel_result *krs, int argc, char **argv,
		double elapsed, bool complete)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.partial", path) >= (int)sizeof tmp) {
		fprintf(stderr, "tp-bench: path too long: %s\n", path);
		return false;
	}
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "tp-bench: cannot write %s: %s\n", tmp, strerror(errno));
		return false;
	}
	fprintf(f, "{\n  \"suite\": \"tp-bench\",\n  \"complete\": %s,\n  \"command\": ",
		complete ? "true" : "false");
	json_command(f, argc, argv);
	fprintf(f, ",\n  \"size\": ");
	json_str(f, opt.size->name);
	json_rounds(f);
	fprintf(f, ",\n  \"elapsed_s\": %.1f,\n", elapsed);
	json_machine(f);
	json_runtimes(f);
	json_kernels(f, krs);
	json_results(f, krs);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "tp-bench: error writing %s: %s\n", path, strerror(errno));
		return false;
	}
	if (complete)
		fprintf(stderr, "tp-bench: wrote %s\n", path);
	return true;
}
