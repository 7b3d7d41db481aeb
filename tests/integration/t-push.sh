#!/usr/bin/env bash
# t-push.sh: `git dnadata push` uploads what a --dump-only snapshot left in
# the local cache, so `verify` (which reads the store) passes afterwards.
. "$(dirname "$0")/../lib.sh"

setup_repo() {
	repo_with_db push --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 5000) i"
}

test_dump_only_snapshot_reaches_the_store_with_push() {
	setup_repo
	expect_ok git dnadata snapshot --dump-only
	local id=$OUT
	assert_no_file "$T/store/snapshots/$id"
	expect_fail 1 git dnadata verify
	expect_ok git dnadata push
	assert_contains "$ERR" "push: sent "
	assert_file "$T/store/snapshots/$id"
	expect_ok git dnadata verify --read-data
	# a second push finds nothing missing, sends nothing and still succeeds
	expect_ok git dnadata push clean
	assert_contains "$ERR" "push: nothing to transfer (1 snapshot;"
}

test_push_restores_objects_the_store_lost() {
	setup_repo
	expect_ok git dnadata snapshot
	local victim
	victim=$(find "$T/store/packs" -type f | head -n 1)
	rm "$victim"
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "hint: if this machine's cache has them, \`git dnadata push --check\`"
	# a plain push trusts the store's manifest; --check asks about every file and puts the pack back
	expect_ok git dnadata push
	assert_contains "$ERR" "push: nothing to transfer"
	assert_no_file "$victim"
	expect_ok git dnadata push --check
	assert_contains "$ERR" "push: sent 1 file"
	assert_file "$victim"
	expect_ok git dnadata verify
}

# the everyday case: clone B gets A's ref with git pull and pushes with nothing of its own
test_push_in_a_clone_that_only_pulled_the_ref_sends_nothing() {
	DNADATA_PASSPHRASE=pw setup_repo
	local origin=$PWD
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	cd "$origin"
	expect_ok git dnadata snapshot
	cd "$T/clone"
	git pull -q
	expect_ok git dnadata push
	# one request for the config, one for the manifest
	assert_contains "$ERR" "push: nothing to transfer (1 snapshot; 1 file already there; 2 requests)"
	assert_no_file .git/dnadata/cache/snapshots/$(cat .dnadata/refs/clean)
	# a ref naming a snapshot nobody pushed: an error naming it; with --all, a warning and a skip
	git -C "$origin" checkout -q -b other
	cd "$origin"
	psql_q "$DB" "UPDATE t SET v = 'other' WHERE id = 1"
	expect_ok git dnadata snapshot --dump-only
	local lost=$OUT
	git checkout -q -
	cd "$T/clone"
	git fetch -q origin other
	git checkout -q -b other FETCH_HEAD
	expect_fail 1 git dnadata push
	assert_contains "$ERR" "error: snapshot $lost is in neither the local cache nor the store"
	assert_contains "$ERR" "hint: it was made in another clone that has not pushed it"
	git checkout -q -
	expect_ok git dnadata push --all
	assert_contains "$ERR" "warning: snapshot ${lost:0:12} is in neither the local cache nor the store"
	assert_contains "$ERR" "1 snapshot in neither the local cache nor the store, skipped"
	assert_contains "$ERR" "push: nothing to transfer (2 snapshots;"
}

test_push_of_an_unknown_or_empty_profile_fails_cleanly() {
	setup_repo
	expect_fail 1 git dnadata push clen
	assert_contains "$ERR" "did you mean 'clean'"
	expect_fail 1 git dnadata push clean
	assert_contains "$ERR" "no snapshot yet"
	expect_ok git dnadata push
	assert_contains "$ERR" "nothing to push"
}

