/*
 * model-tstack.cpp - the task stacks of typed tasks under Relacy: the real protocol of
 * src/tstack.h (steal, publish, reclaim, the top), the real inline spawn and join of
 * include/thread_pool_task.h (a TP_TASK declared here, expanded by the real macros), and copies of
 * the slow paths of src/tstack.c (they need the pool only to wake a parked worker, which is not
 * modelled here: the park/publish handshake is model-handshake's), one owner against two thieves.
 *
 * Invariants checked in every execution
 *   - every spawned task runs exactly once, by the owner (inline join, or reclaimed from the
 *     shared part) or by a thief, and its join returns that run's result;
 *   - whoever runs a task sees what the owner wrote before the spawn, and the joiner sees what the
 *     thief wrote before DONE (plain variables: Relacy reports a data race when the protocol
 *     does not order them);
 *   - the assertions of the code itself (the word against the owner's split, the top found by
 *     tp__tstack_top, a slot joined only while SPAWNED), and Relacy's own.
 *
 * Suites: the owner spawns leaves and joins them newest first while thieves ask, steal and run;
 * then tasks that spawn in turn, so that a thief's own stack is published and the owner,
 * joining a stolen slot, leapfrogs onto it.
 */
#include "harness.hpp"

#define TP_ATOMICS_RELACY 1
#include "tstack.h"

enum {
	MAX_TASKS = 8,
	STACK_SLOTS = 16,
	THIEF_TRIES = 2,
	JOIN_SPINS = 2
};

/* ---- what tstack.c needs of the pool: nothing is woken here ---- */

struct tp_pool_model {
	int park;
};

struct tp__worker {
	struct tp_pool_model *pool;
	size_t index;
};

static inline bool tp__park_wake_one(int *park, size_t index)
{
	(void)park;
	(void)index;
	return false;
}

/* src/pool.h's, with fewer pauses before the yield (Relacy's). */
static inline void tp__join_pause(int *spins)
{
	if (++*spins < JOIN_SPINS) {
		tp__cpu_relax();
	} else {
		sched_yield();
		*spins = 0;
	}
}

#define TP__COUNT(w, field)		((void)(w))
#define TP__TRACE_FLOW(w, event, other) ((void)(w), (void)sizeof(other))

/* transcribed from src/tstack.c: publish (verbatim) */
static void publish(struct tp__tstack *q, uint32_t top)
{
	struct tp__worker *w = q->worker;

	if (tp__tstack_publish(q, top))
		/* (publishing CAS) before (loads of the idle bitmap): the CAS is seq_cst, and
		 * tp__park_wake_one() fences again; see tp__worker_publish. */
		(void)tp__park_wake_one(&w->pool->park, w->index);
}

/* transcribed from src/tstack.c: tp__task_spawned_slow (verbatim) */
void tp__task_spawned_slow(struct tp__tstack *q, struct tp__slot *slot)
{
	publish(q, tp__tstack_index(q, slot) + 1);
}

/* transcribed from src/tstack.c: tp__tstack_run_stolen (verbatim) */
void tp__tstack_run_stolen(struct tp__tstack *q, struct tp__slot *slot, struct tp__slot *head)
{
	/* (store of thief) release: the joiner that reads it steals from our stack. */
	tp__store_rel_u64(&slot->h.thief, (uint64_t)(uintptr_t)q);
	slot->h.run(q, head, slot);
	/* (store of the result) before (store of DONE), release: pairs with the joiner's acquire
	 * load. Our last access to the slot. */
	tp__store_rel_u64(&slot->h.thief, TP__SLOT_DONE);
}

