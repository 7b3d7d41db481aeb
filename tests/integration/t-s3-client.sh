#!/usr/bin/env bash
# t-s3-client.sh: the s3:// backend on the real server (Ceph RGW), driven by
# backend-tool (tests/tools/backend-tool.c) for what the CLI does not reach yet: multipart
# uploads in bounded memory and their resume after kill -9, paginated
# listings and batch deletes, ranged reads, and exact data through the fault
# proxy (resets, 503 SlowDown, truncated bodies).
# needs: s3
. "$(dirname "$0")/../lib.sh"

MIB=1048576

tool() {
	"$DD_BUILDDIR/backend-tool" "$@"
}

# peak_kib: the peak RSS the tool reported in $T/.err
peak_kib() {
	sed -n 's/^peak-rss-kib //p' "$T/.err" | tail -n 1
}

test_multipart_upload_round_trips_exactly_in_bounded_memory() {
	s3_env
	local b
	b=$(s3_bucket mpu)
	head -c $((96 * MIB + 4321)) /dev/urandom >big
	# under packs/: a whole GET is bounded by the name's kind, and no data/ object is this large
	DD_TOOL_PART_SIZE=$((5 * MIB)) DD_TOOL_TRANSFERS=4 DD_TOOL_VERBOSE=1 expect_ok tool "s3://$b/pre" put-file packs/big "$T/big"
	assert_eq created "$OUT"
	assert_contains "$ERR" "uploaded pre/packs/big in 20 parts (0 bytes resumed)"
	# the file is 96 MiB: a whole-file buffer would show (AddressSanitizer's
	# shadow memory and quarantine add tens of MiB of their own)
	local limit=40
	grep -q __asan_init "$DD_BUILDDIR/backend-tool" && limit=80
	[ "$(peak_kib)" -lt $((limit * 1024)) ] || fail "peak RSS $(peak_kib) KiB for a 96 MiB upload (limit $limit MiB)"
	assert_no_file "$T/.big.s3-upload"
	s3_aws s3 cp "s3://$b/pre/packs/big" back >/dev/null
	cmp big back
	assert_eq "" "$(s3_aws s3api list-multipart-uploads --bucket "$b" --query 'Uploads[].UploadId' --output text | grep -v None || true)"
	# create-only: a second upload finds it there (HEAD first) and sends nothing
	DD_TOOL_PART_SIZE=$((5 * MIB)) expect_ok tool "s3://$b/pre" put-file packs/big "$T/big"
	assert_eq exists "$OUT"
	# a ranged read across a part boundary, and a whole read
	expect_ok tool "s3://$b/pre" get-range packs/big $((5 * MIB - 10)) 20 range
	cmp range <(tail -c +$((5 * MIB - 9)) big | head -c 20)
	expect_ok tool "s3://$b/pre" get packs/big whole
	cmp big whole
	expect_fail 1 tool "s3://$b/pre" get-range packs/big $((96 * MIB)) 5000 range
	assert_contains "$ERR" "pre/packs/big in bucket $b is shorter"
	# streamed into a file (how fetch brings whole packs): exact, in the same bounded memory, over a longer file
	head -c 5000 /dev/urandom >streamed
	expect_ok tool "s3://$b/pre" get-file packs/big "$T/streamed"
	assert_eq $((96 * MIB + 4321)) "$OUT"
	cmp big streamed
	[ "$(peak_kib)" -lt $((limit * 1024)) ] || fail "peak RSS $(peak_kib) KiB for a 96 MiB streamed read (limit $limit MiB)"
}

