/*
 * classic_pool.h - the "classic pool": a literal C port of the Python reference design this
 * project started from (README.md, "From the reference design to C"), kept only as a baseline
 * for the bench suite.
 *
 * One FIFO of heap-allocated task records under one pthread mutex, one condition variable and a
 * stop flag; each enqueue returns a heap future with its own mutex and condition variable. Waiting
 * on a future blocks the calling thread outright, so a task that waits on a task it submitted can
 * deadlock the pool once every worker waits: the bench runs only non-recursive kernels on it.
 * Thread-safe unless stated; errors are positive errno values; constructors return NULL + errno.
 */
#ifndef TP_BENCH_CLASSIC_POOL_H
#define TP_BENCH_CLASSIC_POOL_H

#include <stddef.h>

typedef struct cp_pool cp_pool;
typedef struct cp_future cp_future;
typedef int (*cp_task_fn)(void *arg);

/* Starts `num_threads` workers (ThreadPool.__init__). NULL + errno EINVAL, ENOMEM or EAGAIN. */
cp_pool *cp_pool_create(size_t num_threads);

/*
 * Queues fn(arg) and returns its future, owned by the caller (cp_future_release). Takes the queue
 * mutex twice, as the design does: once to push, once to notify one worker. NULL + errno EINVAL,
 * ESHUTDOWN (the pool is stopping) or ENOMEM.
 */
cp_future *cp_pool_enqueue(cp_pool *pool, cp_task_fn fn, void *arg);

/* Sets the stop flag, wakes every worker, joins them after they drained the queue; frees the pool. */
void cp_pool_destroy(cp_pool *pool);

/* Blocks until the task ran (future.result()); returns its code, or ECANCELED. */
int cp_future_wait(cp_future *f);

/* Cancels the task if it has not started; true iff it will not run (future.cancel()). */
int cp_future_cancel(cp_future *f);

/* Drops the caller's reference; the memory goes when the worker is done with it too. */
void cp_future_release(cp_future *f);

#endif
