/*
 * model-future.cpp - the future's state word (src/future.h, src/future.c, and the worker's side
 * in src/worker.c): start against cancel, finishing with sleeping waiters, the hand-over of a
 * record claimed by tp_future_wait_nohelp(), the recycling of the record, and a detached record
 * (tp_submit_ex: one reference) met by a cancelling shutdown.
 *
 * Invariants checked in every execution
 *   - start and cancel: exactly one wins; the task runs at most once, and not at all if
 *     tp_future_cancel() said true; every waiter gets the task's code, or ECANCELED; the task's
 *     argument is used exactly once, by the task or by the drop function of the cancel that won;
 *     a detached task's failure reaches the pool's error handler once;
 *   - no lost wake-up: a waiter sleeps on the word (the futex of model-futex.hpp: block while
 *     the word holds the value it saw; a wake releases every sleeper) and Relacy reports a
 *     deadlock if it never wakes;
 *   - what the task wrote and its result are seen by every waiter (plain variables: Relacy
 *     reports a data race otherwise);
 *   - the record is retired once (the runtime's reference dropped once, the hand-over counter
 *     back to zero), recycled exactly once, and never touched after (the model frees it: Relacy
 *     reports a double free, a leak, or an access to freed memory).
 *
 * The functions are transcribed (future.c needs the pool, the futex and the record cache), most
 * of them verbatim; tests/model/drift.py keeps them in step with the sources.
 */
#include "harness.hpp"

#define TP_ATOMICS_RELACY 1
#include "atomics.h"
#include "thread_pool.h"

#include "model-futex.hpp"

enum { MAX_THREADS = 3 };

/* A plain (non-atomic) variable whose every access Relacy checks for data races, with the
 * syntax of a plain one so that the transcribed code reads as the source. */
template <class T> struct model_plain {
	mutable rl::var<T> v;
	model_plain &operator=(T x)
	{
		v($) = x;
		return *this;
	}
	operator T() const
	{
		return v($);
	}
};

/* --- What the transcribed functions need from the rest of the runtime --------------------- */

#define TP__ST_MASK   0x7u
#define TP__WAITERS   0x8u
#define TP__DEQUEUED  0x10u
#define TP__REF_SHIFT 5
#define TP__REF_ONE   (1u << TP__REF_SHIFT)
#define TP__REF_MAX   (UINT32_MAX >> TP__REF_SHIFT)
#define WAIT_YIELDS   4

#define TP__LOG_DEBUG(pool, ...) ((void)0)

/* tp_pool_stats()'s counters and the trace (src/pool.h, src/trace.h) are the owner's own words,
 * no part of the protocols checked here: nothing in the models (no trace runs). */
#define TP__COUNT(w, field)	  ((void)0)
#define TP__TRACING(trace_field) false
#define TP__EV_TASK		  1

static inline uint64_t tp__trace_now(void)
{
	return 0;
}

struct tp__worker;
static inline void tp__trace_record(struct tp__worker *w, int kind, const void *fn, uint64_t t0,
				    uint32_t peer)
{
	(void)w;
	(void)kind;
	(void)fn;
	(void)t0;
	(void)peer;
}

enum tp__mode {
	TP__MODE_RUN = 0,
	TP__MODE_DRAIN = 1,
	TP__MODE_CANCEL = 2
};

struct tp__cache;

/* The injection queue: only the record its claimer queues again after a hand-over (liburcu's
 * enqueue and dequeue order the record's contents: release and acquire here). */
struct tp__inject {
	rl::atomic<struct tp_future *> queued;
};

struct tp_pool {
	struct tp__inject inject;
	TP__SHARED(uint32_t) mode;
	TP__SHARED(uint64_t) handed;
	TP__SHARED(uint64_t) claims; /* tp_pool_stats()'s count, not checked here */
	int failures; /* detached tasks' failures reported (tp__pool_task_failed) */
};

