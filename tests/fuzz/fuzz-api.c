/*
 * fuzz-api.c - a libFuzzer target for the public API (include/thread_pool.h), driven from several
 * threads at once. run-fuzz.sh builds it with clang (libFuzzer, ASan, UBSan) from the library's
 * sources and runs it; README.md in this directory says how.
 *
 * Input
 *   byte 0      bits 0-1: workers - 1 (1 to 4); bit 2: three client threads instead of two;
 *               bits 3-4: the main thread's last act once the clients are joined (0: destroy,
 *               1: DRAIN shutdown, 2: CANCEL shutdown, 3: DRAIN then CANCEL; each then destroys);
 *               bit 5: wait for the futures the clients left behind after the destroy, not before.
 *               bits 6-7: the format. 1 or 2: format 2, every operation; with 2 the main thread
 *               also waits for idleness (tp_pool_wait_idle) before its last act and checks the
 *               counters. 0 or 3: format 1, the first N_OPS_V1 operations only (op codes modulo
 *               N_OPS_V1): inputs found before format 2 added the embedding API's operations
 *               keep their meaning (the two in corpus/ have 0 and 3 there). In format 2, worker 0
 *               submits a detached task from its on_thread_start hook.
 *   then pairs  (op, arg). Bits 5-7 of op pick a program: 0-2 a client thread's (modulo the number
 *               of clients), 3-7 the task programs 0-4; bits 0-4 pick the operation (modulo
 *               N_OPS, or N_OPS_V1 in format 1); `arg` is its argument, as run_op() reads it. At
 *               most MAX_PROG_OPS operations per program; later ones are ignored.
 *   A submitted task takes a task byte (the arg of ENQUEUE, BATCH, GROUP, SUBMIT, ...): bits 0-2
 *   its program (0-4; 5-7 none), bits 3-4 its return code (0, 0, 11 or 200). Tasks run their
 *   program at depths 1 and 2 only (a client's task is at depth 1), and an input creates at most
 *   MAX_SLOTS tasks, so every input is small work: a few milliseconds.
 *   The pool is created by tp_pool_create_ex() with a name (POOL_NAME), on_thread_start and
 *   on_thread_stop hooks and an error handler (on_error), in both formats.
 *
 * Who may do what (so that the harness itself never deadlocks)
 *   Each thread and each task owns the references it holds and releases them (a reference handed
 *   to another thread goes through the mailbox, retained for it). A task waits without a deadline
 *   only for its own descendants (children it submitted, which cannot run below it on a stack)
 *   and for tasks that run below it on its own thread's stack (EDEADLK at once); any other future
 *   it holds it waits for with a deadline. Clients wait for anything.
 *
 * Invariants (a violation prints "fuzz-api: invariant violated: ..." and aborts, so that libFuzzer
 * keeps the input)
 *   - A task runs at most once, never after its submission was refused or its cancel succeeded.
 *   - A final future agrees with its task: DONE - it ran once and returned 0; FAILED - it ran once
 *     and the code is the one it returned; CANCELLED - it never ran. tp_future_result() agrees.
 *   - Every return code is one the header documents for that call in that situation: ESHUTDOWN
 *     only once a shutdown began, and inside the pool only after a CANCEL shutdown was asked for;
 *     EDEADLK from a shutdown called by a task (also one that tp_future_wait_nohelp() runs on a
 *     client thread); EDEADLK from a wait exactly when the awaited task runs below the waiter on
 *     its own stack (the harness keeps that stack too); EINVAL for each bad argument; ...
 *   - After a tp_pool_shutdown() or tp_pool_destroy() returned, every future is final (also when
 *     shutdowns overlap); after a DRAIN every accepted task ran (unless someone tried to cancel
 *     it); after a CANCEL each ran or is CANCELLED.
 *   - Loops run each iteration exactly once (or none when they fail), reductions combine in
 *     iteration order, joins return their frame's code, groups return the first failure.
 *   - Drop functions (tp_enqueue_ex, tp_submit_ex, tp_group_spawn_ex): each such task ran or was
 *     dropped, exactly one of the two, by the end, and after any shutdown, wait for idleness or
 *     group wait that must have settled it; a refused submission is never run or dropped. A
 *     tp_future_cancel() that returns true has dropped the task on its own thread (unless
 *     another cancel of it, or a CANCEL shutdown, runs at the same time).
 *   - Detached tasks (tp_submit) that fail reach the error handler exactly once, on the worker
 *     that ran them, after they returned and before they count as finished; from the handler,
 *     tp_pool_wait_idle() and tp_pool_shutdown() are EDEADLK. on_thread_start runs once per
 *     worker, on it (tp_worker_index() its index, the thread named "NAME-i" cut to 15
 *     characters), before tp_pool_create_ex() returns; on_thread_stop once per worker, outside
 *     the pool (tp_current_pool() NULL, tp_worker_index() -1, tp_submit() ESHUTDOWN).
 *   - tp_pool_wait_idle(): EDEADLK from a task (also one run by tp_future_wait_nohelp() on a
 *     client thread), EINVAL for a bad deadline; from a client 0 (or ETIMEDOUT with a deadline),
 *     and after 0 every task accepted before the call and every task those submitted has
 *     returned or been cancelled (and dropped, and reported to the error handler); if no other
 *     client could submit meanwhile, tp_pool_stats() then says nothing is queued or running.
 *   - tp_pool_stats(): workers and per_worker_len as documented for each room (per_worker NULL,
 *     too small, exact, larger), nothing written past per_worker_len, the total the sum of the
 *     per-worker values of the same call, no counter lower than in the same thread's previous
 *     call, and each worker's tasks and forks at least those the harness saw it start and
 *     submit before the call.
 *   - tp_parallel_try_for(): 0 only if every iteration ran once and no body stopped; else a code
 *     that a body returned (codes are distinct per iteration, some negative), no iteration run
 *     twice; ESHUTDOWN or ENOMEM with nothing run. Bodies run on the pool's workers.
 *   - tp_parallel_reduce() with accumulators of 256, 257, 300 and 4096 bytes: the exact result
 *     (each iteration folded once, in order), every accumulator a body or combine sees starts as
 *     a copy of the identity, the result untouched on failure.
 *   - Traces (serialised by the harness, so that it knows whether one runs): start 0 or EBUSY,
 *     stop 0 or ENOENT, as a trace runs or not; ESHUTDOWN from a start only once a shutdown
 *     began, ENOENT from a stop also when a shutdown wrote the trace. A stop's file is a whole
 *     trace of this pool. The files (one per start, named by process, input and trace) are
 *     removed.
 *   - tp_current_pool() / tp_worker_index(): the pool and an index in range in tasks on
 *     workers, NULL and -1 on any other thread (clients, tasks that tp_future_wait_nohelp()
 *     runs on a client thread, on_thread_stop).
 *   - Nothing hangs: a watchdog thread aborts when one input runs longer than FUZZ_HANG_SECONDS,
 *     after printing what each client, the main thread and each running task was doing (and,
 *     with TP_FUZZ_HANG_GDB=1 in the environment, every thread's stack, through gdb).
 *   - At the end of each input the pool is destroyed and every reference released, so
 *     LeakSanitizer sees everything freed.
 *
 * Switches for the operations that found bugs before their fixes (all on by default;
 * -DFUZZ_...=0 in TP_FUZZ_CFLAGS leaves the operation out, or accepts the old result, to fuzz the
 * rest while such a bug is open)
 *   FUZZ_NEGATIVE_DEADLINE   deadlines with tv_sec < 0: ETIMEDOUT at once (a blocking waiter
 *                            used to spin forever)
 *   FUZZ_NOHELP_OUTSIDE      tp_future_wait_nohelp() from clients: the task it claims counts as
 *                            running for the shutdown (a DRAIN used to return under it, and a
 *                            shutdown from it used to run)
 *   FUZZ_RETAIN_OVERFLOW     tp_future_retain() at the top of the reference count: NULL and
 *                            EOVERFLOW (it used to wrap); reaches the top through the record's
 *                            layout (src/future.h) instead of 2^27 calls
 *   FUZZ_LOOP_SHUTDOWN_CODE  a loop called from outside and cancelled by a CANCEL shutdown returns
 *                            ESHUTDOWN (it used to return ECANCELED)
 *   FUZZ_ANCESTOR_WAIT       a task waits for its parent's future or its own, and for futures of
 *                            tasks below it on its stack: EDEADLK (it used to hang)
 *   FUZZ_CONCURRENT_SHUTDOWN every client may shut down, so shutdowns overlap: each returns only
 *                            once the pool is shut down
 *   FUZZ_HELP_WAIT_STARVES   tasks wait without a deadline with tp_future_wait() (found by this
 *                            fuzzer: a worker waiting so for a task that a client ran through
 *                            tp_future_wait_nohelp() blocked on the future's word once it found
 *                            no work, and the work that task submitted next never ran when every
 *                            worker was so blocked). Off: such waits poll, a millisecond at a time
 *   FUZZ_IDLE_SHUTDOWN       clients wait for idleness without a deadline while a shutdown may
 *                            run (found by this fuzzer: corpus/idle-shutdown-lost-wakeup; a
 *                            waiter that registered during a shutdown slept forever once the
 *                            workers had exited, although the pool was shut down and idle; now
 *                            the worker that finds the shutdown's end wakes it). Off: such waits
 *                            poll with 10 ms deadlines
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "thread_pool.h"

#ifndef FUZZ_NEGATIVE_DEADLINE
#define FUZZ_NEGATIVE_DEADLINE 1
#endif
#ifndef FUZZ_NOHELP_OUTSIDE
#define FUZZ_NOHELP_OUTSIDE 1
#endif
#ifndef FUZZ_RETAIN_OVERFLOW
#define FUZZ_RETAIN_OVERFLOW 1
#endif
#ifndef FUZZ_LOOP_SHUTDOWN_CODE
#define FUZZ_LOOP_SHUTDOWN_CODE 1
#endif
#ifndef FUZZ_ANCESTOR_WAIT
#define FUZZ_ANCESTOR_WAIT 1
#endif
#ifndef FUZZ_CONCURRENT_SHUTDOWN
#define FUZZ_CONCURRENT_SHUTDOWN 1
#endif
#ifndef FUZZ_HELP_WAIT_STARVES
#define FUZZ_HELP_WAIT_STARVES 1
#endif
#ifndef FUZZ_IDLE_SHUTDOWN
#define FUZZ_IDLE_SHUTDOWN 1
#endif
/* An input running longer than this is a hang: the watchdog aborts. */
#ifndef FUZZ_HANG_SECONDS
#define FUZZ_HANG_SECONDS 5
#endif

#if FUZZ_RETAIN_OVERFLOW
#include "future.h" /* the reference count's place in the record's word */
#endif

#ifndef EOVERFLOW
#define EOVERFLOW 75
#endif

#define MAX_CLIENTS	  3
#define FIRST_TASK_PROG	  3
#define N_TASK_PROGS	  5
#define MAX_PROGS	  (FIRST_TASK_PROG + N_TASK_PROGS)
#define MAX_PROG_OPS	  16
#define MAX_SLOTS	  256
#define MAX_DEPTH	  3 /* tasks at this depth run no program */
#define MAX_HELD	  24
#define MAILBOX_SIZE	  32
#define MAX_LOOP	  32
#define MAX_BATCH	  7
#define MAX_SPAWN_ROOTS	  4
#define INNER_LOOP	  4
#define HELD_ALL_CLIENTS  (MAX_CLIENTS * MAX_HELD)
#define MODE_DRAIN_ASKED  1
#define MODE_CANCEL_ASKED 2
#define MAX_WORKERS	  4
#define BIG_ACC_MAX	  4096
#define TRACE_PATH_MAX	  256
/* The pool's name: longer than a thread name may be, so that the workers' names are shortened. */
#define POOL_NAME	  "fuzz-api-pool-name"

/* Atomic accesses to the harness's shared words (seq_cst: simple, and fast enough). */
#define LD(p)	   __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v)   __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define INC(p)	   __atomic_add_fetch((p), 1, __ATOMIC_SEQ_CST)
#define OR(p, v)   __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define XCHG(p, v) __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)

enum op_code {
	OP_ENQUEUE,	    /* arg: task byte; bit 5 the child waits for its parent; bit 6 release
			       the future at once */
	OP_BATCH,	    /* arg: task byte; bits 5-7 how many (0-7) */
	OP_CANCEL,	    /* arg: which held future */
	OP_WAIT,	    /* arg: which held future */
	OP_WAIT_UNTIL,	    /* arg: bits 0-3 which held future, bits 4-6 the deadline's kind */
	OP_WAIT_NOHELP,	    /* as OP_WAIT_UNTIL */
	OP_RETAIN,	    /* arg: which held future */
	OP_RELEASE,	    /* arg: which held future */
	OP_SHARE,	    /* arg: which held future: retained into the mailbox */
	OP_TAKE,	    /* arg: which mailbox entry: taken over */
	OP_STATE,	    /* arg: which held future: state and result agree */
	OP_SHUTDOWN,	    /* arg: bit 0 CANCEL instead of DRAIN */
	OP_GROUP,	    /* arg: task byte; bits 5-6 members - 1; bit 7 cancel the group */
	OP_FOR,		    /* arg: bits 0-4 iterations, bit 5 nested, bits 6-7 grain */
	OP_REDUCE,	    /* as OP_FOR */
	OP_SPAWN,	    /* arg: bits 0-1 roots - 1, bits 2-3 depth, bit 4 join in reverse,
			       bits 5-6 code, bit 7 leaves submit a task and wait for it */
	OP_SLEEP,	    /* arg: microseconds (0: sched_yield) */
	OP_BAD_ARGS,	    /* arg: which documented EINVAL (or no-op) case */
	OP_DESTROY_IN_TASK, /* tasks: tp_pool_destroy() does nothing */
	OP_RETAIN_MANY,	    /* arg: which held future: retains up to the count's limit */
	OP_WAIT_SELF,	    /* a task waits for its own future; arg bit 0: with a deadline */
	/* The operations of format 2 (byte 0 of the input): the embedding API. */
	OP_SUBMIT,     /* arg: bits 0-4 task byte; bits 5-6 tp_submit, tp_submit_ex with a drop
		          function, tp_submit_ex without one, three tp_submit_ex with one */
	OP_ENQUEUE_EX, /* as OP_ENQUEUE, with tp_enqueue_ex(); bit 7: NULL drop function */
	OP_GROUP_EX,   /* as OP_GROUP, members by tp_group_spawn_ex() (a drop function for
		          every other member) */
	OP_WAIT_IDLE,  /* arg: bits 0-2 the deadline's kind, bits 3-6 as make_deadline() */
	OP_STATS,      /* arg: bits 0-2 per_worker's room (stats_room()) */
	OP_TRY_FOR,    /* arg: bits 0-4 iterations, bits 5-6 grain, bit 7 bodies stop */
	OP_REDUCE_BIG, /* arg: bits 0-4 iterations, bits 5-6 the accumulator's size
		          (big_sizes), bit 7 grain 1 instead of automatic */
	OP_TRACE,      /* arg: bits 0-1 start, stop, start-sleep-stop, start twice then stop
		          twice; bits 2-7 the sleep (microseconds) */
	OP_CURRENT,    /* tp_current_pool(), tp_worker_index(), tp_pool_name(), tp_pool_size() */
	N_OPS
};
/* Format 1 (inputs found before the embedding API's operations): the operations up to here. */
#define N_OPS_V1 (OP_WAIT_SELF + 1)

