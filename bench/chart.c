/*
 * chart.c - --plot FILE.svg: speedup and ratio charts, drawn by gnuplot.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driver.h"

bool write_chart(const char *svg, const struct kernel_result *krs)
{
	char dir[] = "/tmp/tp-bench-plot-XXXXXX";
	if (!mkdtemp(dir)) {
		fprintf(stderr, "tp-bench: --plot: mkdtemp: %s\n", strerror(errno));
		return false;
	}
	char speed_path[PATH_MAX], ratio_path[PATH_MAX], gp_path[PATH_MAX];
	snprintf(speed_path, sizeof speed_path, "%s/speedup.dat", dir);
	snprintf(ratio_path, sizeof ratio_path, "%s/ratio.dat", dir);
	snprintf(gp_path, sizeof gp_path, "%s/plot.gp", dir);
	int max_t = opt.threads[0];
	for (int i = 1; i < opt.nthreads; i++)
		if (opt.threads[i] > max_t)
			max_t = opt.threads[i];

	/* speedup.dat: one row per (kernel, threads), one column per runtime: serial / runtime. */
	FILE *sp = fopen(speed_path, "w"), *ra = fopen(ratio_path, "w");
	if (!sp || !ra) {
		fprintf(stderr, "tp-bench: --plot: cannot write data files\n");
		if (sp)
			fclose(sp);
		if (ra)
			fclose(ra);
		return false;
	}
	const struct runtime *cols[64];
	int ncols = 0;
	for (int r = 0; r < runtime_count; r++)
		if (!runtimes[r].serial && runtime_selected(&runtimes[r]))
			cols[ncols++] = &runtimes[r];
	fprintf(sp, "label");
	fprintf(ra, "label");
	for (int c = 0; c < ncols; c++) {
		fprintf(sp, " %s", cols[c]->name);
		fprintf(ra, " %s", cols[c]->name);
	}
	fprintf(sp, "\n");
	fprintf(ra, "\n");
	int speed_rows = 0, ratio_rows = 0;
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		const struct kernel_result *kr = &krs[k];
		if (!kr->ran)
			continue;
		const struct config *ser = find_config(kr, runtime_serial(), -1);
		double ser_m = ser ? median(ser->value, ser->n, NULL, NULL) : NAN;
		if (kernel_specs[k].speedup && isfinite(ser_m))
			for (int t = 0; t < opt.nthreads; t++) {
				fprintf(sp, "\"%s/%d\"", bench_kernel_name((enum bench_kernel)k),
					opt.threads[t]);
				for (int c = 0; c < ncols; c++) {
					const struct config *cf =
						find_config(kr, cols[c], opt.threads[t]);
					double m = cf ? median(cf->value, cf->n, NULL, NULL) : NAN;
					fprintf(sp, " ");
					if (isfinite(m) && m > 0)
						fprintf(sp, "%.4g", ser_m / m);
					else
						fprintf(sp, "NaN");
				}
				fprintf(sp, "\n");
				speed_rows++;
			}
		fprintf(ra, "\"%s\"", bench_kernel_name((enum bench_kernel)k));
		for (int c = 0; c < ncols; c++) {
			const struct config *cf = find_config(kr, cols[c], max_t);
			double r = cf ? ratio_vs_baseline(kr, cf) : NAN;
			fprintf(ra, " ");
			if (isfinite(r))
				fprintf(ra, "%.4g", r);
			else
				fprintf(ra, "NaN");
		}
		fprintf(ra, "\n");
		ratio_rows++;
	}
	fclose(sp);
	fclose(ra);

	FILE *gp = fopen(gp_path, "w");
	if (!gp)
		return false;
	int panels = (speed_rows > 0) + (ratio_rows > 0);
	fprintf(gp,
		"set terminal svg size 1100,%d dynamic noenhanced background rgb 'white' font 'sans,11'\n",
		panels > 1 ? 900 : 460);
	fprintf(gp, "set output '%s'\n", svg);
	fprintf(gp, "set datafile missing 'NaN'\nset style data histograms\n"
		    "set style histogram clustered gap 1\nset style fill solid 0.85 border -1\n"
		    "set key outside right top\nset grid ytics\nset boxwidth 0.9\n"
		    "set xtics nomirror scale 0\n");
	if (panels > 1)
		fprintf(gp, "set multiplot layout 2,1\n");
	if (speed_rows > 0) {
		fprintf(gp,
			"set title 'Speedup over serial C (serial time / runtime time, median; higher is better), size %s'\n",
			opt.size->name);
		fprintf(gp, "set ylabel 'speedup'\nset yrange [0:*]\n");
		fprintf(gp, "plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)\n",
			ncols + 1, speed_path);
	}
	if (ratio_rows > 0) {
		fprintf(gp,
			"set title 'Ratio to thread_pool at %d threads (runtime / thread_pool, paired by round; above 1: thread_pool better)'\n",
			max_t);
		fprintf(gp, "set ylabel 'ratio (log scale)'\nset logscale y\nset yrange [*:*]\n");
		fprintf(gp,
			"plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i), 1 with lines lc rgb 'black' notitle\n",
			ncols + 1, ratio_path);
	}
	if (panels > 1)
		fprintf(gp, "unset multiplot\n");
	fclose(gp);
	char *argv[] = { "/usr/bin/env", "gnuplot", gp_path, NULL };
	struct child_out co;
	int rc = run_child(argv, 60, &co);
	if (rc != 0 || !WIFEXITED(co.status) || WEXITSTATUS(co.status) != 0) {
		fprintf(stderr, "tp-bench: gnuplot failed (script kept in %s): %s\n", dir, co.err);
		return false;
	}
	remove(speed_path);
	remove(ratio_path);
	remove(gp_path);
	rmdir(dir);
	fprintf(stderr, "tp-bench: wrote %s\n", svg);
	return true;
}
