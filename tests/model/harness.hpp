/*
 * harness.hpp - what the models share: Relacy, the operations of src/atomics.h's model backend
 * (TP_ATOMICS_RELACY), mutants, and the driver of a model program.
 *
 * Orders
 *   Every operation of the atomics vocabulary arrives here with the order its name states (_rlx,
 *   _acq, _rel, _sc, a read-modify-write, a fence) and its call site, and gets the C11 order of
 *   the ck backend, the one built by default: an _sc load is an acquire load, an _sc store a
 *   release store, tp__fence_sc() a seq_cst fence, a read-modify-write seq_cst (not a full
 *   barrier: x86 makes it one, which the runtime does not rely on, src/atomics.h). The builtins
 *   backend is at least as strong (seq_cst _sc accesses, the same fence), so the models cover it.
 *   Relacy models store buffering (a load may return an older store unless a fence or
 *   happens-before forbids it), so a missing store-load fence shows; it does not model a load
 *   that reads a store coming later in its own thread (load buffering), so an order that only
 *   forbids that cannot be checked here.
 *
 * Mutants
 *   A mutant names one call site (the function it is in, or "*" for any, the kind of operation,
 *   a piece of the address expression) and weakens it: the order to relaxed, an _sc or seq_cst
 *   order to acquire / release (acq_rel for a read-modify-write), or a fence to nothing. It may
 *   also switch to the "sc" reading: _sc accesses seq_cst and every fence empty, which is what
 *   the builtins backend was before its fence became real; there an _sc access weakened to
 *   acquire / release shows whether the _sc order alone carried a store-load pattern. A mutant
 *   without a call site is a change in a model's own code (a step of a transcribed protocol left
 *   out, or an older version of it), which that code asks for with tp_model_mutated(). A model
 *   must fail under each of its mutants unless the mutant says why it survives;
 *   tests/model/mutate.sh runs them all.
 *
 * Driver
 *   A model program runs each of its test suites first with Relacy's random scheduler, then
 *   exhaustively up to a bound of preemptions (the context-bound scheduler). Options:
 *   --mutant NAME, --list-mutants, --iterations N (random scheduler), --bound K (0: no
 *   exhaustive run), --suite NAME (that suite only), --verbose (Relacy's history of a failure,
 *   also under a mutant). A suite that reproduces a known fault of the sources (it fails until
 *   the sources are fixed) runs only when --suite names it.
 *   Exit status: 0 every run passed, 1 a run failed, 2 bad usage (also a --suite that names no
 *   suite), 3 the mutant never applied.
 */
#ifndef TP_MODEL_HARNESS_HPP
#define TP_MODEL_HARNESS_HPP

#include <relacy/relacy.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <stdint.h>
#include <streambuf>
#include <time.h>

enum tp__model_mo { TP__MO_RLX, TP__MO_ACQ, TP__MO_REL, TP__MO_SC };
enum tp__model_kind { TP__KIND_NONE, TP__KIND_LOAD, TP__KIND_STORE, TP__KIND_RMW, TP__KIND_FENCE };
enum tp_model_reading { TP_MODEL_CK, TP_MODEL_SC };
enum tp_model_weaken { TP_MODEL_TO_RELAXED, TP_MODEL_TO_ACQ_REL, TP_MODEL_TO_NOTHING };

/* A call site: the address expression as written, and Relacy's function/file/line. */
struct tp__model_where {
	const char *expr;
	rl::debug_info info;
};

static inline tp__model_where tp__model_site(const char *expr, rl::debug_info_param info)
{
	tp__model_where w = { expr, info };

	return w;
}

struct tp_model_mutant {
	const char *name;
	int reading;	  /* enum tp_model_reading */
	const char *func; /* the call site's function, "*" any; NULL: none (a reading, or code) */
	int kind;	  /* enum tp__model_kind */
	const char *expr; /* a piece of the address expression ("" matches any) */
	int to;		  /* enum tp_model_weaken */
	bool survives;	  /* expected to survive: `what` says why */
	const char *what; /* the ordering taken away, and what must then go wrong */
};

static struct {
	int reading;
	const tp_model_mutant *mutant;
	unsigned long hits; /* executions of the mutated site or code, or of the reading */
} tp_model;

