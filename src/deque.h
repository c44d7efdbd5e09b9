/*
 * deque.h - the work-stealing deque, one per worker: Chase-Lev with a private part.
 *
 * Overview
 *   The owner pushes and takes at the bottom (LIFO: the newest fork runs first, its data still in
 *   cache); thieves steal at the top (FIFO: the oldest, usually largest, piece of work). The
 *   shared part is the algorithm of Chase and Lev ("Dynamic circular work-stealing deque", SPAA
 *   2005) in the C11 formulation of Le, Pop, Cohen and Zappa Nardelli ("Correct and efficient
 *   work-stealing for weak memory models", PPoPP 2013), whose orderings are kept one for one,
 *   with `split` in the role of their `bottom`.
 *
 *   Below `split` lies a private part (Lace's split deque: van Dijk and van de Pol, "Lace:
 *   non-blocking split deque for work-stealing", 2014): the owner pushes there and takes back from
 *   there with plain stores, no fence and no read-modify-write, because no thief can see it. A
 *   thief that finds the shared part empty raises `split_request`; the owner's worker notices it
 *   (one relaxed load) at its next spawn or take and publishes its private items by moving `split`
 *   up (a release store), waking a parked worker if there is one (worker.c). Futures and
 *   injected batches are published at once, frames lazily.
 *
 *	top             split            bottom
 *	 | shared: steal |  private: owner  |
 *
 * Invariants
 *   - top <= split <= bottom, except inside tp__deque_take's race for the last shared item.
 *   - top only grows, by CAS (thieves, and the owner when it takes the last shared item).
 *   - split and bottom are written by the owner only; thieves read split, never bottom.
 *   - The buffer is a power-of-two ring. When full, the owner copies it into one twice the size
 *     and publishes the new one; the old one is retired, not freed, until tp__deque_destroy(),
 *     because a thief may still read a slot of it (the slot it read is still valid: the owner
 *     writes new items only into the current buffer). Doubling bounds the retired memory below
 *     the current size.
 *
 * Who may run what at the same time
 *   | function                                          | caller | alongside                    |
 *   |---------------------------------------------------|--------|------------------------------|
 *   | tp__deque_push, _push_slow, _reserve, _grow,      | owner  | steals and _looks_nonempty   |
 *   |   _take, _take_shared, _publish, _has_private     |        | (never another owner's call) |
 *   | tp__deque_push_private, _pop_private, _requested  | owner  | the same                     |
 *   |   (in thread_pool_inline.h)                       |        |                              |
 *   | tp__deque_steal, _steal_unless, _looks_nonempty   | any    | everything but init, destroy |
 *   | tp__deque_init, _destroy                          | any    | nothing                      |
 *   The owner is the worker whose deque it is. tp__deque_steal is lock-free; the owner's
 *   operations are wait-free except growth's copy. The private push and pop live in the public
 *   inline header because the inline tp_spawn()/tp_join() need them; tp__deque_push and
 *   tp__deque_take are built on them, so there is one owner's end.
 */
#ifndef TP_DEQUE_H
#define TP_DEQUE_H

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "thread_pool.h"

/* struct tp__deque and struct tp__deque_buf, and the owner's private push and pop, are defined in
 * thread_pool_inline.h: the inline fast paths of tp_spawn() and tp_join() work on the owner's end. */

/* Result of a steal: a thief that lost a race may retry at once, an empty deque is not worth it. */
enum tp__steal_result {
	TP__STEAL_EMPTY = 0,
	TP__STEAL_ABORT = 1,
	TP__STEAL_OK = 2
};

/* Initial capacity, in items (a power of two). */
#define TP__DEQUE_INITIAL 256

/* 0, or ENOMEM. */
int tp__deque_init(struct tp__deque *q, size_t capacity);
void tp__deque_destroy(struct tp__deque *q);
/* Owner: copies [t, b) into a buffer twice the size and publishes it. NULL on ENOMEM. */
struct tp__deque_buf *tp__deque_grow(struct tp__deque *q, struct tp__deque_buf *a, uint64_t t,
				     uint64_t b);
/* Owner: tp__deque_push() when the ring looked full: reads top again, grows the ring if it is
 * full, then pushes. 0, or ENOMEM (nothing pushed). */
int tp__deque_push_slow(struct tp__deque *q, void *item);

/*
 * Owner only: makes every private item stealable, and answers a pending request. The store of
 * split is the first half of the store-load pattern of parking: the caller must run a
 * tp__fence_sc() (tp__park_wake_one() does) before it reads the idle bitmap.
 */
static inline void tp__deque_publish(struct tp__deque *q)
{
	TP__DEQUE_ASSERT_OWNER(q);
	/* (stores of the slots, and of whatever the items point to) before (store of split),
	 * release: pairs with the acquire load of split in tp__deque_steal. _sc: see above. */
	tp__store_sc_u64(&q->split, q->bottom);
	if (tp__load_rlx_u32(&q->split_request))
		tp__store_rlx_u32(&q->split_request, 0);
}

/* Owner only: true if the private part holds items. */
static inline bool tp__deque_has_private(const struct tp__deque *q)
{
	return q->bottom > tp__load_rlx_u64(&q->split);
}

/*
 * Owner only. Pushes into the private part; the caller publishes when it wants the item
 * stealable. 0, or ENOMEM when the deque was full and could not grow (nothing pushed then).
 */
static inline int tp__deque_push(struct tp__deque *q, void *item)
{
	if (tp__deque_push_private(q, item))
		return 0;
	return tp__deque_push_slow(q, item);
}

