#!/usr/bin/env bash
# t-pg-incremental.sh: incremental snapshots (issue 19) on a real server.
# The invariant every test checks: an incremental snapshot has the same id
# as `snapshot --full` of the same state (each table's stream byte for
# byte what a full read gives), and restores to the source. The -v lines
# ("incremental: ...") say which tables were reused and why others were
# read; the tests assert on them and print them.
# serial: crashes a backend, which resets every session of the shared server (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db incr
	psql_q "$DB" "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
		CREATE TABLE big (id int PRIMARY KEY, v text, m mood);
		CREATE TABLE small (k text PRIMARY KEY, n int);
		CREATE TABLE pair (a int, b text, w text, PRIMARY KEY (a, b));
		CREATE TABLE nopk (x int, y text);
		INSERT INTO big SELECT i, repeat(md5(i::text), 4), 'ok' FROM generate_series(1, 20000) i;
		INSERT INTO small SELECT 'k' || i, i FROM generate_series(1, 100) i;
		INSERT INTO pair SELECT i % 50, 'b' || i, 'w' FROM generate_series(1, 500) i;
		INSERT INTO nopk SELECT i, 'y' FROM generate_series(1, 100) i"
	# no autovacuum ANALYZE of these tables or of the catalogs later: it writes pg_statistic, which the
	# database's counters count, and the unchanged-database check would then (safely) say "changed"
	psql_q "$DB" "VACUUM ANALYZE"
}

COUNTS_OFF="track_counts is off, or may be turned off (ALTER DATABASE/ROLE ... SET, GRANT SET ON PARAMETER, a function's SET): the statistics may miss writes"

# snap: an incremental snapshot with -v (no commit); ID its id, V its incremental lines (printed).
snap() {
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot --no-commit "$@"
	ID=$OUT
	V=$(grep 'incremental: ' <<<"$ERR" || true)
	tap_note "$V"
}

# full_id: `snapshot --full` of the same state; FULL its id. The ref is put back afterwards. FULL_WHY: the
# reason its -v line gives (when one found before --full is looked at applies)
full_id() {
	local ref
	ref=$(cat .dnadata/refs/clean)
	pg_wait_no_sessions "$DB"
	expect_ok git dnadata -v snapshot --no-commit --full
	FULL=$OUT
	assert_contains "$ERR" "incremental: every table read: ${FULL_WHY:---full}"
	printf '%s\n' "$ref" >.dnadata/refs/clean
}

# same_as_full: the last incremental id equals --full's of the same state.
same_as_full() {
	full_id
	assert_eq "$FULL" "$ID" "incremental id == --full id ($1)"
}

# restores_exactly: restore the ref's snapshot and compare every table with the source's dump.
restores_exactly() {
	local before after
	before=$(table_dump)
	expect_ok git dnadata restore --force --terminate
	after=$(table_dump)
	assert_eq "$before" "$after" "restore equals the source"
}

table_dump() {
	psql_q "$DB" "SELECT 'big', md5(string_agg(b::text, '|' ORDER BY id)) FROM big b
		UNION ALL SELECT 'small', md5(string_agg(s::text, '|' ORDER BY k)) FROM small s
		UNION ALL SELECT 'pair', md5(string_agg(p::text, '|' ORDER BY a, b)) FROM pair p
		UNION ALL SELECT 'nopk', md5(string_agg(n::text, '|' ORDER BY x, y)) FROM nopk n"
}

test_unchanged_tables_are_reused_and_the_id_is_a_full_reads() {
	setup_repo
	snap
	assert_contains "$V" "incremental: every table read: no previous snapshot"
	local first=$ID
	psql_q "$DB" "UPDATE small SET n = n + 1 WHERE k = 'k7'"
	snap
	assert_ne "$first" "$ID"
	assert_contains "$V" 'incremental: public.big reused from snapshot'
	assert_contains "$V" 'incremental: public.pair reused from snapshot'
	assert_contains "$V" 'incremental: public.nopk reused from snapshot'
	assert_contains "$V" 'incremental: public.small read: changed since the previous snapshot'
	assert_contains "$V" 'incremental: 3 tables reused, 1 read with COPY'
	same_as_full "one small table changed"
	restores_exactly
}

test_unchanged_database_reads_nothing_and_keeps_the_id() {
	setup_repo
	snap
	local first=$ID
	snap
	assert_eq "$first" "$ID"
	assert_contains "$ERR" "nothing changed"
	assert_contains "$V" "unchanged since snapshot ${first:0:12}: no table read"
	assert_not_contains "$V" "read with COPY"
	same_as_full "unchanged database"
}

# Each change must make its table read, and the result equal a full read.
check_change() {
	local what=$1 sql=$2 table=$3
	psql_q "$DB" "$sql"
	snap
	assert_contains "$V" "incremental: $table read: " "$what"
	same_as_full "$what"
}

test_every_kind_of_change_is_seen() {
	setup_repo
	snap
	check_change "insert at the end" "INSERT INTO big VALUES (30000, 'end', 'sad')" public.big
	check_change "insert at the start" "INSERT INTO big VALUES (0, 'start', 'sad')" public.big
	check_change "insert in the middle" "DELETE FROM big WHERE id = 500; INSERT INTO big VALUES (500, 'mid', 'happy')" public.big
	check_change "deletes" "DELETE FROM big WHERE id % 1000 = 3" public.big
	check_change "a key update" "UPDATE big SET id = -5 WHERE id = 5" public.big
	check_change "scattered updates" "UPDATE big SET v = 'x' WHERE id % 100 = 1" public.big
	check_change "a composite key" "UPDATE pair SET w = 'z' WHERE a = 3" public.pair
	check_change "a text key" "UPDATE small SET k = 'k7b' WHERE k = 'k7'" public.small
	check_change "no primary key" "UPDATE nopk SET y = 'q' WHERE x = 9" public.nopk
	check_change "TRUNCATE" "TRUNCATE small" public.small
	check_change "ADD COLUMN (catalog only)" "ALTER TABLE pair ADD COLUMN extra int DEFAULT 7" public.pair
	check_change "an aborted insert" "BEGIN; INSERT INTO nopk VALUES (1000, 'gone'); ROLLBACK" public.nopk
	restores_exactly
}

