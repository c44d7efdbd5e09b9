/*
 * driver.h - what the files of tp-bench (the driver) share; private to bench/.
 *
 *   driver.c   main, the options, the usage text
 *   catalog.c  the runtime table and the kernel table: every name, flag and per-kernel setting
 *              the driver knows, and the lookups and descriptions derived from them
 *   runs.c     the machine (CPUs, model), running the rt_<runtime> executables in interleaved
 *              rounds, the load other processes put on the machine meanwhile
 *   stats.c    medians, paired ratios
 *   tables.c   the printed header and tables
 *   json.c     --json
 *   chart.c    --plot (gnuplot)
 *
 * Method
 *   For each kernel, a round runs every (runtime, threads) configuration once, one process at a
 *   time; rounds alternate the order (A B C, then C B A) so that a slow drift of the machine falls
 *   evenly on all. Round 0 is a warm-up and is discarded (not for latency and idle, see the kernel
 *   table's `warmup`); `--repeat K` rounds are kept. A table row shows the median and the min-max
 *   of the kept runs, and the ratio to the baseline runtime (thread_pool): the median over rounds
 *   of (this run / the baseline's run at the same thread count in the same round). Every figure
 *   is lower-is-better, so a ratio above 1 means the baseline did better. The machine may change
 *   speed between processes: only these paired ratios are meant to be compared.
 *
 * The children check their answers; a wrong answer or a crash is reported loudly, the table shows
 * FAILED, and tp-bench exits with status 1 after printing everything else.
 */
#ifndef TP_BENCH_DRIVER_H
#define TP_BENCH_DRIVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "bench.h"

/* ---- the runtimes (catalog.c) ---------------------------------------------------------- */

struct runtime {
	/* The table */
	const char *name;    /* its executable is rt_<name> */
	const char *why_not; /* why it was not built */
	bool configured;     /* built by meson (bench_config.h) */
	bool threadless;     /* runs on one thread whatever --threads says: one row per kernel */
	bool baseline;	     /* the denominator of every ratio (exactly one runtime) */
	bool serial;	     /* plain calls: the numerator of the chart's speedups (exactly one) */
	/* Filled at run time */
	bool wanted;	  /* named by --runtime, or every runtime without it */
	bool available;	  /* its executable answered --info */
	unsigned kernels; /* BENCH_K() mask, from --info */
	char path[PATH_MAX + 64];
	char version[320], compiler[160], cflags[160], skip_reason[200];
};

extern struct runtime runtimes[];
extern const int runtime_count;

struct runtime *runtime_find(const char *name); /* NULL if unknown */
struct runtime *runtime_baseline(void);
struct runtime *runtime_serial(void);
bool runtime_selected(const struct runtime *rt); /* wanted and available */
/* The names, joined by `sep`: "thread_pool tp_spawn ...". */
void runtime_names(char *buf, size_t len, const char *sep);

/* ---- the kernels (catalog.c); their names are bench_kernel_name()'s (kernels.c) ---------- */

struct kernel_spec {
	void (*title)(const struct bench_size *s, char *buf, size_t len); /* the table's title */
	const char *note;      /* printed under its table */
	const char *json_unit; /* the "unit" of its JSON results */
	/* How a figure is printed: "%.<decimals>f <unit>"; unit NULL: seconds (ms below 10 s). */
	const char *unit;
	/* The serial runtime's row name in this kernel's table, NULL: the runtime's name. */
	const char *serial_row;
	/* The chart: the speedup over serial if `speedup` (and the serial row ran), or else the
	 * figure itself times chart_scale, in what chart_label says; log axes. */
	const char *chart_label;
	double chart_scale;
	int default_repeat; /* kept runs per row when --repeat is not given */
	int warmup;	    /* discarded warm-up rounds */
	int decimals;
	bool speedup;
};

extern const struct kernel_spec kernel_specs[BENCH_KERNEL_COUNT];

/* The kernel names, joined by `sep` and, before the last one, `last_sep`. */
void kernel_names(char *buf, size_t len, const char *sep, const char *last_sep);
/* The kernels whose setting vals[k] equals `value`, joined as kernel_names() joins them. */
void kernels_where(char *buf, size_t len, const int *vals, int value, const char *sep,
		   const char *last_sep);
