#!/usr/bin/env bash
# t-schema-dump.sh: `git dnadata schema-dump` (issue 18) writes
# .dnadata/schema/<profile>.sql normalised: no volatile lines, byte-identical
# when nothing changed (the same objects made in another order included),
# one added, dropped or changed column = one line in a diff, wherever the
# column is (the element lists in a leading-comma layout); the file loads
# alone with psql (its own constant preamble); never committed; kept current after every restore (after the
# post_restore commands) once it exists, unless schema_dump = no; a working
# database that holds another profile is refused.
. "$(dirname "$0")/../lib.sh"

SCHEMA=.dnadata/schema/clean.sql

setup_repo() {
	repo_with_db sdump
	psql_q "$DB" "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
		CREATE INDEX users_name ON users (name);
		CREATE VIEW names AS SELECT name FROM users;
		INSERT INTO users (name) VALUES ('ann'), ('bob')"
}

# Lines of `diff` between two files that are changes (< or >), one per line.
changed_lines() { diff "$1" "$2" | grep -E '^[<>]' || true; }

test_schema_dump_writes_the_normalised_schema_and_does_not_commit_it() {
	setup_repo
	local head
	head=$(git rev-parse HEAD)
	expect_ok git dnadata schema-dump
	assert_eq "$SCHEMA (changed)" "$OUT"
	assert_file "$SCHEMA"
	local text
	text=$(cat "$SCHEMA")
	assert_contains "$text" "CREATE TABLE public.users ("
	assert_contains "$text" "CREATE INDEX users_name ON public.users USING btree (name);"
	assert_contains "$text" "-- Name: users; Type: TABLE; Schema: public"
	assert_not_contains "$text" "Dumped"
	assert_not_contains "$text" "restrict"
	# our own constant preamble, not pg_dump's (client_encoding varies by database)
	assert_eq "SET statement_timeout = 0;" "$(head -n 1 "$SCHEMA")"
	assert_eq 1 "$(grep -c "^SELECT pg_catalog.set_config('search_path', '', false);$" "$SCHEMA")"
	assert_eq 1 "$(grep -c '^SET check_function_bodies = false;$' "$SCHEMA")"
	assert_not_contains "$text" "client_encoding"
	assert_contains "$text" "CREATE TABLE public.users (
    id integer NOT NULL
  , name text NOT NULL
);"
	assert_not_contains "$text" "Owner:"
	assert_not_contains "$text" $'\n\n\n' "no runs of blank lines"
	assert_eq "$head" "$(git rev-parse HEAD)" "nothing committed"
	assert_eq "?? .dnadata/schema/" "$(git status --porcelain)"
}

test_an_unchanged_schema_gives_the_same_bytes_and_the_file_is_left_alone() {
	setup_repo
	expect_ok git dnadata schema-dump
	cp "$SCHEMA" "$T/first.sql"
	local mtime
	mtime=$(stat -c %Y.%y "$SCHEMA")
	# rows are not schema
	psql_q "$DB" "INSERT INTO users (name) VALUES ('cyd')"
	expect_ok git dnadata schema-dump
	assert_eq "$SCHEMA (unchanged)" "$OUT"
	cmp "$T/first.sql" "$SCHEMA" || fail "the schema file changed"
	assert_eq "$mtime" "$(stat -c %Y.%y "$SCHEMA")" "the file was rewritten"
}

# "added<TAB>removed" lines of the schema file against its committed version.
numstat() { git diff --numstat -- "$SCHEMA" | cut -f1,2; }

# The schema file committed, so that `git diff --numstat` measures the next change.
commit_schema() {
	expect_ok git dnadata schema-dump
	git add -f "$SCHEMA" && git commit -qm "schema" -- "$SCHEMA" || fail "committing the schema"
}

test_an_added_column_is_one_added_line() {
	setup_repo
	commit_schema
	psql_q "$DB" "ALTER TABLE users ADD COLUMN email text"
	expect_ok git dnadata schema-dump
	assert_eq "$SCHEMA (changed)" "$OUT"
	assert_eq $'1\t0' "$(numstat)"
	assert_eq "+  , email text" "$(git diff -U0 -- "$SCHEMA" | grep '^[-+][^-+]')"
}

test_a_column_added_in_the_middle_is_one_added_line() {
	setup_repo
	commit_schema
	# ALTER TABLE only appends: the same table with a column between id and name, in another database
	local other
	other=$(pg_newdb sdump2)
	psql_q "$other" "CREATE TABLE users (id serial PRIMARY KEY, email text, name text NOT NULL);
		CREATE INDEX users_name ON users (name);
		CREATE VIEW names AS SELECT name FROM users"
	DNADATA_DATABASE="dbname=$other" expect_ok git dnadata schema-dump
	assert_eq $'1\t0' "$(numstat)"
	assert_eq "+  , email text" "$(git diff -U0 -- "$SCHEMA" | grep '^[-+][^-+]')"
}

