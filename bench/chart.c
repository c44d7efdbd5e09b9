/*
 * chart.c - --plot FILE.svg: the chart, drawn by gnuplot, as FILE.svg and FILE.png.
 *
 * One panel per kernel that ran, figure against threads on a log2 axis, one line per runtime:
 *   fib, nqueens, uts, reduce: the speedup over serial C (serial's median / the runtime's median;
 *     higher is better), with the line y = 1 (serial) and the line y = threads (linear speedup);
 *   submit, latency, idle (serial runs nothing comparable there; no serial row at all in idle),
 *     and any kernel whose serial row is missing: the figure itself (time per task, p50, CPU ms
 *     per idle second, time per run), log scale, lower is better.
 * A point is the median of the kept runs; its bar spans their min-max (for a speedup: serial's
 * median over the runtime's max and min). A runtime that runs on one thread whatever --threads
 * says (serial, tp_calls) is a dashed horizontal line across the thread range. Failed rows are
 * left out. The chart's title says the machine (CPU model, CPU count), the commit the build was
 * made from (`git describe` at build time, bench_version.h) and the date of the run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_version.h"
#include "driver.h"

/* The layout, in pixels: two columns of panels under the title's two lines. In a panel, the plot
 * area has fixed margins (the same size in every panel, whatever its key), the key on its right. */
#define PANEL_W	 640
#define PANEL_H	 400
#define STAMP_H	 60
#define MARGIN_L 75  /* the y tics and label */
#define MARGIN_R 190 /* the key */
#define MARGIN_T 35  /* the panel's title */
#define MARGIN_B 50  /* the x tics and label */

/* Line colours and point types, by the runtime's place in the runtime table. */
static const char *const palette[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#000000",
				       "#d62728", "#9467bd", "#8c564b", "#e377c2",
				       "#7f7f7f", "#bcbd22", "#17becf", "#393b79" };
static const int point_types[] = { 7, 5, 9, 11, 13, 15, 4, 6, 8, 10, 12, 14 };
#define N_STYLES (int)(sizeof palette / sizeof palette[0])

struct series {
	const struct runtime *rt;
	const char *title;
};

struct panel {
	int kernel;
	bool speedup;
	int repeat;
	char data[PATH_MAX];
	struct series series[64];
	int nseries;
};

struct chart {
	char dir[64];
	char svg[PATH_MAX], png[PATH_MAX], script[PATH_MAX], panels_gp[PATH_MAX];
	struct panel panels[BENCH_KERNEL_COUNT];
	int npanels;
	int xmin, xmax;		       /* the thread range */
	int cols, rows, width, height; /* panels; pixels */
};

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* ---- file names ------------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && strcmp(s + n - t, tail) == 0;
}

/* FILE.svg or FILE.png: both are written; any other name is the SVG, and the PNG is name.png. */
static bool chart_names(struct chart *ch, const char *path)
{
	size_t n = strlen(path);
	int a, b;
	if (ends_with(path, ".svg") || ends_with(path, ".png")) {
		a = snprintf(ch->svg, sizeof ch->svg, "%.*s.svg", (int)(n - 4), path);
		b = snprintf(ch->png, sizeof ch->png, "%.*s.png", (int)(n - 4), path);
	} else {
		a = snprintf(ch->svg, sizeof ch->svg, "%s", path);
		b = snprintf(ch->png, sizeof ch->png, "%s.png", path);
	}
	return a < (int)sizeof ch->svg && b < (int)sizeof ch->png;
}

/* ---- the data: one file per kernel, one block (gnuplot `index`) per runtime ------------------ */

/* A point: x, then the median and its bar, in the panel's terms (false: nothing to draw). */
static bool point(const struct panel *p, const struct config *c, double serial_m, double *y,
		  double *lo, double *hi)
{
	double mn, mx, m = median(c->value, c->n, &mn, &mx);
	if (c->failed || !(m > 0))
		return false;
	if (p->speedup) {
		*y = serial_m / m;
		*lo = serial_m / mx;
		*hi = mn > 0 ? serial_m / mn : *y;
	} else {
		double scale = kernel_specs[p->kernel].chart_scale;
		*y = m * scale;
		*lo = mn > 0 ? mn * scale : *y; /* a log axis: no bar below 0 */
		*hi = mx * scale;
	}
	return isfinite(*y) && *y > 0;
}

