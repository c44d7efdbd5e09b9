/*
 * test-placement.c - the placement plan (placement.h), white-box: fake sysfs topologies written
 * into a mkdtemp() directory, exact COMPACT and SCATTER orders, the fallback to the flat topology
 * when files are missing or malformed, LIST validation, and once the real /sys of this machine.
 *
 * Every tree has cpu0..cpu7 unless said otherwise:
 *   linux    1 package x 4 cores x 2 threads, siblings numbered as Linux does on x86: cpuN and
 *            cpuN+4 share a core ("0,4").
 *   adjacent 2 packages x 2 cores x 2 threads, siblings adjacent ("0-1"): package 0 is cpu0-3,
 *            package 1 cpu4-7.
 *   sockets  2 packages x 2 cores x 2 threads, Linux's two-socket numbering: cpu0,1 are the
 *            cores of package 0, cpu2,3 those of package 1, cpuN+4 the sibling of cpuN.
 *   sparse   the linux tree without cpu5's thread_siblings_list and cpu6's physical_package_id.
 *   empty    no cpuN directory at all.
 * The malformed-file cases rewrite one file of a copy of the adjacent tree ("scratch").
 */
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <fcntl.h>

#include "../common.h"
#include "placement.h"

#define NCPU	 8
#define SENTINEL (-7)

/* Paths are short (under /tmp), so that a file's path below a tree always fits PATH_MAX. */
#define TREE_PATH 128

struct trees {
	char root[64]; /* the mkdtemp() directory holding every tree */
	char linux_[TREE_PATH];
	char adjacent[TREE_PATH];
	char sockets[TREE_PATH];
	char sparse[TREE_PATH];
	char empty[TREE_PATH];
	char scratch[TREE_PATH];
	char missing[TREE_PATH]; /* never created */
};

/* Writes `text` to DIR/cpuCPU/topology/NAME, creating the directories. */
static void write_topology_file(const char *dir, int cpu, const char *name, const char *text)
{
	char path[PATH_MAX];
	int fd;
	size_t len = strlen(text);

	snprintf(path, sizeof(path), "%s/cpu%d", dir, cpu);
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/cpu%d/topology", dir, cpu);
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/cpu%d/topology/%s", dir, cpu, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Writes one CPU's three files as the kernel formats them (core_id is written, not read). */
static void write_cpu(const char *dir, int cpu, int package, int core_id, const char *siblings)
{
	char text[32];

	snprintf(text, sizeof(text), "%d\n", package);
	write_topology_file(dir, cpu, "physical_package_id", text);
	snprintf(text, sizeof(text), "%d\n", core_id);
	write_topology_file(dir, cpu, "core_id", text);
	snprintf(text, sizeof(text), "%s\n", siblings);
	write_topology_file(dir, cpu, "thread_siblings_list", text);
}

static void make_dir(char *path, size_t size, const char *root, const char *name)
{
	snprintf(path, size, "%s/%s", root, name);
	assert_int_equal(mkdir(path, 0700), 0);
}

static void write_linux(const char *dir)
{
	char sib[16];

	for (int c = 0; c < NCPU; c++) {
		snprintf(sib, sizeof(sib), "%d,%d", c % 4, c % 4 + 4);
		write_cpu(dir, c, 0, c % 4, sib);
	}
}

static void write_adjacent(const char *dir)
{
	char sib[16];

	for (int c = 0; c < NCPU; c++) {
		snprintf(sib, sizeof(sib), "%d-%d", c & ~1, (c & ~1) + 1);
		write_cpu(dir, c, c / 4, (c / 2) % 2, sib);
	}
}

static void write_sockets(const char *dir)
{
	char sib[16];

	for (int c = 0; c < NCPU; c++) {
		snprintf(sib, sizeof(sib), "%d,%d", c % 4, c % 4 + 4);
		write_cpu(dir, c, (c % 4) / 2, c % 2, sib);
	}
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int trees_setup(void **state)
{
	struct trees *t = calloc(1, sizeof(*t));
	char path[PATH_MAX];

	if (t == NULL)
		return -1;
	snprintf(t->root, sizeof(t->root), "/tmp/tp-placement-XXXXXX");
	if (mkdtemp(t->root) == NULL) {
		free(t);
		return -1;
	}
	make_dir(t->linux_, sizeof(t->linux_), t->root, "linux");
	write_linux(t->linux_);
	make_dir(t->adjacent, sizeof(t->adjacent), t->root, "adjacent");
	write_adjacent(t->adjacent);
	make_dir(t->sockets, sizeof(t->sockets), t->root, "sockets");
	write_sockets(t->sockets);
	make_dir(t->sparse, sizeof(t->sparse), t->root, "sparse");
	write_linux(t->sparse);
	snprintf(path, sizeof(path), "%s/cpu5/topology/thread_siblings_list", t->sparse);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/cpu6/topology/physical_package_id", t->sparse);
	assert_int_equal(unlink(path), 0);
	make_dir(t->empty, sizeof(t->empty), t->root, "empty");
	make_dir(t->scratch, sizeof(t->scratch), t->root, "scratch");
	snprintf(t->missing, sizeof(t->missing), "%s/no-such-directory", t->root);
	*state = t;
	return 0;
}

static int trees_teardown(void **state)
{
	struct trees *t = *state;
	int rc = nftw(t->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

	free(t);
	return rc == 0 ? 0 : -1;
}

static cpu_set_t set_of(const int *cpus, size_t n)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	for (size_t i = 0; i < n; i++)
		CPU_SET(cpus[i], &s);
	return s;
}

static cpu_set_t first_cpus(int count)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	for (int c = 0; c < count; c++)
		CPU_SET(c, &s);
	return s;
}

static void fill(int *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = SENTINEL;
}

static void assert_untouched(const int *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i], SENTINEL);
}

