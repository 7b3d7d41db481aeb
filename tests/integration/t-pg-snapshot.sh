#!/usr/bin/env bash
# t-pg-snapshot.sh: `git dnadata snapshot` against the real server: the ref
# and its commit, determinism (same data, same id, no commit), tables
# without a primary key, exclude_tables / exclude_data, consistency
# under a concurrent writer, and a table another session holds locked
# (a bounded wait that names the session, Ctrl-C while waiting).
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db snap
}

bank_sql() {
	cat <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE transfers (id bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL);
INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 200) i;
SQL
}

test_snapshot_writes_the_ref_and_commits_it() {
	setup_repo
	bank_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	local commits
	commits=$(git rev-list --count HEAD)
	expect_ok git dnadata snapshot -m "bank at day 1"
	[[ $OUT =~ ^[0-9a-f]{64}$ ]] || fail "stdout is not a snapshot id: [$OUT]"
	local ref
	ref=$(cat .dnadata/refs/clean)
	assert_contains "$ref" "dnadata-ref 1"
	assert_contains "$ref" "snapshot $OUT"
	assert_contains "$ref" "tables 2"
	assert_contains "$ref" "rows 200"
	assert_contains "$ref" "created "
	assert_eq $((commits + 1)) "$(git rev-list --count HEAD)"
	assert_eq "dnadata: bank at day 1" "$(git log -1 --format=%s)"
	assert_eq "" "$(git status --porcelain .dnadata)"
}

test_unchanged_database_gives_the_same_id_and_no_commit() {
	setup_repo
	bank_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	expect_ok git dnadata snapshot
	local id=$OUT head
	head=$(git rev-parse HEAD)
	# reads, a VACUUM and ANALYZE change nothing that is data
	psql_q "$DB" "SELECT count(*) FROM accounts" >/dev/null
	psql_q "$DB" "VACUUM ANALYZE accounts"
	expect_ok git dnadata snapshot
	assert_eq "$id" "$OUT"
	assert_contains "$ERR" "nothing changed"
	assert_eq "$head" "$(git rev-parse HEAD)" "no new commit"
	# one changed row: a new id, a new commit
	psql_q "$DB" "UPDATE accounts SET balance = 999 WHERE id = 7"
	expect_ok git dnadata snapshot
	assert_ne "$id" "$OUT"
	assert_ne "$head" "$(git rev-parse HEAD)"
}

test_table_without_primary_key_warns_and_restores_exactly() {
	setup_repo
	psql_q "$DB" "CREATE TABLE log (at int, msg text); INSERT INTO log VALUES (2, 'b'), (1, 'a'), (2, 'b'), (NULL, NULL), (3, E'x\ty')"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "warning: table public.log has no primary key"
	local before
	before=$(psql_q "$DB" "SELECT ctid, * FROM log")
	psql_q "$DB" "DELETE FROM log WHERE at = 2"
	expect_ok git dnadata restore --force
	assert_eq "$before" "$(psql_q "$DB" "SELECT ctid, * FROM log")" "same rows, duplicates and order included"
}