/* Writes the runtime's block; false if it has no point. */
static bool write_series(FILE *f, const struct chart *ch, const struct panel *p,
			 const struct kernel_result *kr, const struct runtime *rt, double serial_m)
{
	int points = 0;
	for (int i = 0; i < kr->nconfigs; i++) {
		const struct config *c = &kr->configs[i];
		double y, lo, hi;
		if (c->rt != rt || !point(p, c, serial_m, &y, &lo, &hi))
			continue;
		if (points == 0)
			fprintf(f, "# %s\n", rt->name);
		if (rt->threadless) { /* one run on one thread: a level across the range */
			fprintf(f, "%d %.6g %.6g %.6g\n", ch->xmin, y, lo, hi);
			fprintf(f, "%d %.6g %.6g %.6g\n", ch->xmax, y, y, y);
		} else {
			fprintf(f, "%d %.6g %.6g %.6g\n", c->threads, y, lo, hi);
		}
		points++;
	}
	if (points)
		fprintf(f, "\n\n");
	return points > 0;
}

/* The kernel's panel and data file; false if it has nothing to draw. */
static bool build_panel(struct chart *ch, struct panel *p, const struct kernel_result *kr)
{
	const struct config *serial = find_config(kr, runtime_serial(), -1);
	double serial_m =
		serial && !serial->failed ? median(serial->value, serial->n, NULL, NULL) : NAN;
	p->kernel = kr->kernel;
	p->repeat = kr->repeat;
	p->speedup = kernel_specs[kr->kernel].speedup && serial_m > 0;
	p->nseries = 0;
	char data[PATH_MAX]; /* not straight into p->data: ch->dir is in the same object */
	snprintf(data, sizeof data, "%s/%s.dat", ch->dir,
		 bench_kernel_name((enum bench_kernel)kr->kernel));
	memcpy(p->data, data, sizeof p->data);
	FILE *f = fopen(p->data, "w");
	if (!f)
		return false;
	for (int r = 0; r < runtime_count; r++) {
		const struct runtime *rt = &runtimes[r];
		const struct config *c = find_config(kr, rt, -1);
		if (!c || (p->speedup && rt->serial)) /* serial: the line y = 1 */
			continue;
		if (write_series(f, ch, p, kr, rt, serial_m)) {
			p->series[p->nseries].rt = rt;
			p->series[p->nseries].title = row_name(kr, c);
			p->nseries++;
		}
	}
	fclose(f);
	if (p->nseries == 0)
		remove(p->data);
	return p->nseries > 0;
}

/* ---- the gnuplot script ---------------------------------------------------------------------- */

/* A gnuplot single-quoted string: no escapes but '' for a quote. */
static void gp_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

/* A gnuplot double-quoted string (\n is a new line). */
static void gp_dquoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* The title: what is drawn, then the machine, the commit and the date. */
static void chart_stamp(char *buf, size_t len)
{
	char model[256], date[64];
	time_t now = time(NULL);
	struct tm tm;
	cpu_model(model, sizeof model);
	gmtime_r(&now, &tm);
	strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &tm);
	const char *commit = BENCH_GIT_DESCRIBE;
	snprintf(buf, len,
		 "tp-bench, size %s: points = median of the kept runs, bars = their min-max\n"
		 "%s, %d CPUs; commit %s; %s",
		 opt.size->name, model, cpu_count(), commit[0] ? commit : "unknown", date);
}

/* The x axis: log2, a tic at each thread count (at each power of two if there are many). */
static void gp_xaxis(FILE *f, const struct chart *ch)
{
	int t[64], n = 0;
	for (int i = 0; i < opt.nthreads; i++)
		t[n++] = opt.threads[i];
	qsort(t, (size_t)n, sizeof t[0], cmp_int);
	fprintf(f, "set logscale x 2\nset xrange [%g:%g]\nset xtics (", ch->xmin / 1.25,
		ch->xmax * 1.25);
	bool sparse = n > 12, first = true;
	for (int i = 0; i < n; i++) {
		bool power = (t[i] & (t[i] - 1)) == 0;
		if (sparse && !power && i != 0 && i != n - 1)
			continue;
		fprintf(f, "%s%d", first ? "" : ", ", t[i]);
		first = false;
	}
	fprintf(f, ")\nunset mxtics\nset xlabel 'threads'\n");
}

