#!/usr/bin/env bash
# t-hooks-s3.sh: the pre-push hook against the real S3 server: with nothing
# missing from the store it makes no request at all (the fault proxy counts
# none, and a dead endpoint does not matter); a --dump-only snapshot is
# uploaded before the push goes on; a store out of reach refuses the push in
# one line naming the snapshot and `git push --no-verify`; deletions are
# not looked at.
# needs: s3
. "$(dirname "$0")/../lib.sh"

# setup: repository $T/a on a fresh database $DB and bucket $B, with a bare
# remote "origin" ($T/remote.git).
setup() {
	s3_env
	B=$(s3_bucket hooks)
	DB=$(pg_newdb hks3)
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 2000) i; ANALYZE"
	new_repo "$T/a"
	expect_ok git dnadata init --database "dbname=$DB" --store "s3://$B/data"
	git init -q --bare "$T/remote.git"
	git remote add origin "$T/remote.git"
}

store_setting() {
	local f=.git/dnadata/config.ini
	sed -i "/^$1 = /d" "$f"
	grep -q '^\[store\]$' "$f" || printf '[store]\n' >>"$f"
	sed -i "/^\[store\]$/a $1 = $2" "$f"
}

remote_main() { git --git-dir="$T/remote.git" rev-parse -q --verify main || true; }

test_pre_push_makes_no_request_when_the_store_holds_every_snapshot() {
	setup
	expect_ok git dnadata snapshot
	local id=$OUT
	# the proxy counts every request the push's hook makes: none
	s3_proxy_start 0 1
	expect_ok timeout 60 git push -q origin main
	s3_proxy_stop
	assert_eq 0 "$(s3_proxy_stat requests)" "requests made by pre-push"
	assert_eq "$(git rev-parse HEAD)" "$(remote_main)"
	# a new branch with a second snapshot, pushed while the server is out of reach: the
	# record says the store holds it (snapshot uploaded it), so nothing is asked
	git checkout -q -b feature
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	expect_ok git dnadata snapshot
	store_setting endpoint "$(s3_dead_endpoint)"
	store_setting retries 0
	expect_ok timeout 60 git push -q origin feature
	assert_eq "" "$ERR"
	# deleting a branch looks at nothing
	expect_ok timeout 60 git push -q origin :feature
}

test_pre_push_uploads_a_dump_only_snapshot_then_refuses_when_out_of_reach() {
	setup
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	assert_eq "" "$(s3_ls "$B" "data/snapshots/")"
	expect_ok timeout 60 git push -q origin main
	assert_eq "data/snapshots/$id" "$(s3_ls "$B" "data/snapshots/")"
	assert_eq "$(git rev-parse HEAD)" "$(remote_main)"
	# a second one, the server out of reach: refused, naming it and the way around
	psql_q "$DB" "UPDATE t SET v = 'edited' WHERE id = 1"
	expect_ok git dnadata snapshot --dump-only
	local id2=$OUT
	local dead
	dead=$(s3_dead_endpoint)
	store_setting endpoint "$dead"
	store_setting retries 0
	run timeout 60 git push -q origin main
	assert_eq 1 "$RC"
	assert_contains "$ERR" "push refused: snapshot ${id2:0:12} cannot be uploaded to the store s3://$B/data"
	assert_contains "$ERR" "$dead"
	assert_contains "$ERR" "push anyway with \`git push --no-verify\`"
	assert_eq 1 "$(printf '%s\n' "$ERR" | grep -vc '^error: failed to push some refs')" "one line of ours: $ERR"
	assert_ne "$(git rev-parse HEAD)" "$(remote_main)"
	s3_assert_no_credentials "$ERR"
	# the server back: the push uploads it and goes through
	sed -i '/^endpoint = /d' .git/dnadata/config.ini
	expect_ok timeout 60 git push -q origin main
	assert_contains "$(s3_ls "$B" "data/snapshots/")" "data/snapshots/$id2"
	assert_eq "$(git rev-parse HEAD)" "$(remote_main)"
}

run_tests
