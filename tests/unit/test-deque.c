/*
 * test-deque.c - the Chase-Lev deque alone: owner LIFO, thieves FIFO, growth, the owner's private
 * push and pop (the inline tp_spawn/tp_join's), and an owner racing thieves with every item taken
 * exactly once. tests/model checks the same code under a model checker.
 */
#include <pthread.h>

#include "../common.h"
#include "deque.h"

#define ITEM(i)	 ((void *)(uintptr_t)((i) + 1)) /* items are never NULL */
#define INDEX(p) ((long)(uintptr_t)(p)-1)

static void deque_owner_lifo(void **state)
{
	struct tp__deque q;

	(void)state;
	assert_int_equal(tp__deque_init(&q, 16), 0);
	assert_null(tp__deque_take(&q));
	for (long i = 0; i < 10; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	for (long i = 9; i >= 0; i--)
		assert_ptr_equal(tp__deque_take(&q), ITEM(i));
	assert_null(tp__deque_take(&q));
	tp__deque_destroy(&q);
}

static void deque_thief_fifo(void **state)
{
	struct tp__deque q;
	void *item;

	(void)state;
	assert_int_equal(tp__deque_init(&q, 16), 0);
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_EMPTY);
	for (long i = 0; i < 10; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	tp__deque_publish(&q);
	for (long i = 0; i < 10; i++) {
		assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
		assert_ptr_equal(item, ITEM(i));
	}
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_EMPTY);
	assert_null(tp__deque_take(&q));
	tp__deque_destroy(&q);
}

static void deque_mixed_ends(void **state)
{
	struct tp__deque q;
	void *item;

	(void)state;
	assert_int_equal(tp__deque_init(&q, 4), 0);
	for (long i = 0; i < 4; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	tp__deque_publish(&q);
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
	assert_ptr_equal(item, ITEM(0));
	assert_ptr_equal(tp__deque_take(&q), ITEM(3));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
	assert_ptr_equal(item, ITEM(1));
	/* The last item, taken by the owner through the CAS path. */
	assert_ptr_equal(tp__deque_take(&q), ITEM(2));
	assert_null(tp__deque_take(&q));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_EMPTY);
	tp__deque_destroy(&q);
}

