/*
 * test-forkjoin.c - tp_spawn()/tp_join() with caller-owned frames: results against the serial
 * computation on pools of 1, 2 and 8 threads, task codes through tp_join(), joins in any order,
 * many children of one task, deep and unbalanced recursion at the default thread stack size,
 * spawn/join outside any pool (serial semantics), frames mixed with futures, and every frame run
 * exactly once under randomised timing.
 *
 * cmocka is not thread-safe: tasks only record what they saw (plain fields read after the join,
 * or atomic counters); the test thread asserts after waiting for the root task.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

static long fib_serial(int n)
{
	return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

/* fib(27) (318k spawns) normally; less under valgrind (TP_STRESS_SCALE < 1). */
static int fib_n(void)
{
	return test_scaled(100) < 100 ? 18 : 27;
}

/* ---------------------------------------------------------------------------------------------
 * Recursive fib with frames: one local tp_frame per call; fib(n-1) spawned, fib(n-2) inline.
 * ------------------------------------------------------------------------------------------ */

struct fib {
	int n;
	int code; /* tp_join's answer for the spawned child, if it was not 0 */
	long result;
};

static int fib_frame(void *arg)
{
	struct fib *a = arg;
	struct fib left, right;
	tp_frame t;
	int code;

	if (a->n < 2) {
		a->result = a->n;
		return 0;
	}
	left = (struct fib){ a->n - 1, 0, 0 };
	right = (struct fib){ a->n - 2, 0, 0 };
	tp_spawn(&t, fib_frame, &left);
	fib_frame(&right);
	code = tp_join(&t);
	a->result = left.result + right.result;
	/* Propagate the first failure seen below (none expected). */
	if (code != 0 && a->code == 0)
		a->code = code;
	if (left.code != 0 && a->code == 0)
		a->code = left.code;
	if (right.code != 0 && a->code == 0)
		a->code = right.code;
	return a->code;
}

static void fib_on(size_t threads)
{
	tp_pool *pool = test_pool_new(threads);
	int n = fib_n();
	struct fib root = { n, 0, 0 };
	double t0 = test_now_ms();

	assert_int_equal(run_in_pool(pool, fib_frame, &root), 0);
	print_message("# fib(%d) with frames on %zu threads: %.1f ms\n", n, threads,
		      test_now_ms() - t0);
	assert_int_equal(root.code, 0);
	assert_int_equal(root.result, fib_serial(n));
	tp_pool_destroy(pool);
}

static void forkjoin_fib_matches_serial_1_thread(void **state)
{
	(void)state;
	fib_on(1);
}

static void forkjoin_fib_matches_serial_2_threads(void **state)
{
	(void)state;
	fib_on(2);
}

static void forkjoin_fib_matches_serial_8_threads(void **state)
{
	(void)state;
	fib_on(8);
}

/* ---------------------------------------------------------------------------------------------
 * Task codes through tp_join, and joins in any order
 * ------------------------------------------------------------------------------------------ */

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

/* A child that does a little work (so that on 2+ threads it is sometimes stolen), stores a value
 * only it computes, and returns its own code. */
struct child {
	long input;
	long output;
	long runs; /* atomic */
	int code;
};

static int child_fn(void *arg)
{
	struct child *c = arg;
	volatile long x = 0;

	test_inc(&c->runs);
	for (long i = 0; i < 200 + c->input % 7 * 100; i++)
		x += i;
	(void)x;
	c->output = c->input * 3 + 1;
	return c->code;
}

struct codes {
	int bad; /* count of tp_join answers that differ from the task's code */
	int zero_code;
	int forty_two;
};

/* Inside a task: a frame returning 42 and one returning 0, each joined. */
static int codes_task(void *arg)
{
	struct codes *c = arg;
	tp_frame a, b;

	tp_spawn(&a, return_arg, (void *)(intptr_t)42);
	tp_spawn(&b, return_arg, (void *)0);
	c->zero_code = tp_join(&b);
	c->forty_two = tp_join(&a);
	return 0;
}

static void forkjoin_join_returns_task_code(void **state)
{
	for (size_t threads = 1; threads <= 2; threads++) {
		tp_pool *pool = test_pool_new(threads);

		for (int i = 0; i < 100; i++) {
			struct codes c = { 0, -1, -1 };

			assert_int_equal(run_in_pool(pool, codes_task, &c), 0);
			assert_int_equal(c.forty_two, 42);
			assert_int_equal(c.zero_code, 0);
		}
		tp_pool_destroy(pool);
	}
	(void)state;
}

