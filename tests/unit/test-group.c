/*
 * test-group.c - task groups (tp_group_*) and batch submission (tp_enqueue_batch): every task runs
 * exactly once, the first error in time wins, cancellation skips tasks not started and refuses
 * later spawns, a group is reusable after its wait, groups nest inside tasks (also on one thread);
 * batches give each task its own future and argument, and refuse bad input or a shut-down pool
 * with nothing submitted.
 *
 * cmocka is not thread-safe: tasks only count (atomics) what they saw; the test thread asserts
 * after waiting.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

static int count_run(void *arg)
{
	test_inc(arg);
	return 0;
}

/* Blocks until *gate becomes non-zero. */
static int wait_gate(void *arg)
{
	long *gate = arg;

	while (test_load(gate) == 0)
		test_sleep_us(100);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Groups
 * ------------------------------------------------------------------------------------------ */

enum {
	GROUP_N = 1000
};

static void group_all_tasks_run_once(void **state)
{
	static const size_t threads[] = { 1, 2, 8 };
	static long runs[GROUP_N];

	(void)state;
	for (size_t p = 0; p < 3; p++) {
		tp_pool *pool = test_pool_new(threads[p]);
		tp_group g;

		memset(runs, 0, sizeof(runs));
		assert_int_equal(tp_group_init(&g, pool), 0);
		for (int i = 0; i < GROUP_N; i++)
			assert_int_equal(tp_group_spawn(&g, count_run, &runs[i]), 0);
		assert_int_equal(tp_group_wait(&g), 0);
		/* All done when the wait returns, not only once the pool is destroyed. */
		for (int i = 0; i < GROUP_N; i++)
			assert_int_equal(test_load(&runs[i]), 1);
		tp_pool_destroy(pool);
		for (int i = 0; i < GROUP_N; i++)
			assert_int_equal(test_load(&runs[i]), 1);
	}
}

/*
 * The first error in time wins: "early" returns 7 at once; "late" returns 9 after sleeping 20 ms.
 * On 2 threads, late is spawned first (so it tends to start first) and also waits until early has
 * finished before its 20 ms: early always finishes first, and a group keeping the first *spawned*
 * failure, or the last one, would answer 9. On 1 thread the order is the scheduler's: each failing
 * task takes a ticket as it returns, and the answer must be the code of the first ticket.
 */
struct late {
	bool wait_for_early;
	long early_done; /* atomic: set by early just before it returns */
	long late_ran;	 /* atomic */
	long tickets;	 /* atomic: finishing order */
	long early_ticket, late_ticket;
};

static int early_fail(void *arg)
{
	struct late *l = arg;

	test_store(&l->early_done, 1);
	test_store(&l->early_ticket, test_inc(&l->tickets));
	return 7;
}

static int late_fail(void *arg)
{
	struct late *l = arg;
	double t0 = test_now_ms();

	test_inc(&l->late_ran);
	/* Bounded: if early cannot run meanwhile, give up after 2 s (9 then wins and the test
	 * fails on the tickets instead of hanging). */
	while (l->wait_for_early && test_load(&l->early_done) == 0 && test_now_ms() - t0 < 2000)
		test_sleep_us(200);
	test_sleep_us(20000);
	test_store(&l->late_ticket, test_inc(&l->tickets));
	return 9;
}

static void group_first_error_wins(void **state)
{
	(void)state;
	for (size_t threads = 1; threads <= 2; threads++) {
		tp_pool *pool = test_pool_new(threads);

		for (int order = 0; order < 2; order++) {
			struct late l = { threads == 2, 0, 0, 0, 0, 0 };
			long ok_runs = 0;
			int rc;
			tp_group g;

			assert_int_equal(tp_group_init(&g, pool), 0);
			if (order == 0)
				assert_int_equal(tp_group_spawn(&g, late_fail, &l), 0);
			for (int i = 0; i < 50; i++)
				assert_int_equal(tp_group_spawn(&g, count_run, &ok_runs), 0);
			assert_int_equal(tp_group_spawn(&g, early_fail, &l), 0);
			if (order == 1)
				assert_int_equal(tp_group_spawn(&g, late_fail, &l), 0);
			rc = tp_group_wait(&g);
			/* The wait returned after all of them. */
			assert_int_equal(test_load(&l.late_ran), 1);
			assert_int_equal(test_load(&l.early_done), 1);
			assert_int_equal(test_load(&ok_runs), 50);
			if (threads == 2)
				assert_true(l.early_ticket < l.late_ticket);
			assert_int_equal(rc, l.early_ticket < l.late_ticket ? 7 : 9);
		}
		tp_pool_destroy(pool);
	}
}

/*
 * Cancel: the only worker is blocked by a gate task, 100 group tasks are pending; after
 * tp_group_cancel none of them ever runs, later spawns are refused, and the wait says ECANCELED.
 */
static void group_cancel_skips_pending_tasks(void **state)
{
	tp_pool *pool = test_pool_new(1);
	long gate = 0, ran = 0, late_ran = 0;
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_group g;

	(void)state;
	assert_non_null(blocker);
	while (tp_future_state(blocker) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	assert_int_equal(tp_group_init(&g, pool), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(tp_group_spawn(&g, count_run, &ran), 0);
	tp_group_cancel(&g);
	assert_int_equal(tp_group_spawn(&g, count_run, &late_ran), ECANCELED);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(blocker), 0);
	assert_int_equal(tp_group_wait(&g), ECANCELED);
	tp_future_release(blocker);
	tp_pool_destroy(pool); /* drains: a skipped task that still ran would show now */
	assert_int_equal(ran, 0);
	assert_int_equal(late_ran, 0);
}

/* A task that failed before the cancel: its code wins over ECANCELED. */
struct fail_then_flag {
	long ran; /* atomic */
};

static int fail_5(void *arg)
{
	struct fail_then_flag *f = arg;

	test_store(&f->ran, 1);
	return 5;
}

static void group_cancel_after_failure_keeps_the_error(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct fail_then_flag f = { 0 };
	long gate = 0, ran = 0;
	tp_group g;

	(void)state;
	assert_int_equal(tp_group_init(&g, pool), 0);
	assert_int_equal(tp_group_spawn(&g, fail_5, &f), 0);
	while (test_load(&f.ran) == 0)
		test_sleep_us(100);
	assert_int_equal(tp_group_spawn(&g, wait_gate, &gate), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(tp_group_spawn(&g, count_run, &ran), 0);
	tp_group_cancel(&g);
	test_store(&gate, 1); /* the gate task may or may not have started: both are fine */
	assert_int_equal(tp_group_wait(&g), 5);
	tp_pool_destroy(pool);
	assert_true(ran <= 10);
}

/* Init once, spawn + wait twice; an error of the first round does not leak into the second. */
static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static void group_reusable_after_wait(void **state)
{
	tp_pool *pool = test_pool_new(2);
	static long runs[2][200];
	tp_group g;

	(void)state;
	memset(runs, 0, sizeof(runs));
	assert_int_equal(tp_group_init(&g, pool), 0);
	for (int i = 0; i < 200; i++)
		assert_int_equal(tp_group_spawn(&g, count_run, &runs[0][i]), 0);
	assert_int_equal(tp_group_spawn(&g, return_arg, (void *)(intptr_t)3), 0);
	assert_int_equal(tp_group_wait(&g), 3);
	for (int i = 0; i < 200; i++)
		assert_int_equal(test_load(&runs[0][i]), 1);
	for (int i = 0; i < 200; i++)
		assert_int_equal(tp_group_spawn(&g, count_run, &runs[1][i]), 0);
	assert_int_equal(tp_group_wait(&g), 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(test_load(&runs[0][i]), 1);
		assert_int_equal(test_load(&runs[1][i]), 1);
	}
	/* An empty group waits for nothing. */
	assert_int_equal(tp_group_wait(&g), 0);
	tp_pool_destroy(pool);
}

/* Nested groups: a task makes a group of 20 tasks, each of which makes a group of 30 leaves. */
enum {
	MID = 20,
	LEAVES = 30
};

struct nested {
	tp_pool *pool;
	long leaf_runs[MID * LEAVES]; /* atomic */
	long bad;		      /* atomic: a group call inside a task did not return 0 */
};

struct mid_arg {
	struct nested *n;
	int index;
};

static int mid_task(void *arg)
{
	struct mid_arg *m = arg;
	tp_group g;

	if (tp_group_init(&g, m->n->pool) != 0) {
		test_inc(&m->n->bad);
		return EIO;
	}
	for (int i = 0; i < LEAVES; i++)
		if (tp_group_spawn(&g, count_run, &m->n->leaf_runs[m->index * LEAVES + i]) != 0)
			test_inc(&m->n->bad);
	if (tp_group_wait(&g) != 0)
		test_inc(&m->n->bad);
	return 0;
}

static int top_task(void *arg)
{
	struct nested *n = arg;
	struct mid_arg m[MID];
	tp_group g;

	if (tp_group_init(&g, n->pool) != 0)
		return EIO;
	for (int i = 0; i < MID; i++) {
		m[i] = (struct mid_arg){ n, i };
		if (tp_group_spawn(&g, mid_task, &m[i]) != 0)
			test_inc(&n->bad);
	}
	return tp_group_wait(&g);
}

static void group_nested_inside_tasks(void **state)
{
	static const size_t threads[] = { 1, 2, 8 };
	static struct nested n;

	(void)state;
	for (size_t p = 0; p < 3; p++) {
		tp_pool *pool = test_pool_new(threads[p]);
		tp_future *f;

		memset(&n, 0, sizeof(n));
		n.pool = pool;
		f = tp_enqueue(pool, top_task, &n);
		assert_non_null(f);
		assert_int_equal(tp_future_wait(f), 0);
		tp_future_release(f);
		assert_int_equal(test_load(&n.bad), 0);
		for (int i = 0; i < MID * LEAVES; i++)
			assert_int_equal(test_load(&n.leaf_runs[i]), 1);
		tp_pool_destroy(pool);
	}
}

static void group_null_arguments_einval(void **state)
{
	tp_pool *pool = test_pool_new(1);
	long ran = 0;
	tp_group g;

	(void)state;
	assert_int_equal(tp_group_init(NULL, pool), EINVAL);
	assert_int_equal(tp_group_init(&g, NULL), EINVAL);
	assert_int_equal(tp_group_init(&g, pool), 0);
	assert_int_equal(tp_group_spawn(NULL, count_run, &ran), EINVAL);
	assert_int_equal(tp_group_spawn(&g, NULL, &ran), EINVAL);
	assert_int_equal(tp_group_wait(NULL), EINVAL);
	tp_group_cancel(NULL); /* void: must simply not crash */
	/* The group is still fine, and the refused spawns left nothing behind. */
	assert_int_equal(tp_group_spawn(&g, count_run, &ran), 0);
	assert_int_equal(tp_group_wait(&g), 0);
	assert_int_equal(test_load(&ran), 1);
	tp_pool_destroy(pool);
}

static void group_spawn_after_shutdown_eshutdown(void **state)
{
	tp_pool *pool = test_pool_new(1);
	long ran = 0;
	tp_group g;

	(void)state;
	assert_int_equal(tp_group_init(&g, pool), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_group_spawn(&g, count_run, &ran), ESHUTDOWN);
	assert_int_equal(tp_group_wait(&g), 0);
	tp_pool_destroy(pool);
	assert_int_equal(ran, 0);
}

/* ---------------------------------------------------------------------------------------------
 * tp_enqueue_batch
 * ------------------------------------------------------------------------------------------ */

enum {
	BATCH_N = 10000
};

struct item {
	long index;
	long runs; /* atomic */
	long out;
};

static int item_fn(void *arg)
{
	struct item *it = arg;

	test_inc(&it->runs);
	it->out = it->index * 2 + 1;
	return (int)(it->index % 40);
}

static void batch_each_task_runs_once_with_its_arg(void **state)
{
	static const size_t threads[] = { 1, 2, 8 };
	struct item *items = calloc(BATCH_N, sizeof(*items));
	void **args = calloc(BATCH_N, sizeof(*args));
	tp_future **out = calloc(BATCH_N, sizeof(*out));

	(void)state;
	assert_non_null(items);
	assert_non_null(args);
	assert_non_null(out);
	for (size_t p = 0; p < 3; p++) {
		tp_pool *pool = test_pool_new(threads[p]);

		for (long i = 0; i < BATCH_N; i++) {
			items[i] = (struct item){ i, 0, -1 };
			args[i] = &items[i];
			out[i] = NULL;
		}
		assert_int_equal(tp_enqueue_batch(pool, item_fn, args, BATCH_N, out), 0);
		for (long i = 0; i < BATCH_N; i++) {
			assert_non_null(out[i]);
			assert_int_equal(tp_future_wait(out[i]), (int)(i % 40));
			assert_int_equal(items[i].out, i * 2 + 1);
			tp_future_release(out[i]);
		}
		tp_pool_destroy(pool);
		for (long i = 0; i < BATCH_N; i++)
			assert_int_equal(items[i].runs, 1);
	}
	free(items);
	free(args);
	free(out);
}

/* A batch submitted from inside a task (a fork of n tasks), waited for there. */
struct batch_inside {
	tp_pool *pool;
	struct item items[100];
	int rc;
	long bad; /* waits that returned another code */
};

static int batch_inside_task(void *arg)
{
	struct batch_inside *b = arg;
	void *args[100];
	tp_future *out[100];

	for (int i = 0; i < 100; i++) {
		b->items[i] = (struct item){ i, 0, -1 };
		args[i] = &b->items[i];
	}
	b->rc = tp_enqueue_batch(b->pool, item_fn, args, 100, out);
	if (b->rc != 0)
		return 0;
	for (int i = 0; i < 100; i++) {
		if (tp_future_wait(out[i]) != i % 40)
			b->bad++;
		tp_future_release(out[i]);
	}
	return 0;
}

static void batch_from_inside_a_task(void **state)
{
	for (size_t threads = 1; threads <= 2; threads++) {
		tp_pool *pool = test_pool_new(threads);
		struct batch_inside *b = calloc(1, sizeof(*b));
		tp_future *f;

		assert_non_null(b);
		b->pool = pool;
		b->rc = -1;
		f = tp_enqueue(pool, batch_inside_task, b);
		assert_non_null(f);
		assert_int_equal(tp_future_wait(f), 0);
		tp_future_release(f);
		assert_int_equal(b->rc, 0);
		assert_int_equal(b->bad, 0);
		for (int i = 0; i < 100; i++) {
			assert_int_equal(test_load(&b->items[i].runs), 1);
			assert_int_equal(b->items[i].out, i * 2 + 1);
		}
		free(b);
		tp_pool_destroy(pool);
	}
	(void)state;
}

static void batch_bad_arguments(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct item it = { 0, 0, -1 };
	void *args[1] = { &it };
	tp_future *sentinel = (tp_future *)(uintptr_t)0x1, *out[1] = { sentinel };

	(void)state;
	assert_int_equal(tp_enqueue_batch(pool, item_fn, args, 0, out), 0);
	assert_int_equal(tp_enqueue_batch(NULL, item_fn, args, 1, out), EINVAL);
	assert_int_equal(tp_enqueue_batch(pool, NULL, args, 1, out), EINVAL);
	assert_int_equal(tp_enqueue_batch(pool, item_fn, NULL, 1, out), EINVAL);
	assert_int_equal(tp_enqueue_batch(pool, item_fn, args, 1, NULL), EINVAL);
	/* A failed call has no effect: out untouched, nothing ran (checked after the drain). */
	assert_true(out[0] == sentinel);
	tp_pool_destroy(pool);
	assert_int_equal(it.runs, 0);
}

static void batch_after_shutdown_eshutdown(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct item items[64];
	void *args[64];
	tp_future *out[64];

	(void)state;
	for (int i = 0; i < 64; i++) {
		items[i] = (struct item){ i, 0, -1 };
		args[i] = &items[i];
	}
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_enqueue_batch(pool, item_fn, args, 64, out), ESHUTDOWN);
	tp_pool_destroy(pool);
	/* Nothing ran (and no record leaked: see the valgrind setup). */
	for (int i = 0; i < 64; i++)
		assert_int_equal(items[i].runs, 0);
}

/*
 * "A function that fails has had no effect" (header conventions) and "all or nothing": a refused
 * batch must not leave pointers to its freed records in out[], where a caller that releases what
 * it finds there would free them twice.
 */
static void batch_refused_leaves_out_untouched(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct item items[64];
	void *args[64];
	tp_future *sentinel = (tp_future *)(uintptr_t)0x1, *out[64];
	int changed = 0;

	(void)state;
	for (int i = 0; i < 64; i++) {
		items[i] = (struct item){ i, 0, -1 };
		args[i] = &items[i];
		out[i] = sentinel;
	}
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_enqueue_batch(pool, item_fn, args, 64, out), ESHUTDOWN);
	tp_pool_destroy(pool);
	for (int i = 0; i < 64; i++)
		changed += out[i] != sentinel;
	if (changed != 0)
		fail_msg("a refused batch (ESHUTDOWN) wrote %d of 64 entries of out[]", changed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(group_all_tasks_run_once),
		cmocka_unit_test(group_first_error_wins),
		cmocka_unit_test(group_cancel_skips_pending_tasks),
		cmocka_unit_test(group_cancel_after_failure_keeps_the_error),
		cmocka_unit_test(group_reusable_after_wait),
		cmocka_unit_test(group_nested_inside_tasks),
		cmocka_unit_test(group_null_arguments_einval),
		cmocka_unit_test(group_spawn_after_shutdown_eshutdown),
		cmocka_unit_test(batch_each_task_runs_once_with_its_arg),
		cmocka_unit_test(batch_from_inside_a_task),
		cmocka_unit_test(batch_bad_arguments),
		cmocka_unit_test(batch_after_shutdown_eshutdown),
		cmocka_unit_test(batch_refused_leaves_out_untouched),
	};

	test_watchdog(110);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
