/*
 * uts_mpi.c - the bench's unbalanced tree (bench/uts_tree.h) counted by several MPI ranks, each
 * running its share on its own pool with fork-join, and balanced between ranks by work stealing.
 *
 *	mpiexec -n R uts_mpi --ranks R [--mode static|steal] [--threads T] [--size small|default]
 *
 * The tree: the root has C children; every other node has 5 children with probability 0.2. Each
 * rank starts with a contiguous block of the root's children. In the default tree one root child
 * holds 89.5% of the nodes, so that block split (mode `static`) leaves the rank that got it with
 * nearly all the work; mode `steal` lets idle ranks take work from busy ones.
 *
 * Inside a rank
 *   Work that may leave the rank is kept in a form that can be sent: node states (uint64_t) in a
 *   per-rank bag. Pool tasks ("drainers", at most one per worker) take a few states from the top of
 *   the bag and expand each one with tp_spawn/tp_join, but only --cutoff levels deep: the nodes
 *   found there go back into the bag instead of being expanded. So the bag is refilled as the tree
 *   unfolds, and the pool's own work stealing balances the workers of the rank.
 *
 * Between ranks (only the main thread calls MPI: MPI_THREAD_FUNNELED)
 *   The main thread is the rank's progress engine. It polls for messages (MPI_Iprobe), answers
 *   them, starts drainers when the bag has work and a worker has none, and otherwise sleeps: on a
 *   drainer's future with tp_future_wait_until(now + --poll-us), which returns early if that
 *   drainer ends, or in nanosleep() when the rank has nothing to run. It never blocks in MPI, which
 *   would spin on a core that the rank's workers (or, on one machine, the other ranks) need.
 *   - A rank with no work (bag empty, no drainer running) sends ONE steal request at a time, to a
 *     random other rank.
 *   - A rank asked for work answers with the older half of its bag, rounded down (the states put
 *     there first, nearest the root: the largest expected subtrees), or with a refusal if it has
 *     fewer than two states.
 *   - Termination: every rank counts the work messages it sent and received. Whenever a rank is
 *     idle and has no wave pending, it contributes its two counters to the next wave, a
 *     non-blocking MPI_Iallreduce (all ranks take part in every wave, in order). The traversal is
 *     over when two consecutive waves give the same sums and sent == received: a rank can only get
 *     work by receiving a work message, so every rank was idle at its first contribution and has
 *     received nothing since, and no work is in flight. Steal requests and refusals carry no work
 *     and are not counted; those still in flight at the end are received and dropped afterwards
 *     (a sum over ranks of how many each rank sent to each other tells every rank how many to
 *     expect), so that MPI_Finalize finds no message pending.
 *
 * Rank 0 prints a table (per rank: its share of the nodes, when it went idle for good, its busy
 * time, steals, messages, main-thread CPU time) and one line "uts-mpi-result key=value ...".
 * Exits 1 if the total is not the node count of the serial walk, or if the world does not have
 * the --ranks the caller expected.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <mpi.h>

#include "mpi_example.h"
#include "thread_pool.h"
#include "uts_tree.h"

enum {
	TAG_REQUEST = 1,
	TAG_WORK = 2,
	TAG_REFUSE = 3
};

struct options {
	int steal;
	int ranks;
	size_t threads;
	const char *size;
	int cutoff;
	long poll_us;
	int quiet;
};

/* ---- the bag: node states that may still leave the rank ----
 * A deque under a mutex: drainers push and pop at the top (newest: depth first, so the bag stays
 * small); the main thread gives work away from the bottom (oldest). `count` mirrors hi - lo for
 * reads without the lock. */
struct bag {
	pthread_mutex_t mu;
	uint64_t *v;
	size_t lo, hi, cap;
	atomic_size_t count;
};

/* Room for `more` states at the top; 0 or ENOMEM. Called with the lock held. */
static int bag_reserve(struct bag *b, size_t more)
{
	size_t live = b->hi - b->lo;
	if (b->hi + more <= b->cap)
		return 0;
	if (b->lo > 0 && live + more <= b->cap / 2 + 1) {
		memmove(b->v, b->v + b->lo, live * sizeof *b->v);
		b->lo = 0;
		b->hi = live;
		return 0;
	}
	size_t cap = b->cap ? b->cap * 2 : 1024;
	while (cap < live + more)
		cap *= 2;
	uint64_t *v = malloc(cap * sizeof *v);
	if (!v)
		return ENOMEM;
	if (live)
		memcpy(v, b->v + b->lo, live * sizeof *v);
	free(b->v);
	b->v = v;
	b->cap = cap;
	b->lo = 0;
	b->hi = live;
	return 0;
}