static void gp_panel_title(FILE *f, const struct panel *p)
{
	const struct kernel_spec *ks = &kernel_specs[p->kernel];
	const char *name = bench_kernel_name((enum bench_kernel)p->kernel);
	char title[256];
	if (p->speedup)
		snprintf(title, sizeof title,
			 "%s: speedup over serial, higher is better (%d runs per point)", name,
			 p->repeat);
	else
		snprintf(title, sizeof title, "%s: %s, lower is better (%d runs per point)", name,
			 ks->chart_label, p->repeat);
	fprintf(f, "set title ");
	gp_quoted(f, title);
	fprintf(f, "\nset ylabel ");
	gp_quoted(f, p->speedup ? "speedup over serial" : ks->chart_label);
	fputc('\n', f);
}

static void gp_series(FILE *f, const struct panel *p, int i)
{
	const struct series *s = &p->series[i];
	int style = (int)(s->rt - runtimes) % N_STYLES;
	char title[96];
	if (s->rt->threadless)
		snprintf(title, sizeof title, "%s (1 thread)", s->title);
	else
		snprintf(title, sizeof title, "%s", s->title);
	fprintf(f, "%s", i ? ", \\\n     '' " : "plot ");
	if (i == 0)
		gp_quoted(f, p->data);
	fprintf(f,
		" index %d using 1:2:3:4 with yerrorlines lw 1.5 ps 0.8 pt %d lc rgb '%s'%s title ",
		i, point_types[style], palette[style], s->rt->threadless ? " dt 2" : "");
	gp_quoted(f, title);
}

/* The panel's plot area and key, at fixed places on the screen (0..1 from the bottom left). */
static void gp_place(FILE *f, const struct chart *ch, int i)
{
	int x0 = (i % ch->cols) * PANEL_W, y0 = STAMP_H + (i / ch->cols) * PANEL_H; /* from top */
	double w = ch->width, h = ch->height;
	fprintf(f,
		"set lmargin at screen %.4f\nset rmargin at screen %.4f\n"
		"set tmargin at screen %.4f\nset bmargin at screen %.4f\n"
		"set key at screen %.4f, screen %.4f left top\n",
		(x0 + MARGIN_L) / w, (x0 + PANEL_W - MARGIN_R) / w, 1 - (y0 + MARGIN_T) / h,
		1 - (y0 + PANEL_H - MARGIN_B) / h, (x0 + PANEL_W - MARGIN_R + 15) / w,
		1 - (y0 + MARGIN_T) / h);
}

static void gp_panel(FILE *f, const struct chart *ch, int n)
{
	const struct panel *p = &ch->panels[n];
	gp_place(f, ch, n);
	gp_panel_title(f, p);
	for (int i = 0; i < p->nseries; i++)
		gp_series(f, p, i);
	if (p->speedup)
		fprintf(f,
			", \\\n     1 with lines lw 1 dt 2 lc rgb '#000000' title 'serial = 1'"
			", \\\n     x with lines lw 1 dt 3 lc rgb '#808080' title 'speedup = threads'");
	fprintf(f, "\n");
}

/* panels.gp: the multiplot, drawn once per terminal. */
static bool write_panels(struct chart *ch)
{
	FILE *f = fopen(ch->panels_gp, "w");
	if (!f)
		return false;
	char stamp[600];
	chart_stamp(stamp, sizeof stamp);
	fprintf(f, "set multiplot title ");
	gp_dquoted(f, stamp);
	fprintf(f, " font ',11'\n");
	fprintf(f, "set datafile missing 'NaN'\nset grid xtics ytics mytics lc rgb '#d0d0d0'\n"
		   "set key vertical Left reverse samplen 2 spacing 1.1 font ',9'\n"
		   "set bars small\nset logscale y 10\nset format y '%%g'\nset mytics 10\n"
		   "set autoscale y\n");
	gp_xaxis(f, ch);
	for (int i = 0; i < ch->npanels; i++)
		gp_panel(f, ch, i);
	fprintf(f, "unset multiplot\n");
	return fclose(f) == 0;
}

