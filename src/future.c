/*
 * future.c - completing, cancelling and waiting for futures through their state word.
 * The word's layout and invariants are described at the top of future.h.
 */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <time.h>

#include "future.h"
#include "futex.h"
#include "pool.h"

/*
 * Checks of a blocking waiter before it sleeps, each after a sched_yield(). Not a busy spin: on
 * this kind of guest a worker that the submitter has just woken usually lands on the submitter's
 * own CPU (docs/machine.md), and a spinning waiter would keep it from running for the whole spin; a
 * yield hands it the CPU at once, and costs one cheap system call when the CPU has nobody else.
 */
#define WAIT_YIELDS 4

TP__TLS struct tp__running *tp__running_top;

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

void tp__future_unref(struct tp_future *f, uint32_t n)
{
	/* seq_cst faa: orders every earlier access to the record before its recycling by whoever
	 * drops the last reference (release on our side, acquire on theirs). */
	uint32_t old = tp__faa_u32(&f->word, (uint32_t) - (n * TP__REF_ONE));

	assert((old >> TP__REF_SHIFT) >= n);
	if ((old >> TP__REF_SHIFT) == n)
		tp__record_free(f, tp__self_cache(f->home));
}

/*
 * Publishes a final status and, if `drop`, the runtime's reference (in the same CAS when nobody
 * sleeps on the word). Returns the word it replaced.
 */
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

char tp__detached_tag;

/* A failed task's code goes to its group, or for a detached task to its pool's error handler. */
static void note_failure(struct tp_future *f, int code)
{
	if (code == 0 || f->group == NULL)
		return;
	/* Not retired yet: the pool is alive. */
	if (f->group == TP__DETACHED)
		tp__pool_task_failed(f->home->pool, f->fn, f->arg, code);
	/* The first failure in time wins: a CAS from 0. Before the final status, so the group's
	 * waiter, who waits for that status, sees it. */
	else
		(void)tp__cas_u32((uint32_t *)&f->group->error_, 0, (uint32_t)code);
}

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

bool tp__deadline_passed(const struct timespec *deadline)
{
	struct timespec now;

	if (deadline == NULL)
		return false;
	if (deadline->tv_sec < 0)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return !tp__timespec_before(&now, deadline);
}

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
		if (!(v & TP__WAITERS)) {
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

static bool deadline_valid(const struct timespec *deadline)
{
	return deadline == NULL || (deadline->tv_nsec >= 0 && deadline->tv_nsec < 1000000000L);
}

/* The start of every wait: true, with *code set, for bad input or a future already final. */
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

/* True if the calling thread runs f's task, lower on its own stack: waiting would wait for
 * one of the waiter's own callers. */
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

int tp_future_wait_until(tp_future *f, const struct timespec *deadline)
{
	struct tp__worker *self = tp__self;
	int code;

	if (wait_over(f, deadline, &code))
		return code;
	if (running_below(f))
		return EDEADLK;
	if (self != NULL && self->pool->home == f->home)
		return tp__worker_help(self, f, deadline);
	return tp__future_block(f, deadline);
}

int tp_future_wait_nohelp(tp_future *f, const struct timespec *deadline)
{
	int code;

	if (wait_over(f, deadline, &code))
		return code;
	if (running_below(f))
		return EDEADLK;
	/* Not started: run it here. Its queue entry is retired later (tp__future_leave_queue). */
	if (tp__future_start(f)) {
		/* Not retired: the pool is alive. Counted for tp_pool_stats(). */
		(void)tp__faa_u64(&f->home->pool->claims, 1);
		return tp__future_run(f, false);
	}
	return tp__future_block(f, deadline);
}

int tp_future_wait(tp_future *f)
{
	return tp_future_wait_until(f, NULL);
}

bool tp_future_cancel(tp_future *f)
{
	return f != NULL && tp__future_cancel(f, true);
}

tp_future_status tp_future_state(const tp_future *f)
{
	if (f == NULL)
		return TP_FUTURE_CANCELLED;
	return (tp_future_status)(tp__load_acq_u32(&f->word) & TP__ST_MASK);
}

int tp_future_result(const tp_future *f)
{
	uint32_t v;

	if (f == NULL)
		return EINVAL;
	v = tp__load_acq_u32(&f->word);
	return tp__status_final(v) ? tp__future_code(f, v) : EBUSY;
}

tp_future *tp_future_retain(tp_future *f)
{
	uint32_t v;

	if (f == NULL) {
		errno = EINVAL;
		return NULL;
	}
	v = tp__load_rlx_u32(&f->word);
	do {
		/* The caller holds a reference: the count is above zero. */
		assert((v >> TP__REF_SHIFT) > 0);
		if ((v >> TP__REF_SHIFT) == TP__REF_MAX) {
			errno = EOVERFLOW;
			return NULL;
		}
		/* seq_cst CAS: a count that may never wrap needs the check and the add in one. */
	} while (!tp__cas_value_u32(&f->word, &v, v + TP__REF_ONE));
	return f;
}

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