test_changed_key_ranges_are_read_alone() {
	setup_repo
	snap
	psql_q "$DB" "UPDATE big SET v = 'clustered' WHERE id BETWEEN 5000 AND 5100"
	snap
	assert_contains "$V" "incremental: public.big: 10 of 11 key ranges unchanged, 1 merged from markers, 0 read"
	same_as_full "clustered change"
	# scattered: every range changed, few rows of each: every range merged from markers
	psql_q "$DB" "UPDATE big SET v = 'scattered' WHERE id % 500 = 0"
	snap
	assert_contains "$V" "incremental: public.big: 0 of 11 key ranges unchanged, 11 merged from markers, 0 read"
	same_as_full "scattered change"
	# dense: most rows of a range changed, which a range COPY reads
	psql_q "$DB" "UPDATE big SET v = 'dense' WHERE id BETWEEN 9000 AND 11000"
	snap
	assert_contains "$V" "incremental: public.big: "
	assert_not_contains "$V" "merged from markers, 0 read"
	same_as_full "dense change"
	# deletes only (counts differ), at both ends and in the middle
	psql_q "$DB" "DELETE FROM big WHERE id IN (1, 2, 10000, 19999, 20000)"
	snap
	assert_contains "$V" "key ranges unchanged, "
	same_as_full "deletes"
	# a key moved from one range to another
	psql_q "$DB" "UPDATE big SET id = 25000 WHERE id = 3"
	snap
	assert_contains "$V" "key ranges unchanged, "
	same_as_full "key moved"
	# most of the table changed: splicing would cost more than reading it whole
	psql_q "$DB" "UPDATE big SET v = 'most' WHERE id < 14000"
	snap
	assert_contains "$V" "incremental: public.big read whole: only "
	same_as_full "most rows changed"
	restores_exactly
}

test_text_keys_with_escapes_in_ranges() {
	setup_repo
	# every key holds a tab, a quote, a backslash, a comma and an apostrophe: COPY escapes, literals, array quoting
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
CREATE TABLE words (w text PRIMARY KEY, n int);
INSERT INTO words SELECT md5(i::text) || chr(9) || '"' || chr(92) || ',' || chr(39) || i, i
FROM generate_series(1, 20000) i;
SQL
	snap
	psql_q "$DB" "UPDATE words SET n = -n WHERE w < '1'"
	snap
	assert_contains "$V" "incremental: public.words: "
	assert_contains "$V" "key ranges unchanged, "
	same_as_full "text keys with escapes"
	# scattered updates, deletes and inserts: merged from markers, keys with escapes matched by their COPY text
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
UPDATE words SET n = n + 1000000 WHERE n % 97 = 0;
DELETE FROM words WHERE n % 89 = 0;
INSERT INTO words SELECT md5(i::text) || chr(9) || 'new' || chr(92), i FROM generate_series(1, 20000, 211) i;
SQL
	snap
	assert_contains "$V" "incremental: public.words: 0 of "
	assert_contains "$V" "merged from markers, 0 read"
	same_as_full "scattered changes, text keys with escapes"
	local before
	before=$(psql_q "$DB" "SELECT md5(string_agg(w || n, '|' ORDER BY w)) FROM words")
	expect_ok git dnadata restore --force --terminate
	assert_eq "$before" "$(psql_q "$DB" "SELECT md5(string_agg(w || n, '|' ORDER BY w)) FROM words")"
}

# hexenc: stdin as lowercase hex (the record's encoding of names and keys)
hexenc() { od -An -v -tx1 | tr -d ' \n'; }
hexdec() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")"; }

# sample_keys TABLE: the keys of TABLE's samples in the record of snapshot $ID, in order
sample_keys() {
	local h k
	h=$(printf 'data/public.%s' "$1" | hexenc)
	for k in $(awk -v h="$h" '$1 == "table" { on = $NF == h; next } on && $1 == "sample" { print $4 }' \
		".git/dnadata/pg/incr/$ID"); do
		hexdec "$k"
		echo
	done
}

# Scattered changes at the edges of the key ranges (a sample's row is the first of a range, the row before it
# the last of the one before), at the ends of the table, deletes and inserts between unchanged rows.
test_markers_merge_scattered_changes_at_range_edges() {
	setup_repo
	psql_q "$DB" "CREATE TABLE sc (id int PRIMARY KEY, v text);
		INSERT INTO sc SELECT 2 * i, repeat(md5(i::text), 3) FROM generate_series(1, 20000) i"
	snap
	local keys
	keys=$(sample_keys sc | paste -sd, -)
	[ -n "$keys" ] || fail "no samples of sc in the record"
	tap_note "samples: $keys"
	psql_q "$DB" "UPDATE sc SET v = 'first of a range' WHERE id IN ($keys);
		UPDATE sc SET v = 'last of a range' WHERE id + 2 IN ($keys);
		UPDATE sc SET v = 'ends' WHERE id IN (2, 40000);
		UPDATE sc SET v = 'scattered' WHERE id % 194 = 0;
		DELETE FROM sc WHERE id % 178 = 0;
		INSERT INTO sc SELECT 2 * i + 1, 'between' FROM generate_series(0, 20000, 97) i"
	snap
	assert_contains "$V" "incremental: public.sc: 0 of "
	assert_contains "$V" "merged from markers, 0 read"
	same_as_full "scattered changes at the edges of ranges"
	# only deletes, the first and the last row of the table among them
	psql_q "$DB" "DELETE FROM sc WHERE id IN (2, 3, 40000) OR id % 1000 = 10"
	snap
	assert_contains "$V" "incremental: public.sc: 0 of "
	same_as_full "deletes only"
	restores_exactly
}

# Columns whose text a markers row must give exactly as the full COPY: a domain, arrays (of a domain too), a
# generated column (not dumped), a TOASTed value, jsonb, an enum, numeric, float, bytea, timestamptz.
test_markers_merge_every_kind_of_column() {
	setup_repo
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
CREATE DOMAIN posint AS int CHECK (VALUE > 0);
CREATE TABLE rich (id bigint PRIMARY KEY, d posint, a int[], da posint[], g int GENERATED ALWAYS AS (d * 2) STORED,
	doc text, j jsonb, m mood, n numeric(12, 3), f float8, b bytea, t timestamptz, tabbed text);
ALTER TABLE rich ALTER COLUMN doc SET STORAGE EXTERNAL;
INSERT INTO rich (id, d, a, da, doc, j, m, n, f, b, t, tabbed)
SELECT i, i, ARRAY[i, -i], ARRAY[i, i + 1]::posint[],
	CASE WHEN i % 50 = 0 THEN repeat(md5(i::text), 300) ELSE md5(i::text) END,
	jsonb_build_object('k', i, 's', 'a"b\c'), 'happy', i / 7.0, i / 3.0, decode(md5(i::text), 'hex'),
	'2024-01-01'::timestamptz + i * interval '1 minute', 'x' || chr(9) || i || chr(10) || '\'
FROM generate_series(1, 8000) i;
VACUUM ANALYZE rich;
SQL
	snap
	psql_q "$DB" "UPDATE rich SET d = d + 1 WHERE id % 61 = 0;
		UPDATE rich SET doc = repeat(md5(id::text), 301) WHERE id % 150 = 0;
		UPDATE rich SET j = j || '{\"x\": [1, null]}', m = 'sad', n = -n, f = -f WHERE id % 83 = 0;
		UPDATE rich SET da = da || 7::posint, a = NULL, tabbed = E'\\t' WHERE id % 71 = 0;
		DELETE FROM rich WHERE id % 113 = 0"
	snap
	assert_contains "$V" "incremental: public.rich: "
	assert_contains "$V" "merged from markers"
	same_as_full "every kind of column"
	restores_exactly
}