/* A record's home (src/task_cache.h): only the pool it names. */
struct tp__home {
	struct tp_pool *pool;
};

struct tp__worker {
	TP__SHARED(uint64_t) finished;
	struct tp_pool *pool;
	size_t index;
};

struct tp_future {
	TP__SHARED(uint32_t) word;
	model_plain<int> result;
	tp_task_fn fn;
	void *arg;
	tp_drop_fn drop;
	struct tp__home *home;
	tp_group *group;
};

/* A detached record's `group` (src/future.h). */
static char tp__detached_tag;
#define TP__DETACHED ((tp_group *)(void *)&tp__detached_tag)

struct tp__running {
	struct tp_future *f;
	struct tp__running *up;
};

/* Thread-local in the runtime: one per model thread here. */
struct tp__running *model_running_top[MAX_THREADS];
#define tp__running_top model_running_top[rl::ctx().current_thread()]

/* The record's recycling: the next tp_enqueue writes its fields (a data race unless every
 * earlier access happens before), then the model frees it (Relacy checks every later access)
 * and counts. */
int model_frees;

static inline struct tp__cache *tp__self_cache(const struct tp__home *home)
{
	(void)home;
	return NULL;
}

static inline void tp__record_free(struct tp_future *f, struct tp__cache *cache)
{
	(void)cache;
	RL_ASSERT(model_frees == 0);
	model_frees++;
	f->result = 0;
	delete f;
}

/* Queueing a record again (tp__future_run, after a hand-over): a worker retires it later. */
static inline void tp__inject_push(struct tp__inject *q, struct tp_future *f)
{
	RL_ASSERT(q->queued.load(rl::mo_relaxed, $) == NULL);
	q->queued.store(f, rl::mo_release, $);
}

/* The pool's error handler for a failed detached task: counted (its pool is alive then). */
static inline void tp__pool_task_failed(tp_pool *pool, tp_task_fn fn, void *arg, int code)
{
	(void)fn;
	(void)arg;
	(void)code;
	pool->failures++;
}

/* transcribed from src/future.c: note_failure (changed: a group's error word is not modelled) */
static void note_failure(struct tp_future *f, int code)
{
	if (code == 0 || f->group == NULL)
		return;
	/* Not retired yet: the pool is alive. */
	if (f->group == TP__DETACHED)
		tp__pool_task_failed(f->home->pool, f->fn, f->arg, code);
}

static inline bool tp__deadline_passed(const struct timespec *deadline)
{
	return deadline != NULL;
}

/* transcribed from src/future.h: tp__status_final (verbatim) */
static inline bool tp__status_final(uint32_t word)
{
	return (word & TP__ST_MASK) >= TP_FUTURE_DONE;
}

/* transcribed from src/future.h: tp__future_init (changed: the word, an atomic object here, is
 * stored with a relaxed store; the record is not published yet) */
static inline void tp__future_init(struct tp_future *f, tp_task_fn fn, void *arg, tp_drop_fn drop,
				   tp_group *group)
{
	tp__store_rlx_u32(&f->word,
			  TP_FUTURE_PENDING | (group == TP__DETACHED ? 1 : 2) * TP__REF_ONE);
	f->result = 0;
	f->fn = fn;
	f->arg = arg;
	f->drop = drop;
	f->group = group;
}

/* transcribed from src/future.h: tp__future_start (verbatim) */
static inline bool tp__future_start(struct tp_future *f)
{
	uint32_t v = tp__load_rlx_u32(&f->word);

	while ((v & TP__ST_MASK) == TP_FUTURE_PENDING) {
		/* seq_cst CAS: against tp_future_cancel's CAS, exactly one of the two wins. */
		if (tp__cas_value_u32(&f->word, &v, (v & ~TP__ST_MASK) | TP_FUTURE_RUNNING))
			return true;
	}
	return false;
}