/* For a mutant that changes a model's own code: true if it is the one active. */
static inline bool tp_model_mutated(const char *name)
{
	if (tp_model.mutant == NULL || std::strcmp(tp_model.mutant->name, name) != 0)
		return false;
	tp_model.hits++;
	return true;
}

static inline const tp_model_mutant *tp__model_match(int kind, const tp__model_where &w)
{
	const tp_model_mutant *m = tp_model.mutant;

	if (m == NULL || m->func == NULL || m->kind != kind ||
	    (std::strcmp(m->func, "*") != 0 && std::strcmp(m->func, w.info.func_) != 0) ||
	    std::strstr(w.expr, m->expr) == NULL)
		return NULL;
	tp_model.hits++;
	return m;
}

/* The C11 order of an access of the given kind that the vocabulary calls `mo`. */
static inline rl::memory_order tp__model_order(int kind, int mo, const tp__model_where &w)
{
	const tp_model_mutant *m = tp__model_match(kind, w);
	bool sc = tp_model.reading == TP_MODEL_SC && mo == TP__MO_SC;

	if (sc && m == NULL && tp_model.mutant != NULL && tp_model.mutant->func == NULL)
		tp_model.hits++; /* a reading-only mutant applies wherever an _sc access runs */
	if (m != NULL && m->to == TP_MODEL_TO_RELAXED)
		return rl::mo_relaxed;
	if (m != NULL && m->to == TP_MODEL_TO_ACQ_REL)
		sc = false;
	switch (mo) {
	case TP__MO_ACQ:
		return rl::mo_acquire;
	case TP__MO_REL:
		return rl::mo_release;
	case TP__MO_SC:
		return sc ? rl::mo_seq_cst : kind == TP__KIND_LOAD ? rl::mo_acquire : rl::mo_release;
	default:
		return rl::mo_relaxed;
	}
}

template <class T> struct tp__model_same {
	typedef T type;
};

template <class T> T tp__model_load(const rl::atomic<T> *p, int mo, const tp__model_where &w)
{
	return p->load(tp__model_order(TP__KIND_LOAD, mo, w), w.info);
}

template <class T>
void tp__model_store(rl::atomic<T> *p, typename tp__model_same<T>::type v, int mo,
		     const tp__model_where &w)
{
	p->store(v, tp__model_order(TP__KIND_STORE, mo, w), w.info);
}

/* A read-modify-write's order. */
static inline rl::memory_order tp__model_rmw_order(const tp__model_where &w)
{
	const tp_model_mutant *m = tp__model_match(TP__KIND_RMW, w);

	if (m == NULL)
		return rl::mo_seq_cst;
	return m->to == TP_MODEL_TO_RELAXED ? rl::mo_relaxed : rl::mo_acq_rel;
}

template <class T>
bool tp__model_cas_value(rl::atomic<T> *p, T *old, typename tp__model_same<T>::type v,
			 const tp__model_where &w)
{
	return p->compare_exchange_strong(*old, v, tp__model_rmw_order(w), w.info);
}

template <class T>
bool tp__model_cas(rl::atomic<T> *p, typename tp__model_same<T>::type old,
		   typename tp__model_same<T>::type v, const tp__model_where &w)
{
	return tp__model_cas_value(p, &old, v, w);
}

#define TP__MODEL_RMW(name, call)                                                                  \
	template <class T>                                                                         \
	T name(rl::atomic<T> *p, typename tp__model_same<T>::type v, const tp__model_where &w)    \
	{                                                                                          \
		return p->call(v, tp__model_rmw_order(w), w.info);                                 \
	}
TP__MODEL_RMW(tp__model_swap, exchange)
TP__MODEL_RMW(tp__model_add, fetch_add)
TP__MODEL_RMW(tp__model_or, fetch_or)
TP__MODEL_RMW(tp__model_and, fetch_and)
#undef TP__MODEL_RMW

static inline void tp__model_fence(const tp__model_where &w)
{
	if (tp__model_match(TP__KIND_FENCE, w) == NULL && tp_model.reading == TP_MODEL_CK)
		rl::atomic_thread_fence(rl::mo_seq_cst, w.info);
}

