/*
 * thread_pool_task.h - typed fork-join tasks: task functions declared by macros, spawned into the
 * worker's task stack by value.
 *
 * tp_spawn()/tp_join() (thread_pool.h) take any tp_task_fn and a caller-owned frame. This header
 * is the other shape of the same fork-join, for fine-grained recursion where a spawn and its join
 * must cost little more than a call. A task is a C function declared with TP_TASK_n; the macros
 * give it two hidden parameters, the worker's task stack and its current top, and generate the
 * code that spawns and joins it:
 *
 *	TP_TASK_1(uint64_t, fib, int, n)
 *	{
 *		if (n < 2)
 *			return (uint64_t)n;
 *		TP_SPAWN(fib, n - 1);
 *		uint64_t y = TP_CALL(fib, n - 2);
 *		uint64_t x = TP_JOIN(fib);
 *		return x + y;
 *	}
 *
 *	uint64_t r;
 *	int err = TP_RUN(pool, fib, &r, 30);	// from any thread; 0 or an errno value
 *
 * What each macro costs, and why it is cheaper than tp_spawn()/tp_join():
 *  - TP_SPAWN(NAME, args...) writes the function and its arguments into the next slot of the
 *    worker's task stack (64 bytes, by value: no frame pointer to follow, no ring index to mask),
 *    at a top kept in a register (the hidden parameter, never a thread-local load), and checks one
 *    flag a thief raises when it wants work.
 *  - TP_JOIN(NAME) checks that flag and that the slot is in the private part, at or above the
 *    split point (no thief can have taken it), then calls the function directly: the compiler
 *    sees the callee, as in a serial program. Otherwise the slow path takes the slot back from the shared part, or, when a thief
 *    ran it, runs the thief's spawned tasks until it is done (leapfrogging), and returns the
 *    result the thief stored in the slot.
 *  - TP_CALL(NAME, args...) is a plain call that passes the hidden parameters on. A helper
 *    function that spawns for its task declares them with TP_TASK_PARAMS and is called with
 *    TP_TASK_ARGS; TP_SPAWN0, TP_CALL0 and TP_RUN0 are the forms for tasks without arguments.
 * The trade-offs against tp_spawn()/tp_join(): a task is declared by a macro (not any function
 * pointer), at most 4 arguments, the arguments and the result each within TP_TASK_DATA bytes
 * (they share them; checked at compile time), joins strictly newest first (TP_JOIN(NAME) joins
 * the most recent unjoined spawn of the calling task, which must be a spawn of NAME), and
 * TP_SPAWN/TP_JOIN/TP_CALL only inside a TP_TASK body (the hidden parameters must be in scope).
 * Both shapes run on the same workers and can be mixed: a typed task may call tp_spawn(),
 * tp_enqueue(), tp_future_wait() and the rest of thread_pool.h.
 *
 * Declarations: RT is any object type but void (return an int for none) and each argument type
 * a type name that can be declared as `T name` (typedef a function pointer type first). The
 * task's function is NAME_tp_call, with external linkage: task names are program-wide, like any
 * function's.
 *
 * The task stack (src/tstack.h describes the protocol): one per worker, TP_TASK_SLOTS slots of
 * address space reserved when the pool starts (fewer, down to 4096, where the system refuses that
 * much), of which only the touched pages use memory. Its
 * bottom part is stealable (below the split point), its top part private: the owner publishes
 * half of the private part when a thief asks, and takes back half of the shared part when it
 * joins there. More than TP_TASK_SLOTS spawned and unjoined tasks on one worker (a loop spawning
 * a million tasks before joining any, for example; recursive halving never comes near it) is a
 * stack overflow, which ends the process with a message, as a C stack overflow does.
 *
 * Rules the macros cannot check: a full expression that contains TP_SPAWN or TP_JOIN contains
 * no other TP_SPAWN, TP_JOIN, TP_CALL or TP_TASK_ARGS (the first two move the hidden top, which
 * the others read); every spawn is joined by the function that made it (a helper gets the top by
 * value: it joins its own spawns before it returns, and cannot join its caller's), before that
 * function returns; a task leaves only by returning.
 */
#ifndef THREAD_POOL_TASK_H
#define THREAD_POOL_TASK_H

#include <errno.h>
#include <stdint.h>

