/*
 * model-idle.cpp - tp_pool_wait_idle() (src/idle.c) against the workers that retire the last
 * tasks and park (park() in src/worker.c): the waiter's registration and check against the
 * parking worker's check of the waiters, a Dekker handshake with a store-load fence on each side
 * (the waiter's own, and tp__park_prepare()'s).
 *
 * The pool runs (mode RUN, the gate open on the tasks it accepted) with its last tasks running on
 * workers; a task may fork another on the way (count_forks, push, publish), which an idle worker
 * may steal. Workers loop as tp__worker_main() does (own deque, a round of steals, park) and sleep
 * on their eventcounts as on a futex (model_ec_blocks in park-worker.hpp): a publication wakes
 * them and they go on. Threads outside the pool call the transcribed tp_pool_wait_idle(), which
 * sleeps on idle_seq (the futex of model-futex.hpp). When every waiter has returned, the last one
 * shuts the pool down, so that the workers exit: the end of the model. Invariants:
 *   - safety: tp_pool_wait_idle() returns 0 only when no task is alive (model_alive, as in the
 *     quiescence model; every quiescent() that answers yes, the workers' included, is held to it);
 *   - liveness: a waiter never sleeps for good once every task is retired. Every worker then
 *     blocks in its park and the waiter on idle_seq: Relacy reports the deadlock.
 *
 * The suite handed-back: a record claimed by tp_future_wait_nohelp() and handed over by the
 * worker that took its queue entry comes back on the injection queue without a wake-up
 * (future.c). A waiter whose check came before the hand-over sleeps; the worker that handed the
 * record over parks (the pool is not quiescent: no wake-up). This suite found that both then
 * slept for good, with the record back on the queue and nobody to retire it: now a worker that
 * parks while a waiter waits and a record is handed out looks again every millisecond (park()),
 * as does a waiter that sees one out (idle.c).
 */
#include "park-worker.hpp"

/* tp_pool_wait_idle's helpers: the waiters run outside the pool, and pass no deadline (a timed
 * sleep, the recheck while a record is handed out, ends at once: model-futex.hpp). */
static bool inside(const tp_pool *pool)
{
	(void)pool;
	return false;
}

static inline bool tp__deadline_passed(const struct timespec *deadline)
{
	return deadline != NULL;
}

/* transcribed from src/future.h: tp__timespec_before (verbatim) */
static inline bool tp__timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* transcribed from src/worker.c: tp__deadline_within (verbatim) */
const struct timespec *tp__deadline_within(const struct timespec *deadline, long ns,
					   struct timespec *out)
{
	tp__deadline_in(ns, out);
	if (deadline != NULL && tp__timespec_before(deadline, out))
		return deadline;
	return out;
}

/* transcribed from src/idle.c: tp_pool_wait_idle (verbatim) */
int tp_pool_wait_idle(tp_pool *pool, const struct timespec *deadline)
{
	int err = 0;

	if (pool == NULL ||
	    (deadline != NULL && (deadline->tv_nsec < 0 || deadline->tv_nsec >= 1000000000L)))
		return EINVAL;
	if (inside(pool))
		return EDEADLK;
	(void)tp__faa_u32(&pool->idle_waiters, 1);
	for (;;) {
		/* acquire: pairs with the RMW of tp__pool_idle_wake(). */
		uint32_t seq = tp__load_acq_u32(&pool->idle_seq);
		const struct timespec *until = deadline;
		struct timespec recheck;

		/* (our registration) before (the loads of the counts), store-load: pairs with the
		 * fence of tp__park_prepare() in the worker that parks after its last task. */
		tp__fence_sc();
		/* `stop` is set once a shutdown found the pool quiescent (nothing can start after
		 * that), or in the child of a fork(), whose inherited pools count as shut down (and
		 * keep the parent's counts, which never meet there). Idle for good either way. */
		if (tp__load_acq_u32(&pool->stop) != 0 || tp__pool_quiescent(pool))
			break;
		if (tp__deadline_passed(deadline)) {
			err = ETIMEDOUT;
			break;
		}
		/* _sc, after the fence. A handed record back on the queue needs a worker awake. */
		if (tp__load_sc_u64(&pool->handed) != 0) {
			(void)tp__park_wake_one_after_barrier(&pool->park);
			until = tp__deadline_within(deadline, TP__HANDED_RECHECK_NS, &recheck);
		}
		(void)tp__futex_wait(&pool->idle_seq, seq, until);
	}
	(void)tp__faa_u32(&pool->idle_waiters, (uint32_t)-1);
	return err;
}

