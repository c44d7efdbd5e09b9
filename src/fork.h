/*
 * fork.h - the registry of live pools and the library's fork() handlers (fork.c).
 */
#ifndef TP_FORK_H
#define TP_FORK_H

#include "thread_pool.h"

/* Registers the pthread_atfork() handlers, once per process: before the first pool or logger. */
void tp__fork_handlers_init(void);

/* Adds a pool to the registry (after its workers started) / removes it (before it is freed). */
void tp__fork_track(tp_pool *pool);
void tp__fork_untrack(tp_pool *pool);

#endif /* TP_FORK_H */
