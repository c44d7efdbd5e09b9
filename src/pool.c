/*
 * pool.c - creating, feeding and shutting down a pool.
 * The shared state and the shutdown's termination argument are described in pool.h.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"

/*
 * TP_NUM_THREADS: decimal digits, optionally surrounded by white space, in [0,
 * TP_POOL_MAX_THREADS]. Returns the value (0, like an unset or empty variable: one worker per
 * CPU), or -1 for anything else, which the caller ignores with a warning.
 */
static long env_threads(const char *s)
{
	long v = 0;
	int digits = 0;

	if (s == NULL || *s == '\0')
		return 0;
	while (isspace((unsigned char)*s))
		s++;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		v = v * 10 + (*s - '0');
		if (v > TP_POOL_MAX_THREADS)
			return -1;
	}
	while (isspace((unsigned char)*s))
		s++;
	return digits > 0 && *s == '\0' ? v : -1;
}

/* The CPUs this process may run on. */
static size_t affinity_cpus(void)
{
	cpu_set_t set;
	long online;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (size_t)CPU_COUNT(&set);
	online = sysconf(_SC_NPROCESSORS_ONLN);
	return online > 0 ? (size_t)online : 1;
}

static void free_pool(tp_pool *pool)
{
	if (pool->workers != NULL) {
		for (size_t i = 0; i < pool->n; i++)
			if (pool->workers[i].deque.buf != NULL)
				tp__deque_destroy(&pool->workers[i].deque);
		if (pool->home != NULL)
			tp__home_kill(pool->home, &pool->workers[0].cache, sizeof(pool->workers[0]),
				      pool->n);
		free(pool->workers);
	} else if (pool->home != NULL) {
		tp__home_kill(pool->home, NULL, 0, 0);
	}
	tp__park_destroy(&pool->park);
	pthread_mutex_destroy(&pool->shut_lock);
	free(pool);
}

/* Stops and joins the workers started so far, after a failed start. */
static void abort_start(tp_pool *pool)
{
	tp__store_rel_u32(&pool->stop, 1);
	tp__park_wake_all(&pool->park);
	for (size_t i = 0; i < pool->n; i++)
		if (pool->workers[i].started)
			pthread_join(pool->workers[i].thread, NULL);
}

static int start_workers(tp_pool *pool)
{
	sigset_t all, old;
	int err = 0;

	/* Workers inherit a full signal mask: signals go to the application's own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 0; i < pool->n && err == 0; i++) {
		struct tp__worker *w = &pool->workers[i];

		err = pthread_create(&w->thread, NULL, tp__worker_main, w);
		w->started = err == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

tp_pool *tp_pool_create(size_t num_threads, tp_logger *logger)
{
	tp_pool *pool;
	size_t n = num_threads;
	int err;

	if (n == 0) {
		const char *text = getenv("TP_NUM_THREADS");
		long env = env_threads(text);

		n = env > 0 ? (size_t)env : affinity_cpus();
		if (env < 0)
			tp_log(logger, TP_LOG_WARNING,
			       "TP_NUM_THREADS=\"%s\" is not a number of threads in [0, %d]: ignored, "
			       "using one per CPU (%zu)",
			       text, TP_POOL_MAX_THREADS, n);
	}
	if (n > TP_POOL_MAX_THREADS) {
		errno = EINVAL;
		return NULL;
	}
	pool = aligned_alloc(TP__CACHE_LINE, sizeof(*pool));
	if (pool == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	memset(pool, 0, sizeof(*pool));
	pool->n = n;
	pool->logger = logger != NULL ? logger : tp_logger_get_instance();
	pool->log_threshold = tp__logger_threshold_word(pool->logger);
	pthread_mutex_init(&pool->shut_lock, NULL);
	tp__inject_init(&pool->inject);
	pool->home = tp__home_new();
	pool->workers = aligned_alloc(TP__CACHE_LINE, n * sizeof(pool->workers[0]));
	/* Zeroed at once: free_pool() walks the workers' deques and caches on every failure. */
	if (pool->workers != NULL)
		memset(pool->workers, 0, n * sizeof(pool->workers[0]));
	if (pool->home == NULL || pool->workers == NULL ||
	    tp__park_init(&pool->park, n, NULL) != 0) {
		free_pool(pool);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct tp__worker *w = &pool->workers[i];

		w->pool = pool;
		w->index = i;
		w->rng = 0x9E3779B97F4A7C15u * (i + 1);
		if (tp__deque_init(&w->deque, TP__DEQUE_INITIAL) != 0) {
			free_pool(pool);
			errno = ENOMEM;
			return NULL;
		}
	}
	err = start_workers(pool);
	if (err != 0) {
		abort_start(pool);
		free_pool(pool);
		errno = EAGAIN;
		return NULL;
	}
	tp__fork_track(pool);
	tp_log(pool->logger, TP_LOG_INFO, "pool %p created with %zu threads", (void *)pool, n);
	return pool;
}

