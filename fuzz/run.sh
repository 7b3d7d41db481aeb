#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] [OUTDIR]: build every harness and run each for
# SECONDS (default 60) on one core, with its seed corpus fuzz/corpus/<name>/
# when present. Prints executions per harness; exits non-zero on a crash.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
out=${2:-$top/fuzz/bin}
"$top/fuzz/build.sh" "$out" >/dev/null
status=0
for bin in "$out"/fuzz-*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	corpus=$(mktemp -d)
	[ -d "$top/fuzz/corpus/$name" ] && cp -r "$top/fuzz/corpus/$name/." "$corpus/"
	log=$(mktemp)
	if "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$out/$name-" "$corpus" >"$log" 2>&1; then
		execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
		[ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
		echo "$name: ${execs:-?} executions, no crash"
	else
		echo "$name: CRASH (see $log and $out/$name-*)"
		tail -n 30 "$log"
		status=1
	fi
	rm -rf "$corpus"
done
exit $status
