/*
 * stress-wakeup.c - lost wake-ups: work published while the only other worker is parking must
 * reach it.
 *
 * On a pool of 2, one worker publishes a single item and then spins without helping (it never
 * looks at its own deque) until the item has started on the other worker. The other worker has
 * just finished the previous item, so it is somewhere between its last steal round and its futex
 * sleep; a random busy delay of 0-10 us before the publication (in half of the trials) spreads the
 * publications over that window. The parking protocol (park.h) promises that either the parking
 * worker's re-check sees the item or the publisher sees its idle bit and wakes it. A trial in which
 * the item has not started after 2 s is a lost wake-up (a loss): the publisher then runs the item
 * itself and goes on. Losses must be 0; a way that loses MAX_LOSSES stops early (it has failed).
 *
 * Three ways to publish:
 *  - a fork: tp_enqueue() from inside a task (published at once);
 *  - a frame: tp_spawn() once a thief has asked for work (the spawn publishes the private part
 *    because the split request is raised), then the frame is joined as it must be;
 *  - an injected batch: tp_enqueue_batch() of two tasks from outside the pool; the worker that
 *    takes the batch runs one and publishes the other, which must reach the second worker.
 *
 * Tiers: 100k trials per way by default (20k for the batch, whose trials are slower; about ten
 * seconds in all on 2 CPUs); TP_STRESS_LONG=1 runs 20x (2M each, 400k batches).
 * TP_STRESS_SCALE scales the counts (valgrind: 0.05). TP_STRESS_SEED fixes the seed, printed as a
 * TAP comment. The number of losses is printed as a TAP comment too.
 *
 * cmocka is not thread-safe: tasks only count; the test thread asserts after the waits.
 */
#include <pthread.h>

#include "../common.h"
#include "thread_pool.h"

/* How long a published item may wait for the other worker before the trial is a loss. */
#define LOSS_MS	   2000
/* A way stops after this many losses: it has failed, and each loss costs LOSS_MS. */
#define MAX_LOSSES 25

static uint64_t seed;

