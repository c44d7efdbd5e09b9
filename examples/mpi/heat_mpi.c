/*
 * heat_mpi.c - a 2D Jacobi heat stencil split across MPI ranks, each rank sweeping its rows on
 * its own pool: three ways of combining the halo exchange with the pool's work.
 *
 *	mpiexec -n R heat_mpi --ranks R [--mode M] [--threads T] [--nx X] [--ny Y] [--iters K]
 *
 * The grid has Y rows of X points inside a fixed border (the top edge hot, the others cold).
 * Rank r owns a contiguous block of rows plus two halo rows, copies of its neighbours' edge rows,
 * which are exchanged before every sweep with MPI_Irecv/MPI_Isend. Modes:
 *
 *   blocking        the main thread exchanges the halos (MPI_Waitall), then sweeps all its rows
 *                   with tp_parallel_for: simple, but the pool idles during the exchange.
 *   overlap         the main thread starts the exchange, hands the interior rows (those that
 *                   need no halo) to the pool as one task, and drives the exchange with MPI_Testall
 *                   while it sleeps on the interior's future with tp_future_wait_until(now + a
 *                   few microseconds); the two edge rows follow as soon as the halos are in. MPI
 *                   needs only MPI_THREAD_FUNNELED: every call is made by the main thread.
 *   tasks-call-mpi  the pool's tasks make the MPI calls themselves: each edge row is a task that
 *                   exchanges its halo and then sweeps the row, beside the interior task. Needs
 *                   MPI_THREAD_MULTIPLE (exit 77, "skipped", if the library does not grant it).
 *                   A task waiting for a message holds its worker: the cost this mode shows.
 *
 * Each sweep computes every point with the same expression in the same order whichever rank or
 * worker does it, so the result is bit-exact: rank 0 gathers the grid and compares it with a
 * serial sweep of the whole grid (--no-check skips that, for timing runs). Exits 1 on a mismatch,
 * on bad options, or when the world does not have the --ranks the caller expected (a program
 * started by another MPI's launcher runs as several worlds of one rank each).
 * Rank 0 prints one line, "heat-mpi-result key=value ...", with the times per iteration.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <mpi.h>

#include "mpi_example.h"
#include "thread_pool.h"

enum mode {
	MODE_BLOCKING,
	MODE_OVERLAP,
	MODE_TASKS_CALL_MPI
};
static const char *const mode_names[] = { "blocking", "overlap", "tasks-call-mpi" };

#define HOT 100.0 /* the top edge; the other three edges are 0 */

/* Message tags: a row sent to the rank below (it becomes that rank's upper halo) or above. Two
 * tag pairs, alternating with the iteration, so that a late message can never be taken for the
 * next iteration's (MPI orders messages per sender and tag anyway; this makes it obvious). */
#define TAG_TO_DOWN(it) (1 + 2 * (int)((it)&1))
#define TAG_TO_UP(it)	(2 + 2 * (int)((it)&1))

struct options {
	enum mode mode;
	int ranks; /* expected world size; 0: any */
	size_t threads;
	int nx, ny, iters;
	long poll_us;
	int check;
};

/* One rank's share: rows 1..nloc of cur/next are global rows r0..r0+nloc-1; rows 0 and nloc+1 are
 * the halos (or the fixed border on the first and last rank). Each row has nx + 2 points, the
 * first and last being the fixed left and right border. */
struct grid {
	int rank, nranks;
	int nx, ny, nloc, r0;
	size_t stride;
	double *cur, *next;
	int up, down; /* neighbour ranks, or MPI_PROC_NULL */
	long poll_us;
	/* tasks-call-mpi: time the edge tasks spent waiting for MPI (ns), by each edge task */
	uint64_t task_wait_ns[2];
};

/* The initial value of global point (row g, column j), both from 0, and of the border. */
static double initial(int g, int j)
{
	return (double)((g * 7 + j * 13) % 17) / 16.0;
}

/* Fills rows 0..nrows+1 of a block whose first inner row is global row r0 (serial: r0 = 0,
 * nrows = ny). Halo rows that are inner rows of another rank get their initial values too; the
 * first exchange overwrites them with the same values. */
static void fill_block(double *a, size_t stride, int nx, int ny, int r0, int nrows)
{
	for (int l = 0; l <= nrows + 1; l++) {
		int g = r0 + l - 1;
		double *row = a + (size_t)l * stride;
		for (int j = 0; j <= nx + 1; j++) {
			if (g < 0)
				row[j] = HOT;
			else if (g >= ny || j == 0 || j == nx + 1)
				row[j] = 0.0;
			else
				row[j] = initial(g, j - 1);
		}
	}
}

