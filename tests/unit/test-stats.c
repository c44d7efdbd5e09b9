/*
 * test-stats.c - tp_pool_stats() through the public API: after tp_pool_wait_idle() the counters
 * add up (tasks run, forks from inside tasks, tasks taken from the injection queue), per_worker
 * is filled up to per_worker_len and sums to total, queued and running while tasks block,
 * parks and wake-ups after idle periods, counters never go back, EINVAL.
 *
 * cmocka is not thread-safe: tasks only count (atomics); the test thread asserts after waiting.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

/* Blocks until *gate becomes non-zero. */
static int wait_gate(void *arg)
{
	long *gate = arg;

	while (test_load(gate) == 0)
		test_sleep_us(100);
	return 0;
}

static void await_running(tp_future *f)
{
	double end = test_now_ms() + 20000;

	while (tp_future_state(f) != TP_FUTURE_RUNNING) {
		assert_true(test_now_ms() < end);
		test_sleep_us(100);
	}
}

static long records_ran; /* atomic: tasks (records) that ran */
static long frames_ran;	 /* atomic: tp_spawn frames that ran */

static int count_task(void *arg)
{
	(void)arg;
	test_inc(&records_ran);
	return 0;
}

static int count_frame(void *arg)
{
	(void)arg;
	test_inc(&frames_ran);
	return 0;
}

static tp_stats read_stats(tp_pool *pool, tp_worker_stats *per, size_t len)
{
	tp_stats s;

	memset(&s, 0x5A, sizeof(s));
	s.per_worker = per;
	s.per_worker_len = len;
	assert_int_equal(tp_pool_stats(pool, &s), 0);
	return s;
}

static void print_stats(const char *what, const tp_stats *s)
{
	printf("# %s: workers %zu queued %llu running %llu tasks %llu forks %llu steals %llu "
	       "steal_fails %llu injected %llu parks %llu wakeups %llu\n",
	       what, s->workers, (unsigned long long)s->queued, (unsigned long long)s->running,
	       (unsigned long long)s->total.tasks, (unsigned long long)s->total.forks,
	       (unsigned long long)s->total.steals, (unsigned long long)s->total.steal_fails,
	       (unsigned long long)s->total.injected, (unsigned long long)s->total.parks,
	       (unsigned long long)s->total.wakeups);
	fflush(stdout);
}

static void stats_einval(void **state)
{
	tp_pool *pool = test_pool_new(1);
	tp_stats s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(tp_pool_stats(NULL, &s), EINVAL);
	assert_int_equal(tp_pool_stats(pool, NULL), EINVAL);
	assert_int_equal(tp_pool_stats(NULL, NULL), EINVAL);
	tp_pool_destroy(pool);
}

/* A fresh pool has run nothing. */
static void stats_fresh_pool(void **state)
{
	tp_pool *pool = test_pool_new(3);
	tp_stats s = read_stats(pool, NULL, 0);

	(void)state;
	assert_int_equal(s.workers, 3);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.running, 0);
	assert_int_equal(s.total.tasks, 0);
	assert_int_equal(s.total.forks, 0);
	assert_int_equal(s.total.injected, 0);
	assert_int_equal(s.total.steals, 0);
	assert_int_equal(s.per_worker_len, 0);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * The counters add up after tp_pool_wait_idle()
 * ------------------------------------------------------------------------------------------ */

enum {
	FORK_ENQUEUE = 5,
	FORK_SUBMIT = 5,
	FORK_GROUP = 3,
	FORKS_PER_TASK = FORK_ENQUEUE + FORK_SUBMIT + FORK_GROUP,
	FRAMES_PER_TASK = 2
};

