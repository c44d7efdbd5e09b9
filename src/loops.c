/*
 * loops.c - tp_parallel_for and tp_parallel_reduce: lazy binary splitting on task frames.
 *
 * A worker runs its range `grain` iterations at a time. Before each chunk it asks whether anybody
 * could use work: a thief raised its deque's split request (a worker that parks raises it on
 * every deque it found empty). Only then does it
 * split the rest of its range in two, spawn the upper half (a frame on its stack) and go on with
 * the lower half (Tzannes, Caragea, Barua and Vishkin, "Lazy binary-splitting", PPoPP 2010). On
 * one busy worker a loop therefore costs the serial loop plus one or two relaxed loads per chunk.
 * A reduce keeps one accumulator per split; after the join it combines lower (already holding
 * everything before it) with upper, so the combination follows iteration order.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "pool.h"

/* Automatic grain: chunks small enough to balance, large enough that the check is noise. */
#define AUTO_CHUNKS_PER_THREAD 64
#define AUTO_GRAIN_MAX	       4096

struct loop {
	tp_pool *pool;
	size_t grain;
	tp_for_fn body;
	tp_reduce_fn reduce;
	tp_combine_fn combine;
	const void *identity;
	size_t acc_size;
	void *ctx;
};

struct range {
	const struct loop *loop;
	size_t begin, end;
	alignas(max_align_t) unsigned char acc[TP_REDUCE_MAX_SIZE];
};

/* A thief asked this worker for work (every worker asks before it parks; see frame.c). */
static bool work_wanted(struct tp__worker *w)
{
	return tp__deque_requested(&w->deque);
}

static void run_range(const struct loop *l, size_t begin, size_t end, void *acc);

static int range_task(void *arg)
{
	struct range *r = arg;

	run_range(r->loop, r->begin, r->end, r->acc);
	return 0;
}

static void run_chunk(const struct loop *l, size_t begin, size_t end, void *acc)
{
	if (l->reduce != NULL)
		l->reduce(begin, end, acc, l->ctx);
	else
		l->body(begin, end, l->ctx);
}

static void run_range(const struct loop *l, size_t begin, size_t end, void *acc)
{
	struct tp__worker *w = tp__self;

	while (end - begin > l->grain) {
		if (w != NULL && work_wanted(w)) {
			struct range upper;
			tp_task t;

			upper.loop = l;
			upper.begin = begin + (end - begin) / 2;
			upper.end = end;
			if (l->reduce != NULL)
				memcpy(upper.acc, l->identity, l->acc_size);
			tp_spawn(&t, range_task, &upper);
			run_range(l, begin, upper.begin, acc);
			(void)tp_join(&t);
			if (l->reduce != NULL)
				l->combine(acc, upper.acc, l->ctx);
			return;
		}
		run_chunk(l, begin, begin + l->grain, acc);
		begin += l->grain;
	}
	if (begin < end)
		run_chunk(l, begin, end, acc);
}

/*
 * Runs the loop over root's range into root->acc: here if we are one of the pool's workers, else
 * as a submitted task that the caller waits for.
 */
static int run_loop(const struct loop *l, struct range *root)
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
	l.grain = pick_grain(pool, end - begin, grain);
	l.body = body;
	l.ctx = ctx;
	root.loop = &l;
	root.begin = begin;
	root.end = end;
	return run_loop(&l, &root);
}

int tp_parallel_reduce(tp_pool *pool, size_t begin, size_t end, size_t grain, void *result,
		       const void *identity, size_t acc_size, tp_reduce_fn body,
		       tp_combine_fn combine, void *ctx)
{
	struct loop l = { 0 };
	struct range root;
	int err;

	if (pool == NULL || result == NULL || identity == NULL || body == NULL || combine == NULL ||
	    begin > end || acc_size == 0 || acc_size > TP_REDUCE_MAX_SIZE)
		return EINVAL;
	l.pool = pool;
	l.grain = pick_grain(pool, end - begin, grain);
	l.reduce = body;
	l.combine = combine;
	l.identity = identity;
	l.acc_size = acc_size;
	l.ctx = ctx;
	root.loop = &l;
	root.begin = begin;
	root.end = end;
	memcpy(root.acc, identity, acc_size);
	err = run_loop(&l, &root);
	if (err == 0)
		memcpy(result, root.acc, acc_size);
	return err;
}