/* The stencil on one row: every point from the previous sweep's four neighbours. The serial
 * reference calls this very function, so the results can be compared bit for bit. */
static void sweep_row(double *out, const double *up, const double *mid, const double *down, int nx)
{
	for (int j = 1; j <= nx; j++)
		out[j] = 0.25 * ((up[j] + down[j]) + (mid[j - 1] + mid[j + 1]));
}

static void sweep_rows(size_t begin, size_t end, void *ctx)
{
	struct grid *g = ctx;
	for (size_t l = begin; l < end; l++)
		sweep_row(g->next + l * g->stride, g->cur + (l - 1) * g->stride,
			  g->cur + l * g->stride, g->cur + (l + 1) * g->stride, g->nx);
}

/* The interior rows, 2..nloc-1, which need no halo: a pool task running a parallel loop (from
 * inside the pool, tp_parallel_for runs the loop there and returns when it is done). */
static int interior_task(void *arg)
{
	struct grid *g = arg;
	if (g->nloc < 3)
		return 0;
	return tp_parallel_for(tp_current_pool(), 2, (size_t)g->nloc, 0, sweep_rows, g);
}

/* The edge rows, 1 and nloc (one row when nloc is 1), once the halos are in. */
static int edges_task(void *arg)
{
	struct grid *g = arg;
	sweep_rows(1, 2, g);
	if (g->nloc > 1)
		sweep_rows((size_t)g->nloc, (size_t)g->nloc + 1, g);
	return 0;
}

/*
 * Posts the halo exchange of iteration `it` with the neighbour above (up) and/or below (down):
 * a receive into the halo row and a send of the edge row. Returns the number of requests.
 */
static int post_exchange(struct grid *g, long it, int up, int down, MPI_Request *req)
{
	int n = 0;
	int nx2 = g->nx + 2;
	if (up && g->up != MPI_PROC_NULL) {
		MPI_Irecv(g->cur, nx2, MPI_DOUBLE, g->up, TAG_TO_DOWN(it), MPI_COMM_WORLD,
			  &req[n++]);
		MPI_Isend(g->cur + g->stride, nx2, MPI_DOUBLE, g->up, TAG_TO_UP(it), MPI_COMM_WORLD,
			  &req[n++]);
	}
	if (down && g->down != MPI_PROC_NULL) {
		MPI_Irecv(g->cur + (size_t)(g->nloc + 1) * g->stride, nx2, MPI_DOUBLE, g->down,
			  TAG_TO_UP(it), MPI_COMM_WORLD, &req[n++]);
		MPI_Isend(g->cur + (size_t)g->nloc * g->stride, nx2, MPI_DOUBLE, g->down,
			  TAG_TO_DOWN(it), MPI_COMM_WORLD, &req[n++]);
	}
	return n;
}

/* tasks-call-mpi: one edge of the rank, as a task that makes its own MPI calls. The task polls
 * its requests with MPI_Testall and sleeps between polls: it cannot give its worker back while it
 * waits (that is what this mode shows), but at least it does not spin on the core. */
struct edge_arg {
	struct grid *g;
	long it;
	int which; /* 0: the top edge (row 1, halo from above), 1: the bottom edge */
	int both;  /* nloc == 1: this task does both exchanges and the one row */
};

static int edge_task(void *arg)
{
	struct edge_arg *e = arg;
	struct grid *g = e->g;
	MPI_Request req[4];
	MPI_Status st[4];
	int up = e->which == 0 || e->both, down = e->which == 1 || e->both;
	int n = post_exchange(g, e->it, up, down, req);
	uint64_t t0 = now_ns();
	int done = 0;
	while (n > 0) {
		if (MPI_Testall(n, req, &done, st) != MPI_SUCCESS)
			return EIO;
		if (done)
			break;
		sleep_us(g->poll_us);
	}
	g->task_wait_ns[e->which] += now_ns() - t0;
	size_t row = e->which == 0 ? 1 : (size_t)g->nloc;
	sweep_rows(row, row + 1, g);
	return 0;
}

/* One iteration of tasks-call-mpi, as a pool task: the bottom edge is spawned first, so that an
 * idle worker takes it (thieves take the oldest frame) and both edges wait for MPI at once; the
 * interior comes next, and the top edge runs here. */
