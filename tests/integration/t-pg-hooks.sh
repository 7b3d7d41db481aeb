#!/usr/bin/env bash
# t-pg-hooks.sh: [hooks] post_restore against the real server: commands run
# in order, in the work tree root, with DNADATA_PROFILE, DNADATA_SNAPSHOT,
# DNADATA_CONNINFO (no password) and PGDATABASE, after the swap; their
# output goes to stderr; the first failure stops them and fails the command
# while the restore stays done; --no-hooks skips them; a no-op restore runs
# none; a hook that runs git dnadata itself sees the configuration we saw.
. "$(dirname "$0")/../lib.sh"

# setup_repo HOOK...: a repository whose profiles.ini runs HOOK... after restore.
setup_repo() {
	repo_with_db hook
	{
		echo "[hooks]"
		for h in "$@"; do echo "post_restore = $h"; done
	} >>.dnadata/profiles.ini
	git commit -qm hooks .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one'), (2, 'two')"
	# psql's server process may still be flushing its counters as it exits: a snapshot taken then records
	# counters its later flush moves, and the restore sees "changed" (the safe side; seen in CI)
	pg_wait_no_sessions "$DB"
}

test_post_restore_commands_run_in_order_in_the_work_tree_with_the_environment() {
	setup_repo 'echo "1 $DNADATA_PROFILE $DNADATA_SNAPSHOT $PGDATABASE $(pwd)" >>"$T/hooks.log"' \
		'echo "2 $(psql -XAtq -c "SELECT v FROM t WHERE id = 2")" >>"$T/hooks.log"' \
		'echo "3 [$DNADATA_CONNINFO] [${DNADATA_DATABASE-unset}]" >>"$T/hooks.log"; echo hook-stdout'
	local root=$PWD
	# a password in the connection string must not reach the commands
	echo "[database]
url = host=127.0.0.1 port=$PGPORT user=$DD_TEST_PW_USER password=$DD_TEST_PW_PASSWORD dbname=$DB" >.git/dnadata/config.ini
	expect_ok git dnadata snapshot
	local id=$OUT
	expect_ok git dnadata restore
	assert_contains "$ERR" "unchanged since snapshot"
	assert_no_file "$T/hooks.log" "a restore that does nothing runs no hook"
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	mkdir -p sub && cd sub
	expect_ok git dnadata restore
	cd "$root"
	assert_eq "1 clean $id $DB $root
2 two
3 [user='$DD_TEST_PW_USER' dbname='$DB' host='127.0.0.1' port='$PGPORT'] [unset]" "$(cat "$T/hooks.log")"
	assert_contains "$ERR" "post_restore 1/3: echo"
	assert_contains "$ERR" "hook-stdout" "hook output goes to stderr"
	assert_not_contains "$OUT" "hook-stdout" "stdout is for data"
	assert_not_contains "$ERR$OUT$(cat "$T/hooks.log")" "$DD_TEST_PW_PASSWORD"
}

# Secrets in memory never reach a core file: the core size limit is 0, and what we run inherits it.
# (Not dumpable too, but that cannot be seen from here: the tests run as root, which may read any
# process's /proc/PID/environ whatever its dumpable flag.)
test_no_core_dumps_even_from_what_we_run() {
	setup_repo 'ulimit -c >"$T/core"'
	ulimit -S -c "$(ulimit -H -c)" # as high as allowed, so the 0 is ours
	[ "$(ulimit -c)" != 0 ] || fail "the hard core size limit is 0 here: this test cannot tell"
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	expect_ok git dnadata restore
	assert_eq 0 "$(cat "$T/core")"
}

