/*
 * fork_join.c - recursive fork-join on a pool, and groups of independent tasks.
 *
 *  1. fib(n) with tp_spawn()/tp_join(): each call spawns one half on a tp_frame that lives on its
 *     own stack and computes the other half itself. No allocation per spawn.
 *  2. A merge sort built the same way: sort both halves in parallel, then merge them.
 *  3. A tp_group: tasks started from the main thread and waited for together. The first error
 *     wins, and a cancelled group never runs the tasks that had not started.
 *
 * Each part checks its result against a serial computation. The program exits 1 if a result is
 * wrong, so it also runs as a test (meson test --suite examples).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thread_pool.h"

/* ---------------------------------------------------------------------------------------------
 * 1. fib(n)
 * ------------------------------------------------------------------------------------------ */

/* Below the cutoff, plain recursion: fib(20) makes ~22k calls, while a spawn and its join cost a
 * few ns. Tasks this big keep the runtime's share of the time small. */
#define FIB_N	   30
#define FIB_CUTOFF 20

struct fib {
	int n;
	long result;
};

static long fib_serial(int n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static int fib_task(void *arg)
{
	struct fib *f = arg;
	struct fib left = { f->n - 1, 0 }, right = { f->n - 2, 0 };
	tp_frame frame; /* on this stack: it must be joined before this function returns */
	int rc_left, rc_right;

	if (f->n < FIB_CUTOFF) {
		f->result = fib_serial(f->n);
		return 0;
	}
	/* Push fib(n-1) on this worker's deque, where an idle worker may steal it... */
	tp_spawn(&frame, fib_task, &left);
	/* ...and compute fib(n-2) here meanwhile. */
	rc_right = fib_task(&right);
	/* If nobody stole it, the join runs fib(n-1) right here. It returns the task's code. Join
	 * every spawned frame exactly once, even when the other half failed. */
	rc_left = tp_join(&frame);
	if (rc_left != 0 || rc_right != 0)
		return rc_left != 0 ? rc_left : rc_right;
	f->result = left.result + right.result;
	return 0;
}

/* tp_spawn() is parallel only on a worker of the pool: called from main(), it would only record
 * the frame, and tp_join() would run the whole recursion on the main thread. So the root of a
 * recursion goes in as an ordinary task, and main() waits for it. */
static int run_root(tp_pool *pool, tp_task_fn fn, void *arg)
{
	tp_future *f = tp_enqueue(pool, fn, arg);
	int rc;

	if (f == NULL)
		return errno;
	rc = tp_future_wait(f);
	tp_future_release(f);
	return rc;
}

static int run_fib(tp_pool *pool)
{
	struct fib root = { FIB_N, 0 };
	int rc = run_root(pool, fib_task, &root);

	printf("fib(%d) = %ld (serial: %ld)\n", FIB_N, root.result, fib_serial(FIB_N));
	return rc != 0 || root.result != fib_serial(FIB_N);
}

/* ---------------------------------------------------------------------------------------------
 * 2. Merge sort
 * ------------------------------------------------------------------------------------------ */

#define SORT_N	    (1 << 19)
#define SORT_CUTOFF 4096 /* ranges this small are sorted by qsort() in one task */

struct sort {
	int *a;	  /* the range to sort, in place */
	int *tmp; /* scratch space of the same length */
	size_t n;
};

static int cmp_int(const void *x, const void *y)
{
	int a = *(const int *)x, b = *(const int *)y;

	return (a > b) - (a < b);
}

static int sort_task(void *arg)
{
	struct sort *s = arg;
	size_t half = s->n / 2;
	struct sort lo = { s->a, s->tmp, half };
	struct sort hi = { s->a + half, s->tmp + half, s->n - half };
	size_t i = 0, j = half, k = 0;
	tp_frame frame;
	int rc_lo, rc_hi;

	if (s->n <= SORT_CUTOFF) {
		qsort(s->a, s->n, sizeof(int), cmp_int);
		return 0;
	}
	/* The halves are disjoint, so they can be sorted at the same time. */
	tp_spawn(&frame, sort_task, &lo);
	rc_hi = sort_task(&hi);
	rc_lo = tp_join(&frame);
	if (rc_lo != 0 || rc_hi != 0)
		return rc_lo != 0 ? rc_lo : rc_hi;
	/* After the join, everything the spawned task wrote is visible here. Merge into tmp, then
	 * copy back. (The merge itself is serial; the top one touches all n elements.) */
	while (i < half && j < s->n)
		s->tmp[k++] = s->a[j] < s->a[i] ? s->a[j++] : s->a[i++];
	while (i < half)
		s->tmp[k++] = s->a[i++];
	while (j < s->n)
		s->tmp[k++] = s->a[j++];
	memcpy(s->a, s->tmp, s->n * sizeof(int));
	return 0;
}

static int run_sort(tp_pool *pool)
{
	int *a = malloc(SORT_N * sizeof(int));
	int *want = malloc(SORT_N * sizeof(int));
	int *tmp = malloc(SORT_N * sizeof(int));
	struct sort root = { a, tmp, SORT_N };
	unsigned x = 12345;
	int wrong = 1;

	if (a != NULL && want != NULL && tmp != NULL) {
		for (size_t i = 0; i < SORT_N; i++) {
			x = x * 1103515245u + 12345u; /* any pseudo-random numbers will do */
			a[i] = want[i] = (int)(x >> 8) - (1 << 23);
		}
		qsort(want, SORT_N, sizeof(int), cmp_int);
		wrong = run_root(pool, sort_task, &root) != 0 ||
			memcmp(a, want, SORT_N * sizeof(int)) != 0;
	}
	printf("merge sort of %d ints: %s\n", SORT_N, wrong ? "WRONG" : "same as qsort()");
	free(a);
	free(want);
	free(tmp);
	return wrong;
}

/* ---------------------------------------------------------------------------------------------
 * 3. A group: count the primes below 200,000 in 40 independent slices
 * ------------------------------------------------------------------------------------------ */

#define SLICES	   40
#define SLICE_SIZE 5000

struct slice {
	unsigned begin, end; /* count the primes in [begin, end) */
	unsigned primes;
};

static unsigned count_primes(unsigned begin, unsigned end)
{
	unsigned count = 0;

	for (unsigned n = begin < 2 ? 2 : begin; n < end; n++) {
		unsigned d = 2;

		while (d * d <= n && n % d != 0)
			d++;
		count += d * d > n;
	}
	return count;
}

static int slice_task(void *arg)
{
	struct slice *s = arg;

	if (s->begin > s->end)
		return EINVAL; /* a failed task: tp_group_wait() reports the first such code */
	s->primes = count_primes(s->begin, s->end);
	return 0;
}

/* Counts the tasks of the cancelled group that were dropped instead of run. A drop function runs
 * on the thread that cancels (here, main), so a plain int will do. */
static unsigned dropped;

static void drop_slice(void *arg)
{
	(void)arg; /* the slice is in an array we own: nothing to free */
	dropped++;
}

static int run_group(tp_pool *pool)
{
	/* The tasks' arguments must outlive them: here, until tp_group_wait() returns. */
	static struct slice slices[SLICES + 1];
	unsigned want = count_primes(0, SLICES * SLICE_SIZE), total = 0, ran = 0;
	int wrong = 0, rc;
	tp_group g;

	/* All slices succeed: the wait returns 0, and every result is there. */
	if (tp_group_init(&g, pool) != 0)
		return 1;
	for (unsigned i = 0; i < SLICES; i++) {
		slices[i] = (struct slice){ i * SLICE_SIZE, (i + 1) * SLICE_SIZE, 0 };
		/* A refused spawn (ENOMEM, ESHUTDOWN) added nothing to the group. */
		wrong |= tp_group_spawn(&g, slice_task, &slices[i]) != 0;
	}
	rc = tp_group_wait(&g);
	for (unsigned i = 0; i < SLICES; i++)
		total += slices[i].primes;
	printf("primes below %d: %u (serial: %u)\n", SLICES * SLICE_SIZE, total, want);
	wrong |= rc != 0 || total != want;

	/* The group is empty and reusable after the wait. One bad slice: its code comes back, and
	 * the wait still returns only once every task has finished. */
	slices[SLICES] = (struct slice){ 2, 1, 0 };
	for (unsigned i = 0; i <= SLICES; i++)
		wrong |= tp_group_spawn(&g, slice_task, &slices[i]) != 0;
	rc = tp_group_wait(&g);
	printf("with a bad slice: tp_group_wait() = %s\n", strerror(rc));
	wrong |= rc != EINVAL;

	/* Cancelled: tasks not started yet never run, and their drop function runs instead (so a
	 * heap argument could be freed there). Later spawns are refused. How many ran depends on
	 * timing; that ran + dropped == SLICES does not. */
	for (unsigned i = 0; i < SLICES; i++) {
		slices[i].primes = 0;
		wrong |= tp_group_spawn_ex(&g, slice_task, &slices[i], drop_slice) != 0;
	}
	tp_group_cancel(&g);
	wrong |= tp_group_spawn(&g, slice_task, &slices[0]) != ECANCELED;
	rc = tp_group_wait(&g);
	for (unsigned i = 0; i < SLICES; i++)
		ran += slices[i].primes != 0; /* every slice holds primes */
	printf("cancelled: %u slices ran, %u dropped, tp_group_wait() = %s\n", ran, dropped,
	       strerror(rc));
	wrong |= rc != ECANCELED || ran + dropped != SLICES;
	return wrong;
}

int main(void)
{
	/* 0 threads: TP_NUM_THREADS if set, else one worker per CPU. */
	tp_pool *pool = tp_pool_create(0, NULL);
	int failures = 0;

	if (pool == NULL) {
		perror("tp_pool_create");
		return EXIT_FAILURE;
	}
	printf("a pool of %zu threads\n", tp_pool_size(pool));
	failures += run_fib(pool);
	failures += run_sort(pool);
	failures += run_group(pool);
	tp_pool_destroy(pool);
	printf("%s\n", failures ? "fork_join: FAILED" : "fork_join: all results correct");
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
