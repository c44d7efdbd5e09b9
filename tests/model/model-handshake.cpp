/*
 * model-handshake.cpp - publishing work against workers going to sleep: no lost wake-up.
 *
 * Every way work becomes visible meets a worker that is parking (park() in src/worker.c:
 * tp__park_prepare, the work_visible() re-check, tp__park_sleep):
 *   - a fork's publication (tp_enqueue from a task: push, then tp__worker_publish);
 *   - a batch moved from the injection queue into a worker's deque (take_inject: the queue
 *     emptied, the rest pushed, then tp__worker_publish);
 *   - a thief's request answered (tp_spawn / tp_join see split_request, then publish);
 *   - a thief's request answered by a typed task's spawn (TP_SPAWN sees the task stack's
 *     request, then tstack.c publishes half of its private slots and wakes);
 *   - an outside submission (the injection queue's enqueue, a full barrier, then
 *     tp__park_wake_one_after_barrier).
 * Invariant: at the end, if work is still visible (a deque's shared part, or the injection
 * queue), not every parking worker may be asleep past its eventcount snapshot. A worker that
 * sees the work steals it (the real tp__deque_steal) and parks again, twice at most.
 *
 * The deque is the real code; parking and the worker's side are transcribed (park-worker.hpp).
 * The mutant old-publish runs the publication this commit history replaced (before 8fdcf71): a
 * relaxed look at the bitmap, fencing only if a bit looked set.
 */
#include "park-worker.hpp"

/* transcribed from src/tstack.c: publish (verbatim) */
static void publish(struct tp__tstack *q, uint32_t top)
{
	struct tp__worker *w = q->worker;

	if (tp__tstack_publish(q, top))
		/* (publishing CAS) before (loads of the idle bitmap): the CAS is seq_cst, and
		 * tp__park_wake_one() fences again; see tp__worker_publish. */
		(void)tp__park_wake_one(&w->pool->park, w->index);
}

namespace
{

enum {
	ROUNDS = 2,
	BATCH = 3
};

struct item {
	rl::var<int> payload;
};

enum {
	TYPED_SLOTS = 4
};

template <class Derived, unsigned Threads>
struct handshake_suite : rl::test_suite<Derived, Threads> {
	struct tp_pool pool;
	struct tp__worker workers[MAX_WORKERS];
	struct tp__slot slots[MAX_WORKERS][TYPED_SLOTS]; /* the workers' task stacks */
	item items[BATCH];
	int nitems;
	int taken;

	void setup(size_t nworkers, bool spread)
	{
		model_pool_init(&pool, workers, nworkers, spread);
		for (size_t i = 0; i < nworkers; i++) {
			struct tp__tstack *q = &workers[i].tstack;

			for (int k = 0; k < TYPED_SLOTS; k++)
				slots[i][k].h.thief.store(TP__SLOT_EMPTY, rl::mo_relaxed, $);
			q->base = slots[i];
			q->end = slots[i] + TYPED_SLOTS;
			q->split = q->base;
			q->worker = &workers[i];
		}
		nitems = 0;
		taken = 0;
	}

	void *new_item()
	{
		item *it = &items[nitems];

		it->payload($) = 7;
		nitems++;
		return it;
	}

	/* The model's number of a worker (its index may be spread over bitmap words). */
	size_t i_of(struct tp__worker *w)
	{
		return (size_t)(w - workers);
	}

	/* A worker that found work: one steal from every other deque, then from every other task
	 * stack, as steal_round does. A typed slot's first data byte names its item here. */
	void steal_round(struct tp__worker *w)
	{
		for (size_t k = 0; k < pool.n; k++) {
			void *p;
			struct tp__slot *s;

			if (k == i_of(w))
				continue;
			if (tp__deque_steal(&pool.workers[k].deque, &p) == TP__STEAL_OK) {
				RL_ASSERT(p != NULL);
				RL_ASSERT(static_cast<item *>(p)->payload($) == 7);
				taken++;
				return;
			}
			if (tp__tstack_steal(&pool.workers[k].tstack, &s) == TP__TSTEAL_OK) {
				RL_ASSERT(items[s->data[0]].payload($) == 7);
				taken++;
				return;
			}
		}
	}

	/* A worker with nothing to do: parks, and when it finds work, steals and parks again. */
	void parker(size_t i)
	{
		struct tp__worker *w = &workers[i];

		for (int round = 0; round < ROUNDS; round++) {
			if (park(w) || model_asleep(w))
				return;
			steal_round(w);
		}
	}

