/*
 * stress-task.c - typed tasks (thread_pool_task.h) under randomised timing: random trees of
 * TP_SPAWN / TP_CALL / TP_JOIN on pools of 1, 2, 3 and 8 threads (oversubscribed on small
 * machines, on purpose), TP_RUN from the test thread and from 2-3 other threads into the same
 * pool at once, typed tasks that wait for futures and spawn/join frames with their own typed
 * spawns outstanding, a wide fan-out whose shared part thieves steal while the owner takes it
 * back, and the pool destroyed right after TP_RUN returns.
 *
 * Every tree is generated from the iteration's seed before it runs: each node has a unique id,
 * its children have consecutive ids, and the test knows every subtree's size and checksum. A node
 * counts its own run (exactly once), spawns its children newest last, may compute its last child
 * with TP_CALL, and joins the spawned ones newest first: each join must return that very child's
 * subtree (size and checksum), and the root the whole tree.
 *
 * Tiers: the short tier by default (a few seconds on 2 cores); TP_STRESS_LONG=1 runs 10x the
 * iterations. TP_STRESS_SCALE scales the counts and the tree sizes (valgrind: 0.05).
 * TP_STRESS_SEED fixes the seed (printed as a TAP comment); a failure names the iteration's own
 * seed, and TP_STRESS_ITER_SEED=that runs every iteration with it (same trees, pool sizes and
 * delays; the interleaving is the scheduler's).
 *
 * cmocka is not thread-safe: tasks and threads only record what they saw (atomics, and a message
 * written by the first to fail); the test thread asserts once TP_RUN has returned and every
 * thread is joined.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"
#include "thread_pool_task.h"

static uint64_t seed;

static bool long_tier(void)
{
	const char *l = getenv("TP_STRESS_LONG");

	return l != NULL && strcmp(l, "1") == 0;
}

static long iters(long n)
{
	return test_scaled(long_tier() ? 10 * n : n);
}

/* The seed of one iteration: the next of the test's stream, or TP_STRESS_ITER_SEED. */
static uint64_t iter_seed(uint64_t *rng)
{
	const char *s = getenv("TP_STRESS_ITER_SEED");
	uint64_t v = test_rand(rng);

	return s != NULL ? strtoull(s, NULL, 0) : v;
}

static uint64_t rnd(uint64_t *rng, uint64_t n)
{
	return n > 0 ? test_rand(rng) % n : 0;
}

/* A short delay: a yield, or a few microseconds on the CPU. */
static void short_delay(uint64_t *rng)
{
	if (rnd(rng, 4) == 0)
		sched_yield();
	else
		test_busy_ns((long)rnd(rng, 3000));
}

/* ---------------------------------------------------------------------------------------------
 * Trees: generated before they run, so that every result is known
 * ------------------------------------------------------------------------------------------ */

/* What a node does with its typed spawns outstanding (mixed trees only). */
enum action {
	ACT_NONE = 0,
	ACT_FUTURE,	  /* tp_enqueue a plain task, tp_future_wait it */
	ACT_FRAME,	  /* tp_spawn a frame, tp_join it */
	ACT_FRAME_FUTURE, /* a frame spawned around an enqueued task's wait */
	ACT_WAIT_UNTIL,	  /* tp_future_wait_until with a short deadline, then tp_future_wait */
	ACT_RUN,	  /* TP_RUN on the same pool from inside the task: a call */
	ACT_COUNT
};

/* The shape of a tree and how its nodes behave. */
struct shape {
	int max_nodes; /* at most this many nodes */
	int max_kids;  /* each node: 0..max_kids children */
	int root_kids; /* the root's children if > 0 (wide fan-out) */
	int max_depth; /* no children at this depth */
	int order;     /* which open node grows next: 0 oldest (wide), 1 newest (deep), 2 random */
	int call_1_in; /* a node with children computes its last one by TP_CALL, 1 in n (0 never) */
	int action_1_in;      /* a node does an action (enum action), 1 in n (0 never) */
	int jitter_1_in;      /* a node runs test_jitter, 1 in n (0 never) */
	int spawn_delay_1_in; /* a short delay after a spawn, 1 in n (0 never) */
	int join_delay_1_in;  /* a short delay after a join, 1 in n (0 never) */
	long leaf_ns;	      /* a leaf works up to this long (busy) */
};

struct tres {
	long nodes;
	uint64_t sum; /* checksum of the subtree's ids */
};

