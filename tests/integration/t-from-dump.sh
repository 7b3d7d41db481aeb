#!/usr/bin/env bash
# t-from-dump.sh: `git dnadata snapshot --from-dump FILE`: a pg_dump file of
# each format (custom, directory, tar, plain) is loaded into a scratch
# database, snapshot as the profile and restores equal to the dumped
# database; the working database is not touched; a dump that does not load
# is refused with the failing statement and changes nothing; the scratch
# database is gone afterwards (success, failure, Ctrl-C, kill -9 + the next
# command).
. "$(dirname "$0")/../lib.sh"

# A source database with a bit of everything a dump carries.
make_source() {
	SRC=$(pg_newdb src)
	psql_q "$SRC" "CREATE TABLE t (id int PRIMARY KEY, v text, j jsonb);
		INSERT INTO t SELECT g, 'row ' || g, jsonb_build_object('g', g) FROM generate_series(1, 300) g;
		CREATE SEQUENCE s START 40; SELECT nextval('s'); SELECT nextval('s');
		CREATE TABLE c (id serial PRIMARY KEY, t_id int REFERENCES t(id), note text);
		INSERT INTO c (t_id, note) VALUES (1, 'a'), (2, 'b'), (2, 'c');
		CREATE INDEX t_v ON t (v);
		CREATE VIEW tv AS SELECT id, v FROM t WHERE id < 10;
		COMMENT ON TABLE t IS 'the table'" >/dev/null
}

# The dump of a database as text to compare: schema and data, no owners, none of the volatile lines.
dump_text() {
	"$DD_PG_BINDIR/pg_dump" --no-owner --no-privileges -d "$1" | grep -v -e '^\\restrict' -e '^\\unrestrict' -e '^-- Dumped'
}

scratch_dbs() { databases_like "${DB}__dnadata_load_"; }

# from_dump_equal FORMAT-OPTION: dump $SRC in that format, snapshot it, restore it, compare.
from_dump_equal() {
	repo_with_db fd
	make_source
	local dump=$T/src.dump
	"$DD_PG_BINDIR/pg_dump" "$1" -f "$dump" -d "$SRC"
	psql_q "$DB" "CREATE TABLE mine (x int); INSERT INTO mine VALUES (7)"
	local before
	before=$(git rev-parse HEAD)
	expect_ok git dnadata snapshot --from-dump "$dump"
	local id=$OUT
	assert_contains "$ERR" "pg_dump $2 format"
	assert_contains "$(cat .dnadata/refs/*)" "$id"
	assert_ne "$before" "$(git rev-parse HEAD)" "the new ref is committed"
	assert_eq "" "$(scratch_dbs)" "the scratch database is dropped"
	assert_eq "7" "$(psql_q "$DB" "SELECT x FROM mine")" "the working database is not touched"
	expect_ok git dnadata restore
	assert_eq "$(dump_text "$SRC")" "$(dump_text "$DB")" "the restored database equals the dumped one"
	assert_eq "42" "$(psql_q "$DB" "SELECT nextval('s')")" "the sequence continues where the dump left it"
}

test_custom_format_restores_equal_to_the_dumped_database() { from_dump_equal -Fc custom; }
test_directory_format_restores_equal_to_the_dumped_database() { from_dump_equal -Fd directory; }
test_tar_format_restores_equal_to_the_dumped_database() { from_dump_equal -Ft tar; }
test_plain_format_restores_equal_to_the_dumped_database() { from_dump_equal -Fp plain; }

test_a_dump_of_the_snapshot_data_gives_the_same_snapshot_id() {
	repo_with_db fd
	make_source
	"$DD_PG_BINDIR/pg_dump" -Fc -f "$T/a.dump" -d "$SRC"
	expect_ok git dnadata snapshot --from-dump "$T/a.dump"
	local id=$OUT
	expect_ok git dnadata snapshot --from-dump "$T/a.dump"
	assert_eq "$id" "$OUT"
	assert_contains "$ERR" "nothing changed"
}

# refused FILE TEXT: the snapshot is refused with TEXT in its one error line; ref, commits and databases unchanged.
refused() {
	local ref head
	ref=$(cat .dnadata/refs/*)
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata snapshot --from-dump "$1"
	assert_contains "$ERR" "$2"
	assert_eq "$ref" "$(cat .dnadata/refs/*)" "the ref file is unchanged"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing is committed"
	assert_eq "" "$(scratch_dbs)" "the scratch database is dropped after a failure"
	assert_eq "" "$(ls .git/dnadata/pg/*/pending-* 2>/dev/null)" "no pending record is left"
}

test_a_plain_dump_that_fails_to_load_is_refused_with_the_failing_statement() {
	repo_with_db fd
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata snapshot
	printf 'CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (1);\nINSERT INTO nowhere VALUES (2);\n' >"$T/bad.sql"
	refused "$T/bad.sql" 'relation "nowhere" does not exist'
	tap_note "$(grep '^error:' <<<"$ERR")"
	assert_contains "$ERR" "line 3: ERROR:  relation \"nowhere\" does not exist; LINE 1: INSERT INTO nowhere"
	assert_eq "1" "$(psql_q "$DB" "SELECT count(*) FROM t")" "the working database is not touched"
}

