/*
 * test-trace.c - tp_pool_trace_start() / tp_pool_trace_stop() through the public API: the file is
 * JSON (checked by a small parser below) with a thread name per worker, one task span per task
 * named after its function, and otherData (pool, workers, dropped events); EBUSY, ENOENT, EINVAL,
 * ESHUTDOWN; a path that cannot be written fails the stop and leaves nothing recording;
 * TP_TRACE=path traces from creation to shutdown; TP_TRACE_MAX_EVENTS caps the events; starts
 * and stops from several threads while tasks run.
 *
 * cmocka is not thread-safe: tasks and helper threads only count (atomics); the test thread
 * asserts after joining or waiting.
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>

#include "../common.h"
#include "thread_pool.h"

/* Exported (not static), so that the trace can name them (the executable exports its symbols). */
int trace_test_task(void *arg);
int trace_untraced_task(void *arg);

static long ran; /* atomic */

int trace_test_task(void *arg)
{
	(void)arg;
	test_inc(&ran);
	return 0;
}

int trace_untraced_task(void *arg)
{
	(void)arg;
	test_inc(&ran);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------------------------ */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/tp-trace-XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	(void)state;
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char path[512];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
	return 0;
}

static void path_in_tmp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* The whole file, NUL-terminated (free it), or NULL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, 4096, f);

		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

/* ---------------------------------------------------------------------------------------------
 * A small JSON parser that keeps what these tests look at: for each element of the top-level
 * traceEvents array, its name, cat, ph, tid and args.name; from otherData, pool, workers, events
 * and dropped_events. Anything that is not JSON fails the parse.
 * ------------------------------------------------------------------------------------------ */

struct ev {
	char name[128];
	char cat[32];
	char ph[8];
	char arg_name[64];
	long tid;
};

struct doc {
	struct ev *ev;
	size_t nev, cap;
	bool has_events, has_other;
	char pool[64];
	long workers, events, dropped;
	char error[128];
};

enum ctx {
	CTX_NONE,
	CTX_DOC,    /* the document's value */
	CTX_TOP,    /* members of the top object */
	CTX_EVENTS, /* elements of traceEvents */
	CTX_EVENT,  /* members of one event */
	CTX_ARGS,   /* members of an event's args */
	CTX_OTHER   /* members of otherData */
};

struct parser {
	const char *p, *end;
	struct doc *doc;
};

static bool perr(struct parser *ps, const char *what)
{
	if (ps->doc->error[0] == '\0')
		snprintf(ps->doc->error, sizeof(ps->doc->error), "%s at offset %ld", what,
			 (long)(ps->end - ps->p));
	return false;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

static bool parse_string(struct parser *ps, char *out, size_t cap)
{
	size_t n = 0;

	if (ps->p >= ps->end || *ps->p != '"')
		return perr(ps, "expected a string");
	ps->p++;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p++;

		if (c < 0x20)
			return perr(ps, "control character in a string");
		if (c == '\\') {
			if (ps->p >= ps->end)
				return perr(ps, "truncated escape");
			c = (unsigned char)*ps->p++;
			if (c == 'u') {
				for (int i = 0; i < 4; i++, ps->p++)
					if (ps->p >= ps->end ||
					    !strchr("0123456789abcdefABCDEF", *ps->p))
						return perr(ps, "bad \\u escape");
				c = '?';
			} else if (!strchr("\"\\/bfnrt", c)) {
				return perr(ps, "bad escape");
			}
		}
		if (out != NULL && n + 1 < cap)
			out[n++] = (char)c;
	}
	if (ps->p >= ps->end)
		return perr(ps, "unterminated string");
	ps->p++;
	if (out != NULL && cap > 0)
		out[n] = '\0';
	return true;
}

