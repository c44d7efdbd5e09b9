/*
 * thread_pool.h - a lock-free work-stealing thread pool with futures.
 *
 * Conventions (apply to every function below unless its comment says otherwise):
 *  - Every function is thread-safe: it may be called from any thread, at the same time as any other
 *    function of this header, including from inside a task running on the pool.
 *  - Functions returning int return 0 on success or a positive errno value (EINVAL, ETIMEDOUT,
 *    ECANCELED, ESHUTDOWN, EDEADLK, ENOMEM, ...: each function lists its own). Constructors
 *    return NULL and set errno.
 *  - A function that fails has had no effect: a refused task never runs, nothing was allocated.
 *  - Nothing here calls abort() or exit(); bad input is reported as EINVAL, never a crash. (The
 *    typed tasks of thread_pool_task.h have one exception, said there: a task stack overflow.)
 *    Misuse that cannot be told from valid use (a future released once too often, a frame
 *    joined twice or after its storage went away) is undefined; the runtime's assert()s, and
 *    those of the inline fork-join paths in a program built without NDEBUG, may catch some.
 *  - A task must return to the runtime that called it: leaving it by longjmp(), pthread_exit(),
 *    thread cancellation or a C++ exception is undefined (the worker, or the thread that ran it
 *    in tp_future_wait_nohelp(), never finishes the task; its future stays RUNNING and a
 *    shutdown can wait for it forever).
 *  - fork(): the child of a process with pools has only the thread that called fork(). Every
 *    pool it inherits behaves as if shut down: tp_enqueue() and the other submissions fail with
 *    ESHUTDOWN, tasks that were pending are CANCELLED (waits return ECANCELED), tasks that were
 *    running in the parent never finish in the child (their futures stay RUNNING: wait for them
 *    only with a deadline), tp_pool_shutdown() returns 0 at once and tp_pool_destroy() frees the
 *    pool without joining anything. New pools work as usual. Loggers: see the Logger section.
 */
#ifndef THREAD_POOL_H
#define THREAD_POOL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* POSIX's; declared here too so that a strict C99 build that includes only this header compiles. */
struct timespec;

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TP_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define TP_PRINTF(fmt_idx, arg_idx)
#endif

/* Marks the exported functions; the library is built with hidden visibility by default. */
#if defined(__GNUC__)
#define TP_API __attribute__((visibility("default")))
#else
#define TP_API
#endif

/*
 * The version of this header (semantic versioning: before 1.0 a minor version may change the API;
 * the library's soname changes whenever its ABI does). tp_version() returns the version of the
 * library actually loaded, which may be newer than the header a program was compiled with.
 */
#define TP_VERSION_MAJOR  0
#define TP_VERSION_MINOR  4
#define TP_VERSION_PATCH  0
#define TP_VERSION_STRING "0.4.0"

typedef struct tp_pool tp_pool;
typedef struct tp_future tp_future;
typedef struct tp_logger tp_logger;

/* The loaded library's version, as "MAJOR.MINOR.PATCH" (static storage). Never fails. */
TP_API const char *tp_version(void);

/* ------------------------------------------------------------------------------------------------
 * Tasks
 * --------------------------------------------------------------------------------------------- */

/*
 * A task: returns 0 on success or a positive errno-style code on failure; that code is what
 * tp_future_wait() returns (the C form of an exception carried by a future). A task that fails
 * never harms its worker or other tasks. Results other than the code travel through `arg`.
 */
typedef int (*tp_task_fn)(void *arg);

/* ------------------------------------------------------------------------------------------------
 * Pool
 * --------------------------------------------------------------------------------------------- */

/*
 * Creates a pool of `num_threads` workers, all started before it returns.
 * num_threads == 0: the environment variable TP_NUM_THREADS (read at each call) if it holds a
 * number of threads in [1, TP_POOL_MAX_THREADS] (decimal digits, optionally surrounded by white
 * space), else the number of CPUs this process may run on (sched_getaffinity). TP_NUM_THREADS
 * unset, empty or 0 means that number of CPUs too; any other value is ignored, with one WARNING
 * line on the pool's logger naming the variable and the value.
 * logger == NULL: the singleton tp_logger_get_instance(). The logger must outlive the pool.
 * Returns NULL with errno EINVAL (num_threads above TP_POOL_MAX_THREADS), ENOMEM, or EAGAIN (a
 * thread could not be started).
 */
