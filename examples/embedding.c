/*
 * embedding.c - a pool embedded in a program the way a long-running service holds one: named
 * worker threads, per-worker scratch buffers set up by a start hook and freed by a stop hook,
 * fire-and-forget jobs whose heap arguments are freed even when the jobs never run, an error
 * handler for the jobs that fail, waits for idleness between phases (the pool stays open), a
 * search that stops early, the pool's statistics, and a trace of it all.
 *
 *	$ embedding [TRACE.json]
 *
 * The trace goes to embedding-trace.json unless given. Open it in Perfetto (ui.perfetto.dev)
 * or draw it: `tp-trace TRACE.json --svg trace.svg`. The program checks its own results and
 * exits 1 if one is wrong.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread_pool.h"

#define JOBS	    3000
#define SCRATCH	    4096
#define MAX_WORKERS 256

/* One scratch buffer per worker, indexed by tp_worker_index(): no lock, no sharing. */
static unsigned char *scratch[MAX_WORKERS];
static atomic_int started, stopped;

static void on_start(void *user, size_t index)
{
	(void)user;
	if (index < MAX_WORKERS)
		scratch[index] = malloc(SCRATCH);
	atomic_fetch_add(&started, 1);
}

static void on_stop(void *user, size_t index)
{
	(void)user;
	if (index < MAX_WORKERS) {
		free(scratch[index]);
		scratch[index] = NULL;
	}
	atomic_fetch_add(&stopped, 1);
}

/* A job owns its heap argument: it frees it when it runs; its drop function frees it if the job
 * is cancelled instead. Either way exactly once. */
struct job {
	unsigned id;
};

static atomic_ullong checksum;
static atomic_int ran, failed, dropped;

/* Exported, and the program is linked with -rdynamic: the trace names the tasks after them. */
int checksum_job(void *arg);
int checksum_job(void *arg)
{
	struct job *job = arg;
	unsigned id = job->id;
	int w = tp_worker_index();
	unsigned char *buf = w >= 0 && w < MAX_WORKERS ? scratch[w] : NULL;
	unsigned long long sum = 0;

	free(job);
	atomic_fetch_add(&ran, 1);
	if (buf == NULL)
		return ENOMEM;
	for (size_t i = 0; i < SCRATCH; i++)
		buf[i] = (unsigned char)(id * 31 + i);
	for (size_t i = 0; i < SCRATCH; i++)
		sum += buf[i];
	atomic_fetch_add(&checksum, sum);
	/* Every 500th job fails, to show the error handler. */
	return id % 500 == 499 ? EIO : 0;
}

static void drop_job(void *arg)
{
	free(arg);
	atomic_fetch_add(&dropped, 1);
}

static void on_error(void *user, tp_task_fn fn, void *arg, int code)
{
	(void)user;
	(void)arg; /* already freed by the job */
	if (fn == checksum_job && code == EIO)
		atomic_fetch_add(&failed, 1);
}

/* The checksum the jobs 0..n-1 must add up to, computed here the slow way. */
static unsigned long long expected_checksum(unsigned n)
{
	unsigned long long sum = 0;

	for (unsigned id = 0; id < n; id++)
		for (size_t i = 0; i < SCRATCH; i++)
			sum += (unsigned char)(id * 31 + i);
	return sum;
}

/* A search that stops the loop as soon as one chunk finds the value. */
struct search {
	const unsigned *values;
	unsigned wanted;
	atomic_size_t found_at;
};

int find_chunk(size_t begin, size_t end, void *ctx);
int find_chunk(size_t begin, size_t end, void *ctx)
{
	struct search *s = ctx;

	for (size_t i = begin; i < end; i++)
		if (s->values[i] == s->wanted) {
			atomic_store(&s->found_at, i);
			return 1; /* stop: the other chunks need not run */
		}
	return 0;
}

static int submit_jobs(tp_pool *pool, unsigned first, unsigned n)
{
	for (unsigned id = first; id < first + n; id++) {
		struct job *job = malloc(sizeof(*job));
		int rc;

		if (job == NULL)
			return ENOMEM;
		job->id = id;
		rc = tp_submit_ex(pool, checksum_job, job, drop_job);
		if (rc != 0) {
			free(job); /* refused: still ours */
			return rc;
		}
	}
	return 0;
}

