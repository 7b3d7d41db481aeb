#!/usr/bin/env bash
# t-inline.sh: inline profiles (issue 18): `new-profile --inline` sets
# `inline = yes`; snapshot writes .dnadata/inline/<p>/schema.sql and
# data.sql and commits them with the ref (whose id is the files' hash);
# an unchanged database changes nothing; an edit is a readable diff; a
# fresh clone with no key and no store restores it; checkout between
# branches with different inline data switches the database through the
# hooks, keeping local edits in stashes; push leaves inline refs alone.
. "$(dirname "$0")/../lib.sh"

# A repository on a fresh database $DB with the inline profile "seed" active and some data.
setup_inline() {
	repo_with_db inl
	printf '[database]\nspares = 0\n' >>.git/dnadata/config.ini
	expect_ok git dnadata new-profile seed --inline
	expect_ok git dnadata use seed
	psql_q "$DB" "
	CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, boss int REFERENCES users(id));
	CREATE TABLE accounts (id int PRIMARY KEY, user_id int NOT NULL REFERENCES users(id), note text,
			       created timestamptz, doc jsonb, raw bytea);
	CREATE TABLE tags (tag text);
	CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN NEW.note := 'trigger ran'; RETURN NEW; END \$\$;
	CREATE TRIGGER accounts_stamp BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION stamp();
	INSERT INTO users (name, boss) VALUES ('root', NULL);
	INSERT INTO users (name, boss) VALUES ('ann', 1), ('bob', 2);
	UPDATE users SET boss = 3 WHERE id = 1;
	INSERT INTO accounts VALUES (1, 2, NULL, '2026-01-02 03:04:05+00', '{\"a\": [1, 2]}', '\\x00ff');
	UPDATE accounts SET note = E'tab\\there, newline\\nthere, back\\\\slash';
	INSERT INTO tags VALUES ('b'), ('a'), (NULL);
	ANALYZE"
}

# Everything the tables hold, one line per table, and the sequence.
content() {
	psql_q "${1:-$DB}" "SELECT (SELECT string_agg(u::text, ';' ORDER BY id) FROM users u) || ' | ' ||
		(SELECT string_agg(a::text, ';' ORDER BY id) FROM accounts a) || ' | ' ||
		(SELECT string_agg(coalesce(tag, 'NULL'), ';' ORDER BY tag NULLS FIRST) FROM tags) || ' | ' ||
		(SELECT last_value || ',' || is_called FROM users_id_seq)"
}

inline_hash() {
	local d=.dnadata/inline/seed
	printf 'schema.sql %s\ndata.sql %s\n' "$(sha256sum <"$d/schema.sql" | cut -d' ' -f1)" \
		"$(sha256sum <"$d/data.sql" | cut -d' ' -f1)" | sha256sum | cut -d' ' -f1
}

test_new_profile_inline_adds_the_key_and_commits_it() {
	repo_with_db inl
	expect_ok git dnadata new-profile seed --inline
	assert_contains "$(cat .dnadata/profiles.ini)" $'[profile "seed"]\ninline = yes'
	assert_eq "" "$(git status --porcelain)"
	expect_fail 2 git dnadata new-profile seed2 --inline --media var/m
	# the key belongs in the shared file only: every clone must agree
	printf '[profile "seed"]\ninline = no\n' >>.git/dnadata/config.ini
	expect_fail 1 git dnadata status
	assert_contains "$ERR" "inline"
}

