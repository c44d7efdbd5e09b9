/*
 * tstack.h - the task stack of typed tasks (thread_pool_task.h), one per worker: a split deque
 * of slots held by value.
 *
 * Overview
 *   A linear array of 64-byte slots. The owner spawns at its top (`head`, which the owner keeps in
 *   a register: the task functions' hidden parameter, never stored here) and joins back from it,
 *   newest first, so the array follows the recursion like a call stack. Thieves take the oldest
 *   slot of the shared part [tail, split) and run it in place: its result goes back into the
 *   slot, where the joiner reads it. The private part [split, head) belongs to the owner: spawn
 *   and join there are plain stores and a direct call. This is the split deque of van Dijk and
 *   van de Pol ("Lace: non-blocking split deque for work-stealing", 2014), with tail and split
 *   packed in one 64-bit word that thieves and the owner both change only by CAS.
 *
 *	base      tail           split             head
 *	 | stolen  | shared: steal | private: owner  | empty ...
 *
 * Invariants
 *   - tail <= split <= head (as indices), whenever the owner is between two operations.
 *   - Every slot below tail was stolen (or has been joined): tail only moves past a slot by a
 *     thief's CAS that takes it, and the owner lowers the word to {p, p} only when every slot
 *     below p was stolen (tp__tstack_stolen_joined).
 *   - A slot's `thief` is EMPTY exactly at and above head: spawn sets SPAWNED, a thief its own
 *     stack's address then DONE, join EMPTY before anything runs above it. So the first EMPTY
 *     slot is the top (tp__tstack_top), which is how the runtime finds it when it enters a task
 *     from outside one.
 *   - Only the owner writes a slot that no thief took; a taken slot belongs to its thief until
 *     it stores DONE, after which only the owner touches it again.
 *
 * Who may run what at the same time
 *   | function                                   | caller | alongside                       |
 *   |--------------------------------------------|--------|---------------------------------|
 *   | _publish, _reclaim, _stolen_joined, _top,  | owner  | steals, _looks_nonempty         |
 *   |   the inline spawn and join of the macros  |        |                                 |
 *   | tp__tstack_steal, _looks_nonempty          | any    | everything but init and destroy |
 *   | tp__tstack_init, _destroy (tstack.c)       | any    | nothing                         |
 *   Stealing is lock-free (a CAS fails only when another thief or the owner moved the word);
 *   the owner's publish and reclaim likewise retry only after a thief's successful CAS.
 */
#ifndef TP_TSTACK_H
#define TP_TSTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "thread_pool_task.h"

/* The shared word: tail in the high half, split in the low half. */
static inline uint64_t tp__tstack_word(uint32_t tail, uint32_t split)
{
	return (uint64_t)tail << 32 | split;
}

static inline uint32_t tp__tstack_tail(uint64_t word)
{
	return (uint32_t)(word >> 32);
}

static inline uint32_t tp__tstack_split(uint64_t word)
{
	return (uint32_t)word;
}

static inline uint32_t tp__tstack_index(const struct tp__tstack *q, const struct tp__slot *s)
{
	return (uint32_t)(s - q->base);
}

/* Result of a steal (as the deque's: a lost race is worth an immediate retry). */
enum tp__tsteal_result {
	TP__TSTEAL_EMPTY = 0,
	TP__TSTEAL_ABORT = 1,
	TP__TSTEAL_OK = 2
};

/*
 * Any thread. On TP__TSTEAL_OK, *out is the oldest shared slot, now the caller's to run
 * (tstack.c: tp__tstack_run_stolen). On EMPTY, it has asked the owner to publish.
 */
static inline enum tp__tsteal_result tp__tstack_steal(struct tp__tstack *q, struct tp__slot **out)
{
	/* relaxed: the CAS below checks it, and the slot is read only after that CAS. */
	uint64_t word = tp__load_rlx_u64(&q->ts);
	uint32_t tail = tp__tstack_tail(word);

	if (tail >= tp__tstack_split(word)) {
		/* Ask, but do not keep writing the owner's line when it already knows. */
		if (!tp__load_rlx_u32(&q->request))
			tp__store_rlx_u32(&q->request, 1);
		return TP__TSTEAL_EMPTY;
	}
	/* seq_cst CAS: one of the thieves and the owner's reclaim wins slot `tail`. Its acquire
	 * half pairs with the owner's publishing CAS (release; a thief's CAS in between continues
	 * that release sequence): the slot's contents are visible after it. With an old word that
	 * came back (the owner lowered it and published again), the CAS succeeds only if slot
	 * `tail` is shared again now: it is read after the CAS, never before. */
	if (!tp__cas_u64(&q->ts, word, tp__tstack_word(tail + 1, tp__tstack_split(word))))
		return TP__TSTEAL_ABORT;
	*out = &q->base[tail];
	return TP__TSTEAL_OK;
}

/* Any thread: true if the shared part looked non-empty (as tp__deque_looks_nonempty). */
static inline bool tp__tstack_looks_nonempty(struct tp__tstack *q)
{
	uint64_t word = tp__load_sc_u64(&q->ts);

	return tp__tstack_tail(word) < tp__tstack_split(word);
}