static const char *const op_names[N_OPS] = {
	[OP_ENQUEUE] = "enqueue",
	[OP_BATCH] = "batch",
	[OP_CANCEL] = "cancel",
	[OP_WAIT] = "wait",
	[OP_WAIT_UNTIL] = "wait_until",
	[OP_WAIT_NOHELP] = "wait_nohelp",
	[OP_RETAIN] = "retain",
	[OP_RELEASE] = "release",
	[OP_SHARE] = "share",
	[OP_TAKE] = "take",
	[OP_STATE] = "state",
	[OP_SHUTDOWN] = "shutdown",
	[OP_GROUP] = "group",
	[OP_FOR] = "parallel_for",
	[OP_REDUCE] = "reduce",
	[OP_SPAWN] = "spawn",
	[OP_SLEEP] = "sleep",
	[OP_BAD_ARGS] = "bad_args",
	[OP_DESTROY_IN_TASK] = "destroy_in_task",
	[OP_RETAIN_MANY] = "retain_many",
	[OP_WAIT_SELF] = "wait_self",
	[OP_SUBMIT] = "submit",
	[OP_ENQUEUE_EX] = "enqueue_ex",
	[OP_GROUP_EX] = "group_ex",
	[OP_WAIT_IDLE] = "wait_idle",
	[OP_STATS] = "stats",
	[OP_TRY_FOR] = "try_for",
	[OP_REDUCE_BIG] = "reduce_big",
	[OP_TRACE] = "trace",
	[OP_CURRENT] = "current",
};

/* The codes a task or frame returns, picked by two bits. */
static const int task_codes[4] = { 0, 0, 11, 200 };

struct op {
	uint8_t code;
	uint8_t arg;
};

struct prog {
	struct op ops[MAX_PROG_OPS];
	int n;
};

/* One task submitted (or refused) during the input. */
struct slot {
	int id;
	int prog; /* task program, or -1 */
	int code; /* what the task returns */
	int depth;
	struct slot *parent;	/* FUZZ_ANCESTOR_WAIT: the task waits for this one's future */
	tp_future *parent_ref;	/* atomic: the reference for that wait, owned by this task */
	long ran;		/* atomic: times the task started */
	tp_future *f;		/* atomic: the registry's own reference, NULL for group members */
	int has_f;		/* atomic: the submitter will store f (if accepted) */
	int accepted;		/* atomic */
	int refused;		/* atomic */
	int cancel_tried;	/* atomic: set before any tp_future_cancel/tp_group_cancel */
	int cancelled;		/* atomic: tp_future_cancel returned true */
	int shared;		/* atomic: a reference went to the mailbox (a client may run it) */
	int at_limit;		/* atomic: its reference count was taken to the top (retain_many) */
	int limit_lock;		/* atomic: a retain_many on it is in progress */
	const char *where;	/* atomic: the operation its program runs now */
	struct slot *submitter; /* the task that submitted it (the submitting thread's), or NULL */
	bool detached;		/* tp_submit(): no future; a failure goes to the error handler */
	bool has_drop;		/* submitted with drop_fn */
	long dropped;		/* atomic: calls of drop_fn for it */
	long errors;		/* atomic: calls of the error handler for it */
	int finished;		/* atomic: its task_fn is returning */
	int cancel_busy;	/* atomic: tp_future_cancel/tp_group_cancel calls on it now */
};

struct held {
	tp_future *f;
	struct slot *s;
	bool own; /* the holder may wait without a deadline (see the top of the file) */
};

/* The calling thread's current program: a client's, the main thread's, or a running task's. */
struct ctx {
	char name[48];
	struct slot *task; /* the running task, NULL for a client */
	int depth;	   /* 0 for clients */
	int client;	   /* client index, or -1 */
	const char *op;	   /* the operation it runs now */
	struct ctx *below; /* the program this task interrupted on the same thread, or NULL */
	struct held held[MAX_HELD];
	int nheld;
};

static struct {
	tp_pool *pool;
	size_t workers;
	int clients;
	int last_act;
	bool wait_after_destroy;
	struct prog progs[MAX_PROGS];
	struct slot slots[MAX_SLOTS];
	int nslots;	    /* atomic: slots handed out (may exceed MAX_SLOTS) */
	int shutdown_begun; /* atomic: set before any shutdown or destroy is called */
	int modes;	    /* atomic: MODE_*_ASKED of every shutdown called so far */
	pthread_barrier_t start;
	pthread_mutex_t lock; /* the mailbox and the leftovers */
	struct held mailbox[MAILBOX_SIZE];
	int nmail;
	struct held leftovers[HELD_ALL_CLIENTS];
	int nleft;
	const char *client_where[MAX_CLIENTS]; /* atomic */
	const char *main_where;		       /* atomic */
	bool all_ops;			       /* format 2: every operation */
	bool final_idle;		       /* format 2: the main thread waits for idleness */
	unsigned input_id;	       /* counts the inputs: per-thread stats and trace files */
	int clients_running;	       /* atomic: clients whose program has not ended */
	tp_pool *hook_pool;	       /* atomic: tp_current_pool() in on_thread_start */
	long hook_starts[MAX_WORKERS]; /* atomic: on_thread_start calls per worker */
	long hook_stops[MAX_WORKERS];  /* atomic: on_thread_stop calls per worker */
	long runs_on[MAX_WORKERS];     /* atomic: tasks started by each worker (not nohelp) */
	long forks_on[MAX_WORKERS];    /* atomic: submissions accepted from each worker */
	pthread_mutex_t trace_lock;    /* the trace calls and the two fields below */
	bool tracing;		       /* a trace of ours runs (unless a shutdown wrote it) */
	unsigned ntraces;	       /* traces started: files trace_path(1..ntraces) */
} g;

static tp_logger *quiet_logger;
static uint64_t input_started_ns; /* atomic: 0 between inputs; the watchdog reads it */

static _Thread_local struct ctx *cur;
static _Thread_local bool on_harness_thread; /* a client or the main thread: not a worker */
/* Set around tp_future_wait_nohelp(): the task it runs (if any) is not counted by the worker. */
static _Thread_local bool in_nohelp;
static unsigned inputs_run;

/* -----------------------------------------------------------------------------------------------
 * Reporting
 * -------------------------------------------------------------------------------------------- */

static const char *code_name(int e)
{
	switch (e) {
	case 0:
		return "0";
	case EINVAL:
		return "EINVAL";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case ECANCELED:
		return "ECANCELED";
	case ESHUTDOWN:
		return "ESHUTDOWN";
	case EDEADLK:
		return "EDEADLK";
	case ENOMEM:
		return "ENOMEM";
	case EBUSY:
		return "EBUSY";
	case ENOENT:
		return "ENOENT";
	case EOVERFLOW:
		return "EOVERFLOW";
	case 11:
		return "11 (a task's code)";
	case 200:
		return "200 (a task's code)";
	default:
		return "an unexpected code";
	}
}

static const char *state_name(tp_future_status s)
{
	static const char *const names[] = { "PENDING", "RUNNING", "DONE", "FAILED", "CANCELLED" };

	return (unsigned)s < 5 ? names[s] : "an invalid status";
}

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fuzz-api: invariant violated: %s\n", msg);
	if (cur != NULL)
		fprintf(stderr, "fuzz-api: in %s%s, operation %s\n", cur->name,
			cur->task != NULL && on_harness_thread
				? " (run on a thread outside the pool)"
				: "",
			cur->op != NULL ? cur->op : "(none)");
	else
		fprintf(stderr, "fuzz-api: on a %s\n",
			on_harness_thread ? "harness thread" : "worker (in a frame or loop body)");
	fprintf(stderr, "fuzz-api: pool of %zu workers, %d clients\n", g.workers, g.clients);
	abort();
}

/* -----------------------------------------------------------------------------------------------
 * Watchdog
 * -------------------------------------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void report_hang(void)
{
	int n = LD(&g.nslots);

	fprintf(stderr, "fuzz-api: invariant violated: one input ran for more than %d s (a hang)\n",
		FUZZ_HANG_SECONDS);
	for (int i = 0; i < g.clients; i++) {
		const char *w = LD(&g.client_where[i]);

		fprintf(stderr, "fuzz-api:   client %d: %s\n", i, w != NULL ? w : "(done)");
	}
	fprintf(stderr, "fuzz-api:   main thread: %s\n",
		LD(&g.main_where) != NULL ? LD(&g.main_where) : "joining the clients");
	for (int i = 0; i < n && i < MAX_SLOTS; i++) {
		struct slot *s = &g.slots[i];
		const char *w = LD(&s->where);

		if (LD(&s->ran) == 1 && w != NULL)
			fprintf(stderr, "fuzz-api:   task %d (depth %d): %s\n", i, s->depth, w);
	}
}

static void *watchdog_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec t = { 0, 100 * 1000000L };
		uint64_t t0;

		nanosleep(&t, NULL);
		t0 = LD(&input_started_ns);
		if (t0 != 0 && now_ns() - t0 > (uint64_t)FUZZ_HANG_SECONDS * 1000000000u) {
			const char *gdb = getenv("TP_FUZZ_HANG_GDB");

			report_hang();
			/* Every thread's stack, for a hang that does not reproduce at will. */
			if (gdb != NULL && *gdb != '\0' && strcmp(gdb, "0") != 0) {
				char cmd[128];

				snprintf(cmd, sizeof(cmd),
					 "gdb -p %d -batch -ex 'thread apply all bt' 1>&2",
					 (int)getpid());
				if (system(cmd) != 0)
					fprintf(stderr, "fuzz-api: %s failed\n", cmd);
			}
			abort();
		}
	}
	return NULL;
}

/* -----------------------------------------------------------------------------------------------
 * Checks shared by the operations
 * -------------------------------------------------------------------------------------------- */

static bool status_final(tp_future_status s)
{
	return s == TP_FUTURE_DONE || s == TP_FUTURE_FAILED || s == TP_FUTURE_CANCELLED;
}

/* `rc` is what a wait returned for f, which is final: both agree with task s. */
static void check_final(const struct slot *s, tp_future *f, int rc, const char *what)
{
	tp_future_status st = tp_future_state(f);
	long ran = LD(&s->ran);
	int res = tp_future_result(f);

	switch (st) {
	case TP_FUTURE_DONE:
		if (rc != 0 || s->code != 0 || ran != 1)
			fail("%s returned %s, the future of task %d is DONE, the task returns %d and ran %ld times",
			     what, code_name(rc), s->id, s->code, ran);
		break;
	case TP_FUTURE_FAILED:
		if (rc != s->code || s->code == 0 || ran != 1)
			fail("%s returned %s, the future of task %d is FAILED, the task returns %d and ran %ld times",
			     what, code_name(rc), s->id, s->code, ran);
		break;
	case TP_FUTURE_CANCELLED:
		if (rc != ECANCELED || ran != 0)
			fail("%s returned %s, the future of task %d is CANCELLED, and the task ran %ld times",
			     what, code_name(rc), s->id, ran);
		break;
	default:
		fail("%s returned %s but the future of task %d is %s, not final", what,
		     code_name(rc), s->id, state_name(st));
	}
	if (res != rc)
		fail("%s returned %s but tp_future_result() of task %d is %s", what, code_name(rc),
		     s->id, code_name(res));
}

/* Does the calling thread run task s, lower on its stack (so that waiting for it is EDEADLK)? */
static bool on_my_stack(const struct slot *s)
{
	for (const struct ctx *c = cur; c != NULL; c = c->below)
		if (c->task == s)
			return true;
	return false;
}

/* `rc` is what a wait for task s's future f returned; `timed`: it had a deadline. */
static void check_wait(const struct slot *s, tp_future *f, int rc, bool timed, const char *what)
{
	bool below = on_my_stack(s);

	if (rc == EDEADLK) {
		if (!below)
			fail("%s returned EDEADLK for task %d, which does not run below the caller on its stack",
			     what, s->id);
		return;
	}
	if (below && !(timed && rc == ETIMEDOUT))
		fail("%s returned %s for task %d, which runs below the caller on its stack (EDEADLK)",
		     what, code_name(rc), s->id);
	if (rc == ETIMEDOUT) {
		if (!timed)
			fail("%s without a deadline returned ETIMEDOUT", what);
		return;
	}
	check_final(s, f, rc, what);
}

/* tp_future_wait(); with FUZZ_HELP_WAIT_STARVES off, on a worker, a loop of short waits. */
static int wait_forever(tp_future *f)
{
	int rc;

	if (FUZZ_HELP_WAIT_STARVES || on_harness_thread)
		return tp_future_wait(f);
	do {
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += 1000000;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		rc = tp_future_wait_until(f, &t);
	} while (rc == ETIMEDOUT);
	return rc;
}

