/*
 * test-fault.c - allocation and thread-creation failures injected into every entry point that
 * allocates, with the library's code unchanged: each call refuses with ENOMEM or EAGAIN (or
 * succeeds, where the library has a fallback), every accepted task runs exactly once or is
 * dropped exactly once (its drop function, when it was cancelled) and every refused one neither,
 * the pool still works afterwards, and nothing leaks. The entry points that must not allocate
 * (tp_pool_wait_idle, tp_pool_stats) are checked to make no wrapped call at all.
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
 * Where K varies from run to run (every thread armed), a few N are sampled instead. A scenario
 * may count only blocks of one size (a trace's chunks, a reduce's 4 KiB accumulators), so that
 * its plans fail those alone.
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
#include <sched.h>
#include <stdbool.h>

#include "../common.h"
#include "deque.h" /* TP__DEQUE_INITIAL: how many forks make a worker's deque grow */
#include "trace.h" /* struct tp__trace_chunk: a lane's block of events */

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
	long n;		  /* 1-based, among the counted calls of `site` */
	bool deque_only;  /* count only allocations of deque buffers */
	size_t only_size; /* non-zero: count only allocations of this many bytes */
};

/* Written by the test thread while nothing is armed; read by armed threads. */
static struct plan plan;
static long calls[2];	 /* atomic: counted calls per site */
static long failed[2];	 /* atomic: failures injected per site */
static long deque_calls; /* atomic: counted allocations that were deque buffers */
static long live;	 /* atomic: blocks allocated through the wrappers, not yet freed */
static long armed_frees; /* atomic: free() calls made by an armed thread */
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

/* Counts the call if this thread is armed; true if the plan says it fails. `size`: the bytes
 * an allocation asks for (0 for a thread). */
static bool fault_hit(enum fault_site site, size_t size)
{
	bool deque_buf = site == SITE_ALLOC && is_deque_buf(size);
	long k;
	bool fail = false;

	if (!armed && test_load(&all_armed) == 0)
		return false;
	if (site == SITE_ALLOC && plan.deque_only && !deque_buf)
		return false;
	if (site == SITE_ALLOC && plan.only_size != 0 && size != plan.only_size)
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
	if (fault_hit(SITE_ALLOC, size)) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_malloc(size), size);
}

void *__wrap_calloc(size_t n, size_t size)
{
	if (fault_hit(SITE_ALLOC, n * size)) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__real_calloc(n, size), 0);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	if (fault_hit(SITE_ALLOC, size)) {
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
	if (armed)
		test_inc(&armed_frees);
	if (p != NULL)
		(void)__atomic_sub_fetch(&live, 1, __ATOMIC_SEQ_CST);
	__real_free(p);
}

int __wrap_pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *),
			  void *arg)
{
	if (fault_hit(SITE_THREAD, 0))
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

static long runs[MAX_IDS];	/* atomic: times task i ran */
static long drops[MAX_IDS];	/* atomic: times its drop function released task i's argument */
static long accepted[MAX_IDS];	/* atomic: 1 once the call that submitted task i succeeded */
static long must_drop[MAX_IDS]; /* atomic: 1 if task i was pending when it was cancelled */
static long next_id;		/* atomic */

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

/* A task's drop function (tp_drop_fn): the task will never run. */
static void drop_id(void *arg)
{
	test_inc(&drops[ID_OF(arg)]);
}

/* Task `id` was accepted and cancelled before it started: it must be dropped, not run. */
static void expect_drop(long id)
{
	test_store(&must_drop[id], 1);
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
	size_t only_size;     /* non-zero: its plans count and fail only blocks of this size */
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
	plan.only_size = s->only_size;
	for (int i = 0; i < 2; i++) {
		test_store(&calls[i], 0);
		test_store(&failed[i], 0);
	}
	test_store(&deque_calls, 0);
	test_store(&armed_frees, 0);
	ids = test_load(&next_id);
	memset(runs, 0, (size_t)ids * sizeof(runs[0]));
	memset(drops, 0, (size_t)ids * sizeof(drops[0]));
	memset(accepted, 0, (size_t)ids * sizeof(accepted[0]));
	memset(must_drop, 0, (size_t)ids * sizeof(must_drop[0]));
	test_store(&next_id, 0);
	test_store(&refused, 0);
	test_store(&wrong_errno, 0);
	test_store(&wrong_results, 0);
	snprintf(plan_name, sizeof(plan_name), "%s, %s %s %ld%s", s->name,
		 s->site == SITE_THREAD ? "thread" : "alloc", mode_names[mode], n,
		 deque_only	     ? " (deque buffers only)"
		 : s->only_size != 0 ? " (blocks of that size only)"
				     : "");
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
	for (long i = 0; i < ids; i++) {
		long ran = test_load(&runs[i]), dropped = test_load(&drops[i]);

		/* Accepted: ran once or dropped once; refused: neither. */
		if (ran + dropped != test_load(&accepted[i]) ||
		    (test_load(&must_drop[i]) != 0 && dropped != 1))
			fail_msg("%s: task %ld of %ld ran %ld times, dropped %ld times, accepted: "
				 "%s%s",
				 plan_name, i, ids, ran, dropped,
				 test_load(&accepted[i]) ? "yes" : "no",
				 test_load(&must_drop[i]) ? ", cancelled while pending" : "");
	}
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
	if (s->only_size != 0)
		printf("# %s: K = %ld allocation call(s) of %zu bytes in the counting run\n",
		       s->name, k, s->only_size);
	else
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
	tp_frame t[FRAMES];
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

/* A try loop's body: counts its iterations into ctx (LOOP_N counters) and stops the loop with
 * STOP_CODE at iteration STOP_AT. */
enum {
	STOP_AT = LOOP_N / 3,
	STOP_CODE = 4242,
};

static int try_body(size_t begin, size_t end, void *ctx)
{
	long *hits = ctx;

	for (size_t i = begin; i < end; i++)
		test_inc(&hits[i]);
	return begin <= STOP_AT && STOP_AT < end ? STOP_CODE : 0;
}

/* After a try loop that stopped (or never ran): no iteration ran twice, the stopping one once. */
static bool try_hits_ok(const long *hits, bool ran)
{
	for (size_t i = 0; i < LOOP_N; i++)
		if (test_load(&hits[i]) > (ran ? 1 : 0))
			return false;
	return test_load(&hits[STOP_AT]) == (ran ? 1 : 0);
}

static long try_hits[LOOP_N]; /* atomic */

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
	tp_frame t[LOAD_FRAMES];
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

/* Loops inside a task, grain 1 (a split whenever a worker asks), with every thread armed: the
 * for loop runs every iteration once, the reduce is exact, the try loop stops with its code. */
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
	if (tp_parallel_try_for(pool, 0, LOOP_N, 1, try_body, try_hits) != STOP_CODE ||
	    !try_hits_ok(try_hits, true))
		test_inc(&wrong_results);
	return 0;
}

static void loops_inside(void)
{
	tp_pool *pool = test_pool_new(LOAD_THREADS);
	long id = id_block(1);
	tp_future *f;

	memset(loop_hits, 0, sizeof(loop_hits));
	memset(try_hits, 0, sizeof(try_hits));
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

/* ---------------------------------------------------------------------------------------------
 * The embedding API: tp_pool_create_ex's options
 * ------------------------------------------------------------------------------------------ */

struct create_cfg {
	const char *name;
	size_t stack_size;
	tp_placement placement;
	const int *cpus;
	size_t ncpus;
};

static long hook_starts[CREATE_THREADS]; /* atomic: on_thread_start calls, per worker index */
static long hook_stops[CREATE_THREADS];	 /* atomic: on_thread_stop calls */
static long hook_bad;			 /* atomic: a hook saw what its contract excludes */
static long hook_stop_accepted;		 /* atomic: submissions from on_thread_stop accepted */
static long hook_created;		 /* atomic: tp_pool_create_ex returned the pool */
static __thread tp_pool *hook_pool;	 /* the pool whose worker this thread is (or was) */

/* The CPUs this process may run on, in decreasing order (the TP_PLACE_LIST plans' list). */
static int list_cpus[CPU_SETSIZE];
static size_t list_ncpus;

/* "NAME-i", NAME cut so that the whole fits the kernel's 15 characters. */
static bool worker_named(const char *name, size_t index)
{
	char want[64], got[16], suffix[24];
	int room;

	snprintf(suffix, sizeof(suffix), "-%zu", index);
	room = (int)(sizeof(got) - 1 - strlen(suffix));
	snprintf(want, sizeof(want), "%.*s%s", room, name, suffix);
	return pthread_getname_np(pthread_self(), got, sizeof(got)) == 0 && strcmp(want, got) == 0;
}

/* Pinned to one CPU (TP_PLACE_LIST: the listed one) unless the placement is NONE. */
static bool worker_placed(const struct create_cfg *cfg, size_t index)
{
	cpu_set_t set;

	if (cfg->placement == TP_PLACE_NONE)
		return true;
	if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) != 0 || CPU_COUNT(&set) != 1)
		return false;
	return cfg->placement != TP_PLACE_LIST || CPU_ISSET(cfg->cpus[index % cfg->ncpus], &set);
}

