/*
 * deque.h - the Chase-Lev work-stealing deque, one per worker.
 *
 * Overview
 *   The owner pushes and takes at the bottom (LIFO: the newest fork runs first, its data still in
 *   cache); thieves steal at the top (FIFO: the oldest, usually largest, piece of work). This is
 *   the algorithm of Chase and Lev ("Dynamic circular work-stealing deque", SPAA 2005) in the C11
 *   formulation of Le, Pop, Cohen and Zappa Nardelli ("Correct and efficient work-stealing for weak
 *   memory models", PPoPP 2013), whose orderings are kept one for one below.
 *
 * Invariants
 *   - top only grows, by CAS (thieves, and the owner when it takes the last item).
 *   - bottom is written only by the owner; items live in slots [top, bottom).
 *   - The buffer is a power-of-two ring. When full, the owner copies it into one twice the size and
 *     publishes the new one; the old one is retired, not freed, until tp__deque_destroy(), because a
 *     thief may still read a slot of it (the slot it read is still valid: the owner writes new items
 *     only into the current buffer). Doubling bounds the retired memory below the current size.
 *
 * Who may run what at the same time
 *   | operation                      | owner thread only | concurrent with            |
 *   |--------------------------------|-------------------|----------------------------|
 *   | tp__deque_push, tp__deque_take | yes               | any number of steals       |
 *   | tp__deque_steal                | no                | push, take, other steals   |
 *   | tp__deque_init, _destroy       | yes               | nothing                    |
 *   tp__deque_steal is lock-free; push and take are wait-free except for the growth copy.
 */
#ifndef TP_DEQUE_H
#define TP_DEQUE_H

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"

#define TP__CACHE_LINE 64

struct tp__deque_buf {
	uint64_t mask;			    /* size - 1; size is a power of two */
	struct tp__deque_buf *retired_next; /* owner only: chain of buffers replaced by growth */
	void *slots[];			    /* shared: owner writes, thieves read */
};

struct tp__deque {
	alignas(TP__CACHE_LINE) uint64_t top;	 /* shared: thieves CAS it; its own line */
	alignas(TP__CACHE_LINE) uint64_t bottom; /* written by the owner, read by thieves */
	struct tp__deque_buf *buf;     /* stored by the owner (release), read by thieves */
	struct tp__deque_buf *retired; /* owner only */
};

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

/* Owner only. 0, or ENOMEM when the deque was full and could not grow (nothing pushed then). */
static inline int tp__deque_push(struct tp__deque *q, void *item)
{
	uint64_t b = tp__load_rlx_u64(&q->bottom);
	/* (load of top) acquire, pairs with a thief's CAS of top: the thief's read of the slot at
	 * the old top happens before we overwrite that slot after wrapping around. */
	uint64_t t = tp__load_acq_u64(&q->top);
	struct tp__deque_buf *a = tp__load_rlx_ptr((void *const *)&q->buf);

	if (b - t > a->mask) {
		a = tp__deque_grow(q, a, t, b);
		if (a == NULL)
			return ENOMEM;
	}
	tp__store_rlx_ptr(&a->slots[b & a->mask], item);
	/* (store of the slot) before (store of bottom), release: pairs with the acquire load of
	 * bottom in tp__deque_steal, so a thief that sees the new bottom sees the item. */
	tp__store_rel_u64(&q->bottom, b + 1);
	return 0;
}

/* Owner only. The newest item, or NULL when empty (items are never NULL). */
static inline void *tp__deque_take(struct tp__deque *q)
{
	uint64_t b = tp__load_rlx_u64(&q->bottom) - 1;
	struct tp__deque_buf *a = tp__load_rlx_ptr((void *const *)&q->buf);
	uint64_t t;
	void *item;

	tp__store_sc_u64(&q->bottom, b);
	/* (store of bottom) before (load of top), store-load: pairs with the fence between a thief's
	 * loads of top and bottom. Either the thief sees the lowered bottom and backs off, or we see
	 * its raised top; both can never take the same last item. */
	tp__fence_sc();
	t = tp__load_sc_u64(&q->top);
	if ((int64_t)(b - t) < 0) {
		/* Empty: restore bottom. */
		tp__store_rlx_u64(&q->bottom, b + 1);
		return NULL;
	}
	item = tp__load_rlx_ptr(&a->slots[b & a->mask]);
	if (t == b) {
		/* The last item: race the thieves for it on top, seq_cst CAS. */
		if (!tp__cas_u64(&q->top, t, t + 1))
			item = NULL;
		tp__store_rlx_u64(&q->bottom, b + 1);
	}
	return item;
}

/* Any thread. On TP__STEAL_OK, *out holds the oldest item. */
static inline enum tp__steal_result tp__deque_steal(struct tp__deque *q, void **out)
{
	/* (load of top) acquire, pairs with the CAS of another thief or of the owner's take. */
	uint64_t t = tp__load_sc_u64(&q->top);
	uint64_t b;
	struct tp__deque_buf *a;
	void *item;

	/* (load of top) before (load of bottom), store-load: pairs with the fence in
	 * tp__deque_take; see there. */
	tp__fence_sc();
	/* (load of bottom) acquire, pairs with the release store of bottom in tp__deque_push. */
	b = tp__load_sc_u64(&q->bottom);
	if ((int64_t)(b - t) <= 0)
		return TP__STEAL_EMPTY;
	/* (load of buf) acquire, pairs with the release store of a grown buffer: its slots are
	 * filled before we can see it. */
	a = tp__load_acq_ptr((void *const *)&q->buf);
	item = tp__load_rlx_ptr(&a->slots[t & a->mask]);
	/* seq_cst CAS: only one of the thieves and the owner's take can move top past t. */
	if (!tp__cas_u64(&q->top, t, t + 1))
		return TP__STEAL_ABORT;
	*out = item;
	return TP__STEAL_OK;
}

/*
 * Any thread: true if the deque looked non-empty. Call it after a tp__fence_sc() when the answer
 * must pair with a push (the sleep check); otherwise it is a hint.
 */
static inline int tp__deque_looks_nonempty(struct tp__deque *q)
{
	uint64_t t = tp__load_sc_u64(&q->top);
	uint64_t b = tp__load_sc_u64(&q->bottom);

	return (int64_t)(b - t) > 0;
}

#endif /* TP_DEQUE_H */
