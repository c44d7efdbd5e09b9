/*
 * pool.c - creating (with options: names, hooks, stacks, placement) and shutting down a pool.
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

#include "futex.h"
#include "placement.h"
#include "pool.h"
#include "symbol.h"

/* The name of a pool created without one. */
#define DEFAULT_NAME "tp"

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
	tp__trace_forget(pool);
	if (pool->workers != NULL) {
		for (size_t i = 0; i < pool->n; i++)
			if (pool->workers[i].deque.buf != NULL)
				tp__deque_destroy(&pool->workers[i].deque);
		for (size_t i = 0; i < pool->n; i++)
			tp__tstack_destroy(&pool->workers[i].tstack);
		if (pool->home != NULL)
			tp__home_kill(pool->home, &pool->workers[0].cache, sizeof(pool->workers[0]),
				      pool->n);
		free(pool->workers);
	} else if (pool->home != NULL) {
		tp__home_kill(pool->home, NULL, 0, 0);
	}
	tp__park_destroy(&pool->park);
	pthread_mutex_destroy(&pool->shut_lock);
	pthread_mutex_destroy(&pool->trace_lock);
	free(pool->name);
	free(pool);
}

/* Stops and joins the workers started so far, after a failed start. */
static void abort_start(tp_pool *pool)
{
	/* Closed first: what the workers' stop hooks submit is refused (ESHUTDOWN), as from any
	 * thread once a pool is shutting down. */
	(void)tp__fetch_or_u64(&pool->gate, TP__GATE_CLOSED);
	tp__store_rel_u32(&pool->stop, 1);
	tp__park_wake_all(&pool->park);
	for (size_t i = 0; i < pool->n; i++)
		if (pool->workers[i].started)
			pthread_join(pool->workers[i].thread, NULL);
}

/* Starts the workers, each pinned to plan[i] if plan is not NULL. 0, or pthread_create's error. */
static int start_workers(tp_pool *pool, size_t stack_size, const int *plan)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int err;

	err = pthread_attr_init(&attr);
	if (err != 0)
		return err;
	if (stack_size != 0)
		err = pthread_attr_setstacksize(&attr, stack_size);
	/* Workers inherit a full signal mask: signals go to the application's own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 0; i < pool->n && err == 0; i++) {
		struct tp__worker *w = &pool->workers[i];

		if (plan != NULL) {
			cpu_set_t cpu;

			CPU_ZERO(&cpu);
			CPU_SET(plan[i], &cpu);
			err = pthread_attr_setaffinity_np(&attr, sizeof(cpu), &cpu);
			if (err != 0)
				break;
		}
		err = pthread_create(&w->thread, &attr, tp__worker_main, w);
		w->started = err == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

/* Waits until every worker has returned from on_thread_start (futex on the countdown). */
static void await_start_hooks(tp_pool *pool)
{
	uint32_t left;

	/* acquire: pairs with each worker's decrement; what its hook did comes before. */
	while ((left = tp__load_acq_u32(&pool->starting)) != 0)
		(void)tp__futex_wait(&pool->starting, left, NULL);
}

void tp__pool_started(tp_pool *pool)
{
	/* seq_cst RMW (release): this worker's hook before the creator's return. */
	if (tp__faa_u32(&pool->starting, (uint32_t)-1) == 1)
		tp__futex_wake_all(&pool->starting);
}

static bool options_valid(const tp_pool_options *opts)
{
	for (size_t i = 0; i < sizeof(opts->reserved_) / sizeof(opts->reserved_[0]); i++)
		if (opts->reserved_[i] != NULL)
			return false;
	if (opts->num_threads > TP_POOL_MAX_THREADS)
		return false;
	if (opts->stack_size != 0 && opts->stack_size < (size_t)PTHREAD_STACK_MIN)
		return false;
	return opts->placement == TP_PLACE_NONE || opts->placement == TP_PLACE_COMPACT ||
	       opts->placement == TP_PLACE_SCATTER || opts->placement == TP_PLACE_LIST;
}

