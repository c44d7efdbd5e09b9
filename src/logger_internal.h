/*
 * logger_internal.h - what the rest of the library needs from logger.c beyond the public API.
 */
#ifndef TP_LOGGER_INTERNAL_H
#define TP_LOGGER_INTERNAL_H

#include <stdint.h>

#include "thread_pool.h"

/* The word tp_logger_enabled() loads (a tp_log_level), for checks inlined on hot paths. */
const uint32_t *tp__logger_threshold_word(const tp_logger *logger);

#endif /* TP_LOGGER_INTERNAL_H */
