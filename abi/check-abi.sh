#!/usr/bin/env bash
# abi/check-abi.sh - compares a built libtpool.so with the ABI baseline of its soname (abidiff).
#
# Usage: abi/check-abi.sh [--baseline FILE|DIR] LIBRARY HEADERS_DIR
#   LIBRARY      the built shared library, with its debug info (e.g. build/src/libtpool.so from
#                the default debugoptimized build; the check is skipped without debug info)
#   HEADERS_DIR  the public headers (include/): types defined elsewhere are private, and changes
#                to them (struct tp_pool, ...) are not ABI changes
#   --baseline   an ABI file written by abidw (abi/README.md), or a directory of them named
#                SONAME.abi (default: the directory of this script): then the baseline is the
#                one named after the library's soname.
#
# Builds nothing. Exit status: 0 if the library is compatible with the baseline (added functions
# and variables are reported as a note), 1 if not, 77 (skipped) without abidiff or debug info.
#
#  - Removed or incompatibly changed functions and variables (abidiff's bit 8) fail.
#  - Any change abidiff reports to the types of the exported functions and variables (bit 4 with
#    changed functions or variables) fails too: abidiff counts a struct that grows as a change
#    to review, not as an incompatible one, but tp_frame, tp_group, tp_stats, tp_pool_options and
#    struct tp__deque are allocated or read by the callers' own code (the inline fork-join paths
#    in particular), so a new size or offset breaks programs compiled with the old headers.
#  - If the library's soname is not the baseline's, the check passes only when the soname's
#    number went up (the ABI break has been declared), and says how to write the new baseline.
#
# Policy (abi/README.md): a failure here means a soname bump (tp_soversion in meson.build) and a
# new baseline; additions only need a new minor version.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
baseline=$here

usage() {
	echo "usage: $0 [--baseline FILE|DIR] LIBRARY HEADERS_DIR" >&2
	exit 2
}

while (($#)); do
	case $1 in
	--baseline)
		(($# >= 2)) || usage
		baseline=$2
		shift 2
		;;
	--baseline=*)
		baseline=${1#--baseline=}
		shift
		;;
	-h | --help) sed -n '2,/^set /p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	-*) usage ;;
	*) break ;;
	esac
done
(($# == 2)) || usage
lib=$1
headers=$2

for tool in abidiff readelf; do
	if ! command -v "$tool" >/dev/null; then
		echo "check-abi: $tool not found (Debian: apt-get install abigail-tools binutils): skipped"
		exit 77
	fi
done
[[ -f $lib ]] || { echo "check-abi: $lib: no such file"; exit 1; }
[[ -d $headers ]] || { echo "check-abi: $headers: no such directory"; exit 1; }
if ! readelf -W -S "$lib" | grep -q '\.debug_info'; then
	echo "check-abi: $lib has no debug info (build with -g, e.g. the default debugoptimized" \
		"buildtype): skipped"
	exit 77
fi

# The regeneration command, for the messages below.
regen_hint() {
	echo "  abidw --headers-dir include --drop-private-types --no-corpus-path --no-comp-dir-path \\"
	echo "        --no-elf-needed --short-locs --type-id-style hash \\"
	echo "        --out-file abi/$1.abi build/src/libtpool.so"
	echo "(from a debugoptimized build at the release; then git rm the old baseline: abi/README.md)"
}

# soname_major SONAME: the number after ".so.", or nothing.
soname_major() {
	local s=${1##*.so.}
	[[ $1 == *.so.* && $s =~ ^[0-9]+ ]] && echo "${BASH_REMATCH[0]}"
}

soname=$(readelf -W -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ -n $soname ]] || { echo "check-abi: $lib has no soname"; exit 1; }

# Pick the baseline: the one of this soname, or else the newest one, to compare sonames with.
if [[ -d $baseline ]]; then
	dir=$baseline
	baseline=
	if [[ -f $dir/$soname.abi ]]; then
		baseline=$dir/$soname.abi
	else
		best=-1
		for f in "$dir"/*.abi; do
			[[ -f $f ]] || continue
			m=$(soname_major "$(basename "$f" .abi)")
			if [[ -n $m ]] && ((m > best)); then
				best=$m
				baseline=$f
			fi
		done
		if [[ -z $baseline ]]; then
			echo "check-abi: FAIL: no baseline (*.abi) in $dir. Write one with:"
			regen_hint "$soname"
			exit 1
		fi
	fi
fi
[[ -f $baseline ]] || { echo "check-abi: $baseline: no such file"; exit 1; }
base_soname=$(sed -n "1s/.*soname='\([^']*\)'.*/\1/p" "$baseline")
[[ -n $base_soname ]] || { echo "check-abi: $baseline names no soname"; exit 1; }

if [[ $soname != "$base_soname" ]]; then
	new=$(soname_major "$soname")
	old=$(soname_major "$base_soname")
	if [[ -n $new && -n $old && ${soname%.so.*} == "${base_soname%.so.*}" ]] && ((new > old)); then
		echo "check-abi: the soname went from $base_soname (baseline $baseline) to $soname:"
		echo "the ABI break is declared, so there is nothing to compare. Before the release,"
		echo "write the baseline of the new soname with:"
		regen_hint "$soname"
		echo "check-abi: ok (soname bumped)"
		exit 0
	fi
	echo "check-abi: FAIL: the library's soname is $soname, the baseline's ($baseline) is" \
		"$base_soname: a soname may only go up (tp_soversion in meson.build)"
	exit 1
fi

echo "check-abi: $lib ($soname) against $baseline"
report=$(abidiff --headers-dir2 "$headers" --drop-private-types "$baseline" "$lib" 2>&1)
status=$?
[[ -z $report ]] || printf '%s\n' "$report"

if ((status & 3)); then
	echo "check-abi: FAIL: abidiff could not compare (exit status $status)"
	exit 1
fi
if ((status & 8)); then
	echo "check-abi: FAIL: incompatible ABI change (functions or variables removed or changed" \
		"incompatibly): bump the soname (tp_soversion in meson.build) and write a new baseline"
	exit 1
fi

# count WHAT KIND: the number abidiff's summary gives, e.g. count Functions Changed.
count() {
	printf '%s\n' "$report" | sed -n -E "s/^$1 changes summary:.* ([0-9]+) $2.*/\1/p" | head -n 1
}

if ((status & 4)); then
	fc=$(count Functions Changed) vc=$(count Variables Changed)
	fr=$(count Functions Removed) vr=$(count Variables Removed)
	fsr=$(count 'Function symbols' Removed) vsr=$(count 'Variable symbols' Removed)
	if [[ -z $fc || -z $vc ]]; then
		echo "check-abi: FAIL: abidiff reports an ABI change and its summary could not be read"
		exit 1
	fi
	if ((fc + vc + ${fr:-0} + ${vr:-0} + ${fsr:-0} + ${vsr:-0} > 0)); then
		echo "check-abi: FAIL: the types of exported functions or variables changed (a size, an" \
			"offset, a field, a parameter: see above). Programs compiled with the old headers" \
			"would break: bump the soname (tp_soversion in meson.build) and write a new baseline"
		exit 1
	fi
	echo "check-abi: note: the ABI grew (added functions or variables, see above): compatible;" \
		"give the release a new minor version, and new symbols a new version node in the map"
fi
echo "check-abi: ok"
exit 0