# Scattered updates when the statistics say few rows changed: the detection scan returns the changed rows'
# tids, and each range is its previous bytes with the changed rows (fetched by tid) in their old versions'
# places. Its fallbacks: a row inserted at either side of a range's first key (that range is read), a key
# moved to another range without a delete the counters show (the table's count differs: written again with
# each range counted), and
# deletes the counters show (each range counted: those with a delete are merged from markers, not patched).
test_changed_rows_alone_and_their_fallbacks() {
	setup_repo
	psql_q "$DB" "CREATE TABLE ev (id int PRIMARY KEY, v text);
		INSERT INTO ev SELECT 2 * i, repeat(md5(i::text), 3) FROM generate_series(1, 20000) i"
	psql_q "$DB" "VACUUM ANALYZE ev"
	snap
	local keys k3 k5
	keys=$(sample_keys ev)
	k3=$(sed -n 3p <<<"$keys") k5=$(sed -n 5p <<<"$keys")
	[ -n "$k5" ] || fail "fewer than 5 samples of ev"
	tap_note "samples: $(paste -sd, - <<<"$keys")"
	# updates only, one row in 150, the first and the last row of ranges among them
	psql_q "$DB" "UPDATE ev SET v = 'scattered' WHERE id % 300 = 0 OR id IN ($k3, $k5 - 2, 2, 40000)"
	snap
	assert_contains "$V" "incremental: public.ev: 0 of "
	assert_contains "$V" "merged from their changed rows alone, 0 could not be; rows counted for the whole table"
	same_as_full "scattered updates, changed rows alone"
	# rows inserted just before and just after a range's first key, with updates: those two ranges are read
	psql_q "$DB" "INSERT INTO ev VALUES ($k3 - 1, 'before a bound'), ($k5 + 1, 'after a bound');
		UPDATE ev SET v = 'again' WHERE id % 300 = 2"
	snap
	assert_contains "$V" "merged from their changed rows alone, 2 could not be; rows counted for the whole table"
	assert_not_contains "$V" "read whole"
	same_as_full "inserts at range bounds"
	# a key moved to another range: its old range, carried over, still holds it, so the table's count differs;
	# the table is written again with each range counted
	psql_q "$DB" "UPDATE ev SET id = 40001 WHERE id = $k3 + 10; UPDATE ev SET v = 'moved' WHERE id % 300 = 4"
	snap
	assert_contains "$V" "rows written, the table has 20002 (a row deleted, or a key moved, that the statistics did not show): each key range counted now"
	assert_contains "$V" "incremental: public.ev: "
	assert_not_contains "$V" "read whole"
	same_as_full "a key moved"
	# deletes the counters show: every range counted; those with a delete are merged from markers
	psql_q "$DB" "DELETE FROM ev WHERE id IN ($k3 + 20, $k5 + 20); UPDATE ev SET v = 'del' WHERE id % 300 = 6"
	snap
	assert_contains "$V" "incremental: public.ev: 0 of "
	assert_contains "$V" "merged from their changed rows alone, 0 could not be"
	assert_not_contains "$V" "rows counted for the whole table"
	assert_not_contains "$V" "read whole"
	same_as_full "deletes"
	restores_exactly
}

# Changed rows alone in several batches (4096 changed rows per COPY at most), each batch's previous chunks read
# ahead (a hint) while the one before is worked on, with fallbacks in a middle batch; three changed tables on
# parallel sessions. Each table byte for byte what a full read gives.
test_patch_batches_read_ahead_with_fallbacks_in_the_middle() {
	setup_repo
	psql_q "$DB" "CREATE TABLE wide (id int PRIMARY KEY, v text);
		INSERT INTO wide SELECT 2 * i, repeat(md5(i::text), 3) FROM generate_series(1, 100000) i;
		CREATE TABLE side (id int PRIMARY KEY, v text);
		INSERT INTO side SELECT i, md5(i::text) FROM generate_series(1, 30000) i"
	psql_q "$DB" "VACUUM ANALYZE"
	snap
	local keys n k20 k21 cores
	keys=$(sample_keys wide)
	n=$(wc -l <<<"$keys")
	k20=$(sed -n 20p <<<"$keys") k21=$(sed -n 21p <<<"$keys")
	[ "$n" -ge 30 ] || fail "fewer than 30 samples of wide ($n)"
	tap_note "wide: $n samples, 20th $k20"
	# 12,500 changed rows of wide (4 batches); a row inserted just after the 20th and the 21st sample (no
	# delete: one count for the table, so both segments are planned as patches): those two segments of the
	# second batch, its rows fetched and its chunks read ahead, fall back to their ranges read
	psql_q "$DB" "UPDATE wide SET v = 'scattered' WHERE id % 16 = 0;
		INSERT INTO wide VALUES ($k20 + 1, 'inserted in batch 2'), ($k21 + 1, 'inserted in batch 2 too');
		UPDATE side SET v = 'changed' WHERE id % 20 = 0; UPDATE big SET v = 'changed' WHERE id % 30 = 0"
	snap
	cores=$(getconf _NPROCESSORS_ONLN)
	assert_contains "$ERR" "rows: $((cores < 3 ? cores : 3)) sessions for 3 tables"
	assert_contains "$V" "incremental: public.wide: 0 of $((n + 1)) key ranges unchanged"
	# the first fallback read the third batch's rows, then in flight, for that batch (no second COPY of them)
	assert_contains "$(grep 'public.wide: 0 of' <<<"$V")" "merged from their changed rows alone, 2 could not be (the next batch read early for them: 1)"
	assert_contains "$V" "incremental: public.side: "
	assert_contains "$V" "incremental: public.big: "
	assert_not_contains "$V" "read whole"
	same_as_full "batches read ahead, fallbacks in a middle batch"
	# scattered updates only: every segment patched, in four batches
	psql_q "$DB" "UPDATE wide SET v = 'again' WHERE id % 16 = 2"
	snap
	assert_contains "$V" "merged from their changed rows alone, 0 could not be"
	same_as_full "batches read ahead"
	restores_exactly
}

