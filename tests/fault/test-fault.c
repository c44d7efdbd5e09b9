/*
 * test-fault.c - allocation and thread-creation failures injected into every entry point that
 * allocates, with the library's code unchanged: each call refuses with ENOMEM or EAGAIN (or
 * succeeds, where the library has a fallback), every accepted task runs exactly once and every
 * refused one never, the pool still works afterwards, and nothing leaks.
 *
 * How: this program links the internal static library with -Wl,--wrap=malloc,--wrap=calloc,
 * --wrap=aligned_alloc,--wrap=strdup,--wrap=free,--wrap=pthread_create (meson.build beside this
 * file). The linker sends those calls, from every object linked into this executable (the library's members
 * included), to the __wrap_ functions below, which fail as the current plan says or call the
 * __real_ one: the C library's, or the replacement ASan or valgrind installs, which therefore still
 * sees every real call. cmocka is a shared library, so its own allocations are not wrapped, and
 * this file allocates nothing itself.
 *
 * Which calls count: those made by a thread while it is armed (fault_arm(), around the entry point
 * under test, on the test thread or inside a task), or by any thread while every thread is armed
 * (a pool under load). A counting run finds K, the calls one scenario makes; then for each N in
 * 1..K one run fails only the Nth call ("nth") and another the Nth and every later one ("from").
 *
 * After every run: each refusal reported the expected error; a call was refused only if a failure
 * was injected, and where the library has no fallback a single failure refused exactly one call;
 * every accepted task ran exactly once and every refused one never; the pool ran a follow-up task;
 * every block allocated through the wrappers was freed (loggers and pools stay reachable from the
 * library's registries, so LSan alone would miss theirs) and no thread was left behind. Fresh
 * blocks are filled with garbage, so a read of memory the library never wrote fails in every
 * build. LSan (in the ASan build) and valgrind check the leaks again at exit.
 *
 * cmocka is not thread-safe: tasks only count (atomics) what they saw; the test thread asserts.
 * TP_FAULT_VERBOSE=1 prints each plan before it runs (to find the one that crashed).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>

#include "../common.h"
#include "deque.h" /* TP__DEQUE_INITIAL: how many forks make a worker's deque grow */

/* ---------------------------------------------------------------------------------------------
 * Injection
 * ------------------------------------------------------------------------------------------ */

enum fault_site {
	SITE_ALLOC = 0, /* malloc, calloc, aligned_alloc */
	SITE_THREAD = 1 /* pthread_create */
};

enum fault_mode {
	MODE_COUNT = 0, /* fail nothing, count */
	MODE_NTH = 1,	/* fail the nth counted call only */
	MODE_FROM = 2	/* fail the nth counted call and every later one */
};

struct plan {
	enum fault_site site;
	enum fault_mode mode;
	long n;		 /* 1-based, among the counted calls of `site` */
	bool deque_only; /* count only allocations of deque buffers */
};

/* Written by the test thread while nothing is armed; read by armed threads. */
static struct plan plan;
static long calls[2];	 /* atomic: counted calls per site */
static long failed[2];	 /* atomic: failures injected per site */
static long deque_calls; /* atomic: counted allocations that were deque buffers */
static long live;	 /* atomic: blocks allocated through the wrappers, not yet freed */
static long all_armed;	 /* atomic: count every thread's calls */
static __thread bool armed;

/* The calling thread's calls count (and fail as planned) until fault_disarm(). */
static void fault_arm(void)
{
	armed = true;
}

static void fault_disarm(void)
{
	armed = false;
}

/* Every thread's calls count until fault_disarm_all(). seq_cst: the plan, written before, is
 * visible to a thread that sees the flag. */
static void fault_arm_all(void)
{
	test_store(&all_armed, 1);
}

static void fault_disarm_all(void)
{
	test_store(&all_armed, 0);
}

/* A deque buffer (deque.c: a header and a power-of-two array of slots); no other block of the
 * library has that size. Used to fail the deques' growth alone. */
static bool is_deque_buf(size_t size)
{
	size_t slots;

	if (size <= sizeof(struct tp__deque_buf) ||
	    (size - sizeof(struct tp__deque_buf)) % sizeof(void *) != 0)
		return false;
	slots = (size - sizeof(struct tp__deque_buf)) / sizeof(void *);
	return (slots & (slots - 1)) == 0;
}

/* Counts the call if this thread is armed; true if the plan says it fails. */
static bool fault_hit(enum fault_site site, bool deque_buf)
{
	long k;
	bool fail = false;

	if (!armed && test_load(&all_armed) == 0)
		return false;
	if (site == SITE_ALLOC && plan.deque_only && !deque_buf)
		return false;
	k = test_inc(&calls[site]);
	if (deque_buf)
		test_inc(&deque_calls);
	if (site != plan.site)
		return false;
	if (plan.mode == MODE_NTH)
		fail = k == plan.n;
	else if (plan.mode == MODE_FROM)
		fail = k >= plan.n;
	if (fail)
		test_inc(&failed[site]);
	return fail;
}

