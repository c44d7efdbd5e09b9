/*
 * model-deque.cpp - the work-stealing deque under Relacy: the real code of src/deque.h,
 * src/deque.c and the owner's end in include/thread_pool_inline.h, compiled with the model
 * backend of src/atomics.h, one owner against two thieves.
 *
 * Invariants checked in every execution
 *   - every pushed item is taken exactly once (no loss, no duplicate), by the owner or a thief;
 *   - whoever takes an item sees what the owner wrote into it before the push (a plain
 *     variable: Relacy reports a data race when the publication does not order it);
 *   - the owner's assertions in the code itself (top_seen <= split <= bottom, top <= bottom
 *     after take's fence), and Relacy's own: no use of freed or unconstructed memory, no leak.
 *
 * Each suite is one owner script (push, publish, private pop, take, a full ring growing while
 * thieves read the old one) against thieves that each try a bounded number of steals; the owner
 * takes its deque dry at the end.
 */
#include "harness.hpp"

#define TP_ATOMICS_RELACY 1
#include "deque.c"

namespace
{

enum { MAX_ITEMS = 6, THIEF_TRIES = 2 };

struct item {
	rl::var<int> payload; /* written by the owner before the push, read by the taker */
};

/* What every suite shares: the deque, the items and who took them. */
template <class Derived> struct deque_suite : rl::test_suite<Derived, 3> {
	struct tp__deque q;
	item items[MAX_ITEMS];
	int pushed;
	int taken[MAX_ITEMS];

	void before()
	{
		RL_ASSERT(tp__deque_init(&q, 2) == 0);
		pushed = 0;
		for (int i = 0; i < MAX_ITEMS; i++)
			taken[i] = 0;
	}

	void after()
	{
		for (int i = 0; i < pushed; i++)
			RL_ASSERT(taken[i] == 1);
		tp__deque_destroy(&q);
	}

	void *next_item()
	{
		item *it = &items[pushed];

		RL_ASSERT(pushed < MAX_ITEMS);
		it->payload($) = 100 + pushed;
		pushed++;
		return it;
	}

	void push()
	{
		RL_ASSERT(tp__deque_push(&q, next_item()) == 0);
	}

	void got(void *p)
	{
		item *it = static_cast<item *>(p);
		long i = it - items;

		RL_ASSERT(i >= 0 && i < pushed);
		RL_ASSERT(it->payload($) == 100 + i);
		taken[i]++;
	}

	/* As tp__worker_find does after a take: a thief asked, so publish the private part. */
	void answer_request()
	{
		if (tp__deque_requested(&q) && tp__deque_has_private(&q))
			tp__deque_publish(&q);
	}

	/* The owner's last act: take the deque dry. */
	void drain()
	{
		for (int i = 0; i <= MAX_ITEMS; i++) {
			void *p = tp__deque_take(&q);

			if (p == NULL)
				break;
			got(p);
			answer_request();
		}
	}

	void thief()
	{
		for (int tries = 0; tries < THIEF_TRIES; tries++) {
			void *p;

			if (tp__deque_steal(&q, &p) == TP__STEAL_OK)
				got(p);
		}
	}

	void thread(unsigned who)
	{
		if (who == 0)
			static_cast<Derived *>(this)->owner();
		else
			thief();
	}
};

/* Published items raced for by the owner's take and two thieves, the ring growing on the way. */
struct publish_take_steal : deque_suite<publish_take_steal> {
	void owner()
	{
		push();
		push();
		tp__deque_publish(&q);
		push(); /* the ring of 2 is full: the slow path reads top, and grows unless stolen */
		tp__deque_publish(&q);
		drain();
	}
};

/* tp_spawn / tp_join's fast paths: private pushes and pops, publication only on request. */
struct private_part_on_request : deque_suite<private_part_on_request> {
	void owner()
	{
		void *a, *b;

		a = next_item();
		RL_ASSERT(tp__deque_push_private(&q, a));
		answer_request();
		b = next_item();
		RL_ASSERT(tp__deque_push_private(&q, b));
		answer_request();
		/* The inline join: pop b if it is still private and nobody asked. */
		if (!tp__deque_requested(&q) && tp__deque_pop_private(&q, b) == b) {
			got(b);
		} else {
			answer_request();
		}
		drain();
	}
};

/* A ring that grows while thieves may still read the old one, items private and shared. */
struct grow_under_steal : deque_suite<grow_under_steal> {
	void owner()
	{
		push();
		push();
		tp__deque_publish(&q);
		push();
		push();
		answer_request();
		tp__deque_publish(&q);
		drain();
	}
};

const tp_model_mutant mutants[] = {
	{ "publish-split-relaxed", TP_MODEL_CK, "tp__deque_publish", TP__KIND_STORE, "&q->split",
	  TP_MODEL_TO_RELAXED, false,
	  "publication's release store of split: a thief may take an item whose contents it cannot "
	  "see (data race on the payload)" },
	{ "steal-split-relaxed", TP_MODEL_CK, "tp__deque_steal_unless", TP__KIND_LOAD, "&q->split",
	  TP_MODEL_TO_RELAXED, false,
	  "the thief's acquire load of split: it may read the item before its contents (data race)" },
	{ "take-no-fence", TP_MODEL_CK, "tp__deque_take_shared", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, false,
	  "take's store-load fence between lowering split and reading top: owner and thief can "
	  "both take the same item" },
	{ "steal-no-fence", TP_MODEL_CK, "tp__deque_steal_unless", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, false,
	  "steal's fence between its loads of top and split: owner and thief can both take the same "
	  "item" },
	{ "grow-buf-relaxed", TP_MODEL_CK, "tp__deque_grow", TP__KIND_STORE, "&q->buf",
	  TP_MODEL_TO_RELAXED, false,
	  "growth's release store of the new buffer: a thief may read a slot not yet copied" },
	{ "steal-buf-relaxed", TP_MODEL_CK, "tp__deque_steal_unless", TP__KIND_LOAD, "&q->buf",
	  TP_MODEL_TO_RELAXED, false,
	  "the thief's acquire load of the buffer: it may read a slot not yet copied" },
	{ "steal-cas-relaxed", TP_MODEL_SC, "tp__deque_steal_unless", TP__KIND_RMW, "&q->top",
	  TP_MODEL_TO_RELAXED, false,
	  "in the sc reading, the thief's seq_cst CAS of top, relaxed: the owner's take can miss it "
	  "and take the same item (with fences, Relacy's seq_cst fences order more than C11's and "
	  "hide it)" },
	{ "sc-accesses-only", TP_MODEL_SC, NULL, TP__KIND_NONE, "", 0, true,
	  "the builtins backend as it was, seq_cst _sc accesses and empty fences (the deque's _sc "
	  "accesses carry its store-load orders alone: expected to survive)" },
	{ "take-split-not-sc", TP_MODEL_SC, "tp__deque_take_shared", TP__KIND_STORE, "&q->split",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, take's _sc store of split as a release store: duplicate take" },
	{ "take-top-not-sc", TP_MODEL_SC, "tp__deque_take_shared", TP__KIND_LOAD, "&q->top",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, take's _sc load of top as an acquire load: duplicate take" },
	{ "steal-split-not-sc", TP_MODEL_SC, "tp__deque_steal_unless", TP__KIND_LOAD, "&q->split",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, steal's _sc load of split as an acquire load: duplicate take" },
	{ "steal-top-not-sc", TP_MODEL_SC, "tp__deque_steal_unless", TP__KIND_LOAD, "&q->top",
	  TP_MODEL_TO_ACQ_REL, true,
	  "in the sc reading, steal's _sc load of top as an acquire load (the CASes that move top "
	  "are seq_cst, and reading one orders the thief's load of split after it in the seq_cst "
	  "order: expected to survive)" },
	{ "push-top-relaxed", TP_MODEL_CK, "tp__deque_push_slow", TP__KIND_LOAD, "&q->top",
	  TP_MODEL_TO_RELAXED, true,
	  "the full ring's acquire load of top: orders a thief's read of a slot before the owner "
	  "overwrites it (load buffering, which Relacy does not model: expected to survive)" },
	{ "take-cas-relaxed", TP_MODEL_CK, "tp__deque_take_shared", TP__KIND_RMW, "&q->top",
	  TP_MODEL_TO_RELAXED, true,
	  "the owner's CAS for the last item, relaxed (one location: the CAS alone decides the race; "
	  "expected to survive)" },
};

} // namespace

int main(int argc, char **argv)
{
	int rc = tp_model_begin(argc, argv, "deque", mutants, sizeof(mutants) / sizeof(mutants[0]));

	if (rc >= 0)
		return rc;
	tp_model_check<publish_take_steal>("publish-take-steal", 20000, 1);
	tp_model_check<private_part_on_request>("private-part-on-request", 20000, 2);
	tp_model_check<grow_under_steal>("grow-under-steal", 20000, 1);
	return tp_model_end();
}
