/*
 * test-logger.c - the logger, through the public API only.
 *
 * main() sets TP_LOG_LEVEL to "eRRoR" before anything touches the singleton: the runner's
 * "warning" is also the default, so a logger that ignored the variable would pass a test of it.
 * The fallbacks (unset, invalid) are checked in forked children, which read the variable afresh.
 *
 * cmocka is not thread-safe: worker threads only log and record; the test thread asserts.
 */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "thread_pool.h"

#define ENV_LEVEL_TEXT "eRRoR"
#define ENV_LEVEL      TP_LOG_ERROR

/* The prefix "<time> <LEVEL> [tid <n>] "; groups: 1 the month, 2 the level, 3 the tid. */
#define PREFIX_RE                                                                                  \
	"^[0-9]{4}-(0[1-9]|1[0-2])-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{6}Z "       \
	"([A-Z?]+) \\[tid ([0-9]+)\\] "

static const tp_log_level all_levels[] = {
	TP_LOG_DEBUG, TP_LOG_INFO, TP_LOG_WARNING, TP_LOG_ERROR, TP_LOG_OFF,
};
#define N_LEVELS (sizeof(all_levels) / sizeof(all_levels[0]))

/* ---------------------------------------------------------------------------------------------
 * A recording sink: keeps every line it receives (a copy), its level, and notices overlaps.
 * ------------------------------------------------------------------------------------------ */

struct rec_line {
	tp_log_level level;
	size_t len;
	char *text;	       /* len bytes + NUL */
	size_t strlen_at_call; /* strlen(line) as received: the line is a C string too */
};

struct recorder {
	struct rec_line *lines;
	size_t n, cap;
	int inside;		/* calls in progress (atomic) */
	int overlaps;		/* calls that found another one in progress (atomic) */
	int calls_after_retire; /* calls that found `retired` set (atomic) */
	int retired;		/* set once this sink has been replaced (atomic) */
	tp_logger *log_back;	/* if set, the sink logs through this logger */
};

static void rec_init(struct recorder *r, size_t cap)
{
	memset(r, 0, sizeof(*r));
	r->cap = cap;
	r->lines = calloc(cap, sizeof(*r->lines));
	assert_non_null(r->lines);
}

static void rec_free(struct recorder *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->lines[i].text);
	free(r->lines);
	memset(r, 0, sizeof(*r));
}

static void rec_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct recorder *r = user;

	/* Calls must never overlap: if they did, both would see inside > 0. */
	if (__atomic_fetch_add(&r->inside, 1, __ATOMIC_SEQ_CST) != 0)
		__atomic_fetch_add(&r->overlaps, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&r->retired, __ATOMIC_SEQ_CST))
		__atomic_fetch_add(&r->calls_after_retire, 1, __ATOMIC_SEQ_CST);
	if (r->log_back != NULL)
		tp_log(r->log_back, TP_LOG_ERROR, "from inside the sink");
	if (r->n < r->cap) {
		struct rec_line *l = &r->lines[r->n];

		l->level = level;
		l->len = len;
		l->strlen_at_call = strlen(line);
		l->text = malloc(len + 1);
		if (l->text != NULL) {
			memcpy(l->text, line, len);
			l->text[len] = '\0';
			r->n++;
		}
	}
	__atomic_fetch_sub(&r->inside, 1, __ATOMIC_SEQ_CST);
}

/* A private logger at `level` sending to `r`. */
static tp_logger *recording_logger(tp_log_level level, struct recorder *r, size_t cap)
{
	tp_logger *logger = tp_logger_create(level);

	assert_non_null(logger);
	rec_init(r, cap);
	assert_int_equal(tp_logger_set_sink(logger, rec_sink, r), 0);
	return logger;
}

/* Asserts that `text` (len bytes) is one whole line with a well-formed prefix. */
static void assert_one_line(const char *text, size_t len)
{
	regex_t re;

	assert_true(len > 0);
	assert_int_equal(text[len - 1], '\n');
	assert_ptr_equal(memchr(text, '\n', len), text + len - 1);
	assert_int_equal(regcomp(&re, PREFIX_RE, REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, text, 0, NULL, 0), 0);
	regfree(&re);
}

/* The text after "[tid N] " of a line (the location, if any, and the message). */
static const char *after_prefix(const char *text)
{
	const char *p = strstr(text, "] ");

	assert_non_null(p);
	return p + 2;
}

/* Reads a whole stream from its start into a malloc'd NUL-terminated buffer. */
static char *slurp(FILE *f, size_t *len_out)
{
	long size;
	char *buf;

	assert_int_equal(fflush(f), 0);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	*len_out = (size_t)size;
	return buf;
}

/* ---------------------------------------------------------------------------------------------
 * The singleton and TP_LOG_LEVEL
 * ------------------------------------------------------------------------------------------ */

/* Runs before anything else uses the singleton: main() set TP_LOG_LEVEL to "eRRoR". */
static void logger_singleton_level_from_env(void **state)
{
	(void)state;
	assert_int_equal(tp_logger_get_level(tp_logger_get_instance()), ENV_LEVEL);
}

/* What a child saw of the singleton's set-up: its first threshold, and what it wrote to stderr. */
struct env_outcome {
	int level;
	char text[2048];
	size_t len;
};

/*
 * In a child: set (or unset) TP_LOG_LEVEL, send stderr into a pipe, then ask for the singleton;
 * the parent reads the pipe and the child's exit code (its first level). Must run before the
 * parent sets its singleton up, which a child would inherit.
 */
static struct env_outcome child_initial_level(const char *env)
{
	struct env_outcome out = { .level = -1 };
	int fds[2], status;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = env != NULL ? setenv("TP_LOG_LEVEL", env, 1) : unsetenv("TP_LOG_LEVEL");

		if (rc != 0 || dup2(fds[1], STDERR_FILENO) != STDERR_FILENO)
			_exit(255);
		close(fds[0]);
		close(fds[1]);
		_exit((int)tp_logger_get_level(tp_logger_get_instance()));
	}
	close(fds[1]);
	for (;;) {
		ssize_t n = read(fds[0], out.text + out.len, sizeof(out.text) - 1 - out.len);

		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		out.len += (size_t)n;
	}
	out.text[out.len] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	out.level = WEXITSTATUS(status);
	return out;
}

/* A value the variable's rule accepts: that level, and not a byte on stderr. */
static void assert_env_accepted(const char *env, tp_log_level want)
{
	struct env_outcome o = child_initial_level(env);

	assert_int_equal(o.level, want);
	assert_int_equal(o.len, 0);
}

/* A malformed value: threshold WARNING, and exactly one WARNING line naming it as `shown`. */
static void assert_env_rejected(const char *env, const char *shown)
{
	struct env_outcome o = child_initial_level(env);
	char want[512];

	assert_int_equal(o.level, TP_LOG_WARNING);
	assert_one_line(o.text, o.len);
	assert_non_null(strstr(o.text, "Z WARNING [tid "));
	snprintf(
		want, sizeof(want),
		"TP_LOG_LEVEL=\"%s\" is not a level (debug, info, warning, error, off, 10, 20, 30, "
		"40, 100): ignored, using warning\n",
		shown);
	assert_string_equal(after_prefix(o.text), want);
}

