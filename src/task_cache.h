/*
 * task_cache.h - recycling task records, so that the steady state allocates nothing.
 *
 * Overview
 *   Records belong to a pool's "home". A worker keeps a private free list (no atomics). A record
 *   whose last reference drops on any other thread (a submitter, a worker of another pool) or
 *   on a worker whose list is full is pushed on the home's shared `returned` stack (Treiber push,
 *   CAS). The stack is only ever emptied whole, by exchange, which makes it immune to ABA. Threads
 *   outside the pool allocate from one more private list, `outside_free`, guarded by a try-lock:
 *   the loser of that race never waits, it falls back to malloc.
 *
 * Pool destruction and records still held by callers
 *   tp_pool_destroy() kills the home: it swaps `returned` for the DEAD marker (later pushes fail
 *   and free the record themselves), frees every cached record, and adds the number still held by
 *   callers (allocated - freed) to `orphans`. Each late release subtracts one; whoever brings the
 *   count to zero frees the home. So releasing a future after its pool is gone is safe.
 */
#ifndef TP_TASK_CACHE_H
#define TP_TASK_CACHE_H

#include <stdalign.h>
#include <stdint.h>

#include "deque.h"
#include "future.h"

/* A worker's list beyond this many records spills to the shared stack. */
#define TP__CACHE_MAX 256

struct tp__cache {
	struct tp_future *head; /* owner only */
	uint32_t count;
};

struct tp__home {
	alignas(TP__CACHE_LINE) void *returned; /* shared: Treiber stack of records, or DEAD */
	alignas(TP__CACHE_LINE) uint32_t outside_lock; /* try-lock over outside_free */
	struct tp_future *outside_free;		       /* guarded by outside_lock */
	alignas(TP__CACHE_LINE) uint64_t allocated;    /* records ever malloc'd (faa) */
	int64_t orphans;			       /* see the header comment (faa) */
};

/* NULL on ENOMEM. */
struct tp__home *tp__home_new(void);

/*
 * A fresh record, from `cache` (a worker's own, or NULL on other threads), the shared stack, or
 * malloc. NULL on ENOMEM.
 */
struct tp_future *tp__record_alloc(struct tp__home *home, struct tp__cache *cache);

/* Recycles a record whose last reference dropped; `cache` is the calling worker's own list if
 * the record belongs to its pool, else NULL. */
void tp__record_free(struct tp_future *f, struct tp__cache *cache);

/* Pool teardown, after the workers exited: frees the caches[n] and the home (see above). */
void tp__home_kill(struct tp__home *home, struct tp__cache *caches, size_t stride, size_t n);

#endif /* TP_TASK_CACHE_H */
