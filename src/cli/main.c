/*
 * main.c - the demo program (installed as tpool-demo): the reference design's
 * `python -m thread_pool`.
 *
 * Runs the parallel-processing example: N items processed on a pool, each task logging
 * "Processing item i" through the logger and simulating work by sleeping, then prints the results
 * (item * 10) in submission order:
 *
 *	$ tpool-demo --items 5 --work-ms 1
 *	Results: [0, 10, 20, 30, 40]
 *
 * Exit status: 0 on success, 1 if the pool fails or a result is wrong, 2 for bad options.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "thread_pool.h"

/* Its installed name (meson.build passes it). */
#ifndef TP_DEMO_NAME
#define TP_DEMO_NAME "tpool-demo"
#endif
#define PROGRAM	    TP_DEMO_NAME
#define MAX_ITEMS   10000000UL
#define MAX_WORK_MS 3600000UL

struct item_job {
	tp_logger *logger;
	unsigned long item;
	unsigned long work_ms;
	unsigned long long result;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: " PROGRAM " [OPTION]...\n"
		"Process N items in parallel on a work-stealing thread pool: each task logs\n"
		"\"Processing item i\", simulates work, and returns item * 10; the results are\n"
		"printed in order.\n"
		"\n"
		"  -t, --threads N        worker threads (default 0: TP_NUM_THREADS, else one per "
		"CPU)\n"
		"  -n, --items N          number of items (default 10)\n"
		"  -w, --work-ms MS       simulated work per item, in milliseconds (default 100)\n"
		"  -l, --log-level LEVEL  debug, info, warning, error or off (default info, or\n"
		"                         TP_LOG_LEVEL when that is set)\n"
		"  -T, --trace FILE       record what the workers do into FILE (Chrome Trace Event\n"
		"                         JSON: open it in Perfetto, or draw it with tp-trace)\n"
		"  -s, --stats            print the pool's counters per worker at the end\n"
		"  -h, --help             show this help and exit\n"
		"  -V, --version          show the library's version and exit\n"
		"\n"
		"Exit status: 0 on success, 1 on a runtime failure, 2 for bad options.\n");
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Not static, and the program is linked with -rdynamic: a trace then names the tasks by this
 * function's name (tasks are named through dladdr, which sees exported symbols only). */
int process_item(void *arg);
int process_item(void *arg)
{
	struct item_job *job = arg;

	TP_LOG(job->logger, TP_LOG_INFO, "Processing item %lu", job->item);
	if (job->work_ms)
		sleep_ms(job->work_ms); /* simulate work */
	job->result = (unsigned long long)job->item * 10;
	return 0;
}

/* Parses a decimal number in [0, max]: no sign, no trailing characters. */
static int parse_count(const char *text, unsigned long max, unsigned long *out)
{
	unsigned long value;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return EINVAL;
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || value > max)
		return EINVAL;
	*out = value;
	return 0;
}