test_exclude_tables_and_exclude_data() {
	setup_repo
	psql_q "$DB" "CREATE SCHEMA audit; CREATE TABLE audit.trail (id int PRIMARY KEY, what text);
		CREATE TABLE audit.more (id serial PRIMARY KEY);
		CREATE TABLE keep (id int PRIMARY KEY, v text); CREATE TABLE requests_log (id bigserial PRIMARY KEY, line text);
		CREATE TABLE parted (id int, k int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
		CREATE TABLE parted_1 PARTITION OF parted FOR VALUES IN (1);
		INSERT INTO audit.trail VALUES (1, 'x'); INSERT INTO keep VALUES (1, 'kept');
		INSERT INTO requests_log (line) SELECT 'GET /' || i FROM generate_series(1, 50) i;
		INSERT INTO parted VALUES (1, 1)"
	cat >>.dnadata/profiles.ini <<'INI'
exclude_tables = audit.*, parted
exclude_data = public.requests_*
INI
	git commit -q -am "exclude some tables"
	expect_ok git dnadata snapshot
	assert_contains "$(cat .dnadata/refs/clean)" "tables 1"
	expect_ok git dnadata restore --force
	assert_eq "kept" "$(psql_q "$DB" "SELECT v FROM keep")"
	assert_eq "0" "$(psql_q "$DB" "SELECT count(*) FROM requests_log")" "exclude_data keeps the table, empty"
	assert_eq "" "$(psql_q "$DB" "SELECT relname FROM pg_class WHERE relname IN ('trail', 'more', 'parted', 'parted_1')")" \
		"exclude_tables leaves them (and partitions of an excluded table) out"
	assert_eq "1" "$(psql_q "$DB" "SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'")" "the schema itself stays"
}

test_snapshot_no_commit_and_dump_only() {
	setup_repo
	bank_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	local head
	head=$(git rev-parse HEAD)
	expect_ok git dnadata snapshot --no-commit --dump-only
	local id=$OUT
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_contains "$(git status --porcelain)" ".dnadata/refs/clean"
	assert_contains "$ERR" "local cache only"
	assert_file ".git/dnadata/cache/snapshots/$id"
	# the same data later: nothing changed, but the pending ref gets its commit
	expect_ok git dnadata snapshot
	assert_eq "$id" "$OUT"
	assert_eq "" "$(git status --porcelain .dnadata)"
	assert_ne "$head" "$(git rev-parse HEAD)"
}

# Debian's /usr/bin/pg_dump is a link to pg_wrapper, a Perl script (~50-200 ms a run) that runs one of
# /usr/lib/postgresql/<major>/bin: the snapshot finds and runs that real pg_dump, never the wrapper, even when
# the wrapper comes first on PATH (here a stand-in named pg_wrapper that says when it runs).
test_pg_dump_is_the_real_program_never_debians_wrapper() {
	setup_repo
	bank_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	mkdir -p "$T/wrapbin"
	printf '#!/bin/sh\necho "$0 $*" >>"%s"\nexec "%s/$(basename "$0")" "$@"\n' "$T/wrapper-ran" "$DD_PG_BINDIR" \
		>"$T/wrapbin/pg_wrapper"
	chmod +x "$T/wrapbin/pg_wrapper"
	ln -s pg_wrapper "$T/wrapbin/pg_dump"
	"$T/wrapbin/pg_dump" --version >/dev/null || fail "the stand-in wrapper does not run"
	assert_file "$T/wrapper-ran"
	rm "$T/wrapper-ran"
	PATH="$T/wrapbin:$PATH" expect_ok git dnadata -v snapshot
	assert_contains "$ERR" "using $(readlink -f "$DD_PG_BINDIR")/pg_dump (version "
	[ ! -e "$T/wrapper-ran" ] || fail "the wrapper ran: $(cat "$T/wrapper-ran")"
}

# A writer moves money between accounts (and logs each transfer) the whole
# time; every snapshot must see whole transactions only: total balance
# constant and each balance equal to 1000 + what the log says.
test_snapshot_under_concurrent_transfers_keeps_the_invariant() {
	setup_repo
	bank_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	psql_q "$DB" "INSERT INTO transfers (src, dst, amount) SELECT 1, 1, 0 FROM generate_series(1, 100000)"
	cat >"$T/transfer.sql" <<'SQL'
\set a random(1, 200)
\set b random(1, 200)
\set x random(1, 100)
BEGIN;
UPDATE accounts SET balance = balance - :x WHERE id = :a;
INSERT INTO transfers (src, dst, amount) VALUES (:a, :b, :x);
UPDATE accounts SET balance = balance + :x WHERE id = :b;
COMMIT;
SQL
	# The writer runs until the snapshots are done (no fixed duration: on a
	# loaded machine three snapshots may take longer than any guess), and
	# each snapshot is followed by at least one more committed transfer, so
	# the first and last snapshots must differ. Deadlocks between two
	# transfers are retried by pgbench itself, as an application would.
	"$DD_PG_BINDIR/pgbench" -n -c 4 -T 600 --max-tries=100 -f "$T/transfer.sql" "$DB" >"$T/pgbench.log" 2>&1 &
	local bench=$!
	transfers_done() { psql_q "$DB" "SELECT count(*) FROM transfers WHERE amount > 0"; }
	wait_for_more_transfers_than() {
		for _ in $(seq "$DD_WAIT_POLLS"); do
			[ "$(transfers_done)" -gt "$1" ] && return 0
			kill -0 "$bench" 2>/dev/null || fail "pgbench stopped: $(cat "$T/pgbench.log")"
			sleep 0.05
		done
		fail "the writer made no progress: $(cat "$T/pgbench.log")"
	}
	wait_for_more_transfers_than 0
	local ids=()
	for _ in 1 2 3; do
		expect_ok git dnadata snapshot --no-commit
		ids+=("$OUT")
		wait_for_more_transfers_than "$(transfers_done)"
	done
	kill "$bench"
	wait "$bench" || true
	for id in "${ids[@]}"; do
		printf 'dnadata-ref 1\nsnapshot %s\n' "$id" >.dnadata/refs/clean
		expect_ok git dnadata restore --force --terminate
		assert_eq 200000 "$(psql_q "$DB" "SELECT sum(balance) FROM accounts")" "total balance in snapshot $id"
		assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM accounts a WHERE balance <> 1000
			- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0)
			+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)")" \
			"balances agree with the transfer log in snapshot $id"
	done
	assert_ne "${ids[0]}" "${ids[2]}" "the writer changed the data between snapshots"
}

