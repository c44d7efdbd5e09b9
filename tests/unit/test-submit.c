/*
 * test-submit.c - detached tasks (tp_submit, tp_submit_ex) and drop functions through the public
 * API: every task runs exactly once (from several threads, and from inside tasks), EINVAL and
 * ESHUTDOWN refuse with nothing run or dropped, a failing detached task reaches the error handler
 * (fn, arg, code, on the worker that ran it) or else a WARNING line naming the function on the
 * pool's logger; a drop function is called exactly once for a task that never runs (a cancelled
 * future, a cancelled group, a CANCEL shutdown), never for one that ran or was refused.
 *
 * cmocka is not thread-safe: tasks, hooks and sinks only record (atomics, or under a mutex); the
 * test thread asserts after waiting.
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

/* Waits until `f` runs (a blocker occupying a worker). */
static void await_running(tp_future *f)
{
	double end = test_now_ms() + 20000;

	while (tp_future_state(f) != TP_FUTURE_RUNNING) {
		assert_true(test_now_ms() < end);
		test_sleep_us(100);
	}
}

/* An argument whose task and drop function both record, so that "exactly one of the two"
 * can be checked per task. */
struct item {
	tp_pool *pool;
	long ran;	       /* atomic */
	long dropped;	       /* atomic */
	long dropped_off_pool; /* atomic: the drop ran on no worker of `pool` */
	pid_t drop_tid;
	int accepted;	    /* the submission returned success */
	int children;	    /* forks to make from inside the task */
	struct item *child; /* [children] */
	tp_future *f;
};

static void item_drop(void *arg)
{
	struct item *it = arg;

	it->drop_tid = gettid();
	if (tp_current_pool() != it->pool)
		test_inc(&it->dropped_off_pool);
	test_inc(&it->dropped);
}