/* A submission from the calling thread was refused with code e: is that documented here? */
static void check_refused(const char *what, int e)
{
	if (e == ENOMEM)
		return;
	if (e != ESHUTDOWN)
		fail("%s failed with %d (%s): not a code it documents", what, e, code_name(e));
	if (!LD(&g.shutdown_begun))
		fail("%s refused with ESHUTDOWN before any shutdown began", what);
	if (!on_harness_thread && !(LD(&g.modes) & MODE_CANCEL_ASKED))
		fail("%s refused with ESHUTDOWN inside the pool, but no CANCEL shutdown was asked for (forks are accepted during a DRAIN)",
		     what);
}

/*
 * tp_current_pool() and tp_worker_index() agree with the calling thread: the pool and an index in
 * range on a worker, NULL and -1 on any other thread (also while it runs a task through
 * tp_future_wait_nohelp()). Returns the worker's index, or -1.
 */
static int check_where_am_i(const char *what)
{
	tp_pool *p = tp_current_pool();
	int i = tp_worker_index();

	if (on_harness_thread) {
		if (p != NULL || i != -1)
			fail("%s on a thread outside the pool: tp_current_pool() %p, tp_worker_index() %d (NULL, -1)",
			     what, (void *)p, i);
		return -1;
	}
	if (p == NULL || p != LD(&g.hook_pool) || i < 0 || (size_t)i >= g.workers)
		fail("%s on a worker: tp_current_pool() %p (the pool: %p), tp_worker_index() %d (%zu workers)",
		     what, (void *)p, (void *)LD(&g.hook_pool), i, g.workers);
	return i;
}

/* n submissions were accepted from the calling thread: on a worker, they are its forks. */
static void note_forks(long n)
{
	int i;

	if (on_harness_thread)
		return;
	i = check_where_am_i("a submission");
	__atomic_add_fetch(&g.forks_on[i], n, __ATOMIC_SEQ_CST);
}

/* The drop function of every task submitted with one: exactly once, never for a task that ran,
 * never for a refused one. */
static void drop_fn(void *arg)
{
	struct slot *s = arg;
	long n;

	if (s < g.slots || s >= g.slots + MAX_SLOTS)
		fail("a drop function got %p, not a task of this input", arg);
	n = INC(&s->dropped);
	if (!s->has_drop)
		fail("task %d was dropped but was submitted without a drop function", s->id);
	if (n != 1)
		fail("task %d was dropped %ld times", s->id, n);
	if (LD(&s->ran) != 0)
		fail("task %d was dropped although it ran", s->id);
	if (LD(&s->refused))
		fail("task %d was dropped although its submission was refused", s->id);
}

/* A task is final for good (its pool retired it, or a shutdown or the destroy returned): it ran
 * (and returned), or it never will and was dropped if it had a drop function; a failed detached
 * task reached the error handler once. `why` says why it must be final. */
static void check_settled(struct slot *s, bool cancel_may_run, const char *why)
{
	long ran = LD(&s->ran), errors = LD(&s->errors);

	if (ran > 1)
		fail("task %d ran %ld times", s->id, ran);
	if (ran == 1 && !LD(&s->finished))
		fail("%s, but task %d has not returned", why, s->id);
	if (s->detached && errors != (ran == 1 && s->code != 0))
		fail("%s: detached task %d ran %ld times, returns %d, and reached the error handler %ld times",
		     why, s->id, ran, s->code, errors);
	/* The drop of a cancel that another thread makes comes after its CAS, and a worker may
	 * retire the task in between. */
	if (s->has_drop && ran == 0 && LD(&s->cancel_busy) == 0 && !cancel_may_run &&
	    LD(&s->dropped) != 1)
		fail("%s: task %d never ran, and was dropped %ld times, not once", why, s->id,
		     LD(&s->dropped));
}

/* After a shutdown (or destroy) returned: every future is final and agrees with its mode. */
static void check_after_shutdown(const char *what)
{
	int modes = LD(&g.modes);
	int n = LD(&g.nslots);

	for (int i = 0; i < n && i < MAX_SLOTS; i++) {
		struct slot *s = &g.slots[i];
		tp_future *f = LD(&s->f);
		long ran;

		if (f != NULL) {
			tp_future_status st = tp_future_state(f);

			if (!status_final(st))
				fail("%s returned while the future of task %d is %s", what, i,
				     state_name(st));
			check_final(s, f, tp_future_result(f), what);
		}
		if (!LD(&s->accepted))
			continue;
		ran = LD(&s->ran);
		if (ran > 1)
			fail("task %d ran %ld times", i, ran);
		if (!(modes & MODE_CANCEL_ASKED) && !LD(&s->cancel_tried) && ran != 1)
			fail("%s (DRAIN) returned but accepted task %d never ran and nobody cancelled it",
			     what, i);
		check_settled(s, false, what);
	}
}

static int check_loop_rc(int rc, const char *what)
{
	if (rc == 0 || rc == ENOMEM)
		return rc;
	if (rc == ESHUTDOWN) {
		if (!LD(&g.shutdown_begun))
			fail("%s returned ESHUTDOWN before any shutdown began", what);
		return rc;
	}
	if (rc == ECANCELED && !FUZZ_LOOP_SHUTDOWN_CODE && LD(&g.shutdown_begun))
		return rc;
	fail("%s returned %d (%s): not a code it documents (0, EINVAL, ESHUTDOWN, ENOMEM)", what,
	     rc, code_name(rc));
}

/* -----------------------------------------------------------------------------------------------
 * Tasks and the references a program holds
 * -------------------------------------------------------------------------------------------- */

static struct slot *new_slot(int task_byte, int depth)
{
	int i = __atomic_fetch_add(&g.nslots, 1, __ATOMIC_SEQ_CST);
	struct slot *s;

	if (i >= MAX_SLOTS)
		return NULL;
	s = &g.slots[i];
	s->id = i;
	s->prog = (task_byte & 7) < N_TASK_PROGS ? (task_byte & 7) : -1;
	s->code = task_codes[(task_byte >> 3) & 3];
	s->depth = depth;
	s->submitter = cur != NULL ? cur->task : NULL;
	return s;
}

static void hold(struct ctx *c, tp_future *f, struct slot *s, bool own)
{
	if (c->nheld == MAX_HELD) {
		tp_future_release(f);
		return;
	}
	c->held[c->nheld].f = f;
	c->held[c->nheld].s = s;
	c->held[c->nheld].own = own;
	c->nheld++;
}

static struct held *pick(struct ctx *c, unsigned arg)
{
	return c->nheld > 0 ? &c->held[arg % (unsigned)c->nheld] : NULL;
}

static void drop(struct ctx *c, struct held *h)
{
	tp_future_release(h->f);
	*h = c->held[--c->nheld];
}

/* tp_future_retain(f) for a holder of a reference to task s's future: NULL (EOVERFLOW) only
 * when retain_many took its count to the top. */
static tp_future *retain(const struct slot *s, tp_future *f)
{
	tp_future *r;

	errno = 0;
	r = tp_future_retain(f);
	if (r == f || (r == NULL && errno == EOVERFLOW && LD(&s->at_limit)))
		return r;
	fail("tp_future_retain() returned %p with errno %d for %p (task %d)", (void *)r, errno,
	     (void *)f, s->id);
}

/* A submission of s was accepted with future f: the registry keeps a reference of its own. */
static void accepted(struct slot *s, tp_future *f)
{
	ST(&s->f, retain(s, f));
	ST(&s->accepted, 1);
}

static void run_prog(struct ctx *c, const struct prog *p);
static void sleep_us(unsigned us);

/* The child waits for its parent, which may be running below it on the same stack. */
static void wait_parent(struct slot *s)
{
	tp_future *pf = XCHG(&s->parent_ref, NULL);
	int rc;

	if (pf == NULL)
		return;
	rc = wait_forever(pf);
	check_wait(s->parent, pf, rc, false, "tp_future_wait() on the parent's future");
	tp_future_release(pf);
}

static int task_fn(void *arg)
{
	struct slot *s = arg;
	struct ctx *saved = cur;
	struct ctx c;
	bool by_nohelp = in_nohelp;
	long runs = INC(&s->ran);
	int w;

	in_nohelp = false; /* the task it ran is this one; what this one waits for is not */
	if (runs != 1)
		fail("task %d ran %ld times", s->id, runs);
	if (LD(&s->refused))
		fail("task %d ran although its submission was refused", s->id);
	if (LD(&s->cancelled))
		fail("task %d ran although tp_future_cancel() returned true for it", s->id);
	if (LD(&s->dropped))
		fail("task %d ran although it was dropped", s->id);
	w = check_where_am_i("a task");
	if (w >= 0 && !by_nohelp)
		INC(&g.runs_on[w]);
	c.task = s;
	c.depth = s->depth;
	c.client = -1;
	c.op = NULL;
	c.below = saved;
	c.nheld = 0;
	snprintf(c.name, sizeof(c.name), "task %d (depth %d)", s->id, s->depth);
	cur = &c;
	ST(&s->where, "starting");
	if (s->parent != NULL)
		wait_parent(s);
	if (s->prog >= 0 && s->depth < MAX_DEPTH)
		run_prog(&c, &g.progs[FIRST_TASK_PROG + s->prog]);
	while (c.nheld > 0)
		drop(&c, &c.held[0]);
	ST(&s->where, NULL);
	cur = saved;
	ST(&s->finished, 1);
	return s->code;
}

/* The calling task's own future (its submitter publishes it right after tp_enqueue returns). */
static tp_future *own_future(struct slot *self)
{
	tp_future *f;

	while ((f = LD(&self->f)) == NULL)
		sched_yield();
	return f;
}

/* A task waits for its own future (FUZZ_ANCESTOR_WAIT): it runs lower on this very stack. */
static void op_wait_self(struct ctx *c, unsigned arg)
{
	static const struct timespec past = { 0, 0 };
	tp_future *f;
	int rc;

	if (!FUZZ_ANCESTOR_WAIT || c->task == NULL || !LD(&c->task->has_f))
		return;
	f = retain(c->task, own_future(c->task));
	if (f == NULL)
		return;
	rc = (arg & 1) ? tp_future_wait_until(f, &past) : tp_future_wait(f);
	check_wait(c->task, f, rc, (arg & 1) != 0, "a task's wait for its own future");
	tp_future_release(f);
}

/* -----------------------------------------------------------------------------------------------
 * Submitting
 * -------------------------------------------------------------------------------------------- */

/* ex: tp_enqueue_ex(), with drop_fn unless bit 7 of arg is set. */
static void op_enqueue(struct ctx *c, unsigned arg, bool ex)
{
	struct slot *s = new_slot((int)arg, c->depth + 1);
	bool wait_for_parent =
		FUZZ_ANCESTOR_WAIT && (arg & 32) && c->task != NULL && LD(&c->task->has_f);
	const char *what = ex ? "tp_enqueue_ex()" : "tp_enqueue()";
	tp_future *f;

	if (s == NULL)
		return;
	if (wait_for_parent) {
		s->parent = c->task;
		s->parent_ref = retain(c->task, own_future(c->task)); /* NULL: no wait */
	}
	s->has_drop = ex && !(arg & 128);
	ST(&s->has_f, 1);
	errno = 0;
	f = ex ? tp_enqueue_ex(g.pool, task_fn, s, s->has_drop ? drop_fn : NULL)
	       : tp_enqueue(g.pool, task_fn, s);
	if (f == NULL) {
		int e = errno;
		tp_future *pf = XCHG(&s->parent_ref, NULL);

		ST(&s->refused, 1);
		ST(&s->has_f, 0);
		tp_future_release(pf);
		check_refused(what, e);
		return;
	}
	accepted(s, f);
	note_forks(1);
	if (arg & 64)
		tp_future_release(f);
	else
		/* Never wait without a deadline for a child that waits for us. */
		hold(c, f, s, !wait_for_parent);
}

static void op_batch(struct ctx *c, unsigned arg)
{
	struct slot *s[MAX_BATCH];
	void *args[MAX_BATCH];
	tp_future *out[MAX_BATCH];
	size_t n = arg >> 5;
	int rc;

	for (size_t i = 0; i < n; i++) {
		/* Members differ in their code: the task byte's code bits plus i. */
		s[i] = new_slot((int)((arg & 7) | (((arg >> 3) + i) & 3) << 3), c->depth + 1);
		if (s[i] == NULL)
			return; /* out of slots: the taken ones stay unused */
		ST(&s[i]->has_f, 1);
		args[i] = s[i];
	}
	rc = tp_enqueue_batch(g.pool, task_fn, args, n, out);
	if (rc != 0) {
		for (size_t i = 0; i < n; i++) {
			ST(&s[i]->refused, 1);
			ST(&s[i]->has_f, 0);
		}
		check_refused("tp_enqueue_batch()", rc);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		accepted(s[i], out[i]);
		hold(c, out[i], s[i], true);
	}
	note_forks((long)n);
}

/* Detached tasks: tp_submit() and tp_submit_ex(). Their program never waits for their own
 * future (they have none: has_f stays 0). */
static void op_submit(struct ctx *c, unsigned arg)
{
	unsigned how = (arg >> 5) & 3;
	int n = how == 3 ? 3 : 1;

	for (int i = 0; i < n; i++) {
		struct slot *s = new_slot((int)(arg & 31), c->depth + 1);
		int rc;

		if (s == NULL)
			return;
		s->detached = true;
		s->has_drop = how == 1 || how == 3;
		rc = how == 0 ? tp_submit(g.pool, task_fn, s)
			      : tp_submit_ex(g.pool, task_fn, s, s->has_drop ? drop_fn : NULL);
		if (rc != 0) {
			ST(&s->refused, 1);
			check_refused(how == 0 ? "tp_submit()" : "tp_submit_ex()", rc);
			continue;
		}
		ST(&s->accepted, 1);
		note_forks(1);
	}
}

/* -----------------------------------------------------------------------------------------------
 * Futures
 * -------------------------------------------------------------------------------------------- */

