/*
 * test-options.c - tp_pool_create_ex() and its options through the public API: defaults, the
 * EINVAL cases, worker names, tp_pool_name(), the start and stop hooks, stack sizes, placement
 * (TP_PLACE_LIST, COMPACT, SCATTER), tp_current_pool() / tp_worker_index(), and tp_pool_create()
 * as before.
 *
 * cmocka is not thread-safe: hooks and tasks only record (atomics, or a slot of their own index);
 * the test thread asserts after tp_pool_create_ex() or the shutdown returned.
 */
#include <limits.h>
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

enum {
	MAXW = 64 /* workers a test pool of this file may have */
};

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

static size_t cpus_allowed(cpu_set_t *set)
{
	assert_int_equal(sched_getaffinity(0, sizeof(*set), set), 0);
	return (size_t)CPU_COUNT(set);
}

/* The lowest CPU of `set`, or -1. */
static int first_cpu(const cpu_set_t *set)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, set))
			return c;
	return -1;
}

/* The single CPU of `set`, or -1 if it holds none or several. */
static int only_cpu(const cpu_set_t *set)
{
	return CPU_COUNT(set) == 1 ? first_cpu(set) : -1;
}

/* /proc/self/task/TID/comm without its newline, in buf; false if it cannot be read. */
static bool thread_comm(pid_t tid, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/comm", (long)tid);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

/* ---------------------------------------------------------------------------------------------
 * What the hooks saw, one slot per index (each worker writes its own slot only)
 * ------------------------------------------------------------------------------------------ */

struct hooks {
	long start_calls, stop_calls;	   /* atomic */
	long bad_index;			   /* atomic: an index out of range */
	long started[MAXW], stopped[MAXW]; /* atomic: calls per index */
	pid_t start_tid[MAXW], stop_tid[MAXW];
	int index_in_hook[MAXW];     /* tp_worker_index() inside on_thread_start */
	tp_pool *pool_in_hook[MAXW]; /* tp_current_pool() inside on_thread_start */
	cpu_set_t mask[MAXW];	     /* the worker's affinity in on_thread_start */
	int cpu[MAXW];		     /* sched_getcpu() in on_thread_start */
	size_t stack[MAXW];	     /* its stack size, read in on_thread_start */
	long tasks_at_stop;	     /* atomic: tasks finished when the first stop hook ran */
	long tasks_finished;	     /* atomic: tasks of the hooks test that returned */
	long slow_index;	     /* this index sleeps in its start hook (-1: none) */
	size_t n;
};

static size_t own_stack_size(void)
{
	pthread_attr_t attr;
	size_t size = 0;

	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return 0;
	(void)pthread_attr_getstacksize(&attr, &size);
	pthread_attr_destroy(&attr);
	return size;
}

static void on_start(void *user, size_t index)
{
	struct hooks *h = user;

	test_inc(&h->start_calls);
	if (index >= h->n || index >= MAXW) {
		test_inc(&h->bad_index);
		return;
	}
	if ((long)index == h->slow_index)
		test_sleep_us(50 * 1000); /* the creator must still wait for this one */
	h->start_tid[index] = gettid();
	h->index_in_hook[index] = tp_worker_index();
	h->pool_in_hook[index] = tp_current_pool();
	CPU_ZERO(&h->mask[index]);
	(void)sched_getaffinity(0, sizeof(h->mask[index]), &h->mask[index]);
	h->cpu[index] = sched_getcpu();
	h->stack[index] = own_stack_size();
	test_inc(&h->started[index]);
}

static void on_stop(void *user, size_t index)
{
	struct hooks *h = user;
	long expect = -1;

	if (index >= h->n || index >= MAXW) {
		test_inc(&h->bad_index);
		return;
	}
	h->stop_tid[index] = gettid();
	/* The first stop hook records how many tasks had returned by then. */
	__atomic_compare_exchange_n(&h->tasks_at_stop, &expect, test_load(&h->tasks_finished),
				    false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	test_inc(&h->stopped[index]);
	test_inc(&h->stop_calls);
}

static void hooks_init(struct hooks *h, size_t n)
{
	memset(h, 0, sizeof(*h));
	h->n = n;
	h->slow_index = -1;
	h->tasks_at_stop = -1;
	for (size_t i = 0; i < MAXW; i++)
		h->index_in_hook[i] = -2;
}

/* ---------------------------------------------------------------------------------------------
 * Defaults and EINVAL
 * ------------------------------------------------------------------------------------------ */

static void options_init_sets_defaults(void **state)
{
	tp_pool_options o;
	tp_pool *pool;
	cpu_set_t set;

	(void)state;
	memset(&o, 0xA5, sizeof(o));
	tp_pool_options_init(&o);
	assert_int_equal(o.num_threads, 0);
	assert_null(o.logger);
	assert_null(o.name);
	assert_int_equal(o.stack_size, 0);
	assert_null(o.on_thread_start);
	assert_null(o.on_thread_stop);
	assert_null(o.hook_user);
	assert_null(o.on_error);
	assert_null(o.error_user);
	assert_int_equal(o.placement, TP_PLACE_NONE);
	assert_null(o.cpus);
	assert_int_equal(o.ncpus, 0);
	for (size_t i = 0; i < sizeof(o.reserved_) / sizeof(o.reserved_[0]); i++)
		assert_null(o.reserved_[i]);
	tp_pool_options_init(NULL); /* no-op */

	/* All defaults: as tp_pool_create(0, NULL): one worker per CPU, named "tp". */
	unsetenv("TP_NUM_THREADS");
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), cpus_allowed(&set));
	assert_string_equal(tp_pool_name(pool), "tp");
	tp_pool_destroy(pool);

	/* num_threads 0 reads TP_NUM_THREADS, as tp_pool_create() does. */
	setenv("TP_NUM_THREADS", "3", 1);
	pool = tp_pool_create_ex(&o);
	unsetenv("TP_NUM_THREADS");
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), 3);
	tp_pool_destroy(pool);
}