static int tasks_iteration(void *arg)
{
	struct edge_arg *e = arg; /* e[0]: top, e[1]: bottom */
	struct grid *g = e[0].g;
	int both = e[0].both;
	tp_frame bottom, interior;
	int rc = 0;

	if (both) { /* one row: one task does both exchanges */
		tp_spawn(&interior, interior_task, g);
		rc |= edge_task(&e[0]);
		rc |= tp_join(&interior);
	} else {
		tp_spawn(&bottom, edge_task, &e[1]);
		tp_spawn(&interior, interior_task, g);
		rc |= edge_task(&e[0]);
		rc |= tp_join(&interior);
		rc |= tp_join(&bottom);
	}
	return rc ? EIO : 0;
}

struct times {
	uint64_t wall_ns;
	uint64_t halo_wait_ns; /* blocking: in MPI_Waitall; overlap: exposed (after the interior
				* was done); tasks-call-mpi: the edge tasks' time in MPI waits */
	uint64_t main_cpu_ns;
};

static int run(struct grid *g, tp_pool *pool, const struct options *o, struct times *t)
{
	MPI_Request req[4];
	MPI_Status st[4];
	uint64_t t0 = now_ns(), cpu0 = thread_cpu_ns();

	for (long it = 0; it < o->iters; it++) {
		if (o->mode == MODE_BLOCKING) {
			int n = post_exchange(g, it, 1, 1, req);
			uint64_t w0 = now_ns();
			MPI_Waitall(n, req, st);
			t->halo_wait_ns += now_ns() - w0;
			int rc = tp_parallel_for(pool, 1, (size_t)g->nloc + 1, 0, sweep_rows, g);
			if (rc)
				return rc;
		} else if (o->mode == MODE_OVERLAP) {
			int n = post_exchange(g, it, 1, 1, req);
			tp_future *inner = tp_enqueue(pool, interior_task, g);
			if (!inner)
				return errno;
			/* The progress loop: test the exchange, sleep on the interior's future
			 * (until it finishes, or for `nap` microseconds), test again. The nap
			 * doubles while nothing completes, up to 64 polls' worth: each wake-up
			 * takes a core from the workers for a moment. Once the interior is done
			 * the halos are all that is left: short naps again. */
			int done = n == 0;
			uint64_t inner_done_at = 0;
			long nap = g->poll_us;
			while (!done) {
				MPI_Testall(n, req, &done, st);
				if (done)
					break;
				if (!inner_done_at) {
					struct timespec dl = deadline_in_us(nap);
					if (tp_future_wait_until(inner, &dl) != ETIMEDOUT) {
						inner_done_at = now_ns();
						nap = g->poll_us;
						continue;
					}
					if (nap < 64 * g->poll_us)
						nap *= 2;
				} else {
					sleep_us(nap);
					if (nap < 8 * g->poll_us)
						nap *= 2;
				}
			}
			if (inner_done_at)
				t->halo_wait_ns += now_ns() - inner_done_at;
			tp_future *edges = tp_enqueue(pool, edges_task, g);
			int rc = edges ? tp_future_wait(edges) : errno;
			int rc2 = tp_future_wait(inner);
			tp_future_release(edges);
			tp_future_release(inner);
			if (rc || rc2)
				return rc ? rc : rc2;
		} else {
			struct edge_arg e[2] = {
				{ g, it, 0, g->nloc == 1 },
				{ g, it, 1, g->nloc == 1 },
			};
			tp_future *f = tp_enqueue(pool, tasks_iteration, e);
			int rc = f ? tp_future_wait(f) : errno;
			tp_future_release(f);
			if (rc)
				return rc;
		}
		double *tmp = g->cur;
		g->cur = g->next;
		g->next = tmp;
	}
	t->wall_ns = now_ns() - t0;
	t->main_cpu_ns = thread_cpu_ns() - cpu0;
	if (o->mode == MODE_TASKS_CALL_MPI)
		t->halo_wait_ns = g->task_wait_ns[0] + g->task_wait_ns[1];
	return 0;
}

