/*
 * advanced_usage.c - the reference design's advanced features, through the public API only:
 *
 *  1. a list processed in parallel, results collected in order (the "Parallel Processing" example);
 *  2. an error propagated through a future (the C form of an exception: the task's return code);
 *  3. a cancellation: a task cancelled before it starts never runs, and waiting on it says so;
 *  4. fork-join from inside a task: a task enqueues two subtasks and waits for them.
 *
 * Each part prints what it does and checks its results; the program exits non-zero if any is wrong.
 * Run with TP_LOG_LEVEL=info to see the logger's lines on stderr.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "thread_pool.h"

#define NUM_ITEMS 10

/* An application error code: any positive int a task returns travels to tp_future_wait(). */
#define APP_ERR_CHECKSUM 1001

static int failures;

static void check(const char *what, int ok)
{
	printf("  %-44s %s\n", what, ok ? "ok" : "WRONG");
	if (!ok)
		failures++;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------------------------------
 * 1. A list processed in parallel
 * --------------------------------------------------------------------------------------------- */

struct item_job {
	int item;
	int result;
};

static int process_item(void *arg)
{
	struct item_job *job = arg;

	TP_LOG(NULL, TP_LOG_INFO, "Processing item %d", job->item);
	sleep_ms(10); /* simulate work */
	job->result = job->item * 10;
	return 0;
}

static void parallel_list(tp_pool *pool)
{
	struct item_job jobs[NUM_ITEMS];
	tp_future *futures[NUM_ITEMS];
	int in_order = 1;

	printf("1. Process items 0..%d in parallel (item -> item * 10)\n", NUM_ITEMS - 1);
	for (int i = 0; i < NUM_ITEMS; i++) {
		jobs[i] = (struct item_job){ .item = i, .result = -1 };
		futures[i] = tp_enqueue(pool, process_item, &jobs[i]);
		if (!futures[i])
			fprintf(stderr, "advanced_usage: tp_enqueue: %s\n", strerror(errno));
	}
	/* Collect the results in submission order, whatever order the tasks finished in. */
	printf("Results: [");
	for (int i = 0; i < NUM_ITEMS; i++) {
		int rc = futures[i] ? tp_future_wait(futures[i]) : ENOMEM;

		if (rc != 0 || jobs[i].result != i * 10)
			in_order = 0;
		printf("%s%d", i ? ", " : "", jobs[i].result);
		tp_future_release(futures[i]);
	}
	printf("]\n");
	check("every result is item * 10, in order", in_order);
}

/* ------------------------------------------------------------------------------------------------
 * 2. Error propagation
 * --------------------------------------------------------------------------------------------- */

struct parse_job {
	const char *text;
	long value;
};

/* Fails with EINVAL on text that is not a non-negative decimal number. */
static int parse_number(void *arg)
{
	struct parse_job *job = arg;
	char *end;

	errno = 0;
	job->value = strtol(job->text, &end, 10);
	if (errno != 0 || end == job->text || *end != '\0' || job->value < 0)
		return EINVAL;
	return 0;
}

/* Fails with an application-defined code. */
static int verify_checksum(void *arg)
{
	(void)arg;
	return APP_ERR_CHECKSUM;
}

static void error_propagation(tp_pool *pool)
{
	struct parse_job good = { .text = "1234" }, bad = { .text = "12x4" };
	tp_future *f_good, *f_bad, *f_sum;
	int rc;

	printf("2. Errors travel through futures as return codes\n");
	f_good = tp_enqueue(pool, parse_number, &good);
	f_bad = tp_enqueue(pool, parse_number, &bad);
	f_sum = tp_enqueue(pool, verify_checksum, NULL);

	rc = f_good ? tp_future_wait(f_good) : ENOMEM;
	printf("parse_number(\"%s\") -> %d (value %ld)\n", good.text, rc, good.value);
	check("a task that succeeds: 0 and DONE",
	      rc == 0 && good.value == 1234 && tp_future_state(f_good) == TP_FUTURE_DONE);

	rc = f_bad ? tp_future_wait(f_bad) : ENOMEM;
	printf("parse_number(\"%s\") -> %d (%s)\n", bad.text, rc, strerror(rc));
	check("a task that fails: EINVAL and FAILED",
	      rc == EINVAL && tp_future_state(f_bad) == TP_FUTURE_FAILED);
	check("tp_future_result() keeps the error", tp_future_result(f_bad) == EINVAL);

	rc = f_sum ? tp_future_wait(f_sum) : ENOMEM;
	printf("verify_checksum() -> %d (APP_ERR_CHECKSUM)\n", rc);
	check("an application code: 1001 and FAILED",
	      rc == APP_ERR_CHECKSUM && tp_future_state(f_sum) == TP_FUTURE_FAILED);

	tp_future_release(f_good);
	tp_future_release(f_bad);
	tp_future_release(f_sum);
}

/* ------------------------------------------------------------------------------------------------
 * 3. Cancellation
 * --------------------------------------------------------------------------------------------- */

struct gate {
	atomic_int started;
	atomic_int open;
};

/* Holds its worker until the gate opens (gives up after 10 s so a bug cannot hang the example). */
static int wait_for_gate(void *arg)
{
	struct gate *gate = arg;

	atomic_store_explicit(&gate->started, 1, memory_order_release);
	for (int ms = 0; ms < 10000; ms++) {
		if (atomic_load_explicit(&gate->open, memory_order_acquire))
			return 0;
		sleep_ms(1);
	}
	return ETIMEDOUT;
}

static int must_not_run(void *arg)
{
	atomic_int *ran = arg;

	atomic_store_explicit(ran, 1, memory_order_relaxed);
	return 0;
}

static void cancellation(tp_pool *one)
{
	struct gate gate = { 0 };
	atomic_int ran = 0;
	tp_future *f_block, *f_victim;
	int rc;

	printf("3. Cancel a task before it starts (pool of 1 thread, kept busy)\n");
	f_block = tp_enqueue(one, wait_for_gate, &gate);
	if (!f_block) {
		fprintf(stderr, "advanced_usage: tp_enqueue: %s\n", strerror(errno));
		failures++;
		return;
	}
	/* Once the blocker runs, the only worker is busy: the next task cannot start. */
	for (int ms = 0; ms < 10000 && !atomic_load_explicit(&gate.started, memory_order_acquire);
	     ms++)
		sleep_ms(1);
	f_victim = tp_enqueue(one, must_not_run, &ran);

	check("tp_future_cancel() on a pending task: true", f_victim && tp_future_cancel(f_victim));
	rc = f_victim ? tp_future_wait(f_victim) : ENOMEM;
	printf("waiting on the cancelled task -> %d (%s)\n", rc, strerror(rc));
	check("tp_future_wait() == ECANCELED", rc == ECANCELED);
	check("state CANCELLED", tp_future_state(f_victim) == TP_FUTURE_CANCELLED);

	atomic_store_explicit(&gate.open, 1, memory_order_release);
	rc = tp_future_wait(f_block);
	check("the blocking task finished: 0", rc == 0);
	check("tp_future_cancel() on a finished task: false", !tp_future_cancel(f_block));
	check("the cancelled task never ran", !atomic_load_explicit(&ran, memory_order_relaxed));

	tp_future_release(f_block);
	tp_future_release(f_victim);
}

/* ------------------------------------------------------------------------------------------------
 * 4. Fork-join from inside a task
 * --------------------------------------------------------------------------------------------- */

struct sum_job {
	tp_pool *pool;
	long lo, hi; /* sums lo..hi-1 */
	long result;
};

static int sum_range(void *arg)
{
	struct sum_job *job = arg;

	job->result = 0;
	for (long i = job->lo; i < job->hi; i++)
		job->result += i;
	return 0;
}

/* Splits its range in two subtasks, forks both, joins both, adds their results. */
static int sum_fork_join(void *arg)
{
	struct sum_job *job = arg;
	long mid = job->lo + (job->hi - job->lo) / 2;
	struct sum_job left = { .lo = job->lo, .hi = mid };
	struct sum_job right = { .lo = mid, .hi = job->hi };
	tp_future *f_left, *f_right;
	int rc_left, rc_right;

	/* From inside a task, tp_enqueue() pushes on this worker's own deque (a fork). */
	f_left = tp_enqueue(job->pool, sum_range, &left);
	f_right = tp_enqueue(job->pool, sum_range, &right);
	/* Waiting from a worker runs pending tasks meanwhile, so this joins even on one thread. */
	rc_left = f_left ? tp_future_wait(f_left) : errno;
	rc_right = f_right ? tp_future_wait(f_right) : errno;
	tp_future_release(f_left);
	tp_future_release(f_right);
	if (rc_left != 0)
		return rc_left;
	if (rc_right != 0)
		return rc_right;
	job->result = left.result + right.result;
	TP_LOG(NULL, TP_LOG_INFO, "sum(%ld..%ld) = %ld + %ld", job->lo, job->hi - 1, left.result,
	       right.result);
	return 0;
}

static void fork_join(tp_pool *pool, const char *label)
{
	struct sum_job job = { .pool = pool, .lo = 1, .hi = 1001 };
	tp_future *f;
	int rc;

	printf("4. Fork-join inside a task on %s: sum(1..1000) as two subtasks\n", label);
	f = tp_enqueue(pool, sum_fork_join, &job);
	rc = f ? tp_future_wait(f) : errno;
	printf("sum(1..1000) = %ld (task returned %d)\n", job.result, rc);
	check("sum(1..1000) == 500500", rc == 0 && job.result == 500500);
	tp_future_release(f);
}

int main(void)
{
	tp_logger *logger = tp_logger_get_instance();
	tp_pool *pool, *one;

	pool = tp_pool_create(4, logger);
	one = tp_pool_create(1, logger);
	if (!pool || !one) {
		fprintf(stderr, "advanced_usage: tp_pool_create: %s\n", strerror(errno));
		tp_pool_destroy(pool);
		tp_pool_destroy(one);
		return EXIT_FAILURE;
	}

	parallel_list(pool);
	error_propagation(pool);
	cancellation(one);
	fork_join(pool, "a pool of 4");
	fork_join(one, "a pool of 1");

	check("tp_pool_shutdown(DRAIN) == 0", tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN) == 0);
	check("tp_pool_shutdown() again == 0", tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL) == 0);
	check("tp_enqueue() after shutdown: ESHUTDOWN",
	      !tp_enqueue(pool, sum_range, NULL) && errno == ESHUTDOWN);
	tp_pool_destroy(pool);
	tp_pool_destroy(one);

	printf("%s\n", failures ? "advanced_usage: FAILED" : "advanced_usage: all results correct");
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