/* Plans n workers over cpu0..cpu7 of `sysfs` and compares with want[0..n). */
static void check_plan(tp_placement how, const char *sysfs, const cpu_set_t *allowed,
		       const int *want, size_t n)
{
	int out[3 * NCPU + 1];

	assert_true(n < sizeof(out) / sizeof(out[0]));
	fill(out, sizeof(out) / sizeof(out[0]));
	assert_int_equal(tp__placement_plan(how, NULL, 0, allowed, sysfs, n, out), 0);
	for (size_t i = 0; i < n; i++) {
		if (out[i] != want[i])
			fail_msg("%s: worker %zu on cpu %d, want %d", sysfs ? sysfs : "(null)", i,
				 out[i], want[i]);
	}
	assert_int_equal(out[n], SENTINEL); /* nothing written past n */
}

static const int ascending[NCPU] = { 0, 1, 2, 3, 4, 5, 6, 7 };

static void placement_compact_linux_siblings_adjacent(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int want[NCPU] = { 0, 4, 1, 5, 2, 6, 3, 7 };

	check_plan(TP_PLACE_COMPACT, t->linux_, &all, want, NCPU);
}

static void placement_scatter_linux_one_thread_per_core_first(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);

	check_plan(TP_PLACE_SCATTER, t->linux_, &all, ascending, NCPU);
}

static void placement_compact_two_packages(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int want_sockets[NCPU] = { 0, 4, 1, 5, 2, 6, 3, 7 };

	check_plan(TP_PLACE_COMPACT, t->adjacent, &all, ascending, NCPU);
	check_plan(TP_PLACE_COMPACT, t->sockets, &all, want_sockets, NCPU);
}

/* The example of placement.h: P0C0T0 P1C0T0 P0C1T0 P1C1T0 P0C0T1 P1C0T1 P0C1T1 P1C1T1. */
static void placement_scatter_two_packages_round_robin(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int want_adjacent[NCPU] = { 0, 4, 2, 6, 1, 5, 3, 7 };
	const int want_sockets[NCPU] = { 0, 2, 1, 3, 4, 6, 5, 7 };

	check_plan(TP_PLACE_SCATTER, t->adjacent, &all, want_adjacent, NCPU);
	check_plan(TP_PLACE_SCATTER, t->sockets, &all, want_sockets, NCPU);
}

