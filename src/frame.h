/*
 * frame.h - caller-owned task frames (tp_spawn / tp_join) as deque items.
 *
 * A deque item is either a record (a tp_future, from tp_enqueue) or a frame (a tp_frame in the
 * spawning function's stack frame). Both are at least 8-byte aligned; a frame's item has its
 * lowest bit set.
 *
 * A frame's `state_` goes SPAWNED -> DONE at most once, stored by whoever ran it: the spawner
 * itself in the slow path of tp_join (it popped the frame back: plain store, no thief ever saw
 * it) or a thief (release store, its very last access to the frame, which may live on the
 * spawner's stack and vanish as soon as the spawner sees DONE). The inline join, which pops the
 * frame it joins and runs it, returns the code and leaves the state SPAWNED: nobody looks at it
 * again. A frame spawned outside every pool, or on a worker whose deque could not grow, is
 * OUTSIDE until tp_join runs it.
 */
#ifndef TP_FRAME_H
#define TP_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#include "thread_pool.h"

struct tp__worker;

/* enum tp__frame_state and tp__item_of_frame() are in thread_pool_inline.h. */

static inline bool tp__item_is_frame(const void *item)
{
	return ((uintptr_t)item & 1u) != 0;
}

static inline tp_frame *tp__item_frame(void *item)
{
	return (tp_frame *)((uintptr_t)item & ~(uintptr_t)1u);
}

/* A thief (or a helper) runs a frame it took from a deque. */
void tp__frame_run(struct tp__worker *w, tp_frame *t);

#endif /* TP_FRAME_H */
