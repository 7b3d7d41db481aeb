#!/usr/bin/env bash
# t-export.sh: `export PROFILE --sql DIR` (issue 18): schema.sql and
# data.sql that psql loads into an empty database, giving back the
# snapshot's rows, sequences, large objects and schema (pg_dump-equal);
# the media folder as DIR/media; a non-empty DIR refused; no database
# needed; an inline profile's files as git has them.
. "$(dirname "$0")/../lib.sh"

PSQL() { "$DD_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

# A database with what a loader gets wrong: foreign keys against name order, a cycle through one
# table, a trigger, no primary key, odd names, NULLs, escapes, bytea, jsonb, arrays, a large object.
setup_rich() {
	repo_with_db exp
	psql_q "$DB" "
	CREATE SCHEMA \"Odd Schema\";
	CREATE TABLE zeta (id int PRIMARY KEY, name text);
	CREATE TABLE alpha (id bigserial PRIMARY KEY, zeta_id int NOT NULL REFERENCES zeta(id),
			    parent bigint REFERENCES alpha(id), t text, b bytea, j jsonb, a int[], ts timestamptz,
			    f float8, n numeric);
	CREATE TABLE \"Odd Schema\".\"Mixed Case\" (\"Key\" int PRIMARY KEY, \"select\" text);
	CREATE TABLE nopk (x int, y text);
	CREATE TABLE part (id int, k int) PARTITION BY RANGE (k);
	CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM (0) TO (10);
	CREATE TABLE part_2 PARTITION OF part FOR VALUES FROM (10) TO (20);
	CREATE FUNCTION up() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN NEW.name := upper(NEW.name); RETURN NEW; END \$\$;
	CREATE TRIGGER zeta_up BEFORE INSERT ON zeta FOR EACH ROW EXECUTE FUNCTION up();
	INSERT INTO zeta VALUES (1, 'one'), (2, 'two');
	UPDATE zeta SET name = 'lower again';
	INSERT INTO alpha (zeta_id, parent, t, b, j, a, ts, f, n) VALUES
		(1, NULL, E'tab\\tnl\\ncr\\rbs\\\\ \\\\. end', '\\x00010203ff', '{\"k\": \"v\", \"n\": null}', '{1,NULL,3}',
		 '2026-11-30 01:02:03.456789+05', 0.1, 12345678901234567890.123),
		(2, 1, NULL, '', '[]', '{}', 'infinity', 'NaN', -0.5);
	INSERT INTO alpha (zeta_id, parent, t) VALUES (2, 3, 'forward'), (2, 3, 'self');
	UPDATE alpha SET parent = 4 WHERE id = 3;
	INSERT INTO \"Odd Schema\".\"Mixed Case\" VALUES (1, 'from');
	INSERT INTO nopk VALUES (2, 'b'), (1, 'a'), (1, 'a'), (NULL, NULL);
	INSERT INTO part VALUES (1, 5), (2, 15);
	CREATE TABLE cyc_b (id int PRIMARY KEY, a_id int);
	CREATE TABLE cyc_a (id int PRIMARY KEY, b_id int REFERENCES cyc_b DEFERRABLE);
	ALTER TABLE cyc_b ADD FOREIGN KEY (a_id) REFERENCES cyc_a DEFERRABLE;
	BEGIN;
	SET CONSTRAINTS ALL DEFERRED;
	INSERT INTO cyc_a VALUES (1, 7);
	INSERT INTO cyc_b VALUES (7, 1);
	COMMIT;
	SELECT lo_from_bytea(424242, '\\xdeadbeef'::bytea);
	SELECT setval('alpha_id_seq', 100);
	ANALYZE" >/dev/null
}

# Every table's rows (sorted as text), every sequence, every large object: what "equal" means here.
content() {
	PSQL -At -d "$1" -c "
	SELECT c.oid::regclass::text || ': ' || coalesce((SELECT string_agg(x, ' ; ' ORDER BY x) FROM
		(SELECT r::text AS x FROM ONLY public.zeta r WHERE c.relname = 'zeta' UNION ALL
		 SELECT r::text FROM ONLY public.alpha r WHERE c.relname = 'alpha' UNION ALL
		 SELECT r::text FROM ONLY \"Odd Schema\".\"Mixed Case\" r WHERE c.relname = 'Mixed Case' UNION ALL
		 SELECT r::text FROM ONLY public.nopk r WHERE c.relname = 'nopk' UNION ALL
		 SELECT r::text FROM ONLY public.part_1 r WHERE c.relname = 'part_1' UNION ALL
		 SELECT r::text FROM ONLY public.part_2 r WHERE c.relname = 'part_2' UNION ALL
		 SELECT r::text FROM ONLY public.cyc_a r WHERE c.relname = 'cyc_a' UNION ALL
		 SELECT r::text FROM ONLY public.cyc_b r WHERE c.relname = 'cyc_b') s), '')
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;
	SELECT 'seq ' || last_value || ' ' || is_called FROM alpha_id_seq;
	SELECT 'lo ' || loid || ' ' || encode(lo_get(loid), 'hex') FROM (SELECT DISTINCT loid FROM pg_largeobject) l"
}

# A file without its guard lines (\restrict KEY / \unrestrict KEY).
unguarded() {
	grep -v '^\\\(un\)\?restrict ' "$1"
}

# The file starts with `\restrict KEY` and ends with `\unrestrict KEY` (the same random KEY).
assert_guarded() {
	local first last
	first=$(head -1 "$1")
	last=$(tail -1 "$1")
	[[ $first =~ ^\\restrict\ [A-Za-z0-9]{32}$ ]] || fail "$1 does not start with \\restrict KEY: $first"
	assert_eq "\\un${first#\\}" "$last" "$1's last line"
}

# pg_dump of the schema, without its per-run lines.
schema_of() {
	"$DD_PG_BINDIR/pg_dump" --schema-only --no-owner -d "$1" | grep -v '^\\\(un\)\?restrict \|^-- Dumped'
}

test_export_loads_into_an_empty_database_and_equals_the_source() {
	setup_rich
	expect_ok git dnadata snapshot
	expect_ok git dnadata export clean --sql "$T/out"
	assert_contains "$ERR" "exported snapshot"
	assert_eq "data.sql
schema.sql" "$(ls "$T/out")"
	local db2
	db2=$(pg_newdb expcopy)
	PSQL -d "$db2" -f "$T/out/schema.sql" >/dev/null
	PSQL -d "$db2" -f "$T/out/data.sql" >/dev/null
	local want got
	want=$(content "$DB")
	got=$(content "$db2")
	# the insert trigger upper-cases; the rows hold what the UPDATE wrote after it: a load must not run it
	assert_contains "$want" "lower again"
	assert_contains "$want" "lo 424242 deadbeef"
	assert_contains "$want" "cyc_b: (7,1)" "a cycle of deferrable foreign keys"
	assert_eq "$want" "$got" "the loaded copy's rows"
	[ -n "$(schema_of "$DB")" ] || fail "no schema dumped"
	diff <(schema_of "$DB") <(schema_of "$db2") >"$T/schema.diff" || fail "schemas differ: $(cat "$T/schema.diff")"
	# readable: one COPY block per table, rows in key order, referenced tables first
	local data
	data=$(cat "$T/out/data.sql")
	assert_contains "$data" $'COPY public.zeta (id, name) FROM stdin;\n1\tlower again\n2\tlower again\n\\.'
	local z a
	z=$(grep -n '^COPY public.zeta ' "$T/out/data.sql" | cut -d: -f1)
	a=$(grep -n '^COPY public.alpha ' "$T/out/data.sql" | cut -d: -f1)
	[ "$z" -lt "$a" ] || fail "alpha (which references zeta) comes first"
	# deterministic: a second export is byte-identical
	# deterministic but for the guard's random key (pg_dump's \restrict, one per export)
	expect_ok git dnadata export clean --sql "$T/out2"
	cmp <(unguarded "$T/out/data.sql") <(unguarded "$T/out2/data.sql") || fail "data.sql differs between two exports"
	cmp <(unguarded "$T/out/schema.sql") <(unguarded "$T/out2/schema.sql") || fail "schema.sql differs between two exports"
	assert_guarded "$T/out/schema.sql"
	assert_guarded "$T/out/data.sql"
	[ "$(head -1 "$T/out/data.sql")" != "$(head -1 "$T/out2/data.sql")" ] || fail "two exports share a guard key"
}

# No superuser needed: the owner of an empty database loads it (DISABLE TRIGGER USER is the table owner's right).
test_export_loads_as_a_plain_database_owner() {
	setup_rich
	expect_ok git dnadata snapshot
	expect_ok git dnadata export clean --sql "$T/out"
	local db2 role="exp_owner_$BASHPID"
	db2=$(pg_newdb expowner)
	psql_q postgres "CREATE ROLE $role LOGIN NOSUPERUSER; ALTER DATABASE $db2 OWNER TO $role"
	PSQL -U "$role" -d "$db2" -f "$T/out/schema.sql" >/dev/null
	PSQL -U "$role" -d "$db2" -f "$T/out/data.sql" >/dev/null
	assert_eq "$(content "$DB")" "$(content "$db2")"
	psql_q postgres "DROP DATABASE $db2"
	psql_q postgres "DROP ROLE $role"
}

# schema.sql loads alone: its own preamble turns function bodies' checks off (a SQL function names a
# table pg_dump creates after it) and sets search_path to '' as pg_dump's names expect; one psql run.
test_export_loads_with_plain_psql_a_function_naming_a_later_table() {
	repo_with_db expfn
	psql_q "$DB" "CREATE TABLE later (id int PRIMARY KEY, v text);
		CREATE FUNCTION count_later() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.later';
		CREATE TABLE uses (n bigint DEFAULT public.count_later());
		INSERT INTO later VALUES (1, 'a'), (2, 'b'); INSERT INTO uses DEFAULT VALUES"
	expect_ok git dnadata snapshot
	expect_ok git dnadata export clean --sql "$T/out"
	local fn tbl
	fn=$(grep -n '^CREATE FUNCTION public.count_later' "$T/out/schema.sql" | cut -d: -f1)
	tbl=$(grep -n '^CREATE TABLE public.later' "$T/out/schema.sql" | cut -d: -f1)
	[ -n "$fn" ] && [ -n "$tbl" ] && [ "$fn" -lt "$tbl" ] || fail "the function does not come before its table"
	local db2
	db2=$(pg_newdb expfncopy)
	"$DD_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$db2" -f "$T/out/schema.sql" -f "$T/out/data.sql" \
		>"$T/psql.out" 2>&1 || fail "psql -f schema.sql -f data.sql: $(cat "$T/psql.out")"
	assert_eq "2 2" "$(psql_q "$db2" "SELECT public.count_later() || ' ' || (SELECT n FROM public.uses)")"
	diff <(schema_of "$DB") <(schema_of "$db2") >"$T/schema.diff" || fail "schemas differ: $(cat "$T/schema.diff")"
}

test_export_needs_no_database_and_reads_the_ref_at_a_revision() {
	setup_rich
	expect_ok git dnadata snapshot
	local first
	first=$(git rev-parse HEAD)
	psql_q "$DB" "INSERT INTO zeta VALUES (3, 'three')"
	expect_ok git dnadata snapshot
	psql_q postgres "DROP DATABASE $DB"
	expect_ok git dnadata export clean --sql "$T/old" --at "$first"
	assert_not_contains "$(cat "$T/old/data.sql")" "THREE"
	expect_ok git dnadata export clean --sql "$T/new"
	assert_contains "$(cat "$T/new/data.sql")" $'3\tTHREE'
}

test_export_writes_the_media_folder() {
	repo_with_db expm
	mkdir -p var/up/sub
	printf 'hello' >var/up/a.txt
	head -c 300000 /dev/urandom >var/up/sub/big.bin
	ln -s a.txt var/up/link
	touch -d '2020-01-02 03:04:05' var/up/a.txt
	printf 'media = var/up\n' >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata snapshot
	expect_ok git dnadata export clean --sql "$T/out"
	assert_contains "$ERR" "media/"
	diff -r --no-dereference var/up "$T/out/media" || fail "the media folder differs"
	assert_eq "$(stat -c %Y var/up/a.txt)" "$(stat -c %Y "$T/out/media/a.txt")" "mtime kept"
	assert_eq "a.txt" "$(readlink "$T/out/media/link")"
	assert_eq "" "$(ls .git/dnadata | grep export- || true)" "the temporary state folder is removed"
}

test_export_refuses_a_non_empty_folder_and_writes_nothing() {
	setup_rich
	expect_ok git dnadata snapshot
	mkdir "$T/full"
	echo keep >"$T/full/mine.txt"
	expect_fail 1 git dnadata export clean --sql "$T/full"
	assert_contains "$ERR" "is not empty"
	assert_eq "mine.txt" "$(ls "$T/full")"
	assert_eq "keep" "$(cat "$T/full/mine.txt")"
	expect_fail 2 git dnadata export clean
	expect_fail 1 git dnadata export nosuch --sql "$T/x"
	assert_no_file "$T/x"
	# an empty folder is fine
	mkdir "$T/empty"
	expect_ok git dnadata export clean --sql "$T/empty"
	assert_file "$T/empty/data.sql"
}

test_export_of_an_inline_profile_splits_its_files() {
	repo_with_db expi
	expect_ok git dnadata new-profile seed --inline
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'x')"
	expect_ok git dnadata snapshot seed
	# no key is needed for an inline profile
	rm .git/dnadata/key
	expect_ok git dnadata export seed --sql "$T/out"
	assert_guarded "$T/out/schema.sql"
	assert_guarded "$T/out/data.sql"
	# schema.sql: the inline file up to its marker; data.sql: the inline rows, then the part after it
	local marker='-- dnadata: post-data: constraints, indexes and triggers, loaded after data.sql'
	assert_contains "$(cat .dnadata/inline/seed/schema.sql)" "$marker"
	assert_not_contains "$(cat "$T/out/schema.sql")" "$marker"
	assert_contains "$(unguarded "$T/out/schema.sql")" "$(sed "/^$marker\$/,\$d" .dnadata/inline/seed/schema.sql)"
	assert_contains "$(unguarded "$T/out/data.sql")" "$(cat .dnadata/inline/seed/data.sql)"
	assert_contains "$(unguarded "$T/out/data.sql")" "ADD CONSTRAINT t_pkey PRIMARY KEY (id);"
	local db2
	db2=$(pg_newdb expicopy)
	PSQL -d "$db2" -f "$T/out/schema.sql" -f "$T/out/data.sql" >/dev/null
	assert_eq "1|x" "$(psql_q "$db2" "SELECT * FROM t")"
	diff <(schema_of "$DB") <(schema_of "$db2") >"$T/schema.diff" || fail "schemas differ: $(cat "$T/schema.diff")"
}