# Interrupted while a batch is worked on and the next batch's COPY is in flight: one error line, nothing
# written; the next snapshot is incremental again and equals a full read.
test_an_interrupt_with_a_patch_fetch_in_flight() {
	setup_repo
	psql_q "$DB" "CREATE TABLE wide (id int PRIMARY KEY, v text);
		INSERT INTO wide SELECT i, repeat(md5(i::text), 3) FROM generate_series(1, 60000) i"
	psql_q "$DB" "VACUUM ANALYZE"
	snap
	local first=$ID rc=0 n
	psql_q "$DB" "UPDATE wide SET v = 'scattered' WHERE id % 8 = 0"
	pg_wait_no_sessions "$DB"
	start_stopped_at patch-in-flight git-dnadata -v snapshot --no-commit
	kill -INT "$STOPPED_PID"
	kill -CONT "$STOPPED_PID"
	wait "$STOPPED_PID" || rc=$?
	[ "$rc" = 1 ] || fail "the interrupted snapshot exited $rc: $(cat "$T/stopped.err")"
	n=$(grep -c '^error: ' "$T/stopped.err" || true)
	assert_eq 1 "$n" "one error line: $(cat "$T/stopped.err")"
	assert_contains "$(cat "$T/stopped.err")" "interrupted"
	grep -q "^snapshot $first" .dnadata/refs/clean || fail "the interrupted snapshot moved the ref: $(cat .dnadata/refs/clean)"
	snap
	assert_contains "$V" "incremental: public.wide: 0 of "
	assert_contains "$V" "merged from their changed rows alone, 0 could not be"
	same_as_full "after an interrupt with a fetch in flight"
}

# Anything the merge does not expect reads the table whole: here the record's bound of a range moved (a key
# that stays in the previous range's bytes is asked for in the range before it).
test_markers_mismatch_reads_the_table_whole() {
	setup_repo
	snap
	local keys k5 k6 rec h
	keys=$(sample_keys big)
	k5=$(sed -n 5p <<<"$keys") k6=$(sed -n 6p <<<"$keys")
	[ -n "$k6" ] || fail "fewer than 6 samples of big"
	# range 5 [k5, k6) changes but for its first rows (a range COPY); range 4, merged from markers, ends at
	# k5 + 5 now: its last 5 rows, unchanged, are not in its previous bytes
	psql_q "$DB" "UPDATE big SET v = 'most' WHERE id >= $k5 + 10 AND id < $k6"
	rec=".git/dnadata/pg/incr/$ID"
	h=$(printf '%s' "$k5" | hexenc)
	sed -i "s/^\(sample [0-9]* [0-9]* \)$h\$/\1$(printf '%s' $((k5 + 5)) | hexenc)/" "$rec"
	grep -q "$(printf '%s' $((k5 + 5)) | hexenc)\$" "$rec" || fail "the record was not changed"
	snap
	assert_contains "$V" "incremental: public.big read whole: an unchanged row is not in the previous stream's key range"
	same_as_full "a mismatch in the merge"
	restores_exactly
}

# md5 of tables' rows in key order, to compare a restore with its source
rows_md5() {
	local t q=""
	for t in "$@"; do
		q+="${q:+ UNION ALL }SELECT '$t', md5(string_agg(x::text, '|' ORDER BY x)) FROM $t x"
	done
	psql_q "$DB" "$q"
}

