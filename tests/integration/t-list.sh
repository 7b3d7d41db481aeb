#!/usr/bin/env bash
# t-list.sh: `git dnadata list` on real git and PostgreSQL: snapshots of the
# local cache and of the store, each with profile, created time, size, where
# it is (cache / store / both / missing) and the branch and tag tips whose ref
# files name it; looking does not change where a snapshot is; an unreachable
# store is a note, not a failure; a thousand branches stay fast.
. "$(dirname "$0")/../lib.sh"

json_get() {
	printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1))"
}

# the line of snapshot $1 in $OUT
line_of() { echo "$OUT" | grep "^${1:0:12} " || fail "no line for ${1:0:12} in:"$'\n'"$OUT"; }

# A on main (and tag v1), in cache and store; B on branch feature, --dump-only: the cache only.
setup_two() {
	repo_with_db list --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) i"
	expect_ok git dnadata snapshot
	A=$OUT
	git tag v1
	git checkout -q -b feature
	psql_q "$DB" "INSERT INTO t VALUES (1001, 'x')"
	expect_ok git dnadata snapshot --dump-only
	B=$OUT
	git checkout -q main
}

test_list_shows_where_each_snapshot_is_and_what_names_it() {
	setup_two
	expect_ok git dnadata list
	assert_contains "$(echo "$OUT" | head -n 1)" "SNAPSHOT      CREATED               PROFILE"
	local a b
	a=$(line_of "$A")
	b=$(line_of "$B")
	assert_contains "$a" " clean "
	assert_contains "$a" " both "
	assert_contains "$a" "main:clean, tags/v1:clean"
	assert_contains "$b" " cache "
	assert_contains "$b" "feature:clean"
	assert_not_contains "$b" "main:clean"
	[[ $a =~ \ 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\  ]] || fail "no created time: $a"
	expect_ok git dnadata list --json
	# newest first (created has one-second steps: ties go by id)
	assert_eq true "$(json_get '[s["created"] for s in d["snapshots"]] == sorted([s["created"] for s in d["snapshots"]], reverse=True)')"
	local by="{s['id']: s for s in d['snapshots']}"
	assert_eq '[["cache", 1001, 1], ["both", 1000, 1]]' \
		"$(json_get "[[($by)[i][k] for k in ('where', 'rows', 'tables')] for i in ('$B', '$A')]")"
	assert_eq '[["refs/heads/main", "clean"], ["refs/tags/v1", "clean"]]' \
		"$(json_get "[[n['ref'], n['profile']] for n in ($by)['$A']['named_by']]")"
	assert_eq 'true' "$(json_get 'd["store_listed"]')"
	[ "$(json_get "($by)['$A']['bytes']")" -gt 30000 ] || fail "size: $OUT"
}

test_list_reads_a_store_only_manifest_without_caching_it() {
	setup_two
	rm .git/dnadata/cache/snapshots/"$A"
	expect_ok git dnadata list
	assert_contains "$(line_of "$A")" " store "
	assert_contains "$(line_of "$A")" " clean "
	assert_no_file .git/dnadata/cache/snapshots/"$A"
	expect_ok git dnadata list
	assert_contains "$(line_of "$A")" " store " "listing did not move it into the cache"
}

test_list_shows_uncommitted_and_missing_snapshots() {
	setup_two
	# a ref naming a snapshot that is nowhere, committed on a branch
	git checkout -q -b ghost
	local ghost=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
	printf 'dnadata-ref 1\nsnapshot %s\n' "$ghost" >.dnadata/refs/clean
	git commit -qam "a ref to a snapshot nobody has"
	git checkout -q main
	# a snapshot in the work tree only (not committed)
	psql_q "$DB" "DELETE FROM t WHERE id > 500"
	expect_ok git dnadata snapshot --no-commit
	local c=$OUT
	expect_ok git dnadata list
	assert_contains "$(line_of "$ghost")" " missing "
	assert_contains "$(line_of "$ghost")" "ghost:clean"
	assert_contains "$(line_of "$c")" "(work tree):clean"
	assert_not_contains "$(line_of "$A")" "(work tree)"
	expect_ok git dnadata list --json
	assert_eq '[null, "clean"]' "$(json_get "[[n['ref'], n['profile']] for s in d['snapshots'] if s['id'] == '$c' for n in s['named_by']][0]")"
}

test_list_works_offline_with_a_note() {
	setup_two
	rm .git/dnadata/cache/snapshots/"$A"
	mv "$T/store" "$T/store-away"
	expect_ok git dnadata list
	assert_contains "$OUT" "note: the store could not be listed, so this is the local cache only: "
	assert_contains "$(line_of "$B")" " cache "
	assert_contains "$(line_of "$A")" " unknown "
	expect_ok git dnadata list --json
	assert_eq 'false' "$(json_get 'd["store_listed"]')"
	assert_eq "null" "$(json_get "[s['in_store'] for s in d['snapshots'] if s['id'] == '$B'][0]")"
	mv "$T/store-away" "$T/store"
	expect_ok git dnadata list
	assert_not_contains "$OUT" "note:"
}

test_list_with_a_thousand_branches_stays_fast() {
	setup_two
	local head
	head=$(git rev-parse HEAD)
	for i in $(seq 1 1000); do echo "create refs/heads/b$i $head"; done | git update-ref --stdin
	local t0 t1
	t0=${EPOCHREALTIME/./}
	expect_ok git dnadata list --json
	t1=${EPOCHREALTIME/./}
	assert_eq 1002 "$(json_get "[len(s['named_by']) for s in d['snapshots'] if s['id'] == '$A'][0]")" \
		"main, v1 and the thousand branches"
	tap_note "list with 1002 branches and tags: $(((t1 - t0) / 1000)) ms"
	[ $(((t1 - t0) / 1000)) -lt 3000 ] || fail "list took $(((t1 - t0) / 1000)) ms"
}

test_list_leaves_inline_profiles_out_and_diff_points_to_git_diff() {
	setup_two
	expect_ok git dnadata new-profile seed --inline
	psql_q "$DB" "CREATE TABLE s (id int PRIMARY KEY)"
	expect_ok git dnadata snapshot seed
	local inl
	inl=$(sed -n 's/^snapshot //p' .dnadata/refs/seed)
	expect_ok git dnadata list
	assert_not_contains "$OUT" "${inl:0:12}" "an inline ref's data is in git, not a snapshot of the store"
	assert_not_contains "$OUT" "missing"
	expect_fail 1 git dnadata diff -p seed HEAD~1 HEAD
	assert_contains "$ERR" "error: HEAD:.dnadata/refs/seed is an inline profile's ref: its data is in git"
	assert_contains "$ERR" "hint: compare its files with git diff"
	expect_ok git dnadata log seed --json
	assert_eq "[true]" "$(json_get '[e["inline"] for e in d["entries"]]')"
}

test_list_of_an_empty_clone() {
	repo_with_db liste
	expect_ok git dnadata list
	assert_eq "no snapshots in the local cache or the store" "$OUT"
	expect_fail 2 git dnadata list extra
}

run_tests