/* Workers beyond the number of CPUs start the order again. */
static void placement_wraps_around(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int compact[NCPU] = { 0, 4, 1, 5, 2, 6, 3, 7 };
	const int scatter[NCPU] = { 0, 4, 2, 6, 1, 5, 3, 7 };
	int want[2 * NCPU + 3];

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		want[i] = compact[i % NCPU];
	check_plan(TP_PLACE_COMPACT, t->linux_, &all, want, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		want[i] = scatter[i % NCPU];
	check_plan(TP_PLACE_SCATTER, t->adjacent, &all, want, sizeof(want) / sizeof(want[0]));
}

/* Fewer workers than CPUs: a prefix of the order. */
static void placement_fewer_workers_prefix(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int want[3] = { 0, 4, 2 };

	check_plan(TP_PLACE_SCATTER, t->adjacent, &all, want, 3);
}

/* CPUs outside `allowed` are skipped; a core keeps its identity (its lowest sibling) even when
 * that sibling is not allowed. */
static void placement_allowed_subset_linux(void **state)
{
	struct trees *t = *state;
	const int cpus[] = { 1, 2, 4, 5, 6 };
	cpu_set_t allowed = set_of(cpus, 5);
	const int compact[5] = { 4, 1, 5, 2, 6 };
	const int scatter[5] = { 4, 1, 2, 5, 6 };

	check_plan(TP_PLACE_COMPACT, t->linux_, &allowed, compact, 5);
	check_plan(TP_PLACE_SCATTER, t->linux_, &allowed, scatter, 5);
}

/* Package 1 keeps only its second core: it is that package's first core for the round-robin. */
static void placement_allowed_subset_two_packages(void **state)
{
	struct trees *t = *state;
	const int cpus[] = { 0, 2, 3, 6, 7 };
	cpu_set_t allowed = set_of(cpus, 5);
	const int compact[5] = { 0, 2, 3, 6, 7 };
	const int scatter[5] = { 0, 6, 2, 7, 3 };

	check_plan(TP_PLACE_COMPACT, t->adjacent, &allowed, compact, 5);
	check_plan(TP_PLACE_SCATTER, t->adjacent, &allowed, scatter, 5);
}

/* Package 0 has two cores, package 1 one: package 0's second core gets a worker before any core
 * gets its second one. */
static void placement_scatter_fresh_cores_before_second_threads(void **state)
{
	struct trees *t = *state;
	cpu_set_t allowed = first_cpus(6);
	const int want[6] = { 0, 4, 2, 1, 5, 3 };

	check_plan(TP_PLACE_SCATTER, t->adjacent, &allowed, want, 6);
}

/* No topology: each CPU its own core in package 0, so both orders are ascending. */
static void placement_missing_sysfs_flat(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const char *dirs[] = { t->sparse, t->empty, t->missing, NULL };
	const int cpus[] = { 1, 3, 6 };
	cpu_set_t some = set_of(cpus, 3);

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		check_plan(TP_PLACE_COMPACT, dirs[i], &all, ascending, NCPU);
		check_plan(TP_PLACE_SCATTER, dirs[i], &all, ascending, NCPU);
		check_plan(TP_PLACE_COMPACT, dirs[i], &some, cpus, 3);
	}
}

/* A fully readable tree whose excluded CPUs' files are missing is still used. */
static void placement_only_allowed_cpus_read(void **state)
{
	struct trees *t = *state;
	const int cpus[] = { 0, 1, 4 }; /* the sparse tree lacks files of cpu5 and cpu6 only */
	cpu_set_t allowed = set_of(cpus, 3);
	const int want[3] = { 0, 4, 1 };

	check_plan(TP_PLACE_COMPACT, t->sparse, &allowed, want, 3);
}

/* Each malformed file makes the whole plan flat; the intact adjacent tree is not flat. */
static void placement_malformed_sysfs_flat(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int scatter[NCPU] = { 0, 4, 2, 6, 1, 5, 3, 7 };
	static const struct {
		const char *file;
		const char *text;
	} bad[] = {
		{ "physical_package_id", "" },
		{ "physical_package_id", "\n" },
		{ "physical_package_id", "abc\n" },
		{ "physical_package_id", "1x\n" },
		{ "physical_package_id", " 1\n" },
		{ "physical_package_id", "1\n\n" },
		{ "physical_package_id", "-\n" },
		{ "physical_package_id", "99999999999999999999\n" },
		{ "physical_package_id", "2147483648\n" },
		{ "thread_siblings_list", "" },
		{ "thread_siblings_list", "abc\n" },
		{ "thread_siblings_list", "4-\n" },
		{ "thread_siblings_list", "-5\n" },
		{ "thread_siblings_list", "5-4\n" },
		{ "thread_siblings_list", "4,,5\n" },
		{ "thread_siblings_list", "4,5,\n" },
		{ "thread_siblings_list", "4 5\n" },
		{ "thread_siblings_list", "0-1\n" }, /* does not hold cpu5 itself */
		{ "thread_siblings_list", "99999999999999999999,5\n" },
		{ "thread_siblings_list", "\xff\xfe" },
	};
	char path[PATH_MAX];

	write_adjacent(t->scratch);
	check_plan(TP_PLACE_SCATTER, t->scratch, &all, scatter, NCPU);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_adjacent(t->scratch);
		write_topology_file(t->scratch, 5, bad[i].file, bad[i].text);
		check_plan(TP_PLACE_SCATTER, t->scratch, &all, ascending, NCPU);
		check_plan(TP_PLACE_COMPACT, t->scratch, &all, ascending, NCPU);
	}

	/* A file longer than any sysfs topology file: malformed, whatever its start says. */
	write_adjacent(t->scratch);
	{
		char big[8192];

		memset(big, '0', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		write_topology_file(t->scratch, 5, "physical_package_id", big);
	}
	check_plan(TP_PLACE_SCATTER, t->scratch, &all, ascending, NCPU);

	/* A directory where a file should be: unreadable, so flat. */
	write_adjacent(t->scratch);
	snprintf(path, sizeof(path), "%s/cpu5/topology/thread_siblings_list", t->scratch);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	check_plan(TP_PLACE_SCATTER, t->scratch, &all, ascending, NCPU);
	assert_int_equal(rmdir(path), 0);
}

