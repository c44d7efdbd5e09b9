#!/bin/sh
# tests/fuzz/run-fuzz.sh [WORK_DIR] - builds the API fuzzer (fuzz-api.c) with clang's libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer straight from the library's sources, then runs it
# over a fresh copy of the seed corpus (corpus/) for a bounded time. The tree is never written:
# new inputs go to WORK_DIR/corpus, failing inputs to WORK_DIR/artifacts, the log to
# WORK_DIR/fuzz.log. Without WORK_DIR a temporary directory is used, removed after a clean run.
#
# Environment:
#   TP_FUZZ_SECONDS  how long libFuzzer runs (default 60)
#   TP_FUZZ_TIMEOUT  seconds one input may take before libFuzzer reports it (default 25; the
#                    target's own watchdog reports a hang after 5 s, with what each thread runs)
#   TP_FUZZ_CC       the compiler (default clang)
#   TP_FUZZ_CFLAGS   extra compiler flags, e.g. -DFUZZ_ANCESTOR_WAIT=0 (switches: fuzz-api.c)
#   TP_FUZZ_ARGS     extra libFuzzer arguments, e.g. -seed=1
#   TP_FUZZ_HANG_GDB 0 to keep gdb out of hang reports (default: 1 when gdb is installed)
#   TP_FUZZ_REPLAY_RUNS  how many times each input that the fuzzer found (FOUND below) is run
#                    before fuzzing (default 2000; 0: not replayed). They are races, which one run
#                    rarely shows again.
#
# Exit status: 0 if libFuzzer finished and found nothing; 1 if it found a failure or the build
# failed; 77 (meson's "skipped") if clang, its libFuzzer runtime or pkg-config's ck and
# liburcu-cds are missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${TP_FUZZ_SECONDS:-60}
timeout=${TP_FUZZ_TIMEOUT:-25}
cc=${TP_FUZZ_CC:-clang}
extra_cflags=${TP_FUZZ_CFLAGS:-}
extra_args=${TP_FUZZ_ARGS:-}

skip()
{
	echo "fuzz-api: skipped: $*"
	[ "$keep_work" -eq 1 ] || rm -rf "$work"
	exit 77
}

if [ $# -ge 1 ]; then
	work=$1
	keep_work=1
	mkdir -p "$work" || exit 1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/tp-fuzz.XXXXXX") || exit 1
	keep_work=0
fi
work=$(cd "$work" && pwd)

command -v "$cc" >/dev/null 2>&1 || skip "no $cc (install clang to fuzz)"
command -v pkg-config >/dev/null 2>&1 || skip "no pkg-config"
deps=$(pkg-config --cflags --libs ck liburcu-cds 2>/dev/null) || skip "pkg-config finds no ck or liburcu-cds"

# libFuzzer is a separate package on some systems: try a trivial target first.
probe=$work/probe
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' \
	>"$probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" >"$probe.log" 2>&1; then
	cat "$probe.log"
	skip "$cc cannot link -fsanitize=fuzzer,address,undefined (libFuzzer runtime missing?)"
fi
rm -f "$probe" "$probe.c" "$probe.log"

# The library's sources (not the demo in src/cli/), compiled as meson compiles them.
bin=$work/fuzz-api
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter $extra_cflags"
stamp="$cc $flags $deps"
if [ ! -x "$bin" ] || [ "$(cat "$bin.flags" 2>/dev/null)" != "$stamp" ] ||
	[ -n "$(find "$root/src" "$root/include" "$here/fuzz-api.c" -newer "$bin" \
		\( -name '*.c' -o -name '*.h' \) 2>/dev/null | head -n 1)" ]; then
	echo "fuzz-api: building $bin with $cc"
	# shellcheck disable=SC2086 # the flags are lists of words
	if ! "$cc" $flags -I"$root/include" -I"$root/src" \
		$(find "$root/src" -maxdepth 1 -name '*.c' | LC_ALL=C sort) "$here/fuzz-api.c" \
		-o "$bin" $deps -pthread; then
		echo "fuzz-api: build failed"
		exit 1
	fi
	printf '%s' "$stamp" >"$bin.flags"
fi

# A fresh copy of the seeds: what libFuzzer adds stays in the work directory.
rm -rf "$work/corpus" "$work/artifacts"
mkdir -p "$work/corpus" "$work/artifacts"
cp "$here"/corpus/* "$work/corpus/"

# A hang report then shows every thread's stack too (fuzz-api.c's watchdog runs gdb).
if [ -z "${TP_FUZZ_HANG_GDB:-}" ] && command -v gdb >/dev/null 2>&1; then
	TP_FUZZ_HANG_GDB=1
	export TP_FUZZ_HANG_GDB
fi

# The inputs in corpus/ that the fuzzer found (README.md), each run many times: a race that
# one run rarely hits again fails here within a few hundred runs.
FOUND="help-wait-starves drain-hang-seen-once idle-shutdown-lost-wakeup"
replay_runs=${TP_FUZZ_REPLAY_RUNS:-2000}
if [ "$replay_runs" -gt 0 ]; then
	for f in $FOUND; do
		echo "fuzz-api: replaying corpus/$f $replay_runs times"
		if ! ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64} \
			UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} "$bin" \
			-runs="$replay_runs" -timeout="$timeout" -rss_limit_mb=4096 -error_exitcode=1 \
			-timeout_exitcode=1 -artifact_prefix="$work/artifacts/" \
			"$here/corpus/$f" >"$work/replay.log" 2>&1; then
			echo "fuzz-api: corpus/$f failed again; the end of $work/replay.log:"
			tail -n 80 "$work/replay.log"
			echo "fuzz-api: reproduce: $bin -runs=$replay_runs $here/corpus/$f"
			exit 1
		fi
	done
fi

echo "fuzz-api: fuzzing for $seconds s over $(ls "$work/corpus" | wc -l) seeds (log: $work/fuzz.log)"
# -error_exitcode and -timeout_exitcode: libFuzzer's defaults (77, 70) would read as "skipped".
# Each input starts and joins several threads; ASan's bookkeeping of that churn alone takes a few
# hundred MB, so the RSS limit is 4 GB instead of 2, and the quarantine of freed memory is
# smaller than ASan's default (its 256 MB would come on top).
# shellcheck disable=SC2086
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} "$bin" \
	-max_total_time="$seconds" -timeout="$timeout" -max_len=257 -print_final_stats=1 \
	-rss_limit_mb=4096 \
	-error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/artifacts/" \
	$extra_args "$work/corpus" >"$work/fuzz.log" 2>&1
status=$?

# libFuzzer's last status line ("#N DONE cov: ... ft: ... corp: ...") and its totals.
last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$work/fuzz.log" | tail -n 1)
runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$work/fuzz.log")
rate=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$work/fuzz.log")
cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s\n' "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s\n' "$last" | sed -n 's/.*corp: \([^ ]*\).*/\1/p')
echo "fuzz-api: ${runs:-?} executions (${rate:-?}/s), cov: ${cov:-?}, ft: ${ft:-?}, corpus: ${corp:-?}"
echo "fuzz-api: libFuzzer's last status: $last"

if [ "$status" -ne 0 ]; then
	echo "fuzz-api: libFuzzer exited with $status; the end of $work/fuzz.log:"
	tail -n 80 "$work/fuzz.log"
	for a in "$work"/artifacts/*; do
		[ -f "$a" ] && echo "fuzz-api: failing input: $a (reproduce: $bin $a)"
	done
	exit 1
fi
[ "$keep_work" -eq 1 ] || rm -rf "$work"
exit 0
