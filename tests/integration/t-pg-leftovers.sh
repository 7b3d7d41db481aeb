#!/usr/bin/env bash
# t-pg-leftovers.sh: the copy (the template <db>__dnadata_tmpl_<id> a
# `restore --force` builds first, pending until complete) that a kill -9'd
# restore leaves behind is dropped by the next command that
# connects (a restore with nothing to do, snapshot, use), never while the
# restore that builds it is alive, and not kept alive by a reused pid.
#
# Determinism: the snapshot holds a materialized view over the shared
# catalog pg_shdescription; a psql session (a coproc) holds ACCESS
# EXCLUSIVE on that catalog, so the restore blocks at a known point (the
# REFRESH in post-data) until we let go. No sleeps stand in for ordering.
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db left
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 1000) g;
		CREATE MATERIALIZED VIEW shared_comments AS SELECT count(*) AS n FROM pg_catalog.pg_shdescription"
	# analysed now, so that autovacuum has no ANALYZE of these 1000 new rows left to do: its pg_statistic
	# writes count as changes (change.c), and a test expecting "unchanged since snapshot" failed in CI
	psql_q "$DB" "ANALYZE"
	expect_ok git dnadata snapshot
	SNAP=$OUT
}


# Hold ACCESS EXCLUSIVE on pg_shdescription in an open transaction (session "blocker").
hold_catalog_lock() { hold_lock postgres pg_catalog.pg_shdescription blocker; }
release_catalog_lock() { release_lock; }

# wait_for SQL: until SQL (on postgres) says t; a condition, polled.
wait_for() {
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q postgres "$1")" = t ] && return 0
		sleep 0.05
	done
	fail "gave up waiting for: $1"
}

# Start `restore --force` and wait until it is blocked on the catalog lock, its copy built up to post-data.
start_blocked_restore() {
	hold_catalog_lock
	# git-dnadata itself, not the git wrapper (which cannot pass on a SIGKILL)
	git-dnadata restore --force >"$T/out" 2>"$T/err" &
	RESTORE_PID=$!
	wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.relation = 'pg_catalog.pg_shdescription'::regclass AND NOT l.granted
		AND a.datname LIKE '${DB}__dnadata_tmpl_%')"
	NEWDB=$(databases_like "${DB}__dnadata_tmpl_")
	[ "$NEWDB" = "${DB}__dnadata_tmpl_${SNAP:0:12}" ] || fail "unexpected copy name: $NEWDB"
}

# A restore killed with -9 while it builds its copy; the copy stays behind.
leave_a_killed_copy() {
	start_blocked_restore
	kill -KILL "$RESTORE_PID"
	wait "$RESTORE_PID" || true
	release_catalog_lock
	assert_eq "$NEWDB" "$(databases_like "${DB}__dnadata_tmpl_")" "kill -9 left its copy"
}

test_restore_with_nothing_to_do_drops_the_copy_of_a_killed_restore() {
	setup_repo
	leave_a_killed_copy
	expect_ok git dnadata restore
	assert_contains "$ERR" "dropped $NEWDB, left behind by an interrupted restore"
	assert_contains "$ERR" "already holds snapshot"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
	assert_eq "" "$(ls .git/dnadata/pg/*/ | grep pending- || true)" "the record is gone too"
}

test_snapshot_drops_the_copy_of_a_killed_restore() {
	setup_repo
	leave_a_killed_copy
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "dropped $NEWDB, left behind by an interrupted restore"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
}

test_use_drops_the_copy_of_a_killed_restore() {
	setup_repo
	leave_a_killed_copy
	expect_ok git dnadata use clean
	assert_contains "$ERR" "dropped $NEWDB, left behind by an interrupted restore"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_")"
}

test_a_live_restore_keeps_its_copy_while_another_command_runs() {
	setup_repo
	start_blocked_restore
	# the second command waits for the database's lock (it would reap, and
	# swap, the database the first is working on); it drops nothing
	git-dnadata restore >"$T/out2" 2>"$T/err2" &
	local second=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		grep -q "waiting for another git dnadata run on database $DB" "$T/err2" && break
		sleep 0.05
	done
	assert_contains "$(cat "$T/err2")" "waiting for another git dnadata run on database $DB"
	assert_eq "$NEWDB" "$(databases_like "${DB}__dnadata_tmpl_")" "the live restore's copy is still there"
	release_catalog_lock
	wait "$RESTORE_PID" || fail "the restore failed: $(cat "$T/err")"
	assert_contains "$(cat "$T/err")" "restored snapshot"
	wait "$second" || fail "the second restore failed: $(cat "$T/err2")"
	assert_not_contains "$(cat "$T/err2")" "dropped"
	assert_contains "$(cat "$T/err2")" "already holds snapshot"
	assert_eq "" "$(databases_like "${DB}__dnadata_new_")"
	assert_eq "$NEWDB" "$(databases_like "${DB}__dnadata_tmpl_")" "the restore kept its template"
	assert_eq "1000" "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

# A pending record whose pid now belongs to another process (its start time differs) is stale.
test_a_reused_pid_does_not_keep_a_leftover_alive() {
	setup_repo
	local dir pid started
	dir=$(dirname "$(ls .git/dnadata/pg/*/working)")
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_new_1"
	"$DD_PG_BINDIR/createdb" "${DB}__dnadata_new_2"
	pid=$$ # alive for the whole test
	started=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
	printf 'name %s\npid %s\nstarted %s\n' "${DB}__dnadata_new_1" "$pid" "$((started + 1))" >"$dir/pending-$pid"
	expect_ok git dnadata restore
	assert_contains "$ERR" "dropped ${DB}__dnadata_new_1"
	# the same pid with its true start time: that process is the builder, alive
	printf 'name %s\npid %s\nstarted %s\n' "${DB}__dnadata_new_2" "$pid" "$started" >"$dir/pending-$pid"
	expect_ok git dnadata restore
	assert_not_contains "$ERR" "dropped"
	assert_eq "${DB}__dnadata_new_2" "$(databases_like "${DB}__dnadata_new_")"
	rm "$dir/pending-$pid"
	"$DD_PG_BINDIR/dropdb" "${DB}__dnadata_new_2"
}

run_tests
