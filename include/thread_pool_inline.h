/*
 * thread_pool_inline.h - the inline fast paths of tp_spawn() and tp_join(). Private: included by
 * thread_pool.h; nothing here is API. The layouts below are compiled into every program that
 * spawns inline, so they are part of the ABI: changing them changes the soname (meson.build).
 *
 * Why inline: a spawn and its join cost a few nanoseconds in all, so a call into the shared
 * library (through the PLT, with its own prologue) for each of them doubled that. Inline, they
 * are a handful of loads and stores in the spawning function itself, on the calling worker's deque
 * (src/deque.h describes it). The owner's end of that deque (the private push and pop, and the
 * check for a thief's request) is written once, here, because the inline code needs it;
 * src/deque.h builds tp__deque_push() and tp__deque_take() on it. Everything else (outside every
 * pool, a full deque, a thief asking for work, a stolen frame) is the exported slow path,
 * tp__spawn_slow() / tp__join_slow().
 *
 * Programs that cannot use inline functions (bindings for other languages) call the exported
 * functions tp_spawn and tp_join, which run the same code.
 */
#ifndef THREAD_POOL_INLINE_H
#define THREAD_POOL_INLINE_H

#include <stdint.h>

#define TP__CACHE_LINE	 64
#define TP__ALIGNED_LINE __attribute__((aligned(TP__CACHE_LINE)))

/*
 * The owner end's atomics: relaxed loads and stores, plain moves on x86. TP__SHARED(T) marks the
 * words thieves read too; it is T here. The model checker's backend of src/atomics.h (tests/model)
 * defines all three before this header, making those words Relacy atomics.
 */
#ifndef TP__SHARED
#define TP__SHARED(T)	    T
#define TP__LOAD_RLX(p)	    __atomic_load_n((p), __ATOMIC_RELAXED)
#define TP__STORE_RLX(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#endif

/* The runtime's assertions: assert(), compiled out by NDEBUG in the including file. */
#ifndef TP__ASSERT
#ifdef NDEBUG
#define TP__ASSERT(x) ((void)0)
#else
#include <assert.h>
#define TP__ASSERT(x) assert(x)
#endif
#endif

struct tp__deque_buf {
	uint64_t mask;			    /* size - 1; size is a power of two */
	struct tp__deque_buf *retired_next; /* owner only: chain of buffers replaced by growth */
	__extension__ TP__SHARED(void *) slots[]; /* shared: owner writes, thieves read */
};

/* One worker's deque; src/deque.h has the algorithm and the invariants. */
struct tp__deque {
	TP__ALIGNED_LINE TP__SHARED(uint64_t) top;   /* shared: thieves CAS it */
	TP__ALIGNED_LINE TP__SHARED(uint64_t) split; /* owner stores, thieves load */
	TP__SHARED(struct tp__deque_buf *) buf;	     /* owner stores (release), thieves load */
	TP__ALIGNED_LINE uint64_t bottom;	     /* owner only */
	uint64_t top_seen;			     /* owner only: an old value of top */
	struct tp__deque_buf *retired;		     /* owner only */
	TP__ALIGNED_LINE TP__SHARED(uint32_t) split_request; /* thieves store 1, the owner clears */
};

/*
 * Owner only: top_seen <= split <= bottom, the part of src/deque.h's invariant the owner can
 * check without reading a shared word that thieves write (top_seen is an old value of top, and
 * top only grows).
 */
#define TP__DEQUE_ASSERT_OWNER(q)                                                                  \
	TP__ASSERT((q)->top_seen <= TP__LOAD_RLX(&(q)->split) &&                                   \
		   TP__LOAD_RLX(&(q)->split) <= (q)->bottom)

/* Owner only: true if a thief found the shared part empty since the last publication. */
static inline bool tp__deque_requested(const struct tp__deque *q)
{
	return TP__LOAD_RLX(&q->split_request) != 0;
}

