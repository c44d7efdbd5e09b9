/*
 * tstack.c - the task stacks of typed tasks: set-up, and the slow paths of thread_pool_task.h's
 * spawn and join. The protocol and its invariants are described at the top of tstack.h.
 *
 * A spawn comes here only when a thief asked for work: it publishes half of the private part and
 * wakes a parked worker. A join comes here when a thief asked (publish, then run the slot
 * inline), or when its slot is in the shared part: it takes back half of that part, or, if a
 * thief took the slot, runs that thief's published tasks until it stores DONE (leapfrogging:
 * they descend from the joined task, or from the next one that thief took after it).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "pool.h"
#include "tstack.h"

/* The smallest stack we accept when the system refuses TP_TASK_SLOTS slots of address space. */
#define MIN_SLOTS 4096

int tp__tstack_init(struct tp__tstack *q, struct tp__worker *worker)
{
	size_t n = TP_TASK_SLOTS;
	void *p = MAP_FAILED;

	/* Address space only: the kernel gives a page (zeroed: every slot EMPTY) when it is first
	 * written, so an unused stack costs no memory. */
	for (; n >= MIN_SLOTS; n /= 2) {
		p = mmap(NULL, n * sizeof(struct tp__slot), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED)
			break;
	}
	if (p == MAP_FAILED)
		return ENOMEM;
	q->base = p;
	q->end = q->base + n;
	q->split = q->base;
	q->worker = worker;
	/* Before any thief can see the stack (the worker threads start later): relaxed. */
	tp__store_rlx_u64(&q->ts, tp__tstack_word(0, 0));
	tp__store_rlx_u32(&q->request, 0);
	return 0;
}

void tp__tstack_destroy(struct tp__tstack *q)
{
	if (q->base != NULL)
		munmap(q->base, (size_t)(q->end - q->base) * sizeof(struct tp__slot));
	q->base = q->end = q->split = NULL;
}

void tp__task_overflow(struct tp__tstack *q)
{
	fprintf(stderr,
		"thread_pool: task stack overflow: %zu typed tasks spawned and not joined on one "
		"worker (thread_pool_task.h)\n",
		(size_t)(q->end - q->base));
	abort();
}

/* Publishes below `top` (an index) and, if that made work stealable, wakes a parked worker. */
static void publish(struct tp__tstack *q, uint32_t top)
{
	struct tp__worker *w = q->worker;

	if (tp__tstack_publish(q, top))
		/* (publishing CAS) before (loads of the idle bitmap): the CAS is seq_cst, and
		 * tp__park_wake_one() fences again; see tp__worker_publish. */
		(void)tp__park_wake_one(&w->pool->park, w->index);
}

void tp__task_spawned_slow(struct tp__tstack *q, struct tp__slot *slot)
{
	publish(q, tp__tstack_index(q, slot) + 1);
}

void tp__tstack_run_stolen(struct tp__tstack *q, struct tp__slot *slot, struct tp__slot *head)
{
	/* (store of thief) release: the joiner that reads it steals from our stack. */
	tp__store_rel_u64(&slot->h.thief, (uint64_t)(uintptr_t)q);
	slot->h.run(q, head, slot);
	/* (store of the result) before (store of DONE), release: pairs with the joiner's acquire
	 * load. Our last access to the slot. */
	tp__store_rel_u64(&slot->h.thief, TP__SLOT_DONE);
}

/* Slot p was stolen: run its thief's published tasks, above p, until the thief is done. */
static void leapfrog(struct tp__tstack *q, struct tp__slot *p)
{
	struct tp__worker *w = q->worker;
	int spins = 0;
	uint64_t v;

	/* acquire: pairs with the thief's release store of DONE (and of the result). */
	while ((v = tp__load_acq_u64(&p->h.thief)) != TP__SLOT_DONE) {
		struct tp__slot *stolen;

		/* SPAWNED: the thief won the slot and has not said who it is yet. */
		if (v != TP__SLOT_SPAWNED &&
		    tp__tstack_steal((struct tp__tstack *)(uintptr_t)v, &stolen) == TP__TSTEAL_OK) {
			struct tp__tstack *thief = (struct tp__tstack *)(uintptr_t)v;

			TP__COUNT(w, steals);
			TP__TRACE_FLOW(w, TP__EV_STEAL, thief->worker->index);
			tp__tstack_run_stolen(q, stolen, p + 1);
			spins = 0;
			continue;
		}
		tp__join_pause(&spins);
	}
}

int tp__task_join_slow(struct tp__tstack *q, struct tp__slot *p)
{
	int stolen = 0;

	if (p >= q->split) {
		/* Private: only a request sent us here. */
		publish(q, tp__tstack_index(q, p));
	} else if (!tp__tstack_reclaim(q, p)) {
		leapfrog(q, p);
		tp__tstack_stolen_joined(q, p);
		stolen = 1;
	}
	tp__store_rlx_u64(&p->h.thief, TP__SLOT_EMPTY);
	return stolen;
}

/* TP_RUN from a thread that is not one of the pool's workers: a record that runs the task. */
struct run_request {
	struct tp__slot *slot;
	tp__slot_run_fn run;
};

static int run_record(void *arg)
{
	struct run_request *r = arg;
	struct tp__worker *w = tp__self;

	/* Its future is private to tp__task_run, which waits with tp_future_wait(): a worker of
	 * the pool runs it, never a thread outside. */
	assert(w != NULL);
	r->run(&w->tstack, tp__tstack_top(&w->tstack), r->slot);
	return 0;
}

int tp__task_run(tp_pool *pool, struct tp__slot *slot, tp__slot_run_fn run)
{
	struct tp__worker *w = tp__self;
	struct run_request r = { slot, run };
	tp_future *f;
	int err;

	if (pool == NULL)
		return EINVAL;
	if (w != NULL && w->pool == pool) {
		run(&w->tstack, tp__tstack_top(&w->tstack), slot);
		return 0;
	}
	f = tp_enqueue(pool, run_record, &r);
	if (f == NULL)
		return errno;
	err = tp_future_wait(f);
	tp_future_release(f);
	return err;
}