static void op_cancel(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);
	tp_future_status st;
	bool ok;

	if (h == NULL)
		return;
	ST(&h->s->cancel_tried, 1);
	INC(&h->s->cancel_busy);
	ok = tp_future_cancel(h->f);
	st = tp_future_state(h->f);
	if (ok) {
		if (st != TP_FUTURE_CANCELLED)
			fail("tp_future_cancel() returned true but task %d is %s", h->s->id,
			     state_name(st));
		if (LD(&h->s->ran) != 0)
			fail("tp_future_cancel() returned true but task %d ran", h->s->id);
		ST(&h->s->cancelled, 1);
		/* Its drop function ran on this thread, unless another canceller won the CAS and
		 * still runs it (a cancel of another thread, or a worker's in a CANCEL shutdown). */
		if (h->s->has_drop && LD(&h->s->cancel_busy) == 1 &&
		    !(LD(&g.modes) & MODE_CANCEL_ASKED) && LD(&h->s->dropped) != 1)
			fail("tp_future_cancel() returned true, but task %d was dropped %ld times",
			     h->s->id, LD(&h->s->dropped));
	} else if (st == TP_FUTURE_PENDING || st == TP_FUTURE_CANCELLED) {
		fail("tp_future_cancel() returned false but task %d is %s", h->s->id,
		     state_name(st));
	}
	__atomic_sub_fetch(&h->s->cancel_busy, 1, __ATOMIC_SEQ_CST);
}

/*
 * May the calling program wait for h without a deadline? A task on a worker that waits with
 * tp_future_wait_nohelp() runs nothing else: not for a task a client may be running (it may
 * need this worker), which only a shared one can be.
 */
static bool may_block_on(const struct ctx *c, const struct held *h, bool nohelp)
{
	/* One that runs below us on this stack: EDEADLK at once (FUZZ_ANCESTOR_WAIT). */
	if (c->task == NULL || (FUZZ_ANCESTOR_WAIT && on_my_stack(h->s)))
		return true;
	return h->own && !(nohelp && !on_harness_thread && LD(&h->s->shared));
}

static void op_wait(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);
	static const struct timespec past = { 0, 0 };

	if (h == NULL)
		return;
	if (may_block_on(c, h, false))
		check_wait(h->s, h->f, wait_forever(h->f), false, "tp_future_wait()");
	else
		check_wait(h->s, h->f, tp_future_wait_until(h->f, &past), true,
			   "tp_future_wait_until(past)");
}

enum deadline_kind {
	DL_NONE,
	DL_ZERO,     /* { 0, 0 } */
	DL_PAST,     /* a millisecond ago */
	DL_TINY,     /* a few microseconds from now */
	DL_SHORT,    /* 200 microseconds from now */
	DL_NEG,	     /* { -1, 0 } */
	DL_NEG_NSEC, /* { -100, 999999999 } */
	DL_INVALID,  /* tv_nsec out of range: EINVAL */
};

/* Fills *t for kind k; NULL for no deadline. */
static const struct timespec *make_deadline(struct timespec *t, unsigned k, unsigned arg)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!FUZZ_NEGATIVE_DEADLINE && (k == DL_NEG || k == DL_NEG_NSEC))
		k = DL_ZERO;
	switch (k) {
	case DL_NONE:
		return NULL;
	case DL_ZERO:
		t->tv_sec = 0;
		t->tv_nsec = 0;
		break;
	case DL_PAST:
		t->tv_sec = now.tv_sec - 1;
		t->tv_nsec = now.tv_nsec;
		break;
	case DL_TINY:
	case DL_SHORT:
		*t = now;
		t->tv_nsec += k == DL_TINY ? (long)(arg & 15) * 1000 : 200000;
		if (t->tv_nsec >= 1000000000L) {
			t->tv_sec++;
			t->tv_nsec -= 1000000000L;
		}
		break;
	case DL_NEG:
		t->tv_sec = -1;
		t->tv_nsec = 0;
		break;
	case DL_NEG_NSEC:
		t->tv_sec = -100;
		t->tv_nsec = 999999999;
		break;
	default:
		t->tv_sec = now.tv_sec;
		t->tv_nsec = (arg & 1) ? 1000000000L : -1;
		break;
	}
	return t;
}

static void op_timed_wait(struct ctx *c, unsigned arg, bool nohelp)
{
	struct held *h = pick(c, arg & 15);
	unsigned kind = (arg >> 4) & 7;
	struct timespec t;
	const struct timespec *dl;
	const char *what;
	int rc;

	if (h == NULL)
		return;
	if (nohelp && on_harness_thread && !FUZZ_NOHELP_OUTSIDE)
		nohelp = false;
	if (kind == DL_NONE && !may_block_on(c, h, nohelp))
		kind = DL_ZERO;
	dl = make_deadline(&t, kind, arg);
	what = nohelp ? "tp_future_wait_nohelp()" : "tp_future_wait_until()";
	if (nohelp) {
		in_nohelp = true;
		rc = tp_future_wait_nohelp(h->f, dl);
		in_nohelp = false;
	} else {
		rc = dl == NULL ? wait_forever(h->f) : tp_future_wait_until(h->f, dl);
	}
	if (kind == DL_INVALID) {
		if (rc != EINVAL)
			fail("%s with tv_nsec %ld returned %s, not EINVAL", what, t.tv_nsec,
			     code_name(rc));
		return;
	}
	check_wait(h->s, h->f, rc, dl != NULL, what);
}

static void op_retain(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);
	tp_future *r;

	if (h == NULL)
		return;
	r = retain(h->s, h->f);
	if (r != NULL)
		hold(c, r, h->s, h->own);
}

static void op_release(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);

	if (h != NULL)
		drop(c, h);
}

/* Hands another reference to whoever takes it from the mailbox. */
static void op_share(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);
	tp_future *r;

	if (h == NULL)
		return;
	ST(&h->s->shared, 1);
	r = retain(h->s, h->f);
	if (r == NULL)
		return;
	pthread_mutex_lock(&g.lock);
	if (g.nmail < MAILBOX_SIZE) {
		g.mailbox[g.nmail].f = r;
		g.mailbox[g.nmail].s = h->s;
		g.mailbox[g.nmail].own = false;
		g.nmail++;
		r = NULL;
	}
	pthread_mutex_unlock(&g.lock);
	tp_future_release(r);
}

static void op_take(struct ctx *c, unsigned arg)
{
	struct held m = { NULL, NULL, false };

	pthread_mutex_lock(&g.lock);
	if (g.nmail > 0) {
		unsigned i = arg % (unsigned)g.nmail;

		m = g.mailbox[i];
		g.mailbox[i] = g.mailbox[--g.nmail];
	}
	pthread_mutex_unlock(&g.lock);
	if (m.f != NULL)
		hold(c, m.f, m.s, false);
}

static void op_state(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);
	tp_future_status st;
	int r1, r2;

	if (h == NULL)
		return;
	r1 = tp_future_result(h->f);
	st = tp_future_state(h->f);
	r2 = tp_future_result(h->f);
	if ((unsigned)st > TP_FUTURE_CANCELLED)
		fail("tp_future_state() of task %d returned %d", h->s->id, (int)st);
	if (r1 != EBUSY && (!status_final(st) || r1 != r2))
		fail("tp_future_result() of task %d was %s, then the state %s and the result %s",
		     h->s->id, code_name(r1), state_name(st), code_name(r2));
	if (status_final(st))
		check_final(h->s, h->f, r2, "tp_future_result()");
	else if (st == TP_FUTURE_PENDING && LD(&h->s->cancelled))
		fail("task %d is PENDING after tp_future_cancel() returned true", h->s->id);
}

/* Retains up to the reference count's limit: it must refuse, never wrap. */
static void op_retain_many(struct ctx *c, unsigned arg)
{
	struct held *h = pick(c, arg);
	int got = 0;

	if (h == NULL)
		return;
#if FUZZ_RETAIN_OVERFLOW
	/* One at a time per future; the others' retains may be refused meanwhile (retain()). */
	if (__atomic_exchange_n(&h->s->limit_lock, 1, __ATOMIC_SEQ_CST))
		return;
	ST(&h->s->at_limit, 1);
	{
		uint32_t *word = (uint32_t *)(void *)h->f; /* struct tp_future begins with it */
		uint32_t max = UINT32_MAX >> TP__REF_SHIFT;
		uint32_t refs = __atomic_load_n(word, __ATOMIC_SEQ_CST) >> TP__REF_SHIFT;
		uint32_t skip = max - refs - 4;
		bool refused = false;

		_Static_assert(offsetof(struct tp_future, word) == 0, "the word comes first");
		/* As if `skip` other owners had retained it; taken back below. */
		__atomic_fetch_add(word, skip * TP__REF_ONE, __ATOMIC_SEQ_CST);
		for (int i = 0; i < 64 && !refused; i++) {
			tp_future *r;

			errno = 0;
			r = tp_future_retain(h->f);
			refs = __atomic_load_n(word, __ATOMIC_SEQ_CST) >> TP__REF_SHIFT;
			if (r == NULL) {
				if (errno != EOVERFLOW)
					fail("tp_future_retain() at the limit returned NULL with errno %d, not EOVERFLOW",
					     errno);
				refused = true;
			} else if (r != h->f) {
				fail("tp_future_retain() returned %p for %p", (void *)r,
				     (void *)h->f);
			} else {
				got++;
			}
			if (refs < max - 128)
				fail("tp_future_retain() wrapped the reference count of task %d: %u references after %d more at the limit (%u); it must refuse with NULL and EOVERFLOW",
				     h->s->id, refs, got, max);
		}
		if (!refused)
			fail("tp_future_retain() never refused at the top of the reference count (%u)",
			     max);
		for (int i = 0; i < got; i++)
			tp_future_release(h->f);
		__atomic_fetch_sub(word, skip * TP__REF_ONE, __ATOMIC_SEQ_CST);
	}
	ST(&h->s->limit_lock, 0);
#else
	for (; got < 100; got++)
		if (tp_future_retain(h->f) != h->f)
			fail("tp_future_retain() did not return its argument");
	while (got-- > 0)
		tp_future_release(h->f);
#endif
}

/* -----------------------------------------------------------------------------------------------
 * Shutdown
 * -------------------------------------------------------------------------------------------- */

static void shutdown_from_client(tp_shutdown_mode mode, const char *what)
{
	int rc;

	ST(&g.shutdown_begun, 1);
	OR(&g.modes, mode == TP_SHUTDOWN_CANCEL ? MODE_CANCEL_ASKED : MODE_DRAIN_ASKED);
	if (cur != NULL && cur->client < 0 && cur->task == NULL)
		ST(&g.main_where, what);
	rc = tp_pool_shutdown(g.pool, mode);
	if (rc != 0)
		fail("%s returned %s, not 0", what, code_name(rc));
	check_after_shutdown(what);
}

static void op_shutdown(struct ctx *c, unsigned arg)
{
	tp_shutdown_mode mode = (arg & 1) ? TP_SHUTDOWN_CANCEL : TP_SHUTDOWN_DRAIN;
	const char *what =
		mode == TP_SHUTDOWN_CANCEL ? "tp_pool_shutdown(CANCEL)" : "tp_pool_shutdown(DRAIN)";

	if (c->task != NULL) {
		int rc = tp_pool_shutdown(g.pool, mode);

		if (rc != EDEADLK)
			fail("%s from a task returned %s, not EDEADLK", what, code_name(rc));
		return;
	}
	if (!FUZZ_CONCURRENT_SHUTDOWN && c->client != 0)
		return;
	shutdown_from_client(mode, what);
}

static void op_destroy_in_task(struct ctx *c)
{
	if (c->task == NULL)
		return;
	/* A task run by tp_future_wait_nohelp() on a client thread: make sure it counts as a task
	 * before the destroy (which would free the pool under everybody otherwise). */
	if (on_harness_thread && tp_pool_shutdown(g.pool, TP_SHUTDOWN_DRAIN) != EDEADLK)
		fail("tp_pool_shutdown() from a task run by tp_future_wait_nohelp() did not return EDEADLK");
	tp_pool_destroy(g.pool); /* documented: logs an error and does nothing */
	if (tp_pool_size(g.pool) != g.workers)
		fail("tp_pool_destroy() from a task changed the pool");
}

/* -----------------------------------------------------------------------------------------------
 * Groups
 * -------------------------------------------------------------------------------------------- */

static void check_group(struct slot **m, int n, int rc, bool cancelled)
{
	bool failed = false, rc_seen = false;

	for (int i = 0; i < n; i++) {
		long ran = LD(&m[i]->ran);

		if (ran > 1)
			fail("group member %d ran %ld times", m[i]->id, ran);
		if (ran == 0 && !cancelled && !(LD(&g.modes) & MODE_CANCEL_ASKED))
			fail("tp_group_wait() returned but member %d never ran", m[i]->id);
		/* tp_group_cancel() dropped the cancelled members on this thread; a CANCEL
		 * shutdown's worker drops a member after the status that the wait sees. */
		check_settled(m[i], (LD(&g.modes) & MODE_CANCEL_ASKED) != 0,
			      "tp_group_wait() returned");
		if (ran == 1 && m[i]->code != 0) {
			failed = true;
			rc_seen |= rc == m[i]->code;
		}
	}
	if (failed && !rc_seen)
		fail("tp_group_wait() returned %s, not the code of a member that failed",
		     code_name(rc));
	if (!failed && rc != (cancelled ? ECANCELED : 0))
		fail("tp_group_wait() returned %s; no member failed and the group was %scancelled",
		     code_name(rc), cancelled ? "" : "not ");
}

/* A member: tp_group_spawn(), or with ex tp_group_spawn_ex() (a drop function when `i` is even). */
static int group_spawn(tp_group *grp, struct slot *s, bool ex, int i)
{
	if (!ex)
		return tp_group_spawn(grp, task_fn, s);
	s->has_drop = i % 2 == 0;
	return tp_group_spawn_ex(grp, task_fn, s, s->has_drop ? drop_fn : NULL);
}