struct tree {
	tp_pool *pool;
	struct shape sh;
	uint64_t seed;
	int n;		       /* nodes, ids 0..n-1, root 0 */
	int *first;	       /* id of the first child */
	int *kids;	       /* children, the last one called when call[] is set */
	int *parent;	       /* -1 for the root */
	unsigned char *call;   /* the last child by TP_CALL */
	unsigned char *action; /* enum action */
	struct tres *want;     /* the subtree's expected result */
	long *runs;	       /* atomic: runs of each node */
	long *aux;	       /* atomic: runs of each node's plain tasks, 2 per node */
	int *who;	       /* atomic: the thread that ran each node (thread_tag) */
	int depth;	       /* of the deepest node */
	long bad;	       /* atomic: problems seen by tasks */
	long first_bad_set;    /* atomic: msg is written */
	char msg[256];	       /* the first problem a task saw */
};

/* A small number per thread, for telling which nodes ran away from their parent (stolen). */
static int thread_tag(void)
{
	static int next_tag;
	static _Thread_local int tag;

	if (tag == 0)
		tag = __atomic_add_fetch(&next_tag, 1, __ATOMIC_RELAXED);
	return tag;
}

/* Spawned children that ran on another thread than their parent: stolen, by a worker or by a
 * leapfrogging joiner. */
static long tree_stolen(const struct tree *t)
{
	long n = 0;

	for (int i = 1; i < t->n; i++) {
		int p = t->parent[i];

		if (!(t->call[p] && i == t->first[p] + t->kids[p] - 1) &&
		    __atomic_load_n(&t->who[i], __ATOMIC_RELAXED) !=
			    __atomic_load_n(&t->who[p], __ATOMIC_RELAXED))
			n++;
	}
	return n;
}

static uint64_t id_hash(int id)
{
	uint64_t z = (uint64_t)id * 0x9E3779B97F4A7C15u + 0x632BE59BD9B4E019u;

	return z ^ (z >> 29);
}

/* Records a problem seen off the test thread: counted, and the first one described. */
static void tree_bad(struct tree *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void tree_bad(struct tree *t, const char *fmt, ...)
{
	long expect = 0;

	test_inc(&t->bad);
	if (__atomic_compare_exchange_n(&t->first_bad_set, &expect, 1, false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST)) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(t->msg, sizeof(t->msg), fmt, ap);
		va_end(ap);
		test_store(&t->first_bad_set, 2);
	}
}

/* Allocates a tree of at most `cap` nodes; NULL if out of memory (no cmocka: any thread). */
static struct tree *tree_alloc(int cap)
{
	struct tree *t = calloc(1, sizeof(*t));
	size_t n = cap > 0 ? (size_t)cap : 1;

	if (t == NULL)
		return NULL;
	t->first = calloc(n, sizeof(int));
	t->kids = calloc(n, sizeof(int));
	t->parent = calloc(n, sizeof(int));
	t->call = calloc(n, 1);
	t->action = calloc(n, 1);
	t->want = calloc(n, sizeof(struct tres));
	t->runs = calloc(n, sizeof(long));
	t->aux = calloc(2 * n, sizeof(long));
	t->who = calloc(n, sizeof(int));
	if (t->first == NULL || t->kids == NULL || t->parent == NULL || t->call == NULL ||
	    t->action == NULL || t->want == NULL || t->runs == NULL || t->aux == NULL ||
	    t->who == NULL) {
		free(t->first);
		free(t->kids);
		free(t->parent);
		free(t->call);
		free(t->action);
		free(t->want);
		free(t->runs);
		free(t->aux);
		free(t->who);
		free(t);
		return NULL;
	}
	return t;
}

static void tree_free(struct tree *t)
{
	if (t == NULL)
		return;
	free(t->first);
	free(t->kids);
	free(t->parent);
	free(t->call);
	free(t->action);
	free(t->want);
	free(t->runs);
	free(t->aux);
	free(t->who);
	free(t);
}

/*
 * Generates the tree (t must hold sh->max_nodes nodes) from `s`: open nodes grow one at a time,
 * each getting its children at once, consecutive ids; then the expected results, bottom up (a
 * child's id is above its parent's). Resets the counters.
 */