#define TP_POOL_MAX_THREADS 1024
TP_API tp_pool *tp_pool_create(size_t num_threads, tp_logger *logger);

/* Number of worker threads of `pool`; 0 for NULL. Never blocks. */
TP_API size_t tp_pool_size(const tp_pool *pool);

/*
 * Submits fn(arg) and returns its future, which the caller owns (release it with
 * tp_future_release()). Never blocks. Called from a worker of this pool (inside a task), the task is
 * pushed on that worker's own deque (a fork); from any other thread it goes through the pool's
 * lock-free injection queue. Tasks forked from inside the pool during a DRAIN shutdown are accepted.
 * Returns NULL with errno EINVAL (pool or fn NULL), ESHUTDOWN (shutdown has begun; from inside the
 * pool only in CANCEL mode) or ENOMEM.
 */
TP_API tp_future *tp_enqueue(tp_pool *pool, tp_task_fn fn, void *arg);

/*
 * Releases the argument of a task that will never run: called exactly once, with `arg`, if the
 * task is cancelled (tp_future_cancel(), tp_group_cancel(), a CANCEL shutdown), never if it ran.
 * It runs on the thread that cancelled the task (for a shutdown, a worker), so it must not block.
 * If the submission itself fails, it is not called: the caller still owns `arg`. In the child
 * of a fork(), inherited tasks that the child cancels are not dropped (the parent owns them).
 */
typedef void (*tp_drop_fn)(void *arg);

/* tp_enqueue() with a drop function for `arg` (NULL: none, as tp_enqueue()). */
TP_API tp_future *tp_enqueue_ex(tp_pool *pool, tp_task_fn fn, void *arg, tp_drop_fn drop);

/*
 * Fire and forget: submits fn(arg) as tp_enqueue() does, without a future (nothing to release,
 * one atomic operation fewer per task). A non-zero code returned by the task goes to the pool's
 * error handler (tp_pool_options.on_error), or else to a WARNING line on the pool's logger that
 * names the function. tp_pool_wait_idle() and shutdowns wait for such tasks like any other.
 * Returns 0, EINVAL (pool or fn NULL), ESHUTDOWN or ENOMEM.
 */
TP_API int tp_submit(tp_pool *pool, tp_task_fn fn, void *arg);

/* tp_submit() with a drop function for `arg` (called if a CANCEL shutdown drops the task). */
TP_API int tp_submit_ex(tp_pool *pool, tp_task_fn fn, void *arg, tp_drop_fn drop);

/* How tp_pool_shutdown() treats accepted tasks that have not started. */
typedef enum tp_shutdown_mode {
	TP_SHUTDOWN_DRAIN = 0, /* run every accepted task, including tasks they fork */
	TP_SHUTDOWN_CANCEL = 1 /* cancel every task not started; running ones finish */
} tp_shutdown_mode;

/*
 * Refuses new tasks from outside the pool at once, finishes accepted work as `mode` says, then joins
 * every worker. Blocks until the workers have exited and every accepted task has returned (also a
 * task that tp_future_wait_nohelp() runs on another thread). Idempotent: a call made while another
 * shutdown of the pool is in progress blocks until that one has completed, then returns 0 (its mode
 * is ignored); later calls return 0 at once. Returns EINVAL (NULL pool or unknown mode), or EDEADLK
 * when called from a thread that is running a task, of this pool or of any other, including a task
 * run by tp_future_wait_nohelp() (it could wait for itself, or for a worker its own pool depends
 * on): then it does nothing.
 */
TP_API int tp_pool_shutdown(tp_pool *pool, tp_shutdown_mode mode);

/*
 * tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN) if not done yet, then frees the pool. Futures the caller
 * still holds stay valid (release them afterwards). NULL is a no-op. Must not be called from a task
 * (it logs an error and does nothing then, as the shutdown would report EDEADLK), nor twice, nor
 * while another thread may still use the pool (a concurrent tp_pool_shutdown() included).
 */
TP_API void tp_pool_destroy(tp_pool *pool);

/* ------------------------------------------------------------------------------------------------
 * Pool options (tp_pool_create_ex)
 * --------------------------------------------------------------------------------------------- */