static void op_group(struct ctx *c, unsigned arg, bool ex)
{
	struct slot *m[5];
	int n = 1 + (int)((arg >> 5) & 3), k = 0, rc;
	bool cancel = (arg & 128) != 0;
	const char *spawn_name = ex ? "tp_group_spawn_ex()" : "tp_group_spawn()";
	tp_group grp;

	rc = tp_group_init(&grp, g.pool);
	if (rc != 0)
		fail("tp_group_init() returned %s", code_name(rc));
	for (int i = 0; i < n; i++) {
		struct slot *s = new_slot((int)((arg & 7) | (((arg >> 3) + (unsigned)i) & 3) << 3),
					  c->depth + 1);

		if (s == NULL)
			break;
		rc = group_spawn(&grp, s, ex, i);
		if (rc != 0) {
			ST(&s->refused, 1);
			check_refused(spawn_name, rc);
			continue;
		}
		ST(&s->accepted, 1);
		note_forks(1);
		m[k++] = s;
	}
	if (cancel) {
		struct slot *s;

		for (int i = 0; i < k; i++) {
			ST(&m[i]->cancel_tried, 1);
			INC(&m[i]->cancel_busy);
		}
		tp_group_cancel(&grp);
		for (int i = 0; i < k; i++)
			__atomic_sub_fetch(&m[i]->cancel_busy, 1, __ATOMIC_SEQ_CST);
		s = new_slot(0, c->depth + 1);
		if (s != NULL) {
			ST(&s->refused, 1);
			rc = group_spawn(&grp, s, ex, 0);
			if (rc != ECANCELED)
				fail("%s after tp_group_cancel() returned %s, not ECANCELED",
				     spawn_name, code_name(rc));
		}
	}
	rc = tp_group_wait(&grp);
	check_group(m, k, rc, cancel);
	/* Reusable after the wait: one more member, not cancelled. */
	k = 0;
	m[0] = new_slot(5, c->depth + 1);
	if (m[0] != NULL) {
		rc = group_spawn(&grp, m[0], ex, 0);
		if (rc != 0) {
			ST(&m[0]->refused, 1);
			check_refused(ex ? "tp_group_spawn_ex() after tp_group_wait()"
					 : "tp_group_spawn() after tp_group_wait()",
				      rc);
		} else {
			ST(&m[0]->accepted, 1);
			note_forks(1);
			k = 1;
		}
	}
	check_group(m, k, tp_group_wait(&grp), false);
}

/* -----------------------------------------------------------------------------------------------
 * Loops
 * -------------------------------------------------------------------------------------------- */

struct for_ctx {
	long *counts;
	size_t begin, n;
	bool nested;
};

static void for_body(size_t b, size_t e, void *p);

/* From inside a loop body: a nested loop, always run where it is called. */
static void inner_for(void)
{
	long counts[INNER_LOOP] = { 0 };
	struct for_ctx fc = { counts, 0, INNER_LOOP, false };
	int rc = check_loop_rc(tp_parallel_for(g.pool, 0, INNER_LOOP, 1, for_body, &fc),
			       "nested tp_parallel_for()");

	for (int i = 0; i < INNER_LOOP; i++)
		if (counts[i] != (rc == 0))
			fail("nested tp_parallel_for() returned %s and ran iteration %d %ld times",
			     code_name(rc), i, counts[i]);
}

static void for_body(size_t b, size_t e, void *p)
{
	struct for_ctx *fc = p;

	if (b < fc->begin || e > fc->begin + fc->n || b >= e)
		fail("tp_parallel_for() body got [%zu, %zu) for a loop over [%zu, %zu)", b, e,
		     fc->begin, fc->begin + fc->n);
	for (size_t i = b; i < e; i++) {
		INC(&fc->counts[i - fc->begin]);
		if (fc->nested)
			inner_for();
	}
}

static void op_for(struct ctx *c, unsigned arg)
{
	long counts[MAX_LOOP] = { 0 };
	struct for_ctx fc = { counts, 1000, arg & 31, (arg & 32) != 0 };
	int rc = tp_parallel_for(g.pool, fc.begin, fc.begin + fc.n, arg >> 6, for_body, &fc);

	(void)c;
	rc = check_loop_rc(rc, "tp_parallel_for()");
	for (size_t i = 0; i < fc.n; i++)
		if (LD(&counts[i]) != (rc == 0))
			fail("tp_parallel_for() returned %s and ran iteration %zu %ld times",
			     code_name(rc), fc.begin + i, LD(&counts[i]));
}

/* A reduction whose combine checks the order: each accumulator is one contiguous range. */
struct acc {
	uint64_t lo, hi, count, sum, bad;
};

struct reduce_ctx {
	size_t begin, n;
	bool nested;
};

static void reduce_body(size_t b, size_t e, void *accp, void *p);

static void acc_combine(void *accp, const void *otherp, void *p)
{
	struct acc *a = accp;
	const struct acc *o = otherp;

	(void)p;
	if (o->count == 0)
		return;
	if (a->count == 0) {
		*a = *o;
		return;
	}
	if (a->hi != o->lo || a->bad || o->bad)
		a->bad = 1;
	a->hi = o->hi;
	a->count += o->count;
	a->sum += o->sum;
}

static uint64_t sum_range(uint64_t b, uint64_t e)
{
	return e > b ? (b + e - 1) * (e - b) / 2 : 0;
}

static void check_acc(const struct acc *a, const struct reduce_ctx *rc, const char *what)
{
	if (a->bad || a->count != rc->n || a->sum != sum_range(rc->begin, rc->begin + rc->n) ||
	    (rc->n > 0 && (a->lo != rc->begin || a->hi != rc->begin + rc->n)))
		fail("%s over [%zu, %zu) gave [%llu, %llu), %llu iterations, sum %llu%s", what,
		     rc->begin, rc->begin + rc->n, (unsigned long long)a->lo,
		     (unsigned long long)a->hi, (unsigned long long)a->count,
		     (unsigned long long)a->sum, a->bad ? ", combined out of order" : "");
}

static void inner_reduce(void)
{
	static const struct acc identity = { 0 };
	struct reduce_ctx rc = { 0, INNER_LOOP, false };
	struct acc res;
	int e;

	e = tp_parallel_reduce(g.pool, 0, INNER_LOOP, 1, &res, &identity, sizeof(res), reduce_body,
			       acc_combine, &rc);
	if (check_loop_rc(e, "nested tp_parallel_reduce()") == 0)
		check_acc(&res, &rc, "nested tp_parallel_reduce()");
}

static void reduce_body(size_t b, size_t e, void *accp, void *p)
{
	struct acc *a = accp;
	const struct reduce_ctx *rc = p;

	if (b < rc->begin || e > rc->begin + rc->n || b >= e)
		fail("tp_parallel_reduce() body got [%zu, %zu) for a loop over [%zu, %zu)", b, e,
		     rc->begin, rc->begin + rc->n);
	if (a->count == 0)
		a->lo = b;
	else if (a->hi != b)
		a->bad = 1;
	a->hi = e;
	a->count += e - b;
	a->sum += sum_range(b, e);
	if (rc->nested)
		inner_reduce();
}

static void op_reduce(struct ctx *c, unsigned arg)
{
	static const struct acc identity = { 0 };
	struct reduce_ctx rc = { 500, arg & 31, (arg & 32) != 0 };
	struct acc res, untouched;
	int e;

	(void)c;
	memset(&res, 0xA5, sizeof(res));
	untouched = res;
	e = tp_parallel_reduce(g.pool, rc.begin, rc.begin + rc.n, arg >> 6, &res, &identity,
			       sizeof(res), reduce_body, acc_combine, &rc);
	if (check_loop_rc(e, "tp_parallel_reduce()") == 0)
		check_acc(&res, &rc, "tp_parallel_reduce()");
	else if (memcmp(&res, &untouched, sizeof(res)) != 0)
		fail("tp_parallel_reduce() returned %s but wrote the result", code_name(e));
}

/* -----------------------------------------------------------------------------------------------
 * Fork-join frames
 * -------------------------------------------------------------------------------------------- */

struct frame_arg {
	int depth;
	int code_idx;
	bool reverse;
	bool leaf_submits;
	long *runs;
};

static int frame_code(const struct frame_arg *a)
{
	return task_codes[a->code_idx & 3];
}

/* A leaf that submits a task and waits for it (a descendant: safe to wait for). */
static void leaf_submit(void)
{
	struct slot *s = new_slot(5 | 2 << 3, MAX_DEPTH);
	tp_future *f;

	if (s == NULL)
		return;
	ST(&s->has_f, 1);
	errno = 0;
	f = tp_enqueue(g.pool, task_fn, s);
	if (f == NULL) {
		int e = errno;

		ST(&s->refused, 1);
		ST(&s->has_f, 0);
		check_refused("tp_enqueue() from a frame", e);
		return;
	}
	accepted(s, f);
	note_forks(1);
	check_wait(s, f, wait_forever(f), false, "tp_future_wait() in a frame");
	tp_future_release(f);
}

static int frame_fn(void *p)
{
	struct frame_arg *a = p;

	INC(a->runs);
	if (a->depth > 0) {
		struct frame_arg kids[2];
		tp_frame t[2];

		for (int k = 0; k < 2; k++) {
			kids[k] = *a;
			kids[k].depth = a->depth - 1;
			kids[k].code_idx = a->code_idx + k + 1;
		}
		tp_spawn(&t[0], frame_fn, &kids[0]);
		tp_spawn(&t[1], frame_fn, &kids[1]);
		for (int j = 0; j < 2; j++) {
			int k = a->reverse ? 1 - j : j;
			int rc = tp_join(&t[k]);

			if (rc != frame_code(&kids[k]))
				fail("tp_join() returned %s, its frame returned %d", code_name(rc),
				     frame_code(&kids[k]));
		}
	} else if (a->leaf_submits) {
		leaf_submit();
	}
	return frame_code(a);
}

static void op_spawn(struct ctx *c, unsigned arg)
{
	struct frame_arg roots[MAX_SPAWN_ROOTS];
	tp_frame t[MAX_SPAWN_ROOTS];
	int n = 1 + (int)(arg & 3), depth = (int)((arg >> 2) & 3);
	bool reverse = (arg & 16) != 0;
	long runs = 0, want = (long)n * ((2L << depth) - 1);

	(void)c;
	for (int i = 0; i < n; i++) {
		roots[i].depth = depth;
		roots[i].code_idx = (int)((arg >> 5) & 3) + i;
		roots[i].reverse = reverse;
		roots[i].leaf_submits = (arg & 128) != 0;
		roots[i].runs = &runs;
		tp_spawn(&t[i], frame_fn, &roots[i]);
	}
	for (int j = 0; j < n; j++) {
		int i = reverse ? n - 1 - j : j;
		int rc = tp_join(&t[i]);

		if (rc != frame_code(&roots[i]))
			fail("tp_join() returned %s, its frame returned %d", code_name(rc),
			     frame_code(&roots[i]));
	}
	if (LD(&runs) != want)
		fail("%d spawns of depth %d ran %ld frames, not %ld", n, depth, LD(&runs), want);
}

/* -----------------------------------------------------------------------------------------------
 * Bad arguments: each documented EINVAL (or no-op)
 * -------------------------------------------------------------------------------------------- */

static void expect(bool ok, const char *call)
{
	if (!ok)
		fail("%s: not what the header documents", call);
}

static int nop_task(void *arg)
{
	(void)arg;
	fail("a task given only to calls that must refuse it ran");
}

static void nop_for(size_t b, size_t e, void *p)
{
	(void)b;
	(void)e;
	(void)p;
	fail("a loop body given only to calls that must refuse it ran");
}

static void nop_reduce(size_t b, size_t e, void *acc, void *p)
{
	(void)acc;
	nop_for(b, e, p);
}

static int nop_try_for(size_t b, size_t e, void *p)
{
	nop_for(b, e, p);
	return 0;
}

