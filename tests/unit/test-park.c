/*
 * test-park.c - the parking protocol, deterministically, through fake ck_ec ops (the test seam),
 * then once with the real futex ops and real threads.
 */
#include <pthread.h>

#include "../common.h"
#include "park.h"

/* The fake ops count calls; wait32 can run a hook standing for a concurrent waker. */
static int fake_waits, fake_wakes;
static void (*fake_wait_hook)(void);

static int fake_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
	(void)ops;
	return clock_gettime(CLOCK_MONOTONIC, out);
}

static void fake_wait32(const struct ck_ec_wait_state *st, const uint32_t *addr, uint32_t expected,
			const struct timespec *deadline)
{
	(void)st;
	(void)addr;
	(void)expected;
	(void)deadline;
	fake_waits++;
	if (fake_wait_hook != NULL)
		fake_wait_hook();
}

static void fake_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
	(void)ops;
	(void)addr;
	fake_wakes++;
}

static const struct ck_ec_ops fake_ops = {
	.gettime = fake_gettime,
	.wait32 = fake_wait32,
	.wake32 = fake_wake32,
	.busy_loop_iter = 1,
};
static const struct ck_ec_mode fake_mode = { .ops = &fake_ops, .single_producer = false };

static struct tp__park park;

static int setup(void **state)
{
	(void)state;
	fake_waits = fake_wakes = 0;
	fake_wait_hook = NULL;
	return tp__park_init(&park, 130, &fake_mode);
}

static int teardown(void **state)
{
	(void)state;
	tp__park_destroy(&park);
	return 0;
}

static bool bit(size_t i)
{
	return (park.idle[i / 64] >> (i % 64)) & 1;
}

static void park_wake_without_sleepers_is_free(void **state)
{
	(void)state;
	assert_int_equal(tp__park_wake_one(&park, 3), TP__PARK_NONE);
	assert_int_equal(fake_wakes, 0);
	for (size_t w = 0; w < park.nwords; w++)
		assert_int_equal(park.idle[w], 0);
}

static void park_claimed_before_sleeping_needs_no_syscall(void **state)
{
	uint32_t before = ck_ec32_value(&park.parkers[5].ec);
	uint32_t snap = tp__park_prepare(&park, 5);
	size_t waker;

	(void)state;
	assert_true(bit(5));
	assert_int_equal(tp__park_wake_one(&park, 3), 5);
	assert_false(bit(5));
	assert_int_equal(ck_ec32_value(&park.parkers[5].ec), before + 1);
	/* Nobody slept: ck_ec skipped the futex wake. */
	assert_int_equal(fake_wakes, 0);
	/* The counter moved past snap: sleeping returns without waiting. */
	assert_true(tp__park_sleep(&park, 5, snap, NULL, &waker));
	assert_int_equal(waker, 3);
	assert_int_equal(fake_waits, 0);
}

static void park_cancel_withdraws_the_bit(void **state)
{
	(void)state;
	(void)tp__park_prepare(&park, 64);
	assert_true(bit(64));
	tp__park_cancel(&park, 64);
	assert_false(bit(64));
	assert_int_equal(tp__park_wake_one(&park, 3), TP__PARK_NONE);
}

static void wake_worker_7(void)
{
	/* A producer arrives while worker 7 sleeps: the waiter flag is set, so it wakes. */
	assert_int_equal(tp__park_wake_one(&park, 3), 7);
}

static void park_sleeper_is_woken_by_a_producer(void **state)
{
	uint32_t snap = tp__park_prepare(&park, 7);
	size_t waker;

	(void)state;
	fake_wait_hook = wake_worker_7;
	assert_true(tp__park_sleep(&park, 7, snap, NULL, &waker));
	assert_int_equal(waker, 3);
	assert_true(fake_waits >= 1);
	assert_int_equal(fake_wakes, 1);
	assert_false(bit(7));
}

static void park_wakes_exactly_one_of_many(void **state)
{
	size_t ids[] = { 0, 63, 64, 129 };
	int set = 4;

	(void)state;
	for (size_t k = 0; k < 4; k++)
		(void)tp__park_prepare(&park, ids[k]);
	while (set > 0) {
		size_t woken = tp__park_wake_one(&park, 3);
		int now = 0;

		assert_true(woken == 0 || woken == 63 || woken == 64 || woken == 129);
		assert_false(bit(woken));
		for (size_t k = 0; k < 4; k++)
			now += bit(ids[k]);
		assert_int_equal(now, set - 1);
		set = now;
	}
	assert_int_equal(tp__park_wake_one(&park, 3), TP__PARK_NONE);
}

static void park_wake_all_moves_every_counter(void **state)
{
	(void)state;
	(void)tp__park_prepare(&park, 3);
	tp__park_wake_all(&park);
	assert_false(bit(3));
	for (size_t i = 0; i < park.n; i++)
		assert_int_equal(ck_ec32_value(&park.parkers[i].ec), 1);
}

/* Real futex ops: a thread parks for real and a producer wakes it. */
static struct tp__park real;
static long real_woken;

static void *real_sleeper(void *arg)
{
	(void)arg;
	for (;;) {
		uint32_t snap = tp__park_prepare(&real, 1);
		size_t waker;

		if (test_load(&real_woken) == 1) { /* the "work" is visible: do not sleep */
			tp__park_cancel(&real, 1);
			break;
		}
		(void)tp__park_sleep(&real, 1, snap, NULL, &waker);
	}
	test_store(&real_woken, 2);
	return NULL;
}

static void park_real_futex_round_trip(void **state)
{
	pthread_t t;

	(void)state;
	assert_int_equal(tp__park_init(&real, 2, NULL), 0);
	for (int iter = 0; iter < 200; iter++) {
		test_store(&real_woken, 0);
		assert_int_equal(pthread_create(&t, NULL, real_sleeper, NULL), 0);
		if (iter % 2)
			test_sleep_us(iter % 7 * 100);
		/* Publish the work, then wake: the sleeper must see it either way. */
		test_store(&real_woken, 1);
		(void)tp__park_wake_one(&real, 0);
		pthread_join(t, NULL);
		assert_int_equal(test_load(&real_woken), 2);
	}
	tp__park_destroy(&real);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(park_wake_without_sleepers_is_free, setup,
						teardown),
		cmocka_unit_test_setup_teardown(park_claimed_before_sleeping_needs_no_syscall,
						setup, teardown),
		cmocka_unit_test_setup_teardown(park_cancel_withdraws_the_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(park_sleeper_is_woken_by_a_producer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(park_wakes_exactly_one_of_many, setup, teardown),
		cmocka_unit_test_setup_teardown(park_wake_all_moves_every_counter, setup, teardown),
		cmocka_unit_test(park_real_futex_round_trip),
	};

	test_watchdog(55);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