size_t tp_pool_size(const tp_pool *pool)
{
	return pool != NULL ? pool->n : 0;
}

int tp_pool_shutdown(tp_pool *pool, tp_shutdown_mode mode)
{
	if (pool == NULL || (mode != TP_SHUTDOWN_DRAIN && mode != TP_SHUTDOWN_CANCEL))
		return EINVAL;
	/* A task waiting for the workers to exit would wait for itself (or, for another pool's
	 * task, could wait for a worker it depends on). */
	if (tp__self != NULL || tp__running_top != NULL)
		return EDEADLK;
	pthread_mutex_lock(&pool->shut_lock);
	if (pool->shut_state == 0) {
		pool->shut_state = 1;
		tp_log(pool->logger, TP_LOG_INFO, "pool %p shutting down (%s)", (void *)pool,
		       mode == TP_SHUTDOWN_CANCEL ? "cancel" : "drain");
		/* seq_cst RMW: every later acceptance is refused; earlier ones are counted. */
		(void)tp__fetch_or_u64(&pool->gate, TP__GATE_CLOSED);
		/* (the CLOSED bit) before (the mode), release: a worker that sees the mode reads a
		 * final gate count. */
		tp__store_rel_u32(&pool->mode,
				  mode == TP_SHUTDOWN_CANCEL ? TP__MODE_CANCEL : TP__MODE_DRAIN);
		tp__park_wake_all(&pool->park);
		for (size_t i = 0; i < pool->n; i++)
			pthread_join(pool->workers[i].thread, NULL);
		pool->shut_state = 2;
		tp_log(pool->logger, TP_LOG_INFO, "pool %p joined %zu threads", (void *)pool,
		       pool->n);
	}
	pthread_mutex_unlock(&pool->shut_lock);
	return 0;
}

void tp_pool_destroy(tp_pool *pool)
{
	int err;

	if (pool == NULL)
		return;
	err = tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN);
	if (err != 0) {
		tp_log(pool->logger, TP_LOG_ERROR,
		       "tp_pool_destroy(%p) from a task: not destroyed (%d)", (void *)pool, err);
		return;
	}
	tp__fork_untrack(pool);
	free_pool(pool);
}

/* In a fork() child: retires a record found in a queue, cancelling it if it was pending. */
static void cancel_inherited(struct tp_future *f)
{
	(void)tp__future_cancel(f);
	/* Pending: now cancelled. Claimed by tp_future_wait_nohelp() on a thread of the parent:
	 * it stays RUNNING here, and keeps the runtime's reference. */
	if (tp__status_final(tp__load_acq_u32(&f->word)))
		tp__future_unref(f, 1);
}

void tp__pool_after_fork(tp_pool *pool)
{
	struct cds_wfcq_node *node;

	/* The only thread left is ours: plain accesses through the atomics are enough. Refuse
	 * new work, and have shutdown find nothing to wait for or join. */
	(void)tp__fetch_or_u64(&pool->gate, TP__GATE_CLOSED);
	tp__store_rel_u32(&pool->mode, TP__MODE_CANCEL);
	tp__store_rel_u32(&pool->stop, 1);
	pool->shut_state = 2;
	(void)pthread_mutex_init(&pool->shut_lock, NULL);
	/* Queued records will never run: cancel them, so that waiting for them returns. A
	 * submitter caught between the two steps of its enqueue leaves the rest unreachable. */
	tp__store_rlx_u32(&pool->inject.lock, 0);
	while ((node = __cds_wfcq_dequeue_nonblocking(&pool->inject.head, &pool->inject.tail)) !=
		       NULL &&
	       node != CDS_WFCQ_WOULDBLOCK)
		cancel_inherited(caa_container_of(node, struct tp_future, node));
	for (size_t i = 0; i < pool->n; i++) {
		struct tp__deque *q = &pool->workers[i].deque;
		struct tp__deque_buf *a = tp__load_acq_ptr(TP__PTR(&q->buf));

		/* Frames live on the stacks of threads the child does not have: skipped. */
		for (uint64_t b = tp__load_acq_u64(&q->top); b < q->bottom; b++) {
			void *item = tp__load_rlx_ptr(&a->slots[b & a->mask]);

			if (!tp__item_is_frame(item))
				cancel_inherited(item);
		}
		tp__store_rlx_u64(&q->top, q->bottom);
		tp__store_rlx_u64(&q->split, q->bottom);
		q->top_seen = q->bottom;
	}
}