namespace
{

struct task {
	bool forks;   /* runs fork_task once */
	bool claimed; /* handed-back: claimed by tp_future_wait_nohelp() on another thread */
};

template <class Derived, unsigned Threads> struct idle_suite : rl::test_suite<Derived, Threads> {
	struct tp_pool pool;
	struct tp__worker workers[MAX_WORKERS];
	struct task tasks[4];
	struct task returned; /* handed-back: the record its claimer queues again */
	int ntasks;
	int nwaiters; /* waiters in the suite */
	int done;     /* waiters that returned */

	void setup(size_t n, uint64_t accepted, bool spread, int waiters)
	{
		model_pool_init(&pool, workers, n, spread);
		model_ec_blocks = true;
		/* The pool runs: the gate is open, `accepted` tasks accepted and still alive. */
		tp__store_rlx_u64(&pool.gate, accepted * TP__GATE_ONE);
		model_alive = (int)accepted;
		ntasks = 0;
		nwaiters = waiters;
		done = 0;
	}

	struct task *new_task(bool forks)
	{
		struct task *t = &tasks[ntasks++];

		t->forks = forks;
		t->claimed = false;
		return t;
	}

	void run(struct tp__worker *w, struct task *t)
	{
		if (t->forks)
			fork_task(w, new_task(false));
		retire(w);
	}

	/* handed-back: the worker's part of run_record() for a record whose queue entry it took:
	 * claimed elsewhere and still running, it is handed over (retire_unstarted(): `handed`
	 * counted, DEQUEUED set, not retired); back from its claimer, it is retired (the
	 * hand-over's count and ours come off). */
	void take_record(struct tp__worker *w, struct task *t)
	{
		(void)tp__faa_u64(&pool.handed, 1);
		if (t->claimed)
			return;
		(void)tp__faa_u64(&pool.handed, (uint64_t)0 - 2);
		retire(w);
	}

	/* tp__worker_main: own deque, the injection queue, a round of steals; else park, until
	 * stopped. A park that returns at once (work visible, not yet stealable) lets the others
	 * run: the real worker spins there. */
	void worker(size_t i)
	{
		struct tp__worker *w = &workers[i];

		for (;;) {
			void *item = tp__deque_take(&w->deque);

			if (item == NULL && model_inject_take(&pool.inject) != 0) {
				take_record(w, &returned);
				continue;
			}
			for (size_t k = 0; item == NULL && k < pool.n; k++)
				if (k != i &&
				    tp__deque_steal(&workers[k].deque, &item) != TP__STEAL_OK)
					item = NULL;
			if (item != NULL) {
				run(w, static_cast<struct task *>(item));
				continue;
			}
			if (park(w))
				return;
			rl::yield(1, $);
		}
	}

	/* A thread outside the pool: waits for idleness; the last waiter to return ends the model
	 * with a shutdown (tp_pool_shutdown: the gate closed, the mode DRAIN, every worker woken),
	 * whose end the parking workers find (the quiescence model's protocol). */
	void waiter()
	{
		RL_ASSERT(tp_pool_wait_idle(&pool, NULL) == 0);
		RL_ASSERT(model_alive == 0);
		if (++done == nwaiters) {
			(void)tp__fetch_or_u64(&pool.gate, TP__GATE_CLOSED);
			tp__store_rel_u32(&pool.mode, TP__MODE_DRAIN);
			tp__park_wake_all(&pool.park);
		}
	}

	void after()
	{
		RL_ASSERT(done == nwaiters);
		RL_ASSERT(model_alive == 0);
		model_pool_destroy(&pool);
	}
};

/* The last accepted task forks one more and retires on worker 0; worker 1 steals the fork or
 * finds nothing and parks; a waiter waits. A bitmap word each: no shared read-modify-write orders
 * the two parkers, only their fences. */
struct fork_then_retire : idle_suite<fork_then_retire, 3> {
	void before()
	{
		setup(2, 1, true, 1);
	}
	void thread(unsigned i)
	{
		if (i < 2) {
			if (i == 0)
				run(&workers[0], new_task(true));
			worker(i);
		} else {
			waiter();
		}
	}
};

/* Two last tasks (one forks) retire concurrently on workers 0 and 1 (bits in one word) while a
 * waiter waits: whichever parks last in the fence order sees the waiter or is seen by it. */
struct last_two_retire : idle_suite<last_two_retire, 3> {
	void before()
	{
		setup(2, 2, false, 1);
	}
	void thread(unsigned i)
	{
		if (i < 2) {
			run(&workers[i], new_task(i == 0));
			worker(i);
		} else {
			waiter();
		}
	}
};

/* One worker retires the last task (which forks) while two waiters wait: the wake-up releases
 * every sleeper on idle_seq, and a stale registration count only costs a check. */
struct two_waiters : idle_suite<two_waiters, 3> {
	void before()
	{
		setup(1, 1, false, 2);
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			run(&workers[0], new_task(true));
			worker(0);
		} else {
			waiter();
		}
	}
};

/* As last_two_retire, once a shutdown (DRAIN) has begun: the worker that finds the end sets
 * `stop`, and the other may see it and exit without looking for waiters; the finder may have
 * read no waiter before its check saw the last count, and the waiter may have checked before
 * that count (the fuzzer found this sleeping waiter). So the finder wakes the waiters anyway. */
struct during_shutdown : idle_suite<during_shutdown, 3> {
	void before()
	{
		setup(2, 2, false, 1);
		(void)tp__fetch_or_u64(&pool.gate, TP__GATE_CLOSED);
		tp__store_rel_u32(&pool.mode, TP__MODE_DRAIN);
	}
	void thread(unsigned i)
	{
		if (i < 2) {
			run(&workers[i], new_task(false));
			worker(i);
		} else {
			waiter();
		}
	}
};