/* Where workers run. A pinned worker stays on its CPU: the runtime never moves it. */
typedef enum tp_placement {
	TP_PLACE_NONE = 0,    /* the kernel's scheduler places the workers (the default) */
	TP_PLACE_COMPACT = 1, /* worker i on a CPU next to worker i-1's: hardware threads of one
			       * core first, then the cores of one package, then the next package */
	TP_PLACE_SCATTER = 2, /* as far apart as possible: one worker per package in turn, then per
			       * core, before a second hardware thread of any core */
	TP_PLACE_LIST = 3     /* worker i on cpus[i % ncpus] */
} tp_placement;

/* A worker's start or stop hook: runs on the worker thread itself, with its index. */
typedef void (*tp_thread_hook_fn)(void *user, size_t index);

/*
 * The error handler of a pool: called on the worker that ran a detached task (tp_submit()) that
 * returned a non-zero `code`, right after it returned, with the task's function and argument.
 * It must not block for long (it delays that worker) and must not call tp_pool_wait_idle() or
 * shut the pool down (EDEADLK: it runs as part of the task).
 */
typedef void (*tp_error_fn)(void *user, tp_task_fn fn, void *arg, int code);

/*
 * Options of tp_pool_create_ex(). Initialise with tp_pool_options_init(), then set the fields you
 * need: later versions add fields only by taking them from reserved_, whose zeroes mean "the
 * default", so a program compiled against this header keeps working.
 */
typedef struct tp_pool_options {
	size_t num_threads; /* as tp_pool_create(): 0 reads TP_NUM_THREADS, else one per CPU */
	tp_logger *logger;  /* NULL: tp_logger_get_instance(); must outlive the pool */
	/* The pool's name (copied; NULL: "tp"), in its log lines and traces. Worker i is named
	 * "NAME-i" for top -H, ps -L and debuggers, NAME shortened so that the whole fits the
	 * kernel's 15 characters. */
	const char *name;
	size_t stack_size; /* bytes of each worker's stack; 0: the system's default */
	/* Run on each worker before its first task and after its last one (hook_user, index).
	 * tp_pool_create_ex() returns once every worker has returned from on_thread_start, which
	 * runs as a worker of the pool (tp_worker_index() is its index; what it submits runs on
	 * the pool). on_thread_stop runs once the worker has left the pool for good: there it is
	 * a thread like any other (tp_current_pool() is NULL, submissions are refused with
	 * ESHUTDOWN). Neither may wait for the pool's tasks. */
	tp_thread_hook_fn on_thread_start;
	tp_thread_hook_fn on_thread_stop;
	void *hook_user;
	tp_error_fn on_error; /* failed detached tasks; NULL: a WARNING line naming the function */
	void *error_user;
	tp_placement placement; /* TP_PLACE_NONE by default */
	const int *cpus;	/* TP_PLACE_LIST: ncpus CPU numbers (copied) */
	size_t ncpus;
	void *reserved_[8]; /* zero */
} tp_pool_options;

/* Sets every option to its default (all zero: as tp_pool_create(0, NULL)). NULL: no-op. */
TP_API void tp_pool_options_init(tp_pool_options *opts);

/*
 * Creates a pool as tp_pool_create() does, with the given options. Returns NULL with errno EINVAL
 * (opts NULL, num_threads above TP_POOL_MAX_THREADS, an unknown placement, TP_PLACE_LIST without
 * CPUs, a listed CPU this process may not run on, a non-zero stack_size below the system's
 * minimum, a non-zero reserved_ field), ENOMEM, or EAGAIN (a thread could not be started, or
 * pinned). Placement other than NONE pins each worker to one CPU of those the process may run on
 * when the pool is created (sched_getaffinity), read from /sys/devices/system/cpu topology.
 */
TP_API tp_pool *tp_pool_create_ex(const tp_pool_options *opts);

/* The pool's name ("tp" unless tp_pool_create_ex() gave one); NULL for NULL. Never blocks. */
TP_API const char *tp_pool_name(const tp_pool *pool);

/* ------------------------------------------------------------------------------------------------
 * Inside a pool, waiting for idleness, statistics
 * --------------------------------------------------------------------------------------------- */

/* The pool whose worker the calling thread is, or NULL on any other thread. */
TP_API tp_pool *tp_current_pool(void);

/* The calling worker's index in [0, tp_pool_size(tp_current_pool())), or -1 outside every pool:
 * a key for per-worker buffers. */
TP_API int tp_worker_index(void);