test_store_that_lost_its_config_is_repaired_by_the_hinted_push() {
	setup_repo
	expect_ok git dnadata snapshot
	rm "$T/store/config"
	# this clone keeps its confirmed copy of the config; verify checks the store's own
	expect_fail 1 git dnadata verify
	assert_contains "$ERR" "has lost its config object"
	assert_contains "$ERR" "hint: \`git dnadata push --check\` puts the store's config back"
	# a clone that never used the store is refused (no new store over the old one's files), with the same remedy
	local origin=$PWD
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	expect_fail 1 git dnadata init
	cd "$origin"
	assert_contains "$ERR" "has lost its config object"
	assert_contains "$ERR" "hint: run \`git dnadata push\` where this store was used before"
	assert_not_contains "$ERR" "init --store"
	assert_no_file "$T/store/config"
	# the hinted command works
	expect_ok git dnadata push --check
	assert_not_contains "$ERR" "already initialised"
	assert_contains "$ERR" "put the store's config back"
	assert_file "$T/store/config"
	expect_ok git dnadata verify --read-data
	cp .git/dnadata/key "$T/key" && chmod 600 "$T/key"
	cd "$T/clone"
	expect_ok git dnadata key import "$T/key"
	expect_ok git dnadata init
	expect_ok git dnadata verify
}

# push sends the work tree's refs; --all adds those at the tip of every branch and tag
test_push_all_sends_snapshots_named_on_other_branches_and_tags() {
	setup_repo
	expect_ok git dnadata snapshot --dump-only
	local main=$OUT
	git checkout -q -b feature
	psql_q "$DB" "UPDATE t SET v = 'feature' WHERE id = 1"
	expect_ok git dnadata snapshot --dump-only
	local feature=$OUT
	git checkout -q -
	git tag v1 feature
	git branch -q -D feature
	expect_ok git dnadata push
	assert_contains "$ERR" "push: sent "
	assert_file "$T/store/snapshots/$main"
	assert_no_file "$T/store/snapshots/$feature"
	expect_ok git dnadata push --all
	assert_contains "$ERR" "push: sent "
	assert_file "$T/store/snapshots/$feature"
	expect_ok git dnadata push --all
	assert_contains "$ERR" "push: nothing to transfer (2 snapshots;"
}

# a second clone joins the store, fetches everything its refs need into its
# cache, and then restores with the store gone; pull fetches and restores
test_fetch_fills_the_cache_and_pull_restores() {
	DNADATA_PASSPHRASE=pw setup_repo
	expect_ok git dnadata snapshot
	local id=$OUT origin=$PWD want
	want=$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	expect_ok git dnadata fetch
	assert_contains "$ERR" "fetch: received "
	assert_file .git/dnadata/cache/snapshots/$id
	expect_ok git dnadata fetch clean
	assert_contains "$ERR" "fetch: nothing to transfer (1 snapshot;"
	expect_fail 1 git dnadata fetch nosuch
	assert_contains "$ERR" "nosuch"
	# the store gone: the cache has all the restore needs
	mv "$T/store" "$T/store.away"
	psql_q "$DB" "UPDATE t SET v = 'edited'"
	expect_ok git dnadata restore --no-hooks --force
	expect_ok git dnadata verify --offline --read-data
	assert_eq "$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")" "$want"
	mv "$T/store.away" "$T/store"
	psql_q "$DB" "UPDATE t SET v = 'edited again'"
	expect_ok git dnadata pull --force
	assert_contains "$ERR" "fetch: nothing to transfer"
	assert_eq "$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")" "$want"
}

# a fresh clone needs whole packs: fetch reads objects lying next to each
# other in a pack with one ranged read per few MiB, not one per object (a
# ~1 GB snapshot: ~250 requests instead of ~5,800); the cache then holds
# every object, intact, and a restore needs no store
test_fetch_reads_neighbouring_objects_of_a_pack_together() {
	DNADATA_PASSPHRASE=pw repo_with_db fetchruns --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) FROM generate_series(1, 200000) i"
	expect_ok git dnadata snapshot
	local origin=$PWD files requests want
	want=$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	expect_ok git dnadata fetch
	files=$(sed -n 's/.*fetch: received \([0-9]*\) files.*/\1/p' <<<"$ERR")
	requests=$(sed -n 's/.*, \([0-9]*\) requests$/\1/p' <<<"$ERR")
	[ -n "$files" ] && [ -n "$requests" ] || fail "no fetch summary: $ERR"
	[ "$files" -ge 20 ] || fail "expected a snapshot of 20 objects or more, got $files"
	[ $((requests * 4)) -le "$files" ] || fail "fetch made $requests requests for $files objects"
	mv "$T/store" "$T/store.away"
	expect_ok git dnadata verify --offline --read-data
	psql_q "$DB" "UPDATE t SET v = 'edited'"
	expect_ok git dnadata restore --no-hooks --force
	assert_eq "$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")" "$want"
}