/* Spawn A, B, C; join A, then C, then B: each join gets its own task's code and result. */
struct ooo {
	struct child c[3];
	int code[3]; /* tp_join's answers for A, B, C */
};

static int out_of_order_task(void *arg)
{
	struct ooo *o = arg;
	tp_frame t[3];

	for (int i = 0; i < 3; i++)
		tp_spawn(&t[i], child_fn, &o->c[i]);
	o->code[0] = tp_join(&t[0]);
	o->code[2] = tp_join(&t[2]);
	o->code[1] = tp_join(&t[1]);
	return 0;
}

static void forkjoin_joins_out_of_order(void **state)
{
	static const size_t threads[] = { 1, 2, 8 };

	(void)state;
	for (size_t p = 0; p < 3; p++) {
		tp_pool *pool = test_pool_new(threads[p]);

		for (int it = 0; it < (int)test_scaled(300); it++) {
			struct ooo o;

			memset(&o, 0, sizeof(o));
			for (int i = 0; i < 3; i++) {
				o.c[i].input = 10 * it + i;
				o.c[i].code = 11 + i; /* A: 11, B: 12, C: 13 */
				o.code[i] = -1;
			}
			assert_int_equal(run_in_pool(pool, out_of_order_task, &o), 0);
			for (int i = 0; i < 3; i++) {
				assert_int_equal(o.code[i], 11 + i);
				assert_int_equal(o.c[i].runs, 1);
				assert_int_equal(o.c[i].output, o.c[i].input * 3 + 1);
			}
		}
		tp_pool_destroy(pool);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Many children of one task: 10000 spawns, joined in reverse order, then again in forward order.
 * ------------------------------------------------------------------------------------------ */

enum {
	MANY = 10000
};

struct many {
	tp_frame *frames;
	struct child *kids;
	long bad_code;	 /* joins that returned another code than the child's */
	long bad_output; /* children whose result was not there after the join */
	bool forward;
};

static int many_task(void *arg)
{
	struct many *m = arg;

	for (long i = 0; i < MANY; i++) {
		m->kids[i] = (struct child){ i, 0, 0, (int)(i % 50) };
		tp_spawn(&m->frames[i], child_fn, &m->kids[i]);
	}
	for (long k = 0; k < MANY; k++) {
		long i = m->forward ? k : MANY - 1 - k;

		if (tp_join(&m->frames[i]) != (int)(i % 50))
			m->bad_code++;
		/* After its join, the child's writes are visible to the joiner. */
		if (m->kids[i].output != i * 3 + 1)
			m->bad_output++;
	}
	return 0;
}

static void many_on(size_t threads)
{
	tp_pool *pool = test_pool_new(threads);
	struct many m = { calloc(MANY, sizeof(tp_frame)), calloc(MANY, sizeof(struct child)), 0, 0,
			  false };

	assert_non_null(m.frames);
	assert_non_null(m.kids);
	for (int round = 0; round < 2; round++) {
		m.forward = round == 1;
		m.bad_code = 0;
		m.bad_output = 0;
		assert_int_equal(run_in_pool(pool, many_task, &m), 0);
		assert_int_equal(m.bad_code, 0);
		assert_int_equal(m.bad_output, 0);
		for (long i = 0; i < MANY; i++)
			if (test_load(&m.kids[i].runs) != 1)
				fail_msg("%s joins: child %ld ran %ld times",
					 m.forward ? "forward" : "reverse", i,
					 test_load(&m.kids[i].runs));
	}
	free(m.frames);
	free(m.kids);
	tp_pool_destroy(pool);
}

static void forkjoin_many_children_1_thread(void **state)
{
	(void)state;
	many_on(1);
}

static void forkjoin_many_children_2_threads(void **state)
{
	(void)state;
	many_on(2);
}

static void forkjoin_many_children_8_threads(void **state)
{
	(void)state;
	many_on(8);
}

/* ---------------------------------------------------------------------------------------------
 * Deep recursion at the default thread stack size (the pool's workers use the default attributes).
 * Serial recursion of the same depth fits; the runtime must add only a bounded amount per level,
 * also when children are stolen (leapfrogging instead of running unrelated work on top).
 * ------------------------------------------------------------------------------------------ */

/* A linear chain: each level spawns one child (the next level) and joins it at once. */
struct chain {
	int depth; /* levels below this one */
	int code;
	long result; /* number of levels, this one included */
};

static int chain_frame(void *arg)
{
	struct chain *c = arg;
	struct chain next;
	tp_frame t;

	if (c->depth == 0) {
		c->result = 1;
		return 0;
	}
	next = (struct chain){ c->depth - 1, 0, 0 };
	tp_spawn(&t, chain_frame, &next);
	c->code = tp_join(&t);
	c->result = next.result + 1;
	return c->code != 0 ? c->code : next.code;
}

static void chain_on(size_t threads, int depth, int rounds)
{
	tp_pool *pool = test_pool_new(threads);

	for (int r = 0; r < rounds; r++) {
		struct chain root = { depth, 0, 0 };

		assert_int_equal(run_in_pool(pool, chain_frame, &root), 0);
		assert_int_equal(root.result, depth + 1);
	}
	tp_pool_destroy(pool);
}

static void forkjoin_deep_chain_1_thread(void **state)
{
	(void)state;
	chain_on(1, 10000, 2);
}

static void forkjoin_deep_chain_2_threads(void **state)
{
	(void)state;
	chain_on(2, 10000, (int)test_scaled(10));
}

/*
 * An unbalanced tree (a comb): every level has a deep side (the rest of the comb) and a small
 * side (fib(6) with frames). `spawn_deep` chooses which side is spawned (and so may be stolen)
 * and which runs inline. Returns the number of fib leaves + comb levels, checked against the
 * serial count.
 */
struct comb {
	int depth;
	bool spawn_deep;
	int code;
	long result;
};

enum {
	COMB_SMALL = 6
};

static int comb_frame(void *arg)
{
	struct comb *c = arg;
	struct comb deep = { c->depth - 1, c->spawn_deep, 0, 0 };
	struct fib small = { COMB_SMALL, 0, 0 };
	tp_frame t;
	int code;

	if (c->depth == 0) {
		c->result = 1;
		return 0;
	}
	if (c->spawn_deep) {
		tp_spawn(&t, comb_frame, &deep);
		fib_frame(&small);
	} else {
		tp_spawn(&t, fib_frame, &small);
		comb_frame(&deep);
	}
	code = tp_join(&t);
	c->result = 1 + deep.result + small.result;
	if (code != 0 || deep.code != 0 || small.code != 0)
		c->code = code != 0 ? code : deep.code != 0 ? deep.code : small.code;
	return c->code;
}

static void comb_on(size_t threads, int depth)
{
	tp_pool *pool = test_pool_new(threads);
	long want = 1 + (long)depth * (1 + fib_serial(COMB_SMALL));

	for (int side = 0; side < 2; side++) {
		struct comb root = { depth, side == 0, 0, 0 };

		assert_int_equal(run_in_pool(pool, comb_frame, &root), 0);
		assert_int_equal(root.result, want);
	}
	tp_pool_destroy(pool);
}

static void forkjoin_unbalanced_tree_1_thread(void **state)
{
	(void)state;
	comb_on(1, 5000);
}

static void forkjoin_unbalanced_tree_2_threads(void **state)
{
	(void)state;
	comb_on(2, 5000);
}

/* ---------------------------------------------------------------------------------------------
 * Outside any pool: tp_spawn only records the frame; tp_join runs it on the caller's thread.
 * ------------------------------------------------------------------------------------------ */

struct where {
	pthread_t thread;
	long runs; /* atomic */
	int code;
};

static int where_fn(void *arg)
{
	struct where *w = arg;

	w->thread = pthread_self();
	test_inc(&w->runs);
	return w->code;
}

/* Records the line of the first failed check (0: none); asserted later by the test thread. */
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond) && *bad == 0)                                                          \
			*bad = __LINE__;                                                           \
	} while (0)

