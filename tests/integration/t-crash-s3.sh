#!/usr/bin/env bash
# t-crash-s3.sh: push and fetch with an S3 store (the test server), killed
# with -9 at seeded random moments (tests/crash.sh; the folder store's and
# the other operations' rounds are t-crash.sh's): after each kill the refs
# name complete snapshots in the cache or the bucket, no snapshot the bucket
# lists is partial, the database is untouched, and the rerun completes with
# every byte in place (`verify --read-data`).
#
#   DD_CRASH_SEED=N DD_CRASH_ROUNDS=100 tests/run tests/integration/t-crash-s3.sh
# needs: s3
# serial: waits until no client session is left on the whole server after each kill (tests/run runs it alone)
. "$(dirname "$0")/../lib.sh"
. "$DD_TESTS_DIR/crash.sh"

export DNADATA_SKIP=1

test_push_to_s3() {
	crash_begin push_to_s3
	s3_env
	crash_push "s3://$(s3_bucket crpush)/crash"
}

test_fetch_from_s3() {
	crash_begin fetch_from_s3
	s3_env
	crash_fetch "s3://$(s3_bucket crfetch)/crash"
}

run_tests