/* transcribed from src/future.c: tp__future_code (verbatim) */
int tp__future_code(const struct tp_future *f, uint32_t word)
{
	switch (word & TP__ST_MASK) {
	case TP_FUTURE_DONE:
		return 0;
	case TP_FUTURE_FAILED:
		return f->result;
	default:
		return ECANCELED;
	}
}

/* transcribed from src/future.c: tp__future_unref (verbatim) */
void tp__future_unref(struct tp_future *f, uint32_t n)
{
	/* seq_cst faa: orders every earlier access to the record before its recycling by whoever
	 * drops the last reference (release on our side, acquire on theirs). */
	uint32_t old = tp__faa_u32(&f->word, (uint32_t) - (n * TP__REF_ONE));

	assert((old >> TP__REF_SHIFT) >= n);
	if ((old >> TP__REF_SHIFT) == n)
		tp__record_free(f, tp__self_cache(f->home));
}

/* transcribed from src/future.c: publish_final (verbatim) */
static uint32_t publish_final(struct tp_future *f, uint32_t status, bool drop)
{
	uint32_t v = tp__load_rlx_u32(&f->word);

	for (;;) {
		assert((v & TP__ST_MASK) == TP_FUTURE_RUNNING);
		if ((v & TP__WAITERS) || !drop) {
			uint32_t n = (v & ~(TP__ST_MASK | TP__WAITERS)) | status;

			/* seq_cst CAS (release): `result` is visible to whoever sees the status. */
			if (!tp__cas_value_u32(&f->word, &v, n))
				continue;
			/* Waiters hold references: the word stays valid through the wake. */
			if (v & TP__WAITERS)
				tp__futex_wake_all(&f->word);
			if (drop)
				tp__future_unref(f, 1);
			return v;
		}
		if (tp__cas_value_u32(&f->word, &v, ((v & ~TP__ST_MASK) | status) - TP__REF_ONE)) {
			if ((v >> TP__REF_SHIFT) == 1)
				tp__record_free(f, tp__self_cache(f->home));
			return v;
		}
	}
}

/* transcribed from src/future.c: tp__future_run (verbatim) */
int tp__future_run(struct tp_future *f, bool retire)
{
	struct tp__running me = { f, tp__running_top };
	uint32_t old;
	int code;

	tp__running_top = &me;
	code = f->fn(f->arg);
	/* Still "running": an error handler waiting for its own pool is EDEADLK too. */
	note_failure(f, code);
	tp__running_top = me.up;
	f->result = code;
	old = publish_final(f, code == 0 ? TP_FUTURE_DONE : TP_FUTURE_FAILED, retire);
	if (old & TP__DEQUEUED) {
		/* A worker took our queue entry while we ran and left the record to us (future.h).
		 * It is not retired, so the pool is alive. The enqueue's last access to the pool
		 * comes before any worker can take the record, and so before the shutdown can
		 * count it retired and free the pool: nothing here touches the pool afterwards
		 * (workers that may wait for it poll, see park() in worker.c). */
		assert(!retire);
		tp__inject_push(&f->home->pool->inject, f);
	}
	return code;
}

/* transcribed from src/future.c: tp__future_leave_queue (verbatim) */
bool tp__future_leave_queue(struct tp_future *f)
{
	/* acquire: if final, pairs with the claimer's CAS; what its task did comes before. */
	uint32_t v = tp__load_acq_u32(&f->word);

	while ((v & TP__ST_MASK) == TP_FUTURE_RUNNING) {
		/* A record has one queue entry at a time; DEQUEUED is set once. */
		assert(!(v & TP__DEQUEUED));
		/* seq_cst CAS: against the claimer's publish_final(), exactly one of the two sees
		 * the other: either the claimer sees DEQUEUED and queues the record again, or we
		 * see the final status and retire it. */
		if (tp__cas_value_u32(&f->word, &v, v | TP__DEQUEUED))
			return false;
	}
	assert(tp__status_final(v));
	return true;
}

