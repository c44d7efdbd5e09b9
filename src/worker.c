/*
 * worker.c - what a worker does: find work, run it, help while it waits, park when idle.
 *
 * Finding work, in order: the worker's own deque (LIFO, its freshest forks), the injection queue
 * (a batch moved into its deque, so others can steal the rest), then one round of steals from
 * the other workers, starting at a random victim. A worker that finds nothing spins a few rounds,
 * then parks (park.h); during a shutdown it first checks for quiescence (pool.h).
 *
 * Waiting on a worker (tp__worker_help): the waiter runs whatever it finds, as above, until the
 * future is final. With nothing to run it sleeps on the future's word, and its final status
 * wakes it. A sleeping waiter is not parked: work submitted meanwhile wakes parked workers only.
 * Pending work sits where an active worker will find it (a worker sleeps only with an empty
 * deque, and only its owner fills a deque), except when no worker is active: every one waits,
 * and the awaited task runs on a thread outside the pool (tp_future_wait_nohelp() claimed it)
 * and submits work it then waits for. So a sleeping waiter looks for work again now and then,
 * after 1 ms at first, doubling up to 32 ms.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pool.h"

/* Rounds of find() an idle worker tries before it parks, each after a short pause. Kept low: see
 * docs/machine.md on why spinning hurts on this kind of guest. */
#define IDLE_ROUNDS 4
#define IDLE_PAUSES 32

/* How often a helping waiter with nothing to run looks for new work: after 1 ms at first, then
 * doubling up to every 32 ms (a long wait costs about 30 wake-ups a second). */
#define HELP_POLL_MIN_NS (1000 * 1000)
#define HELP_POLL_MAX_NS (32 * 1000 * 1000)

TP__TLS struct tp__worker *tp__self;
TP__TLS struct tp__deque *tp__self_deque;