static int item_task(void *arg)
{
	struct item *it = arg;

	test_inc(&it->ran);
	for (int i = 0; i < it->children; i++) {
		struct item *c = &it->child[i];

		c->accepted = tp_submit_ex(it->pool, item_task, c, item_drop) == 0;
	}
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Exactly once
 * ------------------------------------------------------------------------------------------ */

struct submitter {
	tp_pool *pool;
	struct item *items;
	long n;
	long refused; /* submissions that failed */
	pthread_t thread;
};

static void *submit_thread(void *arg)
{
	struct submitter *s = arg;
	uint64_t rng = (uint64_t)(uintptr_t)s;

	for (long i = 0; i < s->n; i++) {
		s->items[i].accepted = tp_submit(s->pool, item_task, &s->items[i]) == 0;
		if (!s->items[i].accepted)
			s->refused++;
		if (test_rand(&rng) % 64 == 0)
			test_jitter(&rng);
	}
	return NULL;
}

static void submit_runs_each_task_once(void **state)
{
	enum {
		THREADS = 4,
		KIDS = 3
	};
	long per = test_scaled(5000);
	struct submitter s[THREADS];
	struct item *items = calloc((size_t)(THREADS * per), sizeof(*items));
	struct item *kids = calloc((size_t)(THREADS * per * KIDS), sizeof(*kids));
	tp_pool *pool = test_pool_new(3);

	(void)state;
	assert_non_null(items);
	assert_non_null(kids);
	for (long i = 0; i < THREADS * per; i++) {
		items[i].pool = pool;
		/* One task in 8 forks KIDS detached children (tp_submit from inside). */
		if (i % 8 == 0) {
			items[i].children = KIDS;
			items[i].child = &kids[i * KIDS];
			for (int k = 0; k < KIDS; k++)
				kids[i * KIDS + k].pool = pool;
		}
	}
	for (int t = 0; t < THREADS; t++) {
		s[t] = (struct submitter){ pool, &items[t * per], per, 0, 0 };
		assert_int_equal(pthread_create(&s[t].thread, NULL, submit_thread, &s[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(s[t].thread, NULL);
		assert_int_equal(s[t].refused, 0);
	}
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	for (long i = 0; i < THREADS * per; i++) {
		assert_int_equal(items[i].ran, 1);
		assert_int_equal(items[i].dropped, 0);
		for (int k = 0; k < items[i].children; k++) {
			assert_true(items[i].child[k].accepted);
			assert_int_equal(items[i].child[k].ran, 1);
			assert_int_equal(items[i].child[k].dropped, 0);
		}
	}
	free(items);
	free(kids);
}

static void submit_einval(void **state)
{
	struct item it = { 0 };
	tp_pool *pool = test_pool_new(1);

	(void)state;
	it.pool = pool;
	assert_int_equal(tp_submit(NULL, item_task, &it), EINVAL);
	assert_int_equal(tp_submit(pool, NULL, &it), EINVAL);
	assert_int_equal(tp_submit_ex(NULL, item_task, &it, item_drop), EINVAL);
	assert_int_equal(tp_submit_ex(pool, NULL, &it, item_drop), EINVAL);
	errno = 0;
	assert_null(tp_enqueue_ex(NULL, item_task, &it, item_drop));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tp_enqueue_ex(pool, NULL, &it, item_drop));
	assert_int_equal(errno, EINVAL);
	/* A NULL drop function is none: as tp_submit / tp_enqueue. */
	assert_int_equal(tp_submit_ex(pool, item_task, &it, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(it.ran, 1);
	assert_int_equal(it.dropped, 0);
}

/* After a shutdown every submission is refused; the caller keeps arg (no drop). */
static void submit_after_shutdown_eshutdown(void **state)
{
	struct item it = { 0 };
	tp_pool *pool = test_pool_new(2);
	tp_group g;

	(void)state;
	it.pool = pool;
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_submit(pool, item_task, &it), ESHUTDOWN);
	assert_int_equal(tp_submit_ex(pool, item_task, &it, item_drop), ESHUTDOWN);
	errno = 0;
	assert_null(tp_enqueue_ex(pool, item_task, &it, item_drop));
	assert_int_equal(errno, ESHUTDOWN);
	assert_int_equal(tp_group_init(&g, pool), 0);
	assert_int_equal(tp_group_spawn_ex(&g, item_task, &it, item_drop), ESHUTDOWN);
	assert_int_equal(tp_group_wait(&g), 0);
	tp_pool_destroy(pool);
	assert_int_equal(it.ran, 0);
	assert_int_equal(it.dropped, 0);

	/* The same after a CANCEL shutdown. */
	pool = test_pool_new(1);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	assert_int_equal(tp_submit_ex(pool, item_task, &it, item_drop), ESHUTDOWN);
	tp_pool_destroy(pool);
	assert_int_equal(it.ran, 0);
	assert_int_equal(it.dropped, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Failing detached tasks: the error handler, or a WARNING line
 * ------------------------------------------------------------------------------------------ */

/* Exported (not static), so that the runtime can name it (the executable exports its symbols). */
int submit_test_failing_task(void *arg);

struct fail_arg {
	int code;	 /* what the task returns */
	pid_t tid;	 /* the thread that ran it */
	long reported;	 /* atomic: error handler calls for this task */
	long bad_call;	 /* atomic: wrong fn, code, thread or pool in the handler */
	int wait_rc;	 /* tp_pool_wait_idle() from the handler */
	int shutdown_rc; /* tp_pool_shutdown() from the handler */
};

int submit_test_failing_task(void *arg)
{
	struct fail_arg *a = arg;

	a->tid = gettid();
	return a->code;
}

static int static_failing_task(void *arg)
{
	(void)arg;
	return 5;
}

struct handler_state {
	tp_pool *pool; /* set before the first task is submitted */
	long calls;    /* atomic */
	long bad_user; /* atomic */
};

static void on_error(void *user, tp_task_fn fn, void *arg, int code)
{
	struct handler_state *h = user;
	struct fail_arg *a = arg;

	test_inc(&h->calls);
	if (h->pool == NULL) {
		test_inc(&h->bad_user);
		return;
	}
	/* Right after the task returned, on the worker that ran it. */
	if (fn != submit_test_failing_task || code != a->code || code == 0 || a->tid != gettid() ||
	    tp_current_pool() != h->pool || tp_worker_index() < 0)
		test_inc(&a->bad_call);
	/* It runs as part of the task: waiting for idleness or shutting down is EDEADLK. */
	a->wait_rc = tp_pool_wait_idle(h->pool, NULL);
	a->shutdown_rc = tp_pool_shutdown(h->pool, TP_SHUTDOWN_DRAIN);
	test_inc(&a->reported);
}

static void failing_task_goes_to_on_error(void **state)
{
	static struct handler_state h;
	long n = test_scaled(2000);
	struct fail_arg *args = calloc((size_t)n, sizeof(*args));
	struct fail_arg enq = { 9, 0, 0, 0, 0, 0 };
	tp_pool_options o;
	tp_pool *pool;
	tp_future *f;
	long failing = 0;

	(void)state;
	assert_non_null(args);
	memset(&h, 0, sizeof(h));
	tp_pool_options_init(&o);
	o.num_threads = 3;
	o.on_error = on_error;
	o.error_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	h.pool = pool;
	for (long i = 0; i < n; i++) {
		/* Every third task succeeds: no call for it. */
		args[i].code = i % 3 == 0 ? 0 : 1 + (int)(i % 200);
		failing += args[i].code != 0;
		assert_int_equal(tp_submit(pool, submit_test_failing_task, &args[i]), 0);
	}
	/* A failing task with a future: its code goes to the future, not to the handler. */
	f = tp_enqueue(pool, submit_test_failing_task, &enq);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 9);
	tp_future_release(f);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(h.bad_user, 0);
	assert_int_equal(enq.reported, 0);
	for (long i = 0; i < n; i++) {
		assert_int_equal(args[i].reported, args[i].code != 0 ? 1 : 0);
		assert_int_equal(args[i].bad_call, 0);
		if (args[i].code != 0) {
			assert_int_equal(args[i].wait_rc, EDEADLK);
			assert_int_equal(args[i].shutdown_rc, EDEADLK);
		}
	}
	assert_int_equal(h.calls, failing);
	free(args);
}

/* The lines a logger emitted, kept under a mutex. */
struct lines {
	pthread_mutex_t lock;
	int n;
	char text[64][1024];
	tp_log_level level[64];
};

static void lines_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct lines *l = user;

	pthread_mutex_lock(&l->lock);
	if (l->n < 64) {
		snprintf(l->text[l->n], sizeof(l->text[0]), "%.*s", (int)len, line);
		l->level[l->n] = level;
		l->n++;
	}
	pthread_mutex_unlock(&l->lock);
}

/* The number of WARNING lines holding `needle` (and, if needle2 is not NULL, needle2 too). */
static int lines_count(struct lines *l, const char *needle, const char *needle2)
{
	int k = 0;

	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < l->n; i++)
		if (l->level[i] == TP_LOG_WARNING && strstr(l->text[i], needle) != NULL &&
		    (needle2 == NULL || strstr(l->text[i], needle2) != NULL))
			k++;
	pthread_mutex_unlock(&l->lock);
	return k;
}

static void lines_print(struct lines *l)
{
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < l->n; i++)
		printf("# line %d: %s", i, l->text[i]);
	pthread_mutex_unlock(&l->lock);
	fflush(stdout);
}

static void failing_task_without_handler_logs_warning(void **state)
{
	static struct lines l;
	struct fail_arg a = { 42, 0, 0, 0, 0, 0 };
	tp_logger *lg = tp_logger_create(TP_LOG_WARNING);
	char addr[32];
	tp_pool *pool;
	tp_future *f;

	(void)state;
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.lock, NULL);
	assert_non_null(lg);
	assert_int_equal(tp_logger_set_sink(lg, lines_sink, &l), 0);
	pool = tp_pool_create(2, lg);
	assert_non_null(pool);

	/* An exported function: named by its symbol. */
	assert_int_equal(tp_submit(pool, submit_test_failing_task, &a), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	if (lines_count(&l, "submit_test_failing_task", NULL) != 1)
		lines_print(&l);
	assert_int_equal(lines_count(&l, "submit_test_failing_task", NULL), 1);

	/* A static function has no symbol to name it: its address, or object+offset. */
	assert_int_equal(tp_submit(pool, static_failing_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	snprintf(addr, sizeof(addr), "%p", (void *)(uintptr_t)static_failing_task);
	if (lines_count(&l, "+0x", NULL) + lines_count(&l, addr, NULL) != 1)
		lines_print(&l);
	assert_int_equal(lines_count(&l, "+0x", NULL) + lines_count(&l, addr, NULL), 1);

	/* A task with a future or a succeeding one: no line. */
	a.code = 0;
	assert_int_equal(tp_submit(pool, submit_test_failing_task, &a), 0);
	f = tp_enqueue(pool, static_failing_task, NULL);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 5);
	tp_future_release(f);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(lines_count(&l, "", NULL), 2);
	tp_logger_destroy(lg);
	pthread_mutex_destroy(&l.lock);
}

/* With an error handler, nothing is logged for a failing detached task. */
static void failing_task_with_handler_logs_nothing(void **state)
{
	static struct lines l;
	static struct handler_state h;
	struct fail_arg a = { 3, 0, 0, 0, 0, 0 };
	tp_logger *lg = tp_logger_create(TP_LOG_WARNING);
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	memset(&l, 0, sizeof(l));
	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&l.lock, NULL);
	assert_non_null(lg);
	assert_int_equal(tp_logger_set_sink(lg, lines_sink, &l), 0);
	tp_pool_options_init(&o);
	o.num_threads = 1;
	o.logger = lg;
	o.on_error = on_error;
	o.error_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	h.pool = pool;
	assert_int_equal(tp_submit(pool, submit_test_failing_task, &a), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(a.reported, 1);
	assert_int_equal(h.calls, 1);
	assert_int_equal(lines_count(&l, "", NULL), 0);
	tp_logger_destroy(lg);
	pthread_mutex_destroy(&l.lock);
}

/* ---------------------------------------------------------------------------------------------
 * Drop functions
 * ------------------------------------------------------------------------------------------ */

static void drop_on_future_cancel(void **state)
{
	long gate = 0;
	struct item victim = { 0 };
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_future *f;

	(void)state;
	victim.pool = pool;
	assert_non_null(blocker);
	await_running(blocker);
	f = tp_enqueue_ex(pool, item_task, &victim, item_drop);
	assert_non_null(f);
	assert_true(tp_future_cancel(f));
	/* Called once, with arg, on the thread that cancelled (this one). */
	assert_int_equal(victim.dropped, 1);
	assert_int_equal(victim.drop_tid, gettid());
	assert_true(tp_future_cancel(f)); /* already cancelled: no second drop */
	assert_int_equal(victim.dropped, 1);
	assert_int_equal(tp_future_wait(f), ECANCELED);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(blocker), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(victim.ran, 0);
	assert_int_equal(victim.dropped, 1);
	tp_future_release(blocker);
	tp_future_release(f);
}

static void drop_never_after_run(void **state)
{
	enum {
		N = 500
	};
	static struct item it[N];
	static tp_future *f[N];
	tp_pool *pool = test_pool_new(2);

	(void)state;
	memset(it, 0, sizeof(it));
	for (int i = 0; i < N; i++) {
		it[i].pool = pool;
		f[i] = tp_enqueue_ex(pool, item_task, &it[i], item_drop);
		assert_non_null(f[i]);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(tp_future_wait(f[i]), 0);
		assert_false(tp_future_cancel(f[i])); /* finished: not cancelled, no drop */
	}
	/* Detached ones too, drained by a shutdown. */
	for (int i = 0; i < N; i++)
		assert_int_equal(tp_submit_ex(pool, item_task, &it[i], item_drop), 0);
	tp_pool_destroy(pool);
	for (int i = 0; i < N; i++) {
		assert_int_equal(it[i].ran, 2);
		assert_int_equal(it[i].dropped, 0);
		tp_future_release(f[i]);
	}
}

/* Cancel racing the start: exactly one of ran / dropped, and cancel() said which. */
static void drop_races_start(void **state)
{
	long n = test_scaled(4000);
	struct item *it = calloc((size_t)n, sizeof(*it));
	tp_future **f = calloc((size_t)n, sizeof(*f));
	bool *cancelled = calloc((size_t)n, sizeof(*cancelled));
	uint64_t rng = test_stress_seed();
	tp_pool *pool = test_pool_new(2);

	(void)state;
	assert_non_null(it);
	assert_non_null(f);
	assert_non_null(cancelled);
	for (long i = 0; i < n; i++) {
		it[i].pool = pool;
		f[i] = tp_enqueue_ex(pool, item_task, &it[i], item_drop);
		assert_non_null(f[i]);
		if (test_rand(&rng) % 4 == 0)
			test_jitter(&rng);
		cancelled[i] = tp_future_cancel(f[i]);
	}
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	for (long i = 0; i < n; i++) {
		assert_int_equal(it[i].ran + it[i].dropped, 1);
		assert_int_equal(it[i].dropped, cancelled[i] ? 1 : 0);
		if (cancelled[i])
			assert_int_equal(it[i].drop_tid, gettid());
		assert_int_equal(tp_future_wait(f[i]), cancelled[i] ? ECANCELED : 0);
		tp_future_release(f[i]);
	}
	free(it);
	free(f);
	free(cancelled);
}

static void drop_on_group_cancel(void **state)
{
	enum {
		K = 40
	};
	static struct item it[K];
	struct item late = { 0 };
	long gate = 0;
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_group g;

	(void)state;
	assert_non_null(blocker);
	await_running(blocker);
	memset(it, 0, sizeof(it));
	assert_int_equal(tp_group_init(&g, pool), 0);
	for (int i = 0; i < K; i++) {
		it[i].pool = pool;
		assert_int_equal(tp_group_spawn_ex(&g, item_task, &it[i], item_drop), 0);
	}
	tp_group_cancel(&g);
	for (int i = 0; i < K; i++) {
		assert_int_equal(it[i].dropped, 1);
		assert_int_equal(it[i].drop_tid, gettid());
	}
	/* Refused after the cancel: the caller keeps arg. */
	late.pool = pool;
	assert_int_equal(tp_group_spawn_ex(&g, item_task, &late, item_drop), ECANCELED);
	tp_group_cancel(&g); /* again: nothing dropped twice */
	test_store(&gate, 1);
	assert_int_equal(tp_group_wait(&g), ECANCELED);
	assert_int_equal(tp_future_wait(blocker), 0);
	tp_future_release(blocker);
	tp_pool_destroy(pool);
	for (int i = 0; i < K; i++) {
		assert_int_equal(it[i].ran, 0);
		assert_int_equal(it[i].dropped, 1);
	}
	assert_int_equal(late.ran + late.dropped, 0);
}

/* A group cancelled while its tasks run: each task ran or was dropped, never both. */
static void drop_group_cancel_races(void **state)
{
	enum {
		K = 64
	};
	static struct item it[K];
	long rounds = test_scaled(200);
	uint64_t rng = test_stress_seed();
	tp_pool *pool = test_pool_new(2);

	(void)state;
	for (long r = 0; r < rounds; r++) {
		tp_group g;

		memset(it, 0, sizeof(it));
		assert_int_equal(tp_group_init(&g, pool), 0);
		for (int i = 0; i < K; i++) {
			it[i].pool = pool;
			assert_int_equal(tp_group_spawn_ex(&g, item_task, &it[i], item_drop), 0);
		}
		test_jitter(&rng);
		tp_group_cancel(&g);
		(void)tp_group_wait(&g);
		for (int i = 0; i < K; i++)
			assert_int_equal(it[i].ran + it[i].dropped, 1);
	}
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * CANCEL shutdown: every accepted task ran or was dropped, exactly one of the two
 * ------------------------------------------------------------------------------------------ */

struct cancel_submitter {
	tp_pool *pool;
	struct item *items;
	long n;
	uint64_t seed;
	pthread_t thread;
};

static void *cancel_submit_thread(void *arg)
{
	struct cancel_submitter *s = arg;
	uint64_t rng = s->seed;

	for (long i = 0; i < s->n; i++) {
		struct item *it = &s->items[i];

		if (i % 2 == 0) {
			it->accepted = tp_submit_ex(s->pool, item_task, it, item_drop) == 0;
		} else {
			it->f = tp_enqueue_ex(s->pool, item_task, it, item_drop);
			it->accepted = it->f != NULL;
		}
		if (test_rand(&rng) % 16 == 0)
			test_jitter(&rng);
	}
	return NULL;
}

static int sleepy_item_task(void *arg)
{
	struct item *it = arg;

	test_sleep_us(200);
	return item_task(it);
}

static void cancel_shutdown_runs_or_drops_each_task(void **state)
{
	enum {
		THREADS = 2,
		PER = 300,
		KIDS = 2
	};
	long iterations = test_scaled(60);
	uint64_t rng = test_stress_seed();
	long total_ran = 0, total_dropped = 0, total_refused = 0;

	(void)state;
	for (long iter = 0; iter < iterations; iter++) {
		struct cancel_submitter s[THREADS];
		struct item *items = calloc(THREADS * PER, sizeof(*items));
		struct item *kids = calloc(THREADS * PER * KIDS, sizeof(*kids));
		struct item slow[2];
		tp_pool *pool = test_pool_new(2);

		assert_non_null(items);
		assert_non_null(kids);
		for (long i = 0; i < THREADS * PER; i++) {
			items[i].pool = pool;
			if (i % 5 == 0) {
				items[i].children = KIDS;
				items[i].child = &kids[i * KIDS];
				for (int k = 0; k < KIDS; k++)
					kids[i * KIDS + k].pool = pool;
			}
		}
		/* Two slow tasks so that some work is queued when the shutdown comes. */
		memset(slow, 0, sizeof(slow));
		for (int k = 0; k < 2; k++) {
			slow[k].pool = pool;
			slow[k].accepted =
				tp_submit_ex(pool, sleepy_item_task, &slow[k], item_drop) == 0;
			assert_true(slow[k].accepted);
		}
		for (int t = 0; t < THREADS; t++) {
			s[t] = (struct cancel_submitter){ pool, &items[t * PER], PER,
							  test_rand(&rng), 0 };
			assert_int_equal(
				pthread_create(&s[t].thread, NULL, cancel_submit_thread, &s[t]), 0);
		}
		test_sleep_us((long)(test_rand(&rng) % 2000));
		assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
		for (int t = 0; t < THREADS; t++)
			pthread_join(s[t].thread, NULL);
		/* Submissions after the shutdown are all refused; nothing is left to run. */
		for (long i = 0; i < THREADS * PER; i++) {
			struct item *it = &items[i];

			if (it->accepted) {
				assert_int_equal(it->ran + it->dropped, 1);
				total_ran += it->ran;
				total_dropped += it->dropped;
				/* A shutdown drops on a worker of the pool. */
				assert_int_equal(it->dropped_off_pool, 0);
				if (it->f != NULL)
					assert_int_equal(tp_future_state(it->f),
							 it->dropped ? TP_FUTURE_CANCELLED
								     : TP_FUTURE_DONE);
			} else {
				assert_int_equal(it->ran + it->dropped, 0);
				total_refused++;
			}
			for (int k = 0; k < it->children; k++) {
				struct item *c = &it->child[k];

				if (!it->ran) {
					assert_int_equal(c->accepted + c->ran + c->dropped, 0);
				} else if (c->accepted) {
					assert_int_equal(c->ran + c->dropped, 1);
					assert_int_equal(c->dropped_off_pool, 0);
				} else {
					assert_int_equal(c->ran + c->dropped, 0);
				}
			}
		}
		for (int k = 0; k < 2; k++)
			assert_int_equal(slow[k].ran + slow[k].dropped, 1);
		tp_pool_destroy(pool);
		for (long i = 0; i < THREADS * PER; i++)
			tp_future_release(items[i].f);
		free(items);
		free(kids);
	}
	printf("# over %ld shutdowns: %ld ran, %ld dropped, %ld refused\n", iterations, total_ran,
	       total_dropped, total_refused);
}

struct shutdown_call {
	tp_pool *pool;
	tp_shutdown_mode mode;
	int rc;
	long done; /* atomic */
	pthread_t thread;
};

static void *shutdown_thread(void *arg)
{
	struct shutdown_call *c = arg;

	c->rc = tp_pool_shutdown(c->pool, c->mode);
	test_store(&c->done, 1);
	return NULL;
}

/* Every task queued behind a blocker when a CANCEL shutdown comes: dropped (on a worker), none
 * run, their futures CANCELLED. */
static void cancel_shutdown_drops_all_queued(void **state)
{
	enum {
		N = 1000
	};
	static struct item it[N];
	static tp_future *f[N];
	struct item probe = { 0 };
	struct shutdown_call sc;
	long gate = 0, probes = 0;
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	double end;

	(void)state;
	assert_non_null(blocker);
	await_running(blocker);
	memset(it, 0, sizeof(it));
	memset(f, 0, sizeof(f));
	for (int i = 0; i < N; i++) {
		it[i].pool = pool;
		if (i % 2 == 0) {
			assert_int_equal(tp_submit_ex(pool, item_task, &it[i], item_drop), 0);
		} else {
			f[i] = tp_enqueue_ex(pool, item_task, &it[i], item_drop);
			assert_non_null(f[i]);
		}
	}
	sc = (struct shutdown_call){ pool, TP_SHUTDOWN_CANCEL, -1, 0, 0 };
	assert_int_equal(pthread_create(&sc.thread, NULL, shutdown_thread, &sc), 0);
	/* The shutdown has begun once outside submissions are refused; it then waits for the
	 * blocker. (Probes accepted before that are queued work like the rest.) */
	probe.pool = pool;
	end = test_now_ms() + 20000;
	while (tp_submit_ex(pool, item_task, &probe, item_drop) == 0) {
		probes++;
		assert_true(test_now_ms() < end);
		test_sleep_us(100);
	}
	/* The mode is published right after the gate closes: give that thread time to do it. */
	test_sleep_us(20 * 1000);
	assert_int_equal(test_load(&sc.done), 0);
	test_store(&gate, 1);
	pthread_join(sc.thread, NULL);
	assert_int_equal(sc.rc, 0);
	assert_int_equal(tp_future_wait(blocker), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(it[i].ran, 0);
		assert_int_equal(it[i].dropped, 1);
		assert_int_equal(it[i].dropped_off_pool, 0);
		if (f[i] != NULL) {
			assert_int_equal(tp_future_state(f[i]), TP_FUTURE_CANCELLED);
			assert_int_equal(tp_future_wait(f[i]), ECANCELED);
		}
	}
	assert_int_equal(probe.ran, 0);
	assert_int_equal(probe.dropped, probes);
	/* Cancelled by the shutdown: a later cancel says so and drops nothing more. */
	for (int i = 0; i < N; i++) {
		if (f[i] != NULL)
			assert_true(tp_future_cancel(f[i]));
		assert_int_equal(it[i].dropped, 1);
	}
	tp_pool_destroy(pool);
	tp_future_release(blocker);
	for (int i = 0; i < N; i++)
		tp_future_release(f[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(submit_runs_each_task_once),
		cmocka_unit_test(submit_einval),
		cmocka_unit_test(submit_after_shutdown_eshutdown),
		cmocka_unit_test(failing_task_goes_to_on_error),
		cmocka_unit_test(failing_task_without_handler_logs_warning),
		cmocka_unit_test(failing_task_with_handler_logs_nothing),
		cmocka_unit_test(drop_on_future_cancel),
		cmocka_unit_test(drop_never_after_run),
		cmocka_unit_test(drop_races_start),
		cmocka_unit_test(drop_on_group_cancel),
		cmocka_unit_test(drop_group_cancel_races),
		cmocka_unit_test(cancel_shutdown_runs_or_drops_each_task),
		cmocka_unit_test(cancel_shutdown_drops_all_queued),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