/* Reports a bad option on stderr and returns the exit status for it. */
static int bad_option(const char *fmt, ...) TP_PRINTF(1, 2);
static int bad_option(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROGRAM ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROGRAM " --help' for more information.\n");
	return 2;
}

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* The pool's counters, one line per worker and the total (tp_pool_stats). */
static void print_stats(const tp_pool *pool)
{
	size_t n = tp_pool_size(pool);
	tp_worker_stats *per = calloc(n, sizeof(*per));
	tp_stats st = { .per_worker = per, .per_worker_len = n };

	if (per == NULL || tp_pool_stats(pool, &st) != 0) {
		free(per);
		return;
	}
	printf("%-10s %8s %8s %8s %8s %8s %8s %8s\n", "worker", "tasks", "forks", "injected",
	       "steals", "failed", "parks", "wake-ups");
	for (size_t i = 0; i <= st.per_worker_len; i++) {
		const tp_worker_stats *s = i < st.per_worker_len ? &per[i] : &st.total;
		char name[32];

		if (i < st.per_worker_len)
			snprintf(name, sizeof(name), "%s-%zu", tp_pool_name(pool), i);
		else
			snprintf(name, sizeof(name), "total");
		printf("%-10s %8llu %8llu %8llu %8llu %8llu %8llu %8llu\n", name,
		       (unsigned long long)s->tasks, (unsigned long long)s->forks,
		       (unsigned long long)s->injected, (unsigned long long)s->steals,
		       (unsigned long long)s->steal_fails, (unsigned long long)s->parks,
		       (unsigned long long)s->wakeups);
	}
	free(per);
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "items", required_argument, NULL, 'n' },
		{ "work-ms", required_argument, NULL, 'w' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "trace", required_argument, NULL, 'T' },
		{ "stats", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long threads = 0, items = 10, work_ms = 100;
	tp_log_level level = TP_LOG_INFO;
	const char *trace = NULL;
	bool stats = false;
	tp_pool_options pool_options;
	bool level_given = false;
	struct item_job *jobs = NULL;
	tp_future **futures = NULL;
	struct timespec start;
	tp_logger *logger;
	tp_pool *pool;
	int failures = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "t:n:w:l:T:shV", options, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (parse_count(optarg, TP_POOL_MAX_THREADS, &threads))
				return bad_option("invalid thread count '%s' (0 to %d)", optarg,
						  TP_POOL_MAX_THREADS);
			break;
		case 'n':
			if (parse_count(optarg, MAX_ITEMS, &items))
				return bad_option("invalid item count '%s'", optarg);
			break;
		case 'w':
			if (parse_count(optarg, MAX_WORK_MS, &work_ms))
				return bad_option("invalid work time '%s' (milliseconds)", optarg);
			break;
		case 'l':
			if (tp_log_level_parse(optarg, &level))
				return bad_option("invalid log level '%s' (debug, info, warning, "
						  "error, off)",
						  optarg);
			level_given = true;
			break;
		case 'T':
			trace = optarg;
			break;
		case 's':
			stats = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			/* The library's, which may be newer than the header this was compiled with. */
			printf(PROGRAM " %s\n", tp_version());
			return 0;
		default: /* getopt_long has printed the reason */
			fprintf(stderr, "Try '" PROGRAM " --help' for more information.\n");
			return 2;
		}
	}
	if (optind < argc)
		return bad_option("unexpected argument '%s'", argv[optind]);

	/* The reference design's Logger.get_instance(): the process-wide logger. */
	logger = tp_logger_get_instance();
	if (level_given || !getenv("TP_LOG_LEVEL"))
		tp_logger_set_level(logger, level);

	tp_pool_options_init(&pool_options);
	pool_options.num_threads = threads;
	pool_options.logger = logger;
	pool_options.name = "demo";
	pool = tp_pool_create_ex(&pool_options);
	if (!pool) {
		fprintf(stderr, PROGRAM ": cannot create the pool: %s\n", strerror(errno));
		return 1;
	}
	if (trace) {
		int rc = tp_pool_trace_start(pool, trace);

		if (rc != 0) {
			fprintf(stderr, PROGRAM ": cannot trace into %s: %s\n", trace,
				strerror(rc));
			tp_pool_destroy(pool);
			return 1;
		}
	}
	TP_LOG(logger, TP_LOG_INFO, "Pool of %zu threads; %lu items of %lu ms", tp_pool_size(pool),
	       items, work_ms);

	if (items) {
		jobs = calloc(items, sizeof(*jobs));
		futures = calloc(items, sizeof(*futures));
		if (!jobs || !futures) {
			fprintf(stderr, PROGRAM ": out of memory for %lu items\n", items);
			free(jobs);
			free(futures);
			tp_pool_destroy(pool);
			return 1;
		}
	}

	/* Submit every item, then collect the results in order, as they complete. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned long i = 0; i < items; i++) {
		jobs[i] = (struct item_job){ .logger = logger, .item = i, .work_ms = work_ms };
		futures[i] = tp_enqueue(pool, process_item, &jobs[i]);
		if (!futures[i]) {
			fprintf(stderr, PROGRAM ": cannot enqueue item %lu: %s\n", i,
				strerror(errno));
			failures++;
			break;
		}
	}
	for (unsigned long i = 0; i < items && futures[i]; i++) {
		int rc = tp_future_wait(futures[i]);

		if (rc != 0) {
			fprintf(stderr, PROGRAM ": item %lu failed: %s\n", i, strerror(rc));
			failures++;
		} else if (jobs[i].result != (unsigned long long)i * 10) {
			fprintf(stderr, PROGRAM ": item %lu: wrong result %llu\n", i,
				jobs[i].result);
			failures++;
		}
		tp_future_release(futures[i]);
	}
	TP_LOG(logger, TP_LOG_INFO, "Processed %lu items in %.1f ms", items, elapsed_ms(&start));
	if (trace) {
		/* Idle first: a task's span is recorded just after its future completes. */
		int rc = tp_pool_wait_idle(pool, NULL);

		if (rc == 0)
			rc = tp_pool_trace_stop(pool);

		if (rc != 0) {
			fprintf(stderr, PROGRAM ": cannot write the trace %s: %s\n", trace,
				strerror(rc));
			failures++;
		} else {
			TP_LOG(logger, TP_LOG_INFO, "Trace written to %s", trace);
		}
	}

	if (!failures) {
		printf("Results: [");
		for (unsigned long i = 0; i < items; i++)
			printf("%s%llu", i ? ", " : "", jobs[i].result);
		printf("]\n");
	}

	if (stats)
		print_stats(pool);
	tp_pool_destroy(pool);
	free(jobs);
	free(futures);
	if (fflush(stdout) != 0) {
		perror(PROGRAM ": stdout");
		return 1;
	}
	return failures ? 1 : 0;
}
