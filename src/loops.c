/*
 * loops.c - tp_parallel_for, tp_parallel_try_for and tp_parallel_reduce: lazy binary splitting on
 * task frames.
 *
 * Overview. A worker runs its range `grain` iterations at a time. Before each chunk it asks
 * whether anybody could use work: a thief raised its deque's split request (a worker that parks
 * raises it on every deque it found empty). Only then does it
 * split the rest of its range in two, spawn the upper half (a frame on its stack) and go on with
 * the lower half (Tzannes, Caragea, Barua and Vishkin, "Lazy binary-splitting", PPoPP 2010). On
 * one busy worker a loop therefore costs the serial loop plus one or two relaxed loads per chunk.
 * A reduce keeps one accumulator per split; after the join it combines lower (already holding
 * everything before it) with upper, so the combination follows iteration order.
 *
 * Invariants.
 *  - A range that splits has more than `grain` (>= 1) iterations, so both halves are non-empty,
 *    and the upper one is joined before the split returns: every frame and every accumulator
 *    outlives the tasks that use it, and the struct loop (in the caller's frame) outlives them all.
 *  - A range's accumulator starts as a copy of the identity and holds the fold of the iterations
 *    that range has run, in iteration order: after a split, its own (lower) ones, then the upper
 *    half's combined into it.
 *  - A try loop's stop word goes from 0 to the first non-zero code a body returned, once, and
 *    never back. Every chunk and every split of that loop checks it first and does nothing once
 *    it is set; a chunk that started before it was set finishes.
 *
 * Implementation notes. The driver, run_range_as(), is written once and compiled once per kind
 * of loop (for, try, reduce) with the kind a constant: a plain for loop's per-chunk path has no
 * stop check and no test of the body's type (one test fewer than when one copy served both for
 * and reduce), a try loop's has one relaxed load more. Splits, which are rare, are out of line
 * and dispatch on the kind at run time. An accumulator of up to TP_REDUCE_MAX_SIZE bytes lives
 * in the split's frame; a larger one is malloc'd by the split, and a split whose malloc fails
 * does not happen: that range goes on serially (it asks no more, so a failing malloc is not
 * retried at every chunk), nothing is lost.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

/* Automatic grain: chunks small enough to balance, large enough that the check is noise. */
#define AUTO_CHUNKS_PER_THREAD 64
#define AUTO_GRAIN_MAX	       4096

enum loop_kind {
	LOOP_FOR,     /* tp_parallel_for: body */
	LOOP_TRY_FOR, /* tp_parallel_try_for: try_body, which may stop the loop */
	LOOP_REDUCE   /* tp_parallel_reduce: reduce into an accumulator per split, then combine */
};

/* One loop call: written by its caller before the root runs, read-only afterwards but `stop`. */
struct loop {
	tp_pool *pool;
	enum loop_kind kind;
	size_t grain;
	tp_for_fn body;
	tp_try_for_fn try_body;
	tp_reduce_fn reduce;
	tp_combine_fn combine;
	const void *identity;
	size_t acc_size;
	void *ctx;
	/* LOOP_TRY_FOR, shared: 0, then the first non-zero code a body returned (set once, by a
	 * CAS from 0). A uint32_t for atomics.h: the int round-trips through it unchanged (gcc and
	 * clang convert modulo 2^32 both ways), negative codes included. */
	uint32_t stop;
};
_Static_assert(sizeof(int) == sizeof(uint32_t), "a try loop's code fits its stop word");

/* A range of iterations and the accumulator it folds into (NULL for for and try loops). */
struct range {
	struct loop *loop;
	size_t begin, end;
	void *acc; /* `local`, or a block of acc_size bytes from malloc() */
	alignas(max_align_t) unsigned char local[TP_REDUCE_MAX_SIZE];
};

/* A thief asked this worker for work (every worker asks before it parks; see frame.c). */
static bool work_wanted(struct tp__worker *w)
{
	return tp__deque_requested(&w->deque);
}

/*
 * Whether a body of this try loop has stopped it. Relaxed: the word only decides whether more
 * work starts, and a chunk that starts before the store reaches this thread is one of those the
 * contract lets finish. The code itself is read after the loop's last join (and, from outside, its
 * future), which orders every body's CAS before that read.
 */
static bool stopped(const struct loop *l)
{
	return tp__load_rlx_u32(&l->stop) != 0;
}

