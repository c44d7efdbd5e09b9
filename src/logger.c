/*
 * logger.c - loggers with levels, and the process-wide one (the reference design's
 * Logger.get_instance() and LogLevel).
 *
 * Overview
 *   A logger is a threshold, a destination (stderr, a FILE * or a sink callback) and a mutex.
 *   tp_logger_get_instance() returns a logger in static storage, set up once (pthread_once) with
 *   the threshold named by TP_LOG_LEVEL; tp_logger_create() makes private ones.
 *
 * Guarantees
 *   - A filtered line costs one relaxed load of the threshold: no lock, no clock, no formatting.
 *     Through TP_LOG() its arguments are not even evaluated.
 *   - An emitted line is whole. It is formatted into a stack buffer of TP__LOG_LINE_MAX bytes
 *     (a longer line is cut at a UTF-8 boundary and ends in "...\n"), then handed over once: one
 *     write(2) to stderr (repeated only for a partial write or EINTR), one fwrite + fflush to a
 *     FILE *, or one call of the sink.
 *   - Lines of one logger never interleave and its sink calls never overlap: handing a line over
 *     holds the logger's mutex. Once tp_logger_set_sink() or tp_logger_set_file() has returned
 *     (they take the same mutex), no line is being handed to the old destination and none will be,
 *     so the caller may close the old file or free the old sink's state.
 *   - Logging never fails its caller and leaves errno as it was.
 *
 * Invariants
 *   - `threshold` is one of the five tp_log_level values, except in the singleton before
 *     its set-up, where it is TP__LOG_UNSET.
 *   - `dest`, `file`, `sink` and `user` are read and written only with `lock` held.
 *
 * Which operations may run at the same time, on one logger:
 *
 *   operation                       | alongside                  | through
 *   --------------------------------+----------------------------+------------------------------
 *   enabled, get_level, set_level,  | anything but destroy       | relaxed atomic load / store
 *   the filtered path of tp_log*    |                            |
 *   emitting a line, set_sink,      | each other, one at a time  | `lock`
 *   set_file                        |                            |
 *   destroy                         | nothing                    | the caller
 *
 * Implementation notes
 *   - The threshold is relaxed: it guards no other data, so it needs no ordering, only
 *     atomicity; coherence alone makes a thread see its own set_level() at once, and another
 *     thread's once something (a mutex, a join) orders the two.
 *   - The singleton's mutex and destination have static initialisers, so only its threshold
 *     depends on the set-up. tp_log(NULL, ...) reads that threshold directly: it pays for
 *     pthread_once only while the threshold is still TP__LOG_UNSET.
 *   - A sink that logs through a logger already emitting on this thread (its own, or one it is
 *     nested in) would deadlock on the mutex: such lines are dropped. A per-thread chain of the
 *     loggers this thread is emitting through detects that.
 *   - Cancellation is disabled while the mutex is held (write, fflush and a sink may be
 *     cancellation points), so a cancelled thread cannot leave the logger locked.
 *   - The threshold, the one shared word here, goes through atomics.h like every shared word
 *     of the library (relaxed loads and stores: ck_pr, or __atomic builtins under TSan).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "thread_pool.h"
#include "atomics.h"
#include "logger_internal.h"

/* Longest line, '\n' included, plus its terminating NUL. */
#define TP__LOG_LINE_MAX 1024
/* Room for text before the '\n' and the NUL. */
#define TP__LOG_TEXT_MAX (TP__LOG_LINE_MAX - 2)
/* The singleton's threshold before it has been read from the environment. */
#define TP__LOG_UNSET	 0

enum tp__log_dest {
	TP__LOG_TO_STDERR = 0,
	TP__LOG_TO_FILE,
	TP__LOG_TO_SINK
};

struct tp_logger {
	uint32_t threshold;   /* a tp_log_level; only through atomics.h */
	pthread_mutex_t lock; /* held while a line is handed over; guards the fields below */
	enum tp__log_dest dest;
	FILE *file;
	tp_log_sink_fn sink;
	void *user;
};

static struct tp_logger tp__log_singleton = {
	.threshold = TP__LOG_UNSET,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dest = TP__LOG_TO_STDERR,
};
static pthread_once_t tp__log_singleton_once = PTHREAD_ONCE_INIT;

