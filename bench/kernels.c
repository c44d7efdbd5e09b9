/*
 * kernels.c - sizes, serial kernels, expected answers and the latency harness of the bench suite.
 *
 * Expected answers never come from the runtime under test: fib from the iterative formula, nqueens
 * from the known table, reduce from a closed form (the data is periodic), uts from a table of node
 * counts produced by bench_uts_serial() (the `serial` runtime recomputes and checks them in every
 * `meson test --suite bench` run, so a change to the tree shape cannot go unnoticed).
 */
#include "bench.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const struct bench_size sizes[] = {
	{
		.name = "small",
		.fib_n = 20,
		.nqueens_n = 8,
		.uts = BENCH_UTS_SMALL,
		.uts_nodes = BENCH_UTS_SMALL_NODES,
		.reduce_n = 1000000,
		.reduce_grain = 16384,
		.submit_n = 10000,
		.latency_samples = 50,
		.idle_s = 0.1,
		.burst_n = 2000,
	},
	{
		.name = "default",
		.fib_n = 32,
		.nqueens_n = 12,
		.uts = BENCH_UTS_DEFAULT,
		.uts_nodes = BENCH_UTS_DEFAULT_NODES,
		.reduce_n = 50000000,
		.reduce_grain = 65536,
		.submit_n = 1000000,
		.latency_samples = 1000,
		.idle_s = 1.0,
		.burst_n = 20000,
	},
	{
		.name = "large",
		.fib_n = 35,
		.nqueens_n = 14,
		.uts = BENCH_UTS_LARGE,
		.uts_nodes = BENCH_UTS_LARGE_NODES,
		.reduce_n = 200000000,
		.reduce_grain = 65536,
		.submit_n = 4000000,
		.latency_samples = 3000,
		.idle_s = 2.0,
		.burst_n = 100000,
	},
};

const struct bench_size *bench_size_get(const char *name)
{
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		if (strcmp(sizes[i].name, name) == 0)
			return &sizes[i];
	return NULL;
}

static const char *const kernel_names[BENCH_KERNEL_COUNT] = {
	"fib", "nqueens", "uts", "reduce", "submit", "latency", "idle",
};

const char *bench_kernel_name(enum bench_kernel k)
{
	return (unsigned)k < BENCH_KERNEL_COUNT ? kernel_names[k] : "?";
}

int bench_kernel_parse(const char *name)
{
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		if (strcmp(kernel_names[k], name) == 0)
			return k;
	return -1;
}

/* ---- serial kernels ---- */

uint64_t bench_fib_serial(int n)
{
	return n < 2 ? (uint64_t)n : bench_fib_serial(n - 1) + bench_fib_serial(n - 2);
}

uint64_t bench_fib_expected(int n)
{
	uint64_t a = 0, b = 1;
	for (int i = 0; i < n; i++) {
		uint64_t t = a + b;
		a = b;
		b = t;
	}
	return a;
}

uint64_t bench_nqueens_serial(int n, int j, const char *board)
{
	if (j == n)
		return 1;
	uint64_t count = 0;
	for (int i = 0; i < n; i++) {
		char child[BENCH_NQ_MAX];
		if (bench_nqueens_child(child, board, j, i))
			count += bench_nqueens_serial(n, j + 1, child);
	}
	return count;
}

uint64_t bench_nqueens_expected(int n)
{
	static const uint64_t solutions[] = {
		1,   1,	  0,	0,     2,     10,     4,       40,	 92,
		352, 724, 2680, 14200, 73712, 365596, 2279184, 14772512,
	};
	_Static_assert(sizeof solutions / sizeof solutions[0] == BENCH_NQ_MAX + 1,
		       "one answer per n <= BENCH_NQ_MAX");
	return n >= 0 && n <= BENCH_NQ_MAX ? solutions[n] : 0;
}

uint64_t bench_uts_serial_subtree(const struct bench_uts *u, uint64_t state)
{
	uint64_t count = 1;
	int n = bench_uts_children(u, state);
	for (int i = 0; i < n; i++)
		count += bench_uts_serial_subtree(u, bench_uts_child(state, i));
	return count;
}

uint64_t bench_uts_serial(const struct bench_uts *u)
{
	uint64_t count = 1;
	for (int i = 0; i < u->root_children; i++)
		count += bench_uts_serial_subtree(u, bench_uts_child(u->seed, i));
	return count;
}

/* ---- reduce ---- */

#define REDUCE_PERIOD 1024u

