/*
 * park.h - idle workers sleep on an eventcount, and a producer wakes at most one of them.
 *
 * Overview
 *   Each worker owns a ck_ec32 eventcount (Concurrency Kit), so a wake-up reaches one sleeper and
 *   never a herd. A bitmap says which workers are parked (or about to park) and not yet claimed by
 *   a waker. A producer that published work claims one set bit by CAS and increments that
 *   worker's eventcount; ck_ec makes the futex system call only if the worker really sleeps. With
 *   no bit set, a producer makes no system call at all: one fence and one load per 64 workers.
 *
 * The protocol (Dekker-style; both sides run a store-load fence)
 *   worker:   snap = value(ec); set bit; fence; re-check every work source; sleep(ec, snap)
 *   producer: publish work; fence; load bits; if a bit is set: clear it by CAS, increment its ec
 *   Either the worker's re-check sees the work, or the producer sees the bit. If the producer's
 *   increment lands between the worker's re-check and its sleep, ck_ec_wait returns at once, as
 *   the counter no longer equals snap. Spurious wake-ups are OK: the worker looks for work again.
 *
 * The ck_ec ops (futex wait/wake, the clock) are the test seam: the unit test passes fake ones.
 */
#ifndef TP_PARK_H
#define TP_PARK_H

#include <ck_ec.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deque.h"

struct tp__parker {
	alignas(TP__CACHE_LINE) struct ck_ec32 ec;
	uint32_t waker_cpu; /* 0, or 1 + the CPU of the worker that last woke this one */
	uint32_t waker;	    /* 0, or 1 + the index of that worker (for traces) */
	bool pinned;	    /* set before the workers start: never move this worker */
};

struct tp__park {
	size_t n;		       /* number of workers */
	size_t nwords;		       /* (n + 63) / 64 */
	const struct ck_ec_mode *mode; /* futex ops, or fake ones in tests */
	uint64_t *idle;		       /* shared: bit i: worker i parked or parking */
	struct tp__parker *parkers;    /* [n], one cache line each */
};

/* The real ops: futex on CLOCK_MONOTONIC. */
extern const struct ck_ec_mode tp__park_futex_mode;

/* 0 or ENOMEM. mode NULL means tp__park_futex_mode. */
int tp__park_init(struct tp__park *p, size_t n, const struct ck_ec_mode *mode);
void tp__park_destroy(struct tp__park *p);

/*
 * Worker i announces it is about to park: returns the eventcount snapshot to sleep on. After it,
 * the worker must re-check every source of work, then call tp__park_sleep() or tp__park_cancel().
 * Ends with a store-load fence (pairs with the producer's in tp__park_wake_one()).
 */
uint32_t tp__park_prepare(struct tp__park *p, size_t i);

/* Worker i found work after tp__park_prepare(): withdraws its bit. */
void tp__park_cancel(struct tp__park *p, size_t i);

/* What the wake-ups return when they found no sleeper to claim, and a waker outside the pool. */
#define TP__PARK_NONE SIZE_MAX

/*
 * Worker i sleeps until its eventcount moves past `snap` (or spuriously), or until the absolute
 * CLOCK_MONOTONIC deadline (NULL: none), then withdraws its bit. Returns at once if a producer
 * already woke it. True if it was woken (the counter moved), false at the deadline; *waker is
 * then the index of the worker that woke it, or TP__PARK_NONE.
 */
bool tp__park_sleep(struct tp__park *p, size_t i, uint32_t snap, const struct timespec *deadline,
		    size_t *waker);

/*
 * Worker `waker` has just published work: wakes one parked worker, if any. Returns the index of
 * the worker it claimed, or TP__PARK_NONE. Starts with a store-load fence (pairs with the one in tp__park_prepare()), so the
 * caller need not fence after publishing. It leaves its CPU with the sleeper: on this kind of
 * guest a woken thread lands on its waker's CPU even when another is idle (docs/machine.md), where two
 * busy workers would share one CPU for a balancing interval (milliseconds); the sleeper moves off
 * that CPU when it wakes there.
 */
size_t tp__park_wake_one(struct tp__park *p, size_t waker);

/*
 * As tp__park_wake_one(), for a submitter outside the pool (no CPU hint: it is about to wait, so
 * sharing its CPU is the fast hand-off), whose publication was itself a full barrier (a seq_cst
 * read-modify-write, or liburcu's uatomic_xchg inside cds_wfcq_enqueue, documented as "a full
 * memory barrier before and after"), which orders it before the loads of the bits.
 */
size_t tp__park_wake_one_after_barrier(struct tp__park *p);

/* Wakes every worker (shutdown): each eventcount is incremented, sleeping or not. */
void tp__park_wake_all(struct tp__park *p);

#endif /* TP_PARK_H */
