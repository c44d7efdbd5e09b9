#!/bin/sh
# test_plot.sh TP_BENCH OUT - tp-bench --plot writes a non-empty SVG and PNG (meson test
# tp-bench-plot). Exit 77 (skipped) where gnuplot is not installed.
set -eu
bench=$1
out=$2
command -v gnuplot >/dev/null 2>&1 || {
	echo "gnuplot not found: skipped"
	exit 77
}
rm -f "$out.svg" "$out.png"
"$bench" --kernel fib,submit --runtime serial,thread_pool,tp_task,classic --size small \
	--repeat 1 --plot "$out.svg"
[ -s "$out.svg" ] || { echo "FAIL: $out.svg missing or empty"; exit 1; }
grep -q '<svg' "$out.svg" || { echo "FAIL: $out.svg is not an SVG"; exit 1; }
[ -s "$out.png" ] || { echo "FAIL: $out.png missing or empty"; exit 1; }
[ "$(head -c 4 "$out.png" | tail -c 3)" = PNG ] || { echo "FAIL: $out.png is not a PNG"; exit 1; }
echo "ok: $out.svg ($(wc -c <"$out.svg") bytes), $out.png ($(wc -c <"$out.png") bytes)"
