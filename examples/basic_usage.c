/*
 * basic_usage.c - the reference design's "Basic Usage" example, through the public API only.
 *
 * Python:                                    C:
 *   logger = Logger.get_instance()             tp_logger *logger = tp_logger_get_instance();
 *   pool = ThreadPool(4, logger)               tp_pool *pool = tp_pool_create(4, logger);
 *   f = pool.enqueue(lambda x: x * x, 42)      tp_future *f = tp_enqueue(pool, square, &job);
 *   f.result()                                 tp_future_wait(f), then job.result
 *   pool.shutdown()                            tp_pool_shutdown() + tp_pool_destroy()
 *
 * A task takes one `void *` and returns 0 or an error code; its inputs and its result travel in a
 * struct that the caller keeps alive until the future is final. Exits non-zero if a result is wrong.
 * Run with TP_LOG_LEVEL=info to see the logger's lines on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread_pool.h"

/* Example 1: the lambda x * x. */
struct square_job {
	long x;
	long result;
};

static int square(void *arg)
{
	struct square_job *job = arg;

	job->result = job->x * job->x;
	TP_LOG(NULL, TP_LOG_INFO, "square(%ld) = %ld", job->x, job->result);
	return 0;
}

/* Example 2: a function of two arguments. */
struct multiply_job {
	double x;
	double y;
	double result;
};

static int multiply(void *arg)
{
	struct multiply_job *job = arg;

	job->result = job->x * job->y;
	TP_LOG(NULL, TP_LOG_INFO, "multiply(%g, %g) = %g", job->x, job->y, job->result);
	return 0;
}

static int check(const char *what, int ok)
{
	printf("  %-28s %s\n", what, ok ? "ok" : "WRONG");
	return ok ? 0 : 1;
}

int main(void)
{
	tp_logger *logger = tp_logger_get_instance();
	struct square_job sq = { .x = 42 };
	struct multiply_job mul = { .x = 3.14, .y = 2.0 };
	tp_future *f_sq, *f_mul;
	tp_pool *pool;
	int failures = 0;
	int rc;

	pool = tp_pool_create(4, logger);
	if (!pool) {
		fprintf(stderr, "basic_usage: tp_pool_create: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	printf("Created a pool of %zu threads\n", tp_pool_size(pool));

	printf("Enqueue square(42) and multiply(3.14, 2.0)\n");
	f_sq = tp_enqueue(pool, square, &sq);
	if (!f_sq)
		fprintf(stderr, "basic_usage: tp_enqueue(square): %s\n", strerror(errno));
	f_mul = tp_enqueue(pool, multiply, &mul);
	if (!f_mul)
		fprintf(stderr, "basic_usage: tp_enqueue(multiply): %s\n", strerror(errno));

	if (f_sq) {
		rc = tp_future_wait(f_sq);
		printf("square(42) = %ld (task returned %d)\n", sq.result, rc);
		failures += check("square(42) == 1764", rc == 0 && sq.result == 1764);
		failures += check("future DONE", tp_future_state(f_sq) == TP_FUTURE_DONE);
	} else {
		failures++;
	}
	if (f_mul) {
		double diff;
		int close_enough;

		rc = tp_future_wait(f_mul);
		diff = mul.result - 6.28;
		close_enough = diff < 1e-9 && diff > -1e-9;
		printf("multiply(3.14, 2.0) = %.2f (task returned %d)\n", mul.result, rc);
		failures += check("multiply(3.14, 2.0) == 6.28", rc == 0 && close_enough);
		failures += check("future DONE", tp_future_state(f_mul) == TP_FUTURE_DONE);
	} else {
		failures++;
	}
	/* The caller owns each future: release it once done with it (NULL is a no-op). */
	tp_future_release(f_sq);
	tp_future_release(f_mul);

	/* Don't forget to shut down the pool when you're done. */
	rc = tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN);
	failures += check("tp_pool_shutdown() == 0", rc == 0);
	tp_pool_destroy(pool);

	printf("%s\n", failures ? "basic_usage: FAILED" : "basic_usage: all results correct");
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