/*
 * Owner only: makes half of the private slots below `top` (an index: the first slot not to
 * publish) stealable, rounding up, and clears the request. Returns true if it published any;
 * the caller then wakes a parked worker (after a store-load fence: see tp__worker_publish).
 */
static inline bool tp__tstack_publish(struct tp__tstack *q, uint32_t top)
{
	uint32_t split = tp__tstack_index(q, q->split);
	uint32_t to = split + (top - split + 1) / 2;
	uint64_t word = tp__load_rlx_u64(&q->ts);

	TP__ASSERT(split <= top);
	if (to == split)
		return false; /* nothing private: the request stands for the next spawn */
	/* Thieves change only tail, and only while it is below split. */
	TP__ASSERT(tp__tstack_split(word) == split);
	/* seq_cst CAS, release: the slots' contents before the word that shows them. */
	while (!tp__cas_value_u64(&q->ts, &word, tp__tstack_word(tp__tstack_tail(word), to)))
		TP__ASSERT(tp__tstack_split(word) == split);
	q->split = &q->base[to];
	tp__store_rlx_u32(&q->request, 0);
	return true;
}

/*
 * Owner only, joining slot p = split - 1, the newest shared slot: takes back half of the shared
 * part, p included, and returns true; or returns false, changing nothing, when p was stolen. The
 * word is then {p + 1, p + 1}, and stays there while the joiner runs other tasks above p (they
 * publish from p + 1 up, never p itself), until tp__tstack_stolen_joined().
 */
static inline bool tp__tstack_reclaim(struct tp__tstack *q, struct tp__slot *p)
{
	uint32_t pi = tp__tstack_index(q, p);
	/* relaxed: the CAS below checks it. */
	uint64_t word = tp__load_rlx_u64(&q->ts);

	TP__ASSERT(tp__tstack_split(word) == pi + 1 && q->split == p + 1);
	for (;;) {
		uint32_t tail = tp__tstack_tail(word);

		if (tail > pi) {
			TP__ASSERT(tail == pi + 1);
			return false;
		}
		/* seq_cst CAS: against the thieves' CAS of the same word, one wins slot p. */
		if (tp__cas_value_u64(&q->ts, &word, tp__tstack_word(tail, (tail + pi + 1) / 2)))
			break;
	}
	q->split = &q->base[tp__tstack_split(tp__load_rlx_u64(&q->ts))];
	return true;
}

/*
 * Owner only, once the thief of slot p (tp__tstack_reclaim said so) stored DONE and everything
 * the joiner ran above p meanwhile is joined: lowers the word to {p, p}, so that the next spawn,
 * at p, starts a fresh private part. Every slot below p was stolen too (they were below tail).
 */
static inline void tp__tstack_stolen_joined(struct tp__tstack *q, struct tp__slot *p)
{
	uint32_t pi = tp__tstack_index(q, p);

	TP__ASSERT(tp__load_rlx_u64(&q->ts) == tp__tstack_word(pi + 1, pi + 1));
	TP__ASSERT(q->split == p + 1);
	/* No thief CASes an empty word (tail == split): a store will do. Relaxed: a thief that
	 * sees it takes nothing. */
	tp__store_rlx_u64(&q->ts, tp__tstack_word(pi, pi));
	q->split = p;
}

/* Owner only, between tasks' operations: the top, i.e. the first EMPTY slot (see Invariants):
 * the first few linearly, then by doubling and bisection. */
static inline struct tp__slot *tp__tstack_top(struct tp__tstack *q)
{
	size_t n = (size_t)(q->end - q->base), lo, hi;

	for (lo = 0; lo < 4 && lo < n; lo++)
		if (tp__load_rlx_u64(&q->base[lo].h.thief) == TP__SLOT_EMPTY)
			return &q->base[lo];
	/* base[lo - 1] is in use; find hi with base[hi] EMPTY, or hi = n. */
	hi = lo;
	while (hi < n && tp__load_rlx_u64(&q->base[hi].h.thief) != TP__SLOT_EMPTY) {
		lo = hi + 1;
		hi = hi * 2 < n ? hi * 2 : n;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tp__load_rlx_u64(&q->base[mid].h.thief) == TP__SLOT_EMPTY)
			hi = mid;
		else
			lo = mid + 1;
	}
	return &q->base[lo];
}

/* A deque item (worker.c) can also be a stolen slot: slots are 64-byte aligned, tagged with 2
 * (frames carry 1, records nothing: frame.h). */
static inline void *tp__item_of_slot(struct tp__slot *s)
{
	return (void *)((uintptr_t)s | 2u);
}

static inline bool tp__item_is_slot(const void *item)
{
	return ((uintptr_t)item & 2u) != 0;
}

static inline struct tp__slot *tp__item_slot(void *item)
{
	return (struct tp__slot *)((uintptr_t)item & ~(uintptr_t)2u);
}

/* tstack.c. 0 or ENOMEM. */
int tp__tstack_init(struct tp__tstack *q, struct tp__worker *worker);
void tp__tstack_destroy(struct tp__tstack *q);
/* A thief (owner of q) runs a slot it took from another stack, with its own top at `head`. */
void tp__tstack_run_stolen(struct tp__tstack *q, struct tp__slot *slot, struct tp__slot *head);

#endif /* TP_TSTACK_H */
