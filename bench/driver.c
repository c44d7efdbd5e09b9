/*
 * driver.c - tp-bench: runs every runtime's bench executable (rt_<name>) as a child process, in
 * interleaved rounds, and prints one comparison table per kernel; main and the options here, the
 * rest in the files driver.h lists (with the method).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

struct options opt;

#define USAGE_WIDTH  90 /* a line of the usage text wraps before this column */
#define USAGE_INDENT 19 /* where an option's description starts */

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tp-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- the usage text ------------------------------------------------------------------------ */

/* Prints the words of `text` from column `col`, wrapping at USAGE_WIDTH to USAGE_INDENT. */
static void print_wrapped(FILE *out, int col, const char *text)
{
	char *copy = strdup(text), *save = NULL;
	if (!copy)
		return;
	for (char *w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		int len = (int)strlen(w);
		if (col > USAGE_INDENT && col + 1 + len >= USAGE_WIDTH) {
			col = fprintf(out, "\n%*s", USAGE_INDENT, "") - 1;
		} else if (col > USAGE_INDENT) {
			fputc(' ', out);
			col++;
		}
		col += fprintf(out, "%s", w);
	}
	fputc('\n', out);
	free(copy);
}

static void usage_repeat(FILE *out)
{
	int repeats[BENCH_KERNEL_COUNT], warmups[BENCH_KERNEL_COUNT];
	char none[160], others[256];
	kernel_repeats(repeats);
	kernel_warmups(warmups);
	kernels_where(none, sizeof none, warmups, 0, ", ", " and ");
	/* "3 for uts, latency and idle": the kernels whose setting is not the common one. */
	int common = kernels_describe_as(others, sizeof others, repeats, ", ", " and ", " for ",
					 true, "; ");
	fprintf(out, "  --repeat K       kept runs per row, after one discarded warm-up round");
	if (none[0])
		fprintf(out, " (none for\n%*s%s, whose runs discard their own warm-up)",
			USAGE_INDENT, "", none);
	fprintf(out, "\n%*s(default %d%s%s%s)\n", USAGE_INDENT, "", common, others[0] ? "; " : "",
		others, others[0] ? ", whose runs are long aggregates" : "");
}

static void usage(FILE *out)
{
	char names[512];
	const char *base = runtime_baseline()->name;
	fprintf(out,
		"usage: tp-bench [options]\n"
		"Compares this thread pool with serial C, OpenMP (libgomp, libomp), oneTBB and the classic\n"
		"mutex pool on the same kernels, in one run, and prints one table per kernel.\n"
		"\n"
		"  --kernel LIST    kernels, comma-separated (default: all):\n%*s",
		USAGE_INDENT, "");
	kernel_names(names, sizeof names, " ", " ");
	print_wrapped(out, USAGE_INDENT, names);
	runtime_names(names, sizeof names, " ");
	print_wrapped(out, fprintf(out, "  --runtime LIST   runtimes (default: all built):"),
		      names);
	fprintf(out,
		"  --threads LIST   thread counts: numbers, max (the CPUs available) and ranges A-B,\n"
		"                   e.g. 1,2,4 or 1-max (default: 1, 2, 4, ... up to max, and max)\n"
		"  --size S         small | default | large (default: default)\n");
	usage_repeat(out);
	fprintf(out,
		"  --json FILE      write every figure, the machine, compilers, flags and versions as JSON\n"
		"                   (rewritten after each kernel: a killed run keeps its finished tables;\n"
		"                   \"complete\": false until the run ends)\n"
		"  --plot FILE.svg  draw a chart with gnuplot, written as FILE.svg and FILE.png (either\n"
		"                   name may be given): per kernel, the speedup over serial (or the\n"
		"                   figure itself) against threads, one line per runtime\n"
		"  --timeout SEC    kill a run after SEC seconds (default 120; 900 at --size large)\n"
		"  --bindir DIR     where the rt_<runtime> executables are (default: next to tp-bench)\n"
		"  --help           this text\n"
		"\n"
		"Ratios are this runtime / %s, paired run by run within a round (same thread count);\n"
		"every figure is lower-is-better, so a ratio above 1 means %s did better.\n",
		base, base);
}

