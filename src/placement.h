/*
 * placement.h - which CPU each worker is pinned to (tp_pool_options.placement): a pure plan.
 *
 * Overview
 *   tp__placement_plan() turns a tp_placement, the CPUs the process may run on and the CPU
 *   topology into one CPU per worker; the pool pins worker i to out[i] itself. The function
 *   touches no thread, no affinity and no global state: it reads a few small sysfs files and
 *   sorts. The sysfs directory is a parameter, which is the test seam: the unit test writes fake
 *   topologies into a temporary directory.
 *
 * Topology (read for each allowed CPU c, under SYSFS/cpuC/topology/)
 *   package  physical_package_id: a decimal integer (-1 occurs on some platforms).
 *   core     the lowest CPU number of thread_siblings_list ("0,4", "0-1", "0-3,8-11"): the
 *            kernel's own grouping of hardware threads into a core. core_id is not read: it is
 *            unique only within a die on multi-die packages, so two cores of one package can
 *            share it; the lowest sibling is unique in the whole machine, and follows the kernel's
 *            enumeration order. It counts every sibling, allowed or not.
 *   If any allowed CPU's files are missing, unreadable or malformed (not exactly that syntax,
 *   optionally ending in one newline; a sibling list that does not contain c), the whole plan
 *   uses the flat topology instead: each allowed CPU its own core, all in package 0. All or
 *   nothing, so a half-read tree never mixes two numbering schemes. sysfs is never an error.
 *
 * The orders (of the allowed CPUs; worker i gets order[i % count])
 *   COMPACT  ascending (package, core, cpu): the hardware threads of a core are adjacent, then
 *            the cores of a package, then the packages.
 *   SCATTER  ascending (thread, core rank, package, cpu), where thread is the CPU's rank among
 *            the allowed CPUs of its core and core rank the core's rank among the cores of its
 *            package that have an allowed CPU (both in COMPACT order). So packages take turns,
 *            one core each, and no core gets a second worker before every core has one.
 *            2 packages x 2 cores x 2 threads: P0C0T0 P1C0T0 P0C1T0 P1C1T0 P0C0T1 P1C0T1 P0C1T1
 *            P1C1T1. Under the flat topology both orders are ascending CPU numbers.
 *   LIST     out[i] = cpus[i % ncpus]; every listed CPU is checked, also those no worker gets.
 *
 * Invariants
 *   On success every out[i] is a CPU in `allowed`, and for COMPACT and SCATTER the first
 *   min(n, CPU_COUNT(allowed)) entries are distinct. On error out[] is untouched.
 *   Memory: one allocation of CPU_COUNT(allowed) <= CPU_SETSIZE records, freed before return;
 *   file contents go through fixed buffers on the stack.
 *
 * Thread-safe: no global or static state; any number of calls may run at the same time.
 */
#ifndef TP_PLACEMENT_H
#define TP_PLACEMENT_H

#include <sched.h>
#include <stddef.h>

#include "thread_pool.h"

/* Where the kernel shows the CPU topology; tests pass a fake tree instead. */
#define TP__SYSFS_CPU "/sys/devices/system/cpu"

/*
 * Plans where n workers run: out[i] is the CPU of worker i. `allowed` is the set of CPUs the
 * process may run on (sched_getaffinity); `sysfs` the directory holding cpuN/topology/
 * (TP__SYSFS_CPU in production, a fake tree in tests; NULL: the flat topology). cpus and ncpus
 * are read for LIST only, sysfs for COMPACT and SCATTER only. n == 0 plans nothing (out may then
 * be NULL) but still checks the arguments. Returns 0, EINVAL (how unknown or NONE; allowed NULL;
 * out NULL with n > 0; LIST with cpus NULL or ncpus 0; a listed CPU negative, >= CPU_SETSIZE or
 * not in allowed; COMPACT or SCATTER with allowed empty), ENOMEM.
 * Never blocks, apart from reading sysfs files.
 */
int tp__placement_plan(tp_placement how, const int *cpus, size_t ncpus, const cpu_set_t *allowed,
		       const char *sysfs, size_t n, int *out);

#endif /* TP_PLACEMENT_H */
