#!/usr/bin/env bash
# t-post-restore.sh: post_restore commands per profile and in [hooks]: the
# profile's run first, then [hooks]', in order, with DNADATA_PROFILE,
# DNADATA_SNAPSHOT and DATABASE_URL (never a password, even when the
# connection string has one; psql connects with it, its password found as
# libpq finds it); a failing command fails the restore with its exit status
# and the tail of its output, the data stays restored, and the run is
# recorded (.git/dnadata/post-restore/<profile>) as failed, then as
# succeeded after a good restore; a git hook's switch records too.
. "$(dirname "$0")/../lib.sh"

# setup_repo: a repository on a fresh database with a table t, its snapshot taken ($ID).
setup_repo() {
	repo_with_db pr
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two')"
}

# add_commands SECTION-HEADER CMD...: post_restore lines at the top of that section of profiles.ini
# (appended with the section when there is none), committed.
add_commands() {
	local header=$1 lines="" c
	shift
	for c in "$@"; do lines+="post_restore = $c"$'\n'; done
	if grep -qxF "$header" .dnadata/profiles.ini; then
		HEADER=$header LINES=$lines awk '{ print } $0 == ENVIRON["HEADER"] { printf "%s", ENVIRON["LINES"] }' \
			.dnadata/profiles.ini >"$T/p.ini"
		cat "$T/p.ini" >.dnadata/profiles.ini
	else
		printf '%s\n%s' "$header" "$lines" >>.dnadata/profiles.ini
	fi
	git commit -qm "post_restore" .dnadata/profiles.ini
}

record() { cat .git/dnadata/post-restore/clean; }

json_get() {
	printf '%s' "$OUT" | python3 -c "import json,sys; d=json.load(sys.stdin); print(json.dumps($1))"
}

# edit_and_restore: change a row so the restore rebuilds the database, then restore (RC, OUT, ERR).
edit_and_restore() {
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	run git dnadata restore
}

test_profile_commands_run_before_the_hooks_ones_in_order_with_the_variables() {
	setup_repo
	add_commands '[profile "clean"]' 'echo "p1 $DNADATA_PROFILE $DNADATA_SNAPSHOT" >>"$T/log"' \
		'echo "p2 $DATABASE_URL" >>"$T/log"'
	add_commands '[hooks]' 'echo "h1 $DNADATA_PROFILE" >>"$T/log"' 'echo "h2 $(psql "$DATABASE_URL" -XAtc "SELECT v FROM t WHERE id = 1")" >>"$T/log"'
	expect_ok git dnadata snapshot
	local id=$OUT
	edit_and_restore
	[ "$RC" = 0 ] || fail "restore failed: $ERR"
	# PGHOST is the cluster's socket directory: in the query, percent-encoded
	assert_eq "p1 clean $id
p2 postgresql://$PGUSER@/$DB?host=$(printf %s "$PGHOST" | sed 's,/,%2F,g')&port=$PGPORT
h1 clean
h2 one" "$(cat "$T/log")"
	assert_contains "$ERR" "post_restore 1/4: echo \"p1"
	assert_contains "$ERR" "post_restore 3/4: echo \"h1"
	assert_contains "$(record)" "total 4"
	assert_contains "$(record)" "failed 0"
	assert_contains "$(record)" "snapshot $id"
}

test_database_url_has_no_password_and_works_with_psql() {
	setup_repo
	add_commands '[hooks]' 'echo "$DATABASE_URL" >"$T/url"; env | grep -e ^PG -e ^DNADATA -e ^DATABASE >"$T/env"' \
		'psql "$DATABASE_URL" -XAtc "SELECT current_user, v FROM t WHERE id = 2" >"$T/psql"'
	echo "[database]
url = postgresql://$DD_TEST_PW_USER:$DD_TEST_PW_PASSWORD@127.0.0.1:$PGPORT/$DB?application_name=app%20x" >.git/dnadata/config.ini
	# the commands find the password as libpq does: here a password file of the user's
	echo "127.0.0.1:$PGPORT:*:$DD_TEST_PW_USER:$DD_TEST_PW_PASSWORD" >"$T/pgpass"
	chmod 600 "$T/pgpass"
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	PGPASSFILE=$T/pgpass expect_ok git dnadata restore
	assert_eq "postgresql://$DD_TEST_PW_USER@127.0.0.1:$PGPORT/$DB?application_name=app%20x" "$(cat "$T/url")"
	assert_eq "$DD_TEST_PW_USER|two" "$(cat "$T/psql")" "psql connects with DATABASE_URL as the URL's user"
	assert_not_contains "$(cat "$T/env" "$T/url")$ERR$OUT" "$DD_TEST_PW_PASSWORD" "no password reaches the commands"
	assert_not_contains "$(cat .git/dnadata/post-restore/clean)" "$DD_TEST_PW_PASSWORD"
}

