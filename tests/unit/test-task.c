/*
 * test-task.c - typed tasks (thread_pool_task.h): results against the serial computation on pools
 * of 1, 2 and 8 threads, every arity and argument kind, many children of one task joined newest
 * first, deep recursion, every task exactly once under randomised timing, TP_RUN from outside,
 * from a worker and from inside a typed task with spawns outstanding, typed tasks that wait for
 * futures and spawn frames meanwhile (the runtime then finds the stack's top by itself), bad
 * input, and the stack overflow's message.
 *
 * cmocka is not thread-safe: tasks only record what they saw (atomic counters, results); the test
 * thread asserts after TP_RUN returns.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"
#include "thread_pool_task.h"

static long fib_serial(int n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* fib(27) (318k spawns) normally; less under valgrind (TP_STRESS_SCALE < 1). */
static int fib_n(void)
{
	return test_scaled(100) < 100 ? 18 : 27;
}

/* ---- fib: spawn fib(n-1), call fib(n-2), join ---- */

TP_TASK_1(long, fib, int, n)
{
	long x, y;

	if (n < 2)
		return n;
	TP_SPAWN(fib, n - 1);
	y = TP_CALL(fib, n - 2);
	x = TP_JOIN(fib);
	return x + y;
}

static void fib_on(size_t threads)
{
	tp_pool *pool = test_pool_new(threads);
	int n = fib_n();
	long r = -1;
	double t0 = test_now_ms();

	assert_int_equal(TP_RUN(pool, fib, &r, n), 0);
	print_message("# fib(%d) with typed tasks on %zu threads: %.1f ms\n", n, threads,
		      test_now_ms() - t0);
	assert_int_equal(r, fib_serial(n));
	/* Again, on the same stacks: every slot went back to EMPTY. */
	assert_int_equal(TP_RUN(pool, fib, &r, 15), 0);
	assert_int_equal(r, fib_serial(15));
	tp_pool_destroy(pool);
}

static void task_fib_matches_serial_1_thread(void **state)
{
	(void)state;
	fib_on(1);
}

static void task_fib_matches_serial_2_threads(void **state)
{
	(void)state;
	fib_on(2);
}

static void task_fib_matches_serial_8_threads(void **state)
{
	(void)state;
	fib_on(8);
}

/* ---- every arity, and arguments and results of several kinds ---- */

struct pair {
	int a;
	double b;
};

static long zero_calls;

TP_TASK_0(int, zero)
{
	test_inc(&zero_calls);
	return 7;
}

TP_TASK_2(struct pair, two, int, a, double, b)
{
	return (struct pair){ a * 2, b / 2 };
}

TP_TASK_3(double, three, const double *, v, size_t, n, struct pair, scale)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i];
	return s * scale.b + scale.a;
}

TP_TASK_4(uint64_t, four, uint8_t, a, uint16_t, b, uint32_t, c, uint64_t, d)
{
	return (uint64_t)a + b + c + d;
}

/* Spawns one of each, then joins them newest first. */
TP_TASK_1(int, arities, int, unused)
{
	static const double v[] = { 1, 2, 3, 4 };
	struct pair p;
	double d;
	uint64_t u;
	int z, ok;

	(void)unused;
	TP_SPAWN0(zero);
	TP_SPAWN(two, 21, 5.0);
	TP_SPAWN(three, v, 4, ((struct pair){ 1, 0.5 }));
	TP_SPAWN(four, 200, 60000, 4000000000u, UINT64_C(1) << 40);
	u = TP_JOIN(four);
	d = TP_JOIN(three);
	p = TP_JOIN(two);
	z = TP_JOIN(zero);
	ok = u == 200u + 60000u + 4000000000u + (UINT64_C(1) << 40);
	ok = ok && d == 6.0 && p.a == 42 && p.b == 2.5 && z == 7 && TP_CALL0(zero) == 7;
	return ok;
}

static void task_every_arity(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct pair p;
	int ok = 0, z = 0;

	(void)state;
	test_store(&zero_calls, 0);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(TP_RUN(pool, arities, &ok, 0), 0);
		assert_int_equal(ok, 1);
	}
	assert_int_equal(test_load(&zero_calls), 400);
	assert_int_equal(TP_RUN0(pool, zero, &z), 0);
	assert_int_equal(z, 7);
	assert_int_equal(TP_RUN(pool, two, &p, 4, 3.0), 0);
	assert_int_equal(p.a, 8);
	assert_true(p.b == 1.5);
	tp_pool_destroy(pool);
}