static void tree_build(struct tree *t, const struct shape *sh, uint64_t s, tp_pool *pool)
{
	int cap = sh->max_nodes > 0 ? sh->max_nodes : 1;
	int lo = 0, hi = 0, n = 1;
	uint64_t rng = s;
	/* The open nodes (each pushed and popped once: cap entries) and the depths. */
	int *q = malloc((size_t)cap * sizeof(int));
	int *d = malloc((size_t)cap * sizeof(int));

	t->pool = pool;
	t->sh = *sh;
	t->seed = test_rand(&rng);
	t->n = 0;
	t->depth = 0;
	t->bad = 0;
	t->first_bad_set = 0;
	t->msg[0] = '\0';
	if (q == NULL || d == NULL) {
		free(q);
		free(d);
		tree_bad(t, "tree_build: out of memory");
		return;
	}
	memset(t->runs, 0, (size_t)cap * sizeof(long));
	memset(t->aux, 0, 2 * (size_t)cap * sizeof(long));
	memset(t->call, 0, (size_t)cap);
	memset(t->action, 0, (size_t)cap);
	q[hi++] = 0;
	d[0] = 0;
	t->parent[0] = -1;
	while (lo < hi) {
		int x, nk;

		if (sh->order == 1) {
			x = q[--hi];
		} else {
			if (sh->order == 2) {
				int j = lo + (int)rnd(&rng, (uint64_t)(hi - lo));
				int tmp = q[j];

				q[j] = q[lo];
				q[lo] = tmp;
			}
			x = q[lo++];
		}
		nk = x == 0 && sh->root_kids > 0 ? sh->root_kids
						 : (int)rnd(&rng, (uint64_t)sh->max_kids + 1);
		if (x == 0 && nk == 0 && sh->max_kids > 0)
			nk = 1;
		if (d[x] >= sh->max_depth)
			nk = 0;
		if (nk > cap - n)
			nk = cap - n;
		t->first[x] = n;
		t->kids[x] = nk;
		if (nk > 0 && sh->call_1_in > 0 && rnd(&rng, (uint64_t)sh->call_1_in) == 0)
			t->call[x] = 1;
		if (sh->action_1_in > 0 && rnd(&rng, (uint64_t)sh->action_1_in) == 0)
			t->action[x] = (unsigned char)(1 + rnd(&rng, ACT_COUNT - 1));
		for (int i = 0; i < nk; i++, n++) {
			t->parent[n] = x;
			d[n] = d[x] + 1;
			if (d[n] > t->depth)
				t->depth = d[n];
			q[hi++] = n;
		}
	}
	free(q);
	free(d);
	t->n = n;
	for (int i = 0; i < n; i++)
		t->want[i] = (struct tres){ 1, id_hash(i) };
	for (int i = n - 1; i > 0; i--) {
		t->want[t->parent[i]].nodes += t->want[i].nodes;
		t->want[t->parent[i]].sum += t->want[i].sum;
	}
}

/* The code a node's plain task returns: mostly 0, sometimes a failure to pass on. */
static int plain_code(int id, int which)
{
	return (id + which) % 5 == 3 ? 40 + which : 0;
}

/* ---- the typed tasks ---- */

TP_TASK_1(long, sfib, int, n)
{
	long x, y;

	if (n < 2)
		return n;
	TP_SPAWN(sfib, n - 1);
	y = TP_CALL(sfib, n - 2);
	x = TP_JOIN(sfib);
	return x + y;
}

static long fib_serial(int n)
{
	long a = 0, b = 1;

	for (int i = 0; i < n; i++) {
		long c = a + b;

		a = b;
		b = c;
	}
	return a;
}

/* A plain task of node `id` (a future's or a frame's): counts itself, sometimes runs a typed
 * task with TP_RUN (on a worker: a call, on the stack's top that the runtime finds). */
struct plain {
	struct tree *t;
	int id;
	int which; /* 0 or 1: the node's first or second plain task */
	int fib_n; /* > 0: TP_RUN(sfib, fib_n) */
};

static int plain_fn(void *arg)
{
	struct plain *p = arg;
	struct tree *t = p->t;
	uint64_t rng = t->seed ^ id_hash(p->id) ^ (uint64_t)p->which;

	test_inc(&t->aux[2 * p->id + p->which]);
	test_jitter(&rng);
	if (p->fib_n > 0) {
		long r = -1;
		int err = TP_RUN(t->pool, sfib, &r, p->fib_n);

		if (err != 0 || r != fib_serial(p->fib_n))
			tree_bad(t, "node %d: TP_RUN(sfib, %d) in a plain task: err %d, result %ld",
				 p->id, p->fib_n, err, r);
	}
	return plain_code(p->id, p->which);
}

