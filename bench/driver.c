/*
 * driver.c - tp-bench: runs every runtime's bench executable (rt_<name>) as a child process, in
 * interleaved rounds, and prints one comparison table per kernel.
 *
 * Method
 *   For each kernel, a round runs every (runtime, threads) configuration once, one process at a
 *   time; rounds alternate the order (A B C, then C B A) so that a slow drift of the machine falls
 *   evenly on all. Round 0 is a warm-up and is discarded (not for latency and idle, see
 *   warmup_rounds[]); `--repeat K` rounds are kept. A table row
 *   shows the median and the min-max of the kept runs, and the ratio to thread_pool: the median
 *   over rounds of (this run / thread_pool's run at the same thread count in the same round).
 *   Every figure is lower-is-better, so a ratio above 1 means thread_pool did better. The machine
 *   may change speed between processes: only these paired ratios are meant to be compared.
 *
 * The children check their answers; a wrong answer or a crash is reported loudly, the table shows
 * FAILED, and tp-bench exits with status 1 after printing everything else.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench_config.h"

/* ------------------------------------------------------------------------------------------ */

struct runtime {
	const char *name;
	const char *why_not; /* why it was not built */
	unsigned kernels;
	bool configured; /* built by meson (bench_config.h) */
	bool threadless; /* runs on one thread whatever --threads says: one row per kernel */
	bool available;	 /* its executable answered --info */
	char path[PATH_MAX + 64];
	char version[320], compiler[160], cflags[160], skip_reason[200];
};

static struct runtime runtimes[] = {
	{ .name = "thread_pool",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_spawn",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_task",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "serial", .configured = true, .threadless = true, .why_not = "" },
	{ .name = "libgomp", .configured = BENCH_HAVE_LIBGOMP, .why_not = BENCH_WHY_LIBGOMP },
	{ .name = "libomp", .configured = BENCH_HAVE_LIBOMP, .why_not = BENCH_WHY_LIBOMP },
	{ .name = "tbb", .configured = BENCH_HAVE_TBB, .why_not = BENCH_WHY_TBB },
	{ .name = "classic", .configured = true, .why_not = "" },
	{ .name = "tp_batch",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_calls",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .threadless = true,
	  .why_not = BENCH_WHY_THREAD_POOL },
	{ .name = "tp_submit",
	  .configured = BENCH_HAVE_THREAD_POOL,
	  .why_not = BENCH_WHY_THREAD_POOL },
};
#define N_RUNTIMES (int)(sizeof runtimes / sizeof runtimes[0])
#define RT_TP	   0
#define RT_SERIAL  3

struct config {
	int rt, threads;
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

static struct {
	bool kernels[BENCH_KERNEL_COUNT];
	bool runtimes[N_RUNTIMES];
	int threads[64], nthreads;
	const struct bench_size *size;
	int repeat;
	const char *json, *plot;
	double timeout_s;
	char bindir[PATH_MAX];
} opt;

/*
 * Kept runs per row when --repeat is not given. Five everywhere, except where one run is long
 * already and itself an aggregate: uts (13M tasks), latency (1000 samples per run, p50/p99),
 * idle (1 s per run). That keeps a default run within 3 minutes on 2 CPUs.
 */
static const int default_repeat[BENCH_KERNEL_COUNT] = {
	[BENCH_FIB] = 5,    [BENCH_NQUEENS] = 5, [BENCH_UTS] = 3,  [BENCH_REDUCE] = 5,
	[BENCH_SUBMIT] = 5, [BENCH_LATENCY] = 3, [BENCH_IDLE] = 3,
};

/*
 * Discarded warm-up rounds: one, except for latency and idle, whose runs discard their own
 * warm-up inside the process (latency: its first 10 samples; idle: it measures after a burst) and
 * whose figure is not a speed that caches or clocks would inflate on a first run.
 */
static const int warmup_rounds[BENCH_KERNEL_COUNT] = {
	[BENCH_FIB] = 1,    [BENCH_NQUEENS] = 1, [BENCH_UTS] = 1,  [BENCH_REDUCE] = 1,
	[BENCH_SUBMIT] = 1, [BENCH_LATENCY] = 0, [BENCH_IDLE] = 0,
};

static bool tty;
static int runs_done, runs_total;
static bool any_failure;

/* ------------------------------------------------------------------------------------------ */

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("tp-bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: tp-bench [options]\n"
		"Compares this thread pool with serial C, OpenMP (libgomp, libomp), oneTBB and the classic\n"
		"mutex pool on the same kernels, in one run, and prints one table per kernel.\n"
		"\n"
		"  --kernel LIST    kernels, comma-separated (default: all):\n"
		"                   fib nqueens uts reduce submit latency idle\n"
		"  --runtime LIST   runtimes (default: all built): thread_pool tp_spawn tp_task serial\n"
		"                   libgomp libomp tbb classic tp_batch tp_calls tp_submit\n"
		"  --threads LIST   thread counts: numbers, max (the CPUs available) and ranges A-B,\n"
		"                   e.g. 1,2,4 or 1-max (default: 1, 2, 4, ... up to max, and max)\n"
		"  --size S         small | default | large (default: default)\n"
		"  --repeat K       kept runs per row, after one discarded warm-up round (none for\n"
		"                   latency and idle, whose runs discard their own warm-up)\n"
		"                   (default 5; 3 for uts, latency and idle, whose runs are long aggregates)\n"
		"  --json FILE      write every figure, the machine, compilers, flags and versions as JSON\n"
		"                   (rewritten after each kernel: a killed run keeps its finished tables;\n"
		"                   \"complete\": false until the run ends)\n"
		"  --plot FILE.svg  draw speedup and ratio charts with gnuplot\n"
		"  --timeout SEC    kill a run after SEC seconds (default 120; 900 at --size large)\n"
		"  --bindir DIR     where the rt_<runtime> executables are (default: next to tp-bench)\n"
		"  --help           this text\n"
		"\n"
		"Ratios are this runtime / thread_pool, paired run by run within a round (same thread count);\n"
		"every figure is lower-is-better, so a ratio above 1 means thread_pool did better.\n");
}