/* The loggers this thread is handing a line to, innermost first (a chain of stack frames). */
struct tp__log_frame {
	const struct tp_logger *logger;
	const struct tp__log_frame *outer;
};
static _Thread_local const struct tp__log_frame *tp__log_emitting;

static bool tp__log_level_valid(int level)
{
	return level == TP_LOG_DEBUG || level == TP_LOG_INFO || level == TP_LOG_WARNING ||
	       level == TP_LOG_ERROR || level == TP_LOG_OFF;
}

/* Compared as int, so that a negative value cast to tp_log_level stays below every threshold. */
static bool tp__log_passes(int level, int threshold)
{
	return threshold != TP_LOG_OFF && level >= threshold;
}

const char *tp_log_level_name(tp_log_level level)
{
	switch ((int)level) {
	case TP_LOG_DEBUG:
		return "DEBUG";
	case TP_LOG_INFO:
		return "INFO";
	case TP_LOG_WARNING:
		return "WARNING";
	case TP_LOG_ERROR:
		return "ERROR";
	case TP_LOG_OFF:
		return "OFF";
	default:
		return "?";
	}
}

int tp_log_level_parse(const char *text, tp_log_level *out)
{
	static const struct {
		const char *name;
		const char *number;
		tp_log_level level;
	} levels[] = {
		{ "debug", "10", TP_LOG_DEBUG },     { "info", "20", TP_LOG_INFO },
		{ "warning", "30", TP_LOG_WARNING }, { "error", "40", TP_LOG_ERROR },
		{ "off", "100", TP_LOG_OFF },
	};

	if (text == NULL || out == NULL)
		return EINVAL;
	/* Exact text only: no spaces, signs or leading zeros, so a typo never parses. */
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strcasecmp(text, levels[i].name) == 0 || strcmp(text, levels[i].number) == 0) {
			*out = levels[i].level;
			return 0;
		}
	}
	return EINVAL;
}

static void tp__log_singleton_init(void)
{
	tp_log_level level;

	if (tp_log_level_parse(getenv("TP_LOG_LEVEL"), &level) != 0)
		level = TP_LOG_WARNING;
	/* pthread_once orders this store before every return of tp_logger_get_instance(). */
	tp__store_rlx_u32(&tp__log_singleton.threshold, (uint32_t)level);
}

tp_logger *tp_logger_get_instance(void)
{
	(void)pthread_once(&tp__log_singleton_once, tp__log_singleton_init);
	return &tp__log_singleton;
}