/* transcribed from src/tstack.c: leapfrog (verbatim) */
static void leapfrog(struct tp__tstack *q, struct tp__slot *p)
{
	struct tp__worker *w = q->worker;
	int spins = 0;
	uint64_t v;

	/* acquire: pairs with the thief's release store of DONE (and of the result). */
	while ((v = tp__load_acq_u64(&p->h.thief)) != TP__SLOT_DONE) {
		struct tp__slot *stolen;

		/* SPAWNED: the thief won the slot and has not said who it is yet. */
		if (v != TP__SLOT_SPAWNED &&
		    tp__tstack_steal((struct tp__tstack *)(uintptr_t)v, &stolen) == TP__TSTEAL_OK) {
			struct tp__tstack *thief = (struct tp__tstack *)(uintptr_t)v;

			TP__COUNT(w, steals);
			TP__TRACE_FLOW(w, TP__EV_STEAL, thief->worker->index);
			tp__tstack_run_stolen(q, stolen, p + 1);
			spins = 0;
			continue;
		}
		tp__join_pause(&spins);
	}
}

/* transcribed from src/tstack.c: tp__task_join_slow (verbatim) */
int tp__task_join_slow(struct tp__tstack *q, struct tp__slot *p)
{
	int stolen = 0;

	if (p >= q->split) {
		/* Private: only a request sent us here. */
		publish(q, tp__tstack_index(q, p));
	} else if (!tp__tstack_reclaim(q, p)) {
		leapfrog(q, p);
		tp__tstack_stolen_joined(q, p);
		stolen = 1;
	}
	tp__store_rlx_u64(&p->h.thief, TP__SLOT_EMPTY);
	return stolen;
}

void tp__task_overflow(struct tp__tstack *q)
{
	(void)q;
	RL_ASSERT(!"task stack overflow");
	std::abort();
}

int tp__task_run(tp_pool *pool, struct tp__slot *slot, tp__slot_run_fn run)
{
	(void)pool;
	(void)slot;
	(void)run;
	return ENOSYS; /* TP_RUN is not modelled: the suites start on a stack directly */
}

