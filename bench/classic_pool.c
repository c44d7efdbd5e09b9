/*
 * classic_pool.c - literal C port of the reference design's ThreadPool (see classic_pool.h).
 *
 * Python                                    here
 *   self._tasks: Queue[Callable]              singly linked FIFO of struct cp_task (head/tail)
 *   self._queue_mutex / self._condition       pool->queue_mutex / pool->condition (same mutex)
 *   self._stop                                pool->stop
 *   concurrent.futures.Future                 struct cp_future: own mutex + condvar, on the heap
 *   task_wrapper closure                      struct cp_task (heap), run by run_task_wrapper()
 *   logger.log(INFO, "Task enqueued")         cp_log_task_enqueued(): a level check (default
 *                                             threshold WARNING, so nothing is printed)
 * Python's garbage collector frees the future once both the caller and the wrapper dropped it; the
 * port counts those two references.
 */
#include "classic_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

enum cp_state {
	CP_PENDING,
	CP_RUNNING,
	CP_FINISHED,
	CP_CANCELLED
};

struct cp_future {
	pthread_mutex_t mutex; /* Future._condition's lock */
	pthread_cond_t cond;   /* Future._condition */
	enum cp_state state;   /* under mutex */
	int result;	       /* under mutex, valid once FINISHED */
	atomic_int refs;       /* caller + wrapper */
};

struct cp_task {
	struct cp_task *next;
	cp_task_fn fn;
	void *arg;
	cp_future *future;
};

struct cp_pool {
	pthread_mutex_t queue_mutex;
	pthread_cond_t condition;
	struct cp_task *head, *tail; /* under queue_mutex */
	bool stop;		     /* under queue_mutex */
	size_t num_threads;
	pthread_t *workers;
};

/* The reference design logs every enqueue at INFO; its default threshold filters it out. */
enum {
	CP_LOG_INFO = 20,
	CP_LOG_WARNING = 30
};
static int cp_log_threshold = CP_LOG_WARNING;

static void cp_log_task_enqueued(void)
{
	if (CP_LOG_INFO >= cp_log_threshold)
		fprintf(stderr, "INFO Task enqueued\n");
}

static void future_unref(cp_future *f)
{
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->mutex);
		free(f);
	}
}

/* task_wrapper(): skip if cancelled, run, set the result and notify_all. */
static void run_task_wrapper(struct cp_task *t)
{
	cp_future *f = t->future;
	pthread_mutex_lock(&f->mutex);
	bool cancelled = f->state == CP_CANCELLED;
	if (!cancelled)
		f->state = CP_RUNNING;
	pthread_mutex_unlock(&f->mutex);
	if (!cancelled) {
		int rc = t->fn(t->arg);
		pthread_mutex_lock(&f->mutex);
		f->result = rc;
		f->state = CP_FINISHED;
		pthread_cond_broadcast(&f->cond);
		pthread_mutex_unlock(&f->mutex);
	}
	future_unref(f);
	free(t);
}

static void *worker_main(void *p)
{
	cp_pool *pool = p;
	for (;;) {
		pthread_mutex_lock(&pool->queue_mutex);
		while (!pool->stop && !pool->head)
			pthread_cond_wait(&pool->condition, &pool->queue_mutex);
		if (pool->stop && !pool->head) {
			pthread_mutex_unlock(&pool->queue_mutex);
			return NULL;
		}
		struct cp_task *t = pool->head;
		pool->head = t->next;
		if (!pool->head)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->queue_mutex);
		run_task_wrapper(t);
	}
}

cp_pool *cp_pool_create(size_t num_threads)
{
	if (num_threads == 0 || num_threads > 1024) {
		errno = EINVAL;
		return NULL;
	}
	cp_pool *pool = calloc(1, sizeof *pool);
	if (!pool || !(pool->workers = calloc(num_threads, sizeof *pool->workers))) {
		free(pool);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&pool->queue_mutex, NULL);
	pthread_cond_init(&pool->condition, NULL);
	for (size_t i = 0; i < num_threads; i++) {
		int rc = pthread_create(&pool->workers[i], NULL, worker_main, pool);
		if (rc != 0) {
			pool->num_threads = i;
			cp_pool_destroy(pool);
			errno = EAGAIN;
			return NULL;
		}
	}
	pool->num_threads = num_threads;
	return pool;
}

cp_future *cp_pool_enqueue(cp_pool *pool, cp_task_fn fn, void *arg)
{
	if (!pool || !fn) {
		errno = EINVAL;
		return NULL;
	}
	cp_future *f = malloc(sizeof *f);
	struct cp_task *t = malloc(sizeof *t);
	if (!f || !t) {
		free(f);
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&f->mutex, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->state = CP_PENDING;
	f->result = 0;
	atomic_init(&f->refs, 2);
	*t = (struct cp_task){ .next = NULL, .fn = fn, .arg = arg, .future = f };

	/* with self._queue_mutex: check stop, put, log */
	pthread_mutex_lock(&pool->queue_mutex);
	if (pool->stop) {
		pthread_mutex_unlock(&pool->queue_mutex);
		pthread_cond_destroy(&f->cond);
		pthread_mutex_destroy(&f->mutex);
		free(f);
		free(t);
		errno = ESHUTDOWN;
		return NULL;
	}
	if (pool->tail)
		pool->tail->next = t;
	else
		pool->head = t;
	pool->tail = t;
	cp_log_task_enqueued();
	pthread_mutex_unlock(&pool->queue_mutex);

	/* with self._condition: notify() */
	pthread_mutex_lock(&pool->queue_mutex);
	pthread_cond_signal(&pool->condition);
	pthread_mutex_unlock(&pool->queue_mutex);
	return f;
}

void cp_pool_destroy(cp_pool *pool)
{
	if (!pool)
		return;
	pthread_mutex_lock(&pool->queue_mutex);
	pool->stop = true;
	pthread_cond_broadcast(&pool->condition);
	pthread_mutex_unlock(&pool->queue_mutex);
	for (size_t i = 0; i < pool->num_threads; i++)
		pthread_join(pool->workers[i], NULL);
	pthread_cond_destroy(&pool->condition);
	pthread_mutex_destroy(&pool->queue_mutex);
	free(pool->workers);
	free(pool);
}

int cp_future_wait(cp_future *f)
{
	if (!f)
		return EINVAL;
	pthread_mutex_lock(&f->mutex);
	while (f->state == CP_PENDING || f->state == CP_RUNNING)
		pthread_cond_wait(&f->cond, &f->mutex);
	int rc = f->state == CP_CANCELLED ? ECANCELED : f->result;
	pthread_mutex_unlock(&f->mutex);
	return rc;
}

int cp_future_cancel(cp_future *f)
{
	if (!f)
		return 0;
	pthread_mutex_lock(&f->mutex);
	if (f->state == CP_PENDING) {
		f->state = CP_CANCELLED;
		pthread_cond_broadcast(&f->cond);
	}
	int cancelled = f->state == CP_CANCELLED;
	pthread_mutex_unlock(&f->mutex);
	return cancelled;
}

void cp_future_release(cp_future *f)
{
	if (f)
		future_unref(f);
}