static void check_code(struct tree *t, int id, const char *what, int got, int want)
{
	if (got != want)
		tree_bad(t, "node %d: %s returned %d, expected %d", id, what, got, want);
}

/* Node id's action, with its typed spawns outstanding (plain thread_pool.h calls only). */
static void node_action(struct tree *t, int id, uint64_t *rng)
{
	struct plain p0 = { t, id, 0, rnd(rng, 3) == 0 ? 6 + (int)rnd(rng, 6) : 0 };
	struct plain p1 = { t, id, 1, rnd(rng, 3) == 0 ? 6 + (int)rnd(rng, 6) : 0 };
	int want0 = plain_code(id, 0), want1 = plain_code(id, 1);
	tp_future *f;
	tp_frame fr;

	switch ((enum action)t->action[id]) {
	case ACT_FUTURE:
		f = tp_enqueue(t->pool, plain_fn, &p0);
		if (f == NULL) {
			tree_bad(t, "node %d: tp_enqueue refused (errno %d)", id, errno);
			break;
		}
		test_jitter(rng);
		check_code(t, id, "tp_future_wait", tp_future_wait(f), want0);
		tp_future_release(f);
		break;
	case ACT_FRAME:
		tp_spawn(&fr, plain_fn, &p0);
		test_jitter(rng);
		check_code(t, id, "tp_join", tp_join(&fr), want0);
		break;
	case ACT_FRAME_FUTURE:
		tp_spawn(&fr, plain_fn, &p0);
		f = tp_enqueue(t->pool, plain_fn, &p1);
		if (f == NULL) {
			tree_bad(t, "node %d: tp_enqueue refused (errno %d)", id, errno);
		} else {
			check_code(t, id, "tp_future_wait", tp_future_wait(f), want1);
			tp_future_release(f);
		}
		check_code(t, id, "tp_join", tp_join(&fr), want0);
		break;
	case ACT_WAIT_UNTIL: {
		struct timespec d;
		int rc;

		f = tp_enqueue(t->pool, plain_fn, &p0);
		if (f == NULL) {
			tree_bad(t, "node %d: tp_enqueue refused (errno %d)", id, errno);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &d);
		d.tv_nsec += (long)rnd(rng, 100) * 1000L;
		if (d.tv_nsec >= 1000000000L) {
			d.tv_sec++;
			d.tv_nsec -= 1000000000L;
		}
		rc = tp_future_wait_until(f, &d);
		if (rc != want0 && rc != ETIMEDOUT)
			tree_bad(t, "node %d: tp_future_wait_until returned %d", id, rc);
		check_code(t, id, "tp_future_wait", tp_future_wait(f), want0);
		tp_future_release(f);
		break;
	}
	case ACT_RUN: {
		long r = -1;
		int n = 4 + (int)rnd(rng, 10);
		int err = TP_RUN(t->pool, sfib, &r, n);

		if (err != 0 || r != fib_serial(n))
			tree_bad(t, "node %d: TP_RUN(sfib, %d) in a typed task: err %d, result %ld",
				 id, n, err, r);
		break;
	}
	default:
		break;
	}
}

static void check_child(struct tree *t, int id, int child, struct tres got, const char *how)
{
	if (got.nodes != t->want[child].nodes || got.sum != t->want[child].sum)
		tree_bad(
			t,
			"node %d: %s of child %d returned %ld nodes (checksum %#llx), expected %ld "
			"(%#llx)",
			id, how, child, got.nodes, (unsigned long long)got.sum,
			t->want[child].nodes, (unsigned long long)t->want[child].sum);
}

