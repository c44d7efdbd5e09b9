/*
 * model-futex.hpp - the Linux futex (src/futex.h) as the models run it, shared by model-future.cpp
 * (a future's waiters), park-worker.hpp (the eventcount a worker sleeps on, in the models where a
 * sleeping worker blocks) and model-idle.cpp (tp_pool_wait_idle's sequence word).
 *
 * As the kernel gives it: a wait blocks only if the word still holds the expected value, checked
 * and blocked in one step after a full barrier; a wake runs a full barrier, then releases every
 * sleeper (the kernel's futex_wait / futex_wake pair a barrier on each side with the check of the
 * waiter count, so a waiter that checks after a waker's barrier sees the waker's store). A wait
 * with a deadline ends at once (ETIMEDOUT: the deadline passed; a caller that loops on it spins,
 * which Relacy's fair schedulers are told); one without sleeps until woken, and Relacy reports a
 * deadlock when it never is.
 */
#ifndef TP_MODEL_FUTEX_HPP
#define TP_MODEL_FUTEX_HPP

#include "harness.hpp"

#include <errno.h>
#include <time.h>

/* More than any model's threads: a wake releases every sleeper. */
enum { MODEL_FUTEX_ALL = 16 };

/* Blocks while *addr == expected (acquire: the check is the kernel's, under its lock). Returns 0
 * once woken, or EAGAIN if the word had changed. */
static inline int model_futex_wait(rl::atomic<uint32_t> *addr, uint32_t expected)
{
	rl::context &c = rl::ctx();
	uint32_t v;

	c.sched();
	c.atomic_thread_fence_seq_cst();
	{
		rl::preemption_disabler pd(c);

		v = addr->load(rl::mo_relaxed, $);
		if (v != expected)
			return EAGAIN;
		addr->wait(c, false, false, $);
	}
	return 0;
}

/* Releases every thread blocked on addr. */
static inline void model_futex_wake(rl::atomic<uint32_t> *addr)
{
	rl::context &c = rl::ctx();

	c.sched();
	c.atomic_thread_fence_seq_cst();
	addr->wake(c, MODEL_FUTEX_ALL, $);
}

/* src/futex.h's operations. The mutant wake-skipped (of the models that list it) drops the wake. */
static inline int tp__futex_wait(rl::atomic<uint32_t> *addr, uint32_t expected,
				 const struct timespec *deadline)
{
	if (deadline != NULL) {
		rl::yield(1, $);
		return ETIMEDOUT;
	}
	return model_futex_wait(addr, expected);
}

static inline void tp__futex_wake_all(rl::atomic<uint32_t> *addr)
{
	if (tp_model_mutated("wake-skipped"))
		return;
	model_futex_wake(addr);
}

#endif /* TP_MODEL_FUTEX_HPP */
