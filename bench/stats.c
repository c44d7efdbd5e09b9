/*
 * stats.c - medians and paired ratios over the kept runs (see driver.h, Method).
 */
#include <math.h>
#include <stdlib.h>

#include "driver.h"

double median(const double *v, int n, double *min, double *max)
{
	double *s = malloc(sizeof(double) * (size_t)(n ? n : 1));
	int m = 0;
	if (!s)
		return NAN;
	for (int i = 0; i < n; i++)
		if (isfinite(v[i]))
			s[m++] = v[i];
	double med = NAN;
	if (min)
		*min = NAN;
	if (max)
		*max = NAN;
	if (m > 0) {
		qsort(s, (size_t)m, sizeof *s, bench_cmp_double);
		med = m % 2 ? s[m / 2] : (s[m / 2 - 1] + s[m / 2]) / 2;
		if (min)
			*min = s[0];
		if (max)
			*max = s[m - 1];
	}
	free(s);
	return med;
}

const struct config *find_config(const struct kernel_result *kr, const struct runtime *rt,
				 int threads)
{
	for (int i = 0; i < kr->nconfigs; i++)
		if (kr->configs[i].rt == rt && (threads < 0 || kr->configs[i].threads == threads))
			return &kr->configs[i];
	return NULL;
}

double paired_ratio(const struct config *c, const struct config *base)
{
	if (!c || !base)
		return NAN;
	double r[256];
	int n = c->n < 256 ? c->n : 256;
	for (int i = 0; i < n; i++)
		r[i] = base->value[i] > 0 ? c->value[i] / base->value[i] : NAN;
	return median(r, n, NULL, NULL);
}

double ratio_vs_own_floor(const struct config *c, const double *floor)
{
	double r[256];
	int n = c->n < 256 ? c->n : 256;
	for (int i = 0; i < n; i++)
		r[i] = floor[i] > 0 ? c->value[i] / floor[i] : NAN;
	return median(r, n, NULL, NULL);
}

double ratio_vs_baseline(const struct kernel_result *kr, const struct config *c)
{
	return paired_ratio(c, find_config(kr, runtime_baseline(), c->threads));
}

double foreign_share(double foreign_cpu_s, double steal_s, double wall_s)
{
	double cap = wall_s * cpu_count();
	double x = cap > 0 ? (foreign_cpu_s + steal_s) / cap : 0;
	return x < 0 ? 0 : x;
}

bool kernel_failed(const struct kernel_result *kr)
{
	for (int i = 0; i < kr->nconfigs; i++)
		if (kr->configs[i].failed)
			return true;
	return false;
}