/* Counts a block, and fills it with garbage as ASan does, so that a read of memory the library
 * never wrote fails in every build, not only where the allocator hands out dirty memory. */
static void *counted(void *p, size_t size)
{
	if (p != NULL) {
		test_inc(&live);
		memset(p, 0xa5, size);
	}
	return p;
}

/* The linker's --wrap names these; they are reserved identifiers by necessity. */
/* NOLINTBEGIN(bugprone-reserved-identifier) */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void __real_free(void *p);
int __real_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			  void *arg);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
void *__wrap_strdup(const char *s);
void __wrap_free(void *p);
int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			  void *arg);

void *__wrap_malloc(size_t size)
{
	if (fault_hit(SITE_ALLOC, is_deque_buf(size))) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_malloc(size), size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (fault_hit(SITE_ALLOC, is_deque_buf(n * size))) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_calloc(n, size), 0);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	if (fault_hit(SITE_ALLOC, is_deque_buf(size))) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_aligned_alloc(align, size), size);
}

void *__wrap_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *p = __wrap_malloc(len);

	if (p != NULL)
		memcpy(p, s, len);
	return p;
}

void __wrap_free(void *p)
{
	if (p != NULL)
		(void)__atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
	__real_free(p);
}

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			  void *arg)
{
	if (fault_hit(SITE_THREAD, false))
		return EAGAIN;
	return __real_pthread_create(thread, attr, start, arg);
}
/* NOLINTEND(bugprone-reserved-identifier) */

/* ---------------------------------------------------------------------------------------------
 * Bookkeeping: tasks by id, refusals, threads
 * ------------------------------------------------------------------------------------------ */

enum {
	MAX_IDS = 1 << 17
};

static long runs[MAX_IDS];     /* atomic: times task i ran */
static long accepted[MAX_IDS]; /* atomic: 1 once the call that submitted task i succeeded */
static long next_id;	       /* atomic */

static long refused;	   /* atomic: calls that returned an error */
static long wrong_errno;   /* atomic: ... with an error other than the expected one */
static long last_wrong;	   /* atomic: the last such error */
static long wrong_results; /* atomic: joins or waits that returned a wrong code */

static char plan_name[128];
static int threads_base;
static long plans_run;

#define ID(i)	 ((void *)(intptr_t)(i))
#define ID_OF(p) ((long)(intptr_t)(p))

/* Fails the test, naming the plan, unless cond holds. */
#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fail_msg("%s: %s does not hold", plan_name, #cond);                        \
	} while (0)

#define check_eq(a, b)                                                                             \
	do {                                                                                       \
		long a_ = (long)(a), b_ = (long)(b);                                               \
		if (a_ != b_)                                                                      \
			fail_msg("%s: %s is %ld, expected %ld", plan_name, #a, a_, b_);            \
	} while (0)

/* n consecutive fresh task ids; returns the first. */
static long id_block(long n)
{
	long first = __atomic_fetch_add(&next_id, n, __ATOMIC_SEQ_CST);

	if (first + n > MAX_IDS) {
		static const char msg[] = "Bail out! test-fault: out of task ids\n";

		(void)write(STDOUT_FILENO, msg, sizeof(msg) - 1);
		_exit(3);
	}
	return first;
}

static void accept_id(long id)
{
	test_store(&accepted[id], 1);
}

static int run_id(void *arg)
{
	test_inc(&runs[ID_OF(arg)]);
	return 0;
}

/* A frame's task: its code tells frames apart, so a join that returned another's shows. */
static int frame_code(long id)
{
	return (int)(id % 97);
}

static int run_frame(void *arg)
{
	test_inc(&runs[ID_OF(arg)]);
	return frame_code(ID_OF(arg));
}

/* The error a refusal must report under the current plan. */
static int expected_errno(void)
{
	return plan.site == SITE_THREAD ? EAGAIN : ENOMEM;
}

static void note_refusal(int err)
{
	test_inc(&refused);
	if (err != expected_errno()) {
		test_inc(&wrong_errno);
		test_store(&last_wrong, err);
	}
}

/* Waits for and releases every future that is not NULL. */
static void wait_release(tp_future **f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i] == NULL)
			continue;
		if (tp_future_wait(f[i]) != 0)
			test_inc(&wrong_results);
		tp_future_release(f[i]);
	}
}

/* The pool still runs a task. */
static void follow_up(tp_pool *pool)
{
	long id = id_block(1);

	accept_id(id);
	check_eq(run_in_pool(pool, run_id, ID(id)), 0);
}

