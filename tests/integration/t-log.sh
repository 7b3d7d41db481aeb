#!/usr/bin/env bash
# t-log.sh: `git dnadata log` on real git and PostgreSQL: every commit that
# changed the profile's ref file, newest first (the commits `git log --
# .dnadata/refs/<profile>` shows), with author, date, snapshot id and the
# ref's tables, rows and bytes; -n, --oneline, --json; a removed ref file and
# a ref file that does not parse in an old commit are shown, not fatal; log
# reads git only (no store, no server).
. "$(dirname "$0")/../lib.sh"

json_get() {
	printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1))"
}

# Three snapshots of "clean" with an unrelated commit between the second and third.
setup_history() {
	repo_with_db log
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 10) i"
	expect_ok git dnadata snapshot
	ID1=$OUT
	psql_q "$DB" "INSERT INTO t SELECT i, 'v' || i FROM generate_series(11, 25) i"
	expect_ok git dnadata snapshot -m "twenty-five rows"
	ID2=$OUT
	echo "unrelated" >README
	git add README
	git commit -qm "an unrelated commit"
	psql_q "$DB" "CREATE TABLE u (id int PRIMARY KEY)"
	expect_ok git dnadata snapshot
	ID3=$OUT
}

test_log_shows_each_commit_that_changed_the_ref_newest_first() {
	setup_history
	expect_ok git dnadata log
	local commits
	commits=$(git log --format=%h --abbrev=12 -- .dnadata/refs/clean)
	assert_eq 3 "$(echo "$commits" | grep -c .)"
	assert_eq "$commits" "$(echo "$OUT" | sed -n 's/^commit //p')" "the commits git log shows for the ref file, in order"
	assert_eq "${ID3:0:12}
${ID2:0:12}
${ID1:0:12}" "$(echo "$OUT" | sed -n 's/^Snapshot: \([0-9a-f]*\).*/\1/p')"
	assert_contains "$OUT" "Snapshot: ${ID2:0:12}  1 table, 25 rows, "
	assert_contains "$OUT" "Snapshot: ${ID3:0:12}  2 tables, 25 rows, "
	assert_contains "$OUT" "Author:   $(git config user.name) <$(git config user.email)>"
	assert_contains "$OUT" "    dnadata: twenty-five rows"
	assert_not_contains "$OUT" "an unrelated commit"
	[[ $(echo "$OUT" | grep '^Date:' | head -n 1) =~ ^Date:\ +[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8}\ [+-][0-9]{4}$ ]] ||
		fail "unexpected date line: $OUT"
}

test_log_limits_and_oneline() {
	setup_history
	expect_ok git dnadata log -n 2 --oneline
	assert_eq 2 "$(echo "$OUT" | grep -c .)"
	local first
	first=$(echo "$OUT" | head -n 1)
	assert_eq "$(git log -1 --format=%h --abbrev=12 -- .dnadata/refs/clean)" "$(echo "$first" | cut -d' ' -f1)"
	assert_eq "${ID3:0:12}" "$(echo "$first" | cut -d' ' -f3)"
	assert_contains "$first" "2 tables, 25 rows"
	assert_contains "$(echo "$OUT" | tail -n 1)" "dnadata: twenty-five rows"
	expect_ok git dnadata log -n 0
	assert_eq "" "$OUT"
}

test_log_json_is_valid_and_complete() {
	setup_history
	expect_ok git dnadata log --json
	assert_eq '"clean"' "$(json_get 'd["profile"]')"
	assert_eq "[\"$ID3\", \"$ID2\", \"$ID1\"]" "$(json_get '[e["snapshot"] for e in d["entries"]]')"
	assert_eq "[25, 25, 10]" "$(json_get '[e["rows"] for e in d["entries"]]')"
	assert_eq "[2, 1, 1]" "$(json_get '[e["tables"] for e in d["entries"]]')"
	assert_eq "\"$(git log -1 --format=%H -- .dnadata/refs/clean)\"" "$(json_get 'd["entries"][0]["commit"]')"
	assert_eq "$(git log -1 --format=%at)" "$(json_get 'd["entries"][0]["time"]')"
	assert_eq '[false, null, null]' "$(json_get '[d["entries"][0][k] for k in ("removed", "error", "media_files")]')"
	[ "$(json_get 'd["entries"][0]["bytes"]')" -gt 0 ] || fail "no bytes: $OUT"
	expect_ok git dnadata log --json -n 1
	assert_eq 1 "$(json_get 'len(d["entries"])')"
}

test_log_shows_a_removed_and_an_unreadable_ref_and_goes_on() {
	setup_history
	git rm -q .dnadata/refs/clean
	git commit -qm "drop the ref"
	printf 'dnadata-ref 1\nsnapshot nothex\n' >.dnadata/refs/clean
	git add .dnadata/refs/clean
	git commit -qm "a broken ref"
	expect_ok git dnadata log
	assert_contains "$OUT" "Snapshot: unreadable ("
	assert_contains "$OUT" ":.dnadata/refs/clean:2: "
	assert_contains "$OUT" "Snapshot: none (the ref file was removed)"
	assert_eq 5 "$(echo "$OUT" | grep -c '^commit ')" "all five changes, the old ones included"
	expect_ok git dnadata log --json
	assert_eq "[null, true]" "$(json_get '[d["entries"][0]["snapshot"], d["entries"][1]["removed"]]')"
	assert_contains "$(json_get 'd["entries"][0]["error"]')" "malformed snapshot id"
}

test_log_of_a_profile_without_history_and_of_a_side_branch_merge() {
	repo_with_db logm
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	expect_ok git dnadata log
	assert_contains "$OUT" "no history: no commit of this branch changed .dnadata/refs/clean"
	expect_ok git dnadata snapshot
	git checkout -q -b side
	psql_q "$DB" "INSERT INTO t VALUES (1)"
	expect_ok git dnadata snapshot -m "on the side"
	local side=$OUT
	git checkout -q main
	echo x >x && git add x && git commit -qm "main moves on"
	git merge -q --no-edit side
	expect_ok git dnadata log --oneline
	assert_eq 2 "$(echo "$OUT" | grep -c .)" "the merge took side's ref as it is: not a change of its own"
	assert_contains "$(echo "$OUT" | head -n 1)" "${side:0:12}"
	assert_contains "$(echo "$OUT" | head -n 1)" "on the side"
}

test_log_needs_neither_store_nor_server() {
	setup_history
	mv .git/dnadata/store "$T/store-away"
	mv .git/dnadata/cache "$T/cache-away"
	DNADATA_DATABASE="host=/nonexistent dbname=x" expect_ok git dnadata log --oneline
	assert_eq 3 "$(echo "$OUT" | grep -c .)"
	expect_fail 2 git dnadata log clean extra
	expect_fail 1 git dnadata log nosuchprofile
}

run_tests