/*
 * The slots of a buffer from malloc: constructed, and given a zero value, where C leaves garbage.
 * A thief holding a stale top may read a slot of a grown buffer that nobody wrote (its index was
 * stolen before the copy) and then fails its CAS (deque.h): Relacy would call that read an
 * uninitialised access. The zero (NULL) keeps it harmless here as in C, and an item that is NULL
 * still fails the models' checks if a take ever returned it.
 */
template <class T> void tp__model_construct(rl::atomic<T> *a, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		new (&a[i]) rl::atomic<T>();
		a[i].store(T(), rl::mo_relaxed, $);
	}
}

template <class T> void tp__model_destruct(rl::atomic<T> *a, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		a[i].~atomic();
}

/* ------------------------------------------------------------------------------------------ */
/* The driver. */

static struct {
	const char *model;
	unsigned long iterations; /* 0: each suite's own */
	long bound;		  /* -1: each suite's own */
	bool verbose;
	const char *only; /* --suite: the one suite to run, or NULL */
	bool matched;	  /* a suite of that name was seen */
	int failed;
	int runs;
	const char *caught; /* under a mutant: the first suite that failed */
} tp_model_opt;

/* Relacy's report, kept in a file: a string stream would allocate through Relacy's operator new,
 * which must not happen while Relacy prints a history. */
class tp__model_filebuf : public std::streambuf {
    public:
	FILE *f;
	tp__model_filebuf() : f(std::tmpfile())
	{
	}
	~tp__model_filebuf()
	{
		if (f != NULL)
			std::fclose(f);
	}
	void copy_to(FILE *out)
	{
		char buf[4096];
		size_t n;

		if (f == NULL)
			return;
		std::rewind(f);
		while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
			std::fwrite(buf, 1, n, out);
	}

    protected:
	int overflow(int c)
	{
		if (c != EOF && f != NULL)
			std::fputc(c, f);
		return c == EOF ? 0 : c;
	}
	std::streamsize xsputn(const char *s, std::streamsize n)
	{
		return f != NULL ? (std::streamsize)std::fwrite(s, 1, (size_t)n, f) : n;
	}
};

static inline double tp__model_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int tp__model_usage(const char *argv0)
{
	std::fprintf(stderr,
		     "usage: %s [--mutant NAME] [--list-mutants] [--iterations N] [--bound K] "
		     "[--suite NAME] [--verbose]\n",
		     argv0);
	return 2;
}

/* Parses the options; returns -1 to go on, or the exit status. */
static inline int tp_model_begin(int argc, char **argv, const char *model,
				 const tp_model_mutant *mutants, size_t nmutants)
{
	tp_model_opt.model = model;
	tp_model_opt.bound = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (std::strcmp(a, "--list-mutants") == 0) {
			for (size_t k = 0; k < nmutants; k++)
				std::printf("%s\t%s\t%s\n", mutants[k].name,
					    mutants[k].survives ? "survives" : "caught", mutants[k].what);
			return 0;
		} else if (std::strcmp(a, "--verbose") == 0) {
			tp_model_opt.verbose = true;
		} else if (v == NULL) {
			return tp__model_usage(argv[0]);
		} else if (std::strcmp(a, "--mutant") == 0) {
			for (size_t k = 0; k < nmutants; k++)
				if (std::strcmp(mutants[k].name, v) == 0)
					tp_model.mutant = &mutants[k];
			if (tp_model.mutant == NULL) {
				std::fprintf(stderr, "%s: no mutant %s\n", model, v);
				return 2;
			}
			tp_model.reading = tp_model.mutant->reading;
			i++;
		} else if (std::strcmp(a, "--iterations") == 0) {
			tp_model_opt.iterations = std::strtoul(v, NULL, 10);
			i++;
		} else if (std::strcmp(a, "--bound") == 0) {
			tp_model_opt.bound = std::strtol(v, NULL, 10);
			i++;
		} else if (std::strcmp(a, "--suite") == 0) {
			tp_model_opt.only = v;
			i++;
		} else {
			return tp__model_usage(argv[0]);
		}
	}
	if (tp_model.mutant != NULL)
		std::printf("%s: mutant %s: %s\n", model, tp_model.mutant->name,
			    tp_model.mutant->what);
	return -1;
}

