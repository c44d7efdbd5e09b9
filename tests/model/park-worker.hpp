/*
 * park-worker.hpp - the parking protocol (src/park.c) and the worker's side of it (src/worker.c:
 * publishing, the re-check before sleeping, the shutdown's quiescence check, the wake-up of
 * tp_pool_wait_idle's waiters), transcribed for the models model-handshake.cpp,
 * model-quiescence.cpp and model-idle.cpp.
 *
 * Why transcribed: park.c sleeps on ck_ec, whose inline assembly Relacy cannot run, and worker.c
 * needs the whole pool. Each function below is a copy of the source's, kept verbatim where it can
 * be (marked "verbatim": tests/model/drift.py checks the copy against the source), or with its
 * changes listed (marked "changed"). Either way drift.py compares the source's current text with
 * the text the copy was made from (tests/model/transcribed.txt), so that a change in the source
 * fails the model suite until the copy here is brought up to date and the stored text refreshed
 * (python3 tests/model/drift.py --update).
 *
 * What stands in for the rest, modelled on what it documents:
 *   - ck_ec32: a counter; reading it is an acquire load, incrementing it a release
 *     read-modify-write (ck_ec.h: "acts as a read (acquire) barrier", "a write barrier"). In the
 *     handshake and quiescence models a worker that would sleep on it is recorded as asleep at
 *     its snapshot and stops; a later increment counts as waking it (the futex would), and the
 *     models check at the end who sleeps for good. In the idle model (model_ec_blocks) it sleeps
 *     on the counter as on a futex (model-futex.hpp), the increment wakes it, and it goes on.
 *     A timed sleep (a deadline) always ends.
 *   - the statistics counters and the trace (src/pool.h, src/trace.h): owner-only words no
 *     protocol here reads; their macros do nothing.
 *   - liburcu's wfcqueue: the enqueue's exchange of the tail is a full barrier before and after
 *     ("implicit memory barrier" in urcu/static/wfcqueue.h), then the old tail's next is stored;
 *     emptiness is two relaxed loads (CMM_LOAD_SHARED) of head.next and the tail.
 *   - the pool: the fields these functions read, as in src/pool.h.
 */
#ifndef TP_MODEL_PARK_WORKER_HPP
#define TP_MODEL_PARK_WORKER_HPP

#include "harness.hpp"

#define TP_ATOMICS_RELACY 1
#include "deque.c"
#include "tstack.h"

#include "model-futex.hpp"

#include <time.h>

enum { MAX_WORKERS = 3 };

/* ck_ec32 as documented (see above); `slept`/`snap` record a sleep the model cannot wake. */
struct ck_ec32 {
	rl::atomic<uint32_t> counter;
};

/* True in the models whose sleeping workers block until an increment wakes them. */
static bool model_ec_blocks;

static inline uint32_t ck_ec32_value(const struct ck_ec32 *ec)
{
	return ec->counter.load(rl::mo_acquire, $);
}

static inline void ck_ec32_inc(struct ck_ec32 *ec, const void *mode)
{
	(void)mode;
	ec->counter.fetch_add(1, rl::mo_release, $);
	if (model_ec_blocks)
		model_futex_wake(&ec->counter);
}

/* The statistics and the trace (src/pool.h, src/trace.h): nothing in the models. */
#define TP__COUNT(w, field)		((void)0)
#define TP__TRACE_BEGIN(pool)		((uint64_t)0)
#define TP__TRACE_SPAN(w, kind, fn, t0) ((void)(fn), (void)(t0))
#define TP__TRACE_FLOW(w, kind, peer)	((void)(peer))

/* What the wake-ups return when they found no sleeper to claim, and a waker outside the pool
 * (src/park.h). */
#define TP__PARK_NONE SIZE_MAX

/* The injection queue: only what emptiness and an enqueue touch. 0 stands for &head->node. */
struct tp__inject {
	rl::atomic<int> head_next; /* the first node, or 0 */
	rl::atomic<int> tail;	   /* the last node, or 0 when empty */
};

static inline bool tp__inject_nonempty(struct tp__inject *q)
{
	return !(q->head_next.load(rl::mo_relaxed, $) == 0 && q->tail.load(rl::mo_relaxed, $) == 0);
}

/* cds_wfcq_enqueue of node `id` (not 0), with the exchange's documented full barriers. The
 * mutant inject-no-barrier takes them away (a plain relaxed exchange). */