struct einval_case {
	const char *what;
	tp_pool_options o;
	bool restrict_to_first_cpu; /* the child first limits itself to its lowest CPU */
};

/* In a child (a crash there fails this case only): 0 if tp_pool_create_ex() said EINVAL, 1 if
 * it created a pool, 2 for another errno. */
static int einval_child(void *arg)
{
	const struct einval_case *c = arg;
	static const int crash_signals[] = { SIGSEGV, SIGFPE, SIGBUS, SIGILL, SIGABRT };
	tp_pool *pool;

	/* cmocka's handlers would turn a crash into a test result in this child: a crash must
	 * kill it, for the parent to see. */
	for (size_t i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		signal(crash_signals[i], SIG_DFL);
	if (c->restrict_to_first_cpu) {
		cpu_set_t set, one;

		if (sched_getaffinity(0, sizeof(set), &set) != 0)
			return 3;
		CPU_ZERO(&one);
		CPU_SET(first_cpu(&set), &one);
		if (sched_setaffinity(0, sizeof(one), &one) != 0)
			return 3;
	}
	errno = 0;
	pool = tp_pool_create_ex(&c->o);
	if (pool != NULL) {
		tp_pool_destroy(pool);
		return 1;
	}
	return errno == EINVAL ? 0 : 2;
}

static void create_ex_einval(void **state)
{
	enum {
		NCASES = 20
	};
	static struct einval_case cases[NCASES];
	static const int minus_one[] = { -1 };
	static const int too_big[] = { CPU_SETSIZE + 5 };
	static int absent[1], second[1];
	static const int zero[] = { 0 };
	size_t k = 0;
	int failures = 0;
	cpu_set_t set;

	(void)state;
	cpus_allowed(&set);
	/* A CPU number this process may not run on (past the allowed ones). */
	absent[0] = first_cpu(&set);
	while (absent[0] < CPU_SETSIZE - 1 && CPU_ISSET(absent[0], &set))
		absent[0]++;
	memset(cases, 0, sizeof(cases));
	for (size_t i = 0; i < NCASES; i++) {
		tp_pool_options_init(&cases[i].o);
		cases[i].o.num_threads = 2;
	}

	cases[k++].what = "(valid, as a control)";
	cases[k].what = "num_threads = TP_POOL_MAX_THREADS + 1";
	cases[k++].o.num_threads = TP_POOL_MAX_THREADS + 1;
	cases[k].what = "num_threads = SIZE_MAX";
	cases[k++].o.num_threads = SIZE_MAX;
	cases[k].what = "placement = 99";
	cases[k++].o.placement = (tp_placement)99;
	cases[k].what = "placement = -1";
	cases[k++].o.placement = (tp_placement)-1;
	cases[k].what = "TP_PLACE_LIST, cpus NULL, ncpus 1";
	cases[k].o.placement = TP_PLACE_LIST;
	cases[k++].o.ncpus = 1;
	cases[k].what = "TP_PLACE_LIST, cpus {0}, ncpus 0";
	cases[k].o.placement = TP_PLACE_LIST;
	cases[k++].o.cpus = zero;
	cases[k].what = "TP_PLACE_LIST, cpus NULL, ncpus 0";
	cases[k++].o.placement = TP_PLACE_LIST;
	cases[k].what = "TP_PLACE_LIST, cpus {-1}";
	cases[k].o.placement = TP_PLACE_LIST;
	cases[k].o.cpus = minus_one;
	cases[k++].o.ncpus = 1;
	cases[k].what = "TP_PLACE_LIST, cpus {CPU_SETSIZE + 5}";
	cases[k].o.placement = TP_PLACE_LIST;
	cases[k].o.cpus = too_big;
	cases[k++].o.ncpus = 1;
	cases[k].what = "TP_PLACE_LIST, a CPU past the affinity mask";
	cases[k].o.placement = TP_PLACE_LIST;
	cases[k].o.cpus = absent;
	cases[k++].o.ncpus = 1;
	if (CPU_COUNT(&set) >= 2) {
		/* An online CPU this process was allowed before restricting itself. */
		second[0] = first_cpu(&set) + 1;
		while (!CPU_ISSET(second[0], &set))
			second[0]++;
		cases[k].what = "TP_PLACE_LIST, an online CPU outside the (restricted) mask";
		cases[k].o.placement = TP_PLACE_LIST;
		cases[k].o.cpus = second;
		cases[k].o.ncpus = 1;
		cases[k++].restrict_to_first_cpu = true;
	}
	cases[k].what = "stack_size = 1";
	cases[k++].o.stack_size = 1;
	cases[k].what = "stack_size = PTHREAD_STACK_MIN - 1";
	cases[k++].o.stack_size = (size_t)PTHREAD_STACK_MIN - 1;
	cases[k].what = "reserved_[0] != NULL";
	cases[k++].o.reserved_[0] = &cases[0];
	cases[k].what = "reserved_[7] != NULL";
	cases[k++].o.reserved_[7] = &cases[0];
	assert_true(k <= NCASES);

	/* In this process, the cases that cannot crash, with errno checked here. */
	errno = 0;
	assert_null(tp_pool_create_ex(NULL));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tp_pool_create_ex(&cases[1].o));
	assert_int_equal(errno, EINVAL);
	errno = 0;
	assert_null(tp_pool_create(TP_POOL_MAX_THREADS + 1, NULL));
	assert_int_equal(errno, EINVAL);

	/* Every case in a child of its own: a crash fails that case, not the program. */
	for (size_t i = 0; i < k; i++) {
		int want = i == 0 ? 1 : 0; /* the control creates a pool */
		int rc = test_child(einval_child, &cases[i], 20000);

		if (rc != want) {
			printf("# tp_pool_create_ex(%s): child returned %d, want %d (0: EINVAL, "
			       "1: a pool was created, 2: another errno, 256+N: killed by signal N, "
			       "-1: hung)\n",
			       cases[i].what, rc, want);
			failures++;
		}
	}
	fflush(stdout);
	assert_int_equal(failures, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------------------------ */

/* Creates a pool of n workers named `name` (NULL: the default), and checks each worker's
 * thread name, found through the tid its start hook recorded. */
static void check_names(const char *name, size_t n)
{
	static struct hooks h;
	const char *base = name != NULL ? name : "tp";
	tp_pool_options o;
	tp_pool *pool;

	hooks_init(&h, n);
	tp_pool_options_init(&o);
	o.num_threads = n;
	o.name = name;
	o.on_thread_start = on_start;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	assert_string_equal(tp_pool_name(pool), base);
	for (size_t i = 0; i < n; i++) {
		char want[32], got[64], suffix[16];
		size_t room;

		snprintf(suffix, sizeof(suffix), "-%zu", i);
		room = 15 - strlen(suffix);
		snprintf(want, sizeof(want), "%.*s%s", (int)room, base, suffix);
		assert_int_equal(test_load(&h.started[i]), 1);
		assert_true(thread_comm(h.start_tid[i], got, sizeof(got)));
		if (strcmp(got, want) != 0)
			printf("# worker %zu of pool \"%s\": comm \"%s\", want \"%s\"\n", i, base,
			       got, want);
		assert_string_equal(got, want);
		assert_true(strlen(got) <= 15);
	}
	tp_pool_destroy(pool);
}

static void names_default_given_and_shortened(void **state)
{
	(void)state;
	check_names(NULL, 2);
	check_names("calc", 3);
	/* 15 characters with the suffix exactly. */
	check_names("abcdefghijklm", 2);
	/* Too long: shortened, the "-i" suffix kept (also a two-digit one). */
	check_names("averyveryverylongpoolname", 12);
}

static void pool_name_is_copied(void **state)
{
	char name[32];
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	snprintf(name, sizeof(name), "mine");
	tp_pool_options_init(&o);
	o.num_threads = 1;
	o.name = name;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	memset(name, 'x', sizeof(name) - 1); /* the pool keeps its own copy */
	assert_string_equal(tp_pool_name(pool), "mine");
	tp_pool_destroy(pool);

	/* The whole name, even if the threads' names are shortened. */
	o.name = "averyveryverylongpoolname";
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	assert_string_equal(tp_pool_name(pool), "averyveryverylongpoolname");
	tp_pool_destroy(pool);

	assert_null(tp_pool_name(NULL));
}

/* ---------------------------------------------------------------------------------------------
 * Hooks
 * ------------------------------------------------------------------------------------------ */

struct hook_task {
	struct hooks *h;
	long ran_after_stop; /* atomic: a task ran on a worker whose stop hook had run */
	long wrong_thread;   /* atomic: a task's worker index does not match its thread */
	long ran;	     /* atomic */
};

static int hook_task_fn(void *arg)
{
	struct hook_task *t = arg;
	int idx = tp_worker_index();

	test_inc(&t->ran);
	if (idx < 0 || (size_t)idx >= t->h->n || t->h->start_tid[idx] != gettid())
		test_inc(&t->wrong_thread);
	else if (test_load(&t->h->stopped[idx]) != 0)
		test_inc(&t->ran_after_stop);
	test_sleep_us(50);
	test_inc(&t->h->tasks_finished);
	return 0;
}

static void hooks_run_on_each_worker(void **state)
{
	enum {
		N = 4
	};
	static struct hooks h;
	static struct hook_task t;
	long tasks = test_scaled(4000);
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	hooks_init(&h, N);
	h.slow_index = N - 1;
	memset(&t, 0, sizeof(t));
	t.h = &h;
	tp_pool_options_init(&o);
	o.num_threads = N;
	o.on_thread_start = on_start;
	o.on_thread_stop = on_stop;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);

	/* Every start hook has returned, the slow one included, before the creator's return. */
	assert_int_equal(test_load(&h.start_calls), N);
	assert_int_equal(test_load(&h.bad_index), 0);
	assert_int_equal(test_load(&h.stop_calls), 0);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(test_load(&h.started[i]), 1);
		/* On a thread that is worker i of this pool. */
		assert_int_equal(h.index_in_hook[i], (int)i);
		assert_ptr_equal(h.pool_in_hook[i], pool);
		assert_int_not_equal(h.start_tid[i], gettid());
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(h.start_tid[i], h.start_tid[j]);
	}

	for (long i = 0; i < tasks; i++)
		assert_int_equal(tp_submit(pool, hook_task_fn, &t), 0);
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);

	/* By the time the shutdown returns: one stop hook per worker, on that worker, after its
	 * last task (in fact after every task: a drain runs them all before workers exit). */
	assert_int_equal(test_load(&t.ran), tasks);
	assert_int_equal(test_load(&t.wrong_thread), 0);
	assert_int_equal(test_load(&t.ran_after_stop), 0);
	assert_int_equal(test_load(&h.stop_calls), N);
	assert_int_equal(test_load(&h.bad_index), 0);
	assert_int_equal(test_load(&h.tasks_at_stop), tasks);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(test_load(&h.stopped[i]), 1);
		assert_int_equal(h.stop_tid[i], h.start_tid[i]);
	}
	tp_pool_destroy(pool);
	/* Nothing more after the destroy. */
	assert_int_equal(test_load(&h.stop_calls), N);
	assert_int_equal(test_load(&h.start_calls), N);
}