/* plot.gp: the SVG, then the PNG (pngcairo, or gnuplot's own png terminal). */
static bool write_script(const struct chart *ch)
{
	FILE *f = fopen(ch->script, "w");
	if (!f)
		return false;
	int w = ch->width, h = ch->height;
	fprintf(f,
		"set terminal svg size %d,%d dynamic noenhanced background rgb 'white' font 'sans,10'\n"
		"set output ",
		w, h);
	gp_quoted(f, ch->svg);
	fprintf(f, "\nload ");
	gp_quoted(f, ch->panels_gp);
	fprintf(f,
		"\nunset output\n"
		"terms = ' ' . GPVAL_TERMINALS . ' '\n"
		"png = strstrt(terms, ' pngcairo ') > 0 ? 'pngcairo' : "
		"(strstrt(terms, ' png ') > 0 ? 'png' : '')\n"
		"if (png ne '') {\n"
		"  set terminal @png size %d,%d noenhanced background rgb 'white' font 'sans,10'\n"
		"  set output ",
		w, h);
	gp_quoted(f, ch->png);
	fprintf(f, "\n  load ");
	gp_quoted(f, ch->panels_gp);
	fprintf(f, "\n  unset output\n}\n");
	return fclose(f) == 0;
}

/* ---- drawing ---------------------------------------------------------------------------------- */

static bool non_empty(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && st.st_size > 0;
}

static void remove_temporaries(const struct chart *ch)
{
	for (int i = 0; i < ch->npanels; i++)
		remove(ch->panels[i].data);
	remove(ch->panels_gp);
	remove(ch->script);
	rmdir(ch->dir);
}

/* Runs gnuplot on the script; false (the script kept, and said where) if it failed. */
static bool run_gnuplot(const struct chart *ch)
{
	char *argv[] = { "/usr/bin/env", "gnuplot", (char *)ch->script, NULL };
	struct child_out co;
	remove(ch->svg);
	remove(ch->png);
	int rc = run_child(argv, 60, &co);
	if (rc != 0 || !WIFEXITED(co.status) || WEXITSTATUS(co.status) != 0 ||
	    !non_empty(ch->svg)) {
		fprintf(stderr, "tp-bench: gnuplot failed (script kept in %s): %s\n", ch->dir,
			co.err);
		return false;
	}
	fprintf(stderr, "tp-bench: wrote %s\n", ch->svg);
	if (non_empty(ch->png))
		fprintf(stderr, "tp-bench: wrote %s\n", ch->png);
	else
		fprintf(stderr, "tp-bench: --plot: this gnuplot has no PNG terminal: no %s\n",
			ch->png);
	return true;
}

/* The kernels' panels, in the order of the tables; says which kernels have nothing to draw. */
static void build_panels(struct chart *ch, const struct kernel_result *krs)
{
	ch->xmin = ch->xmax = opt.threads[0];
	for (int i = 1; i < opt.nthreads; i++) {
		if (opt.threads[i] < ch->xmin)
			ch->xmin = opt.threads[i];
		if (opt.threads[i] > ch->xmax)
			ch->xmax = opt.threads[i];
	}
	ch->npanels = 0;
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		if (!krs[k].ran)
			continue;
		if (build_panel(ch, &ch->panels[ch->npanels], &krs[k]))
			ch->npanels++;
		else
			fprintf(stderr, "tp-bench: --plot: %s has no figure to draw, left out\n",
				bench_kernel_name((enum bench_kernel)k));
	}
}

bool write_chart(const char *path, const struct kernel_result *krs)
{
	static struct chart ch; /* large: not on the stack */
	memset(&ch, 0, sizeof ch);
	if (!chart_names(&ch, path)) {
		fprintf(stderr, "tp-bench: --plot: path too long: %s\n", path);
		return false;
	}
	snprintf(ch.dir, sizeof ch.dir, "/tmp/tp-bench-plot-XXXXXX");
	if (!mkdtemp(ch.dir)) {
		fprintf(stderr, "tp-bench: --plot: mkdtemp: %s\n", strerror(errno));
		return false;
	}
	snprintf(ch.script, sizeof ch.script, "%s/plot.gp", ch.dir);
	snprintf(ch.panels_gp, sizeof ch.panels_gp, "%s/panels.gp", ch.dir);
	build_panels(&ch, krs);
	if (ch.npanels == 0) {
		fprintf(stderr, "tp-bench: --plot: nothing to draw, no chart written\n");
		remove_temporaries(&ch);
		return true;
	}
	ch.cols = ch.npanels > 1 ? 2 : 1;
	ch.rows = (ch.npanels + ch.cols - 1) / ch.cols;
	ch.width = ch.cols * PANEL_W;
	ch.height = ch.rows * PANEL_H + STAMP_H;
	if (!write_panels(&ch) || !write_script(&ch)) {
		fprintf(stderr, "tp-bench: --plot: cannot write the gnuplot script in %s\n",
			ch.dir);
		return false;
	}
	if (!run_gnuplot(&ch))
		return false;
	remove_temporaries(&ch);
	return true;
}
