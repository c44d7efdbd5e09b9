/*
 * frame.c - spawn and join with caller-owned frames; see frame.h for the frame's states.
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
#include <errno.h>
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

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* The rare cases of tp_spawn: outside every pool, a full deque, somebody wants work. */
static __attribute__((noinline)) void spawn_slow(struct tp__worker *w, tp_task *task)
{
	if (w == NULL) {
		task->state_ = TP__FRAME_OUTSIDE;
		return;
	}
	if (tp__deque_push(&w->deque, tp__item_of_frame(task)) != 0) {
		/* No memory to grow the deque: run it now, as tp_join would. */
		(void)run_inline(task);
		return;
	}
	if (tp__deque_requested(&w->deque))
		tp__worker_publish(w);
}

void tp_spawn(tp_task *task, tp_task_fn fn, void *arg)
{
	struct tp__worker *w = tp__self;

	if (task == NULL)
		return;
	if (fn == NULL) {
		/* Bad input: nothing to run; the join reports it. */
		task->state_ = TP__FRAME_DONE;
		task->result_ = EINVAL;
		return;
	}
	task->fn_ = fn;
	task->arg_ = arg;
	task->thief_ = NULL;
	task->state_ = TP__FRAME_SPAWNED;
	if (likely(w != NULL)) {
		struct tp__deque *q = &w->deque;
		struct tp__deque_buf *a = q->buf;
		uint64_t b = q->bottom;

		/* The common case, inline: room in the private part, and nobody asked for work. */
		if (likely(b - q->top_seen <= a->mask && !tp__deque_requested(q))) {
			tp__store_rlx_ptr(&a->slots[b & a->mask], tp__item_of_frame(task));
			q->bottom = b + 1;
			return;
		}
	}
	spawn_slow(w, task);
}

void tp__frame_run(struct tp__worker *w, tp_task *t)
{
	int code;

	/* Our deque is empty here (every caller took its own deque dry before stealing), so all
	 * we publish until DONE descends from this frame: what its joiner may leapfrog onto. */

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

		/* Only what the thief published while it still ran our frame: its descendants. */
		if (thief != NULL && tp__deque_steal_unless(&thief->deque, &item, &t->state_,
							    TP__FRAME_DONE) == TP__STEAL_OK) {
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

static __attribute__((noinline)) int join_slow(struct tp__worker *w, tp_task *task)
{
	void *mine = tp__item_of_frame(task);
	/* acquire: a thief may have run it already; pairs with its release store of DONE. */
	unsigned state = tp__load_acq_u32(&task->state_);

	if (state == TP__FRAME_OUTSIDE)
		return run_inline(task);
	/* Popped and run earlier by an out-of-order join, or by a thief. */
	if (state == TP__FRAME_DONE)
		return task->result_;
	/* Spawned on a worker, joined on a thread outside every pool: not the spawner. */
	if (w == NULL)
		return EINVAL;
	for (;;) {
		void *item = tp__deque_take(&w->deque);

		if (tp__deque_requested(&w->deque) && tp__deque_has_private(&w->deque))
			tp__worker_publish(w);
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

int tp_join(tp_task *task)
{
	struct tp__worker *w = tp__self;

	if (task == NULL)
		return EINVAL;
	if (likely(w != NULL)) {
		struct tp__deque *q = &w->deque;
		uint64_t b = q->bottom;

		/* The common case, inline: the newest private item is this frame. No thief can
		 * have seen it, so neither its state nor any atomic needs checking. */
		if (likely(b > tp__load_rlx_u64(&q->split))) {
			struct tp__deque_buf *a = q->buf;

			if (likely(tp__load_rlx_ptr(&a->slots[(b - 1) & a->mask]) ==
				   tp__item_of_frame(task))) {
				q->bottom = b - 1;
				if (unlikely(tp__deque_requested(q)) && tp__deque_has_private(q))
					tp__worker_publish(w);
				return run_inline(task);
			}
		}
	}
	return join_slow(w, task);
}