/*
 * Blocks until the pool is idle: no task accepted and not finished, none running, none queued.
 * So every task accepted before the call, and everything those tasks submitted or spawned, has
 * finished when it returns 0; the pool stays open. Submissions racing the call (from other
 * threads) are waited for if they are accepted before the pool is seen idle, and not otherwise:
 * a pool kept busy by other threads makes it wait until its deadline. The caller sleeps (no
 * spinning); the last worker to go idle wakes it. Returns ETIMEDOUT at the absolute
 * CLOCK_MONOTONIC deadline (NULL: none), EINVAL (NULL pool, tv_nsec outside [0, 1e9)), or EDEADLK
 * from a task of this pool (also one run by tp_future_wait_nohelp(), and an error handler):
 * it would wait for itself. A shut-down pool is idle.
 */
TP_API int tp_pool_wait_idle(tp_pool *pool, const struct timespec *deadline);

/* Counters of one worker, since the pool was created. */
typedef struct tp_worker_stats {
	uint64_t tasks;	      /* tasks it started (tp_enqueue, tp_submit, batches, groups) */
	uint64_t forks;	      /* tasks its tasks submitted to this pool (not tp_spawn frames) */
	uint64_t steals;      /* tasks, frames, typed tasks it took from other workers */
	uint64_t steal_fails; /* steal attempts that found nothing or lost a race */
	uint64_t injected;    /* tasks it took from the injection queue (submitted from outside) */
	uint64_t parks;	      /* times it went to sleep with nothing to do */
	uint64_t wakeups;     /* times it was woken from such a sleep */
	uint64_t reserved_[1];
} tp_worker_stats;

/* A pool's counters: see tp_pool_stats(). */
typedef struct tp_stats {
	size_t workers;		     /* the pool's number of workers */
	uint64_t queued;	     /* tasks accepted and not started now (a cancelled one counts
				      * until a worker takes it off its queue) */
	uint64_t running;	     /* tasks running on the workers now (those that
				      * tp_future_wait_nohelp() runs elsewhere are in neither) */
	tp_worker_stats total;	     /* the sum over every worker */
	tp_worker_stats *per_worker; /* in: NULL, or room for per_worker_len workers */
	size_t per_worker_len;	     /* in: that room; out: how many entries were written */
} tp_stats;

/*
 * Fills *out with the pool's counters (set per_worker and per_worker_len first; the rest is
 * output). Each counter is written only by its own worker, so counting costs no shared write;
 * this call reads them while the workers run: each value is exact as of some moment during the
 * call, the set is not one snapshot (queued and running may be off by the tasks that moved
 * meanwhile). Never blocks. EINVAL for NULL.
 */
TP_API int tp_pool_stats(const tp_pool *pool, tp_stats *out);

/* ------------------------------------------------------------------------------------------------
 * Tracing: a Chrome Trace Event file (Perfetto, chrome://tracing) of what the workers did
 * --------------------------------------------------------------------------------------------- */

/*
 * Starts recording: one lane per worker, a span per task (named by its function: its symbol,
 * else its address) and per stolen frame or typed task (a frame too), idle spans while a worker
 * sleeps, and flow arrows for steals (victim to thief) and wake-ups (waker to woken); a span is
 * recorded when it ends inside the trace. Only the workers are traced. Each worker records into
 * buffers of its own (no shared writes); a worker records at most 4M events per trace
 * (TP_TRACE_MAX_EVENTS in the environment changes that), later ones are counted in the file as
 * dropped. The environment variable TP_TRACE=path starts a trace at pool creation, written to
 * path when the pool is shut down. When no trace runs, recording costs one predictable branch
 * per event.
 * Returns 0, EINVAL (NULL arguments, an empty path), EBUSY (a trace of this pool already
 * runs), ESHUTDOWN, or ENOMEM.
 */
TP_API int tp_pool_trace_start(tp_pool *pool, const char *path);

/*
 * Stops the trace and writes its file (a JSON object: traceEvents, and in otherData the pool's
 * name, worker count and dropped events). Blocks while it writes. A task's span is recorded just
 * after its future completes: call tp_pool_wait_idle() first to have every finished task in it.
 * Returns 0, EINVAL (NULL), ENOENT (no trace runs), ENOMEM, or the errno of the failed file
 * operation. Whatever it returns, no trace runs afterwards; on ENOMEM the path is left as it
 * was (an I/O error may leave a partial file).
 */
TP_API int tp_pool_trace_stop(tp_pool *pool);

/* ------------------------------------------------------------------------------------------------
 * Futures
 * --------------------------------------------------------------------------------------------- */

