#!/usr/bin/env bash
# t-pg-restore-order.sh: the restore's schedule (pg/plan.c, pg/restore.c).
# A schema with partitioned tables (one level sub-partitioned) and attached
# indexes, an FK cycle, a self-referencing FK, a GIN index, an EXCLUDE
# constraint, a table many others reference, an FK to a partitioned table,
# a NOT VALID CHECK, a CHECK relying on the search_path and a materialized view restores equal to the source
# (pg_dump compare); and the -v trace of the schedule shows every task
# started only after what it needs was done (an FK after both tables'
# rows and the referenced key, an attachment after both indexes, ANALYZE
# after the table's indexes), and an index starting before the last COPY.
# The check itself refuses a trace with an attachment or an FK (to a plain
# unique index) started too early; indexes keep their tablespaces; extended
# statistics are computed.
. "$(dirname "$0")/../lib.sh"

schema_sql() {
	cat <<'SQL'
CREATE TABLE hub (id int PRIMARY KEY, code text UNIQUE NOT NULL, v text);
CREATE TABLE spoke1 (id int PRIMARY KEY, hub_id int REFERENCES hub (id), hub_code text REFERENCES hub (code));
CREATE TABLE spoke2 (LIKE spoke1 INCLUDING ALL, FOREIGN KEY (hub_id) REFERENCES hub (id));
CREATE TABLE spoke3 (LIKE spoke1 INCLUDING ALL, FOREIGN KEY (hub_id) REFERENCES hub (id));
CREATE TABLE spoke4 (LIKE spoke1 INCLUDING ALL, FOREIGN KEY (hub_code) REFERENCES hub (code));
CREATE TABLE spoke5 (LIKE spoke1 INCLUDING ALL, FOREIGN KEY (hub_id) REFERENCES hub (id));
CREATE TABLE "Spoke Six" ("Id" int PRIMARY KEY, "Hub" int REFERENCES hub (id));
CREATE TABLE a (id int PRIMARY KEY, b_id int);
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a (id));
ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id);
CREATE TABLE node (id int PRIMARY KEY, parent int REFERENCES node (id));
CREATE TABLE docs (id int PRIMARY KEY, meta jsonb);
CREATE INDEX docs_meta ON docs USING gin (meta);
CREATE TABLE booking (id int PRIMARY KEY, during tstzrange, EXCLUDE USING gist (during WITH &&));
CREATE TABLE ev (id int, at date, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE ev_2023 PARTITION OF ev FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (at);
CREATE TABLE ev_2024h1 PARTITION OF ev_2024 FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE ev_2024h2 PARTITION OF ev_2024 FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
CREATE INDEX ev_what ON ev (what);
CREATE TABLE ev_ref (id int PRIMARY KEY, ev_id int, ev_at date, FOREIGN KEY (ev_id, ev_at) REFERENCES ev (id, at));
-- a CHECK whose function finds its helper through the search_path: rows load under the session's own path
CREATE FUNCTION helper(int) RETURNS bool LANGUAGE sql AS 'SELECT $1 > 0';
CREATE FUNCTION positive(int) RETURNS bool LANGUAGE sql AS 'SELECT helper($1)';
CREATE TABLE guarded (id int PRIMARY KEY, n int CHECK (positive(n)));
-- an FK to a key that is a plain CREATE UNIQUE INDEX, not a constraint
CREATE TABLE cat (id int, code text);
CREATE UNIQUE INDEX cat_code ON cat (code);
CREATE TABLE item (id int PRIMARY KEY, cat_code text REFERENCES cat (code));
INSERT INTO cat SELECT i, 'k' || i FROM generate_series(1, 200) i;
INSERT INTO item SELECT i, 'k' || (1 + i % 200) FROM generate_series(1, 1000) i;
INSERT INTO guarded SELECT i, i FROM generate_series(1, 10) i;
CREATE TABLE checked (id int PRIMARY KEY, n int);
INSERT INTO checked VALUES (1, -1), (2, 5);
ALTER TABLE checked ADD CONSTRAINT n_positive CHECK (n > 0) NOT VALID;

INSERT INTO hub SELECT i, 'c' || i, repeat('v', i % 50) FROM generate_series(1, 300) i;
INSERT INTO spoke1 SELECT i, 1 + i % 300, 'c' || (1 + i % 300) FROM generate_series(1, 2000) i;
INSERT INTO spoke2 SELECT * FROM spoke1;
INSERT INTO spoke3 SELECT * FROM spoke1 WHERE id % 2 = 0;
INSERT INTO spoke4 SELECT * FROM spoke1 WHERE id % 3 = 0;
INSERT INTO spoke5 SELECT * FROM spoke1 WHERE id % 5 = 0;
INSERT INTO "Spoke Six" SELECT id, hub_id FROM spoke1 WHERE id % 7 = 0;
INSERT INTO a SELECT i, NULL FROM generate_series(1, 500) i;
INSERT INTO b SELECT i, 501 - i FROM generate_series(1, 500) i;
UPDATE a SET b_id = id;
INSERT INTO node SELECT i, NULLIF(i - 1, 0) FROM generate_series(1, 1000) i;
INSERT INTO docs SELECT i, jsonb_build_object('k', i, 'tags', jsonb_build_array('t' || i % 17, 'u' || i % 5), 'txt', md5(i::text))
	FROM generate_series(1, 20000) i;
INSERT INTO booking SELECT i, tstzrange(timestamptz '2024-01-01' + i * interval '1 hour', timestamptz '2024-01-01' + (i + 1) * interval '1 hour')
	FROM generate_series(1, 500) i;
INSERT INTO ev SELECT i, date '2023-01-01' + (i % 700), 'ev' || i % 13 FROM generate_series(1, 3000) i;
INSERT INTO ev_ref SELECT i, i, date '2023-01-01' + (i % 700) FROM generate_series(1, 500) i;
CREATE MATERIALIZED VIEW hub_stats AS SELECT hub_id, count(*) AS n FROM spoke1 GROUP BY hub_id;
CREATE UNIQUE INDEX hub_stats_id ON hub_stats (hub_id);
SQL
}

