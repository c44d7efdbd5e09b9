/*
 * logger_internal.h - what the rest of the library needs from logger.c beyond the public API.
 */
#ifndef TP_LOGGER_INTERNAL_H
#define TP_LOGGER_INTERNAL_H

#include <stdint.h>

#include "thread_pool.h"

/* The word tp_logger_enabled() loads (a tp_log_level), for checks inlined on hot paths. */
const uint32_t *tp__logger_threshold_word(const tp_logger *logger);

/*
 * fork() handlers for every live logger (the singleton and those of tp_logger_create()), for
 * pthread_atfork(prepare, parent, child). logger.c registers nothing itself: the library's one
 * handler set (fork.c) calls these, and logger.c has it registered (tp__fork_handlers_init())
 * before the first logger exists.
 *
 * prepare: takes the registry of loggers, then every logger's mutex in registry order, except
 *   those this thread is emitting through (a sink that forks: it holds them already). It never
 *   blocks on a logger while holding another lock: when one is busy, it lets go of all of them
 *   and tries again shortly, so a thread that holds a logger and needs another lock (a sink
 *   logging through a second logger, or creating one) always gets it. So prepare waits for the
 *   lines being handed over to finish; it waits forever only if such a line never finishes (a
 *   sink that waits for a thread that is forking).
 * parent: releases what prepare took, in reverse order.
 * child: the same in the child, whose only thread is the one that forked and now owns those
 *   locks; every logger is usable at once. A logger this thread was emitting through stays held
 *   until its sink returns, as in the parent, and lines logged through it meanwhile are dropped.
 */
void tp__logger_atfork_prepare(void);
void tp__logger_atfork_parent(void);
void tp__logger_atfork_child(void);

#endif /* TP_LOGGER_INTERNAL_H */
