#!/bin/sh
# tests/model/mutate.sh [BUILD_DIR] [MODEL...] - the mutation check of the models.
#
# Runs every mutant of every model (each model lists its own: model-NAME --list-mutants) and
# prints one line per mutant: caught (by which suite and scheduler, after how many executions,
# and what Relacy saw) or survived, against what the mutant expects (a mutant expected to survive
# says why in its description). BUILD_DIR is a meson build directory with the models built
# (default: build-model); MODEL picks some of deque, handshake, future, quiescence, idle, tstack
# (default: all). The last line counts the mutants caught and survived, and those that did not do what they
# expect.
# MUTATE_ITERATIONS and MUTATE_BOUND pass --iterations and --bound to every run (default: each
# suite's own, as in `meson test --suite model`).
#
# Exit status: 0 if every mutant did what it expects, 1 otherwise.
set -u

build=${1:-build-model}
[ $# -gt 0 ] && shift
models=${*:-deque handshake future quiescence idle tstack}
opts=
[ -n "${MUTATE_ITERATIONS:-}" ] && opts="$opts --iterations $MUTATE_ITERATIONS"
[ -n "${MUTATE_BOUND:-}" ] && opts="$opts --bound $MUTATE_BOUND"
tab=$(printf '\t')
failed=$(mktemp)
results=$(mktemp)
trap 'rm -f "$failed" "$results"' EXIT

printf '%-11s %-24s %-9s %-9s %s\n' model mutant expected result "how"
for model in $models; do
	exe=$build/tests/model/model-$model
	if [ ! -x "$exe" ]; then
		echo "mutate.sh: $exe is not built" >&2
		echo x >>"$failed"
		continue
	fi
	"$exe" --list-mutants | while IFS="$tab" read -r name expect what; do
		# shellcheck disable=SC2086
		out=$("$exe" --mutant "$name" $opts 2>&1)
		rc=$?
		how=
		case $rc in
		0) result=survived ;;
		1)
			result=caught
			# The failing run's line: "model/suite, scheduler: N executions, T s: RESULT".
			how=$(printf '%s\n' "$out" | grep "^$model/" | grep -v ': ok$' | head -n 1 |
				sed "s|^$model/||")
			;;
		3) result=unapplied ;;
		*) result=error ;;
		esac
		mark=
		if { [ "$expect" = caught ] && [ $result = caught ]; } ||
			{ [ "$expect" = survives ] && [ $result = survived ]; }; then
			:
		else
			mark="  <-- UNEXPECTED"
			echo x >>"$failed"
		fi
		printf '%-11s %-24s %-9s %-9s %s%s\n' "$model" "$name" "$expect" "$result" "$how" "$mark"
		echo "$result" >>"$results"
	done
done
count() { grep -c "^$1\$" "$results"; }
printf 'mutate.sh: %s mutants: %s caught, %s survived; %s not as expected\n' "$(grep -c . "$results")" \
	"$(count caught)" "$(count survived)" "$(grep -c . "$failed")"
[ -s "$failed" ] && exit 1
exit 0