# Composite primary keys: the samples hold every key field, the detection scan is a binary search of row
# comparisons, a range is `(a, b) >= (lo) AND (a, b) < (hi)`. Keys share their first column across many
# segments (the second decides), text keys sort by "C" (upper case, '_', lower case, a space).
test_composite_key_ranges_are_read_alone() {
	setup_repo
	psql_q "$DB" "CREATE TABLE ii (a int, b int, v text, PRIMARY KEY (a, b));
		INSERT INTO ii SELECT i % 4, i, repeat(md5(i::text), 3) FROM generate_series(1, 24000) i;
		CREATE TABLE ti (t text COLLATE \"C\", n int, v text, PRIMARY KEY (t, n));
		INSERT INTO ti SELECT (ARRAY['Apple', 'apple', '_x', 'Zed', 'zed', 'a b', 'A-1'])[1 + i % 7] || (i % 50), i,
			repeat(md5(i::text), 3) FROM generate_series(1, 24000) i"
	psql_q "$DB" "VACUUM ANALYZE ii, ti"
	snap
	psql_q "$DB" "UPDATE ii SET v = 'changed' WHERE a = 2 AND b BETWEEN 5000 AND 5400;
		UPDATE ti SET v = 'changed' WHERE t = 'zed7'"
	snap
	assert_contains "$V" "incremental: public.ii: "
	assert_contains "$V" "incremental: public.ti: "
	assert_not_contains "$V" "read whole"
	same_as_full "composite keys: updates in one range"
	psql_q "$DB" "DELETE FROM ii WHERE a = 0 AND b < 300; INSERT INTO ii VALUES (1, 100001, 'new'), (3, -5, 'new');
		DELETE FROM ti WHERE t = 'Apple3'; INSERT INTO ti VALUES ('_x0', -1, 'new'), ('zed7', 0, 'new')"
	snap
	assert_contains "$V" "incremental: public.ii: "
	assert_contains "$V" "incremental: public.ti: "
	same_as_full "composite keys: deletes and inserts in a few ranges"
	# a key column updated: the rows move to another range (both ranges change)
	psql_q "$DB" "UPDATE ii SET a = 3 WHERE a = 1 AND b BETWEEN 9001 AND 9100;
		UPDATE ti SET n = n + 100000 WHERE t = 'a b3'"
	snap
	assert_contains "$V" "incremental: public.ii: "
	assert_contains "$V" "incremental: public.ti: "
	same_as_full "composite keys: a key column updated"
	local before
	before=$(rows_md5 ii ti)
	expect_ok git dnadata restore --force --terminate
	assert_eq "$before" "$(rows_md5 ii ti)" "restore equals the source"
}

# a composite key of text with every COPY escape, a quote and an apostrophe, and long text (1280 bytes;
# 4483 bytes is more than a sample may hold: such rows are not sampled)
test_composite_keys_with_escapes_and_long_text() {
	setup_repo
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
CREATE TABLE esc (t text, n int, v int, PRIMARY KEY (t, n));
INSERT INTO esc SELECT md5(i::text) || chr(9) || '"' || chr(92) || ',' || chr(39) || chr(10) || '()' || i, i % 3, i
FROM generate_series(1, 20000) i;
INSERT INTO esc SELECT 'y' || repeat(md5(i::text), 40), i, i FROM generate_series(1, 1000) i;
INSERT INTO esc SELECT 'z' || repeat(md5(i::text), 140), i, i FROM generate_series(1, 100) i;
VACUUM ANALYZE esc;
SQL
	snap
	assert_not_contains "$ERR" "BUG"
	psql_q "$DB" "UPDATE esc SET v = -v WHERE t < '1'; UPDATE esc SET v = 0 WHERE t LIKE 'y' || md5('7') || '%'"
	snap
	assert_contains "$V" "incremental: public.esc: "
	assert_contains "$V" "key ranges unchanged, "
	# the long-key range with one row changed: merged from markers, matched by the composite key's bytes
	assert_contains "$V" "merged from markers"
	same_as_full "composite keys with escapes and long text"
	local before
	before=$(rows_md5 esc)
	expect_ok git dnadata restore --force --terminate
	assert_eq "$before" "$(rows_md5 esc)" "restore equals the source"
}

# every kind of object (t-pg-fidelity.sh's zoo), then changes whose effect on a table's text is indirect
eval "$(sed -n '/^zoo_sql() {/,/^}/p' "$(dirname "$0")/t-pg-fidelity.sh")"

test_every_kind_of_object_and_indirect_changes() {
	setup_repo
	zoo_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null
	psql_q "$DB" "CREATE TABLE app.refs (id int PRIMARY KEY, r regclass);
		INSERT INTO app.refs VALUES (1, 'app.plain_log'::regclass)"
	snap
	# a composite type gains an attribute: app.users.pos prints differently, no row written
	psql_q "$DB" "ALTER TYPE app.point3 ADD ATTRIBUTE w float8"
	snap
	same_as_full "composite type changed"
	# a table renamed: a regclass column prints the new name, no row written
	psql_q "$DB" "ALTER TABLE app.plain_log RENAME TO plain_log2"
	snap
	assert_contains "$(psql_q "$DB" "SELECT r FROM app.refs")" "plain_log2"
	same_as_full "regclass target renamed"
	restores_exactly
}

test_enum_label_rename_reads_every_table() {
	setup_repo
	snap
	psql_q "$DB" "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine'"
	snap
	assert_contains "$V" "incremental: every table read: the text of values may differ"
	assert_contains "$(psql_q "$DB" "SELECT count(*) FROM big WHERE m = 'fine'")" 20000
	same_as_full "enum label renamed"
	restores_exactly
}

test_fallbacks_say_why() {
	setup_repo
	snap
	# no local record of the ref's snapshot (taken elsewhere)
	rm -rf .git/dnadata/pg/incr
	psql_q "$DB" "UPDATE small SET n = 0 WHERE k = 'k1'"
	snap
	assert_contains "$V" "incremental: every table read: no local record of snapshot"
	same_as_full "no record"
	# statistics reset
	psql_q "$DB" "SELECT pg_stat_reset()"
	psql_q "$DB" "UPDATE small SET n = 1 WHERE k = 'k1'"
	snap
	# a crash restart also resets them, and may have handed out xids again: no key ranges either
	assert_contains "$V" "incremental: every table read: the statistics were reset since"
	same_as_full "statistics reset"
	# exclude_data changed
	psql_q "$DB" "UPDATE small SET n = 2 WHERE k = 'k1'"
	printf 'exclude_data = public.nopk\n' >>.dnadata/profiles.ini
	snap
	assert_contains "$V" "incremental: every table read: exclude_tables, exclude_data or the masking rules changed"
	same_as_full "options changed"
}

test_a_session_connected_reads_every_table() {
	setup_repo
	snap
	psql_q "$DB" "UPDATE small SET n = 3 WHERE k = 'k1'"
	coproc IDLER { "$DD_PG_BINDIR/psql" -XAtq -d "dbname=$DB application_name=idler" 2>&1; }
	echo "SELECT 1;" >&"${IDLER[1]}"
	read -r _ <&"${IDLER[0]}"
	expect_ok git dnadata -v snapshot --no-commit
	ID=$OUT
	assert_contains "$ERR" "incremental: no table carried over whole: 1 other session is connected"
	tap_note "$(grep 'incremental: ' <<<"$ERR")"
	echo '\q' >&"${IDLER[1]}"
	wait "$IDLER_PID" || true
	same_as_full "a session connected"
}

test_concurrent_writers_still_give_a_consistent_snapshot() {
	setup_repo
	psql_q "$DB" "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
		CREATE TABLE transfers (id bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL);
		INSERT INTO accounts SELECT i, 1000 FROM generate_series(1, 200) i;
		INSERT INTO transfers (src, dst, amount) SELECT 1, 1, 0 FROM generate_series(1, 100000);
		CREATE TABLE hot (id int PRIMARY KEY, v bigint NOT NULL, pad text);
		INSERT INTO hot SELECT i, 0, repeat('p', 100) FROM generate_series(1, 20000) i;
		CREATE TABLE entries (acct int, tid bigint, delta int NOT NULL, PRIMARY KEY (acct, tid));
		INSERT INTO entries SELECT 0, i, 0 FROM generate_series(1, 200000) i"
	snap
	# each transfer also adds its amount to a random row of hot: scattered updates (merged from markers)
	cat >"$T/transfer.sql" <<'SQL'
\set a random(1, 200)
\set b random(1, 200)
\set x random(1, 100)
\set h random(1, 20000)
BEGIN;
UPDATE accounts SET balance = balance - :x WHERE id = :a;
INSERT INTO transfers (src, dst, amount) VALUES (:a, :b, :x) RETURNING id \gset
UPDATE hot SET v = v + :x WHERE id = :h;
INSERT INTO entries VALUES (:a, :id, -:x), (:b, -:id, :x);
UPDATE accounts SET balance = balance + :x WHERE id = :b;
COMMIT;
SQL
	"$DD_PG_BINDIR/pgbench" -n -c 2 -T 600 --max-tries=100 -f "$T/transfer.sql" "$DB" >"$T/pgbench.log" 2>&1 &
	local bench=$! ids=()
	ALLV=""
	transfers_done() { psql_q "$DB" "SELECT count(*) FROM transfers"; }
	wait_more() {
		for _ in $(seq "$DD_WAIT_POLLS"); do
			[ "$(transfers_done)" -gt "$1" ] && return 0
			kill -0 "$bench" 2>/dev/null || fail "pgbench stopped: $(cat "$T/pgbench.log")"
			sleep 0.05
		done
		fail "the writer made no progress"
	}
	wait_more 0
	for _ in 1 2; do
		expect_ok git dnadata -v snapshot
		ids+=("$OUT")
		tap_note "$(grep 'incremental: ' <<<"$ERR" || true)"
		ALLV+=$(grep 'incremental: ' <<<"$ERR" || true)
		wait_more "$(transfers_done)"
	done
	kill "$bench"
	wait "$bench" || true
	assert_contains "$ALLV" "incremental: public.transfers: " "key ranges found while writers work"
	assert_contains "$ALLV" "incremental: public.hot: " "key ranges of scattered updates while writers work"
	assert_contains "$ALLV" "merged from markers" "markers while writers work"
	assert_contains "$ALLV" "incremental: public.entries: " "composite key ranges found while writers work"
	for id in "${ids[@]}"; do
		printf 'dnadata-ref 1\nsnapshot %s\n' "$id" >.dnadata/refs/clean
		expect_ok git dnadata restore --force --terminate
		assert_eq 200000 "$(psql_q "$DB" "SELECT sum(balance) FROM accounts")" "total balance in $id"
		assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM accounts a WHERE balance <> 1000
			- coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0)
			+ coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0)")" "balances agree in $id"
		assert_eq "$(psql_q "$DB" "SELECT sum(amount) FROM transfers")" "$(psql_q "$DB" "SELECT sum(v) FROM hot")" \
			"hot agrees with the transfers in $id"
		assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM accounts a
			WHERE balance <> 1000 + coalesce((SELECT sum(delta) FROM entries WHERE acct = a.id), 0)")" "entries agree in $id"
	done
	# the last state, quiet now: incremental == full
	snap
	same_as_full "after the writers"
}

