/*
 * deque.c - the slow paths of the Chase-Lev deque: set-up, growth, teardown.
 * The algorithm and its invariants are described at the top of deque.h.
 */
#include <errno.h>
#include <stdlib.h>

#include "deque.h"

static struct tp__deque_buf *buf_new(uint64_t size)
{
	struct tp__deque_buf *a =
		(struct tp__deque_buf *)malloc(sizeof(*a) + size * sizeof(a->slots[0]));

	if (a == NULL)
		return NULL;
	a->mask = size - 1;
	a->retired_next = NULL;
	tp__shared_array_init(a->slots, size);
	return a;
}

static void buf_free(struct tp__deque_buf *a)
{
	if (a == NULL)
		return;
	tp__shared_array_fini(a->slots, a->mask + 1);
	free(a);
}

int tp__deque_init(struct tp__deque *q, size_t capacity)
{
	uint64_t size = 2;
	struct tp__deque_buf *a;

	while (size < capacity)
		size <<= 1;
	a = buf_new(size);
	if (a == NULL)
		return ENOMEM;
	/* Before any thief can see the deque (the worker threads start later): relaxed. Start
	 * at 1 so that take's bottom - 1 never wraps below zero. */
	tp__store_rlx_ptr(TP__PTR(&q->buf), a);
	tp__store_rlx_u64(&q->top, 1);
	tp__store_rlx_u64(&q->split, 1);
	q->bottom = 1;
	q->top_seen = 1;
	tp__store_rlx_u32(&q->split_request, 0);
	q->retired = NULL;
	return 0;
}

struct tp__deque_buf *tp__deque_grow(struct tp__deque *q, struct tp__deque_buf *a, uint64_t t,
				     uint64_t b)
{
	struct tp__deque_buf *n = buf_new((a->mask + 1) * 2);

	if (n == NULL)
		return NULL;
	TP__ASSERT(b - t <= a->mask + 1);
	for (uint64_t i = t; i != b; i++)
		tp__store_rlx_ptr(&n->slots[i & n->mask], tp__load_rlx_ptr(&a->slots[i & a->mask]));
	/* (stores of the copied slots) before (store of buf), release: pairs with the acquire load
	 * of buf in tp__deque_steal. */
	tp__store_rel_ptr(TP__PTR(&q->buf), n);
	/* A thief may still read a slot of `a`: keep it until the deque is destroyed. */
	a->retired_next = q->retired;
	q->retired = a;
	return n;
}

int tp__deque_push_slow(struct tp__deque *q, void *item)
{
	struct tp__deque_buf *a = tp__load_rlx_ptr(TP__PTR(&q->buf));
	bool pushed;

	/* (load of top) acquire, pairs with a thief's CAS of top: the thief's read of the slot at
	 * the old top happens before we overwrite that slot after wrapping. */
	q->top_seen = tp__load_acq_u64(&q->top);
	if (q->bottom - q->top_seen > a->mask &&
	    tp__deque_grow(q, a, q->top_seen, q->bottom) == NULL)
		return ENOMEM;
	pushed = tp__deque_push_private(q, item);
	TP__ASSERT(pushed);
	(void)pushed;
	return 0;
}

void tp__deque_destroy(struct tp__deque *q)
{
	struct tp__deque_buf *a = q->retired;

	while (a != NULL) {
		struct tp__deque_buf *next = a->retired_next;

		buf_free(a);
		a = next;
	}
	buf_free(tp__load_rlx_ptr(TP__PTR(&q->buf)));
	tp__store_rlx_ptr(TP__PTR(&q->buf), NULL);
	q->retired = NULL;
}