test_snapshot_writes_both_files_and_commits_them_with_the_ref() {
	setup_inline
	local before
	before=$(git rev-list --count HEAD)
	expect_ok git dnadata snapshot
	local id=$OUT
	assert_eq $((before + 1)) "$(git rev-list --count HEAD)"
	assert_eq "" "$(git status --porcelain)" "files and ref committed"
	assert_eq ".dnadata/inline/seed/data.sql
.dnadata/inline/seed/schema.sql
.dnadata/refs/seed" "$(git show --name-only --format= HEAD)"
	assert_eq "$(inline_hash)" "$id" "the ref's id is the files' hash"
	assert_not_contains "$ERR" "store" "the throwaway store is not the user's business"
	assert_contains "$(cat .dnadata/refs/seed)" "snapshot $id"
	assert_contains "$(cat .dnadata/refs/seed)" "inline yes"
	local data
	data=$(cat .dnadata/inline/seed/data.sql)
	# users before accounts (foreign key), rows in key order, exact COPY text
	assert_contains "$data" $'COPY public.users (id, name, boss) FROM stdin;\n1\troot\t3\n2\tann\t1\n3\tbob\t2\n\\.'
	assert_contains "$data" $'COPY public.accounts (id, user_id, note, created, doc, raw) FROM stdin;\n1\t2\ttab\\there, newline\\nthere, back\\\\slash\t2026-01-02 03:04:05+00\t{"a": [1, 2]}\t\\\\x00ff\n\\.'
	local u a
	u=$(grep -n '^COPY public.users' .dnadata/inline/seed/data.sql | cut -d: -f1)
	a=$(grep -n '^COPY public.accounts' .dnadata/inline/seed/data.sql | cut -d: -f1)
	[ "$u" -lt "$a" ] || fail "accounts (which references users) comes first"
	assert_contains "$data" "SELECT pg_catalog.setval('public.users_id_seq', 3, true);"
	assert_contains "$(cat .dnadata/inline/seed/schema.sql)" "CREATE TABLE public.accounts"
	assert_not_contains "$(cat .dnadata/inline/seed/schema.sql)" "Dumped"
	# no store was written to
	assert_eq "" "$(find .git/dnadata/cache -type f -path '*snapshots*' 2>/dev/null)"
	# unchanged: nothing written, no commit, the same id
	expect_ok git dnadata snapshot
	assert_eq "$id" "$OUT"
	assert_contains "$ERR" "nothing changed"
	assert_eq $((before + 1)) "$(git rev-list --count HEAD)"
	assert_eq "" "$(ls .git/dnadata | grep inline- || true)" "the throwaway store is removed"
	# one a kill -9 left (its process is gone) goes with the next snapshot; a live process's stays
	local dead
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	mkdir -p ".git/dnadata/inline-$dead-abcdef/store" ".git/dnadata/inline-$$-abcdef"
	psql_q "$DB" "INSERT INTO tags VALUES ('c')"
	expect_ok git dnadata snapshot
	assert_eq "inline-$$-abcdef" "$(ls .git/dnadata | grep inline- || true)"
}

test_an_edit_is_a_readable_diff() {
	setup_inline
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE users SET name = 'anne' WHERE id = 2"
	expect_ok git dnadata snapshot
	assert_eq "-2	ann	1
+2	anne	1" "$(git diff HEAD~1 HEAD -- .dnadata/inline/seed/data.sql | grep '^[-+][^-+]')"
	assert_eq "" "$(git diff HEAD~1 HEAD -- .dnadata/inline/seed/schema.sql)"
	psql_q "$DB" "ALTER TABLE tags ADD COLUMN weight int"
	expect_ok git dnadata snapshot
	# one added column, one added line (the normalised layout puts the comma first)
	assert_eq "+  , weight integer" "$(git diff HEAD~1 HEAD -- .dnadata/inline/seed/schema.sql | grep '^[-+][^-+]')"
}

test_a_fresh_clone_without_key_or_store_restores_it() {
	setup_inline
	expect_ok git dnadata snapshot
	local id=$OUT want
	want=$(content)
	git clone -q "$T/repo" "$T/clone"
	cd "$T/clone"
	assert_no_file .git/dnadata/key
	local db2
	db2=$(pg_newdb inlclone)
	psql_q postgres "DROP DATABASE $db2"
	DNADATA_DATABASE="dbname=$db2" expect_ok git dnadata restore seed
	assert_contains "$ERR" "restored snapshot ${id:0:12} into database $db2"
	assert_eq "$want" "$(content "$db2")"
	assert_no_file .git/dnadata/key
	assert_not_contains "$(content "$db2")" "trigger ran" "the insert trigger ran on load (the note must be the snapshot's)"
	assert_contains "$want" "tab"
	# the database is recorded as holding the snapshot: a second restore does nothing
	DNADATA_DATABASE="dbname=$db2" expect_ok git dnadata restore seed
	assert_contains "$ERR" "already holds snapshot ${id:0:12}"
}