static void *seen_user;

static void record_user(void *user, size_t index)
{
	(void)index;
	__atomic_store_n(&seen_user, user, __ATOMIC_SEQ_CST);
}

/* hook_user NULL is passed as NULL; only the stop hook, or only the start hook, works too. */
static void hooks_optional_and_user_passed(void **state)
{
	static struct hooks h;
	long ran = 0;
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	hooks_init(&h, 2);
	tp_pool_options_init(&o);
	o.num_threads = 2;
	o.on_thread_stop = on_stop;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	assert_int_equal(run_in_pool(pool, count_run, &ran), 0);
	tp_pool_destroy(pool);
	assert_int_equal(test_load(&h.stop_calls), 2);
	assert_int_equal(ran, 1);

	seen_user = &h;
	tp_pool_options_init(&o);
	o.num_threads = 1;
	o.on_thread_start = record_user;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	assert_null(__atomic_load_n(&seen_user, __ATOMIC_SEQ_CST));
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Stack size
 * ------------------------------------------------------------------------------------------ */

struct stack_probe {
	long ran;	/* atomic */
	long too_small; /* atomic */
	size_t want;
};

static int stack_task(void *arg)
{
	struct stack_probe *p = arg;

	if (own_stack_size() < p->want)
		test_inc(&p->too_small);
	test_inc(&p->ran);
	return 0;
}

static void check_stack(size_t want)
{
	static struct hooks h;
	struct stack_probe p = { 0, 0, want };
	long tasks = test_scaled(400);
	tp_pool_options o;
	tp_pool *pool;

	hooks_init(&h, 2);
	tp_pool_options_init(&o);
	o.num_threads = 2;
	o.stack_size = want;
	o.on_thread_start = on_start;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	for (size_t i = 0; i < 2; i++) {
		if (h.stack[i] < want)
			printf("# worker %zu: stack of %zu bytes, asked for %zu\n", i, h.stack[i],
			       want);
		assert_true(h.stack[i] >= want);
	}
	for (long i = 0; i < tasks; i++)
		assert_int_equal(tp_submit(pool, stack_task, &p), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	tp_pool_destroy(pool);
	assert_int_equal(p.ran, tasks);
	assert_int_equal(p.too_small, 0);
}

static void stack_size_is_honoured(void **state)
{
	(void)state;
	check_stack((size_t)16 << 20); /* above the usual 8 MiB default */
	check_stack((size_t)1 << 20);
	check_stack((size_t)PTHREAD_STACK_MIN * 16);
}

/* ---------------------------------------------------------------------------------------------
 * Placement
 * ------------------------------------------------------------------------------------------ */

struct cpu_probe {
	long ran;      /* atomic */
	long off_cpu;  /* atomic: sched_getcpu() was not the expected CPU */
	long bad_mask; /* atomic: the thread's mask was not exactly {cpu} */
	int cpu;
	uint64_t seed;
};

static int cpu_task(void *arg)
{
	struct cpu_probe *p = arg;
	cpu_set_t mask;
	uint64_t rng = __atomic_add_fetch(&p->seed, 0x9E3779B97F4A7C15u, __ATOMIC_RELAXED);

	test_jitter(&rng);
	if (sched_getcpu() != p->cpu)
		test_inc(&p->off_cpu);
	if (sched_getaffinity(0, sizeof(mask), &mask) != 0 || only_cpu(&mask) != p->cpu)
		test_inc(&p->bad_mask);
	test_inc(&p->ran);
	return 0;
}

static void place_list_single_cpu(void **state)
{
	static struct hooks h;
	static struct cpu_probe p;
	long rounds = test_scaled(40), per_round = 50;
	cpu_set_t set;
	int cpus[1];
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	cpus_allowed(&set);
	/* CPU 0 if this process may run there, else its lowest CPU. */
	cpus[0] = first_cpu(&set);
	hooks_init(&h, 2);
	memset(&p, 0, sizeof(p));
	p.cpu = cpus[0];
	p.seed = 7;
	tp_pool_options_init(&o);
	o.num_threads = 2;
	o.placement = TP_PLACE_LIST;
	o.cpus = cpus;
	o.ncpus = 1;
	o.on_thread_start = on_start;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(only_cpu(&h.mask[i]), cpus[0]);
		assert_int_equal(h.cpu[i], cpus[0]);
	}
	/* Bursts with idle gaps between them: workers park, and are woken by each other. A
	 * pinned worker is never moved off its CPU, whoever woke it. */
	for (long r = 0; r < rounds; r++) {
		for (long i = 0; i < per_round; i++)
			assert_int_equal(tp_submit(pool, cpu_task, &p), 0);
		assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
		test_sleep_us(1000);
	}
	tp_pool_destroy(pool);
	assert_int_equal(p.ran, rounds * per_round);
	assert_int_equal(p.off_cpu, 0);
	assert_int_equal(p.bad_mask, 0);
}

/* Worker i on cpus[i % ncpus]. */
static void place_list_round_robin(void **state)
{
	static struct hooks h;
	cpu_set_t set;
	int cpus[2];
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	if (cpus_allowed(&set) < 2) {
		skip();
		return;
	}
	/* The two lowest allowed CPUs, in reverse order. */
	cpus[1] = first_cpu(&set);
	cpus[0] = cpus[1] + 1;
	while (!CPU_ISSET(cpus[0], &set))
		cpus[0]++;
	hooks_init(&h, 5);
	tp_pool_options_init(&o);
	o.num_threads = 5;
	o.placement = TP_PLACE_LIST;
	o.cpus = cpus;
	o.ncpus = 2;
	o.on_thread_start = on_start;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(only_cpu(&h.mask[i]), cpus[i % 2]);
	tp_pool_destroy(pool);
}

/* COMPACT and SCATTER with one worker per allowed CPU: each worker on a CPU of its own. */
static void check_one_cpu_each(tp_placement how)
{
	static struct hooks h;
	cpu_set_t set;
	size_t n = cpus_allowed(&set);
	tp_pool_options o;
	tp_pool *pool;

	if (n > MAXW)
		n = MAXW;
	hooks_init(&h, n);
	tp_pool_options_init(&o);
	o.num_threads = n;
	o.placement = how;
	o.on_thread_start = on_start;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	for (size_t i = 0; i < n; i++) {
		int c = only_cpu(&h.mask[i]);

		assert_true(c >= 0);
		assert_true(CPU_ISSET(c, &set));
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(c, only_cpu(&h.mask[j]));
	}
	tp_pool_destroy(pool);
}

static void place_compact_and_scatter_one_cpu_each(void **state)
{
	(void)state;
	check_one_cpu_each(TP_PLACE_COMPACT);
	check_one_cpu_each(TP_PLACE_SCATTER);
}

/* In a child restricted to one CPU: COMPACT and SCATTER pin every worker to that CPU, the only
 * one the process may run on. 0 if so; 1 + the failing check otherwise. */
static int placement_in_mask_child(void *arg)
{
	static struct hooks h;
	static const tp_placement how[] = { TP_PLACE_COMPACT, TP_PLACE_SCATTER };
	cpu_set_t set, one;
	int cpu;

	(void)arg;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	/* The highest allowed CPU: not the first one a plan would pick by default. */
	for (cpu = CPU_SETSIZE - 1; cpu > 0 && !CPU_ISSET(cpu, &set); cpu--)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		return 2;
	for (size_t k = 0; k < 2; k++) {
		tp_pool_options o;
		tp_pool *pool;

		hooks_init(&h, 3);
		tp_pool_options_init(&o);
		o.num_threads = 3;
		o.placement = how[k];
		o.on_thread_start = on_start;
		o.hook_user = &h;
		pool = tp_pool_create_ex(&o);
		if (pool == NULL)
			return 3;
		for (size_t i = 0; i < 3; i++)
			if (only_cpu(&h.mask[i]) != cpu)
				return 4;
		tp_pool_destroy(pool);
	}
	return 0;
}

static void place_within_the_process_mask(void **state)
{
	int rc;

	(void)state;
	rc = test_child(placement_in_mask_child, NULL, 20000);
	if (rc != 0)
		printf("# child restricted to one CPU: %d (3: no pool, 4: a worker on another CPU)\n",
		       rc);
	assert_int_equal(rc, 0);
}

/* TP_PLACE_NONE (the default): the workers keep the process's whole mask. */
static void place_none_keeps_the_mask(void **state)
{
	static struct hooks h;
	cpu_set_t set;
	tp_pool_options o;
	tp_pool *pool;

	(void)state;
	cpus_allowed(&set);
	hooks_init(&h, 2);
	tp_pool_options_init(&o);
	o.num_threads = 2;
	o.on_thread_start = on_start;
	o.hook_user = &h;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	for (size_t i = 0; i < 2; i++)
		assert_true(CPU_EQUAL(&h.mask[i], &set));
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * tp_current_pool / tp_worker_index
 * ------------------------------------------------------------------------------------------ */

struct whoami {
	tp_pool *expect;
	size_t n;
	long ran;	    /* atomic */
	long wrong_pool;    /* atomic */
	long bad_index;	    /* atomic */
	long inconsistent;  /* atomic: a thread reported two indices, or two threads one */
	pid_t tid_of[MAXW]; /* first tid seen per index (CAS from 0) */
};

static int whoami_task(void *arg)
{
	struct whoami *w = arg;
	int idx = tp_worker_index();
	pid_t me = gettid(), expect = 0;

	if (tp_current_pool() != w->expect)
		test_inc(&w->wrong_pool);
	if (idx < 0 || (size_t)idx >= w->n) {
		test_inc(&w->bad_index);
	} else if (!__atomic_compare_exchange_n(&w->tid_of[idx], &expect, me, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) &&
		   expect != me) {
		test_inc(&w->inconsistent);
	}
	test_sleep_us(20);
	test_inc(&w->ran);
	return 0;
}

static void current_pool_and_worker_index(void **state)
{
	enum {
		N = 3
	};
	static struct whoami w;
	long tasks = test_scaled(3000);
	tp_pool *pool, *other;

	(void)state;
	assert_null(tp_current_pool());
	assert_int_equal(tp_worker_index(), -1);
	pool = test_pool_new(N);
	other = test_pool_new(2);
	memset(&w, 0, sizeof(w));
	w.expect = pool;
	w.n = N;
	for (long i = 0; i < tasks; i++)
		assert_int_equal(tp_submit(pool, whoami_task, &w), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(w.ran, tasks);
	assert_int_equal(w.wrong_pool, 0);
	assert_int_equal(w.bad_index, 0);
	assert_int_equal(w.inconsistent, 0);
	/* Distinct indices are distinct threads. */
	for (size_t i = 0; i < N; i++)
		for (size_t j = 0; j < i; j++)
			if (w.tid_of[i] != 0 && w.tid_of[j] != 0)
				assert_int_not_equal(w.tid_of[i], w.tid_of[j]);

	/* Another pool's tasks see that pool. */
	memset(&w, 0, sizeof(w));
	w.expect = other;
	w.n = 2;
	for (long i = 0; i < 200; i++)
		assert_int_equal(tp_submit(other, whoami_task, &w), 0);
	assert_int_equal(tp_pool_wait_idle(other, NULL), 0);
	assert_int_equal(w.ran, 200);
	assert_int_equal(w.wrong_pool, 0);
	assert_int_equal(w.bad_index, 0);
	assert_int_equal(w.inconsistent, 0);
	tp_pool_destroy(other);
	tp_pool_destroy(pool);
	assert_null(tp_current_pool());
	assert_int_equal(tp_worker_index(), -1);
}

struct outside_probe {
	tp_pool *pool;
	int index;
	long ran;
};

static int outside_probe_task(void *arg)
{
	struct outside_probe *p = arg;

	p->pool = tp_current_pool();
	p->index = tp_worker_index();
	test_inc(&p->ran);
	return 0;
}

/* A task that tp_future_wait_nohelp() runs on the test thread: that thread is no worker. */
static void current_pool_null_in_task_run_outside(void **state)
{
	long gate = 0;
	struct outside_probe p = { NULL, 7, 0 };
	tp_pool *pool = test_pool_new(1);
	tp_future *blocker = tp_enqueue(pool, wait_gate, &gate);
	tp_future *f;

	(void)state;
	assert_non_null(blocker);
	while (tp_future_state(blocker) != TP_FUTURE_RUNNING)
		test_sleep_us(100);
	f = tp_enqueue(pool, outside_probe_task, &p);
	assert_non_null(f);
	assert_int_equal(tp_future_wait_nohelp(f, NULL), 0);
	assert_int_equal(p.ran, 1);
	assert_null(p.pool);
	assert_int_equal(p.index, -1);
	test_store(&gate, 1);
	assert_int_equal(tp_future_wait(blocker), 0);
	tp_future_release(blocker);
	tp_future_release(f);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * tp_pool_create() as before
 * ------------------------------------------------------------------------------------------ */

static void pool_create_unchanged(void **state)
{
	static struct whoami w;
	tp_logger *lg = tp_logger_create(TP_LOG_WARNING);
	tp_pool *pool;

	(void)state;
	assert_non_null(lg);
	pool = tp_pool_create(3, lg);
	assert_non_null(pool);
	assert_int_equal(tp_pool_size(pool), 3);
	assert_string_equal(tp_pool_name(pool), "tp");
	memset(&w, 0, sizeof(w));
	w.expect = pool;
	w.n = 3;
	for (long i = 0; i < 300; i++)
		assert_int_equal(tp_submit(pool, whoami_task, &w), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(w.ran, 300);
	assert_int_equal(w.wrong_pool, 0);
	assert_int_equal(w.bad_index, 0);
	assert_int_equal(w.inconsistent, 0);
	tp_pool_destroy(pool);
	tp_logger_destroy(lg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(options_init_sets_defaults),
		cmocka_unit_test(create_ex_einval),
		cmocka_unit_test(names_default_given_and_shortened),
		cmocka_unit_test(pool_name_is_copied),
		cmocka_unit_test(hooks_run_on_each_worker),
		cmocka_unit_test(hooks_optional_and_user_passed),
		cmocka_unit_test(stack_size_is_honoured),
		cmocka_unit_test(place_list_single_cpu),
		cmocka_unit_test(place_list_round_robin),
		cmocka_unit_test(place_compact_and_scatter_one_cpu_each),
		cmocka_unit_test(place_within_the_process_mask),
		cmocka_unit_test(place_none_keeps_the_mask),
		cmocka_unit_test(current_pool_and_worker_index),
		cmocka_unit_test(current_pool_null_in_task_run_outside),
		cmocka_unit_test(pool_create_unchanged),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
