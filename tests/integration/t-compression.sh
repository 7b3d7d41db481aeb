#!/usr/bin/env bash
# t-compression.sh: the store's compression setting through the command line
# (docs/FORMAT.md §3.3): `init --compression` records it in the new store's
# config, a snapshot taken with `none` or `zstd:1` restores exactly, a bad
# value is refused in one line before anything is created, and an existing
# store keeps its own.
. "$(dirname "$0")/../lib.sh"

# Every row of t, in key order, as text.
rows() { psql_q "$DB" "SELECT id, v, b FROM t ORDER BY id"; }

snapshot_and_restore_exactly() { # COMPRESSION
	repo_with_db comp --store "file://$T/store-$1" --compression "$1"
	assert_contains "$ERR" "compression $1"
	assert_contains "$(cat "$T/store-$1/config")" $'\n'"compression $1"$'\n'
	# text that compresses well, and bytes that do not
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text, b bytea);
		INSERT INTO t SELECT i, repeat('row ' || i || ' ', 50), decode(md5(i::text) || md5((i * 7)::text), 'hex')
		FROM generate_series(1, 20000) i"
	local before
	before=$(rows | sha256sum)
	expect_ok git dnadata snapshot
	psql_q "$DB" "UPDATE t SET v = 'changed' WHERE id % 3 = 0; DELETE FROM t WHERE id > 15000"
	expect_ok git dnadata restore --force
	assert_eq "$before" "$(rows | sha256sum)" "the restored rows"
	expect_ok git dnadata verify --read-data
}

test_a_store_made_with_none_restores_exactly() {
	snapshot_and_restore_exactly none
	# nothing compressed: the packs hold at least the COPY text of the table
	local packed
	packed=$(find "$T/store-none/packs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
	[ "$packed" -gt 4000000 ] || fail "packs of a 'none' store hold $packed bytes: compressed?"
}

test_a_store_made_with_zstd1_restores_exactly() {
	snapshot_and_restore_exactly zstd:1
	local packed
	packed=$(find "$T/store-zstd:1/packs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
	[ "$packed" -lt 2000000 ] || fail "packs of a 'zstd:1' store hold $packed bytes: not compressed?"
}

test_a_bad_compression_is_refused_before_anything_is_created() {
	local bad
	for bad in zstd:0 zstd:20 zstd:-8 zstd:01 lz4 'zstd:1 ' ''; do
		new_repo "$T/repo-bad"
		expect_fail 1 git dnadata init --store "file://$T/store-bad" --compression "$bad"
		assert_contains "$ERR" "error: --compression: not a compression setting (none, or zstd:N with N from -7 to 19, not 0)"
		assert_no_file .dnadata
		assert_no_file .git/dnadata
		assert_no_file "$T/store-bad"
		cd "$T"
		rm -rf "$T/repo-bad"
	done
}

test_an_existing_store_keeps_its_compression() {
	new_repo "$T/one"
	expect_ok git dnadata init --store "file://$T/shared" --compression none
	local config
	config=$(cat "$T/shared/config")
	# a second repository on the same store (same key) asks for another level: the store keeps its own
	new_repo "$T/two"
	mkdir -p .git/dnadata && cp "$T/one/.git/dnadata/key" .git/dnadata/key
	expect_ok git dnadata init --store "file://$T/shared" --compression zstd:5
	assert_contains "$ERR" "keeps its compression (none)"
	assert_eq "$config" "$(cat "$T/shared/config")"
}

run_tests