static bool split_list(const char *arg, void (*each)(const char *item))
{
	char *copy = strdup(arg), *save = NULL;
	if (!copy)
		return false;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		each(tok);
	free(copy);
	return true;
}

static void add_kernel(const char *name)
{
	int k = bench_kernel_parse(name);
	if (k < 0)
		die("unknown kernel '%s' (fib nqueens uts reduce submit latency idle)", name);
	opt.kernels[k] = true;
}

static void add_runtime(const char *name)
{
	for (int r = 0; r < N_RUNTIMES; r++)
		if (strcmp(runtimes[r].name, name) == 0) {
			opt.runtimes[r] = true;
			return;
		}
	die("unknown runtime '%s' (thread_pool tp_spawn tp_task serial libgomp libomp tbb classic tp_batch tp_calls tp_submit)",
	    name);
}

static int cpu_count(void);

/* One end of a thread count or range: a number in [1, 1024], or "max" (the CPUs available). */
static int parse_threads(const char *text, const char *whole)
{
	char *end;
	long t;

	if (strcmp(text, "max") == 0)
		return cpu_count();
	t = strtol(text, &end, 10);
	if (end == text || *end || t < 1 || t > 1024)
		die("bad thread count '%s' (a number from 1 to 1024, max, or a range A-B)", whole);
	return (int)t;
}

static void add_thread_count(int t)
{
	for (int i = 0; i < opt.nthreads; i++)
		if (opt.threads[i] == t)
			return;
	if (opt.nthreads == (int)(sizeof opt.threads / sizeof opt.threads[0]))
		die("too many thread counts (at most %d)",
		    (int)(sizeof opt.threads / sizeof opt.threads[0]));
	opt.threads[opt.nthreads++] = t;
}

/* An item of --threads: N, max, or A-B (every count from A to B, ends included). */
static void add_threads(const char *text)
{
	const char *dash = strchr(text, '-');
	char lo[32];
	int a, b;

	if (dash == NULL) {
		add_thread_count(parse_threads(text, text));
		return;
	}
	if ((size_t)(dash - text) >= sizeof lo)
		die("bad thread range '%s'", text);
	memcpy(lo, text, (size_t)(dash - text));
	lo[dash - text] = '\0';
	a = parse_threads(lo, text);
	b = parse_threads(dash + 1, text);
	if (a > b)
		die("bad thread range '%s' (A-B needs A <= B)", text);
	for (int t = a; t <= b; t++)
		add_thread_count(t);
}

/* The default: 1, 2, 4, ... up to the CPUs available, and that count itself. */
static void add_default_threads(void)
{
	int cpus = cpu_count();

	for (int t = 1; t < cpus; t *= 2)
		add_thread_count(t);
	add_thread_count(cpus);
}

static int cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static bool in_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (!path)
		return false;
	char *copy = strdup(path), *save = NULL;
	bool found = false;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char full[PATH_MAX];
		snprintf(full, sizeof full, "%s/%s", *dir ? dir : ".", prog);
		found = access(full, X_OK) == 0;
	}
	free(copy);
	return found;
}

/* ------------------------------------------------------------------------------------------ */
/* Child processes */

struct child_out {
	char out[8192], err[4096];
	size_t outlen, errlen;
	int status; /* from waitpid */
	bool timed_out;
};