# The restore's -v trace (stdin) checked against the dependencies: prints each violation, then "checked N".
# $1: the unique indexes (keys "schema"."name", one a line) an FK may reference besides constraints.
check_trace() {
	awk -v uniq="${1:-}" '
	BEGIN { nu = split(uniq, ul, "\n"); for (i = 1; i <= nu; i++) if (ul[i] != "") unique[ul[i]] = 1 }
	function ends(s, suf) { return length(s) >= length(suf) && substr(s, length(s) - length(suf) + 1) == suf }
	function before(need, lab) {
		if (!(need in done) || done[need] > start[lab]) { print "violation: " lab " started before " need " was done"; bad++ }
	}
	/restore: [0-9.]+s (start|done) / {
		l = $0; sub(/^.*restore: [0-9.]+s /, "", l)
		ev = substr(l, 1, index(l, " ") - 1); lab = substr(l, index(l, " ") + 1)
		if (ev == "done") { sub(/ \([0-9.]+s\)$/, "", lab); done[lab] = NR } else { start[lab] = NR; order[++n] = lab }
	}
	END {
		for (i = 1; i <= n; i++) {
			lab = order[i]
			if (lab ~ /^INDEX ATTACH /) {
				rest = substr(lab, 14); c = substr(rest, 1, index(rest, " TO ") - 1); p = substr(rest, index(rest, " TO ") + 4)
				found = 0
				for (k in start)
					if (k ~ /^(INDEX|CONSTRAINT) / && (index(k, " " c " ON ") || index(k, " " p " ON "))) { before(k, lab); found++ }
				if (found != 2) { print "violation: " lab ": its two indexes not in the trace"; bad++ }
				checked++
			} else if (lab ~ /^(INDEX|CONSTRAINT) /) {
				t = substr(lab, index(lab, " ON ") + 4)
				if (("COPY " t) in start) before("COPY " t, lab)
				checked++
			} else if (lab ~ /^FK CONSTRAINT /) {
				t = substr(lab, index(lab, " ON ") + 4); u = substr(t, index(t, " REFERENCES ") + 12); t = substr(t, 1, index(t, " REFERENCES ") - 1)
				if (("COPY " t) in start) before("COPY " t, lab)
				if (("COPY " u) in start) before("COPY " u, lab)
				for (k in start) {
					if (k ~ /^CONSTRAINT / && ends(k, " ON " u)) before(k, lab)
					if (k ~ /^INDEX / && k !~ /^INDEX ATTACH / && ends(k, " ON " u)) {
						x = substr(k, 7); x = substr(x, 1, index(x, " ON ") - 1)
						if (x in unique) before(k, lab)
					}
					if (!(("COPY " u) in start) && k ~ /^INDEX ATTACH /) before(k, lab)
				}
				checked++
			} else if (lab ~ /^ANALYZE /) {
				t = substr(lab, 9)
				if (("COPY " t) in start) before("COPY " t, lab)
				for (k in start) if (k ~ /^(INDEX|CONSTRAINT) / && ends(k, " ON " t)) before(k, lab)
				checked++
			} else if (lab ~ /^POST-DATA REST/) {
				for (k in start) if (k ~ /^(INDEX|CONSTRAINT|INDEX ATTACH|FK CONSTRAINT|CHECK CONSTRAINT) /) before(k, lab)
				checked++
			}
		}
		print "checked " checked + 0
		exit bad > 0
	}'
}

