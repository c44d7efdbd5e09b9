/*
 * logger.c - loggers with levels, and the process-wide one (the reference design's
 * Logger.get_instance() and LogLevel).
 *
 * Overview
 *   A logger is a threshold, a destination (stderr, a FILE * or a sink callback) and a mutex.
 *   tp_logger_get_instance() returns a logger in static storage, set up once (pthread_once) with
 *   the threshold named by TP_LOG_LEVEL; tp_logger_create() makes private ones. A registry lists
 *   every live logger, for the fork() handlers.
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
 *   - Every logger is usable in the child of a fork(): the library's pthread_atfork handlers
 *     (fork.c), registered before the first logger or pool exists, call the tp__logger_atfork_*
 *     functions at the end of this file, so the fork waits until no other thread holds a
 *     logger's mutex or the registry's, and the child inherits none locked. Only the loggers the
 *     forking thread itself is emitting through (a sink that forks) stay held, in both
 *     processes, until that sink returns; lines logged through them meanwhile are dropped, as
 *     they always are.
 *   - TP_LOG_LEVEL: a level name (any case) or number, between optional whitespace (that of C's
 *     isspace() in the C locale). Unset or empty: WARNING, silently. Anything else: WARNING, and
 *     one WARNING line through the singleton naming the variable and the value (quoted: '"' and
 *     '\\' escaped, control bytes as \xNN, cut at 92 bytes). tp_log_level_parse() itself stays
 *     exact; the trimming is the variable's rule only.
 *
 * Invariants
 *   - `threshold` is one of the five tp_log_level values, except in the singleton before
 *     its set-up, where it is TP__LOG_UNSET.
 *   - `dest`, `file`, `sink` and `user` are read and written only with `lock` held.
 *   - The registry ring (`reg_prev`, `reg_next`, from the singleton) holds the singleton and every
 *     logger of tp_logger_create() not yet destroyed; it changes only with the registry lock held.
 *   - A thread that holds a logger's `lock` for a line has that logger in its emitting chain.
 *   - Between prepare and parent (or child), the forking thread holds the registry lock and every
 *     logger's `lock`.
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
 * and across loggers: create and destroy (of different loggers) run alongside everything, one at
 * a time through the registry lock; the fork handlers exclude create, destroy, emitting a line,
 * set_sink and set_file on every logger, from prepare to parent (or child).
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
 *   - fork(): prepare takes the registry lock, then try-locks every logger in registry order.
 *     Blocking instead could deadlock: loggers nest (a sink of A logs through B, or creates a
 *     logger), so no fixed order of their locks is one every thread keeps, and a prepare that
 *     held B (or the registry) while waiting for A would wait forever on A's holder, which
 *     waits for B. So when a logger is busy, prepare lets go of everything and starts again
 *     after a pause (yields, then sleeps growing to 1 ms); the busy holder is handing over one
 *     line and needs nothing prepare keeps. Waiting for that logger with nothing held would be
 *     no better: once the line is done it may be destroyed under the waiter.
 *   - prepare skips the loggers the forking thread is emitting through: it holds them, and its
 *     tp__log_emit() will unlock them. Its chain is left as it is in the child too: the child's
 *     only thread is that same thread inside the same sinks, and returns through them.
 *   - Nothing on the way to a line takes a lock outside this file that fork() would leave held:
 *     the timestamp is computed here, not by gmtime_r(), which in glibc takes tzset_lock (a child
 *     forked while another thread held it hung in gmtime_r() in the tests); stdio's FILE locks
 *     and malloc's are reset by glibc's fork().
 *   - The child unlocks what prepare took rather than re-initialising it: the forking thread
 *     owns those locks in the child, and unlocking them is POSIX's pthread_atfork recipe.
 *   - pthread_once is fork-safe in glibc: a fork during the singleton's set-up lets the child
 *     run the set-up again.
 *   - The malformed-TP_LOG_LEVEL warning is emitted inside pthread_once, through the normal path
 *     (the threshold is stored first). A sink that asked for the singleton there would deadlock,
 *     but no sink can be set yet: setting one needs the pointer the set-up returns.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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
#include "fork.h"

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
	/* The registry: a ring of the live loggers, from the singleton. Under the registry lock. */
	struct tp_logger *reg_prev;
	struct tp_logger *reg_next;
};