/* The life of a future: PENDING -> RUNNING -> DONE or FAILED; PENDING -> CANCELLED. */
typedef enum tp_future_status {
	TP_FUTURE_PENDING = 0,	/* accepted, not started */
	TP_FUTURE_RUNNING = 1,	/* a worker is running the task */
	TP_FUTURE_DONE = 2,	/* the task returned 0 */
	TP_FUTURE_FAILED = 3,	/* the task returned a non-zero code */
	TP_FUTURE_CANCELLED = 4 /* the task will never run */
} tp_future_status;

/*
 * Blocks until the task has finished and returns its code (0 or the task's error), or ECANCELED if
 * it was cancelled. On a worker of the future's pool it runs other pending tasks while it waits (its
 * own deque, then steals), so nested fork-join never deadlocks, even on one thread. On any other
 * thread it only blocks (checks a few times, yielding its CPU, then sleeps on a futex); it never
 * runs the task itself. Returns EINVAL for NULL, and EDEADLK when the calling thread is itself
 * running f's task, lower on its stack (a task waiting for its own future, or for an ancestor whose
 * wait ran the caller: T waits for g, the wait runs h, h waits for T); the program's other wait
 * cycles are not detected. May be called any number of times, by several threads at once.
 */
TP_API int tp_future_wait(tp_future *f);

/*
 * As tp_future_wait(), until the absolute CLOCK_MONOTONIC `deadline`: returns ETIMEDOUT if the task
 * has not finished by then (the future is unaffected); a deadline already past, negative tv_sec
 * included, returns ETIMEDOUT at once unless the future is final. deadline == NULL waits forever.
 * EINVAL for a NULL future or a deadline with tv_nsec outside [0, 1e9).
 */
TP_API int tp_future_wait_until(tp_future *f, const struct timespec *deadline);

/*
 * Cancels the task if it has not started: returns true iff it will never run (also when it was
 * already cancelled). A started or finished task is not affected (false). Never blocks. NULL: false.
 */
TP_API bool tp_future_cancel(tp_future *f);

/* Current status: a snapshot that may change at once unless final. NULL: TP_FUTURE_CANCELLED. */
TP_API tp_future_status tp_future_state(const tp_future *f);

/*
 * The task's code if the future is final (0, the task's error or ECANCELED), else EBUSY.
 * Never blocks. EINVAL for NULL.
 */
TP_API int tp_future_result(const tp_future *f);

/*
 * Adds a reference to `f` for another owner and returns f. Each reference needs one release.
 * Returns NULL, and adds nothing, with errno EINVAL for NULL and EOVERFLOW when f already has
 * the most references a future can count (2^27 - 1, the runtime's included).
 */
TP_API tp_future *tp_future_retain(tp_future *f);

/*
 * Drops the caller's reference. The task still runs; the memory is recycled once the pool is done
 * with it too. NULL is a no-op. Using `f` after releasing the last caller reference is undefined.
 */
TP_API void tp_future_release(tp_future *f);

/*
 * Waits for f without running any other task: if f has not started, the caller claims it and runs
 * it itself (also from outside the pool); if it is running elsewhere, the caller blocks until it
 * finishes or the deadline (absolute CLOCK_MONOTONIC, NULL: none) passes. Use it from a task that
 * holds a lock which other tasks may need: tp_future_wait() on a worker runs unrelated pending
 * tasks while it waits, and one of them could need that lock. Returns as tp_future_wait_until().
 * While the caller runs the task, its thread is running a task of f's pool (tp_pool_shutdown() from
 * it is EDEADLK), and a shutdown of that pool waits for the task to return. If f's pool is shut
 * down meanwhile, the task's own submissions to it from that thread are refused (ESHUTDOWN), as
 * any submission from outside the pool.
 */
TP_API int tp_future_wait_nohelp(tp_future *f, const struct timespec *deadline);

/*
 * Submits n tasks fn(args[0]) ... fn(args[n-1]) at once and stores their futures in out[0..n-1]
 * (the caller owns each). From outside the pool: one pass through the gate, one splice into the
 * injection queue and at most one wake-up for the whole batch (woken workers wake the next). All or
 * nothing: returns 0, or EINVAL (NULL pool, fn, args or out), ESHUTDOWN or ENOMEM with no task
 * submitted. n == 0 returns 0.
 */
TP_API int tp_enqueue_batch(tp_pool *pool, tp_task_fn fn, void *const *args, size_t n,
			    tp_future **out);