static void logger_singleton_env_fallback(void **state)
{
	(void)state;
	/* Unset or empty: the default, silently. */
	assert_env_accepted(NULL, TP_LOG_WARNING);
	assert_env_accepted("", TP_LOG_WARNING);
	/* A name in any case or a number, with optional whitespace around it. */
	assert_env_accepted("DEBUG", TP_LOG_DEBUG);
	assert_env_accepted("info", TP_LOG_INFO);
	assert_env_accepted("  info ", TP_LOG_INFO);
	assert_env_accepted("\tWarning\n", TP_LOG_WARNING);
	assert_env_accepted("40", TP_LOG_ERROR);
	assert_env_accepted(" 20", TP_LOG_INFO);
	assert_env_accepted("Off", TP_LOG_OFF);
	assert_env_accepted("100\r\n", TP_LOG_OFF);
	/* Anything else: the default, and one warning that names the value as given. */
	assert_env_rejected("verbose", "verbose");
	assert_env_rejected("+20", "+20");
	assert_env_rejected("15", "15");
	assert_env_rejected("020", "020");
	assert_env_rejected("bogus", "bogus");
	assert_env_rejected("warnings", "warnings");
	assert_env_rejected("in fo", "in fo");
	assert_env_rejected("   ", "   ");
	assert_env_rejected(" info x ", " info x ");
	/* Quoted so that the warning stays one line. */
	assert_env_rejected("a\"b\\c\nd\x01", "a\\\"b\\\\c\\x0ad\\x01");
}

/* A long malformed value is cut with "..." (never inside a UTF-8 character), the message kept. */
static void logger_singleton_env_long_value(void **state)
{
	char env[301], shown[100];
	size_t n;

	(void)state;
	memset(env, 'x', 300);
	env[300] = '\0';
	memset(shown, 'x', 92);
	memcpy(shown + 92, "...", 4);
	assert_env_rejected(env, shown);
	/* 90 ASCII bytes, then 2-byte "é"s: the cut falls after a whole "é", which goes too. */
	memset(env, 'y', 90);
	for (n = 90; n + 2 <= 300; n += 2)
		memcpy(env + n, "\xc3\xa9", 2);
	env[n] = '\0';
	memset(shown, 'y', 90);
	memcpy(shown + 90, "...", 4);
	assert_env_rejected(env, shown);
}

/*
 * In a child, with TP_LOG_LEVEL=error and stderr sent to a file: the first use of the singleton is
 * tp_log(NULL, ...), which must set it up first. Exit code 0: a WARNING line was dropped and an
 * ERROR line written; other codes say what went wrong.
 */
static int child_first_use_is_tp_log(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *f = tmpfile();
		char buf[512];
		size_t n;

		if (f == NULL || setenv("TP_LOG_LEVEL", "error", 1) != 0 ||
		    dup2(fileno(f), STDERR_FILENO) != STDERR_FILENO)
			_exit(10);
		tp_log(NULL, TP_LOG_WARNING, "dropped");
		tp_log(NULL, TP_LOG_ERROR, "kept");
		if (tp_logger_get_level(tp_logger_get_instance()) != TP_LOG_ERROR)
			_exit(11);
		rewind(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		buf[n] = '\0';
		if (strstr(buf, "dropped") != NULL)
			_exit(12);
		if (strstr(buf, " ERROR [tid ") == NULL || strstr(buf, "] kept\n") == NULL)
			_exit(13);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void logger_singleton_first_use_by_tp_log(void **state)
{
	(void)state;
	assert_int_equal(child_first_use_is_tp_log(), 0);
}

static void *get_instance_thread(void *arg)
{
	*(tp_logger **)arg = tp_logger_get_instance();
	return NULL;
}

static void logger_singleton_same_pointer(void **state)
{
	pthread_t threads[4];
	tp_logger *seen[4] = { NULL };
	tp_logger *mine = tp_logger_get_instance();

	(void)state;
	assert_non_null(mine);
	assert_ptr_equal(tp_logger_get_instance(), mine);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&threads[i], NULL, get_instance_thread, &seen[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_ptr_equal(seen[i], mine);
	}
}

/* tp_log(NULL, ...) and TP_LOG(NULL, ...) go to the singleton; destroying it is a no-op. */
static void logger_null_logger_uses_singleton(void **state)
{
	tp_logger *single = tp_logger_get_instance();
	struct recorder r;
	int evaluated = 0;

	(void)state;
	rec_init(&r, 8);
	assert_int_equal(tp_logger_set_sink(single, rec_sink, &r), 0);
	tp_log(NULL, TP_LOG_ERROR, "to the singleton %d", 1);
	tp_log(NULL, TP_LOG_WARNING, "filtered"); /* the singleton is at ERROR */
	TP_LOG(NULL, TP_LOG_ERROR, "macro %d", ++evaluated);
	TP_LOG(NULL, TP_LOG_INFO, "macro %d", ++evaluated);
	tp_logger_destroy(single);
	assert_ptr_equal(tp_logger_get_instance(), single);
	tp_log(NULL, TP_LOG_ERROR, "after destroy");
	assert_int_equal(tp_logger_set_sink(single, NULL, NULL), 0);

	assert_int_equal(evaluated, 1);
	assert_int_equal(r.n, 3);
	assert_string_equal(after_prefix(r.lines[0].text), "to the singleton 1\n");
	assert_non_null(strstr(r.lines[1].text, "macro 1\n"));
	assert_string_equal(after_prefix(r.lines[2].text), "after destroy\n");
	rec_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * Levels: names, parsing, thresholds
 * ------------------------------------------------------------------------------------------ */

static void logger_level_names(void **state)
{
	(void)state;
	assert_string_equal(tp_log_level_name(TP_LOG_DEBUG), "DEBUG");
	assert_string_equal(tp_log_level_name(TP_LOG_INFO), "INFO");
	assert_string_equal(tp_log_level_name(TP_LOG_WARNING), "WARNING");
	assert_string_equal(tp_log_level_name(TP_LOG_ERROR), "ERROR");
	assert_string_equal(tp_log_level_name(TP_LOG_OFF), "OFF");
	assert_string_equal(tp_log_level_name((tp_log_level)0), "?");
	assert_string_equal(tp_log_level_name((tp_log_level)7), "?");
	assert_string_equal(tp_log_level_name((tp_log_level)15), "?");
	assert_string_equal(tp_log_level_name((tp_log_level)-1), "?");
	assert_string_equal(tp_log_level_name((tp_log_level)1000), "?");
}

/* Each level's name appears in its emitted lines. */
static void logger_level_names_in_lines(void **state)
{
	static const char *names[] = { "DEBUG", "INFO", "WARNING", "ERROR" };
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);

	(void)state;
	for (size_t i = 0; i < 4; i++)
		tp_log(logger, all_levels[i], "m");
	assert_int_equal(r.n, 4);
	for (size_t i = 0; i < 4; i++) {
		char want[32];

		snprintf(want, sizeof(want), "Z %s [tid ", names[i]);
		assert_one_line(r.lines[i].text, r.lines[i].len);
		assert_non_null(strstr(r.lines[i].text, want));
		assert_int_equal(r.lines[i].level, all_levels[i]);
	}
	tp_logger_destroy(logger);
	rec_free(&r);
}

static void logger_parse_valid(void **state)
{
	static const struct {
		const char *text;
		tp_log_level level;
	} cases[] = {
		{ "debug", TP_LOG_DEBUG },     { "DEBUG", TP_LOG_DEBUG },
		{ "Debug", TP_LOG_DEBUG },     { "info", TP_LOG_INFO },
		{ "INFO", TP_LOG_INFO },       { "warning", TP_LOG_WARNING },
		{ "WaRnInG", TP_LOG_WARNING }, { "error", TP_LOG_ERROR },
		{ "ERROR", TP_LOG_ERROR },     { "off", TP_LOG_OFF },
		{ "OFF", TP_LOG_OFF },	       { "10", TP_LOG_DEBUG },
		{ "20", TP_LOG_INFO },	       { "30", TP_LOG_WARNING },
		{ "40", TP_LOG_ERROR },	       { "100", TP_LOG_OFF },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tp_log_level out = (tp_log_level)-1;

		assert_int_equal(tp_log_level_parse(cases[i].text, &out), 0);
		assert_int_equal(out, cases[i].level);
	}
}

static void logger_parse_invalid(void **state)
{
	static const char *bad[] = {
		"",  " info", "info ", "\tdebug", "warn", "debugx", "deb", "of",  "offf", "15",
		"0", "50",    "010",   "+10",	  "-10",  "10x",    "10 ", "1e1", "0x14", "1000",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tp_log_level out = (tp_log_level)77;

		assert_int_equal(tp_log_level_parse(bad[i], &out), EINVAL);
		assert_int_equal(out, 77); /* a failed call has no effect */
	}
}

static void logger_parse_null(void **state)
{
	tp_log_level out = (tp_log_level)77;

	(void)state;
	assert_int_equal(tp_log_level_parse(NULL, &out), EINVAL);
	assert_int_equal(out, 77);
	assert_int_equal(tp_log_level_parse("info", NULL), EINVAL);
	assert_int_equal(tp_log_level_parse(NULL, NULL), EINVAL);
}

static void logger_create_einval(void **state)
{
	static const int bad[] = { 0, 1, 15, 25, 50, 99, 101, -1, -10 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_null(tp_logger_create((tp_log_level)bad[i]));
		assert_int_equal(errno, EINVAL);
	}
	for (size_t i = 0; i < N_LEVELS; i++) {
		tp_logger *logger = tp_logger_create(all_levels[i]);

		assert_non_null(logger);
		assert_int_equal(tp_logger_get_level(logger), all_levels[i]);
		tp_logger_destroy(logger);
	}
}

static void logger_set_level_einval(void **state)
{
	static const int bad[] = { 0, 15, 35, 101, -1 };
	tp_logger *logger = tp_logger_create(TP_LOG_INFO);

	(void)state;
	assert_non_null(logger);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tp_logger_set_level(logger, (tp_log_level)bad[i]), EINVAL);
		assert_int_equal(tp_logger_get_level(logger), TP_LOG_INFO);
	}
	for (size_t i = 0; i < N_LEVELS; i++) {
		assert_int_equal(tp_logger_set_level(logger, all_levels[i]), 0);
		assert_int_equal(tp_logger_get_level(logger), all_levels[i]);
	}
	assert_int_equal(tp_logger_set_level(NULL, TP_LOG_INFO), EINVAL);
	tp_logger_destroy(logger);
}