static int bag_push(struct bag *b, const uint64_t *s, size_t n)
{
	pthread_mutex_lock(&b->mu);
	int rc = bag_reserve(b, n);
	if (rc == 0) {
		memcpy(b->v + b->hi, s, n * sizeof *s);
		b->hi += n;
		atomic_store_explicit(&b->count, b->hi - b->lo, memory_order_relaxed);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

/* Pops up to `max` states from the top; fewer when the bag is short, so that some stay behind for
 * the other workers and for thieves: at most a quarter of the bag per worker, at least one. */
static size_t bag_pop(struct bag *b, uint64_t *out, size_t max, size_t workers)
{
	pthread_mutex_lock(&b->mu);
	size_t live = b->hi - b->lo, k = live / (4 * workers);
	if (k > max)
		k = max;
	if (k == 0 && live > 0)
		k = 1;
	b->hi -= k;
	memcpy(out, b->v + b->hi, k * sizeof *out);
	atomic_store_explicit(&b->count, b->hi - b->lo, memory_order_relaxed);
	pthread_mutex_unlock(&b->mu);
	return k;
}

/* Takes the older half of the bag (rounded down: a last state stays) into a new array; *n = 0 and
 * NULL if the bag has fewer than two. Where the tree thins out to a few states, giving the last
 * one away would only move the one path left from rank to rank, a message's delay each time. */
static uint64_t *bag_take_oldest_half(struct bag *b, size_t *n)
{
	uint64_t *out = NULL;
	pthread_mutex_lock(&b->mu);
	size_t live = b->hi - b->lo, k = live / 2;
	if (k > 0 && (out = malloc(k * sizeof *out)) != NULL) {
		memcpy(out, b->v + b->lo, k * sizeof *out);
		b->lo += k;
		atomic_store_explicit(&b->count, b->hi - b->lo, memory_order_relaxed);
	}
	pthread_mutex_unlock(&b->mu);
	*n = out ? k : 0;
	return out;
}

static size_t bag_count(struct bag *b)
{
	return atomic_load_explicit(&b->count, memory_order_relaxed);
}

/* ---- the pool's side: drainers expanding states with fork-join ---- */

struct rank_ctx {
	struct bag bag;
	struct bench_uts tree;
	int cutoff;
	size_t workers;
	atomic_uint_least64_t nodes; /* counted by the drainers as they finish */
	atomic_int error;
};

struct node {
	struct rank_ctx *r;
	uint64_t state;
	int depth_left;
	uint64_t count;
};

static uint64_t serial_subtree(const struct bench_uts *u, uint64_t state)
{
	uint64_t count = 1;
	int n = bench_uts_children(u, state);
	for (int i = 0; i < n; i++)
		count += serial_subtree(u, bench_uts_child(state, i));
	return count;
}

static int node_task(void *p);

/* A node with n > 0 children above the cutoff: one spawned task per child. Out of line so that a
 * leaf costs node_task only a few instructions. */
static __attribute__((noinline)) int node_fork(struct node *a, int n)
{
	struct node kids[8];
	tp_frame frames[8];
	uint64_t count = 1;
	int rc = 0;

	if (n > 8) { /* not in the bench's trees (5 children): counted serially */
		a->count = serial_subtree(&a->r->tree, a->state);
		return 0;
	}
	int k = 0;
	for (; k < n; k++) {
		kids[k] = (struct node){ a->r, bench_uts_child(a->state, k), a->depth_left - 1, 0 };
		tp_spawn(&frames[k], node_task, &kids[k]);
	}
	while (k-- > 0) { /* newest first: on top of this worker's deque */
		rc |= tp_join(&frames[k]);
		count += kids[k].count;
	}
	a->count = count;
	return rc ? EIO : 0;
}

static int node_task(void *p)
{
	struct node *a = p;
	int n = bench_uts_children(&a->r->tree, a->state);

	if (n == 0) {
		a->count = 1;
		return 0;
	}
	if (a->depth_left > 0)
		return node_fork(a, n);
	/* The cutoff: the children go back into the bag, where they may be stolen. */
	uint64_t kids[8];
	if (n <= 8) {
		for (int k = 0; k < n; k++)
			kids[k] = bench_uts_child(a->state, k);
		if (bag_push(&a->r->bag, kids, (size_t)n) == 0) {
			a->count = 1;
			return 0;
		}
	}
	a->count = serial_subtree(&a->r->tree, a->state); /* no memory for the bag: do it here */
	return 0;
}

#define DRAIN_BATCH 16

/* A drainer: takes states from the bag until it is empty, expanding each to the cutoff. */
static int drainer(void *p)
{
	struct rank_ctx *r = p;
	uint64_t batch[DRAIN_BATCH], nodes = 0;
	size_t k;

	while ((k = bag_pop(&r->bag, batch, DRAIN_BATCH, r->workers)) > 0) {
		for (size_t i = 0; i < k; i++) {
			struct node root = { r, batch[i], r->cutoff, 0 };
			int rc = node_task(&root);
			if (rc)
				atomic_store(&r->error, rc);
			nodes += root.count;
		}
	}
	atomic_fetch_add(&r->nodes, nodes);
	return 0;
}

/* ---- the main thread's side: messages, stealing, termination ---- */

/* Ends every rank: something this example cannot go on without failed (out of memory). */
static _Noreturn void give_up(int rank, const char *what)
{
	fprintf(stderr, "uts_mpi: rank %d: %s\n", rank, what);
	MPI_Abort(MPI_COMM_WORLD, 1);
	exit(1); /* MPI_Abort does not return; its declaration does not say so */
}

struct pending_send {
	MPI_Request req;
	uint64_t *buf; /* freed when the send completes */
};

struct stats {
	uint64_t requests;	/* steal requests sent */
	uint64_t refusals;	/* refusals received */
	uint64_t steals;	/* work messages received */
	uint64_t stolen_states; /* states they carried */
	uint64_t gives;		/* work messages sent */
	uint64_t given_states;
	uint64_t msgs_sent, msgs_recv; /* all point-to-point messages */
	uint64_t waves;
	uint64_t busy_ns, idle_at_ns; /* time with local work; when the rank last went idle */
	uint64_t main_cpu_ns;
};

struct engine {
	struct rank_ctx *r;
	tp_pool *pool;
	int rank, nranks, steal;
	long poll_us, nap_us;
	tp_future **drainers; /* one slot per worker; NULL: free */
	struct pending_send *sends;
	size_t nsends, cap_sends;
	int64_t work_sent, work_recv; /* work messages: the termination counters */
	int64_t *ctrl_sent_to;	      /* requests and refusals sent, per destination */
	int64_t ctrl_recv;
	int asking; /* a steal request is out */
	unsigned seed;
	struct stats st;
	int failed;
};

static int add_send(struct engine *e, uint64_t *buf, size_t n, int dest, int tag)
{
	if (e->nsends == e->cap_sends) {
		size_t cap = e->cap_sends ? e->cap_sends * 2 : 16;
		struct pending_send *s = realloc(e->sends, cap * sizeof *s);
		if (!s) {
			free(buf);
			return ENOMEM;
		}
		e->sends = s;
		e->cap_sends = cap;
	}
	struct pending_send *s = &e->sends[e->nsends++];
	s->buf = buf;
	MPI_Isend(buf, (int)n, MPI_UINT64_T, dest, tag, MPI_COMM_WORLD, &s->req);
	e->st.msgs_sent++;
	if (tag != TAG_WORK)
		e->ctrl_sent_to[dest]++;
	return 0;
}

static void reap_sends(struct engine *e)
{
	for (size_t i = 0; i < e->nsends;) {
		int done = 0;
		MPI_Status st;
		MPI_Test(&e->sends[i].req, &done, &st);
		if (done) {
			free(e->sends[i].buf);
			e->sends[i] = e->sends[--e->nsends];
		} else {
			i++;
		}
	}
}

/* Receives and handles the messages that have arrived; returns how many. */
static int poll_messages(struct engine *e)
{
	int handled = 0;
	for (; handled < 64; handled++) {
		int flag = 0, n = 0;
		MPI_Status st;
		MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
		if (!flag)
			break;
		MPI_Get_count(&st, MPI_UINT64_T, &n);
		uint64_t one, *buf = n > 0 ? malloc((size_t)n * sizeof *buf) : &one;
		if (!buf)
			give_up(e->rank, "out of memory for a message");
		MPI_Recv(buf, n, MPI_UINT64_T, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
			 MPI_STATUS_IGNORE);
		e->st.msgs_recv++;
		if (st.MPI_TAG == TAG_WORK) {
			e->work_recv++;
			e->st.steals++;
			e->st.stolen_states += (uint64_t)n;
			e->asking = 0;
			if (bag_push(&e->r->bag, buf, (size_t)n) != 0)
				give_up(e->rank, "out of memory for the bag");
		} else if (st.MPI_TAG == TAG_REFUSE) {
			e->ctrl_recv++;
			e->st.refusals++;
			e->asking = 0;
		} else if (st.MPI_TAG == TAG_REQUEST) {
			e->ctrl_recv++;
			size_t k = 0;
			uint64_t *give = bag_take_oldest_half(&e->r->bag, &k);
			int rc;
			if (k > 0) {
				e->work_sent++;
				e->st.gives++;
				e->st.given_states += k;
				rc = add_send(e, give, k, st.MPI_SOURCE, TAG_WORK);
			} else {
				rc = add_send(e, NULL, 0, st.MPI_SOURCE, TAG_REFUSE);
			}
			if (rc)
				give_up(e->rank, "out of memory for a send");
		}
		if (n > 0)
			free(buf);
	}
	return handled;
}

/* Releases the futures of finished drainers; returns how many still run. */
static size_t reap_drainers(struct engine *e)
{
	size_t running = 0;
	for (size_t i = 0; i < e->r->workers; i++) {
		tp_future *f = e->drainers[i];
		if (!f)
			continue;
		tp_future_status s = tp_future_state(f);
		if (s == TP_FUTURE_PENDING || s == TP_FUTURE_RUNNING) {
			running++;
			continue;
		}
		if (tp_future_result(f) != 0)
			e->failed = 1;
		tp_future_release(f);
		e->drainers[i] = NULL;
	}
	return running;
}

static size_t start_drainers(struct engine *e, size_t running)
{
	for (size_t i = 0; i < e->r->workers && running < bag_count(&e->r->bag); i++) {
		if (e->drainers[i])
			continue;
		e->drainers[i] = tp_enqueue(e->pool, drainer, e->r);
		if (!e->drainers[i]) {
			e->failed = 1;
			break;
		}
		running++;
	}
	return running;
}

/* Sleeps for the current nap: on a drainer's future (returning early if it ends) when the rank
 * has work, else in nanosleep(). The nap is --poll-us after a message or while a steal request
 * is out, and doubles while none comes, up to 8 times --poll-us: every wake-up costs a moment of
 * a core that the workers (or, on one machine, the other ranks) could use, and a rank that
 * nobody writes to has nothing to answer. */
static void nap(struct engine *e, size_t running, int quiet)
{
	if (!quiet || e->nap_us < e->poll_us)
		e->nap_us = e->poll_us;
	long us = e->nap_us;
	if (quiet && e->nap_us < 8 * e->poll_us)
		e->nap_us *= 2;
	for (size_t i = 0; running > 0 && i < e->r->workers; i++) {
		if (e->drainers[i]) {
			struct timespec dl = deadline_in_us(us);
			tp_future_wait_until(e->drainers[i], &dl);
			return;
		}
	}
	sleep_us(us);
}

/* The traversal, from the main thread, until global termination. */
static void traverse(struct engine *e, uint64_t t_start)
{
	int64_t wave_in[2], wave_out[2], prev[2] = { -1, -1 };
	MPI_Request wave = MPI_REQUEST_NULL;
	int wave_pending = 0, active = 1;
	uint64_t active_since = t_start, cpu0 = thread_cpu_ns();

	for (;;) {
		int got = poll_messages(e) || e->asking;
		reap_sends(e);
		size_t running = reap_drainers(e);
		running = start_drainers(e, running);
		int now_active = running > 0 || bag_count(&e->r->bag) > 0;
		uint64_t t = now_ns();
		if (active && !now_active) {
			e->st.busy_ns += t - active_since;
			e->st.idle_at_ns = t - t_start;
		} else if (!active && now_active) {
			active_since = t;
		}
		active = now_active;

		if (!active && e->steal && e->nranks > 1 && !e->asking) {
			int victim = (int)(rand_r(&e->seed) % (unsigned)(e->nranks - 1));
			if (victim >= e->rank)
				victim++;
			if (add_send(e, NULL, 0, victim, TAG_REQUEST) != 0)
				give_up(e->rank, "out of memory for a send");
			e->st.requests++;
			e->asking = 1;
		}

		if (wave_pending) {
			int done = 0;
			MPI_Test(&wave, &done, MPI_STATUS_IGNORE);
			if (done) {
				wave_pending = 0;
				e->st.waves++;
				if (wave_out[0] == wave_out[1] && wave_out[0] == prev[0] &&
				    wave_out[1] == prev[1])
					break;
				prev[0] = wave_out[0];
				prev[1] = wave_out[1];
			}
		}
		if (!wave_pending && !active) {
			wave_in[0] = e->work_sent;
			wave_in[1] = e->work_recv;
			MPI_Iallreduce(wave_in, wave_out, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD,
				       &wave);
			wave_pending = 1;
		}
		nap(e, running, !got);
	}
	e->st.main_cpu_ns = thread_cpu_ns() - cpu0;
}

/* After termination: receive the requests and refusals still in flight, finish the sends. */
static void drain(struct engine *e)
{
	int64_t expect = 0;
	MPI_Reduce_scatter_block(e->ctrl_sent_to, &expect, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
	for (int64_t left = expect - e->ctrl_recv; left > 0; left--) {
		uint64_t dummy;
		MPI_Recv(&dummy, 1, MPI_UINT64_T, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD,
			 MPI_STATUS_IGNORE);
	}
	for (size_t i = 0; i < e->nsends; i++) {
		MPI_Wait(&e->sends[i].req, MPI_STATUS_IGNORE);
		free(e->sends[i].buf);
	}
	e->nsends = 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mpiexec -n R uts_mpi [--mode static|steal] [--ranks R] [--threads T]\n"
		"       [--size small|default|large] [--cutoff LEVELS] [--poll-us U] [--quiet]\n");
}

static int parse(int argc, char **argv, struct options *o)
{
	*o = (struct options){ .steal = 1, .size = "default", .cutoff = 48, .poll_us = 50 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v;
		if (strcmp(a, "--quiet") == 0) {
			o->quiet = 1;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		const char *val = argv[++i];
		if (strcmp(a, "--mode") == 0 && strcmp(val, "static") == 0) {
			o->steal = 0;
		} else if (strcmp(a, "--mode") == 0 && strcmp(val, "steal") == 0) {
			o->steal = 1;
		} else if (strcmp(a, "--ranks") == 0 && parse_long(val, 1, 1 << 20, &v) == 0) {
			o->ranks = (int)v;
		} else if (strcmp(a, "--threads") == 0 &&
			   parse_long(val, 0, TP_POOL_MAX_THREADS, &v) == 0) {
			o->threads = (size_t)v;
		} else if (strcmp(a, "--size") == 0 &&
			   (strcmp(val, "small") == 0 || strcmp(val, "default") == 0 ||
			    strcmp(val, "large") == 0)) {
			o->size = val;
		} else if (strcmp(a, "--cutoff") == 0 && parse_long(val, 1, 100000, &v) == 0) {
			o->cutoff = (int)v;
		} else if (strcmp(a, "--poll-us") == 0 && parse_long(val, 1, 1000000, &v) == 0) {
			o->poll_us = v;
		} else {
			return -1;
		}
	}
	return 0;
}

/* The per-rank figures gathered on rank 0, as doubles. */
enum {
	F_NODES,
	F_IDLE_AT,
	F_BUSY,
	F_REQUESTS,
	F_REFUSALS,
	F_STEALS,
	F_STOLEN,
	F_GIVES,
	F_GIVEN,
	F_MSGS,
	F_MAIN_CPU,
	F_WORKERS,
	F_COUNT
};

static int report(const struct options *o, int nranks, const double *all, double time_s,
		  uint64_t expected, uint64_t waves)
{
	uint64_t total = 0;
	double busy = 0, msgs = 0, steals = 0, cpu = 0, max_share = 0;
	for (int i = 0; i < nranks; i++) {
		const double *f = all + (size_t)i * F_COUNT;
		total += (uint64_t)f[F_NODES];
		busy += f[F_BUSY];
		msgs += f[F_MSGS];
		steals += f[F_STEALS];
		cpu += f[F_MAIN_CPU];
	}
	if (!o->quiet) {
		printf("uts_mpi: mode %s, %d ranks x %.0f threads, tree %s: %.3f s\n",
		       o->steal ? "steal" : "static", nranks, all[F_WORKERS], o->size, time_s);
		printf("rank      nodes  share  idle at (s)  busy (s)  steals (states)  refused  "
		       "given (states)  msgs sent  main cpu (s)\n");
	}
	for (int i = 0; i < nranks; i++) {
		const double *f = all + (size_t)i * F_COUNT;
		double share = total ? f[F_NODES] / (double)total : 0;
		if (share > max_share)
			max_share = share;
		if (!o->quiet)
			printf("%4d %10.0f %5.1f%% %12.4f %9.4f %7.0f (%6.0f) %8.0f %6.0f (%6.0f) "
			       "%10.0f %13.4f\n",
			       i, f[F_NODES], 100 * share, f[F_IDLE_AT], f[F_BUSY], f[F_STEALS],
			       f[F_STOLEN], f[F_REFUSALS], f[F_GIVES], f[F_GIVEN], f[F_MSGS],
			       f[F_MAIN_CPU]);
	}
	double eff = time_s > 0 ? busy / (nranks * time_s) : 0;
	printf("uts-mpi-result mode=%s ranks=%d threads=%.0f size=%s nodes=%llu expected=%llu "
	       "ok=%d time_s=%.6f efficiency=%.4f max_share=%.4f steals=%.0f messages=%.0f "
	       "waves=%llu main_cpu_s=%.6f\n",
	       o->steal ? "steal" : "static", nranks, all[F_WORKERS], o->size,
	       (unsigned long long)total, (unsigned long long)expected, total == expected, time_s,
	       eff, max_share, steals, msgs, (unsigned long long)waves, cpu / nranks);
	if (total != expected)
		fprintf(stderr, "uts_mpi: WRONG: %llu nodes counted, the serial walk gives %llu\n",
			(unsigned long long)total, (unsigned long long)expected);
	return total == expected ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		struct bench_uts tree;
		uint64_t nodes;
	} trees[] = {
		{ "small", BENCH_UTS_SMALL, BENCH_UTS_SMALL_NODES },
		{ "default", BENCH_UTS_DEFAULT, BENCH_UTS_DEFAULT_NODES },
		{ "large", BENCH_UTS_LARGE, BENCH_UTS_LARGE_NODES },
	};
	struct options o;
	int provided, rank, nranks;
	int bad_args = parse(argc, argv, &o) != 0;

	if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
		fprintf(stderr, "uts_mpi: MPI_Init_thread failed\n");
		return 1;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	if (bad_args) {
		if (rank == 0)
			usage(stderr);
		return finish(2);
	}
	if (!world_is("uts_mpi", o.ranks, nranks))
		return finish(1);
	if (provided < MPI_THREAD_FUNNELED) {
		if (rank == 0)
			fprintf(stderr, "uts_mpi: MPI grants thread level %d, FUNNELED needed\n",
				provided);
		return finish(1);
	}
	/* The main thread sleeps for --poll-us at a time; the default timer slack would add
	 * 50 us to every such sleep. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	size_t t_index = 0;
	for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++)
		if (strcmp(trees[i].name, o.size) == 0)
			t_index = i;

	struct rank_ctx r = { .tree = trees[t_index].tree, .cutoff = o.cutoff };
	pthread_mutex_init(&r.bag.mu, NULL);
	tp_pool *pool = tp_pool_create(o.threads, NULL);
	r.workers = tp_pool_size(pool);
	struct engine e = { .r = &r,
			    .pool = pool,
			    .rank = rank,
			    .nranks = nranks,
			    .steal = o.steal,
			    .poll_us = o.poll_us,
			    .nap_us = o.poll_us,
			    .seed = 0x9e3779b9u * (unsigned)(rank + 1) };
	e.drainers = calloc(r.workers ? r.workers : 1, sizeof *e.drainers);
	e.ctrl_sent_to = calloc((size_t)nranks, sizeof *e.ctrl_sent_to);

	/* The root (counted by rank 0) and this rank's block of its children. */
	int c = r.tree.root_children;
	int c0 = (int)((long)rank * c / nranks), c1 = (int)((long)(rank + 1) * c / nranks);
	uint64_t *first = malloc((size_t)(c1 - c0 + 1) * sizeof *first);
	int local_fail = !pool || !e.drainers || !e.ctrl_sent_to || !first;
	if (!local_fail) {
		/* Pushed last child first, so that the drainers (popping the top) begin with
		 * the block's first child and the thieves get its last ones. */
		for (int i = c1 - 1, j = 0; i >= c0; i--, j++)
			first[j] = bench_uts_child(r.tree.seed, i);
		local_fail = c1 > c0 && bag_push(&r.bag, first, (size_t)(c1 - c0)) != 0;
	}
	free(first);
	int any_fail = 0;
	MPI_Allreduce(&local_fail, &any_fail, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
	if (any_fail) {
		if (local_fail)
			fprintf(stderr, "uts_mpi: rank %d: out of memory or no pool\n", rank);
		tp_pool_destroy(pool);
		free(e.drainers);
		free(e.ctrl_sent_to);
		free(r.bag.v);
		return finish(1);
	}
	if (rank == 0)
		atomic_store(&r.nodes, 1);

	MPI_Barrier(MPI_COMM_WORLD);
	uint64_t t0 = now_ns();
	traverse(&e, t0);
	double elapsed = (double)(now_ns() - t0) / 1e9;
	drain(&e);
	for (size_t i = 0; i < r.workers; i++)
		if (e.drainers[i]) {
			tp_future_wait(e.drainers[i]);
			tp_future_release(e.drainers[i]);
		}
	/* The pool goes before MPI_Finalize (here nothing in it calls MPI, but a program whose
	 * tasks do must not finalize under them). */
	tp_pool_destroy(pool);
	if (e.failed || atomic_load(&r.error))
		fprintf(stderr, "uts_mpi: rank %d: a task failed\n", rank);

	double mine[F_COUNT] = {
		[F_NODES] = (double)atomic_load(&r.nodes),
		[F_IDLE_AT] = (double)e.st.idle_at_ns / 1e9,
		[F_BUSY] = (double)e.st.busy_ns / 1e9,
		[F_REQUESTS] = (double)e.st.requests,
		[F_REFUSALS] = (double)e.st.refusals,
		[F_STEALS] = (double)e.st.steals,
		[F_STOLEN] = (double)e.st.stolen_states,
		[F_GIVES] = (double)e.st.gives,
		[F_GIVEN] = (double)e.st.given_states,
		[F_MSGS] = (double)e.st.msgs_sent,
		[F_MAIN_CPU] = (double)e.st.main_cpu_ns / 1e9,
		[F_WORKERS] = (double)r.workers,
	};
	double *all = rank == 0 ? malloc((size_t)nranks * sizeof mine) : NULL;
	double max_elapsed = 0;
	MPI_Gather(mine, F_COUNT, MPI_DOUBLE, all, F_COUNT, MPI_DOUBLE, 0, MPI_COMM_WORLD);
	MPI_Reduce(&elapsed, &max_elapsed, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	int status = e.failed || atomic_load(&r.error);
	int any_status = 0;
	MPI_Allreduce(&status, &any_status, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
	if (rank == 0)
		any_status |=
			all ? report(&o, nranks, all, max_elapsed, trees[t_index].nodes, e.st.waves)
			    : 1;
	MPI_Bcast(&any_status, 1, MPI_INT, 0, MPI_COMM_WORLD);
	free(all);
	free(e.sends);
	free(e.drainers);
	free(e.ctrl_sent_to);
	free(r.bag.v);
	pthread_mutex_destroy(&r.bag.mu);
	return finish(any_status ? 1 : 0);
}
