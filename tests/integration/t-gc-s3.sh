#!/usr/bin/env bash
# t-gc-s3.sh: `git dnadata gc` with an S3 store (Ceph RGW), where "the store
# holds it" comes from the clone's known-objects record, never from a
# request: what a snapshot uploaded (and a fetch found) may go, what waits
# for a push never does, and gc behaves the same with the server out of
# reach. Restores then read what gc removed from the bucket.
# needs: s3
. "$(dirname "$0")/../lib.sh"

CACHE=.git/dnadata/cache

cache_files() {
	(cd "$CACHE" && find packs data -type f 2>/dev/null | sort)
}

# the rows of t as one hash
table_hash() {
	psql_q "$DB" "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t"
}

setup_repo() {
	s3_env
	B=$(s3_bucket gc)
	DB=$(pg_newdb gcs3)
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 40000) i"
	new_repo
	expect_ok git dnadata init --database "dbname=$DB" --store "s3://$B/data"
}

test_uploaded_packs_go_pending_ones_stay_and_gc_asks_the_server_nothing() {
	setup_repo
	expect_ok git dnadata snapshot
	local want
	want=$(table_hash)
	local uploaded
	uploaded=$(cd "$CACHE" && find packs -type f | sort)
	[ -n "$uploaded" ] || fail "the snapshot wrote no pack"
	# a second snapshot that stays in the cache (dump only): its packs wait for a push
	psql_q "$DB" "UPDATE t SET v = 'later' WHERE id <= 20000"
	expect_ok git dnadata snapshot --dump-only
	local pending
	pending=$(comm -13 <(printf '%s\n' "$uploaded") <(cd "$CACHE" && find packs -type f | sort))
	[ -n "$pending" ] || fail "the dump-only snapshot wrote no pack of its own"
	printf '[database]\ncache_budget = 0\n' >.git/dnadata/config.ini
	# with the server out of reach: gc asks it nothing, so nothing changes in what it decides
	AWS_ENDPOINT_URL=$(s3_dead_endpoint) expect_ok git dnadata gc --dry-run -v
	local dry=$OUT
	expect_ok git dnadata gc -v
	assert_eq "$(printf '%s\n' "$dry" | sed 's/^would remove /removed /; s/^gc: would free /gc: freed /')" "$OUT"
	# exactly the uploaded packs went; the pending ones stayed
	assert_eq "$pending" "$(cache_files)"
	assert_eq "$uploaded" "$(printf '%s\n' "$OUT" | sed -n 's/^    //p' | sort)"
	# the push still has what it needs; the first snapshot is read back from the bucket
	expect_ok git dnadata push
	expect_ok git dnadata verify --read-data
	psql_q "$DB" "TRUNCATE t"
	expect_ok git dnadata restore --force --at HEAD~1
	assert_eq "$want" "$(table_hash)"
}

test_objects_a_clone_fetched_go_and_come_back() {
	setup_repo
	expect_ok git dnadata snapshot
	local want origin=$PWD
	want=$(table_hash)
	install -m 600 .git/dnadata/key "$T/key"
	git clone -q "$origin" "$T/b"
	cd "$T/b"
	expect_ok git dnadata key import "$T/key"
	expect_ok git dnadata init
	expect_ok git dnadata fetch
	[ -n "$(cache_files)" ] || fail "the fetch left nothing in the cache"
	printf '[database]\ncache_budget = 0\n' >.git/dnadata/config.ini
	expect_ok git dnadata gc
	assert_contains "$OUT" "gc: freed "
	assert_eq "" "$(cache_files)"
	psql_q "$DB" "TRUNCATE t"
	expect_ok git dnadata restore --force
	assert_eq "$want" "$(table_hash)"
}

run_tests