static void logger_null_args(void **state)
{
	(void)state;
	assert_int_equal(tp_logger_get_level(NULL), TP_LOG_OFF);
	for (size_t i = 0; i < N_LEVELS; i++)
		assert_false(tp_logger_enabled(NULL, all_levels[i]));
	assert_int_equal(tp_logger_set_sink(NULL, rec_sink, NULL), EINVAL);
	assert_int_equal(tp_logger_set_sink(NULL, NULL, NULL), EINVAL);
	assert_int_equal(tp_logger_set_file(NULL, stderr), EINVAL);
	assert_int_equal(tp_logger_set_file(NULL, NULL), EINVAL);
	assert_int_equal(tp_logger_set_level(NULL, TP_LOG_DEBUG), EINVAL);
	tp_logger_destroy(NULL);
}

/* For each threshold and level, enabled() and the sink agree: "level >= threshold, not OFF". */
static void logger_filter_below_threshold(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 64);

	(void)state;
	for (size_t t = 0; t < N_LEVELS; t++) {
		assert_int_equal(tp_logger_set_level(logger, all_levels[t]), 0);
		for (size_t l = 0; l < 4; l++) {
			bool want = all_levels[t] != TP_LOG_OFF && all_levels[l] >= all_levels[t];
			size_t before = r.n;

			assert_int_equal(tp_logger_enabled(logger, all_levels[l]), want);
			tp_log(logger, all_levels[l], "t=%zu l=%zu", t, l);
			assert_int_equal(r.n - before, want ? 1 : 0);
			before = r.n;
			tp_log_at(logger, all_levels[l], "f.c", 1, "fn", "at");
			assert_int_equal(r.n - before, want ? 1 : 0);
		}
	}
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* Through TP_LOG, a filtered line's arguments are not evaluated; an emitted line's once. */
static void logger_filtered_args_not_evaluated(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_WARNING, &r, 8);
	int counter = 0;

	(void)state;
	TP_LOG(logger, TP_LOG_DEBUG, "%d", ++counter);
	TP_LOG(logger, TP_LOG_INFO, "%d", ++counter);
	assert_int_equal(counter, 0);
	assert_int_equal(r.n, 0);
	TP_LOG(logger, TP_LOG_WARNING, "%d", ++counter);
	TP_LOG(logger, TP_LOG_ERROR, "%d", ++counter);
	assert_int_equal(counter, 2);
	assert_int_equal(r.n, 2);
	assert_int_equal(tp_logger_set_level(logger, TP_LOG_OFF), 0);
	TP_LOG(logger, TP_LOG_ERROR, "%d", ++counter);
	assert_int_equal(counter, 2);
	assert_int_equal(r.n, 2);
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* Unknown levels: emitted iff level >= threshold (as an int), named "?"; never a crash. */
static void logger_unknown_level_message(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_WARNING, &r, 8);

	(void)state;
	tp_log(logger, (tp_log_level)25, "below");
	tp_log(logger, (tp_log_level)-1, "negative");
	assert_false(tp_logger_enabled(logger, (tp_log_level)-1));
	assert_int_equal(r.n, 0);
	tp_log(logger, (tp_log_level)35, "above");
	assert_true(tp_logger_enabled(logger, (tp_log_level)35));
	assert_int_equal(r.n, 1);
	assert_one_line(r.lines[0].text, r.lines[0].len);
	assert_non_null(strstr(r.lines[0].text, "Z ? [tid "));
	assert_int_equal(r.lines[0].level, 35);
	assert_int_equal(tp_logger_set_level(logger, TP_LOG_DEBUG), 0);
	tp_log(logger, (tp_log_level)-1, "negative");
	tp_log(logger, (tp_log_level)INT32_MIN, "very negative");
	assert_int_equal(r.n, 1);
	/* OFF as a threshold logs nothing, even at levels OFF and above. */
	assert_int_equal(tp_logger_set_level(logger, TP_LOG_OFF), 0);
	tp_log(logger, TP_LOG_OFF, "off");
	tp_log(logger, (tp_log_level)200, "above off");
	assert_false(tp_logger_enabled(logger, TP_LOG_OFF));
	assert_false(tp_logger_enabled(logger, (tp_log_level)200));
	assert_int_equal(r.n, 1);
	assert_int_equal(tp_logger_set_level(logger, TP_LOG_ERROR), 0);
	tp_log(logger, (tp_log_level)200, "above off");
	assert_int_equal(r.n, 2);
	assert_non_null(strstr(r.lines[1].text, "Z ? [tid "));
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* A NULL format is not a crash: the line says "(null)". */
static void logger_null_format(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);
	/* Through a pointer, which carries no format attribute for -Wformat to check. */
	void (*log_fn)(tp_logger *, tp_log_level, const char *, ...) = tp_log;

	(void)state;
	log_fn(logger, TP_LOG_INFO, NULL);
	assert_int_equal(r.n, 1);
	assert_one_line(r.lines[0].text, r.lines[0].len);
	assert_string_equal(after_prefix(r.lines[0].text), "(null)\n");
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * The line
 * ------------------------------------------------------------------------------------------ */

