#!/usr/bin/env bash
# t-s3-repair.sh: damage on either side of an S3 store is never made
# permanent and the repair the messages suggest works: a cache pack damaged
# on disk is refused by push (not stored for good under create-only); a
# pack damaged in the bucket is named by `verify --read-data`, which makes
# the clone forget what it recorded, and after deleting it as the hint says,
# `push --check` puts the good copy back from the clone that has it.
# needs: s3
. "$(dirname "$0")/../lib.sh"

PREFIX=repair

# A clone on a fresh database and bucket $B.
repo_on_bucket() {
	s3_env
	B=$(s3_bucket repair)
	DB=$(pg_newdb s3repair)
	new_repo "$T/origin"
	expect_ok git dnadata init --database "dbname=$DB" --store "s3://$B/$PREFIX"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 20000) i"
}

# The bucket's pack keys (without the prefix).
bucket_packs() {
	s3_ls "$B" "$PREFIX/packs/" | sed "s|^$PREFIX/||"
}

test_push_refuses_a_cache_pack_damaged_on_disk() {
	repo_on_bucket
	expect_ok git dnadata snapshot --dump-only
	local pack
	pack=$(cd .git/dnadata/cache && find packs -type f ! -name '.*' | head -n 1)
	[ -n "$pack" ] || fail "the snapshot wrote no pack to the cache"
	chmod u+w ".git/dnadata/cache/$pack"
	flip_byte ".git/dnadata/cache/$pack" 100
	expect_fail 1 git dnadata push
	assert_eq 1 "$(grep -c '^error: ' <<<"$ERR")" "one error line: $ERR"
	assert_contains "$ERR" "error: the local cache copy of $pack is damaged (its bytes do not match its name)"
	assert_contains "$ERR" "nothing was sent"
	assert_contains "$ERR" "remove $PWD/.git/dnadata/cache/$pack from the cache"
	assert_eq "" "$(bucket_packs)" "a pack reached the bucket"
	assert_eq "" "$(s3_ls "$B" "$PREFIX/snapshots/")" "a manifest reached the bucket"
}

test_pack_damaged_in_the_bucket_is_repaired_by_the_hinted_push_check() {
	repo_on_bucket
	expect_ok git dnadata snapshot
	local pack record
	pack=$(bucket_packs | head -n 1)
	[ -n "$pack" ] || fail "no pack in the bucket"
	record=$(ls .git/dnadata/cache/known-objects-*)
	# the bucket's copy is damaged (same key, one byte changed)
	s3_aws s3 cp "s3://$B/$PREFIX/$pack" "$T/pack" >/dev/null
	flip_byte "$T/pack" 100
	s3_aws s3 cp "$T/pack" "s3://$B/$PREFIX/$pack" >/dev/null
	expect_fail 1 git dnadata verify --read-data
	assert_contains "$ERR" "its pack $pack is damaged (its SHA-256 does not match its name)"
	assert_contains "$ERR" "then run \`git dnadata push --check\` where a cache has good copies"
	assert_no_file "$record"
	# deleted as the hint says; a plain push trusts the store's manifest, --check puts the pack back
	s3_aws s3 rm "s3://$B/$PREFIX/$pack" >/dev/null
	expect_ok git dnadata push
	assert_contains "$ERR" "push: nothing to transfer"
	expect_ok git dnadata push --check
	assert_contains "$ERR" "push: sent 1 file"
	assert_contains "$(bucket_packs)" "$pack"
	expect_ok git dnadata verify --read-data
	# and the record is back: a plain push asks about nothing but the config
	expect_ok git dnadata push
	assert_contains "$ERR" "push: nothing to transfer (1 snapshot; 1 file already there; 1 request)"
}

run_tests