/* The value most kernels have (the first such, on a tie). */
int kernels_common(const int *vals);
/*
 * A per-kernel setting in words: returns the common value and writes the others into buf,
 * grouped by value: each group its kernels joined by `sep`, then `before_value` and the value;
 * groups joined by `group_sep` ("" if every kernel has the common value).
 */
int kernels_describe(char *buf, size_t len, const int *vals, const char *sep,
		     const char *before_value, const char *group_sep);
/* kernels_describe() with `last_sep` before a group's last kernel, and each group written as
 * its kernels, `between`, the value or, value_first, as the value, `between`, its kernels. */
int kernels_describe_as(char *buf, size_t len, const int *vals, const char *sep,
			const char *last_sep, const char *between, bool value_first,
			const char *group_sep);
void kernel_repeats(int *vals); /* default_repeat, per kernel */
void kernel_warmups(int *vals); /* warmup, per kernel */

/* ---- options (driver.c) ----------------------------------------------------------------- */

struct options {
	bool kernels[BENCH_KERNEL_COUNT];
	int threads[64], nthreads;
	const struct bench_size *size;
	int repeat; /* 0: per kernel (kernel_specs[].default_repeat) */
	const char *json, *plot;
	double timeout_s;
	char bindir[PATH_MAX];
};

extern struct options opt;

/* ---- measurements (runs.c) ---------------------------------------------------------------- */

struct config {
	const struct runtime *rt;
	int threads;
	int n;	       /* kept rounds */
	double *value; /* per kept round; NAN if the run failed */
	double *p99, *parked, *samples;
	double *local_p50, *cross_p50; /* latency: the floors measured inside the same process */
	bool failed;
	char error[512]; /* first failure */
};

struct kernel_result {
	struct config *configs;
	double elapsed_s;
	double foreign_cpu_s; /* CPU time of other processes meanwhile (see struct load) */
	double steal_s;	      /* time the hypervisor gave our vCPUs to others */
	int kernel;
	int repeat; /* kept rounds */
	int warmup; /* discarded rounds before them */
	int nconfigs;
	bool ran;
};

int cpu_count(void);
void cpu_model(char *buf, size_t len);
bool in_path(const char *prog);

struct child_out {
	char out[8192], err[4096];
	size_t outlen, errlen;
	int status; /* from waitpid */
	bool timed_out;
};
/* Runs argv[0] with stdout and stderr captured, killing it after `timeout_s`; 0 or an errno. */
int run_child(char *const argv[], double timeout_s, struct child_out *co);

void probe_runtime(struct runtime *rt); /* reads rt_<name> --info */
void build_configs(int kernel, struct kernel_result *kr);
int runs_planned(const struct kernel_result *kr);
/* Before the first kernel: the progress line counts up to `total` runs. */
void runs_begin(int total);
/* Runs the kernel's rounds and records the load meanwhile, then clears the progress line. */
void measure_kernel(struct kernel_result *kr);
int runs_done(void);

/* ---- statistics (stats.c) ----------------------------------------------------------------- */

/* Median of the finite values of v[0..n); NAN if none. Also min and max if asked. */
double median(const double *v, int n, double *min, double *max);
/* The kernel's row of runtime rt at `threads` (any, if threads < 0), or NULL. */
const struct config *find_config(const struct kernel_result *kr, const struct runtime *rt,
				 int threads);
/* Median over rounds of c / base, paired by round. */
double paired_ratio(const struct config *c, const struct config *base);
/* latency: median over runs of p50 / a floor's p50 measured inside the same process. */
double ratio_vs_own_floor(const struct config *c, const double *floor);
/* paired_ratio() against the baseline runtime at the same thread count. */
double ratio_vs_baseline(const struct kernel_result *kr, const struct config *c);
/* Share of the machine's capacity (CPUs x wall time) that other work took: 0..1. */
double foreign_share(double foreign_cpu_s, double steal_s, double wall_s);
bool kernel_failed(const struct kernel_result *kr);

/* ---- output (tables.c, json.c, chart.c) ----------------------------------------------------- */

/* The row's name: the runtime's, or the kernel's name for the serial runtime ("floor"). */
const char *row_name(const struct kernel_result *kr, const struct config *c);
void print_header(void);
void print_table(const struct kernel_result *kr);
/* Each returns false (after saying why on stderr) if the file could not be written. */
bool write_json(const char *path, const struct kernel_result *krs, int argc, char **argv,
		double elapsed, bool complete);
bool write_chart(const char *path, const struct kernel_result *krs);

#endif /* TP_BENCH_DRIVER_H */
