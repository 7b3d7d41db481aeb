#!/usr/bin/env bash
# The S3 test server and the fault proxy are honest: the server refuses what
# AWS refuses (bad signatures, unknown keys, overwrites under If-None-Match,
# payload hashes that do not match), and the proxy injects each fault it
# claims to and passes everything through untouched at rate 0.
# needs: s3
. "$(dirname "$0")/../lib.sh"

# put_direct BUCKET KEY FILE: store FILE straight on the server (curl: awscli
# takes a second to start).
put_direct() {
	S3_CURL_ENDPOINT= s3_curl PUT "/$1/$2" --body "$3"
	[ "$S3_STATUS" = 200 ] || fail "PUT $2: HTTP $S3_STATUS $S3_CODE"
}

test_awscli_round_trip_is_exact() {
	local b
	b=$(s3_bucket round)
	# 9 MiB: above awscli's 8 MiB threshold, so a multipart upload too.
	head -c $((9 * 1024 * 1024)) /dev/urandom >big
	printf 'small\n' >small
	s3_aws s3 cp big "s3://$b/dir/big" >/dev/null
	s3_aws s3 cp small "s3://$b/dir/small" >/dev/null
	s3_aws s3 cp "s3://$b/dir/big" big.back >/dev/null
	cmp big big.back
	assert_eq "$(printf 'dir/big\ndir/small')" "$(s3_ls "$b")"
	assert_eq "dir/small" "$(s3_ls "$b" dir/s)"
	assert_eq "" "$(s3_ls "$b" nothing/)"
}

test_signed_request_with_right_keys_is_accepted() {
	local b
	b=$(s3_bucket right)
	printf 'content' >f
	put_direct "$b" k f
	s3_curl GET "/$b/k"
	assert_eq 200 "$S3_STATUS" "GET with the right keys: $S3_CODE"
	assert_eq content "$S3_BODY"
}

test_credential_check_catches_a_leak_without_showing_it() {
	s3_assert_no_credentials "nothing secret here"
	run bash -c '. "$DD_SRCDIR/tests/lib.sh"; s3_assert_no_credentials "key=$DD_S3_SECRET_KEY"'
	assert_ne 0 "$RC"
	assert_contains "$ERR" "an S3 credential appears"
	s3_assert_no_credentials "$OUT$ERR"
}

test_nothing_listens_at_the_dead_endpoint() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "$(s3_dead_endpoint)/") || true
	assert_eq 000 "$code"
}

test_wrong_secret_is_refused() {
	local b
	b=$(s3_bucket wrong)
	printf 'content' >f
	put_direct "$b" k f
	S3_SECRET=${DD_S3_SECRET_KEY%?}x s3_curl GET "/$b/k"
	assert_eq 403 "$S3_STATUS"
	assert_eq SignatureDoesNotMatch "$S3_CODE"
	S3_SECRET=${DD_S3_SECRET_KEY%?}x s3_curl PUT "/$b/other" --body f
	assert_eq 403 "$S3_STATUS"
	assert_eq "" "$(s3_ls "$b" other)" "a wrongly signed PUT stored nothing"
}

test_unknown_access_key_is_refused() {
	local b
	b=$(s3_bucket unknown)
	S3_KEY=AKIADDTESTUNKNOWN000 s3_curl GET "/$b/"
	assert_eq 403 "$S3_STATUS"
	assert_eq InvalidAccessKeyId "$S3_CODE"
}

test_anonymous_request_is_refused() {
	local b code
	b=$(s3_bucket anon)
	printf 'content' >f
	put_direct "$b" k f
	code=$(curl -s -o /dev/null -w '%{http_code}' "$DD_S3_ENDPOINT/$b/k")
	assert_eq 403 "$code"
}

test_second_user_cannot_read_first_users_bucket() {
	local b
	b=$(s3_bucket private)
	printf 'content' >f
	put_direct "$b" k f
	S3_KEY=$DD_S3_ACCESS_KEY2 S3_SECRET=$DD_S3_SECRET_KEY2 s3_curl GET "/$b/k"
	assert_eq 403 "$S3_STATUS"
	assert_eq AccessDenied "$S3_CODE"
}

test_payload_hash_mismatch_is_refused() {
	local b
	b=$(s3_bucket sha)
	printf 'one' >one
	printf 'two' >two
	# Signed for one body, sent with another.
	S3_SHA=$(sha256sum one | cut -d' ' -f1) s3_curl PUT "/$b/k" --body two
	assert_eq 400 "$S3_STATUS"
	assert_eq XAmzContentSHA256Mismatch "$S3_CODE"
	assert_eq "" "$(s3_ls "$b")" "nothing stored"
}

