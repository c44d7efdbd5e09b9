/*
 * atomics.h - the one atomics vocabulary of the runtime.
 *
 * Every word shared between threads is read and written through these functions, never with plain
 * loads and stores. Two backends:
 *  - default: Concurrency Kit's ck_pr (the design card's choice);
 *  - TP_ATOMICS_BUILTINS (the ThreadSanitizer build, meson -Datomics=builtins, chosen automatically
 *    under -Db_sanitize=thread): GCC/Clang __atomic builtins, which TSan understands. ck_pr's loads
 *    and stores are volatile accesses TSan reports as races, and TSan ignores stand-alone fences.
 *  - TP_ATOMICS_RELACY (C++ only, the model checker's: tests/model): each operation is a Relacy
 *    atomic access with the C11 order the ck backend gives it, so the models run this code.
 *
 * A shared word that a struct in the public header holds is declared TP__SHARED(T): T in C, an
 * atomic object in the model. A pointer-to-pointer argument of the _ptr operations is written
 * TP__PTR(&x) (a cast to void ** in C, the typed atomic in the model).
 *
 * Orders, weakest first: _rlx (relaxed), _acq / _rel (acquire load / release store), and the
 * store-load pattern of Chase-Lev and of Dekker-style sleep/wake checks:
 *
 *	tp__store_sc(x); tp__fence_sc(); tp__load_sc(y);
 *
 * In the ck backend the fence is ck_pr_fence_memory() (mfence on x86) and the _sc accesses are
 * release stores / acquire loads. In the builtins backend the _sc accesses are seq_cst operations,
 * which gives the same store-load order in C11 terms among themselves and is what TSan can check;
 * the fence is a seq_cst fence there too, for the loads after it that are not ours: work_visible()
 * reads liburcu's queue with relaxed loads after tp__park_prepare()'s or and fence, and a seq_cst
 * read-modify-write does not order a later relaxed load in C11 (tests/model's handshake model
 * finds that lost wake-up when the fence is empty). So an _sc store must be followed by a
 * tp__fence_sc() before the _sc load it is ordered with (on every path between them; other
 * accesses may come in between), an _sc load must follow such a fence, and every tp__fence_sc()
 * must sit between _sc accesses (or read-modify-writes, which are seq_cst in both backends).
 * Each _sc access names its fence.
 *
 * Read-modify-writes (cas, faa, fas, or, and) are sequentially consistent in both backends, and
 * full barriers on x86 (lock-prefixed). The runtime relies on the full barrier only where
 * liburcu documents one (the enqueue's exchange); the models check the rest without it.
 */
#ifndef TP_ATOMICS_H
#define TP_ATOMICS_H

#include <stdbool.h>
#include <stdint.h>

/* clang-format off */
/* The operation tables below read best one line per operation. */
#if defined(TP_ATOMICS_RELACY)

/*
 * The model checker's backend: C++ under Relacy, in tests/model only, never in a library build.
 * Shared words are Relacy atomics, and every operation calls the model's harness
 * (tests/model/harness.hpp, included before this header) with the order its name states and its
 * call site. The harness gives it its C11 order in the ck backend (acquire / release _sc
 * accesses, seq_cst fences and read-modify-writes), which the builtins backend at least matches,
 * and, in a mutation test, weakens the one chosen by function and address.
 */
#ifndef __cplusplus
#error "TP_ATOMICS_RELACY is the model checker's C++ backend (tests/model)"
#endif

#define TP__SHARED(T)		    rl::atomic<T>
#define TP__PTR(p)		    (p)
#define TP__ASSERT(x)		    RL_ASSERT(x)
#define TP__SITE(p)		    tp__model_site(#p, $)
#define TP__LOAD_RLX(p)		    tp__model_load((p), TP__MO_RLX, TP__SITE(p))
#define TP__STORE_RLX(p, v)	    tp__model_store((p), (v), TP__MO_RLX, TP__SITE(p))

#define tp__load_rlx_u32(p)	    tp__model_load((p), TP__MO_RLX, TP__SITE(p))
#define tp__load_acq_u32(p)	    tp__model_load((p), TP__MO_ACQ, TP__SITE(p))
#define tp__load_sc_u32(p)	    tp__model_load((p), TP__MO_SC, TP__SITE(p))
#define tp__store_rlx_u32(p, v)	    tp__model_store((p), (v), TP__MO_RLX, TP__SITE(p))
#define tp__store_rel_u32(p, v)	    tp__model_store((p), (v), TP__MO_REL, TP__SITE(p))
#define tp__store_sc_u32(p, v)	    tp__model_store((p), (v), TP__MO_SC, TP__SITE(p))
#define tp__cas_u32(p, o, n)	    tp__model_cas((p), (o), (n), TP__SITE(p))
#define tp__cas_value_u32(p, o, n)  tp__model_cas_value((p), (o), (n), TP__SITE(p))
#define tp__fas_u32(p, v)	    tp__model_swap((p), (v), TP__SITE(p))
#define tp__faa_u32(p, v)	    tp__model_add((p), (v), TP__SITE(p))