static inline void model_inject_push(struct tp__inject *q, int id)
{
	bool barrier = !tp_model_mutated("inject-no-barrier");
	int old;

	if (barrier)
		rl::atomic_thread_fence(rl::mo_seq_cst, $);
	old = q->tail.exchange(id, barrier ? rl::mo_seq_cst : rl::mo_relaxed, $);
	if (barrier)
		rl::atomic_thread_fence(rl::mo_seq_cst, $);
	if (old == 0)
		q->head_next.store(id, rl::mo_relaxed, $);
	/* else: old's next, a node the model does not hold; emptiness reads only the tail then */
}

/* __cds_wfcq_dequeue_nonblocking by the one consumer (the holder of the queue's lock) when the
 * queue holds at most the one node the models queue: 0 when empty or mid-append (the enqueuer's
 * exchange done, its store of next not yet); else that node, the head moved on and the tail
 * taken back to the head with the cmpxchg (a full barrier, as the enqueue's exchange). */
static inline int model_inject_take(struct tp__inject *q)
{
	int node = q->head_next.load(rl::mo_relaxed, $);
	int last = node;

	if (node == 0)
		return 0;
	q->head_next.store(0, rl::mo_relaxed, $);
	rl::atomic_thread_fence(rl::mo_seq_cst, $);
	RL_ASSERT(q->tail.compare_exchange_strong(last, 0, rl::mo_seq_cst, $));
	rl::atomic_thread_fence(rl::mo_seq_cst, $);
	return node;
}

struct tp__parker {
	struct ck_ec32 ec;
	TP__SHARED(uint32_t) waker_cpu;
	TP__SHARED(uint32_t) waker;
	bool pinned;
};

/* The worker's move off its waker's CPU: scheduling only, nothing shared. */
static inline void move_off_cpu(int cpu)
{
	(void)cpu;
}

/*
 * Worker i's place: the model numbers its workers 0, 1, 2 (their bits share one word of the
 * bitmap, as in a pool of up to 64) or 0, 64, 128 (one word each, as in a larger pool, where no
 * read-modify-write of a shared word orders one parker after another). Either way worker k's
 * bit is in idle[k's word] and its parker in slot k.
 */
static inline size_t model_slot(size_t i)
{
	return i % 64 == 0 ? i / 64 : i;
}

struct model_parkers {
	struct tp__parker slot[MAX_WORKERS];
	struct tp__parker &operator[](size_t i)
	{
		return slot[model_slot(i)];
	}
};

struct tp__park {
	size_t n;
	size_t nwords;
	const void *mode;
	TP__SHARED(uint64_t) idle[MAX_WORKERS];
	struct model_parkers parkers;
};

enum tp__mode {
	TP__MODE_RUN = 0,
	TP__MODE_DRAIN = 1,
	TP__MODE_CANCEL = 2
};

#define TP__GATE_CLOSED UINT64_C(1)
#define TP__GATE_ONE	UINT64_C(2)
#define TP__HANDED_RECHECK_NS (1000 * 1000)

struct tp_pool;

struct tp__worker {
	struct tp__deque deque;
	struct tp__tstack tstack; /* empty here: model-tstack checks its own publication */
	TP__SHARED(uint64_t) spawned;
	TP__SHARED(uint64_t) finished;
	struct tp_pool *pool;
	size_t index;
	/* The model's record of this worker's last sleep. */
	bool slept;
	bool timed;
	uint32_t snap;
};

struct tp_pool {
	struct tp__inject inject;
	TP__SHARED(uint64_t) gate;
	TP__SHARED(uint32_t) mode;
	TP__SHARED(uint32_t) stop;
	TP__SHARED(uint64_t) handed;
	TP__SHARED(uint32_t) idle_seq;	   /* tp_pool_wait_idle()'s futex word */
	TP__SHARED(uint32_t) idle_waiters; /* threads in tp_pool_wait_idle() */
	size_t n;
	struct tp__worker *workers;
	struct tp__park park;
};

/* The worker that runs: the model's threads are workers 0..n-1 (sched_getcpu() is a hint only). */
static inline int model_sched_getcpu(void)
{
	return 0;
}
#define sched_getcpu model_sched_getcpu

/* Set before each park: which worker's record ck_ec32_wait writes. */
static struct tp__worker *model_sleeper[MAX_WORKERS];

