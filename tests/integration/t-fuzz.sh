#!/usr/bin/env bash
# t-fuzz.sh: a short libFuzzer run of every harness in fuzz/ (ASan + UBSan),
# so a parser change that crashes on hostile input fails the suite. Long
# runs: `make fuzz FUZZ_RUNS=10000000` (docs/RELIABILITY.md). DD_FUZZ_SECONDS
# sets the smoke length (default 1 s a harness after its seed corpus:
# the suite's time is CI's, long runs are by hand).
. "$(dirname "$0")/../lib.sh"

FUZZ_BIN=$DD_TMP/fuzz-bin
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

build_fuzzers() {
	[ -f "$FUZZ_BIN/.built" ] && return 0
	"$DD_SRCDIR/fuzz/build.sh" "$FUZZ_BIN" >"$DD_TMP/fuzz-build.log" 2>&1 ||
		fail "fuzz/build.sh failed: $(tail -n 5 "$DD_TMP/fuzz-build.log")"
	touch "$FUZZ_BIN/.built"
}

smoke() {
	local name=$1 secs=${DD_FUZZ_SECONDS:-1} corpus
	build_fuzzers
	[ -x "$FUZZ_BIN/$name" ] || fail "harness $name was not built"
	corpus=$T/corpus
	mkdir -p "$corpus"
	[ -d "$DD_SRCDIR/fuzz/corpus/$name" ] && cp -r "$DD_SRCDIR/fuzz/corpus/$name/." "$corpus/"
	"$FUZZ_BIN/$name" -max_total_time="$secs" -rss_limit_mb=2048 -artifact_prefix="$T/" "$corpus" \
		>"$T/fuzz.log" 2>&1 || fail "$name crashed: $(grep -m3 -E 'ERROR|runtime error|SUMMARY' "$T/fuzz.log")"
	grep -qE 'Done [0-9]+ runs' "$T/fuzz.log" || fail "$name did not report its runs"
	echo "$name: $(grep -oE 'Done [0-9]+ runs' "$T/fuzz.log")"
}

test_every_harness_has_a_smoke_test() {
	local h
	for h in "$DD_SRCDIR"/fuzz/fuzz-*.c; do
		h=$(basename "$h" .c)
		grep -q "^test_${h//-/_}()" "$SELF" || fail "fuzz/$h.c has no smoke test in t-fuzz.sh"
	done
}

test_fuzz_ref() { smoke fuzz-ref; }
test_fuzz_config() { smoke fuzz-config; }
test_fuzz_keyfile() { smoke fuzz-keyfile; }
test_fuzz_pack() { smoke fuzz-pack; }
test_fuzz_manifest() { smoke fuzz-manifest; }
test_fuzz_object() { smoke fuzz-object; }
test_fuzz_s3xml() { smoke fuzz-s3xml; }
test_fuzz_s3creds() { smoke fuzz-s3creds; }
test_fuzz_s3record() { smoke fuzz-s3record; }
test_fuzz_listing() { smoke fuzz-listing; }
test_fuzz_media_index() { smoke fuzz-media-index; }
test_fuzz_normalise() { smoke fuzz-normalise; }
test_fuzz_sqlscan() { smoke fuzz-sqlscan; }
test_fuzz_post_restore() { smoke fuzz-post-restore; }
test_fuzz_incr() { smoke fuzz-incr; }
test_fuzz_restore_plan() { smoke fuzz-restore-plan; }
test_fuzz_conninfo() { smoke fuzz-conninfo; }
test_fuzz_midx() { smoke fuzz-midx; }
test_fuzz_lockrec() { smoke fuzz-lockrec; }
test_fuzz_storelock() { smoke fuzz-storelock; }
test_fuzz_pii() { smoke fuzz-pii; }

run_tests