test_a_custom_dump_that_fails_to_load_is_refused_with_the_failing_statement() {
	repo_with_db fd
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	expect_ok git dnadata snapshot
	local src
	src=$(pg_newdb src)
	# a table in a schema the dump does not create (pg_dump -t): its CREATE fails on load
	psql_q "$src" "CREATE SCHEMA x; CREATE TABLE x.k (id int PRIMARY KEY); CREATE TABLE u (id int PRIMARY KEY)"
	"$DD_PG_BINDIR/pg_dump" -Fc -t x.k -f "$T/bad.dump" -d "$src"
	refused "$T/bad.dump" 'schema "x" does not exist'
	tap_note "$(grep '^error:' <<<"$ERR")"
	assert_contains "$ERR" "Command was: CREATE TABLE x.k"
}

# A plain dump is a psql script: its backslash commands (\! runs a shell command) must not run, even after
# an \unrestrict with the dump's own key.
test_a_plain_dump_never_runs_psql_backslash_commands() {
	repo_with_db fd
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	expect_ok git dnadata snapshot
	printf 'CREATE TABLE a (id int);\n\\! touch %s/pwned\n' "$T" >"$T/evil1.sql"
	refused "$T/evil1.sql" "backslash commands are restricted"
	printf '\\restrict abc123\nCREATE TABLE a (id int);\n\\unrestrict abc123\n\\! touch %s/pwned\n' "$T" >"$T/evil2.sql"
	refused "$T/evil2.sql" "backslash commands are restricted"
	printf 'CREATE TABLE a (id int);\n\\o %s/pwned\nSELECT 1;\n' "$T" >"$T/evil3.sql"
	refused "$T/evil3.sql" "backslash commands are restricted"
	assert_no_file "$T/pwned"
	# pg_dump's own guard lines are left out, and the rest loads (COPY data lines that start with a backslash too)
	local src
	src=$(pg_newdb src)
	psql_q "$src" "CREATE TABLE b (v text, id int PRIMARY KEY); INSERT INTO b VALUES (E'\\\\restrict x', 1), (NULL, 2)"
	"$DD_PG_BINDIR/pg_dump" -Fp -f "$T/ok.sql" -d "$src"
	expect_ok git dnadata snapshot --from-dump "$T/ok.sql"
	expect_ok git dnadata restore
	assert_eq "$(psql_q "$src" "SELECT id, v IS NULL, v FROM b ORDER BY id")" "$(psql_q "$DB" "SELECT id, v IS NULL, v FROM b ORDER BY id")"
	assert_eq '\restrict x' "$(psql_q "$DB" "SELECT v FROM b WHERE id = 1")"
}

test_a_truncated_dump_is_refused() {
	repo_with_db fd
	make_source
	"$DD_PG_BINDIR/pg_dump" -Fc -f "$T/full.dump" -d "$SRC"
	head -c 2000 "$T/full.dump" >"$T/cut.dump"
	expect_ok git dnadata snapshot
	refused "$T/cut.dump" "pg_restore"
}

test_a_missing_dump_is_refused_before_anything_is_created() {
	repo_with_db fd
	expect_fail 1 git dnadata snapshot --from-dump "$T/nope.dump"
	assert_contains "$ERR" "nope.dump"
	assert_eq "" "$(scratch_dbs)"
}

test_a_compressed_plain_dump_is_refused_with_what_to_do() {
	repo_with_db fd
	make_source
	"$DD_PG_BINDIR/pg_dump" -Fp -d "$SRC" | gzip >"$T/d.sql.gz"
	expect_fail 1 git dnadata snapshot --from-dump "$T/d.sql.gz"
	assert_contains "$ERR" "d.sql.gz is gzip-compressed"
	assert_contains "$ERR" "hint: decompress it first (gunzip)"
	assert_eq "" "$(scratch_dbs)"
}

# stopped_at_load: git-dnadata snapshot --from-dump stopped (SIGSTOP) once the dump is loaded; $PID.
stopped_at_load() {
	repo_with_db fd
	make_source
	"$DD_PG_BINDIR/pg_dump" -Fc -f "$T/a.dump" -d "$SRC"
	DNADATA_FAILPOINT=scratch-loaded git-dnadata snapshot --from-dump "$T/a.dump" >"$T/s.out" 2>"$T/s.err" &
	PID=$!
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(cut -d' ' -f3 "/proc/$PID/stat" 2>/dev/null)" = T ] && break
		kill -0 "$PID" 2>/dev/null || fail "snapshot ended before the failpoint: $(cat "$T/s.err")"
		sleep 0.05
	done
	[ "$(cut -d' ' -f3 "/proc/$PID/stat")" = T ] || fail "snapshot never reached the failpoint"
	[ -n "$(scratch_dbs)" ] || fail "no scratch database while loading"
}

test_an_interrupted_snapshot_drops_its_scratch_database() {
	stopped_at_load
	local ref
	ref=$(cat .dnadata/refs/* 2>/dev/null || true)
	kill -INT "$PID"
	kill -CONT "$PID"
	local rc=0
	wait "$PID" || rc=$?
	assert_ne 0 "$rc" "an interrupted snapshot fails"
	assert_contains "$(cat "$T/s.err")" "interrupted"
	assert_eq "" "$(scratch_dbs)" "the scratch database is dropped on SIGINT"
	assert_eq "$ref" "$(cat .dnadata/refs/* 2>/dev/null || true)"
}

test_a_killed_snapshot_leaves_its_scratch_database_to_the_next_command() {
	stopped_at_load
	kill -KILL "$PID"
	wait "$PID" || true
	[ -n "$(scratch_dbs)" ] || fail "the scratch database should outlive kill -9"
	expect_ok git dnadata snapshot
	assert_contains "$ERR" "left behind by an interrupted restore"
	assert_eq "" "$(scratch_dbs)" "the next command drops it"
}

run_tests
