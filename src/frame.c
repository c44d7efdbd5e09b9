/*
 * frame.c - spawn and join with caller-owned frames; see frame.h for the frame's states.
 *
 * tp_spawn pushes the frame's item into the private part of the worker's deque (deque.h): plain
 * stores only. It publishes the private part when a thief asked for work or a worker is idle (and
 * then wakes one).
 *
 * tp_join pops the worker's deque down to the frame: items above it were spawned after it by the
 * same task, so running them is running the task's own work. Finding the frame, it runs it inline
 * (still no atomic read-modify-write when it came from the private part). Finding the deque empty,
 * the frame was stolen: the joiner then steals only from the thief (leapfrogging, Wagner and
 * Calder 1993), i.e. runs the frame's own descendants, until the thief stores DONE. So a joiner
 * never runs unrelated work and its stack stays bounded by the recursion depth.
 */
#include <sched.h>

#include "frame.h"
#include "pool.h"

/* Spins of a leapfrogging joiner that found nothing to steal, before it yields its CPU. */
#define JOIN_SPINS 256

static int run_inline(tp_task *t)
{
	int code = t->fn_(t->arg_);

	t->result_ = code;
	t->state_ = TP__FRAME_DONE; /* nobody else ever saw this frame */
	return code;
}

void tp_spawn(tp_task *task, tp_task_fn fn, void *arg)
{
	struct tp__worker *w = tp__self;

	task->fn_ = fn;
	task->arg_ = arg;
	task->thief_ = NULL;
	task->result_ = 0;
	if (w == NULL) {
		task->state_ = TP__FRAME_OUTSIDE;
		return;
	}
	task->state_ = TP__FRAME_SPAWNED;
	if (tp__deque_push(&w->deque, tp__item_of_frame(task)) != 0) {
		/* No memory to grow the deque: run it now, as tp_join would. */
		(void)run_inline(task);
		return;
	}
	if (tp__deque_requested(&w->deque)) {
		tp__deque_publish(&w->deque);
	} else if (tp__park_any_idle_hint(&w->pool->park)) {
		tp__deque_publish(&w->deque);
		(void)tp__park_wake_one(&w->pool->park);
	}
}

void tp__frame_run(struct tp__worker *w, tp_task *t)
{
	int code;

	/* (store of thief) release: the joiner that reads it steals from our deque. */
	tp__store_rel_ptr(&t->thief_, w);
	code = t->fn_(t->arg_);
	t->result_ = code;
	/* (store of result) before (store of DONE), release: pairs with the joiner's acquire load.
	 * Our last access to the frame: the joiner may return and reuse its stack right after. */
	tp__store_rel_u32(&t->state_, TP__FRAME_DONE);
}

/* The frame was stolen: run the thief's work until the thief is done with ours. */
static int join_stolen(struct tp__worker *w, tp_task *t)
{
	int spins = 0;

	/* acquire: pairs with the thief's release store of DONE (and of result). */
	while (tp__load_acq_u32(&t->state_) != TP__FRAME_DONE) {
		struct tp__worker *thief = tp__load_acq_ptr(&t->thief_);
		void *item;

		if (thief != NULL && tp__deque_steal(&thief->deque, &item) == TP__STEAL_OK) {
			tp__worker_run_item(w, item);
			spins = 0;
			continue;
		}
		if (++spins < JOIN_SPINS) {
			tp__cpu_relax();
		} else {
			/* Let the thief run if it shares our CPU (see NOTES.md on this guest). */
			sched_yield();
			spins = 0;
		}
	}
	return t->result_;
}

int tp_join(tp_task *task)
{
	struct tp__worker *w = tp__self;
	void *mine = tp__item_of_frame(task);

	/* acquire: a thief may have run it already; pairs with its release store of DONE. */
	unsigned state = tp__load_acq_u32(&task->state_);

	if (state == TP__FRAME_OUTSIDE)
		return run_inline(task);
	/* Popped and run earlier by an out-of-order join, or by a thief. */
	if (state == TP__FRAME_DONE)
		return task->result_;
	for (;;) {
		void *item = tp__deque_take(&w->deque);

		if (item == mine)
			return run_inline(task);
		if (item == NULL)
			return join_stolen(w, task);
		/* Spawned after `task` by this same task (or a future it forked): ours to run. */
		tp__worker_run_item(w, item);
		if (tp__load_acq_u32(&task->state_) == TP__FRAME_DONE)
			return task->result_;
	}
}