/* Spawns three frames outside any pool, joins them out of order, then a recursive fib. */
static void outside_checks(int *bad)
{
	struct where w[3];
	tp_frame t[3];
	struct fib f = { 20, 0, 0 };

	for (int i = 0; i < 3; i++) {
		w[i] = (struct where){ pthread_self(), 0, 21 + i };
		tp_spawn(&t[i], where_fn, &w[i]);
	}
	/* Serial semantics: nothing ran yet (there is no pool to run it). */
	for (int i = 0; i < 3; i++)
		CHECK(test_load(&w[i].runs) == 0);
	CHECK(tp_join(&t[1]) == 22);
	CHECK(test_load(&w[1].runs) == 1);
	CHECK(test_load(&w[0].runs) == 0);
	CHECK(tp_join(&t[2]) == 23);
	CHECK(tp_join(&t[0]) == 21);
	for (int i = 0; i < 3; i++) {
		CHECK(test_load(&w[i].runs) == 1);
		CHECK(pthread_equal(w[i].thread, pthread_self()));
	}
	/* Recursive spawns outside any pool compute the serial result. */
	CHECK(fib_frame(&f) == 0);
	CHECK(f.result == fib_serial(20));
}

static void *outside_thread(void *arg)
{
	outside_checks(arg);
	return NULL;
}