test_a_fresh_clone_s_hooks_switch_inline_data_without_a_key() {
	setup_inline
	expect_ok git dnadata snapshot
	local main_data b_data
	main_data=$(content)
	git checkout -q -b B
	psql_q "$DB" "INSERT INTO tags VALUES ('only-on-b')"
	expect_ok git dnadata snapshot
	b_data=$(content)
	git checkout -q main
	git clone -q "$T/repo" "$T/clone"
	cd "$T/clone"
	local db2
	db2=$(pg_newdb inlhook)
	psql_q postgres "DROP DATABASE $db2"
	mkdir -m 700 .git/dnadata
	printf '[database]\nurl = dbname=%s\nspares = 0\n' "$db2" >.git/dnadata/config.ini
	expect_ok git dnadata install-hooks
	expect_ok git dnadata use seed
	assert_eq "$main_data" "$(content "$db2")"
	expect_ok git checkout -q B
	assert_eq "$b_data" "$(content "$db2")" "post-checkout switched the clone's database to B's inline data"
	expect_ok git checkout -q main
	assert_eq "$main_data" "$(content "$db2")"
	assert_no_file .git/dnadata/key
	assert_no_file .git/dnadata/store
}

test_restore_keeps_the_edited_database_as_a_stash() {
	setup_inline
	expect_ok git dnadata snapshot
	local want
	want=$(content)
	psql_q "$DB" "DELETE FROM tags"
	expect_ok git dnadata restore
	assert_eq "$want" "$(content)"
	assert_contains "$ERR" "the previous one is kept as"
	local stash
	stash=$(databases_like "${DB}__dnadata_stash")
	assert_ne "" "$stash"
	assert_eq 0 "$(psql_q "$stash" "SELECT count(*) FROM tags")" "the edited database is kept"
	assert_consistent
}

test_checkout_switches_the_database_through_the_hooks_keeping_edits() {
	setup_inline
	expect_ok git dnadata snapshot
	local main_data b_data
	main_data=$(content)
	git checkout -q -b B
	psql_q "$DB" "INSERT INTO tags VALUES ('only-on-b')"
	expect_ok git dnadata snapshot
	b_data=$(content)
	expect_ok git checkout -q main
	assert_eq "$main_data" "$(content)" "post-checkout switched to main's inline data"
	expect_ok git checkout -q B
	assert_eq "$b_data" "$(content)"
	psql_q "$DB" "INSERT INTO tags VALUES ('local-edit')"
	local edited
	edited=$(content)
	expect_ok git checkout -q main
	assert_eq "$main_data" "$(content)"
	expect_ok git checkout -q B
	assert_eq "$edited" "$(content)" "the branch's stash came back with its edit"
	assert_consistent
}

test_a_hand_edited_data_file_is_what_restores() {
	setup_inline
	expect_ok git dnadata snapshot
	sed -i 's/^3\tbob\t2$/3\tbobby\t2/' .dnadata/inline/seed/data.sql
	expect_ok git dnadata restore
	assert_contains "$ERR" "do not match its ref file"
	assert_eq "bobby" "$(psql_q "$DB" "SELECT name FROM users WHERE id = 3")"
}

test_a_broken_data_file_fails_and_leaves_the_database() {
	setup_inline
	expect_ok git dnadata snapshot
	local want
	want=$(content)
	psql_q "$DB" "DELETE FROM tags"
	sed -i 's/^3\tbob\t2$/3\tbob\tnot-a-number/' .dnadata/inline/seed/data.sql
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "data.sql"
	assert_eq 0 "$(psql_q "$DB" "SELECT count(*) FROM tags")" "the working database is untouched"
	assert_eq "" "$(databases_like "${DB}__dnadata_tmpl")" "the partial copy is dropped"
	assert_consistent
}

test_snapshot_from_a_dump_writes_the_dump_s_data_into_the_files() {
	setup_inline
	expect_ok git dnadata snapshot
	local other
	other=$(pg_newdb inlsrc)
	psql_q "$other" "CREATE TABLE only_in_dump (id int PRIMARY KEY, v text); INSERT INTO only_in_dump VALUES (1, 'dumped')"
	"$DD_PG_BINDIR/pg_dump" -Fc -f "$T/dump" "$other"
	expect_ok git dnadata snapshot --from-dump "$T/dump"
	local id=$OUT
	assert_contains "$(cat .dnadata/inline/seed/data.sql)" $'COPY public.only_in_dump (id, v) FROM stdin;
1	dumped
\.'
	assert_not_contains "$(cat .dnadata/inline/seed/data.sql)" "public.users"
	assert_eq "$(inline_hash)" "$id"
	assert_eq "" "$(git status --porcelain)"
	# the working database is not what was dumped: a restore loads the dump's data
	expect_ok git dnadata restore
	assert_eq "dumped" "$(psql_q "$DB" "SELECT v FROM only_in_dump")"
}