double *bench_reduce_data(size_t n)
{
	size_t bytes = (n * sizeof(double) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	if (bytes == 0)
		bytes = 2u << 20;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Transparent huge pages make the 400 MB fill (untimed) several times faster. */
	(void)madvise(p, bytes, MADV_HUGEPAGE);
	double *x = p;
	for (size_t i = 0; i < n; i++)
		x[i] = (double)(i % REDUCE_PERIOD);
	return x;
}

void bench_reduce_free(double *x, size_t n)
{
	size_t bytes = (n * sizeof(double) + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	if (x)
		munmap(x, bytes ? bytes : 2u << 20);
}

double bench_sum_sqrt(const double *x, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += sqrt(x[i]);
	return s;
}

double bench_reduce_expected(size_t n)
{
	long double period = 0.0L, tail = 0.0L;
	for (unsigned k = 0; k < REDUCE_PERIOD; k++) {
		period += sqrtl((long double)k);
		if (k < n % REDUCE_PERIOD)
			tail += sqrtl((long double)k);
	}
	/* Whole periods: an integer count on purpose. */
	size_t periods = n / REDUCE_PERIOD;

	return (double)((long double)periods * period + tail);
}

/* ---- timers ---- */

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

/* ---- futex ---- */

void bench_futex_wait(void *word, unsigned expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void bench_futex_wake(void *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- "are the other threads parked?" ---- */

/*
 * True iff every thread of this process other than the caller is off the CPU (state S or D in
 * /proc/self/task/<tid>/stat). A worker that spins, or yields in a loop, shows R.
 */
static int others_parked(pid_t self)
{
	DIR *dir = opendir("/proc/self/task");
	if (!dir)
		return 0;
	int parked = 1;
	struct dirent *de;
	while (parked && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		pid_t tid = (pid_t)atoi(de->d_name);
		if (tid == self)
			continue;
		char path[64], buf[256];
		snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue; /* the thread has just exited */
		size_t len = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[len] = '\0';
		char *paren = strrchr(buf, ')');
		if (!paren || paren[1] != ' ' || (paren[2] != 'S' && paren[2] != 'D'))
			parked = 0;
	}
	closedir(dir);
	return parked;
}

/* ---- the latency harness ---- */

/*
 * Before each sample the submitter sleeps LAT_MIN_GAP, then polls until every other thread is
 * parked, for at most LAT_MAX_WAIT in all. A runtime whose workers spin longer than that (libomp:
 * 200 ms by default; libgomp: a few ms when it has a CPU per thread) is measured with its workers
 * still spinning: its samples count as not parked, the result line says how many were parked, and
 * `idle` shows what the spinning costs.
 *
 * The floors. On a VM a futex wake-up costs very different amounts depending on where the woken
 * thread runs: on the waker's own vCPU (which then sleeps) it is a context switch, on another,
 * halted vCPU it is an IPI through the hypervisor. So the harness keeps two helper threads parked
 * on futexes, pinned to the first two CPUs we may use, and every sample of the runtime is preceded
 * by one floor sample, alternately a `local` one (a bare FUTEX_WAKE of the helper pinned to the
 * submitter's current CPU) and a `cross` one (the helper on another CPU), timed the same way: each
 * process measures both floors in the same seconds as its own samples. A third, unpinned helper
 * is the serial runtime's "worker" (the `floor` row: a bare hand-off, placed by the scheduler).
 */
#define LAT_MIN_GAP_NS	200000u
#define LAT_MAX_WAIT_NS 500000u
#define LAT_POLL_NS	50000u
#define LAT_WARMUP	10u

enum {
	HELPER_UNPINNED,
	HELPER_CPU_A,
	HELPER_CPU_B,
	N_HELPERS
};

struct lat_helper {
	atomic_uint go; /* bumped for each hand-off; ~0u: exit */
	int cpu;	/* pinned to this CPU, or -1 */
	pthread_t thread;
	struct bench_latency *lr;
};

struct bench_latency {
	atomic_uint started; /* 0 until the task of the current sample has started */
	uint64_t t0, t1;
	size_t next, samples; /* next includes the LAT_WARMUP samples */
	size_t parked;
	size_t nfloor[2];
	pid_t self;
	int floors; /* interleave floor samples */
	int nhelpers;
	struct lat_helper helpers[N_HELPERS];
	double *us, *floor_us[2]; /* floor_us[0]: local, [1]: cross */
};

static void *helper_main(void *p)
{
	struct lat_helper *h = p;
	if (h->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(h->cpu, &set);
		(void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	}
	unsigned seen = 0;
	for (;;) {
		unsigned g;
		while ((g = atomic_load_explicit(&h->go, memory_order_acquire)) == seen)
			bench_futex_wait(&h->go, seen);
		if (g == ~0u)
			return NULL;
		seen = g;
		bench_latency_task(h->lr);
	}
}

static void handoff(struct lat_helper *h)
{
	/* One atomic add, one FUTEX_WAKE: the helper's wake-up is what is timed. */
	atomic_fetch_add_explicit(&h->go, 1, memory_order_release);
	bench_futex_wake(&h->go);
}

void bench_latency_free(struct bench_latency *lr)
{
	if (!lr)
		return;
	for (int i = 0; i < lr->nhelpers; i++) {
		atomic_store_explicit(&lr->helpers[i].go, ~0u, memory_order_release);
		bench_futex_wake(&lr->helpers[i].go);
		pthread_join(lr->helpers[i].thread, NULL);
	}
	free(lr->us);
	free(lr->floor_us[0]);
	free(lr->floor_us[1]);
	free(lr);
}

struct bench_latency *bench_latency_new(size_t samples, int floors)
{
	struct bench_latency *lr = calloc(1, sizeof *lr);
	if (!lr)
		return NULL;
	size_t n = samples ? samples : 1;
	lr->us = calloc(n, sizeof(double));
	lr->floor_us[0] = calloc(n, sizeof(double));
	lr->floor_us[1] = calloc(n, sizeof(double));
	lr->samples = samples;
	lr->floors = floors;
	lr->self = (pid_t)syscall(SYS_gettid);
	/* The helpers' CPUs: the first two this process may run on (cross needs two). */
	cpu_set_t set;
	int cpus[2] = { -1, -1 }, found = 0;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
			if (CPU_ISSET(c, &set))
				cpus[found++] = c;
	if (!lr->us || !lr->floor_us[0] || !lr->floor_us[1]) {
		bench_latency_free(lr);
		return NULL;
	}
	for (int i = 0; i < N_HELPERS; i++) {
		struct lat_helper *h = &lr->helpers[i];
		h->lr = lr;
		h->cpu = i == HELPER_UNPINNED ? -1 : cpus[i - HELPER_CPU_A];
		if (i != HELPER_UNPINNED && h->cpu < 0)
			break; /* a single CPU: no cross floor (and no pinned helpers) */
		if (pthread_create(&h->thread, NULL, helper_main, h) != 0) {
			bench_latency_free(lr);
			return NULL;
		}
		lr->nhelpers++;
	}
	return lr;
}

/* Sleeps, waits (boundedly) for the other threads to park, then takes t0. Returns 1 if parked. */
static int pause_and_start(struct bench_latency *lr)
{
	uint64_t start = bench_now_ns();
	bench_sleep_ns(LAT_MIN_GAP_NS);
	int parked;
	while (!(parked = others_parked(lr->self)) && bench_now_ns() - start < LAT_MAX_WAIT_NS)
		bench_sleep_ns(LAT_POLL_NS);
	atomic_store_explicit(&lr->started, 0, memory_order_relaxed);
	lr->t0 = bench_now_ns();
	return parked;
}

static double wait_started(struct bench_latency *lr)
{
	while (atomic_load_explicit(&lr->started, memory_order_acquire) == 0)
		bench_futex_wait(&lr->started, 0);
	return (double)(lr->t1 - lr->t0) / 1e3;
}

void bench_latency_floor_handoff(struct bench_latency *lr)
{
	handoff(&lr->helpers[HELPER_UNPINNED]);
}

/* One floor sample before runtime sample `next`: local on even samples, cross on odd ones. */
static void floor_sample(struct bench_latency *lr)
{
	int cross = (int)(lr->next & 1);
	if (lr->nhelpers < N_HELPERS)
		return; /* one CPU */
	(void)pause_and_start(lr);
	int cpu = sched_getcpu();
	struct lat_helper *a = &lr->helpers[HELPER_CPU_A], *b = &lr->helpers[HELPER_CPU_B];
	struct lat_helper *h;
	if (cpu == a->cpu)
		h = cross ? b : a;
	else if (cpu == b->cpu)
		h = cross ? a : b;
	else if (cross)
		h = a; /* on a third CPU: both helpers are elsewhere */
	else
		return; /* no helper on this CPU: no local sample this time */
	handoff(h);
	double us = wait_started(lr);
	if (lr->next >= LAT_WARMUP)
		lr->floor_us[cross][lr->nfloor[cross]++] = us;
}

int bench_latency_begin(struct bench_latency *lr)
{
	if (lr->next >= lr->samples + LAT_WARMUP)
		return 1;
	if (lr->floors)
		floor_sample(lr);
	if (pause_and_start(lr) && lr->next >= LAT_WARMUP)
		lr->parked++;
	return 0;
}

void bench_latency_task(struct bench_latency *lr)
{
	lr->t1 = bench_now_ns();
	/* The store of t1 before the store of `started` (release): the submitter reads t1 after it
	 * sees started == 1 (acquire). */
	atomic_store_explicit(&lr->started, 1, memory_order_release);
	bench_futex_wake(&lr->started);
}

void bench_latency_end(struct bench_latency *lr)
{
	double us = wait_started(lr);
	if (lr->next >= LAT_WARMUP)
		lr->us[lr->next - LAT_WARMUP] = us;
	lr->next++;
}

size_t bench_latency_result(struct bench_latency *lr, double **us, double **floor_us,
			    size_t *nfloor)
{
	*us = lr->us;
	floor_us[0] = lr->floor_us[0];
	floor_us[1] = lr->floor_us[1];
	nfloor[0] = lr->nfloor[0];
	nfloor[1] = lr->nfloor[1];
	return lr->next > LAT_WARMUP ? lr->next - LAT_WARMUP : 0;
}

size_t bench_latency_parked(const struct bench_latency *lr)
{
	return lr->parked;
}

/* ---- misc ---- */

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

const char *bench_object_of(const void *sym)
{
	Dl_info info;
	if (dladdr(sym, &info) && info.dli_fname && info.dli_fname[0])
		return info.dli_fname;
	return "?";
}