# char(n) keys: the bounds are cast to character(12), not to character (one character)
test_char_n_key_ranges_keep_the_whole_bound() {
	setup_repo
	psql_q "$DB" "CREATE TABLE c (k char(12) PRIMARY KEY, v text);
		INSERT INTO c SELECT '0' || lpad(i::text, 11, '0'), repeat('v', 114) FROM generate_series(0, 999) i;
		INSERT INTO c SELECT chr(ascii('a') + l) || lpad(i::text, 11, '0'), repeat('v', 114)
		FROM generate_series(0, 19) l, generate_series(0, 2047) i"
	snap
	psql_q "$DB" "DELETE FROM c WHERE k = 'c00000000005'"
	snap
	assert_contains "$V" "incremental: public.c: 20 of 21 key ranges unchanged, 1 merged from markers, 0 read"
	same_as_full "a char(12) key"
	restores_exactly
}

# crash_server: kill -9 a backend; the postmaster drops every statistic and reinitialises (its start time stays).
# Waits until the shared statistics' reset time moved (they are dropped after the crash) and the server answers.
# A checkpoint first: the test cluster runs with synchronous_commit = off, so a crash could lose the last commits.
crash_server() {
	local before pid
	psql_q postgres "CHECKPOINT"
	before=$(psql_q postgres "SELECT stats_reset FROM pg_stat_bgwriter")
	coproc VICTIM { "$DD_PG_BINDIR/psql" -XAtq -d postgres 2>&1; }
	echo "SELECT pg_backend_pid();" >&"${VICTIM[1]}"
	read -r pid <&"${VICTIM[0]}"
	kill -9 "$pid"
	echo '\q' >&"${VICTIM[1]}"
	wait "$VICTIM_PID" || true
	for _ in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q postgres "SELECT stats_reset FROM pg_stat_bgwriter" 2>/dev/null)" = "$before" ] ||
			[ -z "$(psql_q postgres "SELECT 1" 2>/dev/null)" ] || return 0
		sleep 0.05
	done
	fail "the server did not reinitialise after the crash"
}

# a crash zeroes every counter: a table written before it must not look unchanged after it
test_a_crash_after_writes_is_not_unchanged() {
	setup_repo
	crash_server
	snap
	psql_q "$DB" "INSERT INTO small VALUES ('crash1', 1)"
	crash_server
	psql_q "$DB" "UPDATE big SET v = 'crash' WHERE id = 1"
	snap
	assert_not_contains "$V" "public.small reused"
	# nor key ranges: commits not yet flushed are lost in a crash and their xids handed out again
	assert_contains "$V" "incremental: every table read: the statistics were reset since"
	assert_not_contains "$V" "key ranges unchanged"
	same_as_full "writes, then a crash (per table)"
	# the unchanged-database fast path: the database's counters were zeroed too
	crash_server
	snap
	psql_q "$DB" "INSERT INTO small VALUES ('crash2', 2)"
	crash_server
	snap
	assert_not_contains "$V" "no table read"
	# the change fingerprint (change.c) cannot tell either
	assert_contains "$V" "may have changed since snapshot"
	assert_contains "$V" "(its statistics were reset, or the server's configuration reloaded, since)"
	same_as_full "writes, then a crash (whole database)"
}

# a restart (which a rewound data directory needs: a volume snapshot, PITR) makes key ranges distrust xids
test_a_restart_reads_changed_tables_whole() {
	setup_repo
	snap
	psql_q "$DB" "UPDATE big SET v = 'restart' WHERE id = 100"
	(cd / && pg_as_owner "$DD_PG_BINDIR/pg_ctl" -D "$DD_TMP/pg/data" -o "-p $PGPORT" -l "$DD_TMP/pg/log/server.log" -w \
		-t 30 restart >/dev/null) || fail "restart failed"
	snap
	assert_contains "$V" "incremental: every table read: the server restarted since"
	assert_not_contains "$V" "key ranges unchanged"
	same_as_full "a restart"
}