static void append(char *buf, size_t cap, size_t *len, const char *data, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

/* Runs argv[0] with stdout and stderr captured, killing it after `timeout_s`. */
static int run_child(char *const argv[], double timeout_s, struct child_out *co)
{
	int po[2], pe[2];
	memset(co, 0, sizeof *co);
	if (pipe(po) != 0)
		return errno;
	if (pipe(pe) != 0) {
		close(po[0]);
		close(po[1]);
		return errno;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return e;
	}
	if (pid == 0) {
		dup2(po[1], STDOUT_FILENO);
		dup2(pe[1], STDERR_FILENO);
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		execv(argv[0], argv);
		fprintf(stderr, "cannot execute %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd fds[2] = { { .fd = po[0], .events = POLLIN },
				 { .fd = pe[0], .events = POLLIN } };
	int open_fds = 2;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (open_fds > 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		double left = timeout_s - ((double)(now.tv_sec - start.tv_sec) +
					   (double)(now.tv_nsec - start.tv_nsec) / 1e9);
		if (left <= 0) {
			co->timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		int n = poll(fds, 2, (int)(left * 1000) + 1);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[4096];
			ssize_t got = read(fds[i].fd, buf, sizeof buf);
			if (got <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
			} else if (i == 0) {
				append(co->out, sizeof co->out, &co->outlen, buf, (size_t)got);
			} else {
				append(co->err, sizeof co->err, &co->errlen, buf, (size_t)got);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	while (waitpid(pid, &co->status, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* Value of `key=` in a result line (up to the next space), or NULL. */
static const char *field(const char *line, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	for (const char *p = line; (p = strstr(p, key)) != NULL; p += klen) {
		if ((p == line || p[-1] == ' ') && p[klen] == '=') {
			p += klen + 1;
			size_t n = strcspn(p, " \n");
			if (n >= len)
				n = len - 1;
			memcpy(buf, p, n);
			buf[n] = '\0';
			return buf;
		}
	}
	return NULL;
}

static double field_double(const char *line, const char *key)
{
	char buf[64];
	return field(line, key, buf, sizeof buf) ? strtod(buf, NULL) : NAN;
}

/* Reads `rt_<name> --info`. */
static void probe_runtime(struct runtime *rt)
{
	snprintf(rt->path, sizeof rt->path, "%s/rt_%s", opt.bindir, rt->name);
	if (access(rt->path, X_OK) != 0)
		return;
	char *argv[] = { rt->path, "--info", NULL };
	struct child_out co;
	if (run_child(argv, 30, &co) != 0 || !WIFEXITED(co.status) || WEXITSTATUS(co.status) != 0)
		return;
	char *save = NULL;
	for (char *line = strtok_r(co.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(line, "version") == 0)
			snprintf(rt->version, sizeof rt->version, "%s", v);
		else if (strcmp(line, "compiler") == 0)
			snprintf(rt->compiler, sizeof rt->compiler, "%s", v);
		else if (strcmp(line, "cflags") == 0)
			snprintf(rt->cflags, sizeof rt->cflags, "%s", v);
		else if (strcmp(line, "skip_reason") == 0)
			snprintf(rt->skip_reason, sizeof rt->skip_reason, "%s", v);
		else if (strcmp(line, "kernels") == 0) {
			char *s2 = NULL, *copy = strdup(v);
			for (char *k = strtok_r(copy, ",", &s2); k; k = strtok_r(NULL, ",", &s2))
				if (bench_kernel_parse(k) >= 0)
					rt->kernels |= BENCH_K(bench_kernel_parse(k));
			free(copy);
		}
	}
	rt->available = true;
}

/* ------------------------------------------------------------------------------------------ */
/* How busy the machine is with work that is not ours */

/*
 * A snapshot of the machine's busy time (/proc/stat, all CPUs) and of our own CPU time (this
 * process and its waited-for children). Busy time that is not ours is other processes' work
 * competing with the runs; steal is time the hypervisor ran something else on our vCPUs.
 */
struct load {
	double busy_s, steal_s, ours_s, wall_s;
};

static double tv_s(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void load_snapshot(struct load *l)
{
	memset(l, 0, sizeof *l);
	FILE *f = fopen("/proc/stat", "r");
	if (f) {
		unsigned long long v[8] = { 0 };
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
			   &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
			double tick = (double)sysconf(_SC_CLK_TCK);
			/* user nice system idle iowait irq softirq steal */
			l->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / tick;
			l->steal_s = (double)v[7] / tick;
		}
		fclose(f);
	}
	struct rusage self, kids;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	l->ours_s = tv_s(self.ru_utime) + tv_s(self.ru_stime) + tv_s(kids.ru_utime) +
		    tv_s(kids.ru_stime);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	l->wall_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Share of the machine's capacity (CPUs x wall time) that other work took: 0..1. */
static double foreign_share(double foreign_cpu_s, double steal_s, double wall_s)
{
	double cap = wall_s * cpu_count();
	double x = cap > 0 ? (foreign_cpu_s + steal_s) / cap : 0;
	return x < 0 ? 0 : x;
}

/* ------------------------------------------------------------------------------------------ */
/* Progress */

static void progress(const char *fmt, ...)
{
	char line[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (tty)
		fprintf(stderr, "\r\033[K[%d/%d] %s", runs_done, runs_total, line);
	else
		fprintf(stderr, "tp-bench: [%d/%d] %s\n", runs_done, runs_total, line);
}

static void progress_clear(void)
{
	if (tty)
		fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------------------------------------ */
/* Measuring */

static void one_run(int kernel, struct config *c, int round, int kept)
{
	struct runtime *rt = &runtimes[c->rt];
	char threads[16];
	snprintf(threads, sizeof threads, "%d", c->threads);
	char *argv[] = { rt->path,
			 "--kernel",
			 (char *)bench_kernel_name(kernel),
			 "--threads",
			 threads,
			 "--size",
			 (char *)opt.size->name,
			 NULL };
	char which[32];
	if (kept < 0)
		snprintf(which, sizeof which, "warm-up run");
	else
		snprintf(which, sizeof which, "run %d/%d", kept + 1, c->n);
	progress("%s: %s, %d thread%s, %s", bench_kernel_name(kernel), rt->name, c->threads,
		 c->threads == 1 ? "" : "s", which);
	struct child_out co;
	int rc = run_child(argv, opt.timeout_s, &co);
	runs_done++;
	char *line = strstr(co.out, "tp-bench-result ");
	bool ok = rc == 0 && !co.timed_out && WIFEXITED(co.status) && WEXITSTATUS(co.status) == 0 &&
		  line;
	if (!ok) {
		if (!c->failed) {
			char why[96];
			if (rc != 0)
				snprintf(why, sizeof why, "could not run: %s", strerror(rc));
			else if (co.timed_out)
				snprintf(why, sizeof why, "killed after %.0f s (timeout)",
					 opt.timeout_s);
			else if (WIFSIGNALED(co.status))
				snprintf(why, sizeof why, "killed by signal %d (%s)",
					 WTERMSIG(co.status), strsignal(WTERMSIG(co.status)));
			else if (WEXITSTATUS(co.status) == 3)
				snprintf(why, sizeof why, "WRONG ANSWER (exit 3)");
			else
				snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(co.status));
			snprintf(c->error, sizeof c->error, "%s; %.*s", why, 400,
				 co.err[0] ? co.err : "no message");
			for (char *p = c->error; *p; p++)
				if (*p == '\n')
					*p = ' ';
			progress_clear();
			fprintf(stderr,
				"tp-bench: FAILED %s on %s with %d threads (round %d): %s\n",
				bench_kernel_name(kernel), rt->name, c->threads, round, c->error);
		}
		c->failed = true;
		any_failure = true;
		return;
	}
	if (kept < 0)
		return;
	c->value[kept] = field_double(line, "value");
	c->p99[kept] = field_double(line, "p99_us");
	c->parked[kept] = field_double(line, "parked");
	c->samples[kept] = field_double(line, "samples");
	c->local_p50[kept] = field_double(line, "local_p50_us");
	c->cross_p50[kept] = field_double(line, "cross_p50_us");
}

static bool runtime_selected(int r)
{
	return opt.runtimes[r] && runtimes[r].available;
}

static void build_configs(int kernel, struct kernel_result *kr)
{
	kr->kernel = kernel;
	kr->repeat = opt.repeat ? opt.repeat : default_repeat[kernel];
	kr->warmup = warmup_rounds[kernel];
	kr->configs = calloc((size_t)opt.nthreads * (size_t)N_RUNTIMES, sizeof *kr->configs);
	kr->nconfigs = 0;
	int min_threads = opt.threads[0];
	for (int i = 1; i < opt.nthreads; i++)
		if (opt.threads[i] < min_threads)
			min_threads = opt.threads[i];
	for (int t = 0; t < opt.nthreads; t++)
		for (int r = 0; r < N_RUNTIMES; r++) {
			if (!runtime_selected(r) || !(runtimes[r].kernels & BENCH_K(kernel)))
				continue;
			/* Serial (and the latency floor), tp_calls: no threads, run once. */
			if (runtimes[r].threadless && opt.threads[t] != min_threads)
				continue;
			struct config *c = &kr->configs[kr->nconfigs++];
			c->rt = r;
			c->threads = opt.threads[t];
			c->n = kr->repeat;
			c->value = malloc(sizeof(double) * (size_t)c->n);
			c->p99 = malloc(sizeof(double) * (size_t)c->n);
			c->parked = malloc(sizeof(double) * (size_t)c->n);
			c->samples = malloc(sizeof(double) * (size_t)c->n);
			c->local_p50 = malloc(sizeof(double) * (size_t)c->n);
			c->cross_p50 = malloc(sizeof(double) * (size_t)c->n);
			for (int i = 0; i < c->n; i++)
				c->value[i] = c->p99[i] = c->parked[i] = c->samples[i] =
					c->local_p50[i] = c->cross_p50[i] = NAN;
		}
}

static void measure(struct kernel_result *kr)
{
	for (int round = 0; round < kr->warmup + kr->repeat; round++)
		for (int i = 0; i < kr->nconfigs; i++) {
			int idx = round % 2 ? kr->nconfigs - 1 - i : i;
			struct config *c = &kr->configs[idx];
			if (c->failed) { /* do not repeat a failure: count its runs as done */
				runs_done++;
				continue;
			}
			one_run(kr->kernel, c, round, round - kr->warmup);
		}
	kr->ran = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Statistics */

/* Median of the finite values of v[0..n); NAN if none. Also min and max if asked. */
static double median(const double *v, int n, double *min, double *max)
{
	double *s = malloc(sizeof(double) * (size_t)(n ? n : 1));
	int m = 0;
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

static const struct config *find_config(const struct kernel_result *kr, int rt, int threads)
{
	for (int i = 0; i < kr->nconfigs; i++)
		if (kr->configs[i].rt == rt && (threads < 0 || kr->configs[i].threads == threads))
			return &kr->configs[i];
	return NULL;
}

/* Median over rounds of c / base, paired by round. */
static double paired_ratio(const struct config *c, const struct config *base)
{
	if (!c || !base)
		return NAN;
	double r[256];
	int n = c->n < 256 ? c->n : 256;
	for (int i = 0; i < n; i++)
		r[i] = base->value[i] > 0 ? c->value[i] / base->value[i] : NAN;
	return median(r, n, NULL, NULL);
}

/* latency: median over runs of p50 / a floor's p50 measured inside the same process. */
static double ratio_vs_own_floor(const struct config *c, const double *floor)
{
	double r[256];
	int n = c->n < 256 ? c->n : 256;
	for (int i = 0; i < n; i++)
		r[i] = floor[i] > 0 ? c->value[i] / floor[i] : NAN;
	return median(r, n, NULL, NULL);
}

static double ratio_vs_tp(const struct kernel_result *kr, const struct config *c)
{
	return paired_ratio(c, find_config(kr, RT_TP, c->threads));
}

/* ------------------------------------------------------------------------------------------ */
/* Tables */

static void kernel_title(int k, char *buf, size_t len)
{
	const struct bench_size *s = opt.size;
	switch (k) {
	case BENCH_FIB:
		snprintf(buf, len, "fib(%d), one task per call, no cutoff: time per run", s->fib_n);
		break;
	case BENCH_NQUEENS:
		snprintf(buf, len,
			 "nqueens(%d), BOTS-style, one task per legal placement: time per run",
			 s->nqueens_n);
		break;
	case BENCH_UTS:
		snprintf(
			buf, len,
			"uts (binomial, root %d, m=%d, q=0.2, seed %llu: %llu nodes), one task per node: time per run",
			s->uts.root_children, s->uts.m, (unsigned long long)s->uts.seed,
			(unsigned long long)s->uts_nodes);
		break;
	case BENCH_REDUCE:
		snprintf(buf, len, "reduce: sum of sqrt over %zu doubles: time per run",
			 s->reduce_n);
		break;
	case BENCH_SUBMIT:
		snprintf(
			buf, len,
			"submit: one outside thread enqueues %zu trivial tasks, then waits for all: time per task",
			s->submit_n);
		break;
	case BENCH_LATENCY:
		snprintf(
			buf, len,
			"latency: enqueue -> task start with the workers parked, %zu samples per run: p50",
			s->latency_samples);
		break;
	case BENCH_IDLE:
		snprintf(
			buf, len,
			"idle: CPU burnt during %.1f s of idleness after a burst of %zu tasks: CPU ms per second",
			s->idle_s, s->burst_n);
		break;
	}
}

static void fmt_value(int kernel, double v, char *buf, size_t len)
{
	if (!isfinite(v))
		snprintf(buf, len, "-");
	else if (kernel == BENCH_SUBMIT)
		snprintf(buf, len, "%.1f ns", v);
	else if (kernel == BENCH_LATENCY)
		snprintf(buf, len, "%.1f us", v);
	else if (kernel == BENCH_IDLE)
		snprintf(buf, len, "%.2f ms", v);
	else if (v < 10)
		snprintf(buf, len, "%.1f ms", v * 1e3);
	else
		snprintf(buf, len, "%.2f s", v);
}

static void fmt_range(int kernel, double lo, double hi, char *buf, size_t len)
{
	if (!isfinite(lo)) {
		snprintf(buf, len, "-");
		return;
	}
	char a[32], b[32];
	fmt_value(kernel, lo, a, sizeof a);
	fmt_value(kernel, hi, b, sizeof b);
	char *unit = strchr(a, ' ');
	if (unit)
		*unit = '\0';
	snprintf(buf, len, "%s-%s", a, b);
}

static const char *row_name(const struct kernel_result *kr, const struct config *c)
{
	if (c->rt == RT_SERIAL && kr->kernel == BENCH_LATENCY)
		return "floor";
	return runtimes[c->rt].name;
}

static void print_table(const struct kernel_result *kr)
{
	int k = kr->kernel;
	char title[256];
	kernel_title(k, title, sizeof title);
	printf("\n== %s\n", title);
	printf("%-12s %7s %12s %20s %8s", "runtime", "threads", "median", "min-max", "ratio");
	if (k == BENCH_LATENCY)
		printf(" %9s %11s %11s %8s %8s %7s", "p99", "floor:local", "floor:cross",
		       "vs local", "vs cross", "parked");
	printf("\n");
	int last_threads = -1;
	for (int i = 0; i < kr->nconfigs; i++) {
		const struct config *c = &kr->configs[i];
		if (last_threads >= 0 && c->threads != last_threads)
			printf("\n");
		last_threads = c->threads;
		char med[32], range[80], ratio[16];
		double lo, hi, m = median(c->value, c->n, &lo, &hi);
		fmt_value(k, m, med, sizeof med);
		fmt_range(k, lo, hi, range, sizeof range);
		double rr = ratio_vs_tp(kr, c);
		if (isfinite(rr))
			snprintf(ratio, sizeof ratio, "%.2f", rr);
		else
			snprintf(ratio, sizeof ratio, "-");
		char threads[16];
		if (runtimes[c->rt].threadless)
			snprintf(threads, sizeof threads, "-");
		else
			snprintf(threads, sizeof threads, "%d", c->threads);
		printf("%-12s %7s %12s %20s %8s", row_name(kr, c), threads,
		       c->failed ? "FAILED" : med, range,
		       c->rt == RT_TP || c->rt == RT_SERIAL ? (c->rt == RT_TP ? "1.00" : ratio)
							    : ratio);
		if (k == BENCH_LATENCY) {
			double vl = ratio_vs_own_floor(c, c->local_p50);
			double vc = ratio_vs_own_floor(c, c->cross_p50);
			double fl = median(c->local_p50, c->n, NULL, NULL);
			double fc = median(c->cross_p50, c->n, NULL, NULL);
			double p99 = median(c->p99, c->n, NULL, NULL);
			double parked = 0, samples = 0;
			for (int j = 0; j < c->n; j++)
				if (isfinite(c->parked[j]) && isfinite(c->samples[j])) {
					parked += c->parked[j];
					samples += c->samples[j];
				}
			char vls[16], vcs[16], fls[24], fcs[24], p99s[24], ps[16];
			snprintf(vls, sizeof vls, isfinite(vl) ? "%.2f" : "-", vl);
			snprintf(vcs, sizeof vcs, isfinite(vc) ? "%.2f" : "-", vc);
			fmt_value(k, fl, fls, sizeof fls);
			fmt_value(k, fc, fcs, sizeof fcs);
			fmt_value(k, p99, p99s, sizeof p99s);
			snprintf(ps, sizeof ps, samples > 0 ? "%.0f%%" : "-",
				 100.0 * parked / (samples > 0 ? samples : 1));
			printf(" %9s %11s %11s %8s %8s %7s", p99s, fls, fcs, vls, vcs, ps);
		}
		printf("\n");
		if (c->failed)
			printf("  ^ FAILED: %s\n", c->error);
	}
	for (int r = 0; r < N_RUNTIMES; r++)
		if (runtime_selected(r) && !(runtimes[r].kernels & BENCH_K(k)))
			printf("%-12s %7s   not run: %s\n", runtimes[r].name, "-",
			       runtimes[r].skip_reason);
	/* A peer that was asked for but is missing says so here, where the comparison is read. */
	for (int r = 0; r < N_RUNTIMES; r++)
		if (opt.runtimes[r] && !runtimes[r].available)
			printf("%-12s %7s   %s: %s\n", runtimes[r].name, "-",
			       runtimes[r].configured ? "does not run" : "not built",
			       runtimes[r].configured ? runtimes[r].path : runtimes[r].why_not);
	static const char *const notes[BENCH_KERNEL_COUNT] = {
		[BENCH_FIB] =
			"thread_pool: futures (tp_enqueue + tp_future_wait); tp_spawn: frames "
			"(tp_spawn + tp_join); tp_task: typed tasks (TP_SPAWN + TP_JOIN, slots by value); "
			"tp_calls: tp_spawn's kernel with each join a plain call, "
			"no runtime; OpenMP: task + taskwait; oneTBB: task_group",
		[BENCH_REDUCE] =
			"thread_pool: tp_parallel_reduce (automatic grain); classic: 65536-element chunks "
			"submitted from outside; OpenMP: parallel for reduction; oneTBB: parallel_reduce",
		[BENCH_SUBMIT] =
			"thread_pool, classic: one future per task, each waited and released; tp_batch: "
			"the same, submitted 256 per tp_enqueue_batch call; tp_submit: no futures, "
			"tp_submit then tp_pool_wait_idle; OpenMP: task + taskwait; "
			"oneTBB: task_group::run + wait (its waiting thread runs tasks too)",
		[BENCH_LATENCY] =
			"threads = parked workers (OpenMP, oneTBB: plus the submitting thread). Floors, "
			"measured inside every run, one floor sample before each of its samples: a bare "
			"futex hand-off to a parked thread pinned to the submitter's CPU (local) or to "
			"the other CPU (cross); vs local / vs cross = p50 / that run's floor p50, median "
			"over runs. The `floor` row is a bare hand-off to an unpinned thread, alone in its "
			"process. parked = samples in which every other thread was off-CPU before the "
			"enqueue (a runtime still spinning after 0.5 ms is measured spinning)",
		[BENCH_IDLE] =
			"CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID) over the idle period, "
			"per second; the submitting thread sleeps meanwhile",
	};
	if (notes[k])
		printf("note: %s\n", notes[k]);
	double share = foreign_share(kr->foreign_cpu_s, kr->steal_s, kr->elapsed_s);
	printf("%s: other processes used %.0f%% of the machine during these %.0f s (%.1f CPU-s, "
	       "steal %.1f s)%s\n",
	       share > 0.25 ? "WARNING" : "load", 100 * share, kr->elapsed_s, kr->foreign_cpu_s,
	       kr->steal_s,
	       share > 0.25 ? ": the machine was not quiet, figures are disturbed" : "");
	if (!find_config(kr, RT_TP, -1))
		printf("(thread_pool was not run: no ratios)\n");
}

/* ------------------------------------------------------------------------------------------ */
/* JSON */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.9g", v);
	else
		fputs("null", f);
}

static void json_array(FILE *f, const double *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		json_num(f, v[i]);
	}
	fputc(']', f);
}

static void cpu_model(char *buf, size_t len)
{
	snprintf(buf, len, "unknown");
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "model name", 10) == 0) {
			char *colon = strchr(line, ':');
			if (colon) {
				colon++;
				while (*colon == ' ' || *colon == '\t')
					colon++;
				colon[strcspn(colon, "\n")] = '\0';
				snprintf(buf, len, "%s", colon);
			}
			break;
		}
	fclose(f);
}

static const char *unit_of(int k)
{
	switch (k) {
	case BENCH_SUBMIT:
		return "ns_per_task";
	case BENCH_LATENCY:
		return "p50_us";
	case BENCH_IDLE:
		return "cpu_ms_per_idle_s";
	default:
		return "s";
	}
}

/*
 * Writes the JSON of the kernels measured so far. Called after each kernel, so that a run killed
 * midway leaves its figures up to the last finished table; "complete" says whether the run ended.
 * Written to a temporary file, then renamed: the file at `path` is always a whole document.
 */
static void write_json(const char *path, struct kernel_result *krs, int argc, char **argv,
		       double elapsed, bool complete)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s.partial", path) >= (int)sizeof tmp) {
		fprintf(stderr, "tp-bench: path too long: %s\n", path);
		any_failure = true;
		return;
	}
	FILE *f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "tp-bench: cannot write %s: %s\n", tmp, strerror(errno));
		any_failure = true;
		return;
	}
	char model[256];
	cpu_model(model, sizeof model);
	struct utsname u;
	uname(&u);
	fprintf(f, "{\n  \"suite\": \"tp-bench\",\n  \"complete\": %s,\n  \"command\": ",
		complete ? "true" : "false");
	char cmd[2048] = "";
	for (int i = 0; i < argc; i++) {
		strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 2);
		if (i + 1 < argc)
			strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
	}
	json_str(f, cmd);
	fprintf(f, ",\n  \"size\": ");
	json_str(f, opt.size->name);
	fprintf(f, ",\n  \"repeat\": ");
	if (opt.repeat)
		fprintf(f, "%d", opt.repeat);
	else
		fprintf(f, "\"per kernel: 5, uts/latency/idle 3\"");
	fprintf(f,
		",\n  \"discarded_warmup_rounds\": \"1 (latency, idle: 0)\",\n  \"elapsed_s\": "
		"%.1f,\n",
		elapsed);
	fprintf(f, "  \"machine\": {\"cpu_model\": ");
	json_str(f, model);
	fprintf(f, ", \"cpus\": %d, \"kernel\": ", cpu_count());
	char kern[400];
	snprintf(kern, sizeof kern, "%s %s %s", u.sysname, u.release, u.machine);
	json_str(f, kern);
	fprintf(f, "},\n  \"build\": {\"buildtype\": ");
	json_str(f, BENCH_BUILDTYPE);
	fprintf(f, ", \"c_compiler\": ");
	json_str(f, BENCH_C_COMPILER);
	fprintf(f, ", \"bench_flags\": ");
	json_str(f, BENCH_FLAGS);
	fprintf(f, "},\n  \"runtimes\": [\n");
	bool first = true;
	for (int r = 0; r < N_RUNTIMES; r++) {
		struct runtime *rt = &runtimes[r];
		fprintf(f, "%s    {\"name\": ", first ? "" : ",\n");
		first = false;
		json_str(f, rt->name);
		fprintf(f, ", \"available\": %s", rt->available ? "true" : "false");
		if (rt->available) {
			fprintf(f, ", \"version\": ");
			json_str(f, rt->version);
			fprintf(f, ", \"compiler\": ");
			json_str(f, rt->compiler);
			fprintf(f, ", \"flags\": ");
			json_str(f, rt->cflags);
			if (rt->skip_reason[0]) {
				fprintf(f, ", \"skips\": ");
				json_str(f, rt->skip_reason);
			}
		} else {
			fprintf(f, ", \"why\": ");
			json_str(f, rt->configured ? "executable missing or broken" : rt->why_not);
		}
		fputc('}', f);
	}
	fprintf(f, "\n  ],\n  \"kernels\": {");
	first = true;
	for (int i = 0; i < BENCH_KERNEL_COUNT; i++) {
		const struct kernel_result *kr = &krs[i];
		if (!kr->ran)
			continue;
		fprintf(f,
			"%s\n    \"%s\": {\"kept_runs\": %d, \"elapsed_s\": %.1f, \"other_cpu_s\": %.2f, "
			"\"steal_s\": %.2f, \"other_share\": %.3f}",
			first ? "" : ",", bench_kernel_name(i), kr->repeat, kr->elapsed_s,
			kr->foreign_cpu_s, kr->steal_s,
			foreign_share(kr->foreign_cpu_s, kr->steal_s, kr->elapsed_s));
		first = false;
	}
	fprintf(f, "\n  },\n  \"results\": [\n");
	first = true;
	for (int i = 0; i < BENCH_KERNEL_COUNT; i++) {
		struct kernel_result *kr = &krs[i];
		if (!kr->ran)
			continue;
		for (int j = 0; j < kr->nconfigs; j++) {
			const struct config *c = &kr->configs[j];
			double lo, hi, m = median(c->value, c->n, &lo, &hi);
			fprintf(f,
				"%s    {\"kernel\": \"%s\", \"runtime\": \"%s\", \"threads\": %d, \"unit\": \"%s\", \"ok\": %s",
				first ? "" : ",\n", bench_kernel_name(i), row_name(kr, c),
				c->threads, unit_of(i), c->failed ? "false" : "true");
			first = false;
			fprintf(f, ", \"median\": ");
			json_num(f, m);
			fprintf(f, ", \"min\": ");
			json_num(f, lo);
			fprintf(f, ", \"max\": ");
			json_num(f, hi);
			fprintf(f, ", \"ratio_vs_thread_pool\": ");
			json_num(f, ratio_vs_tp(kr, c));
			fprintf(f, ", \"runs\": ");
			json_array(f, c->value, c->n);
			if (i == BENCH_LATENCY) {
				fprintf(f, ", \"ratio_vs_floor\": ");
				json_num(f, ratio_vs_own_floor(c, c->cross_p50));
				fprintf(f, ", \"ratio_vs_local_floor\": ");
				json_num(f, ratio_vs_own_floor(c, c->local_p50));
				fprintf(f, ", \"floor_local_p50_us\": ");
				json_array(f, c->local_p50, c->n);
				fprintf(f, ", \"floor_cross_p50_us\": ");
				json_array(f, c->cross_p50, c->n);
				fprintf(f, ", \"p99_us\": ");
				json_array(f, c->p99, c->n);
				fprintf(f, ", \"parked_samples\": ");
				json_array(f, c->parked, c->n);
				fprintf(f, ", \"samples\": ");
				json_array(f, c->samples, c->n);
			}
			if (c->failed) {
				fprintf(f, ", \"error\": ");
				json_str(f, c->error);
			}
			fputc('}', f);
		}
	}
	fprintf(f, "\n  ]\n}\n");
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "tp-bench: error writing %s: %s\n", path, strerror(errno));
		any_failure = true;
	} else if (complete) {
		fprintf(stderr, "tp-bench: wrote %s\n", path);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Plot */

static void write_plot(const char *svg, struct kernel_result *krs)
{
	char dir[] = "/tmp/tp-bench-plot-XXXXXX";
	if (!mkdtemp(dir)) {
		fprintf(stderr, "tp-bench: --plot: mkdtemp: %s\n", strerror(errno));
		any_failure = true;
		return;
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
		any_failure = true;
		return;
	}
	int cols[N_RUNTIMES], ncols = 0;
	for (int r = 0; r < N_RUNTIMES; r++)
		if (r != RT_SERIAL && runtime_selected(r))
			cols[ncols++] = r;
	fprintf(sp, "label");
	fprintf(ra, "label");
	for (int c = 0; c < ncols; c++) {
		fprintf(sp, " %s", runtimes[cols[c]].name);
		fprintf(ra, " %s", runtimes[cols[c]].name);
	}
	fprintf(sp, "\n");
	fprintf(ra, "\n");
	int speed_rows = 0, ratio_rows = 0;
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		struct kernel_result *kr = &krs[k];
		if (!kr->ran)
			continue;
		const struct config *ser = find_config(kr, RT_SERIAL, -1);
		double ser_m = ser ? median(ser->value, ser->n, NULL, NULL) : NAN;
		if (k <= BENCH_REDUCE && isfinite(ser_m))
			for (int t = 0; t < opt.nthreads; t++) {
				fprintf(sp, "\"%s/%d\"", bench_kernel_name(k), opt.threads[t]);
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
		fprintf(ra, "\"%s\"", bench_kernel_name(k));
		for (int c = 0; c < ncols; c++) {
			const struct config *cf = find_config(kr, cols[c], max_t);
			double r = cf ? ratio_vs_tp(kr, cf) : NAN;
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
	if (!gp) {
		any_failure = true;
		return;
	}
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
		any_failure = true;
		return;
	}
	remove(speed_path);
	remove(ratio_path);
	remove(gp_path);
	rmdir(dir);
	fprintf(stderr, "tp-bench: wrote %s\n", svg);
}

/* ------------------------------------------------------------------------------------------ */

static void default_bindir(void)
{
	const char *env = getenv("TP_BENCH_BINDIR");
	if (env && *env) {
		snprintf(opt.bindir, sizeof opt.bindir, "%s", env);
		return;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		snprintf(opt.bindir, sizeof opt.bindir, ".");
		return;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	snprintf(opt.bindir, sizeof opt.bindir, "%s", self);
}

int main(int argc, char **argv)
{
	bool any_kernel = false, any_runtime = false;
	opt.repeat = 0; /* per kernel: default_repeat[] */
	opt.size = bench_size_get("default");
	opt.timeout_s = 0;
	default_bindir();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (!v)
			die("%s: unknown option or missing value (see --help)", a);
		i++;
		if (strcmp(a, "--kernel") == 0) {
			split_list(v, add_kernel);
			any_kernel = true;
		} else if (strcmp(a, "--runtime") == 0) {
			split_list(v, add_runtime);
			any_runtime = true;
		} else if (strcmp(a, "--threads") == 0) {
			split_list(v, add_threads);
		} else if (strcmp(a, "--size") == 0) {
			if (!(opt.size = bench_size_get(v)))
				die("--size must be small, default or large");
		} else if (strcmp(a, "--repeat") == 0) {
			char *end;
			long r = strtol(v, &end, 10);
			if (*end || r < 1 || r > 100)
				die("--repeat must be 1..100");
			opt.repeat = (int)r;
		} else if (strcmp(a, "--json") == 0) {
			opt.json = v;
		} else if (strcmp(a, "--plot") == 0) {
			opt.plot = v;
		} else if (strcmp(a, "--timeout") == 0) {
			opt.timeout_s = strtod(v, NULL);
			if (!(opt.timeout_s > 0))
				die("--timeout must be positive");
		} else if (strcmp(a, "--bindir") == 0) {
			snprintf(opt.bindir, sizeof opt.bindir, "%s", v);
		} else {
			die("unknown option '%s' (see --help)", a);
		}
	}
	if (!any_kernel)
		for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
			opt.kernels[k] = true;
	if (!any_runtime)
		for (int r = 0; r < N_RUNTIMES; r++)
			opt.runtimes[r] = true;
	if (opt.nthreads == 0)
		add_default_threads();
	if (opt.timeout_s == 0)
		opt.timeout_s = strcmp(opt.size->name, "large") == 0 ? 900 : 120;
	if (opt.plot && !in_path("gnuplot"))
		die("--plot needs gnuplot, which is not installed (Debian: apt-get install gnuplot-nox); "
		    "nothing was run");
	tty = isatty(STDERR_FILENO);

	/* Which runtimes can run. */
	for (int r = 0; r < N_RUNTIMES; r++) {
		if (!opt.runtimes[r])
			continue;
		probe_runtime(&runtimes[r]);
		if (!runtimes[r].available) {
			if (!runtimes[r].configured)
				fprintf(stderr, "tp-bench: %s skipped: not built (%s)\n",
					runtimes[r].name, runtimes[r].why_not);
			else
				fprintf(stderr, "tp-bench: %s skipped: %s does not run\n",
					runtimes[r].name, runtimes[r].path);
		}
	}

	struct kernel_result krs[BENCH_KERNEL_COUNT];
	memset(krs, 0, sizeof krs);
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++)
		if (opt.kernels[k]) {
			build_configs(k, &krs[k]);
			runs_total += krs[k].nconfigs * (krs[k].warmup + krs[k].repeat);
		}

	char model[256];
	cpu_model(model, sizeof model);
	char kept[64];
	if (opt.repeat)
		snprintf(kept, sizeof kept, "%d", opt.repeat);
	else
		snprintf(kept, sizeof kept, "5 (uts, latency, idle: 3)");
	printf("tp-bench: %s, %d CPUs; size %s; kept runs per row: %s, after 1 discarded warm-up "
	       "round (none for latency, idle); rounds interleaved\n",
	       model, cpu_count(), opt.size->name, kept);
	for (int r = 0; r < N_RUNTIMES; r++)
		if (runtime_selected(r))
			printf("  %-12s %s\n", runtimes[r].name, runtimes[r].version);
	printf("ratio = runtime / thread_pool, paired run by run (same round, same threads): above 1 "
	       "means thread_pool did better.\n");
	fflush(stdout);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int k = 0; k < BENCH_KERNEL_COUNT; k++) {
		if (!opt.kernels[k])
			continue;
		struct load before, after;
		load_snapshot(&before);
		measure(&krs[k]);
		load_snapshot(&after);
		krs[k].elapsed_s = after.wall_s - before.wall_s;
		krs[k].foreign_cpu_s =
			(after.busy_s - before.busy_s) - (after.ours_s - before.ours_s);
		if (krs[k].foreign_cpu_s < 0)
			krs[k].foreign_cpu_s = 0;
		krs[k].steal_s = after.steal_s - before.steal_s;
		progress_clear();
		print_table(&krs[k]);
		fflush(stdout);
		if (opt.json) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			write_json(opt.json, krs, argc, argv,
				   (double)(t1.tv_sec - t0.tv_sec) +
					   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
				   false);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("\n%d runs in %.1f s\n", runs_done, elapsed);
	if (opt.json)
		write_json(opt.json, krs, argc, argv, elapsed, true);
	if (opt.plot)
		write_plot(opt.plot, krs);
	if (any_failure) {
		fprintf(stderr, "tp-bench: SOME RUNS FAILED (see FAILED above)\n");
		return 1;
	}
	return 0;
}
