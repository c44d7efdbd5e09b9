/*
 * frame.c - spawn and join with caller-owned frames; see frame.h for the frame's states.
 *
 * The common cases are inline, in thread_pool_inline.h (a spawn with room and nobody asking for
 * work; a join of the newest private item); this file has the rest, and the exported tp_spawn and
 * tp_join for callers that cannot inline.
 *
 * tp_spawn pushes the frame's item into the private part of the worker's deque (deque.h): plain
 * stores only. It publishes the private part when a thief asked for work, and then wakes a parked
 * worker if there is one (a worker parks only after its steal round asked every empty deque).
 *
 * tp_join pops the worker's deque down to the frame: items above it were spawned after it by the
 * same task, so running them is running the task's own work. Finding the frame, it runs it inline
 * (still no atomic read-modify-write when it came from the private part). Finding the deque empty,
 * the frame was stolen: the joiner then steals only from the thief (leapfrogging, Wagner and
 * Calder 1993), i.e. runs the frame's own descendants, until the thief stores DONE. So a joiner
 * never runs unrelated work and its stack stays bounded by the recursion depth.
 */
/* The exported tp_spawn and tp_join are defined here; everyone else gets the inline ones. */
#define TP_NO_INLINE 1

#include <assert.h>
#include <errno.h>

#include "frame.h"
#include "pool.h"

static int run_inline(tp_frame *t)
{
	int code = t->fn_(t->arg_);

	t->result_ = code;
	t->state_ = TP__FRAME_DONE; /* nobody else ever saw this frame */
	return code;
}

/* The rare cases of tp_spawn: outside every pool, bad input, a full deque, a thief wants work. */
void tp__spawn_slow(tp_frame *frame, tp_task_fn fn, void *arg)
{
	struct tp__worker *w = tp__self;

	if (frame == NULL)
		return;
	if (fn == NULL) {
		/* Bad input: nothing to run; the join reports it. */
		frame->state_ = TP__FRAME_DONE;
		frame->result_ = EINVAL;
		return;
	}
	frame->fn_ = fn;
	frame->arg_ = arg;
	frame->thief_ = NULL;
	if (w == NULL) {
		frame->state_ = TP__FRAME_OUTSIDE;
		return;
	}
	frame->state_ = TP__FRAME_SPAWNED;
	if (tp__deque_push(&w->deque, tp__item_of_frame(frame)) != 0) {
		/* No memory to grow the deque: leave it to the join, as outside every pool (running
		 * it here would run it before the rest of its parent, which may wait for it). */
		frame->state_ = TP__FRAME_OUTSIDE;
		return;
	}
	if (tp__deque_requested(&w->deque))
		tp__worker_publish(w);
}

void tp_spawn(tp_frame *frame, tp_task_fn fn, void *arg)
{
	tp__spawn_inline(frame, fn, arg);
}

void tp__frame_run(struct tp__worker *w, tp_frame *t)
{
	int code;

	/* Our deque is empty here (every caller took its own deque dry before stealing), so all
	 * we publish until DONE descends from this frame: what its joiner may leapfrog onto. */

	/* A frame is run once: SPAWNED -> DONE (frame.h). */
	assert(tp__load_rlx_u32(&t->state_) == TP__FRAME_SPAWNED);
	/* (store of thief) release: the joiner that reads it steals from our deque. */
	tp__store_rel_ptr(&t->thief_, w);
	code = t->fn_(t->arg_);
	t->result_ = code;
	/* (store of result) before (store of DONE), release: pairs with the joiner's acquire load.
	 * Our last access to the frame: the joiner may return and reuse its stack right after. */
	tp__store_rel_u32(&t->state_, TP__FRAME_DONE);
}

/* The frame was stolen: run the thief's work until the thief is done with ours. */
static int join_stolen(struct tp__worker *w, tp_frame *t)
{
	int spins = 0;

	/* acquire: pairs with the thief's release store of DONE (and of result). */
	while (tp__load_acq_u32(&t->state_) != TP__FRAME_DONE) {
		struct tp__worker *thief = tp__load_acq_ptr(&t->thief_);
		void *item;

		/* Only what the thief published while it still ran our frame: its descendants. */
		if (thief != NULL && tp__deque_steal_unless(&thief->deque, &item, &t->state_,
							    TP__FRAME_DONE) == TP__STEAL_OK) {
			TP__COUNT(w, steals);
			TP__TRACE_FLOW(w, TP__EV_STEAL, thief->index);
			tp__worker_run_item(w, item);
			spins = 0;
			continue;
		}
		tp__join_pause(&spins);
	}
	return t->result_;
}

/* The rare cases of tp_join: outside every pool, out-of-order joins, a thief wants work, a
 * stolen frame. */
int tp__join_slow(tp_frame *frame)
{
	struct tp__worker *w = tp__self;
	void *mine = tp__item_of_frame(frame);
	unsigned state;

	if (frame == NULL)
		return EINVAL;
	/* acquire: a thief may have run it already; pairs with its release store of DONE. */
	state = tp__load_acq_u32(&frame->state_);
	if (state == TP__FRAME_OUTSIDE)
		return run_inline(frame);
	/* Outside every pool, any other frame was spawned on a worker (or with fn NULL, whose
	 * join is EINVAL too): this thread is not its spawner, stolen and finished or not. */
	if (w == NULL)
		return EINVAL;
	/* Popped and run earlier by an out-of-order join, or by a thief. */
	if (state == TP__FRAME_DONE)
		return frame->result_;
	for (;;) {
		void *item = tp__deque_take(&w->deque);

		if (tp__deque_requested(&w->deque) && tp__deque_has_private(&w->deque))
			tp__worker_publish(w);
		if (item == mine)
			return run_inline(frame);
		if (item == NULL)
			return join_stolen(w, frame);
		/* Spawned after `frame` by this same task (or a future it forked): ours to run. */
		tp__worker_run_item(w, item);
		if (tp__load_acq_u32(&frame->state_) == TP__FRAME_DONE)
			return frame->result_;
	}
}

int tp_join(tp_frame *frame)
{
	return tp__join_inline(frame);
}