/* transcribed from src/future.c: tp__future_cancel (verbatim) */
bool tp__future_cancel(struct tp_future *f, bool drop)
{
	uint32_t v = tp__load_rlx_u32(&f->word);

	while ((v & TP__ST_MASK) == TP_FUTURE_PENDING) {
		uint32_t n = (v & ~(TP__ST_MASK | TP__WAITERS)) | TP_FUTURE_CANCELLED;

		/* seq_cst CAS: against tp__future_start's CAS, exactly one of the two wins. */
		if (tp__cas_value_u32(&f->word, &v, n)) {
			/* The task will never run: its argument is ours to drop, once. */
			if (drop && f->drop != NULL)
				f->drop(f->arg);
			if (v & TP__WAITERS)
				tp__futex_wake_all(&f->word);
			return true;
		}
	}
	return (v & TP__ST_MASK) == TP_FUTURE_CANCELLED;
}

/* transcribed from src/future.c: tp__future_block (changed: the mutant waiters-not-set sleeps
 * without setting WAITERS) */
int tp__future_block(struct tp_future *f, const struct timespec *deadline)
{
	uint32_t v;

	for (int i = 0; i < WAIT_YIELDS; i++) {
		/* acquire: pairs with the CAS that published the final status (and `result`). */
		v = tp__load_acq_u32(&f->word);
		if (tp__status_final(v))
			return tp__future_code(f, v);
		sched_yield();
	}
	for (;;) {
		v = tp__load_acq_u32(&f->word);
		if (tp__status_final(v))
			return tp__future_code(f, v);
		if (!(v & TP__WAITERS) && !tp_model_mutated("waiters-not-set")) {
			/* seq_cst CAS: the publisher's CAS sees WAITERS, or we see its status. */
			if (!tp__cas_value_u32(&f->word, &v, v | TP__WAITERS))
				continue;
			v |= TP__WAITERS;
		}
		/* Checked here, not left to the futex: the kernel refuses a negative tv_sec
		 * (EINVAL), which would make this loop spin. */
		if (tp__deadline_passed(deadline) ||
		    tp__futex_wait(&f->word, v, deadline) == ETIMEDOUT) {
			v = tp__load_acq_u32(&f->word);
			return tp__status_final(v) ? tp__future_code(f, v) : ETIMEDOUT;
		}
	}
}

/* transcribed from src/future.c: deadline_valid (verbatim) */
static bool deadline_valid(const struct timespec *deadline)
{
	return deadline == NULL || (deadline->tv_nsec >= 0 && deadline->tv_nsec < 1000000000L);
}

/* transcribed from src/future.c: wait_over (verbatim) */
static bool wait_over(const tp_future *f, const struct timespec *deadline, int *code)
{
	uint32_t v;

	if (f == NULL || !deadline_valid(deadline)) {
		*code = EINVAL;
		return true;
	}
	/* acquire: pairs with the CAS that published the final status (and `result`). */
	v = tp__load_acq_u32(&f->word);
	if (!tp__status_final(v))
		return false;
	*code = tp__future_code(f, v);
	return true;
}

/* transcribed from src/future.c: running_below (verbatim) */
static bool running_below(const struct tp_future *f)
{
	/* Such a future is RUNNING, as this thread itself stored when it claimed it; the common
	 * wait, for a future still pending in our own deque, needs no walk up the chain. */
	if ((tp__load_rlx_u32(&f->word) & TP__ST_MASK) != TP_FUTURE_RUNNING)
		return false;
	for (const struct tp__running *r = tp__running_top; r != NULL; r = r->up)
		if (r->f == f)
			return true;
	return false;
}

/* transcribed from src/future.c: tp_future_wait_nohelp (changed: the mutant nohelp-plain-claim
 * claims with a load and a store instead of tp__future_start's CAS) */