#define tp__load_rlx_u64(p)	    tp__model_load((p), TP__MO_RLX, TP__SITE(p))
#define tp__load_acq_u64(p)	    tp__model_load((p), TP__MO_ACQ, TP__SITE(p))
#define tp__load_sc_u64(p)	    tp__model_load((p), TP__MO_SC, TP__SITE(p))
#define tp__store_rlx_u64(p, v)	    tp__model_store((p), (v), TP__MO_RLX, TP__SITE(p))
#define tp__store_rel_u64(p, v)	    tp__model_store((p), (v), TP__MO_REL, TP__SITE(p))
#define tp__store_sc_u64(p, v)	    tp__model_store((p), (v), TP__MO_SC, TP__SITE(p))
#define tp__cas_u64(p, o, n)	    tp__model_cas((p), (o), (n), TP__SITE(p))
#define tp__cas_value_u64(p, o, n)  tp__model_cas_value((p), (o), (n), TP__SITE(p))
#define tp__fas_u64(p, v)	    tp__model_swap((p), (v), TP__SITE(p))
#define tp__faa_u64(p, v)	    tp__model_add((p), (v), TP__SITE(p))
#define tp__or_u64(p, v)	    ((void)tp__model_or((p), (v), TP__SITE(p)))
#define tp__fetch_or_u64(p, v)	    tp__model_or((p), (v), TP__SITE(p))
#define tp__and_u64(p, v)	    ((void)tp__model_and((p), (v), TP__SITE(p)))

#define tp__load_rlx_ptr(p)	    tp__model_load((p), TP__MO_RLX, TP__SITE(p))
#define tp__load_acq_ptr(p)	    tp__model_load((p), TP__MO_ACQ, TP__SITE(p))
#define tp__load_sc_ptr(p)	    tp__model_load((p), TP__MO_SC, TP__SITE(p))
#define tp__store_rlx_ptr(p, v)	    tp__model_store((p), (v), TP__MO_RLX, TP__SITE(p))
#define tp__store_rel_ptr(p, v)	    tp__model_store((p), (v), TP__MO_REL, TP__SITE(p))
#define tp__store_sc_ptr(p, v)	    tp__model_store((p), (v), TP__MO_SC, TP__SITE(p))
#define tp__cas_ptr(p, o, n)	    tp__model_cas((p), (o), (n), TP__SITE(p))
#define tp__cas_value_ptr(p, o, n)  tp__model_cas_value((p), (o), (n), TP__SITE(p))
#define tp__fas_ptr(p, v)	    tp__model_swap((p), (v), TP__SITE(p))

#define tp__fence_sc()		    tp__model_fence(TP__SITE())
#define tp__compiler_barrier()	    ((void)0)
#define tp__cpu_relax()		    rl::yield(1, $)

/* Relacy's atomics must be constructed: the slots of a buffer from malloc, for instance. */
#define tp__shared_array_init(a, n) tp__model_construct((a), (n))
#define tp__shared_array_fini(a, n) tp__model_destruct((a), (n))

#elif defined(TP_ATOMICS_BUILTINS)

#define TP__RLX __ATOMIC_RELAXED
#define TP__ACQ __ATOMIC_ACQUIRE
#define TP__REL __ATOMIC_RELEASE
#define TP__SC __ATOMIC_SEQ_CST

