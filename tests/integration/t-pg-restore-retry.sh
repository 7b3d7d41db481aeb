#!/usr/bin/env bash
# t-pg-restore-retry.sh: the restore's deadlock retry (dd_pg_exec_retrying in
# pg/restore.c, driven by tests/tools/pg-retry-tool) on a real server. An
# ANALYZE of an inheritance parent locks the parent, then its child; a
# second session holding the child asks for the parent with a long
# deadlock_timeout, so the ANALYZE's session finds the deadlock and is its
# victim, every time. Its retry must then succeed on the same session, even
# when the script had opened a transaction block (left aborted: 25P02).
. "$(dirname "$0")/../lib.sh"

test_a_deadlocked_analyze_in_a_transaction_block_is_retried_on_a_clean_session() {
	need_pg
	DB=$(pg_newdb retry)
	psql_q "$DB" "CREATE TABLE par (id int, v int); CREATE TABLE kid () INHERITS (par);
		INSERT INTO par VALUES (1, 1); INSERT INTO kid VALUES (2, 2)" >/dev/null
	hold_lock "$DB" kid
	"$DD_BUILDDIR/pg-retry-tool" "dbname=$DB application_name=dd_victim" \
		"BEGIN; SELECT pg_catalog.set_config('search_path', 'public', true); ANALYZE public.par; COMMIT" \
		>"$T/tool.out" 2>&1 &
	local tool=$!
	# the victim holds par and waits for kid: poll the server for that state (no sleep stands in for it)
	local q="SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'dd_victim' AND a.datname = '$DB' AND NOT l.granted"
	until [ "$(psql_q "$DB" "$q")" = 1 ]; do
		kill -0 "$tool" 2>/dev/null || fail "the tool ended before waiting: $(cat "$T/tool.out")"
	done
	# the parent is granted to the locker only once the victim's transaction is gone: the deadlock happened
	echo "SET deadlock_timeout = '60s'; LOCK TABLE par IN SHARE UPDATE EXCLUSIVE MODE; COMMIT; SELECT 'parent granted';" \
		>&"${LOCKER[1]}"
	local line
	read -r line <&"${LOCKER[0]}"
	assert_eq "parent granted" "$line" "the locker got the parent after the victim's deadlock"
	wait "$tool" || fail "the retry failed: $(cat "$T/tool.out")"
	release_lock
	assert_eq 2 "$(psql_q "$DB" "SELECT count(*) FROM pg_stats WHERE tablename = 'par' AND inherited")" "the retried ANALYZE ran"
}

run_tests