/*
 * ck_ec32_wait(ec, mode, snap, deadline): returns 0 at once if the counter moved past snap; else
 * the thread sleeps. Where workers block (model_ec_blocks), it sleeps until an increment wakes it
 * (0), or, with a deadline, returns -1 (timed out) at once. Elsewhere the model records the sleep
 * and the worker stops (model_asleep()); -1.
 */
static inline int model_ec_wait(struct tp__park *p, size_t i, uint32_t snap,
				const struct timespec *deadline)
{
	struct tp__worker *w = model_sleeper[model_slot(i)];

	if (p->parkers[i].ec.counter.load(rl::mo_acquire, $) != snap)
		return 0;
	if (model_ec_blocks) {
		if (deadline != NULL)
			return -1;
		(void)model_futex_wait(&p->parkers[i].ec.counter, snap);
		return 0;
	}
	w->slept = true;
	w->timed = deadline != NULL;
	w->snap = snap;
	return -1;
}

/* True once a worker is asleep (or only in a timed sleep, if `timed` is accepted as awake). */
static inline bool model_asleep(struct tp__worker *w)
{
	return w->slept;
}

/* At the end: asleep past its snapshot, with nobody to wake it (a timed sleep ends anyway). */
static inline bool model_sleeps_forever(struct tp_pool *pool, struct tp__worker *w)
{
	return w->slept && !w->timed &&
	       pool->park.parkers[w->index].ec.counter.load(rl::mo_relaxed, $) == w->snap;
}

/* transcribed from src/park.c: tp__park_prepare (verbatim) */
uint32_t tp__park_prepare(struct tp__park *p, size_t i)
{
	/* Snapshot before the bit: a wake-up that claims the bit afterwards moves the counter. */
	uint32_t snap = ck_ec32_value(&p->parkers[i].ec);

	tp__or_u64(&p->idle[i / 64], UINT64_C(1) << (i % 64));
	/* (set of our bit) before (the caller's loads of the work sources), store-load: pairs with
	 * the fence in tp__park_wake_one() between publishing work and loading the bits. */
	tp__fence_sc();
	return snap;
}

/* transcribed from src/park.c: tp__park_cancel (verbatim) */
void tp__park_cancel(struct tp__park *p, size_t i)
{
	tp__and_u64(&p->idle[i / 64], ~(UINT64_C(1) << (i % 64)));
}

/* transcribed from src/park.c: tp__park_sleep (changed: ck_ec32_wait_pred is model_ec_wait,
 * which sleeps until a wake-up or the deadline, as futex_wait32 makes ck_ec do, and may end the
 * worker: then it returns at once, its bit still set) */
bool tp__park_sleep(struct tp__park *p, size_t i, uint32_t snap, const struct timespec *deadline,
		    size_t *waker)
{
	uint32_t waker_cpu, by;
	/* Returns at once if the counter already moved past snap (a waker claimed us). */
	bool woken = model_ec_wait(p, i, snap, deadline) == 0;

	if (model_asleep(model_sleeper[model_slot(i)])) {
		*waker = TP__PARK_NONE;
		return false;
	}
	/* Woken by a claim (bit already clear) or spuriously (bit still set): clear it anyway. */
	tp__park_cancel(p, i);
	by = tp__fas_u32(&p->parkers[i].waker, 0);
	*waker = by != 0 ? by - 1 : TP__PARK_NONE;
	/* A worker woke us to share its work: do not share its CPU too (see park.h), unless the
	 * user pinned us. */
	waker_cpu = tp__fas_u32(&p->parkers[i].waker_cpu, 0);
	if (waker_cpu != 0 && !p->parkers[i].pinned)
		move_off_cpu((int)waker_cpu - 1);
	return woken;
}

/* transcribed from src/park.c: claim_and_wake (verbatim) */
static __attribute__((noinline)) size_t claim_and_wake(struct tp__park *p, size_t w, uint64_t bits,
						       size_t waker)
{
	while (bits != 0) {
		uint64_t bit = bits & -bits;

		/* seq_cst CAS: two producers never claim the same sleeper. */
		if (tp__cas_value_u64(&p->idle[w], &bits, bits & ~bit)) {
			size_t i = w * 64 + (size_t)__builtin_ctzll(bit);
			bool worker = waker != TP__PARK_NONE;

			/* Before the increment (a full barrier) that lets the sleeper read them. The
			 * CPU is read only when waking: on every publication it cost more than the
			 * rest of the publication. */
			tp__store_rlx_u32(&p->parkers[i].waker_cpu,
					  worker ? (uint32_t)sched_getcpu() + 1 : 0);
			tp__store_rlx_u32(&p->parkers[i].waker, worker ? (uint32_t)waker + 1 : 0);

			/* The increment is a full barrier; ck_ec makes the futex call only when
			 * the worker sleeps (its counter's waiter flag is set). */
			ck_ec32_inc(&p->parkers[i].ec, p->mode);
			return i;
		}
		/* bits now holds the fresh value: retry with another sleeper, or give up. */
	}
	return TP__PARK_NONE;
}