#include "thread_pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of a slot that hold the arguments (while spawned) and then the result (once run). */
#define TP_TASK_DATA  48
/* Slots of each worker's task stack (fewer when the system refuses that much address space). */
#define TP_TASK_SLOTS (UINT32_C(1) << 20)

struct tp__slot;
struct tp__tstack;
struct tp__worker;

/* Runs the task in `slot` with the stack's top at `head`, and stores its result in the slot. */
typedef void (*tp__slot_run_fn)(struct tp__tstack *ts, struct tp__slot *head,
				struct tp__slot *slot);

/* The states of a slot (tp__slot_head.thief): a thief's stack pointer while a thief runs it. */
enum tp__slot_state {
	TP__SLOT_EMPTY = 0,   /* joined, or never used: every slot at and above the top */
	TP__SLOT_SPAWNED = 1, /* spawned, not taken by a thief */
	TP__SLOT_DONE = 2     /* a thief ran it: the result is in the slot */
};

struct tp__slot_head {
	tp__slot_run_fn run;
	TP__SHARED(uint64_t) thief; /* enum tp__slot_state, or the thief's struct tp__tstack * */
};

/* One slot of a task stack; a task's own slot type (TP_TASK_DECL_n) has the same head. */
struct tp__slot {
	struct tp__slot_head h;
	unsigned char data[TP_TASK_DATA];
} TP__ALIGNED_LINE;

/* A worker's task stack. The layout is compiled into every program that uses TP_TASK_n (ABI). */
struct tp__tstack {
	/* tail << 32 | split, slot indices: [tail, split) is the shared part. Thieves CAS it to
	 * take the slot at tail, the owner to move split (and stores it to lower both ends once
	 * every shared slot was stolen and joined). */
	TP__ALIGNED_LINE TP__SHARED(uint64_t) ts;
	struct tp__slot *base; /* written before the workers start */
	/* Set by a thief that found the shared part empty; cleared by the owner once it published
	 * (a spawn or join that sees it takes the slow path). */
	TP__ALIGNED_LINE TP__SHARED(uint32_t) request;
	TP__ALIGNED_LINE struct tp__slot *split; /* owner only: base + the split index */
	struct tp__slot *end;			 /* base + the number of slots */
	struct tp__worker *worker;		 /* its owner (src/pool.h) */
};

/* The slow paths (src/tstack.c). */
TP_API void tp__task_spawned_slow(struct tp__tstack *ts, struct tp__slot *slot);
TP_API int tp__task_join_slow(struct tp__tstack *ts, struct tp__slot *slot);
TP_API __attribute__((noreturn)) void tp__task_overflow(struct tp__tstack *ts);
TP_API int tp__task_run(tp_pool *pool, struct tp__slot *slot, tp__slot_run_fn run);

/* The hidden parameters of every task function, and of helpers that spawn on their behalf:
 * declare a helper with TP_TASK_PARAMS first and call it with TP_TASK_ARGS first. */
#define TP_TASK_PARAMS                                                                             \
	struct tp__tstack *tp__ts __attribute__((unused)),                                         \
		struct tp__slot *tp__head __attribute__((unused))
#define TP_TASK_ARGS tp__ts, tp__head

#define TP_SPAWN(NAME, ...)	     ((void)(NAME##_tp_spawn(tp__ts, tp__head, __VA_ARGS__), tp__head++))
#define TP_JOIN(NAME)		     (tp__head--, NAME##_tp_join(tp__ts, tp__head))
#define TP_CALL(NAME, ...)	     NAME##_tp_call(tp__ts, tp__head, __VA_ARGS__)
/* TP_RUN(pool, NAME, RT *out, args...): runs the task on `pool` and waits for it, from any
 * thread (on one of the pool's workers, as a call). 0 and *out set, or EINVAL (pool or out
 * NULL), ESHUTDOWN, ENOMEM as tp_enqueue(), ECANCELED (a TP_SHUTDOWN_CANCEL shutdown cancelled
 * the task before it started). */
#define TP_RUN(POOL, NAME, OUT, ...) NAME##_tp_run_on(POOL, OUT, __VA_ARGS__)
/* The same for tasks without arguments (C99 needs at least one argument after `...`). */
#define TP_SPAWN0(NAME)		     ((void)(NAME##_tp_spawn(tp__ts, tp__head), tp__head++))
#define TP_CALL0(NAME)		     NAME##_tp_call(tp__ts, tp__head)
#define TP_RUN0(POOL, NAME, OUT)     NAME##_tp_run_on(POOL, OUT)