static void forkjoin_outside_pool_runs_in_join(void **state)
{
	tp_pool *pool = test_pool_new(2); /* a pool exists, but these threads are not its workers */
	struct where w = { pthread_self(), 0, 0 };
	int bad_main = 0, bad_thread = 0;
	tp_frame t;
	pthread_t th;

	(void)state;
	outside_checks(&bad_main);
	assert_int_equal(bad_main, 0);
	/* The same from another thread, while a frame of this thread is spawned and not joined. */
	tp_spawn(&t, where_fn, &w);
	assert_int_equal(pthread_create(&th, NULL, outside_thread, &bad_thread), 0);
	pthread_join(th, NULL);
	assert_int_equal(bad_thread, 0);
	assert_int_equal(test_load(&w.runs), 0);
	assert_int_equal(tp_join(&t), 0);
	assert_int_equal(test_load(&w.runs), 1);
	assert_true(pthread_equal(w.thread, pthread_self()));
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Frames and futures in one task, in every interleaving of spawn/enqueue and join/wait.
 * ------------------------------------------------------------------------------------------ */

struct mix {
	tp_pool *pool;
	long bad; /* wrong results or codes seen inside the tasks */
};

/* A future whose task uses frames, and a frame whose task uses a future. */
struct fut_in_frame {
	tp_pool *pool;
	struct fib inner;
	int wait_code;
};

static int frame_with_future(void *arg)
{
	struct fut_in_frame *a = arg;
	tp_future *f = tp_enqueue(a->pool, fib_frame, &a->inner);

	if (f == NULL)
		return ENOMEM;
	a->wait_code = tp_future_wait(f);
	tp_future_release(f);
	return 0;
}

static int mix_task(void *arg)
{
	struct mix *m = arg;

	for (int order = 0; order < 4; order++) {
		struct fib a = { 15, 0, 0 }, b = { 14, 0, 0 };
		struct fut_in_frame c = { m->pool, { 12, 0, 0 }, -1 };
		tp_frame ta, tc;
		tp_future *fb;
		int ca = -1, cb = -1, cc = -1;

		if (order % 2 == 0) { /* frame spawned before the future is forked */
			tp_spawn(&ta, fib_frame, &a);
			fb = tp_enqueue(m->pool, fib_frame, &b);
		} else { /* future forked first: the frame is on top of it */
			fb = tp_enqueue(m->pool, fib_frame, &b);
			tp_spawn(&ta, fib_frame, &a);
		}
		if (fb == NULL)
			return ENOMEM;
		tp_spawn(&tc, frame_with_future, &c);
		cc = tp_join(&tc);
		if (order < 2) { /* join the frame, then wait for the future */
			ca = tp_join(&ta);
			cb = tp_future_wait(fb);
		} else { /* wait for the future (it may run the frame), then join the frame */
			cb = tp_future_wait(fb);
			ca = tp_join(&ta);
		}
		tp_future_release(fb);
		if (ca != 0 || cb != 0 || cc != 0 || c.wait_code != 0)
			m->bad++;
		if (a.result != fib_serial(15) || b.result != fib_serial(14) ||
		    c.inner.result != fib_serial(12))
			m->bad++;
	}
	return 0;
}

static void forkjoin_frames_and_futures_mix(void **state)
{
	static const size_t threads[] = { 1, 2, 8 };

	(void)state;
	for (size_t p = 0; p < 3; p++) {
		tp_pool *pool = test_pool_new(threads[p]);

		for (int it = 0; it < (int)test_scaled(20); it++) {
			struct mix m = { pool, 0 };

			assert_int_equal(run_in_pool(pool, mix_task, &m), 0);
			assert_int_equal(m.bad, 0);
		}
		tp_pool_destroy(pool);
	}
}

/* ---------------------------------------------------------------------------------------------
 * Randomised timing on 2 threads: a binary tree of frames (node i has children 2i+1 and 2i+2),
 * random delays, random join order; every node's task must run exactly once.
 * ------------------------------------------------------------------------------------------ */

enum {
	TREE_NODES = (1 << 13) - 1
};

struct tree {
	long runs[TREE_NODES]; /* atomic */
	long bad_code;	       /* atomic */
	uint64_t seed;
};

struct node {
	struct tree *tree;
	long index;
};

static int node_frame(void *arg)
{
	struct node *n = arg;
	uint64_t rng = n->tree->seed ^ ((uint64_t)n->index * 0x9E3779B97F4A7C15u);
	struct node kids[2];
	tp_frame t[2];
	int nk = 0;

	test_inc(&n->tree->runs[n->index]);
	test_jitter(&rng);
	for (int k = 0; k < 2; k++) {
		long c = 2 * n->index + 1 + k;

		if (c < TREE_NODES) {
			kids[nk] = (struct node){ n->tree, c };
			tp_spawn(&t[nk], node_frame, &kids[nk]);
			nk++;
		}
	}
	test_jitter(&rng);
	if (nk == 2 && test_rand(&rng) % 2) {
		if (tp_join(&t[0]) != (int)(kids[0].index % 5))
			test_inc(&n->tree->bad_code);
		if (tp_join(&t[1]) != (int)(kids[1].index % 5))
			test_inc(&n->tree->bad_code);
	} else {
		for (int k = nk - 1; k >= 0; k--)
			if (tp_join(&t[k]) != (int)(kids[k].index % 5))
				test_inc(&n->tree->bad_code);
	}
	return (int)(n->index % 5);
}

static void forkjoin_every_frame_runs_once_under_jitter(void **state)
{
	tp_pool *pool = test_pool_new(2);
	struct tree *tree = malloc(sizeof(*tree));
	uint64_t rng = (uint64_t)time(NULL);

	(void)state;
	assert_non_null(tree);
	print_message("# seed %llu\n", (unsigned long long)rng);
	for (int round = 0; round < (int)test_scaled(6); round++) {
		struct node root = { tree, 0 };

		memset(tree->runs, 0, sizeof(tree->runs));
		tree->bad_code = 0;
		tree->seed = test_rand(&rng);
		assert_int_equal(run_in_pool(pool, node_frame, &root), 0);
		assert_int_equal(test_load(&tree->bad_code), 0);
		for (long i = 0; i < TREE_NODES; i++)
			if (test_load(&tree->runs[i]) != 1)
				fail_msg("round %d: node %ld ran %ld times", round, i,
					 test_load(&tree->runs[i]));
	}
	free(tree);
	tp_pool_destroy(pool);
}

/* Bad input never crashes: NULL frames and NULL functions are EINVAL at the join. */
struct bad_input {
	int join_null, join_nofn;
};

static int bad_input_task(void *arg)
{
	struct bad_input *b = arg;
	tp_frame t;

	b->join_null = tp_join(NULL);
	tp_spawn(NULL, bad_input_task, arg); /* does nothing */
	tp_spawn(&t, NULL, NULL);
	b->join_nofn = tp_join(&t);
	return 0;
}

static void forkjoin_bad_input_is_einval(void **state)
{
	tp_pool *pool = tp_pool_create(2, NULL);
	struct bad_input inside = { -1, -1 }, outside = { -1, -1 };
	tp_future *f;

	(void)state;
	f = tp_enqueue(pool, bad_input_task, &inside);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	assert_int_equal(inside.join_null, EINVAL);
	assert_int_equal(inside.join_nofn, EINVAL);
	/* The same from a thread outside every pool. */
	assert_int_equal(bad_input_task(&outside), 0);
	assert_int_equal(outside.join_null, EINVAL);
	assert_int_equal(outside.join_nofn, EINVAL);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * A frame spawned on a worker, stolen and finished, joined from a thread outside every pool:
 * EINVAL (that thread is not its spawner), whatever state the frame is in; the spawner's own join
 * still returns the task's code.
 * ------------------------------------------------------------------------------------------ */

struct stolen {
	tp_pool *pool;
	tp_frame *frame;   /* handed to the test thread (atomic) */
	long runs;	   /* atomic */
	pthread_t spawner; /* the worker that spawned the frame */
	pthread_t ran_on;  /* where the frame ran */
	long outside_done; /* atomic: the test thread's join returned */
	int outside_rc;
	int stolen; /* the frame ran elsewhere before its spawner joined it */
	int waited; /* the test thread answered in time */
	int spawner_rc;
};

static int stolen_frame_fn(void *arg)
{
	struct stolen *s = arg;

	s->ran_on = pthread_self();
	test_inc(&s->runs);
	return 42;
}

static int stolen_spawner_task(void *arg)
{
	struct stolen *s = arg;
	double end = test_now_ms() + 5000;
	tp_future *nudge;
	tp_frame t;

	s->spawner = pthread_self();
	tp_spawn(&t, stolen_frame_fn, s);
	/* A fork publishes the private part: the frame, the oldest item, becomes stealable, and the
	 * idle worker is woken to take it. */
	nudge = tp_enqueue(s->pool, return_arg, (void *)0);
	if (nudge == NULL)
		return ENOMEM;
	/* Spin, without helping, until the other worker has run the frame. */
	while (test_load(&s->runs) == 0 && test_now_ms() < end)
		;
	s->stolen = test_load(&s->runs) == 1;
	/* The thief marks the frame done right after its function returned. */
	test_sleep_us(20000);
	__atomic_store_n(&s->frame, &t, __ATOMIC_RELEASE);
	s->waited = test_await(&s->outside_done, 10000);
	s->spawner_rc = tp_join(&t);
	if (tp_future_wait(nudge) != 0)
		s->spawner_rc = EIO;
	tp_future_release(nudge);
	return 0;
}

static void forkjoin_join_outside_pool_of_stolen_frame_einval(void **state)
{
	struct stolen s = { 0 };
	double end = test_now_ms() + 10000;
	tp_future *f;
	tp_frame *frame;

	(void)state;
	s.pool = test_pool_new(2);
	s.outside_rc = -1;
	f = tp_enqueue(s.pool, stolen_spawner_task, &s);
	assert_non_null(f);
	while ((frame = __atomic_load_n(&s.frame, __ATOMIC_ACQUIRE)) == NULL && test_now_ms() < end)
		test_sleep_us(100);
	if (frame != NULL)
		s.outside_rc = tp_join(frame);
	test_store(&s.outside_done, 1);
	{
		struct timespec d = test_deadline_ms(20000);

		assert_int_equal(tp_future_wait_until(f, &d), 0);
	}
	tp_future_release(f);
	tp_pool_destroy(s.pool);
	assert_non_null(frame);
	assert_true(s.waited);
	assert_true(s.stolen);
	assert_false(pthread_equal(s.ran_on, s.spawner));
	assert_int_equal(s.outside_rc, EINVAL);
	assert_int_equal(s.spawner_rc, 42);
	assert_int_equal(test_load(&s.runs), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(forkjoin_fib_matches_serial_1_thread),
		cmocka_unit_test(forkjoin_fib_matches_serial_2_threads),
		cmocka_unit_test(forkjoin_fib_matches_serial_8_threads),
		cmocka_unit_test(forkjoin_join_returns_task_code),
		cmocka_unit_test(forkjoin_bad_input_is_einval),
		cmocka_unit_test(forkjoin_joins_out_of_order),
		cmocka_unit_test(forkjoin_many_children_1_thread),
		cmocka_unit_test(forkjoin_many_children_2_threads),
		cmocka_unit_test(forkjoin_many_children_8_threads),
		cmocka_unit_test(forkjoin_deep_chain_1_thread),
		cmocka_unit_test(forkjoin_deep_chain_2_threads),
		cmocka_unit_test(forkjoin_unbalanced_tree_1_thread),
		cmocka_unit_test(forkjoin_unbalanced_tree_2_threads),
		cmocka_unit_test(forkjoin_outside_pool_runs_in_join),
		cmocka_unit_test(forkjoin_frames_and_futures_mix),
		cmocka_unit_test(forkjoin_every_frame_runs_once_under_jitter),
		cmocka_unit_test(forkjoin_join_outside_pool_of_stolen_frame_einval),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
