#!/usr/bin/env bash
# t-promote-schema.sh: `git dnadata promote-schema FROM [TO]` (issue 18):
# FROM's schema becomes TO's base once TO's rows load into it in a scratch
# database: a store-backed TO gets a new snapshot (its rows in FROM's
# schema), an inline TO a new schema.sql; one commit. A TO whose rows no
# longer load (FROM dropped a column they fill, added a NOT NULL column
# without a default) is refused with the failing statement, and nothing
# changes: no ref, no file, no commit, no scratch database left.
. "$(dirname "$0")/../lib.sh"

# "clean-db" (the default TO, store-backed) holds users(id, name) with two
# rows; "prod" is the same database after a migration.
setup_repo() {
	repo_with_db promo --profile clean-db
	psql_q "$DB" "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
		INSERT INTO users (name) VALUES ('ann'), ('bob')"
	expect_ok git dnadata snapshot
	CLEAN_ID=$OUT
	expect_ok git dnadata new-profile prod
}

# prod's snapshot: the database after SQL $1
snapshot_prod() {
	psql_q "$DB" "$1"
	expect_ok git dnadata snapshot prod
}

scratch_left() { databases_like "${DB}__dnadata_load_"; }

# Nothing changed: HEAD, the work tree, clean-db's ref, no scratch database.
assert_nothing_changed() {
	assert_eq "$1" "$(git rev-parse HEAD)" "a commit was made"
	assert_eq "" "$(git status --porcelain)" "the work tree changed"
	assert_contains "$(cat .dnadata/refs/clean-db)" "snapshot $CLEAN_ID"
	assert_eq "" "$(scratch_left)" "a scratch database was left"
}

test_promote_into_a_store_profile_makes_a_snapshot_of_its_rows_in_the_new_schema() {
	setup_repo
	snapshot_prod "ALTER TABLE users ADD COLUMN email text; CREATE INDEX users_email ON users (email)"
	expect_ok git dnadata promote-schema prod
	assert_contains "$OUT" "clean-db's base is now prod's schema"
	assert_contains "$OUT" "next: remove the migrations that are now part of clean-db's base"
	assert_contains "$OUT" "then: \`git dnadata restore\` loads clean-db's new base"
	assert_eq "dnadata: promote-schema prod -> clean-db" "$(git log -1 --format=%s)"
	assert_eq ".dnadata/refs/clean-db" "$(git show --name-only --format= HEAD)"
	assert_eq "" "$(git status --porcelain)"
	assert_not_contains "$(cat .dnadata/refs/clean-db)" "$CLEAN_ID"
	assert_eq "" "$(scratch_left)"
	# clean-db's rows in prod's schema
	expect_ok git dnadata restore clean-db
	assert_eq "1|ann|
2|bob|" "$(psql_q "$DB" "SELECT id, name, email FROM users ORDER BY id")"
	assert_eq "users_email" "$(psql_q "$DB" "SELECT indexname FROM pg_indexes WHERE indexname = 'users_email'")"
	# the sequence kept clean-db's value
	assert_eq "3" "$(psql_q "$DB" "SELECT nextval('users_id_seq')")"
}

