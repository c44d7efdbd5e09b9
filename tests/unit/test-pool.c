/*
 * test-pool.c - pools through the public API: sizes and the default thread count, outside
 * submissions, failing tasks, several pools, and what the pool logs at each level.
 */
#include <pthread.h>
#include <sched.h>

#include "../common.h"
#include "thread_pool.h"

static int count_run(void *arg)
{
	test_inc(arg);
	return 0;
}

static void pool_create_has_requested_size(void **state)
{
	(void)state;
	for (size_t n = 1; n <= 8; n *= 2) {
		tp_pool *pool = tp_pool_create(n, NULL);

		assert_non_null(pool);
		assert_int_equal(tp_pool_size(pool), n);
		tp_pool_destroy(pool);
	}
}

static void pool_default_size_follows_affinity(void **state)
{
	cpu_set_t old, one;
	tp_pool *pool;

	(void)state;
	unsetenv("TP_NUM_THREADS");
	assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
	pool = tp_pool_create(0, NULL);
	assert_int_equal(tp_pool_size(pool), (size_t)CPU_COUNT(&old));
	tp_pool_destroy(pool);
	/* Restricted to one CPU, the default is one thread, whatever the machine has online. */
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &old)) {
			CPU_SET(c, &one);
			break;
		}
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	pool = tp_pool_create(0, NULL);
	assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
	assert_int_equal(tp_pool_size(pool), 1);
	tp_pool_destroy(pool);
}

static void pool_env_overrides_default_at_each_call(void **state)
{
	tp_pool *pool;

	(void)state;
	setenv("TP_NUM_THREADS", "3", 1);
	pool = tp_pool_create(0, NULL);
	assert_int_equal(tp_pool_size(pool), 3);
	tp_pool_destroy(pool);
	setenv("TP_NUM_THREADS", "5", 1);
	pool = tp_pool_create(0, NULL);
	assert_int_equal(tp_pool_size(pool), 5);
	tp_pool_destroy(pool);
	/* An explicit count wins over the variable. */
	pool = tp_pool_create(2, NULL);
	assert_int_equal(tp_pool_size(pool), 2);
	tp_pool_destroy(pool);
	/* A malformed value is ignored (with a warning, on a quiet logger here): one per CPU. */
	setenv("TP_NUM_THREADS", "lots", 1);
	{
		tp_logger *quiet = tp_logger_create(TP_LOG_OFF);
		cpu_set_t cpus;

		assert_non_null(quiet);
		assert_int_equal(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
		pool = tp_pool_create(0, quiet);
		assert_non_null(pool);
		assert_int_equal(tp_pool_size(pool), (size_t)CPU_COUNT(&cpus));
		tp_pool_destroy(pool);
		tp_logger_destroy(quiet);
	}
	unsetenv("TP_NUM_THREADS");
}

/*
 * TP_NUM_THREADS: decimal digits with optional white space around them, in [0, 1024]; 0, empty
 * or unset means one worker per CPU the process may use. Anything else is ignored: one WARNING
 * line on the pool's logger naming the variable and the value, and one worker per CPU (never
 * EINVAL). Accepted values log no warning.
 */
struct warnings {
	pthread_mutex_t lock;
	int lines;  /* WARNING lines */
	int naming; /* of which: name TP_NUM_THREADS and the value */
	int others; /* lines at other levels */
	const char *value;
};

static void warning_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct warnings *w = user;

	(void)len;
	pthread_mutex_lock(&w->lock);
	if (level == TP_LOG_WARNING) {
		w->lines++;
		if (strstr(line, "TP_NUM_THREADS") != NULL && strstr(line, w->value) != NULL)
			w->naming++;
	} else {
		w->others++;
	}
	pthread_mutex_unlock(&w->lock);
}