tp_logger *tp_logger_create(tp_log_level level)
{
	struct tp_logger *logger;
	int err;

	if (!tp__log_level_valid((int)level)) {
		errno = EINVAL;
		return NULL;
	}
	logger = calloc(1, sizeof(*logger));
	if (logger == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	err = pthread_mutex_init(&logger->lock, NULL);
	if (err != 0) {
		free(logger);
		errno = err;
		return NULL;
	}
	logger->threshold = (uint32_t)level;
	logger->dest = TP__LOG_TO_STDERR;
	return logger;
}

void tp_logger_destroy(tp_logger *logger)
{
	if (logger == NULL || logger == &tp__log_singleton)
		return;
	(void)pthread_mutex_destroy(&logger->lock);
	free(logger);
}

int tp_logger_set_level(tp_logger *logger, tp_log_level level)
{
	if (logger == NULL || !tp__log_level_valid((int)level))
		return EINVAL;
	tp__store_rlx_u32(&logger->threshold, (uint32_t)level);
	return 0;
}

tp_log_level tp_logger_get_level(const tp_logger *logger)
{
	if (logger == NULL)
		return TP_LOG_OFF;
	return (tp_log_level)(int)tp__load_rlx_u32(&logger->threshold);
}

const uint32_t *tp__logger_threshold_word(const tp_logger *logger)
{
	return &logger->threshold;
}

bool tp_logger_enabled(const tp_logger *logger, tp_log_level level)
{
	if (logger == NULL)
		return false;
	return tp__log_passes((int)level, (int)tp__load_rlx_u32(&logger->threshold));
}

static void tp__log_set_dest(struct tp_logger *logger, enum tp__log_dest dest, FILE *file,
			     tp_log_sink_fn sink, void *user)
{
	(void)pthread_mutex_lock(&logger->lock);
	logger->dest = dest;
	logger->file = file;
	logger->sink = sink;
	logger->user = user;
	(void)pthread_mutex_unlock(&logger->lock);
}

int tp_logger_set_sink(tp_logger *logger, tp_log_sink_fn sink, void *user)
{
	if (logger == NULL)
		return EINVAL;
	if (sink == NULL)
		tp__log_set_dest(logger, TP__LOG_TO_STDERR, NULL, NULL, NULL);
	else
		tp__log_set_dest(logger, TP__LOG_TO_SINK, NULL, sink, user);
	return 0;
}

int tp_logger_set_file(tp_logger *logger, FILE *file)
{
	if (logger == NULL)
		return EINVAL;
	tp__log_set_dest(logger, file != NULL ? TP__LOG_TO_FILE : TP__LOG_TO_STDERR, file, NULL,
			 NULL);
	return 0;
}

/* A line being built: text in buf[0, len), at most TP__LOG_TEXT_MAX bytes of it. */
struct tp__log_line {
	size_t len;
	bool truncated;
	char buf[TP__LOG_LINE_MAX];
};

static void tp__log_vappend(struct tp__log_line *l, const char *fmt, va_list ap) TP_PRINTF(2, 0);

static void tp__log_vappend(struct tp__log_line *l, const char *fmt, va_list ap)
{
	size_t room = TP__LOG_TEXT_MAX - l->len;
	int n;

	if (l->truncated)
		return;
	n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
	if (n < 0) {
		/* An encoding error: drop this piece, keep the line. */
		l->buf[l->len] = '\0';
	} else if ((size_t)n > room) {
		l->len = TP__LOG_TEXT_MAX;
		l->truncated = true;
	} else {
		l->len += (size_t)n;
	}
}

static void tp__log_append(struct tp__log_line *l, const char *fmt, ...) TP_PRINTF(2, 3);

static void tp__log_append(struct tp__log_line *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tp__log_vappend(l, fmt, ap);
	va_end(ap);
}

/* Marks a cut with "...", not splitting a UTF-8 sequence, and ends the line with "\n". */
static void tp__log_finish(struct tp__log_line *l)
{
	if (l->truncated) {
		size_t cut = TP__LOG_TEXT_MAX - 3;

		/* buf[cut] is the first byte dropped: step back while it continues a sequence. */
		for (int i = 0; i < 3 && ((unsigned char)l->buf[cut] & 0xc0) == 0x80; i++)
			cut--;
		memcpy(l->buf + cut, "...", 3);
		l->len = cut + 3;
	}
	l->buf[l->len++] = '\n';
	l->buf[l->len] = '\0';
}

static void tp__log_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere to report it */
		}
		buf += n;
		len -= (size_t)n;
	}
}

static bool tp__log_is_emitting(const struct tp_logger *logger)
{
	for (const struct tp__log_frame *f = tp__log_emitting; f != NULL; f = f->outer) {
		if (f->logger == logger)
			return true;
	}
	return false;
}