/* Rank 0: the serial sweep of the whole grid, compared bit for bit with the gathered rows. */
static int check_serial(const struct options *o, const double *gathered, size_t stride)
{
	size_t bytes = (size_t)(o->ny + 2) * stride * sizeof(double);
	double *a = malloc(bytes), *b = malloc(bytes);
	int bad = -1;
	if (!a || !b) {
		free(a);
		free(b);
		fprintf(stderr, "heat_mpi: out of memory for the serial check\n");
		return 1;
	}
	fill_block(a, stride, o->nx, o->ny, 0, o->ny);
	fill_block(b, stride, o->nx, o->ny, 0, o->ny);
	for (int it = 0; it < o->iters; it++) {
		for (int l = 1; l <= o->ny; l++)
			sweep_row(b + (size_t)l * stride, a + (size_t)(l - 1) * stride,
				  a + (size_t)l * stride, a + (size_t)(l + 1) * stride, o->nx);
		double *t = a;
		a = b;
		b = t;
	}
	for (int l = 1; l <= o->ny && bad < 0; l++)
		if (memcmp(a + (size_t)l * stride, gathered + (size_t)(l - 1) * stride,
			   stride * sizeof(double)) != 0)
			bad = l - 1;
	if (bad >= 0) {
		for (int j = 0; j < o->nx + 2; j++) {
			double want = a[(size_t)(bad + 1) * stride + (size_t)j];
			double got = gathered[(size_t)bad * stride + (size_t)j];
			if (want != got) {
				fprintf(stderr,
					"heat_mpi: MISMATCH at row %d, column %d: %.17g, serial %.17g\n",
					bad, j, got, want);
				break;
			}
		}
	}
	free(a);
	free(b);
	return bad >= 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mpiexec -n R heat_mpi [--mode blocking|overlap|tasks-call-mpi]\n"
		   "       [--ranks R] [--threads T] [--nx X] [--ny Y] [--iters K] [--poll-us U]\n"
		   "       [--no-check]\n");
}