/* The number of workers: opts->num_threads, else TP_NUM_THREADS, else one per CPU. */
static size_t thread_count(const tp_pool_options *opts)
{
	const char *text;
	long env;
	size_t n;

	if (opts->num_threads != 0)
		return opts->num_threads;
	text = getenv("TP_NUM_THREADS");
	env = env_threads(text);
	n = env > 0 ? (size_t)env : affinity_cpus();
	if (env < 0)
		tp_log(opts->logger, TP_LOG_WARNING,
		       "TP_NUM_THREADS=\"%s\" is not a number of threads in [0, %d]: ignored, "
		       "using one per CPU (%zu)",
		       text, TP_POOL_MAX_THREADS, n);
	return n;
}

/* Where each worker runs (NULL: anywhere). 0 or an errno (EINVAL, ENOMEM). */
static int plan_placement(const tp_pool_options *opts, size_t n, int **plan)
{
	cpu_set_t allowed;
	int err;

	*plan = NULL;
	if (opts->placement == TP_PLACE_NONE || n == 0)
		return 0;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return EINVAL;
	*plan = malloc(n * sizeof(**plan));
	if (*plan == NULL)
		return ENOMEM;
	err = tp__placement_plan(opts->placement, opts->cpus, opts->ncpus, &allowed, TP__SYSFS_CPU,
				 n, *plan);
	if (err != 0) {
		free(*plan);
		*plan = NULL;
	}
	return err;
}

/* TP_TRACE=path: a trace from the pool's creation to its shutdown. */
static void trace_from_env(tp_pool *pool)
{
	const char *path = getenv("TP_TRACE");
	int err;

	if (path == NULL || *path == '\0')
		return;
	err = tp_pool_trace_start(pool, path);
	if (err != 0)
		tp_log(pool->logger, TP_LOG_WARNING, "TP_TRACE=\"%s\": no trace of pool %s (%s)",
		       path, pool->name, strerror(err));
}

/* Allocates and initialises a pool of n workers, none started. NULL on ENOMEM. */
static tp_pool *new_pool(const tp_pool_options *opts, size_t n)
{
	tp_pool *pool = aligned_alloc(TP__CACHE_LINE, sizeof(*pool));

	if (pool == NULL)
		return NULL;
	memset(pool, 0, sizeof(*pool));
	pool->n = n;
	pool->logger = opts->logger != NULL ? opts->logger : tp_logger_get_instance();
	pool->log_threshold = tp__logger_threshold_word(pool->logger);
	pool->on_thread_start = opts->on_thread_start;
	pool->on_thread_stop = opts->on_thread_stop;
	pool->hook_user = opts->hook_user;
	pool->on_error = opts->on_error;
	pool->error_user = opts->error_user;
	pool->starting = opts->on_thread_start != NULL ? (uint32_t)n : 0;
	pthread_mutex_init(&pool->shut_lock, NULL);
	pthread_mutex_init(&pool->trace_lock, NULL);
	tp__inject_init(&pool->inject);
	pool->name = strdup(opts->name != NULL ? opts->name : DEFAULT_NAME);
	pool->home = tp__home_new();
	pool->workers = aligned_alloc(TP__CACHE_LINE, n * sizeof(pool->workers[0]));
	/* Zeroed at once: free_pool() walks the workers' deques and caches on every failure. */
	if (pool->workers != NULL)
		memset(pool->workers, 0, n * sizeof(pool->workers[0]));
	if (pool->name == NULL || pool->home == NULL || pool->workers == NULL ||
	    tp__park_init(&pool->park, n, NULL) != 0) {
		free_pool(pool);
		return NULL;
	}
	pool->home->pool = pool;
	for (size_t i = 0; i < n; i++) {
		struct tp__worker *w = &pool->workers[i];

		w->pool = pool;
		w->index = i;
		w->rng = 0x9E3779B97F4A7C15u * (i + 1);
		if (tp__deque_init(&w->deque, TP__DEQUE_INITIAL) != 0 ||
		    tp__tstack_init(&w->tstack, w) != 0) {
			free_pool(pool);
			return NULL;
		}
	}
	return pool;
}