/* One whole line: UTC time with microseconds, level, this thread's id, message, '\n'. */
static void logger_sink_line_format(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);
	regex_t re;
	regmatch_t m[4];
	struct tm tm;
	char want_tid[32];
	const char *tz = getenv("TZ");
	char *old_tz = tz != NULL ? strdup(tz) : NULL;
	struct timespec before, after;
	int64_t stamp_us;

	(void)state;
	/* A zone five hours off UTC: local time in the line would be caught below. */
	assert_int_equal(setenv("TZ", "XXX+05", 1), 0);
	tzset();
	/* The logger's clock, not time()'s coarser one, which may lag it by a tick. */
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &before), 0);
	tp_log(logger, TP_LOG_INFO, "hello %s %d", "world", 42);
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &after), 0);
	if (old_tz != NULL)
		assert_int_equal(setenv("TZ", old_tz, 1), 0);
	else
		assert_int_equal(unsetenv("TZ"), 0);
	tzset();
	free(old_tz);

	assert_int_equal(r.n, 1);
	assert_int_equal(r.lines[0].level, TP_LOG_INFO);
	assert_int_equal(r.lines[0].strlen_at_call, r.lines[0].len);
	assert_one_line(r.lines[0].text, r.lines[0].len);
	assert_int_equal(regcomp(&re, PREFIX_RE "hello world 42\n$", REG_EXTENDED), 0);
	assert_int_equal(regexec(&re, r.lines[0].text, 4, m, 0), 0);
	regfree(&re);
	assert_memory_equal(r.lines[0].text + m[2].rm_so, "INFO", 4);
	assert_int_equal(m[2].rm_eo - m[2].rm_so, 4);
	snprintf(want_tid, sizeof(want_tid), "%ld", (long)gettid());
	assert_int_equal(m[3].rm_eo - m[3].rm_so, (regoff_t)strlen(want_tid));
	assert_memory_equal(r.lines[0].text + m[3].rm_so, want_tid, strlen(want_tid));

	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(r.lines[0].text, "%Y-%m-%dT%H:%M:%S", &tm));
	/* In microseconds since the epoch, the line's time lies between the two readings. */
	stamp_us = (int64_t)timegm(&tm) * 1000000 + atol(r.lines[0].text + 20);
	assert_in_range(stamp_us, (int64_t)before.tv_sec * 1000000 + before.tv_nsec / 1000,
			(int64_t)after.tv_sec * 1000000 + after.tv_nsec / 1000);
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* TP_LOG adds "test-logger.c:<line> <function>(): "; tp_log_at too; file NULL omits it. */
static void logger_tp_log_macro_location(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);
	char want[128];
	int line;

	(void)state;
	line = __LINE__ + 1;
	TP_LOG(logger, TP_LOG_WARNING, "x=%d", 7);
	tp_log_at(logger, TP_LOG_ERROR, "/some/dir/other.c", 99, "caller", "at %s", "me");
	tp_log_at(logger, TP_LOG_ERROR, NULL, 99, NULL, "no location");
	tp_log_at(logger, TP_LOG_ERROR, "plain.c", 5, NULL, "no function");
	assert_int_equal(r.n, 4);

	snprintf(want, sizeof(want), "test-logger.c:%d logger_tp_log_macro_location(): x=7\n",
		 line);
	assert_one_line(r.lines[0].text, r.lines[0].len);
	assert_string_equal(after_prefix(r.lines[0].text), want);
	assert_string_equal(after_prefix(r.lines[1].text), "other.c:99 caller(): at me\n");
	assert_string_equal(after_prefix(r.lines[2].text), "no location\n");
	assert_string_equal(after_prefix(r.lines[3].text), "plain.c:5 no function\n");
	tp_logger_destroy(logger);
	rec_free(&r);
}

static void call_atv(tp_logger *logger, tp_log_level level, const char *fmt, ...) TP_PRINTF(3, 4);

static void call_atv(tp_logger *logger, tp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tp_log_atv(logger, level, "v.c", 3, "vf", fmt, ap);
	va_end(ap);
}

/* The va_list form formats its arguments. */
static void logger_atv_formats(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);

	(void)state;
	call_atv(logger, TP_LOG_INFO, "%s-%d-%c", "a", 1, 'z');
	assert_int_equal(r.n, 1);
	assert_one_line(r.lines[0].text, r.lines[0].len);
	assert_string_equal(after_prefix(r.lines[0].text), "v.c:3 vf(): a-1-z\n");
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* Logging leaves errno alone, even when writing the line fails (EBADF underneath). */
static void logger_preserves_errno(void **state)
{
	tp_logger *logger = tp_logger_create(TP_LOG_DEBUG);
	FILE *f = tmpfile();

	(void)state;
	assert_non_null(logger);
	assert_non_null(f);
	assert_int_equal(tp_logger_set_file(logger, f), 0);
	assert_int_equal(close(fileno(f)), 0);
	errno = ERANGE;
	tp_log(logger, TP_LOG_ERROR, "lost: %d", 1);
	assert_int_equal(errno, ERANGE);
	assert_true(ferror(f)); /* the write did fail */
	assert_int_equal(tp_logger_set_file(logger, NULL), 0);
	(void)fclose(f);
	tp_logger_destroy(logger);
}

/* A 5000-byte message: one line, cut, marked "...", ending '\n'. Multibyte text is not split. */
static void logger_truncates_long_message(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);
	char *big = malloc(6001);
	char *long_file = malloc(3001);
	const char *msg;
	size_t msg_len;

	(void)state;
	assert_non_null(big);
	assert_non_null(long_file);
	memset(big, 'x', 5000);
	big[5000] = '\0';
	tp_log(logger, TP_LOG_INFO, "%s", big);
	for (size_t i = 0; i < 6000; i += 2)
		memcpy(big + i, "\xc3\xa9", 2); /* U+00E9 */
	big[6000] = '\0';
	tp_log(logger, TP_LOG_INFO, "%s", big);
	tp_log(logger, TP_LOG_INFO, "x%s", big);
	memset(long_file, 'f', 3000);
	long_file[3000] = '\0';
	tp_log_at(logger, TP_LOG_INFO, long_file, 1, "fn", "short");
	assert_int_equal(r.n, 4);

	for (size_t i = 0; i < r.n; i++) {
		const struct rec_line *l = &r.lines[i];

		assert_one_line(l->text, l->len);
		assert_int_equal(l->strlen_at_call, l->len);
		assert_true(l->len < 5000);
		assert_true(l->len >= 200);
		assert_string_equal(l->text + l->len - 4, "...\n");
	}
	msg = after_prefix(r.lines[0].text);
	msg_len = strlen(msg) - 4;
	assert_true(msg_len > 500);
	assert_int_equal(strspn(msg, "x"), msg_len);
	/* The cut keeps whole two-byte characters, with or without a leading one-byte one. */
	for (size_t i = 1; i <= 2; i++) {
		msg = after_prefix(r.lines[i].text) + (i == 2 ? 1 : 0);
		msg_len = strlen(msg) - 4;
		assert_int_equal(msg_len % 2, 0);
		for (size_t k = 0; k < msg_len; k += 2)
			assert_memory_equal(msg + k, "\xc3\xa9", 2);
	}
	free(big);
	free(long_file);
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* set_file to a tmpfile(), then read the lines back: flushed, whole, in order. */
static void logger_set_file_roundtrip(void **state)
{
	tp_logger *logger = tp_logger_create(TP_LOG_INFO);
	FILE *f = tmpfile();
	char *text;
	size_t len;
	char *second;

	(void)state;
	assert_non_null(logger);
	assert_non_null(f);
	assert_int_equal(tp_logger_set_file(logger, f), 0);
	tp_log(logger, TP_LOG_INFO, "first %d", 1);
	tp_log(logger, TP_LOG_DEBUG, "filtered");
	tp_log(logger, TP_LOG_ERROR, "second %d", 2);
	/* Flushed per line: the descriptor already holds both, without our fflush. */
	assert_true(lseek(fileno(f), 0, SEEK_END) > 0);
	assert_int_equal(tp_logger_set_file(logger, NULL), 0);

	text = slurp(f, &len);
	second = memchr(text, '\n', len);
	assert_non_null(second);
	second++;
	assert_one_line(text, (size_t)(second - text));
	assert_one_line(second, len - (size_t)(second - text));
	assert_non_null(strstr(text, " INFO [tid "));
	assert_non_null(strstr(second, " ERROR [tid "));
	assert_string_equal(after_prefix(second), "second 2\n");
	second[-1] = '\0';
	assert_string_equal(after_prefix(text), "first 1");
	free(text);
	assert_int_equal(fclose(f), 0);
	tp_logger_destroy(logger);
}