/* ---- many children of one task, each run exactly once ---- */

#define MANY 300
static long many_runs[MANY];

TP_TASK_2(long, child, int, i, int, spin)
{
	test_inc(&many_runs[i]);
	for (volatile int k = 0; k < spin; k++)
		;
	return i;
}

TP_TASK_1(long, parent, int, spin)
{
	long sum = 0;

	for (int i = 0; i < MANY; i++)
		TP_SPAWN(child, i, spin);
	for (int i = MANY - 1; i >= 0; i--) {
		long got = TP_JOIN(child);

		/* Newest first: the join returns child i's own result. */
		if (got != i)
			return -1;
		sum += got;
	}
	return sum;
}

static void many_on(size_t threads)
{
	tp_pool *pool = test_pool_new(threads);
	long rounds = test_scaled(40);

	for (long r = 0; r < rounds; r++) {
		long sum = 0;

		memset(many_runs, 0, sizeof(many_runs));
		assert_int_equal(TP_RUN(pool, parent, &sum, (int)(r % 4) * 500), 0);
		assert_int_equal(sum, (long)MANY * (MANY - 1) / 2);
		for (int i = 0; i < MANY; i++)
			assert_int_equal(test_load(&many_runs[i]), 1);
	}
	tp_pool_destroy(pool);
}

static void task_many_children_1_thread(void **state)
{
	(void)state;
	many_on(1);
}

static void task_many_children_2_threads(void **state)
{
	(void)state;
	many_on(2);
}

static void task_many_children_8_threads(void **state)
{
	(void)state;
	many_on(8);
}

/* ---- a deep chain: each level spawns its rest and joins it ---- */

TP_TASK_1(long, chain, int, depth)
{
	long below;

	if (depth == 0)
		return 0;
	TP_SPAWN(chain, depth - 1);
	below = TP_JOIN(chain);
	return below + 1;
}

static void task_deep_chain(void **state)
{
	tp_pool *pool = test_pool_new(2);
	long r = 0;

	(void)state;
	assert_int_equal(TP_RUN(pool, chain, &r, 5000), 0);
	assert_int_equal(r, 5000);
	tp_pool_destroy(pool);
}

/* ---- an irregular tree under jitter: every node exactly once ---- */

#define TREE_NODES 4096
static long tree_runs[TREE_NODES];

/* Node i has children 2i+1 and 2i+2 (heap order) below TREE_NODES; returns its subtree's size. */
TP_TASK_2(long, tree, int, i, uint64_t, seed)
{
	uint64_t s = seed ^ (uint64_t)i;
	long n = 1;
	int kids = 0;

	test_inc(&tree_runs[i]);
	test_jitter(&s);
	for (int c = 2 * i + 1; c <= 2 * i + 2 && c < TREE_NODES; c++) {
		TP_SPAWN(tree, c, seed);
		kids++;
	}
	test_jitter(&s);
	while (kids-- > 0)
		n += TP_JOIN(tree);
	return n;
}

static void task_every_task_runs_once_under_jitter(void **state)
{
	tp_pool *pool = test_pool_new(4);
	long rounds = test_scaled(20);

	(void)state;
	for (long r = 0; r < rounds; r++) {
		long n = 0;

		memset(tree_runs, 0, sizeof(tree_runs));
		assert_int_equal(TP_RUN(pool, tree, &n, 0, (uint64_t)r * 7919), 0);
		assert_int_equal(n, TREE_NODES);
		for (int i = 0; i < TREE_NODES; i++)
			assert_int_equal(test_load(&tree_runs[i]), 1);
	}
	tp_pool_destroy(pool);
}

/* ---- TP_RUN from a worker, and from inside a typed task with spawns outstanding ---- */

static tp_pool *nested_pool;

TP_TASK_1(long, nested, int, n)
{
	long inner = -1, a, b;

	/* Outstanding spawns below the top while TP_RUN finds it by itself. */
	TP_SPAWN(fib, n);
	TP_SPAWN(fib, n + 1);
	if (TP_RUN(nested_pool, fib, &inner, n + 2) != 0)
		return -1;
	b = TP_JOIN(fib);
	a = TP_JOIN(fib);
	return a + b + inner;
}

static int nested_record(void *arg)
{
	long *out = arg;

	return TP_RUN(nested_pool, nested, out, 12);
}