# Hold ACCESS EXCLUSIVE on table $1 (default t) of $DB (session "locker").
hold_table_lock() { hold_lock "$DB" "${1:-t}"; }
release_table_lock() { release_lock; }

locked_table_repo() {
	setup_repo
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
	expect_ok git dnadata snapshot
	psql_q "$DB" "INSERT INTO t VALUES (2, 'two')"
}

test_snapshot_of_a_locked_table_gives_up_naming_the_session() {
	locked_table_repo
	local head ref
	head=$(git rev-parse HEAD)
	ref=$(cat .dnadata/refs/clean)
	hold_table_lock
	export DNADATA_LOCK_WAIT_TIMEOUT=1500ms
	expect_fail 1 git dnadata snapshot
	release_table_lock
	assert_contains "$ERR" "waiting for table public.t: locked by session pid $LOCKER_BACKEND (application locker, user postgres)"
	assert_contains "$ERR" "error: snapshot of database $DB: table public.t is locked by another session (pid $LOCKER_BACKEND, application locker, user postgres): gave up waiting after 1500ms"
	assert_contains "$ERR" "hint: end that session's transaction (or SELECT pg_terminate_backend($LOCKER_BACKEND))"
	assert_not_contains "$ERR" "grant this user SELECT"
	assert_eq "$head" "$(git rev-parse HEAD)" "no commit"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref is unchanged"
	assert_eq "" "$(git status --porcelain)"
	unset DNADATA_LOCK_WAIT_TIMEOUT
	expect_ok git dnadata snapshot
}

test_interrupting_a_snapshot_waiting_for_a_lock_says_interrupted() {
	locked_table_repo
	hold_table_lock
	git-dnadata snapshot >"$T/out" 2>"$T/err" &
	local pid=$! rc=0 blocked=
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q "$DB" "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND l.relation = 't'::regclass::oid AND a.datname = '$DB'
			AND a.application_name = 'git-dnadata')")" = t ] && blocked=1 && break
		sleep 0.05
	done
	[ -n "$blocked" ] || fail "the snapshot never waited for the lock"
	kill -INT "$pid"
	wait "$pid" || rc=$?
	release_table_lock
	[ "$rc" = 1 ] || fail "the interrupted snapshot exited $rc"
	assert_contains "$(cat "$T/err")" "error: snapshot of database $DB: interrupted"
	assert_not_contains "$(cat "$T/err")" "grant this user SELECT"
}