static void op_bad_args(struct ctx *c, unsigned arg)
{
	static const struct acc identity = { 0 };
	void *args[2] = { NULL, NULL };
	tp_future *out[2];
	struct acc res;
	tp_group grp;
	tp_frame t;

	switch (arg % 12) {
	case 0:
		errno = 0;
		expect(tp_enqueue(NULL, nop_task, NULL) == NULL && errno == EINVAL,
		       "tp_enqueue(NULL pool)");
		errno = 0;
		expect(tp_enqueue(g.pool, NULL, NULL) == NULL && errno == EINVAL,
		       "tp_enqueue(NULL fn)");
		break;
	case 1:
		expect(tp_future_wait(NULL) == EINVAL, "tp_future_wait(NULL)");
		expect(tp_future_wait_until(NULL, NULL) == EINVAL, "tp_future_wait_until(NULL)");
		expect(tp_future_wait_nohelp(NULL, NULL) == EINVAL, "tp_future_wait_nohelp(NULL)");
		break;
	case 2:
		expect(!tp_future_cancel(NULL), "tp_future_cancel(NULL)");
		expect(tp_future_state(NULL) == TP_FUTURE_CANCELLED, "tp_future_state(NULL)");
		expect(tp_future_result(NULL) == EINVAL, "tp_future_result(NULL)");
		errno = 0;
		expect(tp_future_retain(NULL) == NULL && errno == EINVAL, "tp_future_retain(NULL)");
		tp_future_release(NULL);
		break;
	case 3:
		expect(tp_enqueue_batch(NULL, nop_task, args, 2, out) == EINVAL,
		       "tp_enqueue_batch(NULL pool)");
		expect(tp_enqueue_batch(g.pool, NULL, args, 2, out) == EINVAL,
		       "tp_enqueue_batch(NULL fn)");
		expect(tp_enqueue_batch(g.pool, nop_task, NULL, 2, out) == EINVAL,
		       "tp_enqueue_batch(NULL args)");
		expect(tp_enqueue_batch(g.pool, nop_task, args, 2, NULL) == EINVAL,
		       "tp_enqueue_batch(NULL out)");
		expect(tp_enqueue_batch(g.pool, nop_task, NULL, 0, NULL) == 0,
		       "tp_enqueue_batch(n = 0)");
		break;
	case 4:
		expect(tp_pool_shutdown(NULL, TP_SHUTDOWN_DRAIN) == EINVAL,
		       "tp_pool_shutdown(NULL pool)");
		/* Must have no effect: a later ESHUTDOWN would then fail check_refused(). */
		expect(tp_pool_shutdown(g.pool, (tp_shutdown_mode)7) == EINVAL,
		       "tp_pool_shutdown(unknown mode)");
		expect(tp_pool_shutdown(g.pool, (tp_shutdown_mode)-1) == EINVAL,
		       "tp_pool_shutdown(unknown mode)");
		tp_pool_destroy(NULL);
		break;
	case 5:
		expect(tp_group_init(NULL, g.pool) == EINVAL, "tp_group_init(NULL group)");
		expect(tp_group_init(&grp, NULL) == EINVAL, "tp_group_init(NULL pool)");
		expect(tp_group_spawn(NULL, nop_task, NULL) == EINVAL, "tp_group_spawn(NULL)");
		expect(tp_group_wait(NULL) == EINVAL, "tp_group_wait(NULL)");
		tp_group_cancel(NULL);
		expect(tp_group_init(&grp, g.pool) == 0, "tp_group_init()");
		expect(tp_group_spawn(&grp, NULL, NULL) == EINVAL, "tp_group_spawn(NULL fn)");
		expect(tp_group_wait(&grp) == 0, "tp_group_wait(empty group)");
		break;
	case 6:
		expect(tp_parallel_for(NULL, 0, 1, 0, nop_for, NULL) == EINVAL,
		       "tp_parallel_for(NULL pool)");
		expect(tp_parallel_for(g.pool, 0, 1, 0, NULL, NULL) == EINVAL,
		       "tp_parallel_for(NULL body)");
		expect(tp_parallel_for(g.pool, 2, 1, 0, nop_for, NULL) == EINVAL,
		       "tp_parallel_for(begin > end)");
		break;
	case 7:
		expect(tp_parallel_reduce(g.pool, 0, 4, 1, &res, &identity, 0, nop_reduce,
					  acc_combine, NULL) == EINVAL,
		       "tp_parallel_reduce(acc_size 0)");
		expect(tp_parallel_try_for(NULL, 0, 1, 0, nop_try_for, NULL) == EINVAL,
		       "tp_parallel_try_for(NULL pool)");
		expect(tp_parallel_try_for(g.pool, 0, 1, 0, NULL, NULL) == EINVAL,
		       "tp_parallel_try_for(NULL body)");
		expect(tp_parallel_try_for(g.pool, 2, 1, 0, nop_try_for, NULL) == EINVAL,
		       "tp_parallel_try_for(begin > end)");
		expect(tp_submit(NULL, nop_task, NULL) == EINVAL, "tp_submit(NULL pool)");
		expect(tp_submit_ex(g.pool, NULL, NULL, NULL) == EINVAL, "tp_submit_ex(NULL fn)");
		errno = 0;
		expect(tp_enqueue_ex(g.pool, NULL, NULL, NULL) == NULL && errno == EINVAL,
		       "tp_enqueue_ex(NULL fn)");
		expect(tp_group_spawn_ex(NULL, nop_task, NULL, NULL) == EINVAL,
		       "tp_group_spawn_ex(NULL group)");
		expect(tp_pool_wait_idle(NULL, NULL) == EINVAL, "tp_pool_wait_idle(NULL)");
		expect(tp_pool_stats(NULL, NULL) == EINVAL, "tp_pool_stats(NULL)");
		expect(tp_pool_trace_start(NULL, "x") == EINVAL, "tp_pool_trace_start(NULL)");
		expect(tp_pool_trace_start(g.pool, NULL) == EINVAL,
		       "tp_pool_trace_start(NULL path)");
		expect(tp_pool_trace_stop(NULL) == EINVAL, "tp_pool_trace_stop(NULL)");
		expect(tp_parallel_reduce(g.pool, 0, 4, 1, NULL, &identity, sizeof(res), nop_reduce,
					  acc_combine, NULL) == EINVAL,
		       "tp_parallel_reduce(NULL result)");
		expect(tp_parallel_reduce(g.pool, 0, 4, 1, &res, NULL, sizeof(res), nop_reduce,
					  acc_combine, NULL) == EINVAL,
		       "tp_parallel_reduce(NULL identity)");
		expect(tp_parallel_reduce(g.pool, 0, 4, 1, &res, &identity, sizeof(res), NULL,
					  acc_combine, NULL) == EINVAL,
		       "tp_parallel_reduce(NULL body)");
		expect(tp_parallel_reduce(g.pool, 0, 4, 1, &res, &identity, sizeof(res), nop_reduce,
					  NULL, NULL) == EINVAL,
		       "tp_parallel_reduce(NULL combine)");
		expect(tp_parallel_reduce(g.pool, 5, 4, 1, &res, &identity, sizeof(res), nop_reduce,
					  acc_combine, NULL) == EINVAL,
		       "tp_parallel_reduce(begin > end)");
		break;
	case 8:
		tp_spawn(&t, NULL, NULL);
		expect(tp_join(&t) == EINVAL, "tp_join() of a frame spawned with a NULL fn");
		tp_spawn(NULL, nop_task, NULL);
		expect(tp_join(NULL) == EINVAL, "tp_join(NULL)");
		break;
	case 9: {
		struct held *h = pick(c, arg >> 4);
		struct timespec bad = { 0, -1 };

		if (h != NULL) {
			expect(tp_future_wait_until(h->f, &bad) == EINVAL,
			       "tp_future_wait_until(tv_nsec -1)");
			bad.tv_nsec = 1000000000L;
			expect(tp_future_wait_nohelp(h->f, &bad) == EINVAL,
			       "tp_future_wait_nohelp(tv_nsec 1e9)");
		}
		break;
	}
	default:
		expect(tp_pool_size(NULL) == 0, "tp_pool_size(NULL)");
		expect(tp_pool_size(g.pool) == g.workers, "tp_pool_size()");
		break;
	}
}

/* -----------------------------------------------------------------------------------------------
 * Idleness and statistics
 * -------------------------------------------------------------------------------------------- */

/* Which tasks were accepted when a wait for idleness began (read before the call). */
struct idle_snap {
	int n;
	bool pre[MAX_SLOTS];
};

static void idle_snapshot(struct idle_snap *snap)
{
	snap->n = LD(&g.nslots);
	if (snap->n > MAX_SLOTS)
		snap->n = MAX_SLOTS;
	for (int i = 0; i < snap->n; i++)
		snap->pre[i] = LD(&g.slots[i].accepted) != 0;
}

/*
 * tp_pool_wait_idle() returned 0: every task accepted before the call, and every task those
 * submitted (found through `submitter`), has finished: it ran and returned, or it was cancelled
 * (its future CANCELLED, its drop function called).
 */
static void check_idle(const struct idle_snap *snap, const char *what)
{
	bool covered[MAX_SLOTS] = { false };
	int n = LD(&g.nslots);

	if (n > MAX_SLOTS)
		n = MAX_SLOTS;
	for (int i = 0; i < n; i++) {
		struct slot *s = &g.slots[i];
		tp_future *f;

		covered[i] =
			(i < snap->n && snap->pre[i]) ||
			(s->submitter != NULL && s->submitter->id < i && covered[s->submitter->id]);
		if (!covered[i] || !LD(&s->accepted))
			continue;
		if (LD(&s->ran) == 0) {
			f = LD(&s->f);
			if (f != NULL && tp_future_state(f) != TP_FUTURE_CANCELLED)
				fail("%s returned 0, but task %d (accepted before the call, or forked by such a task) never ran and is %s",
				     what, i, state_name(tp_future_state(f)));
			if (f == NULL && !LD(&s->cancel_tried) &&
			    !(LD(&g.modes) & MODE_CANCEL_ASKED))
				fail("%s returned 0, but task %d (accepted before the call, or forked by such a task) never ran and nothing cancelled it",
				     what, i);
		}
		check_settled(s, false, what);
	}
}

/* The counters that must not go down between two calls from one thread. */
static _Thread_local struct {
	unsigned input;
	bool have_total;
	tp_worker_stats total;
	bool have[MAX_WORKERS];
	tp_worker_stats w[MAX_WORKERS];
} last_stats;

#define STAT_FIELDS(X) X(tasks) X(forks) X(steals) X(steal_fails) X(injected) X(parks) X(wakeups)

static void check_not_less(const tp_worker_stats *now, const tp_worker_stats *before,
			   const char *whose)
{
#define X(f)                                                                                       \
	if (now->f < before->f)                                                                    \
		fail("tp_pool_stats(): %s " #f " went down from %llu to %llu", whose,              \
		     (unsigned long long)before->f, (unsigned long long)now->f);
	STAT_FIELDS(X)
#undef X
}

static void add_stats(tp_worker_stats *sum, const tp_worker_stats *s)
{
#define X(f) sum->f += s->f;
	STAT_FIELDS(X)
#undef X
}

/* The room tp_pool_stats() gets for per_worker: selector 0 NULL, 1 none, 2 one worker fewer,
 * 3 every worker, 4 two more. */
static size_t stats_room(unsigned sel)
{
	switch (sel % 5) {
	case 0:
	case 1:
		return 0;
	case 2:
		return g.workers - 1;
	case 3:
		return g.workers;
	default:
		return g.workers + 2;
	}
}

/*
 * tp_pool_stats() with room for `sel` (stats_room()): per_worker filled as documented, the total
 * the sum of those entries, no counter lower than in this thread's previous call, and each worker
 * counted at least the tasks it was seen to start and the submissions it was seen to make.
 * Returns the counters in *out.
 */
static void checked_stats(unsigned sel, tp_stats *out, const char *what)
{
	tp_worker_stats per[MAX_WORKERS + 2], sum = { 0 };
	long runs[MAX_WORKERS] = { 0 }, forks[MAX_WORKERS] = { 0 };
	size_t room = stats_room(sel), want;
	int rc;

	memset(per, 0xEE, sizeof(per));
	memset(out, 0, sizeof(*out));
	out->per_worker = sel % 5 == 0 ? NULL : per;
	out->per_worker_len = sel % 5 == 0 ? 3 : room;
	for (size_t i = 0; i < g.workers; i++) {
		runs[i] = LD(&g.runs_on[i]);
		forks[i] = LD(&g.forks_on[i]);
	}
	rc = tp_pool_stats(g.pool, out);
	if (rc != 0)
		fail("%s returned %s", what, code_name(rc));
	want = room < g.workers ? room : g.workers;
	if (out->workers != g.workers || out->per_worker_len != want)
		fail("%s with room for %zu workers%s: workers %zu, per_worker_len %zu (%zu workers)",
		     what, room, out->per_worker == NULL ? " (per_worker NULL)" : "", out->workers,
		     out->per_worker_len, g.workers);
	for (size_t i = want; i < MAX_WORKERS + 2; i++) {
		const unsigned char *b = (const unsigned char *)&per[i];

		for (size_t k = 0; k < sizeof(per[i]); k++)
			if (b[k] != 0xEE)
				fail("%s wrote per_worker[%zu], past per_worker_len %zu", what, i,
				     want);
	}
	if (last_stats.input != g.input_id) {
		memset(&last_stats, 0, sizeof(last_stats));
		last_stats.input = g.input_id;
	}
	for (size_t i = 0; i < want; i++) {
		char whose[32];

		snprintf(whose, sizeof(whose), "worker %zu's", i);
		add_stats(&sum, &per[i]);
		if (last_stats.have[i])
			check_not_less(&per[i], &last_stats.w[i], whose);
		last_stats.have[i] = true;
		last_stats.w[i] = per[i];
		if (per[i].tasks < (uint64_t)runs[i] || per[i].forks < (uint64_t)forks[i])
			fail("%s: worker %zu counted %llu tasks and %llu forks; it was seen to start %ld tasks and to submit %ld before the call",
			     what, i, (unsigned long long)per[i].tasks,
			     (unsigned long long)per[i].forks, runs[i], forks[i]);
	}
#define X(f)                                                                                       \
	if (want == g.workers ? out->total.f != sum.f : out->total.f < sum.f)                      \
		fail("%s: total." #f                                                               \
		     " is %llu, the per-worker values read in the call add up to %llu",            \
		     what, (unsigned long long)out->total.f, (unsigned long long)sum.f);
	STAT_FIELDS(X)
#undef X
	if (last_stats.have_total)
		check_not_less(&out->total, &last_stats.total, "the total");
	last_stats.have_total = true;
	last_stats.total = out->total;
}

static void op_stats(struct ctx *c, unsigned arg)
{
	tp_stats st;

	(void)c;
	checked_stats(arg & 7, &st, "tp_pool_stats()");
	if (arg & 8)
		expect(tp_pool_stats(g.pool, NULL) == EINVAL, "tp_pool_stats(NULL out)");
}

/* After a wait for idleness returned 0 with nobody left to submit: nothing queued or running. */
static void check_stats_idle(unsigned sel, const char *what)
{
	tp_stats st;

	checked_stats(sel, &st, "tp_pool_stats() after tp_pool_wait_idle()");
	if (st.queued != 0 || st.running != 0)
		fail("%s returned 0 and no other thread submits, but tp_pool_stats() says %llu queued, %llu running",
		     what, (unsigned long long)st.queued, (unsigned long long)st.running);
}

/* tp_pool_wait_idle() from a client; with FUZZ_IDLE_SHUTDOWN off and no deadline, a loop of
 * 10 ms waits. */
static int client_wait_idle(const struct timespec *dl)
{
	int rc;

	if (FUZZ_IDLE_SHUTDOWN || dl != NULL)
		return tp_pool_wait_idle(g.pool, dl);
	do {
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += 10 * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		rc = tp_pool_wait_idle(g.pool, &t);
	} while (rc == ETIMEDOUT);
	return rc;
}

static void op_wait_idle(struct ctx *c, unsigned arg)
{
	static const char what[] = "tp_pool_wait_idle()";
	unsigned kind = arg & 7;
	struct idle_snap snap;
	struct timespec t;
	const struct timespec *dl;
	bool alone;
	int rc;

	if (c->task != NULL) {
		/* Also a task that tp_future_wait_nohelp() runs on a client thread. */
		dl = make_deadline(&t, kind, arg >> 3);
		rc = tp_pool_wait_idle(g.pool, dl);
		if (rc != (kind == DL_INVALID ? EINVAL : EDEADLK))
			fail("%s from a task returned %s, not %s", what, code_name(rc),
			     kind == DL_INVALID ? "EINVAL" : "EDEADLK");
		return;
	}
	/* Read before the call: the other clients have ended, so only this one could submit. */
	alone = LD(&g.clients_running) == 1;
	idle_snapshot(&snap);
	dl = make_deadline(&t, kind, arg >> 3);
	rc = client_wait_idle(dl);
	if (kind == DL_INVALID) {
		if (rc != EINVAL)
			fail("%s with tv_nsec %ld returned %s, not EINVAL", what, t.tv_nsec,
			     code_name(rc));
		return;
	}
	if (rc == ETIMEDOUT && dl != NULL)
		return;
	if (rc != 0)
		fail("%s %s a deadline returned %s", what, dl != NULL ? "with" : "without",
		     code_name(rc));
	check_idle(&snap, what);
	if (alone)
		check_stats_idle(arg >> 3, what);
}

