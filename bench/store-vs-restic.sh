#!/usr/bin/env bash
# bench/store-vs-restic.sh: store throughput and peak memory on a 1 GB
# stream against `restic backup --stdin` into a local repository, same run.
#
#   bench/store-vs-restic.sh [BYTES]      (default 1 GB; needs a built libdnadata.a)
#
# The input is generated once into a file (half text, half random: poorly
# compressible but realistic) and piped to both tools from the page cache.
# Each tool runs RUNS times (default 3), alternating, into a fresh store or
# repository; the best time of each is reported (robust to other load on
# the machine), with every run listed. Paste the summary into docs/BENCHMARKS.md.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bytes=${1:-1000000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/dd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

cc -std=c11 -O2 -D_GNU_SOURCE -pthread -I"$src/src" -I"$src" -o "$work/store-bench" \
	"$src/bench/store-bench.c" "$src/libdnadata.a" \
	$(pkg-config --libs libsodium libcrypto libzstd libgit2 libcurl libpq inih) -lm

"$work/store-bench" generate "$bytes" > "$work/input"
cat "$work/input" > /dev/null # warm the page cache

measure() { # name, command...: runs it under /usr/bin/time -v, prints seconds and peak RSS
	local name=$1; shift
	sync
	/usr/bin/time -v -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" < "$work/input"
	local secs rss
	secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/$name.time")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
	echo "$name $secs $rss"
}

export DNADATA_PASSPHRASE=bench RESTIC_PASSWORD=bench
runs=${RUNS:-3}
best() { # "name secs rss" lines on stdin -> the line with the smallest secs
	sort -k2,2g | head -n 1
}
all_ours= all_theirs=
for i in $(seq "$runs"); do
	rm -rf "$work/state" "$work/store" "$work/restic"
	mkdir -p "$work/state"
	"$work/store-bench" init "$work/state" "file://$work/store" 2> /dev/null
	all_ours+="$(measure git-dnadata "$work/store-bench" store "$work/state" "file://$work/store")"$'\n'
	restic init -q --repo "$work/restic" > /dev/null
	all_theirs+="$(measure restic restic backup -q --repo "$work/restic" --stdin --stdin-filename data)"$'\n'
done
printf '%s%s' "$all_ours" "$all_theirs" | sed '/^$/d; s/^/run: /'
read -r _ s1 r1 <<< "$(printf '%s' "$all_ours" | sed '/^$/d' | best)"
read -r _ s2 r2 <<< "$(printf '%s' "$all_theirs" | sed '/^$/d' | best)"
stored1=$(du -sb "$work/store/data" | cut -f1)
stored2=$(du -sb "$work/restic/data" | cut -f1)
printf 'input: %d bytes, %d cores, best of %d runs each\n' "$bytes" "$(nproc)" "$runs"
awk -v b="$bytes" -v s1="$s1" -v r1="$r1" -v s2="$s2" -v r2="$r2" -v d1="$stored1" -v d2="$stored2" 'BEGIN {
	printf "git-dnadata store: %6.2f s  %7.1f MB/s  peak RSS %6.1f MiB  stored %6.1f MB\n", s1, b/s1/1e6, r1/1024, d1/1e6
	printf "restic --stdin:    %6.2f s  %7.1f MB/s  peak RSS %6.1f MiB  stored %6.1f MB\n", s2, b/s2/1e6, r2/1024, d2/1e6
	printf "throughput ratio (git-dnadata / restic): %.2fx\n", s2/s1
}'
