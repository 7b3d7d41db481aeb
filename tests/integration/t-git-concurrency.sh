#!/usr/bin/env bash
# t-git-concurrency.sh: snapshots running at the same time, on real git.
# Two profiles of one database snapshotted at once must both land, in
# either order, with HEAD, the index and the work tree agreeing (the index
# is read and written under index.lock, HEAD moves by compare-and-swap).
# Two snapshots of the same profile at once take turns: the second sees
# the first's ref and finds nothing changed.
. "$(dirname "$0")/../lib.sh"

# Pairs per test: 30 of two profiles, 30 of one profile (each of those two
# snapshots in turn).
PAIRS=30
SAME_PROFILE_PAIRS=30

setup() {
	repo_with_db conc
	expect_ok git dnadata new-profile p2
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)"
	expect_ok git dnadata snapshot clean
	expect_ok git dnadata snapshot p2
}

# Start two snapshots at once; sets RC1/RC2, OUT1/OUT2, ERR1/ERR2.
snapshot_pair() {
	git dnadata snapshot "$1" >"$T/o1" 2>"$T/e1" </dev/null &
	local p1=$!
	git dnadata snapshot "$2" >"$T/o2" 2>"$T/e2" </dev/null &
	local p2=$!
	set +e
	wait "$p1"
	RC1=$?
	wait "$p2"
	RC2=$?
	set -e
	OUT1=$(cat "$T/o1") OUT2=$(cat "$T/o2") ERR1=$(cat "$T/e1") ERR2=$(cat "$T/e2")
	[ "$RC1" = 0 ] || fail "snapshot $1 failed ($RC1): $ERR1"
	[ "$RC2" = 0 ] || fail "snapshot $2 failed ($RC2): $ERR2"
}

# HEAD's tree, the index and the work tree hold the same ref files, and git sees nothing to commit.
assert_agreement() {
	local round=$1
	assert_eq "" "$(git status --porcelain --untracked-files=all -- .dnadata)" "round $round: git status"
	git diff --quiet --cached HEAD -- .dnadata/refs || fail "round $round: HEAD and index differ"
	git diff --quiet HEAD -- .dnadata/refs || fail "round $round: HEAD and work tree differ"
}

test_two_profiles_snapshotted_at_once_both_land() {
	setup
	local i commits
	for i in $(seq 1 "$PAIRS"); do
		psql_q "$DB" "UPDATE t SET v = $i"
		commits=$(git rev-list --count HEAD)
		snapshot_pair clean p2
		assert_eq "$OUT1" "$OUT2" "round $i: one database, one snapshot id"
		assert_eq $((commits + 2)) "$(git rev-list --count HEAD)" "round $i: one commit each"
		assert_agreement "$i"
		assert_contains "$(git show HEAD:.dnadata/refs/clean)" "snapshot $OUT1" "round $i: clean"
		assert_contains "$(git show HEAD:.dnadata/refs/p2)" "snapshot $OUT2" "round $i: p2"
		assert_eq 2 "$(git log -2 --format=%s | grep -c "^dnadata: snapshot ")" "round $i: both commits in history"
	done
}

test_same_profile_snapshotted_at_once_takes_turns() {
	setup
	local i commits
	for i in $(seq 1 "$SAME_PROFILE_PAIRS"); do
		psql_q "$DB" "UPDATE t SET v = $i"
		commits=$(git rev-list --count HEAD)
		snapshot_pair clean clean
		assert_eq "$OUT1" "$OUT2" "round $i: same data, same id"
		assert_eq $((commits + 1)) "$(git rev-list --count HEAD)" "round $i: one commit, the other found nothing changed"
		assert_contains "$ERR1$ERR2" "nothing changed" "round $i"
		assert_agreement "$i"
		assert_contains "$(git show HEAD:.dnadata/refs/clean)" "snapshot $OUT1" "round $i"
	done
}

run_tests
