#!/usr/bin/env bash
# t-pg-switch-kill.sh: kill -9 anywhere in a switch (template build,
# template clone, before/inside/after the rename transaction, the records
# after it) or in the spare job leaves the working database either the old
# or the new one, records that agree with the databases once the next
# command has run (no record of a missing database, no database of ours
# without a record), and the next `restore` completes.
#
# Determinism: DNADATA_FAILPOINT=<point> makes git-dnadata stop itself
# (SIGSTOP) at that point; we wait for the stopped state and kill -9 it
# there. The kill inside the rename transaction blocks the rename behind a
# lock another session holds on the database. No sleeps stand in for
# ordering.
# serial: waits for every session on the server to have left a RENAME (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

export DNADATA_SKIP=1

setup_branches() {
	repo_with_db swk
	printf '[database]\nspares = 0\n' >>.git/dnadata/config.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 100) g; ANALYZE"
	expect_ok git dnadata snapshot
	X=$OUT
	git checkout -q -b B
	psql_q "$DB" "UPDATE t SET v = 'y' WHERE id <= 10"
	expect_ok git dnadata snapshot
	Y=$OUT
	psql_q "$DB" "UPDATE t SET v = 'b' WHERE id = 50" # B's stash holds an edit: only B gets it back
	git checkout -q main
	expect_ok git dnadata restore
	assert_eq "x1,x2,x3" "$(value)"
}

value() { psql_q "$DB" "SELECT string_agg(v, ',' ORDER BY id) FROM t WHERE id <= 3"; }


# What the working record says the database holds.
recorded_snapshot() { sed -n 's/^snapshot //p' "$(records_dir)/working"; }

# kill_at POINT CMD...: run git-dnadata CMD (itself, not the git wrapper, which cannot pass on a SIGKILL)
# until it stops at POINT, then kill -9 it.
kill_at() {
	local point=$1 pid
	shift
	DNADATA_FAILPOINT=$point git-dnadata "$@" >"$T/killed.out" 2>"$T/killed.err" &
	pid=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = T ] && break
		kill -0 "$pid" 2>/dev/null || fail "git-dnadata $* ended before $point: $(cat "$T/killed.err")"
		sleep 0.05
	done
	[ "$(cut -d' ' -f3 "/proc/$pid/stat")" = T ] || fail "git-dnadata $* never reached $point"
	kill -KILL "$pid"
	wait "$pid" || true
}

# The switch from main (X) to C (Y, no stash: a restore) killed at POINT; then the next restore completes it.
switch_killed_at() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1" # main's database holds an edit: never lost
	git checkout -q -b C B
	kill_at "$1" restore
	local v
	v=$(value)
	case $v in
	"mine,x2,x3" | "y,y,y") ;;
	*) fail "after kill -9 at $1 the working database holds neither the old nor the new data: $v" ;;
	esac
	expect_ok git dnadata restore
	assert_eq "y,y,y" "$(value)"
	assert_eq "$Y" "$(recorded_snapshot)"
	assert_consistent
	local stash
	stash=$(grep -l "^branch main$" "$(records_dir)"/stash-* | xargs sed -n 's/^name //p')
	assert_eq "mine" "$(psql_q "$stash" "SELECT v FROM t WHERE id = 1")" "main's edits are kept"
}

test_kill_while_the_template_is_built_but_not_yet_recorded() {
	switch_killed_at template-built
	assert_contains "$ERR" "dropped ${DB}__dnadata_tmpl_${Y:0:12}, left behind by an interrupted restore"
}

test_kill_once_the_template_is_recorded_keeps_it_and_clones_it() {
	switch_killed_at template-recorded
	assert_contains "$ERR" "cloned its template"
}

test_kill_after_the_clone_before_the_rename() {
	switch_killed_at cloned
	assert_contains "$ERR" "left behind by an interrupted restore"
	assert_contains "$ERR" "cloned its template"
}

test_kill_just_before_the_rename() {
	switch_killed_at before-rename
	assert_contains "$ERR" "cloned its template"
}

test_kill_just_after_the_rename_commits() {
	switch_killed_at renamed
	assert_contains "$ERR" "finished recording the interrupted switch of database $DB to snapshot ${Y:0:12}"
	assert_contains "$ERR" "already holds snapshot ${Y:0:12}"
}

