/*
 * trace.c - starting and stopping a trace, and writing it as Chrome Trace Event JSON.
 * What is recorded, and the handshake that lets the stop take the workers' lanes, are described
 * in trace.h.
 *
 * The file: one JSON object. traceEvents holds the process's name (the pool's), one thread name
 * per worker (tid = worker index), complete events ("ph":"X") for tasks (cat "task"), stolen
 * frames ("frame") and parks ("park", named "idle"), and flow events ("s" on the source lane,
 * "f" on the target's) for steals (victim to thief) and wake-ups (waker to woken), both recorded
 * by their target (the thief, the woken worker, at the moment it wakes). Times are
 * microseconds since the start. otherData names the pool and says how many events were dropped.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "symbol.h"

/* Events one worker records per trace unless TP_TRACE_MAX_EVENTS says otherwise. */
#define DEFAULT_MAX_EVENTS (UINT64_C(4) << 20)

void tp__trace_record(struct tp__worker *w, enum tp__trace_kind kind, const void *fn, uint64_t t0,
		      uint32_t peer)
{
	struct tp__trace_lane *lane = &w->lane;
	struct tp__trace *t;
	struct tp__trace_event *ev;
	uint64_t t1 = tp__trace_now();

	/* The handshake of trace.h: (busy) before (the load of the trace), store-load. */
	(void)tp__fas_u32(&lane->busy, 1);
	tp__fence_sc();
	t = tp__load_sc_ptr(TP__PTR(&w->pool->trace));
	if (t == NULL)
		goto out;
	if (lane->events >= t->max_events)
		goto drop;
	if (lane->tail == NULL || lane->tail->n == TP__TRACE_CHUNK) {
		struct tp__trace_chunk *c = malloc(sizeof(*c));

		if (c == NULL)
			goto drop;
		c->next = NULL;
		c->n = 0;
		if (lane->tail != NULL)
			lane->tail->next = c;
		else
			lane->head = c;
		lane->tail = c;
	}
	ev = &lane->tail->ev[lane->tail->n++];
	ev->t0 = t0;
	ev->t1 = t1;
	ev->fn = fn;
	ev->kind = kind;
	ev->peer = peer;
	lane->events++;
	goto out;
drop:
	lane->dropped++;
out:
	/* release: the append happens before a stopper that reads 0 takes the lane. */
	tp__store_rel_u32(&lane->busy, 0);
}

static void lane_free(struct tp__trace_lane *lane)
{
	struct tp__trace_chunk *c = lane->head;

	while (c != NULL) {
		struct tp__trace_chunk *next = c->next;

		free(c);
		c = next;
	}
	lane->head = lane->tail = NULL;
	lane->events = lane->dropped = 0;
}

static uint64_t env_max_events(void)
{
	const char *s = getenv("TP_TRACE_MAX_EVENTS");
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0')
		return DEFAULT_MAX_EVENTS;
	/* Decimal digits only (strtoull alone would take " -5" as a huge count). */
	if (strspn(s, "0123456789") != strlen(s))
		return DEFAULT_MAX_EVENTS;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return DEFAULT_MAX_EVENTS;
	return v;
}

int tp_pool_trace_start(tp_pool *pool, const char *path)
{
	struct tp__trace *t;
	int err = 0;

	if (pool == NULL || path == NULL || *path == '\0')
		return EINVAL;
	t = malloc(sizeof(*t));
	if (t == NULL)
		return ENOMEM;
	t->path = strdup(path);
	t->max_events = env_max_events();
	if (t->path == NULL) {
		free(t);
		return ENOMEM;
	}
	pthread_mutex_lock(&pool->trace_lock);
	/* Once the gate is closed the workers are on their way out: nothing left to trace. */
	if (tp__load_acq_u64(&pool->gate) & TP__GATE_CLOSED)
		err = ESHUTDOWN;
	else if (pool->trace_owned != NULL)
		err = EBUSY;
	if (err == 0) {
		pool->trace_owned = t;
		t->start_ns = tp__trace_now();
		/* release: the lanes, emptied by the last stop, before the trace a worker sees. */
		tp__store_rel_ptr(TP__PTR(&pool->trace), t);
	}
	pthread_mutex_unlock(&pool->trace_lock);
	if (err != 0) {
		free(t->path);
		free(t);
	}
	return err;
}

/* ---- writing the file ---- */

/* Function names, looked up once per function of a trace: open addressing on the address. */
struct names {
	size_t cap;
	const void **keys;
	char **vals;
};