test_interrupted_multipart_upload_resumes_and_skips_sent_parts() {
	s3_env
	local b
	b=$(s3_bucket resume)
	head -c $((40 * MIB)) /dev/urandom >big
	# killed where it stops itself once its second part is recorded (a failpoint: no race with a poll)
	s3_proxy_start 1.0 3 delay 0.3
	DD_TOOL_PART_SIZE=$((5 * MIB)) DD_TOOL_TRANSFERS=1 start_stopped_at s3-part-2-recorded \
		"$DD_BUILDDIR/backend-tool" "s3://$b" put-file data/big "$T/big"
	kill -9 "$STOPPED_PID"
	wait "$STOPPED_PID" 2>/dev/null || true
	assert_eq 2 "$(grep -c '^part ' .big.s3-upload)" "two parts recorded: $(cat .big.s3-upload)"
	assert_eq "" "$(s3_ls "$b")" "nothing completed yet"
	s3_proxy_stop >/dev/null
	unset DD_S3_PROXY_ENDPOINT
	s3_env
	DD_TOOL_PART_SIZE=$((5 * MIB)) DD_TOOL_VERBOSE=1 expect_ok tool "s3://$b" put-file data/big "$T/big"
	assert_eq created "$OUT"
	local resumed
	resumed=$(sed -n 's/.*uploaded data\/big in 8 parts (\([0-9]*\) bytes resumed).*/\1/p' <<<"$ERR")
	[ -n "$resumed" ] && [ "$resumed" -ge $((10 * MIB)) ] || fail "expected at least 2 parts resumed: $ERR"
	assert_no_file .big.s3-upload
	s3_aws s3 cp "s3://$b/data/big" back >/dev/null
	cmp big back
}

# A pack is named by the SHA-256 of its bytes: that name is the payload hash sent, so the server itself
# refuses other bytes; above the part size the whole file is checked before an upload is created.
test_a_pack_whose_bytes_do_not_match_its_name_is_refused_and_nothing_is_stored() {
	s3_env
	local b sum small big name
	b=$(s3_bucket packs)
	head -c 300000 /dev/urandom >small
	head -c $((12 * MIB)) /dev/urandom >big
	sum=$(sha256sum small | cut -c1-64)
	name=packs/${sum:0:2}/$sum
	# one byte flipped: one PUT, refused by the server itself
	cp small damaged
	flip_byte damaged 1000
	expect_fail 1 tool "s3://$b/p" put-file "$name" "$T/damaged"
	assert_contains "$ERR" "error: the local cache copy of $name is damaged (its bytes do not match its name): XAmzContentSHA256Mismatch"
	assert_contains "$ERR" "hint: run \`git dnadata verify --offline --read-data\`; remove $T/damaged from the cache"
	assert_not_contains "$ERR" "changed while it was sent"
	assert_eq "" "$(s3_ls "$b")" "nothing stored"
	# the right bytes go up under the same name
	expect_ok tool "s3://$b/p" put-file "$name" "$T/small"
	assert_eq created "$OUT"
	# above the part size: refused before an upload is created
	sum=$(sha256sum big | cut -c1-64)
	flip_byte big $((7 * MIB))
	DD_TOOL_PART_SIZE=$((5 * MIB)) expect_fail 1 tool "s3://$b/p" put-file "packs/${sum:0:2}/$sum" "$T/big"
	assert_contains "$ERR" "error: the local cache copy of packs/${sum:0:2}/$sum is damaged (its bytes do not match its name): its SHA-256 differs; nothing was sent"
	assert_eq "p/$name" "$(s3_ls "$b")" "only the good pack"
	assert_eq "" "$(s3_aws s3api list-multipart-uploads --bucket "$b" --query 'Uploads[].UploadId' --output text | grep -v None || true)"
	assert_no_file "$T/.big.s3-upload"
	sum=$(sha256sum big | cut -c1-64)
	DD_TOOL_PART_SIZE=$((5 * MIB)) expect_ok tool "s3://$b/p" put-file "packs/${sum:0:2}/$sum" "$T/big"
	assert_eq created "$OUT"
	s3_aws s3 cp "s3://$b/p/packs/${sum:0:2}/$sum" back >/dev/null
	cmp big back
}

# uploads: the ids of the multipart uploads in progress in bucket $1, sorted, one a line.
uploads() {
	s3_aws s3api list-multipart-uploads --bucket "$1" --query 'Uploads[].UploadId' --output text |
		tr '\t' '\n' | grep -v '^None$' | LC_ALL=C sort || true
}

