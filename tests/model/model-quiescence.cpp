/*
 * model-quiescence.cpp - the end of a shutdown: quiescence found exactly when no task is alive
 * ("Termination of a shutdown" in src/pool.h; quiescent() and park() in src/worker.c).
 *
 * The gate is closed (mode DRAIN) with the last accepted tasks running on workers; a task forks
 * another on the way (count_forks, push, publish, as tp_enqueue from a task does), and idle
 * workers steal, run and retire tasks (the count at the end of run_record) and park, checking for
 * quiescence before they sleep. Invariants:
 *   - safety: when quiescent() answers yes, no task is alive (created and not yet retired);
 *   - liveness: once every task is retired, not every worker may be asleep past its eventcount
 *     snapshot with stop unset (the shutdown would wait forever).
 * A model counter of live tasks (model_alive, park-worker.hpp) is the truth the check is held to.
 *
 * The deque is the real code; parking, the check and the counts are transcribed
 * (park-worker.hpp: also count_forks, fork_task and the retirement count).
 */
#include "park-worker.hpp"

namespace
{

enum { ROUNDS = 3 };

struct task {
	bool forks; /* runs fork_task once */
};

template <class Derived, unsigned Threads> struct quiescence_suite : rl::test_suite<Derived, Threads> {
	struct tp_pool pool;
	struct tp__worker workers[MAX_WORKERS];
	struct task tasks[4];
	int ntasks;

	void setup(size_t n, uint64_t accepted, bool spread)
	{
		model_pool_init(&pool, workers, n, spread);
		/* The shutdown has begun: the gate closed on `accepted` tasks, the mode is DRAIN. */
		tp__store_rlx_u64(&pool.gate, accepted * TP__GATE_ONE | TP__GATE_CLOSED);
		tp__store_rlx_u32(&pool.mode, TP__MODE_DRAIN);
		model_alive = (int)accepted;
		ntasks = 0;
	}

	struct task *new_task(bool forks)
	{
		struct task *t = &tasks[ntasks++];

		t->forks = forks;
		return t;
	}

	void run(struct tp__worker *w, struct task *t)
	{
		if (t->forks)
			fork_task(w, new_task(false));
		retire(w);
	}

	/* tp__worker_main: own deque, one round of steals, else park; a few rounds. */
	void worker(size_t i)
	{
		struct tp__worker *w = &workers[i];

		for (int round = 0; round < ROUNDS; round++) {
			void *item = tp__deque_take(&w->deque);

			for (size_t k = 0; item == NULL && k < pool.n; k++)
				if (k != i && tp__deque_steal(&workers[k].deque, &item) != TP__STEAL_OK)
					item = NULL;
			if (item != NULL) {
				run(w, static_cast<struct task *>(item));
				continue;
			}
			if (park(w) || model_asleep(w))
				return;
		}
	}

	void after()
	{
		bool hung = model_alive == 0 && tp__load_rlx_u32(&pool.stop) == 0;

		for (size_t i = 0; i < pool.n; i++)
			if (!model_sleeps_forever(&pool, &workers[i]))
				hung = false;
		/* Every task retired, nobody found quiescence, and everybody sleeps for good. */
		RL_ASSERT(!hung);
		model_pool_destroy(&pool);
	}
};

/* The last accepted task forks one more and retires; the other worker steals the fork or finds
 * nothing and checks for quiescence. A bitmap word each: no shared read-modify-write orders the
 * two parkers, only their fences. */
struct fork_then_retire : quiescence_suite<fork_then_retire, 2> {
	void before()
	{
		setup(2, 1, true);
	}
	void thread(unsigned i)
	{
		if (i == 0)
			run(&workers[0], new_task(true));
		worker(i);
	}
};

/* Three workers: two last tasks (one forks) retire concurrently while the third checks (bits in
 * one word). */
struct last_two_retire : quiescence_suite<last_two_retire, 3> {
	void before()
	{
		setup(3, 2, false);
	}
	void thread(unsigned i)
	{
		if (i < 2)
			run(&workers[i], new_task(i == 0));
		worker(i);
	}
};

/* A third worker checks while the fork's thief has retired it and the forking task still runs:
 * the check must not count the retirement without the fork's count. */
struct thief_retires_first : quiescence_suite<thief_retires_first, 3> {
	void before()
	{
		setup(3, 1, false);
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			/* The last accepted task: forks, and retires later (busy afterwards). */
			fork_task(&workers[0], new_task(false));
			retire(&workers[0]);
		} else if (i == 1) {
			/* A thief that runs the fork and then stays busy. */
			for (int tries = 0; tries < 2; tries++) {
				void *item;

				if (tp__deque_steal(&workers[0].deque, &item) == TP__STEAL_OK) {
					run(&workers[1], static_cast<struct task *>(item));
					break;
				}
			}
		} else {
			worker(i);
		}
	}
	void after()
	{
		/* Workers 0 and 1 stay busy: only the safety check applies. */
		model_pool_destroy(&pool);
	}
};

const tp_model_mutant mutants[] = {
	{ "check-order-swapped", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "quiescent() reading the spawned counts and the gate before the finished counts: a fork "
	  "counted and retired between the passes is missed" },
	{ "retire-count-relaxed", TP_MODEL_CK, "retire", TP__KIND_STORE, "&w->finished",
	  TP_MODEL_TO_RELAXED, false,
	  "the retirement's release store of finished: a checker that sees it need not see the "
	  "fork's spawned count" },
	{ "check-finished-relaxed", TP_MODEL_CK, "quiescent", TP__KIND_LOAD, "finished",
	  TP_MODEL_TO_RELAXED, false,
	  "the check's loads of finished, relaxed: it may count a retirement without seeing the "
	  "fork counted before it" },
	{ "prepare-no-fence", TP_MODEL_CK, "tp__park_prepare", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, true,
	  "the fence of tp__park_prepare between a worker's last retirement and its check's loads "
	  "(a worker runs a round of steals, each with a seq_cst fence, between the two: expected "
	  "to survive; the handshake model catches it)" },
	{ "sc-accesses-only", TP_MODEL_SC, NULL, TP__KIND_NONE, "", 0, true,
	  "the builtins backend as it was, seq_cst _sc accesses and empty fences (the counts are _sc "
	  "on both sides: expected to survive)" },
	{ "retire-count-not-sc", TP_MODEL_SC, "retire", TP__KIND_STORE, "&w->finished",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the retirement's _sc store as a release store: the last two workers "
	  "can both miss the other's count and sleep" },
	{ "check-finished-not-sc", TP_MODEL_SC, "quiescent", TP__KIND_LOAD, "finished",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the check's _sc loads of finished as acquire loads" },
	{ "fork-count-relaxed", TP_MODEL_CK, "count_forks", TP__KIND_STORE, "&w->spawned",
	  TP_MODEL_TO_RELAXED, true,
	  "count_forks' release store (the publication's release store of split orders the count "
	  "already: expected to survive)" },
};

} // namespace

int main(int argc, char **argv)
{
	int rc = tp_model_begin(argc, argv, "quiescence", mutants,
				sizeof(mutants) / sizeof(mutants[0]));

	if (rc >= 0)
		return rc;
	tp_model_check<fork_then_retire>("fork-then-retire", 20000, 2);
	tp_model_check<last_two_retire>("last-two-retire", 20000, 1);
	tp_model_check<thief_retires_first>("thief-retires-first", 20000, 1);
	return tp_model_end();
}