static struct tp_logger tp__log_singleton = {
	.threshold = TP__LOG_UNSET,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.dest = TP__LOG_TO_STDERR,
	.reg_prev = &tp__log_singleton,
	.reg_next = &tp__log_singleton,
};
static pthread_once_t tp__log_singleton_once = PTHREAD_ONCE_INIT;

/*
 * Guards the registry ring. create and destroy hold it alone (perhaps inside a sink, so while a
 * logger's `lock` is held); the fork handlers hold it across fork() and only try-lock loggers
 * under it, so no thread ever blocks on a logger while holding it.
 */
static pthread_mutex_t tp__log_registry_lock = PTHREAD_MUTEX_INITIALIZER;

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

/* Whitespace as isspace() has it in the C locale, whatever the process's locale. */
static bool tp__log_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/*
 * Parses TP_LOG_LEVEL's value: tp_log_level_parse() of the text between optional leading and
 * trailing whitespace. EINVAL if that is not a level (an empty remainder included).
 */
static int tp__log_level_parse_env(const char *value, tp_log_level *out)
{
	char word[8]; /* "warning" is the longest level */
	const char *end = value + strlen(value);
	size_t len;

	while (tp__log_is_space(*value))
		value++;
	while (end > value && tp__log_is_space(end[-1]))
		end--;
	len = (size_t)(end - value);
	if (len == 0 || len >= sizeof(word))
		return EINVAL;
	memcpy(word, value, len);
	word[len] = '\0';
	return tp_log_level_parse(word, out);
}

/*
 * Quotes `value` into buf (size > 8) for a message: '"' and '\\' escaped with '\\', control bytes
 * as \xNN, and at most size - 1 bytes of output, ending in "..." when the value was cut (before
 * its last multi-byte character). The message then stays one line, short enough to keep its end.
 */
static void tp__log_quote(char *buf, size_t size, const char *value)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (; *value != '\0'; value++) {
		unsigned char c = (unsigned char)*value;
		size_t need = c < 0x20 || c == 0x7f ? 4 : c == '"' || c == '\\' ? 2 : 1;

		if (n + need > size - 4) {
			/* Not inside a UTF-8 sequence: drop a last multi-byte one whole. */
			while (n > 0 && ((unsigned char)buf[n - 1] & 0xc0) == 0x80)
				n--;
			if (n > 0 && (unsigned char)buf[n - 1] >= 0xc0)
				n--;
			memcpy(buf + n, "...", 3);
			n += 3;
			break;
		}
		if (need == 4) {
			buf[n++] = '\\';
			buf[n++] = 'x';
			buf[n++] = hex[c >> 4];
			buf[n++] = hex[c & 0xf];
		} else {
			if (need == 2)
				buf[n++] = '\\';
			buf[n++] = (char)c;
		}
	}
	buf[n] = '\0';
}

static void tp__log_singleton_init(void)
{
	const char *value = getenv("TP_LOG_LEVEL");
	tp_log_level level = TP_LOG_WARNING;
	bool malformed = false;

	tp__fork_handlers_init();
	if (value != NULL && *value != '\0' && tp__log_level_parse_env(value, &level) != 0) {
		level = TP_LOG_WARNING;
		malformed = true;
	}
	/* pthread_once orders this store before every return of tp_logger_get_instance(). */
	tp__store_rlx_u32(&tp__log_singleton.threshold, (uint32_t)level);
	if (malformed) {
		char quoted[96];

		/*
		 * Still inside pthread_once, so a sink that asked for the singleton would deadlock;
		 * but nothing can have set one yet (setting one needs the pointer this set-up
		 * returns), so the line goes to stderr.
		 */
		tp__log_quote(quoted, sizeof(quoted), value);
		tp_log(&tp__log_singleton, TP_LOG_WARNING,
		       "TP_LOG_LEVEL=\"%s\" is not a level (debug, info, warning, error, off, "
		       "10, 20, 30, 40, 100): ignored, using warning",
		       quoted);
	}
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
	tp__fork_handlers_init();
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
	/* At the ring's end, just before the singleton. */
	(void)pthread_mutex_lock(&tp__log_registry_lock);
	logger->reg_next = &tp__log_singleton;
	logger->reg_prev = tp__log_singleton.reg_prev;
	logger->reg_prev->reg_next = logger;
	tp__log_singleton.reg_prev = logger;
	(void)pthread_mutex_unlock(&tp__log_registry_lock);
	return logger;
}