static void print_stats(tp_pool *pool)
{
	tp_worker_stats per[MAX_WORKERS];
	tp_stats st = { .per_worker = per, .per_worker_len = MAX_WORKERS };

	if (tp_pool_stats(pool, &st) != 0)
		return;
	printf("%-8s %8s %8s %8s %8s %8s %8s\n", "worker", "tasks", "injected", "steals", "fails",
	       "parks", "wakeups");
	for (size_t i = 0; i < st.per_worker_len; i++)
		printf("%s-%-5zu %8llu %8llu %8llu %8llu %8llu %8llu\n", tp_pool_name(pool), i,
		       (unsigned long long)per[i].tasks, (unsigned long long)per[i].injected,
		       (unsigned long long)per[i].steals, (unsigned long long)per[i].steal_fails,
		       (unsigned long long)per[i].parks, (unsigned long long)per[i].wakeups);
	printf("%-8s %8llu %8llu %8llu %8llu %8llu %8llu   (queued %llu, running %llu)\n", "total",
	       (unsigned long long)st.total.tasks, (unsigned long long)st.total.injected,
	       (unsigned long long)st.total.steals, (unsigned long long)st.total.steal_fails,
	       (unsigned long long)st.total.parks, (unsigned long long)st.total.wakeups,
	       (unsigned long long)st.queued, (unsigned long long)st.running);
}

int main(int argc, char **argv)
{
	const char *trace = argc > 1 ? argv[1] : "embedding-trace.json";
	static unsigned values[1 << 20];
	struct search search = { .values = values, .wanted = 0xC0FFEE, .found_at = SIZE_MAX };
	tp_pool_options opts;
	tp_pool *pool;
	int rc, errors = 0;

	tp_pool_options_init(&opts);
	opts.name = "embed"; /* threads embed-0, embed-1, ... in top -H and gdb */
	opts.on_thread_start = on_start;
	opts.on_thread_stop = on_stop;
	opts.on_error = on_error;
	pool = tp_pool_create_ex(&opts);
	if (pool == NULL) {
		perror("tp_pool_create_ex");
		return 1;
	}
	/* Every start hook has run by now. */
	if (atomic_load(&started) != (int)tp_pool_size(pool))
		errors++;
	rc = tp_pool_trace_start(pool, trace);
	if (rc != 0)
		fprintf(stderr, "no trace: %s\n", strerror(rc));

	/* Phase 1: fire-and-forget jobs, then wait for the pool to be idle (it stays open). */
	rc = submit_jobs(pool, 0, JOBS);
	if (rc == 0)
		rc = tp_pool_wait_idle(pool, NULL);
	if (rc != 0 || atomic_load(&ran) != JOBS || atomic_load(&failed) != JOBS / 500 ||
	    atomic_load(&checksum) != expected_checksum(JOBS)) {
		fprintf(stderr, "phase 1: rc %d, ran %d, failed %d\n", rc, atomic_load(&ran),
			atomic_load(&failed));
		errors++;
	}

	/* Phase 2: a search that stops early. */
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		values[i] = (unsigned)(i * 2654435761u);
	values[123457] = search.wanted;
	rc = tp_parallel_try_for(pool, 0, sizeof(values) / sizeof(values[0]), 1024, find_chunk,
				 &search);
	if (rc != 1 || atomic_load(&search.found_at) != 123457) {
		fprintf(stderr, "phase 2: rc %d, found at %zu\n", rc,
			atomic_load(&search.found_at));
		errors++;
	}

	/* Idle first: a task's span is recorded just after its future completes. */
	rc = tp_pool_wait_idle(pool, NULL);
	if (rc == 0)
		rc = tp_pool_trace_stop(pool);
	if (rc == 0)
		printf("trace written to %s\n", trace);
	print_stats(pool);

	/* Phase 3: jobs still queued at a CANCEL shutdown never run; their arguments are freed. */
	atomic_store(&ran, 0);
	rc = submit_jobs(pool, 0, JOBS);
	tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL);
	if (rc != 0 || atomic_load(&ran) + atomic_load(&dropped) != JOBS) {
		fprintf(stderr, "phase 3: ran %d + dropped %d != %d\n", atomic_load(&ran),
			atomic_load(&dropped), JOBS);
		errors++;
	}
	printf("cancel shutdown: %d jobs ran, %d dropped\n", atomic_load(&ran),
	       atomic_load(&dropped));
	if (atomic_load(&stopped) != (int)tp_pool_size(pool))
		errors++;
	tp_pool_destroy(pool);
	return errors != 0;
}