static int parse(int argc, char **argv, struct options *o)
{
	*o = (struct options){
		.mode = MODE_OVERLAP, .nx = 512, .ny = 512, .iters = 100, .poll_us = 5, .check = 1
	};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		long v;
		if (strcmp(a, "--no-check") == 0) {
			o->check = 0;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		const char *val = argv[++i];
		if (strcmp(a, "--mode") == 0) {
			int m = -1;
			for (int k = 0; k < 3; k++)
				if (strcmp(val, mode_names[k]) == 0)
					m = k;
			if (m < 0)
				return -1;
			o->mode = (enum mode)m;
		} else if (strcmp(a, "--ranks") == 0 && parse_long(val, 1, 1 << 20, &v) == 0) {
			o->ranks = (int)v;
		} else if (strcmp(a, "--threads") == 0 &&
			   parse_long(val, 0, TP_POOL_MAX_THREADS, &v) == 0) {
			o->threads = (size_t)v;
		} else if (strcmp(a, "--nx") == 0 && parse_long(val, 1, 1 << 16, &v) == 0) {
			o->nx = (int)v;
		} else if (strcmp(a, "--ny") == 0 && parse_long(val, 1, 1 << 16, &v) == 0) {
			o->ny = (int)v;
		} else if (strcmp(a, "--iters") == 0 && parse_long(val, 1, 1 << 24, &v) == 0) {
			o->iters = (int)v;
		} else if (strcmp(a, "--poll-us") == 0 && parse_long(val, 1, 1000000, &v) == 0) {
			o->poll_us = v;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Ends every rank at once (after an error that leaves the ranks out of step). */
static _Noreturn void give_up(void)
{
	MPI_Abort(MPI_COMM_WORLD, 1);
	exit(1); /* MPI_Abort does not return; its declaration does not say so */
}

int main(int argc, char **argv)
{
	struct options o;
	int provided, rank, nranks;
	int bad_args = parse(argc, argv, &o) != 0;
	/* Ask for what the mode needs: MULTIPLE only where pool tasks call MPI. */
	int want = !bad_args && o.mode == MODE_TASKS_CALL_MPI ? MPI_THREAD_MULTIPLE
							      : MPI_THREAD_FUNNELED;

	if (MPI_Init_thread(&argc, &argv, want, &provided) != MPI_SUCCESS) {
		fprintf(stderr, "heat_mpi: MPI_Init_thread failed\n");
		return 1;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	if (bad_args) {
		if (rank == 0)
			usage(stderr);
		return finish(2);
	}
	if (!world_is("heat_mpi", o.ranks, nranks))
		return finish(1);
	if (provided < want) {
		if (rank == 0)
			printf("heat_mpi: SKIPPED: mode %s needs MPI_THREAD_MULTIPLE, the library "
			       "grants level %d\n",
			       mode_names[o.mode], provided);
		return finish(77);
	}
	if (o.ny < nranks) {
		if (rank == 0)
			fprintf(stderr, "heat_mpi: --ny %d is less than the %d ranks\n", o.ny,
				nranks);
		return finish(2);
	}

	struct grid g = {
		.rank = rank, .nranks = nranks, .nx = o.nx, .ny = o.ny, .poll_us = o.poll_us
	};
	g.r0 = (int)((long)rank * o.ny / nranks);
	g.nloc = (int)((long)(rank + 1) * o.ny / nranks) - g.r0;
	g.stride = (size_t)o.nx + 2;
	g.up = rank > 0 ? rank - 1 : MPI_PROC_NULL;
	g.down = rank < nranks - 1 ? rank + 1 : MPI_PROC_NULL;
	size_t block = (size_t)(g.nloc + 2) * g.stride;
	g.cur = malloc(block * sizeof(double));
	g.next = malloc(block * sizeof(double));
	tp_pool *pool = tp_pool_create(o.threads, NULL);
	int local_fail = !g.cur || !g.next || !pool;
	if (local_fail)
		fprintf(stderr, "heat_mpi: rank %d: out of memory or no pool: %s\n", rank,
			strerror(errno));
	int any_fail = 0;
	MPI_Allreduce(&local_fail, &any_fail, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
	if (any_fail) {
		tp_pool_destroy(pool);
		free(g.cur);
		free(g.next);
		return finish(1);
	}
	/* The progress loop sleeps a few microseconds at a time; the default timer slack would
	 * add 50 us to each of those sleeps. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	fill_block(g.cur, g.stride, o.nx, o.ny, g.r0, g.nloc);
	fill_block(g.next, g.stride, o.nx, o.ny, g.r0, g.nloc);

	struct times t = { 0 };
	MPI_Barrier(MPI_COMM_WORLD);
	int rc = run(&g, pool, &o, &t);
	size_t workers = tp_pool_size(pool);
	/* The pool goes before MPI_Finalize: no task may be inside MPI when it finalizes. */
	tp_pool_destroy(pool);
	if (rc) {
		fprintf(stderr, "heat_mpi: rank %d: %s\n", rank, strerror(rc));
		give_up();
	}

	/* The times of the slowest rank, the halo waits and main-thread CPU summed over ranks. */
	uint64_t mine[3] = { t.wall_ns, t.halo_wait_ns, t.main_cpu_ns }, max[3], sum[3];
	MPI_Reduce(mine, max, 3, MPI_UINT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
	MPI_Reduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);

	int status = 0;
	if (o.check) {
		int *counts = NULL, *displs = NULL;
		double *all = NULL;
		if (rank == 0) {
			counts = malloc((size_t)nranks * sizeof *counts);
			displs = malloc((size_t)nranks * sizeof *displs);
			all = malloc((size_t)o.ny * g.stride * sizeof *all);
			if (!counts || !displs || !all) {
				fprintf(stderr, "heat_mpi: out of memory for the gather\n");
				give_up();
			}
			for (int r = 0; r < nranks; r++) {
				int r0 = (int)((long)r * o.ny / nranks);
				int r1 = (int)((long)(r + 1) * o.ny / nranks);
				counts[r] = (r1 - r0) * (int)g.stride;
				displs[r] = r0 * (int)g.stride;
			}
		}
		MPI_Gatherv(g.cur + g.stride, g.nloc * (int)g.stride, MPI_DOUBLE, all, counts,
			    displs, MPI_DOUBLE, 0, MPI_COMM_WORLD);
		if (rank == 0)
			status = check_serial(&o, all, g.stride);
		free(counts);
		free(displs);
		free(all);
	}
	MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);

	if (rank == 0) {
		double iters = (double)o.iters;
		printf("heat-mpi-result mode=%s ranks=%d threads=%zu nx=%d ny=%d iters=%d "
		       "ms_per_iter=%.4f halo_wait_ms_per_iter=%.4f main_cpu_ms_per_iter=%.4f "
		       "checked=%d ok=%d\n",
		       mode_names[o.mode], nranks, workers, o.nx, o.ny, o.iters,
		       (double)max[0] / 1e6 / iters, (double)sum[1] / nranks / 1e6 / iters,
		       (double)sum[2] / nranks / 1e6 / iters, o.check, status == 0);
		if (status)
			fprintf(stderr,
				"heat_mpi: WRONG: the grid differs from the serial sweep\n");
	}
	free(g.cur);
	free(g.next);
	return finish(status ? 1 : 0);
}
