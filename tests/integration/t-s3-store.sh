#!/usr/bin/env bash
# t-s3-store.sh: a store in an S3 bucket (s3://bucket/prefix) on the real
# server (Ceph RGW, which checks signatures and payload hashes): a snapshot
# made in one clone restores exactly in a second clone that joins with the
# passphrase; the bucket holds exactly the store's keys, none in plaintext;
# a wrong secret, an unknown access key, a missing bucket and a server that
# is down each end in one clear line, quickly, with nothing changed and no
# credential shown.
# needs: s3
. "$(dirname "$0")/../lib.sh"

MARKER=plaintext-marker-5b1e0c7d
PREFIX=team/store

# An origin clone on a fresh database and bucket $B with one snapshot ($ID);
# $SUM is a checksum of the table's contents.
origin_with_snapshot() {
	s3_env
	B=$(s3_bucket store)
	DB=$(pg_newdb s3)
	new_repo "$T/origin"
	DNADATA_PASSPHRASE="team pass" expect_ok git dnadata init --database "dbname=$DB" --store "s3://$B/$PREFIX"
	assert_contains "$ERR" "created the store s3://$B/$PREFIX"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, '$MARKER ' || md5(i::text) FROM generate_series(1, 20000) i"
	SUM=$(table_sum "$DB")
	expect_ok git dnadata snapshot
	ID=$OUT
	[ ${#ID} = 64 ] || fail "snapshot printed no id: [$OUT]"
}

table_sum() {
	psql_q "$1" "SELECT count(*) || ' ' || md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM t"
}

# A second clone of the origin, joined to the store with the passphrase, on
# its own database $DB2 (holding a table `keep` that a restore would replace).
joined_clone() {
	git clone -q "$T/origin" "$T/clone"
	cd "$T/clone"
	DB2=$(pg_newdb s3clone)
	psql_q "$DB2" "CREATE TABLE keep (x int); INSERT INTO keep VALUES (42)"
	export DNADATA_DATABASE="dbname=$DB2"
	DNADATA_PASSPHRASE="team pass" expect_ok git dnadata init
	assert_contains "$ERR" "joined the store"
}

test_snapshot_restores_exactly_in_a_clone_that_joins_with_the_passphrase() {
	origin_with_snapshot
	joined_clone
	assert_eq "" "$(cached_store_names)" "the clone's cache starts empty"
	expect_ok git dnadata restore
	assert_contains "$ERR" "restored snapshot ${ID:0:12} into database $DB2"
	assert_eq "$SUM" "$(table_sum "$DB2")" "the clone's table differs from the origin's"
	expect_ok git dnadata verify --read-data
}

# The store files this clone's cache holds, by their store names: after a
# snapshot, everything the snapshot wrote went through the cache (loose
# objects today, packs and index files with packs; FORMAT.md §3.1).
cached_store_names() {
	local d
	for d in data packs index snapshots; do
		[ ! -d ".git/dnadata/cache/$d" ] || (cd .git/dnadata/cache && find "$d" -type f ! -name '.*')
	done
}

# What the origin's store must hold: what its cache wrote, the config and the key file.
store_names_from_cache() {
	cached_store_names
	echo config
	s3_ls "$B" "$PREFIX/keys/" | sed "s|^$PREFIX/||"
}

test_bucket_holds_exactly_the_store_keys_and_no_plaintext() {
	origin_with_snapshot
	local keys
	keys=$(s3_ls "$B")
	assert_ne "" "$keys"
	assert_eq "" "$(printf '%s\n' "$keys" | grep -v "^$PREFIX/" || true)" "keys outside the store's prefix"
	assert_eq 1 "$(printf '%s\n' "$keys" | grep -c "^$PREFIX/keys/")" "one passphrase key file"
	assert_eq "$(store_names_from_cache | LC_ALL=C sort)" "$(printf '%s\n' "$keys" | sed "s|^$PREFIX/||")"
	[ "$(printf '%s\n' "$keys" | grep -vc "^$PREFIX/\(config\|keys/.*\|snapshots/.*\)$")" -ge 1 ] ||
		fail "expected objects besides the config, key and manifest: $keys"
	assert_contains "$keys" "$PREFIX/snapshots/$ID"
	# the marker is in the database, so a plaintext copy would show it
	assert_contains "$(psql_q "$DB" "SELECT v FROM t WHERE id = 1")" "$MARKER"
	s3_aws s3 cp --recursive "s3://$B/" "$T/bucket" >/dev/null
	assert_eq "$(printf '%s\n' "$keys" | wc -l)" "$(find "$T/bucket" -type f | wc -l)"
	if grep -rqa "$MARKER" "$T/bucket"; then fail "plaintext in the bucket"; fi
	if grep -rqa "$MARKER" .git/dnadata/cache; then fail "plaintext in the cache"; fi
}

# broken_store_is_refused TEXT [VAR=VALUE...]: (@B@ in TEXT: the bucket) in a joined clone, with the
# environment changed as given, `restore` (which must read the store: the
# clone's cache is empty) fails within seconds with one line containing TEXT,
# no credential, and the clone's database and ref file untouched; so does
# `push` in the origin after a local-only snapshot.
broken_store_is_refused() {
	local text=$1
	shift
	origin_with_snapshot
	text=${text//@B@/$B}
	joined_clone
	local ref before_db head
	ref=$(cat .dnadata/refs/clean)
	head=$(git rev-parse HEAD)
	before_db=$(psql_q "$DB2" "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
	assert_eq keep "$before_db"
	env "$@" timeout 15 git dnadata restore >"$T/.out" 2>"$T/.err" </dev/null && RC=0 || RC=$?
	ERR=$(cat "$T/.err")
	assert_ne 0 "$RC" "restore should fail"
	assert_ne 124 "$RC" "restore did not end within 15 s"
	assert_eq 1 "$(grep -c '^error: ' "$T/.err")" "one error line: $ERR"
	assert_contains "$(grep '^error: ' "$T/.err")" "$text"
	no_credentials_in "$ERR" "$@"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref file changed"
	assert_eq "$head" "$(git rev-parse HEAD)" "a commit was made"
	assert_eq "$before_db" "$(psql_q "$DB2" "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")"
	assert_eq 42 "$(psql_q "$DB2" "SELECT x FROM keep")"
	# push from the origin: the bucket is left as it was
	cd "$T/origin"
	psql_q "$DB" "INSERT INTO t VALUES (0, 'new row')"
	expect_ok git dnadata snapshot --dump-only
	local keys
	keys=$(s3_ls "$B")
	ref=$(cat .dnadata/refs/clean)
	env "$@" timeout 15 git dnadata push >"$T/.out" 2>"$T/.err" </dev/null && RC=0 || RC=$?
	ERR=$(cat "$T/.err")
	assert_ne 0 "$RC" "push should fail"
	assert_ne 124 "$RC" "push did not end within 15 s"
	assert_eq 1 "$(grep -c '^error: ' "$T/.err")" "one error line: $ERR"
	assert_contains "$(grep '^error: ' "$T/.err")" "$text"
	no_credentials_in "$ERR" "$@"
	assert_eq "$ref" "$(cat .dnadata/refs/clean)" "the ref file changed"
	assert_eq "$keys" "$(s3_ls "$B")" "the bucket changed"
}

test_wrong_secret_is_one_line_naming_the_variable() {
	broken_store_is_refused "S3 rejected the signature for bucket @B@ (SignatureDoesNotMatch): check AWS_SECRET_ACCESS_KEY" \
		AWS_SECRET_ACCESS_KEY="${DD_S3_SECRET_KEY%????}Wxyz"
}

test_unknown_access_key_is_one_line_naming_the_variable() {
	broken_store_is_refused "does not know the access key (InvalidAccessKeyId): check AWS_ACCESS_KEY_ID" \
		AWS_ACCESS_KEY_ID=AKIADDUNKNOWNKEY0000
}

test_missing_bucket_is_one_line_naming_it() {
	broken_store_is_refused "bucket no-such-bucket-$$ does not exist (NoSuchBucket) at $DD_S3_ENDPOINT: create it or fix the store URL" \
		DNADATA_STORE="s3://no-such-bucket-$$/$PREFIX"
}

test_server_down_is_one_line_and_quick() {
	local dead
	dead=$(s3_dead_endpoint)
	broken_store_is_refused "cannot reach the S3 store at $dead (connection refused)" AWS_ENDPOINT_URL="$dead"
}

run_tests
