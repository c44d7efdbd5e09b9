/*
 * inject.c - the injection queue; see inject.h.
 */
#include "inject.h"

void tp__inject_init(struct tp__inject *q)
{
	__cds_wfcq_init(&q->head, &q->tail);
	q->lock = 0;
}

void tp__inject_push(struct tp__inject *q, struct tp_future *f)
{
	cds_wfcq_node_init(&f->node);
	tp__hb_release(f);
	(void)cds_wfcq_enqueue(&q->head, &q->tail, &f->node);
}

void tp__inject_push_many(struct tp__inject *q, struct tp_future **recs, size_t n)
{
	struct __cds_wfcq_head head;
	struct cds_wfcq_tail tail;

	/* A private queue first (no other thread sees it), then one splice into the shared one. */
	__cds_wfcq_init(&head, &tail);
	for (size_t i = 0; i < n; i++) {
		cds_wfcq_node_init(&recs[i]->node);
		tp__hb_release(recs[i]);
		(void)cds_wfcq_enqueue(&head, &tail, &recs[i]->node);
	}
	(void)__cds_wfcq_splice_blocking(&q->head, &q->tail, &head, &tail);
}

size_t tp__inject_take(struct tp__inject *q, struct tp_future **out, size_t max)
{
	size_t n = 0;

	if (cds_wfcq_empty(&q->head, &q->tail))
		return 0;
	/* seq_cst exchange (acquire): pairs with the releasing store below of the previous holder,
	 * which finished its dequeues before. */
	if (tp__fas_u32(&q->lock, 1) != 0)
		return 0;
	while (n < max) {
		struct cds_wfcq_node *node = __cds_wfcq_dequeue_nonblocking(&q->head, &q->tail);

		if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
			break;
		out[n] = caa_container_of(node, struct tp_future, node);
		tp__hb_acquire(out[n]);
		n++;
	}
	/* (our dequeues) before (the unlocking store), release. */
	tp__store_rel_u32(&q->lock, 0);
	return n;
}

bool tp__inject_nonempty(struct tp__inject *q)
{
	return !cds_wfcq_empty(&q->head, &q->tail);
}