# Killed right after the rename, then back to the branch left: its record said "X" all along, but the
# database held Y; the next restore finishes the records and brings main's database (with its edit) back.
test_kill_after_the_rename_then_back_to_the_branch_left() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1"
	git checkout -q -b C B
	kill_at renamed restore
	assert_eq "y,y,y" "$(value)"
	assert_eq "$X" "$(recorded_snapshot)" "the record is behind (the journal says so)"
	git checkout -q main
	expect_ok git dnadata restore
	assert_contains "$ERR" "finished recording the interrupted switch"
	assert_contains "$ERR" "renamed its stash back"
	assert_eq "mine,x2,x3" "$(value)"
	assert_consistent
}

test_kill_after_the_working_record_before_the_source_record() {
	switch_killed_at recorded
	assert_contains "$ERR" "finished recording the interrupted switch"
}

# The new stash's record is written before the rename; a status run in that moment removes it (no such
# database yet). Killed after the rename, before it is written again: the next command records the stash.
test_kill_after_the_rename_when_the_stash_record_was_removed_meanwhile() {
	setup_branches
	psql_q "$DB" "UPDATE t SET v = 'mine' WHERE id = 1"
	git checkout -q -b C B
	kill_at renamed restore
	local dir stash
	dir=$(records_dir)
	stash=$(sed -n 's/^stash //p' "$dir/switch")
	[ -n "$stash" ] || fail "the journal names no stash"
	rm "$dir/stash-$(printf %s "$stash" | b2sum -l 64 | cut -c1-16)"
	expect_ok git dnadata restore
	assert_contains "$ERR" "finished recording the interrupted switch"
	assert_consistent
	assert_eq "main" "$(sed -n 's/^branch //p' "$dir/stash-$(printf %s "$stash" | b2sum -l 64 | cut -c1-16)")"
	assert_eq "unknown" "$(sed -n 's/^modified //p' "$dir/stash-$(printf %s "$stash" | b2sum -l 64 | cut -c1-16)")"
	assert_eq "mine" "$(psql_q "$stash" "SELECT v FROM t WHERE id = 1")"
}

# A stash renamed back, killed after the rename: its edits are where they should be, its record gone.
test_kill_after_renaming_a_stash_back() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	git checkout -q main
	expect_ok git dnadata restore
	git checkout -q B
	kill_at renamed restore
	assert_eq "edited,y,y" "$(value)"
	expect_ok git dnadata use clean # (a plain restore would rebuild an edited database; a switch keeps it)
	assert_contains "$ERR" "finished recording the interrupted switch"
	assert_contains "$ERR" "kept it with its local changes"
	assert_eq "edited,y,y" "$(value)"
	assert_eq "$Y" "$(recorded_snapshot)"
	assert_consistent
}

# The reply to COMMIT lost with the connection (DNADATA_FAILPOINT=commit-lost: the server committed, the
# client sees the connection cut): the switch cannot tell whether it happened, so it keeps the journal and
# the new stash's record, drops nothing, and fails; the next command finds the rename committed and finishes
# the records. The edited database left is a stash of B, listed, and comes back on B.
test_a_lost_commit_reply_keeps_the_journal_and_the_edited_stash() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	git checkout -q main
	DNADATA_FAILPOINT=commit-lost expect_fail 1 git-dnadata restore
	assert_contains "$ERR" "whether it happened is not known"
	assert_file "$(records_dir)/switch"
	assert_eq "x1,x2,x3" "$(value)" "the server committed the rename"
	expect_ok git dnadata restore
	assert_contains "$ERR" "finished recording the interrupted switch of database $DB to snapshot ${X:0:12}"
	assert_eq "$X" "$(recorded_snapshot)"
	assert_consistent
	expect_ok git dnadata stash list
	assert_contains "$OUT" "${DB}__dnadata_stash_"
	assert_contains "$(echo "$OUT" | grep "__dnadata_stash_" | grep " B ")" " yes "
	git checkout -q B
	expect_ok git dnadata restore
	assert_contains "$ERR" "renamed its stash back"
	assert_eq "edited,y,y" "$(value)"
	assert_consistent
}

