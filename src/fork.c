/*
 * fork.c - what the child of a fork() inherits: loggers it can use, pools that refuse work.
 *
 * POSIX leaves the child of a multi-threaded process with one thread, the one that called
 * fork(), and with memory as the other threads left it: a mutex one of them held stays locked,
 * and a pool's workers are gone. One set of pthread_atfork() handlers, registered the first time
 * a pool or a logger is made, deals with both:
 *   - prepare (parent, before the fork): takes every logger (logger.c), so that none is mid-line,
 *     then the registry of pools, so that no pool is being created or freed across the fork;
 *   - parent (after the fork): lets go of them, in reverse order;
 *   - child: the same for the loggers, which are usable at once; every pool of the registry
 *     becomes a pool that has been shut down (tp__pool_after_fork(), pool.c): it refuses new
 *     tasks (ESHUTDOWN), its pending tasks are cancelled, and tp_pool_shutdown() and
 *     tp_pool_destroy() have no threads to join. A new pool in the child works as usual.
 *
 * The registry is a list of live pools under a mutex, touched only by tp_pool_create() and the
 * freeing of a pool: nothing on a hot path.
 */
#include <pthread.h>

#include "fork.h"
#include "logger_internal.h"
#include "pool.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static tp_pool *registry; /* live pools, through fork_next; under registry_lock */
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;

/* The loggers first: their prepare backs off while a logger is busy, and a thread holding one
 * (a sink) may create or destroy a pool, which takes the registry lock. Nothing logs while
 * holding the registry lock, so taking it last cannot wait for a logger. */
static void prepare(void)
{
	tp__logger_atfork_prepare();
	(void)pthread_mutex_lock(&registry_lock);
}

static void parent(void)
{
	(void)pthread_mutex_unlock(&registry_lock);
	tp__logger_atfork_parent();
}

static void child(void)
{
	/* The forking thread holds it, and is the only thread now. */
	(void)pthread_mutex_unlock(&registry_lock);
	tp__logger_atfork_child();
	/* Whatever this thread was in the parent, it is no pool's worker here. */
	tp__self = NULL;
	tp__self_deque = NULL;
	tp__running_top = NULL;
	for (tp_pool *p = registry; p != NULL; p = p->fork_next)
		tp__pool_after_fork(p);
}

static void register_handlers(void)
{
	(void)pthread_atfork(prepare, parent, child);
}

void tp__fork_handlers_init(void)
{
	(void)pthread_once(&handlers_once, register_handlers);
}

void tp__fork_track(tp_pool *pool)
{
	tp__fork_handlers_init();
	(void)pthread_mutex_lock(&registry_lock);
	pool->fork_prev = NULL;
	pool->fork_next = registry;
	if (registry != NULL)
		registry->fork_prev = pool;
	registry = pool;
	(void)pthread_mutex_unlock(&registry_lock);
}

void tp__fork_untrack(tp_pool *pool)
{
	(void)pthread_mutex_lock(&registry_lock);
	if (pool->fork_prev != NULL)
		pool->fork_prev->fork_next = pool->fork_next;
	else
		registry = pool->fork_next;
	if (pool->fork_next != NULL)
		pool->fork_next->fork_prev = pool->fork_prev;
	(void)pthread_mutex_unlock(&registry_lock);
}
