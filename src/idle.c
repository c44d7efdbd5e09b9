/*
 * idle.c - tp_pool_wait_idle: sleeping until the pool has no task left, without closing it.
 *
 * "Idle" is the shutdown's quiescence (pool.h): every task accepted from outside or forked from
 * inside has been retired, read as sum(finished) == sum(spawned) + accepted. That check is sound
 * at any time, not only once the gate is closed: equal sums prove that at some moment between
 * its two passes no task was alive, which is what the caller asked for, the moment being after
 * the call began.
 *
 * The handshake with the workers (Dekker-style; both sides run a store-load fence)
 *   waiter: idle_waiters += 1 (RMW); loop { seq = idle_seq; fence; if quiescent: return;
 *           sleep on idle_seq while it still holds seq }
 *   worker: retires a task (finished, _sc); ... parks: fence (tp__park_prepare); if
 *           idle_waiters != 0 and quiescent: idle_seq += 1, wake every sleeper on it
 *   The last worker to retire a task parks afterwards. Either it sees the waiter registered and
 *   runs the check itself (then moves idle_seq, and the waiter, sleeping or about to, returns
 *   from its futex wait and checks again), or the waiter's check comes after that worker's
 *   count in the fence order and sees it. Between workers, the shutdown's argument holds as is.
 *
 * One record retires without a task's end behind it: one that tp_future_wait_nohelp() ran while
 * a worker held its queue entry comes back on the injection queue, and its claimer wakes nobody
 * (pool.h, `handed`). While such a record is out, the waiter looks again every millisecond and
 * wakes a worker to take it.
 */
#include <errno.h>
#include <time.h>

#include "futex.h"
#include "pool.h"

void tp__pool_idle_wake(tp_pool *pool)
{
	/* seq_cst RMW: a waiter that read the old value sleeps on it and is woken, or reads the
	 * new one. */
	(void)tp__faa_u32(&pool->idle_seq, 1);
	tp__futex_wake_all(&pool->idle_seq);
}

/* True if the calling thread runs a task of `pool` (a worker's, one that tp_future_wait_nohelp()
 * runs, or an error handler's): waiting for idleness would wait for itself. */
static bool inside(const tp_pool *pool)
{
	struct tp__worker *w = tp__self;

	if (w != NULL && w->pool == pool)
		return true;
	for (const struct tp__running *r = tp__running_top; r != NULL; r = r->up)
		if (r->f->home == pool->home)
			return true;
	return false;
}

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
