#!/usr/bin/env bash
# t-store.sh: the store through the real binary: init creating and adopting
# a shared file:// store, key export/import/passwd between clones, wrong
# keys and passphrases, loose key permissions, and verify naming what is
# missing.
. "$(dirname "$0")/../lib.sh"

# A repository set up with a shared store at $T/shared and a passphrase; then a clone of it in $T/clone.
shared_store_and_clone() {
	new_repo "$T/origin"
	DNADATA_PASSPHRASE="first pass" expect_ok git dnadata init --store "file://$T/shared"
	assert_contains "$ERR" "created the store file://$T/shared"
	assert_file "$T/shared/config"
	assert_eq 600 "$(stat -c %a .git/dnadata/key)"
	git clone -q "$T/origin" "$T/clone"
	cd "$T/clone"
}

test_init_creates_a_store_key_and_a_passphrase_key_file() {
	shared_store_and_clone
	assert_eq 1 "$(ls "$T/shared/keys" | wc -l)"
	assert_eq 256 "$(ls "$T/shared/packs" | wc -l)"
	assert_file "$T/shared/index"
}

test_clone_joins_the_store_with_the_passphrase() {
	shared_store_and_clone
	DNADATA_PASSPHRASE="first pass" expect_ok git dnadata init
	assert_contains "$ERR" "joined the store"
	cmp -s .git/dnadata/key "$T/origin/.git/dnadata/key" || fail "the clone has a different key"
	expect_ok git dnadata verify
}

test_clone_without_passphrase_is_told_how_to_import() {
	shared_store_and_clone
	expect_fail 1 git dnadata init
	assert_contains "$ERR" "belongs to another key (id "
	assert_contains "$ERR" "hint: import it with \`git dnadata key import --passphrase\`"
	assert_not_contains "$ERR" "corrupt"
}

test_wrong_passphrase_is_named() {
	shared_store_and_clone
	DNADATA_PASSPHRASE="nope" expect_fail 1 git dnadata init
	assert_contains "$ERR" "wrong passphrase"
	assert_not_contains "$ERR" "nope"
	assert_no_file .git/dnadata/key
}

test_key_export_and_import_move_the_key() {
	shared_store_and_clone
	cd "$T/origin"
	expect_ok git dnadata key export "$T/exported.key"
	assert_eq 600 "$(stat -c %a "$T/exported.key")"
	expect_fail 1 git dnadata key export "$T/exported.key"
	cd "$T/clone"
	mkdir -p .git/dnadata && chmod 700 .git/dnadata
	expect_ok git dnadata key import "$T/exported.key"
	cmp -s .git/dnadata/key "$T/origin/.git/dnadata/key" || fail "imported key differs"
	expect_ok git dnadata verify --all
}

test_key_import_passphrase_and_passwd() {
	shared_store_and_clone
	mkdir -p .git/dnadata && chmod 700 .git/dnadata
	DNADATA_PASSPHRASE="wrong" expect_fail 1 git dnadata key import --passphrase
	assert_contains "$ERR" "wrong passphrase"
	DNADATA_PASSPHRASE="first pass" expect_ok git dnadata key import --passphrase
	DNADATA_PASSPHRASE="first pass" DNADATA_NEW_PASSPHRASE="second pass" expect_ok git dnadata key passwd
	assert_eq 1 "$(ls "$T/shared/keys" | wc -l)"
	rm .git/dnadata/key
	DNADATA_PASSPHRASE="first pass" expect_fail 1 git dnadata key import --passphrase
	DNADATA_PASSPHRASE="second pass" expect_ok git dnadata key import --passphrase
	# no passphrase on the command line, ever
	expect_fail 2 git dnadata key import --passphrase=secret
}

test_key_readable_by_others_is_refused() {
	shared_store_and_clone
	cd "$T/origin"
	chmod 644 .git/dnadata/key
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "readable by other users"
	assert_contains "$ERR" "hint: chmod 600"
}

test_verify_names_a_missing_snapshot_and_fails() {
	shared_store_and_clone
	cd "$T/origin"
	expect_ok git dnadata verify
	assert_contains "$ERR" "no profile has a snapshot yet"
	printf 'dnadata-ref 1\nsnapshot %s\n' "$(printf 'ab%.0s' $(seq 32))" > .dnadata/refs/clean
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "snapshot abababababab"
	assert_contains "$ERR" "is missing from file://$T/shared"
}

run_tests