# DNADATA_DATABASE is git dnadata's override for every profile: a hook that
# runs git dnadata must not get one from us (it used to get the connection
# string without its password, so the nested command could not connect),
# and gets the user's own unchanged.
test_a_hook_running_git_dnadata_sees_the_configuration_we_saw() {
	setup_repo 'git dnadata status >"$T/nested.txt" 2>&1 || echo "status failed: $?" >>"$T/nested.txt"'
	echo "[database]
url = host=127.0.0.1 port=$PGPORT user=$DD_TEST_PW_USER password=$DD_TEST_PW_PASSWORD dbname=$DB" >.git/dnadata/config.ini
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	expect_ok git dnadata restore
	assert_contains "$(cat "$T/nested.txt")" "unchanged since restore" "the nested status connected"
	assert_not_contains "$(cat "$T/nested.txt")" "no password supplied"
	assert_not_contains "$(cat "$T/nested.txt")" "$DD_TEST_PW_PASSWORD"
	# the user's own override reaches the hook's git dnadata as it was
	psql_q "$DB" "UPDATE t SET v = 'edited again' WHERE id = 2"
	rm "$T/nested.txt"
	DNADATA_DATABASE="dbname=$DB" expect_ok git dnadata restore
	assert_contains "$(cat "$T/nested.txt")" "Database:       dbname=$DB"
	assert_contains "$(cat "$T/nested.txt")" "unchanged since restore"
}

test_passphrases_in_the_environment_never_reach_hooks_or_pg_dump() {
	setup_repo 'env >"$T/hook-env.txt"'
	# a pg_dump wrapper that records the environment it was started with
	mkdir -p "$T/bin"
	printf '#!/bin/sh\nenv >"%s/pgdump-env.txt"\nexec "%s/pg_dump" "$@"\n' "$T" "$DD_PG_BINDIR" >"$T/bin/pg_dump"
	chmod +x "$T/bin/pg_dump"
	ln -s "$DD_PG_BINDIR/psql" "$T/bin/psql"
	export DNADATA_PASSPHRASE=pass-phrase-4711 DNADATA_NEW_PASSPHRASE=new-phrase-4712
	DNADATA_PG_BINDIR=$T/bin expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	expect_ok git dnadata restore
	assert_file "$T/pgdump-env.txt"
	assert_file "$T/hook-env.txt"
	assert_not_contains "$(cat "$T/pgdump-env.txt" "$T/hook-env.txt")" "phrase-471"
	assert_contains "$(cat "$T/hook-env.txt")" "DNADATA_PROFILE=clean" "the hook did get our variables"
}

test_a_failing_post_restore_command_stops_the_rest_and_says_the_restore_is_done() {
	setup_repo 'echo first >>"$T/hooks.log"' 'exit 3' 'echo never >>"$T/hooks.log"'
	expect_ok git dnadata snapshot
	local id=$OUT
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 2"
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" 'error: post_restore command 2 (`exit 3`) failed with exit status 3; the database was restored'
	assert_eq "first" "$(cat "$T/hooks.log")"
	assert_eq "two" "$(psql_q "$DB" "SELECT v FROM t WHERE id = 2")" "the restore stays done"
	expect_ok git dnadata status
	assert_contains "$OUT" "holds snapshot ${id:0:12}"
}

test_no_hooks_skips_them_on_restore_and_use() {
	setup_repo 'echo ran >>"$T/hooks.log"'
	expect_ok git dnadata snapshot
	expect_ok git dnadata restore --force --no-hooks
	assert_no_file "$T/hooks.log"
	expect_ok git dnadata new-profile other
	expect_ok git dnadata use other
	psql_q "$DB" "INSERT INTO t VALUES (3, 'other')"
	expect_ok git dnadata snapshot
	expect_ok git dnadata use clean --no-hooks
	assert_contains "$ERR" "restored snapshot"
	assert_no_file "$T/hooks.log"
	expect_ok git dnadata use other
	assert_eq "ran" "$(cat "$T/hooks.log")" "use runs them"
}

test_use_with_a_failing_hook_still_switches_the_profile() {
	setup_repo 'false'
	expect_ok git dnadata snapshot
	expect_ok git dnadata new-profile other
	psql_q "$DB" "INSERT INTO t VALUES (3, 'other')"
	expect_ok git dnadata snapshot other
	expect_ok git dnadata restore clean --no-hooks
	expect_fail 1 git dnadata use other
	assert_contains "$ERR" 'post_restore command 1 (`false`) failed with exit status 1; the database was restored'
	expect_ok git dnadata status --json
	assert_contains "$OUT" '"active_profile":"other"'
}

run_tests