/* transcribed from src/park.c: wake_one (verbatim) */
static size_t wake_one(struct tp__park *p, size_t waker)
{
	for (size_t w = 0; w < p->nwords; w++) {
		uint64_t bits = tp__load_sc_u64(&p->idle[w]);
		size_t i;

		if (bits != 0 && (i = claim_and_wake(p, w, bits, waker)) != TP__PARK_NONE)
			return i;
	}
	return TP__PARK_NONE;
}

/* transcribed from src/park.c: tp__park_wake_one (verbatim) */
size_t tp__park_wake_one(struct tp__park *p, size_t waker)
{
	/* (the caller's publication of work) before (loads of the bits), store-load: pairs with the
	 * fence in tp__park_prepare(). */
	tp__fence_sc();
	return wake_one(p, waker);
}

/* transcribed from src/park.c: tp__park_wake_one_after_barrier (verbatim) */
size_t tp__park_wake_one_after_barrier(struct tp__park *p)
{
	return wake_one(p, TP__PARK_NONE);
}

/* transcribed from src/park.c: tp__park_wake_all (verbatim) */
void tp__park_wake_all(struct tp__park *p)
{
	for (size_t w = 0; w < p->nwords; w++)
		(void)tp__fas_u64(&p->idle[w], 0);
	for (size_t i = 0; i < p->n; i++)
		ck_ec32_inc(&p->parkers[i].ec, p->mode);
}

/*
 * The publication before commit 8fdcf71, for the mutant old-publish: split stored with a plain
 * release store, and the fence (inside tp__park_wake_one) run only if a relaxed look at the
 * bitmap saw a bit, so that the store and the look could both miss a worker going to sleep.
 */
static inline bool old_park_any_idle_hint(const struct tp__park *p)
{
	for (size_t w = 0; w < p->nwords; w++)
		if (tp__load_rlx_u64(&p->idle[w]) != 0)
			return true;
	return false;
}

static inline void old_worker_publish(struct tp__worker *w)
{
	struct tp__deque *q = &w->deque;

	tp__store_rel_u64(&q->split, q->bottom);
	if (tp__load_rlx_u32(&q->split_request))
		tp__store_rlx_u32(&q->split_request, 0);
	if (old_park_any_idle_hint(&w->pool->park))
		(void)tp__park_wake_one(&w->pool->park, w->index);
}

/* transcribed from src/worker.c: tp__worker_publish (changed: the mutant old-publish runs the
 * code this replaced) */
void tp__worker_publish(struct tp__worker *w)
{
	if (tp_model_mutated("old-publish")) {
		old_worker_publish(w);
		return;
	}
	tp__deque_publish(&w->deque);
	/* (store of split) before (loads of the idle bitmap), store-load: the fence inside
	 * tp__park_wake_one() pairs with the one in tp__park_prepare(). Either a worker about to
	 * sleep sees the items in its re-check, or we see its bit and wake it. Without the fence
	 * both can miss (the store still in our store buffer while we read a clear bitmap), and a
	 * published item then waits while a worker sleeps. */
	(void)tp__park_wake_one(&w->pool->park, w->index);
}

/* transcribed from src/worker.c: work_visible (verbatim) */
static bool work_visible(tp_pool *pool)
{
	if (tp__inject_nonempty(&pool->inject))
		return true;
	for (size_t i = 0; i < pool->n; i++)
		if (tp__deque_looks_nonempty(&pool->workers[i].deque) ||
		    tp__tstack_looks_nonempty(&pool->workers[i].tstack))
			return true;
	return false;
}