int tp_future_wait_nohelp(tp_future *f, const struct timespec *deadline)
{
	int code;

	if (wait_over(f, deadline, &code))
		return code;
	if (running_below(f))
		return EDEADLK;
	if (tp_model_mutated("nohelp-plain-claim")) {
		uint32_t v = tp__load_rlx_u32(&f->word);

		if ((v & TP__ST_MASK) == TP_FUTURE_PENDING) {
			tp__store_rlx_u32(&f->word, (v & ~TP__ST_MASK) | TP_FUTURE_RUNNING);
			return tp__future_run(f, false);
		}
		return tp__future_block(f, deadline);
	}
	/* Not started: run it here. Its queue entry is retired later (tp__future_leave_queue). */
	if (tp__future_start(f)) {
		/* Not retired: the pool is alive. Counted for tp_pool_stats(). */
		(void)tp__faa_u64(&f->home->pool->claims, 1);
		return tp__future_run(f, false);
	}
	return tp__future_block(f, deadline);
}

/* transcribed from src/future.c: tp_future_cancel (verbatim) */
bool tp_future_cancel(tp_future *f)
{
	return f != NULL && tp__future_cancel(f, true);
}

/* transcribed from src/future.c: tp_future_release (verbatim) */
void tp_future_release(tp_future *f)
{
	uint32_t v;

	if (f == NULL)
		return;
	/* acquire: pairs with the runtime's dropping of its reference (a seq_cst RMW). A final
	 * record whose only reference is ours is touched by nobody else any more: recycle it
	 * without a read-modify-write, which would cost a locked instruction per task. */
	v = tp__load_acq_u32(&f->word);
	if (tp__status_final(v) && (v >> TP__REF_SHIFT) == 1)
		tp__record_free(f, tp__self_cache(f->home));
	else
		tp__future_unref(f, 1);
}

/* transcribed from src/worker.c: retire_unstarted (verbatim) */
static bool retire_unstarted(struct tp__worker *w, struct tp_future *f)
{
	tp_pool *pool = w->pool;
	uint32_t v;
	uint64_t out;

	/* Counted before the hand-over can happen, so that a worker parking during a shutdown
	 * sees it for as long as the record may be out (park()). */
	(void)tp__faa_u64(&pool->handed, 1);
	if (!tp__future_leave_queue(f))
		return false;
	/* Not handed over after all (our count comes back off), or handed over earlier and now
	 * back, its claimer having queued it again (that hand-over's count comes off too). */
	v = tp__load_rlx_u32(&f->word);
	out = (v & TP__DEQUEUED) ? 2 : 1;
	(void)tp__faa_u64(&pool->handed, (uint64_t)0 - out);
	if ((v & TP__ST_MASK) == TP_FUTURE_CANCELLED)
		TP__COUNT(w, cancelled);
	else
		TP__COUNT(w, reclaimed);
	tp__future_unref(f, 1);
	return true;
}

/* transcribed from src/worker.c: run_record_as (verbatim) */
static inline __attribute__((always_inline)) void run_record_as(struct tp__worker *w,
								struct tp_future *f, bool traced)
{
	tp_pool *pool = w->pool;

	/* acquire: pairs with the release store of the mode after the gate closed. */
	if (tp__load_acq_u32(&pool->mode) == TP__MODE_CANCEL)
		(void)tp__future_cancel(f, true);
	if (tp__future_start(f)) {
		uint64_t t0 = traced ? tp__trace_now() : 0;
		/* Read now: the record may be recycled once its task has returned. */
		const void *fn = traced ? (const void *)f->fn : NULL;
		int code;

		TP__LOG_DEBUG(pool, "worker %zu: task %p started", w->index, (void *)f);
		TP__COUNT(w, tasks);
		code = tp__future_run(f, true);
		if (traced)
			tp__trace_record(w, TP__EV_TASK, fn, t0, 0);
		TP__LOG_DEBUG(pool, "worker %zu: task %p finished: %d", w->index, (void *)f, code);
	} else if (!retire_unstarted(w, f)) {
		return; /* not retired: not counted yet */
	}
	/* (everything the task did, its forks' spawned counts included) before (this count),
	 * release, for the shutdown's quiescence check. _sc: also (this count) before (the loads
	 * of the other workers' counts in quiescent()), store-load, through the fence of
	 * tp__park_prepare() that every worker runs before the check: of the last two workers to
	 * retire a task, the later one in that fence order sees both counts. */
	tp__store_sc_u64(&w->finished, tp__load_rlx_u64(&w->finished) + 1);
}

