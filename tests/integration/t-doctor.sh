#!/usr/bin/env bash
# t-doctor.sh: `git dnadata doctor` on the real server and real git: a
# healthy setup exits 0 with an "ok" line per piece; each piece broken in
# turn (no key, a garbage / symlinked / unreadable key, a wrong key, the store folder removed, the server on a
# wrong port, a hook removed, a stale hook, a pg_dump older than the
# server, a switch cut short) is named on a "problem:" line with what to
# run, and doctor exits 1.
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db doctor --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')"
}

# expect_problem PIECE-TEXT RUN-TEXT: doctor exits 1 and says so on one problem line.
expect_problem() {
	expect_fail 1 git dnadata doctor
	assert_contains "$OUT" "problem: $1"
	assert_contains "$(printf '%s\n' "$OUT" | grep -F "problem: $1")" " — run: $2"
	assert_contains "$ERR" "error: doctor found"
}

test_doctor_passes_a_healthy_setup() {
	setup_repo
	expect_ok git dnadata snapshot
	expect_ok git dnadata doctor
	local piece
	for piece in "configuration: .dnadata/profiles.ini parses; store file://$T/store" "key: " \
		"store: file://$T/store reachable; the key opens it" "PostgreSQL: server reachable, version" \
		"pg_dump: " "pg_restore: " "psql: " "git hooks: 4 installed and current" "disk: " \
		"working database $DB: record consistent, holds snapshot"; do
		assert_contains "$OUT" "ok $piece"
	done
	assert_not_contains "$OUT" "problem"
	assert_eq "" "$ERR"
}

test_doctor_names_a_missing_key() {
	setup_repo
	mv .git/dnadata/key "$T/key.saved"
	expect_problem "key: no store key on this machine" "git dnadata key import"
	# the store is not probed without a key: one problem, not two
	assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '^problem:')"
}

# A key file every command refuses must not pass as "ok": doctor reads it as they do.
test_doctor_names_a_garbage_key() {
	setup_repo
	echo garbage >.git/dnadata/key
	chmod 600 .git/dnadata/key
	expect_fail 1 git dnadata snapshot
	expect_problem "key: .git/dnadata/key cannot be used: " "mv .git/dnadata/key .git/dnadata/key.bad, then git dnadata key import FILE"
	assert_contains "$OUT" "not a git-dnadata key file"
	assert_not_contains "$OUT" "ok key"
	assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '^problem:')"
}

test_doctor_names_a_symlinked_key() {
	setup_repo
	mv .git/dnadata/key "$T/key.real"
	ln -s "$T/key.real" .git/dnadata/key
	expect_fail 1 git dnadata snapshot
	expect_problem "key: .git/dnadata/key is a symbolic link" "mv .git/dnadata/key .git/dnadata/key.bad, then git dnadata key import FILE"
	assert_not_contains "$OUT" "ok key"
	# what it says to run works: doctor passes after it
	expect_ok mv .git/dnadata/key .git/dnadata/key.bad
	expect_ok git dnadata key import "$T/key.real"
	expect_ok git dnadata doctor
}

test_doctor_names_an_unreadable_key() {
	setup_repo
	chmod 000 .git/dnadata/key
	no_dac git dnadata snapshot </dev/null >/dev/null 2>&1 && fail "snapshot read a mode 000 key"
	run no_dac git dnadata doctor
	assert_eq 1 "$RC"
	assert_contains "$OUT" "problem: key: .git/dnadata/key cannot be used: "
	assert_contains "$OUT" " — run: chmod 600 .git/dnadata/key (as its owner), or mv .git/dnadata/key"
	assert_not_contains "$OUT" "ok key"
}

test_doctor_names_a_wrong_key() {
	setup_repo
	# another clone's key, from a store of its own
	new_repo "$T/other"
	expect_ok git dnadata init --database "dbname=$DB" --store "file://$T/other-store"
	cd "$T/repo"
	cp "$T/other/.git/dnadata/key" .git/dnadata/key
	expect_problem "key: the wrong key for the store" "git dnadata key import --passphrase"
	assert_contains "$OUT" "belongs to another key"
}

test_doctor_names_a_store_folder_removed() {
	setup_repo
	rm -rf "$T/store"
	expect_problem "store: " "fix [store] url"
	assert_contains "$OUT" "file://$T/store"
}

test_doctor_names_a_server_on_a_wrong_port() {
	setup_repo
	local port
	port=$(pg_free_port)
	DNADATA_DATABASE="host=$PGHOST port=$port dbname=$DB" expect_fail 1 git dnadata doctor
	assert_contains "$OUT" "problem: PostgreSQL: "
	assert_contains "$OUT" "port $port"
	assert_contains "$OUT" " — run: start PostgreSQL"
	# the client programs are still found, their fit to the server left open
	assert_contains "$OUT" "ok pg_dump: "
	assert_contains "$OUT" "the server's version is unknown"
}

test_doctor_names_a_removed_hook() {
	setup_repo
	rm .git/hooks/post-checkout
	expect_problem "git hook post-checkout: missing" "git dnadata install-hooks"
	expect_ok git dnadata install-hooks
	expect_ok git dnadata doctor
}