	bool work_left()
	{
		if (tp__inject_nonempty(&pool.inject))
			return true;
		for (size_t i = 0; i < pool.n; i++)
			if (tp__deque_looks_nonempty(&workers[i].deque) ||
			    tp__tstack_looks_nonempty(&workers[i].tstack))
				return true;
		return false;
	}

	void after()
	{
		bool all_asleep = true;

		for (size_t i = 0; i < pool.n; i++)
			if (static_cast<Derived *>(this)->is_parker(i) &&
			    !model_sleeps_forever(&pool, &workers[i]))
				all_asleep = false;
		/* The lost wake-up: work stays visible while every worker that could take it
		 * sleeps past its snapshot. */
		RL_ASSERT(!(all_asleep && work_left()));
		model_pool_destroy(&pool);
	}
};

/* A fork: worker 0 pushes a record and publishes; workers 1 and 2 park (bits in one word). */
struct fork_publication : handshake_suite<fork_publication, 3> {
	void before()
	{
		setup(3, false);
	}
	bool is_parker(size_t i)
	{
		return i != 0;
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			RL_ASSERT(tp__deque_push(&workers[0].deque, new_item()) == 0);
			tp__worker_publish(&workers[0]);
		} else {
			parker(i);
		}
	}
};

/* take_inject: worker 0 empties the injection queue (a batch of 3), keeps the oldest, pushes the
 * rest and publishes; workers 1 and 2 park, looking at the queue too (a bitmap word each). */
struct batch_publication : handshake_suite<batch_publication, 3> {
	void before()
	{
		setup(3, true);
		pool.inject.head_next.store(1, rl::mo_relaxed, $);
		pool.inject.tail.store(BATCH, rl::mo_relaxed, $);
	}
	bool is_parker(size_t i)
	{
		return i != 0;
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			int last = BATCH;

			/* The dequeues: the head moves on; the last node's cmpxchg of the tail back to
			 * the head is a full barrier (liburcu). */
			pool.inject.head_next.store(0, rl::mo_relaxed, $);
			rl::atomic_thread_fence(rl::mo_seq_cst, $);
			RL_ASSERT(pool.inject.tail.compare_exchange_strong(last, 0, rl::mo_seq_cst,
									   $));
			rl::atomic_thread_fence(rl::mo_seq_cst, $);
			for (int k = 1; k < BATCH; k++)
				RL_ASSERT(tp__deque_push(&workers[0].deque, new_item()) == 0);
			tp__worker_publish(&workers[0]);
		} else {
			parker(i);
		}
	}
};

/* A request answered: worker 0 holds private items (tp_spawn), worker 1 asks for them (its steal
 * finds nothing) and parks; worker 0's next spawns see the request and publish. */
struct request_answered : handshake_suite<request_answered, 3> {
	void before()
	{
		setup(3, false);
	}
	bool is_parker(size_t i)
	{
		return i != 0;
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			for (int k = 0; k < 2; k++) {
				/* tp__spawn_slow: the push, then the request's answer. */
				RL_ASSERT(tp__deque_push(&workers[0].deque, new_item()) == 0);
				if (tp__deque_requested(&workers[0].deque))
					tp__worker_publish(&workers[0]);
			}
		} else {
			void *p;

			if (i == 1)
				RL_ASSERT(tp__deque_steal(&workers[0].deque, &p) != TP__STEAL_OK);
			parker(i);
		}
	}
};

/* A request answered by typed spawns: worker 0 spawns typed tasks into its task stack (the
 * inline TP_SPAWN: the slot written, then the request checked), worker 1 asks (its steal finds
 * nothing) and parks; worker 0's next spawn publishes (tstack.c) and wakes. */
struct typed_request_answered : handshake_suite<typed_request_answered, 3> {
	void before()
	{
		setup(3, false);
	}
	bool is_parker(size_t i)
	{
		return i != 0;
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			struct tp__tstack *q = &workers[0].tstack;

			for (int k = 0; k < 2; k++) {
				struct tp__slot *head = &q->base[k];

				new_item();
				head->h.run = NULL;
				tp__store_rlx_u64(&head->h.thief, TP__SLOT_SPAWNED);
				head->data[0] = (unsigned char)k;
				/* tp__task_spawned_slow: the request's answer. */
				if (tp__load_rlx_u32(&q->request))
					publish(q, tp__tstack_index(q, head) + 1);
			}
		} else {
			struct tp__slot *s;

			if (i == 1)
				RL_ASSERT(tp__tstack_steal(&workers[0].tstack, &s) !=
					  TP__TSTEAL_OK);
			parker(i);
		}
	}
};

