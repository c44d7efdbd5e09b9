/*
 * pool.h - the pool and its workers (private).
 *
 * Who owns what
 *   - A worker's deque bottom, its record cache and its counters are written by that worker only;
 *     the deque top is shared with thieves (see deque.h).
 *   - The gate counts tasks accepted from outside and holds the CLOSED bit; the mode says how a
 *     shutdown treats pending tasks; `stop` tells workers to exit.
 *
 * Termination of a shutdown (quiescence)
 *   Once the gate is closed, the accepted work is final except for forks of running tasks. Each
 *   worker counts the tasks it forked (`spawned`) and the records it retired (`finished`: ran,
 *   or dropped as cancelled). Every task is counted in spawned (or in the gate) before anyone can
 *   retire it, so reading every `finished` first and then every `spawned` and the gate gives
 *       sum(finished) <= retired at time T <= created at time T <= sum(spawned) + accepted
 *   for a moment T between the two passes: equality proves no task was alive at T, and nothing can
 *   create one afterwards. Frames (tp_spawn) are not counted: a task joins every frame it spawned
 *   before it returns, so its own retirement covers them. A worker checks this before it parks
 *   during a shutdown; the parking protocol's fences make sure the last two workers to go idle
 *   cannot both miss each other.
 *
 *   "Retired" means the task will never run or has returned, not merely that its record left a
 *   queue: a record claimed by tp_future_wait_nohelp() may still run on its claimer's thread when
 *   a worker takes its queue entry. That worker then hands the retirement to the claimer
 *   (future.h, DEQUEUED), which queues the record again once its task has returned; while such a
 *   record is out (`handed`), workers parked during a shutdown look again every millisecond,
 *   because the claimer may not wake them (the pool may be freed as soon as the record is back).
 */
#ifndef TP_POOL_H
#define TP_POOL_H

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdint.h>

#include "thread_pool.h"
#include "deque.h"
#include "fork.h"
#include "frame.h"
#include "inject.h"
#include "logger_internal.h"
#include "park.h"
#include "task_cache.h"
#include "trace.h"
#include "tstack.h"

enum tp__mode {
	TP__MODE_RUN = 0,
	TP__MODE_DRAIN = 1,
	TP__MODE_CANCEL = 2
};

#define TP__GATE_CLOSED UINT64_C(1)
#define TP__GATE_ONE	UINT64_C(2)

/* Records a worker moves from the injection queue at a time. */
#define TP__INJECT_BATCH 32

/*
 * A worker's counters for tp_pool_stats(): each written by its worker only (relaxed stores of
 * the incremented value, no read-modify-write), read by anyone (relaxed loads). The forks are
 * the worker's `spawned`.
 */
struct tp__counters {
	uint64_t tasks; /* records whose task it started: one store per task, before it runs */
	uint64_t steals, steal_fails, injected, parks, wakeups;
	/* Records it retired without running them: cancelled ones, and ones that
	 * tp_future_wait_nohelp() ran on its own thread. */
	uint64_t cancelled, reclaimed;
};

/* Adds n to counter `field` of worker w (TP__COUNT: one): owner only. */
#define TP__COUNT_N(w, field, n)                                                                   \
	tp__store_rlx_u64(&(w)->counters.field, tp__load_rlx_u64(&(w)->counters.field) + (n))
#define TP__COUNT(w, field) TP__COUNT_N(w, field, 1)

struct tp__worker {
	struct tp__deque deque;				/* starts on its own cache line */
	struct tp__tstack tstack;			/* typed tasks (tstack.h) */
	alignas(TP__CACHE_LINE) struct tp__cache cache; /* owner only */
	uint64_t spawned;  /* owner stores (release); the shutdown check loads */
	uint64_t finished; /* owner stores (release); the shutdown check loads */
	uint64_t rng;	   /* owner only: victim selection */
	tp_pool *pool;
	size_t index;
	struct tp__counters counters;
	struct tp__trace_lane lane; /* trace.h */
	pthread_t thread;
	int started;
};

struct tp_pool {
	struct tp__inject inject;
	/* Its own line, written by every outside submission; the rest of it is cold. */
	alignas(TP__CACHE_LINE) uint64_t gate; /* accepted << 1 | CLOSED */
	/* Records whose retirement a worker left to their claimer (future.h, DEQUEUED): while
	 * some are out, a worker parked during a shutdown re-checks now and then. Rarely written. */
	uint64_t handed;
	/* For tp_pool_stats() only: records claimed by tp_future_wait_nohelp() (faa, while the
	 * claimed record is not retired: the pool is alive). A cancel has no such count: once it
	 * is published, a worker may retire the record and the pool may go. */
	uint64_t claims;
	tp_pool *fork_prev, *fork_next; /* the registry of live pools (fork.c), under its lock */
	uint32_t shut_state;		/* 0 none, 1 in progress, 2 joined; under shut_lock */
	uint32_t idle_seq; /* futex word of tp_pool_wait_idle(): moves when the pool went idle */
	uint32_t starting; /* workers yet to return from on_thread_start (futex word) */
	struct tp__trace *trace_owned; /* the running trace, under trace_lock (trace.c) */
	/* Read-mostly from here. */
	alignas(TP__CACHE_LINE) uint32_t mode; /* enum tp__mode */
	uint32_t stop;			       /* set once quiescent: workers exit */
	uint32_t idle_waiters;		       /* threads in tp_pool_wait_idle() */
	struct tp__trace *trace;	       /* the trace being recorded, or NULL (trace.h) */
	size_t n;
	struct tp__worker *workers; /* [n], cache-line aligned */
	struct tp__home *home;
	tp_logger *logger;
	const uint32_t *log_threshold; /* the logger's threshold word (logger.c) */
	struct tp__park park;
	pthread_mutex_t shut_lock;  /* serialises shutdown calls (cold path only) */
	pthread_mutex_t trace_lock; /* serialises starting and stopping traces (cold path only) */
	char *name;		    /* tp_pool_options.name, copied */
	tp_thread_hook_fn on_thread_start, on_thread_stop;
	void *hook_user;
	tp_error_fn on_error;
	void *error_user;
};

