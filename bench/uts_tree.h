/*
 * uts_tree.h - the UTS tree of the bench suite, shared with examples/mpi/uts_mpi.c.
 *
 * UTS binomial tree (as UTS T3L): the root has `root_children` children; every other node has `m`
 * children with probability q, else none. A node is its 64-bit state: the root's is `seed`, child i
 * of state s has state splitmix64(s ^ i), and a non-root node has children iff (state >> 11) <
 * q_53, where q_53 = q * 2^53. m * q = 1 (critical), so the size depends on the seed: seed 7 with
 * 2000 root children gives 13,440,251 nodes, depth 3654.
 *
 * Header-only and plain C (rt_tbb.cpp includes it through bench.h); the node counts below come
 * from the serial walk (bench_uts_serial() in kernels.c), which the bench's `serial` runtime
 * re-checks in every `meson test --suite bench` run.
 */
#ifndef TP_BENCH_UTS_TREE_H
#define TP_BENCH_UTS_TREE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_uts {
	uint64_t seed;
	int root_children;
	int m;
	uint64_t q_53;
};

/* q * 2^53, for the q_53 field. */
#define BENCH_UTS_Q_53(q) ((uint64_t)((q)*9007199254740992.0))

/* The trees of the bench's --size settings (initialisers of struct bench_uts) and their node
 * counts, the root included. */
#define BENCH_UTS_SMALL                                                                            \
	{                                                                                          \
		.seed = 7, .root_children = 60, .m = 5, .q_53 = BENCH_UTS_Q_53(0.2)                \
	}
#define BENCH_UTS_SMALL_NODES 36336
#define BENCH_UTS_DEFAULT                                                                          \
	{                                                                                          \
		.seed = 7, .root_children = 2000, .m = 5, .q_53 = BENCH_UTS_Q_53(0.2)              \
	}
#define BENCH_UTS_DEFAULT_NODES 13440251
#define BENCH_UTS_LARGE                                                                            \
	{                                                                                          \
		.seed = 7, .root_children = 8000, .m = 5, .q_53 = BENCH_UTS_Q_53(0.2)              \
	}
#define BENCH_UTS_LARGE_NODES 29854906

static inline uint64_t bench_splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static inline uint64_t bench_uts_child(uint64_t state, int i)
{
	return bench_splitmix64(state ^ (uint64_t)i);
}

/* Children of a non-root node. */
static inline int bench_uts_children(const struct bench_uts *u, uint64_t state)
{
	return (state >> 11) < u->q_53 ? u->m : 0;
}

#ifdef __cplusplus
}
#endif

#endif /* TP_BENCH_UTS_TREE_H */