# What only loads in pg_dump's order (pre-data, rows, post-data): a foreign-key cycle that is not
# deferrable, a NOT VALID foreign key with an orphan row, foreign keys to and from partitioned
# tables (the partitions named after the referencing table), a materialized view with rows; and
# comments whose text holds lines a line-by-line reader takes for a COPY, the marker, a meta-command.
setup_hard() {
	repo_with_db "$1"
	psql_q "$DB" "
	CREATE TABLE ca (id int PRIMARY KEY, b_id int);
	CREATE TABLE cb (id int PRIMARY KEY, a_id int NOT NULL REFERENCES ca);
	ALTER TABLE ca ADD CONSTRAINT ca_b FOREIGN KEY (b_id) REFERENCES cb;
	INSERT INTO ca VALUES (1, NULL); INSERT INTO cb VALUES (1, 1); UPDATE ca SET b_id = 1;
	CREATE TABLE nv_parent (id int PRIMARY KEY);
	CREATE TABLE nv_child (id int PRIMARY KEY, p int);
	INSERT INTO nv_parent VALUES (1); INSERT INTO nv_child VALUES (1, 1), (2, 99);
	ALTER TABLE nv_child ADD CONSTRAINT nv_fk FOREIGN KEY (p) REFERENCES nv_parent NOT VALID;
	CREATE TABLE pt (id int, k int, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
	CREATE TABLE pt_1 PARTITION OF pt FOR VALUES FROM (0) TO (10);
	CREATE TABLE aref (id int PRIMARY KEY, pid int, pk int, FOREIGN KEY (pid, pk) REFERENCES pt);
	INSERT INTO pt VALUES (1, 5); INSERT INTO aref VALUES (1, 1, 5);
	CREATE TABLE zz_target (id int PRIMARY KEY);
	CREATE TABLE pfrom (id int, t int REFERENCES zz_target, k int) PARTITION BY RANGE (k);
	CREATE TABLE pfrom_1 PARTITION OF pfrom FOR VALUES FROM (0) TO (10);
	INSERT INTO zz_target VALUES (1); INSERT INTO pfrom VALUES (1, 1, 1);
	CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n, sum(id) AS s FROM ca;
	COMMENT ON TABLE ca IS E'back\\\\slash\nCOPY public.ca (id, b_id) FROM stdin;\n1\t1\n\\\\.\nend';
	COMMENT ON TABLE cb IS E'x\n-- dnadata: post-data: constraints, indexes and triggers, loaded after data.sql\ny';
	COMMENT ON TABLE nv_child IS E'x\n\\\\! touch $T/pwned-comment\ny'" >/dev/null
}

hard_content() {
	PSQL -At -d "$1" -c "
	SELECT 'ca ' || string_agg(r::text, ';' ORDER BY r::text) FROM public.ca r;
	SELECT 'cb ' || string_agg(r::text, ';' ORDER BY r::text) FROM public.cb r;
	SELECT 'nv_child ' || string_agg(r::text, ';' ORDER BY r::text) FROM public.nv_child r;
	SELECT 'aref ' || string_agg(r::text, ';' ORDER BY r::text) FROM public.aref r;
	SELECT 'pt ' || string_agg(r::text, ';' ORDER BY r::text) FROM public.pt r;
	SELECT 'pfrom ' || string_agg(r::text, ';' ORDER BY r::text) FROM public.pfrom r;
	SELECT 'mv ' || n || ' ' || s FROM public.mv;
	SELECT conname || ' ' || convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1;
	SELECT obj_description('public.ca'::regclass, 'pg_class');
	SELECT obj_description('public.nv_child'::regclass, 'pg_class')"
}

test_export_of_what_loads_only_in_pg_dump_s_order_equals_the_source() {
	setup_hard exphard
	expect_ok git dnadata snapshot
	local want
	want=$(hard_content "$DB")
	assert_contains "$want" "mv 1 1"
	assert_contains "$want" "nv_child (1,1);(2,99)"
	assert_contains "$want" "nv_fk false"
	expect_ok git dnadata export clean --sql "$T/out"
	local db2
	db2=$(pg_newdb exphardcopy)
	PSQL -d "$db2" -f "$T/out/schema.sql" -f "$T/out/data.sql" >"$T/psql.out" 2>&1 ||
		fail "psql -f schema.sql -f data.sql: $(cat "$T/psql.out")"
	assert_eq "$want" "$(hard_content "$db2")"
	diff <(schema_of "$DB") <(schema_of "$db2") >"$T/schema.diff" || fail "schemas differ: $(cat "$T/schema.diff")"
	assert_no_file "$T/pwned-comment"
	# an inline profile of the same database: its files split the same way
	expect_ok git dnadata new-profile seed --inline
	expect_ok git dnadata snapshot seed
	expect_ok git dnadata export seed --sql "$T/iout"
	local db3
	db3=$(pg_newdb exphardinl)
	PSQL -d "$db3" -f "$T/iout/schema.sql" -f "$T/iout/data.sql" >"$T/psql.out" 2>&1 ||
		fail "psql -f schema.sql -f data.sql (inline): $(cat "$T/psql.out")"
	assert_eq "$want" "$(hard_content "$db3")"
	assert_no_file "$T/pwned-comment"
}

# A hostile inline file (or manifest): a psql meta-command at the top level is refused, never written.
test_export_refuses_a_psql_meta_command() {
	repo_with_db expmeta
	expect_ok git dnadata new-profile seed --inline
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY)"
	expect_ok git dnadata snapshot seed
	local f=.dnadata/inline/seed/schema.sql
	printf '\\! touch %s/pwned\n' "$T" >>"$f"
	git commit -qm evil "$f"
	expect_fail 1 git dnadata export seed --sql "$T/out"
	assert_contains "$ERR" "a psql meta-command"
	assert_no_file "$T/out"
	assert_no_file "$T/pwned"
	# one in data.sql, and one after a statement on its line
	git checkout -q HEAD~1 -- "$f"
	printf 'SELECT 1; \\! touch %s/pwned\n' "$T" >>.dnadata/inline/seed/data.sql
	git commit -qm evil2 .dnadata
	expect_fail 1 git dnadata export seed --sql "$T/out"
	assert_contains "$ERR" "data.sql, line"
	assert_no_file "$T/out"
	assert_no_file "$T/pwned"
}

# A failed export leaves DIR as it was (missing, or empty) and nothing beside it; a retry works.
test_a_failed_export_leaves_nothing_and_a_retry_works() {
	repo_with_db expfail --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 1000) g"
	expect_ok git dnadata snapshot
	expect_ok git dnadata push
	mv "$T/store" "$T/store.away"
	mv .git/dnadata/cache "$T/cache.away"
	mkdir -p .git/dnadata/cache
	cp -a "$T/cache.away/snapshots" .git/dnadata/cache/
	mkdir "$T/empty"
	expect_fail 1 git dnadata export clean --sql "$T/out"
	assert_no_file "$T/out"
	expect_fail 1 git dnadata export clean --sql "$T/empty"
	assert_eq "" "$(ls -A "$T/empty")"
	assert_eq "" "$(ls -A "$T" | grep git-dnadata-tmp || true)" "no temporary folder left beside DIR"
	mv "$T/store.away" "$T/store"
	expect_ok git dnadata export clean --sql "$T/out"
	expect_ok git dnadata export clean --sql "$T/empty"
	assert_contains "$(cat "$T/empty/data.sql")" $'1\tc4ca4238a0b923820dcc509a6f75849b'
}

run_tests