/* ------------------------------------------------------------------------------------------------
 * Fork-join with caller-owned frames (no allocation)
 *
 * The waiting policy, in one place:
 *  - tp_join() runs only the joined task's relatives: tasks the calling task spawned after it
 *    (popped from the caller's own deque), and, when the task was stolen, tasks the thief spawned
 *    (leapfrogging). It never runs unrelated work, so its stack stays bounded by the recursion.
 *  - tp_future_wait() / tp_future_wait_until() on a worker run any pending task of the pool (own
 *    deque, injection queue, steals): best throughput, but a waiter holding a lock could run a task
 *    that needs the same lock. tp_future_wait_nohelp() runs nothing else. A worker that finds
 *    nothing to run sleeps until the task finishes, looking for new work now and then (after
 *    1 ms, then less and less often, at least every 32 ms), so work submitted while every worker
 *    waits still runs.
 *  - Loops (tp_parallel_for/reduce) and groups wait like tp_join() and tp_future_wait() resp.
 *  - Across pools: a worker of pool A waiting for a future of pool B only blocks (it runs none of
 *    B's tasks, and none of A's meanwhile). So with one worker in A, a task of A that waits for a
 *    task of B that waits for a task of A deadlocks; size pools so that such chains always find
 *    a free worker, or submit the inner work to the pool of the waiter.
 * --------------------------------------------------------------------------------------------- */

/*
 * tp_spawn() and tp_join() are inline (thread_pool_inline.h): the common case is a few loads and
 * stores in the calling function. Define TP_NO_INLINE before including this header to call the
 * exported functions of the same names instead (bindings for other languages, which cannot use
 * inline functions, call those; they run the same code).
 */
#ifdef TP_NO_INLINE
#define TP__FORK_JOIN TP_API
#else
#define TP__FORK_JOIN static inline
#endif

/*
 * A task frame, owned by the caller (typically a local variable of the spawning function). The
 * fields are private: never read or write them. A frame must be joined before its storage goes
 * away (before the spawning function returns), and joined exactly once.
 */
typedef struct tp_frame {
	tp_task_fn fn_;
	void *arg_;
	void *thief_;
	unsigned state_;
	int result_;
} tp_frame;

/*
 * Spawns fn(arg) on the calling worker's own deque, in `frame`: no allocation, no atomic
 * read-modify-write. Must be called from a task running on a pool; from any other thread the task
 * is run later by tp_join() itself (serial semantics). Never blocks. With fn == NULL nothing is
 * spawned and the join returns EINVAL; frame == NULL does nothing.
 */
TP__FORK_JOIN void tp_spawn(tp_frame *frame, tp_task_fn fn, void *arg);

/*
 * Waits for a spawned task and returns its code. If no thief took it, the caller pops it back and
 * runs it inline (no atomic read-modify-write); otherwise it runs the thief's spawned tasks while it
 * waits. Joins may come in any order; the most recent spawn first is the cheap case. Must be called
 * by the thread that spawned `frame`. EINVAL for NULL, and for a frame spawned on a worker but
 * joined on a thread outside every pool, whether a thief has run it or not (the frame must still
 * be joined by its spawner).
 */
TP__FORK_JOIN int tp_join(tp_frame *frame);

#include "thread_pool_inline.h"

#ifndef TP_NO_INLINE
static inline void tp_spawn(tp_frame *frame, tp_task_fn fn, void *arg)
{
	tp__spawn_inline(frame, fn, arg);
}

static inline int tp_join(tp_frame *frame)
{
	return tp__join_inline(frame);
}
#endif

/* A group of tasks waited for together. Caller-owned; fields private. */
typedef struct tp_group {
	tp_pool *pool_;
	void *head_;
	int error_;
	unsigned cancelled_;
} tp_group;

/* Starts an empty group on `pool`. EINVAL for NULL arguments. */
TP_API int tp_group_init(tp_group *group, tp_pool *pool);

/*
 * Adds fn(arg) to the group (as tp_enqueue(); records are recycled, not malloc'd in the steady
 * state). Returns 0, EINVAL, ECANCELED (the group was cancelled), ESHUTDOWN or ENOMEM. Only the
 * thread that owns the group may add to it, wait for it or cancel it, unless it synchronises.
 */
TP_API int tp_group_spawn(tp_group *group, tp_task_fn fn, void *arg);

/* tp_group_spawn() with a drop function for `arg` (tp_drop_fn: called if the task is cancelled). */
TP_API int tp_group_spawn_ex(tp_group *group, tp_task_fn fn, void *arg, tp_drop_fn drop);