/* transcribed from src/worker.c: quiescent (verbatim) */
static bool quiescent(tp_pool *pool)
{
	uint64_t finished = 0, created;

	for (size_t i = 0; i < pool->n; i++)
		finished += tp__load_sc_u64(&pool->workers[i].finished);
	created = tp__load_sc_u64(&pool->gate) / TP__GATE_ONE;
	for (size_t i = 0; i < pool->n; i++)
		created += tp__load_sc_u64(&pool->workers[i].spawned);
	/* pool.h: sum(finished) <= retired at T <= created at T <= what we read. */
	assert(finished <= created);
	return finished == created;
}

/*
 * Tasks created and not yet retired (the quiescence model counts them; elsewhere 0), and the
 * check held to them: park() below calls quiescent() through this macro, and when it answers
 * yes, no task may be alive. The mutant check-order-swapped reads the spawned counts and the
 * gate before the finished counts.
 */
static int model_alive;

static bool model_quiescent(tp_pool *pool)
{
	bool q;

	if (tp_model_mutated("check-order-swapped")) {
		uint64_t finished = 0, created;

		created = tp__load_sc_u64(&pool->gate) / TP__GATE_ONE;
		for (size_t i = 0; i < pool->n; i++)
			created += tp__load_sc_u64(&pool->workers[i].spawned);
		for (size_t i = 0; i < pool->n; i++)
			finished += tp__load_sc_u64(&pool->workers[i].finished);
		q = finished == created;
	} else {
		q = quiescent(pool);
	}
	if (q)
		RL_ASSERT(model_alive == 0);
	return q;
}
#define quiescent(pool) model_quiescent(pool)

/* transcribed from src/submit.c: count_forks (verbatim) */
static inline void count_forks(struct tp__worker *w, uint64_t n)
{
	tp__store_rel_u64(&w->spawned, tp__load_rlx_u64(&w->spawned) + n);
}

/* transcribed from src/submit.c: enqueue_one (changed: only a fork's count, push and publish;
 * the record is a model item, its drop function and group play no part) */
static void fork_task(struct tp__worker *w, void *item)
{
	model_alive++;
	count_forks(w, 1);
	RL_ASSERT(tp__deque_push(&w->deque, item) == 0);
	tp__worker_publish(w);
}

/* transcribed from src/worker.c: run_record_as (changed: only the retirement count at its end) */
static void retire(struct tp__worker *w)
{
	RL_ASSERT(model_alive > 0);
	model_alive--;
	tp__store_sc_u64(&w->finished, tp__load_rlx_u64(&w->finished) + 1);
}

/* transcribed from src/worker.c: tp__pool_quiescent (verbatim) */
bool tp__pool_quiescent(tp_pool *pool)
{
	return quiescent(pool);
}

/* transcribed from src/idle.c: tp__pool_idle_wake (verbatim) */
void tp__pool_idle_wake(tp_pool *pool)
{
	/* seq_cst RMW: a waiter that read the old value sleeps on it and is woken, or reads the
	 * new one. */
	(void)tp__faa_u32(&pool->idle_seq, 1);
	tp__futex_wake_all(&pool->idle_seq);
}

/* park() wakes the waiters through this; the mutant idle-wake-left-out (model-idle) runs park()
 * as it was before tp_pool_wait_idle, without it. */
static inline void model_idle_wake(tp_pool *pool)
{
	if (!tp_model_mutated("idle-wake-left-out"))
		tp__pool_idle_wake(pool);
}
#define tp__pool_idle_wake(pool) model_idle_wake(pool)