test_a_dropped_or_changed_column_is_one_line() {
	setup_repo
	psql_q "$DB" "ALTER TABLE users ADD COLUMN email text, ADD COLUMN age int"
	commit_schema
	psql_q "$DB" "ALTER TABLE users DROP COLUMN email"
	expect_ok git dnadata schema-dump
	assert_eq $'0\t1' "$(numstat)"
	assert_eq "-  , email text" "$(git diff -U0 -- "$SCHEMA" | grep '^[-+][^-+]')"
	git commit -qm "schema" -- "$SCHEMA"
	psql_q "$DB" "ALTER TABLE users ALTER COLUMN age TYPE bigint"
	expect_ok git dnadata schema-dump
	assert_eq $'1\t1' "$(numstat)"
}

test_a_schema_change_between_two_snapshots_shows_in_the_dump_after_restore() {
	setup_repo
	expect_ok git dnadata snapshot
	local old=$OUT
	expect_ok git dnadata schema-dump
	cp "$SCHEMA" "$T/old.sql"
	psql_q "$DB" "ALTER TABLE users ADD COLUMN age int"
	expect_ok git dnadata snapshot
	expect_ok git dnadata schema-dump
	assert_eq "$SCHEMA (changed)" "$OUT"
	# the restore of the first snapshot writes its schema: the column is gone
	expect_ok git dnadata restore --at HEAD~1
	assert_contains "$ERR" "restored snapshot ${old:0:12}"
	assert_contains "$ERR" "schema of profile clean written to $SCHEMA (changed; not committed)"
	cmp "$T/old.sql" "$SCHEMA" || fail "the dump after restoring the first snapshot differs from the first dump"
	expect_ok git dnadata restore
	assert_contains "$ERR" "schema of profile clean written to $SCHEMA (changed; not committed)"
	assert_eq ">   , age integer" "$(changed_lines "$T/old.sql" "$SCHEMA")"
	assert_eq "?? .dnadata/schema/" "$(git status --porcelain)" "the restores committed nothing"
}

test_the_dump_after_restore_keeps_an_existing_file_current_but_never_creates_one() {
	setup_repo
	expect_ok git dnadata snapshot
	# an untracked file the restore made would block `git checkout` of a branch that tracks it
	expect_ok git dnadata restore --force
	assert_no_file "$SCHEMA"
	assert_eq "" "$(git status --porcelain)"
	expect_ok git dnadata schema-dump
	assert_file "$SCHEMA"
}

test_the_dump_runs_after_the_post_restore_commands_and_not_after_a_failed_one() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata schema-dump
	# a "migration" in post_restore: the dump must see its column
	printf '[hooks]\npost_restore = psql -XAtq -d "dbname=%s" -c "ALTER TABLE users ADD COLUMN migrated int"\n' \
		"$DB" >>.git/dnadata/config.ini
	expect_ok git dnadata restore --force
	assert_contains "$(cat "$SCHEMA")" "migrated integer"
	expect_ok git dnadata restore --force --no-hooks
	assert_not_contains "$(cat "$SCHEMA")" "migrated" "--no-hooks: the snapshot's own schema"
	cp "$SCHEMA" "$T/before.sql"
	printf 'post_restore = false\n' >>.git/dnadata/config.ini
	expect_fail 1 git dnadata restore --force
	cmp "$T/before.sql" "$SCHEMA" || fail "the schema was dumped after a failed post_restore command"
}

test_a_restore_of_the_same_snapshot_keeps_a_current_file_and_rewrites_an_edited_one() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata schema-dump
	expect_ok git dnadata restore --force
	cp "$SCHEMA" "$T/first.sql"
	# the file is known to hold this snapshot's schema: no pg_dump (-v says so)
	expect_ok git dnadata -v restore --force
	assert_contains "$ERR" "its file holds snapshot"
	cmp "$T/first.sql" "$SCHEMA" || fail "the schema file changed"
	# edited by hand: written again
	echo "-- my note" >>"$SCHEMA"
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "schema of profile clean written to $SCHEMA (changed; not committed)"
	cmp "$T/first.sql" "$SCHEMA" || fail "the edited schema file was not written again"
}

test_schema_dump_no_turns_the_automatic_dump_off_but_not_the_command() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata schema-dump
	cp "$SCHEMA" "$T/before.sql"
	printf '[profile "clean"]\nschema_dump = no\n' >>.git/dnadata/config.ini
	printf '[hooks]\npost_restore = psql -XAtq -d "dbname=%s" -c "ALTER TABLE users ADD COLUMN migrated int"\n' \
		"$DB" >>.git/dnadata/config.ini
	expect_ok git dnadata restore --force
	cmp "$T/before.sql" "$SCHEMA" || fail "schema_dump = no, yet the file changed"
	assert_not_contains "$ERR" "schema of profile"
	expect_ok git dnadata schema-dump
	assert_contains "$(cat "$SCHEMA")" "migrated integer"
}