/* transcribed from src/worker.c: run_record_traced (verbatim) */
static __attribute__((noinline)) void run_record_traced(struct tp__worker *w, struct tp_future *f)
{
	run_record_as(w, f, true);
}

/* transcribed from src/worker.c: run_record (verbatim) */
static void run_record(struct tp__worker *w, struct tp_future *f)
{
	if (TP__TRACING(&w->pool->trace))
		run_record_traced(w, f);
	else
		run_record_as(w, f, false);
}

/* --- The suites ------------------------------------------------------------------------------ */

namespace
{

/* The task: writes its data, counts its runs, fails with 42 (so that `result` is read too). Its
 * drop function (called by the cancel that wins) counts the drops. */
struct task_data {
	model_plain<int> data;
	int runs;
	int drops;
};

int model_task(void *arg)
{
	struct task_data *d = static_cast<struct task_data *>(arg);

	d->data = 7;
	d->runs++;
	return 42;
}

void model_drop(void *arg)
{
	struct task_data *d = static_cast<struct task_data *>(arg);

	d->drops++;
}

template <class Derived, unsigned Threads> struct future_suite : rl::test_suite<Derived, Threads> {
	struct tp_pool pool;
	struct tp__home home;
	struct tp__worker worker;
	struct task_data data;
	struct tp_future *f;
	bool retired;

	/* The record's group: none (tp_enqueue_ex), or TP__DETACHED (tp_submit_ex). */
	tp_group *group()
	{
		return NULL;
	}

	void before()
	{
		pool.inject.queued.store(NULL, rl::mo_relaxed, $);
		tp__store_rlx_u32(&pool.mode, TP__MODE_RUN);
		tp__store_rlx_u64(&pool.handed, 0);
		tp__store_rlx_u64(&pool.claims, 0);
		pool.failures = 0;
		home.pool = &pool;
		tp__store_rlx_u64(&worker.finished, 0);
		worker.pool = &pool;
		worker.index = 0;
		data.data = 0;
		data.runs = 0;
		data.drops = 0;
		model_frees = 0;
		for (int i = 0; i < MAX_THREADS; i++)
			model_running_top[i] = NULL;
		/* tp_enqueue_ex: two references, the caller's and the runtime's (tp_submit_ex: the
		 * runtime's only). The home is tp__record_alloc's. */
		f = new tp_future;
		tp__future_init(f, model_task, &data, model_drop,
				static_cast<Derived *>(this)->group());
		f->home = &home;
	}

	/* A worker that takes the record's queue entry and, if it handed the record over (it is
	 * counted out in `handed`), later the entry the claimer queues again. */
	void worker_takes()
	{
		struct tp_future *again;

		run_record(&worker, f);
		if (tp__load_rlx_u64(&pool.handed) == 0)
			return;
		while ((again = pool.inject.queued.load(rl::mo_acquire, $)) == NULL)
			rl::yield(1, $);
		pool.inject.queued.store(NULL, rl::mo_relaxed, $);
		run_record(&worker, again);
	}

	/* A waiter: its code is the task's (42) or ECANCELED; what the task wrote is visible. */
	void check_code(int code)
	{
		RL_ASSERT(code == 42 || code == ECANCELED);
		if (code == 42)
			RL_ASSERT(data.data == 7);
	}

	void after()
	{
		/* Retired once (counted once), recycled once, nothing left out. */
		RL_ASSERT(tp__load_rlx_u64(&worker.finished) == 1);
		RL_ASSERT(tp__load_rlx_u64(&pool.handed) == 0);
		RL_ASSERT(model_frees == 1);
		RL_ASSERT(data.runs <= 1);
		/* The argument is used once: run, or dropped by the cancel that won. */
		RL_ASSERT(data.runs + data.drops == 1);
		/* Only a detached task's failure goes to the error handler, once. */
		RL_ASSERT(pool.failures ==
			  (static_cast<Derived *>(this)->group() == TP__DETACHED ? data.runs : 0));
	}
};

/* A worker starts the task while the caller cancels it, then waits and releases. */
struct start_vs_cancel : future_suite<start_vs_cancel, 2> {
	bool cancelled;

