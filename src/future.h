/*
 * future.h - a task record and the future that reports it: one object, one atomic state word.
 *
 * Overview
 *   tp_enqueue() returns the record itself as the future. Its 32-bit `word` holds, together, the
 *   status (bits 0-2), a WAITERS flag (bit 3: some thread sleeps on the word), a DEQUEUED flag
 *   (bit 4, below) and the reference count (bits 5-31). It is also the futex word waiters sleep
 *   on.
 *
 *   status: PENDING -> RUNNING -> DONE | FAILED      (whoever claimed it runs it; CAS)
 *           PENDING -> CANCELLED                      (tp_future_cancel or a CANCEL shutdown, CAS)
 *
 *   A record is claimed (PENDING -> RUNNING) by the worker that takes it from its queue, or
 *   earlier by tp_future_wait_nohelp() on any thread. A worker that takes the queue entry of a
 *   record claimed that way must not retire it while its task still runs (the shutdown counts a
 *   retired task as over, pool.h): if it is still RUNNING, the worker sets DEQUEUED by CAS and
 *   leaves it; the claimer, finishing, sees DEQUEUED in the word it replaces and puts the record
 *   back on the injection queue, where a worker finds it final and retires it. The record is
 *   not retired, so the pool is alive while the claimer does that. If the claimer finished
 *   first, the worker's CAS fails on the final status and it retires the record at once.
 *
 * Invariants
 *   - Two references at birth: the caller's (dropped by tp_future_release) and the runtime's
 *     (dropped once the record is retired: it left the queues and its task will never run or has
 *     returned); a detached record (tp_submit) has only the runtime's, and no caller ever sees
 *     it. The record is recycled when the count reaches zero, whoever drops last. The
 *     count never exceeds TP__REF_MAX: tp_future_retain refuses (EOVERFLOW) rather than wrap.
 *   - DEQUEUED is set at most once, only while RUNNING, and only by a worker holding the
 *     queue entry; nothing clears it.
 *   - `result` is written before the final status is published by a seq_cst CAS (release) and read
 *     only after a final status was loaded with acquire; it needs no atomic access.
 *   - A thread sets WAITERS (by CAS) before it sleeps on the word; whoever publishes a final
 *     status clears WAITERS in the same CAS and, if it was set, wakes all sleepers.
 *   - Any change of the word (also a reference count change) may wake a sleeper early; sleepers
 *     re-check, so that is harmless.
 */
#ifndef TP_FUTURE_H
#define TP_FUTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <urcu/wfcqueue.h>

#include "thread_pool.h"
#include "atomics.h"

#define TP__ST_MASK   0x7u
#define TP__WAITERS   0x8u
#define TP__DEQUEUED  0x10u
#define TP__REF_SHIFT 5
#define TP__REF_ONE   (1u << TP__REF_SHIFT)
#define TP__REF_MAX   (UINT32_MAX >> TP__REF_SHIFT)

struct tp__home;

struct tp_future {
	uint32_t word; /* status | WAITERS | DEQUEUED | refs << 5; the futex word */
	int result;    /* the task's code; see the invariants */
	tp_task_fn fn;
	void *arg;
	tp_drop_fn drop; /* called with arg by whoever cancels the task; NULL: none */
	/* Where the record returns when its last reference drops. It outlives the pool and names
	 * it: home->pool is the record's pool, dereferenced only while the record is not retired. */
	struct tp__home *home;
	/* Its group (owner of the group only), TP__DETACHED (tp_submit), or NULL. */
	tp_group *group;
	struct tp_future *group_next;
	union {
		struct cds_wfcq_node node;   /* injection queue link, while queued */
		struct tp_future *next_free; /* free-list link, while recycled */
	};
};

/* A pending future costs one record: one cache line (10M pending futures take 640 MB, plus 8
 * bytes each of deque slot). */
_Static_assert(sizeof(struct tp_future) <= 64, "a task record fits one cache line");

static inline bool tp__status_final(uint32_t word)
{
	return (word & TP__ST_MASK) >= TP_FUTURE_DONE;
}

/* The `group` of a detached task (tp_submit): nobody holds its future, and a failure goes to
 * the pool's error handler. Never dereferenced. */
extern char tp__detached_tag;
#define TP__DETACHED ((tp_group *)(void *)&tp__detached_tag)

/* Before publication: no atomics needed. A detached record is born with the runtime's reference
 * only. */
static inline void tp__future_init(struct tp_future *f, tp_task_fn fn, void *arg, tp_drop_fn drop,
				   tp_group *group)
{
	f->word = TP_FUTURE_PENDING | (group == TP__DETACHED ? 1 : 2) * TP__REF_ONE;
	f->result = 0;
	f->fn = fn;
	f->arg = arg;
	f->drop = drop;
	f->group = group;
}

/* The task's code for a final word (0, the task's error, or ECANCELED). */
int tp__future_code(const struct tp_future *f, uint32_t word);

/* PENDING -> RUNNING. False if it was cancelled (then it must not run). */
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

/*
 * A worker took f's queue entry and tp__future_start() failed: f was cancelled, or claimed by
 * tp_future_wait_nohelp(). True if f may be retired now (its task will never run, or has
 * returned); false if its claimer still runs it and will queue it again when done (above).
 */
bool tp__future_leave_queue(struct tp_future *f);

/*
 * PENDING -> CANCELLED, waking sleepers; the call that cancels it also calls its drop function
 * if `drop` (the child of a fork() does not: the parent owns the argument). True if it is (now or
 * already) cancelled. The caller holds a reference.
 */
bool tp__future_cancel(struct tp_future *f, bool drop);

/* Drops n references; recycles the record when none are left. */
void tp__future_unref(struct tp_future *f, uint32_t n);

/* Blocks (no helping) until final or the deadline; returns the code or ETIMEDOUT. */
int tp__future_block(struct tp_future *f, const struct timespec *deadline);

/* True if the absolute CLOCK_MONOTONIC deadline has passed (any negative one has); NULL: never. */
bool tp__deadline_passed(const struct timespec *deadline);

/* True if time a comes before time b (both normalised: tv_nsec in [0, 1e9)). */
static inline bool tp__timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * The records whose tasks the calling thread is running, innermost first: a chain of these
 * lives in the stack frames that run them (a worker's, or tp_future_wait_nohelp()'s on any
 * thread). A wait for one of them would wait for a caller of the waiter itself (EDEADLK), and a
 * thread with a chain is "a thread running a task" for tp_pool_shutdown().
 */
struct tp__running {
	struct tp_future *f;
	struct tp__running *up;
};

/* Runs f's task on the calling thread after a successful tp__future_start() and publishes its
 * final status; `retire` says whether the runtime's reference goes too (else the record is still
 * queued somewhere, and retired when taken). Returns the task's code. */
int tp__future_run(struct tp_future *f, bool retire);

#endif /* TP_FUTURE_H */