test_a_failing_command_reports_its_status_and_output_tail_and_the_data_stays() {
	setup_repo
	add_commands '[profile "clean"]' 'echo ran-first >>"$T/log"'
	add_commands '[hooks]' 'for i in $(seq 1 15); do echo "migration line $i"; done; echo "boom: column x missing" >&2; exit 4' \
		'echo never >>"$T/log"'
	expect_ok git dnadata snapshot
	local id=$OUT
	edit_and_restore
	assert_eq 1 "$RC"
	assert_eq 1 "$(grep -c '^error: ' <<<"$ERR")" "one error line"
	assert_contains "$ERR" 'error: post_restore command 2 (`for i in'
	assert_contains "$ERR" "failed with exit status 4; the database was restored"
	assert_contains "$ERR" "post_restore command 2: the last lines of its output:"
	assert_contains "$ERR" "  | boom: column x missing"
	assert_contains "$ERR" "  | migration line 15"
	assert_contains "$ERR" "  | migration line 7"
	assert_not_contains "$ERR" "  | migration line 6" "only the last 10 lines are repeated"
	# the tail comes before the error line
	local tail_at err_at
	tail_at=$(grep -n "the last lines of its output" <<<"$ERR" | cut -d: -f1)
	err_at=$(grep -n '^error: ' <<<"$ERR" | cut -d: -f1)
	[ "$tail_at" -lt "$err_at" ] || fail "the tail should come before the error line"
	assert_eq "ran-first" "$(cat "$T/log")" "the commands after the failed one do not run"
	assert_eq "two" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 2")" "the data stays restored"
	assert_contains "$(record)" "failed 2"
	assert_contains "$(record)" "exit 4"
	assert_contains "$(record)" "total 3"
	assert_contains "$(record)" "command for i in"
	assert_contains "$(record)" "snapshot $id"
	# fixed: the next good restore records success
	sed -i 's/exit 4$/exit 0/' .dnadata/profiles.ini
	edit_and_restore
	[ "$RC" = 0 ] || fail "restore failed: $ERR"
	assert_contains "$(record)" "failed 0"
	assert_not_contains "$(record)" "command "
}

# drop_commands: remove every post_restore line from profiles.ini, committed.
drop_commands() {
	sed -i '/^post_restore = /d' .dnadata/profiles.ini
	git commit -qm "no post_restore" .dnadata/profiles.ini
}

# (a) a command fails; the user runs the rest by hand and drops the commands; the next restore, with none to
# run, rewrites the record: status no longer reports the failure.
test_a_restore_with_no_command_replaces_a_failed_record() {
	setup_repo
	add_commands '[profile "clean"]' 'exit 4' 'echo second'
	expect_ok git dnadata snapshot
	local id=$OUT
	edit_and_restore
	assert_eq 1 "$RC"
	expect_ok git dnadata status
	assert_contains "$OUT" "post_restore: FAILED: command 1 of 2 (exit 4)"
	psql_q "$DB" "INSERT INTO t VALUES (3, 'by hand')" # the rest, by hand
	drop_commands
	expect_ok git dnadata restore
	assert_contains "$(record)" "total 0"
	assert_contains "$(record)" "failed 0"
	assert_contains "$(record)" "snapshot $id"
	expect_ok git dnadata status
	assert_not_contains "$OUT" "FAILED"
}

# (b) the broken command removed, `restore --force` of the same snapshot rewrites the record.
test_restore_force_after_removing_the_failed_command_records_success() {
	setup_repo
	add_commands '[hooks]' 'exit 5'
	expect_ok git dnadata snapshot
	edit_and_restore
	assert_eq 1 "$RC"
	drop_commands
	expect_ok git dnadata restore --force
	assert_contains "$(record)" "failed 0"
	assert_not_contains "$(record)" "command "
	expect_ok git dnadata status
	assert_not_contains "$OUT" "FAILED"
	expect_ok git dnadata status --json
	assert_eq "[true, true, 0]" "$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "current", "commands")]')"
}