test_put_if_none_match_on_existing_key_is_refused() {
	local b
	b=$(s3_bucket inm)
	printf 'first' >first
	printf 'second' >second
	s3_curl PUT "/$b/k" --body first -H 'If-None-Match: *'
	assert_eq 200 "$S3_STATUS" "create-only PUT of a new key: $S3_CODE"
	s3_curl PUT "/$b/k" --body second -H 'If-None-Match: *'
	assert_eq 412 "$S3_STATUS"
	assert_eq PreconditionFailed "$S3_CODE"
	s3_aws s3 cp "s3://$b/k" back >/dev/null
	assert_eq first "$(cat back)" "content unchanged"
}

test_proxy_passes_everything_at_rate_0() {
	local b out
	b=$(s3_bucket pass)
	s3_proxy_start 0 1
	head -c $((9 * 1024 * 1024)) /dev/urandom >big
	printf 'small' >small
	# awscli signs for the proxy's address; the server accepts it.
	S3_AWS_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_aws s3 cp big "s3://$b/big" >/dev/null
	S3_AWS_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_aws s3 cp small "s3://$b/small" >/dev/null
	S3_AWS_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_aws s3 cp "s3://$b/big" big.back >/dev/null
	out=$(S3_AWS_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_aws s3api list-objects-v2 --bucket "$b" \
		--query 'Contents[].[Key]' --output text)
	cmp big big.back
	assert_eq "$(printf 'big\nsmall')" "$out"
	# Through curl too (If-None-Match, a 412 relayed).
	S3_CURL_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_curl PUT "/$b/small" --body small -H 'If-None-Match: *'
	assert_eq 412 "$S3_STATUS"
	s3_proxy_stop
	[ "$(s3_proxy_stat requests)" -ge 6 ] || fail "the proxy saw $(s3_proxy_stat requests) requests"
	assert_eq "$(s3_proxy_stat requests)" "$(s3_proxy_stat passed)" "every request passed"
	assert_eq 0 "$(s3_proxy_stat errors)"
}

test_proxy_relays_a_refusal_before_the_body() {
	local b
	b=$(s3_bucket early)
	# Above 1 MiB curl sends "Expect: 100-continue": RGW refuses the
	# signature before the body is sent, and the proxy relays that answer.
	head -c $((2 * 1024 * 1024)) /dev/urandom >big
	s3_proxy_start 0 1
	S3_CURL_ENDPOINT=$DD_S3_PROXY_ENDPOINT S3_SECRET=${DD_S3_SECRET_KEY%?}x s3_curl PUT "/$b/big" --body big
	assert_eq 403 "$S3_STATUS"
	assert_eq SignatureDoesNotMatch "$S3_CODE"
	S3_CURL_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_curl PUT "/$b/big" --body big
	assert_eq 200 "$S3_STATUS" "the same PUT with the right secret: $S3_CODE"
	s3_proxy_stop
	assert_eq 2 "$(s3_proxy_stat passed)"
	assert_eq big "$(s3_ls "$b")"
}

# via_proxy KIND: a bucket $B holding obj (100 KiB, also in ./obj) and the
# proxy injecting KIND into every request.
via_proxy() {
	B=$(s3_bucket "$1")
	head -c 102400 /dev/urandom >obj
	put_direct "$B" obj obj
	s3_proxy_start 1.0 7 "$1" 0.4
	export S3_CURL_ENDPOINT=$DD_S3_PROXY_ENDPOINT
}

test_proxy_injects_reset_before_the_server_sees_the_request() {
	via_proxy reset_before
	printf 'new' >new
	s3_curl PUT "/$B/new" --body new
	assert_ne 0 "$S3_RC" "curl saw the reset"
	s3_proxy_stop
	assert_eq 1 "$(s3_proxy_stat reset_before)"
	assert_eq obj "$(s3_ls "$B")" "the PUT never reached the server"
}

test_proxy_injects_reset_after_the_server_answered() {
	via_proxy reset_after
	printf 'new' >new
	s3_curl PUT "/$B/new" --body new
	assert_ne 0 "$S3_RC" "curl saw the reset"
	s3_proxy_stop
	assert_eq 1 "$(s3_proxy_stat reset_after)"
	assert_eq "$(printf 'new\nobj')" "$(s3_ls "$B")" "the PUT took effect"
}

test_proxy_injects_reset_mid_response() {
	via_proxy reset_mid
	s3_curl GET "/$B/obj"
	assert_eq 56 "$S3_RC" "curl: failure receiving (reset)"
	local n
	n=$(stat -c %s "$T/.s3body")
	[ "$n" -lt 102400 ] || fail "the whole body arrived ($n bytes)"
	s3_proxy_stop
	assert_eq 1 "$(s3_proxy_stat reset_mid)"
}

