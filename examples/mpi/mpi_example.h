/*
 * mpi_example.h - what heat_mpi.c and uts_mpi.c both need: clocks, sleeps and deadlines for the
 * main thread's progress loop, option parsing, and the start and end of an MPI program that
 * checks it runs in the world it expects.
 */
#ifndef MPI_EXAMPLE_H
#define MPI_EXAMPLE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <mpi.h>

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread: what the main thread's progress loop costs. */
static inline uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An absolute CLOCK_MONOTONIC deadline `us` microseconds from now (for tp_future_wait_until). */
static inline struct timespec deadline_in_us(long us)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += us * 1000;
	while (ts.tv_nsec >= 1000000000) {
		ts.tv_nsec -= 1000000000;
		ts.tv_sec++;
	}
	return ts;
}

static inline void sleep_us(long us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
	nanosleep(&ts, NULL);
}

/* A decimal number in [lo, hi] into *out: 0, or -1 (and *out untouched) for anything else. */
static inline int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* Ends the program on every rank with the same status (MPI_Finalize first). */
static inline int finish(int status)
{
	MPI_Finalize();
	return status;
}

/*
 * True if the world has the `expected` ranks (0: any); else says so, on every rank: started by
 * another MPI's launcher, each process is rank 0 of a world of its own.
 */
static inline int world_is(const char *program, int expected, int nranks)
{
	if (expected == 0 || expected == nranks)
		return 1;
	fprintf(stderr,
		"%s: the world has %d ranks, --ranks says %d (started by another MPI's launcher?)\n",
		program, nranks, expected);
	return 0;
}

#endif /* MPI_EXAMPLE_H */