/*
 * Owner only: pushes `item` into the private part (below split, which no thief reads: plain
 * stores, no fence, no read-modify-write) and returns true, if it fits without a fresh look at
 * top; false when the ring may be full (tp__deque_push() then reads top and grows the ring).
 */
static inline bool tp__deque_push_private(struct tp__deque *q, void *item)
{
	struct tp__deque_buf *a = TP__LOAD_RLX(&q->buf);
	uint64_t b = q->bottom;

	TP__DEQUE_ASSERT_OWNER(q);
	if (__builtin_expect(b - q->top_seen > a->mask, 0))
		return false;
	TP__STORE_RLX(&a->slots[b & a->mask], item);
	q->bottom = b + 1;
	return true;
}

/*
 * Owner only: pops the newest private item and returns it, if the private part holds one and,
 * when `want` is not NULL, if that item is `want`; else returns NULL and changes nothing. No
 * thief can see a private slot: no fence, no read-modify-write.
 */
static inline void *tp__deque_pop_private(struct tp__deque *q, const void *want)
{
	uint64_t b = q->bottom;

	TP__DEQUE_ASSERT_OWNER(q);
	if (b > TP__LOAD_RLX(&q->split)) {
		struct tp__deque_buf *a = TP__LOAD_RLX(&q->buf);
		void *item = TP__LOAD_RLX(&a->slots[(b - 1) & a->mask]);

		if (want == 0 || item == want) {
			q->bottom = b - 1;
			return item;
		}
	}
	return 0;
}

/* The calling worker's deque, or NULL outside every pool. Initial-exec TLS: one load off the
 * thread pointer. */
extern TP_API __thread struct tp__deque *tp__self_deque __attribute__((tls_model("initial-exec")));

/* The states of a frame (tp_frame.state_). */
enum tp__frame_state {
	TP__FRAME_SPAWNED = 0,
	TP__FRAME_DONE = 1,
	TP__FRAME_OUTSIDE = 2
};

/* A deque item is a record (tp_enqueue) or a frame, whose pointer gets its lowest bit set. */
static inline void *tp__item_of_frame(tp_frame *t)
{
	return (void *)((uintptr_t)t | 1u);
}

TP_API void tp__spawn_slow(tp_frame *frame, tp_task_fn fn, void *arg);
TP_API int tp__join_slow(tp_frame *frame);

/*
 * The common spawn: on a worker, room in the deque, no thief waiting for work. The item goes to
 * the private part of the deque; the frame's fields are written after it, which is fine, as
 * nobody can see the item before the owner publishes it (a release store, later).
 */
static inline void tp__spawn_inline(tp_frame *frame, tp_task_fn fn, void *arg)
{
	struct tp__deque *q = tp__self_deque;

	if (__builtin_expect(q != 0 && frame != 0 && fn != 0 && !tp__deque_requested(q), 1) &&
	    __builtin_expect(tp__deque_push_private(q, tp__item_of_frame(frame)), 1)) {
		frame->fn_ = fn;
		frame->arg_ = arg;
		frame->thief_ = 0;
		frame->state_ = TP__FRAME_SPAWNED;
		return;
	}
	tp__spawn_slow(frame, fn, arg);
}

/*
 * The common join: the newest private item is this frame and no thief waits for work. No thief
 * can have seen it, so it is popped and run here without any atomic read-modify-write, and its
 * state is never looked at again (a frame is joined once).
 */
static inline int tp__join_inline(tp_frame *frame)
{
	struct tp__deque *q = tp__self_deque;

	if (__builtin_expect(q != 0 && frame != 0 && !tp__deque_requested(q), 1) &&
	    __builtin_expect(tp__deque_pop_private(q, tp__item_of_frame(frame)) != 0, 1))
		return frame->fn_(frame->arg_);
	return tp__join_slow(frame);
}

#endif /* THREAD_POOL_INLINE_H */