/* -----------------------------------------------------------------------------------------------
 * Loops that stop, reductions into large accumulators
 * -------------------------------------------------------------------------------------------- */

struct try_ctx {
	long counts[MAX_LOOP];
	long stopped[MAX_LOOP]; /* bodies that returned a code at this iteration */
	size_t begin, n;
	bool stop;
	size_t stop_from; /* iterations stop_from, stop_from + 3, ... stop the loop */
};

/* The code of a body that stops at iteration i (relative): distinct, some negative. */
static int try_code(size_t i)
{
	return i % 2 ? -(int)(i + 1) : 300 + (int)i;
}

static int try_body(size_t b, size_t e, void *p)
{
	struct try_ctx *tc = p;

	if (b < tc->begin || e > tc->begin + tc->n || b >= e)
		fail("tp_parallel_try_for() body got [%zu, %zu) for a loop over [%zu, %zu)", b, e,
		     tc->begin, tc->begin + tc->n);
	if (tp_current_pool() != g.pool)
		fail("a tp_parallel_try_for() body runs outside the pool (tp_current_pool() %p)",
		     (void *)tp_current_pool());
	for (size_t i = b; i < e; i++) {
		size_t k = i - tc->begin;

		INC(&tc->counts[k]);
		if (tc->stop && k >= tc->stop_from && (k - tc->stop_from) % 3 == 0) {
			INC(&tc->stopped[k]);
			return try_code(k);
		}
	}
	return 0;
}

static void op_try_for(struct ctx *c, unsigned arg)
{
	static const char what[] = "tp_parallel_try_for()";
	struct try_ctx tc;
	bool any_stop = false, rc_seen = false;
	int rc;

	(void)c;
	memset(&tc, 0, sizeof(tc));
	tc.begin = 2000;
	tc.n = arg & 31;
	tc.stop = (arg & 128) != 0;
	tc.stop_from = tc.n / 2 + tc.n % 3;
	rc = tp_parallel_try_for(g.pool, tc.begin, tc.begin + tc.n, (arg >> 5) & 3, try_body, &tc);
	for (size_t k = 0; k < tc.n; k++) {
		long runs = LD(&tc.counts[k]), stops = LD(&tc.stopped[k]);

		if (runs > 1)
			fail("%s ran iteration %zu %ld times", what, tc.begin + k, runs);
		if (stops > 0) {
			any_stop = true;
			rc_seen |= rc == try_code(k);
		}
	}
	if (rc == ESHUTDOWN || rc == ENOMEM) {
		(void)check_loop_rc(rc, what);
		for (size_t k = 0; k < tc.n; k++)
			if (LD(&tc.counts[k]) != 0)
				fail("%s returned %s but ran iteration %zu", what, code_name(rc),
				     tc.begin + k);
		return;
	}
	if (rc == 0) {
		if (any_stop)
			fail("%s returned 0 but a body returned a code", what);
		for (size_t k = 0; k < tc.n; k++)
			if (LD(&tc.counts[k]) != 1)
				fail("%s returned 0 and ran iteration %zu %ld times", what,
				     tc.begin + k, LD(&tc.counts[k]));
		return;
	}
	if (!rc_seen)
		fail("%s returned %d (%s): no body returned it", what, rc, code_name(rc));
}

/* An accumulator of acc_size bytes: a struct acc, one count per iteration, then filler bytes
 * that must stay those of the identity. */
#define BIG_SEEN_OFF sizeof(struct acc)
#define BIG_FILL_OFF (BIG_SEEN_OFF + MAX_LOOP)

static const size_t big_sizes[4] = { TP_REDUCE_MAX_SIZE, TP_REDUCE_MAX_SIZE + 1, 300, BIG_ACC_MAX };

struct big_ctx {
	struct reduce_ctx r;
	size_t size;
	const unsigned char *identity;
};

static void big_check_fill(const struct big_ctx *bc, const unsigned char *acc, const char *where)
{
	if (memcmp(acc + BIG_FILL_OFF, bc->identity + BIG_FILL_OFF, bc->size - BIG_FILL_OFF) != 0)
		fail("tp_parallel_reduce() with a %zu-byte accumulator: %s got an accumulator whose bytes past the %zu used ones are not the identity's",
		     bc->size, where, (size_t)BIG_FILL_OFF);
}

static void big_body(size_t b, size_t e, void *accp, void *p)
{
	const struct big_ctx *bc = p;
	unsigned char *acc = accp;
	struct acc *a = accp;

	big_check_fill(bc, acc, "a body");
	if (b < bc->r.begin || e > bc->r.begin + bc->r.n || b >= e)
		fail("tp_parallel_reduce() body got [%zu, %zu) for a loop over [%zu, %zu)", b, e,
		     bc->r.begin, bc->r.begin + bc->r.n);
	if (a->count == 0)
		a->lo = b;
	else if (a->hi != b)
		a->bad = 1;
	a->hi = e;
	a->count += e - b;
	a->sum += sum_range(b, e);
	for (size_t i = b; i < e; i++)
		acc[BIG_SEEN_OFF + i - bc->r.begin]++;
}

static void big_combine(void *accp, const void *otherp, void *p)
{
	const struct big_ctx *bc = p;
	unsigned char *acc = accp;
	const unsigned char *other = otherp;

	big_check_fill(bc, acc, "combine (its left side)");
	big_check_fill(bc, other, "combine (its right side)");
	acc_combine(accp, otherp, NULL);
	for (size_t i = 0; i < MAX_LOOP; i++)
		acc[BIG_SEEN_OFF + i] += other[BIG_SEEN_OFF + i];
}

static void op_reduce_big(struct ctx *c, unsigned arg)
{
	/* On the stack: a task waiting in its loop may run another task's reduce on this thread. */
	_Alignas(max_align_t) unsigned char res[BIG_ACC_MAX];
	_Alignas(max_align_t) unsigned char untouched[BIG_ACC_MAX];
	_Alignas(max_align_t) unsigned char id[BIG_ACC_MAX];
	struct big_ctx bc;
	char what[64];
	int e;

	(void)c;
	bc.r.begin = 700;
	bc.r.n = arg & 31;
	bc.r.nested = false;
	bc.size = big_sizes[(arg >> 5) & 3];
	bc.identity = id;
	snprintf(what, sizeof(what), "tp_parallel_reduce() of %zu bytes", bc.size);
	memset(id, 0, BIG_FILL_OFF);
	for (size_t i = BIG_FILL_OFF; i < bc.size; i++)
		id[i] = (unsigned char)(i * 7 + 3);
	memset(res, 0x5A, bc.size);
	memcpy(untouched, res, bc.size);
	e = tp_parallel_reduce(g.pool, bc.r.begin, bc.r.begin + bc.r.n, (arg & 128) ? 1 : 0, res,
			       id, bc.size, big_body, big_combine, &bc);
	if (check_loop_rc(e, what) != 0) {
		if (memcmp(res, untouched, bc.size) != 0)
			fail("%s returned %s but wrote the result", what, code_name(e));
		return;
	}
	check_acc((const struct acc *)(const void *)res, &bc.r, what);
	for (size_t i = 0; i < MAX_LOOP; i++)
		if (res[BIG_SEEN_OFF + i] != (i < bc.r.n))
			fail("%s folded iteration %zu %d times", what, bc.r.begin + i,
			     res[BIG_SEEN_OFF + i]);
	big_check_fill(&bc, res, "the result");
}

/* -----------------------------------------------------------------------------------------------
 * Traces, where a thread is
 * -------------------------------------------------------------------------------------------- */

/* The file of the input's k-th trace (1-based): unique per process, input and trace. */
static void trace_path(char *buf, size_t size, unsigned k)
{
	const char *dir = getenv("TMPDIR");

	snprintf(buf, size, "%s/fuzz-api-trace-%ld-%u-%u.json",
		 dir != NULL && *dir != '\0' ? dir : "/tmp", (long)getpid(), g.input_id, k);
}

/* A trace file that tp_pool_trace_stop() wrote: a Chrome trace of this pool. Then removed. */
static void check_trace_file(const char *path)
{
	static const char head[] = "{\"traceEvents\":[";
	char buf[1 << 16], workers[48];
	FILE *in = fopen(path, "r");
	size_t n;

	if (in == NULL)
		fail("tp_pool_trace_stop() returned 0 but %s cannot be opened (errno %d)", path,
		     errno);
	n = fread(buf, 1, sizeof(buf) - 1, in);
	buf[n] = '\0';
	fclose(in);
	snprintf(workers, sizeof(workers), "\"workers\":%zu,", g.workers);
	if (strncmp(buf, head, sizeof(head) - 1) != 0 || strstr(buf, "\"" POOL_NAME "\"") == NULL ||
	    (n < sizeof(buf) - 1 &&
	     (strstr(buf, workers) == NULL || n < 3 || strcmp(buf + n - 3, "}}\n") != 0)))
		fail("tp_pool_trace_stop() returned 0 but %s (%zu bytes) is not a whole trace of this pool",
		     path, n);
	unlink(path);
}

/* Under trace_lock. */
static void trace_start(void)
{
	char path[TRACE_PATH_MAX];
	bool begun;
	int rc;

	trace_path(path, sizeof(path), g.ntraces + 1);
	rc = tp_pool_trace_start(g.pool, path);
	begun = LD(&g.shutdown_begun) != 0; /* after the call: it may have begun meanwhile */
	if (rc == 0 && !g.tracing) {
		g.tracing = true;
		g.ntraces++;
		return;
	}
	if ((rc == EBUSY && g.tracing) || rc == ENOMEM || (rc == ESHUTDOWN && begun))
		return;
	fail("tp_pool_trace_start() returned %s while %s trace ran%s", code_name(rc),
	     g.tracing ? "a" : "no", begun ? " and a shutdown had begun" : "");
}

/* Under trace_lock. */
static void trace_stop(void)
{
	char path[TRACE_PATH_MAX];
	int rc = tp_pool_trace_stop(g.pool);

	if (!g.tracing) {
		if (rc != ENOENT)
			fail("tp_pool_trace_stop() returned %s while no trace ran, not ENOENT",
			     code_name(rc));
		return;
	}
	g.tracing = false;
	if (rc == 0) {
		trace_path(path, sizeof(path), g.ntraces);
		check_trace_file(path);
		return;
	}
	/* A shutdown writes the trace that runs (the file goes at the end of the input). */
	if (rc == ENOENT && LD(&g.shutdown_begun))
		return;
	if (rc == ENOMEM)
		return;
	fail("tp_pool_trace_stop() returned %s while a trace ran", code_name(rc));
}

static void op_trace(struct ctx *c, unsigned arg)
{
	(void)c;
	pthread_mutex_lock(&g.trace_lock);
	switch (arg & 3) {
	case 0:
		trace_start();
		break;
	case 1:
		trace_stop();
		break;
	case 2:
		trace_start();
		pthread_mutex_unlock(&g.trace_lock);
		sleep_us(arg >> 2);
		pthread_mutex_lock(&g.trace_lock);
		trace_stop();
		break;
	default:
		trace_start();
		trace_start();
		trace_stop();
		trace_stop();
		break;
	}
	pthread_mutex_unlock(&g.trace_lock);
}

static void op_current(struct ctx *c, unsigned arg)
{
	const char *name = tp_pool_name(g.pool);

	(void)arg;
	(void)check_where_am_i(c->name);
	if (name == NULL || strcmp(name, POOL_NAME) != 0 || tp_pool_name(NULL) != NULL)
		fail("tp_pool_name() returned \"%s\", not \"%s\" (and NULL for NULL)",
		     name != NULL ? name : "(null)", POOL_NAME);
	if (tp_pool_size(g.pool) != g.workers)
		fail("tp_pool_size() returned %zu, not %zu", tp_pool_size(g.pool), g.workers);
}

/* -----------------------------------------------------------------------------------------------
 * Programs
 * -------------------------------------------------------------------------------------------- */

static void sleep_us(unsigned us)
{
	struct timespec t = { 0, (long)us * 1000 };

	if (us == 0)
		sched_yield();
	else
		nanosleep(&t, NULL);
}

static void run_op(struct ctx *c, struct op o)
{
	unsigned arg = o.arg;

	switch ((enum op_code)o.code) {
	case OP_ENQUEUE:
		op_enqueue(c, arg, false);
		break;
	case OP_BATCH:
		op_batch(c, arg);
		break;
	case OP_CANCEL:
		op_cancel(c, arg);
		break;
	case OP_WAIT:
		op_wait(c, arg);
		break;
	case OP_WAIT_UNTIL:
		op_timed_wait(c, arg, false);
		break;
	case OP_WAIT_NOHELP:
		op_timed_wait(c, arg, true);
		break;
	case OP_RETAIN:
		op_retain(c, arg);
		break;
	case OP_RELEASE:
		op_release(c, arg);
		break;
	case OP_SHARE:
		op_share(c, arg);
		break;
	case OP_TAKE:
		op_take(c, arg);
		break;
	case OP_STATE:
		op_state(c, arg);
		break;
	case OP_SHUTDOWN:
		op_shutdown(c, arg);
		break;
	case OP_GROUP:
		op_group(c, arg, false);
		break;
	case OP_FOR:
		op_for(c, arg);
		break;
	case OP_REDUCE:
		op_reduce(c, arg);
		break;
	case OP_SPAWN:
		op_spawn(c, arg);
		break;
	case OP_SLEEP:
		sleep_us(arg % 64);
		break;
	case OP_BAD_ARGS:
		op_bad_args(c, arg);
		break;
	case OP_DESTROY_IN_TASK:
		op_destroy_in_task(c);
		break;
	case OP_RETAIN_MANY:
		op_retain_many(c, arg);
		break;
	case OP_WAIT_SELF:
		op_wait_self(c, arg);
		break;
	case OP_SUBMIT:
		op_submit(c, arg);
		break;
	case OP_ENQUEUE_EX:
		op_enqueue(c, arg, true);
		break;
	case OP_GROUP_EX:
		op_group(c, arg, true);
		break;
	case OP_WAIT_IDLE:
		op_wait_idle(c, arg);
		break;
	case OP_STATS:
		op_stats(c, arg);
		break;
	case OP_TRY_FOR:
		op_try_for(c, arg);
		break;
	case OP_REDUCE_BIG:
		op_reduce_big(c, arg);
		break;
	case OP_TRACE:
		op_trace(c, arg);
		break;
	case OP_CURRENT:
		op_current(c, arg);
		break;
	default:
		break;
	}
}

