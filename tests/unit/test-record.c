/*
 * test-record.c - the task record's state word, white-box (linked with the internal library):
 * the reference count's bound. The word (future.h) holds the status in bits 0-2, WAITERS in bit 3
 * and the reference count in bits 4-31, so at most 2^28 - 1 references fit; tp_future_retain()
 * must refuse one more (NULL, errno EOVERFLOW) and leave the word as it was, rather than wrap the
 * count into the status bits' neighbour and free a record still in use.
 *
 * The test holds a task in RUNNING with a gate, so that nobody else touches the word, sets the
 * count near its maximum directly, records what retain does, restores the count, and only then
 * asserts (the pool must finish whatever the asserts say).
 */
#include <pthread.h>

#include "../common.h"
#include "future.h"

#define REF_MAX ((UINT32_C(1) << (32 - TP__REF_SHIFT)) - 1)

struct gate {
	long started;
	long open;
};

static int gate_task(void *arg)
{
	struct gate *g = arg;

	test_store(&g->started, 1);
	while (test_load(&g->open) == 0)
		test_sleep_us(100);
	return 0;
}

static uint32_t word_load(const tp_future *f)
{
	return __atomic_load_n(&f->word, __ATOMIC_SEQ_CST);
}

/* Replaces the reference count, keeping the status and WAITERS bits. */
static void refs_set(tp_future *f, uint32_t refs)
{
	uint32_t v = word_load(f);

	while (!__atomic_compare_exchange_n(
		&f->word, &v, (v & (TP__ST_MASK | TP__WAITERS)) | refs << TP__REF_SHIFT, false,
		__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
}

static uint32_t refs_of(uint32_t word)
{
	return word >> TP__REF_SHIFT;
}

static void record_retain_at_max_refs_eoverflow(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct gate g = { 0, 0 };
	tp_future *f = tp_enqueue(pool, gate_task, &g);
	tp_future *got_max, *got_below;
	uint32_t refs_before, before, after_max, after_below;
	int errno_max;

	(void)state;
	assert_non_null(f);
	assert_true(test_await(&g.started, 10000));
	before = word_load(f);
	refs_before = refs_of(before); /* the caller's and the runtime's */

	/* At the maximum: refused, nothing changed. */
	refs_set(f, REF_MAX);
	errno = 0;
	got_max = tp_future_retain(f);
	errno_max = errno;
	after_max = word_load(f);

	/* One below: accepted, now at the maximum; the extra reference is dropped again. */
	refs_set(f, REF_MAX - 1);
	got_below = tp_future_retain(f);
	after_below = word_load(f);

	/* Restore, whatever happened, then let the task finish. */
	refs_set(f, refs_before);
	test_store(&g.open, 1);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	tp_pool_destroy(pool);

	assert_int_equal(refs_before, 2);
	assert_int_equal(before & TP__ST_MASK, TP_FUTURE_RUNNING);
	assert_null(got_max);
	assert_int_equal(errno_max, EOVERFLOW);
	assert_int_equal(after_max & TP__ST_MASK, TP_FUTURE_RUNNING);
	assert_int_equal(refs_of(after_max), REF_MAX);
	assert_ptr_equal(got_below, f);
	assert_int_equal(after_below & TP__ST_MASK, TP_FUTURE_RUNNING);
	assert_int_equal(refs_of(after_below), REF_MAX);
}

/* Retain and release in the ordinary range: each retain adds one, each release drops one. */
static void record_retain_counts_one_each(void **state)
{
	tp_pool *pool = test_pool_new(1);
	struct gate g = { 0, 0 };
	tp_future *f = tp_enqueue(pool, gate_task, &g);
	uint32_t r0, r1, r2;

	(void)state;
	assert_non_null(f);
	assert_true(test_await(&g.started, 10000));
	r0 = refs_of(word_load(f));
	assert_ptr_equal(tp_future_retain(f), f);
	r1 = refs_of(word_load(f));
	tp_future_release(f);
	r2 = refs_of(word_load(f));
	test_store(&g.open, 1);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	tp_pool_destroy(pool);
	assert_int_equal(r1, r0 + 1);
	assert_int_equal(r2, r0);
	/* NULL: NULL (and no crash). */
	assert_null(tp_future_retain(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(record_retain_at_max_refs_eoverflow),
		cmocka_unit_test(record_retain_counts_one_each),
	};

	test_watchdog(55);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