static void deque_grows_and_keeps_order(void **state)
{
	struct tp__deque q;
	void *item;
	const long n = 100000;

	(void)state;
	assert_int_equal(tp__deque_init(&q, 2), 0);
	/* Wrap the ring first so growth copies a range that straddles the end. */
	for (long i = 0; i < 3; i++) {
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
		tp__deque_publish(&q);
		assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
	}
	for (long i = 0; i < n; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	tp__deque_publish(&q);
	assert_true(q.buf->mask + 1 >= (uint64_t)n);
	assert_non_null(q.retired);
	/* Oldest half by stealing, newest half by taking. */
	for (long i = 0; i < n / 2; i++) {
		assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
		assert_ptr_equal(item, ITEM(i));
	}
	for (long i = n - 1; i >= n / 2; i--)
		assert_ptr_equal(tp__deque_take(&q), ITEM(i));
	assert_null(tp__deque_take(&q));
	tp__deque_destroy(&q);
}

static void deque_private_part_is_invisible_until_published(void **state)
{
	struct tp__deque q;
	void *item;

	(void)state;
	assert_int_equal(tp__deque_init(&q, 8), 0);
	for (long i = 0; i < 4; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	/* A thief sees nothing and asks for work. */
	assert_false(tp__deque_requested(&q));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_EMPTY);
	assert_true(tp__deque_requested(&q));
	assert_false(tp__deque_looks_nonempty(&q));
	/* A private take leaves the request to the worker layer, which publishes the rest (and
	 * wakes a sleeper: worker.c); the deque itself never publishes. */
	assert_ptr_equal(tp__deque_take(&q), ITEM(3));
	assert_true(tp__deque_requested(&q));
	assert_true(tp__deque_has_private(&q));
	assert_false(tp__deque_looks_nonempty(&q));
	tp__deque_publish(&q);
	assert_false(tp__deque_requested(&q));
	assert_false(tp__deque_has_private(&q));
	assert_true(tp__deque_looks_nonempty(&q));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
	assert_ptr_equal(item, ITEM(0));
	/* Shared items come back to the owner through the fenced path. */
	assert_ptr_equal(tp__deque_take(&q), ITEM(2));
	assert_ptr_equal(tp__deque_take(&q), ITEM(1));
	assert_null(tp__deque_take(&q));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_EMPTY);
	/* Private and shared mixed: publish 2, keep 2 private. */
	for (long i = 10; i < 12; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	tp__deque_publish(&q);
	for (long i = 12; i < 14; i++)
		assert_int_equal(tp__deque_push(&q, ITEM(i)), 0);
	assert_ptr_equal(tp__deque_take(&q), ITEM(13));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
	assert_ptr_equal(item, ITEM(10));
	assert_ptr_equal(tp__deque_take(&q), ITEM(12));
	assert_ptr_equal(tp__deque_take(&q), ITEM(11));
	assert_null(tp__deque_take(&q));
	tp__deque_destroy(&q);
}

/* The owner end the inline tp_spawn()/tp_join() use: a private push until the ring looks full,
 * and a pop of the newest private item only if it is the one wanted. */
static void deque_private_push_and_pop_wanted(void **state)
{
	struct tp__deque q;
	void *item;

	(void)state;
	assert_int_equal(tp__deque_init(&q, 4), 0);
	assert_null(tp__deque_pop_private(&q, NULL));
	for (long i = 0; i < 4; i++)
		assert_true(tp__deque_push_private(&q, ITEM(i)));
	/* Full: the private push refuses; tp__deque_push grows the ring. */
	assert_false(tp__deque_push_private(&q, ITEM(4)));
	assert_int_equal(tp__deque_push(&q, ITEM(4)), 0);
	assert_true(q.buf->mask + 1 >= 8);
	/* Only the newest item, and only if it is the one wanted. */
	assert_null(tp__deque_pop_private(&q, ITEM(3)));
	assert_ptr_equal(tp__deque_pop_private(&q, ITEM(4)), ITEM(4));
	assert_ptr_equal(tp__deque_pop_private(&q, NULL), ITEM(3));
	/* Published items are not private any more: the pop leaves them to take and steal. */
	tp__deque_publish(&q);
	assert_null(tp__deque_pop_private(&q, NULL));
	assert_null(tp__deque_pop_private(&q, ITEM(2)));
	assert_int_equal(tp__deque_steal(&q, &item), TP__STEAL_OK);
	assert_ptr_equal(item, ITEM(0));
	assert_ptr_equal(tp__deque_take(&q), ITEM(2));
	assert_ptr_equal(tp__deque_take(&q), ITEM(1));
	assert_null(tp__deque_take(&q));
	tp__deque_destroy(&q);
}

/* Owner pushes and takes; thieves steal; every item must be taken exactly once. */
struct race {
	struct tp__deque q;
	long n;
	unsigned char *seen; /* written by whoever took the item; checked after the join */
	long owner_done;
	long duplicates;
	uint64_t seed;
};

static void mark(struct race *r, void *item)
{
	long i = INDEX(item);

	if (i < 0 || i >= r->n || __atomic_exchange_n(&r->seen[i], 1, __ATOMIC_RELAXED) != 0)
		test_inc(&r->duplicates);
}

static void *thief(void *arg)
{
	struct race *r = arg;
	uint64_t rng = r->seed ^ (uintptr_t)&rng;

	for (;;) {
		void *item;
		enum tp__steal_result s = tp__deque_steal(&r->q, &item);

		if (s == TP__STEAL_OK)
			mark(r, item);
		else if (s == TP__STEAL_EMPTY && test_load(&r->owner_done))
			break;
		if (test_rand(&rng) % 64 == 0)
			test_jitter(&rng);
	}
	return NULL;
}

static void run_race(long n, int thieves, uint64_t seed)
{
	struct race r = { .n = n, .seed = seed };
	pthread_t t[8];
	uint64_t rng = seed;
	long pushed = 0;

	r.seen = calloc((size_t)n, 1);
	assert_non_null(r.seen);
	assert_int_equal(tp__deque_init(&r.q, 8), 0); /* small: growth happens under the race */
	for (int i = 0; i < thieves; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thief, &r), 0);
	while (pushed < n) {
		/* Bursts of pushes, then some takes: the deque often holds one item, the case
		 * where the owner and a thief race for the same last item. */
		long burst = 1 + (long)(test_rand(&rng) % 8);

		for (long k = 0; k < burst && pushed < n; k++)
			assert_int_equal(tp__deque_push(&r.q, ITEM(pushed++)), 0);
		/* Publish at once half of the time, else only when a thief asks (as spawns do). */
		if (test_rand(&rng) % 2 == 0 || tp__deque_requested(&r.q))
			tp__deque_publish(&r.q);
		for (long k = (long)(test_rand(&rng) % 8); k > 0; k--) {
			void *item = tp__deque_take(&r.q);

			if (item == NULL)
				break;
			mark(&r, item);
		}
	}
	for (void *item; (item = tp__deque_take(&r.q)) != NULL;)
		mark(&r, item);
	test_store(&r.owner_done, 1);
	for (int i = 0; i < thieves; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.duplicates, 0);
	for (long i = 0; i < n; i++)
		if (!r.seen[i])
			fail_msg("item %ld was never taken", i);
	tp__deque_destroy(&r.q);
	free(r.seen);
}

static void deque_owner_and_thieves_take_each_item_once(void **state)
{
	(void)state;
	for (int iter = 0; iter < 20; iter++)
		run_race(test_scaled(50000), 1 + iter % 3, 0x1234u + (uint64_t)iter);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deque_owner_lifo),
		cmocka_unit_test(deque_thief_fifo),
		cmocka_unit_test(deque_mixed_ends),
		cmocka_unit_test(deque_grows_and_keeps_order),
		cmocka_unit_test(deque_private_part_is_invisible_until_published),
		cmocka_unit_test(deque_private_push_and_pop_wanted),
		cmocka_unit_test(deque_owner_and_thieves_take_each_item_once),
	};

	test_watchdog(110);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