static bool parse_number(struct parser *ps, double *out)
{
	const char *s = ps->p;

	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
		return perr(ps, "bad number");
	if (*ps->p == '0')
		ps->p++;
	else
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	if (ps->p < ps->end && *ps->p == '.') {
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return perr(ps, "bad fraction");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
			return perr(ps, "bad exponent");
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	*out = strtod(s, NULL);
	return true;
}

static bool parse_value(struct parser *ps, enum ctx ctx, const char *key, struct ev *ev, int depth);

/* Copies src into dst[cap], cut to fit. */
static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool parse_object(struct parser *ps, enum ctx ctx, const char *key, struct ev *ev, int depth)
{
	enum ctx members = CTX_NONE;

	if (ctx == CTX_DOC) {
		members = CTX_TOP;
	} else if (ctx == CTX_EVENTS) {
		struct doc *d = ps->doc;

		if (d->nev == d->cap) {
			struct ev *nv;

			d->cap = d->cap ? d->cap * 2 : 256;
			nv = realloc(d->ev, d->cap * sizeof(*nv));
			if (nv == NULL)
				return perr(ps, "out of memory");
			d->ev = nv;
		}
		ev = &d->ev[d->nev++];
		memset(ev, 0, sizeof(*ev));
		ev->tid = -1;
		members = CTX_EVENT;
	} else if (ctx == CTX_TOP && strcmp(key, "otherData") == 0) {
		ps->doc->has_other = true;
		members = CTX_OTHER;
	} else if (ctx == CTX_EVENT && strcmp(key, "args") == 0) {
		members = CTX_ARGS;
	}
	ps->p++; /* '{' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return true;
	}
	for (;;) {
		char k[64];

		skip_ws(ps);
		if (!parse_string(ps, k, sizeof(k)))
			return false;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			return perr(ps, "expected ':'");
		ps->p++;
		if (!parse_value(ps, members, k, ev, depth + 1))
			return false;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return true;
		}
		return perr(ps, "expected ',' or '}'");
	}
}

static bool parse_array(struct parser *ps, enum ctx ctx, const char *key, int depth)
{
	enum ctx elems = CTX_NONE;

	if (ctx == CTX_TOP && strcmp(key, "traceEvents") == 0) {
		ps->doc->has_events = true;
		elems = CTX_EVENTS;
	}
	ps->p++; /* '[' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return true;
	}
	for (;;) {
		if (!parse_value(ps, elems, NULL, NULL, depth + 1))
			return false;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return true;
		}
		return perr(ps, "expected ',' or ']'");
	}
}

static bool parse_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return perr(ps, "unexpected character");
	ps->p += n;
	return true;
}

static bool parse_value(struct parser *ps, enum ctx ctx, const char *key, struct ev *ev, int depth)
{
	struct doc *d = ps->doc;

	if (depth > 32)
		return perr(ps, "nested too deeply");
	skip_ws(ps);
	if (ps->p >= ps->end)
		return perr(ps, "unexpected end");
	switch (*ps->p) {
	case '{':
		return parse_object(ps, ctx, key, ev, depth);
	case '[':
		return parse_array(ps, ctx, key, depth);
	case '"': {
		char s[128];

		if (!parse_string(ps, s, sizeof(s)))
			return false;
		if (ctx == CTX_EVENT && strcmp(key, "name") == 0)
			copy_str(ev->name, sizeof(ev->name), s);
		else if (ctx == CTX_EVENT && strcmp(key, "cat") == 0)
			copy_str(ev->cat, sizeof(ev->cat), s);
		else if (ctx == CTX_EVENT && strcmp(key, "ph") == 0)
			copy_str(ev->ph, sizeof(ev->ph), s);
		else if (ctx == CTX_ARGS && strcmp(key, "name") == 0)
			copy_str(ev->arg_name, sizeof(ev->arg_name), s);
		else if (ctx == CTX_OTHER && strcmp(key, "pool") == 0)
			copy_str(d->pool, sizeof(d->pool), s);
		return true;
	}
	case 't':
		return parse_literal(ps, "true");
	case 'f':
		return parse_literal(ps, "false");
	case 'n':
		return parse_literal(ps, "null");
	default: {
		double v;

		if (!parse_number(ps, &v))
			return false;
		if (ctx == CTX_EVENT && strcmp(key, "tid") == 0)
			ev->tid = (long)v;
		else if (ctx == CTX_OTHER && strcmp(key, "workers") == 0)
			d->workers = (long)v;
		else if (ctx == CTX_OTHER && strcmp(key, "events") == 0)
			d->events = (long)v;
		else if (ctx == CTX_OTHER && strcmp(key, "dropped_events") == 0)
			d->dropped = (long)v;
		return true;
	}
	}
}

/* Parses the trace file at `path` into *d (free d->ev); false, with d->error, if it is not JSON
 * or does not start as a trace must. */
static bool load_trace(const char *path, struct doc *d)
{
	static const char prefix[] = "{\"traceEvents\":[";
	size_t len;
	char *text = slurp(path, &len);
	struct parser ps;
	bool ok;

	memset(d, 0, sizeof(*d));
	d->workers = d->events = d->dropped = -1;
	if (text == NULL) {
		snprintf(d->error, sizeof(d->error), "cannot read %s", path);
		return false;
	}
	if (strncmp(text, prefix, sizeof(prefix) - 1) != 0) {
		snprintf(d->error, sizeof(d->error), "does not start with %s", prefix);
		free(text);
		return false;
	}
	ps = (struct parser){ text, text + len, d };
	ok = parse_value(&ps, CTX_DOC, NULL, NULL, 0);
	if (ok) {
		skip_ws(&ps);
		if (ps.p != ps.end)
			ok = perr(&ps, "text after the document");
	}
	if (ok && (!d->has_events || !d->has_other))
		ok = perr(&ps, "no traceEvents or no otherData");
	free(text);
	return ok;
}

static void load_trace_or_fail(const char *path, struct doc *d)
{
	if (!load_trace(path, d)) {
		printf("# %s: %s\n", path, d->error);
		fflush(stdout);
		free(d->ev);
		d->ev = NULL;
		d->nev = 0;
		fail();
	}
}

/* Events with this ph and cat (NULL: any) and name (NULL: any). */
static size_t count_events(const struct doc *d, const char *ph, const char *cat, const char *name)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nev; i++)
		if ((ph == NULL || strcmp(d->ev[i].ph, ph) == 0) &&
		    (cat == NULL || strcmp(d->ev[i].cat, cat) == 0) &&
		    (name == NULL || strcmp(d->ev[i].name, name) == 0))
			k++;
	return k;
}