/* Creates a pool of 0 threads with TP_NUM_THREADS=value; returns its size, and the warnings. */
static size_t size_with_env(const char *value, struct warnings *w)
{
	tp_logger *log = tp_logger_create(TP_LOG_WARNING);
	tp_pool *pool;
	size_t n;

	assert_non_null(log);
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->value = value;
	assert_int_equal(tp_logger_set_sink(log, warning_sink, w), 0);
	assert_int_equal(setenv("TP_NUM_THREADS", value, 1), 0);
	errno = 0;
	pool = tp_pool_create(0, log);
	if (pool == NULL)
		fail_msg("TP_NUM_THREADS=\"%s\": tp_pool_create failed, errno %d", value, errno);
	n = tp_pool_size(pool);
	tp_pool_destroy(pool);
	tp_logger_destroy(log);
	pthread_mutex_destroy(&w->lock);
	return n;
}

static void pool_env_threads_whitespace_and_malformed_values(void **state)
{
	static const struct {
		const char *value;
		size_t threads; /* 0: one per CPU */
	} good[] = {
		{ "4", 4 },    { " 4", 4 }, { "4 ", 4 },  { "\t3\n", 3 }, { "  2  ", 2 },
		{ "010", 10 }, { "0", 0 },  { " 0 ", 0 }, { "", 0 },	  { "00", 0 },
	};
	static const char *const bad[] = {
		"+4", "-1", "-0", "4x", "x4", "2000", "1025", "lots", "4 4", "0x4", "4.0", "1e2",
	};
	cpu_set_t set;
	size_t cpus;
	struct warnings w;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	cpus = (size_t)CPU_COUNT(&set);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		size_t want = good[i].threads ? good[i].threads : cpus;
		size_t n = size_with_env(good[i].value, &w);

		if (n != want || w.lines != 0)
			fail_msg("TP_NUM_THREADS=\"%s\": %zu threads and %d warnings, expected %zu "
				 "and none",
				 good[i].value, n, w.lines, want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = size_with_env(bad[i], &w);

		if (n != cpus || w.lines != 1 || w.naming != 1)
			fail_msg("TP_NUM_THREADS=\"%s\": %zu threads, %d warnings (%d naming it), "
				 "expected %zu and one",
				 bad[i], n, w.lines, w.naming, cpus);
	}
	/* Unset: one per CPU, silently. */
	assert_int_equal(unsetenv("TP_NUM_THREADS"), 0);
	{
		tp_logger *log = tp_logger_create(TP_LOG_WARNING);
		tp_pool *pool;

		memset(&w, 0, sizeof(w));
		pthread_mutex_init(&w.lock, NULL);
		w.value = "";
		assert_int_equal(tp_logger_set_sink(log, warning_sink, &w), 0);
		pool = tp_pool_create(0, log);
		assert_non_null(pool);
		assert_int_equal(tp_pool_size(pool), cpus);
		tp_pool_destroy(pool);
		tp_logger_destroy(log);
		pthread_mutex_destroy(&w.lock);
		assert_int_equal(w.lines, 0);
	}
}