test_doctor_names_a_stale_hook() {
	setup_repo
	# a copy an older git-dnadata wrote: our marker line, other text
	printf '\n# written by an older version\n' >>.git/hooks/pre-push
	expect_problem "git hook pre-push: a stale copy from another version of git-dnadata" "git dnadata install-hooks"
	expect_ok git dnadata install-hooks
	expect_ok git dnadata doctor
}

test_doctor_names_a_hook_in_core_hooks_path() {
	setup_repo
	git config core.hooksPath .husky
	expect_problem "git hook post-checkout: missing from $T/repo/.husky" "git dnadata install-hooks"
	expect_ok git dnadata install-hooks
	expect_ok git dnadata doctor
	assert_contains "$OUT" "ok git hooks: 4 installed and current in $T/repo/.husky (core.hooksPath)"
}

test_doctor_names_a_pg_dump_older_than_the_server() {
	setup_repo
	local major
	major=$(psql_q postgres "SHOW server_version_num")
	major=$((major / 10000))
	mkdir -p "$T/oldbin"
	printf '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n' >"$T/oldbin/pg_dump"
	chmod +x "$T/oldbin/pg_dump"
	ln -s "$DD_PG_BINDIR/pg_restore" "$T/oldbin/pg_restore"
	ln -s "$DD_PG_BINDIR/psql" "$T/oldbin/psql"
	DNADATA_PG_BINDIR=$T/oldbin expect_fail 1 git dnadata doctor
	assert_contains "$OUT" "problem: pg_dump: pg_dump 9 in DNADATA_PG_BINDIR ($T/oldbin) is older than the server (PostgreSQL $major)"
	assert_contains "$OUT" "(postgresql-client-$major)"
	assert_contains "$OUT" "ok pg_restore: "
	assert_contains "$OUT" "ok psql: "
	assert_eq 1 "$(printf '%s\n' "$OUT" | grep -c '^problem:')"
}

test_doctor_names_a_switch_cut_short() {
	setup_repo
	expect_ok git dnadata snapshot
	local dir
	dir=$(records_dir)
	# the journal a switch writes before its rename transaction, as a kill leaves it
	printf 'source %s\n' "${DB}__dnadata_tmpl_x" >"$dir/switch"
	expect_problem "working database $DB: a switch was cut short" "git dnadata restore"
}

test_doctor_never_prints_the_key_or_a_password() {
	setup_repo
	local url="postgresql://$DD_TEST_PW_USER:$DD_TEST_PW_PASSWORD@127.0.0.1:$PGPORT/$DB"
	DNADATA_DATABASE=$url run git dnadata doctor
	assert_not_contains "$OUT$ERR" "$DD_TEST_PW_PASSWORD"
	local line
	while read -r line; do
		[ ${#line} -lt 16 ] || assert_not_contains "$OUT$ERR" "$line"
	done <.git/dnadata/key
}

test_doctor_names_missing_s3_credentials_without_printing_any() {
	setup_repo
	# no AWS variables, and a HOME without ~/.aws: nothing to find
	DNADATA_STORE=s3://dd-doctor-bucket/x run env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		-u AWS_SESSION_TOKEN -u AWS_PROFILE -u AWS_SHARED_CREDENTIALS_FILE -u AWS_CONFIG_FILE git dnadata doctor
	assert_eq 1 "$RC"
	assert_contains "$OUT" "problem: S3 credentials: "
	assert_contains "$OUT" " — run: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or aws configure)"
	# without credentials the store is not asked
	assert_not_contains "$OUT" "store: s3://"
	# a half pair is named, its value never shown
	DNADATA_STORE=s3://dd-doctor-bucket/x AWS_ACCESS_KEY_ID=AKIADOCTORTESTKEY run env -u AWS_SECRET_ACCESS_KEY \
		git dnadata doctor
	assert_eq 1 "$RC"
	assert_contains "$OUT" "problem: S3 credentials: "
	assert_not_contains "$OUT$ERR" "AKIADOCTORTESTKEY"
}

# PATH naming one program twice (/bin and /usr/bin on a merged /usr, where Debian's
# pg_dump is a Perl wrapper) must not run it twice: doctor and every snapshot pay for each run.
test_each_client_program_is_asked_its_version_once() {
	setup_repo
	local tool
	mkdir "$T/shim"
	for tool in pg_dump pg_restore psql; do
		printf '#!/bin/sh\necho "$0" >>"%s/calls"\nexec "%s/%s" "$@"\n' "$T" "$DD_PG_BINDIR" "$tool" >"$T/shim/$tool"
		chmod +x "$T/shim/$tool"
	done
	ln -s "$T/shim" "$T/shim-again"
	PATH="$T/shim:$T/shim-again:$PATH" expect_ok git dnadata doctor
	assert_eq 3 "$(wc -l <"$T/calls")" "one --version per program"
	rm "$T/calls"
	PATH="$T/shim:$T/shim-again:$PATH" expect_ok git dnadata snapshot
	assert_eq "$T/shim/pg_dump" "$(sort -u "$T/calls")"
	assert_eq 3 "$(wc -l <"$T/calls")" "one --version, then the two schema sections"
}

run_tests