test_lock_wait_timeout_from_profiles_ini_bounds_the_wait() {
	locked_table_repo
	sed -i 's/^\[database\]$/[database]\nlock_wait_timeout = 60/' .dnadata/profiles.ini
	grep -q '^lock_wait_timeout = 60$' .dnadata/profiles.ini || fail "no [database] section to set it in"
	git commit -qm "lock wait" .dnadata/profiles.ini
	# the clone's own config.ini overrides the shared setting
	printf '[profile "clean"]\nlock_wait_timeout = 2\n' >>.git/dnadata/config.ini
	hold_table_lock
	expect_fail 1 git dnadata snapshot
	release_table_lock
	assert_contains "$ERR" "gave up waiting after 2000ms"
}

# Wait (up to lib.sh's hang guard) until a session with application_name $2 waits for a lock on table $1.
wait_for_lock_wait() {
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q "$DB" "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND l.relation = '$1'::regclass::oid AND a.datname = '$DB'
			AND a.application_name = '$2')")" = t ] && return 0
		sleep 0.05
	done
	fail "$2 never waited for a lock on $1"
}

# An ALTER TABLE that queues behind the snapshot's locks makes every later
# lock request on that table queue behind it, the snapshot's own workers
# and pg_dump included, while the snapshot holds the ALTER up: a cycle the
# server cannot see. To get there deterministically, a "locker" session
# holds table u, so the snapshot's leader, which locks t then u, waits with
# t already locked; the ALTER on t then queues behind it; then u is let go.
# The snapshot must stop at once (not after its 60 s lock_wait_timeout),
# naming the ALTER's session, and the ALTER must then go through.
# $1: a line for the profile in profiles.ini, or nothing.
queued_alter_stops_the_snapshot() {
	locked_table_repo
	psql_q "$DB" "CREATE TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1)"
	if [ -n "${1:-}" ]; then
		echo "$1" >>.dnadata/profiles.ini
		git commit -qam "profile: $1"
	fi
	local ref rc=0 alter_backend start
	ref=$(cat .dnadata/refs/clean)
	hold_table_lock u
	DNADATA_LOCK_WAIT_TIMEOUT=60s git-dnadata snapshot >"$T/out" 2>"$T/err" &
	local pid=$!
	wait_for_lock_wait u git-dnadata
	timeout 120 "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "dbname=$DB application_name=alterer" \
		-c "ALTER TABLE t ADD COLUMN extra int" >"$T/alter" 2>&1 &
	local alter=$!
	wait_for_lock_wait t alterer
	alter_backend=$(psql_q "$DB" "SELECT pid FROM pg_stat_activity WHERE application_name = 'alterer'")
	start=$SECONDS
	release_table_lock
	wait "$pid" || rc=$?
	local elapsed=$((SECONDS - start))
	wait "$alter" || fail "the ALTER TABLE failed: $(cat "$T/alter")"
	[ "$rc" = 1 ] || fail "the snapshot exited $rc: $(cat "$T/err")"
	[ "$elapsed" -lt 20 ] || fail "the snapshot held the ALTER for ${elapsed}s: $(cat "$T/err")"
	assert_contains "$(cat "$T/err")" "error: snapshot of database $DB: session pid $alter_backend (application alterer, user postgres) is waiting to lock table public.t, and the snapshot cannot go on while it waits: stopped, so that it can proceed"
	assert_contains "$(cat "$T/err")" "hint: that session proceeds now that the snapshot has stopped; once it is done, snapshot again (git dnadata snapshot)"
	assert_not_contains "$(cat "$T/err")" "raise lock_wait_timeout"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'extra'")" \
		"the ALTER went through"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref is unchanged"
	expect_ok git dnadata snapshot
}

test_a_queued_alter_table_stops_the_workers_naming_it() {
	queued_alter_stops_the_snapshot
}

# With t's rows left out, only pg_dump (schema) locks t after the leader.
test_a_queued_alter_table_stops_pg_dump_naming_it() {
	queued_alter_stops_the_snapshot "exclude_data = public.t"
}

test_lock_wait_timeout_override_must_be_a_duration() {
	locked_table_repo
	export DNADATA_LOCK_WAIT_TIMEOUT=soon
	expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "DNADATA_LOCK_WAIT_TIMEOUT=soon is not a duration"
	assert_contains "$ERR" "hint: set it to milliseconds"
}

run_tests