static long iters(long n)
{
	const char *l = getenv("TP_STRESS_LONG");

	return test_scaled(l != NULL && strcmp(l, "1") == 0 ? 20 * n : n);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Spins, without any call into the pool, until *flag != 0 or `ms` pass; true if it became set. */
static bool spin_until(const long *flag, long ms)
{
	double end = test_now_ms() + (double)ms;

	for (unsigned i = 0; test_load(flag) == 0; i++) {
		cpu_relax();
		if ((i & 255) == 0 && test_now_ms() > end)
			return false;
	}
	return true;
}

/* In half of the trials, a busy delay of 0-10 us (the other worker is then parking). */
static void maybe_delay(uint64_t *rng, long *delayed)
{
	uint64_t r = test_rand(rng);

	if (r & 1) {
		test_busy_ns((long)((r >> 1) % 10001));
		(*delayed)++;
	}
}

/* What one run of trials saw; filled by the driver, read by the test thread after its wait. */
struct wake_run {
	tp_pool *pool;
	long trials;
	uint64_t seed;
	pthread_t driver; /* the thread that publishes */
	/* Per trial, reset by the driver (atomics). */
	long started;
	long done;
	long lost_now;	/* the driver gave up waiting and runs the item itself */
	long on_driver; /* the item started on the driver's thread in a trial not lost */
	/* Totals. */
	long ran; /* trials run (fewer than `trials` after MAX_LOSSES) */
	long losses;
	long delayed;
	long refused;	  /* tp_enqueue/tp_enqueue_batch failed */
	long bad_code;	  /* a wait or join returned something other than the item's code */
	long no_request;  /* frames: no thief asked within LOSS_MS (no publication tested) */
	long slow_finish; /* the item started but did not finish within LOSS_MS */
};

static void report(const char *way, const struct wake_run *r)
{
	printf("# %s: %ld of %ld trials (%ld with a delay), %ld lost wake-ups\n", way, r->ran,
	       r->trials, r->delayed, r->losses);
	if (r->no_request > 0)
		printf("# %s: %ld trials saw no thief's request\n", way, r->no_request);
	fflush(stdout);
	assert_int_equal(r->refused, 0);
	assert_int_equal(r->bad_code, 0);
	assert_int_equal(r->slow_finish, 0);
	assert_int_equal(test_load(&r->on_driver), 0);
	assert_int_equal(r->losses, 0);
}

/* The published item: marks its start, then its end. */
static int item_task(void *arg)
{
	struct wake_run *r = arg;

	if (pthread_equal(pthread_self(), r->driver) && !test_load(&r->lost_now))
		test_inc(&r->on_driver);
	test_store(&r->started, 1);
	test_store(&r->done, 1);
	return 7;
}

/* ---------------------------------------------------------------------------------------------
 * A fork: tp_enqueue() from inside a task
 * ------------------------------------------------------------------------------------------ */

static int fork_driver(void *arg)
{
	struct wake_run *r = arg;
	uint64_t rng = r->seed;

	r->driver = pthread_self();
	for (; r->ran < r->trials && r->losses < MAX_LOSSES; r->ran++) {
		tp_future *f;

		test_store(&r->started, 0);
		test_store(&r->done, 0);
		test_store(&r->lost_now, 0);
		maybe_delay(&rng, &r->delayed);
		f = tp_enqueue(r->pool, item_task, r);
		if (f == NULL) {
			r->refused++;
			continue;
		}
		if (!spin_until(&r->started, LOSS_MS)) {
			r->losses++;
			/* Lost: the item is still in our deque; the helping wait runs it here. */
			test_store(&r->lost_now, 1);
		} else if (!spin_until(&r->done, LOSS_MS)) {
			r->slow_finish++;
		}
		if (tp_future_wait(f) != 7)
			r->bad_code++;
		tp_future_release(f);
	}
	return 0;
}

static void wakeup_fork_reaches_parking_worker(void **state)
{
	struct wake_run r = { 0 };
	tp_future *f;

	(void)state;
	r.pool = test_pool_new(2);
	r.trials = iters(100000);
	r.seed = seed ^ 0xF0;
	f = tp_enqueue(r.pool, fork_driver, &r);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	tp_pool_destroy(r.pool);
	report("fork (tp_enqueue from a task)", &r);
}

/* ---------------------------------------------------------------------------------------------
 * A frame: tp_spawn() after a thief asked for work
 * ------------------------------------------------------------------------------------------ */

static int frame_task(void *arg)
{
	struct wake_run *r = arg;

	if (pthread_equal(pthread_self(), r->driver) && !test_load(&r->lost_now))
		test_inc(&r->on_driver);
	test_store(&r->started, 1);
	return 7;
}

/*
 * Whether a thief has asked the calling worker for work. The split request lives in the
 * worker's deque, whose layout the public header exposes for the inline tp_spawn (it is what the
 * inline spawn itself reads to decide to publish); the test reads it so that it spawns only when
 * the spawn will publish. Without a request the frame would stay private, unseen by any thief,
 * and the trial would test nothing.
 */
static bool thief_asked(void)
{
	struct tp__deque *q = tp__self_deque;

	return q != NULL && __atomic_load_n(&q->split_request, __ATOMIC_RELAXED) != 0;
}

/* Polls (spinning) for a thief's request, at most LOSS_MS. */
static bool await_request(void)
{
	double end = test_now_ms() + LOSS_MS;

	while (!thief_asked() && test_now_ms() < end)
		cpu_relax();
	return thief_asked();
}

static int noop_task(void *arg)
{
	(void)arg;
	return 0;
}

static int frame_driver(void *arg)
{
	struct wake_run *r = arg;
	uint64_t rng = r->seed;

	r->driver = pthread_self();
	for (; r->ran < r->trials && r->losses < MAX_LOSSES; r->ran++) {
		tp_frame t;

		test_store(&r->started, 0);
		test_store(&r->lost_now, 0);
		/* The other worker, done with the last frame, asks in its next steal round. One that
		 * sleeps without having asked (after a lost wake-up) would never ask again, and frames
		 * are published only on request: a fork publishes at once and wakes it. */
		if (!await_request()) {
			tp_future *nudge = tp_enqueue(r->pool, noop_task, NULL);

			if (nudge != NULL) {
				(void)tp_future_wait(nudge);
				tp_future_release(nudge);
			}
			if (!await_request())
				r->no_request++;
		}
		maybe_delay(&rng, &r->delayed);
		tp_spawn(&t, frame_task, r);
		if (!spin_until(&r->started, LOSS_MS)) {
			r->losses++;
			/* Lost: the join pops the frame and runs it here. */
			test_store(&r->lost_now, 1);
		}
		/* Stolen: waits for the thief's DONE. Every frame is joined. */
		if (tp_join(&t) != 7)
			r->bad_code++;
	}
	return 0;
}

static void wakeup_spawned_frame_reaches_parking_worker(void **state)
{
	struct wake_run r = { 0 };
	tp_future *f;

	(void)state;
	r.pool = test_pool_new(2);
	r.trials = iters(100000);
	r.seed = seed ^ 0xF1;
	f = tp_enqueue(r.pool, frame_driver, &r);
	assert_non_null(f);
	assert_int_equal(tp_future_wait(f), 0);
	tp_future_release(f);
	tp_pool_destroy(r.pool);
	report("frame (tp_spawn after a request)", &r);
	/* Nearly every trial must have tested a publication. */
	assert_true(r.no_request <= r.trials / 100);
}

/* ---------------------------------------------------------------------------------------------
 * An injected batch: tp_enqueue_batch() of two tasks from outside
 * ------------------------------------------------------------------------------------------ */

struct pair {
	long started;  /* atomic: how many of the two have started */
	long finished; /* atomic: how many of the two are about to return */
	long lost;     /* atomic: a task waited LOSS_MS for its partner */
};

/* Spins, without any call into the pool, until both tasks of the pair have started. */
static bool spin_until_two(struct pair *p)
{
	double end = test_now_ms() + LOSS_MS;

	for (unsigned i = 0; test_load(&p->started) < 2; i++) {
		cpu_relax();
		if ((i & 255) == 0 && test_now_ms() > end)
			return false;
	}
	return true;
}

/* Each of the two waits (spinning, no helping) until its partner has started as well. */
static int pair_task(void *arg)
{
	struct pair *p = arg;

	test_inc(&p->started);
	if (!spin_until_two(p))
		test_store(&p->lost, 1);
	test_inc(&p->finished);
	return 7;
}

static void wakeup_injected_batch_reaches_both_workers(void **state)
{
	tp_pool *pool = test_pool_new(2);
	long trials = iters(20000); /* slower trials: three threads poll on two workers' CPUs */
	uint64_t rng = seed ^ 0xF2;
	long losses = 0, delayed = 0, refused = 0, bad_code = 0, i;

	(void)state;
	for (i = 0; i < trials && losses < MAX_LOSSES; i++) {
		struct pair p = { 0, 0, 0 };
		void *args[2] = { &p, &p };
		tp_future *f[2];
		struct timespec d;
		double end;

		maybe_delay(&rng, &delayed);
		if (tp_enqueue_batch(pool, pair_task, args, 2, f) != 0) {
			refused++;
			continue;
		}
		/* Poll until both are done rather than sleep in a wait, so that the next batch
		 * comes while the workers are parking, not long after they slept. */
		end = test_now_ms() + 4 * LOSS_MS;
		for (unsigned k = 0; test_load(&p.finished) < 2; k++) {
			sched_yield(); /* the workers may need this CPU */
			if ((k & 255) == 0 && test_now_ms() > end)
				break;
		}
		d = test_deadline_ms(4 * LOSS_MS);
		for (int k = 0; k < 2; k++) {
			bad_code += tp_future_wait_until(f[k], &d) != 7;
			tp_future_release(f[k]);
		}
		losses += test_load(&p.lost);
	}
	tp_pool_destroy(pool);
	printf("# injected batch (tp_enqueue_batch from outside): %ld of %ld trials (%ld with a "
	       "delay), %ld lost wake-ups\n",
	       i, trials, delayed, losses);
	fflush(stdout);
	assert_int_equal(refused, 0);
	assert_int_equal(bad_code, 0);
	assert_int_equal(losses, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wakeup_fork_reaches_parking_worker),
		cmocka_unit_test(wakeup_spawned_frame_reaches_parking_worker),
		cmocka_unit_test(wakeup_injected_batch_reaches_both_workers),
	};

	const char *l = getenv("TP_STRESS_LONG");

	seed = test_stress_seed();
	/* The long tier runs 20x the trials: meson test needs --timeout-multiplier for it. */
	test_watchdog(l != NULL && strcmp(l, "1") == 0 ? 20 * 280 : 280);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
