#!/usr/bin/env bash
# t-doctor-s3.sh: `git dnadata doctor` with an s3:// store on the real S3
# server: healthy, it exits 0 with the credentials' source and the store
# reachable; with a wrong secret, an endpoint where nothing listens, or a
# bucket without a store, it names the store and exits 1; no credential is
# ever printed.
# needs: s3
. "$(dirname "$0")/../lib.sh"

setup() {
	s3_env
	B=$(s3_bucket doctor)
	DB=$(pg_newdb docs3)
	new_repo
	expect_ok git dnadata init --database "dbname=$DB" --store "s3://$B/data"
}

test_doctor_passes_a_healthy_s3_store() {
	setup
	expect_ok git dnadata doctor
	assert_contains "$OUT" "ok S3 credentials: found (environment), region $DD_S3_REGION"
	assert_contains "$OUT" "ok store: s3://$B/data reachable; the key opens it"
	no_credentials_in "$OUT$ERR"
}

test_doctor_names_a_wrong_s3_secret() {
	setup
	AWS_SECRET_ACCESS_KEY=not-the-secret-$RANDOM expect_fail 1 git dnadata doctor
	assert_contains "$OUT" "ok S3 credentials: found (environment)"
	assert_contains "$OUT" "problem: store: s3://$B/data: "
	assert_contains "$OUT" "SignatureDoesNotMatch"
	no_credentials_in "$OUT$ERR"
}

test_doctor_names_an_s3_endpoint_where_nothing_listens() {
	setup
	printf '[store]\nretries = 0\n' >>.git/dnadata/config.ini
	AWS_ENDPOINT_URL=$(s3_dead_endpoint) expect_fail 1 git dnadata doctor
	assert_contains "$OUT" "problem: store: s3://$B/data: "
	assert_contains "$OUT" " — run: check [store] url"
	no_credentials_in "$OUT$ERR"
}

test_doctor_names_a_bucket_without_a_store() {
	setup
	local other
	other=$(s3_bucket empty)
	DNADATA_STORE=s3://$other/data expect_fail 1 git dnadata doctor
	assert_contains "$OUT" "problem: store: no git-dnadata store at s3://$other/data"
}

run_tests
