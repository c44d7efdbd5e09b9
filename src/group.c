/*
 * group.c - task groups: futures chained through their records, waited for together.
 *
 * The group's owner links each record it submits (record->group_next). A task that fails stores
 * its code into the group by a CAS from 0 before it publishes its final status, so the first
 * failure in time wins and the waiter, who waits for every status, sees it.
 */
#include <errno.h>

#include "pool.h"

int tp_group_init(tp_group *group, tp_pool *pool)
{
	if (group == NULL || pool == NULL)
		return EINVAL;
	group->pool_ = pool;
	group->head_ = NULL;
	group->error_ = 0;
	group->cancelled_ = 0;
	return 0;
}

int tp_group_spawn_ex(tp_group *group, tp_task_fn fn, void *arg, tp_drop_fn drop)
{
	struct tp_future *f;
	int err;

	if (group == NULL || group->pool_ == NULL || fn == NULL)
		return EINVAL;
	if (group->cancelled_)
		return ECANCELED;
	err = tp__submit(group->pool_, fn, &arg, 1, drop, group, &f);
	if (err != 0)
		return err;
	f->group_next = group->head_;
	group->head_ = f;
	return 0;
}

int tp_group_spawn(tp_group *group, tp_task_fn fn, void *arg)
{
	return tp_group_spawn_ex(group, fn, arg, NULL);
}

void tp_group_cancel(tp_group *group)
{
	if (group == NULL)
		return;
	group->cancelled_ = 1;
	for (struct tp_future *f = group->head_; f != NULL; f = f->group_next)
		(void)tp__future_cancel(f, true);
}

int tp_group_wait(tp_group *group)
{
	struct tp_future *f;
	int error;

	if (group == NULL)
		return EINVAL;
	f = group->head_;
	while (f != NULL) {
		struct tp_future *next = f->group_next;

		(void)tp_future_wait(f);
		tp_future_release(f);
		f = next;
	}
	/* acquire: the failing task's CAS came before its final status, which we waited for. */
	error = (int)tp__load_acq_u32((const uint32_t *)&group->error_);
	if (error == 0 && group->cancelled_)
		error = ECANCELED;
	group->head_ = NULL;
	group->error_ = 0;
	group->cancelled_ = 0;
	return error;
}