/*
 * Per-task DEBUG lines: the check costs one relaxed load, inline (no call). A threshold at or
 * below DEBUG (or the singleton's unset 0) goes through tp_log_at, which decides exactly.
 */
#define TP__LOG_DEBUG(pool, ...)                                                                   \
	do {                                                                                       \
		if (tp__load_rlx_u32((pool)->log_threshold) <= TP_LOG_DEBUG)                       \
			tp_log_at((pool)->logger, TP_LOG_DEBUG, __FILE__, __LINE__, __func__,      \
				  __VA_ARGS__);                                                    \
	} while (0)

/* The worker the calling thread is, or NULL outside every pool. Initial-exec TLS: one load off
 * the thread pointer instead of a __tls_get_addr() call per access from the shared library. */
#define TP__TLS _Thread_local __attribute__((tls_model("initial-exec")))
extern TP__TLS struct tp__worker *tp__self;

/* Pauses of a joiner whose task a thief runs, with nothing to steal back, before it yields. */
#define TP__JOIN_SPINS 256

/*
 * A joiner whose task a thief runs (frame.c, tstack.c) found nothing to steal back: one pause,
 * and every TP__JOIN_SPINS of them a yield, to let the thief run if it shares our CPU
 * (docs/machine.md: the scheduler). *spins counts the pauses since the last steal or yield.
 */
static inline void tp__join_pause(int *spins)
{
	if (++*spins < TP__JOIN_SPINS) {
		tp__cpu_relax();
	} else {
		sched_yield();
		*spins = 0;
	}
}
/* The tasks the calling thread is running, innermost first (future.h); NULL when none. */
extern TP__TLS struct tp__running *tp__running_top;

/* worker.c */
void *tp__worker_main(void *arg);
/*
 * Runs an item taken from a queue: a frame (tp_spawn), or a record (tp_enqueue), which in CANCEL
 * mode is cancelled instead, and retired either way.
 */
void tp__worker_run_item(struct tp__worker *w, void *item);
/*
 * Answers a thief's request: publishes the private part of w's deque and wakes a parked worker
 * if there is one. Call it when tp__deque_requested() and the private part is not empty.
 */
void tp__worker_publish(struct tp__worker *w);
/* A worker waits for f while running other tasks; returns when f is final or at the deadline. */
int tp__worker_help(struct tp__worker *w, struct tp_future *f, const struct timespec *deadline);

/* pool.c: in the child of a fork(), makes an inherited pool a shut-down one (fork.c). */
void tp__pool_after_fork(tp_pool *pool);

/* pool.c: a worker has returned from on_thread_start (tp_pool_create_ex waits for all). */
void tp__pool_started(tp_pool *pool);

/* pool.c: a detached task returned `code` != 0: the error handler, or a WARNING line. */
void tp__pool_task_failed(tp_pool *pool, tp_task_fn fn, void *arg, int code);

/* How often a worker parked while a record is handed out (and a shutdown or an idle waiter
 * waits for it), or an idle waiter that sees one out, looks again: the record comes back
 * without a wake-up (future.h). */
#define TP__HANDED_RECHECK_NS (1000 * 1000)

/* worker.c: the absolute CLOCK_MONOTONIC time `ns` from now, in *out; returns out. */
const struct timespec *tp__deadline_in(long ns, struct timespec *out);
/* worker.c: the earlier of `deadline` (NULL: none) and `ns` from now (in *out); returns it. */
const struct timespec *tp__deadline_within(const struct timespec *deadline, long ns,
					   struct timespec *out);

/* worker.c: the quiescence check of pool.h (after a store-load fence). */
bool tp__pool_quiescent(tp_pool *pool);

/* idle.c: wakes the threads in tp_pool_wait_idle(); a worker that found the pool quiescent. */
void tp__pool_idle_wake(tp_pool *pool);

/* submit.c: allocates, initialises and submits n records (all or nothing); 0 or an errno.
 * group: the records' group, or NULL, or TP__DETACHED (then out may be NULL). */
int tp__submit(tp_pool *pool, tp_task_fn fn, void *const *args, size_t n, tp_drop_fn drop,
	       tp_group *group, struct tp_future **out);

/* The record cache of the calling thread for records of `pool`, or NULL. */
static inline struct tp__cache *tp__self_cache(const struct tp__home *home)
{
	struct tp__worker *w = tp__self;

	return w != NULL && w->pool->home == home ? &w->cache : NULL;
}

#endif /* TP_POOL_H */