# a damaged object in the middle of a read-together run: the run's objects
# are read one by one, the fetch fails naming the damaged object, and the
# objects before it joined the cache (a second fetch after the repair gets
# the rest)
test_fetch_of_a_run_with_a_damaged_object_names_it() {
	DNADATA_PASSPHRASE=pw repo_with_db fetchbad --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) FROM generate_series(1, 100000) i"
	expect_ok git dnadata snapshot
	local origin=$PWD pack size
	pack=$(find "$T/store/packs" -type f | head -n 1)
	size=$(stat -c %s "$pack")
	cp "$pack" "$T/pack.good"
	chmod u+w "$pack"
	flip_byte "$pack" $((size / 3))
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	expect_fail 1 git dnadata fetch
	assert_eq 1 "$(grep -c '^error: ' <<<"$ERR")" "one error line: $ERR"
	assert_contains "$ERR" "object "
	assert_contains "$ERR" "packs/"
	echo "$ERR" >"$T/first.err"
	cp "$T/pack.good" "$pack"
	expect_ok git dnadata fetch
	assert_contains "$ERR" "fetch: received "
	assert_not_contains "$ERR" " 0 already there"
	mv "$T/store" "$T/store.away"
	expect_ok git dnadata verify --offline --read-data
}

# objects fetched into the cache are written without an fsync (FORMAT.md
# §3.1: fetch made one per object); a torn cached copy fails to
# authenticate, and the next read warns, fetches it again from the store
# and puts it back whole
test_fetched_objects_skip_fsync_and_a_torn_one_is_fetched_again() {
	DNADATA_PASSPHRASE=pw repo_with_db fetchsync --store "file://$T/store"
	psql_q "$DB" "CREATE TABLE t (id int PRIMARY KEY, v text);
		INSERT INTO t SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) FROM generate_series(1, 100000) i"
	expect_ok git dnadata snapshot
	local origin=$PWD files fsyncs obj size want
	want=$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")
	git clone -q "$origin" "$T/clone"
	cd "$T/clone"
	DNADATA_PASSPHRASE=pw expect_ok git dnadata init
	# (LeakSanitizer cannot run under ptrace: a --sanitizers build runs the traced fetch without leak checks)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		expect_ok strace -f -qq -e signal=none -e trace=fsync,fdatasync -o "$T/fsync.log" git dnadata fetch
	files=$(sed -n 's/.*fetch: received \([0-9]*\) files.*/\1/p' <<<"$ERR")
	fsyncs=$(grep -c 'sync(' "$T/fsync.log")
	[ -n "$files" ] && [ "$files" -ge 10 ] || fail "expected a fetch of 10 objects or more: $ERR"
	[ "$fsyncs" -lt $((files / 2)) ] || fail "fetch made $fsyncs fsyncs for $files objects"
	obj=$(find .git/dnadata/cache/data -type f ! -name '.*' ! -name '*.tmp-*' | head -n 1)
	size=$(stat -c %s "$obj")
	chmod u+w "$obj"
	truncate -s $((size / 2)) "$obj"
	psql_q "$DB" "UPDATE t SET v = 'edited'"
	expect_ok git dnadata restore --no-hooks --force
	assert_contains "$ERR" "warning: the cached copy of data/"
	assert_contains "$ERR" "fetching it again from the store"
	assert_eq "$(psql_q "$DB" "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM t")" "$want"
	assert_eq "$(stat -c %s "$obj")" "$size" "the cached copy is whole again"
	mv "$T/store" "$T/store.away"
	expect_ok git dnadata verify --offline --read-data
}

run_tests
