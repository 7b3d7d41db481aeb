#!/usr/bin/env bash
# t-pg-restore.sh: `git dnadata restore` and `use` against the real server:
# the swap and its stash, --at, --force, a missing working database, other
# sessions (refusal, then --terminate), and failures or interrupts that must
# leave the working database untouched and no partial copy behind. Change
# detection: an unchanged database is left alone, an edited one (rows, DDL,
# a sequence) is rebuilt and stashed, a session whose counters may not be
# flushed yet never yields "unchanged"; `use` keeps an edited database.
# serial: sets autovacuum_naptime for the whole server in one test (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db rest
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two')"
}


# Our databases beside the working one, but the templates (a complete restore is kept as one, on purpose).
leftovers() {
	psql_q postgres "SELECT datname FROM pg_database WHERE datname LIKE '${DB}__dnadata_%'
		AND datname NOT LIKE '${DB}__dnadata_tmpl_%' ORDER BY 1"
}

test_restore_swaps_in_the_snapshot_and_keeps_the_old_database() {
	setup_repo
	expect_ok git dnadata snapshot
	local id=$OUT
	psql_q "$DB" "UPDATE t SET v = 'changed'; INSERT INTO t VALUES (3, 'three')"
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $DB"
	assert_eq "1|one
2|two" "$(psql_q "$DB" "SELECT * FROM t ORDER BY id")"
	local stash
	stash=$(databases_like "${DB}__dnadata_stash_")
	[ -n "$stash" ] || fail "no stash database"
	assert_eq "3" "$(psql_q "$stash" "SELECT count(*) FROM t")" "the stash holds the edited data"
	assert_eq "" "$(databases_like "${DB}__dnadata_new_")"
	expect_ok git dnadata status
	assert_contains "$OUT" "holds snapshot ${id:0:12}"
	assert_contains "$OUT" "$stash"
}

stash_count() {
	databases_like "${DB}__dnadata_stash_" | grep -c . || true
}

test_restore_does_nothing_when_the_database_is_unchanged_since_snapshot_or_restore() {
	setup_repo
	expect_ok git dnadata snapshot
	local id=$OUT
	expect_ok git dnadata restore
	assert_contains "$ERR" "database $DB already holds snapshot ${id:0:12}, unchanged since snapshot"
	assert_eq 0 "$(stash_count)"
	expect_ok git dnadata restore --force
	assert_eq 1 "$(stash_count)"
	expect_ok git dnadata restore
	assert_contains "$ERR" "database $DB already holds snapshot ${id:0:12}, unchanged since restore"
	assert_eq 1 "$(stash_count)" "an unchanged database is not rebuilt"
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"changes":"unchanged"'
}

test_restore_rebuilds_a_database_with_one_row_updated_and_stashes_it() {
	setup_repo
	expect_ok git dnadata snapshot
	local id=$OUT
	expect_ok git dnadata restore --force
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	expect_ok git dnadata status
	assert_contains "$OUT" "changed since restore"
	expect_ok git dnadata restore
	assert_contains "$ERR" "database $DB changed since snapshot ${id:0:12} was restored: restoring it again"
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $DB (the previous one is kept as ${DB}__dnadata_stash_"
	assert_eq "1|one
2|two" "$(psql_q "$DB" "SELECT * FROM t ORDER BY id")"
	local stash
	stash=$(psql_q postgres "SELECT datname FROM pg_database WHERE datname LIKE '${DB}__dnadata_stash_%' ORDER BY datname DESC LIMIT 1")
	assert_contains "$ERR" "$stash"
	assert_eq "edited" "$(psql_q "$stash" "SELECT v FROM t WHERE id = 2")" "the edited database is kept"
	expect_ok git dnadata restore
	assert_contains "$ERR" "unchanged since restore"
}

test_restore_rebuilds_after_ddl_only() {
	setup_repo
	expect_ok git dnadata snapshot
	psql_q "$DB" "CREATE TABLE scratch (x int)"
	expect_ok git dnadata restore
	assert_contains "$ERR" "was taken from it: restoring it again"
	assert_eq "" "$(psql_q "$DB" "SELECT to_regclass('scratch')")" "the new table is gone"
	assert_eq 1 "$(stash_count)"
}

test_restore_rebuilds_after_a_sequence_moved_without_any_row_change() {
	setup_repo
	psql_q "$DB" "CREATE SEQUENCE s"
	expect_ok git dnadata snapshot
	psql_q "$DB" "SELECT nextval('s')" >/dev/null
	expect_ok git dnadata restore
	assert_contains "$ERR" "was taken from it: restoring it again"
	assert_eq "1|f" "$(psql_q "$DB" "SELECT last_value, is_called FROM s")"
}

test_a_session_with_unflushed_changes_never_reads_as_unchanged() {
	setup_repo
	expect_ok git dnadata snapshot
	# the UPDATE comes less than 1 s after the session's first stats flush,
	# so its counters may stay in the backend for up to 10 s
	(echo "UPDATE t SET v = 'lagging' WHERE id = 1;"; sleep 30) |
		"$DD_PG_BINDIR/psql" -Xq "dbname=$DB application_name=lagger" >/dev/null 2>&1 &
	local holder=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q "$DB" "SELECT v FROM t WHERE id = 1")" = lagging ] && break
		sleep 0.05
	done
	[ "$(psql_q "$DB" "SELECT v FROM t WHERE id = 1")" = lagging ] || fail "the lagging update never committed"
	expect_ok git dnadata status
	assert_not_contains "$OUT" "unchanged"
	expect_fail 1 git dnadata restore
	assert_not_contains "$ERR" "unchanged"
	assert_contains "$ERR" "database $DB is in use by 1 other session: lagger"
	expect_ok git dnadata restore --terminate
	assert_eq "one" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 1")"
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
}