/* ---- the options ------------------------------------------------------------------------------ */

static void split_list(const char *arg, void (*each)(const char *item))
{
	char *copy = strdup(arg), *save = NULL;
	if (!copy)
		die("out of memory");
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		each(tok);
	free(copy);
}

static void add_kernel(const char *name)
{
	int k = bench_kernel_parse(name);
	if (k < 0) {
		char names[256];
		kernel_names(names, sizeof names, " ", " ");
		die("unknown kernel '%s' (%s)", name, names);
	}
	opt.kernels[k] = true;
}

static void add_runtime(const char *name)
{
	struct runtime *rt = runtime_find(name);
	if (!rt) {
		char names[512];
		runtime_names(names, sizeof names, " ");
		die("unknown runtime '%s' (%s)", name, names);
	}
	rt->wanted = true;
}

/* One end of a thread count or range: a number in [1, 1024], or "max" (the CPUs available). */
static int parse_threads(const char *text, const char *whole)
{
	char *end;
	long t;

	if (strcmp(text, "max") == 0)
		return cpu_count();
	t = strtol(text, &end, 10);
	if (end == text || *end || t < 1 || t > 1024)
		die("bad thread count '%s' (a number from 1 to 1024, max, or a range A-B)", whole);
	return (int)t;
}

static void add_thread_count(int t)
{
	for (int i = 0; i < opt.nthreads; i++)
		if (opt.threads[i] == t)
			return;
	if (opt.nthreads == (int)(sizeof opt.threads / sizeof opt.threads[0]))
		die("too many thread counts (at most %d)",
		    (int)(sizeof opt.threads / sizeof opt.threads[0]));
	opt.threads[opt.nthreads++] = t;
}

/* An item of --threads: N, max, or A-B (every count from A to B, ends included). */
static void add_threads(const char *text)
{
	const char *dash = strchr(text, '-');
	char lo[32];
	int a, b;

	if (dash == NULL) {
		add_thread_count(parse_threads(text, text));
		return;
	}
	if ((size_t)(dash - text) >= sizeof lo)
		die("bad thread range '%s'", text);
	memcpy(lo, text, (size_t)(dash - text));
	lo[dash - text] = '\0';
	a = parse_threads(lo, text);
	b = parse_threads(dash + 1, text);
	if (a > b)
		die("bad thread range '%s' (A-B needs A <= B)", text);
	for (int t = a; t <= b; t++)
		add_thread_count(t);
}

/* The default: 1, 2, 4, ... up to the CPUs available, and that count itself. */
static void add_default_threads(void)
{
	int cpus = cpu_count();

	for (int t = 1; t < cpus; t *= 2)
		add_thread_count(t);
	add_thread_count(cpus);
}