/* Lines go to stderr by default and after set_sink(NULL) or set_file(NULL). */
static void logger_stderr_default_and_restore(void **state)
{
	tp_logger *logger = tp_logger_create(TP_LOG_DEBUG);
	FILE *capture = tmpfile();
	FILE *other = tmpfile();
	struct recorder r;
	int saved_stderr, restored, rc[6];
	char *text;
	size_t len;

	(void)state;
	assert_non_null(logger);
	assert_non_null(capture);
	assert_non_null(other);
	rec_init(&r, 8);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fileno(capture), STDERR_FILENO), STDERR_FILENO);

	/* Nothing may assert while stderr is redirected: a failure message would vanish. */
	tp_log(logger, TP_LOG_INFO, "to stderr 1");
	rc[0] = tp_logger_set_sink(logger, rec_sink, &r);
	tp_log(logger, TP_LOG_INFO, "to sink");
	rc[1] = tp_logger_set_file(logger, other); /* replaces the sink */
	tp_log(logger, TP_LOG_INFO, "to file");
	rc[2] = tp_logger_set_sink(logger, rec_sink, &r); /* replaces the file */
	rc[3] = tp_logger_set_sink(logger, NULL, &r);
	tp_log(logger, TP_LOG_INFO, "to stderr 2");
	rc[4] = tp_logger_set_file(logger, other);
	rc[5] = tp_logger_set_file(logger, NULL);
	tp_log(logger, TP_LOG_INFO, "to stderr 3");
	restored = dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);

	assert_int_equal(restored, STDERR_FILENO);
	for (size_t i = 0; i < sizeof(rc) / sizeof(rc[0]); i++)
		assert_int_equal(rc[i], 0);
	text = slurp(capture, &len);
	assert_non_null(strstr(text, "] to stderr 1\n"));
	assert_non_null(strstr(text, "] to stderr 2\n"));
	assert_non_null(strstr(text, "] to stderr 3\n"));
	assert_null(strstr(text, "to sink"));
	assert_null(strstr(text, "to file"));
	assert_one_line(text, (size_t)(strchr(text, '\n') + 1 - text));
	free(text);
	text = slurp(other, &len);
	assert_string_equal(after_prefix(text), "to file\n");
	free(text);
	assert_int_equal(r.n, 1);
	assert_string_equal(after_prefix(r.lines[0].text), "to sink\n");

	fclose(capture);
	fclose(other);
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* A sink that logs through its own logger neither deadlocks nor recurses: that line is dropped. */
static void logger_sink_reentry_dropped(void **state)
{
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_DEBUG, &r, 8);

	(void)state;
	r.log_back = logger;
	tp_log(logger, TP_LOG_INFO, "outer");
	r.log_back = NULL;
	tp_log(logger, TP_LOG_INFO, "after");
	assert_int_equal(r.n, 2);
	assert_string_equal(after_prefix(r.lines[0].text), "outer\n");
	assert_string_equal(after_prefix(r.lines[1].text), "after\n");
	tp_logger_destroy(logger);
	rec_free(&r);
}

/* ---------------------------------------------------------------------------------------------
 * Concurrency
 * ------------------------------------------------------------------------------------------ */

#define N_THREADS     8
#define N_LINES	      2000
#define N_ERROR_LINES (N_LINES - (N_LINES + 2) / 3) /* lines with n % 3 != 0 */

struct worker {
	tp_logger *logger;
	int index;
	long tid; /* recorded by the worker */
	pthread_barrier_t *start;
};

/* Line n of each worker: WARNING through TP_LOG if n % 3 == 0, else ERROR; then a DEBUG one. */
static void *log_lines(void *arg)
{
	struct worker *w = arg;

	w->tid = (long)gettid();
	pthread_barrier_wait(w->start);
	for (int n = 0; n < N_LINES; n++) {
		if (n % 3 == 0)
			TP_LOG(w->logger, TP_LOG_WARNING, "thread %d line %d", w->index, n);
		else
			tp_log(w->logger, TP_LOG_ERROR, "thread %d line %d", w->index, n);
		tp_log(w->logger, TP_LOG_DEBUG, "filtered %d", n);
	}
	return NULL;
}

static void start_workers(tp_logger *logger, struct worker *workers, pthread_t *threads,
			  pthread_barrier_t *start)
{
	assert_int_equal(pthread_barrier_init(start, NULL, N_THREADS), 0);
	for (int i = 0; i < N_THREADS; i++) {
		workers[i] = (struct worker){ .logger = logger, .index = i, .start = start };
		assert_int_equal(pthread_create(&threads[i], NULL, log_lines, &workers[i]), 0);
	}
}

