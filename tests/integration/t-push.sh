#!/usr/bin/env bash
# t-push.sh: `git dnadata push` uploads what a --dump-only snapshot left in
# the local cache, so `verify` (which reads the store) passes afterwards.
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db push --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i"
}

test_dump_only_snapshot_reaches_the_store_with_push() {
	setup_repo
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	assert_no_file "$T/store/snapshots/$id"
	expect_fail 1 git dnadata verify
	expect_ok git dnadata push
	assert_contains "$ERR" "snapshot ${id:0:12} is in the store"
	assert_file "$T/store/snapshots/$id"
	expect_ok git dnadata verify --read-data
	# a second push finds nothing missing and still succeeds
	expect_ok git dnadata push clean
}

test_push_restores_objects_the_store_lost() {
	setup_repo
	expect_ok git dnadata snapshot
	local victim
	victim=$(find "$T/store/data" -type f | head -n 1)
	rm "$victim"
	expect_fail 1 git dnadata verify
	expect_ok git dnadata push
	assert_file "$victim"
	expect_ok git dnadata verify
}

test_push_of_an_unknown_or_empty_profile_fails_cleanly() {
	setup_repo
	expect_fail 1 git dnadata push clen
	assert_contains "$ERR" "did you mean 'clean'"
	expect_fail 1 git dnadata push clean
	assert_contains "$ERR" "no snapshot yet"
	expect_ok git dnadata push
	assert_contains "$ERR" "nothing to push"
}

run_tests