# A record whose file is gone (a cache pack removed before its upload finished) would leave its
# upload in the bucket for ever: the next upload from that folder aborts it and removes the record.
# A record of this key for another file size (never resumable) is aborted when the key is sent.
# Uploads of other keys (another store's prefix) are left alone: gc is for those.
test_stale_upload_records_abort_their_uploads() {
	s3_env
	local b gone_id mine_id foreign_id
	b=$(s3_bucket stale)
	mkdir -p packs/ab
	gone_id=$(s3_aws s3api create-multipart-upload --bucket "$b" --key pre/packs/ab/gone --query UploadId --output text)
	mine_id=$(s3_aws s3api create-multipart-upload --bucket "$b" --key pre/packs/ab/big --query UploadId --output text)
	foreign_id=$(s3_aws s3api create-multipart-upload --bucket "$b" --key other/packs/ab/lost --query UploadId --output text)
	assert_eq "$(printf '%s\n' "$gone_id" "$mine_id" "$foreign_id" | LC_ALL=C sort)" "$(uploads "$b")"
	printf 'dd-s3-upload 1\nkey pre%%2Fpacks%%2Fab%%2Fgone\nsize 20000000 5242880\nupload %s\n' "$gone_id" >packs/ab/.gone.s3-upload
	printf 'dd-s3-upload 1\nkey other%%2Fpacks%%2Fab%%2Flost\nsize 20000000 5242880\nupload %s\n' "$foreign_id" >packs/ab/.lost.s3-upload
	printf 'dd-s3-upload 1\nkey pre%%2Fpacks%%2Fab%%2Fbig\nsize 999 5242880\nupload %s\n' "$mine_id" >packs/ab/.big.s3-upload
	head -c $((11 * MIB)) /dev/urandom >packs/ab/big
	DD_TOOL_PART_SIZE=$((5 * MIB)) expect_ok tool "s3://$b/pre" put-file packs/ab/big "$T/packs/ab/big"
	assert_eq created "$OUT"
	assert_eq "$foreign_id" "$(uploads "$b")" "only the other store's upload is left"
	assert_no_file packs/ab/.gone.s3-upload
	assert_no_file packs/ab/.big.s3-upload
	[ -f packs/ab/.lost.s3-upload ] || fail "another store's record was removed"
	assert_eq "pre/packs/ab/big" "$(s3_ls "$b")"
}

test_list_pages_through_more_than_a_thousand_names_and_batch_delete_removes_them() {
	s3_env
	local b
	b=$(s3_bucket list)
	expect_ok tool "s3://$b/x/y" put-many data 1205
	expect_ok tool "s3://$b/x/y" put keys/k1 key
	expect_ok tool "s3://$b/x/y" list data
	assert_eq 1205 "$(wc -l <<<"$OUT")"
	assert_eq "data/00000 8" "$(sort <<<"$OUT" | head -n 1)" "names are store-relative, with sizes"
	assert_eq "data/01204 11" "$(sort <<<"$OUT" | tail -n 1)"
	assert_eq 1206 "$(s3_ls "$b" x/y/ | wc -l)"
	expect_ok tool "s3://$b/x/y" del-many data
	expect_ok tool "s3://$b/x/y" list data
	assert_eq "" "$OUT"
	assert_eq "x/y/keys/k1" "$(s3_ls "$b")" "only the other directory is left"
	expect_ok tool "s3://$b/x/y" exists keys/k1
	assert_eq 1 "$OUT"
	expect_ok tool "s3://$b/x/y" del keys/k1
	expect_ok tool "s3://$b/x/y" exists keys/k1
	assert_eq 0 "$OUT"
	expect_ok tool "s3://$b/x/y" del keys/k1
}

test_faults_are_retried_and_the_data_is_exact() {
	s3_env
	local b
	b=$(s3_bucket faults)
	head -c $((12 * MIB + 77)) /dev/urandom >big
	head -c 300000 /dev/urandom >small
	s3_proxy_start 0.35 5 reset_before,reset_after,reset_mid,slowdown,truncate
	export DD_TOOL_TRANSFERS=1 DD_TOOL_RETRIES=12 DD_TOOL_PART_SIZE=$((5 * MIB))
	expect_ok tool "s3://$b/f" put-file data/big "$T/big"
	expect_ok tool "s3://$b/f" put-file data/small "$T/small"
	expect_ok tool "s3://$b/f" put-many many 40
	expect_ok tool "s3://$b/f" get data/big big.back
	cmp big big.back
	expect_ok tool "s3://$b/f" get data/small small.back
	cmp small small.back
	expect_ok tool "s3://$b/f" get-range data/big $((7 * MIB)) 200000 range
	cmp range <(tail -c +$((7 * MIB + 1)) big | head -c 200000)
	expect_ok tool "s3://$b/f" list many
	assert_eq 40 "$(wc -l <<<"$OUT")"
	s3_proxy_stop
	local kind
	for kind in reset_before reset_after reset_mid slowdown truncate; do
		[ "$(s3_proxy_stat $kind)" -ge 1 ] || fail "the proxy injected no $kind"
	done
	s3_ls "$b" f/data/ >keys
	assert_eq "$(printf 'f/data/big\nf/data/small')" "$(cat keys)"
	s3_aws s3 cp "s3://$b/f/data/big" direct >/dev/null
	cmp big direct
}