static const char *name_of(struct names *nm, const void *fn)
{
	size_t i = ((uintptr_t)fn >> 4) * UINT64_C(0x9E3779B97F4A7C15) % nm->cap;
	char buf[256];

	while (nm->keys[i] != NULL && nm->keys[i] != fn)
		i = (i + 1) % nm->cap;
	if (nm->keys[i] == NULL) {
		tp__symbol_name(fn, buf, sizeof(buf));
		nm->vals[i] = strdup(buf);
		if (nm->vals[i] == NULL)
			return "?";
		nm->keys[i] = fn;
	}
	return nm->vals[i];
}

/* A JSON string; the names we write are symbols, but a pool name is the user's. */
static void put_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void put_time(FILE *out, const char *key, uint64_t ns)
{
	fprintf(out, ",\"%s\":%" PRIu64 ".%03u", key, ns / 1000, (unsigned)(ns % 1000));
}

static uint64_t since(uint64_t t, uint64_t start)
{
	return t > start ? t - start : 0;
}

static void put_event(FILE *out, struct names *nm, const struct tp__trace_event *ev, size_t tid,
		      uint64_t start, uint64_t *flow_id)
{
	static const char *const span_cat[] = {
		[TP__EV_TASK] = "task", [TP__EV_FRAME] = "frame", [TP__EV_PARK] = "park"
	};

	switch (ev->kind) {
	case TP__EV_TASK:
	case TP__EV_FRAME:
	case TP__EV_PARK:
		fputs(",\n{\"name\":", out);
		put_string(out, ev->kind == TP__EV_PARK ? "idle" : name_of(nm, ev->fn));
		fprintf(out, ",\"cat\":\"%s\",\"ph\":\"X\"", span_cat[ev->kind]);
		put_time(out, "ts", since(ev->t0, start));
		put_time(out, "dur", ev->t1 > ev->t0 ? ev->t1 - ev->t0 : 0);
		fprintf(out, ",\"pid\":1,\"tid\":%zu}", tid);
		break;
	case TP__EV_STEAL:
	case TP__EV_WAKE: {
		const char *what = ev->kind == TP__EV_STEAL ? "steal" : "wake";
		/* Both go from the peer (the victim, the waker) to the worker that recorded it. */
		size_t from = ev->peer;
		size_t to = tid;
		uint64_t id = ++*flow_id;

		fprintf(out, ",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"s\",\"id\":%" PRIu64,
			what, what, id);
		put_time(out, "ts", since(ev->t0, start));
		fprintf(out, ",\"pid\":1,\"tid\":%zu}", from);
		fprintf(out,
			",\n{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%" PRIu64,
			what, what, id);
		put_time(out, "ts", since(ev->t0, start));
		fprintf(out, ",\"pid\":1,\"tid\":%zu}", to);
		break;
	}
	default:
		break;
	}
}

/* Writes the lanes (already taken from the workers) to t->path; 0 or an errno. */
static int write_file(const tp_pool *pool, const struct tp__trace *t, struct tp__trace_lane *lanes)
{
	struct names nm = { 0 };
	uint64_t dropped = 0, events = 0, flow_id = 0;
	FILE *out;
	int err = 0;

	for (size_t i = 0; i < pool->n; i++) {
		dropped += lanes[i].dropped;
		events += lanes[i].events;
	}
	/* At most one name per event: a table twice that size never fills. */
	nm.cap = 2 * (size_t)events + 16;
	nm.keys = calloc(nm.cap, sizeof(nm.keys[0]));
	nm.vals = calloc(nm.cap, sizeof(nm.vals[0]));
	/* The file is opened (and an old one truncated) only once nothing else can fail first. */
	out = nm.keys != NULL && nm.vals != NULL ? fopen(t->path, "w") : NULL;
	if (out == NULL) {
		err = nm.keys == NULL || nm.vals == NULL ? ENOMEM : errno;
		goto done;
	}
	fputs("{\"traceEvents\":[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,"
	      "\"args\":{\"name\":",
	      out);
	put_string(out, pool->name);
	fputs("}}", out);
	for (size_t i = 0; i < pool->n; i++) {
		char thread[64];

		snprintf(thread, sizeof(thread), "%s-%zu", pool->name, i);
		fprintf(out,
			",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%zu,"
			"\"args\":{\"name\":",
			i);
		put_string(out, thread);
		fputs("}}", out);
	}
	for (size_t i = 0; i < pool->n; i++)
		for (struct tp__trace_chunk *c = lanes[i].head; c != NULL; c = c->next)
			for (size_t k = 0; k < c->n; k++)
				put_event(out, &nm, &c->ev[k], i, t->start_ns, &flow_id);
	fputs("\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"pool\":", out);
	put_string(out, pool->name);
	fprintf(out,
		",\"workers\":%zu,\"events\":%" PRIu64 ",\"dropped_events\":%" PRIu64
		",\"version\":\"%d.%d.%d\",\"clock\":\"CLOCK_MONOTONIC\"}}\n",
		pool->n, events, dropped, TP_VERSION_MAJOR, TP_VERSION_MINOR, TP_VERSION_PATCH);
	if (ferror(out))
		err = EIO;
done:
	if (out != NULL && fclose(out) != 0 && err == 0)
		err = errno != 0 ? errno : EIO;
	if (nm.vals != NULL)
		for (size_t i = 0; i < nm.cap; i++)
			free(nm.vals[i]);
	free(nm.keys);
	free(nm.vals);
	return err;
}

