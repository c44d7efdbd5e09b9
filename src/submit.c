/*
 * submit.c - getting tasks into a pool: tp_enqueue, tp_submit (detached: no future),
 * tp_enqueue_batch, and groups' spawns.
 *
 * From a worker of the pool, records are forks: counted in the worker's `spawned`, pushed on its
 * own deque and published at once (a future may be waited for from anywhere). From any other
 * thread, they go through the gate (the accepted count, and the CLOSED bit of a shutdown) onto
 * the injection queue. A batch takes one pass through the gate and one splice into the queue.
 * Every path is all or nothing: records are allocated first, chained privately, and handed back
 * on refusal; the caller's out[] is written only once the submission cannot fail any more.
 */
#include <errno.h>

#include "pool.h"

static void free_chain(struct tp_future *f, struct tp__cache *cache)
{
	while (f != NULL) {
		struct tp_future *next = f->next_free;

		tp__record_free(f, cache);
		f = next;
	}
}

/*
 * Allocates and initialises n records, chained in order through next_free: the caller's out[]
 * is written only once the submission can no longer fail. NULL on ENOMEM (nothing kept).
 */
static struct tp_future *alloc_chain(tp_pool *pool, struct tp__cache *cache, tp_task_fn fn,
				     void *const *args, size_t n, tp_drop_fn drop, tp_group *group)
{
	struct tp_future *head = NULL, **link = &head;

	for (size_t i = 0; i < n; i++) {
		struct tp_future *f = tp__record_alloc(pool->home, cache);

		if (f == NULL) {
			free_chain(head, cache);
			return NULL;
		}
		tp__future_init(f, fn, args[i], drop, group);
		f->next_free = NULL;
		*link = f;
		link = &f->next_free;
	}
	return head;
}

/* Hands the chain to the caller; the records' links are free for the queues afterwards. */
static void fill_out(struct tp_future *f, struct tp_future **out)
{
	for (size_t i = 0; f != NULL; i++) {
		out[i] = f;
		f = f->next_free;
	}
}

/* Counts n forks of w: (count) before (the publication's release store of split), release, so
 * whoever retires one of them counts it after we did, as the quiescence check requires
 * (pool.h): a checker that sees that retirement (acquire) then sees this count. */
static inline void count_forks(struct tp__worker *w, uint64_t n)
{
	tp__store_rel_u64(&w->spawned, tp__load_rlx_u64(&w->spawned) + n);
}

/* Outside submissions pass the gate: ESHUTDOWN once a shutdown closed it, else counted. */
static inline int gate_accept(tp_pool *pool, uint64_t n)
{
	uint64_t gate = tp__load_rlx_u64(&pool->gate);

	do {
		if (gate & TP__GATE_CLOSED)
			return ESHUTDOWN;
		/* seq_cst CAS: an acceptance is ordered before the CLOSED bit or refused by it. */
	} while (!tp__cas_value_u64(&pool->gate, &gate, gate + n * TP__GATE_ONE));
	return 0;
}

/* After outside records were queued: wakes one sleeper at most (it wakes the next if it finds
 * more); no system call when none sleeps. The enqueue's exchange of the queue tail, which a
 * parking worker's emptiness check reads, was a full barrier. */
static inline void injected(tp_pool *pool)
{
	(void)tp__park_wake_one_after_barrier(&pool->park);
}

/* Forks from a task of this pool, onto the worker's own deque. */
static int fork_records(struct tp__worker *w, struct tp_future *chain, size_t n,
			struct tp_future **out)
{
	if (tp__deque_reserve(&w->deque, n) != 0)
		return ENOMEM;
	fill_out(chain, out);
	count_forks(w, n);
	for (size_t i = 0; i < n; i++)
		(void)tp__deque_push(&w->deque, out[i]); /* cannot fail after the reserve */
	/* A future may be waited for from anywhere: make it (and older frames) stealable. */
	tp__worker_publish(w);
	return 0;
}

/* Submissions from outside the pool: through the gate, onto the injection queue. */
static int inject_records(tp_pool *pool, struct tp_future *chain, size_t n, struct tp_future **out)
{
	int err = gate_accept(pool, n);

	if (err != 0)
		return err;
	fill_out(chain, out);
	if (n == 1)
		tp__inject_push(&pool->inject, out[0]);
	else
		tp__inject_push_many(&pool->inject, out, n);
	TP__LOG_DEBUG(pool, "%zu task(s) enqueued, first %p", n, (void *)out[0]);
	injected(pool);
	return 0;
}