static inline uint64_t rng_next(uint64_t *s)
{
	/* xorshift64: victim selection only. */
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

_Static_assert(TP__DEQUE_INITIAL > TP__INJECT_BATCH, "a batch fits an empty deque");

/*
 * Takes up to `max` records from the injection queue: runs the oldest, pushes the rest on the
 * worker's deque and publishes them at once (they must never strand behind a busy worker).
 */
static void *take_inject(struct tp__worker *w, size_t max)
{
	tp_pool *pool = w->pool;
	struct tp_future *batch[TP__INJECT_BATCH];
	size_t n = tp__inject_take(&pool->inject, batch, max);

	if (n == 0)
		return NULL;
	TP__COUNT_N(w, injected, n);
	/* The submitter wrote these records: ask for their lines in exclusive state now, all at
	 * once, rather than one ownership transfer at a time when each task's CAS needs it. */
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(batch[i], 1);
	if (n > 1) {
		/* Newest first, so that take() pops them oldest first. */
		for (size_t i = n - 1; i >= 1; i--) {
			/* Cannot fail: find() took this deque dry, and it never has fewer than
			 * TP__DEQUE_INITIAL slots, more than a batch, so nothing grows. */
			int err = tp__deque_push(&w->deque, batch[i]);

			assert(err == 0);
			(void)err;
		}
		tp__worker_publish(w);
	}
	return batch[0];
}

static void *steal_round(struct tp__worker *w)
{
	tp_pool *pool = w->pool;
	size_t n = pool->n;
	size_t start;

	if (n == 1)
		return NULL;
	start = (size_t)(rng_next(&w->rng) % n);
	for (size_t k = 0; k < n; k++) {
		struct tp__worker *v = &pool->workers[(start + k) % n];
		void *item;

		if (v == w)
			continue;
		/* A lost race means the victim has work: retry it a few times. */
		for (int tries = 0; tries < 4; tries++) {
			enum tp__steal_result r = tp__deque_steal(&v->deque, &item);

			if (r == TP__STEAL_OK) {
				TP__COUNT(w, steals);
				TP__TRACE_FLOW(w, TP__EV_STEAL, v->index);
				return item;
			}
			TP__COUNT(w, steal_fails);
			if (r == TP__STEAL_EMPTY)
				break;
			tp__cpu_relax();
		}
		/* Then its typed tasks (tstack.h), the same way. */
		for (int tries = 0; tries < 4; tries++) {
			struct tp__slot *slot;
			enum tp__tsteal_result r = tp__tstack_steal(&v->tstack, &slot);

			if (r == TP__TSTEAL_OK) {
				TP__COUNT(w, steals);
				TP__TRACE_FLOW(w, TP__EV_STEAL, v->index);
				return tp__item_of_slot(slot);
			}
			TP__COUNT(w, steal_fails);
			if (r == TP__TSTEAL_EMPTY)
				break;
			tp__cpu_relax();
		}
	}
	return NULL;
}

void tp__worker_publish(struct tp__worker *w)
{
	tp__deque_publish(&w->deque);
	/* (store of split) before (loads of the idle bitmap), store-load: the fence inside
	 * tp__park_wake_one() pairs with the one in tp__park_prepare(). Either a worker about to
	 * sleep sees the items in its re-check, or we see its bit and wake it. Without the fence
	 * both can miss (the store still in our store buffer while we read a clear bitmap), and a
	 * published item then waits while a worker sleeps. */
	(void)tp__park_wake_one(&w->pool->park, w->index);
}

/* One attempt to find an item: own deque, up to inject_max records of the injection queue, then
 * steal. NULL if none. Inlined into each loop that calls it: it is the hot path of each. */
static inline __attribute__((always_inline)) void *find_work(struct tp__worker *w,
							     size_t inject_max)
{
	void *item = tp__deque_take(&w->deque);

	if (item != NULL) {
		if (tp__deque_requested(&w->deque) && tp__deque_has_private(&w->deque))
			tp__worker_publish(w);
		return item;
	}
	item = take_inject(w, inject_max);
	if (item != NULL)
		return item;
	return steal_round(w);
}

/*
 * A record that did not start here: cancelled, or claimed by tp_future_wait_nohelp(). True if
 * it is retired now; false if its claimer still runs it and takes over (future.h).
 */
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

/* Runs a record, recording its span if `traced` (a constant: see run_record). */
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

/* The two copies of run_record_as: the untraced one has no trace code at all, and the traced
 * one lives apart (it would take the untraced path's registers), so tracing costs the untraced
 * path one load and one branch. */
static __attribute__((noinline)) void run_record_traced(struct tp__worker *w, struct tp_future *f)
{
	run_record_as(w, f, true);
}

static void run_record(struct tp__worker *w, struct tp_future *f)
{
	if (TP__TRACING(&w->pool->trace))
		run_record_traced(w, f);
	else
		run_record_as(w, f, false);
}

static __attribute__((noinline)) void run_frame_traced(struct tp__worker *w, tp_frame *t)
{
	uint64_t t0 = tp__trace_now();
	/* Read now: the frame belongs to its spawner once it has run. */
	const void *fn = (const void *)t->fn_;

	tp__frame_run(w, t);
	tp__trace_record(w, TP__EV_FRAME, fn, t0, 0);
}

static __attribute__((noinline)) void run_slot_traced(struct tp__worker *w, struct tp__slot *s)
{
	uint64_t t0 = tp__trace_now();
	/* Read now: the slot belongs to its spawner once it has run. */
	const void *fn = (const void *)s->h.run;

	tp__tstack_run_stolen(&w->tstack, s, tp__tstack_top(&w->tstack));
	tp__trace_record(w, TP__EV_FRAME, fn, t0, 0);
}

static void run_slot(struct tp__worker *w, struct tp__slot *s)
{
	if (TP__TRACING(&w->pool->trace))
		run_slot_traced(w, s);
	else
		tp__tstack_run_stolen(&w->tstack, s, tp__tstack_top(&w->tstack));
}

void tp__worker_run_item(struct tp__worker *w, void *item)
{
	if (tp__item_is_slot(item))
		run_slot(w, tp__item_slot(item));
	else if (!tp__item_is_frame(item))
		run_record(w, item);
	else if (TP__TRACING(&w->pool->trace))
		run_frame_traced(w, tp__item_frame(item));
	else
		tp__frame_run(w, tp__item_frame(item));
}

/* After a fence: could any source hold work? (Also true for a queue caught mid-append.) */
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

/* See "Termination of a shutdown" in pool.h: every finished count first, then spawned + gate. */
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

bool tp__pool_quiescent(tp_pool *pool)
{
	return quiescent(pool);
}

/* Parks the worker until there may be work. Returns true when the worker must exit. */
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

/* A few rounds of find() with pauses in between, before parking or blocking. */
static void *find_spinning(struct tp__worker *w, size_t inject_max)
{
	for (int round = 0; round < IDLE_ROUNDS; round++) {
		void *item;

		for (int i = 0; i < IDLE_PAUSES; i++)
			tp__cpu_relax();
		item = find_work(w, inject_max);
		if (item != NULL)
			return item;
	}
	return NULL;
}

/* "NAME-i", NAME shortened so that the whole fits the kernel's 15 characters. */
static void name_thread(const struct tp__worker *w)
{
	char suffix[8], name[16]; /* the index is below TP_POOL_MAX_THREADS: "-1023" at most */
	size_t room, len;

	snprintf(suffix, sizeof(suffix), "-%u", (unsigned)(w->index % 100000));
	room = sizeof(name) - 1 - strlen(suffix);
	len = strnlen(w->pool->name, room);
	memcpy(name, w->pool->name, len);
	memcpy(name + len, suffix, strlen(suffix) + 1);
	(void)pthread_setname_np(pthread_self(), name);
}

void *tp__worker_main(void *arg)
{
	struct tp__worker *w = arg;
	tp_pool *pool = w->pool;

	tp__self = w;
	tp__self_deque = &w->deque;
	name_thread(w);
	if (pool->on_thread_start != NULL) {
		pool->on_thread_start(pool->hook_user, w->index);
		tp__pool_started(pool);
	}
	TP__LOG_DEBUG(w->pool, "worker %zu started", w->index);
	for (;;) {
		void *item = find_work(w, TP__INJECT_BATCH);

		if (item == NULL)
			item = find_spinning(w, TP__INJECT_BATCH);
		if (item != NULL) {
			tp__worker_run_item(w, item);
			continue;
		}
		if (park(w))
			break;
	}
	TP__LOG_DEBUG(w->pool, "worker %zu exiting", w->index);
	tp__self_deque = NULL;
	tp__self = NULL;
	/* Not a worker any more: a submission from the hook goes through the closed gate. */
	if (pool->on_thread_stop != NULL)
		pool->on_thread_stop(pool->hook_user, w->index);
	return NULL;
}

const struct timespec *tp__deadline_within(const struct timespec *deadline, long ns,
					   struct timespec *out)
{
	tp__deadline_in(ns, out);
	if (deadline != NULL && tp__timespec_before(deadline, out))
		return deadline;
	return out;
}

int tp__worker_help(struct tp__worker *w, struct tp_future *f, const struct timespec *deadline)
{
	long poll_ns = HELP_POLL_MIN_NS;

	for (;;) {
		/* acquire: pairs with the CAS that published the final status (and `result`). */
		uint32_t v = tp__load_acq_u32(&f->word);
		const struct timespec *until;
		struct timespec poll;
		void *item;
		int code;

		if (tp__status_final(v))
			return tp__future_code(f, v);
		if (deadline != NULL && tp__deadline_passed(deadline))
			return ETIMEDOUT;
		/* One record at a time from the injection queue: a batch would leave unrelated
		 * tasks on this deque, above the frames of the task that waits. */
		item = find_work(w, 1);
		if (item == NULL)
			item = find_spinning(w, 1);
		if (item != NULL) {
			tp__worker_run_item(w, item);
			poll_ns = HELP_POLL_MIN_NS;
			continue;
		}
		/* Pairs the loads of work_visible() with any publication, as parking does. */
		tp__fence_sc();
		if (work_visible(w->pool)) {
			/* Work we could not take yet (a race, or a submitter mid-append). */
			sched_yield();
			continue;
		}
		/* Nothing to run: sleep on the future's word, whose final status wakes us at once.
		 * Work submitted meanwhile wakes only parked workers, not us, and the awaited task
		 * may need it (run by tp_future_wait_nohelp() on a thread outside the pool, it may
		 * submit a task and wait for it): so look for work again now and then. */
		until = tp__deadline_within(deadline, poll_ns, &poll);
		code = tp__future_block(f, until);
		if (code != ETIMEDOUT || until == deadline)
			return code;
		if (poll_ns < HELP_POLL_MAX_NS)
			poll_ns *= 2;
	}
}