	void thread(unsigned i)
	{
		if (i == 0) {
			worker_takes();
		} else {
			int code;

			cancelled = tp_future_cancel(f);
			code = tp__future_block(f, NULL);
			/* Exactly one won: the task ran, or the cancel did. */
			RL_ASSERT(cancelled == (code == ECANCELED));
			check_code(code);
			tp_future_release(f);
		}
	}
	void after()
	{
		RL_ASSERT(data.runs == (cancelled ? 0 : 1));
		future_suite<start_vs_cancel, 2>::after();
	}
};

/* The task finishes while two threads wait on the word (the caller, and one that took a
 * reference of its own); each releases its reference. */
struct finish_with_waiters : future_suite<finish_with_waiters, 3> {
	void before()
	{
		future_suite<finish_with_waiters, 3>::before();
		/* tp_future_retain by the second waiter, before it was handed the future. */
		tp__store_rlx_u32(&f->word, TP_FUTURE_PENDING | 3 * TP__REF_ONE);
	}
	void thread(unsigned i)
	{
		if (i == 0) {
			worker_takes();
		} else {
			check_code(tp__future_block(f, NULL));
			tp_future_release(f);
		}
	}
	void after()
	{
		RL_ASSERT(data.runs == 1);
		future_suite<finish_with_waiters, 3>::after();
	}
};

/* tp_future_wait_nohelp claims the task and runs it on the caller's thread, while a worker
 * takes the record's queue entry (and hands it over, or retires it); then the caller releases. */
struct nohelp_claim : future_suite<nohelp_claim, 2> {
	void thread(unsigned i)
	{
		if (i == 0) {
			worker_takes();
		} else {
			check_code(tp_future_wait_nohelp(f, NULL));
			tp_future_release(f);
		}
	}
	void after()
	{
		RL_ASSERT(data.runs == 1);
		future_suite<nohelp_claim, 2>::after();
	}
};

/* The caller cancels and releases at once while the worker takes the entry: the record is
 * recycled by whoever drops the last reference. */
struct cancel_and_release : future_suite<cancel_and_release, 2> {
	void thread(unsigned i)
	{
		if (i == 0) {
			worker_takes();
		} else {
			(void)tp_future_cancel(f);
			tp_future_release(f);
		}
	}
};

/* A detached task (tp_submit_ex: the runtime's reference only, nobody waits) taken by a worker
 * while a shutdown in CANCEL mode begins: the worker runs it or cancels it, dropping its argument
 * then, and recycles the record, whoever else did what. */
struct detached_shutdown : future_suite<detached_shutdown, 2> {
	tp_group *group()
	{
		return TP__DETACHED;
	}
	void thread(unsigned i)
	{
		if (i == 0)
			worker_takes();
		else
			tp__store_rel_u32(&pool.mode, TP__MODE_CANCEL);
	}
};

const tp_model_mutant mutants[] = {
	{ "waiters-not-set", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "a waiter sleeps on the word without setting WAITERS first: the finishing worker does not "
	  "wake it (deadlock)" },
	{ "wake-skipped", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "the final CAS found WAITERS and did not wake: the sleepers stay asleep (deadlock)" },
	{ "nohelp-plain-claim", TP_MODEL_CK, NULL, TP__KIND_NONE, "", 0, false,
	  "tp_future_wait_nohelp claims with a load and a store instead of the worker's CAS: both "
	  "run the task" },
	{ "final-cas-relaxed", TP_MODEL_CK, "publish_final", TP__KIND_RMW, "&f->word",
	  TP_MODEL_TO_RELAXED, false,
	  "the final status's CAS, relaxed: a waiter sees the status before the result (data race)" },
	{ "block-load-relaxed", TP_MODEL_CK, "tp__future_block", TP__KIND_LOAD, "&f->word",
	  TP_MODEL_TO_RELAXED, false,
	  "the waiter's acquire loads of the word, relaxed: it reads the result unordered (data race)" },
	{ "release-load-relaxed", TP_MODEL_CK, "tp_future_release", TP__KIND_LOAD, "&f->word",
	  TP_MODEL_TO_RELAXED, false,
	  "tp_future_release's acquire load, relaxed: it recycles the record while the runtime's "
	  "last accesses are unordered before it" },
	{ "unref-faa-relaxed", TP_MODEL_CK, "tp__future_unref", TP__KIND_RMW, "&f->word",
	  TP_MODEL_TO_RELAXED, false,
	  "the reference drop, relaxed: whoever drops the last recycles the record unordered after "
	  "the other's accesses" },
	{ "leave-queue-load-relaxed", TP_MODEL_CK, "tp__future_leave_queue", TP__KIND_LOAD,
	  "&f->word", TP_MODEL_TO_RELAXED, true,
	  "the worker's acquire load in tp__future_leave_queue, relaxed (the reference count's "
	  "read-modify-writes order the recycling anyway; the acquire orders the claimed task's "
	  "forks before the retirement's count, which this model does not hold: expected to "
	  "survive)" },
	{ "start-cas-relaxed", TP_MODEL_CK, "tp__future_start", TP__KIND_RMW, "&f->word",
	  TP_MODEL_TO_RELAXED, true,
	  "the start CAS, relaxed (exactly one of start and cancel wins by the word's single "
	  "modification order; no data rides on it: expected to survive)" },
	{ "cancel-cas-relaxed", TP_MODEL_CK, "tp__future_cancel", TP__KIND_RMW, "&f->word",
	  TP_MODEL_TO_RELAXED, true,
	  "the cancel CAS, relaxed (as for start: expected to survive)" },
	{ "waiters-cas-relaxed", TP_MODEL_CK, "tp__future_block", TP__KIND_RMW, "&f->word",
	  TP_MODEL_TO_RELAXED, true,
	  "the CAS that sets WAITERS, relaxed (the final CAS reads the word's latest value whatever "
	  "its order, and the waiter acquires the word again after waking: expected to survive)" },
	{ "dequeued-cas-relaxed", TP_MODEL_CK, "tp__future_leave_queue", TP__KIND_RMW, "&f->word",
	  TP_MODEL_TO_RELAXED, true,
	  "the CAS that sets DEQUEUED, relaxed (one location decides the hand-over; the record then "
	  "comes back through the queue: expected to survive)" },
};

} // namespace

int main(int argc, char **argv)
{
	int rc = tp_model_begin(argc, argv, "future", mutants, sizeof(mutants) / sizeof(mutants[0]));

	if (rc >= 0)
		return rc;
	tp_model_check<start_vs_cancel>("start-vs-cancel", 100000, 3);
	tp_model_check<finish_with_waiters>("finish-with-waiters", 100000, 2);
	tp_model_check<nohelp_claim>("nohelp-claim", 100000, 3);
	tp_model_check<cancel_and_release>("cancel-and-release", 100000, 3);
	tp_model_check<detached_shutdown>("detached-shutdown", 100000, 3);
	return tp_model_end();
}