/* The first code in time wins: only a CAS from 0 stores, a later one fails and is dropped. */
static void stop_loop(struct loop *l, int code)
{
	(void)tp__cas_u32(&l->stop, 0, (uint32_t)code);
}

/* Runs one chunk; false if it stopped the loop (a try loop's body returned non-zero). */
static inline __attribute__((always_inline)) bool run_chunk(enum loop_kind kind, struct loop *l,
							    size_t begin, size_t end, void *acc)
{
	int code;

	switch (kind) {
	case LOOP_FOR:
		l->body(begin, end, l->ctx);
		return true;
	case LOOP_REDUCE:
		l->reduce(begin, end, acc, l->ctx);
		return true;
	case LOOP_TRY_FOR:
		code = l->try_body(begin, end, l->ctx);
		if (code == 0)
			return true;
		stop_loop(l, code);
		return false;
	}
	return true;
}

static bool split(struct loop *l, size_t begin, size_t end, void *acc);

/*
 * The driver: [begin, end) grain by grain, splitting when asked. `kind` is l->kind, a constant
 * at each call site (see run_range), so each kind gets its own copy of this loop.
 */
static inline __attribute__((always_inline)) void run_range_as(enum loop_kind kind, struct loop *l,
							       size_t begin, size_t end, void *acc)
{
	struct tp__worker *w = tp__self;

	while (end - begin > l->grain) {
		/* Before every split and every chunk. */
		if (kind == LOOP_TRY_FOR && stopped(l))
			return;
		if (w != NULL && work_wanted(w)) {
			if (split(l, begin, end, acc))
				return;
			w = NULL; /* no memory for a split: this range goes on serially */
		}
		if (!run_chunk(kind, l, begin, begin + l->grain, acc))
			return;
		begin += l->grain;
	}
	if (begin < end && !(kind == LOOP_TRY_FOR && stopped(l)))
		(void)run_chunk(kind, l, begin, end, acc);
}

/*
 * One copy of the driver per kind, each a function of its own (noinline): inlined together into
 * run_range() by gcc 12, the plain for loop's copy ran 10% slower per chunk than before this file
 * had try loops (empty body, grain 1, one worker), with fewer instructions: a matter of code
 * layout, which separate functions avoid.
 */
static __attribute__((noinline)) void run_for_range(struct loop *l, size_t begin, size_t end,
						    void *acc)
{
	run_range_as(LOOP_FOR, l, begin, end, acc);
}

static __attribute__((noinline)) void run_try_range(struct loop *l, size_t begin, size_t end,
						    void *acc)
{
	run_range_as(LOOP_TRY_FOR, l, begin, end, acc);
}

static __attribute__((noinline)) void run_reduce_range(struct loop *l, size_t begin, size_t end,
						       void *acc)
{
	run_range_as(LOOP_REDUCE, l, begin, end, acc);
}

/* One switch per range (the root, each half of a split), none per chunk. */
static void run_range(struct loop *l, size_t begin, size_t end, void *acc)
{
	switch (l->kind) {
	case LOOP_FOR:
		run_for_range(l, begin, end, acc);
		break;
	case LOOP_TRY_FOR:
		run_try_range(l, begin, end, acc);
		break;
	case LOOP_REDUCE:
		run_reduce_range(l, begin, end, acc);
		break;
	}
}

static int range_task(void *arg)
{
	struct range *r = arg;

	run_range(r->loop, r->begin, r->end, r->acc);
	return 0;
}

/*
 * Gives r a reduce's accumulator, a copy of the identity: r->local up to TP_REDUCE_MAX_SIZE
 * bytes, else a block from malloc(). False if that malloc failed (r->acc is NULL then).
 */
static bool acc_init(const struct loop *l, struct range *r)
{
	r->acc = l->acc_size <= TP_REDUCE_MAX_SIZE ? r->local : malloc(l->acc_size);
	if (r->acc == NULL)
		return false;
	memcpy(r->acc, l->identity, l->acc_size);
	return true;
}

static void acc_fini(struct range *r)
{
	if (r->acc != r->local)
		free(r->acc);
}

/*
 * Splits [begin, end) in two on a worker of the loop's pool: spawns the upper half, runs the lower
 * one into acc, joins, then combines the upper half's accumulator into acc (lower before upper:
 * iteration order). Returns false, having done nothing, if the upper half's accumulator could
 * not be allocated: the caller goes on serially.
 */