static void join_workers(pthread_t *threads, pthread_barrier_t *start)
{
	for (int i = 0; i < N_THREADS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	pthread_barrier_destroy(start);
}

/* What the workers' lines, parsed one by one, add up to. */
struct tally {
	regex_t re;
	const struct worker *workers;
	unsigned char seen[N_THREADS][N_LINES];
	size_t lines, debug_lines;
};

static void tally_init(struct tally *t, const struct worker *workers)
{
	memset(t, 0, sizeof(*t));
	t->workers = workers;
	assert_int_equal(regcomp(&t->re,
				 PREFIX_RE "(test-logger\\.c:[0-9]+ log_lines\\(\\): )?"
					   "(thread ([0-9]+) line ([0-9]+)|filtered [0-9]+)$",
				 REG_EXTENDED),
			 0);
}

/*
 * Parses `text` (len bytes) as whole lines, each a valid prefix with its writer's tid and the
 * level of its payload, then that payload; no (thread, line) may appear twice.
 */
static void tally_text(struct tally *t, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *want_level;
		regmatch_t m[8];
		char line[256];
		size_t n;
		long tid;
		int th, k;

		assert_non_null(nl); /* the last line is whole too */
		n = (size_t)(nl - p);
		assert_true(n < sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		assert_int_equal(regexec(&t->re, line, 8, m, 0), 0);
		tid = atol(line + m[3].rm_so);
		if (m[6].rm_so < 0) {
			bool known = false;

			for (int i = 0; i < N_THREADS; i++)
				known = known || tid == t->workers[i].tid;
			assert_true(known);
			assert_true(m[4].rm_so < 0);
			assert_int_equal(m[2].rm_eo - m[2].rm_so, 5);
			assert_memory_equal(line + m[2].rm_so, "DEBUG", 5);
			t->debug_lines++;
			continue;
		}
		th = atoi(line + m[6].rm_so);
		k = atoi(line + m[7].rm_so);
		assert_in_range(th, 0, N_THREADS - 1);
		assert_in_range(k, 0, N_LINES - 1);
		assert_int_equal(tid, t->workers[th].tid);
		assert_int_equal(m[4].rm_so >= 0, k % 3 == 0); /* TP_LOG lines carry a location */
		want_level = k % 3 == 0 ? "WARNING" : "ERROR";
		assert_int_equal(m[2].rm_eo - m[2].rm_so, (regoff_t)strlen(want_level));
		assert_memory_equal(line + m[2].rm_so, want_level, strlen(want_level));
		assert_int_equal(t->seen[th][k], 0);
		t->seen[th][k] = 1;
		t->lines++;
	}
}

static void tally_free(struct tally *t)
{
	regfree(&t->re);
}

static void logger_concurrent_file_lines_whole(void **state)
{
	struct worker workers[N_THREADS];
	pthread_t threads[N_THREADS];
	pthread_barrier_t start;
	static struct tally t;
	tp_logger *logger = tp_logger_create(TP_LOG_WARNING);
	FILE *f = tmpfile();
	char *text;
	size_t len;

	(void)state;
	assert_non_null(logger);
	assert_non_null(f);
	assert_int_equal(tp_logger_set_file(logger, f), 0);
	start_workers(logger, workers, threads, &start);
	join_workers(threads, &start);
	text = slurp(f, &len);
	tally_init(&t, workers);
	tally_text(&t, text, len);
	/* Every line once (tally_text refuses twice), and nothing filtered got through. */
	assert_int_equal(t.lines, N_THREADS * N_LINES);
	assert_int_equal(t.debug_lines, 0);
	tally_free(&t);
	free(text);
	fclose(f);
	tp_logger_destroy(logger);
}

static void logger_concurrent_sink_lines_whole(void **state)
{
	struct worker workers[N_THREADS];
	pthread_t threads[N_THREADS];
	pthread_barrier_t start;
	static struct tally t;
	struct recorder r;
	tp_logger *logger = recording_logger(TP_LOG_WARNING, &r, N_THREADS * N_LINES + 1);

	(void)state;
	start_workers(logger, workers, threads, &start);
	join_workers(threads, &start);
	assert_int_equal(r.overlaps, 0);
	assert_int_equal(r.n, N_THREADS * N_LINES);
	tally_init(&t, workers);
	for (size_t i = 0; i < r.n; i++) {
		/* Each call is exactly one line: its only '\n' is its last byte. */
		assert_ptr_equal(memchr(r.lines[i].text, '\n', r.lines[i].len),
				 r.lines[i].text + r.lines[i].len - 1);
		assert_int_equal(r.lines[i].strlen_at_call, r.lines[i].len);
		tally_text(&t, r.lines[i].text, r.lines[i].len);
	}
	assert_int_equal(t.lines, N_THREADS * N_LINES);
	assert_int_equal(t.debug_lines, 0);
	tally_free(&t);
	tp_logger_destroy(logger);
	rec_free(&r);
}

/*
 * One logger per thread, all sharing stderr, then one FILE: each line leaves in one write(2) or
 * one fwrite, so lines stay whole even between loggers, which share no mutex. No assertion may
 * run while stderr is redirected.
 */
static void logger_concurrent_shared_destination(void **state)
{
	struct worker workers[N_THREADS];
	pthread_t threads[N_THREADS];
	pthread_barrier_t start;
	static struct tally t;
	tp_logger *loggers[N_THREADS];
	FILE *f[2] = { tmpfile(), tmpfile() };
	int saved_stderr, restored, rc = 0;

	(void)state;
	for (int i = 0; i < N_THREADS; i++) {
		loggers[i] = tp_logger_create(TP_LOG_WARNING);
		assert_non_null(loggers[i]);
	}
	assert_non_null(f[0]);
	assert_non_null(f[1]);
	for (int round = 0; round < 2; round++) {
		char *text;
		size_t len;

		for (int i = 0; round == 1 && i < N_THREADS; i++)
			assert_int_equal(tp_logger_set_file(loggers[i], f[1]), 0);
		assert_int_equal(pthread_barrier_init(&start, NULL, N_THREADS), 0);
		fflush(stderr);
		saved_stderr = dup(STDERR_FILENO);
		assert_true(saved_stderr >= 0);
		if (round == 0 && dup2(fileno(f[0]), STDERR_FILENO) != STDERR_FILENO)
			rc = -1;
		for (int i = 0; i < N_THREADS; i++) {
			workers[i] = (struct worker){
				.logger = loggers[i],
				.index = i,
				.start = &start,
			};
			rc |= pthread_create(&threads[i], NULL, log_lines, &workers[i]);
		}
		for (int i = 0; i < N_THREADS; i++)
			rc |= pthread_join(threads[i], NULL);
		restored = dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		pthread_barrier_destroy(&start);
		assert_int_equal(restored, STDERR_FILENO);
		assert_int_equal(rc, 0);

		text = slurp(f[round], &len);
		tally_init(&t, workers);
		tally_text(&t, text, len);
		assert_int_equal(t.lines, N_THREADS * N_LINES);
		assert_int_equal(t.debug_lines, 0);
		tally_free(&t);
		free(text);
	}
	fclose(f[0]);
	fclose(f[1]);
	for (int i = 0; i < N_THREADS; i++)
		tp_logger_destroy(loggers[i]);
}

/*
 * Workers log while the test thread switches the level (DEBUG or ERROR) and the destination (a
 * file, sink a, sink b). Every line delivered anywhere is whole; every ERROR line, which passes
 * either level, is delivered exactly once; once set_sink() has returned, the old sink is never
 * called again.
 */
static void logger_concurrent_reconfigure(void **state)
{
	struct worker workers[N_THREADS];
	pthread_t threads[N_THREADS];
	pthread_barrier_t start;
	static struct tally t;
	struct recorder a, b;
	tp_logger *logger = tp_logger_create(TP_LOG_DEBUG);
	FILE *f = tmpfile();
	char *text;
	size_t len, errors = 0;

	(void)state;
	assert_non_null(logger);
	assert_non_null(f);
	rec_init(&a, 3 * N_THREADS * N_LINES);
	rec_init(&b, 3 * N_THREADS * N_LINES);
	assert_int_equal(tp_logger_set_sink(logger, rec_sink, &a), 0);
	start_workers(logger, workers, threads, &start);
	for (int round = 0; round < 300; round++) {
		tp_log_level level = round % 2 ? TP_LOG_ERROR : TP_LOG_DEBUG;

		assert_int_equal(tp_logger_set_level(logger, level), 0);
		assert_int_equal(tp_logger_set_file(logger, f), 0);
		assert_int_equal(tp_logger_set_sink(logger, rec_sink, round % 2 ? &a : &b), 0);
	}
	assert_int_equal(tp_logger_set_sink(logger, rec_sink, &b), 0);
	__atomic_store_n(&a.retired, 1, __ATOMIC_SEQ_CST);
	join_workers(threads, &start);
	assert_int_equal(tp_logger_set_file(logger, NULL), 0);

	assert_int_equal(a.calls_after_retire, 0);
	assert_int_equal(a.overlaps + b.overlaps, 0);
	assert_true(a.n < a.cap && b.n < b.cap);
	tally_init(&t, workers);
	text = slurp(f, &len);
	tally_text(&t, text, len);
	for (size_t i = 0; i < a.n; i++)
		tally_text(&t, a.lines[i].text, a.lines[i].len);
	for (size_t i = 0; i < b.n; i++)
		tally_text(&t, b.lines[i].text, b.lines[i].len);
	for (int th = 0; th < N_THREADS; th++) {
		for (int k = 0; k < N_LINES; k++) {
			if (k % 3 != 0) {
				assert_int_equal(t.seen[th][k], 1);
				errors++;
			}
		}
	}
	assert_int_equal(errors, N_THREADS * N_ERROR_LINES);
	tally_free(&t);
	free(text);
	fclose(f);
	rec_free(&a);
	rec_free(&b);
	tp_logger_destroy(logger);
}

/* ---------------------------------------------------------------------------------------------
 * fork(): the library registers its pthread_atfork handlers before the first logger exists, so
 * these tests use them as any program would. Children report through their exit code only.
 * ------------------------------------------------------------------------------------------ */

#define CHILD_TIMEOUT_S 10 /* a child that deadlocks dies of SIGALRM after this */
#define WAIT_CHILD_MS	20000

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* First thing in a child: a deadlock there ends in SIGALRM instead of hanging the test. */
static void child_watchdog(void)
{
	signal(SIGALRM, SIG_DFL);
	alarm(CHILD_TIMEOUT_S);
}

static void on_parent_alarm(int sig)
{
	static const char msg[] =
		"Bail out! a fork test's parent took too long (deadlock in fork?)\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

/* For the test thread of a fork test: a fork() that never returns fails the test program. */
static void parent_watchdog(bool on)
{
	signal(SIGALRM, on ? on_parent_alarm : SIG_DFL);
	alarm(on ? 3 * CHILD_TIMEOUT_S : 0);
}

/* Waits at most `ms` for child `pid`: its wait status, or -1 if it had to be killed. */
static int wait_child(pid_t pid, long ms)
{
	double end = now_ms() + (double)ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -2;
		if (now_ms() > end) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(2);
	}
}

/* Asserts that a child's wait status says exit(0), printing what it says otherwise. */
static void assert_child_ok(int status)
{
	if (status == -1)
		print_message("child still running after %d ms: killed\n", WAIT_CHILD_MS);
	else if (WIFSIGNALED(status))
		print_message("child killed by signal %d (SIGALRM: deadlocked)\n",
			      WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		print_message("child exited with code %d\n", WEXITSTATUS(status));
	assert_true(status >= 0 && WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A sink that, on its first call, says it has entered, then waits at a gate; once let through,
 * still inside the call (so still holding its logger), it logs through `second` and creates and
 * destroys a logger: it needs a second logger's lock and the registry's, which a fork's prepare
 * that blocked while holding them would never give back.
 */
struct gate {
	sem_t entered;
	sem_t release;
	sem_t done; /* posted by each helper thread as its last act */
	int calls;  /* atomic */
	tp_logger *self, *second;
	struct recorder rec;
};

static void gate_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct gate *g = user;

	if (__atomic_fetch_add(&g->calls, 1, __ATOMIC_SEQ_CST) == 0) {
		sem_post(&g->entered);
		while (sem_wait(&g->release) != 0 && errno == EINTR)
			;
		tp_log(g->second, TP_LOG_INFO, "from the held sink");
		tp_logger_destroy(tp_logger_create(TP_LOG_INFO));
	}
	rec_sink(&g->rec, level, line, len);
}

static void *log_held_line(void *arg)
{
	struct gate *g = arg;

	tp_log(g->self, TP_LOG_INFO, "held line");
	sem_post(&g->done);
	return NULL;
}

struct releaser {
	struct gate *gate;
	int forking; /* atomic: set just before fork() */
	long delay_ms;
};

/* Opens the gate `delay_ms` after the test thread has started its fork(). */
static void *release_during_fork(void *arg)
{
	struct releaser *rl = arg;

	while (!__atomic_load_n(&rl->forking, __ATOMIC_SEQ_CST))
		sleep_ms(1);
	sleep_ms(rl->delay_ms);
	sem_post(&rl->gate->release);
	sem_post(&rl->gate->done);
	return NULL;
}

/* In the child of logger_fork_waits_for_held_sink: both loggers work, and hold what they had. */
static int child_after_held_sink(tp_logger *a, struct gate *g, tp_logger *b, struct recorder *rb)
{
	child_watchdog();
	tp_log(a, TP_LOG_INFO, "child a");
	tp_log(b, TP_LOG_INFO, "child b");
	/* fork() came after the held line was whole: each copy holds it and the child's line. */
	if (g->rec.n != 2 || strcmp(after_prefix(g->rec.lines[0].text), "held line\n") != 0 ||
	    strcmp(after_prefix(g->rec.lines[1].text), "child a\n") != 0)
		return 1;
	if (rb->n != 2 || strcmp(after_prefix(rb->lines[0].text), "from the held sink\n") != 0 ||
	    strcmp(after_prefix(rb->lines[1].text), "child b\n") != 0)
		return 2;
	return 0;
}

/*
 * Starts a detached thread: the child of a fork() cannot join the parent's threads, and TSan
 * there would call a finished, unjoined one a leak.
 */
static int start_detached(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return rc;
}

/* sem_wait() for at most CHILD_TIMEOUT_S seconds. */
static int sem_wait_bounded(sem_t *sem)
{
	struct timespec deadline;
	int rc;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += CHILD_TIMEOUT_S;
	while ((rc = sem_timedwait(sem, &deadline)) != 0 && errno == EINTR)
		;
	return rc;
}

/*
 * fork() while another thread is inside a sink, holding its logger's lock, and about to need a
 * second logger and the registry. The fork waits for that line (the gate opens 50 ms into it),
 * and the child logs through both loggers at once.
 */
static void logger_fork_waits_for_held_sink(void **state)
{
	struct recorder rb;
	struct gate g;
	struct releaser rl = { .gate = &g, .delay_ms = 50 };
	tp_logger *a, *b;
	double t0, forked_ms;
	int status;
	pid_t pid;

	(void)state;
	parent_watchdog(true);
	/*
	 * b first: the registry then lists b before a, so a prepare that blocked on a would do so
	 * holding b's lock, the one a's sink needs.
	 */
	b = recording_logger(TP_LOG_DEBUG, &rb, 8);
	memset(&g, 0, sizeof(g));
	assert_int_equal(sem_init(&g.entered, 0, 0), 0);
	assert_int_equal(sem_init(&g.release, 0, 0), 0);
	assert_int_equal(sem_init(&g.done, 0, 0), 0);
	g.second = b;
	rec_init(&g.rec, 8);
	a = tp_logger_create(TP_LOG_DEBUG);
	assert_non_null(a);
	assert_int_equal(tp_logger_set_sink(a, gate_sink, &g), 0);
	g.self = a;

	assert_int_equal(start_detached(log_held_line, &g), 0);
	assert_int_equal(sem_wait_bounded(&g.entered), 0); /* the holder holds a's lock */
	assert_int_equal(start_detached(release_during_fork, &rl), 0);
	t0 = now_ms();
	__atomic_store_n(&rl.forking, 1, __ATOMIC_SEQ_CST);
	pid = fork();
	if (pid == 0)
		_exit(child_after_held_sink(a, &g, b, &rb));
	forked_ms = now_ms() - t0;
	assert_true(pid > 0);
	assert_int_equal(sem_wait_bounded(&g.done), 0);
	assert_int_equal(sem_wait_bounded(&g.done), 0);
	status = wait_child(pid, WAIT_CHILD_MS);

	assert_child_ok(status);
	/* The gate opened 50 ms after fork() began, and fork() returned only after the line. */
	assert_true(forked_ms >= (double)rl.delay_ms - 1.0);
	assert_int_equal(g.rec.n, 1);
	assert_int_equal(rb.n, 1);
	tp_log(a, TP_LOG_INFO, "parent a");
	assert_int_equal(g.rec.n, 2);
	tp_logger_destroy(a);
	tp_logger_destroy(b);
	sem_destroy(&g.entered);
	sem_destroy(&g.release);
	sem_destroy(&g.done);
	rec_free(&g.rec);
	rec_free(&rb);
	parent_watchdog(false);
}

/* A sink that forks on its first call; the child logs from inside the sink, then returns. */
struct forking_sink {
	tp_logger *self, *other;
	struct recorder rec, other_rec;
	int calls;
	pid_t pid; /* 0 in the child */
};

static void forking_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct forking_sink *fs = user;

	rec_sink(&fs->rec, level, line, len);
	if (fs->calls++ > 0)
		return;
	fs->pid = fork();
	if (fs->pid == 0) {
		child_watchdog();
		/* Its own logger is emitting (here, as in the parent): dropped, not a deadlock. */
		tp_log(fs->self, TP_LOG_INFO, "dropped");
		/* Any other logger: at once. */
		tp_log(fs->other, TP_LOG_INFO, "child, inside the sink");
		tp_logger_destroy(tp_logger_create(TP_LOG_INFO));
	}
}

/* The child, back from the sink: the logger it was emitting through is free again. */
static int child_after_forking_sink(struct forking_sink *fs)
{
	tp_log(fs->self, TP_LOG_INFO, "child, after the sink");
	if (fs->rec.n != 2 ||
	    strcmp(after_prefix(fs->rec.lines[1].text), "child, after the sink\n") != 0)
		return 1;
	if (fs->other_rec.n != 1 ||
	    strcmp(after_prefix(fs->other_rec.lines[0].text), "child, inside the sink\n") != 0)
		return 2;
	return 0;
}

/*
 * A sink forks: in the child, still inside the sink, its own logger drops lines (no deadlock) and
 * any other logger works; once the sink has returned, in either process, its logger works too.
 */
static void logger_sink_that_forks(void **state)
{
	struct forking_sink fs;
	int status;

	(void)state;
	parent_watchdog(true);
	memset(&fs, 0, sizeof(fs));
	fs.pid = -1;
	fs.self = tp_logger_create(TP_LOG_DEBUG);
	assert_non_null(fs.self);
	rec_init(&fs.rec, 8);
	fs.other = recording_logger(TP_LOG_DEBUG, &fs.other_rec, 8);
	assert_int_equal(tp_logger_set_sink(fs.self, forking_sink, &fs), 0);

	tp_log(fs.self, TP_LOG_INFO, "forks");
	if (fs.pid == 0)
		_exit(child_after_forking_sink(&fs));
	assert_true(fs.pid > 0);
	status = wait_child(fs.pid, WAIT_CHILD_MS);
	assert_child_ok(status);
	tp_log(fs.self, TP_LOG_INFO, "parent, after the sink");
	tp_log(fs.other, TP_LOG_INFO, "parent, other");
	assert_int_equal(fs.rec.n, 2);
	assert_string_equal(after_prefix(fs.rec.lines[0].text), "forks\n");
	assert_string_equal(after_prefix(fs.rec.lines[1].text), "parent, after the sink\n");
	assert_int_equal(fs.other_rec.n, 1);
	assert_string_equal(after_prefix(fs.other_rec.lines[0].text), "parent, other\n");
	tp_logger_destroy(fs.self);
	tp_logger_destroy(fs.other);
	rec_free(&fs.rec);
	rec_free(&fs.other_rec);
	parent_watchdog(false);
}

/* Counts its lines (under its logger's lock) and logs each one on through `next`, if set. */
struct counter {
	long n;
	tp_logger *next;
};

static void count_sink(void *user, tp_log_level level, const char *line, size_t len)
{
	struct counter *c = user;

	(void)level;
	(void)line;
	(void)len;
	c->n++;
	if (c->next != NULL)
		tp_log(c->next, TP_LOG_INFO, "passed on");
}

#define N_FORK_LOGGERS 3
#define N_FORKS	       20

struct fork_storm {
	tp_logger *loggers[N_FORK_LOGGERS]; /* [0] the singleton; [1]'s sink logs on through [2] */
	struct counter counts[N_FORK_LOGGERS];
	int stop; /* atomic */
};

static void *storm_logger_thread(void *arg)
{
	struct fork_storm *st = arg;

	for (unsigned i = 0; !__atomic_load_n(&st->stop, __ATOMIC_SEQ_CST); i++) {
		tp_log(st->loggers[i % N_FORK_LOGGERS], TP_LOG_ERROR, "line %u", i);
		if (i % 64 == 0)
			tp_logger_destroy(tp_logger_create(TP_LOG_INFO));
	}
	return NULL;
}

/* In a child of the storm: each logger takes a line at once, and its sink sees it. */
static int child_after_storm(struct fork_storm *st)
{
	long before[N_FORK_LOGGERS];

	child_watchdog();
	for (int i = 0; i < N_FORK_LOGGERS; i++)
		before[i] = st->counts[i].n;
	for (int i = 0; i < N_FORK_LOGGERS; i++)
		tp_log(st->loggers[i], TP_LOG_ERROR, "child");
	if (st->counts[0].n != before[0] + 1 || st->counts[1].n != before[1] + 1 ||
	    st->counts[2].n != before[2] + 2)
		return 1;
	return 0;
}

/* Forks again and again while threads log through three loggers, one of them nested: no child
 * ever finds a logger locked. */
static void logger_fork_while_threads_log(void **state)
{
	struct fork_storm st;
	pthread_t threads[4];
	int status[N_FORKS];

	(void)state;
	parent_watchdog(true);
	memset(&st, 0, sizeof(st));
	st.loggers[0] = tp_logger_get_instance();
	for (int i = 1; i < N_FORK_LOGGERS; i++) {
		st.loggers[i] = tp_logger_create(TP_LOG_DEBUG);
		assert_non_null(st.loggers[i]);
	}
	st.counts[1].next = st.loggers[2];
	for (int i = 0; i < N_FORK_LOGGERS; i++)
		assert_int_equal(tp_logger_set_sink(st.loggers[i], count_sink, &st.counts[i]), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, storm_logger_thread, &st), 0);
	for (int k = 0; k < N_FORKS; k++) {
		pid_t pid;

		sleep_ms(1);
		pid = fork();
		if (pid == 0)
			_exit(child_after_storm(&st));
		status[k] = pid > 0 ? wait_child(pid, WAIT_CHILD_MS) : -3;
	}
	__atomic_store_n(&st.stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	assert_int_equal(tp_logger_set_sink(st.loggers[0], NULL, NULL), 0);
	for (int k = 0; k < N_FORKS; k++)
		assert_child_ok(status[k]);
	assert_true(st.counts[1].n > 0);
	for (int i = 1; i < N_FORK_LOGGERS; i++)
		tp_logger_destroy(st.loggers[i]);
	parent_watchdog(false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: nothing may touch the singleton before these four. */
		cmocka_unit_test(logger_singleton_env_fallback),
		cmocka_unit_test(logger_singleton_env_long_value),
		cmocka_unit_test(logger_singleton_first_use_by_tp_log),
		cmocka_unit_test(logger_singleton_level_from_env),
		cmocka_unit_test(logger_singleton_same_pointer),
		cmocka_unit_test(logger_null_logger_uses_singleton),
		cmocka_unit_test(logger_level_names),
		cmocka_unit_test(logger_level_names_in_lines),
		cmocka_unit_test(logger_parse_valid),
		cmocka_unit_test(logger_parse_invalid),
		cmocka_unit_test(logger_parse_null),
		cmocka_unit_test(logger_create_einval),
		cmocka_unit_test(logger_set_level_einval),
		cmocka_unit_test(logger_null_args),
		cmocka_unit_test(logger_filter_below_threshold),
		cmocka_unit_test(logger_filtered_args_not_evaluated),
		cmocka_unit_test(logger_unknown_level_message),
		cmocka_unit_test(logger_null_format),
		cmocka_unit_test(logger_sink_line_format),
		cmocka_unit_test(logger_tp_log_macro_location),
		cmocka_unit_test(logger_atv_formats),
		cmocka_unit_test(logger_preserves_errno),
		cmocka_unit_test(logger_truncates_long_message),
		cmocka_unit_test(logger_set_file_roundtrip),
		cmocka_unit_test(logger_stderr_default_and_restore),
		cmocka_unit_test(logger_sink_reentry_dropped),
		cmocka_unit_test(logger_concurrent_file_lines_whole),
		cmocka_unit_test(logger_concurrent_sink_lines_whole),
		cmocka_unit_test(logger_concurrent_shared_destination),
		cmocka_unit_test(logger_concurrent_reconfigure),
		cmocka_unit_test(logger_fork_waits_for_held_sink),
		cmocka_unit_test(logger_sink_that_forks),
		cmocka_unit_test(logger_fork_while_threads_log),
	};

	/* Before the first tp_logger_get_instance(): see the top of this file. */
	if (setenv("TP_LOG_LEVEL", ENV_LEVEL_TEXT, 1) != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