# the schema names roles (GRANT) and tablespaces, kept in shared catalogs: a rename from another database
# touches none of this database's counters
test_a_role_renamed_elsewhere_changes_the_snapshot() {
	setup_repo
	local bob="${DB}_bob" carol="${DB}_carol"
	psql_q "$DB" "CREATE ROLE $bob; GRANT SELECT ON small TO $bob"
	snap
	local first=$ID
	psql_q postgres "ALTER ROLE $bob RENAME TO $carol"
	snap
	assert_ne "$first" "$ID" "a GRANT names the renamed role"
	same_as_full "a role renamed from another database"
	psql_q "$DB" "REVOKE ALL ON small FROM $carol; DROP ROLE $carol"
}

# money prints per lc_monetary, which the session does not fix and ALTER DATABASE sets in a shared catalog
# (this machine has only C locales, whose money text is the same: the reason is what shows it)
test_lc_monetary_set_on_the_database_reads_every_table() {
	setup_repo
	psql_q "$DB" "CREATE TABLE cash (id int PRIMARY KEY, m money); INSERT INTO cash VALUES (1, 12.5)"
	snap
	psql_q postgres "ALTER DATABASE $DB SET lc_monetary = 'POSIX'"
	snap
	assert_contains "$V" "incremental: every table read: the text of values may differ"
	assert_not_contains "$V" "no table read"
	same_as_full "lc_monetary set on the database"
}

# keys longer than the record's limit (a bytea key of 2113 bytes prints 4229 characters; they sort last) are not sampled:
# the next row's is, and the record is kept
test_long_keys_are_not_sampled() {
	setup_repo
	psql_q "$DB" "CREATE TABLE blobs (k bytea PRIMARY KEY, n int);
		INSERT INTO blobs SELECT decode('ff' || repeat(md5(i::text), 132), 'hex'), -i FROM generate_series(1, 300) i;
		INSERT INTO blobs SELECT decode(md5(i::text), 'hex'), i FROM generate_series(1, 20000) i"
	snap
	assert_not_contains "$ERR" "BUG"
	psql_q "$DB" "UPDATE blobs SET n = -n WHERE n = 7"
	snap
	assert_not_contains "$ERR" "BUG"
	assert_contains "$V" "incremental: public.blobs: "
	assert_contains "$V" "key ranges unchanged, "
	same_as_full "long keys"
}

# track_counts off for the database (or a role): sessions write without counting; no table may be carried over
# on the counters' word (found by review: such a write was carried over as unchanged)
test_track_counts_off_for_the_database_reads_every_table() {
	setup_repo
	snap
	psql_q postgres "ALTER DATABASE $DB SET track_counts = off"
	psql_q "$DB" "UPDATE small SET n = 7 WHERE k = 'k1'"
	snap
	assert_contains "$V" "$COUNTS_OFF"
	assert_not_contains "$V" "no table read"
	assert_not_contains "$V" "public.small reused"
	psql_q postgres "ALTER DATABASE $DB RESET track_counts"
	same_as_full "track_counts off for the database"
	# off and on again between two snapshots: the write made meanwhile was never counted (found by review)
	snap
	psql_q postgres "ALTER DATABASE $DB SET track_counts = off"
	psql_q "$DB" "UPDATE small SET n = 17 WHERE k = 'k1'"
	psql_q postgres "ALTER DATABASE $DB RESET track_counts"
	snap
	assert_contains "$V" "or settings changed"
	assert_not_contains "$V" "no table read"
	assert_not_contains "$V" "public.small reused"
	same_as_full "track_counts off and on again for the database"
	# the same by the server's configuration, reloaded twice (put back whatever happens: the server is shared)
	snap
	trap 'psql_q postgres "ALTER SYSTEM RESET track_counts" >/dev/null; psql_q postgres "SELECT pg_reload_conf()" >/dev/null' EXIT
	local want i
	for want in off on; do
		if [ "$want" = off ]; then
			psql_q postgres "ALTER SYSTEM SET track_counts = off" >/dev/null
		else
			psql_q "$DB" "UPDATE small SET n = 27 WHERE k = 'k1'"
			psql_q postgres "ALTER SYSTEM RESET track_counts" >/dev/null
		fi
		psql_q postgres "SELECT pg_reload_conf()" >/dev/null
		for i in $(seq "$DD_WAIT_POLLS"); do # a new session sees the reloaded setting
			[ "$(psql_q "$DB" "SHOW track_counts")" = "$want" ] && break
			sleep 0.05
		done
		assert_eq "$want" "$(psql_q "$DB" "SHOW track_counts")" "track_counts reloaded"
	done
	snap
	assert_not_contains "$V" "no table read"
	assert_not_contains "$V" "public.small reused"
	same_as_full "track_counts off and on again by the server's configuration"
}

# a function's SET clause, or GRANT SET ON PARAMETER, turns track_counts off for whoever calls it or holds
# the grant: no database or role setting names it (found by review: such a write was carried over)
test_track_counts_turned_off_by_a_function_or_a_grant_reads_every_table() {
	setup_repo
	psql_q "$DB" "CREATE FUNCTION bump() RETURNS void LANGUAGE sql SET track_counts = off
		AS \$\$UPDATE small SET n = n + 1 WHERE k = 'k1'\$\$"
	psql_q "$DB" "VACUUM ANALYZE"
	snap
	psql_q "$DB" "SELECT bump()"
	assert_eq "0" "$(psql_q "$DB" "SELECT n_tup_upd FROM pg_stat_all_tables
		WHERE relid = 'small'::regclass")" "the function's write was not counted"
	snap
	assert_contains "$V" "$COUNTS_OFF"
	assert_not_contains "$V" "no table read"
	assert_not_contains "$V" "public.small reused"
	FULL_WHY=$COUNTS_OFF same_as_full "a function that turns track_counts off"
	psql_q "$DB" "DROP FUNCTION bump()"
	# the grant lives in a shared catalog: nothing of this database's moves when it is given
	local tc="${DB}_tc"
	trap 'psql_q postgres "REVOKE SET ON PARAMETER track_counts FROM $tc; DROP ROLE $tc" >/dev/null 2>&1' EXIT
	psql_q "$DB" "VACUUM ANALYZE"
	snap
	psql_q postgres "CREATE ROLE $tc; GRANT SET ON PARAMETER track_counts TO $tc"
	psql_q "$DB" "SET track_counts = off; UPDATE small SET n = n + 1 WHERE k = 'k2'" # what $tc may now do
	snap
	assert_contains "$V" "$COUNTS_OFF"
	assert_not_contains "$V" "public.small reused"
	FULL_WHY=$COUNTS_OFF same_as_full "track_counts granted to a plain role"
	psql_q postgres "REVOKE SET ON PARAMETER track_counts FROM $tc; DROP ROLE $tc"
	trap - EXIT
}