static int forking_task(void *arg)
{
	tp_pool *pool = arg;
	tp_group g;
	tp_frame t[FRAMES_PER_TASK];

	test_inc(&records_ran);
	for (int i = 0; i < FORK_ENQUEUE; i++)
		tp_future_release(tp_enqueue(pool, count_task, NULL));
	for (int i = 0; i < FORK_SUBMIT; i++)
		(void)tp_submit(pool, count_task, NULL);
	(void)tp_group_init(&g, pool);
	for (int i = 0; i < FORK_GROUP; i++)
		(void)tp_group_spawn(&g, count_task, NULL);
	/* Frames are not forks, and not tasks in these counts. */
	for (int i = 0; i < FRAMES_PER_TASK; i++)
		tp_spawn(&t[i], count_frame, NULL);
	test_sleep_us(50);
	for (int i = FRAMES_PER_TASK - 1; i >= 0; i--)
		(void)tp_join(&t[i]);
	(void)tp_group_wait(&g);
	return 0;
}

static void check_sum(const tp_stats *s)
{
	tp_worker_stats sum;

	memset(&sum, 0, sizeof(sum));
	for (size_t i = 0; i < s->per_worker_len; i++) {
		sum.tasks += s->per_worker[i].tasks;
		sum.forks += s->per_worker[i].forks;
		sum.steals += s->per_worker[i].steals;
		sum.steal_fails += s->per_worker[i].steal_fails;
		sum.injected += s->per_worker[i].injected;
		sum.parks += s->per_worker[i].parks;
		sum.wakeups += s->per_worker[i].wakeups;
	}
	assert_int_equal(sum.tasks, s->total.tasks);
	assert_int_equal(sum.forks, s->total.forks);
	assert_int_equal(sum.steals, s->total.steals);
	assert_int_equal(sum.steal_fails, s->total.steal_fails);
	assert_int_equal(sum.injected, s->total.injected);
	assert_int_equal(sum.parks, s->total.parks);
	assert_int_equal(sum.wakeups, s->total.wakeups);
}

static void stats_add_up_after_idle(void **state)
{
	enum {
		A = 200, /* tp_enqueue from outside */
		B = 200, /* tp_submit from outside */
		C = 100, /* one batch from outside */
		D = 50,	 /* a group from outside */
		E = 20	 /* forking tasks, tp_submit from outside */
	};
	static tp_future *fa[A], *fc[C];
	static void *args[C];
	tp_worker_stats per[2];
	long rounds = test_scaled(5);
	tp_pool *pool = test_pool_new(2);
	uint64_t outside = 0, forks = 0;

	(void)state;
	test_store(&records_ran, 0);
	test_store(&frames_ran, 0);
	for (long r = 0; r < rounds; r++) {
		tp_group g;
		tp_stats s;

		for (int i = 0; i < A; i++) {
			fa[i] = tp_enqueue(pool, count_task, NULL);
			assert_non_null(fa[i]);
		}
		for (int i = 0; i < B; i++)
			assert_int_equal(tp_submit(pool, count_task, NULL), 0);
		assert_int_equal(tp_enqueue_batch(pool, count_task, args, C, fc), 0);
		assert_int_equal(tp_group_init(&g, pool), 0);
		for (int i = 0; i < D; i++)
			assert_int_equal(tp_group_spawn(&g, count_task, NULL), 0);
		for (int i = 0; i < E; i++)
			assert_int_equal(tp_submit(pool, forking_task, pool), 0);
		assert_int_equal(tp_group_wait(&g), 0);
		for (int i = 0; i < A; i++)
			tp_future_release(fa[i]);
		for (int i = 0; i < C; i++)
			tp_future_release(fc[i]);
		outside += A + B + C + D + E;
		forks += (uint64_t)E * FORKS_PER_TASK;

		assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
		s = read_stats(pool, per, 2);
		print_stats("after idle", &s);
		assert_int_equal(s.workers, 2);
		assert_int_equal(s.per_worker_len, 2);
		assert_int_equal(s.queued, 0);
		assert_int_equal(s.running, 0);
		assert_int_equal(test_load(&records_ran), (long)(outside + forks));
		assert_int_equal(test_load(&frames_ran),
				 (long)((uint64_t)E * (r + 1) * FRAMES_PER_TASK));
		assert_int_equal(s.total.tasks, outside + forks);
		assert_int_equal(s.total.forks, forks);
		/* Every outside submission went through the injection queue, taken once. */
		assert_int_equal(s.total.injected, outside);
		check_sum(&s);
	}
	tp_pool_destroy(pool);
}