/* The known fault (see the top): worker 0 took the queue entry of the last task while
 * tp_future_wait_nohelp() on thread 1 ran it, and handed it over; thread 1 finishes the task and
 * queues the record again (tp__future_run(), no wake-up); thread 2 waits for idleness. If the
 * waiter's check read no hand-over and the worker parked before the record came back, nobody
 * retires it and both sleep for good. */
struct handed_back : idle_suite<handed_back, 3> {
	void before()
	{
		setup(1, 1, false, 1);
		returned.forks = false;
		returned.claimed = false;
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			struct task claimed = { false, true };

			take_record(&workers[0], &claimed);
			worker(0);
		} else if (i == 1) {
			/* tp__future_run(f, false): the task returns, publish_final() finds
			 * DEQUEUED, and the record goes back on the injection queue. */
			model_inject_push(&pool.inject, 1);
		} else {
			waiter();
		}
	}
};

const tp_model_mutant mutants[] = {
	{ "wait-no-fence", TP_MODEL_CK, "tp_pool_wait_idle", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, false,
	  "the waiter's store-load fence between its registration and its check: it may read the "
	  "last worker's count stale while that worker read no waiter (the waiter sleeps for "
	  "good)" },
	{ "prepare-no-fence", TP_MODEL_CK, "tp__park_prepare", TP__KIND_FENCE, "",
	  TP_MODEL_TO_NOTHING, false,
	  "the parking worker's store-load fence between its last count and its load of "
	  "idle_waiters: it may read no waiter while the waiter read its count stale" },
	{ "idle-wake-left-out", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "park() as it was before tp_pool_wait_idle, without the check of the waiters: a waiter "
	  "that checked before the last retirement sleeps for good" },
	{ "wake-skipped", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "tp__pool_idle_wake() moves idle_seq and wakes nobody: a waiter already asleep on the "
	  "old value stays asleep" },
	{ "waiters-load-relaxed", TP_MODEL_CK, "park", TP__KIND_LOAD, "&pool->idle_waiters",
	  TP_MODEL_TO_RELAXED, true,
	  "park()'s load of idle_waiters, relaxed (the fence of tp__park_prepare() before it is "
	  "what orders it after the worker's count: expected to survive)" },
	{ "register-faa-relaxed", TP_MODEL_CK, "tp_pool_wait_idle", TP__KIND_RMW,
	  "&pool->idle_waiters", TP_MODEL_TO_RELAXED, true,
	  "the waiter's registration, relaxed (its fence orders it before its check: expected to "
	  "survive)" },
	{ "seq-load-relaxed", TP_MODEL_CK, "tp_pool_wait_idle", TP__KIND_LOAD, "&pool->idle_seq",
	  TP_MODEL_TO_RELAXED, true,
	  "the waiter's acquire load of idle_seq, relaxed (the seq_cst fence after it acquires as "
	  "well: expected to survive)" },
	{ "seq-faa-relaxed", TP_MODEL_CK, "tp__pool_idle_wake", TP__KIND_RMW, "&pool->idle_seq",
	  TP_MODEL_TO_RELAXED, true,
	  "the worker's increment of idle_seq, relaxed (one location decides whether the waiter "
	  "sleeps; a waiter that reads the new value then checks after its own fence, which comes "
	  "after the worker's fence in the fence order: expected to survive)" },
	{ "sc-accesses-only", TP_MODEL_SC, NULL, TP__KIND_NONE, "", 0, true,
	  "the builtins backend as it was, seq_cst _sc accesses and empty fences (the counts, "
	  "idle_waiters and its registration are all seq_cst then: expected to survive)" },
	{ "waiters-load-not-sc", TP_MODEL_SC, "park", TP__KIND_LOAD, "&pool->idle_waiters",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, park()'s _sc load of idle_waiters as an acquire load: the last "
	  "worker and the waiter can both miss the other" },
	{ "check-finished-not-sc", TP_MODEL_SC, "quiescent", TP__KIND_LOAD, "finished",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the check's _sc loads of finished as acquire loads: the waiter's "
	  "check may read the last count stale" },
	{ "retire-count-not-sc", TP_MODEL_SC, "retire", TP__KIND_STORE, "&w->finished",
	  TP_MODEL_TO_ACQ_REL, false,
	  "in the sc reading, the retirement's _sc store as a release store" },
};

} // namespace

int main(int argc, char **argv)
{
	int rc = tp_model_begin(argc, argv, "idle", mutants, sizeof(mutants) / sizeof(mutants[0]));

	if (rc >= 0)
		return rc;
	tp_model_check<fork_then_retire>("fork-then-retire", 50000, 1);
	tp_model_check<last_two_retire>("last-two-retire", 50000, 1);
	tp_model_check<two_waiters>("two-waiters", 50000, 2);
	tp_model_check<handed_back>("handed-back", 20000, 1);
	tp_model_check<during_shutdown>("during-shutdown", 50000, 1);
	return tp_model_end();
}
