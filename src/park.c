/*
 * park.c - parking and waking workers on per-worker ck_ec32 eventcounts.
 * The protocol and its invariants are described at the top of park.h.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "futex.h"
#include "park.h"

static int futex_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return clock_gettime(CLOCK_MONOTONIC, out);
}

/* What tp__park_sleep hands to futex_wait32 through ck_ec's wait state: its own deadline. */
struct park_until {
	const struct timespec *deadline; /* NULL: none */
};

/*
 * ck_ec sleeps in rounds with growing timeouts for its first second ("exponential backoff"),
 * because a single-producer increment is not atomic and may overwrite the waiter flag that the
 * sleeper has just set. Our increments are atomic read-modify-writes (single_producer is false):
 * once ck_ec has flagged the counter, which it does before it first sleeps, every later
 * increment sees the flag and wakes us. So the rounds' timeouts would only wake an idle worker
 * for nothing (16 workers: 48 wake-ups in their first idle second): sleep until the caller's
 * own deadline instead. Any return is fine: ck_ec re-checks the counter and the deadline.
 */
static void futex_wait32(const struct ck_ec_wait_state *state, const uint32_t *addr,
			 uint32_t expected, const struct timespec *partial_deadline)
{
	const struct park_until *until = state->data;

	(void)tp__futex_wait(addr, expected, until != NULL ? until->deadline : partial_deadline);
}

static void futex_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
	(void)ops;
	tp__futex_wake_all(addr);
}

static const struct ck_ec_ops futex_ops = {
	.gettime = futex_gettime,
	.wait32 = futex_wait32,
	.wake32 = futex_wake32,
	/*
	 * Spin little before sleeping: on this kind of guest a woken thread lands on the waker's
	 * CPU, so spinning keeps the CPU from whoever we could be waiting for (docs/machine.md).
	 * The backoff's timeouts are not used (futex_wait32); should another caller's wait use
	 * them, they start at 100 ms.
	 */
	.busy_loop_iter = 1,
	.initial_wait_ns = 100 * 1000 * 1000,
	.wait_scale_factor = 8,
	.wait_shift_count = 0,
};

/* Many producers (every submitter and worker) increment a worker's eventcount. */
const struct ck_ec_mode tp__park_futex_mode = {
	.ops = &futex_ops,
	.single_producer = false,
};

int tp__park_init(struct tp__park *p, size_t n, const struct ck_ec_mode *mode)
{
	memset(p, 0, sizeof(*p));
	p->n = n;
	p->nwords = (n + 63) / 64;
	p->mode = mode != NULL ? mode : &tp__park_futex_mode;
	p->idle = calloc(p->nwords, sizeof(p->idle[0]));
	p->parkers = aligned_alloc(TP__CACHE_LINE, n * sizeof(p->parkers[0]));
	if (p->idle == NULL || p->parkers == NULL) {
		tp__park_destroy(p);
		return ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		ck_ec32_init(&p->parkers[i].ec, 0);
		p->parkers[i].waker_cpu = 0;
		p->parkers[i].waker = 0;
		p->parkers[i].pinned = false;
	}
	return 0;
}

void tp__park_destroy(struct tp__park *p)
{
	free(p->idle);
	free(p->parkers);
	p->idle = NULL;
	p->parkers = NULL;
}

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

void tp__park_cancel(struct tp__park *p, size_t i)
{
	tp__and_u64(&p->idle[i / 64], ~(UINT64_C(1) << (i % 64)));
}

/* Leaves `cpu` if we run on it: an affinity mask without it, then the old mask back (which does
 * not move us again). Nothing happens if `cpu` is the only one allowed. */
static void move_off_cpu(int cpu)
{
	cpu_set_t mask, others;

	if (sched_getcpu() != cpu || sched_getaffinity(0, sizeof(mask), &mask) != 0)
		return;
	others = mask;
	CPU_CLR(cpu, &others);
	if (CPU_COUNT(&others) > 0 && sched_setaffinity(0, sizeof(others), &others) == 0)
		(void)sched_setaffinity(0, sizeof(mask), &mask);
}

bool tp__park_sleep(struct tp__park *p, size_t i, uint32_t snap, const struct timespec *deadline,
		    size_t *waker)
{
	struct park_until until = { deadline };
	uint32_t waker_cpu, by;
	/* Returns at once if the counter already moved past snap (a waker claimed us). No
	 * predicate: the wait state carries our deadline to futex_wait32. */
	bool woken =
		ck_ec32_wait_pred(&p->parkers[i].ec, p->mode, snap, NULL, &until, deadline) == 0;

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

size_t tp__park_wake_one(struct tp__park *p, size_t waker)
{
	/* (the caller's publication of work) before (loads of the bits), store-load: pairs with the
	 * fence in tp__park_prepare(). */
	tp__fence_sc();
	return wake_one(p, waker);
}

size_t tp__park_wake_one_after_barrier(struct tp__park *p)
{
	return wake_one(p, TP__PARK_NONE);
}

void tp__park_wake_all(struct tp__park *p)
{
	for (size_t w = 0; w < p->nwords; w++)
		(void)tp__fas_u64(&p->idle[w], 0);
	for (size_t i = 0; i < p->n; i++)
		ck_ec32_inc(&p->parkers[i].ec, p->mode);
}