static bool worker_stack_ok(const struct create_cfg *cfg)
{
	pthread_attr_t attr;
	size_t size = 0;

	if (cfg->stack_size == 0)
		return true;
	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return false;
	(void)pthread_attr_getstacksize(&attr, &size);
	pthread_attr_destroy(&attr);
	return size >= cfg->stack_size;
}

/* on_thread_start: a worker of the pool, named, placed, on its stack; what it submits runs on
 * the pool, also when the creation fails afterwards (then it runs or is dropped). */
static void start_hook(void *user, size_t index)
{
	const struct create_cfg *cfg = user;
	long id = id_block(1);

	if (index >= CREATE_THREADS) {
		test_inc(&hook_bad);
		return;
	}
	test_inc(&hook_starts[index]);
	hook_pool = tp_current_pool();
	if (hook_pool == NULL || tp_worker_index() != (int)index ||
	    !worker_named(cfg->name, index) || !worker_placed(cfg, index) ||
	    !worker_stack_ok(cfg)) {
		test_inc(&hook_bad);
		return;
	}
	if (tp_submit_ex(hook_pool, run_id, ID(id), drop_id) == 0)
		accept_id(id);
	else
		test_inc(&hook_bad);
}

/*
 * on_thread_stop: a thread like any other; its submission to the pool it left is refused, also
 * when tp_pool_create_ex fails after starting workers and stops them (these plans found that
 * the gate was left open then: the task was accepted, never ran nor was dropped, and leaked).
 */
static void stop_hook(void *user, size_t index)
{
	long id = id_block(1);
	int err;

	(void)user;
	if (index >= CREATE_THREADS) {
		test_inc(&hook_bad);
		return;
	}
	test_inc(&hook_stops[index]);
	if (tp_current_pool() != NULL || tp_worker_index() != -1 || hook_pool == NULL) {
		test_inc(&hook_bad);
		return;
	}
	err = tp_submit_ex(hook_pool, run_id, ID(id), drop_id);
	if (err == 0) {
		accept_id(id);
		test_inc(&hook_stop_accepted);
	} else if (err != ESHUTDOWN) {
		test_inc(&hook_bad);
	}
}

/*
 * tp_pool_create_ex with a name, both hooks and the given stack and placement. Refused: the
 * workers started before the failure (none for an allocation, N - 1 when the Nth thread fails)
 * each ran both hooks once. Created: every start hook has returned, none has stopped; after the
 * destruction every worker has stopped once.
 */