namespace
{

/* ---- the tasks ---- */

struct model_state {
	rl::var<int> input[MAX_TASKS];	/* written by the spawner before the spawn */
	rl::var<int> output[MAX_TASKS]; /* written by the task, read by its joiner */
	rl::atomic<int> runs[MAX_TASKS];
};

static model_state *model;

/* A leaf: reads what its spawner wrote, writes what its joiner reads. */
TP_TASK_1(int, leaf, int, i)
{
	int in = model->input[i]($);

	model->runs[i].fetch_add(1, rl::mo_relaxed, $);
	model->output[i]($) = in + 1;
	return in * 10;
}

/* Spawns leaves first and first + 1, joins them: what a thief's stack publishes. */
TP_TASK_1(int, pair, int, first)
{
	int a, b;

	model->input[first]($) = first;
	TP_SPAWN(leaf, first);
	model->input[first + 1]($) = first + 1;
	TP_SPAWN(leaf, first + 1);
	b = TP_JOIN(leaf);
	a = TP_JOIN(leaf);
	RL_ASSERT(b == (first + 1) * 10 && model->output[first + 1]($) == first + 2);
	RL_ASSERT(a == first * 10 && model->output[first]($) == first + 1);
	model->runs[first + 2].fetch_add(1, rl::mo_relaxed, $); /* the pair itself */
	return a + b;
}

/* ---- the suites ---- */

template <class Derived> struct tstack_suite : rl::test_suite<Derived, 3> {
	struct tp_pool_model pool;
	struct tp__worker workers[3];
	struct tp__tstack stacks[3];
	struct tp__slot slots[3][STACK_SLOTS];
	model_state state;
	int expected_runs[MAX_TASKS];

	void before()
	{
		model = &state;
		pool.park = 0;
		for (int w = 0; w < 3; w++) {
			struct tp__tstack *q = &stacks[w];

			workers[w].pool = &pool;
			workers[w].index = (size_t)w;
			for (int i = 0; i < STACK_SLOTS; i++) {
				slots[w][i].h.thief.store(TP__SLOT_EMPTY, rl::mo_relaxed, $);
				slots[w][i].h.run = NULL;
			}
			q->base = slots[w];
			q->end = slots[w] + STACK_SLOTS;
			q->split = q->base;
			q->worker = &workers[w];
			tp__store_rlx_u64(&q->ts, 0);
			tp__store_rlx_u32(&q->request, 0);
		}
		for (int i = 0; i < MAX_TASKS; i++) {
			state.runs[i].store(0, rl::mo_relaxed, $);
			expected_runs[i] = 0;
		}
	}

	void after()
	{
		for (int i = 0; i < MAX_TASKS; i++)
			RL_ASSERT(state.runs[i].load(rl::mo_relaxed, $) == expected_runs[i]);
		/* Every slot joined: each stack's top is its base again. */
		for (int w = 0; w < 3; w++)
			RL_ASSERT(tp__tstack_top(&stacks[w]) == stacks[w].base);
	}

	/* A thief: a few steals from the owner's stack, each run on its own stack's top. */
	void thief(int w)
	{
		for (int t = 0; t < THIEF_TRIES; t++) {
			struct tp__slot *s;

			if (tp__tstack_steal(&stacks[0], &s) == TP__TSTEAL_OK)
				tp__tstack_run_stolen(&stacks[w], s, tp__tstack_top(&stacks[w]));
			else
				rl::yield(1, $);
		}
	}

	void thread(unsigned index)
	{
		if (index == 0)
			static_cast<Derived *>(this)->owner(&stacks[0], stacks[0].base);
		else
			thief((int)index);
	}
};

/* Three leaves spawned while thieves ask: published on request, stolen, reclaimed, joined. */
struct leaves : tstack_suite<leaves> {
	void owner(TP_TASK_PARAMS)
	{
		int r[3];

		for (int i = 0; i < 3; i++) {
			state.input[i]($) = i;
			expected_runs[i] = 1;
			TP_SPAWN(leaf, i);
		}
		for (int i = 2; i >= 0; i--) {
			r[i] = TP_JOIN(leaf);
			RL_ASSERT(r[i] == i * 10 && state.output[i]($) == i + 1);
		}
		RL_ASSERT(tp__head == tp__ts->base);
	}
};

/* Two pairs: a thief that steals one runs its leaves on its own stack, publishes them when the
 * other thief or the leapfrogging owner asks, and the owner joining it steals from it. */
struct pairs : tstack_suite<pairs> {
	void owner(TP_TASK_PARAMS)
	{
		int a, b;

		for (int i = 0; i < 6; i++)
			expected_runs[i] = 1;
		TP_SPAWN(pair, 0);
		TP_SPAWN(pair, 3);
		b = TP_JOIN(pair);
		a = TP_JOIN(pair);
		RL_ASSERT(a == 10 && b == 30 + 40);
		RL_ASSERT(tp__head == tp__ts->base);
	}
};

const tp_model_mutant mutants[] = {
	{ "steal-cas-relaxed", TP_MODEL_CK, "tp__tstack_steal", TP__KIND_RMW, "&q->ts",
	  TP_MODEL_TO_RELAXED, false,
	  "the thief's CAS of the word, relaxed: it may run a slot whose arguments it cannot see "
	  "(data race on the spawner's input)" },
	{ "done-relaxed", TP_MODEL_CK, "tp__tstack_run_stolen", TP__KIND_STORE, "&slot->h.thief",
	  TP_MODEL_TO_RELAXED, false,
	  "the thief's release store of DONE: the joiner may read the result before it is written "
	  "(data race on the task's output)" },
	{ "leapfrog-done-relaxed", TP_MODEL_CK, "leapfrog", TP__KIND_LOAD, "&p->h.thief",
	  TP_MODEL_TO_RELAXED, false,
	  "the joiner's acquire load of DONE: it may read the result before it is written" },
	{ "publish-cas-relaxed", TP_MODEL_CK, "tp__tstack_publish", TP__KIND_RMW, "&q->ts",
	  TP_MODEL_TO_RELAXED, false,
	  "publication's CAS, relaxed: a thief may take a slot whose arguments it cannot see" },
};

} // namespace

int main(int argc, char **argv)
{
	int rc =
		tp_model_begin(argc, argv, "tstack", mutants, sizeof(mutants) / sizeof(mutants[0]));

	if (rc >= 0)
		return rc;
	tp_model_check<leaves>("leaves", 20000, 2);
	tp_model_check<pairs>("pairs", 20000, 1);
	return tp_model_end();
}