/* Well-formed variants the kernel writes: no trailing newline, package -1, ranges and lists. */
static void placement_wellformed_variants_read(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	const int scatter[NCPU] = { 0, 4, 2, 6, 1, 5, 3, 7 };
	const int compact_neg[NCPU] = { 4, 5, 6, 7, 0, 1, 2, 3 };

	write_adjacent(t->scratch);
	write_topology_file(t->scratch, 5, "thread_siblings_list", "4,5");
	write_topology_file(t->scratch, 3, "thread_siblings_list", "2-3");
	write_topology_file(t->scratch, 0, "physical_package_id", "0");
	check_plan(TP_PLACE_SCATTER, t->scratch, &all, scatter, NCPU);

	/* Package -1 sorts before package 0. */
	write_adjacent(t->scratch);
	for (int c = 4; c < NCPU; c++)
		write_topology_file(t->scratch, c, "physical_package_id", "-1\n");
	check_plan(TP_PLACE_COMPACT, t->scratch, &all, compact_neg, NCPU);
}

/* No CPU beyond the tree's: a set with one CPU, and the highest possible CPU number. */
static void placement_single_and_high_cpus(void **state)
{
	struct trees *t = *state;
	const int one[] = { 3 };
	cpu_set_t s1 = set_of(one, 1);
	const int want1[4] = { 3, 3, 3, 3 };
	const int high[] = { 2, CPU_SETSIZE - 1 };
	cpu_set_t s2 = set_of(high, 2);
	const int want2[4] = { 2, CPU_SETSIZE - 1, 2, CPU_SETSIZE - 1 };

	check_plan(TP_PLACE_SCATTER, t->linux_, &s1, want1, 4);
	/* cpu1023 has no files in the tree: flat. */
	check_plan(TP_PLACE_COMPACT, t->linux_, &s2, want2, 4);
}

static void placement_list_wraps(void **state)
{
	const int cpus[] = { 3, 1 };
	cpu_set_t allowed = set_of(cpus, 2);
	int out[6];

	(void)state;
	fill(out, 6);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, cpus, 2, &allowed, NULL, 5, out), 0);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[2], 3);
	assert_int_equal(out[3], 1);
	assert_int_equal(out[4], 3);
	assert_int_equal(out[5], SENTINEL);
}

/* Every bad list is EINVAL with out[] untouched, also when the bad CPU is beyond n. */
static void placement_list_einval(void **state)
{
	const int ok[] = { 1, 2 };
	cpu_set_t allowed = set_of(ok, 2);
	const int not_allowed[] = { 1, 3 };
	const int negative[] = { -1, 1 };
	const int too_big[] = { 1, CPU_SETSIZE };
	const int int_max[] = { INT_MAX };
	int out[4];

	(void)state;
	fill(out, 4);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, not_allowed, 2, &allowed, NULL, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, not_allowed, 2, &allowed, NULL, 1, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, negative, 2, &allowed, NULL, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, too_big, 2, &allowed, NULL, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, int_max, 1, &allowed, NULL, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, NULL, 2, &allowed, NULL, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, ok, 0, &allowed, NULL, 4, out), EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, ok, 2, NULL, NULL, 4, out), EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, ok, 2, &allowed, NULL, 4, NULL), EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, not_allowed, 2, &allowed, NULL, 0, NULL),
			 EINVAL);
	assert_untouched(out, 4);
	/* n == 0 with a valid list: nothing to write, out may be NULL. */
	assert_int_equal(tp__placement_plan(TP_PLACE_LIST, ok, 2, &allowed, NULL, 0, NULL), 0);
}