/* The trace has one thread_name per worker (tids 0..n-1) and every event on those lanes. */
static void check_lanes(const struct doc *d, size_t n)
{
	bool seen[64] = { false };
	size_t names = 0;

	assert_true(n <= 64);
	for (size_t i = 0; i < d->nev; i++) {
		const struct ev *e = &d->ev[i];

		if (strcmp(e->name, "thread_name") == 0 && strcmp(e->ph, "M") == 0) {
			assert_true(e->tid >= 0 && (size_t)e->tid < n);
			assert_false(seen[e->tid]);
			seen[e->tid] = true;
			names++;
		} else if (strcmp(e->ph, "M") != 0) {
			assert_true(e->tid >= 0 && (size_t)e->tid < n);
		}
	}
	assert_int_equal(names, n);
}

/* ---------------------------------------------------------------------------------------------
 * The file
 * ------------------------------------------------------------------------------------------ */

static tp_pool *named_pool_or_null(const char *name, size_t n)
{
	tp_pool_options o;

	tp_pool_options_init(&o);
	o.num_threads = n;
	o.name = name;
	return tp_pool_create_ex(&o);
}

static tp_pool *named_pool(const char *name, size_t n)
{
	tp_pool *pool = named_pool_or_null(name, n);

	assert_non_null(pool);
	return pool;
}