test_push_and_verify_leave_inline_refs_alone() {
	# a shared store, so the pre-push hook has somewhere to upload to
	repo_with_db inlpush --store "file://$T/shared-store"
	expect_ok git dnadata new-profile seed --inline
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	expect_ok git dnadata snapshot seed
	expect_ok git dnadata push
	expect_ok git dnadata verify
	expect_ok git dnadata fetch seed
	# the pre-push hook looks at the ref files the pushed commits change: an inline one needs nothing
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
	expect_ok git push -q origin main
	assert_eq "$(git rev-parse main)" "$(git --git-dir="$T/remote.git" rev-parse main)"
}

PSQL() { "$DD_PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
MARKER='-- dnadata: post-data: constraints, indexes and triggers, loaded after data.sql'

# What only loads in pg_dump's order (pre-data, rows, post-data), as t-export.sh has it, on an inline
# profile "seed": a foreign-key cycle that is not deferrable, a NOT VALID foreign key with an orphan
# row, foreign keys to and from partitioned tables, a materialized view with rows; comments whose
# text holds the marker and a meta-command line.
setup_hard() {
	repo_with_db inlhard
	printf '[database]\nspares = 0\n' >>.git/dnadata/config.ini
	expect_ok git dnadata new-profile seed --inline
	expect_ok git dnadata use seed
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
	COMMENT ON TABLE cb IS E'x\n$MARKER\ny';
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
	SELECT obj_description('public.cb'::regclass, 'pg_class');
	SELECT obj_description('public.nv_child'::regclass, 'pg_class')"
}

schema_of() {
	"$DD_PG_BINDIR/pg_dump" --schema-only --no-owner -d "$1" | grep -v '^\\\(un\)\?restrict \|^-- Dumped'
}

# A fresh clone restores profile seed into a new database; its name in $DB2.
restore_in_clone() {
	git clone -q "$T/repo" "$T/clone"
	cd "$T/clone"
	DB2=$(pg_newdb inlclone)
	psql_q postgres "DROP DATABASE $DB2"
	DNADATA_DATABASE="dbname=$DB2" run git dnadata restore seed
}

test_what_loads_only_in_pg_dump_s_order_restores_equal() {
	setup_hard
	expect_ok git dnadata snapshot
	local want
	want=$(hard_content "$DB")
	assert_contains "$want" "mv 1 1"
	assert_contains "$want" "nv_child (1,1);(2,99)"
	assert_contains "$want" "nv_fk false"
	restore_in_clone
	[ "$RC" = 0 ] || fail "restore: $ERR"
	assert_eq "$want" "$(hard_content "$DB2")"
	diff <(schema_of "$DB") <(schema_of "$DB2") >"$T/schema.diff" || fail "schemas differ: $(cat "$T/schema.diff")"
	assert_no_file "$T/pwned-comment"
	# one schema.sql, one marker line at its top level and cb's comment's copy inside a literal (pre-data)
	assert_eq 2 "$(grep -c "^$MARKER\$" "$T/repo"/.dnadata/inline/seed/schema.sql)"
	[ "$(grep -n 'CREATE TABLE public.ca' "$T/repo"/.dnadata/inline/seed/schema.sql | cut -d: -f1)" -lt \
	  "$(grep -n "^$MARKER\$" "$T/repo"/.dnadata/inline/seed/schema.sql | tail -1 | cut -d: -f1)" ] || fail "pre-data after the marker"
	assert_contains "$(sed -n "/^$MARKER\$/,\$p" "$T/repo"/.dnadata/inline/seed/schema.sql)" "REFRESH MATERIALIZED VIEW public.mv"
	assert_eq 1 "$(grep -c '^SET check_function_bodies = false;$' "$T/repo"/.dnadata/inline/seed/schema.sql)" "one preamble"
}

# The marker is what splits the file: none, or two at the top level, is refused before any database is made.
test_schema_sql_without_exactly_one_marker_is_refused() {
	setup_inline
	expect_ok git dnadata snapshot
	local f=.dnadata/inline/seed/schema.sql
	sed -i "/^$MARKER\$/d" "$f"
	git commit -qm "no marker" "$f"
	restore_in_clone
	[ "$RC" = 1 ] || fail "restore without the marker: exit $RC"
	assert_contains "$ERR" "holds no line \"$MARKER\""
	assert_eq "" "$(psql_q postgres "SELECT datname FROM pg_database WHERE datname LIKE '${DB2}%'")"
	cd "$T/repo"
	git checkout -q HEAD~1 -- "$f"
	printf '%s\n' "$MARKER" >>"$f"
	git commit -qm "two markers" "$f"
	rm -rf "$T/clone"
	restore_in_clone
	[ "$RC" = 1 ] || fail "restore with two markers: exit $RC"
	assert_contains "$ERR" "holds more than one line"
}

# A hostile schema.sql or data.sql: a psql meta-command line is refused with a clear error.
test_a_psql_meta_command_in_the_files_is_refused() {
	setup_inline
	expect_ok git dnadata snapshot
	printf '\\! touch %s/pwned\n' "$T" >>.dnadata/inline/seed/schema.sql
	git commit -qm evil .dnadata
	restore_in_clone
	[ "$RC" = 1 ] || fail "restore: exit $RC"
	assert_contains "$ERR" "schema.sql, line"
	assert_contains "$ERR" "a psql meta-command"
	cd "$T/repo"
	git checkout -q HEAD~1 -- .dnadata
	printf '\\copy public.tags FROM %s/x\n' "$T" >>.dnadata/inline/seed/data.sql
	git commit -qm evil2 .dnadata
	rm -rf "$T/clone"
	restore_in_clone
	[ "$RC" = 1 ] || fail "restore: exit $RC"
	assert_contains "$ERR" "data.sql, line"
	assert_no_file "$T/pwned"
}

# The restored database gets the source's encoding and locale, not the server's default (UTF8, C.UTF-8).
test_the_source_s_encoding_and_locale_come_back() {
	need_pg
	local src
	src=$(pg_newdb inlenc)
	psql_q postgres "DROP DATABASE $src"
	psql_q postgres "CREATE DATABASE $src TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
	DB=$src
	new_repo
	expect_ok git dnadata init --database "dbname=$DB"
	expect_ok git dnadata new-profile seed --inline
	psql_q "$DB" "CREATE TABLE t (v text); INSERT INTO t VALUES ('b'), ('B'), ('a')"
	expect_ok git dnadata snapshot seed
	restore_in_clone
	[ "$RC" = 0 ] || fail "restore: $ERR"
	assert_eq "LATIN1 C C" "$(psql_q postgres "SELECT pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' ||
		datctype FROM pg_database WHERE datname = '$DB2'")"
	assert_eq "-- dnadata: database: encoding=LATIN1 lc_collate=C lc_ctype=C locale_provider=c" \
		"$(head -1 .dnadata/inline/seed/schema.sql)"
	assert_eq "B,a,b" "$(psql_q "$DB2" "SELECT string_agg(v, ',' ORDER BY v) FROM t")"
}

# schema.sql holds no COPY blocks: a line "COPY ... FROM stdin;" inside a literal (a comment's text) is text.
test_a_copy_line_inside_a_literal_restores() {
	setup_inline
	psql_q "$DB" "COMMENT ON TABLE users IS E'back\\\\slash\nCOPY public.users (id, name, boss) FROM stdin;\n9\tx\t\\\\N\n\\\\.\nend'"
	expect_ok git dnadata snapshot
	assert_contains "$(cat .dnadata/inline/seed/schema.sql)" $'\nCOPY public.users (id, name, boss) FROM stdin;\n'
	local want
	want=$(psql_q "$DB" "SELECT obj_description('public.users'::regclass, 'pg_class')")
	assert_contains "$want" "back\\slash"
	restore_in_clone
	[ "$RC" = 0 ] || fail "restore: $ERR"
	assert_eq "$want" "$(psql_q "$DB2" "SELECT obj_description('public.users'::regclass, 'pg_class')")"
	assert_eq "$(content "$DB")" "$(content "$DB2")"
}

run_tests