# The restored database's unique indexes as the trace names them
unique_indexes() {
	psql_q "$DB" "SELECT format('\"%s\".\"%s\"', n.nspname, c.relname) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.indisunique AND n.nspname = 'public'"
}

setup_repo() {
	repo_with_db ord
	schema_sql | "$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null || fail "schema did not load"
}

test_restore_of_partitions_fk_cycles_gin_and_exclusion_equals_the_source_in_dependency_order() {
	setup_repo
	dump_sorted "$DB" >"$T/source.sql"
	expect_ok git dnadata snapshot
	psql_q "$DB" "DELETE FROM spoke1; DROP TABLE ev_ref; DROP TABLE docs" >/dev/null
	expect_ok git dnadata -v restore --force
	dump_sorted "$DB" >"$T/restored.sql"
	diff -u "$T/source.sql" "$T/restored.sql" >"$T/diff" || fail "dumps differ:"$'\n'"$(head -40 "$T/diff")"
	# what the trace must hold for the checks to mean something
	assert_contains "$ERR" 'start FK CONSTRAINT "public"."b_a_id_fkey" ON "public"."b" REFERENCES "public"."a"'
	assert_contains "$ERR" 'start FK CONSTRAINT "public"."a_b_id_fkey" ON "public"."a" REFERENCES "public"."b"'
	assert_contains "$ERR" 'start FK CONSTRAINT "public"."node_parent_fkey" ON "public"."node" REFERENCES "public"."node"'
	assert_contains "$ERR" 'start FK CONSTRAINT "public"."ev_ref_ev_id_ev_at_fkey" ON "public"."ev_ref" REFERENCES "public"."ev"'
	assert_contains "$ERR" 'start INDEX ATTACH "public"."ev_2024h1_pkey" TO "public"."ev_2024_pkey"'
	assert_contains "$ERR" 'start CONSTRAINT "public"."booking_during_excl" ON "public"."booking"'
	assert_contains "$ERR" 'start INDEX "public"."docs_meta" ON "public"."docs"'
	assert_contains "$ERR" 'start CHECK CONSTRAINT "public"."n_positive" ON "public"."checked"'
	assert_contains "$ERR" 'start FK CONSTRAINT "public"."Spoke Six_Hub_fkey" ON "public"."Spoke Six" REFERENCES "public"."hub"'
	assert_contains "$ERR" 'start ANALYZE MATERIALIZED VIEWS'
	assert_contains "$ERR" 'start FK CONSTRAINT "public"."item_cat_code_fkey" ON "public"."item" REFERENCES "public"."cat"'
	assert_contains "$ERR" 'start INDEX "public"."cat_code" ON "public"."cat"'
	assert_not_contains "$ERR" "(unmapped)"
	local out
	out=$(printf '%s\n' "$ERR" | check_trace "$(unique_indexes)") || fail "schedule out of order:"$'\n'"$out"
	# 22 keys, 3 attachments x 2 levels, 14 FKs, 17 tables and 3 partitioned ones analyzed, the rest
	[ "${out#checked }" -ge 50 ] || fail "too few tasks checked: $out"
	assert_eq "1|-1" "$(psql_q "$DB" "SELECT id, n FROM checked WHERE n < 0")" "the NOT VALID check kept its rows"
}