/* A node: counts its run, spawns its children, works, maybe calls its last child, joins. */
TP_TASK_2(struct tres, node, struct tree *, t, int, id)
{
	const struct shape *sh = &t->sh;
	uint64_t rng = t->seed ^ id_hash(id);
	int first = t->first[id], nspawn = t->kids[id] - t->call[id];
	struct tres r = { 1, id_hash(id) }, c;

	if (test_inc(&t->runs[id]) != 1)
		tree_bad(t, "node %d ran twice", id);
	__atomic_store_n(&t->who[id], thread_tag(), __ATOMIC_RELAXED);
	if (sh->jitter_1_in > 0 && rnd(&rng, (uint64_t)sh->jitter_1_in) == 0)
		test_jitter(&rng);
	for (int i = 0; i < nspawn; i++) {
		TP_SPAWN(node, t, first + i);
		if (sh->spawn_delay_1_in > 0 && rnd(&rng, (uint64_t)sh->spawn_delay_1_in) == 0)
			short_delay(&rng);
	}
	if (t->action[id] != ACT_NONE)
		node_action(t, id, &rng);
	if (t->kids[id] == 0 && sh->leaf_ns > 0)
		test_busy_ns((long)rnd(&rng, (uint64_t)sh->leaf_ns));
	if (t->call[id]) {
		c = TP_CALL(node, t, first + nspawn);
		check_child(t, id, first + nspawn, c, "TP_CALL");
		r.nodes += c.nodes;
		r.sum += c.sum;
	}
	for (int i = nspawn - 1; i >= 0; i--) {
		c = TP_JOIN(node);
		check_child(t, id, first + i, c, "TP_JOIN");
		r.nodes += c.nodes;
		r.sum += c.sum;
		if (sh->join_delay_1_in > 0 && rnd(&rng, (uint64_t)sh->join_delay_1_in) == 0)
			short_delay(&rng);
	}
	return r;
}

/*
 * Runs the tree with TP_RUN (from this thread, or from an ordinary task on the pool when
 * via_task) and checks everything; false with `msg` filled in on a problem. No cmocka: any
 * thread.
 */
struct via {
	struct tree *t;
	struct tres r;
	int err;
};

static int via_fn(void *arg)
{
	struct via *v = arg;

	v->err = TP_RUN(v->t->pool, node, &v->r, v->t, 0);
	return 0;
}

static bool tree_run_check(struct tree *t, bool via_task, char *msg, size_t len)
{
	struct tres r = { -1, 0 };
	int err;

	if (t->n == 0) {
		snprintf(msg, len, "%s", t->msg);
		return false;
	}
	if (via_task) {
		struct via v = { t, { -1, 0 }, -1 };
		tp_future *f = tp_enqueue(t->pool, via_fn, &v);

		if (f == NULL) {
			snprintf(msg, len, "tp_enqueue refused (errno %d)", errno);
			return false;
		}
		err = tp_future_wait(f);
		tp_future_release(f);
		if (err == 0)
			err = v.err;
		r = v.r;
	} else {
		err = TP_RUN(t->pool, node, &r, t, 0);
	}
	if (err != 0) {
		snprintf(msg, len, "TP_RUN returned %d", err);
		return false;
	}
	if (test_load(&t->bad) != 0) {
		snprintf(msg, len, "%ld problems seen by tasks, the first: %s", test_load(&t->bad),
			 t->msg);
		return false;
	}
	if (r.nodes != t->n || r.sum != t->want[0].sum) {
		snprintf(msg, len, "root returned %ld nodes (checksum %#llx), expected %d (%#llx)",
			 r.nodes, (unsigned long long)r.sum, t->n,
			 (unsigned long long)t->want[0].sum);
		return false;
	}
	for (int i = 0; i < t->n; i++) {
		int aux_want[2] = { 0, 0 };

		if (test_load(&t->runs[i]) != 1) {
			snprintf(msg, len, "node %d ran %ld times (expected exactly once)", i,
				 test_load(&t->runs[i]));
			return false;
		}
		switch ((enum action)t->action[i]) {
		case ACT_FUTURE:
		case ACT_FRAME:
		case ACT_WAIT_UNTIL:
			aux_want[0] = 1;
			break;
		case ACT_FRAME_FUTURE:
			aux_want[0] = aux_want[1] = 1;
			break;
		default:
			break;
		}
		for (int w = 0; w < 2; w++)
			if (test_load(&t->aux[2 * i + w]) != aux_want[w]) {
				snprintf(msg, len,
					 "node %d: plain task %d ran %ld times (expected %d)", i, w,
					 test_load(&t->aux[2 * i + w]), aux_want[w]);
				return false;
			}
	}
	return true;
}

/* The test thread's report of a failed iteration: everything needed to repeat it. */
static void fail_iteration(const char *test, long it, uint64_t s, size_t threads,
			   const struct tree *t, const char *msg)
{
	fail_msg("%s: iteration %ld (TP_STRESS_SEED=%llu, TP_STRESS_ITER_SEED=%#llx), %zu "
		 "threads, tree of %d nodes, depth %d: %s",
		 test, it, (unsigned long long)seed, (unsigned long long)s, threads, t->n, t->depth,
		 msg);
}

/* A random shape for a general tree of at most max_nodes nodes. */
static struct shape random_shape(uint64_t *rng, int max_nodes)
{
	struct shape sh = { 0 };