/*
 * Waits for every task of the group (helping, as tp_future_wait()), releases them, and returns 0 or
 * the first non-zero code a task returned (first in time); ECANCELED if the group was cancelled
 * and no task failed. The group is empty and reusable afterwards.
 */
TP_API int tp_group_wait(tp_group *group);

/* Cancels the group's tasks that have not started, and refuses later spawns. Never blocks. */
TP_API void tp_group_cancel(tp_group *group);

/* A loop body: runs iterations [begin, end) with the caller's context. */
typedef void (*tp_for_fn)(size_t begin, size_t end, void *ctx);

/*
 * Runs body over [begin, end) in chunks of `grain` iterations (0: automatic) on the pool, split
 * lazily: a chunk is split in halves only when another worker asks for work (idle workers ask
 * before they sleep), so on one busy worker it costs little more than the serial loop. From outside
 * the pool it submits the loop and blocks until it is done; from a task of the pool it runs the
 * loop there (nested loops are fine). Returns 0, or EINVAL (NULL pool/body, begin > end),
 * ESHUTDOWN (the pool was shut down before the loop was submitted, or, from outside, a CANCEL
 * shutdown cancelled it before it started), ENOMEM.
 */
TP_API int tp_parallel_for(tp_pool *pool, size_t begin, size_t end, size_t grain, tp_for_fn body,
			   void *ctx);

/* A loop body that may stop the loop: returns 0 to go on, non-zero to stop it. */
typedef int (*tp_try_for_fn)(size_t begin, size_t end, void *ctx);

/*
 * As tp_parallel_for(), except that a body returning non-zero stops the loop: chunks not started
 * yet are skipped (chunks already running finish), and that code is returned (the first one in
 * time, when several bodies stop it). Which iterations ran before the stop is unspecified, so a
 * search records what it found through ctx. Returns 0 if every chunk ran and returned 0, else
 * the body's code, or EINVAL, ESHUTDOWN, ENOMEM as tp_parallel_for().
 */
TP_API int tp_parallel_try_for(tp_pool *pool, size_t begin, size_t end, size_t grain,
			       tp_try_for_fn body, void *ctx);

/* A reduce body: folds iterations [begin, end) into the accumulator `acc`. */
typedef void (*tp_reduce_fn)(size_t begin, size_t end, void *acc, void *ctx);
/* Combines `other` into `acc` (both accumulators); must be associative. */
typedef void (*tp_combine_fn)(void *acc, const void *other, void *ctx);

/* Accumulators up to this many bytes live in the splits' stack frames; a split of a larger one
 * allocates its copy (and, if that fails, does not split: the loop goes on, serially there). */
#define TP_REDUCE_MAX_SIZE 256

/*
 * Reduces [begin, end) into `result` (acc_size bytes, any size): each split starts from a copy of
 * `identity` (acc_size bytes), folds its iterations with body, and the partial results are
 * combined in iteration order (so a non-commutative combine is fine). Splits as
 * tp_parallel_for(). Returns 0, or EINVAL (NULL pointers, begin > end, acc_size 0), ESHUTDOWN,
 * ENOMEM; `result` is written only on success.
 */
TP_API int tp_parallel_reduce(tp_pool *pool, size_t begin, size_t end, size_t grain, void *result,
			      const void *identity, size_t acc_size, tp_reduce_fn body,
			      tp_combine_fn combine, void *ctx);

/* ------------------------------------------------------------------------------------------------
 * Logger
 * --------------------------------------------------------------------------------------------- */

/*
 * Loggers and fork(): every logger (the singleton and those of tp_logger_create()) is usable in
 * the child of a fork() made by any thread. fork() first waits for the lines other threads are
 * handing over to finish, so the child inherits no logger locked. A sink may call fork(): in that
 * child, as in the parent, lines logged through the loggers the sink was called by are dropped
 * until it returns. A sink must not wait for a thread that is calling fork(), which waits for it.
 */

typedef enum tp_log_level {
	TP_LOG_DEBUG = 10,
	TP_LOG_INFO = 20,
	TP_LOG_WARNING = 30,
	TP_LOG_ERROR = 40,
	TP_LOG_OFF = 100 /* as a threshold: log nothing, whatever the line's level */
} tp_log_level;