static void create_with(const struct create_cfg *cfg)
{
	tp_pool_options o;
	tp_pool *pool;
	long started = 0;
	int err;

	memset(hook_starts, 0, sizeof(hook_starts));
	memset(hook_stops, 0, sizeof(hook_stops));
	test_store(&hook_bad, 0);
	test_store(&hook_stop_accepted, 0);
	test_store(&hook_created, 0);
	tp_pool_options_init(&o);
	o.num_threads = CREATE_THREADS;
	o.name = cfg->name;
	o.stack_size = cfg->stack_size;
	o.on_thread_start = start_hook;
	o.on_thread_stop = stop_hook;
	o.hook_user = (void *)cfg;
	o.placement = cfg->placement;
	o.cpus = cfg->cpus;
	o.ncpus = cfg->ncpus;

	fault_arm();
	pool = tp_pool_create_ex(&o);
	err = errno;
	fault_disarm();
	test_store(&hook_created, pool != NULL);
	if (pool == NULL) {
		note_refusal(err);
		for (size_t i = 0; i < CREATE_THREADS; i++) {
			check(test_load(&hook_starts[i]) <= 1);
			check_eq(test_load(&hook_stops[i]), test_load(&hook_starts[i]));
			started += test_load(&hook_starts[i]);
		}
		check_eq(started, plan.site == SITE_THREAD ? plan.n - 1 : 0);
	} else {
		for (size_t i = 0; i < CREATE_THREADS; i++) {
			check_eq(test_load(&hook_starts[i]), 1);
			check_eq(test_load(&hook_stops[i]), 0);
		}
		check_eq(tp_pool_size(pool), CREATE_THREADS);
		check(tp_pool_name(pool) != cfg->name &&
		      strcmp(tp_pool_name(pool), cfg->name) == 0);
		follow_up(pool);
		tp_pool_destroy(pool);
		for (size_t i = 0; i < CREATE_THREADS; i++)
			check_eq(test_load(&hook_stops[i]), 1);
	}
	/* A submission from on_thread_stop is refused (ESHUTDOWN). */
	check_eq(test_load(&hook_stop_accepted), 0);
	check_eq(test_load(&hook_bad), 0);
}

/* 13 characters: "fault-compact-2" fits the kernel's 15 as it is. */
static const struct create_cfg create_compact = { .name = "fault-compact",
						  .stack_size = 256 * 1024,
						  .placement = TP_PLACE_COMPACT };

static void create_ex_compact(void)
{
	create_with(&create_compact);
}

/* A long name: the workers' names are cut. */
static void create_ex_list(void)
{
	const struct create_cfg cfg = { .name = "fault-placement-list",
					.placement = TP_PLACE_LIST,
					.cpus = list_cpus,
					.ncpus = list_ncpus };

	create_with(&cfg);
}

/* ---------------------------------------------------------------------------------------------
 * The embedding API: detached tasks, drop functions
 * ------------------------------------------------------------------------------------------ */

static tp_pool *gate_pool;
static long gate_open;	  /* atomic */
static long gate_entered; /* atomic */

static int no_op_task(void *arg)
{
	(void)arg;
	return 0;
}

/*
 * Called from a task of `pool`: returns once a CANCEL shutdown of the pool has begun. A
 * submission from inside the pool is refused with ESHUTDOWN then, and only then; until then the
 * no-op it submits is accepted (and, pending behind the caller, cancelled by that shutdown).
 */
static void hold_until_cancel(tp_pool *pool)
{
	for (;;) {
		tp_future *f = tp_enqueue(pool, no_op_task, NULL);

		if (f == NULL && errno == ESHUTDOWN)
			return;
		tp_future_release(f);
		test_sleep_us(100);
	}
}

/* Holds its worker until open_gate(). */
static int gate_task(void *arg)
{
	test_inc(&runs[ID_OF(arg)]);
	test_store(&gate_entered, 1);
	while (test_load(&gate_open) == 0)
		test_sleep_us(100);
	return 0;
}

/* Holds its worker until a CANCEL shutdown has begun. */
static int until_cancel_task(void *arg)
{
	test_inc(&runs[ID_OF(arg)]);
	test_store(&gate_entered, 1);
	hold_until_cancel(gate_pool);
	return 0;
}

/* A pool of `threads` workers, one of them held by `holder` (gate_task or until_cancel_task):
 * with one worker, what is submitted meanwhile stays pending. */
static tp_pool *held_pool(size_t threads, tp_task_fn holder, tp_future **gate)
{
	tp_pool *pool = test_pool_new(threads);
	long id = id_block(1);

	gate_pool = pool;
	test_store(&gate_open, 0);
	test_store(&gate_entered, 0);
	*gate = tp_enqueue(pool, holder, ID(id));
	assert_non_null(*gate);
	accept_id(id);
	check(test_await(&gate_entered, 10000));
	return pool;
}

static void open_gate(tp_future *gate)
{
	test_store(&gate_open, 1);
	wait_release(&gate, 1);
}

enum submit_kind {
	SUBMIT,	   /* tp_submit */
	SUBMIT_EX, /* tp_submit_ex */
	ENQUEUE_EX /* tp_enqueue_ex (futures in f[]) */
};

/* Submits `n` counting tasks with a drop function; refused ones leave f[i] NULL. Returns the
 * first id. */
static long submit_each(tp_pool *pool, enum submit_kind kind, tp_future **f, size_t n)
{
	long id0 = id_block((long)n);

	for (size_t i = 0; i < n; i++) {
		void *arg = ID(id0 + (long)i);
		int err = 0;

		if (kind == ENQUEUE_EX) {
			f[i] = tp_enqueue_ex(pool, run_id, arg, drop_id);
			err = f[i] == NULL ? errno : 0;
		} else {
			err = kind == SUBMIT ? tp_submit(pool, run_id, arg)
					     : tp_submit_ex(pool, run_id, arg, drop_id);
		}
		if (err != 0)
			note_refusal(err);
		else
			accept_id(id0 + (long)i);
	}
	return id0;
}

/* Every accepted task of [id0, id0 + n) was pending when it was cancelled: it is dropped. */
static void expect_drops(long id0, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (test_load(&accepted[id0 + (long)i]) != 0)
			expect_drop(id0 + (long)i);
}

/* Cancels every odd-numbered accepted future: each is pending, so the cancel succeeds. */
static void cancel_odd(tp_future **f, long id0, size_t n)
{
	for (size_t i = 1; i < n; i += 2) {
		if (f[i] == NULL)
			continue;
		if (tp_future_cancel(f[i]))
			expect_drop(id0 + (long)i);
		else
			test_inc(&wrong_results);
	}
}