static void trace_file_has_a_span_per_task(void **state)
{
	enum {
		N = 300,
		W = 2
	};
	char path[256];
	struct doc d;
	tp_pool *pool = named_pool("trc", W);
	tp_future *f[N / 2];

	(void)state;
	path_in_tmp(path, sizeof(path), "basic.json");
	test_store(&ran, 0);
	/* Before the trace: not recorded. */
	for (int i = 0; i < 20; i++)
		assert_int_equal(tp_submit(pool, trace_untraced_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);

	assert_int_equal(tp_pool_trace_start(pool, path), 0);
	for (int i = 0; i < N / 2; i++) {
		assert_int_equal(tp_submit(pool, trace_test_task, NULL), 0);
		f[i] = tp_enqueue(pool, trace_test_task, NULL);
		assert_non_null(f[i]);
	}
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_trace_stop(pool), 0);
	/* After the trace: not recorded either. */
	for (int i = 0; i < 20; i++)
		assert_int_equal(tp_submit(pool, trace_untraced_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(test_load(&ran), N + 40);

	load_trace_or_fail(path, &d);
	check_lanes(&d, W);
	assert_int_equal(count_events(&d, "X", "task", "trace_test_task"), N);
	assert_int_equal(count_events(&d, NULL, "task", NULL), N);
	assert_int_equal(count_events(&d, NULL, NULL, "trace_untraced_task"), 0);
	assert_string_equal(d.pool, "trc");
	assert_int_equal(d.workers, W);
	assert_int_equal(d.dropped, 0);
	free(d.ev);
	for (int i = 0; i < N / 2; i++)
		tp_future_release(f[i]);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------------ */

static void trace_errors(void **state)
{
	char path[256], other[256];
	struct doc d;
	tp_pool *pool = named_pool("errs", 2);

	(void)state;
	path_in_tmp(path, sizeof(path), "errs.json");
	path_in_tmp(other, sizeof(other), "errs-other.json");
	assert_int_equal(tp_pool_trace_start(NULL, path), EINVAL);
	assert_int_equal(tp_pool_trace_start(pool, NULL), EINVAL);
	assert_int_equal(tp_pool_trace_stop(NULL), EINVAL);
	assert_int_equal(tp_pool_trace_stop(pool), ENOENT);

	assert_int_equal(tp_pool_trace_start(pool, path), 0);
	assert_int_equal(tp_pool_trace_start(pool, other), EBUSY);
	assert_int_equal(tp_pool_trace_start(pool, path), EBUSY);
	assert_int_equal(tp_pool_trace_stop(pool), 0);
	assert_int_equal(tp_pool_trace_stop(pool), ENOENT);
	assert_true(file_exists(path));
	assert_false(file_exists(other));
	load_trace_or_fail(path, &d);
	check_lanes(&d, 2);
	free(d.ev);

	/* A trace may start again after a stop. */
	assert_int_equal(tp_pool_trace_start(pool, other), 0);
	assert_int_equal(tp_pool_trace_stop(pool), 0);
	assert_true(file_exists(other));

	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_int_equal(tp_pool_trace_start(pool, path), ESHUTDOWN);
	assert_int_equal(tp_pool_trace_stop(pool), ENOENT);
	tp_pool_destroy(pool);
}

/* A path that cannot be written: the stop says why, and nothing is left recording. */
static void trace_unwritable_path(void **state)
{
	char bad[256], good[256];
	struct doc d;
	tp_pool *pool = named_pool("unw", 2);
	int rc;

	(void)state;
	path_in_tmp(bad, sizeof(bad), "no-such-dir/trace.json");
	path_in_tmp(good, sizeof(good), "after-unwritable.json");
	test_store(&ran, 0);
	assert_int_equal(tp_pool_trace_start(pool, bad), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(tp_submit(pool, trace_test_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	rc = tp_pool_trace_stop(pool);
	printf("# stop with a path in a missing directory: %d (%s)\n", rc, strerror(rc));
	assert_int_not_equal(rc, 0);
	assert_int_not_equal(rc, EINVAL);
	assert_int_not_equal(rc, EBUSY);
	assert_false(file_exists(bad));
	/* Stopped: a second stop finds nothing, a new start works. */
	assert_int_equal(tp_pool_trace_stop(pool), ENOENT);
	assert_int_equal(tp_pool_trace_start(pool, good), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(tp_submit(pool, trace_test_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_trace_stop(pool), 0);
	load_trace_or_fail(good, &d);
	/* Only this trace's tasks: the failed one's events are gone. */
	assert_int_equal(count_events(&d, "X", "task", "trace_test_task"), 10);
	assert_int_equal(d.dropped, 0);
	free(d.ev);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * The environment
 * ------------------------------------------------------------------------------------------ */

static void trace_from_environment(void **state)
{
	enum {
		N = 100
	};
	char path[256], other[256];
	struct doc d;
	tp_pool *pool;

	(void)state;
	path_in_tmp(path, sizeof(path), "env.json");
	path_in_tmp(other, sizeof(other), "env-other.json");
	setenv("TP_TRACE", path, 1);
	pool = named_pool("envp", 2);
	unsetenv("TP_TRACE");
	/* It runs: a second trace is refused. */
	assert_int_equal(tp_pool_trace_start(pool, other), EBUSY);
	for (int i = 0; i < N; i++)
		assert_int_equal(tp_submit(pool, trace_test_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_false(file_exists(path)); /* written at the shutdown */
	assert_int_equal(tp_pool_shutdown(pool, TP_SHUTDOWN_DRAIN), 0);
	assert_true(file_exists(path));
	tp_pool_destroy(pool);
	load_trace_or_fail(path, &d);
	check_lanes(&d, 2);
	assert_int_equal(count_events(&d, "X", "task", "trace_test_task"), N);
	assert_string_equal(d.pool, "envp");
	assert_int_equal(d.dropped, 0);
	free(d.ev);

	/* A pool created without TP_TRACE writes nothing at its shutdown. */
	unlink(path);
	pool = named_pool("envp", 2);
	assert_int_equal(tp_pool_trace_stop(pool), ENOENT);
	tp_pool_destroy(pool);
	assert_false(file_exists(path));
}

static void trace_max_events_drops(void **state)
{
	enum {
		N = 200,
		W = 2,
		MAX = 5
	};
	char path[256];
	struct doc d;
	tp_pool *pool = named_pool("maxev", W);

	(void)state;
	path_in_tmp(path, sizeof(path), "max.json");
	setenv("TP_TRACE_MAX_EVENTS", "5", 1);
	assert_int_equal(tp_pool_trace_start(pool, path), 0);
	unsetenv("TP_TRACE_MAX_EVENTS");
	for (int i = 0; i < N; i++)
		assert_int_equal(tp_submit(pool, trace_test_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_trace_stop(pool), 0);
	load_trace_or_fail(path, &d);
	printf("# TP_TRACE_MAX_EVENTS=5: %ld events, %ld dropped\n", d.events, d.dropped);
	assert_true(d.dropped > 0);
	assert_true(d.events >= 0 && d.events <= W * MAX);
	assert_true(d.events + d.dropped >= N); /* a span per task at least */
	assert_true(count_events(&d, "X", "task", NULL) <= W * MAX);
	free(d.ev);

	/* The next trace has the default again. */
	assert_int_equal(tp_pool_trace_start(pool, path), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(tp_submit(pool, trace_test_task, NULL), 0);
	assert_int_equal(tp_pool_wait_idle(pool, NULL), 0);
	assert_int_equal(tp_pool_trace_stop(pool), 0);
	load_trace_or_fail(path, &d);
	assert_int_equal(d.dropped, 0);
	assert_int_equal(count_events(&d, "X", "task", "trace_test_task"), N);
	free(d.ev);
	tp_pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------
 * Starts and stops from several threads while tasks run
 * ------------------------------------------------------------------------------------------ */

static struct churn {
	tp_pool *pool;
	long stop;	/* atomic: the submitters stop */
	long file_seq;	/* atomic */
	long starts_ok; /* atomic */
	long stops_ok;	/* atomic */
	long bad_rc;	/* atomic: a return code outside the documented ones */
	long submitted; /* atomic */
} churn;

static int churn_task(void *arg)
{
	(void)arg;
	test_inc(&ran);
	if (test_load(&ran) % 16 == 0) {
		/* Forks, so that workers steal from each other too. */
		for (int i = 0; i < 4; i++)
			tp_future_release(tp_enqueue(churn.pool, trace_test_task, NULL));
	}
	return 0;
}

static void *churn_submitter(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg;

	while (!test_load(&churn.stop)) {
		if (tp_submit(churn.pool, churn_task, NULL) == 0)
			test_inc(&churn.submitted);
		if (test_rand(&rng) % 8 == 0)
			test_jitter(&rng);
		if (test_rand(&rng) % 256 == 0)
			test_sleep_us(500);
	}
	return NULL;
}

struct tracer {
	long rounds;
	uint64_t seed;
	pthread_t thread;
};

static void *churn_tracer(void *arg)
{
	struct tracer *t = arg;
	uint64_t rng = t->seed;

	for (long i = 0; i < t->rounds; i++) {
		char path[256], name[64];
		int rc;

		snprintf(name, sizeof(name), "churn-%ld.json", test_inc(&churn.file_seq));
		path_in_tmp(path, sizeof(path), name);
		rc = tp_pool_trace_start(churn.pool, path);
		if (rc == 0)
			test_inc(&churn.starts_ok);
		else if (rc != EBUSY)
			test_inc(&churn.bad_rc);
		test_jitter(&rng);
		if (test_rand(&rng) % 4 == 0)
			test_sleep_us((long)(test_rand(&rng) % 2000));
		rc = tp_pool_trace_stop(churn.pool);
		if (rc == 0)
			test_inc(&churn.stops_ok);
		else if (rc != ENOENT)
			test_inc(&churn.bad_rc);
	}
	return NULL;
}

static void trace_start_stop_from_several_threads(void **state)
{
	enum {
		SUBMITTERS = 2,
		TRACERS = 3
	};
	pthread_t sub[SUBMITTERS];
	struct tracer tr[TRACERS];
	long rounds = test_scaled(300), files = 0, spans = 0;
	DIR *dir;
	struct dirent *e;

	(void)state;
	memset(&churn, 0, sizeof(churn));
	test_store(&ran, 0);
	churn.pool = named_pool("churn", 3);
	for (int i = 0; i < SUBMITTERS; i++)
		assert_int_equal(
			pthread_create(&sub[i], NULL, churn_submitter, (void *)(uintptr_t)(i + 1)),
			0);
	for (int i = 0; i < TRACERS; i++) {
		tr[i] = (struct tracer){ rounds, (uint64_t)(i + 1) * 1000003u, 0 };
		assert_int_equal(pthread_create(&tr[i].thread, NULL, churn_tracer, &tr[i]), 0);
	}
	for (int i = 0; i < TRACERS; i++)
		pthread_join(tr[i].thread, NULL);
	test_store(&churn.stop, 1);
	for (int i = 0; i < SUBMITTERS; i++)
		pthread_join(sub[i], NULL);
	assert_int_equal(tp_pool_wait_idle(churn.pool, NULL), 0);
	/* Each start was stopped by someone (every round stops once after its start). */
	assert_int_equal(tp_pool_trace_stop(churn.pool), ENOENT);
	tp_pool_destroy(churn.pool);
	assert_int_equal(churn.bad_rc, 0);
	assert_int_equal(churn.starts_ok, churn.stops_ok);

	/* One valid file per successful stop, each with its own events only. */
	dir = opendir(tmpdir);
	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL) {
		char path[512];
		struct doc d;

		if (strncmp(e->d_name, "churn-", 6) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
		files++;
		load_trace_or_fail(path, &d);
		check_lanes(&d, 3);
		assert_int_equal(d.dropped, 0);
		spans += (long)count_events(&d, "X", "task", NULL);
		free(d.ev);
		unlink(path);
	}
	closedir(dir);
	printf("# %ld starts, %ld files, %ld task spans of %ld tasks run\n", churn.starts_ok, files,
	       spans, test_load(&ran));
	assert_int_equal(files, churn.stops_ok);
	/* No task is in two traces. */
	assert_true(spans <= test_load(&ran));
}

/* ---------------------------------------------------------------------------------------------
 * From inside a task while another thread shuts the pool down
 * ------------------------------------------------------------------------------------------ */

struct inside {
	tp_pool *pool;
	bool do_start; /* tp_pool_trace_start instead of tp_pool_trace_stop */
	char path[256];
	long go;   /* atomic: the shutdown has begun */
	long done; /* atomic: the call returned */
	int rc;
};

static int trace_call_task(void *arg)
{
	struct inside *in = arg;

	while (!test_load(&in->go))
		test_sleep_us(100);
	in->rc = in->do_start ? tp_pool_trace_start(in->pool, in->path)
			      : tp_pool_trace_stop(in->pool);
	test_store(&in->done, 1);
	return 0;
}

static void *drain_thread(void *arg)
{
	(void)tp_pool_shutdown(arg, TP_SHUTDOWN_DRAIN);
	return NULL;
}

/* In a child, killed if it hangs: a task calls tp_pool_trace_stop() (or _start()) once a DRAIN
 * shutdown, which waits for that task, has begun. 0 if both return; 1 if the call did not
 * return within 5 s; 2 for a setup failure. */
static int trace_call_in_shutdown_child(void *arg)
{
	struct inside *in = arg;
	pthread_t sd;
	double end;

	in->pool = named_pool_or_null("inside", 1);
	if (in->pool == NULL)
		return 2;
	if (!in->do_start && tp_pool_trace_start(in->pool, in->path) != 0)
		return 2;
	if (tp_submit(in->pool, trace_call_task, in) != 0)
		return 2;
	if (pthread_create(&sd, NULL, drain_thread, in->pool) != 0)
		return 2;
	end = test_now_ms() + 5000;
	while (tp_submit(in->pool, trace_test_task, NULL) == 0)
		if (test_now_ms() > end)
			return 2;
	test_store(&in->go, 1);
	end = test_now_ms() + 5000;
	while (!test_load(&in->done))
		if (test_now_ms() > end)
			return 1;
		else
			test_sleep_us(1000);
	pthread_join(sd, NULL);
	tp_pool_destroy(in->pool);
	return 0;
}

static void trace_calls_from_a_task_during_shutdown(void **state)
{
	static struct inside in;
	int failures = 0;

	(void)state;
	for (int k = 0; k < 2; k++) {
		int rc;

		memset(&in, 0, sizeof(in));
		in.do_start = k == 1;
		path_in_tmp(in.path, sizeof(in.path), k ? "inside-start.json" : "inside-stop.json");
		rc = test_child(trace_call_in_shutdown_child, &in, 20000);
		if (rc != 0) {
			printf("# tp_pool_trace_%s() from a task during a DRAIN shutdown: child "
			       "returned %d (1: the call never returned, -1: killed after 20 s)\n",
			       in.do_start ? "start" : "stop", rc);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(trace_file_has_a_span_per_task),
		cmocka_unit_test(trace_errors),
		cmocka_unit_test(trace_unwritable_path),
		cmocka_unit_test(trace_from_environment),
		cmocka_unit_test(trace_max_events_drops),
		cmocka_unit_test(trace_start_stop_from_several_threads),
		cmocka_unit_test(trace_calls_from_a_task_during_shutdown),
	};

	test_watchdog(170);
	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