#define TP__DEFINE(sfx, T)                                                                        \
	static inline T tp__load_rlx_##sfx(const T *p) { return __atomic_load_n(p, TP__RLX); }    \
	static inline T tp__load_acq_##sfx(const T *p) { return __atomic_load_n(p, TP__ACQ); }    \
	static inline T tp__load_sc_##sfx(const T *p) { return __atomic_load_n(p, TP__SC); }      \
	static inline void tp__store_rlx_##sfx(T *p, T v) { __atomic_store_n(p, v, TP__RLX); }    \
	static inline void tp__store_rel_##sfx(T *p, T v) { __atomic_store_n(p, v, TP__REL); }    \
	static inline void tp__store_sc_##sfx(T *p, T v) { __atomic_store_n(p, v, TP__SC); }     \
	static inline bool tp__cas_##sfx(T *p, T old, T new_)                                     \
	{                                                                                         \
		return __atomic_compare_exchange_n(p, &old, new_, false, TP__SC, TP__SC);         \
	}                                                                                         \
	static inline bool tp__cas_value_##sfx(T *p, T *old, T new_)                              \
	{                                                                                         \
		return __atomic_compare_exchange_n(p, old, new_, false, TP__SC, TP__SC);          \
	}                                                                                         \
	static inline T tp__fas_##sfx(T *p, T v) { return __atomic_exchange_n(p, v, TP__SC); }

TP__DEFINE(u32, uint32_t)
TP__DEFINE(u64, uint64_t)

/* Pointers: `void *const *` rather than `const T *`, which would make the pointee const. */
static inline void *tp__load_rlx_ptr(void *const *p) { return __atomic_load_n(p, TP__RLX); }
static inline void *tp__load_acq_ptr(void *const *p) { return __atomic_load_n(p, TP__ACQ); }
static inline void *tp__load_sc_ptr(void *const *p) { return __atomic_load_n(p, TP__SC); }
static inline void tp__store_rlx_ptr(void **p, void *v) { __atomic_store_n(p, v, TP__RLX); }
static inline void tp__store_rel_ptr(void **p, void *v) { __atomic_store_n(p, v, TP__REL); }
static inline void tp__store_sc_ptr(void **p, void *v) { __atomic_store_n(p, v, TP__SC); }
static inline bool tp__cas_ptr(void **p, void *old, void *new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, false, TP__SC, TP__SC);
}
static inline bool tp__cas_value_ptr(void **p, void **old, void *new_)
{
	return __atomic_compare_exchange_n(p, old, new_, false, TP__SC, TP__SC);
}
static inline void *tp__fas_ptr(void **p, void *v) { return __atomic_exchange_n(p, v, TP__SC); }

static inline uint32_t tp__faa_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, TP__SC); }
static inline uint64_t tp__faa_u64(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, TP__SC); }
static inline void tp__or_u64(uint64_t *p, uint64_t v) { __atomic_fetch_or(p, v, TP__SC); }
static inline uint64_t tp__fetch_or_u64(uint64_t *p, uint64_t v) { return __atomic_fetch_or(p, v, TP__SC); }
static inline void tp__and_u64(uint64_t *p, uint64_t v) { __atomic_fetch_and(p, v, TP__SC); }

/* The _sc accesses around it are seq_cst already; the fence orders loads that are not ours (see
 * above). GCC warns that TSan does not model fences: it need not, the _sc accesses carry the
 * order TSan checks. */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
static inline void tp__fence_sc(void) { __atomic_thread_fence(TP__SC); }
#if defined(__SANITIZE_THREAD__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic pop
#endif

/* A compiler-only barrier: keeps the compiler from caching or moving accesses across it. */
static inline void tp__compiler_barrier(void) { __atomic_signal_fence(TP__SC); }

#else /* ck_pr backend */

#include <ck_pr.h>

#define TP__DEFINE(sfx, T, ck)                                                                    \
	static inline T tp__load_rlx_##sfx(const T *p) { return ck_pr_load_##ck(p); }            \
	static inline T tp__load_acq_##sfx(const T *p)                                            \
	{                                                                                         \
		T v = ck_pr_load_##ck(p);                                                         \
		ck_pr_fence_acquire();                                                            \
		return v;                                                                         \
	}                                                                                         \
	static inline T tp__load_sc_##sfx(const T *p) { return tp__load_acq_##sfx(p); }           \
	static inline void tp__store_rlx_##sfx(T *p, T v) { ck_pr_store_##ck(p, v); }             \
	static inline void tp__store_rel_##sfx(T *p, T v)                                         \
	{                                                                                         \
		ck_pr_fence_release();                                                            \
		ck_pr_store_##ck(p, v);                                                           \
	}                                                                                         \
	static inline void tp__store_sc_##sfx(T *p, T v) { tp__store_rel_##sfx(p, v); }           \
	static inline bool tp__cas_##sfx(T *p, T old, T new_) { return ck_pr_cas_##ck(p, old, new_); } \
	static inline bool tp__cas_value_##sfx(T *p, T *old, T new_)                              \
	{                                                                                         \
		return ck_pr_cas_##ck##_value(p, *old, new_, old);                                \
	}                                                                                         \
	static inline T tp__fas_##sfx(T *p, T v) { return ck_pr_fas_##ck(p, v); }

