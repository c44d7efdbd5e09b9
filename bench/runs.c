/*
 * runs.c - the machine, and running the rt_<runtime> executables: one process per measurement,
 * in interleaved rounds (see driver.h, Method), with the load other processes put on the machine
 * meanwhile.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

/* ---- the machine -------------------------------------------------------------------------- */

int cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

void cpu_model(char *buf, size_t len)
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

bool in_path(const char *prog)
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

/* ---- child processes ---------------------------------------------------------------------- */

static void append_out(char *buf, size_t cap, size_t *len, const char *data, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

/* In the child: stdout and stderr to the pipes, then argv[0]. */
static void exec_child(char *const argv[], const int po[2], const int pe[2])
{
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

static double seconds_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* In the parent: reads both pipes until they close or the time is up (then kills the child). */
static void collect_child(pid_t pid, int out_fd, int err_fd, double timeout_s, struct child_out *co)
{
	struct pollfd fds[2] = { { .fd = out_fd, .events = POLLIN },
				 { .fd = err_fd, .events = POLLIN } };
	int open_fds = 2;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (open_fds > 0) {
		double left = timeout_s - seconds_since(&start);
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
				append_out(co->out, sizeof co->out, &co->outlen, buf, (size_t)got);
			} else {
				append_out(co->err, sizeof co->err, &co->errlen, buf, (size_t)got);
			}
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	while (waitpid(pid, &co->status, 0) < 0 && errno == EINTR)
		;
}

int run_child(char *const argv[], double timeout_s, struct child_out *co)
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
	if (pid == 0)
		exec_child(argv, po, pe);
	close(po[1]);
	close(pe[1]);
	collect_child(pid, po[0], pe[0], timeout_s, co);
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

/* ---- the runtimes' executables ---------------------------------------------------------- */

/* `kernels=fib,nqueens,...` of --info: a BENCH_K() mask. */
static unsigned parse_kernels(const char *list)
{
	unsigned mask = 0;
	char *save = NULL, *copy = strdup(list);
	if (!copy)
		return 0;
	for (char *k = strtok_r(copy, ",", &save); k; k = strtok_r(NULL, ",", &save))
		if (bench_kernel_parse(k) >= 0)
			mask |= BENCH_K(bench_kernel_parse(k));
	free(copy);
	return mask;
}

static void info_line(struct runtime *rt, const char *key, const char *v)
{
	if (strcmp(key, "version") == 0)
		snprintf(rt->version, sizeof rt->version, "%s", v);
	else if (strcmp(key, "compiler") == 0)
		snprintf(rt->compiler, sizeof rt->compiler, "%s", v);
	else if (strcmp(key, "cflags") == 0)
		snprintf(rt->cflags, sizeof rt->cflags, "%s", v);
	else if (strcmp(key, "skip_reason") == 0)
		snprintf(rt->skip_reason, sizeof rt->skip_reason, "%s", v);
	else if (strcmp(key, "kernels") == 0)
		rt->kernels |= parse_kernels(v);
}

void probe_runtime(struct runtime *rt)
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
		info_line(rt, line, eq + 1);
	}
	rt->available = true;
}

/* ---- progress ----------------------------------------------------------------------------- */

static bool tty;
static int n_done, n_total;

void runs_begin(int total)
{
	n_total = total;
	tty = isatty(STDERR_FILENO);
}

int runs_done(void)
{
	return n_done;
}

__attribute__((format(printf, 1, 2))) static void progress(const char *fmt, ...)
{
	char line[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (tty)
		fprintf(stderr, "\r\033[K[%d/%d] %s", n_done, n_total, line);
	else
		fprintf(stderr, "tp-bench: [%d/%d] %s\n", n_done, n_total, line);
}

static void progress_clear(void)
{
	if (tty)
		fprintf(stderr, "\r\033[K");
}

/* ---- one run -------------------------------------------------------------------------------- */

/* Records the first failure of a configuration and says it at once. */
static void record_failure(int kernel, struct config *c, int round, int rc,
			   const struct child_out *co)
{
	if (c->failed)
		return;
	char why[96];
	if (rc != 0)
		snprintf(why, sizeof why, "could not run: %s", strerror(rc));
	else if (co->timed_out)
		snprintf(why, sizeof why, "killed after %.0f s (timeout)", opt.timeout_s);
	else if (WIFSIGNALED(co->status))
		snprintf(why, sizeof why, "killed by signal %d (%s)", WTERMSIG(co->status),
			 strsignal(WTERMSIG(co->status)));
	else if (WEXITSTATUS(co->status) == 3)
		snprintf(why, sizeof why, "WRONG ANSWER (exit 3)");
	else
		snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(co->status));
	snprintf(c->error, sizeof c->error, "%s; %.*s", why, 400,
		 co->err[0] ? co->err : "no message");
	for (char *p = c->error; *p; p++)
		if (*p == '\n')
			*p = ' ';
	progress_clear();
	fprintf(stderr, "tp-bench: FAILED %s on %s with %d threads (round %d): %s\n",
		bench_kernel_name((enum bench_kernel)kernel), c->rt->name, c->threads, round,
		c->error);
}