test_proxy_injects_slowdown() {
	via_proxy slowdown
	s3_curl GET "/$B/obj"
	assert_eq 503 "$S3_STATUS"
	assert_eq SlowDown "$S3_CODE"
	s3_curl GET "/$B/obj"
	assert_eq 503 "$S3_STATUS" "every request at rate 1"
	s3_proxy_stop
	assert_eq 2 "$(s3_proxy_stat slowdown)"
	assert_eq 2 "$(s3_proxy_stat requests)"
}

test_proxy_injects_delay() {
	local t0 t1
	via_proxy delay
	t0=$(date +%s%N)
	s3_curl GET "/$B/obj"
	t1=$(date +%s%N)
	assert_eq 200 "$S3_STATUS" "a delayed request still succeeds: $S3_CODE"
	cmp obj "$T/.s3body"
	[ $(( (t1 - t0) / 1000000 )) -ge 400 ] || fail "answered in $(( (t1 - t0) / 1000000 )) ms, under the 400 ms delay"
	s3_proxy_stop
	assert_eq 1 "$(s3_proxy_stat delay)"
}

test_proxy_injects_truncated_body() {
	via_proxy truncate
	s3_curl GET "/$B/obj" -D headers
	assert_eq 18 "$S3_RC" "curl: partial file (body shorter than Content-Length)"
	assert_contains "$(tr -d '\r' <headers)" "Content-Length: 102400"
	assert_eq 51200 "$(stat -c %s "$T/.s3body")"
	cmp -n 51200 obj "$T/.s3body"
	s3_proxy_stop
	assert_eq 1 "$(s3_proxy_stat truncate)"
}

test_proxy_rate_and_seed_are_repeatable() {
	local b i first second
	b=$(s3_bucket seed)
	printf 'x' >x
	put_direct "$b" x x
	for run in 1 2; do
		s3_proxy_start 0.5 42 slowdown
		local codes=
		for i in $(seq 1 20); do
			S3_CURL_ENDPOINT=$DD_S3_PROXY_ENDPOINT s3_curl GET "/$b/x"
			codes="$codes $S3_STATUS"
		done
		s3_proxy_stop >/dev/null
		[ $run = 1 ] && first=$codes || second=$codes
	done
	assert_eq "$first" "$second" "same seed, same faults"
	assert_contains "$first" 503
	assert_contains "$first" 200
}

# A copy of the harness whose S3 server cannot start (a monmaptool that
# fails), with an S3 script of two tests and a script that needs no S3.
broken_s3_tree() {
	mkdir -p "$T/src/tests/integration" "$T/build" "$T/bin"
	cp "$DD_SRCDIR"/tests/{run,lib.sh,pg.sh,s3.sh} "$T/src/tests/"
	cp "$DD_BUILDDIR/git-dnadata" "$T/build/"
	printf '#!/bin/sh\ntouch %s/monmaptool-ran\necho "monmaptool: broken for this test" >&2\nexit 1\n' "$T" >"$T/bin/monmaptool"
	chmod +x "$T/bin/monmaptool"
	printf '%s\n' '. "$(dirname "$0")/../lib.sh"' '# needs: s3' \
		'test_one() { true; }' 'test_two() { true; }' run_tests >"$T/src/tests/integration/t-s3.sh"
	printf '%s\n' '. "$(dirname "$0")/../lib.sh"' 'test_plain() { true; }' run_tests \
		>"$T/src/tests/integration/t-plain.sh"
}

test_s3_tests_fail_when_the_server_cannot_start() {
	broken_s3_tree
	run env -u DD_TEST_FILTER PATH="$T/bin:$PATH" "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src"
	assert_ne 0 "$RC" "exit status"
	assert_contains "$OUT" "not ok 1 - one (the S3 test server did not start)"
	assert_contains "$OUT" "not ok 2 - two (the S3 test server did not start)"
	assert_contains "$OUT" "monmaptool: broken for this test" "the server's log is shown"
	assert_contains "$OUT" "ok 1 - plain"
	assert_contains "$OUT" "1 passed, 2 failed"
}

test_no_s3_server_starts_for_scripts_that_do_not_need_it() {
	broken_s3_tree
	run env -u DD_TEST_FILTER PATH="$T/bin:$PATH" "$T/src/tests/run" --builddir "$T/build" --srcdir "$T/src" \
		"$T/src/tests/integration/t-plain.sh"
	assert_eq 0 "$RC" "exit status: $OUT"
	assert_no_file "$T/monmaptool-ran"
	assert_not_contains "$OUT" "S3 server"
}

run_tests