void tp_pool_options_init(tp_pool_options *opts)
{
	if (opts != NULL)
		memset(opts, 0, sizeof(*opts));
}

tp_pool *tp_pool_create_ex(const tp_pool_options *opts)
{
	tp_pool *pool;
	int *plan;
	size_t n;
	int err;

	if (opts == NULL || !options_valid(opts)) {
		errno = EINVAL;
		return NULL;
	}
	n = thread_count(opts);
	if (n > TP_POOL_MAX_THREADS) {
		errno = EINVAL;
		return NULL;
	}
	err = plan_placement(opts, n, &plan);
	if (err != 0) {
		errno = err;
		return NULL;
	}
	pool = new_pool(opts, n);
	if (pool == NULL) {
		free(plan);
		errno = ENOMEM;
		return NULL;
	}
	/* A pinned worker is never moved off its CPU by the parking code (park.h). */
	for (size_t i = 0; plan != NULL && i < n; i++)
		pool->park.parkers[i].pinned = true;
	err = start_workers(pool, opts->stack_size, plan);
	free(plan);
	if (err != 0) {
		abort_start(pool);
		free_pool(pool);
		errno = EAGAIN;
		return NULL;
	}
	await_start_hooks(pool);
	tp__fork_track(pool);
	tp_log(pool->logger, TP_LOG_INFO, "pool %s (%p) created with %zu threads", pool->name,
	       (void *)pool, n);
	trace_from_env(pool);
	return pool;
}

tp_pool *tp_pool_create(size_t num_threads, tp_logger *logger)
{
	tp_pool_options opts;

	tp_pool_options_init(&opts);
	opts.num_threads = num_threads;
	opts.logger = logger;
	return tp_pool_create_ex(&opts);
}

const char *tp_pool_name(const tp_pool *pool)
{
	return pool != NULL ? pool->name : NULL;
}

tp_pool *tp_current_pool(void)
{
	struct tp__worker *w = tp__self;

	return w != NULL ? w->pool : NULL;
}

int tp_worker_index(void)
{
	struct tp__worker *w = tp__self;

	return w != NULL ? (int)w->index : -1;
}

void tp__pool_task_failed(tp_pool *pool, tp_task_fn fn, void *arg, int code)
{
	char name[256];

	if (pool->on_error != NULL) {
		pool->on_error(pool->error_user, fn, arg, code);
		return;
	}
	tp_log(pool->logger, TP_LOG_WARNING, "pool %s: detached task %s(%p) failed: %d (%s)",
	       pool->name, tp__symbol_name((const void *)fn, name, sizeof(name)), arg, code,
	       strerror(code));
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
		tp_log(pool->logger, TP_LOG_INFO, "pool %s (%p) shutting down (%s)", pool->name,
		       (void *)pool, mode == TP_SHUTDOWN_CANCEL ? "cancel" : "drain");
		/* seq_cst RMW: every later acceptance is refused; earlier ones are counted. */
		(void)tp__fetch_or_u64(&pool->gate, TP__GATE_CLOSED);
		/* (the CLOSED bit) before (the mode), release: a worker that sees the mode reads a
		 * final gate count. */
		tp__store_rel_u32(&pool->mode,
				  mode == TP_SHUTDOWN_CANCEL ? TP__MODE_CANCEL : TP__MODE_DRAIN);
		tp__park_wake_all(&pool->park);
		for (size_t i = 0; i < pool->n; i++)
			pthread_join(pool->workers[i].thread, NULL);
		tp__trace_finish(pool);
		pool->shut_state = 2;
		tp_log(pool->logger, TP_LOG_INFO, "pool %s (%p) joined %zu threads", pool->name,
		       (void *)pool, pool->n);
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
	(void)tp__future_cancel(f, false);
	/* Pending: now cancelled (its argument is the parent's: not dropped). Claimed by
	 * tp_future_wait_nohelp() on a thread of the parent: it stays RUNNING here, and keeps the
	 * runtime's reference. */
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
	(void)pthread_mutex_init(&pool->trace_lock, NULL);
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