/*
 * Detaches the running trace from the workers (the handshake of trace.h) and takes their lanes
 * into *lanes (NULL if that allocation failed: then the lanes are freed). Under trace_lock, so
 * that the lanes are empty again before the next start publishes its trace.
 */
static struct tp__trace *take_trace(tp_pool *pool, struct tp__trace_lane **lanes)
{
	struct tp__trace *t = pool->trace_owned;

	*lanes = NULL;
	if (t == NULL)
		return NULL;
	pool->trace_owned = NULL;
	(void)tp__fas_ptr(TP__PTR(&pool->trace), NULL);
	/* (trace = NULL) before (the loads of busy), store-load: pairs with tp__trace_record. */
	tp__fence_sc();
	for (size_t i = 0; i < pool->n; i++)
		while (tp__load_sc_u32(&pool->workers[i].lane.busy) != 0)
			sched_yield();
	/* A pool has at least one worker. */
	*lanes = calloc(pool->n > 0 ? pool->n : 1, sizeof(**lanes));
	for (size_t i = 0; i < pool->n; i++) {
		struct tp__trace_lane *lane = &pool->workers[i].lane;

		if (*lanes == NULL) {
			lane_free(lane);
			continue;
		}
		/* Field by field: `busy` stays, and workers may still flip it (seeing no trace). */
		(*lanes)[i].head = lane->head;
		(*lanes)[i].tail = lane->tail;
		(*lanes)[i].events = lane->events;
		(*lanes)[i].dropped = lane->dropped;
		lane->head = lane->tail = NULL;
		lane->events = lane->dropped = 0;
	}
	return t;
}

/* Writes the lanes taken from the workers; frees them and the trace. */
static int finish(const tp_pool *pool, struct tp__trace *t, struct tp__trace_lane *lanes)
{
	int err = lanes != NULL ? write_file(pool, t, lanes) : ENOMEM;

	for (size_t i = 0; lanes != NULL && i < pool->n; i++)
		lane_free(&lanes[i]);
	free(lanes);
	free(t->path);
	free(t);
	return err;
}

int tp_pool_trace_stop(tp_pool *pool)
{
	struct tp__trace_lane *lanes;
	struct tp__trace *t;

	if (pool == NULL)
		return EINVAL;
	pthread_mutex_lock(&pool->trace_lock);
	t = take_trace(pool, &lanes);
	pthread_mutex_unlock(&pool->trace_lock);
	if (t == NULL)
		return ENOENT;
	return finish(pool, t, lanes);
}

void tp__trace_finish(tp_pool *pool)
{
	struct tp__trace_lane *lanes;
	struct tp__trace *t;
	char path[256];
	int err;

	pthread_mutex_lock(&pool->trace_lock);
	t = take_trace(pool, &lanes);
	pthread_mutex_unlock(&pool->trace_lock);
	if (t == NULL)
		return;
	snprintf(path, sizeof(path), "%s", t->path);
	err = finish(pool, t, lanes);
	if (err != 0)
		tp_log(pool->logger, TP_LOG_ERROR, "pool %s: writing the trace to %s failed: %s",
		       pool->name, path, strerror(err));
	else
		tp_log(pool->logger, TP_LOG_INFO, "pool %s: trace written to %s", pool->name, path);
}

void tp__trace_forget(tp_pool *pool)
{
	struct tp__trace *t = pool->trace_owned;

	pool->trace_owned = NULL;
	tp__store_rlx_ptr(TP__PTR(&pool->trace), NULL);
	for (size_t i = 0; pool->workers != NULL && i < pool->n; i++) {
		tp__store_rlx_u32(&pool->workers[i].lane.busy, 0);
		lane_free(&pool->workers[i].lane);
	}
	if (t != NULL) {
		free(t->path);
		free(t);
	}
}
