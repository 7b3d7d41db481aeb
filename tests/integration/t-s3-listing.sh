#!/usr/bin/env bash
# t-s3-listing.sh: listings (docs/FORMAT.md §6.1) and private snapshots
# (§3.5) against the real S3 server (Ceph RGW), driven by listing-tool
# (tests/tools/listing-tool.c) until media folders reach the CLI: a snapshot
# whose listing names 300 files' contents, written in one clone's cache
# and pushed, is fetched into a second clone (two rounds: the listing, then
# what its entries name) and reads back exactly there offline, and verify
# --read-data passes on the bucket; a private snapshot written online puts
# nothing in the bucket.
# needs: s3
. "$(dirname "$0")/../lib.sh"

tool() {
	"$DD_BUILDDIR/listing-tool" "$@"
}

# bucket_count BUCKET: how many objects the bucket holds.
bucket_count() {
	s3_aws s3 ls --recursive "s3://$1/" | wc -l
}

test_listing_is_pushed_fetched_and_verified_over_s3() {
	s3_env
	local b url id
	b=$(s3_bucket listing)
	url="s3://$b/store"
	expect_ok tool "$url" "$T/a" setup
	expect_ok tool "$url" "$T/a" write 300
	id=$OUT
	[ ${#id} = 64 ] || fail "write printed no id: [$OUT]"
	mkdir -p "$T/b"
	cp "$T/a/key" "$T/b/key"
	chmod 600 "$T/b/key"
	expect_ok tool "$url" "$T/b" setup
	expect_ok tool "$url" "$T/b" fetch "$id"
	# offline: every entry must have come over (300 files, 6 folders)
	expect_ok tool "$url" "$T/b" check "$id"
	assert_contains "$OUT" "306 entries, "
	expect_ok tool "$url" "$T/b" verify "$id" read-data
	assert_contains "$ERR" "all present and authentic"
}

test_private_snapshot_written_online_puts_nothing_in_the_bucket() {
	s3_env
	local b url before id
	b=$(s3_bucket private)
	url="s3://$b/store"
	expect_ok tool "$url" "$T/a" setup
	before=$(bucket_count "$b")
	expect_ok tool "$url" "$T/a" write-private 60
	id=$OUT
	assert_eq "$before" "$(bucket_count "$b")" "a private snapshot reached the bucket"
	assert_file "$T/a/cache/private/$id"
	expect_ok tool "$url" "$T/a" check "$id"
	assert_contains "$OUT" "62 entries, "
}

run_tests
