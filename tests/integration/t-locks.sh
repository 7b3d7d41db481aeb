#!/usr/bin/env bash
# t-locks.sh: commands working on one database take turns. Two profiles may
# share a working database; a restore must not swap it (or rewrite its
# records) while a snapshot of the other profile is reading it.
. "$(dirname "$0")/../lib.sh"

# wait_until DESCRIPTION COMMAND...: poll (lib.sh's hang guard) until COMMAND succeeds.
wait_until() {
	local what=$1
	shift
	for _ in $(seq "$DD_WAIT_POLLS"); do
		"$@" && return 0
		sleep 0.05
	done
	fail "timed out waiting until $what"
}

snapshot_waits_for_table() {
	[ "$(psql_q "$DB" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE NOT l.granted AND a.datname = '$DB' AND a.application_name = 'git-dnadata'")" -gt 0 ]
}

test_restore_waits_for_a_snapshot_of_another_profile_on_the_same_database() {
	repo_with_db locks
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata new-profile other
	expect_ok git dnadata snapshot clean
	local oid
	oid=$(psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$DB'")
	psql_q "$DB" "INSERT INTO t VALUES (2)"
	hold_lock "$DB" t
	DNADATA_LOCK_WAIT_TIMEOUT=0 git dnadata snapshot other >"$T/snap.out" 2>"$T/snap.err" &
	local snap=$!
	wait_until "the snapshot waits for table t" snapshot_waits_for_table
	git dnadata restore clean --force >"$T/restore.out" 2>"$T/restore.err" &
	local restore=$!
	wait_until "the restore says it waits" grep -q "waiting for another git dnadata run on database $DB" "$T/restore.err"
	# while the snapshot reads it, the database is neither swapped nor renamed
	assert_eq "$oid" "$(psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$DB'")"
	release_lock
	local rc=0
	wait "$snap" || rc=$?
	[ "$rc" = 0 ] || fail "the snapshot failed: $(cat "$T/snap.err")"
	wait "$restore" || rc=$?
	[ "$rc" = 0 ] || fail "the restore failed: $(cat "$T/restore.err")"
	# the snapshot saw rows 1 and 2; the restore then brought clean's row 1 back
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")"
	run git dnadata status
	assert_contains "$OUT" "holds snapshot $(sed -n 's/^snapshot //p' .dnadata/refs/clean | cut -c1-12) (profile clean"
}

run_tests
