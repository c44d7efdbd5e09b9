/*
 * placement.c - the placement plan; see placement.h for the orders and the topology it reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "placement.h"

/* One allowed CPU. package and core come from sysfs (or the flat topology); thread and
 * core_rank are computed for SCATTER from the COMPACT order. */
struct slot {
	int cpu;
	int package;   /* physical_package_id; 0 in the flat topology */
	int core;      /* the lowest CPU of its thread_siblings_list; the CPU itself when flat */
	int thread;    /* rank of cpu among the allowed CPUs of its core */
	int core_rank; /* rank of its core among the cores of its package with an allowed CPU */
};

/*
 * One more than the longest topology file accepted (newline included). The kernel writes a
 * package id in at most 12 bytes and a core's sibling list in a few dozen; anything longer is
 * malformed.
 */
#define FILE_MAX 256

/*
 * Reads SYSFS/cpuCPU/topology/NAME into buf as a string (at most FILE_MAX - 1 bytes). False if
 * the path does not fit, the file cannot be read, or it is longer than that.
 */
static bool read_topology(const char *sysfs, int cpu, const char *name, char buf[FILE_MAX])
{
	char path[PATH_MAX];
	size_t len = 0;
	int n = snprintf(path, sizeof(path), "%s/cpu%d/topology/%s", sysfs, cpu, name);
	int fd;
	bool ok = true;

	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	/* Up to FILE_MAX bytes, one more than the longest accepted file: if they all come, the file
	 * is too long (and there is no room for the terminating NUL). */
	while (len < FILE_MAX) {
		ssize_t r = read(fd, buf + len, FILE_MAX - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ok = r == 0;
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	if (!ok || len == FILE_MAX)
		return false;
	buf[len] = '\0';
	return true;
}

/* Parses decimal digits at *p (at least one) into *v <= max; advances *p past them. */
static bool parse_digits(const char **p, long max, long *v)
{
	const char *s = *p;
	long x = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (x > (max - (*s - '0')) / 10)
			return false;
		x = x * 10 + (*s - '0');
	}
	*p = s;
	*v = x;
	return true;
}

/* True if s is all consumed but for one optional newline. */
static bool at_end(const char *s)
{
	return s[0] == '\0' || (s[0] == '\n' && s[1] == '\0');
}

/* physical_package_id: an int, possibly negative (down to -INT_MAX: no overflow to handle). */
static bool parse_package(const char *s, int *package)
{
	bool negative = *s == '-';
	long v;

	if (negative)
		s++;
	if (!parse_digits(&s, INT_MAX, &v) || !at_end(s))
		return false;
	*package = (int)(negative ? -v : v);
	return true;
}

/*
 * thread_siblings_list of `cpu`: "A[-B](,A[-B])*" with A <= B. Sets *lowest to its smallest CPU.
 * False if malformed or if `cpu` is not in it (the list then describes some other CPU).
 */
static bool parse_siblings(const char *s, int cpu, int *lowest)
{
	long min = INT_MAX;
	bool has_cpu = false;

	for (;;) {
		long a, b;

		if (!parse_digits(&s, INT_MAX, &a))
			return false;
		b = a;
		if (*s == '-') {
			s++;
			if (!parse_digits(&s, INT_MAX, &b) || b < a)
				return false;
		}
		if (a < min)
			min = a;
		if (a <= cpu && cpu <= b)
			has_cpu = true;
		if (*s != ',')
			break;
		s++;
	}
	if (!at_end(s) || !has_cpu)
		return false;
	*lowest = (int)min;
	return true;
}

/* Reads the package and core of every slot; false (slots partly written) if any is unusable. */
static bool read_all(const char *sysfs, struct slot *slots, size_t count)
{
	char buf[FILE_MAX];

	if (sysfs == NULL)
		return false;
	for (size_t i = 0; i < count; i++) {
		struct slot *s = &slots[i];

		if (!read_topology(sysfs, s->cpu, "physical_package_id", buf) ||
		    !parse_package(buf, &s->package))
			return false;
		if (!read_topology(sysfs, s->cpu, "thread_siblings_list", buf) ||
		    !parse_siblings(buf, s->cpu, &s->core))
			return false;
	}
	return true;
}

static int cmp_int(int a, int b)
{
	return (a > b) - (a < b);
}

/* COMPACT: (package, core, cpu). */
static int cmp_compact(const void *pa, const void *pb)
{
	const struct slot *a = pa, *b = pb;
	int c = cmp_int(a->package, b->package);

	if (c == 0)
		c = cmp_int(a->core, b->core);
	return c != 0 ? c : cmp_int(a->cpu, b->cpu);
}

/* SCATTER: (thread, core_rank, package, cpu). */
static int cmp_scatter(const void *pa, const void *pb)
{
	const struct slot *a = pa, *b = pb;
	int c = cmp_int(a->thread, b->thread);

	if (c == 0)
		c = cmp_int(a->core_rank, b->core_rank);
	if (c == 0)
		c = cmp_int(a->package, b->package);
	return c != 0 ? c : cmp_int(a->cpu, b->cpu);
}

/* Sets thread and core_rank; slots must be in COMPACT order, where a core's CPUs are adjacent
 * and a package's cores too. */
static void rank(struct slot *slots, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		struct slot *s = &slots[i];
		const struct slot *prev = i > 0 ? &slots[i - 1] : NULL;

		if (prev == NULL || prev->package != s->package) {
			s->core_rank = 0;
			s->thread = 0;
		} else if (prev->core != s->core) {
			s->core_rank = prev->core_rank + 1;
			s->thread = 0;
		} else {
			s->core_rank = prev->core_rank;
			s->thread = prev->thread + 1;
		}
	}
}