test_a_tables_index_starts_before_the_last_copy_on_one_session() {
	setup_repo
	printf '[database]\njobs = 1\n' >>.git/dnadata/config.ini
	expect_ok git dnadata snapshot
	expect_ok git dnadata -v restore --force
	assert_contains "$ERR" "tasks on 1 sessions"
	# docs (the largest stream, with a GIN index) goes first, its GIN index before the small tables' COPY
	local first gin small
	first=$(printf '%s\n' "$ERR" | grep -m1 -o 'start COPY .*')
	gin=$(printf '%s\n' "$ERR" | grep -n 'start INDEX "public"."docs_meta"' | cut -d: -f1)
	small=$(printf '%s\n' "$ERR" | grep -n 'start COPY "public"."booking"' | cut -d: -f1)
	assert_eq 'start COPY "public"."docs"' "$first"
	[ -n "$gin" ] && [ -n "$small" ] && [ "$gin" -lt "$small" ] || fail "the GIN index waited for every COPY (lines $gin, $small)"
	local out
	out=$(printf '%s\n' "$ERR" | check_trace "$(unique_indexes)") || fail "schedule out of order:"$'\n'"$out"
	# guarded's rows loaded on the session that had built indexes (search_path '' there)
	assert_eq 10 "$(psql_q "$DB" "SELECT count(*) FROM guarded")"
}

# Index builds get at least 256MB of maintenance_work_mem, and a larger setting of the server's or the
# role's (here the sessions' own, from PGOPTIONS) is kept, not lowered
test_index_builds_keep_a_larger_maintenance_work_mem() {
	setup_repo
	expect_ok git dnadata snapshot
	PGOPTIONS="-c maintenance_work_mem=1GB" expect_ok git dnadata -v restore --force
	assert_contains "$ERR" "(maintenance_work_mem 1GB)"
	PGOPTIONS="-c maintenance_work_mem=300MB" expect_ok git dnadata -v restore --force
	assert_contains "$ERR" "(maintenance_work_mem 300MB)"
	PGOPTIONS="-c maintenance_work_mem=64MB" expect_ok git dnadata -v restore --force
	assert_contains "$ERR" "(maintenance_work_mem 256MB)"
	assert_eq 10 "$(psql_q "$DB" "SELECT count(*) FROM guarded")"
}

# The checks can fail: a trace with an attachment started before its partition's index was built, and one
# with an FK started before the unique index it references, are refused
test_the_trace_check_refuses_an_attachment_or_fk_run_too_early() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata -v restore --force
	local uniq out
	uniq=$(unique_indexes)
	printf '%s\n' "$ERR" | check_trace "$uniq" >/dev/null || fail "the real trace is out of order"
	# the partition's index reported done at the very end, after the attachment started
	local idx='CONSTRAINT "public"."ev_2024h1_pkey" ON "public"."ev_2024h1"'
	assert_contains "$ERR" "done $idx"
	out=$({ printf '%s\n' "$ERR" | grep -vF "done $idx"; printf '%s\n' "$ERR" | grep -F "done $idx"; } |
		check_trace "$uniq") && fail "an attachment before its index passed the check"
	assert_contains "$out" "violation: INDEX ATTACH \"public\".\"ev_2024h1_pkey\" TO \"public\".\"ev_2024_pkey\" started before $idx was done"
	# the referenced unique index (not a constraint) reported done at the end
	idx='INDEX "public"."cat_code" ON "public"."cat"'
	assert_contains "$ERR" "done $idx"
	out=$({ printf '%s\n' "$ERR" | grep -vF "done $idx"; printf '%s\n' "$ERR" | grep -F "done $idx"; } |
		check_trace "$uniq") && fail "an FK before the unique index it references passed the check"
	assert_contains "$out" "violation: FK CONSTRAINT \"public\".\"item_cat_code_fkey\" ON \"public\".\"item\" REFERENCES \"public\".\"cat\" started before $idx was done"
}