# a column whose text names other objects through domains of domains, or arrays of domains: a rename or a
# new attribute changes its text and writes no row of its table (found by review: one level was looked at)
test_nested_domains_over_reg_and_composite_types_are_read() {
	setup_repo
	psql_q "$DB" "CREATE DOMAIN d1 AS regclass; CREATE DOMAIN d2 AS d1; CREATE TYPE pt AS (x int, y int);
		CREATE DOMAIN dp AS pt; CREATE DOMAIN dp2 AS dp; CREATE TABLE target (id int PRIMARY KEY);
		CREATE TABLE refs (id int PRIMARY KEY, a d1[], b d2, c dp2);
		INSERT INTO refs VALUES (1, ARRAY['target'::regclass]::d1[], 'target', ROW(1, 2))"
	psql_q "$DB" "VACUUM ANALYZE refs"
	snap
	psql_q "$DB" "ALTER TABLE target RENAME TO target2; ALTER TYPE pt ADD ATTRIBUTE z int"
	snap
	assert_contains "$(psql_q "$DB" "SELECT a::text || b::text || c::text FROM refs")" "target2"
	assert_not_contains "$V" "public.refs reused"
	assert_contains "$V" "public.small reused"
	same_as_full "domains of domains over regclass and a composite"
}

# A session of another role, seen by a role without pg_read_all_stats (state and backend_type NULL), has
# committed an update whose counters it has not flushed yet (still busy): it counts as busy, not as nobody
# (found by review: such sessions were left out of the count)
test_another_roles_busy_session_counts_for_a_role_without_pg_read_all_stats() {
	setup_repo
	local rd="${DB}_rd"
	psql_q "$DB" "CREATE ROLE $rd LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO $rd"
	export PGUSER=$rd # git dnadata's sessions (its conninfo names no user) and psql_q's
	snap
	"$DD_PG_BINDIR/psql" -XAtq -U postgres -d "dbname=$DB application_name=batch" -c "DO \$\$ BEGIN
		UPDATE small SET n = 8 WHERE k = 'k1'; COMMIT; PERFORM pg_sleep(60); END \$\$" >/dev/null 2>&1 &
	local batch=$! i
	for i in $(seq "$DD_WAIT_POLLS"); do
		[ "$(psql_q "$DB" "SELECT n FROM small WHERE k = 'k1'")" = 8 ] && break
		sleep 0.05
	done
	assert_eq 8 "$(psql_q "$DB" "SELECT n FROM small WHERE k = 'k1'")" "the batch's update is committed"
	expect_ok git dnadata -v snapshot --no-commit
	ID=$OUT
	V=$(grep 'incremental: ' <<<"$ERR" || true)
	tap_note "$V"
	assert_not_contains "$V" "no table read"
	assert_not_contains "$V" "public.small reused"
	"$DD_PG_BINDIR/psql" -XAtq -U postgres -d postgres \
		-c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'batch'" >/dev/null
	wait "$batch" || true
	same_as_full "another role's busy session"
	export PGUSER=postgres
	psql_q "$DB" "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM $rd; DROP ROLE $rd"
}

# A snapshot taken on a standby, then one on it promoted: the standby's counters never counted what it
# replayed, and promotion keeps the system identifier, start and reset times (found by review: the tables
# changed on the primary were carried over as unchanged)
test_a_standby_promoted_since_reads_every_table() {
	need_pg
	local keep_host=$PGHOST keep_port=$PGPORT prim="$DD_TMP/prim" sb="$DD_TMP/stby" sport lsn i
	pg_cluster_start "$prim" || fail "the primary did not start"
	local phost=$PGHOST pport=$PGPORT
	mkdir -p "$sb/sock" "$sb/log"
	[ "$(id -u)" != 0 ] || chown nobody "$sb" "$sb/sock" "$sb/log"
	(cd / && pg_as_owner "$DD_PG_BINDIR/pg_basebackup" -D "$sb/data" -R -X stream -h "$phost" -p "$pport" \
		-U postgres) || fail "pg_basebackup failed"
	sport=$(pg_free_port)
	(cd / && pg_as_owner "$DD_PG_BINDIR/pg_ctl" -D "$sb/data" -o "-p $sport -k $sb/sock" -l "$sb/log/server.log" \
		-w -t 30 start >/dev/null) || fail "the standby did not start"
	DB=stby_incr
	"$DD_PG_BINDIR/psql" -XAtq -h "$phost" -p "$pport" -d postgres -c "CREATE DATABASE $DB" >/dev/null
	"$DD_PG_BINDIR/psql" -XAtq -h "$phost" -p "$pport" -d "$DB" -c "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 1000) i; CREATE TABLE u (id int PRIMARY KEY)" \
		-c "VACUUM ANALYZE" >/dev/null
	replayed() {
		lsn=$("$DD_PG_BINDIR/psql" -XAtq -h "$phost" -p "$pport" -d postgres -c "SELECT pg_current_wal_insert_lsn()")
		for i in $(seq "$DD_WAIT_POLLS"); do
			[ "$("$DD_PG_BINDIR/psql" -XAtq -h "$sb/sock" -p "$sport" -d postgres \
				-c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && return 0
			sleep 0.05
		done
		return 1
	}
	replayed || fail "the standby did not replay"
	export PGHOST="$sb/sock" PGPORT=$sport
	new_repo
	expect_ok git dnadata init --database "host=$sb/sock port=$sport dbname=$DB"
	snap
	"$DD_PG_BINDIR/psql" -XAtq -h "$phost" -p "$pport" -d "$DB" -c "UPDATE t SET v = 'on the primary' WHERE id = 7"
	replayed || fail "the standby did not replay the update"
	(cd / && pg_as_owner "$DD_PG_BINDIR/pg_ctl" -D "$sb/data" -w -t 30 promote >/dev/null) || fail "promote failed"
	assert_eq f "$(psql_q postgres "SELECT pg_is_in_recovery()")"
	snap
	assert_contains "$V" "incremental: every table read: the text of values may differ, the server was promoted"
	assert_not_contains "$V" "public.t reused"
	same_as_full "a standby promoted since"
	pg_cluster_stop "$sb"
	pg_cluster_stop "$prim"
	export PGHOST=$keep_host PGPORT=$keep_port
}

run_tests