/* An outside submission: thread 2 (no worker) enqueues and wakes one; workers 0 and 1 park (a
 * bitmap word each). */
struct outside_submission : handshake_suite<outside_submission, 3> {
	void before()
	{
		setup(2, true);
	}
	bool is_parker(size_t i)
	{
		return i < 2;
	}
	void thread(unsigned i)
	{
		if (i == 2) {
			model_inject_push(&pool.inject, 1);
			(void)tp__park_wake_one_after_barrier(&pool.park);
		} else {
			parker(i);
		}
	}
};

const tp_model_mutant mutants[] = {
	{ "old-publish", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "the publication before 8fdcf71: release store of split, relaxed look at the bitmap, "
	  "fence only if a bit looked set (the lost wake-up the review found)" },
	{ "wake-no-fence", TP_MODEL_CK, "tp__park_wake_one", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, false,
	  "the publisher's store-load fence between split and the bitmap" },
	{ "prepare-no-fence", TP_MODEL_CK, "tp__park_prepare", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, false,
	  "the parking worker's store-load fence between its bit and the re-check" },
	{ "publish-split-relaxed", TP_MODEL_CK, "tp__deque_publish", TP__KIND_STORE, "&q->split",
	  TP_MODEL_TO_RELAXED, false,
	  "the publication's store of split, relaxed (its fence still follows: the worker that "
	  "wakes may steal an item whose contents it cannot see)" },
	{ "inject-no-barrier", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "the injection queue's enqueue without its full barrier (a relaxed exchange of the tail): "
	  "tp__park_wake_one_after_barrier relies on it" },
	{ "sc-accesses-only", TP_MODEL_SC, NULL, TP__KIND_NONE, "", 0, false,
	  "the builtins backend as it was, seq_cst _sc accesses and empty fences: liburcu's relaxed "
	  "loads in work_visible() are not ordered after the parking worker's seq_cst or" },
	{ "publish-split-not-sc", TP_MODEL_SC, "tp__deque_publish", TP__KIND_STORE, "&q->split",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the publication's _sc store of split as a release store" },
	{ "visible-split-not-sc", TP_MODEL_SC, "tp__deque_looks_nonempty", TP__KIND_LOAD,
	  "&q->split", TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the re-check's _sc load of split as an acquire load" },
	{ "wake-bits-not-sc", TP_MODEL_SC, "wake_one", TP__KIND_LOAD, "&p->idle",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the publisher's _sc load of the bitmap as an acquire load" },
	{ "prepare-or-not-sc", TP_MODEL_SC, "tp__park_prepare", TP__KIND_RMW, "&p->idle",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the parking worker's seq_cst or of its bit as acq_rel" },
	{ "visible-top-not-sc", TP_MODEL_SC, "tp__deque_looks_nonempty", TP__KIND_LOAD, "&q->top",
	  TP_MODEL_TO_ACQ_REL, true,
	  "in the sc reading, the re-check's _sc load of top as an acquire load (publication does "
	  "not move top: expected to survive)" },
	{ "claim-cas-relaxed", TP_MODEL_CK, "claim_and_wake", TP__KIND_RMW, "&p->idle",
	  TP_MODEL_TO_RELAXED, true,
	  "the claim of a sleeper's bit, relaxed (one location; the increment that follows is what "
	  "wakes: expected to survive)" },
};

} // namespace

int main(int argc, char **argv)
{
	int rc = tp_model_begin(argc, argv, "handshake", mutants,
				sizeof(mutants) / sizeof(mutants[0]));

	if (rc >= 0)
		return rc;
	tp_model_check<fork_publication>("fork", 50000, 2);
	tp_model_check<batch_publication>("batch", 50000, 1);
	tp_model_check<request_answered>("request", 50000, 1);
	tp_model_check<typed_request_answered>("typed-request", 50000, 1);
	/* The sc reading's mutants weaken one _sc access each; the reading alone already loses a
	 * wake-up here (liburcu's relaxed loads, the mutant sc-accesses-only), so they skip it. */
	if (tp_model.reading == TP_MODEL_SC && !tp_model_mutated("sc-accesses-only"))
		std::printf("handshake/outside: skipped in the sc reading\n");
	else
		tp_model_check<outside_submission>("outside", 50000, 2);
	return tp_model_end();
}