static bool split(struct loop *l, size_t begin, size_t end, void *acc)
{
	struct range upper;
	tp_frame t;

	TP__ASSERT(end - begin > l->grain && l->grain >= 1);
	upper.loop = l;
	upper.begin = begin + (end - begin) / 2;
	upper.end = end;
	upper.acc = NULL;
	TP__ASSERT(begin < upper.begin && upper.begin < end);
	if (l->kind == LOOP_REDUCE && !acc_init(l, &upper))
		return false;
	tp_spawn(&t, range_task, &upper);
	run_range(l, begin, upper.begin, acc);
	(void)tp_join(&t);
	if (l->kind == LOOP_REDUCE) {
		l->combine(acc, upper.acc, l->ctx);
		acc_fini(&upper);
	}
	return true;
}

/*
 * Runs the loop over root's range into root->acc: here if we are one of the pool's workers, else
 * as a submitted task that the caller waits for.
 */
static int run_loop(struct loop *l, struct range *root)
{
	struct tp__worker *w = tp__self;
	tp_future *f;
	int code;

	if (w != NULL && w->pool == l->pool) {
		run_range(l, root->begin, root->end, root->acc);
		return 0;
	}
	f = tp_enqueue(l->pool, range_task, root);
	if (f == NULL)
		return errno;
	code = tp_future_wait(f);
	tp_future_release(f);
	/* The root task returns 0: only a CANCEL shutdown can have cancelled it. */
	return code == ECANCELED ? ESHUTDOWN : code;
}

static size_t pick_grain(const tp_pool *pool, size_t n, size_t grain)
{
	if (grain == 0) {
		grain = n / (tp_pool_size(pool) * AUTO_CHUNKS_PER_THREAD);
		if (grain > AUTO_GRAIN_MAX)
			grain = AUTO_GRAIN_MAX;
	}
	return grain > 0 ? grain : 1;
}

int tp_parallel_for(tp_pool *pool, size_t begin, size_t end, size_t grain, tp_for_fn body,
		    void *ctx)
{
	struct loop l = { 0 };
	struct range root;

	if (pool == NULL || body == NULL || begin > end)
		return EINVAL;
	l.pool = pool;
	l.kind = LOOP_FOR;
	l.grain = pick_grain(pool, end - begin, grain);
	l.body = body;
	l.ctx = ctx;
	root.loop = &l;
	root.begin = begin;
	root.end = end;
	root.acc = NULL;
	return run_loop(&l, &root);
}

int tp_parallel_try_for(tp_pool *pool, size_t begin, size_t end, size_t grain, tp_try_for_fn body,
			void *ctx)
{
	struct loop l = { 0 };
	struct range root;
	int err;

	if (pool == NULL || body == NULL || begin > end)
		return EINVAL;
	l.pool = pool;
	l.kind = LOOP_TRY_FOR;
	l.grain = pick_grain(pool, end - begin, grain);
	l.try_body = body;
	l.ctx = ctx;
	root.loop = &l;
	root.begin = begin;
	root.end = end;
	root.acc = NULL;
	err = run_loop(&l, &root);
	if (err != 0)
		return err; /* the root never ran: no body did */
	/* Every range has been joined (or waited for): relaxed suffices, see stopped(). */
	return (int)tp__load_rlx_u32(&l.stop);
}

int tp_parallel_reduce(tp_pool *pool, size_t begin, size_t end, size_t grain, void *result,
		       const void *identity, size_t acc_size, tp_reduce_fn body,
		       tp_combine_fn combine, void *ctx)
{
	struct loop l = { 0 };
	struct range root;
	int err;

	if (pool == NULL || result == NULL || identity == NULL || body == NULL || combine == NULL ||
	    begin > end || acc_size == 0)
		return EINVAL;
	l.pool = pool;
	l.kind = LOOP_REDUCE;
	l.grain = pick_grain(pool, end - begin, grain);
	l.reduce = body;
	l.combine = combine;
	l.identity = identity;
	l.acc_size = acc_size;
	l.ctx = ctx;
	root.loop = &l;
	root.begin = begin;
	root.end = end;
	/* The root's accumulator is ours, not `result`, which is written only on success. */
	if (!acc_init(&l, &root))
		return ENOMEM;
	err = run_loop(&l, &root);
	if (err == 0)
		memcpy(result, root.acc, acc_size);
	acc_fini(&root);
	return err;
}