	sh.max_nodes = 1 + (int)rnd(rng, (uint64_t)max_nodes);
	sh.max_kids = 1 + (int)rnd(rng, 6);
	sh.root_kids = 0;
	sh.order = (int)rnd(rng, 3);
	sh.max_depth = sh.order == 1 ? 400 : 60;
	sh.call_1_in = 1 + (int)rnd(rng, 4);
	sh.action_1_in = 0;
	sh.jitter_1_in = 2 + (int)rnd(rng, 8);
	sh.spawn_delay_1_in = rnd(rng, 2) ? 4 + (int)rnd(rng, 16) : 0;
	sh.join_delay_1_in = rnd(rng, 2) ? 4 + (int)rnd(rng, 16) : 0;
	sh.leaf_ns = rnd(rng, 2) ? (long)rnd(rng, 5000) : 0;
	return sh;
}

/* Tree sizes shrink with TP_STRESS_SCALE too (valgrind), never below 16 nodes. */
static int scaled_nodes(int n)
{
	long v = test_scaled(n);

	return v < 16 ? 16 : (int)v;
}

/* ---------------------------------------------------------------------------------------------
 * Random trees on pools of 1, 2, 3 and 8 threads
 * ------------------------------------------------------------------------------------------ */

static void run_random_trees(size_t threads, long rounds)
{
	uint64_t rng = seed ^ (threads * 0x1234567u);
	int max_nodes = scaled_nodes(1500);
	struct tree *t = tree_alloc(max_nodes);
	tp_pool *pool = NULL;
	long total = 0, stolen = 0;
	int deepest = 0;
	char msg[512];
	double t0 = test_now_ms();

	assert_non_null(t);
	for (long it = 0; it < rounds; it++) {
		uint64_t s = iter_seed(&rng), r = s;
		struct shape sh = random_shape(&r, max_nodes);

		/* A fresh pool now and then: fresh stacks, and a destroy after runs. */
		if (pool == NULL || rnd(&r, 8) == 0) {
			if (pool != NULL)
				tp_pool_destroy(pool);
			pool = test_pool_new(threads);
		}
		tree_build(t, &sh, test_rand(&r), pool);
		if (!tree_run_check(t, false, msg, sizeof(msg)))
			fail_iteration("random tree", it, s, threads, t, msg);
		total += t->n;
		stolen += tree_stolen(t);
		if (t->depth > deepest)
			deepest = t->depth;
	}
	tp_pool_destroy(pool);
	print_message("# random trees on %zu threads: %ld trees, %ld nodes (%ld stolen), deepest "
		      "%d, %.0f ms\n",
		      threads, rounds, total, stolen, deepest, test_now_ms() - t0);
	tree_free(t);
}

static void task_random_trees_1_thread(void **state)
{
	(void)state;
	run_random_trees(1, iters(200));
}

static void task_random_trees_2_threads(void **state)
{
	(void)state;
	run_random_trees(2, iters(200));
}

static void task_random_trees_3_threads(void **state)
{
	(void)state;
	run_random_trees(3, iters(200));
}

static void task_random_trees_8_threads(void **state)
{
	(void)state;
	run_random_trees(8, iters(200));
}

/* ---------------------------------------------------------------------------------------------
 * TP_RUN from the test thread and from 2-3 other threads into the same pool at once
 * ------------------------------------------------------------------------------------------ */

enum {
	MAX_RUNNERS = 4 /* the test thread and up to 3 others */
};

struct runner {
	tp_pool *pool;
	uint64_t seed;
	long rounds;
	int index;
	long trees;	   /* trees run */
	long stolen;	   /* their nodes stolen */
	long failed;	   /* 0, or 1 with msg set */
	uint64_t bad_seed; /* the failing tree's seed */
	char msg[512];
};

/* Runs `rounds` random trees with TP_RUN; every 4th through an ordinary task, when via_tasks. */
static void *runner_main(void *arg)
{
	struct runner *u = arg;
	int max_nodes = scaled_nodes(300);
	struct tree *t = tree_alloc(max_nodes);
	uint64_t rng = u->seed;

	if (t == NULL) {
		snprintf(u->msg, sizeof(u->msg), "runner %d: out of memory", u->index);
		u->failed = 1;
		return NULL;
	}
	for (long i = 0; i < u->rounds; i++) {
		uint64_t s = test_rand(&rng), r = s;
		struct shape sh = random_shape(&r, max_nodes);
		bool via = rnd(&r, 4) == 0;

		sh.max_depth = 40;
		tree_build(t, &sh, test_rand(&r), u->pool);
		if (!tree_run_check(t, via, u->msg, sizeof(u->msg))) {
			u->failed = 1;
			u->bad_seed = s;
			break;
		}
		u->trees++;
		u->stolen += tree_stolen(t);
	}
	tree_free(t);
	return NULL;
}