/* One run of a suite under one scheduler. */
template <class Suite>
void tp__model_run(const char *suite, rl::scheduler_type_e type, unsigned long iterations,
		   unsigned bound)
{
	rl::test_params p;
	tp__model_filebuf report;
	std::ostream out(&report);
	double t0;
	bool ok;

	/* A mutant is caught once: the other runs would only repeat it. */
	if (tp_model.mutant != NULL && tp_model_opt.caught != NULL)
		return;
	p.search_type = type;
	p.iteration_count = iterations;
	p.context_bound = bound;
	p.output_stream = &out;
	p.progress_stream = &out;
	t0 = tp__model_now();
	ok = rl::simulate<Suite>(p);
	if (type == rl::random_scheduler_type)
		std::printf("%s/%s, random: ", tp_model_opt.model, suite);
	else
		std::printf("%s/%s, exhaustive to %u preemptions: ", tp_model_opt.model, suite,
			    bound);
	std::printf("%llu executions, %.2f s: %s\n",
		    (unsigned long long)p.stop_iteration + (ok ? 0 : 1), tp__model_now() - t0,
		    ok ? "ok" : rl::test_result_str(p.test_result));
	tp_model_opt.runs++;
	if (!ok) {
		tp_model_opt.failed++;
		tp_model_opt.caught = suite;
		if (tp_model.mutant == NULL || tp_model_opt.verbose)
			report.copy_to(stdout);
	}
	std::fflush(stdout);
}

/* True if --suite lets this suite run (no --suite, or this one). */
static inline bool tp__model_selected(const char *suite)
{
	if (tp_model_opt.only == NULL)
		return true;
	if (std::strcmp(tp_model_opt.only, suite) != 0)
		return false;
	tp_model_opt.matched = true;
	return true;
}

/* Runs a suite: the random scheduler, then exhaustively up to `bound` preemptions. */
template <class Suite> void tp_model_check(const char *suite, unsigned long iterations, unsigned bound)
{
	if (!tp__model_selected(suite))
		return;
	if (tp_model_opt.iterations != 0)
		iterations = tp_model_opt.iterations;
	if (tp_model_opt.bound >= 0)
		bound = (unsigned)tp_model_opt.bound;
	tp__model_run<Suite>(suite, rl::random_scheduler_type, iterations, 0);
	if (bound > 0)
		tp__model_run<Suite>(suite, rl::fair_context_bound_scheduler_type, 0, bound);
}

/*
 * A suite that reproduces a known fault of the sources, `fault`: it fails until they are fixed.
 * It runs only when --suite names it; otherwise one line says how to run it.
 */
template <class Suite>
void tp_model_check_known_fault(const char *suite, unsigned long iterations, unsigned bound,
				const char *fault)
{
	if (tp_model_opt.only == NULL) {
		std::printf("%s/%s: not run, it reproduces a known fault (%s): --suite %s runs "
			    "it\n",
			    tp_model_opt.model, suite, fault, suite);
		return;
	}
	tp_model_check<Suite>(suite, iterations, bound);
}

static inline int tp_model_end(void)
{
	if (tp_model_opt.only != NULL && !tp_model_opt.matched) {
		std::fprintf(stderr, "%s: no suite %s\n", tp_model_opt.model, tp_model_opt.only);
		return 2;
	}
	if (tp_model.mutant != NULL) {
		if (tp_model.hits == 0) {
			std::printf("%s: mutant %s never applied (no such call site reached)\n",
				    tp_model_opt.model, tp_model.mutant->name);
			return 3;
		}
		if (tp_model_opt.caught != NULL)
			std::printf("%s: mutant %s caught by %s\n", tp_model_opt.model,
				    tp_model.mutant->name, tp_model_opt.caught);
		else
			std::printf("%s: mutant %s NOT caught\n", tp_model_opt.model,
				    tp_model.mutant->name);
	} else {
		std::printf("%s: %d runs, %d failed\n", tp_model_opt.model, tp_model_opt.runs,
			    tp_model_opt.failed);
	}
	return tp_model_opt.failed ? 1 : 0;
}

#endif /* TP_MODEL_HARNESS_HPP */