# Killed before renaming B's stash back, whose database is then dropped by hand: its name gone does not
# mean the rename committed. The journal holds the source's OID; the working database does not have it, so
# the next restore undoes the records (the working record still says X) and restores Y.
test_a_journal_whose_source_was_dropped_is_not_taken_as_committed() {
	setup_branches
	git checkout -q B
	kill_at before-rename restore
	local src
	src=$(sed -n 's/^source //p' "$(records_dir)/switch")
	assert_contains "$src" "${DB}__dnadata_stash_"
	psql_q postgres "DROP DATABASE \"$src\""
	assert_eq "x1,x2,x3" "$(value)"
	expect_ok git dnadata restore
	assert_not_contains "$ERR" "finished recording the interrupted switch"
	assert_eq "y,y,y" "$(value)" "the working database was restored, not taken to hold Y already"
	assert_eq "$Y" "$(recorded_snapshot)"
	assert_consistent
}

# The same stash dropped with `stash drop`: it finishes the interrupted switch first (no journal is left
# behind for a later command to misjudge), then drops it.
test_stash_drop_finishes_an_interrupted_switch_first() {
	setup_branches
	git checkout -q B
	kill_at before-rename restore
	local src
	src=$(sed -n 's/^source //p' "$(records_dir)/switch")
	expect_ok git dnadata stash drop "$src"
	assert_no_file "$(records_dir)/switch"
	assert_eq "" "$(databases_like "$src")"
	assert_eq "$X" "$(recorded_snapshot)"
	assert_consistent
	expect_ok git dnadata restore
	assert_eq "y,y,y" "$(value)"
	assert_consistent
}

# No working database to stash (dropped by hand): killed after the rename, the next command finishes the
# records of a switch whose journal names no stash.
test_kill_after_the_rename_with_no_database_to_stash() {
	setup_branches
	psql_q postgres "DROP DATABASE \"$DB\""
	git checkout -q B
	kill_at renamed restore
	assert_eq "" "$(sed -n 's/^stash //p' "$(records_dir)/switch")" "the journal names no stash"
	expect_ok git dnadata restore
	assert_contains "$ERR" "finished recording the interrupted switch of database $DB to snapshot ${Y:0:12}"
	assert_eq "y,y,y" "$(value)"
	assert_eq "$Y" "$(recorded_snapshot)"
}

# Killed inside the rename transaction: another session's lock on the working database blocks the rename.
test_kill_inside_the_rename_transaction_leaves_the_old_database() {
	setup_branches
	git checkout -q B
	coproc BLOCKER { "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "dbname=postgres application_name=blocker" 2>&1; }
	# COMMENT ON DATABASE holds a lock on the database object that the rename must wait for
	echo "BEGIN; COMMENT ON DATABASE \"$DB\" IS 'blocking'; SELECT pg_backend_pid();" >&"${BLOCKER[1]}"
	local blocker
	read -r blocker <&"${BLOCKER[0]}"
	git-dnadata restore >"$T/out" 2>"$T/err" &
	local pid=$! blocked=0 start=$SECONDS
	# until the restore waits for the lock or ends; a busy machine can take minutes to get there (its
	# template clone checkpoints), so the only bound is a hang guard, never a guess at how long it takes
	while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - start)) -lt 900 ]; do
		[ "$(psql_q postgres "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'object'
			AND classid = 'pg_database'::regclass
			AND objid = (SELECT oid FROM pg_database WHERE datname = '$DB')")" -ge 1 ] && blocked=1 && break
		sleep 0.05
	done
	[ "$blocked" = 1 ] || fail "the rename never waited for the lock (after $((SECONDS - start)) s): $(cat "$T/err")"
	kill -KILL "$pid"
	wait "$pid" || true
	echo "ROLLBACK;" >&"${BLOCKER[1]}"
	eval "exec ${BLOCKER[1]}>&-"
	wait "$BLOCKER_PID" || true
	# the server ends the dead client's transaction: nothing was renamed
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q postgres "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%RENAME TO%' AND pid <> pg_backend_pid()")" = 0 ] && break
		sleep 0.05
	done
	assert_eq "x1,x2,x3" "$(value)"
	expect_ok git dnadata restore
	assert_eq "y,y,y" "$(value)"
	assert_consistent
}

