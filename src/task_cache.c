/*
 * task_cache.c - recycling task records; see task_cache.h for the design.
 */
#include <stdlib.h>

#include "task_cache.h"

/* `returned` after the home was killed: pushes fail, the record is freed instead. */
static char home_dead_marker;
#define HOME_DEAD ((void *)&home_dead_marker)

struct tp__home *tp__home_new(void)
{
	struct tp__home *home = aligned_alloc(TP__CACHE_LINE, sizeof(*home));

	if (home == NULL)
		return NULL;
	home->returned = NULL;
	home->outside_lock = 0;
	home->outside_free = NULL;
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

static struct tp_future *record_new(struct tp__home *home)
{
	struct tp_future *f = malloc(sizeof(*f));

	if (f == NULL)
		return NULL;
	f->home = home;
	(void)tp__faa_u64(&home->allocated, 1);
	return f;
}

struct tp_future *tp__record_alloc(struct tp__home *home, struct tp__cache *cache)
{
	struct tp_future *f;

	if (cache != NULL) {
		if (cache->head == NULL) {
			cache->head = take_returned(home);
			cache->count = 0; /* unknown; only bounds how much this list keeps */
		}
		f = cache->head;
		if (f == NULL)
			return record_new(home);
		cache->head = f->next_free;
		if (cache->count > 0)
			cache->count--;
		return f;
	}
	/* seq_cst exchange (acquire): pairs with the release store that unlocks, so the list the
	 * previous holder left is visible. */
	if (tp__fas_u32(&home->outside_lock, 1) != 0)
		return record_new(home);
	f = home->outside_free;
	if (f == NULL)
		f = take_returned(home);
	if (f != NULL)
		home->outside_free = f->next_free;
	/* (accesses to outside_free) before (the unlocking store), release. */
	tp__store_rel_u32(&home->outside_lock, 0);
	return f != NULL ? f : record_new(home);
}

/* Frees a record of a dead home; the last one frees the home. */
static void orphan_free(struct tp__home *home, struct tp_future *f)
{
	free(f);
	if (tp__faa_u64((uint64_t *)&home->orphans, (uint64_t)-1) == 1)
		free(home);
}

void tp__record_free(struct tp_future *f, struct tp__cache *cache)
{
	struct tp__home *home = f->home;
	void *head;

	if (cache != NULL && cache->count < TP__CACHE_MAX) {
		f->next_free = cache->head;
		cache->head = f;
		cache->count++;
		return;
	}
	head = tp__load_rlx_ptr(&home->returned);
	do {
		if (head == HOME_DEAD) {
			orphan_free(home, f);
			return;
		}
		f->next_free = head;
		/* seq_cst CAS (release): publishes the link written just before. */
	} while (!tp__cas_value_ptr(&home->returned, &head, f));
}

static uint64_t free_list(struct tp_future *f)
{
	uint64_t n = 0;

	while (f != NULL) {
		struct tp_future *next = f->next_free;

		free(f);
		f = next;
		n++;
	}
	return n;
}

void tp__home_kill(struct tp__home *home, struct tp__cache *caches, size_t stride, size_t n)
{
	uint64_t freed = 0;
	int64_t held;

	for (size_t i = 0; i < n; i++) {
		struct tp__cache *c = (struct tp__cache *)((char *)caches + i * stride);

		freed += free_list(c->head);
		c->head = NULL;
		c->count = 0;
	}
	/* The exchange makes every later push fail (they free their record as an orphan). */
	freed += free_list(tp__fas_ptr(&home->returned, HOME_DEAD));
	freed += free_list(home->outside_free);
	home->outside_free = NULL;
	held = (int64_t)(tp__load_acq_u64(&home->allocated) - freed);
	/* Late releases may already have counted themselves down (below zero). */
	if ((int64_t)tp__faa_u64((uint64_t *)&home->orphans, (uint64_t)held) + held == 0)
		free(home);
}
