/*
 * inject.h - the injection queue: tasks submitted from outside the pool.
 *
 * Overview
 *   liburcu's wait-free concurrent queue (urcu/wfcqueue.h): any number of submitters enqueue with
 *   one exchange and one store, without registration or locks. Dequeuing needs mutual exclusion
 *   among consumers: workers take a try-lock and, if another worker holds it, go steal instead,
 *   so no worker ever waits on it. A worker moves a batch into its own deque, where idle workers
 *   can steal it: work never strands behind a busy worker.
 *
 *   An enqueuer between its exchange and its store leaves the queue non-empty but not yet
 *   dequeuable (CDS_WFCQ_WOULDBLOCK). tp__inject_nonempty() reports such a queue as non-empty,
 *   so a worker does not go to sleep on it; the enqueuer wakes a sleeper after it finished anyway.
 *
 *   liburcu is built without ThreadSanitizer: the records carry their happens-before edge through
 *   tp__hb_release()/tp__hb_acquire() (no-ops in other builds).
 */
#ifndef TP_INJECT_H
#define TP_INJECT_H

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <urcu/wfcqueue.h>

#include "deque.h"
#include "future.h"

struct tp__inject {
	alignas(TP__CACHE_LINE) struct __cds_wfcq_head head; /* consumers, under `lock` */
	uint32_t lock;
	alignas(TP__CACHE_LINE) struct cds_wfcq_tail tail; /* submitters */
};

void tp__inject_init(struct tp__inject *q);

/* Any thread, wait-free. The exchange inside is a full barrier. */
void tp__inject_push(struct tp__inject *q, struct tp_future *f);

/* Any thread, wait-free: n records in order, with one exchange of the shared tail (a splice). */
void tp__inject_push_many(struct tp__inject *q, struct tp_future **recs, size_t n);

/*
 * A worker: dequeues up to `max` records into out[] in FIFO order and returns how many. 0 when
 * empty, when another worker holds the consumer lock, or when the head is mid-append.
 */
size_t tp__inject_take(struct tp__inject *q, struct tp_future **out, size_t max);

/* True if the queue may hold a record (also mid-append). */
bool tp__inject_nonempty(struct tp__inject *q);

#endif /* TP_INJECT_H */