# A store-backed TO with a media folder keeps its files: the new snapshot carries TO's media listing unchanged,
# so diff shows no media change and a fresh clone's restore of TO brings the files.
test_promote_keeps_the_media_of_a_store_profile() {
	DNADATA_PASSPHRASE=pw repo_with_db promedia --profile clean-db --store "file://$T/store"
	printf 'media = var/uploads\n' >>.dnadata/profiles.ini
	git commit -qm media .dnadata/profiles.ini
	mkdir -p var/uploads/sub
	printf 'logo\n' >var/uploads/logo.png
	printf 'deep\n' >var/uploads/sub/deep.txt
	psql_q "$DB" "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO users (name) VALUES ('ann')"
	expect_ok git dnadata snapshot
	expect_ok git dnadata new-profile prod
	snapshot_prod "ALTER TABLE users ADD COLUMN email text"
	expect_ok git dnadata promote-schema prod
	assert_eq "dnadata: promote-schema prod -> clean-db" "$(git log -1 --format=%s)"
	assert_eq 2 "$(sed -n 's/^media_files //p' .dnadata/refs/clean-db)"
	expect_ok git dnadata diff HEAD~1 HEAD --profile clean-db --json
	assert_eq "[]" "$(printf '%s' "$OUT" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["media"]))')" \
		"promote-schema changed TO's media"
	expect_ok git dnadata push
	git clone -q "$PWD" "$T/clone"
	cd "$T/clone"
	DNADATA_DATABASE="dbname=$(pg_newdb promedia2)"
	export DNADATA_DATABASE
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	expect_ok git dnadata restore clean-db
	assert_eq "logo" "$(cat var/uploads/logo.png)"
	assert_eq "deep" "$(cat var/uploads/sub/deep.txt)"
	assert_eq "1|ann|" "$(psql_q "${DNADATA_DATABASE#dbname=}" "SELECT id, name, email FROM users")"
}

test_from_the_active_profile_the_working_database_schema_is_taken() {
	setup_repo
	snapshot_prod "SELECT 1"
	expect_ok git dnadata use prod
	# a migration the post_restore step would run: in the working database, not in prod's snapshot
	psql_q "$DB" "ALTER TABLE users ADD COLUMN migrated int DEFAULT 7"
	expect_ok git dnadata promote-schema prod clean-db
	assert_contains "$ERR" "from its working database"
	expect_ok git dnadata restore clean-db
	assert_eq "1|ann|7
2|bob|7" "$(psql_q "$DB" "SELECT id, name, migrated FROM users ORDER BY id")"
}

test_a_dropped_column_that_the_data_fills_is_refused_and_nothing_changes() {
	setup_repo
	snapshot_prod "ALTER TABLE users DROP COLUMN name"
	local head
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata promote-schema prod
	assert_contains "$ERR" "clean-db's data does not load into prod's schema"
	assert_contains "$ERR" 'column "name" of relation "users" does not exist'
	assert_contains "$ERR" "COPY public.users (id, name) FROM stdin;"
	assert_nothing_changed "$head"
}

test_a_not_null_column_without_default_is_refused_and_nothing_changes() {
	setup_repo
	snapshot_prod "ALTER TABLE users ADD COLUMN tenant int NOT NULL DEFAULT 1; ALTER TABLE users ALTER COLUMN tenant DROP DEFAULT"
	local head
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata promote-schema prod clean-db
	assert_contains "$ERR" 'null value in column "tenant"'
	assert_nothing_changed "$head"
}

test_promote_into_an_inline_profile_writes_its_schema_sql() {
	setup_repo
	expect_ok git dnadata new-profile seed --inline
	expect_ok git dnadata snapshot seed
	local old_data
	old_data=$(cat .dnadata/inline/seed/data.sql)
	snapshot_prod "ALTER TABLE users ADD COLUMN email text"
	expect_ok git dnadata promote-schema prod seed
	assert_eq "dnadata: promote-schema prod -> seed" "$(git log -1 --format=%s)"
	assert_eq ".dnadata/inline/seed/schema.sql
.dnadata/refs/seed" "$(git show --name-only --format= HEAD)"
	assert_contains "$(cat .dnadata/inline/seed/schema.sql)" "  , email text"
	assert_eq "$old_data" "$(cat .dnadata/inline/seed/data.sql)" "data.sql stays"
	expect_ok git dnadata restore seed
	assert_not_contains "$ERR" "do not match its ref file"
	assert_eq "1|ann|
2|bob|" "$(psql_q "$DB" "SELECT id, name, email FROM users ORDER BY id")"
}

test_an_inline_profile_whose_data_no_longer_loads_is_left_alone() {
	setup_repo
	expect_ok git dnadata new-profile seed --inline
	expect_ok git dnadata snapshot seed
	snapshot_prod "ALTER TABLE users DROP COLUMN name"
	local head
	head=$(git rev-parse HEAD)
	cp .dnadata/inline/seed/schema.sql "$T/schema.sql"
	expect_fail 1 git dnadata promote-schema prod seed
	assert_contains "$ERR" "seed's data does not load into prod's schema"
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq "" "$(git status --porcelain)"
	cmp "$T/schema.sql" .dnadata/inline/seed/schema.sql || fail "schema.sql changed"
	assert_eq "" "$(scratch_left)"
}

test_usage_and_missing_snapshots() {
	setup_repo
	expect_fail 2 git dnadata promote-schema
	expect_fail 2 git dnadata promote-schema a b c
	expect_fail 1 git dnadata promote-schema clean-db clean-db
	assert_contains "$ERR" "needs two profiles"
	expect_fail 1 git dnadata promote-schema prod
	assert_contains "$ERR" "profile prod has no snapshot yet"
	expect_fail 1 git dnadata promote-schema nosuch
	expect_ok git dnadata promote-schema -h
	assert_contains "$OUT" "Examples:"
}

# FROM's working database (its schema dumped live) into an inline TO: schema.sql in the inline layout,
# pre-data, one marker line, post-data (the index after the marker), and it restores.
test_promote_from_a_working_database_into_an_inline_profile_keeps_the_layout() {
	setup_repo
	expect_ok git dnadata new-profile seed --inline
	expect_ok git dnadata snapshot seed
	psql_q "$DB" "ALTER TABLE users ADD COLUMN email text; CREATE INDEX users_email ON users (email)"
	expect_ok git dnadata use prod
	expect_ok git dnadata snapshot prod
	expect_ok git dnadata promote-schema prod seed
	assert_contains "$ERR" "(from its working database)"
	local marker='-- dnadata: post-data: constraints, indexes and triggers, loaded after data.sql' f=.dnadata/inline/seed/schema.sql
	assert_eq 1 "$(grep -c "^$marker\$" "$f")"
	assert_eq "-- dnadata: database: encoding=UTF8 lc_collate=C.UTF-8 lc_ctype=C.UTF-8 locale_provider=c" "$(head -1 "$f")"
	assert_contains "$(sed -n "/^$marker\$/,\$p" "$f")" "CREATE INDEX users_email ON public.users USING btree (email);"
	assert_not_contains "$(sed "/^$marker\$/,\$d" "$f")" "CREATE INDEX"
	expect_ok git dnadata restore seed
	assert_eq "1|ann|
2|bob|" "$(psql_q "$DB" "SELECT id, name, email FROM users ORDER BY id")"
	assert_eq "users_email" "$(psql_q "$DB" "SELECT indexname FROM pg_indexes WHERE indexname = 'users_email'")"
}

# A unique index FROM adds that TO's rows break fails in the post-data part, after the rows: TO's data's fault.
test_rows_that_break_a_new_unique_index_are_the_data_s_fault() {
	setup_repo
	psql_q "$DB" "INSERT INTO users (name) VALUES ('ann')"
	expect_ok git dnadata snapshot
	psql_q "$DB" "DELETE FROM users WHERE id = 3"
	snapshot_prod "CREATE UNIQUE INDEX users_name ON users (name)"
	local head
	head=$(git rev-parse HEAD)
	expect_fail 1 git dnadata promote-schema prod
	assert_contains "$ERR" "clean-db's data does not load into prod's schema"
	assert_contains "$ERR" "post-data"
	assert_eq "$head" "$(git rev-parse HEAD)"
	assert_eq "" "$(scratch_left)"
}

run_tests