static void placement_how_einval(void **state)
{
	struct trees *t = *state;
	cpu_set_t all = first_cpus(NCPU);
	cpu_set_t none;
	const tp_placement bad[] = { TP_PLACE_NONE, (tp_placement)4, (tp_placement)42,
				     (tp_placement)-1 };
	int out[4];

	fill(out, 4);
	CPU_ZERO(&none);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tp__placement_plan(bad[i], NULL, 0, &all, t->linux_, 4, out),
				 EINVAL);
	}
	assert_int_equal(tp__placement_plan(TP_PLACE_COMPACT, NULL, 0, NULL, t->linux_, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_SCATTER, NULL, 0, &none, t->linux_, 4, out),
			 EINVAL);
	assert_int_equal(tp__placement_plan(TP_PLACE_COMPACT, NULL, 0, &all, t->linux_, 4, NULL),
			 EINVAL);
	assert_untouched(out, 4);
	/* cpus and ncpus are ignored outside LIST. */
	assert_int_equal(tp__placement_plan(TP_PLACE_COMPACT, NULL, 7, &all, t->linux_, 4, out), 0);
	assert_int_equal(out[0], 0);
	assert_int_equal(tp__placement_plan(TP_PLACE_SCATTER, NULL, 0, &all, t->linux_, 0, NULL),
			 0);
}

/* This machine's /sys and affinity: every allowed CPU exactly once, in both orders. */
static void placement_real_sysfs_distinct(void **state)
{
	cpu_set_t allowed;
	const tp_placement hows[] = { TP_PLACE_COMPACT, TP_PLACE_SCATTER };
	int count;
	int *out;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	count = CPU_COUNT(&allowed);
	assert_true(count > 0);
	out = calloc((size_t)count, sizeof(*out));
	assert_non_null(out);
	for (size_t h = 0; h < sizeof(hows) / sizeof(hows[0]); h++) {
		cpu_set_t seen;

		CPU_ZERO(&seen);
		assert_int_equal(tp__placement_plan(hows[h], NULL, 0, &allowed, TP__SYSFS_CPU,
						    (size_t)count, out),
				 0);
		for (int i = 0; i < count; i++) {
			assert_in_range(out[i], 0, CPU_SETSIZE - 1);
			assert_true(CPU_ISSET(out[i], &allowed));
			assert_false(CPU_ISSET(out[i], &seen));
			CPU_SET(out[i], &seen);
		}
		assert_true(CPU_EQUAL(&seen, &allowed));
	}
	free(out);
}

/* Plans from several threads at once (the function keeps no state): each thread counts the plans
 * that differ from the expected order; the test thread asserts after joining. */
struct racer {
	const char *sysfs;
	long rounds;
	long wrong;
};

static void *race_plans(void *arg)
{
	struct racer *r = arg;
	const int want[NCPU] = { 0, 4, 2, 6, 1, 5, 3, 7 };
	cpu_set_t all = first_cpus(NCPU);
	int out[NCPU];

	for (long i = 0; i < r->rounds; i++) {
		if (tp__placement_plan(TP_PLACE_SCATTER, NULL, 0, &all, r->sysfs, NCPU, out) != 0 ||
		    memcmp(out, want, sizeof(want)) != 0)
			r->wrong++;
	}
	return NULL;
}

static void placement_concurrent_plans_agree(void **state)
{
	struct trees *t = *state;
	struct racer racers[4];
	pthread_t threads[4];

	for (size_t i = 0; i < 4; i++) {
		racers[i] = (struct racer){ t->adjacent, test_scaled(300), 0 };
		assert_int_equal(pthread_create(&threads[i], NULL, race_plans, &racers[i]), 0);
	}
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(racers[i].wrong, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(placement_compact_linux_siblings_adjacent),
		cmocka_unit_test(placement_scatter_linux_one_thread_per_core_first),
		cmocka_unit_test(placement_compact_two_packages),
		cmocka_unit_test(placement_scatter_two_packages_round_robin),
		cmocka_unit_test(placement_wraps_around),
		cmocka_unit_test(placement_fewer_workers_prefix),
		cmocka_unit_test(placement_allowed_subset_linux),
		cmocka_unit_test(placement_allowed_subset_two_packages),
		cmocka_unit_test(placement_scatter_fresh_cores_before_second_threads),
		cmocka_unit_test(placement_missing_sysfs_flat),
		cmocka_unit_test(placement_only_allowed_cpus_read),
		cmocka_unit_test(placement_malformed_sysfs_flat),
		cmocka_unit_test(placement_wellformed_variants_read),
		cmocka_unit_test(placement_single_and_high_cpus),
		cmocka_unit_test(placement_list_wraps),
		cmocka_unit_test(placement_list_einval),
		cmocka_unit_test(placement_how_einval),
		cmocka_unit_test(placement_real_sysfs_distinct),
		cmocka_unit_test(placement_concurrent_plans_agree),
	};

	test_watchdog(55);
	return cmocka_run_group_tests(tests, trees_setup, trees_teardown);
}
