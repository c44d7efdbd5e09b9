/* TEMPORARY stand-in until the placement branch is merged: not to be committed. */
#ifndef TP_PLACEMENT_H
#define TP_PLACEMENT_H
#include <sched.h>
#include <stddef.h>
#include "thread_pool.h"
int tp__placement_plan(tp_placement how, const int *cpus, size_t ncpus, const cpu_set_t *allowed,
		       const char *sysfs, size_t n, int *out);
#endif