static void default_bindir(void)
{
	const char *env = getenv("TP_BENCH_BINDIR");
	if (env && *env) {
		snprintf(opt.bindir, sizeof opt.bindir, "%s", env);
		return;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		snprintf(opt.bindir, sizeof opt.bindir, ".");
		return;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(opt.bindir, sizeof opt.bindir, "%s", self);
}

/* An option that takes a value; false if `a` is none of them. */
static bool parse_option(const char *a, const char *v, bool *any_kernel, bool *any_runtime)
{
	if (strcmp(a, "--kernel") == 0) {
		split_list(v, add_kernel);
		*any_kernel = true;
	} else if (strcmp(a, "--runtime") == 0) {
		split_list(v, add_runtime);
		*any_runtime = true;
	} else if (strcmp(a, "--threads") == 0) {
		split_list(v, add_threads);
	} else if (strcmp(a, "--size") == 0) {
		if (!(opt.size = bench_size_get(v)))
			die("--size must be small, default or large");
	} else if (strcmp(a, "--repeat") == 0) {
		char *end;
		long r = strtol(v, &end, 10);
		if (*end || r < 1 || r > 100)
			die("--repeat must be 1..100");
		opt.repeat = (int)r;
	} else if (strcmp(a, "--json") == 0) {
		opt.json = v;
	} else if (strcmp(a, "--plot") == 0) {
		opt.plot = v;
	} else if (strcmp(a, "--timeout") == 0) {
		opt.timeout_s = strtod(v, NULL);
		if (!(opt.timeout_s > 0))
			die("--timeout must be positive");
	} else if (strcmp(a, "--bindir") == 0) {
		snprintf(opt.bindir, sizeof opt.bindir, "%s", v);
	} else {
		return false;
	}
	return true;
}

/* Fills `opt`; exits on --help (0) and on a bad option (2), before anything runs. */
static void parse_options(int argc, char **argv)
{
	bool any_kernel = false, any_runtime = false;
	opt.repeat = 0; /* per kernel: kernel_specs[].default_repeat */
	opt.size = bench_size_get("default");
	opt.timeout_s = 0;
	default_bindir();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (!v)
			die("%s: unknown option or missing value (see --help)", a);
		i++;
		if (!parse_option(a, v, &any_kernel, &any_runtime))
			die("unknown option '%s' (see --help)", a);
	}
	if (!any_kernel)
		for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
			opt.kernels[k] = true;
	if (!any_runtime)
		for (int r = 0; r < runtime_count; r++)
			runtimes[r].wanted = true;
	if (opt.nthreads == 0)
		add_default_threads();
	if (opt.timeout_s == 0)
		opt.timeout_s = strcmp(opt.size->name, "large") == 0 ? 900 : 120;
	if (opt.plot && !in_path("gnuplot"))
		die("--plot needs gnuplot, which is not installed (Debian: apt-get install gnuplot-nox); "
		    "nothing was run");
}

/* ---- the run --------------------------------------------------------------------------------- */

/* Which runtimes can run: each one asked for answers --info, or is said to be skipped. */
static void probe_runtimes(void)
{
	for (int r = 0; r < runtime_count; r++) {
		struct runtime *rt = &runtimes[r];
		if (!rt->wanted)
			continue;
		probe_runtime(rt);
		if (rt->available)
			continue;
		if (!rt->configured)
			fprintf(stderr, "tp-bench: %s skipped: not built (%s)\n", rt->name,
				rt->why_not);
		else
			fprintf(stderr, "tp-bench: %s skipped: %s does not run\n", rt->name,
				rt->path);
	}
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	static struct kernel_result krs[BENCH_KERNEL_COUNT];
	bool failed = false;
	int total = 0;

	parse_options(argc, argv);
	probe_runtimes();
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		if (opt.kernels[k]) {
			build_configs(k, &krs[k]);
			total += runs_planned(&krs[k]);
		}
	runs_begin(total);
	print_header();
	fflush(stdout);

	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		if (!opt.kernels[k])
			continue;
		measure_kernel(&krs[k]);
		failed |= kernel_failed(&krs[k]);
		print_table(&krs[k]);
		fflush(stdout);
		if (opt.json)
			failed |= !write_json(opt.json, krs, argc, argv, seconds_since(&t0), false);
	}
	double elapsed = seconds_since(&t0);
	printf("\n%d runs in %.1f s\n", runs_done(), elapsed);
	if (opt.json)
		failed |= !write_json(opt.json, krs, argc, argv, elapsed, true);
	if (opt.plot)
		failed |= !write_chart(opt.plot, krs);
	if (failed) {
		fprintf(stderr, "tp-bench: SOME RUNS FAILED (see FAILED above)\n");
		return 1;
	}
	return 0;
}