/* Stores the figures of a kept run's result line. */
static void record_result(struct config *c, int kept, const char *line)
{
	c->value[kept] = field_double(line, "value");
	c->p99[kept] = field_double(line, "p99_us");
	c->parked[kept] = field_double(line, "parked");
	c->samples[kept] = field_double(line, "samples");
	c->local_p50[kept] = field_double(line, "local_p50_us");
	c->cross_p50[kept] = field_double(line, "cross_p50_us");
}

/* One process: a warm-up run if kept < 0, else the kept run number `kept`. */
static void one_run(int kernel, struct config *c, int round, int kept)
{
	const struct runtime *rt = c->rt;
	const char *name = bench_kernel_name((enum bench_kernel)kernel);
	char threads[16];
	snprintf(threads, sizeof threads, "%d", c->threads);
	char *argv[] = { (char *)rt->path, "--kernel", (char *)name,	       "--threads",
			 threads,	   "--size",   (char *)opt.size->name, NULL };
	char which[32];
	if (kept < 0)
		snprintf(which, sizeof which, "warm-up run");
	else
		snprintf(which, sizeof which, "run %d/%d", kept + 1, c->n);
	progress("%s: %s, %d thread%s, %s", name, rt->name, c->threads, c->threads == 1 ? "" : "s",
		 which);
	struct child_out co;
	int rc = run_child(argv, opt.timeout_s, &co);
	n_done++;
	char *line = strstr(co.out, "tp-bench-result ");
	bool ok = rc == 0 && !co.timed_out && WIFEXITED(co.status) && WEXITSTATUS(co.status) == 0 &&
		  line;
	if (!ok) {
		record_failure(kernel, c, round, rc, &co);
		c->failed = true;
		return;
	}
	if (kept >= 0)
		record_result(c, kept, line);
}

/* ---- rounds --------------------------------------------------------------------------------- */

static double *nan_series(int n)
{
	double *v = malloc(sizeof(double) * (size_t)n);
	if (!v) {
		fprintf(stderr, "tp-bench: out of memory\n");
		exit(2);
	}
	for (int i = 0; i < n; i++)
		v[i] = NAN;
	return v;
}

static void add_config(struct kernel_result *kr, const struct runtime *rt, int threads)
{
	struct config *c = &kr->configs[kr->nconfigs++];
	c->rt = rt;
	c->threads = threads;
	c->n = kr->repeat;
	c->value = nan_series(c->n);
	c->p99 = nan_series(c->n);
	c->parked = nan_series(c->n);
	c->samples = nan_series(c->n);
	c->local_p50 = nan_series(c->n);
	c->cross_p50 = nan_series(c->n);
}

void build_configs(int kernel, struct kernel_result *kr)
{
	kr->kernel = kernel;
	kr->repeat = opt.repeat ? opt.repeat : kernel_specs[kernel].default_repeat;
	kr->warmup = kernel_specs[kernel].warmup;
	kr->configs = calloc((size_t)opt.nthreads * (size_t)runtime_count, sizeof *kr->configs);
	kr->nconfigs = 0;
	int min_threads = opt.threads[0];
	for (int i = 1; i < opt.nthreads; i++)
		if (opt.threads[i] < min_threads)
			min_threads = opt.threads[i];
	for (int t = 0; t < opt.nthreads; t++)
		for (int r = 0; r < runtime_count; r++) {
			const struct runtime *rt = &runtimes[r];
			if (!runtime_selected(rt) || !(rt->kernels & BENCH_K(kernel)))
				continue;
			/* Serial (and the latency floor), tp_calls: no threads, run once. */
			if (rt->threadless && opt.threads[t] != min_threads)
				continue;
			add_config(kr, rt, opt.threads[t]);
		}
}

int runs_planned(const struct kernel_result *kr)
{
	return kr->nconfigs * (kr->warmup + kr->repeat);
}

static void measure(struct kernel_result *kr)
{
	for (int round = 0; round < kr->warmup + kr->repeat; round++)
		for (int i = 0; i < kr->nconfigs; i++) {
			int idx = round % 2 ? kr->nconfigs - 1 - i : i;
			struct config *c = &kr->configs[idx];
			if (c->failed) { /* do not repeat a failure: count its runs as done */
				n_done++;
				continue;
			}
			one_run(kr->kernel, c, round, round - kr->warmup);
		}
	kr->ran = true;
}

/* ---- how busy the machine is with work that is not ours ------------------------------------ */

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

void measure_kernel(struct kernel_result *kr)
{
	struct load before, after;
	load_snapshot(&before);
	measure(kr);
	load_snapshot(&after);
	kr->elapsed_s = after.wall_s - before.wall_s;
	kr->foreign_cpu_s = (after.busy_s - before.busy_s) - (after.ours_s - before.ours_s);
	if (kr->foreign_cpu_s < 0)
		kr->foreign_cpu_s = 0;
	kr->steal_s = after.steal_s - before.steal_s;
	progress_clear();
}
