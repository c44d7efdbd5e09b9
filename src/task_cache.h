/*
 * task_cache.h - recycling task records, so that the steady state allocates nothing.
 *
 * Overview
 *   Records belong to a pool's "home". Every thread keeps private free lists (no atomics): a
 *   worker one for its own pool's records (in its struct), and every thread one thread-local list
 *   bound to one home at a time (for submitters; a thread that moves to another home hands its
 *   list back first). A record whose last reference drops where no private list takes it (a list
 *   is full, or bound elsewhere) is pushed on the home's shared `returned` stack (Treiber push,
 *   CAS), which private lists refill from. The stack is only ever emptied whole, by exchange,
 *   which makes it immune to ABA.
 *
 * Pool destruction and records still held by callers
 *   tp_pool_destroy() kills the home: it swaps `returned` for the DEAD marker (later pushes fail
 *   and free the record themselves), frees every cached record it can reach, and adds the number
 *   it could not (allocated - freed: held by callers, or in other threads' thread-local lists) to
 *   `orphans`. Each late release subtracts one; whoever brings the count to zero frees the home.
 *   So releasing a future after its pool is gone is safe. A thread's thread-local list is handed
 *   back when the thread exits (a pthread key destructor) or moves to another home.
 */
#ifndef TP_TASK_CACHE_H
#define TP_TASK_CACHE_H

#include <stdalign.h>
#include <stdint.h>

#include "deque.h"
#include "future.h"

/* A private list beyond this many records spills to the shared stack. */
#define TP__CACHE_MAX 256

struct tp__cache {
	struct tp_future *head; /* owner thread only */
	uint32_t count;
};

struct tp__home {
	alignas(TP__CACHE_LINE) void *returned; /* shared: Treiber stack, or DEAD */
	void *chunks;				/* malloc'd chunks of records (CAS push) */
	/* Its pool: set before any record exists, dangling once the pool is freed. */
	tp_pool *pool;
	alignas(TP__CACHE_LINE) uint64_t allocated; /* records ever allocated (faa) */
	int64_t orphans;			    /* see the header comment (faa) */
};

/* NULL on ENOMEM. */
struct tp__home *tp__home_new(void);

/*
 * A fresh record, from `cache` (the calling worker's own list, for its own pool), else from the
 * calling thread's thread-local list; then the shared stack, then malloc. NULL on ENOMEM.
 */
struct tp_future *tp__record_alloc(struct tp__home *home, struct tp__cache *cache);

/* Recycles a record whose last reference dropped; `cache` as for tp__record_alloc(). */
void tp__record_free(struct tp_future *f, struct tp__cache *cache);

/*
 * Pool teardown, after the workers exited, on the destroying thread: frees the workers'
 * caches[n] (`stride` bytes apart), this thread's list if bound to `home`, the shared stack, and
 * the home itself once no record is held any more (see above).
 */
void tp__home_kill(struct tp__home *home, struct tp__cache *caches, size_t stride, size_t n);

#endif /* TP_TASK_CACHE_H */