static void *no_op_thread(void *arg)
{
	return arg;
}

static int threads_now(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Every thread the runs started has exited (a joined thread leaves /proc a moment later). */
static void check_threads_gone(void)
{
	double end = test_now_ms() + 2000;
	int n;

	while ((n = threads_now()) != threads_base && test_now_ms() < end)
		test_sleep_us(200);
	if (n != threads_base)
		fail_msg("%s: %d threads left, expected %d", plan_name, n, threads_base);
}

/* ---------------------------------------------------------------------------------------------
 * The driver
 * ------------------------------------------------------------------------------------------ */

struct scenario {
	const char *name;
	void (*run)(void);
	enum fault_site site; /* where the plans fail calls (SITE_ALLOC when not given) */
	bool must_refuse;     /* no fallback: an injected failure refuses a call */
	bool growth;	      /* the counting run must see a deque buffer allocated */
};

static const char *const mode_names[] = { "count", "nth", "from" };

/* One run of `s` under one plan, and the checks every run gets. */
static void run_one(const struct scenario *s, enum fault_mode mode, long n, bool deque_only)
{
	long live0, ids;

	fault_disarm();
	fault_disarm_all();
	plan.site = s->site;
	plan.mode = mode;
	plan.n = n;
	plan.deque_only = deque_only;
	for (int i = 0; i < 2; i++) {
		test_store(&calls[i], 0);
		test_store(&failed[i], 0);
	}
	test_store(&deque_calls, 0);
	ids = test_load(&next_id);
	memset(runs, 0, (size_t)ids * sizeof(runs[0]));
	memset(accepted, 0, (size_t)ids * sizeof(accepted[0]));
	test_store(&next_id, 0);
	test_store(&refused, 0);
	test_store(&wrong_errno, 0);
	test_store(&wrong_results, 0);
	snprintf(plan_name, sizeof(plan_name), "%s, %s %s %ld%s", s->name,
		 s->site == SITE_THREAD ? "thread" : "alloc", mode_names[mode], n,
		 deque_only ? " (deque buffers only)" : "");
	if (getenv("TP_FAULT_VERBOSE") != NULL) {
		printf("# plan: %s\n", plan_name);
		fflush(stdout);
	}
	live0 = test_load(&live);

	s->run();

	fault_disarm();
	fault_disarm_all();
	plans_run++;
	if (test_load(&wrong_errno) != 0)
		fail_msg("%s: %ld refusal(s) with another error than %d, the last %ld", plan_name,
			 test_load(&wrong_errno), expected_errno(), test_load(&last_wrong));
	check_eq(test_load(&wrong_results), 0);
	if (test_load(&failed[s->site]) == 0)
		check_eq(test_load(&refused), 0);
	else if (s->must_refuse && mode == MODE_NTH)
		check_eq(test_load(&refused), 1); /* that call, and no other */
	else if (s->must_refuse)
		check(test_load(&refused) > 0);
	ids = test_load(&next_id);
	for (long i = 0; i < ids; i++)
		if (test_load(&runs[i]) != test_load(&accepted[i]))
			fail_msg("%s: task %ld of %ld ran %ld times, accepted: %s", plan_name, i,
				 ids, test_load(&runs[i]), test_load(&accepted[i]) ? "yes" : "no");
	check_threads_gone();
	if (test_load(&live) != live0)
		fail_msg("%s: %ld block(s) allocated and not freed", plan_name,
			 test_load(&live) - live0);
}

/* The counting run, then every plan of `mode` for N = 1..K. */
static void run_plans(const struct scenario *s, enum fault_mode mode)
{
	long k;

	run_one(s, MODE_COUNT, 0, false);
	k = test_load(&calls[s->site]);
	if (k == 0)
		fail_msg("%s: no call reached the wrappers (is the library linked with --wrap?)",
			 plan_name);
	if (s->growth)
		check(test_load(&deque_calls) > 0);
	printf("# %s: K = %ld %s call(s); %s plans N = 1..%ld\n", s->name, k,
	       s->site == SITE_THREAD ? "pthread_create" : "allocation", mode_names[mode], k);
	fflush(stdout);
	for (long n = 1; n <= k; n++)
		run_one(s, mode, n, false);
}

/* The counting run of a scenario whose K differs from run to run (every thread armed): printed,
 * not required to be positive. Returns K. */
static long count_run(const struct scenario *s)
{
	long k;

	run_one(s, MODE_COUNT, 0, false);
	k = test_load(&calls[SITE_ALLOC]);
	printf("# %s: K = %ld allocation call(s) in the counting run (%ld of deque buffers)\n",
	       s->name, k, test_load(&deque_calls));
	fflush(stdout);
	return k;
}

/* One plan of such a scenario, and what it did. */
static void run_listed(const struct scenario *s, enum fault_mode mode, long n, bool deque_only)
{
	run_one(s, mode, n > 0 ? n : 1, deque_only);
	printf("#   %s: %ld failure(s) injected, %ld call(s) refused, %ld tasks\n", plan_name,
	       test_load(&failed[SITE_ALLOC]), test_load(&refused), test_load(&next_id));
	fflush(stdout);
}

/* ---------------------------------------------------------------------------------------------
 * Scenarios
 * ------------------------------------------------------------------------------------------ */

enum {
	CREATE_THREADS = 3,
	OUTSIDE_TASKS = 100, /* two chunks of records */
	OUTSIDE_BATCH = 50,
	OUTSIDE_BATCHES = 3,
	/* Forks from one task: enough records for several chunks and one growth of the deque. */
	INSIDE_FORKS = TP__DEQUE_INITIAL + 44,
	INSIDE_BATCHES = 3,
	INSIDE_BATCH = INSIDE_FORKS / INSIDE_BATCHES,
	/* Frames: two growths. */
	FRAMES = 2 * TP__DEQUE_INITIAL + 88,
	LOOP_N = 10000,
};

static tp_future *sentinel_future(void)
{
	static long sentinel;

	return (tp_future *)&sentinel;
}

/* tp_pool_create: pool, cache home, workers, park bitmap and parkers, deques, threads. */
static void create_pool(void)
{
	tp_pool *pool;
	int err;

	fault_arm();
	pool = tp_pool_create(CREATE_THREADS, NULL);
	err = errno;
	fault_disarm();
	if (pool == NULL) {
		note_refusal(err);
		return;
	}
	check_eq(tp_pool_size(pool), CREATE_THREADS);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* tp_logger_create. */
static void create_logger(void)
{
	tp_logger *logger;
	int err;

	fault_arm();
	logger = tp_logger_create(TP_LOG_INFO);
	err = errno;
	fault_disarm();
	if (logger == NULL) {
		note_refusal(err);
		return;
	}
	check_eq(tp_logger_get_level(logger), TP_LOG_INFO);
	tp_logger_destroy(logger);
}

/* Submits `n` counting tasks one by one with tp_enqueue; futures of refused ones are NULL. */
static void enqueue_each(tp_pool *pool, tp_future **f, size_t n)
{
	long id0 = id_block((long)n);

	for (size_t i = 0; i < n; i++) {
		f[i] = tp_enqueue(pool, run_id, ID(id0 + (long)i));
		if (f[i] == NULL)
			note_refusal(errno);
		else
			accept_id(id0 + (long)i);
	}
}

/* Submits `batches` batches of `n` tasks fn(id) with tp_enqueue_batch; a refused batch leaves
 * its futures NULL (after checking that it did not touch out[]). */
static void enqueue_batches(tp_pool *pool, tp_task_fn fn, tp_future **f, size_t batches, size_t n)
{
	void *args[INSIDE_BATCH > OUTSIDE_BATCH ? INSIDE_BATCH : OUTSIDE_BATCH];

	for (size_t b = 0; b < batches; b++) {
		tp_future **out = f + b * n;
		long id0 = id_block((long)n);
		int err;

		for (size_t i = 0; i < n; i++) {
			args[i] = ID(id0 + (long)i);
			out[i] = sentinel_future();
		}
		err = tp_enqueue_batch(pool, fn, args, n, out);
		if (err != 0) {
			note_refusal(err);
			for (size_t i = 0; i < n; i++) {
				if (out[i] != sentinel_future())
					test_inc(&wrong_results); /* a refused batch wrote out[] */
				out[i] = NULL;
			}
			continue;
		}
		for (size_t i = 0; i < n; i++)
			accept_id(id0 + (long)i);
	}
}

/* Adds `n` counting tasks to `g`; returns the group's wait code. */
static int group_of(tp_pool *pool, size_t n)
{
	long id0 = id_block((long)n);
	tp_group g;

	if (tp_group_init(&g, pool) != 0)
		return EINVAL;
	fault_arm();
	for (size_t i = 0; i < n; i++) {
		int err = tp_group_spawn(&g, run_id, ID(id0 + (long)i));

		if (err != 0)
			note_refusal(err);
		else
			accept_id(id0 + (long)i);
	}
	fault_disarm();
	return tp_group_wait(&g);
}

/* From outside the pool: the records come from the submitting thread's cache, 64 per chunk. */
static void enqueue_outside(void)
{
	tp_pool *pool = test_pool_new(1);
	tp_future *f[OUTSIDE_TASKS];

	fault_arm();
	enqueue_each(pool, f, OUTSIDE_TASKS);
	fault_disarm();
	wait_release(f, OUTSIDE_TASKS);
	follow_up(pool);
	tp_pool_destroy(pool);
}

static void batch_outside(void)
{
	tp_pool *pool = test_pool_new(1);
	tp_future *f[OUTSIDE_BATCHES * OUTSIDE_BATCH];

	fault_arm();
	enqueue_batches(pool, run_id, f, OUTSIDE_BATCHES, OUTSIDE_BATCH);
	fault_disarm();
	wait_release(f, OUTSIDE_BATCHES * OUTSIDE_BATCH);
	follow_up(pool);
	tp_pool_destroy(pool);
}

static void group_outside(void)
{
	tp_pool *pool = test_pool_new(1);

	check_eq(group_of(pool, OUTSIDE_TASKS), 0);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/*
 * From inside a task, on a pool of one worker (nobody steals, so every run makes the same calls):
 * forks take records from the worker's cache and push on its own deque, which grows past
 * TP__DEQUE_INITIAL items. The task arms its own thread only around the submissions.
 */
static int forks_task(void *arg)
{
	tp_pool *pool = arg;
	tp_future *f[INSIDE_FORKS];

	fault_arm();
	enqueue_each(pool, f, INSIDE_FORKS);
	fault_disarm();
	wait_release(f, INSIDE_FORKS);
	return 0;
}

static int batch_forks_task(void *arg)
{
	tp_pool *pool = arg;
	tp_future *f[INSIDE_BATCHES * INSIDE_BATCH];

	fault_arm();
	enqueue_batches(pool, run_id, f, INSIDE_BATCHES, INSIDE_BATCH);
	fault_disarm();
	wait_release(f, INSIDE_BATCHES * INSIDE_BATCH);
	return 0;
}

static int group_task(void *arg)
{
	return group_of(arg, INSIDE_FORKS);
}

/* Runs `task` with the pool as its argument on a fresh pool of one worker. */
static void inside(tp_task_fn task)
{
	tp_pool *pool = test_pool_new(1);

	check_eq(run_in_pool(pool, task, pool), 0);
	follow_up(pool);
	tp_pool_destroy(pool);
}

static void enqueue_inside(void)
{
	inside(forks_task);
}

static void batch_inside(void)
{
	inside(batch_forks_task);
}

static void group_inside(void)
{
	inside(group_task);
}

/*
 * tp_spawn of more frames than the deque holds: when the deque cannot grow, the frame runs at
 * once instead (frame.c), so every join still returns its frame's code. Joined newest first
 * (every join inline) or oldest first (the first join pops and runs all the others).
 */
static void spawn_frames(bool oldest_first)
{
	tp_task t[FRAMES];
	long id0 = id_block(FRAMES);

	fault_arm();
	for (long i = 0; i < FRAMES; i++) {
		accept_id(id0 + i);
		tp_spawn(&t[i], run_frame, ID(id0 + i));
	}
	for (long k = 0; k < FRAMES; k++) {
		long i = oldest_first ? k : FRAMES - 1 - k;

		if (tp_join(&t[i]) != frame_code(id0 + i))
			test_inc(&wrong_results);
	}
	fault_disarm();
}

static int spawn_newest_first_task(void *arg)
{
	(void)arg;
	spawn_frames(false);
	return 0;
}

static int spawn_oldest_first_task(void *arg)
{
	(void)arg;
	spawn_frames(true);
	return 0;
}

static void spawn_newest_first(void)
{
	inside(spawn_newest_first_task);
}

static void spawn_oldest_first(void)
{
	inside(spawn_oldest_first_task);
}

/* Loops from outside: the loop is submitted as one task (one record). */
static long loop_hits[LOOP_N]; /* atomic */

static void loop_body(size_t begin, size_t end, void *ctx)
{
	(void)ctx;
	for (size_t i = begin; i < end; i++)
		test_inc(&loop_hits[i]);
}

static void sum_body(size_t begin, size_t end, void *acc, void *ctx)
{
	(void)ctx;
	for (size_t i = begin; i < end; i++)
		*(long *)acc += (long)i;
}

static void sum_combine(void *acc, const void *other, void *ctx)
{
	(void)ctx;
	*(long *)acc += *(const long *)other;
}

/* Every iteration ran `times` times. */
static void check_loop_hits(long times)
{
	for (size_t i = 0; i < LOOP_N; i++)
		if (test_load(&loop_hits[i]) != times)
			fail_msg("%s: iteration %zu ran %ld times, expected %ld", plan_name, i,
				 test_load(&loop_hits[i]), times);
}

static void parallel_for_outside(void)
{
	tp_pool *pool = test_pool_new(2);
	int err;

	memset(loop_hits, 0, sizeof(loop_hits));
	fault_arm();
	err = tp_parallel_for(pool, 0, LOOP_N, 0, loop_body, NULL);
	fault_disarm();
	if (err != 0)
		note_refusal(err);
	check_loop_hits(err == 0 ? 1 : 0);
	follow_up(pool);
	tp_pool_destroy(pool);
}

static void parallel_reduce_outside(void)
{
	tp_pool *pool = test_pool_new(2);
	long zero = 0, sum = -1;
	int err;

	fault_arm();
	err = tp_parallel_reduce(pool, 0, LOOP_N, 0, &sum, &zero, sizeof(sum), sum_body,
				 sum_combine, NULL);
	fault_disarm();
	if (err != 0) {
		note_refusal(err);
		check_eq(sum, -1); /* written only on success */
	} else {
		check_eq(sum, (long)LOOP_N * (LOOP_N - 1) / 2);
	}
	follow_up(pool);
	tp_pool_destroy(pool);
}

/*
 * A pool under load with every thread armed: outer tasks submitted in batches from outside, each
 * forking more tasks than its worker's deque holds and spawning as many frames, while workers
 * move injected batches into their deques and steal. Under "from 1" nothing can be allocated at
 * all (only records already in the caches are used); under "deque buffers only" no deque can grow.
 */
enum {
	LOAD_THREADS = 4,
	LOAD_BATCH = 16,
	LOAD_BATCHES = 4, /* scaled down by TP_STRESS_SCALE */
	LOAD_KIDS = TP__DEQUE_INITIAL + 44,
	LOAD_FRAMES = TP__DEQUE_INITIAL + 44,
	WARM_TASKS = 64,
};

static tp_pool *load_pool;

static int load_outer(void *arg)
{
	tp_future *kids[LOAD_KIDS];
	tp_task t[LOAD_FRAMES];
	long f0;

	test_inc(&runs[ID_OF(arg)]);
	enqueue_each(load_pool, kids, LOAD_KIDS);
	f0 = id_block(LOAD_FRAMES);
	for (long i = 0; i < LOAD_FRAMES; i++) {
		accept_id(f0 + i);
		tp_spawn(&t[i], run_frame, ID(f0 + i));
	}
	for (long i = LOAD_FRAMES - 1; i >= 0; i--)
		if (tp_join(&t[i]) != frame_code(f0 + i))
			test_inc(&wrong_results);
	wait_release(kids, LOAD_KIDS);
	return 0;
}

static int warm_task(void *arg)
{
	tp_future *f[LOAD_KIDS];

	enqueue_each(arg, f, LOAD_KIDS);
	wait_release(f, LOAD_KIDS);
	return 0;
}

/* Records in the caches first (the test thread's, a worker's, the shared stack), so that some
 * submissions succeed with no memory at all. */
static void warm_caches(tp_pool *pool)
{
	tp_future *f[WARM_TASKS];
	long id = id_block(1);

	enqueue_each(pool, f, WARM_TASKS);
	wait_release(f, WARM_TASKS);
	accept_id(id);
	check_eq(run_in_pool(pool, warm_task, pool), 0);
	test_inc(&runs[id]);
}

/* The load; with `drain`, a DRAIN shutdown begins as soon as the outer tasks are submitted
 * (forks made during it are accepted, or refused for lack of memory). */
static void load(bool drain)
{
	tp_pool *pool = test_pool_new(LOAD_THREADS);
	size_t batches = (size_t)test_scaled(LOAD_BATCHES);
	tp_future *f[LOAD_BATCHES * LOAD_BATCH];

	warm_caches(pool);
	load_pool = pool;
	fault_arm_all();
	enqueue_batches(pool, load_outer, f, batches, LOAD_BATCH);
	if (drain)
		check_eq(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	wait_release(f, batches * LOAD_BATCH);
	fault_disarm_all();
	if (drain) {
		errno = 0;
		check(tp_enqueue(pool, run_id, ID(0)) == NULL && errno == ESHUTDOWN);
	} else {
		follow_up(pool);
	}
	tp_pool_destroy(pool);
}

static void pool_under_load(void)
{
	load(false);
}

static void pool_drained_under_load(void)
{
	load(true);
}

/* Loops inside a task, grain 1 (a split whenever a worker asks), with every thread armed. */
static int loops_task(void *arg)
{
	tp_pool *pool = arg;
	long zero = 0, sum = -1;

	if (tp_parallel_for(pool, 0, LOOP_N, 1, loop_body, NULL) != 0)
		test_inc(&wrong_results);
	if (tp_parallel_reduce(pool, 0, LOOP_N, 1, &sum, &zero, sizeof(sum), sum_body, sum_combine,
			       NULL) != 0 ||
	    sum != (long)LOOP_N * (LOOP_N - 1) / 2)
		test_inc(&wrong_results);
	return 0;
}

static void loops_inside(void)
{
	tp_pool *pool = test_pool_new(LOAD_THREADS);
	long id = id_block(1);
	tp_future *f;

	memset(loop_hits, 0, sizeof(loop_hits));
	warm_caches(pool);
	fault_arm_all();
	f = tp_enqueue(pool, loops_task, pool);
	if (f == NULL) {
		note_refusal(errno);
	} else {
		wait_release(&f, 1);
		accept_id(id);
		test_inc(&runs[id]); /* the loops ran (or the checks below fail) */
	}
	fault_disarm_all();
	check_loop_hits(f != NULL ? 1 : 0);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* Frames fall back, so not every failure refuses a call. */
static const struct scenario scen_load = { .name = "pool under load", .run = pool_under_load };
static const struct scenario scen_drain = { .name = "pool drained under load",
					    .run = pool_drained_under_load };
static const struct scenario scen_loops_in = { .name = "loops inside a task", .run = loops_inside };

/* Every plan in both modes: nothing at all from the first call on, one failure early, in the
 * middle and at the end of the counting run; and the deques' growth alone. */
static void load_plans(const struct scenario *s)
{
	long k = count_run(s);

	run_listed(s, MODE_FROM, 1, true);
	run_listed(s, MODE_NTH, 1, true);
	run_listed(s, MODE_NTH, 2, true);
	for (enum fault_mode mode = MODE_NTH; mode <= MODE_FROM; mode++) {
		run_listed(s, mode, 1, false);
		run_listed(s, mode, k / 2, false);
		run_listed(s, mode, k, false);
	}
}

static void fault_pool_under_load(void **state)
{
	(void)state;
	load_plans(&scen_load);
}

static void fault_pool_drained_under_load(void **state)
{
	(void)state;
	load_plans(&scen_drain);
}

/* The loops allocate nothing inside a task: they still run every iteration once with no memory
 * at all. */
static void fault_loops_inside_no_memory(void **state)
{
	(void)state;
	(void)count_run(&scen_loops_in);
	run_listed(&scen_loops_in, MODE_FROM, 1, false);
}

static const struct scenario scen_create_alloc = {
	.name = "tp_pool_create", .run = create_pool, .site = SITE_ALLOC, .must_refuse = true
};
static const struct scenario scen_create_thread = {
	.name = "tp_pool_create", .run = create_pool, .site = SITE_THREAD, .must_refuse = true
};
static const struct scenario scen_logger = {
	.name = "tp_logger_create", .run = create_logger, .site = SITE_ALLOC, .must_refuse = true
};
static const struct scenario scen_enqueue_out = { .name = "tp_enqueue from outside",
						  .run = enqueue_outside,
						  .must_refuse = true };
static const struct scenario scen_batch_out = { .name = "tp_enqueue_batch from outside",
						.run = batch_outside,
						.must_refuse = true };
static const struct scenario scen_group_out = { .name = "tp_group_spawn from outside",
						.run = group_outside,
						.must_refuse = true };
static const struct scenario scen_enqueue_in = { .name = "tp_enqueue inside a task",
						 .run = enqueue_inside,
						 .must_refuse = true,
						 .growth = true };
static const struct scenario scen_batch_in = { .name = "tp_enqueue_batch inside a task",
					       .run = batch_inside,
					       .must_refuse = true,
					       .growth = true };
static const struct scenario scen_group_in = { .name = "tp_group_spawn inside a task",
					       .run = group_inside,
					       .must_refuse = true,
					       .growth = true };
/* A frame whose deque cannot grow still runs: nothing is refused. */
static const struct scenario scen_spawn_newest = { .name = "tp_spawn, joined newest first",
						   .run = spawn_newest_first,
						   .growth = true };
static const struct scenario scen_spawn_oldest = { .name = "tp_spawn, joined oldest first",
						   .run = spawn_oldest_first,
						   .growth = true };
static const struct scenario scen_for_out = { .name = "tp_parallel_for from outside",
					      .run = parallel_for_outside,
					      .must_refuse = true };
static const struct scenario scen_reduce_out = { .name = "tp_parallel_reduce from outside",
						 .run = parallel_reduce_outside,
						 .must_refuse = true };

#define PLAN_TESTS(test, scen, mode)                                                               \
	static void test(void **state)                                                             \
	{                                                                                          \
		(void)state;                                                                       \
		run_plans(&(scen), (mode));                                                        \
	}

PLAN_TESTS(fault_pool_create_nth_alloc, scen_create_alloc, MODE_NTH)
PLAN_TESTS(fault_pool_create_from_alloc, scen_create_alloc, MODE_FROM)
PLAN_TESTS(fault_pool_create_nth_thread, scen_create_thread, MODE_NTH)
PLAN_TESTS(fault_pool_create_from_thread, scen_create_thread, MODE_FROM)
PLAN_TESTS(fault_logger_create_nth_alloc, scen_logger, MODE_NTH)
PLAN_TESTS(fault_logger_create_from_alloc, scen_logger, MODE_FROM)
PLAN_TESTS(fault_enqueue_outside_nth_alloc, scen_enqueue_out, MODE_NTH)
PLAN_TESTS(fault_enqueue_outside_from_alloc, scen_enqueue_out, MODE_FROM)
PLAN_TESTS(fault_batch_outside_nth_alloc, scen_batch_out, MODE_NTH)
PLAN_TESTS(fault_batch_outside_from_alloc, scen_batch_out, MODE_FROM)
PLAN_TESTS(fault_group_outside_nth_alloc, scen_group_out, MODE_NTH)
PLAN_TESTS(fault_group_outside_from_alloc, scen_group_out, MODE_FROM)
PLAN_TESTS(fault_enqueue_inside_nth_alloc, scen_enqueue_in, MODE_NTH)
PLAN_TESTS(fault_enqueue_inside_from_alloc, scen_enqueue_in, MODE_FROM)
PLAN_TESTS(fault_batch_inside_nth_alloc, scen_batch_in, MODE_NTH)
PLAN_TESTS(fault_batch_inside_from_alloc, scen_batch_in, MODE_FROM)
PLAN_TESTS(fault_group_inside_nth_alloc, scen_group_in, MODE_NTH)
PLAN_TESTS(fault_group_inside_from_alloc, scen_group_in, MODE_FROM)
PLAN_TESTS(fault_spawn_newest_first_nth_alloc, scen_spawn_newest, MODE_NTH)
PLAN_TESTS(fault_spawn_newest_first_from_alloc, scen_spawn_newest, MODE_FROM)
PLAN_TESTS(fault_spawn_oldest_first_nth_alloc, scen_spawn_oldest, MODE_NTH)
PLAN_TESTS(fault_spawn_oldest_first_from_alloc, scen_spawn_oldest, MODE_FROM)
PLAN_TESTS(fault_parallel_for_outside_nth_alloc, scen_for_out, MODE_NTH)
PLAN_TESTS(fault_parallel_for_outside_from_alloc, scen_for_out, MODE_FROM)
PLAN_TESTS(fault_parallel_reduce_outside_nth_alloc, scen_reduce_out, MODE_NTH)
PLAN_TESTS(fault_parallel_reduce_outside_from_alloc, scen_reduce_out, MODE_FROM)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fault_pool_create_nth_alloc),
		cmocka_unit_test(fault_pool_create_from_alloc),
		cmocka_unit_test(fault_pool_create_nth_thread),
		cmocka_unit_test(fault_pool_create_from_thread),
		cmocka_unit_test(fault_logger_create_nth_alloc),
		cmocka_unit_test(fault_logger_create_from_alloc),
		cmocka_unit_test(fault_enqueue_outside_nth_alloc),
		cmocka_unit_test(fault_enqueue_outside_from_alloc),
		cmocka_unit_test(fault_batch_outside_nth_alloc),
		cmocka_unit_test(fault_batch_outside_from_alloc),
		cmocka_unit_test(fault_group_outside_nth_alloc),
		cmocka_unit_test(fault_group_outside_from_alloc),
		cmocka_unit_test(fault_enqueue_inside_nth_alloc),
		cmocka_unit_test(fault_enqueue_inside_from_alloc),
		cmocka_unit_test(fault_batch_inside_nth_alloc),
		cmocka_unit_test(fault_batch_inside_from_alloc),
		cmocka_unit_test(fault_group_inside_nth_alloc),
		cmocka_unit_test(fault_group_inside_from_alloc),
		cmocka_unit_test(fault_spawn_newest_first_nth_alloc),
		cmocka_unit_test(fault_spawn_newest_first_from_alloc),
		cmocka_unit_test(fault_spawn_oldest_first_nth_alloc),
		cmocka_unit_test(fault_spawn_oldest_first_from_alloc),
		cmocka_unit_test(fault_parallel_for_outside_nth_alloc),
		cmocka_unit_test(fault_parallel_for_outside_from_alloc),
		cmocka_unit_test(fault_parallel_reduce_outside_nth_alloc),
		cmocka_unit_test(fault_parallel_reduce_outside_from_alloc),
		cmocka_unit_test(fault_loops_inside_no_memory),
		cmocka_unit_test(fault_pool_under_load),
		cmocka_unit_test(fault_pool_drained_under_load),
	};
	pthread_t warm_up;
	int rc;

	test_watchdog(110);
	/* A runtime may start a helper thread of its own at the first thread creation (the
	 * ThreadSanitizer runtime does): create one first, so that the base counts it. */
	assert_int_equal(pthread_create(&warm_up, NULL, no_op_thread, NULL), 0);
	assert_int_equal(pthread_join(warm_up, NULL), 0);
	test_sleep_us(10000);
	threads_base = threads_now();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	printf("# %ld plans run\n", plans_run);
	return rc;
}
