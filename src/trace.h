/*
 * trace.h - recording what the workers do, for tp_pool_trace_start() / tp_pool_trace_stop().
 *
 * Overview
 *   While a trace runs, pool->trace points to it, and each worker appends events (a task's or a
 *   stolen frame's span, a park's span, a steal, a wake-up it gave) to its own lane: chunks of
 *   events that only it writes, so recording adds no shared write. When no trace runs, each
 *   recording point costs the relaxed load of pool->trace and one branch that is never taken.
 *   The stop takes the lanes' chunks and writes the file (trace.c).
 *
 * The stop's handshake (Dekker-style; both sides run a store-load fence)
 *   worker:  busy = 1 (exchange); fence; t = trace; if t: append to its lane; busy = 0 (release)
 *   stopper: trace = NULL (exchange); fence; wait until every worker's busy reads 0; take lanes
 *   Either the worker sees NULL and appends nothing, or the stopper sees busy = 1 and waits for
 *   the append to end (release: the append happens before the stopper reads the lane). A lane is
 *   emptied by the stopper, and the next start publishes its trace after that (release), so a
 *   worker that sees the new trace sees its lane empty.
 */
#ifndef TP_TRACE_H
#define TP_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "atomics.h"

enum tp__trace_kind {
	TP__EV_TASK = 1,  /* a record's task ran: [t0, t1], fn */
	TP__EV_FRAME = 2, /* a frame taken from a queue ran: [t0, t1], fn */
	TP__EV_PARK = 3,  /* the worker slept: [t0, t1] */
	TP__EV_STEAL = 4, /* at t0 the worker stole from worker `peer` */
	TP__EV_WAKE = 5	  /* at t0 the worker was woken by worker `peer` */
};

struct tp__trace_event {
	uint64_t t0, t1; /* CLOCK_MONOTONIC, ns */
	const void *fn;	 /* the task's function (a span of a task or frame) */
	uint32_t kind;	 /* enum tp__trace_kind */
	uint32_t peer;	 /* the other worker of a steal or wake-up */
};

#define TP__TRACE_CHUNK 1024

struct tp__trace_chunk {
	struct tp__trace_chunk *next;
	size_t n;
	struct tp__trace_event ev[TP__TRACE_CHUNK];
};

/* A worker's lane: its owner appends, the stopper takes it (see the handshake above). */
struct tp__trace_lane {
	uint32_t busy; /* 1 while its owner appends */
	struct tp__trace_chunk *head, *tail;
	uint64_t events;  /* appended to this trace */
	uint64_t dropped; /* not appended: the lane was full, or a chunk could not be allocated */
};

/* A running trace (trace.c). */
struct tp__trace {
	char *path;
	uint64_t start_ns;
	uint64_t max_events; /* per lane */
};

struct tp__worker;

/* Now, in ns of CLOCK_MONOTONIC. */
static inline uint64_t tp__trace_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* True while a trace of this pool (a `struct tp__trace *const *`) may run: the cheap check. */
#define TP__TRACING(trace_field) __builtin_expect(tp__load_rlx_ptr(TP__PTR(trace_field)) != NULL, 0)

/* The start of a span: now if a trace runs, else 0 (no span will be recorded). */
#define TP__TRACE_BEGIN(pool) (TP__TRACING(&(pool)->trace) ? tp__trace_now() : 0)

/* Appends one event to w's lane if a trace still runs (t1 is taken here for spans). */
void tp__trace_record(struct tp__worker *w, enum tp__trace_kind kind, const void *fn, uint64_t t0,
		      uint32_t peer);

/* Ends a span begun with TP__TRACE_BEGIN (nothing if it began untraced). */
#define TP__TRACE_SPAN(w, kind, fn, t0)                                                            \
	do {                                                                                       \
		if (__builtin_expect((t0) != 0, 0))                                                \
			tp__trace_record((w), (kind), (fn), (t0), 0);                              \
	} while (0)

/* Records a steal or a wake-up involving worker `peer`. */
#define TP__TRACE_FLOW(w, kind, peer)                                                              \
	do {                                                                                       \
		if (TP__TRACING(&(w)->pool->trace))                                                \
			tp__trace_record((w), (kind), NULL, tp__trace_now(), (uint32_t)(peer));    \
	} while (0)

/* In a fork() child: drops the lanes' chunks without writing (pool.c). */
struct tp_pool;
void tp__trace_forget(struct tp_pool *pool);

/* Pool shutdown: stops a running trace and writes its file, logging a failure (pool.c). */
void tp__trace_finish(struct tp_pool *pool);

#endif /* TP_TRACE_H */