# pg_dump sets default_tablespace only where it changes: an entry run out of order must still get its own
test_indexes_are_restored_into_the_tablespace_they_were_dumped_in() {
	repo_with_db ordts
	printf '[database]\njobs = 1\n' >>.git/dnadata/config.ini
	# beside the cluster, not in $T: the tablespace outlives this test (the cluster's checkpoints write there)
	local ts
	ts=$(mktemp -d "$DD_TMP/ts.XXXXXX")
	# the server runs as nobody under root (tests/pg.sh)
	[ "$(id -u)" != 0 ] || chown nobody "$ts"
	psql_q "$DB" "CREATE TABLESPACE ts_order LOCATION '$ts'" >/dev/null
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || fail "schema did not load"
CREATE TABLE ta (id int, v text);
CREATE TABLE tb (id int, v text);
CREATE TABLE tc (id int, v text);
INSERT INTO ta SELECT i, md5(i::text) FROM generate_series(1, 100) i;
INSERT INTO tb SELECT i, md5(i::text) FROM generate_series(1, 20000) i;
INSERT INTO tc SELECT i, md5(i::text) FROM generate_series(1, 1000) i;
-- dumped in name order: SET ts_order before idx_a_big, none before idx_b_big, SET '' before idx_b_id
CREATE INDEX idx_a_big ON ta (v) TABLESPACE ts_order;
CREATE INDEX idx_b_big ON tb (v) TABLESPACE ts_order;
CREATE INDEX idx_b_id ON tb (id);
CREATE INDEX idx_c ON tc (v);
SQL
	local q="SELECT c.relname || ' ' || coalesce(t.spcname, 'pg_default') FROM pg_class c
		LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace WHERE c.relname LIKE 'idx%' ORDER BY 1"
	local before
	before=$(psql_q "$DB" "$q")
	assert_contains "$before" "idx_b_big ts_order"
	expect_ok git dnadata snapshot
	expect_ok git dnadata -v restore --force
	assert_eq "$before" "$(psql_q "$DB" "$q")" "indexes in their tablespaces"
}

# CREATE STATISTICS is a post-data entry run with the rest: the table's ANALYZE must come after it
test_extended_statistics_are_computed_after_a_restore() {
	repo_with_db ordst
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || fail "schema did not load"
CREATE TABLE city (id int PRIMARY KEY, zip int, town int);
INSERT INTO city SELECT i, i % 100, i % 100 / 10 FROM generate_series(1, 5000) i;
CREATE STATISTICS city_zip_town (dependencies, ndistinct) ON zip, town FROM city;
ANALYZE city;
SQL
	local q="SELECT statistics_name || ' ' || (dependencies IS NOT NULL) || ' ' || (n_distinct IS NOT NULL)
		FROM pg_stats_ext WHERE tablename = 'city'"
	assert_eq "city_zip_town true true" "$(psql_q "$DB" "$q")"
	expect_ok git dnadata snapshot
	expect_ok git dnadata -v restore --force
	assert_eq "city_zip_town true true" "$(psql_q "$DB" "$q")" "extended statistics computed by the restore's ANALYZE"
}

# an inheritance parent's ANALYZE samples its children too: after their rows are in
test_an_inheritance_parents_statistics_cover_its_childrens_rows() {
	repo_with_db ordinh
	printf '[database]\njobs = 1\n' >>.git/dnadata/config.ini
	"$DD_PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL' || fail "schema did not load"
CREATE TABLE par (id int, v int);
CREATE TABLE kid () INHERITS (par);
-- the parent larger than its child: on one session its COPY and its ANALYZE come before the child's COPY
INSERT INTO par SELECT i, 1 FROM generate_series(1, 20000) i;
INSERT INTO kid SELECT i, 2 FROM generate_series(1, 2000) i;
ANALYZE par;
SQL
	local q="SELECT n_distinct FROM pg_stats WHERE tablename = 'par' AND attname = 'v' AND inherited"
	assert_eq 2 "$(psql_q "$DB" "$q")"
	expect_ok git dnadata snapshot
	expect_ok git dnadata -v restore --force
	assert_eq 2 "$(psql_q "$DB" "$q")" "the parent's whole-hierarchy statistics"
}

run_tests
