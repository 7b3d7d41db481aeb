#!/usr/bin/env bash
# t-pg-errors.sh: every PostgreSQL-side failure of snapshot and restore is
# one clear line (exit 1) and changes nothing: no commit, no ref change, no
# database touched. Passwords never appear in any output.
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db err
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"
	HEAD0=$(git rev-parse HEAD)
}

assert_nothing_changed() {
	assert_eq "$HEAD0" "$(git rev-parse HEAD)" "no commit"
	assert_eq "" "$(git status --porcelain)" "no file changed"
	assert_eq "" "$(psql_q postgres "SELECT datname FROM pg_database WHERE datname LIKE '${DB}\_\_%'")" "no copy or stash"
}

test_server_unreachable() {
	setup_repo
	DNADATA_DATABASE="host=127.0.0.1 port=1 dbname=$DB" expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "error: cannot connect to PostgreSQL (host 127.0.0.1 port 1 user postgres database $DB)"
	assert_contains "$ERR" "hint: is the server running?"
	assert_nothing_changed
	expect_ok git dnadata snapshot
	HEAD0=$(git rev-parse HEAD)
	DNADATA_DATABASE="host=127.0.0.1 port=1 dbname=$DB" expect_fail 1 git dnadata restore --force
	assert_contains "$ERR" "cannot connect to PostgreSQL (host 127.0.0.1 port 1"
	assert_nothing_changed
}

test_authentication_failure_names_the_user_never_the_password() {
	setup_repo
	local url="postgresql://$DD_TEST_PW_USER:not-the-password-$$@127.0.0.1:$PGPORT/$DB"
	DNADATA_DATABASE=$url expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "host 127.0.0.1 port $PGPORT user $DD_TEST_PW_USER database $DB"
	assert_contains "$ERR" "password authentication failed"
	assert_not_contains "$ERR$OUT" "not-the-password-$$"
	assert_nothing_changed
	# the right password works, for pg_dump too (it gets it by environment, not argv)
	url="postgresql://$DD_TEST_PW_USER:$DD_TEST_PW_PASSWORD@127.0.0.1:$PGPORT/$DB"
	DNADATA_DATABASE=$url expect_ok git dnadata snapshot
	assert_not_contains "$ERR$OUT" "$DD_TEST_PW_PASSWORD"
	assert_not_contains "$(cat .dnadata/refs/clean)" "$DD_TEST_PW_PASSWORD"
	DNADATA_DATABASE=$url expect_ok git dnadata restore --force
	assert_not_contains "$ERR$OUT" "$DD_TEST_PW_PASSWORD"
	assert_not_contains "$(cat .git/dnadata/pg/*/working)" "$DD_TEST_PW_PASSWORD"
}

test_no_suitable_pg_dump() {
	setup_repo
	DNADATA_PG_BINDIR=/nonexistent expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "no usable pg_dump in DNADATA_PG_BINDIR (/nonexistent)"
	assert_contains "$ERR" "hint: point DNADATA_PG_BINDIR at the bin directory of PostgreSQL 15 or newer"
	assert_nothing_changed
	# an old one: refused by version, and the hint says what to install
	mkdir -p "$T/oldbin"
	printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n' >"$T/oldbin/pg_dump"
	chmod +x "$T/oldbin/pg_dump"
	DNADATA_PG_BINDIR=$T/oldbin expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "pg_dump 9 in DNADATA_PG_BINDIR ($T/oldbin) is older than the server (PostgreSQL 15)"
	assert_nothing_changed
}

test_permission_denied_on_a_table() {
	setup_repo
	psql_q "$DB" "CREATE ROLE dd_unpriv_$$ LOGIN; CREATE TABLE secret (id int PRIMARY KEY);
		GRANT SELECT ON t TO dd_unpriv_$$; REVOKE ALL ON secret FROM PUBLIC"
	DNADATA_DATABASE="dbname=$DB user=dd_unpriv_$$" expect_fail 1 git dnadata snapshot
	assert_contains "$ERR" "permission denied for table secret"
	assert_contains "$ERR" "hint: grant this user SELECT on every table, or leave tables out with exclude_tables"
	assert_nothing_changed
	psql_q postgres "DROP OWNED BY dd_unpriv_$$ CASCADE" -d "$DB" >/dev/null 2>&1 || true
}

# The cache lives on a 1 MiB tmpfs (mounted directly as root, else inside a
# user namespace), so writing the snapshot runs out of space.
test_disk_full_while_writing_the_cache() {
	setup_repo
	psql_q "$DB" "CREATE EXTENSION IF NOT EXISTS pgcrypto;
		CREATE TABLE noise (id int PRIMARY KEY, b bytea);
		INSERT INTO noise SELECT i, gen_random_bytes(1000) FROM generate_series(1, 4000) i"
	local cache=.git/dnadata/cache
	mkdir -p "$cache"
	local run=()
	if [ "$(id -u)" = 0 ]; then
		mount -t tmpfs -o size=1m tmpfs "$cache" || fail "cannot mount a tmpfs (needed for this test)"
		trap 'umount "$T/repo/.git/dnadata/cache" 2>/dev/null' EXIT
	else
		run=(unshare -rm sh -c 'mount -t tmpfs -o size=1m tmpfs .git/dnadata/cache && exec "$@"' sh)
		unshare -rm true 2>/dev/null || fail "neither root nor user namespaces: cannot make a small filesystem"
	fi
	expect_fail 1 "${run[@]}" git dnadata snapshot
	assert_contains "$ERR" "disk full"
	assert_nothing_changed
	assert_no_file .dnadata/refs/clean
}

test_ref_naming_a_snapshot_that_is_nowhere() {
	setup_repo
	local id
	id=$(printf '%064d' 0 | tr 0 a)
	printf 'dnadata-ref 1\nsnapshot %s\n' "$id" >.dnadata/refs/clean
	git add .dnadata/refs/clean && git commit -q -m "a ref from elsewhere"
	HEAD0=$(git rev-parse HEAD)
	expect_fail 1 git dnadata restore
	assert_contains "$ERR" "snapshot aaaaaaaaaaaa (named by .dnadata/refs/clean) is in neither the local cache nor the store"
	assert_contains "$ERR" "hint: run \`git dnadata push\` on the machine that took it"
	assert_eq 1 "$(psql_q "$DB" "SELECT count(*) FROM t")"
	assert_nothing_changed
}

run_tests