static void tp__log_emit(struct tp_logger *logger, tp_log_level level, const struct tp__log_line *l)
{
	struct tp__log_frame frame = { .logger = logger, .outer = tp__log_emitting };
	int cancel_state;

	if (tp__log_is_emitting(logger))
		return; /* a sink logging through a logger it is called by: would deadlock */
	(void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	(void)pthread_mutex_lock(&logger->lock);
	tp__log_emitting = &frame;
	switch (logger->dest) {
	case TP__LOG_TO_SINK:
		logger->sink(logger->user, level, l->buf, l->len);
		break;
	case TP__LOG_TO_FILE:
		(void)fwrite(l->buf, 1, l->len, logger->file);
		(void)fflush(logger->file);
		break;
	case TP__LOG_TO_STDERR:
	default:
		tp__log_write_all(STDERR_FILENO, l->buf, l->len);
		break;
	}
	tp__log_emitting = frame.outer;
	(void)pthread_mutex_unlock(&logger->lock);
	(void)pthread_setcancelstate(cancel_state, NULL);
}

static const char *tp__log_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Formats and hands over one line; out of line to keep the filtered path short. */
static void tp__log_vemit(struct tp_logger *lg, tp_log_level level, const char *file, int line,
			  const char *func, const char *fmt, va_list ap)
	__attribute__((noinline, cold)) TP_PRINTF(6, 0);

static void tp__log_vemit(struct tp_logger *lg, tp_log_level level, const char *file, int line,
			  const char *func, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	struct tp__log_line l;
	struct timespec ts;
	struct tm tm;

	l.len = 0;
	l.truncated = false;
	(void)clock_gettime(CLOCK_REALTIME, &ts);
	if (gmtime_r(&ts.tv_sec, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	tp__log_append(&l, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s [tid %ld] ", tm.tm_year + 1900,
		       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       (long)(ts.tv_nsec / 1000), tp_log_level_name(level), (long)gettid());
	if (file != NULL)
		tp__log_append(&l, "%s:%d ", tp__log_basename(file), line);
	if (func != NULL)
		tp__log_append(&l, "%s(): ", func);
	errno = saved_errno; /* as the caller left it, for glibc's %m */
	if (fmt != NULL)
		tp__log_vappend(&l, fmt, ap);
	else
		tp__log_append(&l, "(null)");
	tp__log_finish(&l);
	tp__log_emit(lg, level, &l);
	errno = saved_errno;
}

/* tp_log_atv() on the singleton before its set-up: the one path that needs pthread_once. */
static void tp__log_vemit_first(tp_log_level level, const char *file, int line, const char *func,
				const char *fmt, va_list ap) TP_PRINTF(5, 0)
	__attribute__((noinline, cold));

static void tp__log_vemit_first(tp_log_level level, const char *file, int line, const char *func,
				const char *fmt, va_list ap)
{
	struct tp_logger *lg = tp_logger_get_instance();

	if (tp__log_passes((int)level, (int)tp__load_rlx_u32(&lg->threshold)))
		tp__log_vemit(lg, level, file, line, func, fmt, ap);
}

/* The body of tp_log_atv(), shared with tp_log() and tp_log_at() without a call through the PLT. */
static inline void tp__log_vlog(tp_logger *logger, tp_log_level level, const char *file, int line,
				const char *func, const char *fmt, va_list ap) TP_PRINTF(6, 0);

static inline void tp__log_vlog(tp_logger *logger, tp_log_level level, const char *file, int line,
				const char *func, const char *fmt, va_list ap)
{
	struct tp_logger *lg = logger != NULL ? logger : &tp__log_singleton;
	int threshold = (int)tp__load_rlx_u32(&lg->threshold);

	if (threshold == TP__LOG_UNSET)
		tp__log_vemit_first(level, file, line, func, fmt, ap);
	else if (tp__log_passes((int)level, threshold))
		tp__log_vemit(lg, level, file, line, func, fmt, ap);
}

/* The filter of tp__log_vlog() alone, so that the variadic forms skip va_start when filtered. */
static inline bool tp__log_may_pass(const tp_logger *logger, tp_log_level level)
{
	const struct tp_logger *lg = logger != NULL ? logger : &tp__log_singleton;
	int threshold = (int)tp__load_rlx_u32(&lg->threshold);

	return threshold == TP__LOG_UNSET || tp__log_passes((int)level, threshold);
}

void tp_log_atv(tp_logger *logger, tp_log_level level, const char *file, int line, const char *func,
		const char *fmt, va_list ap)
{
	tp__log_vlog(logger, level, file, line, func, fmt, ap);
}

void tp_log_at(tp_logger *logger, tp_log_level level, const char *file, int line, const char *func,
	       const char *fmt, ...)
{
	va_list ap;

	if (!tp__log_may_pass(logger, level))
		return;
	va_start(ap, fmt);
	tp__log_vlog(logger, level, file, line, func, fmt, ap);
	va_end(ap);
}

void tp_log(tp_logger *logger, tp_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!tp__log_may_pass(logger, level))
		return;
	va_start(ap, fmt);
	tp__log_vlog(logger, level, NULL, 0, NULL, fmt, ap);
	va_end(ap);
}