static void task_run_from_many_threads(void **state)
{
	uint64_t rng = seed ^ 0x7255;
	long rounds = iters(80), trees = 0, stolen = 0;
	double t0 = test_now_ms();

	(void)state;
	for (long it = 0; it < rounds; it++) {
		uint64_t s = iter_seed(&rng), r = s;
		size_t threads = 1 + (size_t)rnd(&r, 4);
		int others = 2 + (int)rnd(&r, 2);
		struct runner u[MAX_RUNNERS];
		pthread_t th[MAX_RUNNERS];
		tp_pool *pool = test_pool_new(threads);

		memset(u, 0, sizeof(u));
		for (int i = 0; i <= others; i++) {
			u[i].pool = pool;
			u[i].seed = test_rand(&r);
			u[i].rounds = 3 + (long)rnd(&r, 8);
			u[i].index = i;
		}
		for (int i = 1; i <= others; i++)
			assert_int_equal(pthread_create(&th[i], NULL, runner_main, &u[i]), 0);
		runner_main(&u[0]);
		for (int i = 1; i <= others; i++)
			pthread_join(th[i], NULL);
		tp_pool_destroy(pool);
		for (int i = 0; i <= others; i++) {
			if (u[i].failed)
				fail_msg(
					"TP_RUN from %d threads: iteration %ld (TP_STRESS_SEED=%llu, "
					"TP_STRESS_ITER_SEED=%#llx), %zu workers, thread %d, tree "
					"seed %#llx: %s",
					others + 1, it, (unsigned long long)seed,
					(unsigned long long)s, threads, i,
					(unsigned long long)u[i].bad_seed, u[i].msg);
			assert_int_equal(u[i].trees, u[i].rounds);
			trees += u[i].trees;
			stolen += u[i].stolen;
		}
	}
	print_message(
		"# TP_RUN from 3-4 threads: %ld pools, %ld trees (%ld nodes stolen), %.0f ms\n",
		rounds, trees, stolen, test_now_ms() - t0);
}

/* ---------------------------------------------------------------------------------------------
 * Typed tasks that wait for futures and spawn/join frames with typed spawns outstanding
 * ------------------------------------------------------------------------------------------ */

static void task_mixed_futures_and_frames(void **state)
{
	uint64_t rng = seed ^ 0x313;
	long rounds = iters(200), total = 0, actions = 0, stolen = 0;
	int max_nodes = scaled_nodes(600);
	struct tree *t = tree_alloc(max_nodes);
	char msg[512];
	double t0 = test_now_ms();

	(void)state;
	assert_non_null(t);
	for (long it = 0; it < rounds; it++) {
		uint64_t s = iter_seed(&rng), r = s;
		struct shape sh = random_shape(&r, max_nodes);
		size_t threads = 2 + (size_t)rnd(&r, 3);
		tp_pool *pool = test_pool_new(threads);

		sh.max_kids = 2 + (int)rnd(&r, 4);
		sh.max_depth = 12;
		sh.action_1_in = 2 + (int)rnd(&r, 4);
		tree_build(t, &sh, test_rand(&r), pool);
		if (!tree_run_check(t, false, msg, sizeof(msg)))
			fail_iteration("mixed", it, s, threads, t, msg);
		tp_pool_destroy(pool);
		total += t->n;
		stolen += tree_stolen(t);
		for (int i = 0; i < t->n; i++)
			actions += t->action[i] != ACT_NONE;
	}
	print_message("# mixed trees: %ld trees, %ld nodes (%ld stolen), %ld with "
		      "futures/frames/TP_RUN, %.0f ms\n",
		      rounds, total, stolen, actions, test_now_ms() - t0);
	tree_free(t);
}

/* ---------------------------------------------------------------------------------------------
 * Wide fan-out: a task spawns a few hundred children before joining any
 * ------------------------------------------------------------------------------------------ */