int tp__submit(tp_pool *pool, tp_task_fn fn, void *const *args, size_t n, tp_drop_fn drop,
	       tp_group *group, struct tp_future **out)
{
	struct tp__worker *w = tp__self;
	bool fork = w != NULL && w->pool == pool;
	struct tp__cache *cache = fork ? &w->cache : NULL;
	struct tp_future *chain;
	int err;

	if (fork && tp__load_acq_u32(&pool->mode) == TP__MODE_CANCEL)
		return ESHUTDOWN;
	chain = alloc_chain(pool, cache, fn, args, n, drop, group);
	if (chain == NULL)
		return ENOMEM;
	err = fork ? fork_records(w, chain, n, out) : inject_records(pool, chain, n, out);
	if (err != 0)
		free_chain(chain, cache);
	return err;
}

/* The path of tp_enqueue and tp_submit: the same steps as tp__submit for one record, without
 * the chain. group: NULL, or TP__DETACHED (then out is NULL). */
static inline __attribute__((always_inline)) int enqueue_one(tp_pool *pool, tp_task_fn fn,
							     void *arg, tp_drop_fn drop,
							     tp_group *group,
							     struct tp_future **out)
{
	struct tp__worker *w = tp__self;
	struct tp_future *f;
	int err;

	if (w != NULL && w->pool == pool) {
		if (tp__load_acq_u32(&pool->mode) == TP__MODE_CANCEL)
			return ESHUTDOWN;
		f = tp__record_alloc(pool->home, &w->cache);
		if (f == NULL)
			return ENOMEM;
		tp__future_init(f, fn, arg, drop, group);
		count_forks(w, 1);
		if (tp__deque_push(&w->deque, f) != 0) {
			/* Over-counted only for a moment: the check then merely says "not yet". */
			count_forks(w, (uint64_t)-1);
			tp__record_free(f, &w->cache);
			return ENOMEM;
		}
		/* A future may be waited for from anywhere: make it (and older frames) stealable. */
		tp__worker_publish(w);
	} else {
		f = tp__record_alloc(pool->home, NULL);
		if (f == NULL)
			return ENOMEM;
		tp__future_init(f, fn, arg, drop, group);
		err = gate_accept(pool, 1);
		if (err != 0) {
			tp__record_free(f, NULL);
			return err;
		}
		tp__inject_push(&pool->inject, f);
		TP__LOG_DEBUG(pool, "task %p enqueued", (void *)f);
		injected(pool);
	}
	if (out != NULL)
		*out = f;
	return 0;
}

tp_future *tp_enqueue_ex(tp_pool *pool, tp_task_fn fn, void *arg, tp_drop_fn drop)
{
	struct tp_future *f;
	int err;

	if (pool == NULL || fn == NULL) {
		errno = EINVAL;
		return NULL;
	}
	err = enqueue_one(pool, fn, arg, drop, NULL, &f);
	if (err != 0) {
		errno = err;
		return NULL;
	}
	return f;
}

tp_future *tp_enqueue(tp_pool *pool, tp_task_fn fn, void *arg)
{
	struct tp_future *f;
	int err;

	/* tp_enqueue_ex's body, not a call to it: one call per task fewer. */
	if (pool == NULL || fn == NULL) {
		errno = EINVAL;
		return NULL;
	}
	err = enqueue_one(pool, fn, arg, NULL, NULL, &f);
	if (err != 0) {
		errno = err;
		return NULL;
	}
	return f;
}

int tp_submit_ex(tp_pool *pool, tp_task_fn fn, void *arg, tp_drop_fn drop)
{
	if (pool == NULL || fn == NULL)
		return EINVAL;
	return enqueue_one(pool, fn, arg, drop, TP__DETACHED, NULL);
}

int tp_submit(tp_pool *pool, tp_task_fn fn, void *arg)
{
	return tp_submit_ex(pool, fn, arg, NULL);
}

int tp_enqueue_batch(tp_pool *pool, tp_task_fn fn, void *const *args, size_t n, tp_future **out)
{
	if (pool == NULL || fn == NULL || (n > 0 && (args == NULL || out == NULL)))
		return EINVAL;
	if (n == 0)
		return 0;
	return tp__submit(pool, fn, args, n, NULL, NULL, out);
}
