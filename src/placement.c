/* TEMPORARY stand-in until the placement branch is merged: not to be committed. */
#include <errno.h>
#include "placement.h"
int tp__placement_plan(tp_placement how, const int *cpus, size_t ncpus, const cpu_set_t *allowed,
		       const char *sysfs, size_t n, int *out)
{
	size_t k = 0;
	(void)sysfs;
	if (how == TP_PLACE_LIST) {
		for (size_t i = 0; i < ncpus; i++)
			if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE || !CPU_ISSET(cpus[i], allowed))
				return EINVAL;
		for (size_t i = 0; i < n; i++)
			out[i] = cpus[i % ncpus];
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		while (!CPU_ISSET(k % CPU_SETSIZE, allowed))
			k++;
		out[i] = (int)(k++ % CPU_SETSIZE);
	}
	return 0;
}