static void run_prog(struct ctx *c, const struct prog *p)
{
	for (int i = 0; i < p->n; i++) {
		c->op = op_names[p->ops[i].code];
		if (c->task != NULL)
			ST(&c->task->where, c->op);
		else if (c->client >= 0)
			ST(&g.client_where[c->client], c->op);
		run_op(c, p->ops[i]);
	}
	c->op = NULL;
}

static void *client_main(void *arg)
{
	struct ctx c;
	int idx = (int)(intptr_t)arg;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "client %d", idx);
	c.client = idx;
	cur = &c;
	on_harness_thread = true;
	pthread_barrier_wait(&g.start);
	run_prog(&c, &g.progs[idx]);
	__atomic_sub_fetch(&g.clients_running, 1, __ATOMIC_SEQ_CST);
	ST(&g.client_where[idx], NULL);
	/* What is still held outlives the pool: the main thread releases it after the destroy. */
	pthread_mutex_lock(&g.lock);
	for (int i = 0; i < c.nheld; i++)
		g.leftovers[g.nleft++] = c.held[i];
	pthread_mutex_unlock(&g.lock);
	cur = NULL;
	return NULL;
}

/* -----------------------------------------------------------------------------------------------
 * One input
 * -------------------------------------------------------------------------------------------- */

static void decode(const uint8_t *data, size_t size)
{
	unsigned format = data[0] >> 6;

	g.workers = 1 + (data[0] & 3);
	g.clients = 2 + ((data[0] >> 2) & 1);
	g.last_act = (data[0] >> 3) & 3;
	g.wait_after_destroy = (data[0] >> 5) & 1;
	g.all_ops = format == 1 || format == 2;
	g.final_idle = format == 2;
	for (size_t i = 1; i + 1 < size; i += 2) {
		unsigned who = data[i] >> 5;
		struct prog *p = &g.progs[who < FIRST_TASK_PROG ? who % (unsigned)g.clients : who];

		if (p->n < MAX_PROG_OPS) {
			p->ops[p->n].code =
				(uint8_t)((data[i] & 31) % (g.all_ops ? N_OPS : N_OPS_V1));
			p->ops[p->n].arg = data[i + 1];
			p->n++;
		}
	}
}

static void wait_leftovers(void)
{
	ST(&g.main_where, "waiting for the futures the clients left");
	for (int i = 0; i < g.nleft; i++)
		check_wait(g.leftovers[i].s, g.leftovers[i].f, tp_future_wait(g.leftovers[i].f),
			   false, "tp_future_wait() by the main thread");
}

/* Format 2: the main thread, alone now, waits for idleness: every task accepted has finished,
 * nothing is queued or running. */
static void final_idle(void)
{
	static const char what[] = "tp_pool_wait_idle() by the main thread";
	struct idle_snap snap;
	int rc;

	ST(&g.main_where, what);
	idle_snapshot(&snap);
	rc = tp_pool_wait_idle(g.pool, NULL);
	if (rc != 0)
		fail("%s returned %s", what, code_name(rc));
	check_idle(&snap, what);
	check_stats_idle(3, what);
}

/* After the destroy: each hook ran once per worker; every task settled (ran or dropped, a
 * failure reported), and no refused one ran, was dropped or reported. */
static void check_end(int n)
{
	for (size_t i = 0; i < g.workers; i++)
		if (LD(&g.hook_starts[i]) != 1 || LD(&g.hook_stops[i]) != 1)
			fail("worker %zu: on_thread_start ran %ld times, on_thread_stop %ld times, not once each",
			     i, LD(&g.hook_starts[i]), LD(&g.hook_stops[i]));
	for (int i = 0; i < n && i < MAX_SLOTS; i++) {
		struct slot *s = &g.slots[i];

		if (LD(&s->refused) && (LD(&s->dropped) != 0 || LD(&s->errors) != 0))
			fail("task %d was refused but was dropped %ld times, reported %ld times", i,
			     LD(&s->dropped), LD(&s->errors));
		if (!LD(&s->accepted))
			continue;
		if (s->has_drop && LD(&s->ran) + LD(&s->dropped) != 1)
			fail("task %d (with a drop function) ran %ld times and was dropped %ld times: not exactly one of the two",
			     i, LD(&s->ran), LD(&s->dropped));
		check_settled(s, false, "tp_pool_destroy() returned");
	}
}

static void finish_input(void)
{
	int n;

	if (g.final_idle)
		final_idle();
	switch (g.last_act) {
	case 1:
		shutdown_from_client(TP_SHUTDOWN_DRAIN,
				     "tp_pool_shutdown(DRAIN) by the main thread");
		break;
	case 2:
		shutdown_from_client(TP_SHUTDOWN_CANCEL,
				     "tp_pool_shutdown(CANCEL) by the main thread");
		break;
	case 3:
		shutdown_from_client(TP_SHUTDOWN_DRAIN,
				     "tp_pool_shutdown(DRAIN) by the main thread");
		shutdown_from_client(TP_SHUTDOWN_CANCEL,
				     "a second tp_pool_shutdown(CANCEL) by the main thread");
		break;
	default:
		break;
	}
	if (!g.wait_after_destroy)
		wait_leftovers();
	ST(&g.main_where, "tp_pool_destroy()");
	ST(&g.shutdown_begun, 1);
	OR(&g.modes, MODE_DRAIN_ASKED);
	tp_pool_destroy(g.pool);
	check_after_shutdown("tp_pool_destroy()");
	if (g.wait_after_destroy)
		wait_leftovers();
	n = LD(&g.nslots); /* final now: no task runs any more */
	check_end(n);
	/* The trace files: those a stop left (none) and those the shutdown wrote. */
	for (unsigned k = 1; k <= g.ntraces; k++) {
		char path[TRACE_PATH_MAX];

		trace_path(path, sizeof(path), k);
		unlink(path);
	}
	ST(&g.main_where, "releasing");
	/* Every reference goes, the pool's last records with them. */
	for (int i = 0; i < g.nleft; i++)
		tp_future_release(g.leftovers[i].f);
	for (int i = 0; i < g.nmail; i++)
		tp_future_release(g.mailbox[i].f);
	for (int i = 0; i < n && i < MAX_SLOTS; i++) {
		struct slot *s = &g.slots[i];
		long ran = LD(&s->ran);

		if (ran > 1 || (ran != 0 && LD(&s->refused)))
			fail("task %d ran %ld times, its submission %s", i, ran,
			     LD(&s->refused) ? "refused" : "accepted");
		/* A child that never ran still holds its parent's reference. */
		tp_future_release(XCHG(&s->parent_ref, NULL));
		tp_future_release(s->f);
	}
}

/* -----------------------------------------------------------------------------------------------
 * The pool's hooks and error handler
 * -------------------------------------------------------------------------------------------- */

/* on_thread_start: once per worker, on that worker, named after the pool, before
 * tp_pool_create_ex() returns. In format 2, worker 0 submits a detached task from it. */
static void hook_start(void *user, size_t index)
{
	char name[16], want[16], suffix[8];
	tp_pool *p = tp_current_pool(), *old;
	size_t room;
	long n;

	if (user != &g || index >= g.workers)
		fail("on_thread_start got (%p, %zu), not (%p, an index below %zu)", user, index,
		     (void *)&g, g.workers);
	n = INC(&g.hook_starts[index]);
	if (n != 1)
		fail("on_thread_start ran %ld times for worker %zu", n, index);
	if (p == NULL || tp_worker_index() != (int)index)
		fail("in on_thread_start of worker %zu: tp_current_pool() %p, tp_worker_index() %d",
		     index, (void *)p, tp_worker_index());
	old = XCHG(&g.hook_pool, p);
	if (old != NULL && old != p)
		fail("the workers' on_thread_start hooks see different pools (%p, %p)", (void *)old,
		     (void *)p);
	/* "NAME-i", NAME cut so that the whole fits 15 characters. */
	snprintf(suffix, sizeof(suffix), "-%zu", index);
	room = sizeof(want) - 1 - strlen(suffix);
	snprintf(want, sizeof(want), "%.*s%s", (int)room, POOL_NAME, suffix);
	if (pthread_getname_np(pthread_self(), name, sizeof(name)) == 0 && strcmp(name, want) != 0)
		fail("worker %zu is named \"%s\", not \"%s\"", index, name, want);
	if (g.all_ops && index == 0) {
		/* It runs on the pool; it has no program (g.pool is not set yet) and fails, for
		 * the error handler. */
		struct slot *s = new_slot(5 | 2 << 3, 1);
		int rc;

		if (s == NULL)
			return;
		s->detached = true;
		s->has_drop = true;
		rc = tp_submit_ex(p, task_fn, s, drop_fn);
		if (rc != 0)
			fail("tp_submit_ex() from on_thread_start returned %s", code_name(rc));
		ST(&s->accepted, 1);
		note_forks(1);
	}
}

/* on_thread_stop: once per worker, once it has left the pool: a thread like any other. */
static void hook_stop(void *user, size_t index)
{
	long n;
	int rc;

	if (user != &g || index >= g.workers)
		fail("on_thread_stop got (%p, %zu), not (%p, an index below %zu)", user, index,
		     (void *)&g, g.workers);
	n = INC(&g.hook_stops[index]);
	if (n != 1)
		fail("on_thread_stop ran %ld times for worker %zu", n, index);
	if (tp_current_pool() != NULL || tp_worker_index() != -1)
		fail("in on_thread_stop of worker %zu: tp_current_pool() %p, tp_worker_index() %d (NULL, -1)",
		     index, (void *)tp_current_pool(), tp_worker_index());
	rc = tp_submit(g.pool, nop_task, NULL);
	if (rc != ESHUTDOWN)
		fail("tp_submit() from on_thread_stop returned %s, not ESHUTDOWN", code_name(rc));
}

/* on_error: once per failed detached task, on the worker that ran it, right after it returned;
 * waiting for idleness or shutting down from it is EDEADLK. */
static void on_task_error(void *user, tp_task_fn fn, void *arg, int code)
{
	struct slot *s = arg;
	tp_pool *p = tp_current_pool();
	int w = tp_worker_index();
	long n;

	if (user != &g || fn != task_fn || s < g.slots || s >= g.slots + MAX_SLOTS)
		fail("the error handler got (%p, %p, %p), not one of this input's tasks", user,
		     (void *)(uintptr_t)fn, arg);
	n = INC(&s->errors);
	if (n != 1)
		fail("the error handler got task %d %ld times", s->id, n);
	if (!s->detached || code != s->code || code == 0 || LD(&s->ran) != 1 || !LD(&s->finished))
		fail("the error handler got task %d (%s, ran %ld times, returns %d) with code %d",
		     s->id, s->detached ? "detached" : "with a future or in a group", LD(&s->ran),
		     s->code, code);
	if (p == NULL || p != LD(&g.hook_pool) || w < 0 || (size_t)w >= g.workers)
		fail("the error handler runs with tp_current_pool() %p, tp_worker_index() %d: not on a worker",
		     (void *)p, w);
	if (tp_pool_wait_idle(p, NULL) != EDEADLK)
		fail("tp_pool_wait_idle() from the error handler did not return EDEADLK");
	if (tp_pool_shutdown(p, TP_SHUTDOWN_CANCEL) != EDEADLK)
		fail("tp_pool_shutdown() from the error handler did not return EDEADLK");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	pthread_t t;

	(void)argc;
	(void)argv;
	quiet_logger = tp_logger_create(TP_LOG_OFF);
	if (quiet_logger == NULL || pthread_create(&t, NULL, watchdog_main, NULL) != 0) {
		fprintf(stderr, "fuzz-api: cannot start (logger or watchdog)\n");
		exit(1);
	}
	pthread_detach(t);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctx main_ctx;
	pthread_t clients[MAX_CLIENTS];
	tp_pool_options opts;

	if (size == 0)
		return 0;
	memset(&g, 0, sizeof(g));
	g.input_id = ++inputs_run;
	decode(data, size);
	g.clients_running = g.clients;
	pthread_mutex_init(&g.lock, NULL);
	pthread_mutex_init(&g.trace_lock, NULL);
	pthread_barrier_init(&g.start, NULL, (unsigned)g.clients);
	ST(&input_started_ns, now_ns());
	memset(&main_ctx, 0, sizeof(main_ctx));
	snprintf(main_ctx.name, sizeof(main_ctx.name), "the main thread");
	main_ctx.client = -1;
	cur = &main_ctx;
	on_harness_thread = true;

	tp_pool_options_init(&opts);
	opts.num_threads = g.workers;
	opts.logger = quiet_logger;
	opts.name = POOL_NAME;
	opts.on_thread_start = hook_start;
	opts.on_thread_stop = hook_stop;
	opts.hook_user = &g;
	opts.on_error = on_task_error;
	opts.error_user = &g;
	g.pool = tp_pool_create_ex(&opts);
	if (g.pool == NULL)
		fail("tp_pool_create_ex(%zu workers) failed: errno %d", g.workers, errno);
	if (LD(&g.hook_pool) != g.pool)
		fail("on_thread_start saw tp_current_pool() %p, the pool is %p",
		     (void *)LD(&g.hook_pool), (void *)g.pool);
	for (size_t i = 0; i < g.workers; i++)
		if (LD(&g.hook_starts[i]) != 1)
			fail("tp_pool_create_ex() returned, on_thread_start of worker %zu ran %ld times",
			     i, LD(&g.hook_starts[i]));
	for (int i = 0; i < g.clients; i++)
		if (pthread_create(&clients[i], NULL, client_main, (void *)(intptr_t)i) != 0)
			fail("cannot start client thread %d", i);
	for (int i = 0; i < g.clients; i++)
		pthread_join(clients[i], NULL);
	finish_input();

	ST(&input_started_ns, 0);
	pthread_barrier_destroy(&g.start);
	pthread_mutex_destroy(&g.lock);
	pthread_mutex_destroy(&g.trace_lock);
	cur = NULL;
	return 0;
}