/* transcribed from src/worker.c: tp__deadline_in (verbatim) */
const struct timespec *tp__deadline_in(long ns, struct timespec *out)
{
	clock_gettime(CLOCK_MONOTONIC, out);
	out->tv_nsec += ns;
	while (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
	return out;
}

/* transcribed from src/worker.c: park (verbatim) */
static bool park(struct tp__worker *w)
{
	tp_pool *pool = w->pool;
	const struct timespec *deadline = NULL;
	struct timespec until;
	size_t waker;
	uint64_t t0;
	uint32_t snap;

	if (tp__load_acq_u32(&pool->stop))
		return true;
	snap = tp__park_prepare(&pool->park, w->index);
	if (work_visible(pool)) {
		tp__park_cancel(&pool->park, w->index);
		return false;
	}
	/* _sc, after the fence of tp__park_prepare(): pairs with the waiter's registration and
	 * fence in tp_pool_wait_idle() (idle.c). Either the waiter's own check sees our finished
	 * count, or we see the waiter and check for it. A record handed to its claimer comes back
	 * without a wake-up (below): while one is out, a waiter needs us to look again soon. */
	if (tp__load_sc_u32(&pool->idle_waiters) != 0) {
		if (quiescent(pool))
			tp__pool_idle_wake(pool);
		else if (tp__load_sc_u64(&pool->handed) != 0)
			deadline = tp__deadline_in(TP__HANDED_RECHECK_NS, &until);
	}
	/* acquire: pairs with the release store of the mode after the gate closed. */
	if (tp__load_acq_u32(&pool->mode) != TP__MODE_RUN) {
		if (quiescent(pool)) {
			tp__store_rel_u32(&pool->stop, 1);
			tp__park_cancel(&pool->park, w->index);
			tp__park_wake_all(&pool->park);
			/* Whoever waits for idleness too, whatever we read of idle_waiters above:
			 * a waiter may have registered, and checked too early, since then, and the
			 * worker that retired the last task may see `stop` and exit unchecked. */
			tp__pool_idle_wake(pool);
			return true;
		}
		/* _sc, after the fence of tp__park_prepare(): a record handed to its claimer comes
		 * back on the injection queue without a wake-up (its claimer may not touch the pool
		 * afterwards, future.c), so while one is out, sleep briefly and look again. */
		if (tp__load_sc_u64(&pool->handed) != 0)
			deadline = tp__deadline_in(TP__HANDED_RECHECK_NS, &until);
	}
	TP__COUNT(w, parks);
	t0 = TP__TRACE_BEGIN(pool);
	if (tp__park_sleep(&pool->park, w->index, snap, deadline, &waker)) {
		TP__COUNT(w, wakeups);
		if (waker != TP__PARK_NONE)
			TP__TRACE_FLOW(w, TP__EV_WAKE, waker);
	}
	TP__TRACE_SPAN(w, TP__EV_PARK, NULL, t0);
	/* acquire: pairs with the release store of stop by the worker that found quiescence. */
	return tp__load_acq_u32(&pool->stop) != 0;
}

/* The pool of a model: n workers with their deques, the bitmap and the counters, all zero; the
 * workers' bits in one word of the bitmap, or (spread) each in its own. */
static inline void model_pool_init(struct tp_pool *pool, struct tp__worker *workers, size_t n,
				   bool spread)
{
	RL_ASSERT(n <= MAX_WORKERS);
	pool->inject.head_next.store(0, rl::mo_relaxed, $);
	pool->inject.tail.store(0, rl::mo_relaxed, $);
	tp__store_rlx_u64(&pool->gate, 0);
	tp__store_rlx_u32(&pool->mode, TP__MODE_RUN);
	tp__store_rlx_u32(&pool->stop, 0);
	tp__store_rlx_u64(&pool->handed, 0);
	tp__store_rlx_u32(&pool->idle_seq, 0);
	tp__store_rlx_u32(&pool->idle_waiters, 0);
	pool->n = n;
	pool->workers = workers;
	model_alive = 0;
	pool->park.n = n;
	pool->park.nwords = spread ? n : 1;
	pool->park.mode = NULL;
	for (size_t i = 0; i < pool->park.nwords; i++)
		tp__store_rlx_u64(&pool->park.idle[i], 0);
	for (size_t i = 0; i < n; i++) {
		struct tp__worker *w = &workers[i];

		pool->park.parkers.slot[i].ec.counter.store(0, rl::mo_relaxed, $);
		tp__store_rlx_u32(&pool->park.parkers.slot[i].waker_cpu, 0);
		tp__store_rlx_u32(&pool->park.parkers.slot[i].waker, 0);
		pool->park.parkers.slot[i].pinned = false;
		RL_ASSERT(tp__deque_init(&w->deque, 2) == 0);
		tp__store_rlx_u64(&w->tstack.ts, 0);
		tp__store_rlx_u32(&w->tstack.request, 0);
		tp__store_rlx_u64(&w->spawned, 0);
		tp__store_rlx_u64(&w->finished, 0);
		w->pool = pool;
		w->index = spread ? i * 64 : i;
		w->slept = false;
		w->timed = false;
		w->snap = 0;
		model_sleeper[i] = w;
	}
}

static inline void model_pool_destroy(struct tp_pool *pool)
{
	for (size_t i = 0; i < pool->n; i++)
		tp__deque_destroy(&pool->workers[i].deque);
}

#endif /* TP_MODEL_PARK_WORKER_HPP */
