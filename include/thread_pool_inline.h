/*
 * thread_pool_inline.h - the inline fast paths of tp_spawn() and tp_join(). Private: included by
 * thread_pool.h; nothing here is API. The layouts below are compiled into every program that
 * spawns inline, so they are part of the ABI: changing them changes the soname (meson.build).
 *
 * Why inline: a spawn and its join cost a few nanoseconds in all, so a call into the shared
 * library (through the PLT, with its own prologue) for each of them doubled that. Inline, they
 * are a handful of loads and stores in the spawning function itself, on the calling worker's deque
 * (src/deque.h describes it; its owner's end is defined here, because the inline code touches it).
 * Everything else (outside every pool, a full deque, a thief asking for work, a stolen frame) is
 * the exported slow path, tp__spawn_slow() / tp__join_slow().
 *
 * Programs that cannot use inline functions (bindings for other languages) call the exported
 * functions tp_spawn and tp_join, which run the same code.
 */
#ifndef THREAD_POOL_INLINE_H
#define THREAD_POOL_INLINE_H

#include <stdint.h>

#define TP__CACHE_LINE	 64
#define TP__ALIGNED_LINE __attribute__((aligned(TP__CACHE_LINE)))

struct tp__deque_buf {
	uint64_t mask;			    /* size - 1; size is a power of two */
	struct tp__deque_buf *retired_next; /* owner only: chain of buffers replaced by growth */
	__extension__ void *slots[];	    /* shared: owner writes, thieves read */
};

/* One worker's deque; src/deque.h has the algorithm and the invariants. */
struct tp__deque {
	TP__ALIGNED_LINE uint64_t top;	  /* shared: thieves CAS it */
	TP__ALIGNED_LINE uint64_t split;  /* owner stores, thieves load */
	struct tp__deque_buf *buf;	  /* owner stores (release), thieves load */
	TP__ALIGNED_LINE uint64_t bottom; /* owner only */
	uint64_t top_seen;		  /* owner only: an old value of top (top only grows) */
	struct tp__deque_buf *retired;	  /* owner only */
	TP__ALIGNED_LINE uint32_t split_request; /* thieves store 1, the owner clears */
};

/* The calling worker's deque, or NULL outside every pool. Initial-exec TLS: one load off the
 * thread pointer. */
extern TP_API __thread struct tp__deque *tp__self_deque __attribute__((tls_model("initial-exec")));

/* The states of a frame (tp_task.state_). */
enum tp__frame_state {
	TP__FRAME_SPAWNED = 0,
	TP__FRAME_DONE = 1,
	TP__FRAME_OUTSIDE = 2
};

/* A deque item is a record (tp_enqueue) or a frame, whose pointer gets its lowest bit set. */
static inline void *tp__item_of_frame(tp_task *t)
{
	return (void *)((uintptr_t)t | 1u);
}

TP_API void tp__spawn_slow(tp_task *task, tp_task_fn fn, void *arg);
TP_API int tp__join_slow(tp_task *task);

/*
 * The common spawn: on a worker, room in the deque, no thief waiting for work. The item goes to
 * the private part of the deque (below split), which no thief reads: plain stores only.
 */
static inline void tp__spawn_inline(tp_task *task, tp_task_fn fn, void *arg)
{
	struct tp__deque *q = tp__self_deque;

	if (__builtin_expect(q != 0 && task != 0 && fn != 0, 1)) {
		struct tp__deque_buf *a = q->buf;
		uint64_t b = q->bottom;

		if (__builtin_expect(b - q->top_seen <= a->mask &&
					     !__atomic_load_n(&q->split_request, __ATOMIC_RELAXED),
				     1)) {
			task->fn_ = fn;
			task->arg_ = arg;
			task->thief_ = 0;
			task->state_ = TP__FRAME_SPAWNED;
			__atomic_store_n(&a->slots[b & a->mask], tp__item_of_frame(task),
					 __ATOMIC_RELAXED);
			q->bottom = b + 1;
			return;
		}
	}
	tp__spawn_slow(task, fn, arg);
}

/*
 * The common join: the newest private item is this frame and no thief waits for work. No thief
 * can have seen it, so it is popped and run here without any atomic read-modify-write, and its
 * state is never looked at again (a frame is joined once).
 */
static inline int tp__join_inline(tp_task *task)
{
	struct tp__deque *q = tp__self_deque;

	if (__builtin_expect(q != 0 && task != 0, 1)) {
		uint64_t b = q->bottom;

		if (__builtin_expect(b > __atomic_load_n(&q->split, __ATOMIC_RELAXED), 1)) {
			struct tp__deque_buf *a = q->buf;

			if (__builtin_expect(
				    __atomic_load_n(&a->slots[(b - 1) & a->mask],
						    __ATOMIC_RELAXED) == tp__item_of_frame(task) &&
					    !__atomic_load_n(&q->split_request, __ATOMIC_RELAXED),
				    1)) {
				q->bottom = b - 1;
				return task->fn_(task->arg_);
			}
		}
	}
	return tp__join_slow(task);
}

#endif /* THREAD_POOL_INLINE_H */