test_use_keeps_an_edited_database_that_holds_the_snapshot() {
	setup_repo
	expect_ok git dnadata snapshot
	local id=$OUT
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1"
	expect_ok git dnadata use clean
	assert_contains "$ERR" "database $DB already holds snapshot ${id:0:12}; kept it with its local changes (made since snapshot)"
	assert_eq "mine" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 1")"
	assert_eq 0 "$(stash_count)"
	expect_ok git dnadata use clean
	assert_contains "$ERR" "kept it with its local changes"
}

test_status_reports_unknown_without_a_recorded_fingerprint() {
	setup_repo
	expect_ok git dnadata snapshot
	# a state file written by an older version has no fingerprint line
	local f
	f=$(grep -rl '^how ' .git/dnadata/pg)
	sed -i '/^fingerprint /d' "$f"
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"changes":"unknown"'
	assert_contains "$OUT" 'no fingerprint was recorded'
	expect_ok git dnadata restore
	assert_contains "$ERR" "cannot tell whether database $DB changed since snapshot"
	assert_eq 1 "$(stash_count)"
	expect_ok git dnadata status
	assert_contains "$OUT" "unchanged since restore"
}

test_restore_at_an_older_revision() {
	setup_repo
	expect_ok git dnadata snapshot
	psql_q "$DB" "INSERT INTO t VALUES (3, 'three')"
	expect_ok git dnadata snapshot
	expect_ok git dnadata restore --at HEAD~1
	assert_eq "2" "$(psql_q "$DB" "SELECT count(*) FROM t")"
	expect_ok git dnadata restore
	assert_eq "3" "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

test_restore_creates_a_missing_working_database() {
	setup_repo
	expect_ok git dnadata snapshot
	"$DD_PG_BINDIR/dropdb" "$DB"
	expect_ok git dnadata restore
	assert_contains "$ERR" "(new)"
	assert_eq "2" "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

test_other_sessions_are_listed_then_terminated_on_request() {
	setup_repo
	expect_ok git dnadata snapshot
	"$DD_PG_BINDIR/psql" -Xq "dbname=$DB application_name=holder" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
	local holder=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB'")" = 1 ] && break
		sleep 0.05
	done
	expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "database $DB is in use by 1 other session: holder (local socket"
	assert_contains "$ERR" "--terminate"
	assert_eq "" "$(databases_like "${DB}__dnadata_")" "nothing built, nothing stashed"
	expect_ok git dnadata restore --force --terminate
	wait "$holder" && fail "the holder session survived"
	assert_eq "2" "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

test_failed_restore_leaves_the_working_database_untouched() {
	setup_repo
	psql_q postgres "CREATE ROLE dd_reader_$$"
	psql_q "$DB" "GRANT SELECT ON t TO dd_reader_$$"
	expect_ok git dnadata snapshot
	psql_q "$DB" "REVOKE SELECT ON t FROM dd_reader_$$; INSERT INTO t VALUES (3, 'mine')"
	psql_q postgres "DROP ROLE dd_reader_$$"
	expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "role \"dd_reader_$$\" does not exist"
	assert_contains "$ERR" "hint: create the missing role"
	assert_eq "3" "$(psql_q "$DB" "SELECT count(*) FROM t")" "the working database is untouched"
	assert_eq "" "$(databases_like "${DB}__dnadata_")" "no partial copy, no stash"
}

# The stash's record is written before the swap: when it cannot be, the
# restore stops with the working database untouched (it used to go on, and
# status never listed the stash). A directory in place of the record file
# makes the write fail: one for each second the stash may be named after.
test_a_stash_that_cannot_be_recorded_stops_the_restore_before_the_swap() {
	setup_repo
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	local record dir now name
	record=$(find .git -path '*/pg/*/working')
	[ -n "$record" ] || fail "no record of the working database"
	dir=$(dirname "$record")
	now=$(date -u +%s)
	for i in $(seq -2 300); do
		name=${DB}__dnadata_stash_$(date -u -d "@$((now + i))" +%Y%m%d%H%M%S)
		mkdir "$dir/stash-$(printf %s "$name" | b2sum -l 64 | cut -c1-16)"
	done
	expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "error: restoring"
	assert_contains "$ERR" "recording the stash for database $DB"
	assert_eq "edited" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 2")" "the working database is untouched"
	assert_eq "" "$(leftovers)" "no stash, no partial copy"
}

# A rename that fails after the stash's record was written removes that
# record at once. Here the restore's role may create databases but does
# not own the working one, so renaming it fails.
test_a_failed_swap_removes_the_stash_record_it_wrote() {
	setup_repo
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	psql_q postgres "CREATE ROLE dd_renamer_$$ LOGIN CREATEDB"
	DNADATA_DATABASE="dbname=$DB user=dd_renamer_$$" expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "must be owner of database $DB"
	assert_eq "" "$(find .git -path '*/pg/*' -name 'stash-*')" "no stash record"
	assert_eq "edited" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 2")" "the working database is untouched"
	assert_eq "" "$(leftovers)" "no stash, no partial copy"
	expect_ok git dnadata status
	assert_not_contains "$OUT" "__dnadata_stash_"
}

# An autovacuum worker on the database is nobody's session: the rename ends it itself, so it must not make
# the restore refuse (it did: "in use by 1 other session: unnamed (local socket, user ?, pid N)").
test_an_autovacuum_worker_does_not_block_a_restore() {
	setup_repo
	psql_q "$DB" "CREATE TABLE busy (id int PRIMARY KEY, v text) WITH (autovacuum_vacuum_threshold = 0,
		autovacuum_vacuum_scale_factor = 0, autovacuum_analyze_threshold = 0, autovacuum_analyze_scale_factor = 0,
		autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
		INSERT INTO busy SELECT g, 'x' FROM generate_series(1, 20000) g"
	expect_ok git dnadata snapshot
	# autovacuum looks at each database every second for this test only (the cluster is shared by the run)
	trap 'psql_q postgres "ALTER SYSTEM RESET autovacuum_naptime" >/dev/null; psql_q postgres "SELECT pg_reload_conf()" >/dev/null' EXIT
	psql_q postgres "ALTER SYSTEM SET autovacuum_naptime = 1" >/dev/null
	psql_q postgres "SELECT pg_reload_conf()" >/dev/null
	psql_q "$DB" "UPDATE busy SET v = 'y'"
	local worker="" start=$SECONDS
	# the launcher visits every database of the shared cluster in turn and a loaded machine (the sanitizer
	# suite) delays it by minutes: the bound is a hang guard, not a guess at how soon a worker comes
	while [ -z "$worker" ] && [ $((SECONDS - start)) -lt 600 ]; do
		worker=$(psql_q postgres "SELECT pid FROM pg_stat_activity WHERE datname = '$DB' AND backend_type = 'autovacuum worker'")
		[ -n "$worker" ] || sleep 0.05
	done
	[ -n "$worker" ] || fail "no autovacuum worker came to database $DB in $((SECONDS - start)) s"
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "restored snapshot"
	assert_eq "x" "$(psql_q "$DB" "SELECT DISTINCT v FROM busy")"
}

test_missing_store_objects_fail_before_touching_the_database() {
	setup_repo
	expect_ok git dnadata snapshot
	psql_q "$DB" "INSERT INTO t VALUES (3, 'mine')"
	find .git/dnadata \( -path '*/data/*' -o -path '*/packs/*' \) -type f -delete
	expect_fail 1 git dnadata restore --force
	assert_eq "3" "$(psql_q "$DB" "SELECT count(*) FROM t")"
	assert_eq "" "$(databases_like "${DB}__dnadata_")"
}

# A table whose CHECK constraint sleeps per row makes the load slow enough
# to interrupt reliably (the function is made slow after the rows exist).
make_slow_table() {
	psql_q "$DB" "CREATE FUNCTION slow_ok(int) RETURNS bool LANGUAGE sql AS 'SELECT true';
		CREATE TABLE slow (id int PRIMARY KEY CHECK (slow_ok(id)));
		INSERT INTO slow SELECT generate_series(1, 30);
		CREATE OR REPLACE FUNCTION slow_ok(int) RETURNS bool LANGUAGE sql AS 'SELECT pg_sleep(0.2) IS NOT NULL'"
}

# The copy a restore builds: the snapshot's new template (tmpl_), then its clone (new_).
building() {
	psql_q postgres "SELECT datname FROM pg_database WHERE datname LIKE '${DB}__dnadata_new_%'
		OR datname LIKE '${DB}__dnadata_tmpl_%' ORDER BY 1"
}

wait_for_new_copy() {
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ -n "$(building)" ] && return 0
		sleep 0.05
	done
	fail "the restore never created its new copy"
}

test_interrupted_restore_drops_only_the_new_copy() {
	setup_repo
	make_slow_table
	expect_ok git dnadata snapshot
	psql_q "$DB" "INSERT INTO t VALUES (3, 'mine')"
	# git-dnadata itself, not the git wrapper (which cannot pass on a SIGKILL)
	git-dnadata restore --force >"$T/out" 2>"$T/err" &
	local pid=$!
	wait_for_new_copy
	sleep 1
	kill -TERM "$pid"
	local start=$SECONDS rc=0
	wait "$pid" || rc=$?
	[ "$rc" != 0 ] || fail "the interrupted restore exited 0"
	[ $((SECONDS - start)) -lt 5 ] || fail "the interrupted restore took $((SECONDS - start)) s to stop"
	assert_contains "$(cat "$T/err")" "interrupted"
	assert_eq "3" "$(psql_q "$DB" "SELECT count(*) FROM t")"
	assert_eq "" "$(databases_like "${DB}__dnadata_")"
}

test_copy_left_by_a_killed_restore_is_dropped_by_the_next_one() {
	setup_repo
	expect_ok git dnadata snapshot
	make_slow_table
	expect_ok git dnadata snapshot
	# git-dnadata itself, not the git wrapper (which cannot pass on a SIGKILL)
	git-dnadata restore --force >"$T/out" 2>"$T/err" &
	local pid=$!
	wait_for_new_copy
	kill -KILL "$pid"
	wait "$pid" || true
	local left
	left=$(building)
	[ -n "$left" ] || fail "kill -9 left nothing to clean up?"
	expect_ok git dnadata restore --force --at HEAD~1
	assert_contains "$ERR" "dropped $left"
	assert_eq "" "$(databases_like "${DB}__dnadata_new_")"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl_${left##*_tmpl_}")" "the killed restore's template is gone"
	assert_eq "2" "$(psql_q "$DB" "SELECT count(*) FROM t")"
}

test_use_restores_the_profile() {
	setup_repo
	expect_ok git dnadata new-profile other
	expect_ok git dnadata use other
	assert_contains "$ERR" "no snapshot yet"
	expect_ok git dnadata snapshot
	expect_ok git dnadata use clean
	assert_contains "$ERR" "no snapshot yet"
	psql_q "$DB" "INSERT INTO t VALUES (3, 'clean')"
	expect_ok git dnadata snapshot
	expect_ok git dnadata use other
	assert_contains "$ERR" "restored snapshot"
	assert_eq "2" "$(psql_q "$DB" "SELECT count(*) FROM t")"
	expect_ok git dnadata use clean
	assert_eq "3" "$(psql_q "$DB" "SELECT count(*) FROM t")"
	expect_ok git dnadata status
	assert_contains "$OUT" "Active profile: clean"
}

run_tests
