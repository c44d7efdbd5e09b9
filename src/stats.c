/*
 * stats.c - tp_pool_stats: reading the workers' own counters (pool.h, struct tp__counters).
 *
 * Every counter has one writer, its worker, which stores the incremented value (relaxed): the
 * hot paths pay one store to a line they own. Reading them here races with those stores
 * harmlessly: each load returns a value the counter had during the call.
 */
#include <errno.h>
#include <string.h>

#include "pool.h"

/* a - b, or 0 if the counts read at different moments make it negative. */
static uint64_t sub(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static void add(tp_worker_stats *sum, const tp_worker_stats *s)
{
	sum->tasks += s->tasks;
	sum->forks += s->forks;
	sum->steals += s->steals;
	sum->steal_fails += s->steal_fails;
	sum->injected += s->injected;
	sum->parks += s->parks;
	sum->wakeups += s->wakeups;
}

static void read_worker(const struct tp__worker *w, tp_worker_stats *s)
{
	const struct tp__counters *c = &w->counters;

	memset(s, 0, sizeof(*s));
	s->tasks = tp__load_rlx_u64(&c->tasks);
	s->forks = tp__load_rlx_u64(&w->spawned);
	s->steals = tp__load_rlx_u64(&c->steals);
	s->steal_fails = tp__load_rlx_u64(&c->steal_fails);
	s->injected = tp__load_rlx_u64(&c->injected);
	s->parks = tp__load_rlx_u64(&c->parks);
	s->wakeups = tp__load_rlx_u64(&c->wakeups);
}

int tp_pool_stats(const tp_pool *pool, tp_stats *out)
{
	uint64_t finished = 0, created, started = 0, cancelled = 0, reclaimed = 0;
	uint64_t alive, on_workers, claimed_out;
	size_t room;

	if (pool == NULL || out == NULL)
		return EINVAL;
	room = out->per_worker != NULL ? out->per_worker_len : 0;
	out->workers = pool->n;
	memset(&out->total, 0, sizeof(out->total));
	for (size_t i = 0; i < pool->n; i++) {
		tp_worker_stats s;

		read_worker(&pool->workers[i], &s);
		add(&out->total, &s);
		if (i < room)
			out->per_worker[i] = s;
	}
	out->per_worker_len = room < pool->n ? room : pool->n;
	/*
	 * Alive records, as the quiescence check counts them (finished first: never negative).
	 * finished counts the retired ones: those a worker ran, once they returned, and those it
	 * retired unstarted (cancelled, or run by tp_future_wait_nohelp()). Of the alive ones,
	 * some run on a worker (started, not yet retired), some were claimed by
	 * tp_future_wait_nohelp() (running on its thread, or done and not yet retired); the rest
	 * are queued, cancelled ones included until a worker takes them off. Each count is read
	 * once, so a record that moves during the call may be counted in two places or none.
	 */
	for (size_t i = 0; i < pool->n; i++) {
		const struct tp__counters *c = &pool->workers[i].counters;

		finished += tp__load_acq_u64(&pool->workers[i].finished);
		cancelled += tp__load_rlx_u64(&c->cancelled);
		reclaimed += tp__load_rlx_u64(&c->reclaimed);
	}
	created = tp__load_acq_u64(&pool->gate) / TP__GATE_ONE;
	for (size_t i = 0; i < pool->n; i++) {
		created += tp__load_acq_u64(&pool->workers[i].spawned);
		started += tp__load_rlx_u64(&pool->workers[i].counters.tasks);
	}
	alive = created - finished;
	on_workers = sub(started, finished - cancelled - reclaimed);
	claimed_out = sub(tp__load_rlx_u64(&pool->claims), reclaimed);
	out->running = on_workers;
	out->queued = sub(alive, on_workers + claimed_out);
	return 0;
}