test_a_failed_dump_after_restore_is_a_warning_and_the_restore_stands() {
	setup_repo
	expect_ok git dnadata snapshot
	# a directory where the file goes: the write fails
	mkdir -p "$SCHEMA"
	expect_ok git dnadata restore --force
	assert_contains "$ERR" "warning: schema dump of profile clean"
	assert_contains "$ERR" "run \`git dnadata schema-dump clean\` later"
	assert_eq "2" "$(psql_q "$DB" "SELECT count(*) FROM users")"
}

test_the_same_objects_made_in_another_order_give_the_same_dump() {
	setup_repo
	local other
	other=$(pg_newdb sdump2)
	local a="CREATE TYPE mood AS ENUM ('sad', 'ok');
		CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'select a + 1';
		CREATE FUNCTION f(a text) RETURNS text LANGUAGE sql AS 'select a';
		CREATE TABLE posts (id bigserial PRIMARY KEY, user_id int REFERENCES users(id), m mood);
		CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NEW; END \$\$;
		CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION trg();
		CREATE TRIGGER t BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION trg();
		ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0);
		ALTER TABLE posts ADD CONSTRAINT c CHECK (id > 0);
		CREATE POLICY p ON users USING (true);
		CREATE POLICY p ON posts USING (true);
		COMMENT ON TABLE users IS 'people';
		CREATE SEQUENCE s1; CREATE SEQUENCE s2"
	local b="CREATE SEQUENCE s2; CREATE SEQUENCE s1;
		CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NEW; END \$\$;
		CREATE FUNCTION f(a text) RETURNS text LANGUAGE sql AS 'select a';
		CREATE TYPE mood AS ENUM ('sad', 'ok');
		CREATE TABLE posts (id bigserial PRIMARY KEY, user_id int, m mood);
		ALTER TABLE posts ADD FOREIGN KEY (user_id) REFERENCES users(id);
		CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql AS 'select a + 1';
		CREATE TRIGGER t BEFORE INSERT ON posts FOR EACH ROW EXECUTE FUNCTION trg();
		CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION trg();
		ALTER TABLE posts ADD CONSTRAINT c CHECK (id > 0);
		ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0);
		COMMENT ON TABLE users IS 'people';
		CREATE POLICY p ON posts USING (true);
		CREATE POLICY p ON users USING (true)"
	psql_q "$DB" "$a"
	psql_q "$other" "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
		CREATE INDEX users_name ON users (name);
		CREATE VIEW names AS SELECT name FROM users; $b"
	expect_ok git dnadata schema-dump
	cp "$SCHEMA" "$T/a.sql"
	DNADATA_DATABASE="dbname=$other" expect_ok git dnadata schema-dump
	cmp "$T/a.sql" "$SCHEMA" || fail "the dumps differ: $(diff "$T/a.sql" "$SCHEMA" | head -20)"
}

test_a_working_database_holding_another_profile_is_refused() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata new-profile other
	expect_fail 1 git dnadata schema-dump other
	assert_contains "$ERR" "holds profile clean, not other"
	assert_contains "$ERR" "git dnadata use other"
	assert_no_file .dnadata/schema/other.sql
}

test_checkouts_between_branches_with_committed_schema_files_keep_them_current_and_clean() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata schema-dump
	git add "$SCHEMA" && git commit -qm "schema"
	expect_ok git checkout -b feature
	psql_q "$DB" "ALTER TABLE users ADD COLUMN email text"
	expect_ok git dnadata snapshot
	expect_ok git dnadata schema-dump
	git commit -qm "add users.email" "$SCHEMA"
	# the hooks switch the database; the file each branch tracks is what its database holds
	expect_ok git checkout main
	assert_eq "" "$(git status --porcelain)" "after checkout main"
	assert_not_contains "$(cat "$SCHEMA")" "email"
	expect_ok git checkout feature
	assert_eq "" "$(git status --porcelain)" "after checkout feature"
	assert_contains "$(cat "$SCHEMA")" "email text"
	# a migration that post_restore runs on the branch shows as a change to commit
	printf '[hooks]\npost_restore = psql -XAtq -d "dbname=%s" -c "ALTER TABLE users ADD COLUMN IF NOT EXISTS age int"\n' \
		"$DB" >>.git/dnadata/config.ini
	expect_ok git checkout main
	assert_eq " M $SCHEMA" "$(git status --porcelain)"
	assert_contains "$(cat "$SCHEMA")" "age integer"
}

run_tests