static void task_wide_fanout(void **state)
{
	static const size_t sizes[] = { 2, 3, 8 };
	uint64_t rng = seed ^ 0xFA0;
	long rounds = iters(150), total = 0, stolen = 0;
	int max_nodes = 1 + 500 * 4;
	struct tree *t = tree_alloc(max_nodes);
	char msg[512];
	double t0 = test_now_ms();

	(void)state;
	assert_non_null(t);
	for (long it = 0; it < rounds; it++) {
		uint64_t s = iter_seed(&rng), r = s;
		size_t threads = sizes[rnd(&r, 3)];
		tp_pool *pool = test_pool_new(threads);
		struct shape sh = { 0 };

		sh.root_kids = 200 + (int)rnd(&r, 301); /* 200..500 */
		sh.max_nodes = max_nodes;
		sh.max_kids = (int)rnd(&r, 4); /* the children: 0..3 grandchildren each */
		sh.max_depth = 2;
		sh.order = 0;
		sh.call_1_in = 3;
		sh.jitter_1_in = 16 + (int)rnd(&r, 32);
		sh.spawn_delay_1_in = 4 + (int)rnd(&r, 32);
		sh.join_delay_1_in = 2 + (int)rnd(&r, 16);
		sh.leaf_ns = 500 + (long)rnd(&r, 4000);
		tree_build(t, &sh, test_rand(&r), pool);
		if (!tree_run_check(t, false, msg, sizeof(msg)))
			fail_iteration("wide fan-out", it, s, threads, t, msg);
		tp_pool_destroy(pool);
		total += t->n;
		stolen += tree_stolen(t);
	}
	print_message("# wide fan-out: %ld trees, %ld nodes (%ld stolen), %.0f ms\n", rounds, total,
		      stolen, test_now_ms() - t0);
	tree_free(t);
}

/* ---------------------------------------------------------------------------------------------
 * The pool destroyed right after TP_RUN returns
 * ------------------------------------------------------------------------------------------ */

static void task_destroy_right_after_run(void **state)
{
	uint64_t rng = seed ^ 0xDE5;
	long rounds = iters(500), with_other = 0;
	int max_nodes = scaled_nodes(200);
	struct tree *t = tree_alloc(max_nodes);
	double worst = 0, t0 = test_now_ms();
	char msg[512];

	(void)state;
	assert_non_null(t);
	for (long it = 0; it < rounds; it++) {
		uint64_t s = iter_seed(&rng), r = s;
		size_t threads = 1 + (size_t)rnd(&r, 4);
		struct shape sh = random_shape(&r, max_nodes);
		bool other = rnd(&r, 3) == 0;
		struct runner u = { 0 };
		pthread_t th;
		tp_pool *pool = test_pool_new(threads);
		double d0;

		sh.max_depth = 30;
		sh.action_1_in = rnd(&r, 2) ? 4 : 0;
		tree_build(t, &sh, test_rand(&r), pool);
		/* Sometimes another thread runs trees on the pool too, and the destroy follows the
		 * last TP_RUN to return. */
		if (other) {
			u = (struct runner){ .pool = pool,
					     .seed = test_rand(&r),
					     .rounds = 1 + (long)rnd(&r, 2),
					     .index = 1 };
			assert_int_equal(pthread_create(&th, NULL, runner_main, &u), 0);
			with_other++;
		}
		if (!tree_run_check(t, false, msg, sizeof(msg)))
			fail_iteration("destroy after TP_RUN", it, s, threads, t, msg);
		if (other) {
			pthread_join(th, NULL);
			if (u.failed)
				fail_iteration("destroy after TP_RUN (other thread)", it, s,
					       threads, t, u.msg);
		}
		d0 = test_now_ms();
		tp_pool_destroy(pool);
		if (test_now_ms() - d0 > worst)
			worst = test_now_ms() - d0;
	}
	print_message("# destroy right after TP_RUN: %ld pools (%ld with another thread's "
		      "TP_RUN), slowest destroy %.1f ms, %.0f ms\n",
		      rounds, with_other, worst, test_now_ms() - t0);
	tree_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(task_random_trees_1_thread),
		cmocka_unit_test(task_random_trees_2_threads),
		cmocka_unit_test(task_random_trees_3_threads),
		cmocka_unit_test(task_random_trees_8_threads),
		cmocka_unit_test(task_run_from_many_threads),
		cmocka_unit_test(task_mixed_futures_and_frames),
		cmocka_unit_test(task_wide_fanout),
		cmocka_unit_test(task_destroy_right_after_run),
	};

	seed = test_stress_seed();
	test_watchdog(long_tier() ? 2400 : 280);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