/* One task from outside that forks ten: exact numbers, per worker too. */
static int fork_ten(void *arg)
{
	tp_pool *pool = arg;

	test_inc(&records_ran);
	for (int i = 0; i < 10; i++)
		tp_future_release(tp_enqueue(pool, count_task, NULL));
	return 0;
}

static void stats_forks_and_injected_exact(void **state)
{
	tp_worker_stats per[1];
	tp_pool *pool = test_pool_new(1);
	tp_stats s;

	(void)state;
	test_store(&records_ran, 0);
	assert_int_equal(tp_submit(pool, fork_ten, pool), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	s = read_stats(pool, per, 1);
	assert_int_equal(test_load(&records_ran), 11);
	assert_int_equal(s.total.tasks, 11);
	assert_int_equal(s.total.forks, 10);
	assert_int_equal(s.total.injected, 1);
	assert_int_equal(s.total.steals, 0); /* one worker: nobody to steal from */
	assert_int_equal(per[0].tasks, 11);
	assert_int_equal(per[0].forks, 10);
	assert_int_equal(per[0].injected, 1);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * per_worker / per_worker_len
 * ------------------------------------------------------------------------------------------ */

static bool untouched(const tp_worker_stats *w)
{
	const unsigned char *p = (const unsigned char *)w;

	for (size_t i = 0; i < sizeof(*w); i++)
		if (p[i] != 0xAB)
			return false;
	return true;
}

static void stats_per_worker_len(void **state)
{
	enum {
		N = 4,
		ROOM = 8
	};
	tp_worker_stats buf[ROOM], exact[N];
	tp_pool *pool = test_pool_new(N);
	tp_stats s;
	size_t lens[] = { 0, 1, 2, N, N + 1, ROOM };

	(void)state;
	for (int i = 0; i < 400; i++)
		assert_int_equal(tp_submit(pool, count_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	s = read_stats(pool, exact, N);
	assert_int_equal(s.per_worker_len, N);
	assert_ptr_equal(s.per_worker, exact);
	check_sum(&s);

	/* NULL per_worker: nothing written, whatever the length says. */
	s = read_stats(pool, NULL, ROOM);
	assert_int_equal(s.per_worker_len, 0);
	assert_null(s.per_worker);
	assert_int_equal(s.workers, N);

	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t want = lens[k] < N ? lens[k] : N;

		memset(buf, 0xAB, sizeof(buf));
		s = read_stats(pool, buf, lens[k]);
		assert_int_equal(s.workers, N);
		assert_int_equal(s.per_worker_len, want);
		for (size_t i = 0; i < want; i++) {
			assert_false(untouched(&buf[i]));
			/* The pool is quiet: these do not move any more. */
			assert_int_equal(buf[i].tasks, exact[i].tasks);
			assert_int_equal(buf[i].forks, exact[i].forks);
			assert_int_equal(buf[i].injected, exact[i].injected);
		}
		for (size_t i = want; i < ROOM; i++)
			assert_true(untouched(&buf[i]));
		if (want == N)
			check_sum(&s);
	}
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * queued and running
 * ------------------------------------------------------------------------------------------ */

static void stats_queued_and_running_while_blocked(void **state)
{
	long gate = 0;
	tp_future *blocker[2], *queued[5];
	tp_pool *pool = test_pool_new(2);
	tp_stats s;

	(void)state;
	test_store(&records_ran, 0);
	for (int i = 0; i < 2; i++) {
		blocker[i] = tp_enqueue(pool, wait_gate, &gate);
		assert_non_null(blocker[i]);
	}
	for (int i = 0; i < 2; i++)
		await_running(blocker[i]);
	for (int i = 0; i < 5; i++) {
		queued[i] = tp_enqueue(pool, count_task, NULL);
		assert_non_null(queued[i]);
	}
	/* Both workers are blocked: nothing moves until the gate opens. */
	for (int k = 0; k < 3; k++) {
		s = read_stats(pool, NULL, 0);
		if (s.running != 2 || s.queued != 5)
			print_stats("2 blocked + 5 queued", &s);
		assert_int_equal(s.running, 2);
		assert_int_equal(s.queued, 5);
		test_sleep_us(5000);
	}
	test_store(&gate, 1);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	s = read_stats(pool, NULL, 0);
	assert_int_equal(s.running, 0);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.total.tasks, 7);
	assert_int_equal(test_load(&records_ran), 5);
	for (int i = 0; i < 2; i++)
		tp_future_release(blocker[i]);
	for (int i = 0; i < 5; i++)
		tp_future_release(queued[i]);
	tp_pool_destroy(pool);
}

/* queued: "tasks accepted, neither started nor cancelled". */
/* A cancelled task counts as queued until a worker takes it off its queue (the header says so:
 * the canceller may not touch the pool once its cancel is published, so nothing counts it
 * there), and not at all once the workers are past it. */
static void stats_queued_counts_cancelled_until_taken(void **state)
{
	long gate = 0;
	tp_future *blocker, *queued[5];
	tp_pool *pool = test_pool_new(1);
	tp_stats s, s2;

	(void)state;
	blocker = tp_enqueue(pool, wait_gate, &gate);
	assert_non_null(blocker);
	await_running(blocker);
	for (int i = 0; i < 5; i++) {
		queued[i] = tp_enqueue(pool, count_task, NULL);
		assert_non_null(queued[i]);
	}
	s = read_stats(pool, NULL, 0);
	assert_int_equal(s.queued, 5);
	assert_int_equal(s.running, 1);
	assert_true(tp_future_cancel(queued[1]));
	assert_true(tp_future_cancel(queued[3]));
	s = read_stats(pool, NULL, 0);
	if (s.queued != 5)
		print_stats("1 blocked, 5 queued of which 2 cancelled", &s);
	test_store(&gate, 1);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	s2 = read_stats(pool, NULL, 0);
	tp_future_release(blocker);
	for (int i = 0; i < 5; i++)
		tp_future_release(queued[i]);
	tp_pool_destroy(pool);
	assert_int_equal(s.running, 1);
	assert_int_equal(s.queued, 5);
	assert_int_equal(s2.queued, 0);
	assert_int_equal(s2.running, 0);
	assert_int_equal(s2.total.tasks, 4); /* the blocker and the three not cancelled */
}

struct nohelp_call {
	tp_future *f;
	int rc;
	pthread_t thread;
};

static void *nohelp_thread(void *arg)
{
	struct nohelp_call *c = arg;

	c->rc = tp_future_wait_nohelp(c->f, NULL);
	return NULL;
}

/* A task that tp_future_wait_nohelp() runs on another thread has started: it is not queued, and
 * it does not run on a worker. */
static void stats_task_run_by_nohelp_is_not_queued(void **state)
{
	long gate = 0, gate2 = 0;
	struct nohelp_call call;
	tp_future *blocker;
	tp_pool *pool = test_pool_new(1);
	tp_stats s;

	(void)state;
	blocker = tp_enqueue(pool, wait_gate, &gate);
	assert_non_null(blocker);
	await_running(blocker);
	call.f = tp_enqueue(pool, wait_gate, &gate2);
	call.rc = -1;
	assert_non_null(call.f);
	assert_int_equal(pthread_create(&call.thread, NULL, nohelp_thread, &call), 0);
	await_running(call.f);
	s = read_stats(pool, NULL, 0);
	if (s.queued != 0 || s.running != 1)
		print_stats("1 blocked on the worker, 1 running on an outside thread", &s);
	test_store(&gate2, 1);
	pthread_join(call.thread, NULL);
	test_store(&gate, 1);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(call.rc, 0);
	tp_future_release(blocker);
	tp_future_release(call.f);
	tp_pool_destroy(pool);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.running, 1);
}

/* ---------------------------------------------------------------------------------------------
 * Parks and wake-ups; counters never go back
 * ------------------------------------------------------------------------------------------ */

static void stats_parks_after_idle_period(void **state)
{
	enum {
		N = 2
	};
	tp_worker_stats per[N];
	tp_pool *pool = test_pool_new(N);
	tp_stats s, s2;

	(void)state;
	assert_int_equal(tp_submit(pool, count_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	test_sleep_us(100 * 1000);
	s = read_stats(pool, per, N);
	assert_true(s.total.parks > 0);
	for (size_t i = 0; i < N; i++)
		assert_true(per[i].parks >= 1);
	/* A task for a sleeping pool wakes a worker. */
	assert_int_equal(tp_submit(pool, count_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	test_sleep_us(50 * 1000);
	s2 = read_stats(pool, NULL, 0);
	assert_true(s2.total.wakeups >= 1);
	assert_true(s2.total.parks > s.total.parks);
	tp_pool_destroy(pool);
}

struct busy {
	tp_pool *pool;
	long stop; /* atomic */
	pthread_t thread;
};

static void *busy_submitter(void *arg)
{
	struct busy *b = arg;
	uint64_t rng = 77;

	while (!test_load(&b->stop)) {
		if (test_rand(&rng) % 2)
			(void)tp_submit(b->pool, fork_ten, b->pool);
		else
			(void)tp_submit(b->pool, count_task, NULL);
		test_jitter(&rng);
		if (test_rand(&rng) % 64 == 0)
			test_sleep_us(2000); /* let the workers park now and then */
	}
	return NULL;
}

static void stats_never_go_back(void **state)
{
	enum {
		N = 3
	};
	struct busy b = { NULL, 0, 0 };
	tp_worker_stats prev[N], cur[N];
	long reads = test_scaled(3000);
	tp_stats s;

	(void)state;
	b.pool = test_pool_new(N);
	memset(prev, 0, sizeof(prev));
	assert_int_equal(pthread_create(&b.thread, NULL, busy_submitter, &b), 0);
	for (long k = 0; k < reads; k++) {
		s = read_stats(b.pool, cur, N);
		assert_int_equal(s.per_worker_len, N);
		for (size_t i = 0; i < N; i++) {
			assert_true(cur[i].tasks >= prev[i].tasks);
			assert_true(cur[i].forks >= prev[i].forks);
			assert_true(cur[i].steals >= prev[i].steals);
			assert_true(cur[i].steal_fails >= prev[i].steal_fails);
			assert_true(cur[i].injected >= prev[i].injected);
			assert_true(cur[i].parks >= prev[i].parks);
			assert_true(cur[i].wakeups >= prev[i].wakeups);
		}
		memcpy(prev, cur, sizeof(prev));
		if (k % 16 == 0)
			test_sleep_us(100);
	}
	test_store(&b.stop, 1);
	pthread_join(b.thread, NULL);
	assert_int_equal(tp_pool_wait_idle(b.pool, NULL), 0);
	s = read_stats(b.pool, cur, N);
	print_stats("after the busy period", &s);
	assert_int_equal(s.queued, 0);
	assert_int_equal(s.running, 0);
	check_sum(&s);
	tp_pool_destroy(b.pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stats_einval),
		cmocka_unit_test(stats_fresh_pool),
		cmocka_unit_test(stats_add_up_after_idle),
		cmocka_unit_test(stats_forks_and_injected_exact),
		cmocka_unit_test(stats_per_worker_len),
		cmocka_unit_test(stats_queued_and_running_while_blocked),
		cmocka_unit_test(stats_queued_counts_cancelled_until_taken),
		cmocka_unit_test(stats_task_run_by_nohelp_is_not_queued),
		cmocka_unit_test(stats_parks_after_idle_period),
		cmocka_unit_test(stats_never_go_back),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