void tp_logger_destroy(tp_logger *logger)
{
	if (logger == NULL || logger == &tp__log_singleton)
		return;
	(void)pthread_mutex_lock(&tp__log_registry_lock);
	logger->reg_prev->reg_next = logger->reg_next;
	logger->reg_next->reg_prev = logger->reg_prev;
	(void)pthread_mutex_unlock(&tp__log_registry_lock);
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

/*
 * The UTC date and time of `t` into tm's year, month, day, hour, minute and second (POSIX time:
 * every day has 86400 seconds), by the days-to-civil arithmetic of H. Hinnant's "chrono-Compatible
 * Low-Level Date Algorithms". Not gmtime_r(): glibc's takes a lock of its own (tzset_lock), which
 * a fork() while another thread holds it leaves locked forever in the child.
 */
static void tp__log_utc(time_t t, struct tm *tm)
{
	int64_t days = (int64_t)t / 86400, secs = (int64_t)t % 86400;
	int64_t era, doe, yoe, doy, mp, year;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	/* Days since 0000-03-01, so that a year ends with February and its leap day. */
	days += 719468;
	/* The 400-year era, and the day, year and March-based day and month within it. */
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	year = yoe + era * 400 + (mp >= 10);
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = (int)(year - 1900);
	tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
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
	tp__log_utc(ts.tv_sec, &tm);
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

/* ---------------------------------------------------------------------------------------------
 * fork(): the registry and the handlers (see logger_internal.h and the essay at the top)
 * ------------------------------------------------------------------------------------------ */

/*
 * Unlocks the loggers from `last` back to the singleton, the registry's order reversed, but not
 * those this thread is emitting through (their tp__log_emit() unlocks them). Registry lock held.
 */
static void tp__log_unlock_down_from(struct tp_logger *last)
{
	for (struct tp_logger *lg = last;; lg = lg->reg_prev) {
		if (!tp__log_is_emitting(lg))
			(void)pthread_mutex_unlock(&lg->lock);
		if (lg == &tp__log_singleton)
			break;
	}
}

/*
 * Takes the registry lock and then, in registry order, every logger's lock but those this thread
 * is emitting through (it holds them). Returns the logger it found busy, with nothing held, or
 * NULL with all of them held.
 */
static struct tp_logger *tp__log_try_lock_all(void)
{
	struct tp_logger *lg = &tp__log_singleton;

	(void)pthread_mutex_lock(&tp__log_registry_lock);
	do {
		if (!tp__log_is_emitting(lg) && pthread_mutex_trylock(&lg->lock) != 0) {
			if (lg != &tp__log_singleton)
				tp__log_unlock_down_from(lg->reg_prev);
			(void)pthread_mutex_unlock(&tp__log_registry_lock);
			return lg;
		}
		lg = lg->reg_next;
	} while (lg != &tp__log_singleton);
	return NULL;
}

void tp__logger_atfork_prepare(void)
{
	int cancel_state;

	/* The sleep below is a cancellation point; fork() must not end inside its handlers. */
	(void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
	/*
	 * Blocking on a busy logger with the registry (or another logger) held could deadlock
	 * against its holder, if its sink logs through a second logger or creates one; blocking
	 * with nothing held could wake on freed memory, once the line is done and the logger
	 * destroyed. So a busy logger sends us back to the start, after a pause that grows to
	 * 1 ms: it is handing over one line, which takes microseconds.
	 */
	for (unsigned round = 0; tp__log_try_lock_all() != NULL; round++) {
		struct timespec pause = { 0, 1000L << (round < 10 ? round : 10) };

		if (round < 4)
			(void)sched_yield();
		else
			(void)nanosleep(&pause, NULL);
	}
	(void)pthread_setcancelstate(cancel_state, NULL);
}

/* The parent's and the child's handler alike: release what prepare took. */
static void tp__log_atfork_release(void)
{
	tp__log_unlock_down_from(tp__log_singleton.reg_prev);
	(void)pthread_mutex_unlock(&tp__log_registry_lock);
}

void tp__logger_atfork_parent(void)
{
	tp__log_atfork_release();
}

/*
 * The child's only thread is the one that forked, which holds every lock prepare took, so
 * unlocking them is all the repair there is (POSIX's own recipe for pthread_atfork). Its chain of
 * loggers it is emitting through is still true in the child: it is inside those sinks, holding
 * those locks, and tp__log_emit() releases them when the sinks return.
 */
void tp__logger_atfork_child(void)
{
	tp__log_atfork_release();
}