static int plan_list(const int *cpus, size_t ncpus, const cpu_set_t *allowed, size_t n, int *out)
{
	if (cpus == NULL || ncpus == 0)
		return EINVAL;
	/* Every listed CPU, also those beyond n: the list is the caller's claim, checked whole. */
	for (size_t j = 0; j < ncpus; j++) {
		if (cpus[j] < 0 || cpus[j] >= CPU_SETSIZE || !CPU_ISSET(cpus[j], allowed))
			return EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = cpus[i % ncpus];
	return 0;
}

static int plan_topology(tp_placement how, const cpu_set_t *allowed, const char *sysfs, size_t n,
			 int *out)
{
	int ncount = CPU_COUNT(allowed);
	size_t count, k = 0;
	struct slot *slots;

	if (ncount <= 0)
		return EINVAL;
	count = (size_t)ncount; /* <= CPU_SETSIZE: the allocation is bounded */
	slots = calloc(count, sizeof(*slots));
	if (slots == NULL)
		return ENOMEM;
	for (int cpu = 0; cpu < CPU_SETSIZE && k < count; cpu++) {
		if (CPU_ISSET(cpu, allowed))
			slots[k++].cpu = cpu;
	}
	if (!read_all(sysfs, slots, count)) {
		/* The flat topology: each CPU its own core in package 0. */
		for (size_t i = 0; i < count; i++) {
			slots[i].package = 0;
			slots[i].core = slots[i].cpu;
		}
	}
	qsort(slots, count, sizeof(*slots), cmp_compact);
	if (how == TP_PLACE_SCATTER) {
		rank(slots, count);
		qsort(slots, count, sizeof(*slots), cmp_scatter);
	}
	for (size_t i = 0; i < n; i++)
		out[i] = slots[i % count].cpu;
	free(slots);
	return 0;
}

int tp__placement_plan(tp_placement how, const int *cpus, size_t ncpus, const cpu_set_t *allowed,
		       const char *sysfs, size_t n, int *out)
{
	if (allowed == NULL || (out == NULL && n > 0))
		return EINVAL;
	switch (how) {
	case TP_PLACE_COMPACT:
	case TP_PLACE_SCATTER:
		return plan_topology(how, allowed, sysfs, n, out);
	case TP_PLACE_LIST:
		return plan_list(cpus, ncpus, allowed, n, out);
	case TP_PLACE_NONE:
	default:
		return EINVAL;
	}
}