/*
 * A sink receives each emitted line whole: `line` holds time, level, thread, location (when
 * given: the file's basename, line and function) and the message, ends with '\n', and has `len`
 * bytes, at most 1023 with the newline (a longer message is cut and marked "..."). A message that
 * itself contains '\n' is passed through as is. Calls never overlap for one logger. A sink must
 * not log through a logger that is emitting on the same thread: such lines are dropped.
 */
typedef void (*tp_log_sink_fn)(void *user, tp_log_level level, const char *line, size_t len);

/*
 * The process-wide logger (the reference design's Logger.get_instance()); it writes to stderr.
 * Never NULL, never freed. Its initial threshold comes from TP_LOG_LEVEL, read once, at the first
 * call: a level name (debug, info, warning, error, off; any case) or number (10, 20, 30, 40, 100),
 * with optional leading and trailing whitespace. Unset or empty: TP_LOG_WARNING. Any other value
 * (whitespace alone included) is ignored: the threshold is TP_LOG_WARNING, and the logger emits
 * one WARNING line that names the variable and the value.
 */
TP_API tp_logger *tp_logger_get_instance(void);

/* A new logger with threshold `level`, writing to stderr. NULL + errno EINVAL or ENOMEM. */
TP_API tp_logger *tp_logger_create(tp_log_level level);

/* Frees a logger from tp_logger_create(). NULL and the singleton are no-ops. Not while in use. */
TP_API void tp_logger_destroy(tp_logger *logger);

/* Sets the threshold: lines below it are dropped. EINVAL for NULL or an unknown level. */
TP_API int tp_logger_set_level(tp_logger *logger, tp_log_level level);

/* The current threshold (TP_LOG_OFF for NULL). */
TP_API tp_log_level tp_logger_get_level(const tp_logger *logger);

/* True iff a line at `level` would be emitted: one relaxed load. False for NULL. */
TP_API bool tp_logger_enabled(const tp_logger *logger, tp_log_level level);

/*
 * Sends lines to sink(user, ...) instead; sink == NULL restores stderr. Once it returns, the old
 * destination is never used again (it may be closed or freed). EINVAL for NULL logger.
 */
TP_API int tp_logger_set_sink(tp_logger *logger, tp_log_sink_fn sink, void *user);

/* Sends lines to `file` (not closed by the logger); NULL restores stderr. EINVAL for NULL logger. */
TP_API int tp_logger_set_file(tp_logger *logger, FILE *file);

/* Formats and emits one line at `level` if enabled. logger == NULL: the singleton. */
TP_API void tp_log(tp_logger *logger, tp_log_level level, const char *fmt, ...) TP_PRINTF(3, 4);

/* As tp_log(), adding "file:line func()" to the line, as TP_LOG() does. */
TP_API void tp_log_at(tp_logger *logger, tp_log_level level, const char *file, int line,
		      const char *func, const char *fmt, ...) TP_PRINTF(6, 7);

/* va_list form of tp_log_at(); file/func may be NULL to omit the location. */
TP_API void tp_log_atv(tp_logger *logger, tp_log_level level, const char *file, int line,
		       const char *func, const char *fmt, va_list ap) TP_PRINTF(6, 0);

/*
 * Logs with the caller's file:line and function (as icecream shows where a line came from). The
 * arguments are not evaluated when the level is filtered out.
 */
#define TP_LOG(logger, level, ...)                                                                 \
	do {                                                                                       \
		tp_logger *tp_log_l_ = (logger);                                                   \
		tp_log_level tp_log_v_ = (level);                                                  \
		if (tp_logger_enabled(tp_log_l_ ? tp_log_l_ : tp_logger_get_instance(),            \
				      tp_log_v_))                                                  \
			tp_log_at(tp_log_l_, tp_log_v_, __FILE__, __LINE__, __func__,              \
				  __VA_ARGS__);                                                    \
	} while (0)

/* Name of a level ("DEBUG", "INFO", "WARNING", "ERROR", "OFF"), or "?" for an unknown value. */
TP_API const char *tp_log_level_name(tp_log_level level);

/*
 * Parses a level name (case-insensitive) or number into *out: the exact text, with no whitespace,
 * sign or leading zero (the TP_LOG_LEVEL reader trims whitespace first). Returns 0, or EINVAL for
 * NULL arguments or text that names no level.
 */
TP_API int tp_log_level_parse(const char *text, tp_log_level *out);

#ifdef __cplusplus
}
#endif

#endif /* THREAD_POOL_H */