#ifdef __cplusplus
#define TP__STATIC_ASSERT static_assert
#else
#define TP__STATIC_ASSERT _Static_assert
#endif
#define TP__UNPAREN_(...) __VA_ARGS__
#define TP__UNPAREN(list) TP__UNPAREN_ list

/*
 * The generic declaration behind TP_TASK_DECL_n: FIELDS declares the arguments as struct
 * members; PARAMS, in parentheses, lists them as parameters, and LOAD, in parentheses, reads them
 * back from slot `s`, both with a leading comma; STORE copies the parameters into slot `s`.
 */
#define TP__TASK_DECL(RT, NAME, FIELDS, PARAMS, STORE, LOAD)                                       \
	typedef struct NAME##_tp_slot {                                                            \
		struct tp__slot_head h;                                                            \
		union {                                                                            \
			struct {                                                                   \
				FIELDS                                                             \
			} args;                                                                    \
			RT res;                                                                    \
		} d;                                                                               \
	} NAME##_tp_slot;                                                                          \
	TP__STATIC_ASSERT(sizeof(NAME##_tp_slot) <= sizeof(struct tp__slot),                       \
			  #NAME ": arguments or result larger than TP_TASK_DATA bytes");           \
	RT NAME##_tp_call(TP_TASK_PARAMS TP__UNPAREN(PARAMS));                                     \
	static __attribute__((unused)) void NAME##_tp_run(                                         \
		struct tp__tstack *ts, struct tp__slot *head, struct tp__slot *slot)               \
	{                                                                                          \
		NAME##_tp_slot *s = (NAME##_tp_slot *)slot;                                        \
		s->d.res = NAME##_tp_call(ts, head TP__UNPAREN(LOAD));                             \
	}                                                                                          \
	static inline                                                                              \
		__attribute__((unused)) void NAME##_tp_spawn(TP_TASK_PARAMS TP__UNPAREN(PARAMS))   \
	{                                                                                          \
		NAME##_tp_slot *s = (NAME##_tp_slot *)tp__head;                                    \
		if (__builtin_expect(tp__head == tp__ts->end, 0))                                  \
			tp__task_overflow(tp__ts);                                                 \
		s->h.run = NAME##_tp_run;                                                          \
		TP__STORE_RLX(&s->h.thief, (uint64_t)TP__SLOT_SPAWNED);                            \
		STORE                                                                              \
		if (__builtin_expect(TP__LOAD_RLX(&tp__ts->request) != 0, 0))                      \
			tp__task_spawned_slow(tp__ts, tp__head);                                   \
	}                                                                                          \
	static inline __attribute__((unused)) RT NAME##_tp_join(TP_TASK_PARAMS)                    \
	{                                                                                          \
		NAME##_tp_slot *s = (NAME##_tp_slot *)tp__head;                                    \
		if (__builtin_expect(TP__LOAD_RLX(&tp__ts->request) == 0, 1) &&                    \
		    __builtin_expect(tp__head >= tp__ts->split, 1)) {                              \
			TP__ASSERT(TP__LOAD_RLX(&s->h.thief) == TP__SLOT_SPAWNED);                 \
			TP__STORE_RLX(&s->h.thief, (uint64_t)TP__SLOT_EMPTY);                      \
			return NAME##_tp_call(tp__ts, tp__head TP__UNPAREN(LOAD));                 \
		}                                                                                  \
		if (tp__task_join_slow(tp__ts, tp__head))                                          \
			return s->d.res;                                                           \
		return NAME##_tp_call(tp__ts, tp__head TP__UNPAREN(LOAD));                         \
	}                                                                                          \
	static inline __attribute__((unused)) int NAME##_tp_run_on(                                \
		tp_pool *tp__pool, RT *tp__out TP__UNPAREN(PARAMS))                                \
	{                                                                                          \
		NAME##_tp_slot tp__slot_, *s = &tp__slot_;                                         \
		int tp__err;                                                                       \
		if (tp__out == 0)                                                                  \
			return EINVAL;                                                             \
		STORE                                                                              \
		tp__err = tp__task_run(tp__pool, (struct tp__slot *)s, NAME##_tp_run);             \
		if (tp__err == 0)                                                                  \
			*tp__out = s->d.res;                                                       \
		return tp__err;                                                                    \
	}

/* The task's function: TP_TASK_IMPL_n(...) { body } defines it. */
#define TP__TASK_IMPL(RT, NAME, PARAMS) RT NAME##_tp_call(TP_TASK_PARAMS TP__UNPAREN(PARAMS))

/* TP_TASK_DECL_n(RT, NAME, T1, ..., Tn): declares task NAME, returning RT, taking n arguments of
 * types T1..Tn. TP_TASK_IMPL_n(RT, NAME, T1, A1, ..., Tn, An) { body }: defines it, the arguments
 * named A1..An. TP_TASK_n(...) { body }: both at once. */
#define TP_TASK_DECL_0(RT, NAME) TP__TASK_DECL(RT, NAME, char unused_;, (), (void)s;, ())
#define TP_TASK_DECL_1(RT, NAME, T1)                                                               \
	TP__TASK_DECL(RT, NAME, T1 a1;, (, T1 a1), s->d.args.a1 = a1;, (, s->d.args.a1))
#define TP_TASK_DECL_2(RT, NAME, T1, T2)                                                           \
	TP__TASK_DECL(RT, NAME, T1 a1; T2 a2;, (, T1 a1, T2 a2), s->d.args.a1 = a1;                \
		      s->d.args.a2 = a2;, (, s->d.args.a1, s->d.args.a2))
#define TP_TASK_DECL_3(RT, NAME, T1, T2, T3)                                                       \
	TP__TASK_DECL(RT, NAME, T1 a1; T2 a2; T3 a3;, (, T1 a1, T2 a2, T3 a3), s->d.args.a1 = a1;  \
		      s->d.args.a2 = a2; s->d.args.a3 = a3;                                        \
		      , (, s->d.args.a1, s->d.args.a2, s->d.args.a3))
#define TP_TASK_DECL_4(RT, NAME, T1, T2, T3, T4)                                                   \
	TP__TASK_DECL(RT, NAME, T1 a1; T2 a2; T3 a3; T4 a4;                                        \
		      , (, T1 a1, T2 a2, T3 a3, T4 a4), s->d.args.a1 = a1; s->d.args.a2 = a2;      \
		      s->d.args.a3 = a3; s->d.args.a4 = a4;                                        \
		      , (, s->d.args.a1, s->d.args.a2, s->d.args.a3, s->d.args.a4))

#define TP_TASK_IMPL_0(RT, NAME)		 TP__TASK_IMPL(RT, NAME, ())
#define TP_TASK_IMPL_1(RT, NAME, T1, A1)	 TP__TASK_IMPL(RT, NAME, (, T1 A1))
#define TP_TASK_IMPL_2(RT, NAME, T1, A1, T2, A2) TP__TASK_IMPL(RT, NAME, (, T1 A1, T2 A2))
#define TP_TASK_IMPL_3(RT, NAME, T1, A1, T2, A2, T3, A3)                                           \
	TP__TASK_IMPL(RT, NAME, (, T1 A1, T2 A2, T3 A3))
#define TP_TASK_IMPL_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4)                                   \
	TP__TASK_IMPL(RT, NAME, (, T1 A1, T2 A2, T3 A3, T4 A4))

#define TP_TASK_0(RT, NAME)	    TP_TASK_DECL_0(RT, NAME) TP_TASK_IMPL_0(RT, NAME)
#define TP_TASK_1(RT, NAME, T1, A1) TP_TASK_DECL_1(RT, NAME, T1) TP_TASK_IMPL_1(RT, NAME, T1, A1)
#define TP_TASK_2(RT, NAME, T1, A1, T2, A2)                                                        \
	TP_TASK_DECL_2(RT, NAME, T1, T2) TP_TASK_IMPL_2(RT, NAME, T1, A1, T2, A2)
#define TP_TASK_3(RT, NAME, T1, A1, T2, A2, T3, A3)                                                \
	TP_TASK_DECL_3(RT, NAME, T1, T2, T3) TP_TASK_IMPL_3(RT, NAME, T1, A1, T2, A2, T3, A3)
#define TP_TASK_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4)                                        \
	TP_TASK_DECL_4(RT, NAME, T1, T2, T3, T4)                                                   \
	TP_TASK_IMPL_4(RT, NAME, T1, A1, T2, A2, T3, A3, T4, A4)

#ifdef __cplusplus
}
#endif

#endif /* THREAD_POOL_TASK_H */