test_refusals_name_the_code_even_for_head() {
	s3_env
	local b
	b=$(s3_bucket deny)
	expect_ok tool "s3://$b/p" put keys/k key
	# another user's bucket: a HEAD has no error body, a one-byte GET tells why
	AWS_ACCESS_KEY_ID=$DD_S3_ACCESS_KEY2 AWS_SECRET_ACCESS_KEY=$DD_S3_SECRET_KEY2 expect_fail 1 tool "s3://$b/p" exists keys/k
	assert_contains "$ERR" "error: S3 denied access to bucket $b (AccessDenied) for GET p/keys/k: check that these credentials may use the bucket"
	AWS_ACCESS_KEY_ID=$DD_S3_ACCESS_KEY2 AWS_SECRET_ACCESS_KEY=$DD_S3_SECRET_KEY2 expect_fail 1 tool "s3://$b/p" list keys
	assert_contains "$ERR" "error: S3 denied access to bucket $b (AccessDenied) for listing:"
	AWS_SECRET_ACCESS_KEY=wrong-secret-0123456789 expect_fail 1 tool "s3://$b/p" exists keys/k
	assert_contains "$ERR" "error: S3 rejected the signature for bucket $b (SignatureDoesNotMatch): check AWS_SECRET_ACCESS_KEY"
	s3_assert_no_credentials "$ERR"
}

# A clock 3 days off: S3 refuses the first request (RequestTimeTooSkewed), the client signs by S3's Date from then
# on and says so once. A HEAD's refusal has no body to name it: the one-byte GET that explains it corrects the clock,
# and the HEAD is tried again; a missing key is still 0.
test_a_clock_days_off_is_corrected_by_the_servers_date_even_for_head() {
	s3_env
	command -v faketime >/dev/null || fail "faketime is not installed (scripts/dev.sh test installs it)"
	local b fa="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
	b=$(s3_bucket skew)
	expect_ok tool "s3://$b/p" put keys/k key
	expect_ok env NO_FAKE_STAT=1 "$fa" faketime -f +3d "$DD_BUILDDIR/backend-tool" "s3://$b/p" exists keys/k
	assert_eq 1 "$OUT"
	assert_eq 1 "$(grep -c "s ahead of S3's at .*: requests are signed by S3's clock; set the system time" <<<"$ERR")" "$ERR"
	expect_ok env NO_FAKE_STAT=1 "$fa" faketime -f -3d "$DD_BUILDDIR/backend-tool" "s3://$b/p" exists keys/none
	assert_eq 0 "$OUT"
	assert_contains "$ERR" "s behind S3's at "
	expect_ok env NO_FAKE_STAT=1 "$fa" faketime -f +3d "$DD_BUILDDIR/backend-tool" "s3://$b/p" put keys/k2 text
	assert_eq created "$OUT"
	expect_ok tool "s3://$b/p" get keys/k2 "$T/k2"
	assert_eq text "$(cat "$T/k2")"
}

test_credentials_in_a_store_url_or_endpoint_are_refused_and_not_shown() {
	s3_env
	expect_fail 1 tool "s3://AKIAEXAMPLE:topsecret0123@some-bucket/p" exists keys/k
	assert_contains "$ERR" "error: the store URL must not carry credentials: write it as s3://bucket/prefix"
	assert_not_contains "$ERR" topsecret0123
	assert_not_contains "$ERR" AKIAEXAMPLE
	AWS_ENDPOINT_URL_S3=ftp://AKIAEXAMPLE:topsecret0123@127.0.0.1:1 expect_fail 1 tool "s3://some-bucket/p" exists keys/k
	assert_contains "$ERR" "without a user name or password"
	assert_not_contains "$ERR" topsecret0123
	assert_not_contains "$ERR" AKIAEXAMPLE
}

test_missing_credentials_are_named() {
	s3_env
	unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
	export AWS_CONFIG_FILE=$T/none AWS_SHARED_CREDENTIALS_FILE=$T/none
	expect_fail 1 tool "s3://some-bucket/x" exists k
	assert_contains "$ERR" "AWS_ACCESS_KEY_ID"
}

run_tests
