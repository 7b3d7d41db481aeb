#!/usr/bin/env bash
# fuzz/run.sh: build every harness (fuzz/build.sh) and run each in turn, one
# process on one core, from its seed corpus fuzz/corpus/<name>/ when present.
#
#   fuzz/run.sh [--runs N] [--only NAME[,NAME..]] [SECONDS] [OUTDIR]
#
# Each harness runs until it has made N executions (--runs; the issue's
# long-run target is 10000000) or SECONDS have passed (default 60; with
# --runs and no SECONDS: no time limit), whichever comes first. --only runs
# the named harnesses (fuzz-ref,fuzz-pack), in that order. An empty value
# stands for "not given" (what `make fuzz` passes for unset variables).
# Prints one line per harness, "NAME: N executions in S s (R/s), no crash",
# "NAME: interrupted ..." (a signal stopped it: no finding, the rest are not
# run) or "NAME: CRASH", and exits non-zero on a crash or an interrupt; the
# crashing input is kept as OUTDIR/NAME-crash-* (add it to fuzz/corpus/NAME/
# once fixed).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
runs= only= secs=
while [ $# -gt 0 ]; do
	case $1 in
	--runs) runs=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
if [ $# -gt 0 ]; then
	secs=$1
	shift
fi
[ -n "$secs" ] || { [ -n "$runs" ] && secs=0; } || secs=60
out=${1:-$top/fuzz/bin}
"$top/fuzz/build.sh" "$out" >/dev/null

if [ -n "$only" ]; then
	names=$(echo "$only" | tr ',' ' ')
else
	names=$(cd "$out" && ls fuzz-* | grep -v -- '-crash-\|-leak-\|-timeout-\|-oom-' || true)
fi
status=0
for name in $names; do
	bin=$out/$name
	[ -x "$bin" ] || { echo "$name: no such harness in $out" >&2; status=1; continue; }
	corpus=$(mktemp -d)
	[ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$corpus/"
	log=$(mktemp)
	args=(-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/$name-")
	[ "$secs" = 0 ] || args+=(-max_total_time="$secs")
	[ -z "$runs" ] || args+=(-runs="$runs")
	start=$(date +%s)
	if "$bin" "${args[@]}" "$corpus" >"$log" 2>&1; then
		took=$(($(date +%s) - start))
		execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
		[ -n "$execs" ] || execs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || true)
		rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
		echo "$name: ${execs:-?} executions in $took s (${rate:-?}/s), no crash"
		rm -f "$log"
	elif grep -q 'libFuzzer: run interrupted' "$log"; then
		# a signal (Ctrl-C, the end of a session), not a finding: no input was kept
		echo "$name: interrupted after $(($(date +%s) - start)) s, no crash found before (log $log)"
		status=1
		rm -rf "$corpus"
		break
	else
		echo "$name: CRASH (log $log, input $out/$name-*)"
		tail -n 30 "$log"
		status=1
	fi
	rm -rf "$corpus"
done
exit $status
