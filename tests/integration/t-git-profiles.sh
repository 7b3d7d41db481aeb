#!/usr/bin/env bash
# t-git-profiles.sh: new-profile's commit on real git. profiles.ini is read,
# changed and written under the commit's locks, so two new-profile commands
# at once both land: neither loses the other's section, in the file, in
# HEAD or in the index.
. "$(dirname "$0")/../lib.sh"

ROUNDS=10

test_two_new_profiles_at_once_both_land() {
	repo_with_db gprof
	local i a b rc1 rc2 ini
	for i in $(seq 1 "$ROUNDS"); do
		a=a$i b=b$i
		git dnadata new-profile "$a" >"$T/o1" 2>"$T/e1" </dev/null &
		local p1=$!
		git dnadata new-profile "$b" >"$T/o2" 2>"$T/e2" </dev/null &
		local p2=$!
		set +e
		wait "$p1"
		rc1=$?
		wait "$p2"
		rc2=$?
		set -e
		[ "$rc1" = 0 ] || fail "round $i: new-profile $a failed ($rc1): $(cat "$T/e1")"
		[ "$rc2" = 0 ] || fail "round $i: new-profile $b failed ($rc2): $(cat "$T/e2")"
		ini=$(git show HEAD:.dnadata/profiles.ini)
		assert_contains "$ini" "[profile \"$a\"]" "round $i: $a in HEAD"
		assert_contains "$ini" "[profile \"$b\"]" "round $i: $b in HEAD"
		assert_eq "" "$(git status --porcelain)" "round $i: git status"
	done
	assert_eq $((2 * ROUNDS)) "$(git log --format=%s | grep -c '^dnadata: add profile ')"
}

run_tests