# The spare job killed with its spare half made, or made and not recorded: the next command drops it.
spare_killed_at() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	kill_at "$1" spare --count 2
	expect_ok git dnadata use clean # reaps, keeps B's database
	assert_consistent
}

test_kill_the_spare_job_before_its_clone() {
	spare_killed_at spare-pending
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")"
}

test_kill_the_spare_job_after_its_clone_before_its_record() {
	spare_killed_at spare-cloned
	assert_contains "$ERR" "dropped ${DB}__dnadata_spare_${X:0:12}, left behind"
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")"
}

test_kill_the_spare_job_once_its_spare_is_recorded_keeps_the_spare() {
	spare_killed_at spare-recorded
	assert_eq "${DB}__dnadata_spare_${X:0:12}" "$(databases_like "${DB}__dnadata_spare_")"
	git checkout -q -b C main
	expect_ok git dnadata restore
	assert_contains "$ERR" "renamed a spare in"
	assert_consistent
}

test_kill_the_spare_job_while_it_drops_a_spare_no_longer_wanted() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	expect_ok git dnadata spare --count 2
	assert_eq "${DB}__dnadata_spare_${X:0:12}" "$(databases_like "${DB}__dnadata_spare_")"
	kill_at spare-dropping spare --count 0 # its record is gone, its database not yet
	expect_ok git dnadata use clean
	assert_contains "$ERR" "dropped ${DB}__dnadata_spare_${X:0:12}, left behind"
	assert_eq "" "$(databases_like "${DB}__dnadata_spare_")"
	assert_consistent
}

# The spare job's first spare cloned but its record cannot be written (a directory in its place): its
# pending record stays, and nothing else in that process replaces it (one pending record per process), so
# the next command drops the partial spare instead of leaving a database of ours nobody records.
test_a_spare_whose_record_fails_stays_pending_for_the_next_command() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore --force # Y gets a template too
	git checkout -q -b C
	psql_q "$DB" "UPDATE t SET v = 'z' WHERE id = 100"
	expect_ok git dnadata snapshot # C holds Z: the job wants spares of Y (B) and X (main)
	local dir pid first="" state
	dir=$(records_dir)
	DNADATA_FAILPOINT=spare-cloned git-dnadata spare --count 2 >"$T/job.out" 2>"$T/job.err" &
	pid=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = T ] && break
		kill -0 "$pid" 2>/dev/null || fail "the job ended before its first clone: $(cat "$T/job.err")"
		sleep 0.05
	done
	first=$(sed -n 's/^name //p' "$dir/pending-$pid")
	assert_contains "$first" "${DB}__dnadata_spare_"
	mkdir "$dir/spare-$(printf %s "$first" | b2sum -l 64 | cut -c1-16)"
	# go on; stopped again at a second clone (the defect: its pending record replaced the first's), go on
	while kill -0 "$pid" 2>/dev/null; do
		state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null || true)
		[ "$state" = T ] && kill -CONT "$pid"
		[ "$state" = Z ] && break
		sleep 0.05
	done
	wait "$pid" || true
	assert_contains "$(cat "$T/job.err")" "is still pending"
	assert_eq "$first" "$(sed -n 's/^name //p' "$dir/pending-$pid")" "the partial spare is still pending"
	rmdir "$dir/spare-$(printf %s "$first" | b2sum -l 64 | cut -c1-16)"
	expect_ok git dnadata use clean
	assert_contains "$ERR" "dropped $first, left behind"
	assert_consistent
}

# A switch does not wait for a running spare job: it stops it and goes on.
test_a_switch_does_not_wait_for_the_spare_job() {
	setup_branches
	git checkout -q B
	expect_ok git dnadata restore
	DNADATA_FAILPOINT=spare-pending git-dnadata spare --count 2 >"$T/job.out" 2>"$T/job.err" &
	local job=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$job/stat" 2>/dev/null)" = T ] && break
		sleep 0.05
	done
	git checkout -q -b C main
	expect_ok git dnadata restore --force # a restore, which stops the job
	assert_eq "x1,x2,x3" "$(value)"
	kill -CONT "$job"
	wait "$job" || true
	assert_contains "$(cat "$T/job.err")" "error: interrupted"
	expect_ok git dnadata restore
	assert_consistent
}

run_tests
