#!/usr/bin/env bash
# bench/mask-bench.sh: the cost of masking on capture (issue 21): a cold
# snapshot with typical rules (five masked columns across three tables)
# against the same snapshot without them, same run, same database.
# Run by hand; not part of the test suite. Target: <= 1.3x the time.
#
#   SCALE=50 REPEAT=3 bench/mask-bench.sh     (needs a built git-dnadata)
#
# SCALE    pgbench scale of the database (default 50), plus bench/pg/dataset.sql
#          at the same scale (customers, documents, events, attachments)
# REPEAT   cold snapshots of each kind, interleaved; medians reported (default 3)
# KEEP=1   keep the work directory; DD_BIN as in bench/pg-bench.sh
#
# The rules: customers.email fake_email (under a unique index: its check
# runs), customers.name fake_name, documents.title hash, documents.body
# redact, events.ip null. Each measure: wall seconds, client CPU, server
# CPU (the masking runs in the server). Results in bench/results/mask-*/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

. "$top/bench/lib.sh"

scale=${SCALE:-${1:-50}}
repeat=${REPEAT:-3}
ddbin=${DD_BIN:-$top/git-dnadata}
bench_setup maskbench "mask-$(date +%Y%m%d-%H%M%S)-s$scale"
bench_cluster_start "$work/pg"
dropcache=no
if (sync && echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then dropcache=yes; fi
{
	bench_env_header
	echo "postgresql: $(q -d postgres -c 'SHOW server_version' | cut -d' ' -f1)"
	echo "settings: $bench_settings"
	echo "scale: $scale, repeat: $repeat, drop_caches before each measurement: $dropcache"
} >"$res/env.txt"
cat "$res/env.txt" >&2

gen_db bench "$scale"
describe_db bench >"$res/dataset.md"

rules='mask = customers.email fake_email
mask = customers.name fake_name
mask = documents.title hash
mask = documents.body redact
mask = events.ip null'

for i in $(seq "$repeat"); do
	new_repo "$work/plain" bench
	measure plain "git dnadata snapshot --no-commit"
	new_repo "$work/masked" bench
	printf '%s\n' "$rules" >>.dnadata/profiles.ini
	git commit -q -am rules
	measure masked "git dnadata snapshot --no-commit"
	grep -q '^masked ' .dnadata/refs/clean || { echo "error: the masked snapshot's ref says nothing of it" >&2; exit 1; }
done

sv() { MED_FMT=%.1f med "$1" 7; }
{
	echo "## Masking on capture, scale $scale (median of $repeat)"
	echo
	echo "| snapshot | wall s | client CPU s | server CPU s |"
	echo "|---|---:|---:|---:|"
	echo "| without rules | $(med plain 2) | $(cpu plain) | $(sv plain) |"
	echo "| five masked columns | $(med masked 2) | $(cpu masked) | $(sv masked) |"
	echo
	r=$(ratio "$(med masked 2)" "$(med plain 2)")
	echo "time ratio: ${r}x (target <= 1.3x: $(verdict "$r" 1.3)); CPU ratio (client + server):" \
		"$(ratio "$(awk -v a="$(cpu masked)" -v b="$(sv masked)" 'BEGIN {print a + b}')" \
			"$(awk -v a="$(cpu plain)" -v b="$(sv plain)" 'BEGIN {print a + b}')")x"
} | tee "$res/summary.md"
