/*
 * deque.c - the slow paths of the Chase-Lev deque: set-up, growth, teardown.
 * The algorithm and its invariants are described at the top of deque.h.
 */
#include <errno.h>
#include <stdlib.h>

#include "deque.h"

static struct tp__deque_buf *buf_new(uint64_t size)
{
	struct tp__deque_buf *a = malloc(sizeof(*a) + size * sizeof(a->slots[0]));

	if (a == NULL)
		return NULL;
	a->mask = size - 1;
	a->retired_next = NULL;
	return a;
}

int tp__deque_init(struct tp__deque *q, size_t capacity)
{
	uint64_t size = 2;

	while (size < capacity)
		size <<= 1;
	q->buf = buf_new(size);
	if (q->buf == NULL)
		return ENOMEM;
	/* Start at 1 so that take's bottom - 1 never wraps below zero. */
	q->top = 1;
	q->split = 1;
	q->bottom = 1;
	q->top_seen = 1;
	q->split_request = 0;
	q->retired = NULL;
	return 0;
}

struct tp__deque_buf *tp__deque_grow(struct tp__deque *q, struct tp__deque_buf *a, uint64_t t,
				     uint64_t b)
{
	struct tp__deque_buf *n = buf_new((a->mask + 1) * 2);

	if (n == NULL)
		return NULL;
	for (uint64_t i = t; i != b; i++)
		tp__store_rlx_ptr(&n->slots[i & n->mask], tp__load_rlx_ptr(&a->slots[i & a->mask]));
	/* (stores of the copied slots) before (store of buf), release: pairs with the acquire load
	 * of buf in tp__deque_steal. */
	tp__store_rel_ptr((void **)&q->buf, n);
	/* A thief may still read a slot of `a`: keep it until the deque is destroyed. */
	a->retired_next = q->retired;
	q->retired = a;
	return n;
}

void tp__deque_destroy(struct tp__deque *q)
{
	struct tp__deque_buf *a = q->retired;

	while (a != NULL) {
		struct tp__deque_buf *next = a->retired_next;

		free(a);
		a = next;
	}
	free(q->buf);
	q->buf = NULL;
	q->retired = NULL;
}
