/*
 * task_cache.c - recycling task records; see task_cache.h for the design.
 */
#include <pthread.h>
#include <stdlib.h>

#include "pool.h" /* TP__TLS */
#include "task_cache.h"

/* `returned` after the home was killed: pushes fail, the record is freed instead. */
static char home_dead_marker;
#define HOME_DEAD ((void *)&home_dead_marker)

/* The calling thread's list for records of one home at a time. */
struct local_cache {
	struct tp__home *home;
	struct tp__cache c;
};

static TP__TLS struct local_cache local;
static pthread_key_t local_key;
static pthread_once_t local_once = PTHREAD_ONCE_INIT;

struct tp__home *tp__home_new(void)
{
	struct tp__home *home = aligned_alloc(TP__CACHE_LINE, sizeof(*home));

	if (home == NULL)
		return NULL;
	home->returned = NULL;
	home->chunks = NULL;
	home->pool = NULL;
	home->allocated = 0;
	home->orphans = 0;
	return home;
}

/* Takes the whole shared stack. The exchange is seq_cst (acquire): pairs with the CAS of each
 * push, so the links written before each push are visible. */
static struct tp_future *take_returned(struct tp__home *home)
{
	if (tp__load_rlx_ptr(&home->returned) == NULL)
		return NULL;
	return tp__fas_ptr(&home->returned, NULL);
}

/* Records come in chunks of this many: one malloc (and one counter update) per chunk. */
#define CHUNK_RECORDS 64

struct chunk {
	struct chunk *next; /* the home's list, freed with the home */
	struct tp_future records[CHUNK_RECORDS];
};

/* Frees every chunk and the home: once no record of it is held any more. */
static void home_free(struct tp__home *home)
{
	struct chunk *c = tp__load_acq_ptr(&home->chunks);

	while (c != NULL) {
		struct chunk *next = c->next;

		free(c);
		c = next;
	}
	free(home);
}

/*
 * A chunk of fresh records: returns the first, puts the others on the cache's list. The records
 * are counted as allocated; they are never freed one by one, only with their home.
 */
static struct tp_future *record_new(struct tp__home *home, struct tp__cache *c)
{
	struct chunk *k = malloc(sizeof(*k));
	void *head;

	if (k == NULL)
		return NULL;
	for (size_t i = 0; i < CHUNK_RECORDS; i++)
		k->records[i].home = home;
	for (size_t i = CHUNK_RECORDS - 1; i >= 1; i--) {
		k->records[i].next_free = c->head;
		c->head = &k->records[i];
	}
	c->count += CHUNK_RECORDS - 1;
	(void)tp__faa_u64(&home->allocated, CHUNK_RECORDS);
	head = tp__load_rlx_ptr(&home->chunks);
	do
		k->next = head;
	/* seq_cst CAS (release): publishes the link; the home's last user frees the list. */
	while (!tp__cas_value_ptr(&home->chunks, &head, k));
	return &k->records[0];
}

/* A record of a dead home is dropped; the last one frees the chunks and the home. */
static void orphan_free(struct tp__home *home, struct tp_future *f)
{
	(void)f;
	if (tp__faa_u64((uint64_t *)&home->orphans, (uint64_t)-1) == 1)
		home_free(home);
}

/* Pushes one record on its home's shared stack, or frees it if the home is dead. */
static void return_shared(struct tp_future *f)
{
	struct tp__home *home = f->home;
	void *head = tp__load_rlx_ptr(&home->returned);

	do {
		if (head == HOME_DEAD) {
			orphan_free(home, f);
			return;
		}
		f->next_free = head;
		/* seq_cst CAS (release): publishes the link written just before. */
	} while (!tp__cas_value_ptr(&home->returned, &head, f));
}

/* Hands a private list back to its home. */
static void cache_flush(struct tp__cache *c)
{
	struct tp_future *f = c->head;

	while (f != NULL) {
		struct tp_future *next = f->next_free;

		return_shared(f);
		f = next;
	}
	c->head = NULL;
	c->count = 0;
}

static void local_at_exit(void *arg)
{
	(void)arg;
	cache_flush(&local.c);
	local.home = NULL;
}

static void local_key_create(void)
{
	(void)pthread_key_create(&local_key, local_at_exit);
}

/* The calling thread's list, bound to `home` (handing back what it held for another home). */
static struct tp__cache *local_for(struct tp__home *home)
{
	if (local.home != home) {
		if (local.home == NULL) {
			/* First use on this thread: have the list handed back at thread exit. */
			(void)pthread_once(&local_once, local_key_create);
			(void)pthread_setspecific(local_key, &local);
		}
		cache_flush(&local.c);
		local.home = home;
	}
	return &local.c;
}

struct tp_future *tp__record_alloc(struct tp__home *home, struct tp__cache *cache)
{
	struct tp__cache *c = cache != NULL ? cache : local_for(home);
	struct tp_future *f;

	if (c->head == NULL) {
		c->head = take_returned(home);
		c->count = 0; /* unknown; the count only bounds how much a list keeps */
	}
	f = c->head;
	if (f == NULL)
		return record_new(home, c);
	c->head = f->next_free;
	if (c->count > 0)
		c->count--;
	/* The next record was probably last written by another thread: ask for its line in
	 * exclusive state now, while this one is filled in and queued. */
	if (c->head != NULL)
		__builtin_prefetch(c->head, 1);
	return f;
}

void tp__record_free(struct tp_future *f, struct tp__cache *cache)
{
	struct tp__cache *c = cache;

	if (c == NULL && local.home == f->home)
		c = &local.c;
	if (c != NULL && c->count < TP__CACHE_MAX) {
		f->next_free = c->head;
		c->head = f;
		c->count++;
		return;
	}
	return_shared(f);
}

/* Counts a list of records of a dying home (their memory goes with the chunks). */
static uint64_t count_list(const struct tp_future *f)
{
	uint64_t n = 0;

	for (; f != NULL; f = f->next_free)
		n++;
	return n;
}

void tp__home_kill(struct tp__home *home, struct tp__cache *caches, size_t stride, size_t n)
{
	uint64_t freed = 0;
	int64_t held;

	for (size_t i = 0; i < n; i++) {
		struct tp__cache *c = (struct tp__cache *)((char *)caches + i * stride);

		freed += count_list(c->head);
		c->head = NULL;
		c->count = 0;
	}
	if (local.home == home) {
		freed += count_list(local.c.head);
		local.c.head = NULL;
		local.c.count = 0;
		local.home = NULL;
	}
	/* The exchange makes every later push fail (they free their record as an orphan). */
	freed += count_list(tp__fas_ptr(&home->returned, HOME_DEAD));
	held = (int64_t)(tp__load_acq_u64(&home->allocated) - freed);
	/* Late releases may already have counted themselves down (below zero). */
	if ((int64_t)tp__faa_u64((uint64_t *)&home->orphans, (uint64_t)held) + held == 0)
		home_free(home);
}