static void pool_runs_every_outside_task_once(void **state)
{
	enum {
		N = 20000
	};
	static long ran[N];
	static tp_future *f[N];
	tp_pool *pool = tp_pool_create(2, NULL);

	(void)state;
	for (int i = 0; i < N; i++) {
		f[i] = tp_enqueue(pool, count_run, &ran[i]);
		assert_non_null(f[i]);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(tp_future_wait(f[i]), 0);
		tp_future_release(f[i]);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(ran[i], 1);
	tp_pool_destroy(pool);
}

static int fail_with(void *arg)
{
	return (int)(intptr_t)arg;
}

static void pool_failing_tasks_do_not_harm_workers(void **state)
{
	tp_pool *pool = tp_pool_create(2, NULL);
	long ran = 0;

	(void)state;
	for (int i = 1; i <= 200; i++) {
		tp_future *bad = tp_enqueue(pool, fail_with, (void *)(intptr_t)i);
		tp_future *good = tp_enqueue(pool, count_run, &ran);

		assert_int_equal(tp_future_wait(bad), i);
		assert_int_equal(tp_future_wait(good), 0);
		tp_future_release(bad);
		tp_future_release(good);
	}
	assert_int_equal(ran, 200);
	tp_pool_destroy(pool);
}

/* A task of pool A submits to pool B and waits: a cross-pool wait blocks, it does not help B. */
struct cross {
	tp_pool *b;
	long ran;
};

static int cross_task(void *arg)
{
	struct cross *c = arg;
	tp_future *f = tp_enqueue(c->b, count_run, &c->ran);
	int code;

	if (f == NULL)
		return errno;
	code = tp_future_wait(f);
	tp_future_release(f);
	return code;
}

static void pool_tasks_can_use_another_pool(void **state)
{
	tp_pool *a = tp_pool_create(2, NULL), *b = tp_pool_create(1, NULL);
	struct cross c = { b, 0 };
	tp_future *f[50];

	(void)state;
	for (int i = 0; i < 50; i++)
		f[i] = tp_enqueue(a, cross_task, &c);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(tp_future_wait(f[i]), 0);
		tp_future_release(f[i]);
	}
	assert_int_equal(c.ran, 50);
	tp_pool_destroy(a);
	tp_pool_destroy(b);
}

/* Logging: the life cycle at INFO, per-task events only at DEBUG. */
struct capture {
	pthread_mutex_t lock;
	int lines, info, debug;
	char all[8192];
};

static void capture_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct capture *c = user;

	pthread_mutex_lock(&c->lock);
	c->lines++;
	c->info += level == TP_LOG_INFO;
	c->debug += level == TP_LOG_DEBUG;
	if (strlen(c->all) + len < sizeof(c->all))
		strncat(c->all, line, len);
	pthread_mutex_unlock(&c->lock);
}

static void pool_logs_life_cycle_at_info_and_tasks_at_debug(void **state)
{
	struct capture c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	tp_logger *log = tp_logger_create(TP_LOG_INFO);
	tp_pool *pool;
	long ran = 0;

	(void)state;
	assert_int_equal(tp_logger_set_sink(log, capture_sink, &c), 0);
	pool = tp_pool_create(2, log);
	for (int i = 0; i < 10; i++)
		tp_future_release(tp_enqueue(pool, count_run, &ran));
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(ran, 10);
	assert_int_equal(c.debug, 0);
	assert_int_equal(c.info, 3);
	assert_non_null(strstr(c.all, "created with 2 threads"));
	assert_non_null(strstr(c.all, "shutting down (drain)"));
	assert_non_null(strstr(c.all, "joined 2 threads"));
	tp_pool_destroy(pool);

	/* At DEBUG, each task shows up. */
	memset(c.all, 0, sizeof(c.all));
	c.lines = c.info = c.debug = 0;
	assert_int_equal(tp_logger_set_level(log, TP_LOG_DEBUG), 0);
	pool = tp_pool_create(1, log);
	tp_future_release(tp_enqueue(pool, count_run, &ran));
	tp_pool_destroy(pool);
	assert_true(c.debug >= 3); /* enqueued, started, finished (plus worker start/exit) */
	assert_non_null(strstr(c.all, "enqueued"));
	assert_non_null(strstr(c.all, "started"));
	tp_logger_destroy(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_create_has_requested_size),
		cmocka_unit_test(pool_default_size_follows_affinity),
		cmocka_unit_test(pool_env_overrides_default_at_each_call),
		cmocka_unit_test(pool_env_threads_whitespace_and_malformed_values),
		cmocka_unit_test(pool_runs_every_outside_task_once),
		cmocka_unit_test(pool_failing_tasks_do_not_harm_workers),
		cmocka_unit_test(pool_tasks_can_use_another_pool),
		cmocka_unit_test(pool_logs_life_cycle_at_info_and_tasks_at_debug),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
