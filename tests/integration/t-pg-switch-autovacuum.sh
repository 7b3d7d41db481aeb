#!/usr/bin/env bash
# t-pg-switch-autovacuum.sh: autovacuum's visits do not make an unedited
# database look edited. A switch checks the working database while it
# clones the next one and trusts an "unedited" only if the database's
# activity counters did not move until the rename (change.c, the seal).
# Each visit of an autovacuum worker commits a transaction or two in the
# database it visits; a switch that overlapped one recorded its unedited
# stash as "unknown", so it could not be reused nor dropped by stash_keep
# (seen in CI: t-gc-auto). Here a switch is stopped right after its check
# until a worker has visited the database, then goes on.
#
# serial: sets autovacuum_naptime for the whole server (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1

value() { psql_q "$DB" "SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id <= 3"; }
xact_commit() { psql_q postgres "SELECT xact_commit FROM pg_stat_database WHERE datname = '$1'"; }

naptime() {
	psql_q postgres "ALTER SYSTEM $1" >/dev/null
	psql_q postgres "SELECT pg_reload_conf()" >/dev/null
}

test_an_autovacuum_visit_during_a_switch_leaves_the_stash_unedited() {
	repo_with_db av
	printf '[database]\nspares = 0\n' >>.git/dnadata/config.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 100) g; CREATE SEQUENCE s; ANALYZE"
	expect_ok git dnadata snapshot
	git checkout -q -b B
	psql_q "$DB" "UPDATE t SET v = 'y' WHERE id <= 10; ANALYZE"
	expect_ok git dnadata snapshot
	git checkout -q main
	# the configuration reloaded before the restore records its fingerprint: a reload after it makes the
	# change check "unknown" (track_counts may have been turned off and on again meanwhile)
	trap 'naptime "RESET autovacuum_naptime"' EXIT
	naptime "SET autovacuum_naptime = 1"
	expect_ok git dnadata restore # the database holds X, unedited
	pg_wait_no_sessions "$DB"
	git checkout -q B
	start_stopped_at checked git-dnadata -v restore
	# a worker's visit: the database's transaction count moves while nobody is connected to it
	local before polls=0
	before=$(xact_commit "$DB")
	while [ "$(xact_commit "$DB")" = "$before" ]; do
		polls=$((polls + 1))
		[ "$polls" -lt "$DD_WAIT_POLLS" ] || fail "no autovacuum worker visited $DB"
		sleep 0.05
	done
	finish_stopped
	naptime "RESET autovacuum_naptime"
	assert_not_contains "$(cat "$T/stopped.err")" "may have been used since its change check"
	assert_eq "y,y,y" "$(value)"
	local rec
	rec=$(grep -l "^branch main$" "$(records_dir)"/stash-*)
	assert_eq "no" "$(sed -n 's/^modified //p' "$rec")" "main's stash recorded unedited"
	# and so main gets it back by a rename
	local oid
	oid=$(psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$(sed -n 's/^name //p' "$rec")'")
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "x1,x2,x3" "$(value)"
	assert_eq "$oid" "$(psql_q postgres "SELECT oid FROM pg_database WHERE datname = '$DB'")" "main's stash renamed back"
	assert_consistent
}

run_tests