TP__DEFINE(u32, uint32_t, 32)
TP__DEFINE(u64, uint64_t, 64)

/* ck's pointer operations take void * targets; give them the same typed shape as the others. */
static inline void *tp__load_rlx_ptr(void *const *p) { return ck_pr_load_ptr(p); }
static inline void *tp__load_acq_ptr(void *const *p)
{
	void *v = ck_pr_load_ptr(p);
	ck_pr_fence_acquire();
	return v;
}
static inline void *tp__load_sc_ptr(void *const *p) { return tp__load_acq_ptr(p); }
static inline void tp__store_rlx_ptr(void **p, void *v) { ck_pr_store_ptr(p, v); }
static inline void tp__store_rel_ptr(void **p, void *v)
{
	ck_pr_fence_release();
	ck_pr_store_ptr(p, v);
}
static inline void tp__store_sc_ptr(void **p, void *v) { tp__store_rel_ptr(p, v); }
static inline bool tp__cas_ptr(void **p, void *old, void *new_) { return ck_pr_cas_ptr(p, old, new_); }
static inline bool tp__cas_value_ptr(void **p, void **old, void *new_)
{
	return ck_pr_cas_ptr_value(p, *old, new_, old);
}
static inline void *tp__fas_ptr(void **p, void *v) { return ck_pr_fas_ptr(p, v); }

static inline uint32_t tp__faa_u32(uint32_t *p, uint32_t v) { return ck_pr_faa_32(p, v); }
static inline uint64_t tp__faa_u64(uint64_t *p, uint64_t v) { return ck_pr_faa_64(p, v); }
static inline void tp__or_u64(uint64_t *p, uint64_t v) { ck_pr_or_64(p, v); }
static inline uint64_t tp__fetch_or_u64(uint64_t *p, uint64_t v)
{
	uint64_t old = ck_pr_load_64(p);

	while (!ck_pr_cas_64_value(p, old, old | v, &old))
		ck_pr_stall();
	return old;
}
static inline void tp__and_u64(uint64_t *p, uint64_t v) { ck_pr_and_64(p, v); }

/*
 * Store-load fence: see the header comment for how _sc accesses pair with it. On x86-64 a locked
 * read-modify-write of the stack rather than ck_pr_fence_memory()'s mfence: both drain the store
 * buffer (a full barrier for ordinary memory, all the runtime uses), but after a store mfence
 * costs 16.5 ns on the development machine (AMD EPYC, KVM) and the locked add 2 ns (docs/
 * machine.md), and the fence runs on every publication of a fork. Linux's smp_mb() made the
 * same choice. Adding 0 leaves the word below the stack pointer as it was.
 */
#if defined(__x86_64__)
static inline void tp__fence_sc(void) { __asm__ __volatile__("lock; addl $0,-8(%%rsp)" ::: "memory", "cc"); }
#else
static inline void tp__fence_sc(void) { ck_pr_fence_memory(); }
#endif

static inline void tp__compiler_barrier(void) { ck_pr_barrier(); }

#endif /* TP_ATOMICS_RELACY, TP_ATOMICS_BUILTINS, ck_pr */
/* clang-format on */

#undef TP__DEFINE

#ifndef TP_ATOMICS_RELACY
#define TP__PTR(p)		    ((void **)(p))
/* Plain words need no construction. */
#define tp__shared_array_init(a, n) ((void)(a), (void)(n))
#define tp__shared_array_fini(a, n) ((void)(a), (void)(n))

/* A spin-wait hint (pause on x86): lets the sibling hyperthread run and saves power. */
static inline void tp__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	tp__compiler_barrier();
#endif
}
#endif /* !TP_ATOMICS_RELACY */

/*
 * Happens-before edges through code TSan does not instrument (liburcu's wfcqueue lives in a
 * library built without TSan): the enqueuer releases the record, the dequeuer acquires it.
 */
#if defined(__SANITIZE_THREAD__)
#define TP__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TP__TSAN 1
#endif
#endif

#ifdef TP__TSAN
#include <sanitizer/tsan_interface.h>
static inline void tp__hb_release(void *addr)
{
	__tsan_release(addr);
}
static inline void tp__hb_acquire(void *addr)
{
	__tsan_acquire(addr);
}
#else
static inline void tp__hb_release(void *addr)
{
	(void)addr;
}
static inline void tp__hb_acquire(void *addr)
{
	(void)addr;
}
#endif

#endif /* TP_ATOMICS_H */