# (c) after a failure on snapshot A, `restore --no-hooks` of B records B as skipped: status no longer claims
# that A's data is restored.
test_restore_no_hooks_of_another_snapshot_records_it_as_skipped() {
	setup_repo
	expect_ok git dnadata snapshot
	local a=$OUT
	psql_q "$DB" "INSERT INTO t VALUES (3, 'three')"
	expect_ok git dnadata snapshot
	local b=$OUT
	add_commands '[hooks]' 'exit 6' 'echo later'
	run git dnadata restore --at HEAD~2
	assert_eq 1 "$RC"
	assert_contains "$(record)" "snapshot $a"
	expect_ok git dnadata restore --no-hooks
	assert_eq "three" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 3")"
	assert_contains "$(record)" "snapshot $b"
	assert_contains "$(record)" "skipped 1"
	assert_contains "$(record)" "total 2"
	expect_ok git dnadata status
	assert_not_contains "$OUT" "FAILED"
	assert_not_contains "$OUT" "the data of ${a:0:12}"
	assert_contains "$OUT" "post_restore: skipped (restore --no-hooks; 2 commands configured)"
	expect_ok git dnadata status --json
	assert_eq "[true, true, true, \"$b\"]" \
		"$(json_get '[d["profiles"][0]["post_restore"][k] for k in ("ok", "current", "skipped", "snapshot")]')"
}

test_a_command_killed_by_a_signal_is_recorded_as_such() {
	setup_repo
	add_commands '[hooks]' 'kill -TERM $$'
	expect_ok git dnadata snapshot
	edit_and_restore
	assert_eq 1 "$RC"
	assert_contains "$ERR" 'error: post_restore command 1 (`kill -TERM $$`) was killed by signal 15'
	assert_contains "$(record)" "exit -1"
}

test_a_background_process_left_by_a_command_is_not_waited_for() {
	setup_repo
	add_commands '[hooks]' 'sleep 120 & echo $! >"$T/bg.pid"; echo started'
	expect_ok git dnadata snapshot
	local start=$SECONDS
	edit_and_restore
	local took=$((SECONDS - start)) pid
	pid=$(cat "$T/bg.pid")
	kill "$pid" 2>/dev/null || true
	[ "$RC" = 0 ] || fail "restore failed: $ERR"
	assert_contains "$ERR" "started"
	[ "$took" -lt 60 ] || fail "the restore waited ${took}s for the background process"
}

test_a_hooks_switch_records_its_post_restore_run() {
	setup_repo
	add_commands '[profile "clean"]' 'exit 9'
	expect_ok git dnadata install-hooks
	expect_ok git dnadata snapshot
	local a=$OUT
	git checkout -q -b other
	psql_q "$DB" "INSERT INTO t VALUES (3, 'three')"
	expect_ok git dnadata snapshot
	run git checkout -q main
	assert_contains "$ERR" "post_restore command 1 (\`exit 9\`) failed with exit status 9"
	assert_contains "$(record)" "snapshot $a"
	assert_contains "$(record)" "failed 1"
	assert_contains "$(record)" "exit 9"
}

test_a_profile_post_restore_in_config_ini_replaces_the_shared_list() {
	setup_repo
	add_commands '[profile "clean"]' 'echo shared >>"$T/log"'
	printf '[profile "clean"]\npost_restore = echo local >>"$T/log"\n' >>.git/dnadata/config.ini
	expect_ok git dnadata snapshot
	edit_and_restore
	[ "$RC" = 0 ] || fail "restore failed: $ERR"
	assert_eq "local" "$(cat "$T/log")"
}

test_new_profile_from_copies_the_post_restore_commands() {
	setup_repo
	add_commands '[profile "clean"]' 'echo one' 'echo two'
	expect_ok git dnadata new-profile copy --from clean
	assert_eq "post_restore = echo one
post_restore = echo two" "$(sed -n '/^\[profile "copy"\]/,$p' .dnadata/profiles.ini | grep '^post_restore')"
}

run_tests