/* Waits for and releases them: the cancelled ones report ECANCELED, the others 0. */
static void wait_odd_cancelled(tp_future **f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i] == NULL)
			continue;
		if (tp_future_wait(f[i]) != (i % 2 != 0 ? ECANCELED : 0))
			test_inc(&wrong_results);
		tp_future_release(f[i]);
	}
}

static void wait_idle_ok(tp_pool *pool)
{
	struct timespec d = test_deadline_ms(20000);

	check_eq(tp_pool_wait_idle(pool, &d), 0);
}

/* After a CANCEL shutdown: the pool refuses, and is freed. */
static void refuses_then_destroy(tp_pool *pool)
{
	check_eq(tp_submit_ex(pool, run_id, ID(id_block(1)), drop_id), ESHUTDOWN);
	tp_pool_destroy(pool);
}

/* tp_submit from outside: every accepted task runs (tp_pool_wait_idle waits for them). */
static void submit_outside(void)
{
	tp_pool *pool = test_pool_new(1);

	fault_arm();
	(void)submit_each(pool, SUBMIT, NULL, OUTSIDE_TASKS);
	fault_disarm();
	wait_idle_ok(pool);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* tp_submit_ex from outside while the only worker is held, then a CANCEL shutdown: every
 * accepted task is dropped once, none runs. */
static void submit_ex_outside_cancelled(void)
{
	tp_future *gate;
	tp_pool *pool = held_pool(1, until_cancel_task, &gate);
	long id0;

	fault_arm();
	id0 = submit_each(pool, SUBMIT_EX, NULL, OUTSIDE_TASKS);
	fault_disarm();
	expect_drops(id0, OUTSIDE_TASKS);
	check_eq(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	wait_release(&gate, 1);
	refuses_then_destroy(pool);
}

/* tp_enqueue_ex from outside while the only worker is held; every odd-numbered one cancelled. */
static void enqueue_ex_outside_half_cancelled(void)
{
	tp_future *gate, *f[OUTSIDE_TASKS];
	tp_pool *pool = held_pool(1, gate_task, &gate);
	long id0;

	fault_arm();
	id0 = submit_each(pool, ENQUEUE_EX, f, OUTSIDE_TASKS);
	fault_disarm();
	cancel_odd(f, id0, OUTSIDE_TASKS);
	open_gate(gate);
	wait_odd_cancelled(f, OUTSIDE_TASKS);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* tp_group_spawn_ex into a group, then tp_group_cancel: every accepted task is dropped. */
static void group_ex_cancelled(tp_pool *pool, size_t n)
{
	long id0 = id_block((long)n);
	tp_group g;

	if (tp_group_init(&g, pool) != 0) {
		test_inc(&wrong_results);
		return;
	}
	fault_arm();
	for (size_t i = 0; i < n; i++) {
		int err = tp_group_spawn_ex(&g, run_id, ID(id0 + (long)i), drop_id);

		if (err != 0)
			note_refusal(err);
		else
			accept_id(id0 + (long)i);
	}
	fault_disarm();
	expect_drops(id0, n);
	tp_group_cancel(&g);
	if (tp_group_wait(&g) != ECANCELED)
		test_inc(&wrong_results);
}

static void group_ex_outside_cancelled(void)
{
	tp_future *gate;
	tp_pool *pool = held_pool(1, gate_task, &gate);

	group_ex_cancelled(pool, OUTSIDE_TASKS);
	open_gate(gate);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* Inside a task of a pool of one worker: forks, on the worker's own deque. */
static int submit_forks_task(void *arg)
{
	fault_arm();
	(void)submit_each(arg, SUBMIT, NULL, INSIDE_FORKS);
	fault_disarm();
	return 0;
}

static void submit_inside(void)
{
	tp_pool *pool = test_pool_new(1);

	check_eq(run_in_pool(pool, submit_forks_task, pool), 0);
	wait_idle_ok(pool);
	follow_up(pool);
	tp_pool_destroy(pool);
}

static long forked; /* atomic */

/* Forks with tp_submit_ex, then holds the only worker until a CANCEL shutdown has begun. */
static int submit_ex_forks_task(void *arg)
{
	tp_pool *pool = arg;
	long id0;

	fault_arm();
	id0 = submit_each(pool, SUBMIT_EX, NULL, INSIDE_FORKS);
	fault_disarm();
	expect_drops(id0, INSIDE_FORKS);
	test_store(&forked, 1);
	hold_until_cancel(pool);
	return 0;
}

static void submit_ex_inside_cancelled(void)
{
	tp_pool *pool = test_pool_new(1);
	tp_future *f;

	test_store(&forked, 0);
	f = tp_enqueue(pool, submit_ex_forks_task, pool);
	assert_non_null(f);
	check(test_await(&forked, 10000));
	check_eq(tp_pool_shutdown(pool, TP_SHUTDOWN_CANCEL), 0);
	wait_release(&f, 1);
	refuses_then_destroy(pool);
}

static int enqueue_ex_forks_task(void *arg)
{
	tp_future *f[INSIDE_FORKS];
	long id0;

	fault_arm();
	id0 = submit_each(arg, ENQUEUE_EX, f, INSIDE_FORKS);
	fault_disarm();
	cancel_odd(f, id0, INSIDE_FORKS);
	wait_odd_cancelled(f, INSIDE_FORKS);
	return 0;
}

static void enqueue_ex_inside_half_cancelled(void)
{
	inside(enqueue_ex_forks_task);
}

static int group_ex_task(void *arg)
{
	group_ex_cancelled(arg, INSIDE_FORKS);
	return 0;
}

static void group_ex_inside_cancelled(void)
{
	inside(group_ex_task);
}

/* ---------------------------------------------------------------------------------------------
 * The embedding API: traces
 * ------------------------------------------------------------------------------------------ */

enum {
	TRACE_TASKS = 3 * TP__TRACE_CHUNK, /* scaled down by TP_STRESS_SCALE */
	TRACE_ROUND = 256,		   /* tasks between two waits for idleness */
	STOP_TASKS = 300,
};

static char trace_path[256];
static char trace_text[1 << 23];

/* What a trace file holds. */
struct trace_file {
	bool exists;
	bool whole;  /* a complete file: its opening and its closing lines */
	long spans;  /* "ph":"X" events */
	long flows;  /* "ph":"s" events (each with its "f") */
	long tasks;  /* spans of cat "task" */
	long events; /* otherData.events */
	long dropped;
};

static long occurrences(const char *text, const char *what)
{
	long n = 0;

	for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what))
		n++;
	return n;
}

static long number_after(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p != NULL ? strtol(p + strlen(key), NULL, 10) : -1;
}

static struct trace_file read_trace(void)
{
	struct trace_file t = { 0 };
	FILE *f = fopen(trace_path, "r");
	size_t len;

	if (f == NULL)
		return t;
	t.exists = true;
	len = fread(trace_text, 1, sizeof(trace_text) - 1, f);
	fclose(f);
	trace_text[len] = '\0';
	t.whole = len < sizeof(trace_text) - 1 &&
		  strncmp(trace_text, "{\"traceEvents\":[", 16) == 0 && len >= 3 &&
		  strcmp(trace_text + len - 3, "}}\n") == 0;
	t.spans = occurrences(trace_text, "\"ph\":\"X\"");
	t.flows = occurrences(trace_text, "\"ph\":\"s\"");
	t.tasks = occurrences(trace_text, "\"cat\":\"task\"");
	t.events = number_after(trace_text, "\"events\":");
	t.dropped = number_after(trace_text, "\"dropped_events\":");
	return t;
}

/* The file is complete and consistent, `tasks` tasks ran while it recorded (each a span, or
 * among the dropped events), and it counts `dropped` dropped events. Removes it. */
static void check_trace(long tasks, long dropped)
{
	struct trace_file t = read_trace();

	check(t.exists && t.whole);
	check_eq(t.events, t.spans + t.flows);
	check_eq(t.dropped, dropped);
	if (t.tasks > tasks || t.tasks + t.dropped < tasks)
		fail_msg("%s: %ld task spans and %ld dropped events for %ld tasks", plan_name,
			 t.tasks, t.dropped, tasks);
	(void)unlink(trace_path);
}

/* Runs `n` counting tasks as detached ones, waiting for idleness every TRACE_ROUND (so that
 * the records are recycled); returns how many were accepted. */
static long run_detached(tp_pool *pool, long n)
{
	long id0 = id_block(n), ok = 0;

	for (long i = 0; i < n; i++) {
		int err = tp_submit(pool, run_id, ID(id0 + i));

		if (err != 0) {
			note_refusal(err);
		} else {
			accept_id(id0 + i);
			ok++;
		}
		if ((i + 1) % TRACE_ROUND == 0 || i + 1 == n)
			wait_idle_ok(pool);
	}
	return ok;
}

/*
 * Stops the trace once the pool is idle (a task's span is recorded after its future completes,
 * before the task counts as finished), the test thread armed around the stop if `armed_stop`;
 * returns what the stop returned. The workers keep running meanwhile: one may begin an event
 * (a park's end, a wake-up) during the stop (ThreadSanitizer found the stop reading the word
 * such a worker exchanges, when it copied each lane whole).
 */
static int stop_trace(tp_pool *pool, bool armed_stop)
{
	int err;

	wait_idle_ok(pool);
	if (armed_stop)
		fault_arm();
	err = tp_pool_trace_stop(pool);
	if (armed_stop)
		fault_disarm();
	wait_idle_ok(pool);
	return err;
}

/* Nothing records any more, and a new trace starts, records and stops. */
static void trace_again(tp_pool *pool)
{
	check_eq(tp_pool_trace_stop(pool), ENOENT);
	(void)unlink(trace_path);
	check_eq(tp_pool_trace_start(pool, trace_path), 0);
	follow_up(pool);
	check_eq(stop_trace(pool, false), 0);
	check_trace(1, 0);
}

/* tp_pool_trace_start: refused, it had no effect (no trace runs, no file). */
static void trace_start(void)
{
	tp_pool *pool = test_pool_new(1);
	int err;

	(void)unlink(trace_path);
	fault_arm();
	err = tp_pool_trace_start(pool, trace_path);
	fault_disarm();
	if (err != 0) {
		note_refusal(err);
		check(!read_trace().exists);
	} else {
		follow_up(pool);
		check_eq(stop_trace(pool, false), 0);
		check_trace(1, 0);
	}
	trace_again(pool);
	tp_pool_destroy(pool);
}

/*
 * tp_pool_trace_stop with the allocations of writing failing (the lanes' table, the names'
 * table, each name): ENOMEM, or a complete file (a name that could not be copied reads "?").
 * Known bug: when a names' table cannot be allocated, the file has been opened already: the
 * stop returns ENOMEM and leaves an empty file at the path (one there before is truncated).
 */
static void trace_stop(void)
{
	tp_pool *pool = test_pool_new(2);
	long tasks;
	int err;

	(void)unlink(trace_path);
	check_eq(tp_pool_trace_start(pool, trace_path), 0);
	tasks = run_detached(pool, STOP_TASKS);
	err = stop_trace(pool, true);
	if (err != 0) {
		note_refusal(err);
		/* A failed stop writes no file (these plans found it truncating one). */
		check_eq(read_trace().exists, false);
	} else {
		check_trace(tasks, 0);
	}
	(void)unlink(trace_path);
	trace_again(pool);
	tp_pool_destroy(pool);
}

/* tp_pool_destroy of a pool whose trace runs: the shutdown writes it, or logs why not (to a
 * logger that says nothing here); nothing leaks either way. */
static void destroy_traced(void)
{
	tp_logger *quiet = tp_logger_create(TP_LOG_OFF);
	tp_pool_options o;
	tp_pool *pool;
	long tasks;

	assert_non_null(quiet);
	tp_pool_options_init(&o);
	o.num_threads = 2;
	o.logger = quiet;
	pool = tp_pool_create_ex(&o);
	assert_non_null(pool);
	(void)unlink(trace_path);
	check_eq(tp_pool_trace_start(pool, trace_path), 0);
	tasks = run_detached(pool, STOP_TASKS);
	fault_arm();
	tp_pool_destroy(pool);
	fault_disarm();
	if (test_load(&failed[SITE_ALLOC]) == 0) {
		check_trace(tasks, 0);
	} else {
		struct trace_file t = read_trace();

		/* Written whole (names that could not be copied read "?"), or not at all. */
		check_eq(t.exists && !t.whole, false);
	}
	(void)unlink(trace_path);
	tp_logger_destroy(quiet);
}

/* Recording with every thread armed, counting only the lanes' chunks: an event that finds no
 * chunk is dropped and counted in the file (exactly one per failed chunk), never lost. */
static void trace_recording(void)
{
	tp_pool *pool = test_pool_new(2);
	long tasks;

	(void)unlink(trace_path);
	check_eq(tp_pool_trace_start(pool, trace_path), 0);
	fault_arm_all();
	tasks = run_detached(pool, test_scaled(TRACE_TASKS));
	fault_disarm_all();
	check_eq(stop_trace(pool, false), 0);
	check_trace(tasks, test_load(&failed[SITE_ALLOC]));
	trace_again(pool);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * The embedding API: reduces with accumulators larger than TP_REDUCE_MAX_SIZE, try loops
 * ------------------------------------------------------------------------------------------ */

/*
 * A 4 KiB accumulator: sums of the iterations by residue, and the range it folded, which a body
 * or a combine checks to be contiguous and in iteration order (`bad` counts the others).
 */
enum {
	BIG_SUMS = 509
};

struct big_acc {
	long lo, hi, bad; /* [lo, hi) folded; lo == -1: nothing yet */
	long sum[BIG_SUMS];
};
_Static_assert(sizeof(struct big_acc) == 4096, "4 KiB");
_Static_assert(sizeof(struct big_acc) > TP_REDUCE_MAX_SIZE, "copies of it are malloc'd");

static struct big_acc big_identity, big_expected, big_untouched;

/* ns of busy work per iteration in the reduces, so that idle workers ask for splits. */
static const long big_spin_ns = 1000;

static void big_body(size_t begin, size_t end, void *acc, void *ctx)
{
	struct big_acc *a = acc;

	if (ctx != NULL)
		test_busy_ns(*(const long *)ctx * (long)(end - begin));
	if (a->lo == -1)
		a->lo = a->hi = (long)begin;
	if (a->hi != (long)begin)
		a->bad++;
	for (size_t i = begin; i < end; i++)
		a->sum[i % BIG_SUMS] += (long)i;
	a->hi = (long)end;
}

static void big_combine(void *acc, const void *other, void *ctx)
{
	struct big_acc *a = acc;
	const struct big_acc *b = other;

	(void)ctx;
	if (b->lo == -1)
		return;
	if (a->lo == -1) {
		*a = *b;
		return;
	}
	if (a->hi != b->lo)
		a->bad++;
	a->hi = b->hi;
	a->bad += b->bad;
	for (size_t i = 0; i < BIG_SUMS; i++)
		a->sum[i] += b->sum[i];
}

static void big_init(void)
{
	memset(&big_identity, 0, sizeof(big_identity));
	big_identity.lo = big_identity.hi = -1;
	big_expected = big_identity;
	big_body(0, LOOP_N, &big_expected, NULL);
	memset(&big_untouched, 0x5a, sizeof(big_untouched));
}

/* The reduce returned `err`: 0 with the exact result, or ENOMEM with `result` untouched. */
static int big_reduce(tp_pool *pool, bool armed_here)
{
	struct big_acc result = big_untouched;
	int err;

	if (armed_here)
		fault_arm();
	err = tp_parallel_reduce(pool, 0, LOOP_N, 1, &result, &big_identity, sizeof(result),
				 big_body, big_combine, (void *)&big_spin_ns);
	if (armed_here)
		fault_disarm();
	if (err != 0) {
		note_refusal(err);
		if (memcmp(&result, &big_untouched, sizeof(result)) != 0)
			test_inc(&wrong_results);
	} else if (memcmp(&result, &big_expected, sizeof(result)) != 0) {
		test_inc(&wrong_results);
	}
	return err;
}

/* From outside, the test thread armed: the root's copy, then the loop's record. */
static void big_reduce_outside(void)
{
	tp_pool *pool = test_pool_new(2);

	(void)big_reduce(pool, true);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* Inside a task on a pool of one worker (nobody asks for a split): the root's copy. */
static int big_reduce_task(void *arg)
{
	(void)big_reduce(arg, true);
	return 0;
}

static void big_reduce_inside(void)
{
	inside(big_reduce_task);
}

/*
 * Every thread armed, counting only 4 KiB blocks: the first is the root's copy (the test thread
 * makes it before it submits the loop), every later one a split's. A failed split does not
 * fail the loop: that range goes on serially, and the result stays exact.
 */
static void big_reduce_splits(void)
{
	tp_pool *pool = test_pool_new(LOAD_THREADS);
	int err;

	fault_arm_all();
	err = big_reduce(pool, false);
	fault_disarm_all();
	check_eq(err, plan.mode != MODE_COUNT && plan.n == 1 ? ENOMEM : 0);
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* tp_parallel_try_for from outside, the test thread armed: a loop that runs whole (it ends
 * before STOP_AT), then one that stops. Refused (ENOMEM: the loop's record): no body ran. */
static void try_for_outside(void)
{
	tp_pool *pool = test_pool_new(2);
	int whole, stop;

	memset(loop_hits, 0, sizeof(loop_hits));
	memset(try_hits, 0, sizeof(try_hits));
	fault_arm();
	whole = tp_parallel_try_for(pool, 0, STOP_AT, 0, try_body, loop_hits);
	stop = tp_parallel_try_for(pool, 0, LOOP_N, 0, try_body, try_hits);
	fault_disarm();
	if (whole != 0)
		note_refusal(whole);
	for (size_t i = 0; i < LOOP_N; i++)
		if (test_load(&loop_hits[i]) != (whole == 0 && i < STOP_AT ? 1 : 0))
			fail_msg("%s: iteration %zu ran %ld times (loop: %d)", plan_name, i,
				 test_load(&loop_hits[i]), whole);
	if (stop != STOP_CODE)
		note_refusal(stop);
	check(try_hits_ok(try_hits, stop == STOP_CODE));
	follow_up(pool);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * The embedding API: calls that allocate nothing
 * ------------------------------------------------------------------------------------------ */

enum {
	IDLE_TASKS = 64
};

/*
 * tp_pool_wait_idle (timing out while a task holds a worker, then returning once the pool is
 * idle, with and without a deadline) and tp_pool_stats (busy, then idle), the test thread armed:
 * not one wrapped call, frees included.
 */
static void idle_and_stats(void)
{
	tp_worker_stats per[2];
	tp_stats busy = { .per_worker = per, .per_worker_len = 2 }, idle = busy;
	tp_future *gate, *f[IDLE_TASKS];
	tp_pool *pool = held_pool(2, gate_task, &gate);
	struct timespec soon, later = test_deadline_ms(20000);
	int timed_out, busy_err, idle_err, idle_until_err, idle_stats_err;

	enqueue_each(pool, f, IDLE_TASKS);
	wait_release(f, IDLE_TASKS);
	soon = test_deadline_ms(5);
	fault_arm();
	timed_out = tp_pool_wait_idle(pool, &soon);
	busy_err = tp_pool_stats(pool, &busy);
	test_store(&gate_open, 1);
	idle_err = tp_pool_wait_idle(pool, NULL);
	idle_until_err = tp_pool_wait_idle(pool, &later);
	idle_stats_err = tp_pool_stats(pool, &idle);
	fault_disarm();
	check_eq(test_load(&calls[SITE_ALLOC]), 0);
	check_eq(test_load(&calls[SITE_THREAD]), 0);
	check_eq(test_load(&armed_frees), 0);
	check_eq(timed_out, ETIMEDOUT);
	check_eq(busy_err, 0);
	check_eq(busy.running, 1); /* the gate task */
	check_eq(busy.queued, 0);
	check_eq(idle_err, 0);
	check_eq(idle_until_err, 0);
	check_eq(idle_stats_err, 0);
	check_eq(idle.workers, 2);
	check_eq(idle.per_worker_len, 2);
	check_eq(idle.running, 0);
	check_eq(idle.queued, 0);
	check_eq(idle.total.tasks, per[0].tasks + per[1].tasks);
	check_eq(idle.total.tasks, IDLE_TASKS + 1);
	wait_release(&gate, 1);
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

/*
 * Plans for a scenario whose K varies from run to run: nothing from the first counted call on;
 * one failure at the first, the second, the middle and the last call of the counting run; every
 * call from the second and from the middle one on.
 */
static void sampled_plans(const struct scenario *s)
{
	long k = count_run(s);
	const long nth[] = { 1, 2, k / 2, k };
	const long from[] = { 1, 2, k / 2 };

	for (size_t i = 0; i < sizeof(nth) / sizeof(nth[0]); i++)
		if (nth[i] >= 1 && (i == 0 || nth[i] > nth[i - 1]))
			run_listed(s, MODE_NTH, nth[i], false);
	for (size_t i = 0; i < sizeof(from) / sizeof(from[0]); i++)
		if (from[i] >= 1 && (i == 0 || from[i] > from[i - 1]))
			run_listed(s, MODE_FROM, from[i], false);
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

/* The embedding API. */
static const struct scenario scen_create_ex_compact_alloc = {
	.name = "tp_pool_create_ex (name, hooks, stack, compact)",
	.run = create_ex_compact,
	.site = SITE_ALLOC,
	.must_refuse = true
};
static const struct scenario scen_create_ex_compact_thread = {
	.name = "tp_pool_create_ex (name, hooks, stack, compact)",
	.run = create_ex_compact,
	.site = SITE_THREAD,
	.must_refuse = true
};
static const struct scenario scen_create_ex_list_alloc = {
	.name = "tp_pool_create_ex (long name, hooks, list)",
	.run = create_ex_list,
	.site = SITE_ALLOC,
	.must_refuse = true
};
static const struct scenario scen_create_ex_list_thread = {
	.name = "tp_pool_create_ex (long name, hooks, list)",
	.run = create_ex_list,
	.site = SITE_THREAD,
	.must_refuse = true
};
static const struct scenario scen_submit_out = { .name = "tp_submit from outside",
						 .run = submit_outside,
						 .must_refuse = true };
static const struct scenario scen_submit_ex_out = {
	.name = "tp_submit_ex from outside, CANCEL shutdown",
	.run = submit_ex_outside_cancelled,
	.must_refuse = true
};
static const struct scenario scen_enqueue_ex_out = {
	.name = "tp_enqueue_ex from outside, odd ones cancelled",
	.run = enqueue_ex_outside_half_cancelled,
	.must_refuse = true
};
static const struct scenario scen_group_ex_out = {
	.name = "tp_group_spawn_ex from outside, group cancelled",
	.run = group_ex_outside_cancelled,
	.must_refuse = true
};
static const struct scenario scen_submit_in = {
	.name = "tp_submit inside a task", .run = submit_inside, .must_refuse = true, .growth = true
};
static const struct scenario scen_submit_ex_in = {
	.name = "tp_submit_ex inside a task, CANCEL shutdown",
	.run = submit_ex_inside_cancelled,
	.must_refuse = true,
	.growth = true
};
static const struct scenario scen_enqueue_ex_in = {
	.name = "tp_enqueue_ex inside a task, odd ones cancelled",
	.run = enqueue_ex_inside_half_cancelled,
	.must_refuse = true,
	.growth = true
};
static const struct scenario scen_group_ex_in = {
	.name = "tp_group_spawn_ex inside a task, group cancelled",
	.run = group_ex_inside_cancelled,
	.must_refuse = true,
	.growth = true
};
static const struct scenario scen_trace_start = { .name = "tp_pool_trace_start",
						  .run = trace_start,
						  .must_refuse = true };
/* A name that cannot be copied reads "?": not every failure refuses the stop. */
static const struct scenario scen_trace_stop = { .name = "tp_pool_trace_stop", .run = trace_stop };
static const struct scenario scen_destroy_traced = { .name = "tp_pool_destroy while tracing",
						     .run = destroy_traced };
static const struct scenario scen_trace_chunks = { .name = "trace recording (lanes' chunks)",
						   .run = trace_recording,
						   .only_size = sizeof(struct tp__trace_chunk) };
static const struct scenario scen_big_out = {
	.name = "tp_parallel_reduce from outside, 4 KiB accumulator",
	.run = big_reduce_outside,
	.must_refuse = true
};
static const struct scenario scen_big_in = {
	.name = "tp_parallel_reduce inside a task, 4 KiB accumulator",
	.run = big_reduce_inside,
	.must_refuse = true
};
static const struct scenario scen_big_splits = {
	.name = "tp_parallel_reduce, 4 KiB accumulator, splits",
	.run = big_reduce_splits,
	.only_size = sizeof(struct big_acc)
};
static const struct scenario scen_try_out = { .name = "tp_parallel_try_for from outside",
					      .run = try_for_outside,
					      .must_refuse = true };
static const struct scenario scen_idle_stats = { .name = "tp_pool_wait_idle and tp_pool_stats",
						 .run = idle_and_stats };

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

/* Every plan of both modes. */
#define BOTH_MODES(test, scen)                                                                     \
	static void test(void **state)                                                             \
	{                                                                                          \
		(void)state;                                                                       \
		run_plans(&(scen), MODE_NTH);                                                      \
		run_plans(&(scen), MODE_FROM);                                                     \
	}

BOTH_MODES(fault_pool_create_ex_compact_alloc, scen_create_ex_compact_alloc)
BOTH_MODES(fault_pool_create_ex_compact_thread, scen_create_ex_compact_thread)
BOTH_MODES(fault_pool_create_ex_list_alloc, scen_create_ex_list_alloc)
BOTH_MODES(fault_pool_create_ex_list_thread, scen_create_ex_list_thread)
BOTH_MODES(fault_submit_outside, scen_submit_out)
BOTH_MODES(fault_submit_ex_outside_cancelled, scen_submit_ex_out)
BOTH_MODES(fault_enqueue_ex_outside_cancelled, scen_enqueue_ex_out)
BOTH_MODES(fault_group_spawn_ex_outside_cancelled, scen_group_ex_out)
BOTH_MODES(fault_submit_inside, scen_submit_in)
BOTH_MODES(fault_submit_ex_inside_cancelled, scen_submit_ex_in)
BOTH_MODES(fault_enqueue_ex_inside_cancelled, scen_enqueue_ex_in)
BOTH_MODES(fault_group_spawn_ex_inside_cancelled, scen_group_ex_in)
BOTH_MODES(fault_trace_start, scen_trace_start)
BOTH_MODES(fault_trace_stop, scen_trace_stop)
BOTH_MODES(fault_destroy_while_tracing, scen_destroy_traced)
BOTH_MODES(fault_parallel_reduce_big_outside, scen_big_out)
BOTH_MODES(fault_parallel_reduce_big_inside, scen_big_in)
BOTH_MODES(fault_parallel_try_for_outside, scen_try_out)

static void fault_trace_recording_chunks(void **state)
{
	(void)state;
	sampled_plans(&scen_trace_chunks);
}

static void fault_parallel_reduce_big_splits(void **state)
{
	(void)state;
	sampled_plans(&scen_big_splits);
}

/* The counting run alone: its checks require that no call reached the wrappers. */
static void fault_wait_idle_and_stats_allocate_nothing(void **state)
{
	(void)state;
	run_one(&scen_idle_stats, MODE_COUNT, 0, false);
}

/* The CPUs the TP_PLACE_LIST plans list, the reduces' identity and result, the trace's path. */
static void setup_embedding(void)
{
	const char *tmp = getenv("TMPDIR");
	cpu_set_t set;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--)
		if (CPU_ISSET(cpu, &set))
			list_cpus[list_ncpus++] = cpu;
	assert_true(list_ncpus > 0);
	big_init();
	snprintf(trace_path, sizeof(trace_path), "%s/tp-fault-%ld.json",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp", (long)getpid());
}

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
		cmocka_unit_test(fault_pool_create_ex_compact_alloc),
		cmocka_unit_test(fault_pool_create_ex_compact_thread),
		cmocka_unit_test(fault_pool_create_ex_list_alloc),
		cmocka_unit_test(fault_pool_create_ex_list_thread),
		cmocka_unit_test(fault_submit_outside),
		cmocka_unit_test(fault_submit_ex_outside_cancelled),
		cmocka_unit_test(fault_enqueue_ex_outside_cancelled),
		cmocka_unit_test(fault_group_spawn_ex_outside_cancelled),
		cmocka_unit_test(fault_submit_inside),
		cmocka_unit_test(fault_submit_ex_inside_cancelled),
		cmocka_unit_test(fault_enqueue_ex_inside_cancelled),
		cmocka_unit_test(fault_group_spawn_ex_inside_cancelled),
		cmocka_unit_test(fault_trace_start),
		cmocka_unit_test(fault_trace_stop),
		cmocka_unit_test(fault_destroy_while_tracing),
		cmocka_unit_test(fault_trace_recording_chunks),
		cmocka_unit_test(fault_parallel_reduce_big_outside),
		cmocka_unit_test(fault_parallel_reduce_big_inside),
		cmocka_unit_test(fault_parallel_reduce_big_splits),
		cmocka_unit_test(fault_parallel_try_for_outside),
		cmocka_unit_test(fault_wait_idle_and_stats_allocate_nothing),
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
	setup_embedding();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	printf("# %ld plans run\n", plans_run);
	return rc;
}