/* Owner only: makes room for n more pushes, so that they cannot fail. 0 or ENOMEM. */
static inline int tp__deque_reserve(struct tp__deque *q, uint64_t n)
{
	struct tp__deque_buf *a = tp__load_rlx_ptr(TP__PTR(&q->buf));

	/* acquire: as in tp__deque_push_slow. */
	q->top_seen = tp__load_acq_u64(&q->top);
	while (q->bottom + n - q->top_seen > a->mask + 1) {
		a = tp__deque_grow(q, a, q->top_seen, q->bottom);
		if (a == NULL)
			return ENOMEM;
	}
	return 0;
}

/*
 * Owner only, for the shared part: Chase-Lev's take with split as its bottom. Called when the
 * private part is empty (bottom == split): by tp__deque_take(), after tp__deque_pop_private().
 */
static inline void *tp__deque_take_shared(struct tp__deque *q)
{
	uint64_t b = q->bottom;
	uint64_t s, t;
	struct tp__deque_buf *a;
	void *item;

	TP__DEQUE_ASSERT_OWNER(q);
	TP__ASSERT(tp__load_rlx_u64(&q->split) == b);
	/* top only grows: if we already saw it at b, the shared part is empty without a fence. */
	if (q->top_seen == b)
		return NULL;
	s = b - 1;
	a = tp__load_rlx_ptr(TP__PTR(&q->buf));
	tp__store_sc_u64(&q->split, s);
	/* (store of split) before (load of top), store-load: pairs with the fence between a
	 * thief's loads of top and split. Either the thief sees the lowered split and backs off,
	 * or we see its raised top; both can never take the same last item. */
	tp__fence_sc();
	t = tp__load_sc_u64(&q->top);
	/* Thieves move top only up to a split they read, and split was at most b. */
	TP__ASSERT(t <= b);
	q->top_seen = t;
	if ((int64_t)(s - t) < 0) {
		/* Empty: restore split. */
		tp__store_rlx_u64(&q->split, b);
		return NULL;
	}
	item = tp__load_rlx_ptr(&a->slots[s & a->mask]);
	if (t == s) {
		/* The last item: race the thieves for it on top, seq_cst CAS. */
		if (!tp__cas_u64(&q->top, t, t + 1))
			item = NULL;
		q->top_seen = t + 1;
		tp__store_rlx_u64(&q->split, b);
		return item;
	}
	q->bottom = s;
	return item;
}

/* Owner only. The newest item, or NULL when empty (items are never NULL). */
static inline void *tp__deque_take(struct tp__deque *q)
{
	void *item = tp__deque_pop_private(q, NULL);

	return item != NULL ? item : tp__deque_take_shared(q);
}

/*
 * Any thread. On TP__STEAL_OK, *out holds the oldest shared item. With `done` non-NULL (a
 * leapfrogging joiner, `done` the joined frame's state word), it gives up (EMPTY) once
 * *done == done_value, checked after the load of split and before the CAS: the owner of this
 * deque stores DONE before it publishes anything unrelated (release), so an item published after
 * DONE can only be seen through a split value that makes DONE visible too; and the item at top
 * cannot change without top moving, which fails the CAS. So such a steal only takes items the
 * owner published while it was still running the frame.
 */
static inline enum tp__steal_result tp__deque_steal_unless(struct tp__deque *q, void **out,
							   const TP__SHARED(uint32_t) *done,
							   uint32_t done_value)
{
	/* (load of top) acquire, pairs with the CAS of another thief or of the owner's take. */
	uint64_t t = tp__load_sc_u64(&q->top);
	uint64_t s;
	struct tp__deque_buf *a;
	void *item;

	/* (load of top) before (load of split), store-load: pairs with the fence in
	 * tp__deque_take_shared; see there. */
	tp__fence_sc();
	/* (load of split) acquire, pairs with the release store of split in tp__deque_publish. */
	s = tp__load_sc_u64(&q->split);
	if ((int64_t)(s - t) <= 0) {
		/* Ask the owner to publish its private part (checked before writing, so that
		 * hungry thieves do not keep stealing the owner's cache line). */
		if (!tp__load_rlx_u32(&q->split_request))
			tp__store_rlx_u32(&q->split_request, 1);
		return TP__STEAL_EMPTY;
	}
	/* acquire: pairs with the release store of DONE, made visible by the split we read. */
	if (done != NULL && tp__load_acq_u32(done) == done_value)
		return TP__STEAL_EMPTY;
	/* (load of buf) acquire, pairs with the release store of a grown buffer: its slots are
	 * filled before we can see it. */
	a = tp__load_acq_ptr(TP__PTR(&q->buf));
	/* With a stale t, this may read a slot of a grown buffer that was never written (t was
	 * stolen before the owner copied [top, bottom)); top has moved past t, so the CAS fails. */
	item = tp__load_rlx_ptr(&a->slots[t & a->mask]);
	/* seq_cst CAS: only one of the thieves and the owner's take can move top past t. */
	if (!tp__cas_u64(&q->top, t, t + 1))
		return TP__STEAL_ABORT;
	*out = item;
	return TP__STEAL_OK;
}

/* Any thread. On TP__STEAL_OK, *out holds the oldest shared item. */
static inline enum tp__steal_result tp__deque_steal(struct tp__deque *q, void **out)
{
	return tp__deque_steal_unless(q, out, NULL, 0);
}

/*
 * Any thread: true if the shared part looked non-empty. Call it after a tp__fence_sc() when the
 * answer must pair with a publication (the sleep check); otherwise it is a hint.
 */
static inline bool tp__deque_looks_nonempty(struct tp__deque *q)
{
	uint64_t t = tp__load_sc_u64(&q->top);
	uint64_t s = tp__load_sc_u64(&q->split);

	return (int64_t)(s - t) > 0;
}

#endif /* TP_DEQUE_H */