static void task_run_nested(void **state)
{
	long r = 0, want = fib_serial(12) + fib_serial(13) + fib_serial(14);

	(void)state;
	nested_pool = test_pool_new(2);
	for (int i = 0; i < 50; i++) {
		r = 0;
		assert_int_equal(TP_RUN(nested_pool, nested, &r, 12), 0);
		assert_int_equal(r, want);
		/* From a worker running an ordinary task: TP_RUN is a call there. */
		r = 0;
		assert_int_equal(run_in_pool(nested_pool, nested_record, &r), 0);
		assert_int_equal(r, want);
	}
	tp_pool_destroy(nested_pool);
	nested_pool = NULL;
}

/* ---- typed tasks that wait for futures and spawn frames with their own spawns outstanding ---- */

static tp_pool *mixed_pool;

static int fib_record(void *arg)
{
	long *r = arg;

	*r = fib_serial(15);
	return 0;
}

static int frame_fn(void *arg)
{
	long *r = arg;

	*r = fib_serial(10);
	return 0;
}

TP_TASK_1(long, mixed, int, depth)
{
	long a, b, c = 0, d = 0;
	tp_future *f;
	tp_frame t;

	if (depth == 0)
		return 1;
	TP_SPAWN(mixed, depth - 1);
	TP_SPAWN(fib, 16);
	/* While this waits, the worker may run typed slots stolen from others on top of ours. */
	f = tp_enqueue(mixed_pool, fib_record, &c);
	if (f == NULL || tp_future_wait(f) != 0)
		return -1000000;
	tp_future_release(f);
	tp_spawn(&t, frame_fn, &d);
	b = TP_CALL(mixed, depth - 1);
	if (tp_join(&t) != 0)
		return -1000000;
	a = TP_JOIN(fib);
	a += TP_JOIN(mixed);
	return a + b + (c == fib_serial(15)) + (d == fib_serial(10)) - 2;
}

static long mixed_serial(int depth)
{
	return depth == 0 ? 1 : 2 * mixed_serial(depth - 1) + fib_serial(16);
}

static void task_mixed_with_futures_and_frames(void **state)
{
	long r = 0;

	(void)state;
	mixed_pool = test_pool_new(3);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(TP_RUN(mixed_pool, mixed, &r, 6), 0);
		assert_int_equal(r, mixed_serial(6));
	}
	tp_pool_destroy(mixed_pool);
	mixed_pool = NULL;
}

/* ---- bad input ---- */

static void task_run_bad_input(void **state)
{
	tp_pool *pool = test_pool_new(1);
	long r = 5;

	(void)state;
	assert_int_equal(TP_RUN((tp_pool *)NULL, fib, &r, 3), EINVAL);
	assert_int_equal(TP_RUN(pool, fib, (long *)NULL, 3), EINVAL);
	assert_int_equal(r, 5);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(TP_RUN(pool, fib, &r, 3), ESHUTDOWN);
	assert_int_equal(r, 5);
	tp_pool_destroy(pool);
}

/* ---- overflow: more spawns outstanding than slots ends the process with a message ---- */

TP_TASK_1(int, flood, long, n)
{
	for (long i = 0; i < n; i++)
		TP_SPAWN0(zero);
	for (long i = 0; i < n; i++)
		(void)TP_JOIN(zero);
	return 0;
}

static void task_overflow_aborts_with_message(void **state)
{
	int fds[2], status;
	pid_t pid;
	char buf[512];
	ssize_t len;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		tp_pool *pool;
		int r;

		dup2(fds[1], STDERR_FILENO);
		pool = tp_pool_create(1, NULL);
		if (pool == NULL)
			_exit(10);
		(void)TP_RUN(pool, flood, &r, (long)TP_TASK_SLOTS + 1);
		_exit(11); /* not reached */
	}
	close(fds[1]);
	len = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_true(len > 0);
	buf[len] = '\0';
	assert_non_null(strstr(buf, "task stack overflow"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(task_fib_matches_serial_1_thread),
		cmocka_unit_test(task_fib_matches_serial_2_threads),
		cmocka_unit_test(task_fib_matches_serial_8_threads),
		cmocka_unit_test(task_every_arity),
		cmocka_unit_test(task_many_children_1_thread),
		cmocka_unit_test(task_many_children_2_threads),
		cmocka_unit_test(task_many_children_8_threads),
		cmocka_unit_test(task_deep_chain),
		cmocka_unit_test(task_every_task_runs_once_under_jitter),
		cmocka_unit_test(task_run_nested),
		cmocka_unit_test(task_mixed_with_futures_and_frames),
		cmocka_unit_test(task_run_bad_input),
		cmocka_unit_test(task_overflow_aborts_with_message),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
